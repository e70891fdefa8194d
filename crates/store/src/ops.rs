//! The SQL of every store operation, written once and compiled for both backends.
//!
//! `define_ops!` expands to the same functions for SQLite and PostgreSQL connections (both speak
//! `db::Db`); the SQL is the common subset of both dialects (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`). Times are
//! stored as microseconds since the Unix epoch, money as integer minor units.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use regulars_core::{
    Consent, Currency, Customer, CustomerId, Email, ExternalId, FieldError, OrderLine, Phone, Quantity, RefundLine,
    Role, Sku,
};

use crate::{Result, StoreError};

/// Rows per multi-row INSERT: keeps every statement under both backends' limits on parameters.
pub(crate) const ROWS_PER_INSERT: usize = 512;

/// `items` in chunks of `max` (a power of two) rows, the rest in chunks of falling powers of two
/// (e.g. 512, 512, 64, 8, 2). A multi-row statement's text depends on its number of rows, so this keeps
/// the statements of any batch to a dozen shapes that both backends prepare once and cache.
pub(crate) fn chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    debug_assert!(max.is_power_of_two());
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let take = if rest.len() >= max { max } else { 1 << rest.len().ilog2() };
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        Some(chunk)
    })
}

pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(crate) fn from_micros(value: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(value).ok_or_else(|| corrupt(format!("timestamp {value} out of range")))
}

pub(crate) fn parse_date(value: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|e| corrupt(format!("date {value}: {e}")))
}

pub(crate) fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::Corrupt(message.into())
}

/// Values were checked before they were stored; a value that no longer parses means the file was edited.
pub(crate) fn stored<T>(parsed: Result<T, FieldError>) -> Result<T> {
    parsed.map_err(|e| corrupt(format!("stored value no longer valid: {e}")))
}

pub(crate) fn attributes_json(attributes: &BTreeMap<String, String>) -> String {
    serde_json::to_string(attributes).expect("a map of strings always serialises")
}

pub(crate) fn pseudonym() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("anon_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The raw columns of a customer row, decoded into the domain type.
#[allow(clippy::too_many_arguments)]
pub(crate) fn customer_from_columns(
    id: i64,
    external_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    name: Option<String>,
    birthday: Option<String>,
    locale: Option<String>,
    time_zone: Option<String>,
    consent_marketing: i64,
    consent_recorded_at: Option<i64>,
    consent_source: Option<String>,
    attributes: String,
    first_seen_at: i64,
    erased_at: Option<i64>,
) -> Result<Customer> {
    Ok(Customer {
        id: CustomerId::from_key(id),
        external_id: external_id.map(|v| stored(ExternalId::parse("external_id", &v))).transpose()?,
        email: email.map(|v| stored(Email::parse("email", &v))).transpose()?,
        phone: phone.map(|v| stored(Phone::parse("phone", &v))).transpose()?,
        name,
        birthday: birthday
            .map(|v| NaiveDate::parse_from_str(&v, "%Y-%m-%d").map_err(|e| corrupt(format!("birthday {v}: {e}"))))
            .transpose()?,
        locale,
        time_zone,
        consent: Consent {
            marketing: consent_marketing != 0,
            recorded_at: consent_recorded_at.map(from_micros).transpose()?,
            source: consent_source,
        },
        attributes: serde_json::from_str(&attributes).map_err(|e| corrupt(format!("attributes: {e}")))?,
        first_seen_at: from_micros(first_seen_at)?,
        erased_at: erased_at.map(from_micros).transpose()?,
    })
}

pub(crate) fn line_from_columns(
    sku: String,
    name: Option<String>,
    quantity: i64,
    unit_price_minor: i64,
    discount_minor: i64,
) -> Result<OrderLine> {
    let quantity = stored(Quantity::new("quantity", quantity))?;
    stored(OrderLine::new(stored(Sku::parse("sku", &sku))?, name, quantity, unit_price_minor, discount_minor))
}

pub(crate) fn role_from_column(role: &str) -> Result<Role> {
    role.parse().map_err(|e: String| corrupt(e))
}

pub(crate) fn currency_from_column(code: &str) -> Result<Currency> {
    stored(Currency::parse("currency", code))
}

pub(crate) fn refund_line(line_no: i64, quantity: i64, amount_minor: i64) -> RefundLine {
    RefundLine { line: line_no as usize, quantity: quantity as u32, amount_minor }
}

pub(crate) const CUSTOMER_COLUMNS: &str = "id, external_id, email, phone, name, birthday, locale, time_zone, \
     consent_marketing, consent_recorded_at, consent_source, attributes, first_seen_at, erased_at";

macro_rules! define_ops {
    ($Conn:ty) => {
        // foldhash: the import hashes millions of external ids on the writer thread.
        use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

        use chrono::{DateTime, Utc};
        use regulars_core::order::CustomerRef;
        use regulars_core::{
            Customer, CustomerDraft, CustomerId, CustomerPatch, ImportedOrder, Order, OrderDraft, OrderId, Product,
            ProductDraft, ProductId, Refund, RefundDraft, RefundId, Role, Sku, plan_refund,
        };

        use crate::db::{Db, Query, Row};
        use crate::keys::ApiKey;
        use crate::ops::*;
        use crate::{CustomerExport, CustomerLookup, ImportSummary, Result, StoreCounts, StoreError, StoredResponse};

        fn customer_from_row(r: &Row) -> Result<Customer> {
            customer_from_columns(
                r.get("id")?,
                r.get("external_id")?,
                r.get("email")?,
                r.get("phone")?,
                r.get("name")?,
                r.get("birthday")?,
                r.get("locale")?,
                r.get("time_zone")?,
                r.get("consent_marketing")?,
                r.get("consent_recorded_at")?,
                r.get("consent_source")?,
                r.get("attributes")?,
                r.get("first_seen_at")?,
                r.get("erased_at")?,
            )
        }

        fn product_from_row(r: &Row) -> Result<Product> {
            let price_minor: Option<i64> = r.get("price_minor")?;
            let price_currency: Option<String> = r.get("price_currency")?;
            let price = match (price_minor, price_currency) {
                (Some(minor), Some(code)) => Some(regulars_core::Money::new(minor, currency_from_column(&code)?)),
                _ => None,
            };
            Ok(Product {
                id: ProductId::from_key(r.get("id")?),
                sku: stored(Sku::parse("sku", &r.get::<String>("sku")?))?,
                name: r.get("name")?,
                category: r.get("category")?,
                price,
            })
        }

        fn api_key_from_row(r: &Row) -> Result<(ApiKey, String)> {
            let key = ApiKey {
                id: r.get("id")?,
                prefix: r.get("prefix")?,
                name: r.get("name")?,
                role: role_from_column(&r.get::<String>("role")?)?,
                created_at: from_micros(r.get("created_at")?)?,
                revoked_at: r.get::<Option<i64>>("revoked_at")?.map(from_micros).transpose()?,
            };
            Ok((key, r.get("secret_hash")?))
        }

        pub(crate) async fn ping(c: &mut $Conn) -> Result<()> {
            c.fetch_one(Query::new("SELECT 1")).await?;
            Ok(())
        }

        pub(crate) async fn counts(c: &mut $Conn) -> Result<StoreCounts> {
            let r = c.fetch_one(Query::new("SELECT (SELECT COUNT(*) FROM customers) AS customers, (SELECT COUNT(*) FROM orders) AS orders, \
                 (SELECT COUNT(*) FROM api_keys) AS api_keys",)).await?;
            Ok(StoreCounts {
                customers: r.get("customers")?,
                orders: r.get("orders")?,
                api_keys: r.get("api_keys")?,
            })
        }

        // ----- customers -----

        pub(crate) async fn insert_customer(c: &mut $Conn, d: &CustomerDraft, now: DateTime<Utc>) -> Result<Customer> {
            let row = c.fetch_optional(Query::new(format!(
                "INSERT INTO customers (external_id, email, phone, name, birthday, locale, time_zone, \
                 consent_marketing, consent_recorded_at, consent_source, attributes, first_seen_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (external_id) DO NOTHING RETURNING {CUSTOMER_COLUMNS}"
            )).bind(d.external_id.as_ref().map(|v| v.as_str().to_owned())).bind(d.email.as_ref().map(|v| v.as_str().to_owned())).bind(d.phone.as_ref().map(|v| v.as_str().to_owned())).bind(d.name.clone()).bind(d.birthday.map(|b| b.format("%Y-%m-%d").to_string())).bind(d.locale.clone()).bind(d.time_zone.clone()).bind(i64::from(d.consent.marketing)).bind(d.consent.recorded_at.map(micros)).bind(d.consent.source.clone()).bind(attributes_json(&d.attributes)).bind(micros(now))).await?;
            match row {
                Some(row) => customer_from_row(&row),
                None => {
                    let external_id = d.external_id.as_ref().expect("only external_id can conflict");
                    let existing: i64 = c.fetch_one(Query::new("SELECT id FROM customers WHERE external_id = $1").bind(external_id.as_str())).await?.at(0)?;
                    Err(StoreError::AlreadyExists {
                        field: "external_id".into(),
                        value: external_id.to_string(),
                        existing: CustomerId::from_key(existing).to_string(),
                    })
                }
            }
        }

        pub(crate) async fn update_customer(c: &mut $Conn, id: CustomerId, p: &CustomerPatch) -> Result<Customer> {
            let mut q = Query::new("UPDATE customers SET id = id");
            if let Some(v) = &p.email {
                q.push(", email = ").push_bind(v.as_ref().map(|v| v.as_str().to_owned()));
            }
            if let Some(v) = &p.phone {
                q.push(", phone = ").push_bind(v.as_ref().map(|v| v.as_str().to_owned()));
            }
            if let Some(v) = &p.name {
                q.push(", name = ").push_bind(v.clone());
            }
            if let Some(v) = &p.birthday {
                q.push(", birthday = ").push_bind(v.map(|b| b.format("%Y-%m-%d").to_string()));
            }
            if let Some(v) = &p.locale {
                q.push(", locale = ").push_bind(v.clone());
            }
            if let Some(v) = &p.time_zone {
                q.push(", time_zone = ").push_bind(v.clone());
            }
            if let Some(consent) = &p.consent {
                q.push(", consent_marketing = ").push_bind(i64::from(consent.marketing));
                q.push(", consent_recorded_at = ").push_bind(consent.recorded_at.map(micros));
                q.push(", consent_source = ").push_bind(consent.source.clone());
            }
            if let Some(v) = &p.attributes {
                q.push(", attributes = ").push_bind(attributes_json(v));
            }
            q.push(" WHERE erased_at IS NULL AND id = ").push_bind(id.key());
            q.push(&format!(" RETURNING {CUSTOMER_COLUMNS}"));
            match c.fetch_optional(q).await? {
                Some(row) => customer_from_row(&row),
                None => Err(StoreError::not_found("id", format!("customer {id}"))),
            }
        }

        pub(crate) async fn customer(c: &mut $Conn, id: CustomerId) -> Result<Option<Customer>> {
            let row = c.fetch_optional(Query::new(format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1")).bind(id.key())).await?;
            row.as_ref().map(customer_from_row).transpose()
        }

        pub(crate) async fn customers(c: &mut $Conn, after: Option<CustomerId>, limit: u32) -> Result<Vec<Customer>> {
            let rows = c.fetch_all(Query::new(format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id > $1 ORDER BY id LIMIT $2")).bind(after.map_or(0, CustomerId::key)).bind(i64::from(limit))).await?;
            rows.iter().map(customer_from_row).collect()
        }

        pub(crate) async fn find_customers(c: &mut $Conn, lookup: &CustomerLookup, limit: u32) -> Result<Vec<Customer>> {
            let (column, value) = match lookup {
                CustomerLookup::ExternalId(v) => ("external_id", v.as_str()),
                CustomerLookup::Email(v) => ("email", v.as_str()),
                CustomerLookup::Phone(v) => ("phone", v.as_str()),
            };
            let rows =
                c.fetch_all(Query::new(format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE {column} = $1 ORDER BY id LIMIT $2")).bind(value).bind(i64::from(limit))).await?;
            rows.iter().map(customer_from_row).collect()
        }

        pub(crate) async fn export_customer(c: &mut $Conn, id: CustomerId) -> Result<Option<CustomerExport>> {
            let Some(customer) = customer(c, id).await? else { return Ok(None) };
            let order_keys: Vec<i64> = c.fetch_scalars(Query::new("SELECT id FROM orders WHERE customer_id = $1 ORDER BY id").bind(id.key())).await?;
            let orders = orders_by_keys(c, &order_keys).await?;
            let mut refunds = Vec::new();
            for order in &orders {
                refunds.extend(refunds_of_order(c, order.id).await?);
            }
            Ok(Some(CustomerExport { customer, orders, refunds }))
        }

        pub(crate) async fn erase_customer(c: &mut $Conn, id: CustomerId, now: DateTime<Utc>) -> Result<Customer> {
            c.execute(Query::new("UPDATE customers SET external_id = NULL, email = NULL, phone = NULL, name = NULL, birthday = NULL, \
                 locale = NULL, time_zone = NULL, consent_marketing = 0, consent_recorded_at = NULL, \
                 consent_source = NULL, attributes = '{}', erased_at = $1, pseudonym = $2 \
                 WHERE id = $3 AND erased_at IS NULL",).bind(micros(now)).bind(pseudonym()).bind(id.key())).await?;
            // Stored responses that carry the customer (create, update) would keep their personal data.
            c.execute(Query::new("DELETE FROM idempotency_keys WHERE body LIKE $1 OR body LIKE $2").bind(format!("%\"id\":\"{id}\",%")).bind(format!("%\"id\":\"{id}\"}}%"))).await?;
            customer(c, id).await?.ok_or_else(|| StoreError::not_found("id", format!("customer {id}")))
        }

        // ----- products -----

        pub(crate) async fn upsert_product(c: &mut $Conn, d: &ProductDraft) -> Result<Product> {
            let row = c.fetch_one(Query::new("INSERT INTO products (sku, name, category, price_minor, price_currency) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (sku) DO UPDATE SET name = excluded.name, category = excluded.category, \
                 price_minor = excluded.price_minor, price_currency = excluded.price_currency \
                 RETURNING id, sku, name, category, price_minor, price_currency",).bind(d.sku.as_str()).bind(&d.name).bind(d.category.clone()).bind(d.price.map(|p| p.minor)).bind(d.price.map(|p| p.currency.code().to_owned()))).await?;
            product_from_row(&row)
        }

        pub(crate) async fn product(c: &mut $Conn, id: ProductId) -> Result<Option<Product>> {
            let row = c.fetch_optional(Query::new("SELECT id, sku, name, category, price_minor, price_currency FROM products WHERE id = $1").bind(id.key())).await?;
            row.as_ref().map(product_from_row).transpose()
        }

        pub(crate) async fn products(c: &mut $Conn, after: Option<ProductId>, limit: u32) -> Result<Vec<Product>> {
            let rows = c.fetch_all(Query::new("SELECT id, sku, name, category, price_minor, price_currency FROM products WHERE id > $1 \
                 ORDER BY id LIMIT $2",).bind(after.map_or(0, ProductId::key)).bind(i64::from(limit))).await?;
            rows.iter().map(product_from_row).collect()
        }

        /// Adds the SKUs of `lines` to the catalogue when they are not there yet.
        async fn ensure_products<'a>(
            c: &mut $Conn,
            products: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>, Option<(i64, &'a str)>)>,
        ) -> Result<()> {
            let products: Vec<_> = products.collect();
            for chunk in chunks(&products, ROWS_PER_INSERT) {
                let mut q = Query::new("INSERT INTO products (sku, name, category, price_minor, price_currency) ");
                q.push_values(chunk, |b, (sku, name, category, price)| {
                    b.bind(sku.to_string())
                        .bind(name.to_string())
                        .bind(category.map(str::to_owned))
                        .bind(price.map(|p| p.0))
                        .bind(price.map(|p| p.1.to_owned()));
                });
                q.push(" ON CONFLICT (sku) DO NOTHING");
                c.execute(q).await?;
            }
            Ok(())
        }

        // ----- orders -----

        async fn orders_by_keys(c: &mut $Conn, keys: &[i64]) -> Result<Vec<Order>> {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let mut orders = Vec::with_capacity(keys.len());
            let mut index = HashMap::with_capacity(keys.len());
            let mut q = Query::new(
                "SELECT id, external_id, customer_id, placed_at, currency, total_minor, refunded_minor FROM orders WHERE id IN ",
            );
            q.push_list(keys.iter().copied());
            q.push(" ORDER BY id");
            for r in c.fetch_all(q).await? {
                let id: i64 = r.get("id")?;
                index.insert(id, orders.len());
                orders.push(Order {
                    id: OrderId::from_key(id),
                    external_id: r
                        .get::<Option<String>>("external_id")?
                        .map(|v| stored(regulars_core::ExternalId::parse("external_id", &v)))
                        .transpose()?,
                    customer_id: CustomerId::from_key(r.get("customer_id")?),
                    placed_at: from_micros(r.get("placed_at")?)?,
                    currency: currency_from_column(&r.get::<String>("currency")?)?,
                    lines: Vec::new(),
                    total_minor: r.get("total_minor")?,
                    refunded_minor: r.get("refunded_minor")?,
                });
            }
            let mut q = Query::new(
                "SELECT order_id, sku, name, quantity, unit_price_minor, discount_minor FROM order_lines WHERE order_id IN ",
            );
            q.push_list(keys.iter().copied());
            q.push(" ORDER BY order_id, line_no");
            for r in c.fetch_all(q).await? {
                let order_id: i64 = r.get("order_id")?;
                let line = line_from_columns(
                    r.get("sku")?,
                    r.get("name")?,
                    r.get("quantity")?,
                    r.get("unit_price_minor")?,
                    r.get("discount_minor")?,
                )?;
                orders[index[&order_id]].lines.push(line);
            }
            Ok(orders)
        }

        pub(crate) async fn order(c: &mut $Conn, id: OrderId) -> Result<Option<Order>> {
            Ok(orders_by_keys(c, &[id.key()]).await?.pop())
        }

        pub(crate) async fn orders_of_customer(
            c: &mut $Conn,
            customer: CustomerId,
            after: Option<OrderId>,
            limit: u32,
        ) -> Result<Vec<Order>> {
            let keys: Vec<i64> =
                c.fetch_scalars(Query::new("SELECT id FROM orders WHERE customer_id = $1 AND id > $2 ORDER BY id LIMIT $3").bind(customer.key()).bind(after.map_or(0, OrderId::key)).bind(i64::from(limit))).await?;
            orders_by_keys(c, &keys).await
        }

        async fn order_by_external_id(c: &mut $Conn, external_id: &str) -> Result<Option<Order>> {
            let key: Option<i64> = c.fetch_scalar(Query::new("SELECT id FROM orders WHERE external_id = $1").bind(external_id)).await?;
            match key {
                Some(key) => Ok(orders_by_keys(c, &[key]).await?.pop()),
                None => Ok(None),
            }
        }

        /// Records an order and, when it is new and a loyalty program is defined, applies the program to it
        /// in the same transaction.
        pub(crate) async fn record_order(
            c: &mut $Conn,
            d: &OrderDraft,
            now: DateTime<Utc>,
            programs: &crate::ledger::ProgramCache,
        ) -> Result<(Order, bool)> {
            // The insert below finds an existing order by its external id; this lookup comes first
            // only when the customer cannot be found, so a replay still returns the order.
            let customer_key: Option<i64> = match &d.customer {
                CustomerRef::Id(id) => {
                    c.fetch_scalar(Query::new("SELECT id FROM customers WHERE id = $1").bind(id.key())).await?
                }
                CustomerRef::External(ext) => {
                    c.fetch_scalar(Query::new("SELECT id FROM customers WHERE external_id = $1").bind(ext.as_str())).await?
                }
            };
            let Some(customer_key) = customer_key else {
                if let Some(external_id) = &d.external_id {
                    if let Some(existing) = order_by_external_id(c, external_id.as_str()).await? {
                        return Ok((existing, false));
                    }
                }
                return Err(match &d.customer {
                    CustomerRef::Id(id) => StoreError::not_found("customer_id", format!("customer {id}")),
                    CustomerRef::External(ext) => {
                        StoreError::not_found("customer_external_id", format!("a customer with external id {ext:?}"))
                    }
                });
            };
            let inserted: Option<i64> = c.fetch_scalar(Query::new("INSERT INTO orders (external_id, customer_id, placed_at, currency, total_minor, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (external_id) DO NOTHING RETURNING id",).bind(d.external_id.as_ref().map(|v| v.as_str().to_owned())).bind(customer_key).bind(micros(d.placed_at)).bind(d.currency.code()).bind(d.total_minor()).bind(micros(now))).await?;
            let Some(order_key) = inserted else {
                // Recorded before, or by a concurrent writer (PostgreSQL) that committed first.
                let external_id = d.external_id.as_ref().expect("only external_id can conflict");
                let existing = order_by_external_id(c, external_id.as_str()).await?;
                return existing.map(|o| (o, false)).ok_or_else(|| StoreError::not_found("external_id", "order"));
            };
            insert_lines(c, d.lines.iter().enumerate().map(|(i, l)| (order_key, i, l, 0u32))).await?;
            ensure_products(
                c,
                d.lines.iter().map(|l| (l.sku.as_str(), l.name.as_deref().unwrap_or(l.sku.as_str()), None, None)),
            )
            .await?;
            let order = Order {
                id: OrderId::from_key(order_key),
                external_id: d.external_id.clone(),
                customer_id: CustomerId::from_key(customer_key),
                placed_at: d.placed_at,
                currency: d.currency,
                lines: d.lines.clone(),
                total_minor: d.total_minor(),
                refunded_minor: 0,
            };
            // The program is read once for the order's points and its stamps.
            if let Some(program) = ledger::current_program(c, programs).await? {
                ledger::earn_for_order(c, &program, &order, now).await?;
                rewards::punch_for_order(c, &program, &order, now).await?;
            }
            Ok((order, true))
        }

        async fn insert_lines<'a>(
            c: &mut $Conn,
            lines: impl Iterator<Item = (i64, usize, &'a regulars_core::OrderLine, u32)>,
        ) -> Result<u64> {
            let lines: Vec<_> = lines.collect();
            for chunk in chunks(&lines, ROWS_PER_INSERT) {
                let mut q = Query::new(
                    "INSERT INTO order_lines (order_id, line_no, sku, name, quantity, unit_price_minor, discount_minor, \
                     refunded_quantity) ",
                );
                q.push_values(chunk, |b, (order_key, line_no, l, refunded)| {
                    b.bind(*order_key)
                        .bind(*line_no as i64)
                        .bind(l.sku.as_str().to_owned())
                        .bind(l.name.clone())
                        .bind(i64::from(l.quantity.get()))
                        .bind(l.unit_price_minor)
                        .bind(l.discount_minor)
                        .bind(i64::from(*refunded));
                });
                c.execute(q).await?;
            }
            Ok(lines.len() as u64)
        }

        // ----- refunds -----

        pub(crate) async fn refunds_of_order(c: &mut $Conn, order: OrderId) -> Result<Vec<Refund>> {
            let rows = c.fetch_all(Query::new("SELECT id, external_id, order_id, refunded_at, reason, amount_minor FROM refunds \
                 WHERE order_id = $1 ORDER BY id",).bind(order.key())).await?;
            let mut refunds = Vec::with_capacity(rows.len());
            for r in rows {
                let id: i64 = r.get("id")?;
                let lines = c.fetch_all(Query::new("SELECT line_no, quantity, amount_minor FROM refund_lines WHERE refund_id = $1 ORDER BY line_no",).bind(id)).await?
                .iter()
                .map(|l| Ok(refund_line(l.get("line_no")?, l.get("quantity")?, l.get("amount_minor")?)))
                .collect::<Result<Vec<_>>>()?;
                refunds.push(Refund {
                    id: RefundId::from_key(id),
                    external_id: r
                        .get::<Option<String>>("external_id")?
                        .map(|v| stored(regulars_core::ExternalId::parse("external_id", &v)))
                        .transpose()?,
                    order_id: OrderId::from_key(r.get("order_id")?),
                    refunded_at: from_micros(r.get("refunded_at")?)?,
                    reason: r.get("reason")?,
                    lines,
                    amount_minor: r.get("amount_minor")?,
                });
            }
            Ok(refunds)
        }

        /// Records a refund and takes back the points its order earned on what was returned, in the same
        /// transaction.
        pub(crate) async fn record_refund(
            c: &mut $Conn,
            d: &RefundDraft,
            now: DateTime<Utc>,
            programs: &crate::ledger::ProgramCache,
        ) -> Result<(Refund, bool)> {
            if let Some(external_id) = &d.external_id {
                let existing =
                    c.fetch_optional(Query::new("SELECT id, order_id FROM refunds WHERE external_id = $1").bind(external_id.as_str())).await?;
                if let Some(r) = existing {
                    let (id, order_key): (i64, i64) = (r.at(0)?, r.at(1)?);
                    let refunds = refunds_of_order(c, OrderId::from_key(order_key)).await?;
                    let refund = refunds.into_iter().find(|r| r.id.key() == id).expect("refund read back");
                    return Ok((refund, false));
                }
            }
            // Lock the order first (PostgreSQL), so two refunds of one order cannot both see the same quantities left.
            let locked: Option<i64> = c.fetch_scalar(Query::new("UPDATE orders SET refunded_minor = refunded_minor WHERE id = $1 RETURNING id",).bind(d.order_id.key())).await?;
            if locked.is_none() {
                return Err(StoreError::not_found("order_id", format!("order {}", d.order_id)));
            }
            let order = orders_by_keys(c, &[d.order_id.key()]).await?.pop().expect("order exists");
            let refunded: Vec<i64> = c.fetch_scalars(Query::new("SELECT refunded_quantity FROM order_lines WHERE order_id = $1 ORDER BY line_no",).bind(d.order_id.key())).await?;
            let refunded: Vec<u32> = refunded.into_iter().map(|q| q as u32).collect();
            let lines = plan_refund(&order, &refunded, &d.kind)?;
            let amount: i64 = lines.iter().map(|l| l.amount_minor).sum();
            let inserted: Option<i64> = c.fetch_scalar(Query::new("INSERT INTO refunds (external_id, order_id, refunded_at, reason, amount_minor) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (external_id) DO NOTHING RETURNING id",).bind(d.external_id.as_ref().map(|v| v.as_str().to_owned())).bind(d.order_id.key()).bind(micros(d.refunded_at)).bind(d.reason.clone()).bind(amount)).await?;
            let Some(refund_key) = inserted else {
                return Err(StoreError::AlreadyExists {
                    field: "external_id".into(),
                    value: d.external_id.as_ref().map(ToString::to_string).unwrap_or_default(),
                    existing: "a refund recorded concurrently".into(),
                });
            };
            apply_refund_lines(c, d.order_id.key(), refund_key, &lines).await?;
            let refund_id = RefundId::from_key(refund_key);
            // An order that earned is clawed back even if no program is defined now.
            let program = ledger::current_program(c, programs).await?;
            ledger::clawback_for_refund(c, program.as_deref(), &order, refund_id, order.refunded_minor + amount, now)
                .await?;
            if let Some(program) = &program {
                rewards::unstamp_for_refund(c, program, &order, &refunded, &lines, now).await?;
            }
            let refund = Refund {
                id: RefundId::from_key(refund_key),
                external_id: d.external_id.clone(),
                order_id: d.order_id,
                refunded_at: d.refunded_at,
                reason: d.reason.clone(),
                lines,
                amount_minor: amount,
            };
            Ok((refund, true))
        }

        async fn apply_refund_lines(
            c: &mut $Conn,
            order_key: i64,
            refund_key: i64,
            lines: &[regulars_core::RefundLine],
        ) -> Result<()> {
            let mut q = Query::new("INSERT INTO refund_lines (refund_id, line_no, quantity, amount_minor) ");
            q.push_values(lines, |b, l| {
                b.bind(refund_key)
                    .bind(l.line as i64)
                    .bind(i64::from(l.quantity))
                    .bind(l.amount_minor);
            });
            c.execute(q).await?;
            for l in lines {
                c.execute(Query::new("UPDATE order_lines SET refunded_quantity = refunded_quantity + $1 WHERE order_id = $2 AND line_no = $3",).bind(i64::from(l.quantity)).bind(order_key).bind(l.line as i64)).await?;
            }
            let amount: i64 = lines.iter().map(|l| l.amount_minor).sum();
            c.execute(Query::new("UPDATE orders SET refunded_minor = refunded_minor + $1 WHERE id = $2").bind(amount).bind(order_key)).await?;
            Ok(())
        }

        // ----- import -----

        pub(crate) async fn import_orders(
            c: &mut $Conn,
            batch: &[ImportedOrder],
            now: DateTime<Utc>,
            programs: &crate::ledger::ProgramCache,
        ) -> Result<ImportSummary> {
            let mut summary = ImportSummary::default();
            // Customers: create the missing ones, then learn every key.
            let mut seen = HashSet::new();
            let customers: Vec<&CustomerDraft> = batch
                .iter()
                .map(|o| &o.customer)
                .filter(|c| seen.insert(c.external_id.as_ref().map(|e| e.as_str())))
                .collect();
            let mut customer_keys: HashMap<String, i64> = HashMap::with_capacity(customers.len());
            let first_seen: HashMap<&str, i64> = batch
                .iter()
                .filter_map(|o| Some((o.customer.external_id.as_ref()?.as_str(), micros(o.order.placed_at))))
                .fold(HashMap::with_capacity(batch.len()), |mut m, (k, t)| {
                    m.entry(k).and_modify(|v: &mut i64| *v = (*v).min(t)).or_insert(t);
                    m
                });
            for chunk in chunks(&customers, ROWS_PER_INSERT / 4) {
                let mut q = Query::new(
                    "INSERT INTO customers (external_id, email, phone, name, birthday, locale, time_zone, \
                     consent_marketing, consent_recorded_at, consent_source, attributes, first_seen_at) ",
                );
                q.push_values(chunk, |b, d| {
                    let ext = d.external_id.as_ref().map(|v| v.as_str().to_owned());
                    let seen_at = ext.as_deref().and_then(|k| first_seen.get(k).copied()).unwrap_or(micros(now));
                    b.bind(ext)
                        .bind(d.email.as_ref().map(|v| v.as_str().to_owned()))
                        .bind(d.phone.as_ref().map(|v| v.as_str().to_owned()))
                        .bind(d.name.clone())
                        .bind(d.birthday.map(|b| b.format("%Y-%m-%d").to_string()))
                        .bind(d.locale.clone())
                        .bind(d.time_zone.clone())
                        .bind(i64::from(d.consent.marketing))
                        .bind(d.consent.recorded_at.map(micros))
                        .bind(d.consent.source.clone())
                        .bind(attributes_json(&d.attributes))
                        .bind(seen_at);
                });
                q.push(" ON CONFLICT (external_id) DO NOTHING");
                summary.customers_created += c.execute(q).await?;
                let mut q = Query::new("SELECT id, external_id FROM customers WHERE external_id IN ");
                q.push_list(chunk.iter().map(|d| d.external_id.as_ref().map(|v| v.as_str().to_owned())));
                for r in c.fetch_all(q).await? {
                    customer_keys.insert(r.get("external_id")?, r.get("id")?);
                }
            }
            // Products named by the lines.
            let mut skus = HashSet::new();
            let products: Vec<_> = batch
                .iter()
                .flat_map(|o| o.products.iter())
                .filter(|p| skus.insert(p.sku.as_str()))
                .map(|p| {
                    (p.sku.as_str(), p.name.as_str(), p.category.as_deref(), p.price.as_ref().map(|m| (m.minor, m.currency.code())))
                })
                .collect();
            ensure_products(c, products.into_iter()).await?;
            // Orders: insert those not yet stored; learn the keys of the new ones.
            let mut order_keys: HashMap<String, i64> = HashMap::with_capacity(batch.len());
            for chunk in chunks(&batch, ROWS_PER_INSERT) {
                let mut q = Query::new(
                    "INSERT INTO orders (external_id, customer_id, placed_at, currency, total_minor, refunded_minor, \
                     recorded_at) ",
                );
                let mut planned = Vec::with_capacity(chunk.len());
                for o in chunk {
                    let ext = o.customer.external_id.as_ref().map(|v| v.as_str()).unwrap_or_default();
                    let customer_key = *customer_keys.get(ext).ok_or_else(|| {
                        StoreError::not_found("customer", format!("customer {ext:?} of line {}", o.line_number))
                    })?;
                    planned.push((o, customer_key, refund_plan(o)?));
                }
                q.push_values(&planned, |b, (o, customer_key, plan)| {
                    b.bind(o.order.external_id.as_ref().map(|v| v.as_str().to_owned()))
                        .bind(*customer_key)
                        .bind(micros(o.order.placed_at))
                        .bind(o.order.currency.code().to_owned())
                        .bind(o.order.total_minor())
                        .bind(plan.iter().flat_map(|r| r.1.iter()).map(|l| l.amount_minor).sum::<i64>())
                        .bind(micros(now));
                });
                q.push(" ON CONFLICT (external_id) DO NOTHING RETURNING id, external_id");
                let rows = c.fetch_all(q).await?;
                summary.orders_created += rows.len() as u64;
                summary.orders_existing += (chunk.len() - rows.len()) as u64;
                for r in rows {
                    order_keys.insert(r.get("external_id")?, r.get("id")?);
                }
                // Lines of the new orders, with what the file's refunds returned already counted.
                let mut lines = Vec::new();
                for (o, _, plan) in &planned {
                    let Some(&order_key) = o.order.external_id.as_ref().and_then(|e| order_keys.get(e.as_str())) else {
                        continue;
                    };
                    for (i, l) in o.order.lines.iter().enumerate() {
                        let refunded: u32 = plan.iter().flat_map(|r| r.1.iter()).filter(|r| r.line == i).map(|r| r.quantity).sum();
                        lines.push((order_key, i, l, refunded));
                    }
                }
                summary.lines_created += insert_lines(c, lines.into_iter()).await?;
                // Refunds of the new orders.
                let mut refund_rows = Vec::new();
                for (o, _, plan) in &planned {
                    let Some(&order_key) = o.order.external_id.as_ref().and_then(|e| order_keys.get(e.as_str())) else {
                        continue;
                    };
                    for (refund, lines) in plan {
                        refund_rows.push((order_key, refund, lines));
                    }
                }
                for chunk in chunks(&refund_rows, ROWS_PER_INSERT) {
                    let mut q = Query::new(
                        "INSERT INTO refunds (external_id, order_id, refunded_at, amount_minor) ",
                    );
                    q.push_values(chunk, |b, (order_key, refund, lines)| {
                        b.bind(refund.external_id.as_str().to_owned())
                            .bind(*order_key)
                            .bind(micros(refund.refunded_at))
                            .bind(lines.iter().map(|l| l.amount_minor).sum::<i64>());
                    });
                    q.push(" ON CONFLICT (external_id) DO NOTHING RETURNING id, external_id");
                    let mut refund_keys: HashMap<String, i64> = HashMap::with_capacity(chunk.len());
                    for r in c.fetch_all(q).await? {
                        refund_keys.insert(r.get("external_id")?, r.get("id")?);
                    }
                    summary.refunds_created += refund_keys.len() as u64;
                    let refund_lines: Vec<(i64, &regulars_core::RefundLine)> = chunk
                        .iter()
                        .filter_map(|(_, refund, lines)| Some((*refund_keys.get(refund.external_id.as_str())?, *lines)))
                        .flat_map(|(key, lines)| lines.iter().map(move |l| (key, l)))
                        .collect();
                    for lines in chunks(&refund_lines, ROWS_PER_INSERT) {
                        let mut q = Query::new(
                            "INSERT INTO refund_lines (refund_id, line_no, quantity, amount_minor) ",
                        );
                        q.push_values(lines, |b, (refund_key, l)| {
                            b.bind(*refund_key)
                                .bind(l.line as i64)
                                .bind(i64::from(l.quantity))
                                .bind(l.amount_minor);
                        });
                        c.execute(q).await?;
                    }
                }
                // Orders stored before whose refunds came later: record the refunds not stored yet, as
                // the API would (a refund already stored under its external id is left alone).
                for (o, _, _) in &planned {
                    let Some(external_id) = o.order.external_id.as_ref() else { continue };
                    if o.refunds.is_empty() || order_keys.contains_key(external_id.as_str()) {
                        continue;
                    }
                    let order_key: i64 = c
                        .fetch_one(Query::new("SELECT id FROM orders WHERE external_id = $1").bind(external_id.as_str()))
                        .await?
                        .at(0)?;
                    for refund in &o.refunds {
                        let draft = regulars_core::RefundDraft {
                            external_id: Some(refund.external_id.clone()),
                            order_id: OrderId::from_key(order_key),
                            refunded_at: refund.refunded_at,
                            reason: None,
                            kind: regulars_core::RefundDraftKind::Lines(refund.lines.clone()),
                        };
                        let (_, created) = record_refund(c, &draft, now, programs).await.map_err(|e| match e {
                            StoreError::Invalid(f) => StoreError::Invalid(f.within(&format!("line {}: refund ", o.line_number))),
                            other => other,
                        })?;
                        summary.refunds_created += u64::from(created);
                    }
                }
            }
            Ok(summary)
        }

        /// The refunds of an imported order, each with the lines it returns, checked against the order.
        fn refund_plan(
            o: &ImportedOrder,
        ) -> Result<Vec<(&regulars_core::ImportedRefund, Vec<regulars_core::RefundLine>)>> {
            if o.refunds.is_empty() {
                return Ok(Vec::new());
            }
            let as_order = Order {
                id: OrderId::from_key(1),
                external_id: None,
                customer_id: CustomerId::from_key(1),
                placed_at: o.order.placed_at,
                currency: o.order.currency,
                lines: o.order.lines.clone(),
                total_minor: o.order.total_minor(),
                refunded_minor: 0,
            };
            let mut refunded = vec![0u32; o.order.lines.len()];
            let mut out = Vec::with_capacity(o.refunds.len());
            for refund in &o.refunds {
                let kind = regulars_core::RefundDraftKind::Lines(refund.lines.clone());
                let lines = plan_refund(&as_order, &refunded, &kind)
                    .map_err(|e| e.within(&format!("line {}: refund ", o.line_number)))?;
                for l in &lines {
                    refunded[l.line] += l.quantity;
                }
                out.push((refund, lines));
            }
            Ok(out)
        }

        // ----- analytics snapshots -----

        pub(crate) async fn purchases(c: &mut $Conn) -> Result<Vec<crate::Purchase>> {
            let rows = c
                .fetch_all(Query::new(
                    "SELECT customer_id, placed_at, total_minor - refunded_minor FROM orders ORDER BY customer_id, placed_at",
                ))
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(crate::Purchase { customer_key: r.at(0)?, placed_at: from_micros(r.at(1)?)?, net_minor: r.at(2)? })
                })
                .collect()
        }

        pub(crate) async fn save_snapshot(
            c: &mut $Conn,
            computed_at: DateTime<Utc>,
            as_of: chrono::NaiveDate,
            report: &str,
            figures: &[crate::CustomerFigures],
        ) -> Result<i64> {
            let id: i64 = c.fetch_one(Query::new("INSERT INTO analytics_snapshots (computed_at, as_of, report) VALUES ($1, $2, $3) RETURNING id",).bind(micros(computed_at)).bind(as_of.to_string()).bind(report)).await?.at(0)?;
            for chunk in chunks(&figures, ROWS_PER_INSERT) {
                let mut q = Query::new(
                    "INSERT INTO customer_figures (snapshot_id, customer_id, frequency, total_spend_minor, last_purchase, \
                     probability_alive, expected_purchases, expected_value, clv, segment, rfm, median_gap_days, overdue, \
                     value_at_risk) ",
                );
                q.push_values(chunk, |b, f| {
                    b.bind(id)
                        .bind(f.customer_id.key())
                        .bind(i64::from(f.frequency))
                        .bind(f.total_spend_minor)
                        .bind(f.last_purchase.to_string())
                        .bind(f.probability_alive)
                        .bind(f.expected_purchases)
                        .bind(f.expected_value)
                        .bind(f.clv)
                        .bind(f.segment.clone())
                        .bind(f.rfm.clone())
                        .bind(f.median_gap_days)
                        .bind(i64::from(f.overdue))
                        .bind(f.value_at_risk);
                });
                c.execute(q).await?;
            }
            // Keep this snapshot and the one before it.
            let keep_from: i64 = c.fetch_one(Query::new("SELECT COALESCE(MIN(id), 0) FROM (SELECT id FROM analytics_snapshots ORDER BY id DESC LIMIT 2) AS latest",)).await?.at(0)?;
            c.execute(Query::new("DELETE FROM customer_figures WHERE snapshot_id < $1").bind(keep_from)).await?;
            c.execute(Query::new("DELETE FROM analytics_snapshots WHERE id < $1").bind(keep_from)).await?;
            Ok(id)
        }

        pub(crate) async fn latest_snapshot(c: &mut $Conn) -> Result<Option<crate::Snapshot>> {
            let row = c
                .fetch_optional(Query::new(
                    "SELECT id, computed_at, as_of, report FROM analytics_snapshots ORDER BY id DESC LIMIT 1",
                ))
                .await?;
            row.map(|r| {
                Ok(crate::Snapshot {
                    id: r.at(0)?,
                    computed_at: from_micros(r.at(1)?)?,
                    as_of: parse_date(&r.at::<String>(2)?)?,
                    report_json: r.at(3)?,
                })
            })
            .transpose()
        }

        fn figures_from_row(r: &Row) -> Result<crate::CustomerFigures> {
            Ok(crate::CustomerFigures {
                customer_id: CustomerId::from_key(r.get("customer_id")?),
                frequency: r.get::<i64>("frequency")? as u32,
                total_spend_minor: r.get("total_spend_minor")?,
                last_purchase: parse_date(&r.get::<String>("last_purchase")?)?,
                probability_alive: r.get("probability_alive")?,
                expected_purchases: r.get("expected_purchases")?,
                expected_value: r.get("expected_value")?,
                clv: r.get("clv")?,
                segment: r.get("segment")?,
                rfm: r.get("rfm")?,
                median_gap_days: r.get("median_gap_days")?,
                overdue: r.get::<i64>("overdue")? != 0,
                value_at_risk: r.get("value_at_risk")?,
            })
        }

        const FIGURE_COLUMNS: &str = "customer_id, frequency, total_spend_minor, last_purchase, probability_alive, \
             expected_purchases, expected_value, clv, segment, rfm, median_gap_days, overdue, value_at_risk";

        pub(crate) async fn customer_figures(
            c: &mut $Conn,
            snapshot_id: i64,
            customer: CustomerId,
        ) -> Result<Option<crate::CustomerFigures>> {
            let row = c.fetch_optional(Query::new(format!(
                "SELECT {FIGURE_COLUMNS} FROM customer_figures WHERE snapshot_id = $1 AND customer_id = $2"
            )).bind(snapshot_id).bind(customer.key())).await?;
            row.as_ref().map(figures_from_row).transpose()
        }

        pub(crate) async fn at_risk(c: &mut $Conn, snapshot_id: i64, limit: u32) -> Result<Vec<crate::CustomerFigures>> {
            let rows = c.fetch_all(Query::new(format!(
                "SELECT {FIGURE_COLUMNS} FROM customer_figures WHERE snapshot_id = $1 \
                 ORDER BY value_at_risk DESC, customer_id LIMIT $2"
            )).bind(snapshot_id).bind(i64::from(limit))).await?;
            rows.iter().map(figures_from_row).collect()
        }

        // ----- idempotency -----

        pub(crate) async fn store_idempotent_response(
            c: &mut $Conn,
            scope: &str,
            key: &str,
            request_hash: &str,
            status: u16,
            body: &str,
        ) -> Result<()> {
            let inserted = c.execute(Query::new("INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING",).bind(scope).bind(key).bind(request_hash).bind(i64::from(status)).bind(body).bind(micros(Utc::now()))).await?;
            if inserted == 0 { Err(StoreError::IdempotencyRace) } else { Ok(()) }
        }

        pub(crate) async fn idempotent_response(c: &mut $Conn, scope: &str, key: &str) -> Result<Option<StoredResponse>> {
            let row = c.fetch_optional(Query::new("SELECT request_hash, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2").bind(scope).bind(key)).await?;
            row.map(|r| {
                Ok(StoredResponse {
                    request_hash: r.get("request_hash")?,
                    status: r.get::<i64>("status")? as u16,
                    body: r.get("body")?,
                })
            })
            .transpose()
        }

        // ----- API keys -----

        pub(crate) async fn insert_api_key(
            c: &mut $Conn,
            prefix: &str,
            hash: &str,
            name: &str,
            role: Role,
            now: DateTime<Utc>,
        ) -> Result<ApiKey> {
            let row = c.fetch_one(Query::new("INSERT INTO api_keys (prefix, secret_hash, name, role, created_at) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id, prefix, secret_hash, name, role, created_at, revoked_at",).bind(prefix).bind(hash).bind(name).bind(role.as_str()).bind(micros(now))).await?;
            Ok(api_key_from_row(&row)?.0)
        }

        pub(crate) async fn api_key_by_prefix(c: &mut $Conn, prefix: &str) -> Result<Option<(ApiKey, String)>> {
            let row = c.fetch_optional(Query::new("SELECT id, prefix, secret_hash, name, role, created_at, revoked_at FROM api_keys WHERE prefix = $1",).bind(prefix)).await?;
            row.as_ref().map(api_key_from_row).transpose()
        }

        pub(crate) async fn api_keys(c: &mut $Conn) -> Result<Vec<ApiKey>> {
            let rows =
                c.fetch_all(Query::new("SELECT id, prefix, secret_hash, name, role, created_at, revoked_at FROM api_keys ORDER BY id")).await?;
            rows.iter().map(|r| api_key_from_row(r).map(|(k, _)| k)).collect()
        }

        pub(crate) async fn revoke_api_key(c: &mut $Conn, prefix: &str, now: DateTime<Utc>) -> Result<Option<ApiKey>> {
            c.execute(Query::new("UPDATE api_keys SET revoked_at = $1 WHERE prefix = $2 AND revoked_at IS NULL").bind(micros(now)).bind(prefix)).await?;
            Ok(api_key_by_prefix(c, prefix).await?.map(|(k, _)| k))
        }
    };
}

pub(crate) mod sqlite {
    define_ops!(crate::db::SqliteConn);

    pub(crate) mod ledger {
        define_ledger_ops!(crate::db::SqliteConn);
    }

    pub(crate) mod rewards {
        define_rewards_ops!(crate::db::SqliteConn);
    }
    pub(crate) mod tiers {
        define_tier_ops!(crate::db::SqliteConn);
    }
}

pub(crate) mod postgres {
    define_ops!(sqlx::PgConnection);

    pub(crate) mod ledger {
        define_ledger_ops!(sqlx::PgConnection);
    }

    pub(crate) mod rewards {
        define_rewards_ops!(sqlx::PgConnection);
    }
    pub(crate) mod tiers {
        define_tier_ops!(sqlx::PgConnection);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_fall_in_powers_of_two_after_the_full_ones() {
        let items: Vec<u32> = (0..1100).collect();
        let sizes: Vec<usize> = super::chunks(&items, 512).map(<[u32]>::len).collect();
        assert_eq!(sizes, [512, 512, 64, 8, 4]);
        let joined: Vec<u32> = super::chunks(&items, 512).flatten().copied().collect();
        assert_eq!(joined, items);
        assert_eq!(super::chunks(&items[..0], 512).count(), 0);
    }
}

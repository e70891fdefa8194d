//! Reads the generic format and column mappings (a mapping only renames the generic columns).

use chrono::{DateTime, Utc};
use csv::StringRecord;
use regulars_core::customer::{parse_birthday, parse_locale, parse_name, parse_time_zone};
use regulars_core::{
    Consent, Currency, CustomerDraft, CustomerRef, Email, ExternalId, FieldError, ImportedOrder, ImportedRefund, Money,
    OrderDraft, OrderLine, Phone, ProductDraft, RefundLine, Sku,
};

use super::{
    Col, CurrencyCache, Header, external_id, parse_amount, parse_amount_or_zero, parse_quantity, parse_time,
    parse_whole,
};
use crate::dates::TimestampParser;
use crate::error::IngestError;
use crate::format::{CONSTANT_FIELDS, ColumnMapping};

/// Where a generic field's value comes from.
#[derive(Debug, Clone)]
enum Source {
    Column(Col),
    Constant { value: String, name: String },
    Missing,
}

impl Source {
    fn get<'r>(&'r self, record: &'r StringRecord) -> &'r str {
        match self {
            Source::Column(col) => col.get(record),
            Source::Constant { value, .. } => value,
            Source::Missing => "",
        }
    }

    /// The name to report errors under: the file's column, or the mapped field for a constant.
    fn name(&self) -> &str {
        match self {
            Source::Column(col) => &col.name,
            Source::Constant { name, .. } => name,
            Source::Missing => "",
        }
    }
}

struct Columns {
    order_id: Source,
    customer_id: Source,
    email: Source,
    name: Source,
    phone: Source,
    birthday: Source,
    locale: Source,
    time_zone: Source,
    marketing_consent: Source,
    marketing_consent_at: Source,
    placed_at: Source,
    currency: Source,
    sku: Source,
    product_name: Source,
    category: Source,
    quantity: Source,
    unit_price: Source,
    discount: Source,
    refunded_quantity: Source,
    refunded_at: Source,
}

impl Columns {
    fn resolve(mut source: impl FnMut(&'static str) -> Result<Source, IngestError>) -> Result<Self, IngestError> {
        Ok(Columns {
            order_id: source("order_id")?,
            customer_id: source("customer_id")?,
            email: source("email")?,
            name: source("name")?,
            phone: source("phone")?,
            birthday: source("birthday")?,
            locale: source("locale")?,
            time_zone: source("time_zone")?,
            marketing_consent: source("marketing_consent")?,
            marketing_consent_at: source("marketing_consent_at")?,
            placed_at: source("placed_at")?,
            currency: source("currency")?,
            sku: source("sku")?,
            product_name: source("product_name")?,
            category: source("category")?,
            quantity: source("quantity")?,
            unit_price: source("unit_price")?,
            discount: source("discount")?,
            refunded_quantity: source("refunded_quantity")?,
            refunded_at: source("refunded_at")?,
        })
    }

    fn check_required(&self, format: &'static str) -> Result<(), IngestError> {
        let required = [
            ("order_id", &self.order_id),
            ("placed_at", &self.placed_at),
            ("currency", &self.currency),
            ("sku", &self.sku),
            ("quantity", &self.quantity),
            ("unit_price", &self.unit_price),
        ];
        for (field, source) in required {
            if matches!(source, Source::Missing) {
                return Err(IngestError::MissingColumn { format, column: field.to_owned() });
            }
        }
        if matches!(self.customer_id, Source::Missing) && matches!(self.email, Source::Missing) {
            return Err(IngestError::MissingColumn { format, column: "customer_id or email".to_owned() });
        }
        Ok(())
    }
}

/// Assembles generic rows into orders.
pub(crate) struct GenericAssembler {
    columns: Columns,
    dates: TimestampParser,
    currencies: CurrencyCache,
    // The order being assembled.
    order_id: Option<ExternalId>,
    customer: CustomerDraft,
    placed_at: DateTime<Utc>,
    currency: Option<Currency>,
    lines: Vec<OrderLine>,
    products: Vec<ProductDraft>,
    refunds: Vec<(DateTime<Utc>, Vec<RefundLine>)>,
}

impl GenericAssembler {
    /// The generic format: columns found by their generic names.
    pub fn generic(header: &Header, dates: TimestampParser) -> Result<Self, IngestError> {
        let columns = Columns::resolve(|field| Ok(header.find(&[field]).map_or(Source::Missing, Source::Column)))?;
        columns.check_required("generic")?;
        Ok(Self::with_columns(columns, dates))
    }

    /// A column mapping: only the mapped fields are read.
    pub fn mapped(header: &Header, mapping: &ColumnMapping, dates: TimestampParser) -> Result<Self, IngestError> {
        let columns = Columns::resolve(|field| match mapping.get(field) {
            None => Ok(Source::Missing),
            Some(value) => match header.find(&[value]) {
                Some(col) => Ok(Source::Column(col)),
                None if CONSTANT_FIELDS.contains(&field) => {
                    Ok(Source::Constant { value: value.to_owned(), name: format!("{field} (mapping constant)") })
                }
                None => Err(IngestError::BadMapping(format!("{field}={value}: the file has no column {value:?}"))),
            },
        })?;
        columns.check_required("mapped")?;
        Ok(Self::with_columns(columns, dates))
    }

    fn with_columns(columns: Columns, dates: TimestampParser) -> Self {
        GenericAssembler {
            columns,
            dates,
            currencies: CurrencyCache::default(),
            order_id: None,
            customer: CustomerDraft::default(),
            placed_at: DateTime::UNIX_EPOCH,
            currency: None,
            lines: Vec::new(),
            products: Vec::new(),
            refunds: Vec::new(),
        }
    }

    fn start_order(&mut self, record: &StringRecord) -> Result<(), FieldError> {
        let c = &self.columns;
        self.order_id = None;
        self.lines.clear();
        self.products.clear();
        self.refunds.clear();
        self.customer = CustomerDraft::default();
        let order_id = external_id(c.order_id.name(), c.order_id.get(record))?;
        self.placed_at = parse_time(c.placed_at.name(), &self.dates, c.placed_at.get(record))?;
        self.currency = Some(self.currencies.parse(c.currency.name(), c.currency.get(record))?);

        let email_raw = c.email.get(record);
        let email = if email_raw.is_empty() { None } else { Some(Email::parse(c.email.name(), email_raw)?) };
        let customer_raw = c.customer_id.get(record);
        let customer_id = if !customer_raw.is_empty() {
            external_id(c.customer_id.name(), customer_raw)?
        } else if let Some(email) = &email {
            external_id(c.email.name(), email.as_str())?
        } else {
            let column = if matches!(c.customer_id, Source::Missing) { c.email.name() } else { c.customer_id.name() };
            return Err(FieldError::new(column, "must not be empty: a row needs a customer id or an e-mail"));
        };
        fn non_empty<'r>(source: &'r Source, record: &'r StringRecord) -> Option<&'r str> {
            let raw = source.get(record);
            (!raw.is_empty()).then_some(raw)
        }
        let optional = |source| non_empty(source, record);
        let name = optional(&c.name).map(|raw| parse_name(c.name.name(), raw)).transpose()?;
        let phone = optional(&c.phone).map(|raw| Phone::parse(c.phone.name(), raw)).transpose()?;
        let birthday = optional(&c.birthday)
            .map(|raw| parse_birthday(c.birthday.name(), raw, self.placed_at.date_naive()))
            .transpose()?;
        let locale = optional(&c.locale).map(|raw| parse_locale(c.locale.name(), raw)).transpose()?;
        let time_zone = optional(&c.time_zone).map(|raw| parse_time_zone(c.time_zone.name(), raw)).transpose()?;
        let consent_raw = optional(&c.marketing_consent);
        let marketing = consent_raw.map(|raw| parse_bool(c.marketing_consent.name(), raw)).transpose()?;
        let recorded_at = optional(&c.marketing_consent_at)
            .map(|raw| parse_time(c.marketing_consent_at.name(), &self.dates, raw))
            .transpose()?;
        self.customer = CustomerDraft {
            external_id: Some(customer_id),
            email,
            phone,
            name,
            birthday,
            locale,
            time_zone,
            consent: Consent {
                marketing: marketing.unwrap_or(false),
                recorded_at,
                source: (marketing.is_some() || recorded_at.is_some()).then(|| "import".to_owned()),
            },
            attributes: Default::default(),
        };
        self.order_id = Some(order_id);
        Ok(())
    }

    fn add_line(&mut self, record: &StringRecord) -> Result<(), FieldError> {
        let c = &self.columns;
        let currency = self.currency.expect("set by start_order");
        let sku = Sku::parse(c.sku.name(), c.sku.get(record))?;
        let product_name = c.product_name.get(record);
        let quantity = parse_quantity(c.quantity.name(), c.quantity.get(record))?;
        let unit_price = parse_amount(c.unit_price.name(), currency, c.unit_price.get(record))?;
        let discount = parse_amount_or_zero(c.discount.name(), currency, c.discount.get(record))?;
        let name = (!product_name.is_empty()).then(|| product_name.to_owned());
        let line = OrderLine::new(sku, name, quantity, unit_price, discount).map_err(|e| match e.field.as_str() {
            "discount_minor" => FieldError::new(c.discount.name(), e.message),
            "quantity" => FieldError::new(c.quantity.name(), e.message),
            _ => FieldError::new(c.unit_price.name(), e.message),
        })?;
        let refunded_raw = c.refunded_quantity.get(record);
        if !refunded_raw.is_empty() {
            let refunded = parse_whole(c.refunded_quantity.name(), refunded_raw)?;
            if refunded < 0 || refunded > i64::from(quantity.get()) {
                return Err(FieldError::new(
                    c.refunded_quantity.name(),
                    format!("must be between 0 and the quantity {}, got {refunded}", quantity.get()),
                ));
            }
            if refunded > 0 {
                let refunded_at =
                    parse_time(c.refunded_at.name(), &self.dates, c.refunded_at.get(record)).map_err(|e| {
                        FieldError::new(c.refunded_at.name(), format!("{} (the line is refunded)", e.message))
                    })?;
                let refund_line = RefundLine {
                    line: self.lines.len(),
                    quantity: refunded as u32,
                    amount_minor: line.refund_minor(refunded as u32),
                };
                match self.refunds.iter_mut().find(|(at, _)| *at == refunded_at) {
                    Some((_, lines)) => lines.push(refund_line),
                    None => self.refunds.push((refunded_at, vec![refund_line])),
                }
            }
        }
        if !self.products.iter().any(|p| p.sku == line.sku) {
            let category = c.category.get(record);
            self.products.push(ProductDraft {
                sku: line.sku.clone(),
                name: if product_name.is_empty() { line.sku.as_str().to_owned() } else { product_name.to_owned() },
                category: (!category.is_empty()).then(|| category.to_owned()),
                price: Some(Money::new(unit_price, currency)),
            });
        }
        self.lines.push(line);
        Ok(())
    }
}

impl super::Assemble for GenericAssembler {
    fn key(&self, record: &StringRecord, key: &mut String) -> Result<(), FieldError> {
        let raw = self.columns.order_id.get(record);
        if raw.is_empty() {
            return Err(FieldError::new(self.columns.order_id.name(), "must not be empty"));
        }
        key.push_str(raw);
        Ok(())
    }

    fn add(&mut self, _line_number: u64, record: &StringRecord, first: bool) -> Result<(), FieldError> {
        if first {
            self.start_order(record)?;
        }
        self.add_line(record)
    }

    fn finish(&mut self, line_number: u64) -> Result<Option<ImportedOrder>, FieldError> {
        let order_id = self.order_id.take().expect("finish follows add");
        let customer = std::mem::take(&mut self.customer);
        let customer_ref = CustomerRef::External(customer.external_id.clone().expect("always set"));
        let mut refunds = Vec::with_capacity(self.refunds.len());
        for (i, (refunded_at, lines)) in self.refunds.drain(..).enumerate() {
            let id = if i == 0 { format!("{order_id}-refund") } else { format!("{order_id}-refund-{}", i + 1) };
            refunds.push(ImportedRefund {
                external_id: external_id(self.columns.order_id.name(), &id)?,
                refunded_at,
                lines,
            });
        }
        let order = OrderDraft::new(
            Some(order_id),
            customer_ref,
            self.placed_at,
            self.currency.expect("set by start_order"),
            std::mem::take(&mut self.lines),
        )?;
        Ok(Some(ImportedOrder { line_number, customer, order, products: std::mem::take(&mut self.products), refunds }))
    }
}

/// `true`/`yes`/`y`/`1` or `false`/`no`/`n`/`0`, any case.
pub(crate) fn parse_bool(column: &str, raw: &str) -> Result<bool, FieldError> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        _ => Err(FieldError::new(column, format!("{raw:?} is not true or false"))),
    }
}

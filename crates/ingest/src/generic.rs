//! The generic format: the CSV `regulars demo --csv` writes and the simplest way to bring any shop's history
//! in. One row per order line; the header names the columns, in any order; unknown columns are ignored.
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `order_id` | yes | the order's id in the shop; rows of one order are adjacent |
//! | `customer_id` | unless `email` | the customer's id in the shop (else the lower-cased e-mail is the id) |
//! | `email`, `name`, `phone` | no | the customer's contact details |
//! | `birthday` | no | `YYYY-MM-DD` |
//! | `locale`, `time_zone` | no | a language tag (`de-CH`) and an IANA zone (`Europe/Zurich`) |
//! | `marketing_consent` | no | `true`/`false` (also `yes`/`no`, `1`/`0`); empty is false |
//! | `marketing_consent_at` | no | when consent was given |
//! | `placed_at` | yes | when the order was placed (any shape of [`crate::dates`]) |
//! | `currency` | yes | ISO 4217 code |
//! | `sku` | yes | the product's code |
//! | `product_name`, `category` | no | the product's name and category |
//! | `quantity` | yes | whole items, at least 1 |
//! | `unit_price` | yes | price of one item in major units (`3.50`), exact to the currency's minor unit |
//! | `discount` | no | discount on the whole line, major units; empty is 0 |
//! | `refunded_quantity` | no | items of this line refunded, 0 to `quantity`; empty is 0 |
//! | `refunded_at` | if refunded | when they were refunded |
//!
//! The customer and order columns (`customer_id` to `marketing_consent_at`, `placed_at`, `currency`) are read
//! from the first row of an order; later rows may repeat them or leave them empty. The order's external id is
//! `order_id`. Refunded lines with the same `refunded_at` form one refund; the refunds of an order get the
//! external ids `<order_id>-refund`, `<order_id>-refund-2`, ... in the order of their first row, so a
//! re-import produces the same ids. A refund's amount is the refunded items' share of the line's net amount.
//! Products are created from `sku`, `product_name` (else the SKU), `category` and `unit_price`.

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use regulars_core::{Currency, ImportedOrder};

/// The columns of the generic format, in the order [`GenericCsvWriter`] writes them.
pub const GENERIC_HEADER: [&str; 20] = [
    "order_id",
    "customer_id",
    "email",
    "name",
    "phone",
    "birthday",
    "locale",
    "time_zone",
    "marketing_consent",
    "marketing_consent_at",
    "placed_at",
    "currency",
    "sku",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "discount",
    "refunded_quantity",
    "refunded_at",
];

/// Writes orders as generic CSV, one row per order line, header first.
///
/// Customer details are written on the first row of each order only. A line refunded by several refunds is
/// written once with the total refunded quantity and the time of the latest of them (the generic format has
/// one refund time per line), so such an order reads back with one refund for that line.
pub struct GenericCsvWriter<W: Write> {
    csv: csv::Writer<W>,
    buf: String,
}

impl<W: Write> GenericCsvWriter<W> {
    /// Wraps `writer` (buffered internally) and writes the header.
    pub fn new(writer: W) -> io::Result<Self> {
        let mut csv = csv::WriterBuilder::new().buffer_capacity(256 * 1024).from_writer(writer);
        csv.write_record(GENERIC_HEADER).map_err(into_io)?;
        Ok(GenericCsvWriter { csv, buf: String::with_capacity(64) })
    }

    /// Writes the rows of one order. The order must have an external id.
    pub fn write_order(&mut self, imported: &ImportedOrder) -> io::Result<()> {
        let order = &imported.order;
        let Some(order_id) = &order.external_id else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "an order without an external id"));
        };
        let customer = &imported.customer;
        let customer_id = customer.external_id.as_ref().map_or("", |id| id.as_str());
        let placed_at = timestamp(order.placed_at);
        let currency = order.currency;
        for (i, line) in order.lines.iter().enumerate() {
            let first = i == 0;
            let w = &mut self.csv;
            w.write_field(order_id.as_str()).map_err(into_io)?;
            w.write_field(customer_id).map_err(into_io)?;
            if first {
                w.write_field(customer.email.as_ref().map_or("", |e| e.as_str())).map_err(into_io)?;
                w.write_field(customer.name.as_deref().unwrap_or("")).map_err(into_io)?;
                w.write_field(customer.phone.as_ref().map_or("", |p| p.as_str())).map_err(into_io)?;
                let birthday = customer.birthday.map(|b| b.format("%Y-%m-%d").to_string());
                w.write_field(birthday.as_deref().unwrap_or("")).map_err(into_io)?;
                w.write_field(customer.locale.as_deref().unwrap_or("")).map_err(into_io)?;
                w.write_field(customer.time_zone.as_deref().unwrap_or("")).map_err(into_io)?;
                w.write_field(if customer.consent.marketing { "true" } else { "false" }).map_err(into_io)?;
                let consent_at = customer.consent.recorded_at.map(timestamp);
                w.write_field(consent_at.as_deref().unwrap_or("")).map_err(into_io)?;
            } else {
                for _ in 0..8 {
                    w.write_field("").map_err(into_io)?;
                }
            }
            w.write_field(&placed_at).map_err(into_io)?;
            w.write_field(currency.code()).map_err(into_io)?;
            w.write_field(line.sku.as_str()).map_err(into_io)?;
            let product = imported.products.iter().find(|p| p.sku == line.sku);
            w.write_field(line.name.as_deref().or(product.map(|p| p.name.as_str())).unwrap_or("")).map_err(into_io)?;
            w.write_field(product.and_then(|p| p.category.as_deref()).unwrap_or("")).map_err(into_io)?;
            integer(&mut self.buf, line.quantity.get());
            w.write_field(&self.buf).map_err(into_io)?;
            major(&mut self.buf, line.unit_price_minor, currency);
            w.write_field(&self.buf).map_err(into_io)?;
            if line.discount_minor == 0 {
                w.write_field("").map_err(into_io)?;
            } else {
                major(&mut self.buf, line.discount_minor, currency);
                w.write_field(&self.buf).map_err(into_io)?;
            }
            let mut refunded_quantity = 0u32;
            let mut refunded_at: Option<DateTime<Utc>> = None;
            for refund in &imported.refunds {
                for refund_line in refund.lines.iter().filter(|l| l.line == i) {
                    refunded_quantity += refund_line.quantity;
                    refunded_at = refunded_at.max(Some(refund.refunded_at));
                }
            }
            if refunded_quantity == 0 {
                w.write_field("").map_err(into_io)?;
                w.write_field("").map_err(into_io)?;
            } else {
                integer(&mut self.buf, refunded_quantity);
                w.write_field(&self.buf).map_err(into_io)?;
                w.write_field(refunded_at.map(timestamp).unwrap_or_default()).map_err(into_io)?;
            }
            w.write_record(None::<&[u8]>).map_err(into_io)?;
        }
        Ok(())
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|e| e.into_error())
    }
}

fn into_io(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// RFC 3339 in UTC with `Z`, fractional seconds only when there are some.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn integer(buf: &mut String, n: u32) {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(buf, "{n}");
}

/// Writes `minor` in major units with the currency's number of decimals (`1250` EUR → `12.50`).
pub(crate) fn major(buf: &mut String, minor: i64, currency: Currency) {
    use std::fmt::Write as _;
    buf.clear();
    let digits = u32::from(currency.minor_digits());
    if digits == 0 {
        let _ = write!(buf, "{minor}");
        return;
    }
    let scale = 10u64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let _ = write!(buf, "{sign}{}.{:0width$}", abs / scale, abs % scale, width = digits as usize);
}

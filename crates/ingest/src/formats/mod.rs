//! The readers of each format, and what they share: finding columns by header name and parsing the values
//! every format has (quantities, amounts, timestamps, currencies).
//!
//! Each format is an [`Assemble`]: the [`crate::OrderReader`] hands it the rows of one order, one at a time,
//! and asks it for the finished order when the next row belongs to another.

pub(crate) mod cdnow;
pub(crate) mod generic;
pub(crate) mod shopify;
pub(crate) mod stripe;
pub(crate) mod woocommerce;

use chrono::{DateTime, Utc};
use csv::StringRecord;
use regulars_core::{
    Currency, ExternalId, FieldError, ImportedOrder, ImportedRefund, Money, OrderLine, ProductDraft, Quantity,
    RefundLine, Sku,
};

use crate::dates::TimestampParser;
use crate::error::IngestError;

/// Turns the rows of one order into an [`ImportedOrder`].
pub(crate) trait Assemble: Send {
    /// Writes into `key` the key of the order `record` belongs to (rows with equal keys are one order).
    fn key(&self, record: &StringRecord, key: &mut String) -> Result<(), FieldError>;
    /// Adds a row to the order; `first` starts a new order (forget the previous one).
    fn add(&mut self, line_number: u64, record: &StringRecord, first: bool) -> Result<(), FieldError>;
    /// The finished order, `None` when it is skipped on purpose (cancelled, failed).
    fn finish(&mut self, line_number: u64) -> Result<Option<ImportedOrder>, FieldError>;
}

/// The header of a CSV file, for finding columns by name.
pub(crate) struct Header {
    names: Vec<String>,
}

impl Header {
    pub fn new(record: &StringRecord) -> Self {
        Header { names: record.iter().map(|n| n.trim().to_owned()).collect() }
    }

    /// The first column whose name equals one of `aliases` (case-insensitively).
    pub fn find(&self, aliases: &[&str]) -> Option<Col> {
        aliases.iter().find_map(|alias| {
            self.names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(alias))
                .map(|index| Col { index, name: self.names[index].clone() })
        })
    }

    pub fn require(&self, format: &'static str, aliases: &[&str]) -> Result<Col, IngestError> {
        self.find(aliases).ok_or_else(|| IngestError::MissingColumn { format, column: aliases.join(" or ") })
    }
}

/// A column of the file: where it is and what it is called (for error messages).
#[derive(Debug, Clone)]
pub(crate) struct Col {
    pub index: usize,
    pub name: String,
}

impl Col {
    /// The trimmed value of this column in `record` ("" when the row is short).
    pub fn get<'r>(&self, record: &'r StringRecord) -> &'r str {
        record.get(self.index).unwrap_or("").trim()
    }
}

/// The trimmed value of an optional column ("" when the file has no such column).
pub(crate) fn get<'r>(col: &Option<Col>, record: &'r StringRecord) -> &'r str {
    col.as_ref().map_or("", |c| c.get(record))
}

/// Parses currency codes, remembering the last one (files rarely change currency).
#[derive(Default)]
pub(crate) struct CurrencyCache {
    raw: String,
    currency: Option<Currency>,
}

impl CurrencyCache {
    pub fn parse(&mut self, column: &str, raw: &str) -> Result<Currency, FieldError> {
        if let Some(currency) = self.currency
            && self.raw == raw
        {
            return Ok(currency);
        }
        if raw.is_empty() {
            return Err(FieldError::new(column, "must not be empty"));
        }
        let currency = Currency::parse(column, raw)?;
        self.raw.clear();
        self.raw.push_str(raw);
        self.currency = Some(currency);
        Ok(currency)
    }
}

/// A whole number of items, at least one. `2.0` is accepted; `2.5` is not.
pub(crate) fn parse_quantity(column: &str, raw: &str) -> Result<Quantity, FieldError> {
    Quantity::new(column, parse_whole(column, raw)?)
}

/// A whole number, possibly negative, possibly written with a zero fraction (`3.00`).
pub(crate) fn parse_whole(column: &str, raw: &str) -> Result<i64, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(column, "must not be empty"));
    }
    let digits = match raw.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        _ => raw,
    };
    digits.parse::<i64>().map_err(|_| FieldError::new(column, format!("{raw:?} is not a whole number")))
}

/// An amount in major units (`12.50`), not negative, converted exactly to minor units.
pub(crate) fn parse_amount(column: &str, currency: Currency, raw: &str) -> Result<i64, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(column, "must not be empty"));
    }
    let minor = currency.parse_major(column, raw)?;
    if minor < 0 {
        return Err(FieldError::new(column, format!("must not be negative, got {raw}")));
    }
    Ok(minor)
}

/// An optional amount: empty is zero.
pub(crate) fn parse_amount_or_zero(column: &str, currency: Currency, raw: &str) -> Result<i64, FieldError> {
    if raw.is_empty() { Ok(0) } else { parse_amount(column, currency, raw) }
}

pub(crate) fn parse_time(column: &str, dates: &TimestampParser, raw: &str) -> Result<DateTime<Utc>, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(column, "must not be empty"));
    }
    dates.parse(raw).map_err(|message| FieldError::new(column, message))
}

pub(crate) fn external_id(column: &str, raw: &str) -> Result<ExternalId, FieldError> {
    ExternalId::parse(column, raw)
}

/// A SKU made from a product name when the export has none: the name, cut to the 64 characters a SKU may have.
pub(crate) fn sku_or_name(column: &str, sku: &str, name: &str) -> Result<Sku, FieldError> {
    if !sku.is_empty() {
        return Sku::parse(column, sku);
    }
    let cut: String = name.chars().map(|c| if c.is_control() { ' ' } else { c }).take(64).collect();
    Sku::parse(column, &cut).map_err(|_| FieldError::new(column, "is empty and the line item has no name either"))
}

/// One line worth exactly `total_minor` for `quantity` items: the unit price rounded up, the difference
/// recorded as a discount, so that the line's net amount is exact.
pub(crate) fn line_with_total(
    sku: Sku,
    name: Option<String>,
    quantity: Quantity,
    total_minor: i64,
) -> Result<OrderLine, FieldError> {
    let q = i64::from(quantity.get());
    let unit = (total_minor + q - 1) / q;
    OrderLine::new(sku, name, quantity, unit, unit * q - total_minor)
}

/// The products named by `lines`, once per SKU, with the line's name (or the SKU) and unit price.
pub(crate) fn products_of(lines: &[OrderLine], currency: Currency) -> Vec<ProductDraft> {
    let mut products: Vec<ProductDraft> = Vec::with_capacity(lines.len());
    for line in lines {
        if products.iter().any(|p| p.sku == line.sku) {
            continue;
        }
        products.push(ProductDraft {
            sku: line.sku.clone(),
            name: line.name.clone().unwrap_or_else(|| line.sku.as_str().to_owned()),
            category: None,
            price: Some(Money::new(line.unit_price_minor, currency)),
        });
    }
    products
}

/// A refund of everything on the order.
pub(crate) fn whole_refund(external_id: ExternalId, refunded_at: DateTime<Utc>, lines: &[OrderLine]) -> ImportedRefund {
    ImportedRefund {
        external_id,
        refunded_at,
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, line)| RefundLine { line: i, quantity: line.quantity.get(), amount_minor: line.net_minor() })
            .collect(),
    }
}

/// A refund of whole items worth at most `amount_minor`, taken from the last line backwards: the best an
/// export that only gives a refunded amount allows. Empty when not even one item fits.
pub(crate) fn refund_up_to(lines: &[OrderLine], amount_minor: i64) -> Vec<RefundLine> {
    let mut left = amount_minor;
    let mut refund = Vec::new();
    for (i, line) in lines.iter().enumerate().rev() {
        let mut quantity = 0;
        while quantity < line.quantity.get() && line.refund_minor(quantity + 1) <= left {
            quantity += 1;
        }
        if quantity > 0 {
            let amount = line.refund_minor(quantity);
            left -= amount;
            refund.push(RefundLine { line: i, quantity, amount_minor: amount });
        }
    }
    refund.reverse();
    refund
}

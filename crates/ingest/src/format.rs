//! Which export format a file is in, and column mappings for files in no known format.
//!
//! # Column mappings
//!
//! A mapping reads any one-row-per-order-line CSV as if it were the [generic](crate::generic) format. It is a
//! comma-separated list of `field=Column` pairs, where `field` is a generic column name and `Column` is the
//! header of the file's column that holds it:
//!
//! ```text
//! order_id=Order Number,customer_id=Email,placed_at=Date,sku=SKU,quantity=Qty,unit_price=Price,currency=EUR
//! ```
//!
//! - Spaces around names are ignored; header names are matched case-insensitively. A column name that
//!   contains `,` or `=` is written in double quotes: `product_name="Item, as sold"`.
//! - Only the mapped fields are read; other columns are ignored.
//! - `order_id`, `placed_at`, `currency`, `sku`, `quantity`, `unit_price` and one of `customer_id` / `email`
//!   are required.
//! - For `currency`, `category`, `locale`, `time_zone` and `marketing_consent`, a value that is not a column
//!   of the file is a constant used for every row (`currency=EUR` above). For the other fields a value that is
//!   not a column is an error, so a misspelt column never silently becomes a constant.

use std::fmt;
use std::str::FromStr;

use crate::error::IngestError;
use crate::generic::GENERIC_HEADER;

/// The format of an input file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Format {
    /// Recognise the format from the header (or, for CDNOW, from the shape of the first line).
    #[default]
    Auto,
    Generic,
    Cdnow,
    Shopify,
    WooCommerce,
    Stripe,
    Mapping(ColumnMapping),
}

impl Format {
    /// The name used on the command line (`mapping` for a column mapping).
    pub fn name(&self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Generic => "generic",
            Format::Cdnow => "cdnow",
            Format::Shopify => "shopify",
            Format::WooCommerce => "woocommerce",
            Format::Stripe => "stripe",
            Format::Mapping(_) => "mapping",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Mapping(mapping) => write!(f, "{mapping}"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for Format {
    type Err = IngestError;

    /// A format name, or a column mapping (anything containing `=`).
    fn from_str(raw: &str) -> Result<Self, IngestError> {
        if raw.contains('=') {
            return raw.parse().map(Format::Mapping);
        }
        match raw.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Format::Auto),
            "generic" => Ok(Format::Generic),
            "cdnow" => Ok(Format::Cdnow),
            "shopify" => Ok(Format::Shopify),
            "woocommerce" | "woo" => Ok(Format::WooCommerce),
            "stripe" => Ok(Format::Stripe),
            _ => Err(IngestError::UnknownFormatName(raw.to_owned())),
        }
    }
}

/// Generic fields that may be given a constant in a mapping.
pub(crate) const CONSTANT_FIELDS: &[&str] = &["currency", "category", "locale", "time_zone", "marketing_consent"];

/// A mapping from generic field names to the columns of a file (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMapping {
    /// `(generic field, column name or constant)`, in the order written.
    pub(crate) entries: Vec<(String, String)>,
}

impl ColumnMapping {
    /// The column (or constant) mapped to a generic field.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.entries.iter().find(|(f, _)| f == field).map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for ColumnMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (field, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if value.contains([',', '=']) {
                write!(f, "{field}=\"{value}\"")?;
            } else {
                write!(f, "{field}={value}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for ColumnMapping {
    type Err = IngestError;

    fn from_str(raw: &str) -> Result<Self, IngestError> {
        let bad = |m: String| IngestError::BadMapping(m);
        let mut entries: Vec<(String, String)> = Vec::new();
        for pair in split_outside_quotes(raw) {
            if pair.trim().is_empty() {
                continue;
            }
            let Some((field, value)) = pair.split_once('=') else {
                return Err(bad(format!("{:?} is not field=Column", pair.trim())));
            };
            let field = field.trim().to_ascii_lowercase();
            let value = value.trim();
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value).trim();
            if !GENERIC_HEADER.contains(&field.as_str()) {
                return Err(bad(format!("unknown field {field:?}: expected one of {}", GENERIC_HEADER.join(", "))));
            }
            if value.is_empty() {
                return Err(bad(format!("{field} has no column name")));
            }
            if entries.iter().any(|(f, _)| *f == field) {
                return Err(bad(format!("{field} is mapped twice")));
            }
            entries.push((field, value.to_owned()));
        }
        let mapping = ColumnMapping { entries };
        for required in ["order_id", "placed_at", "currency", "sku", "quantity", "unit_price"] {
            if mapping.get(required).is_none() {
                return Err(bad(format!("{required} is required")));
            }
        }
        if mapping.get("customer_id").is_none() && mapping.get("email").is_none() {
            return Err(bad("customer_id or email is required".to_owned()));
        }
        Ok(mapping)
    }
}

fn split_outside_quotes(raw: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in raw.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&raw[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_parse_and_print_back() {
        let raw = "order_id=Order Number, customer_id=Email,placed_at=Date,sku=SKU,quantity=Qty,\
                   unit_price=Price,currency=EUR,product_name=\"Item, as sold\"";
        let Format::Mapping(mapping) = raw.parse::<Format>().unwrap() else { panic!("a mapping") };
        assert_eq!(mapping.get("order_id"), Some("Order Number"));
        assert_eq!(mapping.get("product_name"), Some("Item, as sold"));
        assert_eq!(mapping.to_string().parse::<ColumnMapping>().unwrap(), mapping);
    }

    #[test]
    fn bad_mappings_say_what_is_wrong() {
        let message = |raw: &str| raw.parse::<ColumnMapping>().unwrap_err().to_string();
        assert!(message("order_id=A,colour=B").contains("unknown field \"colour\""));
        assert!(message("order_id=A").contains("placed_at is required"));
        assert!(message("order_id=A,order_id=B").contains("mapped twice"));
        assert!(message("order_id").contains("not field=Column"));
        assert!("csv".parse::<Format>().is_err());
        assert_eq!("Shopify".parse::<Format>().unwrap(), Format::Shopify);
    }
}

//! WooCommerce order exports ("Order Export" CSVs with one row per line item). No sample file was available;
//! this follows the publicly documented column names and accepts the common variants of each, matched
//! case-insensitively. The test fixture `tests/fixtures/woocommerce_orders.csv` was constructed by hand.
//!
//! | meaning | accepted headers |
//! |---|---|
//! | order (required) | `Order ID`, `Order Number`, `Order #` |
//! | placed at (required) | `Order Date`, `Date` |
//! | status | `Order Status`, `Status` |
//! | currency (required) | `Order Currency`, `Currency` |
//! | e-mail | `Billing Email`, `Billing Email Address`, `Email (Billing)`, `Customer Email` |
//! | name | `Billing First Name` + `Billing Last Name` (or `First Name (Billing)` + `Last Name (Billing)`) |
//! | phone | `Billing Phone`, `Phone (Billing)` |
//! | customer number | `Customer User ID`, `Customer ID` |
//! | SKU | `Item SKU`, `SKU` (else the item name) |
//! | item name | `Item Name`, `Product Name` |
//! | quantity (required) | `Quantity`, `Item Quantity`, `Qty` |
//! | unit price | `Item Cost`, `Item Price` |
//! | line total | `Line Total`, `Item Total` |
//!
//! One of unit price and line total is required. With both, the difference between unit price x quantity
//! and the line total is the line's discount; with only the line total, the unit price is the total divided
//! by the quantity rounded up, the rounding recorded as a discount, so the line's amount is exact.
//!
//! The order's external id is `woocommerce-<order>`. The customer key is the lower-cased e-mail, else
//! `woocommerce-customer-<customer number>` (when it is not 0, WooCommerce's guest), else a customer of
//! its own, `woocommerce-guest-<order>`. Statuses (`wc-` prefix ignored): `refunded` imports the order
//! with a whole refund dated at the order date (the export has no refund date; partial refunds are not in
//! the documented columns and are not read); `cancelled`, `failed`, `pending` (unpaid), `checkout-draft` and
//! `trash` are skipped; everything else (completed, processing, on-hold) is imported.

use chrono::{DateTime, Utc};
use csv::StringRecord;
use regulars_core::customer::parse_name;
use regulars_core::{
    Currency, CustomerDraft, CustomerRef, Email, ExternalId, FieldError, ImportedOrder, OrderDraft, OrderLine, Phone,
};

use super::{
    Col, CurrencyCache, Header, external_id, get, line_with_total, parse_amount, parse_quantity, parse_time,
    products_of, sku_or_name, whole_refund,
};
use crate::dates::TimestampParser;
use crate::error::IngestError;

struct Columns {
    order: Col,
    date: Col,
    status: Option<Col>,
    currency: Col,
    email: Option<Col>,
    first_name: Option<Col>,
    last_name: Option<Col>,
    phone: Option<Col>,
    customer_number: Option<Col>,
    sku: Option<Col>,
    item_name: Option<Col>,
    quantity: Col,
    unit_price: Option<Col>,
    line_total: Option<Col>,
}

pub(crate) struct WooAssembler {
    columns: Columns,
    dates: TimestampParser,
    currencies: CurrencyCache,
    order_id: Option<ExternalId>,
    number: String,
    customer: CustomerDraft,
    currency: Option<Currency>,
    placed_at: DateTime<Utc>,
    status: String,
    lines: Vec<OrderLine>,
}

impl WooAssembler {
    pub fn new(header: &Header, dates: TimestampParser) -> Result<Self, IngestError> {
        let f = "woocommerce";
        let columns = Columns {
            order: header.require(f, &["Order ID", "Order Number", "Order #"])?,
            date: header.require(f, &["Order Date", "Date"])?,
            status: header.find(&["Order Status", "Status"]),
            currency: header.require(f, &["Order Currency", "Currency"])?,
            email: header.find(&["Billing Email", "Billing Email Address", "Email (Billing)", "Customer Email"]),
            first_name: header.find(&["Billing First Name", "First Name (Billing)"]),
            last_name: header.find(&["Billing Last Name", "Last Name (Billing)"]),
            phone: header.find(&["Billing Phone", "Phone (Billing)"]),
            customer_number: header.find(&["Customer User ID", "Customer ID"]),
            sku: header.find(&["Item SKU", "SKU"]),
            item_name: header.find(&["Item Name", "Product Name"]),
            quantity: header.require(f, &["Quantity", "Item Quantity", "Qty"])?,
            unit_price: header.find(&["Item Cost", "Item Price"]),
            line_total: header.find(&["Line Total", "Item Total"]),
        };
        if columns.unit_price.is_none() && columns.line_total.is_none() {
            return Err(IngestError::MissingColumn { format: f, column: "Item Cost or Line Total".to_owned() });
        }
        if columns.sku.is_none() && columns.item_name.is_none() {
            return Err(IngestError::MissingColumn { format: f, column: "Item SKU or Item Name".to_owned() });
        }
        Ok(WooAssembler {
            columns,
            dates,
            currencies: CurrencyCache::default(),
            order_id: None,
            number: String::new(),
            customer: CustomerDraft::default(),
            currency: None,
            placed_at: DateTime::UNIX_EPOCH,
            status: String::new(),
            lines: Vec::new(),
        })
    }

    fn start(&mut self, record: &StringRecord) -> Result<(), FieldError> {
        let c = &self.columns;
        self.lines.clear();
        self.number = c.order.get(record).trim_start_matches('#').to_owned();
        self.order_id = Some(external_id(&c.order.name, &format!("woocommerce-{}", self.number))?);
        self.currency = Some(self.currencies.parse(&c.currency.name, c.currency.get(record))?);
        self.placed_at = parse_time(&c.date.name, &self.dates, c.date.get(record))?;
        self.status = get(&c.status, record).to_ascii_lowercase().trim_start_matches("wc-").to_owned();
        let email = match (&c.email, get(&c.email, record)) {
            (Some(col), raw) if !raw.is_empty() => Some(Email::parse(&col.name, raw)?),
            _ => None,
        };
        let customer_number = get(&c.customer_number, record);
        let customer_id = match &email {
            Some(email) => external_id("email", email.as_str())?,
            None if !customer_number.is_empty() && customer_number != "0" => external_id(
                c.customer_number.as_ref().map_or("", |col| col.name.as_str()),
                &format!("woocommerce-customer-{customer_number}"),
            )?,
            None => external_id(&c.order.name, &format!("woocommerce-guest-{}", self.number))?,
        };
        let full_name = format!("{} {}", get(&c.first_name, record), get(&c.last_name, record));
        self.customer = CustomerDraft {
            external_id: Some(customer_id),
            email,
            name: parse_name("Billing First Name", &full_name).ok(),
            phone: Phone::parse("Billing Phone", get(&c.phone, record)).ok(),
            ..CustomerDraft::default()
        };
        Ok(())
    }

    fn add_line(&mut self, record: &StringRecord) -> Result<(), FieldError> {
        let c = &self.columns;
        let currency = self.currency.expect("set by start");
        let item_name = get(&c.item_name, record);
        let sku_column = c.sku.as_ref().or(c.item_name.as_ref()).map_or("Item SKU", |col| col.name.as_str());
        let sku = sku_or_name(sku_column, get(&c.sku, record), item_name)?;
        let quantity = parse_quantity(&c.quantity.name, c.quantity.get(record))?;
        let name = (!item_name.is_empty()).then(|| item_name.to_owned());
        let unit_price = match &c.unit_price {
            Some(col) if !col.get(record).is_empty() || c.line_total.is_none() => {
                Some(parse_amount(&col.name, currency, col.get(record))?)
            }
            _ => None,
        };
        let line_total = match &c.line_total {
            Some(col) if !col.get(record).is_empty() || unit_price.is_none() => {
                Some((col, parse_amount(&col.name, currency, col.get(record))?))
            }
            _ => None,
        };
        let line = match (unit_price, line_total) {
            (Some(unit), Some((col, total))) => {
                let discount = (unit * i64::from(quantity.get()) - total).max(0);
                OrderLine::new(sku, name, quantity, unit, discount).map_err(|e| FieldError::new(&col.name, e.message))
            }
            (Some(unit), None) => OrderLine::new(sku, name, quantity, unit, 0)
                .map_err(|e| FieldError::new(c.unit_price.as_ref().map_or("", |col| col.name.as_str()), e.message)),
            (None, Some((col, total))) => {
                line_with_total(sku, name, quantity, total).map_err(|e| FieldError::new(&col.name, e.message))
            }
            (None, None) => unreachable!("one of the two columns exists"),
        }?;
        self.lines.push(line);
        Ok(())
    }
}

impl super::Assemble for WooAssembler {
    fn key(&self, record: &StringRecord, key: &mut String) -> Result<(), FieldError> {
        let order = self.columns.order.get(record);
        if order.is_empty() {
            return Err(FieldError::new(&self.columns.order.name, "must not be empty"));
        }
        key.push_str(order);
        Ok(())
    }

    fn add(&mut self, _line_number: u64, record: &StringRecord, first: bool) -> Result<(), FieldError> {
        if first {
            self.start(record)?;
        }
        self.add_line(record)
    }

    fn finish(&mut self, line_number: u64) -> Result<Option<ImportedOrder>, FieldError> {
        if matches!(self.status.as_str(), "cancelled" | "canceled" | "failed" | "pending" | "checkout-draft" | "trash")
        {
            return Ok(None);
        }
        let currency = self.currency.expect("set by start");
        let lines = std::mem::take(&mut self.lines);
        let refunds = if self.status == "refunded" {
            let id = external_id("Order ID", &format!("woocommerce-{}-refund", self.number))?;
            vec![whole_refund(id, self.placed_at, &lines)]
        } else {
            Vec::new()
        };
        let customer = std::mem::take(&mut self.customer);
        let products = products_of(&lines, currency);
        let order = OrderDraft::new(
            self.order_id.take(),
            CustomerRef::External(customer.external_id.clone().expect("always set")),
            self.placed_at,
            currency,
            lines,
        )?;
        Ok(Some(ImportedOrder { line_number, customer, order, products, refunds }))
    }
}

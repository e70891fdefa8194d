//! Shopify's orders export ("Export orders", all columns), read as Shopify writes it.
//!
//! - One row per line item; rows of one order share `Name` (`#1001`), and only the first carries the order's
//!   fields (e-mail, status, currency, totals). The order's external id is `shopify-` and the name without `#`
//!   (`shopify-1001`).
//! - **Customer.** The key is the e-mail, lower-cased (so `Russel.Winfield@…` and `russel.winfield@…` are one
//!   customer). An order without an e-mail (a guest or draft order) gets a customer of its own,
//!   `shopify-guest-1001`, stable across re-imports. `Billing Name` (else `Shipping Name`) is the name;
//!   `Phone` (else `Billing Phone`) the phone, dropped when it is not a phone number; `Accepts Marketing`
//!   `yes` records marketing consent with source `shopify`.
//! - **Lines.** `Lineitem sku`, or the line item's name (cut to 64 characters) when the SKU is empty;
//!   `Lineitem quantity`, `Lineitem price` (per item) and `Lineitem discount`. When the order's `Discount
//!   Amount` is larger than the sum of its line discounts, the rest is spread over the lines in proportion to
//!   their amounts, so the order total is the export's `Subtotal`. Shipping and taxes are not order lines and
//!   are not imported.
//! - **Refunds.** `Financial Status` `refunded`: a whole refund, `shopify-1001-refund`. `partially_refunded`:
//!   best effort, because the export gives only `Refunded Amount`, not which items came back: whole items
//!   worth at most that amount are refunded, from the last line backwards; a remainder that matches no
//!   whole item (shipping, a goodwill credit) is not recorded. The export has no refund date, so refunds are
//!   dated at the order's `Created at`.
//! - **Skipped** (counted in [`crate::ReadSummary::skipped`], not rejected): cancelled orders (`Cancelled at`
//!   set) and `voided` ones, which are not purchases. `pending` orders are imported.

use chrono::{DateTime, Utc};
use csv::StringRecord;
use regulars_core::customer::parse_name;
use regulars_core::{
    Consent, Currency, CustomerDraft, CustomerRef, Email, ExternalId, FieldError, ImportedOrder, ImportedRefund,
    OrderDraft, OrderLine, Phone,
};

use super::{
    Col, CurrencyCache, Header, external_id, get, parse_amount, parse_amount_or_zero, parse_quantity, parse_time,
    products_of, refund_up_to, sku_or_name, whole_refund,
};
use crate::dates::TimestampParser;
use crate::error::IngestError;

struct Columns {
    name: Col,
    email: Option<Col>,
    financial_status: Option<Col>,
    currency: Col,
    created_at: Col,
    quantity: Col,
    item_name: Col,
    price: Col,
    sku: Option<Col>,
    item_discount: Option<Col>,
    discount_amount: Option<Col>,
    cancelled_at: Option<Col>,
    refunded_amount: Option<Col>,
    billing_name: Option<Col>,
    shipping_name: Option<Col>,
    phone: Option<Col>,
    billing_phone: Option<Col>,
    accepts_marketing: Option<Col>,
}

/// What the first row of an order says about it.
#[derive(Default)]
struct OrderFields {
    external_id: Option<ExternalId>,
    number: String,
    customer: CustomerDraft,
    currency: Option<Currency>,
    placed_at: Option<DateTime<Utc>>,
    status: String,
    cancelled: bool,
    refunded_minor: i64,
    discount_minor: i64,
}

pub(crate) struct ShopifyAssembler {
    columns: Columns,
    dates: TimestampParser,
    currencies: CurrencyCache,
    order: OrderFields,
    lines: Vec<OrderLine>,
}

impl ShopifyAssembler {
    pub fn new(header: &Header, dates: TimestampParser) -> Result<Self, IngestError> {
        let f = "shopify";
        let columns = Columns {
            name: header.require(f, &["Name"])?,
            email: header.find(&["Email"]),
            financial_status: header.find(&["Financial Status"]),
            currency: header.require(f, &["Currency"])?,
            created_at: header.require(f, &["Created at"])?,
            quantity: header.require(f, &["Lineitem quantity"])?,
            item_name: header.require(f, &["Lineitem name"])?,
            price: header.require(f, &["Lineitem price"])?,
            sku: header.find(&["Lineitem sku"]),
            item_discount: header.find(&["Lineitem discount"]),
            discount_amount: header.find(&["Discount Amount"]),
            cancelled_at: header.find(&["Cancelled at"]),
            refunded_amount: header.find(&["Refunded Amount"]),
            billing_name: header.find(&["Billing Name"]),
            shipping_name: header.find(&["Shipping Name"]),
            phone: header.find(&["Phone"]),
            billing_phone: header.find(&["Billing Phone"]),
            accepts_marketing: header.find(&["Accepts Marketing"]),
        };
        Ok(ShopifyAssembler {
            columns,
            dates,
            currencies: CurrencyCache::default(),
            order: OrderFields::default(),
            lines: Vec::new(),
        })
    }

    fn start(&mut self, record: &StringRecord) -> Result<(), FieldError> {
        let c = &self.columns;
        self.lines.clear();
        let number = c.name.get(record).trim_start_matches('#').to_owned();
        let order_id = external_id(&c.name.name, &format!("shopify-{number}"))?;
        let currency = self.currencies.parse(&c.currency.name, c.currency.get(record))?;
        let placed_at = parse_time(&c.created_at.name, &self.dates, c.created_at.get(record))?;
        let email_raw = get(&c.email, record);
        let email = match (&c.email, email_raw.is_empty()) {
            (Some(col), false) => Some(Email::parse(&col.name, email_raw)?),
            _ => None,
        };
        let customer_id = match &email {
            Some(email) => external_id("Email", email.as_str())?,
            None => external_id(&c.name.name, &format!("shopify-guest-{number}"))?,
        };
        let name = [get(&c.billing_name, record), get(&c.shipping_name, record)]
            .into_iter()
            .find(|n| !n.is_empty())
            .and_then(|n| parse_name("Billing Name", n).ok());
        let phone = [get(&c.phone, record), get(&c.billing_phone, record)]
            .into_iter()
            .find(|p| !p.is_empty())
            .and_then(|p| Phone::parse("Phone", p).ok());
        let marketing = get(&c.accepts_marketing, record).eq_ignore_ascii_case("yes");
        let refunded_minor = match &c.refunded_amount {
            Some(col) => parse_amount_or_zero(&col.name, currency, col.get(record))?,
            None => 0,
        };
        let discount_minor = match &c.discount_amount {
            Some(col) => parse_amount_or_zero(&col.name, currency, col.get(record))?,
            None => 0,
        };
        self.order = OrderFields {
            external_id: Some(order_id),
            number,
            customer: CustomerDraft {
                external_id: Some(customer_id),
                email,
                phone,
                name,
                consent: Consent { marketing, recorded_at: None, source: marketing.then(|| "shopify".to_owned()) },
                ..CustomerDraft::default()
            },
            currency: Some(currency),
            placed_at: Some(placed_at),
            status: get(&c.financial_status, record).to_ascii_lowercase(),
            cancelled: !get(&c.cancelled_at, record).is_empty(),
            refunded_minor,
            discount_minor,
        };
        Ok(())
    }

    fn add_line(&mut self, record: &StringRecord) -> Result<(), FieldError> {
        let c = &self.columns;
        let currency = self.order.currency.expect("set by start");
        let item_name = c.item_name.get(record);
        let sku_column = c.sku.as_ref().map_or("Lineitem sku", |col| col.name.as_str());
        let sku = sku_or_name(sku_column, get(&c.sku, record), item_name)?;
        let quantity = parse_quantity(&c.quantity.name, c.quantity.get(record))?;
        let price = parse_amount(&c.price.name, currency, c.price.get(record))?;
        let discount = match &c.item_discount {
            Some(col) => parse_amount_or_zero(&col.name, currency, col.get(record))?,
            None => 0,
        };
        let name = (!item_name.is_empty()).then(|| item_name.to_owned());
        let line = OrderLine::new(sku, name, quantity, price, discount).map_err(|e| {
            let column = if e.field == "discount_minor" { "Lineitem discount" } else { c.price.name.as_str() };
            FieldError::new(column, e.message)
        })?;
        self.lines.push(line);
        Ok(())
    }

    /// Spreads the part of the order discount not already on the lines over the lines, by amount.
    fn spread_order_discount(&mut self) {
        let on_lines: i64 = self.lines.iter().map(|l| l.discount_minor).sum();
        let mut extra = self.order.discount_minor - on_lines;
        let total: i64 = self.lines.iter().map(OrderLine::net_minor).sum();
        if extra <= 0 || total <= 0 {
            return;
        }
        extra = extra.min(total);
        let shares: Vec<i64> = self
            .lines
            .iter()
            .map(|l| (i128::from(extra) * i128::from(l.net_minor()) / i128::from(total)) as i64)
            .collect();
        let mut remainder = extra - shares.iter().sum::<i64>();
        for (line, share) in self.lines.iter_mut().zip(shares) {
            let room = line.net_minor() - share;
            let more = remainder.min(room);
            remainder -= more;
            line.discount_minor += share + more;
        }
    }
}

impl super::Assemble for ShopifyAssembler {
    fn key(&self, record: &StringRecord, key: &mut String) -> Result<(), FieldError> {
        let name = self.columns.name.get(record);
        if name.is_empty() {
            return Err(FieldError::new(&self.columns.name.name, "must not be empty"));
        }
        key.push_str(name);
        Ok(())
    }

    fn add(&mut self, _line_number: u64, record: &StringRecord, first: bool) -> Result<(), FieldError> {
        if first {
            self.start(record)?;
        }
        self.add_line(record)
    }

    fn finish(&mut self, line_number: u64) -> Result<Option<ImportedOrder>, FieldError> {
        if self.order.cancelled || self.order.status == "voided" {
            return Ok(None);
        }
        self.spread_order_discount();
        let fields = std::mem::take(&mut self.order);
        let currency = fields.currency.expect("set by start");
        let placed_at = fields.placed_at.expect("set by start");
        let lines = std::mem::take(&mut self.lines);
        let refund_id = || external_id("Name", &format!("shopify-{}-refund", fields.number));
        let refunds = match fields.status.as_str() {
            "refunded" => vec![whole_refund(refund_id()?, placed_at, &lines)],
            "partially_refunded" if fields.refunded_minor > 0 => {
                let refund_lines = refund_up_to(&lines, fields.refunded_minor);
                if refund_lines.is_empty() {
                    Vec::new()
                } else {
                    vec![ImportedRefund { external_id: refund_id()?, refunded_at: placed_at, lines: refund_lines }]
                }
            }
            _ => Vec::new(),
        };
        let customer = fields.customer;
        let products = products_of(&lines, currency);
        let order = OrderDraft::new(
            fields.external_id,
            CustomerRef::External(customer.external_id.clone().expect("always set")),
            placed_at,
            currency,
            lines,
        )?;
        Ok(Some(ImportedOrder { line_number, customer, order, products, refunds }))
    }
}

//! Stripe's payments export (`unified_payments.csv`): one row per payment. No sample file was available;
//! this follows Stripe's documented columns. The test fixture `tests/fixtures/stripe_payments.csv` was
//! constructed by hand.
//!
//! Columns: `id` (required), `Created date (UTC)` (required; `YYYY-MM-DD HH:MM:SS` or Unix seconds),
//! `Amount` (required, major units), `Currency` (required), `Amount Refunded`, `Refunded date (UTC)`,
//! `Status`, `Captured`, `Customer ID`, `Customer Email`, `Customer Name` (else `Card Name`), `Description`.
//!
//! Each payment becomes an order `stripe-<id>` with one line, SKU `stripe-payment`, named by the
//! description, worth the amount. The customer key is `Customer ID` (`cus_…`), else the lower-cased e-mail,
//! else a customer of its own, `stripe-guest-<id>`.
//!
//! Refunds: when `Amount Refunded` equals the amount, a whole refund `stripe-<id>-refund`. When it is less,
//! the payment is recorded as two lines of the same SKU, the kept part and the refunded part, and the
//! refunded line is refunded, so both the order total and the refund are exact. The refund is dated at
//! `Refunded date (UTC)` when the export has it, else at the payment.
//!
//! Payments whose `Status` is not `paid`, `succeeded`, `refunded`, `partially refunded` or `disputed` (failed,
//! canceled, incomplete, ...) and payments with `Captured` `false` are skipped, not rejected.

use csv::StringRecord;
use regulars_core::customer::parse_name;
use regulars_core::{
    CustomerDraft, CustomerRef, Email, FieldError, ImportedOrder, ImportedRefund, OrderDraft, OrderLine, ProductDraft,
    Quantity, RefundLine, Sku,
};

use super::{Col, CurrencyCache, Header, external_id, get, parse_amount, parse_amount_or_zero, parse_time};
use crate::dates::TimestampParser;
use crate::error::IngestError;

struct Columns {
    id: Col,
    created: Col,
    amount: Col,
    currency: Col,
    amount_refunded: Option<Col>,
    refunded_at: Option<Col>,
    status: Option<Col>,
    captured: Option<Col>,
    customer_id: Option<Col>,
    email: Option<Col>,
    name: Option<Col>,
    description: Option<Col>,
}

pub(crate) struct StripeAssembler {
    columns: Columns,
    dates: TimestampParser,
    currencies: CurrencyCache,
    sku: Sku,
    pending: Option<ImportedOrder>,
}

impl StripeAssembler {
    pub fn new(header: &Header, dates: TimestampParser) -> Result<Self, IngestError> {
        let f = "stripe";
        let columns = Columns {
            id: header.require(f, &["id"])?,
            created: header.require(f, &["Created date (UTC)", "Created (UTC)", "Created"])?,
            amount: header.require(f, &["Amount"])?,
            currency: header.require(f, &["Currency"])?,
            amount_refunded: header.find(&["Amount Refunded"]),
            refunded_at: header.find(&["Refunded date (UTC)", "Refunded date"]),
            status: header.find(&["Status"]),
            captured: header.find(&["Captured"]),
            customer_id: header.find(&["Customer ID"]),
            email: header.find(&["Customer Email"]),
            name: header.find(&["Customer Name", "Card Name"]),
            description: header.find(&["Description"]),
        };
        Ok(StripeAssembler {
            columns,
            dates,
            currencies: CurrencyCache::default(),
            sku: Sku::parse("sku", "stripe-payment").expect("a valid SKU"),
            pending: None,
        })
    }

    fn read(&mut self, line_number: u64, record: &StringRecord) -> Result<Option<ImportedOrder>, FieldError> {
        let c = &self.columns;
        let status = get(&c.status, record).to_ascii_lowercase().replace('_', " ");
        let paid =
            matches!(status.as_str(), "" | "paid" | "succeeded" | "refunded" | "partially refunded" | "disputed");
        if !paid || get(&c.captured, record).eq_ignore_ascii_case("false") {
            return Ok(None);
        }
        let id = c.id.get(record);
        let order_id = external_id(&c.id.name, &format!("stripe-{id}"))?;
        let placed_at = parse_time(&c.created.name, &self.dates, c.created.get(record))?;
        let currency = self.currencies.parse(&c.currency.name, c.currency.get(record))?;
        let amount = parse_amount(&c.amount.name, currency, c.amount.get(record))?;
        let refunded = match &c.amount_refunded {
            Some(col) => parse_amount_or_zero(&col.name, currency, col.get(record))?,
            None => 0,
        };
        if refunded > amount {
            let column = c.amount_refunded.as_ref().map_or("", |col| col.name.as_str());
            return Err(FieldError::new(column, "is more than the amount"));
        }
        let email = match (&c.email, get(&c.email, record)) {
            (Some(col), raw) if !raw.is_empty() => Some(Email::parse(&col.name, raw)?),
            _ => None,
        };
        let customer_number = get(&c.customer_id, record);
        let customer_id = if !customer_number.is_empty() {
            external_id("Customer ID", customer_number)?
        } else if let Some(email) = &email {
            external_id("Customer Email", email.as_str())?
        } else {
            external_id(&c.id.name, &format!("stripe-guest-{id}"))?
        };
        let description = get(&c.description, record);
        let name = (!description.is_empty()).then(|| description.chars().take(200).collect::<String>());
        let one = Quantity::new("quantity", 1).expect("1 is a quantity");
        let amount_error = |e: FieldError| FieldError::new(&c.amount.name, e.message);
        let mut lines = Vec::with_capacity(2);
        let mut refunds = Vec::new();
        if refunded > 0 {
            let refunded_at_raw = get(&c.refunded_at, record);
            let refunded_at = match &c.refunded_at {
                Some(col) if !refunded_at_raw.is_empty() => parse_time(&col.name, &self.dates, refunded_at_raw)?,
                _ => placed_at,
            };
            if refunded < amount {
                lines.push(
                    OrderLine::new(self.sku.clone(), name.clone(), one, amount - refunded, 0).map_err(amount_error)?,
                );
            }
            lines.push(OrderLine::new(self.sku.clone(), name, one, refunded, 0).map_err(amount_error)?);
            refunds.push(ImportedRefund {
                external_id: external_id(&c.id.name, &format!("stripe-{id}-refund"))?,
                refunded_at,
                lines: vec![RefundLine { line: lines.len() - 1, quantity: 1, amount_minor: refunded }],
            });
        } else {
            lines.push(OrderLine::new(self.sku.clone(), name, one, amount, 0).map_err(amount_error)?);
        }
        let customer = CustomerDraft {
            external_id: Some(customer_id.clone()),
            email,
            name: parse_name("Customer Name", get(&c.name, record)).ok(),
            ..CustomerDraft::default()
        };
        let products = vec![ProductDraft {
            sku: self.sku.clone(),
            name: "Stripe payment".to_owned(),
            category: None,
            price: None,
        }];
        let order = OrderDraft::new(Some(order_id), CustomerRef::External(customer_id), placed_at, currency, lines)?;
        Ok(Some(ImportedOrder { line_number, customer, order, products, refunds }))
    }
}

impl super::Assemble for StripeAssembler {
    fn key(&self, record: &StringRecord, key: &mut String) -> Result<(), FieldError> {
        let id = self.columns.id.get(record);
        if id.is_empty() {
            return Err(FieldError::new(&self.columns.id.name, "must not be empty"));
        }
        key.push_str(id);
        Ok(())
    }

    fn add(&mut self, line_number: u64, record: &StringRecord, first: bool) -> Result<(), FieldError> {
        if !first {
            return Err(FieldError::new(&self.columns.id.name, "the same payment id appears on two adjacent rows"));
        }
        self.pending = self.read(line_number, record)?;
        Ok(())
    }

    fn finish(&mut self, _line_number: u64) -> Result<Option<ImportedOrder>, FieldError> {
        Ok(self.pending.take())
    }
}

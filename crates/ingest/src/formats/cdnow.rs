//! The CDNOW purchase logs of the customer-base analysis literature, whitespace-separated:
//! `customer_id date(YYYYMMDD) number_of_cds dollar_value` (the master file, with a header line), or
//! `master_customer_id sample_customer_id date number_of_cds dollar_value` (the 1/10 sample, no header).
//!
//! All lines of one customer and day become one order `cdnow-<customer_id>-<YYYYMMDD>` placed at midnight
//! (UTC, or the chosen zone), in USD, with one line: SKU `CD`, the day's number of CDs as quantity and the
//! day's summed dollar value as the line's net amount. The unit price is that value divided by the quantity
//! rounded up to the cent, and the rounding is recorded as a discount, so the order total equals the dollar
//! value exactly (2 CDs for 20.75 is 2 x 10.38 less 0.01). Zero-value lines are kept. The customer's external
//! id is the customer id as written (`00001`); in the sample it is the master id, so both files name the same
//! customers, and the sample id is kept in the attribute `cdnow_sample_id`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use csv::StringRecord;
use regulars_core::{
    Currency, CustomerDraft, CustomerRef, FieldError, ImportedOrder, OrderDraft, ProductDraft, Quantity, Sku,
};

use super::{external_id, line_with_total, parse_amount, parse_time, parse_whole};
use crate::dates::TimestampParser;

pub(crate) struct CdnowAssembler {
    dates: TimestampParser,
    usd: Currency,
    sku: Sku,
    customer_id: String,
    sample_id: Option<String>,
    date: String,
    placed_at: DateTime<Utc>,
    cds: i64,
    value_minor: i64,
}

/// The fields of one line: customer, sample id, date, CDs, value.
fn fields(record: &StringRecord) -> Result<(&str, Option<&str>, &str, &str, &str), FieldError> {
    match record.len() {
        4 => Ok((&record[0], None, &record[1], &record[2], &record[3])),
        5 => Ok((&record[0], Some(&record[1]), &record[2], &record[3], &record[4])),
        n => Err(FieldError::new(
            "line",
            format!(
                "expected 4 fields (customer_id date number_of_cds dollar_value) or 5 (with the sample id), got {n}"
            ),
        )),
    }
}

impl CdnowAssembler {
    pub fn new(dates: TimestampParser) -> Self {
        CdnowAssembler {
            dates,
            usd: Currency::parse("currency", "USD").expect("USD is a currency"),
            sku: Sku::parse("sku", "CD").expect("a valid SKU"),
            customer_id: String::new(),
            sample_id: None,
            date: String::new(),
            placed_at: DateTime::UNIX_EPOCH,
            cds: 0,
            value_minor: 0,
        }
    }
}

impl super::Assemble for CdnowAssembler {
    fn key(&self, record: &StringRecord, key: &mut String) -> Result<(), FieldError> {
        let (customer, _, date, _, _) = fields(record)?;
        key.push_str(customer);
        key.push('-');
        key.push_str(date);
        Ok(())
    }

    fn add(&mut self, _line_number: u64, record: &StringRecord, first: bool) -> Result<(), FieldError> {
        let (customer, sample_id, date, cds, value) = fields(record)?;
        if first {
            self.placed_at = parse_time("date", &self.dates, date)?;
            external_id("customer_id", customer)?;
            self.customer_id = customer.to_owned();
            self.sample_id = sample_id.map(str::to_owned);
            self.date = date.to_owned();
            self.cds = 0;
            self.value_minor = 0;
        }
        let cds = parse_whole("number_of_cds", cds)?;
        Quantity::new("number_of_cds", cds)?;
        self.cds += cds;
        self.value_minor += parse_amount("dollar_value", self.usd, value)?;
        Ok(())
    }

    fn finish(&mut self, line_number: u64) -> Result<Option<ImportedOrder>, FieldError> {
        let quantity = Quantity::new("number_of_cds", self.cds)?;
        let line = line_with_total(self.sku.clone(), None, quantity, self.value_minor)
            .map_err(|e| FieldError::new("dollar_value", e.message))?;
        let customer_id = external_id("customer_id", &self.customer_id)?;
        let order_id = external_id("customer_id", &format!("cdnow-{}-{}", self.customer_id, self.date))?;
        let mut attributes = BTreeMap::new();
        if let Some(sample_id) = &self.sample_id {
            attributes.insert("cdnow_sample_id".to_owned(), sample_id.clone());
        }
        let customer = CustomerDraft { external_id: Some(customer_id.clone()), attributes, ..CustomerDraft::default() };
        let order =
            OrderDraft::new(Some(order_id), CustomerRef::External(customer_id), self.placed_at, self.usd, vec![line])?;
        let products = vec![ProductDraft { sku: self.sku.clone(), name: "CD".to_owned(), category: None, price: None }];
        Ok(Some(ImportedOrder { line_number, customer, order, products, refunds: Vec::new() }))
    }
}

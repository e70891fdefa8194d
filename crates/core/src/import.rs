//! What an import produces: orders with the customer and products they mention, and their refunds.
//!
//! Readers of export formats (the `ingest` crate) and the demo shop produce these; the store records
//! them idempotently, keyed by external ids, so importing the same file twice changes nothing.

use chrono::{DateTime, Utc};

use crate::customer::CustomerDraft;
use crate::order::{OrderDraft, ProductDraft, RefundLine};
use crate::text::ExternalId;

/// A refund found in an export, applied to the order it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRefund {
    pub external_id: ExternalId,
    pub refunded_at: DateTime<Utc>,
    /// Returned quantities per order line; `amount_minor` is computed by the store from the order.
    pub lines: Vec<RefundLine>,
}

/// One order read from a file, with enough about its customer and products to create them when missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedOrder {
    /// The line of the file where this order starts (1-based, counting the header), for reports.
    pub line_number: u64,
    /// The customer; `external_id` is always set (an export's customer id, or the e-mail when there is none).
    pub customer: CustomerDraft,
    /// The order; its `external_id` is always set and its customer is `CustomerRef::External`.
    pub order: OrderDraft,
    /// Products named by the lines, with whatever the file says about them.
    pub products: Vec<ProductDraft>,
    pub refunds: Vec<ImportedRefund>,
}

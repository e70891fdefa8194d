//! Domain types and rules of Regulars, with no I/O.
//!
//! Every value here is parsed, not validated: once a `Money`, an `Email` or a
//! `CustomerId` exists, it is valid. Time is always passed in; nothing here reads
//! the clock, the network, a file or a database.

pub mod access;
pub mod customer;
pub mod ids;
pub mod import;
pub mod loyalty;
pub mod money;
pub mod order;
pub mod text;

pub use access::{Operation, Role};
pub use customer::{Consent, Customer, CustomerDraft, CustomerPatch, Email, Phone};
pub use ids::{CouponHoldId, PromotionId, RewardId, SaleId};
pub use ids::{CustomerId, LoyaltyHoldId, OrderId, ProductId, RefundId};
pub use import::{ImportedOrder, ImportedRefund};
pub use money::{Currency, Money};
pub use order::{
    CustomerRef, Order, OrderDraft, OrderLine, Product, ProductDraft, Quantity, Refund, RefundDraft, RefundDraftKind,
    RefundLine, Sku, plan_refund,
};
pub use text::{ExternalId, FieldError};

//! Products, orders with lines, and refunds: whole, or per line.

use chrono::{DateTime, Utc};

use crate::ids::{CustomerId, OrderId, ProductId, RefundId};
use crate::money::{Currency, Money};
use crate::text::{ExternalId, FieldError, bounded_text};

/// A stock-keeping unit: the shop's own code for a product.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        bounded_text(field, raw, 64).map(Sku)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A quantity of items on a line: at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: i64 = 1_000_000;

    pub fn new(field: &str, value: i64) -> Result<Self, FieldError> {
        if value < 1 {
            return Err(FieldError::new(field, format!("must be at least 1, got {value}")));
        }
        if value > Self::MAX {
            return Err(FieldError::new(field, format!("must be at most {}", Self::MAX)));
        }
        Ok(Quantity(value as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The largest amount of one line or order, in minor units: keeps every sum far from overflow.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// A product in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDraft {
    pub sku: Sku,
    pub name: String,
    pub category: Option<String>,
    pub price: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub sku: Sku,
    pub name: String,
    pub category: Option<String>,
    pub price: Option<Money>,
}

/// One line of an order. `discount_minor` is taken off the line's gross amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub sku: Sku,
    pub name: Option<String>,
    pub quantity: Quantity,
    pub unit_price_minor: i64,
    pub discount_minor: i64,
}

impl OrderLine {
    pub fn new(
        sku: Sku,
        name: Option<String>,
        quantity: Quantity,
        unit_price_minor: i64,
        discount_minor: i64,
    ) -> Result<Self, FieldError> {
        Self::check_amounts(quantity, unit_price_minor, discount_minor)?;
        Ok(OrderLine { sku, name, quantity, unit_price_minor, discount_minor })
    }

    /// The checks of [`OrderLine::new`] on the amounts; the line's net amount when they pass.
    pub fn check_amounts(quantity: Quantity, unit_price_minor: i64, discount_minor: i64) -> Result<i64, FieldError> {
        if !(0..=MAX_AMOUNT_MINOR).contains(&unit_price_minor) {
            return Err(FieldError::new("unit_price_minor", "must be between 0 and 10^12"));
        }
        let gross = unit_price_minor * i64::from(quantity.get());
        if gross > MAX_AMOUNT_MINOR {
            return Err(FieldError::new("quantity", "quantity times unit price is larger than 10^12"));
        }
        if discount_minor < 0 {
            return Err(FieldError::new("discount_minor", format!("must not be negative, got {discount_minor}")));
        }
        if discount_minor > gross {
            return Err(FieldError::new("discount_minor", "must not exceed quantity times unit price"));
        }
        Ok(gross - discount_minor)
    }

    /// What the customer paid for this line.
    pub fn net_minor(&self) -> i64 {
        self.unit_price_minor * i64::from(self.quantity.get()) - self.discount_minor
    }

    /// What `quantity` returned items of this line are worth, the discount shared pro rata, rounded down
    /// so that refunds of a line in several steps never add up to more than was paid.
    pub fn refund_minor(&self, quantity: u32) -> i64 {
        refund_share(self.net_minor(), self.quantity.get(), quantity)
    }
}

/// What `returned` of the `quantity` items of a line worth `net_minor` are worth: the whole net amount
/// when all are returned, else their share of it rounded down ([`OrderLine::refund_minor`]).
pub fn refund_share(net_minor: i64, quantity: u32, returned: u32) -> i64 {
    let q = i64::from(quantity);
    let returned = i64::from(returned.min(quantity));
    if returned == q { net_minor } else { (net_minor as i128 * returned as i128 / q as i128) as i64 }
}

/// Who an order belongs to: our id, or the id the customer has in the system that sent the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerRef {
    Id(CustomerId),
    External(ExternalId),
}

/// A new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDraft {
    pub external_id: Option<ExternalId>,
    pub customer: CustomerRef,
    pub placed_at: DateTime<Utc>,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
}

impl OrderDraft {
    pub const MAX_LINES: usize = 1000;

    pub fn new(
        external_id: Option<ExternalId>,
        customer: CustomerRef,
        placed_at: DateTime<Utc>,
        currency: Currency,
        lines: Vec<OrderLine>,
    ) -> Result<Self, FieldError> {
        if lines.is_empty() {
            return Err(FieldError::new("lines", "an order needs at least one line"));
        }
        if lines.len() > Self::MAX_LINES {
            return Err(FieldError::new("lines", format!("at most {} lines", Self::MAX_LINES)));
        }
        let draft = OrderDraft { external_id, customer, placed_at, currency, lines };
        if draft.total_minor() > MAX_AMOUNT_MINOR {
            return Err(FieldError::new("lines", "the order total is larger than 10^12"));
        }
        Ok(draft)
    }

    pub fn total_minor(&self) -> i64 {
        self.lines.iter().map(OrderLine::net_minor).sum()
    }
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub external_id: Option<ExternalId>,
    pub customer_id: CustomerId,
    pub placed_at: DateTime<Utc>,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
    pub refunded_minor: i64,
}

/// Which items a refund returns: everything not yet refunded, or some quantity of some lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundDraftKind {
    Whole,
    Lines(Vec<RefundLine>),
}

/// A returned quantity of one order line (lines numbered from 0 in the order they were recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundLine {
    pub line: usize,
    pub quantity: u32,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDraft {
    pub external_id: Option<ExternalId>,
    pub order_id: OrderId,
    pub refunded_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub kind: RefundDraftKind,
}

/// A stored refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: RefundId,
    pub external_id: Option<ExternalId>,
    pub order_id: OrderId,
    pub refunded_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub lines: Vec<RefundLine>,
    pub amount_minor: i64,
}

/// Decides what a refund returns, given the order and the quantities of each line already refunded.
/// Refuses to return more of a line than is left, and a refund that returns nothing.
pub fn plan_refund(
    order: &Order,
    already_refunded: &[u32],
    kind: &RefundDraftKind,
) -> Result<Vec<RefundLine>, FieldError> {
    let left = |i: usize| order.lines[i].quantity.get() - already_refunded.get(i).copied().unwrap_or(0);
    let amount = |i: usize, quantity: u32| {
        let line = &order.lines[i];
        let before = already_refunded.get(i).copied().unwrap_or(0);
        // Value of the returned items as the difference of cumulative refund values, so that
        // partial refunds of one line add up exactly to what was paid for it.
        line.refund_minor(before + quantity) - line.refund_minor(before)
    };
    let planned: Vec<RefundLine> = match kind {
        RefundDraftKind::Whole => (0..order.lines.len())
            .filter(|&i| left(i) > 0)
            .map(|i| RefundLine { line: i, quantity: left(i), amount_minor: amount(i, left(i)) })
            .collect(),
        RefundDraftKind::Lines(lines) => {
            let mut seen = vec![false; order.lines.len()];
            let mut out = Vec::with_capacity(lines.len());
            for (n, requested) in lines.iter().enumerate() {
                let field = format!("lines[{n}]");
                if requested.line >= order.lines.len() {
                    return Err(FieldError::new(
                        format!("{field}.line"),
                        format!("the order has {} lines", order.lines.len()),
                    ));
                }
                if std::mem::replace(&mut seen[requested.line], true) {
                    return Err(FieldError::new(format!("{field}.line"), "each line may appear once"));
                }
                if requested.quantity == 0 {
                    return Err(FieldError::new(format!("{field}.quantity"), "must be at least 1"));
                }
                if requested.quantity > left(requested.line) {
                    return Err(FieldError::new(
                        format!("{field}.quantity"),
                        format!("only {} of this line are left to refund", left(requested.line)),
                    ));
                }
                out.push(RefundLine {
                    line: requested.line,
                    quantity: requested.quantity,
                    amount_minor: amount(requested.line, requested.quantity),
                });
            }
            out
        }
    };
    if planned.is_empty() {
        return Err(FieldError::new("lines", "nothing is left to refund on this order"));
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        let eur = Currency::parse("c", "EUR").unwrap();
        let line = |sku: &str, q: i64, p: i64, d: i64| {
            OrderLine::new(Sku::parse("sku", sku).unwrap(), None, Quantity::new("q", q).unwrap(), p, d).unwrap()
        };
        let lines = vec![line("A", 3, 100, 10), line("B", 1, 500, 0)];
        Order {
            id: OrderId::from_key(1),
            external_id: None,
            customer_id: CustomerId::from_key(1),
            placed_at: DateTime::UNIX_EPOCH,
            currency: eur,
            total_minor: lines.iter().map(OrderLine::net_minor).sum(),
            lines,
            refunded_minor: 0,
        }
    }

    #[test]
    fn lines_refuse_negative_and_oversized_values() {
        let sku = Sku::parse("sku", "A").unwrap();
        assert_eq!(Quantity::new("quantity", -2).unwrap_err().field, "quantity");
        let q = Quantity::new("quantity", 2).unwrap();
        assert_eq!(OrderLine::new(sku.clone(), None, q, -1, 0).unwrap_err().field, "unit_price_minor");
        assert_eq!(OrderLine::new(sku.clone(), None, q, 100, 201).unwrap_err().field, "discount_minor");
        assert!(OrderLine::new(sku, None, q, MAX_AMOUNT_MINOR, 0).is_err());
    }

    #[test]
    fn partial_refunds_of_a_line_add_up_to_what_was_paid() {
        let order = order();
        let one = |line, quantity| RefundDraftKind::Lines(vec![RefundLine { line, quantity, amount_minor: 0 }]);
        let mut refunded = vec![0u32, 0];
        let mut total = 0;
        for _ in 0..3 {
            let plan = plan_refund(&order, &refunded, &one(0, 1)).unwrap();
            refunded[0] += plan[0].quantity;
            total += plan[0].amount_minor;
        }
        assert_eq!(total, 290, "3 x 100 less a discount of 10");
        assert!(plan_refund(&order, &refunded, &one(0, 1)).unwrap_err().message.contains("only 0"));
        let rest = plan_refund(&order, &refunded, &RefundDraftKind::Whole).unwrap();
        assert_eq!(rest, vec![RefundLine { line: 1, quantity: 1, amount_minor: 500 }]);
        assert!(plan_refund(&order, &[3, 1], &RefundDraftKind::Whole).is_err());
        assert_eq!(plan_refund(&order, &refunded, &one(7, 1)).unwrap_err().field, "lines[0].line");
    }
}

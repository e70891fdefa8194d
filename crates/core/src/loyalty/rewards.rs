//! The rewards catalogue: what points buy (a free item, an amount off, a percentage off), with a points
//! cost, stock, a validity window and a per-customer limit.
//!
//! Redeeming a reward is a ledger redemption of its cost ([`Reward::redeem_command`]) plus either a
//! single-use coupon code (see `coupons`) or the reward applied to the order at the counter
//! ([`Reward::promotion`]). The checks run in this order, the first failing one refused: not yet valid,
//! expired, out of stock, per-customer limit, insufficient points. Stock and limits are counts the store
//! passes in; the store enforces them again in the writing statement.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::money::Currency;
use crate::order::Sku;
use crate::text::{FieldError, bounded_text};

use super::ledger::Command;
use super::points::Points;
use super::promotions::{Promotion, PromotionKind, Stacking};
use super::punch::Matches;
use super::refusal::Refusal;

/// A reward as a program file writes it: exactly one of `free_item`, `amount_off`, `percent_off`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardFile {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub free_item: Option<String>,
    #[serde(default)]
    pub amount_off: Option<String>,
    #[serde(default)]
    pub percent_off: Option<u32>,
    pub cost: i64,
    #[serde(default)]
    pub stock: Option<u32>,
    #[serde(default)]
    pub per_customer_limit: Option<u32>,
    /// RFC 3339, e.g. `"2026-01-01T00:00:00Z"`.
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardKind {
    FreeItem { sku: Sku },
    AmountOff { minor: i64 },
    PercentOff { percent: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    /// The stable key an API call names.
    pub key: String,
    pub name: String,
    pub kind: RewardKind,
    pub cost: Points,
    pub stock: Option<u32>,
    pub per_customer_limit: Option<u32>,
    /// Offered from `valid_from` (inclusive) until `valid_until` (exclusive).
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}

/// How often a reward was issued, overall and to this customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewardCounts {
    pub issued_total: u32,
    pub issued_to_customer: u32,
}

fn instant(field: &str, raw: &Option<String>) -> Result<Option<DateTime<Utc>>, FieldError> {
    raw.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s.trim()).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                FieldError::new(field, format!("{s:?} is not an RFC 3339 time such as 2026-01-01T00:00:00Z"))
            })
        })
        .transpose()
}

impl Reward {
    pub fn parse(file: &RewardFile, currency: Currency) -> Result<Reward, FieldError> {
        let kind = match (&file.free_item, &file.amount_off, file.percent_off) {
            (Some(sku), None, None) => RewardKind::FreeItem { sku: Sku::parse("free_item", sku)? },
            (None, Some(amount), None) => {
                let minor = currency.parse_major("amount_off", amount)?;
                if minor <= 0 {
                    return Err(FieldError::new("amount_off", "must be more than 0"));
                }
                RewardKind::AmountOff { minor }
            }
            (None, None, Some(percent)) if (1..=100).contains(&percent) => RewardKind::PercentOff { percent },
            (None, None, Some(_)) => return Err(FieldError::new("percent_off", "between 1 and 100")),
            _ => return Err(FieldError::new("free_item", "exactly one of free_item, amount_off, percent_off")),
        };
        let cost = Points::parse_positive("cost", file.cost)?;
        let (valid_from, valid_until) =
            (instant("valid_from", &file.valid_from)?, instant("valid_until", &file.valid_until)?);
        if let (Some(from), Some(until)) = (valid_from, valid_until)
            && from >= until
        {
            return Err(FieldError::new("valid_until", "must be after valid_from"));
        }
        Ok(Reward {
            key: bounded_text("key", &file.key, 64)?,
            name: bounded_text("name", &file.name, 200)?,
            kind,
            cost,
            stock: file.stock,
            per_customer_limit: file.per_customer_limit,
            valid_from,
            valid_until,
        })
    }

    /// Whether the customer may have this reward now.
    pub fn check(&self, counts: RewardCounts, available: Points, now: DateTime<Utc>) -> Result<(), Refusal> {
        if self.valid_from.is_some_and(|from| now < from) {
            return Err(Refusal::RewardNotYetValid);
        }
        if self.valid_until.is_some_and(|until| now >= until) {
            return Err(Refusal::RewardExpired);
        }
        if self.stock.is_some_and(|stock| counts.issued_total >= stock) {
            return Err(Refusal::RewardOutOfStock);
        }
        if self.per_customer_limit.is_some_and(|limit| counts.issued_to_customer >= limit) {
            return Err(Refusal::RewardLimitPerCustomer);
        }
        if available < self.cost {
            return Err(Refusal::InsufficientPoints { available, requested: self.cost });
        }
        Ok(())
    }

    /// The ledger redemption of the reward's cost.
    pub fn redeem_command(&self) -> Command {
        Command::Redeem { points: self.cost, note: Some(format!("reward: {}", self.name)) }
    }

    /// The reward as a promotion, to apply to the order at the counter. It combines with other promotions.
    pub fn promotion(&self) -> Promotion {
        let (kind, target) = match &self.kind {
            RewardKind::FreeItem { sku } => (PromotionKind::FreeUnits { units: 1 }, Some(Matches::Sku(sku.clone()))),
            RewardKind::AmountOff { minor } => (PromotionKind::AmountOff { minor: *minor }, None),
            RewardKind::PercentOff { percent } => (PromotionKind::PercentOff { percent: *percent }, None),
        };
        Promotion { name: self.name.clone(), kind, target, stacking: Stacking::Combinable, minimum_minor: 0 }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn rewards_are_checked_in_a_fixed_order() {
        let reward = crate::loyalty::program::tests::example().rewards.remove(0);
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let rich = Points::new(1000);
        let counts = |total, mine| RewardCounts { issued_total: total, issued_to_customer: mine };
        assert_eq!(reward.check(counts(0, 0), rich, now), Ok(()));
        assert_eq!(reward.check(counts(100, 2), rich, now), Err(Refusal::RewardOutOfStock));
        assert_eq!(reward.check(counts(5, 2), rich, now), Err(Refusal::RewardLimitPerCustomer));
        assert_eq!(reward.check(counts(0, 0), Points::new(149), now).unwrap_err().code(), "insufficient_points");
        let later = Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap();
        assert_eq!(reward.check(counts(100, 2), rich, later), Err(Refusal::RewardExpired));
        assert_eq!(reward.redeem_command().fingerprint(), "redeem:150");
        assert_eq!(reward.promotion().kind, PromotionKind::FreeUnits { units: 1 });
    }
}

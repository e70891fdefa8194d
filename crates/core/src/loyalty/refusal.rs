//! Refusals: the ordinary "no" answers of the loyalty rules, each with a stable snake_case code.
//!
//! A refusal is a result, not an error: nothing was written, and the caller shows the code to the shop. The
//! codes are part of the API contract (`409` problem documents carry them), so a code never changes meaning.

use crate::money::Money;

use super::points::Points;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("points must be a whole number of at least 1")]
    InvalidPoints,
    #[error("{requested} points asked for, {available} available")]
    InsufficientPoints { available: Points, requested: Points },
    #[error("no such hold on this wallet")]
    HoldNotFound,
    #[error("the hold expired and its points were released")]
    HoldExpired,
    #[error("the hold was already captured or voided")]
    HoldAlreadyResolved,
    #[error("{requested} points to capture, the hold has {held}")]
    CaptureExceedsHold { held: Points, requested: Points },
    #[error("this request id was used before for a different request")]
    AmountMismatch,
    #[error("no such coupon")]
    CouponNotFound,
    #[error("the coupon has been used as often as it may be")]
    CouponExhausted,
    #[error("this customer has used the coupon as often as they may")]
    CouponLimitPerCustomer,
    #[error("the coupon has expired")]
    CouponExpired,
    #[error("the coupon is not valid yet")]
    CouponNotYetValid,
    #[error("the coupon is for another tier")]
    CouponNotForTier,
    #[error("the coupon is for another segment")]
    CouponNotForSegment,
    #[error("the order is in another currency than the offer")]
    CurrencyMismatch,
    #[error("the order must be at least {minimum}")]
    MinimumNotMet { minimum: Money },
    #[error("the reward is out of stock")]
    RewardOutOfStock,
    #[error("this customer has had the reward as often as they may")]
    RewardLimitPerCustomer,
    #[error("the reward is no longer offered")]
    RewardExpired,
    #[error("the reward is not offered yet")]
    RewardNotYetValid,
    #[error("the program has no such event")]
    UnknownEvent,
    #[error("this customer has earned points for the event as often as they may")]
    EventLimitReached,
    #[error("the reward is not offered now")]
    RewardNotActive,
    #[error("the coupon hold expired; hold the coupon again")]
    CouponHoldExpired,
    #[error("the coupon hold was already confirmed or released")]
    CouponHoldAlreadyResolved,
    #[error("neither the customer's tier nor their segment gives access to this sale")]
    SaleNotForTier,
    #[error("the sale is not open to this token now")]
    SaleNotOpen,
    #[error("the access token is not valid for this sale")]
    AccessTokenInvalid,
}

impl Refusal {
    /// Every code, for the API's error table and its test.
    pub const CODES: [&'static str; 28] = [
        "invalid_points",
        "insufficient_points",
        "hold_not_found",
        "hold_expired",
        "hold_already_resolved",
        "capture_exceeds_hold",
        "amount_mismatch",
        "coupon_not_found",
        "coupon_exhausted",
        "coupon_limit_per_customer",
        "coupon_expired",
        "coupon_not_yet_valid",
        "coupon_not_for_tier",
        "coupon_not_for_segment",
        "currency_mismatch",
        "minimum_not_met",
        "reward_out_of_stock",
        "reward_limit_per_customer",
        "reward_expired",
        "reward_not_yet_valid",
        "unknown_event",
        "event_limit_reached",
        "reward_not_active",
        "coupon_hold_expired",
        "coupon_hold_already_resolved",
        "sale_not_for_tier",
        "sale_not_open",
        "access_token_invalid",
    ];

    /// The stable code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InvalidPoints => "invalid_points",
            Refusal::InsufficientPoints { .. } => "insufficient_points",
            Refusal::HoldNotFound => "hold_not_found",
            Refusal::HoldExpired => "hold_expired",
            Refusal::HoldAlreadyResolved => "hold_already_resolved",
            Refusal::CaptureExceedsHold { .. } => "capture_exceeds_hold",
            Refusal::AmountMismatch => "amount_mismatch",
            Refusal::CouponNotFound => "coupon_not_found",
            Refusal::CouponExhausted => "coupon_exhausted",
            Refusal::CouponLimitPerCustomer => "coupon_limit_per_customer",
            Refusal::CouponExpired => "coupon_expired",
            Refusal::CouponNotYetValid => "coupon_not_yet_valid",
            Refusal::CouponNotForTier => "coupon_not_for_tier",
            Refusal::CouponNotForSegment => "coupon_not_for_segment",
            Refusal::CurrencyMismatch => "currency_mismatch",
            Refusal::MinimumNotMet { .. } => "minimum_not_met",
            Refusal::RewardOutOfStock => "reward_out_of_stock",
            Refusal::RewardLimitPerCustomer => "reward_limit_per_customer",
            Refusal::RewardExpired => "reward_expired",
            Refusal::RewardNotYetValid => "reward_not_yet_valid",
            Refusal::UnknownEvent => "unknown_event",
            Refusal::EventLimitReached => "event_limit_reached",
            Refusal::RewardNotActive => "reward_not_active",
            Refusal::CouponHoldExpired => "coupon_hold_expired",
            Refusal::CouponHoldAlreadyResolved => "coupon_hold_already_resolved",
            Refusal::SaleNotForTier => "sale_not_for_tier",
            Refusal::SaleNotOpen => "sale_not_open",
            Refusal::AccessTokenInvalid => "access_token_invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_listed() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Refusal::CODES {
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
            assert!(seen.insert(code), "{code} twice");
        }
        let p = Points::new(1);
        assert_eq!(Refusal::InsufficientPoints { available: p, requested: p }.code(), "insufficient_points");
        assert!(Refusal::CODES.contains(&Refusal::AmountMismatch.code()));
        assert_eq!(Refusal::HoldExpired.to_string(), "the hold expired and its points were released");
    }
}

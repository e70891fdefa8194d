//! Coupons: unguessable codes, and the checks a code passes before its promotion applies.
//!
//! Codes are generated from random bytes the caller supplies (at least 8, so at least 64 bits), written in
//! Crockford's base 32 (digits and capitals without I, L, O, U). Reading a code forgives what people get
//! wrong: case, dashes and spaces, O for 0, I or L for 1.
//!
//! [`Coupon::check`] refuses, in this order: not yet valid, expired, exhausted (global limit), limit per
//! customer, tier, segment, currency, minimum order. The counts it checks come from the store, which
//! enforces the limits again in the writing statement (a check here is advice; the database decides).
//! A redemption may be held during a checkout: a hold counts against the limits until it is released or
//! its time runs out ([`usage`]).

use chrono::{DateTime, Utc};

use crate::ids::CustomerId;
use crate::money::Money;
use crate::text::FieldError;

use super::promotions::Promotion;
use super::refusal::Refusal;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A coupon code in its canonical form: capitals and digits, no separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CouponCode(String);

impl CouponCode {
    pub const MIN_RANDOM_BYTES: usize = 8;

    /// A new code from `random` bytes (at least 8): every bit is kept, 5 bits a character.
    pub fn generate(random: &[u8]) -> Result<CouponCode, FieldError> {
        if !(Self::MIN_RANDOM_BYTES..=32).contains(&random.len()) {
            return Err(FieldError::new("random", "a code needs 8 to 32 random bytes"));
        }
        let bits = random.len() * 8;
        let mut code = String::with_capacity(bits.div_ceil(5));
        for c in 0..bits.div_ceil(5) {
            let mut value = 0usize;
            for b in c * 5..c * 5 + 5 {
                let bit = random.get(b / 8).map_or(0, |byte| (byte >> (7 - b % 8)) & 1);
                value = value << 1 | usize::from(bit);
            }
            code.push(char::from(ALPHABET[value]));
        }
        Ok(CouponCode(code))
    }

    /// Reads a code as typed: case, spaces and dashes do not matter; O reads as 0, I and L as 1. Shops may
    /// also choose readable codes (`SUMMER25`), read the same way.
    pub fn parse(field: &str, raw: &str) -> Result<CouponCode, FieldError> {
        let mut code = String::with_capacity(raw.len());
        for c in raw.trim().chars().filter(|c| !matches!(c, '-' | ' ')) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c if c.is_ascii_alphanumeric() => c,
                _ => return Err(FieldError::new(field, "a coupon code has only letters, digits and dashes")),
            };
            code.push(c);
        }
        if !(4..=64).contains(&code.len()) {
            return Err(FieldError::new(field, "a coupon code has 4 to 64 letters and digits"));
        }
        Ok(CouponCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code in groups of four for printing: `7F3K-9QWE-RT5M-X`.
    pub fn grouped(&self) -> String {
        self.0.as_bytes().chunks(4).map(|g| std::str::from_utf8(g).expect("ASCII")).collect::<Vec<_>>().join("-")
    }
}

/// A coupon: a code, the promotion it unlocks, and who may use it when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    pub code: CouponCode,
    pub promotion: Promotion,
    /// Valid from `valid_from` (inclusive) until `valid_until` (exclusive).
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// The least order (net, before promotions) it applies to; its currency is the coupon's currency.
    pub minimum: Option<Money>,
    /// Uses in all; `Some(1)` is a single-use code.
    pub max_uses: Option<u32>,
    pub max_uses_per_customer: Option<u32>,
    /// Only customers in one of these tiers (any customer when empty).
    pub tiers: Vec<String>,
    /// Only customers in one of these segments (any customer when empty).
    pub segments: Vec<String>,
}

/// How often a coupon was used (or is held by a checkout), overall and by this customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CouponUsage {
    pub total: u32,
    pub by_customer: u32,
}

/// The customer asking, as far as a coupon cares.
#[derive(Debug, Clone, Copy)]
pub struct CouponCustomer<'a> {
    pub tier: Option<&'a str>,
    pub segments: &'a [String],
}

impl Coupon {
    /// Whether the coupon may be used on an order of `order_total` (net, before promotions) at `now`.
    pub fn check(
        &self,
        usage: CouponUsage,
        customer: CouponCustomer<'_>,
        order_total: Money,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        if self.valid_from.is_some_and(|from| now < from) {
            return Err(Refusal::CouponNotYetValid);
        }
        if self.valid_until.is_some_and(|until| now >= until) {
            return Err(Refusal::CouponExpired);
        }
        if self.max_uses.is_some_and(|max| usage.total >= max) {
            return Err(Refusal::CouponExhausted);
        }
        if self.max_uses_per_customer.is_some_and(|max| usage.by_customer >= max) {
            return Err(Refusal::CouponLimitPerCustomer);
        }
        if !self.tiers.is_empty() && !customer.tier.is_some_and(|t| self.tiers.iter().any(|x| x == t)) {
            return Err(Refusal::CouponNotForTier);
        }
        if !self.segments.is_empty() && !customer.segments.iter().any(|s| self.segments.contains(s)) {
            return Err(Refusal::CouponNotForSegment);
        }
        if let Some(minimum) = self.minimum {
            if minimum.currency != order_total.currency {
                return Err(Refusal::CurrencyMismatch);
            }
            if order_total.minor < minimum.minor {
                return Err(Refusal::MinimumNotMet { minimum });
            }
        }
        Ok(())
    }
}

/// Where a redemption of a coupon stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedemptionState {
    /// Reserved by a checkout until the given time.
    Held {
        until: DateTime<Utc>,
    },
    Redeemed,
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CouponRedemption {
    pub customer: CustomerId,
    pub state: RedemptionState,
}

/// Counts the uses of a coupon at `now`: redemptions, and holds whose time has not run out.
pub fn usage(redemptions: &[CouponRedemption], customer: CustomerId, now: DateTime<Utc>) -> CouponUsage {
    let counts = |r: &&CouponRedemption| match r.state {
        RedemptionState::Redeemed => true,
        RedemptionState::Held { until } => now < until,
        RedemptionState::Released => false,
    };
    let counted: Vec<&CouponRedemption> = redemptions.iter().filter(counts).collect();
    CouponUsage {
        total: counted.len() as u32,
        by_customer: counted.iter().filter(|r| r.customer == customer).count() as u32,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::loyalty::promotions::{PromotionKind, Stacking};
    use crate::money::Currency;

    #[test]
    fn generated_codes_keep_every_bit_and_read_back_forgivingly() {
        let code = CouponCode::generate(&[0xff; 8]).unwrap();
        assert_eq!(code.as_str(), "ZZZZZZZZZZZZY", "64 bits in 13 characters");
        let zero = CouponCode::generate(&[0; 10]).unwrap();
        assert_eq!(zero.as_str().len(), 16);
        assert!(CouponCode::generate(&[1; 7]).is_err(), "fewer than 64 bits");
        let c = CouponCode::generate(&[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]).unwrap();
        assert!(c.as_str().bytes().all(|b| ALPHABET.contains(&b)));
        let typed = c.grouped().to_lowercase().replace('0', "o").replace('1', "l");
        assert_eq!(CouponCode::parse("code", &typed).unwrap(), c);
        assert_eq!(CouponCode::parse("code", "summer-25").unwrap().as_str(), "SUMMER25");
        assert!(CouponCode::parse("code", "ab!").is_err());
    }

    fn coupon() -> Coupon {
        let eur = Currency::parse("c", "EUR").unwrap();
        let promotion = Promotion::new("10%", PromotionKind::PercentOff { percent: 10 }, None, Stacking::Combinable, 0);
        Coupon {
            code: CouponCode::parse("code", "WELCOME10").unwrap(),
            promotion: promotion.unwrap(),
            valid_from: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
            valid_until: Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()),
            minimum: Some(Money::new(2000, eur)),
            max_uses: Some(5),
            max_uses_per_customer: Some(1),
            tiers: vec!["Gold".into()],
            segments: vec![],
        }
    }

    #[test]
    fn coupons_are_checked_in_a_fixed_order() {
        let c = coupon();
        let eur = Currency::parse("c", "EUR").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap();
        let gold = CouponCustomer { tier: Some("Gold"), segments: &[] };
        let ok = Money::new(2000, eur);
        let used = |total, by_customer| CouponUsage { total, by_customer };
        assert_eq!(c.check(used(4, 0), gold, ok, now), Ok(()));
        assert_eq!(c.check(used(5, 1), gold, ok, now), Err(Refusal::CouponExhausted));
        assert_eq!(c.check(used(1, 1), gold, ok, now), Err(Refusal::CouponLimitPerCustomer));
        let silver = CouponCustomer { tier: Some("Silver"), segments: &[] };
        assert_eq!(c.check(used(0, 0), silver, ok, now), Err(Refusal::CouponNotForTier));
        assert_eq!(c.check(used(0, 0), gold, Money::new(1999, eur), now), Err(Refusal::MinimumNotMet { minimum: ok }));
        let usd = Money::new(5000, Currency::parse("c", "USD").unwrap());
        assert_eq!(c.check(used(0, 0), gold, usd, now), Err(Refusal::CurrencyMismatch));
        assert_eq!(c.check(used(9, 9), gold, ok, c.valid_until.unwrap()), Err(Refusal::CouponExpired));
        let early = c.valid_from.unwrap() - Duration::seconds(1);
        assert_eq!(c.check(used(9, 9), gold, ok, early), Err(Refusal::CouponNotYetValid));
        let mut segmented = c.clone();
        segmented.segments = vec!["at_risk".into()];
        assert_eq!(segmented.check(used(0, 0), gold, ok, now), Err(Refusal::CouponNotForSegment));
    }

    #[test]
    fn held_redemptions_count_until_released_or_timed_out() {
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let (a, b) = (CustomerId::from_key(1), CustomerId::from_key(2));
        let r = |customer, state| CouponRedemption { customer, state };
        let redemptions = [
            r(a, RedemptionState::Redeemed),
            r(b, RedemptionState::Held { until: now + Duration::minutes(5) }),
            r(a, RedemptionState::Held { until: now }),
            r(b, RedemptionState::Released),
        ];
        assert_eq!(usage(&redemptions, a, now), CouponUsage { total: 2, by_customer: 1 });
        assert_eq!(usage(&redemptions, b, now), CouponUsage { total: 2, by_customer: 1 });
    }
}

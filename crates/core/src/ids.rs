//! Public identifiers: a short type prefix and a positive number (`cus_42`).
//!
//! The prefix makes a pasted id self-describing and stops an order id from being
//! used where a customer id is expected.

use std::fmt;
use std::str::FromStr;

use crate::text::FieldError;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Wraps a database key; keys are positive.
            pub fn from_key(key: i64) -> Self {
                debug_assert!(key > 0, "database keys are positive");
                $name(key)
            }

            pub fn key(self) -> i64 {
                self.0
            }

            pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
                raw.parse().map_err(|()| {
                    FieldError::new(field, format!("must look like {}123", $prefix))
                })
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(raw: &str) -> Result<Self, ()> {
                let digits = raw.strip_prefix($prefix).ok_or(())?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
                    return Err(());
                }
                digits.parse::<i64>().map($name).map_err(|_| ())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }
    };
}

prefixed_id!(
    /// A customer, `cus_…`.
    CustomerId, "cus_"
);
prefixed_id!(
    /// An order, `ord_…`.
    OrderId, "ord_"
);
prefixed_id!(
    /// A product, `prd_…`.
    ProductId, "prd_"
);
prefixed_id!(
    /// A refund, `ref_…`.
    RefundId, "ref_"
);
prefixed_id!(
    /// A loyalty hold placed during a checkout, `hld_…` (within its wallet it is `loyalty::HoldId`).
    LoyaltyHoldId, "hld_"
);
prefixed_id!(
    /// A reward of the catalogue, `rwd_…`.
    RewardId, "rwd_"
);
prefixed_id!(
    /// A coupon held by a checkout, `chl_…`.
    CouponHoldId, "chl_"
);
prefixed_id!(
    /// A promotion, `prm_…`.
    PromotionId, "prm_"
);
prefixed_id!(
    /// A sale with early access, `sal_…`.
    SaleId, "sal_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_other_kinds() {
        let id = CustomerId::from_key(42);
        assert_eq!(id.to_string(), "cus_42");
        assert_eq!("cus_42".parse::<CustomerId>(), Ok(id));
        assert!("ord_42".parse::<CustomerId>().is_err());
        assert!("cus_".parse::<CustomerId>().is_err());
        assert!("cus_042".parse::<CustomerId>().is_err());
        assert!("cus_-1".parse::<CustomerId>().is_err());
        assert!("cus_99999999999999999999".parse::<CustomerId>().is_err());
        assert_eq!(OrderId::parse("order_id", "x").unwrap_err().field, "order_id");
    }
}

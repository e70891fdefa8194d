//! Whole points and multipliers: integers only, no float ever holds a balance.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use serde::Deserialize;

use crate::text::FieldError;

/// A number of whole loyalty points. Signed, so that a balance or an adjustment can say which way it goes;
/// an amount moved by a posting is always positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Points(i64);

impl Points {
    pub const ZERO: Points = Points(0);
    /// The largest amount one request may move: keeps every sum of a wallet far from overflow.
    pub const MAX_REQUEST: i64 = 1_000_000_000_000;

    pub const fn new(points: i64) -> Self {
        Points(points)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// An amount to move: at least 1 and at most [`Points::MAX_REQUEST`].
    pub fn parse_positive(field: &str, points: i64) -> Result<Self, FieldError> {
        if !(1..=Self::MAX_REQUEST).contains(&points) {
            return Err(FieldError::new(field, format!("must be between 1 and 10^12 points, got {points}")));
        }
        Ok(Points(points))
    }

    /// A points figure in a program file: zero or more.
    pub fn parse_non_negative(field: &str, points: i64) -> Result<Self, FieldError> {
        if !(0..=Self::MAX_REQUEST).contains(&points) {
            return Err(FieldError::new(field, format!("must be between 0 and 10^12 points, got {points}")));
        }
        Ok(Points(points))
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Add for Points {
    type Output = Points;
    fn add(self, rhs: Points) -> Points {
        Points(self.0 + rhs.0)
    }
}

impl Sub for Points {
    type Output = Points;
    fn sub(self, rhs: Points) -> Points {
        Points(self.0 - rhs.0)
    }
}

impl AddAssign for Points {
    fn add_assign(&mut self, rhs: Points) {
        self.0 += rhs.0;
    }
}

impl SubAssign for Points {
    fn sub_assign(&mut self, rhs: Points) {
        self.0 -= rhs.0;
    }
}

impl Neg for Points {
    type Output = Points;
    fn neg(self) -> Points {
        Points(-self.0)
    }
}

impl Sum for Points {
    fn sum<I: Iterator<Item = Points>>(iter: I) -> Points {
        iter.fold(Points::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Points> for Points {
    fn sum<I: Iterator<Item = &'a Points>>(iter: I) -> Points {
        iter.copied().sum()
    }
}

/// A multiplier in hundredths: `Multiplier::ONE` is 1x, 150 hundredths is 1.5x.
///
/// Program files write it as a string or a whole number (`"1.5"`, `"1.5x"`, `2`); a TOML float such as `1.5`
/// is refused, so that no float ever enters a points computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Multiplier(u32);

impl Multiplier {
    pub const ONE: Multiplier = Multiplier(100);
    /// 100x: anything larger is a typo.
    pub const MAX_HUNDREDTHS: u32 = 10_000;

    pub fn from_hundredths(field: &str, hundredths: i64) -> Result<Self, FieldError> {
        if !(0..=i64::from(Self::MAX_HUNDREDTHS)).contains(&hundredths) {
            return Err(FieldError::new(field, "a multiplier is between 0 and 100"));
        }
        Ok(Multiplier(hundredths as u32))
    }

    /// Parses `"2"`, `"1.5"`, `"1.25x"`: at most two decimals.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        let number = trimmed.strip_suffix(['x', 'X']).unwrap_or(trimmed);
        let hundredths = crate::money::parse_decimal_minor(number, 2)
            .filter(|_| !number.contains(','))
            .ok_or_else(|| FieldError::new(field, format!("{trimmed:?} is not a multiplier such as \"1.5\"")))?;
        Self::from_hundredths(field, hundredths)
    }

    pub fn hundredths(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Multiplier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, fraction) = (self.0 / 100, self.0 % 100);
        match fraction {
            0 => write!(f, "{whole}x"),
            f2 if f2 % 10 == 0 => write!(f, "{whole}.{}x", f2 / 10),
            f2 => write!(f, "{whole}.{f2:02}x"),
        }
    }
}

impl<'de> Deserialize<'de> for Multiplier {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Whole(i64),
            Text(String),
        }
        let parsed = match Raw::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("a multiplier is a whole number or a string such as \"1.5\""))?
        {
            Raw::Whole(n) => n.checked_mul(100).map_or_else(
                || Err(FieldError::new("multiplier", "too large")),
                |h| Multiplier::from_hundredths("multiplier", h),
            ),
            Raw::Text(s) => Multiplier::parse("multiplier", &s),
        };
        parsed.map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_add_up_and_bound_requests() {
        let total: Points = [Points::new(3), Points::new(4)].iter().sum();
        assert_eq!(total, Points::new(7));
        assert_eq!(-(total - Points::new(10)), Points::new(3));
        assert!(Points::parse_positive("points", 0).is_err());
        assert!(Points::parse_positive("points", Points::MAX_REQUEST + 1).is_err());
        assert_eq!(Points::parse_positive("points", 5).unwrap().get(), 5);
        assert!(Points::parse_non_negative("points", 0).is_ok());
    }

    #[test]
    fn multipliers_parse_without_floats() {
        assert_eq!(Multiplier::parse("m", "1.5").unwrap().hundredths(), 150);
        assert_eq!(Multiplier::parse("m", "2x").unwrap().hundredths(), 200);
        assert_eq!(Multiplier::parse("m", "1.25").unwrap().to_string(), "1.25x");
        assert_eq!(Multiplier::parse("m", "1.5").unwrap().to_string(), "1.5x");
        assert_eq!(Multiplier::ONE.to_string(), "1x");
        assert!(Multiplier::parse("m", "1.555").is_err());
        assert!(Multiplier::parse("m", "-1").is_err());
        assert!(Multiplier::parse("m", "1,5").is_err());
        assert!(Multiplier::parse("m", "101").is_err());
    }
}

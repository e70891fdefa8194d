//! Money in integer minor units of an ISO 4217 currency. No float ever holds an amount.

use std::fmt;

use crate::text::FieldError;

/// An active ISO 4217 currency code, with the number of digits of its minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    minor_digits: u8,
}

/// Active ISO 4217 codes and their minor-unit digits (ISO 4217 list one).
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

impl Currency {
    /// Parses a three-letter code; lower case is accepted and normalised.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let upper = raw.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == upper)
            .map(|&(code, minor_digits)| {
                let b = code.as_bytes();
                Currency { code: [b[0], b[1], b[2]], minor_digits }
            })
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    format!("unknown currency {:?}: expected an ISO 4217 code such as EUR", raw.trim()),
                )
            })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("currency codes are ASCII")
    }

    pub fn minor_digits(&self) -> u8 {
        self.minor_digits
    }

    /// Converts a decimal amount written in major units ("12.5", "-3", "1,234.00") to minor units,
    /// refusing more decimals than the currency has.
    pub fn parse_major(&self, field: &str, raw: &str) -> Result<i64, FieldError> {
        parse_decimal_minor(raw, self.minor_digits)
            .ok_or_else(|| FieldError::new(field, format!("{:?} is not an amount in {}", raw.trim(), self.code())))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Parses a decimal number into an integer scaled by 10^digits, exactly.
///
/// Accepts a leading sign and up to `digits` decimals after a `.`. Thousands separators (`,` or `_`) are
/// accepted only between groups of three digits (`1,234.50`). Without a `.`, a single `,` followed by one
/// to `digits` digits is a decimal comma (`2,50`), as European exports write it. Anything else is refused.
pub fn parse_decimal_minor(raw: &str, digits: u8) -> Option<i64> {
    let s = raw.trim();
    let (negative, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let decimal_comma = !s.contains('.')
        && s.matches(',').count() == 1
        && s.rsplit_once(',').is_some_and(|(_, f)| (1..=digits as usize).contains(&f.len()));
    let (whole, fraction) = match (decimal_comma, s.split_once('.')) {
        (true, _) => s.split_once(',').expect("one comma"),
        (false, Some((w, f))) => (w, f),
        (false, None) => (s, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if fraction.len() > digits as usize || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let groups: Vec<&str> = whole.split([',', '_']).collect();
    let grouped_well = groups.len() == 1
        || (!groups[0].is_empty() && groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3));
    if !grouped_well {
        return None;
    }
    let mut value: i64 = 0;
    for b in groups.concat().bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    for i in 0..digits as usize {
        let d = fraction.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        value = value.checked_mul(10)?.checked_add(d)?;
    }
    Some(if negative { -value } else { value })
}

/// An amount of money: integer minor units and their currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = u32::from(self.currency.minor_digits);
        if digits == 0 {
            return write!(f, "{} {}", self.minor, self.currency);
        }
        let scale = 10i64.pow(digits);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale as u64,
            abs % scale as u64,
            self.currency,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_checked_against_iso_4217() {
        let eur = Currency::parse("currency", "eur").unwrap();
        assert_eq!(eur.code(), "EUR");
        assert_eq!(Currency::parse("currency", "JPY").unwrap().minor_digits(), 0);
        let err = Currency::parse("currency", "EUX").unwrap_err();
        assert_eq!(err.field, "currency");
        assert!(err.message.contains("EUX"));
    }

    #[test]
    fn decimal_amounts_convert_exactly() {
        let eur = Currency::parse("c", "EUR").unwrap();
        assert_eq!(eur.parse_major("a", "12.5"), Ok(1250));
        assert_eq!(eur.parse_major("a", "1,234.05"), Ok(123405));
        assert_eq!(eur.parse_major("a", "-0.01"), Ok(-1));
        assert_eq!(eur.parse_major("a", "7"), Ok(700));
        assert_eq!(eur.parse_major("a", ".5"), Ok(50));
        assert_eq!(eur.parse_major("a", "2,50"), Ok(250), "a decimal comma");
        assert_eq!(eur.parse_major("a", "2,5"), Ok(250));
        assert_eq!(eur.parse_major("a", "1,234"), Ok(123400), "a thousands separator");
        assert_eq!(eur.parse_major("a", "1,234,567.89"), Ok(123456789));
        assert!(eur.parse_major("a", "12,34,567.00").is_err(), "groups of three only");
        assert!(eur.parse_major("a", "1,2345").is_err());
        assert_eq!(eur.parse_major("a", ",5"), Ok(50), "like .5");
        assert!(eur.parse_major("a", "1.234").is_err());
        assert!(eur.parse_major("a", "abc").is_err());
        assert!(eur.parse_major("a", "").is_err());
        assert!(eur.parse_major("a", "99999999999999999999").is_err());
        assert_eq!(Money::new(-1250, eur).to_string(), "-12.50 EUR");
        let bhd = Currency::parse("c", "BHD").unwrap();
        assert_eq!(Money::new(1005, bhd).to_string(), "1.005 BHD");
    }
}

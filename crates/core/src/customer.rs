//! Customers: who they are, how to reach them, and whether they agreed to marketing.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use crate::ids::CustomerId;
use crate::text::{ExternalId, FieldError, bounded_text};

/// An e-mail address, trimmed and lower-cased so that addresses differing only in case are one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim().to_lowercase();
        let bad = |why: &str| Err(FieldError::new(field, format!("{:?} is not an e-mail address: {why}", raw.trim())));
        if s.len() > 254 {
            return bad("longer than 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return bad("no @");
        };
        if local.is_empty() || local.contains('@') {
            return bad("the part before @ is empty or has another @");
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return bad("the domain after @ is not a domain name");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',') {
            return bad("it contains spaces or characters not allowed in an address");
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number reduced to `+` and digits (spaces, dashes, dots and brackets dropped), 6 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let mut out = String::with_capacity(raw.len());
        for (i, c) in raw.trim().chars().enumerate() {
            match c {
                '+' if i == 0 => out.push('+'),
                '0'..='9' => out.push(c),
                ' ' | '-' | '.' | '(' | ')' | '/' => {}
                _ => {
                    return Err(FieldError::new(
                        field,
                        format!("{:?} is not a phone number: unexpected {c:?}", raw.trim()),
                    ));
                }
            }
        }
        let digits = out.trim_start_matches('+').len();
        if !(6..=15).contains(&digits) {
            return Err(FieldError::new(
                field,
                format!("{:?} is not a phone number: expected 6 to 15 digits", raw.trim()),
            ));
        }
        Ok(Phone(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A language tag such as `en`, `de-CH` or `pt-BR`.
pub fn parse_locale(field: &str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    let mut parts = s.split(['-', '_']);
    let language = parts.next().unwrap_or("");
    let ok_language = (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_alphabetic());
    let ok_rest = parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok_language && ok_rest {
        Ok(s.replace('_', "-"))
    } else {
        Err(FieldError::new(field, format!("{s:?} is not a language tag such as en or de-CH")))
    }
}

/// An IANA time zone name such as `Europe/Berlin`.
pub fn parse_time_zone(field: &str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    s.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| FieldError::new(field, format!("{s:?} is not an IANA time zone such as Europe/Berlin")))
}

/// A date of birth: a real calendar date, not in the future, not before 1900.
pub fn parse_birthday(field: &str, raw: &str, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let date = plain_date(raw.trim().as_bytes())
        .or_else(|| NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok())
        .ok_or_else(|| FieldError::new(field, format!("{:?} is not a date that exists (YYYY-MM-DD)", raw.trim())))?;
    if date > today || date < NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date") {
        return Err(FieldError::new(field, format!("{date} is not a plausible birthday")));
    }
    Ok(date)
}

/// `YYYY-MM-DD` with exactly these digits, when the date exists: what `%Y-%m-%d` reads from it, at once.
fn plain_date(b: &[u8]) -> Option<NaiveDate> {
    let b: &[u8; 10] = b.try_into().ok()?;
    let digit = |i: usize| b[i].is_ascii_digit().then(|| u32::from(b[i] - b'0'));
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digit(0)? * 1000 + digit(1)? * 100 + digit(2)? * 10 + digit(3)?;
    let month = digit(5)? * 10 + digit(6)?;
    let day = digit(8)? * 10 + digit(9)?;
    NaiveDate::from_ymd_opt(year as i32, month, day)
}

/// A person's display name.
pub fn parse_name(field: &str, raw: &str) -> Result<String, FieldError> {
    bounded_text(field, raw, 200)
}

/// Marketing consent: whether it was given, when, and where (a form, the till, an import).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consent {
    pub marketing: bool,
    pub recorded_at: Option<DateTime<Utc>>,
    pub source: Option<String>,
}

/// Free attributes: up to 50 short string pairs.
pub fn parse_attributes(field: &str, pairs: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, FieldError> {
    if pairs.len() > 50 {
        return Err(FieldError::new(field, "at most 50 attributes"));
    }
    for (k, v) in &pairs {
        bounded_text(&format!("{field}.{k}"), k, 64)?;
        if v.chars().count() > 1000 {
            return Err(FieldError::new(format!("{field}.{k}"), "values are at most 1000 characters"));
        }
    }
    Ok(pairs)
}

/// The fields of a new customer; everything is optional, so an anonymous till customer is possible.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerDraft {
    pub external_id: Option<ExternalId>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub name: Option<String>,
    pub birthday: Option<NaiveDate>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub consent: Consent,
    pub attributes: BTreeMap<String, String>,
}

/// A partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerPatch {
    pub email: Option<Option<Email>>,
    pub phone: Option<Option<Phone>>,
    pub name: Option<Option<String>>,
    pub birthday: Option<Option<NaiveDate>>,
    pub locale: Option<Option<String>>,
    pub time_zone: Option<Option<String>>,
    pub consent: Option<Consent>,
    pub attributes: Option<BTreeMap<String, String>>,
}

/// A stored customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub external_id: Option<ExternalId>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub name: Option<String>,
    pub birthday: Option<NaiveDate>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub consent: Consent,
    pub attributes: BTreeMap<String, String>,
    pub first_seen_at: DateTime<Utc>,
    /// Set when the customer was erased: personal fields are gone, orders stay under a pseudonym.
    pub erased_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("email", " Ana@Example.COM ").unwrap().as_str(), "ana@example.com");
        for bad in ["", "ana", "@x.com", "ana@", "ana@x", "ana@.x", "a na@x.com", "ana@x..com"] {
            let err = Email::parse("email", bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
    }

    #[test]
    fn phones_keep_only_digits_and_a_leading_plus() {
        assert_eq!(Phone::parse("phone", "+49 (30) 123-456").unwrap().as_str(), "+4930123456");
        assert!(Phone::parse("phone", "12").is_err());
        assert!(Phone::parse("phone", "12a4567").is_err());
        assert!(Phone::parse("phone", "1+234567").is_err());
    }

    #[test]
    fn locales_time_zones_and_birthdays() {
        assert_eq!(parse_locale("locale", "de_CH").unwrap(), "de-CH");
        assert!(parse_locale("locale", "german").is_err());
        assert_eq!(parse_time_zone("time_zone", "Europe/Berlin").unwrap(), "Europe/Berlin");
        assert!(parse_time_zone("time_zone", "Mars/Olympus").is_err());
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert!(parse_birthday("birthday", "1990-02-28", today).is_ok());
        assert!(parse_birthday("birthday", "1990-02-30", today).is_err());
        assert!(parse_birthday("birthday", "2030-01-01", today).is_err());
        for raw in [
            "1990-02-28",
            "1990-2-28",
            "1990-02-29",
            "2000-02-29",
            "0990-01-01",
            "1990-13-01",
            "1990-00-10",
            "1990-01-00",
            "+1990-01-01",
            "1990/01/01",
            "19900101",
            " 1990-01-01",
            "1990-01-01x",
        ] {
            let slow = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok();
            if let Some(fast) = plain_date(raw.as_bytes()) {
                assert_eq!(Some(fast), slow, "{raw}");
            }
            let expected = slow.filter(|d| *d <= today && *d >= NaiveDate::from_ymd_opt(1900, 1, 1).unwrap());
            assert_eq!(parse_birthday("birthday", raw, today).ok(), expected, "{raw}");
        }
    }
}

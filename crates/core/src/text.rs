//! Bounded text values and the error every parser here returns.

use std::fmt;

/// A value that could not be parsed, with the name of the field it was meant for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }

    /// The same error reported under a longer path, e.g. `lines[2].` + `quantity`.
    pub fn within(self, prefix: &str) -> Self {
        FieldError { field: format!("{prefix}{}", self.field), message: self.message }
    }
}

/// Trims `raw` and checks it is non-empty, at most `max_chars` long and free of control characters.
pub fn bounded_text(field: &str, raw: &str, max_chars: usize) -> Result<String, FieldError> {
    check_bounded_text(field, raw, max_chars).map(str::to_owned)
}

/// What [`bounded_text`] checks, without copying: the trimmed text, or why it is refused.
pub fn check_bounded_text<'a>(field: &str, raw: &'a str, max_chars: usize) -> Result<&'a str, FieldError> {
    // Plain ASCII text that needs no trimming (the common case), decided byte by byte.
    let b = raw.as_bytes();
    if let (Some(&first), Some(&last)) = (b.first(), b.last())
        && b.len() <= max_chars
        && first != b' '
        && last != b' '
        && b.iter().all(|&c| (b' '..0x7f).contains(&c))
    {
        return Ok(raw);
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(FieldError::new(field, format!("must be at most {max_chars} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(trimmed)
}

/// The identifier a customer, order or product has in the system it came from (a till, a web shop, an export).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);

impl ExternalId {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        bounded_text(field, raw, Self::MAX_CHARS).map(ExternalId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ascii_is_checked_as_any_text_is() {
        for raw in
            ["a", " a", "a ", "a b", "\ta", "a\u{7f}", "a\u{1f}b", "ü", "a\u{85}", "\u{a0}a", "abcd", "abcde", ""]
        {
            let slow = {
                let trimmed = raw.trim();
                !trimmed.is_empty() && trimmed.chars().count() <= 4 && !trimmed.chars().any(char::is_control)
            };
            assert_eq!(check_bounded_text("f", raw, 4).is_ok(), slow, "{raw:?}");
            if slow {
                assert_eq!(check_bounded_text("f", raw, 4).unwrap(), raw.trim());
            }
        }
    }

    #[test]
    fn external_ids_are_trimmed_and_bounded() {
        assert_eq!(ExternalId::parse("external_id", "  A-17 ").unwrap().as_str(), "A-17");
        assert_eq!(ExternalId::parse("external_id", " ").unwrap_err().field, "external_id");
        assert!(ExternalId::parse("external_id", &"x".repeat(129)).is_err());
        assert!(ExternalId::parse("external_id", "a\u{7}b").is_err());
    }
}

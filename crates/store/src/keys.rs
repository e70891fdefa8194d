//! API keys: `rgl_` and 40 random hex digits (160 bits). The first 12 digits are the key's public
//! prefix, used to find it and shown in listings; only a SHA-256 hash of the whole key is stored.
//! A fast hash is right here: the secret is random and long, so there is nothing to brute-force.

use chrono::{DateTime, Utc};
use rand::RngCore;
use regulars_core::Role;
use sha2::{Digest, Sha256};

const KEY_PREFIX: &str = "rgl_";
const PUBLIC_DIGITS: usize = 12;
const SECRET_BYTES: usize = 20;

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    /// The public part, e.g. `rgl_3fa9c2e1d0b4`.
    pub prefix: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created: the secret exists only here.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub secret: String,
}

pub(crate) fn generate() -> (String, String) {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = format!("{KEY_PREFIX}{digits}");
    let prefix = secret[..KEY_PREFIX.len() + PUBLIC_DIGITS].to_owned();
    (prefix, secret)
}

/// The public prefix of a presented key, if it has the shape of one.
pub(crate) fn prefix_of(secret: &str) -> Option<&str> {
    let digits = secret.strip_prefix(KEY_PREFIX)?;
    let well_formed = digits.len() == SECRET_BYTES * 2 && digits.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| &secret[..KEY_PREFIX.len() + PUBLIC_DIGITS])
}

pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two hashes in time independent of where they differ.
pub(crate) fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_a_findable_prefix_and_a_hash() {
        let (prefix, secret) = generate();
        assert_eq!(prefix_of(&secret), Some(prefix.as_str()));
        assert_eq!(secret.len(), 44);
        assert!(prefix_of("rgl_short").is_none());
        assert!(prefix_of(&secret.replace("rgl_", "xyz_")).is_none());
        assert!(hashes_match(&hash_secret(&secret), &hash_secret(&secret)));
        assert!(!hashes_match(&hash_secret(&secret), &hash_secret("other")));
    }
}

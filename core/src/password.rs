//! Password hashing with Argon2id (RFC 9106), in PHC string format.
//!
//! Parameters are the argon2 crate's defaults (Argon2id v19, m=19 MiB, t=2, p=1 — the OWASP
//! recommendation). The PHC string records them, so raising them later still verifies old
//! hashes. Hashing is deliberately slow (tens of milliseconds): async callers should run it on
//! a blocking thread, which the store does.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password: must be at least {MIN_LEN} characters")]
    TooShort,
    #[error("password: must be at most {MAX_LEN} characters")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hash(String),
}

pub const MIN_LEN: usize = 8;
/// Bounds the work an attacker can make us do per login attempt.
pub const MAX_LEN: usize = 1024;

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True if `password` matches the PHC string `stored`. A malformed stored hash is a
/// non-match, not an error: the login simply fails.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_LEN {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse!", &h));
        assert!(!verify("correct horse", "not a hash"));
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
    }
}

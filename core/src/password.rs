//! Password hashing with Argon2id (RFC 9106), in PHC string format.
//!
//! Parameters are the argon2 crate's defaults (Argon2id v19, m=19 MiB, t=2, p=1 — the OWASP
//! recommendation). The PHC string records them, so raising them later still verifies old
//! hashes. Hashing is deliberately slow (tens of milliseconds): async callers should run it on
//! a blocking thread, which the store does.
//!
//! A new password must be at least [`MIN_LEN`] characters and not a common one ([`check`], issue
//! 15): a short built-in list of what guessing lists try first (`password/common.txt`), also with
//! digits and symbols stuck on either end, and runs such as `aaaaaaaaaaaa` or `123456789012`.
//! Every way of setting a password (web forms, API, CLI, the demo seed) goes through [`hash`],
//! so the rule is enforced here once. Verifying does not re-check it: a login made before the
//! rule keeps working until its owner changes it.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password: must be at least {MIN_LEN} characters")]
    TooShort,
    #[error("password: must be at most {MAX_LEN} characters")]
    TooLong,
    #[error("password: is one of the most common passwords (guessed first); choose another")]
    Common,
    #[error("hashing failed: {0}")]
    Hash(String),
}

pub const MIN_LEN: usize = 12;
/// Bounds the work an attacker can make us do per login attempt.
pub const MAX_LEN: usize = 1024;

/// The common passwords and the words at their heart, lowercase, one a line (`#` comments).
const COMMON: &str = include_str!("password/common.txt");

/// Whether `password` may be set as a new password.
pub fn check(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    if is_common(password) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

/// On the list as it is, or once the digits and symbols at its ends are trimmed
/// ("Welcome2026!" is "welcome"), or one character repeated, or a run ("987654321098").
fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    let listed = |w: &str| {
        COMMON
            .lines()
            .map(str::trim)
            .any(|l| !l.is_empty() && !l.starts_with('#') && l == w)
    };
    listed(&lower) || (!core.is_empty() && listed(core)) || is_run(&lower)
}

/// Every character equal to the one before, or each one step up (or each one step down) from it,
/// digits wrapping 9 to 0.
fn is_run(s: &str) -> bool {
    let cs: Vec<char> = s.chars().collect();
    let step = |a: char, b: char| -> Option<i32> {
        let (a, b) = (a as i32, b as i32);
        // '9' -> '0' continues an ascending digit run, '0' -> '9' a descending one.
        match (a, b) {
            (0x39, 0x30) => Some(1),
            (0x30, 0x39) => Some(-1),
            _ => Some(b - a).filter(|d| d.abs() <= 1),
        }
    };
    let mut steps = cs.windows(2).map(|w| step(w[0], w[1]));
    match steps.next() {
        None => true,
        Some(None) => false,
        Some(first) => steps.all(|s| s == first),
    }
}

/// Hashes `password` with a fresh random salt, after [`check`]ing it.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check(password)?;
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

    #[test]
    fn new_passwords_need_twelve_characters() {
        assert!(matches!(check("elevenchars"), Err(PasswordError::TooShort)));
        assert!(matches!(check("ünïcödé-1234"), Ok(())), "characters, not bytes");
        assert!(matches!(check("ünïcödé"), Err(PasswordError::TooShort)));
        assert!(check("correct-horse-42").is_ok());
        assert!(
            check(crate::demo::DEMO_PASSWORD).is_ok(),
            "the demo seed must pass its own rule"
        );
        assert!(
            check("timing-equalizer").is_ok(),
            "the store hashes it for unknown e-mails"
        );
        assert!(matches!(check(&"x".repeat(MAX_LEN + 1)), Err(PasswordError::TooLong)));
    }

    #[test]
    fn common_passwords_are_refused_in_their_usual_disguises() {
        for p in [
            "password1234",
            "Password2026!",
            "PASSWORD!!!!",
            "p@ssw0rd1234",
            "qwertyuiop123",
            "1q2w3e4r5t6y",
            "!!welcome123456",
            "iloveyou1234",
            "letmein12345",
            "Administrator1",
            "123456789012",
            "098765432109",
            "aaaaaaaaaaaa",
            "abcdefghijkl",
            "zyxwvutsrqpo",
            "111111111111",
            "qwertyqwerty",
            "Sunshine2024",
        ] {
            assert!(matches!(check(p), Err(PasswordError::Common)), "{p} was accepted");
        }
        for p in [
            "tram-violet-kettle",
            "hunter2hunter2",
            "new password!",
            "Sunshine over Leeds",
            "839201746153",
        ] {
            assert!(check(p).is_ok(), "{p} was refused");
        }
        assert!(PasswordError::Common.to_string().contains("common"));
    }
}

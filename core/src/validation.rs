//! `ValidationError`: bad input, named by the field it came from.
//!
//! Everything a human types (the web admin, the CLI, seed data) goes through a `validate`
//! function before a single row is written. The error names the field (`phones[1]`,
//! `layers[0].members`, `time_zone`) so the form can put the message next to the right box.

use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Path of the offending field, e.g. `layers[0].members`.
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses an IANA time zone name such as `America/New_York`.
pub fn parse_time_zone(field: &str, name: &str) -> Result<Tz, ValidationError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| ValidationError::new(field, format!("unknown time zone {name:?} (use an IANA name like Europe/London)")))
}

/// A non-blank display name, trimmed.
pub fn non_blank(field: &str, value: &str) -> Result<String, ValidationError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if v.len() > 200 {
        return Err(ValidationError::new(field, "must be at most 200 characters"));
    }
    Ok(v.to_string())
}

/// A plausible e-mail address, lowercased (we compare logins case-insensitively).
pub fn email(field: &str, value: &str) -> Result<String, ValidationError> {
    let v = value.trim().to_lowercase();
    let ok = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@')
        }
        None => false,
    };
    if !ok || v.chars().any(char::is_whitespace) || v.len() > 254 {
        return Err(ValidationError::new(field, format!("{value:?} is not an e-mail address")));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones() {
        assert_eq!(parse_time_zone("tz", "Europe/London").unwrap(), chrono_tz::Europe::London);
        let e = parse_time_zone("time_zone", "Mars/Olympus").unwrap_err();
        assert_eq!(e.field, "time_zone");
    }

    #[test]
    fn emails() {
        assert_eq!(email("e", " Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@x.com", "a@b", "a b@c.d", "a@b@c.d"] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
    }
}

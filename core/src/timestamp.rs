//! `Timestamp`: an instant as milliseconds since the Unix epoch (UTC).
//!
//! The whole crate passes time in as a value: the escalation engine and the schedule functions
//! never read the clock, so tests drive them with a virtual clock. Milliseconds in an `i64` is
//! also how instants are stored (`BIGINT`), because sqlx's `Any` driver has no chrono support.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// A signed span of time in milliseconds (the difference of two `Timestamp`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    pub const fn seconds(s: i64) -> Millis {
        Millis(s * 1000)
    }
    pub const fn minutes(m: i64) -> Millis {
        Millis(m * 60_000)
    }
    pub const fn hours(h: i64) -> Millis {
        Millis(h * 3_600_000)
    }
}

impl Timestamp {
    /// Reads the system clock. Only the edges (CLI, servers) should call this; everything else
    /// takes `now` as a parameter.
    pub fn now() -> Timestamp {
        Timestamp(Utc::now().timestamp_millis())
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// As a chrono UTC date-time. Out-of-range values (beyond year ±262143) saturate to the
    /// epoch rather than panic: they cannot come from a real clock.
    pub fn to_utc(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0).single().unwrap_or_default()
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Timestamp {
        Timestamp(t.timestamp_millis())
    }
}

impl From<std::time::SystemTime> for Timestamp {
    fn from(t: std::time::SystemTime) -> Timestamp {
        Timestamp::from(DateTime::<Utc>::from(t))
    }
}

impl Add<Millis> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Millis) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
}

impl Sub<Millis> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Millis) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0))
    }
}

impl Sub for Timestamp {
    type Output = Millis;
    fn sub(self, other: Timestamp) -> Millis {
        Millis(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_utc().format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_chrono() {
        let t = Timestamp(1_700_000_000_123);
        assert_eq!(Timestamp::from(t.to_utc()), t);
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn arithmetic() {
        let t = Timestamp(1000);
        assert_eq!(t + Millis::seconds(2), Timestamp(3000));
        assert_eq!(Timestamp(5000) - t, Millis(4000));
    }
}

//! Shift swaps: an employee asks a colleague to take one of their shifts (a give-away) or to
//! trade it for one of the colleague's shifts (a swap). The colleague accepts or declines; then a
//! manager approves or refuses, unless the schedule lets accepted swaps through on their own.
//!
//! Applying a swap is nothing new to the schedule: it becomes overrides (the colleague covers the
//! requester's shift; for a swap, the requester also covers the colleague's), so the calendar and
//! who-is-on-call follow without any other change. States:
//!
//! ```text
//! asked ──accept──► accepted ──approve──► approved (overrides written)
//!   │  └─(no approval needed)────────────►┘
//!   ├──decline──► declined       accepted ──refuse──► refused
//!   └──cancel───► cancelled      accepted ──cancel──► cancelled
//! ```

use super::Override;
use crate::ids::{OverrideId, PersonId, ScheduleId};
use crate::timestamp::Timestamp;
use crate::validation::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A row of `shift_swaps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SwapId(pub i64);

impl fmt::Display for SwapId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "swap-{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapStatus {
    /// Waiting for the colleague.
    Asked,
    /// The colleague said yes; waiting for a manager.
    Accepted,
    /// Applied: the overrides are on the schedule.
    Approved,
    /// The colleague said no.
    Declined,
    /// A manager said no.
    Refused,
    /// The requester withdrew it.
    Cancelled,
}

impl SwapStatus {
    pub const ALL: [SwapStatus; 6] =
        [SwapStatus::Asked, SwapStatus::Accepted, SwapStatus::Approved, SwapStatus::Declined, SwapStatus::Refused, SwapStatus::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            SwapStatus::Asked => "asked",
            SwapStatus::Accepted => "accepted",
            SwapStatus::Approved => "approved",
            SwapStatus::Declined => "declined",
            SwapStatus::Refused => "refused",
            SwapStatus::Cancelled => "cancelled",
        }
    }

    /// Still waiting for someone (the colleague or a manager).
    pub fn is_open(self) -> bool {
        matches!(self, SwapStatus::Asked | SwapStatus::Accepted)
    }
}

impl fmt::Display for SwapStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SwapStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<SwapStatus, String> {
        SwapStatus::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| format!("unknown swap status {s:?}"))
    }
}

/// A stretch of time: a shift as the calendar computed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// What the requester asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSwap {
    pub schedule: ScheduleId,
    pub requester: PersonId,
    /// The colleague asked to take the shift.
    pub taker: PersonId,
    /// The requester's shift.
    pub shift: Span,
    /// The colleague's shift the requester takes in exchange; `None` gives the shift away.
    pub back: Option<Span>,
}

impl NewSwap {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.requester == self.taker {
            return Err(ValidationError::new("swap.taker", "must be someone else"));
        }
        if self.shift.start >= self.shift.end {
            return Err(ValidationError::new("swap.shift", "must end after it starts"));
        }
        if let Some(b) = self.back {
            if b.start >= b.end {
                return Err(ValidationError::new("swap.back", "must end after it starts"));
            }
            if b.start < self.shift.end && self.shift.start < b.end {
                return Err(ValidationError::new("swap.back", "must not overlap the shift given"));
            }
        }
        Ok(())
    }

    /// The overrides that carry the swap out: the taker covers the shift; for a swap the
    /// requester covers the colleague's.
    pub fn overrides(&self) -> Vec<Override> {
        let mut out = vec![Override::new(self.taker, self.shift.start, self.shift.end)];
        if let Some(b) = self.back {
            out.push(Override::new(self.requester, b.start, b.end));
        }
        out
    }
}

/// A stored swap request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    pub id: SwapId,
    pub new: NewSwap,
    pub status: SwapStatus,
    pub created_at: Timestamp,
    /// When the colleague accepted or declined.
    pub answered_at: Option<Timestamp>,
    /// When a manager approved or refused (or the swap went through without approval).
    pub decided_at: Option<Timestamp>,
    /// The overrides written when it was applied.
    pub overrides: Vec<OverrideId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(a: i64, b: i64) -> Span {
        Span { start: Timestamp(a), end: Timestamp(b) }
    }

    #[test]
    fn validation_and_overrides() {
        let give = NewSwap { schedule: ScheduleId(1), requester: PersonId(1), taker: PersonId(2), shift: span(100, 200), back: None };
        assert!(give.validate().is_ok());
        assert_eq!(give.overrides(), vec![Override::new(PersonId(2), Timestamp(100), Timestamp(200))]);
        let swap = NewSwap { back: Some(span(300, 400)), ..give };
        assert_eq!(swap.overrides().len(), 2);
        assert_eq!(swap.overrides()[1].person, PersonId(1));
        assert_eq!(NewSwap { taker: PersonId(1), ..give }.validate().unwrap_err().field, "swap.taker");
        assert_eq!(NewSwap { back: Some(span(150, 250)), ..give }.validate().unwrap_err().field, "swap.back");
        assert_eq!(NewSwap { shift: span(200, 200), ..give }.validate().unwrap_err().field, "swap.shift");
        for s in SwapStatus::ALL {
            assert_eq!(s.as_str().parse::<SwapStatus>().unwrap(), s);
        }
    }
}

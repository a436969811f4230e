//! Overrides: "person X covers from..to", beating every layer.
//!
//! Overrides are absolute instants, not wall-clock times: someone swapping "tonight" means the
//! real night. Two overrides of one schedule may not overlap — which one would win is exactly
//! the question a human should answer — so adding an overlapping one is rejected.

use crate::ids::{OverrideId, PersonId};
use crate::timestamp::Timestamp;
use crate::validation::ValidationError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// `None` until stored.
    pub id: Option<OverrideId>,
    pub person: PersonId,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Override {
    pub fn new(person: PersonId, start: Timestamp, end: Timestamp) -> Override {
        Override { id: None, person, start, end }
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    pub fn overlaps(&self, other: &Override) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.start >= self.end {
            return Err(ValidationError::new("override.end", "must be after the start"));
        }
        Ok(())
    }

    /// Validates `self` and checks it against the overrides already on the schedule.
    pub fn validate_against(&self, existing: &[Override]) -> Result<(), ValidationError> {
        self.validate()?;
        if let Some(other) = existing.iter().find(|o| o.overlaps(self)) {
            return Err(ValidationError::new(
                "override.start",
                format!(
                    "overlaps the override of {} from {} to {}",
                    other.person, other.start, other.end
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_rules() {
        let a = Override::new(PersonId(1), Timestamp(100), Timestamp(200));
        let touching = Override::new(PersonId(2), Timestamp(200), Timestamp(300));
        let inside = Override::new(PersonId(2), Timestamp(150), Timestamp(160));
        assert!(touching.validate_against(&[a]).is_ok());
        assert_eq!(inside.validate_against(&[a]).unwrap_err().field, "override.start");
        let backwards = Override::new(PersonId(2), Timestamp(300), Timestamp(300));
        assert_eq!(backwards.validate().unwrap_err().field, "override.end");
    }
}

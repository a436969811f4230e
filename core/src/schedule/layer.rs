//! A schedule layer: one rotation with a name and a rank.
//!
//! Layers are stacked: `Schedule::layers[0]` is the bottom, the last is the top. At any
//! instant the highest layer that has someone on shift wins, so a "holiday cover" layer whose
//! rotation starts later sits above the regular rotation without editing it.

use super::rotation::{Rotation, RotationShift, ShiftLength};
use crate::timestamp::Timestamp;
use crate::validation::ValidationError;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    pub rotation: Rotation,
}

impl Layer {
    /// Checks what the type cannot: members present, a sane shift length, a non-blank name.
    /// `index` is the layer's position, used to name the field in the error.
    pub fn validate(&self, index: usize) -> Result<(), ValidationError> {
        let field = |f: &str| format!("layers[{index}].{f}");
        if self.name.trim().is_empty() {
            return Err(ValidationError::new(field("name"), "must not be empty"));
        }
        if self.rotation.members.is_empty() {
            return Err(ValidationError::new(field("members"), "a rotation needs at least one member"));
        }
        let len = self.rotation.shift_length;
        if len.count() == 0 {
            return Err(ValidationError::new(field("shift_length"), "must be at least 1"));
        }
        if len.approx_hours() > u64::from(ShiftLength::MAX_HOURS) {
            return Err(ValidationError::new(field("shift_length"), "must be at most a year"));
        }
        Ok(())
    }

    pub fn shift_at(&self, tz: Tz, t: Timestamp) -> Option<RotationShift> {
        self.rotation.shift_at(tz, t)
    }

    pub fn shifts(&self, tz: Tz, from: Timestamp, to: Timestamp) -> Vec<RotationShift> {
        self.rotation.shifts(tz, from, to)
    }
}

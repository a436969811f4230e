//! Schedules: who is on call at an instant, and the calendar of shifts.
//!
//! A schedule is a time zone, a stack of layers (each one rotation) and a set of overrides.
//! Precedence at an instant: an override covering it, else the highest layer with someone on
//! shift, else nobody. Both [`on_call`] and [`shifts`] are pure functions of the schedule and
//! the instants passed in — no clock, no database — so they are property-tested directly.
//! Loading and storing schedules is the store's business (`store::schedules`).

pub mod layer;
pub mod on_call_order;
pub mod override_;
pub mod rotation;
pub mod swap;
mod timeline;

pub use layer::Layer;
pub use on_call_order::{on_call_order, OrderEntry, Role as OrderRole};
pub use override_::Override;
pub use rotation::{resolve_local, Rotation, RotationShift, ShiftLength};
pub use swap::{NewSwap, Span, Swap, SwapId, SwapStatus};
pub use timeline::{next_on_call, on_call, shifts, whole_shifts, OnCall, Schedule, Shift, Source};

use crate::validation::{self, ValidationError};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Input for a new schedule. Members must belong to the same organization (checked by the
/// store, which knows who exists).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewSchedule {
    pub name: String,
    pub time_zone: String,
    pub layers: Vec<Layer>,
}

impl NewSchedule {
    /// Returns the parsed time zone when everything is valid.
    pub fn validate(&self) -> Result<Tz, ValidationError> {
        validation::non_blank("name", &self.name)?;
        let tz = validation::parse_time_zone("time_zone", &self.time_zone)?;
        for (i, layer) in self.layers.iter().enumerate() {
            layer.validate(i)?;
        }
        Ok(tz)
    }
}

#[cfg(test)]
mod tests;

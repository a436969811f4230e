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

pub use layer::Layer;
pub use on_call_order::{on_call_order, OrderEntry, Role as OrderRole};
pub use override_::Override;
pub use rotation::{resolve_local, Rotation, RotationShift, ShiftLength};

use crate::ids::{OrgId, PersonId, ScheduleId};
use crate::timestamp::Timestamp;
use crate::validation::{self, ValidationError};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: ScheduleId,
    pub org: OrgId,
    pub name: String,
    pub time_zone: Tz,
    /// Bottom first; later layers win.
    pub layers: Vec<Layer>,
    /// Never overlapping (enforced when added).
    pub overrides: Vec<Override>,
}

/// Where an on-call assignment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "index", rename_all = "snake_case")]
pub enum Source {
    /// `Schedule::overrides[i]`.
    Override(usize),
    /// `Schedule::layers[i]`.
    Layer(usize),
}

/// Who is on call, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCall {
    pub person: PersonId,
    pub source: Source,
}

/// A stretch of the final, flattened timeline (what a calendar shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub person: PersonId,
    pub start: Timestamp,
    pub end: Timestamp,
    pub source: Source,
}

/// Who is on call at `t`.
pub fn on_call(schedule: &Schedule, t: Timestamp) -> Option<OnCall> {
    if let Some(i) = schedule.overrides.iter().position(|o| o.contains(t)) {
        let person = schedule.overrides.get(i)?.person;
        return Some(OnCall { person, source: Source::Override(i) });
    }
    schedule
        .layers
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, layer)| {
            layer
                .shift_at(schedule.time_zone, t)
                .map(|s| OnCall { person: s.person, source: Source::Layer(i) })
        })
}

/// The effective timeline over `[from, to)`, clipped to it, without the gaps where nobody is on
/// call. Adjacent pieces with the same person *and* source are merged; a handoff between two
/// shifts of one layer stays visible as a boundary only when the person changes.
pub fn shifts(schedule: &Schedule, from: Timestamp, to: Timestamp) -> Vec<Shift> {
    if from >= to {
        return Vec::new();
    }
    // On-call is constant between consecutive boundaries of any layer shift or override, so
    // evaluating `on_call` once per elementary interval gives the exact timeline.
    let mut cuts = vec![from, to];
    for layer in &schedule.layers {
        for s in layer.shifts(schedule.time_zone, from, to) {
            cuts.push(s.start);
            cuts.push(s.end);
        }
    }
    for o in &schedule.overrides {
        for t in [o.start, o.end] {
            if from < t && t < to {
                cuts.push(t);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();

    let mut out: Vec<Shift> = Vec::new();
    for w in cuts.windows(2) {
        // `windows(2)` yields exactly two elements.
        let (a, b) = (w[0], w[1]);
        let Some(who) = on_call(schedule, a) else { continue };
        match out.last_mut() {
            Some(last) if last.end == a && last.person == who.person && last.source == who.source => last.end = b,
            _ => out.push(Shift { person: who.person, start: a, end: b, source: who.source }),
        }
    }
    out
}

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

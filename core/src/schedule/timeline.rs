//! A schedule and the on-call timeline it yields: who is on call at an instant ([`on_call`]) and
//! the flattened calendar of shifts over a span ([`shifts`]).
//!
//! Its own module, below `schedule/mod.rs`, so that `on_call_order` can build on it without
//! importing the module that re-exports `on_call_order`.

use super::layer::Layer;
use super::override_::Override;
use crate::ids::{OrgId, PersonId, ScheduleId};
use crate::timestamp::Timestamp;
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

/// How far past a window [`whole_shifts`] looks for the real start and end of the shifts it cuts (someone alone
/// in a rotation is on call without end; their shift is shown ending this far out).
pub const WHOLE_LOOK: crate::timestamp::Millis = crate::timestamp::Millis(366 * 24 * 3_600_000);

/// The shifts overlapping `[from, to)` with their real start and end (within [`WHOLE_LOOK`] either side), not
/// cut at the window: a page listing "your next shifts" must say a shift ends on the 20th, not when its
/// list stops looking (issue 18 item 11).
pub fn whole_shifts(schedule: &Schedule, from: Timestamp, to: Timestamp) -> Vec<Shift> {
    let mut out = shifts(schedule, from, to);
    let same = |a: &Shift, b: &Shift| a.person == b.person && a.source == b.source;
    if let Some(first) = out.first_mut().filter(|s| s.start == from) {
        if let Some(before) = shifts(schedule, from - WHOLE_LOOK, from).pop().filter(|b| b.end == from && same(b, first)) {
            first.start = before.start;
        }
    }
    if let Some(last) = out.last_mut().filter(|s| s.end == to) {
        if let Some(after) = shifts(schedule, to, to + WHOLE_LOOK).into_iter().next().filter(|a| a.start == to && same(a, last)) {
            last.end = after.end;
        }
    }
    out
}

/// How far ahead [`next_on_call`] looks.
pub const NEXT_HORIZON: crate::timestamp::Millis = crate::timestamp::Millis(90 * 24 * 3_600_000);

/// Who takes over after whoever is on call at `t` (the first shift within [`NEXT_HORIZON`] of
/// someone else; the first shift at all when nobody is on call at `t`).
pub fn next_on_call(schedule: &Schedule, t: Timestamp) -> Option<Shift> {
    let now = on_call(schedule, t).map(|o| o.person);
    shifts(schedule, t, t + NEXT_HORIZON).into_iter().find(|s| Some(s.person) != now && s.start >= t)
}

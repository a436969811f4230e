//! Who to try, in order, for one schedule at an instant: the person on call first (an override
//! covering the instant, else the top layer with someone on shift), then whoever is on shift in
//! the layers below — the backups, top layer first — each once, with when their shift ends.
//!
//! This is the order the `GET /api/v1/oncall/{schedule}` answer lists and the order of the
//! Contacts in a SIP redirect to `oncall-<schedule>@`. It is pure (no clock, no database) and
//! knows nothing of people's contacts or whether they are disabled: callers filter with the
//! people they loaded. Finding a schedule by the name a URL or a SIP user part gives is here too.

use super::timeline::{on_call, shifts, Schedule, Source};
use crate::ids::PersonId;
use crate::timestamp::{Millis, Timestamp};

/// Why a person is in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// On call through an override.
    Override,
    /// On call through the named layer's rotation.
    Rotation { layer: String },
    /// On shift in a lower layer, behind whoever is on call.
    Backup { layer: String },
}

impl Role {
    /// `override`, `rotation` or `backup`, as the API writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Override => "override",
            Role::Rotation { .. } => "rotation",
            Role::Backup { .. } => "backup",
        }
    }

    pub fn layer(&self) -> Option<&str> {
        match self {
            Role::Override => None,
            Role::Rotation { layer } | Role::Backup { layer } => Some(layer),
        }
    }
}

/// One person of the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEntry {
    pub person: PersonId,
    pub role: Role,
    /// When their shift ends (for the person on call: the earlier of their own shift's end and
    /// the next change of hands in the flattened timeline).
    pub until: Option<Timestamp>,
}

/// The people to try for `schedule` at `now`, best first, each person once.
pub fn on_call_order(schedule: &Schedule, now: Timestamp) -> Vec<OrderEntry> {
    let mut out: Vec<OrderEntry> = Vec::new();
    if let Some(who) = on_call(schedule, now) {
        // The shift ends at the rotation's handoff (or the override's end), or earlier when the
        // flattened timeline changes hands first (an override or a higher layer cutting in).
        let timeline_end = shifts(schedule, now, now + Millis::hours(24 * 366))
            .first()
            .filter(|sh| sh.person == who.person && sh.start <= now)
            .map(|sh| sh.end);
        let (role, source_end) = match who.source {
            Source::Override(i) => (Role::Override, schedule.overrides.get(i).map(|o| o.end)),
            Source::Layer(i) => {
                let l = schedule.layers.get(i);
                let name = l.map(|l| l.name.clone()).unwrap_or_default();
                (
                    Role::Rotation { layer: name },
                    l.and_then(|l| l.shift_at(schedule.time_zone, now)).map(|sh| sh.end),
                )
            }
        };
        let until = match (timeline_end, source_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.push(OrderEntry {
            person: who.person,
            role,
            until,
        });
    }
    for layer in schedule.layers.iter().rev() {
        if let Some(shift) = layer.shift_at(schedule.time_zone, now) {
            if !out.iter().any(|e| e.person == shift.person) {
                out.push(OrderEntry {
                    person: shift.person,
                    role: Role::Backup {
                        layer: layer.name.clone(),
                    },
                    until: Some(shift.end),
                });
            }
        }
    }
    out
}

/// A schedule named by a URL or a SIP user part: its id, its name (any case) or its name as a
/// slug (`Maintenance on-call` → `maintenance-on-call`, any case). The oldest schedule wins a tie.
pub fn find<'a>(schedules: &'a [Schedule], key: &str) -> Option<&'a Schedule> {
    let key = key.trim();
    if let Ok(id) = key.parse::<i64>() {
        if let Some(s) = schedules.iter().find(|s| s.id.0 == id) {
            return Some(s);
        }
    }
    let mut sorted: Vec<&Schedule> = schedules.iter().collect();
    sorted.sort_by_key(|s| s.id);
    let slug = crate::store::slugify(key);
    sorted
        .iter()
        .find(|s| s.name.trim().eq_ignore_ascii_case(key))
        .or_else(|| {
            sorted
                .iter()
                .find(|s| !slug.is_empty() && crate::store::slugify(&s.name) == slug)
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{OrgId, ScheduleId};
    use crate::schedule::{resolve_local, Layer, Override, Rotation, ShiftLength};
    use chrono::{NaiveDate, NaiveTime};
    use chrono_tz::Europe::London;

    fn at(d: u32, h: u32) -> Timestamp {
        resolve_local(
            London,
            NaiveDate::from_ymd_opt(2024, 1, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap(),
        )
        .unwrap()
    }

    fn layer(name: &str, members: &[i64]) -> Layer {
        Layer {
            name: name.into(),
            rotation: Rotation {
                members: members.iter().map(|&m| PersonId(m)).collect(),
                shift_length: ShiftLength::Days(1),
                start_date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                handoff_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            },
        }
    }

    fn schedule(id: i64, name: &str, layers: Vec<Layer>, overrides: Vec<Override>) -> Schedule {
        Schedule {
            id: ScheduleId(id),
            org: OrgId(1),
            name: name.into(),
            time_zone: London,
            layers,
            overrides,
        }
    }

    #[test]
    fn on_call_first_then_backups_from_the_top_layer_down_each_once() {
        let s = schedule(
            1,
            "Main",
            vec![
                layer("secondary", &[3, 4]),
                layer("middle", &[1]),
                layer("primary", &[1, 2]),
            ],
            vec![],
        );
        // Jan 2, 12:00: primary has 2, middle 1, secondary 4.
        let order = on_call_order(&s, at(2, 12));
        let people: Vec<(i64, &str)> = order.iter().map(|e| (e.person.0, e.role.as_str())).collect();
        assert_eq!(people, vec![(2, "rotation"), (1, "backup"), (4, "backup")]);
        assert_eq!(order[0].role.layer(), Some("primary"));
        assert_eq!(order[0].until, Some(at(3, 9)));
        // Jan 1: primary and middle both have 1, who is listed once.
        let people: Vec<i64> = on_call_order(&s, at(1, 12)).iter().map(|e| e.person.0).collect();
        assert_eq!(people, vec![1, 3]);
    }

    #[test]
    fn an_override_goes_first_and_ends_when_it_ends() {
        let o = Override::new(PersonId(7), at(2, 10), at(2, 14));
        let s = schedule(1, "Main", vec![layer("primary", &[1, 2])], vec![o]);
        let order = on_call_order(&s, at(2, 12));
        assert_eq!(
            order[0],
            OrderEntry {
                person: PersonId(7),
                role: Role::Override,
                until: Some(at(2, 14))
            }
        );
        assert_eq!(order[1].person, PersonId(2));
        assert!(on_call_order(&schedule(2, "Empty", vec![], vec![]), at(2, 12)).is_empty());
    }

    #[test]
    fn schedules_are_found_by_id_name_or_slug_in_any_case() {
        let list = vec![
            schedule(5, "Maintenance on-call", vec![], vec![]),
            schedule(3, "Network", vec![], vec![]),
        ];
        assert_eq!(find(&list, "5").map(|s| s.id.0), Some(5));
        assert_eq!(find(&list, "maintenance-on-call").map(|s| s.id.0), Some(5));
        assert_eq!(find(&list, "MAINTENANCE-On-Call").map(|s| s.id.0), Some(5));
        assert_eq!(find(&list, "network").map(|s| s.id.0), Some(3));
        assert!(find(&list, "payroll").is_none());
    }
}

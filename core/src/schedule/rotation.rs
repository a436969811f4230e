//! A rotation: ordered members taking turns in shifts of a fixed length.
//!
//! Shift `k` starts at the rotation start plus `k` shift lengths and belongs to member
//! `k mod n`. Day and week shifts are measured on the **wall clock** of the schedule's time
//! zone: a daily 09:00 handoff stays at 09:00 across DST, so the shift spanning spring-forward
//! lasts 23 real hours and the one spanning fall-back 25. Hour shifts are measured in **real**
//! time (an 8-hour shift is always 8 hours of someone's life), so their handoff drifts on the
//! wall clock at DST changes. Because shift `k` ends exactly where shift `k+1` starts (both come
//! from the same `shift_start(k)`), shifts tile time with no gap and no overlap by construction.
//!
//! Not modelled: per-day restrictions ("weekdays 9–17 only") and end dates.

use crate::ids::PersonId;
use crate::timestamp::{Millis, Timestamp};
use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// How long each member holds the pager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "count", rename_all = "snake_case")]
pub enum ShiftLength {
    /// Real hours.
    Hours(u32),
    /// Calendar days on the schedule's wall clock.
    Days(u32),
    /// Calendar weeks on the schedule's wall clock.
    Weeks(u32),
}

impl ShiftLength {
    /// Upper bound on `count`: a year of shifts is already absurd; the bound keeps the
    /// arithmetic far away from overflow.
    pub const MAX_HOURS: u32 = 24 * 366;

    pub(crate) fn unit_str(self) -> &'static str {
        match self {
            ShiftLength::Hours(_) => "hours",
            ShiftLength::Days(_) => "days",
            ShiftLength::Weeks(_) => "weeks",
        }
    }

    pub(crate) fn count(self) -> u32 {
        match self {
            ShiftLength::Hours(n) | ShiftLength::Days(n) | ShiftLength::Weeks(n) => n,
        }
    }

    pub(crate) fn from_parts(unit: &str, count: u32) -> Option<ShiftLength> {
        match unit {
            "hours" => Some(ShiftLength::Hours(count)),
            "days" => Some(ShiftLength::Days(count)),
            "weeks" => Some(ShiftLength::Weeks(count)),
            _ => None,
        }
    }

    /// Approximate length in real hours (exact for `Hours`), used for validation and to guess
    /// the shift index before correcting it.
    pub fn approx_hours(self) -> u64 {
        match self {
            ShiftLength::Hours(n) => u64::from(n),
            ShiftLength::Days(n) => 24 * u64::from(n),
            ShiftLength::Weeks(n) => 7 * 24 * u64::from(n),
        }
    }

    /// Length in calendar days for wall-clock shifts; `None` for real-hour shifts.
    fn calendar_days(self) -> Option<u64> {
        match self {
            ShiftLength::Hours(_) => None,
            ShiftLength::Days(n) => Some(u64::from(n)),
            ShiftLength::Weeks(n) => Some(7 * u64::from(n)),
        }
    }
}

/// Ordered members taking turns from `start_date` at `handoff_time` (schedule-local).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub members: Vec<PersonId>,
    pub shift_length: ShiftLength,
    pub start_date: NaiveDate,
    pub handoff_time: NaiveTime,
}

/// One member's turn, clipped to the window it was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationShift {
    pub index: i64,
    pub person: PersonId,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// The instant a schedule-local wall-clock time denotes.
///
/// Ambiguous times (the repeated hour at fall-back) take the earlier instant. Times that do not
/// exist (skipped at spring-forward) move forward by the length of the gap, as java.time and
/// most calendars do: a 02:30 handoff on the spring-forward night in New York happens at 03:30.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> Option<Timestamp> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return Some(Timestamp::from(t.to_utc()));
    }
    // In a gap: interpret with the offset in force just before it, which lands after the gap.
    // Gaps in the tz database are at most a few hours; probe back up to a day to find it.
    for back_minutes in (15..=24 * 60).step_by(15) {
        let probe = local.checked_sub_signed(chrono::Duration::minutes(back_minutes))?;
        if let Some(before) = tz.from_local_datetime(&probe).latest() {
            let offset = chrono::Offset::fix(before.offset());
            let utc = local.checked_sub_signed(chrono::Duration::seconds(i64::from(offset.local_minus_utc())))?;
            return Some(Timestamp(utc.and_utc().timestamp_millis()));
        }
    }
    None
}

impl Rotation {
    /// The local wall-clock start of the rotation.
    pub fn start_local(&self) -> NaiveDateTime {
        self.start_date.and_time(self.handoff_time)
    }

    /// When shift `k` (k ≥ 0) begins, or `None` if it is beyond chrono's calendar.
    pub fn shift_start(&self, tz: Tz, k: i64) -> Option<Timestamp> {
        let k = u64::try_from(k).ok()?;
        match self.shift_length.calendar_days() {
            Some(days) => {
                let local = self.start_local().checked_add_days(Days::new(k.checked_mul(days)?))?;
                resolve_local(tz, local)
            }
            None => {
                let first = resolve_local(tz, self.start_local())?;
                let step = i64::try_from(self.shift_length.approx_hours()).ok()?.checked_mul(3_600_000)?;
                let offset = i64::try_from(k).ok()?.checked_mul(step)?;
                Some(Timestamp(first.0.checked_add(offset)?))
            }
        }
    }

    /// The index of the shift containing `t`, or `None` before the rotation starts (or for a
    /// rotation without members).
    pub fn shift_index_at(&self, tz: Tz, t: Timestamp) -> Option<i64> {
        // A rotation without members or with zero-length shifts covers nothing (validation
        // rejects both; the check keeps hand-built values from looping).
        if self.members.is_empty() || self.shift_length.count() == 0 {
            return None;
        }
        let first = self.shift_start(tz, 0)?;
        if t < first {
            return None;
        }
        // Guess with the nominal length, then correct: wall-clock shifts differ from nominal by
        // at most the DST offsets accumulated, so a few steps at most.
        let nominal = i64::try_from(self.shift_length.approx_hours()).ok()?.checked_mul(3_600_000)?.max(1);
        let mut k = t.0.checked_sub(first.0)? / nominal;
        let mut guard = 0;
        loop {
            guard += 1;
            if guard > 64 {
                return None; // cannot happen with real tz data; refuse rather than spin
            }
            let start = self.shift_start(tz, k)?;
            if start > t {
                k -= 1;
                continue;
            }
            let next = self.shift_start(tz, k + 1)?;
            if next <= t {
                k += 1;
                continue;
            }
            return Some(k);
        }
    }

    fn member(&self, k: i64) -> Option<PersonId> {
        let n = i64::try_from(self.members.len()).ok()?;
        if n == 0 {
            return None;
        }
        let i = usize::try_from(k.rem_euclid(n)).ok()?;
        self.members.get(i).copied()
    }

    /// The shift containing `t`, unclipped.
    pub fn shift_at(&self, tz: Tz, t: Timestamp) -> Option<RotationShift> {
        let k = self.shift_index_at(tz, t)?;
        Some(RotationShift {
            index: k,
            person: self.member(k)?,
            start: self.shift_start(tz, k)?,
            end: self.shift_start(tz, k + 1)?,
        })
    }

    /// Shifts overlapping `[from, to)`, clipped to it, in order. At most `MAX_SHIFTS` are
    /// returned: callers ask for calendar pages, not centuries.
    pub fn shifts(&self, tz: Tz, from: Timestamp, to: Timestamp) -> Vec<RotationShift> {
        let mut out = Vec::new();
        if from >= to || self.members.is_empty() || self.shift_length.count() == 0 {
            return out;
        }
        let Some(first) = self.shift_start(tz, 0) else { return out };
        let mut k = if from < first {
            0
        } else {
            match self.shift_index_at(tz, from) {
                Some(k) => k,
                None => return out,
            }
        };
        while out.len() < MAX_SHIFTS {
            let (Some(start), Some(end), Some(person)) =
                (self.shift_start(tz, k), self.shift_start(tz, k + 1), self.member(k))
            else {
                break;
            };
            if start >= to {
                break;
            }
            out.push(RotationShift {
                index: k,
                person,
                start: start.max(from),
                end: end.min(to),
            });
            k += 1;
        }
        out
    }
}

/// Cap on shifts returned by one query (a year of hourly shifts).
pub const MAX_SHIFTS: usize = 24 * 366;

/// Real length of a span, for tests and display.
pub fn span(start: Timestamp, end: Timestamp) -> Millis {
    end - start
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Europe::London};

    fn p(n: i64) -> PersonId {
        PersonId(n)
    }

    fn daily(start: NaiveDate, handoff: (u32, u32)) -> Rotation {
        Rotation {
            members: vec![p(1), p(2), p(3)],
            shift_length: ShiftLength::Days(1),
            start_date: start,
            handoff_time: NaiveTime::from_hms_opt(handoff.0, handoff.1, 0).unwrap(),
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn local(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
        resolve_local(tz, date(y, m, d).and_hms_opt(h, min, 0).unwrap()).unwrap()
    }

    #[test]
    fn new_york_spring_forward_day_is_23_hours() {
        let r = daily(date(2024, 3, 1), (9, 0));
        let t = local(New_York, 2024, 3, 10, 1, 0); // 2024-03-10 02:00 EST -> 03:00 EDT
        let s = r.shift_at(New_York, t).unwrap();
        assert_eq!(span(s.start, s.end), Millis::hours(23));
        assert_eq!(s.start, local(New_York, 2024, 3, 9, 9, 0));
        assert_eq!(s.end, local(New_York, 2024, 3, 10, 9, 0));
    }

    #[test]
    fn new_york_fall_back_day_is_25_hours() {
        let r = daily(date(2024, 10, 1), (9, 0));
        let s = r.shift_at(New_York, local(New_York, 2024, 11, 3, 1, 30)).unwrap();
        assert_eq!(span(s.start, s.end), Millis::hours(25));
    }

    #[test]
    fn london_weekly_shift_across_spring_forward() {
        let mut r = daily(date(2024, 3, 25), (10, 0)); // a Monday
        r.shift_length = ShiftLength::Weeks(1);
        let s = r.shift_at(London, local(London, 2024, 3, 31, 12, 0)).unwrap();
        assert_eq!(span(s.start, s.end), Millis::hours(7 * 24 - 1));
    }

    #[test]
    fn hour_shifts_are_real_hours_across_dst() {
        let mut r = daily(date(2024, 3, 9), (20, 0));
        r.shift_length = ShiftLength::Hours(8);
        for s in r.shifts(New_York, local(New_York, 2024, 3, 9, 20, 0), local(New_York, 2024, 3, 12, 0, 0)) {
            if s.end - s.start != Millis::hours(8) {
                // only the last one may be clipped
                assert_eq!(s.end, local(New_York, 2024, 3, 12, 0, 0));
            }
        }
    }

    #[test]
    fn gap_times_move_forward() {
        // 02:30 does not exist on 2024-03-10 in New York; it becomes 03:30 EDT.
        let t = resolve_local(New_York, date(2024, 3, 10).and_hms_opt(2, 30, 0).unwrap()).unwrap();
        assert_eq!(t, local(New_York, 2024, 3, 10, 3, 30));
        // Ambiguous 01:30 on fall-back takes the first (EDT) occurrence.
        let a = resolve_local(New_York, date(2024, 11, 3).and_hms_opt(1, 30, 0).unwrap()).unwrap();
        assert_eq!(a.to_utc().to_rfc3339(), "2024-11-03T05:30:00+00:00");
    }

    #[test]
    fn members_take_turns_and_nobody_before_start() {
        let r = daily(date(2024, 1, 1), (9, 0));
        assert!(r.shift_at(London, local(London, 2024, 1, 1, 8, 59)).is_none());
        let people: Vec<_> = (1..=4)
            .map(|d| r.shift_at(London, local(London, 2024, 1, d, 12, 0)).unwrap().person)
            .collect();
        assert_eq!(people, vec![p(1), p(2), p(3), p(1)]);
    }

    #[test]
    fn far_future_does_not_panic() {
        let r = daily(date(2024, 1, 1), (9, 0));
        assert!(r.shift_at(London, Timestamp(i64::MAX)).is_none());
        assert!(r.shifts(London, Timestamp(i64::MAX - 10), Timestamp(i64::MAX)).is_empty());
    }
}

//! Business hours (issue 7 item 1) and when a request of a given urgency pages (item 2).
//!
//! [`BusinessHours`] is an organization's opening times: per weekday, open intervals in local wall-clock
//! time of its time zone, plus whole days it is closed (holidays, closures). Two pure questions are asked
//! of it: is it open at this instant ([`BusinessHours::is_open`]), and when does it next open
//! ([`BusinessHours::next_opening`]). [`when_to_page`] turns those into the paging decision for an
//! [`Urgency`]: urgent pages now at any hour, normal pages now while open and otherwise at the next opening.
//!
//! Time zones and DST: "open" is decided on the wall clock at the instant (converting an instant to local
//! time is always unambiguous), so a Monday 08:00-18:00 interval is open from 08:00 to 18:00 local on both
//! sides of a DST change. An opening time that does not exist on a given day (it falls in the spring-forward
//! gap, e.g. 02:30 in Paris on the last Sunday of March) opens at the end of the gap (03:00 local, the
//! instant the clocks jump); one that happens twice (in the fall-back overlap) opens at its first occurrence.
//!
//! An organization with no business hours stored is always open (the behaviour before business hours
//! existed). Intervals do not cross midnight: write `22:00-24:00` on one day and `00:00-06:00` on the next.
//! This module reads no clock and knows nothing of storage, the IVR or HTTP.

use crate::timestamp::Timestamp;
use crate::validation::ValidationError;
use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;
use std::collections::BTreeSet;
use std::fmt;

/// Minutes in a day: the end of an interval that runs to midnight (`24:00`).
const DAY_MINUTES: u16 = 24 * 60;
/// How far ahead [`BusinessHours::next_opening`] looks (a year of closures plus a week).
const LOOKAHEAD_DAYS: i64 = 372;

/// The weekdays in the order the week is stored and shown, Monday first (ISO 8601).
pub const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// The lowercase English name of a weekday, as used in config keys and the stored JSON (`monday`).
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

/// One open period of a day, in minutes after local midnight: `start < end <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpenInterval {
    start: u16,
    end: u16,
}

impl OpenInterval {
    /// `start..end` in minutes after midnight; `None` unless `start < end <= 1440`.
    pub fn new(start: u16, end: u16) -> Option<OpenInterval> {
        (start < end && end <= DAY_MINUTES).then_some(OpenInterval { start, end })
    }

    pub fn start_minutes(self) -> u16 {
        self.start
    }

    pub fn end_minutes(self) -> u16 {
        self.end
    }

    fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

impl fmt::Display for OpenInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
fn parse_clock(field: &str, s: &str) -> Result<u16, ValidationError> {
    let bad = || ValidationError::new(field, format!("{s:?} is not a time: use HH:MM, like 08:30"));
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A day's hours as written in the config and the web form: `08:00-18:00`, several separated by commas
/// (`08:00-12:00, 13:00-17:00`), or empty / `closed` for none. The intervals come back sorted; overlapping
/// ones are refused (they are almost always a typo).
pub fn parse_day(field: &str, text: &str) -> Result<Vec<OpenInterval>, ValidationError> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| ValidationError::new(field, format!("{part:?}: use HH:MM-HH:MM, like 08:00-18:00")))?;
        let (start, end) = (parse_clock(field, a)?, parse_clock(field, b)?);
        let interval = OpenInterval::new(start, end).ok_or_else(|| {
            ValidationError::new(
                field,
                format!("{part:?}: the end must be after the start (intervals do not cross midnight)"),
            )
        })?;
        out.push(interval);
    }
    out.sort();
    if let Some(w) = out.windows(2).find(|w| w[1].start < w[0].end) {
        return Err(ValidationError::new(field, format!("{} and {} overlap", w[0], w[1])));
    }
    Ok(out)
}

/// A day's intervals written back the way [`parse_day`] reads them (`closed` when there are none).
pub fn format_day(intervals: &[OpenInterval]) -> String {
    if intervals.is_empty() {
        return "closed".into();
    }
    intervals.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// A closure date, `YYYY-MM-DD`.
pub fn parse_date(field: &str, text: &str) -> Result<NaiveDate, ValidationError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        ValidationError::new(
            field,
            format!("{:?} is not a date: use YYYY-MM-DD, like 2026-12-25", text.trim()),
        )
    })
}

/// An organization's opening times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    pub time_zone: Tz,
    /// Open intervals per weekday, Monday first ([`WEEKDAYS`]), each list sorted and non-overlapping.
    weekly: [Vec<OpenInterval>; 7],
    /// Whole local days closed whatever the weekly hours say.
    pub closures: BTreeSet<NaiveDate>,
}

impl BusinessHours {
    /// Validates the week: each day sorted and non-overlapping, and open at least once a week (a week with
    /// no hours would defer normal requests forever).
    pub fn new(
        time_zone: Tz,
        weekly: [Vec<OpenInterval>; 7],
        closures: BTreeSet<NaiveDate>,
    ) -> Result<BusinessHours, ValidationError> {
        let mut weekly = weekly;
        for (day, intervals) in WEEKDAYS.iter().zip(weekly.iter_mut()) {
            intervals.sort();
            if let Some(w) = intervals.windows(2).find(|w| w[1].start < w[0].end) {
                return Err(ValidationError::new(
                    weekday_name(*day),
                    format!("{} and {} overlap", w[0], w[1]),
                ));
            }
        }
        if weekly.iter().all(Vec::is_empty) {
            return Err(ValidationError::new(
                "weekly",
                "open at least one period a week (or remove the business hours: always open)",
            ));
        }
        Ok(BusinessHours {
            time_zone,
            weekly,
            closures,
        })
    }

    /// Parses the text form used by the config file and the web form: one `08:00-18:00`-style string per
    /// weekday (Monday first) and `YYYY-MM-DD` closure dates. Errors name the day (`monday`) or
    /// `closed[i]`.
    pub fn parse(
        time_zone: &str,
        days: [&str; 7],
        closed: &[impl AsRef<str>],
    ) -> Result<BusinessHours, ValidationError> {
        let tz = crate::validation::parse_time_zone("time_zone", time_zone)?;
        let mut weekly: [Vec<OpenInterval>; 7] = Default::default();
        for (i, text) in days.iter().enumerate() {
            weekly[i] = parse_day(weekday_name(WEEKDAYS[i]), text)?;
        }
        let mut closures = BTreeSet::new();
        for (i, d) in closed.iter().enumerate() {
            closures.insert(parse_date(&format!("closed[{i}]"), d.as_ref())?);
        }
        BusinessHours::new(tz, weekly, closures)
    }

    /// The open intervals of a weekday.
    pub fn day(&self, day: Weekday) -> &[OpenInterval] {
        &self.weekly[day.num_days_from_monday() as usize]
    }

    /// The local wall-clock date and time of an instant in the organization's zone.
    pub fn local(&self, at: Timestamp) -> NaiveDateTime {
        at.to_utc().with_timezone(&self.time_zone).naive_local()
    }

    /// Whether the organization is open at `at`: the local date is not a closure and the local time is in
    /// one of that weekday's intervals (start included, end excluded).
    pub fn is_open(&self, at: Timestamp) -> bool {
        let local = self.local(at);
        if self.closures.contains(&local.date()) {
            return false;
        }
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.day(local.weekday()).iter().any(|i| i.contains(minute))
    }

    /// The first instant at or after `at` when the organization is open: `at` itself when open now. `None`
    /// when nothing opens within about a year (every open day closed). See the module docs for opening
    /// times that fall into a DST gap or overlap.
    pub fn next_opening(&self, at: Timestamp) -> Option<Timestamp> {
        if self.is_open(at) {
            return Some(at);
        }
        let first_day = self.local(at).date();
        for offset in 0..LOOKAHEAD_DAYS {
            let date = first_day + Duration::days(offset);
            if self.closures.contains(&date) {
                continue;
            }
            for interval in self.day(date.weekday()) {
                let Some(opens) = self.resolve_local(date, interval.start) else {
                    continue;
                };
                // Ignore an interval that opened earlier today, or one that the clocks skip entirely.
                if opens >= at && self.is_open(opens) {
                    return Some(opens);
                }
            }
        }
        None
    }

    /// The instant a local date + minute-of-day happens: the first occurrence when the clocks go back, the
    /// end of the gap when they jump forward over it.
    fn resolve_local(&self, date: NaiveDate, minute: u16) -> Option<Timestamp> {
        let midnight = date.and_time(NaiveTime::MIN);
        let wanted = midnight + Duration::minutes(minute as i64);
        // A gap lasts at most a few hours (usually one): walk minute by minute to its end.
        for step in 0..=24 * 60 {
            let local = wanted + Duration::minutes(step);
            match self.time_zone.from_local_datetime(&local) {
                LocalResult::Single(t) => return Some(t.to_utc().into()),
                LocalResult::Ambiguous(first, _) => return Some(first.to_utc().into()),
                LocalResult::None => continue,
            }
        }
        None
    }
}

/// How urgent a caller's request is, chosen per IVR option: `Urgent` pages the escalation policy at once, at
/// any hour; `Normal` pages during business hours, and after hours waits for the next opening. Defined by the
/// IVR menu (`oncall_ivr::Urgency`, which explains why the dependency points core → ivr) and re-exported here.
pub use oncall_ivr::Urgency;

/// The paging decision for a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageWhen {
    Now,
    /// Deferred: page at this instant (the next opening), unless someone handled it before then.
    At(Timestamp),
}

/// When a request of `urgency` opened at `now` pages. No business hours (`None`) means always open. A normal
/// request with no opening ahead (every open day closed for a year) pages now rather than never.
pub fn when_to_page(urgency: Urgency, hours: Option<&BusinessHours>, now: Timestamp) -> PageWhen {
    match (urgency, hours) {
        (Urgency::Urgent, _) | (Urgency::Normal, None) => PageWhen::Now,
        (Urgency::Normal, Some(h)) => match h.next_opening(now) {
            Some(t) if t > now => PageWhen::At(t),
            _ => PageWhen::Now,
        },
    }
}

#[cfg(test)]
mod tests;

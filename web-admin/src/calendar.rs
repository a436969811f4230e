//! Calendar pages from a schedule's shifts: the month grid, the week view with bars by hour,
//! and the iCalendar feed (RFC 5545) of one person's shifts.
//!
//! Everything is a pure function of shifts (from `oncall_core::schedule::shifts`), a time zone
//! and the period, so it is tested without a server. Days are local days of the schedule's zone;
//! a DST day is 23 or 25 hours long and its bars are placed by real time within it.

use crate::views::{self, Directory};
use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Tz;
use oncall_core::schedule::{Shift, Source};
use oncall_core::Timestamp;
use serde::Serialize;

/// A piece of a shift inside one day.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub person: String,
    pub person_id: i64,
    pub colour: &'static str,
    /// "09:00–24:00" within the day.
    pub label: String,
    pub is_override: bool,
    /// Position in the day, percent (week view).
    pub top: f64,
    pub height: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Day {
    pub date: String,
    pub day: u32,
    pub weekday: String,
    pub in_month: bool,
    pub today: bool,
    pub segments: Vec<Segment>,
}

/// Monday of the week containing `d`.
pub fn week_start(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

/// The instant range of local days `[first, first + n days)`.
pub fn range(first: NaiveDate, days: i64, tz: Tz) -> (Timestamp, Timestamp) {
    (views::day_start(first, tz), views::day_start(first + Duration::days(days), tz))
}

/// `days` consecutive days from `first`, each with the shift pieces inside it.
pub fn days(shifts: &[Shift], first: NaiveDate, n: i64, tz: Tz, dir: &Directory, month: Option<u32>, today: NaiveDate) -> Vec<Day> {
    (0..n)
        .map(|i| {
            let date = first + Duration::days(i);
            let (start, end) = range(date, 1, tz);
            let len = (end - start).0.max(1) as f64;
            let segments = shifts
                .iter()
                .filter(|s| s.start < end && start < s.end)
                .map(|s| {
                    let a = s.start.max(start);
                    let b = s.end.min(end);
                    let end_label = if b == end { "24:00".to_string() } else { views::clock(b, tz) };
                    Segment {
                        person: dir.name(s.person),
                        person_id: s.person.0,
                        colour: dir.colour(s.person),
                        label: format!("{}–{}", views::clock(a, tz), end_label),
                        is_override: matches!(s.source, Source::Override(_)),
                        top: ((a - start).0 as f64 / len * 100.0 * 10.0).round() / 10.0,
                        height: ((b - a).0 as f64 / len * 100.0 * 10.0).round() / 10.0,
                    }
                })
                .collect();
            Day {
                date: date.format("%Y-%m-%d").to_string(),
                day: date.day(),
                weekday: date.format("%a").to_string(),
                in_month: month.is_none_or(|m| date.month() == m),
                today: date == today,
                segments,
            }
        })
        .collect()
}

/// The 5 or 6 weeks (Monday first) showing the month of `any_day`: (first day, number of days).
pub fn month_grid(any_day: NaiveDate) -> (NaiveDate, i64) {
    let first_of_month = any_day.with_day(1).unwrap_or(any_day);
    let next_month = if first_of_month.month() == 12 {
        NaiveDate::from_ymd_opt(first_of_month.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first_of_month.year(), first_of_month.month() + 1, 1)
    }
    .unwrap_or(first_of_month + Duration::days(31));
    let start = week_start(first_of_month);
    let end = week_start(next_month - Duration::days(1)) + Duration::days(7);
    (start, (end - start).num_days())
}

/// Same day one month earlier/later (clamped to the month's length).
pub fn add_months(d: NaiveDate, months: i32) -> NaiveDate {
    let total = d.year() * 12 + d.month0() as i32 + months;
    let (y, m0) = (total.div_euclid(12), total.rem_euclid(12) as u32);
    (1..=d.day()).rev().find_map(|day| NaiveDate::from_ymd_opt(y, m0 + 1, day)).unwrap_or(d)
}

/// One event of a feed.
pub struct FeedEvent {
    pub uid: String,
    pub summary: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// An RFC 5545 calendar; times in UTC, lines folded at 75 octets, CRLF line ends.
pub fn ical(name: &str, events: &[FeedEvent], now: Timestamp) -> String {
    let utc = |t: Timestamp| t.to_utc().format("%Y%m%dT%H%M%SZ").to_string();
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//OnCall//Shifts//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        "METHOD:PUBLISH".to_string(),
        format!("X-WR-CALNAME:{}", escape_text(name)),
    ];
    for e in events {
        lines.push("BEGIN:VEVENT".into());
        lines.push(format!("UID:{}", escape_text(&e.uid)));
        lines.push(format!("DTSTAMP:{}", utc(now)));
        lines.push(format!("DTSTART:{}", utc(e.start)));
        lines.push(format!("DTEND:{}", utc(e.end)));
        lines.push(format!("SUMMARY:{}", escape_text(&e.summary)));
        lines.push("TRANSP:OPAQUE".into());
        lines.push("END:VEVENT".into());
    }
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for l in lines {
        out.push_str(&fold(&l));
        out.push_str("\r\n");
    }
    out
}

fn escape_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace(';', "\\;").replace(',', "\\,").replace('\n', "\\n").replace('\r', "")
}

/// Folds a content line at 75 octets without splitting a UTF-8 character (RFC 5545 §3.1).
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if count + n > 75 {
            out.push_str("\r\n ");
            count = 1;
        }
        out.push(c);
        count += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_core::PersonId;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn month_grid_covers_whole_weeks() {
        let (start, n) = month_grid(d(2026, 11, 17));
        assert_eq!(start, d(2026, 10, 26)); // the Monday before Nov 1 (a Sunday)
        assert_eq!(n % 7, 0);
        assert!(start + Duration::days(n - 1) >= d(2026, 11, 30));
        assert_eq!(add_months(d(2026, 1, 31), 1), d(2026, 2, 28));
        assert_eq!(add_months(d(2026, 1, 15), -1), d(2025, 12, 15));
    }

    #[test]
    fn segments_split_at_midnight_and_dst_days_are_placed_by_real_time() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let dir = Directory::default();
        // 2026-03-08 is the spring-forward day (23 hours).
        let start = views::day_start(d(2026, 3, 8), tz);
        let shift = Shift { person: PersonId(1), start: start + oncall_core::Millis::hours(12), end: start + oncall_core::Millis::hours(30), source: Source::Layer(0) };
        let ds = days(&[shift], d(2026, 3, 8), 2, tz, &dir, None, d(2026, 3, 8));
        assert_eq!(ds[0].segments.len(), 1);
        assert_eq!(ds[0].segments[0].label, "13:00–24:00"); // 12 real hours after midnight is 13:00 EDT
        assert!((ds[0].segments[0].top - 52.2).abs() < 0.1); // 12 of 23 hours
        assert_eq!(ds[1].segments[0].label, "00:00–07:00");
    }

    #[test]
    fn ical_is_folded_and_escaped() {
        let e = FeedEvent { uid: "a@oncall".into(), summary: "On call: Maintenance, building A; long ".repeat(3), start: Timestamp(0), end: Timestamp(3_600_000) };
        let cal = ical("Ann's shifts", &[e], Timestamp(0));
        assert!(cal.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(cal.contains("DTSTART:19700101T000000Z\r\n"));
        assert!(cal.contains("\\,"));
        assert!(cal.lines().all(|l| l.len() <= 76));
    }
}

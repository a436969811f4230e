//! Business hours in two time zones (Paris, New York), at 10:00 and 02:00 local, across DST changes and a
//! holiday, with the urgent/normal paging decision.

use super::*;
use chrono_tz::America::New_York;
use chrono_tz::Europe::Paris;

/// The instant of a local wall-clock time (unambiguous ones only).
fn local(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
    tz.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("unambiguous local time")
        .to_utc()
        .into()
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
    local(Tz::UTC, y, m, d, h, min)
}

/// Monday to Friday 08:00-18:00, closed on Christmas 2026 (a Friday).
fn office(tz: &str) -> BusinessHours {
    let week = "08:00-18:00";
    BusinessHours::parse(tz, [week, week, week, week, week, "", "closed"], &["2026-12-25"]).unwrap()
}

#[test]
fn urgent_pages_now_and_normal_waits_for_opening_at_10_and_02_in_two_zones() {
    for (tz, name) in [(Paris, "Europe/Paris"), (New_York, "America/New_York")] {
        let hours = office(name);
        // Tuesday 2026-06-16.
        let ten = local(tz, 2026, 6, 16, 10, 0);
        let two = local(tz, 2026, 6, 16, 2, 0);
        assert!(hours.is_open(ten) && !hours.is_open(two), "{name}");
        assert_eq!(
            when_to_page(Urgency::Urgent, Some(&hours), ten),
            PageWhen::Now,
            "{name}"
        );
        assert_eq!(
            when_to_page(Urgency::Normal, Some(&hours), ten),
            PageWhen::Now,
            "{name}"
        );
        assert_eq!(
            when_to_page(Urgency::Urgent, Some(&hours), two),
            PageWhen::Now,
            "{name}"
        );
        assert_eq!(
            when_to_page(Urgency::Normal, Some(&hours), two),
            PageWhen::At(local(tz, 2026, 6, 16, 8, 0)),
            "{name}"
        );
    }
    // The same instant is 10:00 in Paris and 04:00 in New York: open in one, not the other.
    let instant = local(Paris, 2026, 6, 16, 10, 0);
    assert!(office("Europe/Paris").is_open(instant));
    assert!(!office("America/New_York").is_open(instant));
    assert_eq!(
        when_to_page(Urgency::Normal, Some(&office("America/New_York")), instant),
        PageWhen::At(utc(2026, 6, 16, 12, 0))
    );
}

#[test]
fn the_opening_after_a_dst_change_is_at_local_eight_on_the_new_offset() {
    // Paris springs forward on Sunday 2026-03-29 (UTC+1 -> UTC+2).
    let paris = office("Europe/Paris");
    let friday_10 = local(Paris, 2026, 3, 27, 10, 0);
    assert_eq!(friday_10, utc(2026, 3, 27, 9, 0), "still winter time");
    assert!(paris.is_open(friday_10));
    let friday_night = local(Paris, 2026, 3, 27, 20, 0);
    assert_eq!(
        when_to_page(Urgency::Normal, Some(&paris), friday_night),
        PageWhen::At(utc(2026, 3, 30, 6, 0)),
        "Monday 08:00 CEST"
    );
    let monday_2 = local(Paris, 2026, 3, 30, 2, 0);
    assert_eq!(when_to_page(Urgency::Urgent, Some(&paris), monday_2), PageWhen::Now);
    assert_eq!(
        when_to_page(Urgency::Normal, Some(&paris), monday_2),
        PageWhen::At(utc(2026, 3, 30, 6, 0))
    );
    let monday_10 = local(Paris, 2026, 3, 30, 10, 0);
    assert_eq!(monday_10, utc(2026, 3, 30, 8, 0), "summer time");
    assert!(
        paris.is_open(monday_10) && !paris.is_open(utc(2026, 3, 30, 5, 59)) && paris.is_open(utc(2026, 3, 30, 6, 0))
    );

    // New York springs forward on Sunday 2026-03-08 (UTC-5 -> UTC-4) and falls back on 2026-11-01.
    let ny = office("America/New_York");
    let saturday_2 = local(New_York, 2026, 3, 7, 2, 0);
    assert_eq!(
        when_to_page(Urgency::Normal, Some(&ny), saturday_2),
        PageWhen::At(utc(2026, 3, 9, 12, 0)),
        "Monday 08:00 EDT"
    );
    assert!(ny.is_open(local(New_York, 2026, 3, 9, 10, 0)));
    let saturday_after_fall_back = local(New_York, 2026, 10, 31, 10, 0);
    assert!(!ny.is_open(saturday_after_fall_back));
    assert_eq!(
        when_to_page(Urgency::Normal, Some(&ny), saturday_after_fall_back),
        PageWhen::At(utc(2026, 11, 2, 13, 0)),
        "Monday 08:00 EST"
    );
}

#[test]
fn a_holiday_is_closed_all_day_and_defers_normal_requests_to_the_next_open_day() {
    for (tz, name) in [(Paris, "Europe/Paris"), (New_York, "America/New_York")] {
        let hours = office(name);
        let christmas_10 = local(tz, 2026, 12, 25, 10, 0);
        assert!(!hours.is_open(christmas_10), "{name}: a Friday, but a holiday");
        assert_eq!(when_to_page(Urgency::Urgent, Some(&hours), christmas_10), PageWhen::Now);
        // Friday closed, then the weekend: Monday 28th at 08:00.
        let monday = local(tz, 2026, 12, 28, 8, 0);
        assert_eq!(
            when_to_page(Urgency::Normal, Some(&hours), christmas_10),
            PageWhen::At(monday),
            "{name}"
        );
        assert_eq!(
            when_to_page(Urgency::Normal, Some(&hours), local(tz, 2026, 12, 24, 19, 0)),
            PageWhen::At(monday),
            "{name}"
        );
        assert!(
            hours.is_open(local(tz, 2026, 12, 24, 17, 59)) && !hours.is_open(local(tz, 2026, 12, 24, 18, 0)),
            "end excluded"
        );
    }
}

#[test]
fn no_business_hours_means_always_open() {
    assert_eq!(
        when_to_page(Urgency::Normal, None, utc(2026, 1, 1, 2, 0)),
        PageWhen::Now
    );
}

#[test]
fn opening_times_in_a_dst_gap_or_overlap() {
    // Sunday opens at 02:30: on 2026-03-29 Paris skips 02:00-03:00, so it opens at 03:00 CEST (01:00Z);
    // on 2026-10-25 02:30 happens twice, and it opens at the first (CEST, 00:30Z).
    let hours = BusinessHours::parse("Europe/Paris", ["", "", "", "", "", "", "02:30-05:00"], &[] as &[&str]).unwrap();
    assert_eq!(
        hours.next_opening(utc(2026, 3, 28, 12, 0)),
        Some(utc(2026, 3, 29, 1, 0))
    );
    assert!(hours.is_open(utc(2026, 3, 29, 1, 0)));
    assert_eq!(
        hours.next_opening(utc(2026, 10, 24, 12, 0)),
        Some(utc(2026, 10, 25, 0, 30))
    );
}

#[test]
fn day_text_parses_and_validates_with_the_field_name() {
    let day = parse_day("monday", " 13:00-17:00, 08:00-12:00 ").unwrap();
    assert_eq!(format_day(&day), "08:00-12:00, 13:00-17:00");
    assert_eq!(format_day(&parse_day("sunday", "closed").unwrap()), "closed");
    assert_eq!(parse_day("friday", "22:00-24:00").unwrap()[0].end_minutes(), 1440);
    for bad in [
        "8-18",
        "08:00",
        "18:00-08:00",
        "08:00-25:00",
        "08:60-09:00",
        "08:00-12:00, 11:00-13:00",
    ] {
        assert_eq!(parse_day("tuesday", bad).unwrap_err().field, "tuesday", "{bad}");
    }
    assert_eq!(parse_date("closed[0]", "2026-13-01").unwrap_err().field, "closed[0]");
    let e = BusinessHours::parse("Europe/Paris", [""; 7], &[] as &[&str]).unwrap_err();
    assert_eq!(e.field, "weekly");
    assert_eq!(
        BusinessHours::parse("Mars/Base", ["08:00-18:00"; 7], &[] as &[&str])
            .unwrap_err()
            .field,
        "time_zone"
    );
}

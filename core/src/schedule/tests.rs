//! Example and property tests of the pure schedule functions.

use super::*;
use crate::ids::{OrgId, PersonId, ScheduleId};
use crate::timestamp::{Millis, Timestamp};
use chrono::{NaiveDate, NaiveTime};
use chrono_tz::{America::New_York, Europe::London};
use proptest::prelude::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn at(tz: Tz, y: i32, m: u32, d: u32, h: u32) -> Timestamp {
    resolve_local(tz, date(y, m, d).and_hms_opt(h, 0, 0).unwrap()).unwrap()
}

fn layer(members: &[i64], len: ShiftLength, start: NaiveDate, handoff_hour: u32) -> Layer {
    Layer {
        name: "primary".into(),
        rotation: Rotation {
            members: members.iter().map(|&m| PersonId(m)).collect(),
            shift_length: len,
            start_date: start,
            handoff_time: NaiveTime::from_hms_opt(handoff_hour, 0, 0).unwrap(),
        },
    }
}

fn schedule(tz: Tz, layers: Vec<Layer>, overrides: Vec<Override>) -> Schedule {
    Schedule { id: ScheduleId(1), org: OrgId(1), name: "s".into(), time_zone: tz, layers, overrides }
}

#[test]
fn higher_layer_wins_where_it_has_someone() {
    let base = layer(&[1, 2], ShiftLength::Weeks(1), date(2024, 1, 1), 9);
    // Holiday cover starts on Jan 10.
    let cover = layer(&[9], ShiftLength::Days(1), date(2024, 1, 10), 9);
    let s = schedule(London, vec![base, cover], vec![]);
    assert_eq!(on_call(&s, at(London, 2024, 1, 9, 12)).unwrap().person, PersonId(2));
    let oc = on_call(&s, at(London, 2024, 1, 10, 12)).unwrap();
    assert_eq!((oc.person, oc.source), (PersonId(9), Source::Layer(1)));
}

#[test]
fn next_on_call_is_the_first_shift_of_someone_else() {
    let base = layer(&[1, 2, 3], ShiftLength::Days(1), date(2024, 1, 1), 9);
    let s = schedule(London, vec![base.clone()], vec![]);
    let next = next_on_call(&s, at(London, 2024, 1, 1, 12)).unwrap();
    assert_eq!((next.person, next.start), (PersonId(2), at(London, 2024, 1, 2, 9)));
    // An override of person 1 across the handoff: person 2 comes later.
    let o = Override::new(PersonId(1), at(London, 2024, 1, 2, 9), at(London, 2024, 1, 2, 15));
    let s = schedule(London, vec![base], vec![o]);
    assert_eq!(next_on_call(&s, at(London, 2024, 1, 1, 12)).unwrap().start, at(London, 2024, 1, 2, 15));
    // Nobody on call before the rotation starts: the first shift.
    assert_eq!(next_on_call(&s, at(London, 2023, 12, 31, 12)).unwrap().person, PersonId(1));
}

#[test]
fn override_wins_and_shows_in_calendar() {
    let base = layer(&[1, 2], ShiftLength::Days(1), date(2024, 1, 1), 9);
    let o = Override::new(PersonId(7), at(London, 2024, 1, 2, 18), at(London, 2024, 1, 3, 6));
    let s = schedule(London, vec![base], vec![o]);
    let cal = shifts(&s, at(London, 2024, 1, 2, 0), at(London, 2024, 1, 4, 0));
    let people: Vec<_> = cal.iter().map(|s| (s.person.0, s.source)).collect();
    assert_eq!(
        people,
        vec![
            (1, Source::Layer(0)),
            (2, Source::Layer(0)),
            (7, Source::Override(0)),
            (2, Source::Layer(0)),
            (1, Source::Layer(0)),
        ]
    );
    assert_eq!(cal.first().unwrap().start, at(London, 2024, 1, 2, 0));
    assert_eq!(cal.last().unwrap().end, at(London, 2024, 1, 4, 0));
}

#[test]
fn nobody_before_the_rotation_starts() {
    let s = schedule(London, vec![layer(&[1], ShiftLength::Days(1), date(2030, 1, 1), 9)], vec![]);
    assert!(on_call(&s, at(London, 2024, 1, 1, 0)).is_none());
    assert!(shifts(&s, at(London, 2024, 1, 1, 0), at(London, 2024, 2, 1, 0)).is_empty());
}

#[test]
fn validation_names_fields() {
    let mut ns = NewSchedule {
        name: "Main".into(),
        time_zone: "Europe/Atlantis".into(),
        layers: vec![layer(&[1], ShiftLength::Days(1), date(2024, 1, 1), 9)],
    };
    assert_eq!(ns.validate().unwrap_err().field, "time_zone");
    ns.time_zone = "Europe/London".into();
    ns.layers.push(layer(&[], ShiftLength::Days(1), date(2024, 1, 1), 9));
    assert_eq!(ns.validate().unwrap_err().field, "layers[1].members");
    ns.layers[1] = layer(&[1], ShiftLength::Hours(0), date(2024, 1, 1), 9);
    assert_eq!(ns.validate().unwrap_err().field, "layers[1].shift_length");
}

// ---- properties ----

const ZONES: &[Tz] = &[
    chrono_tz::UTC,
    New_York,
    London,
    chrono_tz::Australia::Lord_Howe, // 30-minute DST shift
    chrono_tz::Asia::Kolkata,
];

fn arb_len() -> impl Strategy<Value = ShiftLength> {
    prop_oneof![
        (1u32..=72).prop_map(ShiftLength::Hours),
        (1u32..=14).prop_map(ShiftLength::Days),
        (1u32..=3).prop_map(ShiftLength::Weeks),
    ]
}

fn arb_layer() -> impl Strategy<Value = Layer> {
    (
        prop::collection::vec(1i64..6, 1..5),
        arb_len(),
        0i64..3000,
        0u32..24,
        0u32..4,
    )
        .prop_map(|(members, len, day, hour, quarter)| Layer {
            name: "l".into(),
            rotation: Rotation {
                members: members.into_iter().map(PersonId).collect(),
                shift_length: len,
                start_date: date(2020, 1, 1) + chrono::Days::new(day as u64),
                handoff_time: NaiveTime::from_hms_opt(hour, quarter * 15, 0).unwrap(),
            },
        })
}

/// 2020-01-01 .. ~2029 in ms.
fn arb_instant() -> impl Strategy<Value = Timestamp> {
    (1_577_836_800_000i64..1_893_456_000_000).prop_map(Timestamp)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn layer_shifts_tile_time(l in arb_layer(), zi in 0..ZONES.len(), from in arb_instant(), span_h in 1i64..2000) {
        let tz = ZONES[zi];
        let to = from + Millis::hours(span_h);
        let got = l.shifts(tz, from, to);
        let first_start = l.rotation.shift_start(tz, 0).unwrap();
        if first_start >= to {
            prop_assert!(got.is_empty());
        } else {
            prop_assert!(!got.is_empty());
            prop_assert_eq!(got[0].start, from.max(first_start));
            prop_assert_eq!(got.last().unwrap().end, to);
            for w in got.windows(2) {
                prop_assert_eq!(w[0].end, w[1].start, "gap or overlap");
                prop_assert_eq!(w[0].index + 1, w[1].index);
            }
            for s in &got {
                prop_assert!(s.start < s.end);
                // on_call agrees with the calendar at both ends of every piece
                prop_assert_eq!(l.shift_at(tz, s.start).map(|x| x.person), Some(s.person));
                prop_assert_eq!(l.shift_at(tz, s.end - Millis(1)).map(|x| x.person), Some(s.person));
            }
        }
    }

    #[test]
    fn overrides_always_win(
        layers in prop::collection::vec(arb_layer(), 0..3),
        zi in 0..ZONES.len(),
        o_start in arb_instant(),
        o_len_min in 1i64..(60 * 24 * 10),
        probe_frac in 0.0f64..1.0,
    ) {
        let tz = ZONES[zi];
        let o = Override::new(PersonId(99), o_start, o_start + Millis::minutes(o_len_min));
        let s = schedule(tz, layers, vec![o]);
        let probe = o.start + Millis(((o.end - o.start).0 as f64 * probe_frac) as i64);
        prop_assert_eq!(on_call(&s, probe), Some(OnCall { person: PersonId(99), source: Source::Override(0) }));
        let cal = shifts(&s, o.start - Millis::hours(48), o.end + Millis::hours(48));
        let inside: Vec<_> = cal.iter().filter(|x| x.start < o.end && o.start < x.end).collect();
        prop_assert_eq!(inside.len(), 1);
        prop_assert_eq!((inside[0].start, inside[0].end, inside[0].person), (o.start, o.end, PersonId(99)));
        // The flattened calendar never overlaps itself.
        for w in cal.windows(2) {
            prop_assert!(w[0].end <= w[1].start);
        }
    }

    #[test]
    fn calendar_matches_on_call(layers in prop::collection::vec(arb_layer(), 1..4), zi in 0..ZONES.len(),
                                from in arb_instant(), span_h in 1i64..500, probe_frac in 0.0f64..1.0) {
        let tz = ZONES[zi];
        let s = schedule(tz, layers, vec![]);
        let to = from + Millis::hours(span_h);
        let probe = from + Millis(((to - from).0 as f64 * probe_frac) as i64);
        let cal = shifts(&s, from, to);
        let in_cal = cal.iter().find(|x| x.start <= probe && probe < x.end).map(|x| x.person);
        prop_assert_eq!(in_cal, on_call(&s, probe).map(|o| o.person));
    }

    /// Day and week shifts keep their wall-clock length across DST in New York and London:
    /// n days on the clock, so n*24h ± 1h of real time.
    #[test]
    fn dst_wall_clock_lengths(
        zone in prop_oneof![Just(New_York), Just(London)],
        days in prop_oneof![(1u32..=3).prop_map(ShiftLength::Days), (1u32..=2).prop_map(ShiftLength::Weeks)],
        start_day in 0i64..1500,
        // Handoffs outside 01:00-03:00, where DST skips or repeats wall-clock times.
        hour in prop_oneof![0u32..1, 3u32..24],
        from in arb_instant(),
    ) {
        let l = layer(&[1, 2, 3], days, date(2020, 1, 1) + chrono::Days::new(start_day as u64), hour);
        let to = from + Millis::hours(24 * 120);
        let nominal_days = (days.approx_hours() / 24) as i64;
        let shifts = l.shifts(zone, from, to);
        for s in shifts.iter().filter(|s| l.rotation.shift_start(zone, s.index) == Some(s.start)
                                          && l.rotation.shift_start(zone, s.index + 1) == Some(s.end)) {
            let ls = s.start.to_utc().with_timezone(&zone).naive_local();
            let le = s.end.to_utc().with_timezone(&zone).naive_local();
            prop_assert_eq!((le - ls).num_hours(), nominal_days * 24, "wall clock");
            let real = (s.end - s.start).0;
            prop_assert!((real - nominal_days * 86_400_000).abs() <= 3_600_000, "real length {}", real);
        }
    }
}

/// Issue 18 item 11: a week-long shift seen through a two-day window keeps its real start and end.
#[test]
fn whole_shifts_are_not_cut_at_the_window() {
    let s = schedule(London, vec![layer(&[1, 2], ShiftLength::Weeks(1), date(2024, 1, 1), 9)], vec![]);
    let (from, to) = (at(London, 2024, 1, 3, 12), at(London, 2024, 1, 5, 12));
    let cut = shifts(&s, from, to);
    assert_eq!((cut[0].start, cut[0].end), (from, to), "shifts() clips to the window");
    let whole = whole_shifts(&s, from, to);
    assert_eq!(whole.len(), 1);
    assert_eq!((whole[0].person, whole[0].start, whole[0].end), (PersonId(1), at(London, 2024, 1, 1, 9), at(London, 2024, 1, 8, 9)));
    // A window ending on a handoff, and the next person's shift beyond it, change nothing.
    let whole = whole_shifts(&s, at(London, 2024, 1, 6, 0), at(London, 2024, 1, 9, 0));
    assert_eq!(whole.iter().map(|x| (x.person, x.end)).collect::<Vec<_>>(), vec![(PersonId(1), at(London, 2024, 1, 8, 9)), (PersonId(2), at(London, 2024, 1, 15, 9))]);
}

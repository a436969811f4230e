//! Swap lifecycle tests, each run on SQLite and (when configured) PostgreSQL.

use crate::ids::{OrgId, PersonId, ScheduleId};
use crate::person::{NewPerson, Role};
use crate::schedule::{self, Layer, NewSchedule, NewSwap, Rotation, ShiftLength, Span, SwapStatus};
use crate::store::testing::{on_each_backend, TestDb};
use crate::store::{Store, StoreError};
use crate::timestamp::{Millis, Timestamp};
use chrono::{NaiveDate, NaiveTime};

const NOW: Timestamp = Timestamp(1_717_200_000_000); // 2024-06-01T00:00:00Z, a Saturday

struct Team {
    org: OrgId,
    ann: PersonId,
    bob: PersonId,
    schedule: ScheduleId,
}

async fn team(s: &Store, slug: &str) -> Team {
    let org = s.create_organization("Swaps", slug, "UTC", NOW).await.unwrap();
    let person = |name: &str, n: u32| NewPerson {
        name: name.into(),
        email: Some(format!("{}@{slug}.example.com", name.to_lowercase())),
        role: Some(Role::Employee),
        phones: vec![format!("+44 20 7946 00{n:02}")],
        time_zone: "UTC".into(),
        ..NewPerson::default()
    };
    let ann = s.add_person(org, &person("Ann", 1), NOW).await.unwrap();
    let bob = s.add_person(org, &person("Bob", 2), NOW).await.unwrap();
    let new = NewSchedule {
        name: "Daily".into(),
        time_zone: "UTC".into(),
        layers: vec![Layer {
            name: "Daily".into(),
            rotation: Rotation {
                members: vec![ann, bob],
                shift_length: ShiftLength::Days(1),
                start_date: NaiveDate::from_ymd_opt(2024, 6, 1).unwrap(),
                handoff_time: NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
            },
        }],
    };
    let schedule = s.create_schedule(org, &new, NOW).await.unwrap();
    Team { org, ann, bob, schedule }
}

fn day(n: i64) -> Span {
    Span { start: NOW + Millis::hours(24 * n), end: NOW + Millis::hours(24 * (n + 1)) }
}

async fn on_call(s: &Store, t: &Team, at: Timestamp) -> PersonId {
    schedule::on_call(&s.schedule(t.org, t.schedule).await.unwrap(), at).unwrap().person
}

#[tokio::test]
async fn a_swap_is_asked_accepted_approved_and_becomes_overrides() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let t = team(s, "swap-a").await;
        // Ann has even days, Bob odd ones. Ann swaps day 2 for Bob's day 3.
        assert_eq!(on_call(s, &t, day(2).start).await, t.ann);
        assert!(s.swaps_need_approval(t.org, t.schedule).await.unwrap());
        let new = NewSwap { schedule: t.schedule, requester: t.ann, taker: t.bob, shift: day(2), back: Some(day(3)) };
        let id = s.request_swap(t.org, &new, NOW).await.unwrap();
        // The same shift cannot be asked twice while open.
        assert!(matches!(s.request_swap(t.org, &new, NOW).await, Err(StoreError::Conflict(_))), "{}", db.label);
        assert_eq!(s.swaps_of_person(t.org, t.bob).await.unwrap().len(), 1);
        assert_eq!(s.swaps_of_schedule(t.org, t.schedule).await.unwrap()[0].status, SwapStatus::Asked);
        // Only the colleague may answer; a manager cannot approve before the colleague said yes.
        assert!(matches!(s.accept_swap(t.org, id, t.ann, NOW).await, Err(StoreError::NotFound(_))));
        assert!(matches!(s.decide_swap(t.org, t.schedule, id, true, NOW).await, Err(StoreError::Invalid(_))));
        assert_eq!(s.accept_swap(t.org, id, t.bob, NOW + Millis::minutes(1)).await.unwrap(), SwapStatus::Accepted);
        assert_eq!(on_call(s, &t, day(2).start).await, t.ann, "nothing changes before approval");
        assert!(matches!(s.accept_swap(t.org, id, t.bob, NOW).await, Err(StoreError::Invalid(_))), "answered once");
        assert_eq!(s.decide_swap(t.org, t.schedule, id, true, NOW + Millis::minutes(2)).await.unwrap(), SwapStatus::Approved);
        let done = s.swap(t.org, id).await.unwrap();
        assert_eq!(done.status, SwapStatus::Approved, "{}", db.label);
        assert_eq!(done.overrides.len(), 2);
        assert_eq!(done.answered_at, Some(NOW + Millis::minutes(1)));
        assert_eq!(done.decided_at, Some(NOW + Millis::minutes(2)));
        assert_eq!(on_call(s, &t, day(2).start).await, t.bob);
        assert_eq!(on_call(s, &t, day(3).start).await, t.ann);
        assert_eq!(s.schedule(t.org, t.schedule).await.unwrap().overrides.len(), 2);
        // Approved is final.
        assert!(matches!(s.decide_swap(t.org, t.schedule, id, false, NOW).await, Err(StoreError::Invalid(_))));
        assert!(matches!(s.cancel_swap(t.org, id, t.ann, NOW).await, Err(StoreError::Invalid(_))));
    })
    .await;
}

#[tokio::test]
async fn without_approval_acceptance_applies_and_refusals_write_nothing() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let t = team(s, "swap-b").await;
        // Declined and refused requests change nothing.
        let give = NewSwap { schedule: t.schedule, requester: t.ann, taker: t.bob, shift: day(4), back: None };
        let declined = s.request_swap(t.org, &give, NOW).await.unwrap();
        s.decline_swap(t.org, declined, t.bob, NOW).await.unwrap();
        assert_eq!(s.swap(t.org, declined).await.unwrap().status, SwapStatus::Declined);
        let refused = s.request_swap(t.org, &give, NOW).await.unwrap();
        s.accept_swap(t.org, refused, t.bob, NOW).await.unwrap();
        assert_eq!(s.decide_swap(t.org, t.schedule, refused, false, NOW).await.unwrap(), SwapStatus::Refused);
        let cancelled = s.request_swap(t.org, &give, NOW).await.unwrap();
        assert!(matches!(s.cancel_swap(t.org, cancelled, t.bob, NOW).await, Err(StoreError::NotFound(_))), "only the requester cancels");
        s.cancel_swap(t.org, cancelled, t.ann, NOW).await.unwrap();
        assert!(s.schedule(t.org, t.schedule).await.unwrap().overrides.is_empty());

        // With approval off, the colleague's yes applies the give-away at once.
        s.set_swaps_need_approval(t.org, t.schedule, false).await.unwrap();
        assert!(!s.swaps_need_approval(t.org, t.schedule).await.unwrap());
        let id = s.request_swap(t.org, &give, NOW).await.unwrap();
        assert_eq!(s.accept_swap(t.org, id, t.bob, NOW).await.unwrap(), SwapStatus::Approved, "{}", db.label);
        assert_eq!(on_call(s, &t, day(4).start).await, t.bob);
        assert_eq!(s.swap(t.org, id).await.unwrap().overrides.len(), 1);

        // A swap clashing with an override already there is refused whole: still asked, nothing written.
        let clash = NewSwap { schedule: t.schedule, requester: t.ann, taker: t.bob, shift: day(6), back: Some(day(4)) };
        let cid = s.request_swap(t.org, &clash, NOW).await.unwrap();
        assert!(matches!(s.accept_swap(t.org, cid, t.bob, NOW).await, Err(StoreError::Invalid(_))), "{}", db.label);
        assert_eq!(s.swap(t.org, cid).await.unwrap().status, SwapStatus::Asked);
        assert_eq!(s.schedule(t.org, t.schedule).await.unwrap().overrides.len(), 1);
        assert_eq!(s.swaps_of_schedule(t.org, t.schedule).await.unwrap()[0].id, cid, "open ones first");
    })
    .await;
}

#[tokio::test]
async fn swaps_stay_inside_their_organization() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = team(s, "swap-c").await;
        let b = team(s, "swap-d").await;
        let id = s.request_swap(a.org, &NewSwap { schedule: a.schedule, requester: a.ann, taker: a.bob, shift: day(2), back: None }, NOW).await.unwrap();
        assert!(matches!(s.swap(b.org, id).await, Err(StoreError::NotFound(_))));
        assert!(matches!(s.accept_swap(b.org, id, b.bob, NOW).await, Err(StoreError::NotFound(_))));
        assert!(matches!(s.decide_swap(b.org, b.schedule, id, true, NOW).await, Err(StoreError::NotFound(_))));
        // Another organization's schedule or people cannot be named.
        let cross = NewSwap { schedule: b.schedule, requester: a.ann, taker: a.bob, shift: day(2), back: None };
        assert!(matches!(s.request_swap(a.org, &cross, NOW).await, Err(StoreError::NotFound(_))));
        let cross = NewSwap { schedule: a.schedule, requester: a.ann, taker: b.bob, shift: day(2), back: None };
        assert!(s.request_swap(a.org, &cross, NOW).await.is_err());
        assert!(matches!(s.set_swaps_need_approval(b.org, a.schedule, false).await, Err(StoreError::NotFound(_))));
        assert!(s.swaps_of_person(b.org, a.ann).await.unwrap().is_empty());
    })
    .await;
}

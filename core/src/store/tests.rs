//! Store tests, each run on SQLite and (when configured) PostgreSQL.

use super::testing::{on_each_backend, TestDb};
use super::*;
use crate::escalation::{Command, Input, NewPolicy, Step, Target};
use crate::ids::*;
use crate::person::{Channel, NewPerson, NotificationRule, Role};
use crate::request::{Actor, NewRecording, NewRequest, RecordingKind, RequestState, RequestStatus};
use crate::schedule::{self, Layer, NewSchedule, Override, Rotation, ShiftLength};
use crate::timestamp::{Millis, Timestamp};
use chrono::{NaiveDate, NaiveTime};

const NOW: Timestamp = Timestamp(1_717_200_000_000); // 2024-06-01T00:00:00Z

fn person(name: &str, phone: &str, role: Role) -> NewPerson {
    NewPerson {
        name: name.into(),
        email: Some(format!("{}@example.com", name.to_lowercase())),
        role: Some(role),
        phones: vec![phone.into()],
        time_zone: "Europe/London".into(),
        ..NewPerson::default()
    }
}

async fn org(store: &Store, slug: &str) -> OrgId {
    store.create_organization("Test Org", slug, "Europe/London", NOW).await.unwrap()
}

fn weekly(members: Vec<PersonId>) -> NewSchedule {
    NewSchedule {
        name: "Main".into(),
        time_zone: "Europe/London".into(),
        layers: vec![Layer {
            name: "Weekly".into(),
            rotation: Rotation {
                members,
                shift_length: ShiftLength::Weeks(1),
                start_date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                handoff_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            },
        }],
    }
}

/// Issue #15: the database (password hashes, sessions, webhook secrets) and its -wal/-shm files
/// were created 0644, readable by every local account; now 0600, and an old 0644 file is tightened.
#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_files_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let file = dir.path().join("data/oncall.db");
    let store = Store::connect(&format!("sqlite://{}", file.display())).await.unwrap();
    store.create_organization("Modes", "modes", "UTC", crate::Timestamp(0)).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
        assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
    }
    assert_eq!(mode(&dir.path().join("data")) & 0o007, 0);
    store.close().await;
    // A database left world-readable by an older version is closed when opened.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = Store::connect(&format!("sqlite://{}", file.display())).await.unwrap();
    assert_eq!(mode(&file), 0o600);
    again.close().await;
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let db = super::testing::sqlite().await;
    let row = sqlx::query("PRAGMA journal_mode").fetch_one(db.store.pool()).await.unwrap();
    let mode: String = sqlx::Row::try_get(&row, 0).unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let fk = sqlx::query("PRAGMA foreign_keys").fetch_one(db.store.pool()).await.unwrap();
    assert_eq!(sqlx::Row::try_get::<i64, _>(&fk, 0).unwrap(), 1);
    // Reconnecting runs migrations again harmlessly.
    let again = Store::connect(&db.url).await.unwrap();
    assert!(again.list_organizations().await.unwrap().is_empty());
    assert!(matches!(Store::connect("mysql://x").await, Err(StoreError::BadUrl(_))));
}

#[tokio::test]
async fn organizations() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        assert!(s.default_organization().await.unwrap().is_none());
        let d = s.ensure_default_organization().await.unwrap();
        assert_eq!(d.name, "Default");
        assert_eq!(s.ensure_default_organization().await.unwrap().id, d.id);
        let a = org(s, "acme").await;
        assert_eq!(s.organization_by_slug("acme").await.unwrap().unwrap().id, a);
        assert_eq!(s.default_organization().await.unwrap().unwrap().id, d.id);
        assert!(matches!(s.create_organization("Again", "acme", "UTC", NOW).await, Err(StoreError::Conflict(_))));
        match s.create_organization("Bad", "bad", "Mars/Base", NOW).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "time_zone"),
            other => panic!("{} {other:?}", db.label),
        }
        assert_eq!(s.list_organizations().await.unwrap().len(), 2, "{}", db.label);
    })
    .await;
}

#[tokio::test]
async fn people_validation_and_tenancy() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = org(s, "a").await;
        let b = org(s, "b").await;
        let mut ann = person("Ann", "+44 20 7946 0001", Role::Employee);
        ann.sip_uris = vec!["sip:ann@pbx.example.com".into()];
        ann.notification_rules = vec![
            NotificationRule::new(Channel::Text, Millis(0)),
            NotificationRule::new(Channel::Call, Millis::minutes(2)),
        ];
        let ann_id = s.add_person(a, &ann, NOW).await.unwrap();
        let boss = s.add_person(a, &person("Boss", "+44 20 7946 0002", Role::Manager), NOW).await.unwrap();

        let loaded = s.person(a, ann_id).await.unwrap();
        assert_eq!(loaded.contacts.len(), 2);
        assert_eq!(loaded.notification_rules, ann.notification_rules);
        assert_eq!(loaded.email.as_deref(), Some("ann@example.com"));
        assert_eq!(s.managers(a).await.unwrap(), vec![boss]);

        // Bad phone: error names the field and nothing is written.
        let bad = person("Bad", "020 7946 0000", Role::Employee);
        match s.add_person(a, &bad, NOW).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "phones[0]"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.list_people(a).await.unwrap().len(), 2);
        // Duplicate e-mail in the same org conflicts; in another org it is fine.
        assert!(matches!(s.add_person(a, &ann, NOW).await, Err(StoreError::Conflict(_))));
        s.add_person(b, &ann, NOW).await.unwrap();

        // Org B cannot see org A's people, and cannot put them in a team.
        assert!(matches!(s.person(b, ann_id).await, Err(StoreError::NotFound(_))));
        assert_eq!(s.list_people(b).await.unwrap().len(), 1);
        assert!(matches!(s.create_team(b, "Crew", &[ann_id], NOW).await, Err(StoreError::Invalid(_))));
        let team = s.create_team(a, "Crew", &[ann_id, boss, ann_id], NOW).await.unwrap();
        let teams = s.list_teams(a).await.unwrap();
        assert_eq!((teams[0].id, teams[0].members.len()), (team, 2));
        assert!(s.list_teams(b).await.unwrap().is_empty());

        s.set_notification_rules(a, ann_id, &[NotificationRule::new(Channel::Call, Millis(0))]).await.unwrap();
        assert_eq!(s.person(a, ann_id).await.unwrap().notification_rules.len(), 1);
    })
    .await;
}

/// The dial plan is enforced on save: a person (the web form and `oncall person add` both go through
/// the store) with a `+882` number is refused naming the field and the rule; the person is not
/// written. Updating one too.
#[tokio::test]
async fn the_store_refuses_to_save_a_denied_number() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let now = Timestamp(1_800_000_000_000);
    let org = store.create_organization("Acme", "acme", "UTC", now).await.unwrap();
    let mallory = NewPerson {
        name: "Mallory".into(),
        phones: vec!["+1 415 555 0100".into(), "+882 1234 5678".into()],
        time_zone: "UTC".into(),
        ..NewPerson::default()
    };
    match store.add_person(org, &mallory, now).await {
        Err(StoreError::Invalid(e)) => {
            assert_eq!(e.field, "phones[1]");
            assert!(
                e.message.contains("+882") && e.message.contains("International Networks"),
                "{e}"
            );
        }
        other => panic!("a +882 contact was saved: {other:?}"),
    }
    assert!(store.list_people(org).await.unwrap().is_empty(), "nothing written");
    let ok = NewPerson {
        phones: vec!["+1 415 555 0100".into()],
        ..mallory.clone()
    };
    let id = store.add_person(org, &ok, now).await.unwrap();
    assert!(matches!(
        store.update_person(org, id, &mallory).await,
        Err(StoreError::Invalid(_))
    ));
    // A server whose plan allows only +44 refuses the US number as well.
    let uk_only = store
        .clone()
        .with_dial_plan(crate::dial_plan::DialPlan::new(&["+44"], &[] as &[&str]).unwrap());
    let e = uk_only
        .add_person(
            org,
            &NewPerson {
                email: Some("b@example.com".into()),
                ..ok
            },
            now,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("allowed_prefixes (+44)"), "{e}");
}

#[tokio::test]
async fn schedules_and_overrides() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = org(s, "a").await;
        let b = org(s, "b").await;
        let ann = s.add_person(a, &person("Ann", "+442079460001", Role::Employee), NOW).await.unwrap();
        let bob = s.add_person(a, &person("Bob", "+442079460002", Role::Employee), NOW).await.unwrap();
        let stranger = s.add_person(b, &person("Eve", "+442079460003", Role::Employee), NOW).await.unwrap();

        // A rotation with no members, an unknown zone, a stranger: field named, nothing written.
        let mut empty = weekly(vec![]);
        match s.create_schedule(a, &empty, NOW).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "layers[0].members"),
            other => panic!("{other:?}"),
        }
        empty = weekly(vec![ann]);
        empty.time_zone = "Nowhere/Special".into();
        match s.create_schedule(a, &empty, NOW).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "time_zone"),
            other => panic!("{other:?}"),
        }
        match s.create_schedule(a, &weekly(vec![ann, stranger]), NOW).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "layers[0].members"),
            other => panic!("{other:?}"),
        }
        assert!(s.list_schedules(a).await.unwrap().is_empty());

        let id = s.create_schedule(a, &weekly(vec![ann, bob]), NOW).await.unwrap();
        let sched = s.schedule(a, id).await.unwrap();
        assert_eq!(sched.layers, weekly(vec![ann, bob]).layers);
        assert_eq!(sched.time_zone, chrono_tz::Europe::London);
        assert!(matches!(s.schedule(b, id).await, Err(StoreError::NotFound(_))));

        let o = Override::new(bob, NOW, NOW + Millis::hours(8));
        let oid = s.add_override(a, id, &o, NOW).await.unwrap();
        // Overlapping override: conflict error, nothing written.
        let clash = Override::new(ann, NOW + Millis::hours(7), NOW + Millis::hours(9));
        match s.add_override(a, id, &clash, NOW).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "override.start"),
            other => panic!("{other:?}"),
        }
        // Another org cannot add overrides to this schedule.
        assert!(s.add_override(b, id, &Override::new(stranger, NOW + Millis::hours(20), NOW + Millis::hours(21)), NOW).await.is_err());
        let sched = s.schedule(a, id).await.unwrap();
        assert_eq!(sched.overrides.len(), 1);
        assert_eq!(schedule::on_call(&sched, NOW + Millis::hours(1)).unwrap().person, bob);
        s.remove_override(a, oid).await.unwrap();
        assert!(s.schedule(a, id).await.unwrap().overrides.is_empty());
    })
    .await;
}

#[tokio::test]
async fn policies_and_directory() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = org(s, "a").await;
        let ann = s.add_person(a, &person("Ann", "+442079460001", Role::Employee), NOW).await.unwrap();
        let boss = s.add_person(a, &person("Boss", "+442079460002", Role::Manager), NOW).await.unwrap();
        let sched = s.create_schedule(a, &weekly(vec![ann]), NOW).await.unwrap();
        let new = NewPolicy {
            name: "Default".into(),
            steps: vec![
                Step { targets: vec![Target::Schedule(sched)], wait: Millis::minutes(5) },
                Step { targets: vec![Target::Person(ann), Target::Person(boss)], wait: Millis::minutes(10) },
            ],
            repeat: 2,
        };
        let id = s.create_policy(a, &new, NOW).await.unwrap();
        let p = s.policy(a, id).await.unwrap();
        assert_eq!((p.steps.clone(), p.repeat), (new.steps.clone(), 2));
        let dir = s.escalation_directory(a, &p).await.unwrap();
        assert_eq!(dir.schedules.len(), 1);
        assert_eq!(dir.managers, vec![boss]);
        assert_eq!(dir.people.len(), 2);

        let mut bad = new.clone();
        bad.steps[0].targets = vec![Target::Schedule(ScheduleId(9999))];
        match s.create_policy(a, &bad, NOW).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "steps[0].targets"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.list_policies(a).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn request_lifecycle_events_notes_recordings() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = org(s, "a").await;
        let b = org(s, "b").await;
        let ann = s.add_person(a, &person("Ann", "+442079460001", Role::Employee), NOW).await.unwrap();
        let id = s.create_request(a, &NewRequest { caller: "+442079460999".into(), summary: "Leak".into(), call: None }, NOW).await.unwrap();
        assert_eq!(s.request(a, id).await.unwrap().state, RequestState::Received);

        s.start_notifying(a, id, NOW + Millis(1)).await.unwrap();
        s.mark_answered(a, id, ann, NOW + Millis(2)).await.unwrap();
        s.acknowledge(a, id, Actor::Person(ann), NOW + Millis(3)).await.unwrap();
        // Cannot go back, cannot acknowledge twice, other org cannot touch it.
        match s.mark_answered(a, id, ann, NOW + Millis(4)).await {
            Err(StoreError::Transition { current, wanted, .. }) => {
                assert_eq!((current, wanted), (RequestStatus::Acknowledged, RequestStatus::Answered))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.acknowledge(a, id, Actor::System, NOW).await, Err(StoreError::Transition { .. })));
        assert!(matches!(s.complete(b, id, Actor::System, NOW).await, Err(StoreError::NotFound(_))));
        s.add_note(a, id, Actor::Person(ann), "On my way", NOW + Millis(5)).await.unwrap();
        assert!(matches!(s.add_note(b, id, Actor::System, "sneaky", NOW).await, Err(StoreError::NotFound(_))));
        s.complete(a, id, Actor::Person(ann), NOW + Millis(6)).await.unwrap();

        let r = s.request(a, id).await.unwrap();
        match r.state {
            RequestState::Completed { answered: Some(ans), acknowledged: Some(ack), completed } => {
                assert_eq!((ans.at, ack.at, completed.at), (NOW + Millis(2), NOW + Millis(3), NOW + Millis(6)));
                assert_eq!(completed.by, Actor::Person(ann));
            }
            other => panic!("{other:?}"),
        }
        let kinds: Vec<String> = s.request_events(a, id).await.unwrap().into_iter().map(|e| format!("{}:{}", e.kind, e.detail)).collect();
        assert_eq!(
            kinds,
            ["status:received", "status:notifying", "status:answered", "status:acknowledged", "note:On my way", "status:completed"]
        );
        assert_eq!(s.notes(a, id).await.unwrap().len(), 1);

        let rec = NewRecording {
            request: Some(id),
            kind: RecordingKind::Message,
            storage_key: "recordings/2024/06/01/abc.wav".into(),
            duration_ms: 12_500,
            peak: 0.8,
            rms: 0.21,
            created_at: NOW,
        };
        let rid = s.add_recording(a, &rec).await.unwrap();
        let recs = s.recordings_for_request(a, id).await.unwrap();
        assert_eq!((recs[0].id, recs[0].duration_ms, recs[0].peak), (rid, 12_500, 0.8));
        assert!(s.recordings_for_request(b, id).await.unwrap().is_empty());
        // The lists' players: each request's message in one query, never another organization's.
        let messages = s.messages_of(a, &[id, RequestId(9999)]).await.unwrap();
        assert_eq!(messages.get(&id).map(|m| m.id), Some(rid));
        assert_eq!(messages.len(), 1);
        assert!(s.messages_of(b, &[id]).await.unwrap().is_empty());
        assert!(s.messages_of(a, &[]).await.unwrap().is_empty());
        assert!(s.add_recording(b, &rec).await.is_err(), "cross-org link refused");
        assert_eq!(s.list_requests(a, 10).await.unwrap().len(), 1);
        assert!(s.list_requests(b, 10).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acknowledgements_yield_exactly_one() {
    on_each_backend(|db: TestDb| async move {
        // Two independent pools on the same database: two OnCall instances.
        let one = db.store.clone();
        let two = Store::connect(&db.url).await.unwrap();
        let a = org(&one, "a").await;
        let ann = one.add_person(a, &person("Ann", "+442079460001", Role::Employee), NOW).await.unwrap();
        let bob = one.add_person(a, &person("Bob", "+442079460002", Role::Employee), NOW).await.unwrap();
        for i in 0..15 {
            let id = one.create_request(a, &NewRequest { caller: format!("c{i}"), ..NewRequest::default() }, NOW).await.unwrap();
            one.start_notifying(a, id, NOW).await.unwrap();
            let (x, y) = tokio::join!(
                tokio::spawn({
                    let s = one.clone();
                    async move { s.acknowledge(a, id, Actor::Person(ann), NOW + Millis(10)).await }
                }),
                tokio::spawn({
                    let s = two.clone();
                    async move { s.acknowledge(a, id, Actor::Person(bob), NOW + Millis(11)).await }
                }),
            );
            let results = [x.unwrap(), y.unwrap()];
            let wins = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(wins, 1, "{}: {results:?}", db.label);
            assert!(results.iter().any(|r| matches!(r, Err(StoreError::Transition { current: RequestStatus::Acknowledged, .. }))));
            let acks = one.request_events(a, id).await.unwrap().into_iter().filter(|e| e.detail == "acknowledged").count();
            assert_eq!(acks, 1);
        }
        two.close().await;
    })
    .await;
}

#[tokio::test]
async fn calls_cut_by_a_crash_lead_to_their_recording() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = s.ensure_default_organization().await.unwrap().id;
        let new = |call_id: &str, instance: &str| NewCall {
            org: a,
            call_id: call_id.into(),
            caller: "+442079460999".into(),
            called: "100".into(),
            received_at: NOW,
            instance: instance.into(),
        };
        let cut = s.insert_call(&new("cut@pbx", "i1")).await.unwrap();
        let ended = s.insert_call(&new("ended@pbx", "i1")).await.unwrap();
        let other = s.insert_call(&new("other@pbx", "i2")).await.unwrap();
        s.call_recording_started(a, cut, "/spool/default/cut.wav", "page").await.unwrap();
        s.call_ended(a, ended, NOW + Millis(1000), "2", None, None).await.unwrap();
        // Only i1's calls that never ended: i2's live call is not i1's to close.
        let open = s.open_calls_of(a, "i1").await.unwrap();
        assert_eq!(open.iter().map(|c| c.id).collect::<Vec<_>>(), vec![cut]);
        assert_eq!((open[0].recording_path.as_deref(), open[0].recording_kind.as_deref()), (Some("/spool/default/cut.wav"), Some("page")));
        assert_eq!(s.open_calls_of(a, "i2").await.unwrap()[0].id, other);

        // The recording registered request-less by the uploader moves to the request opened for the call, once.
        assert_eq!(s.request_for_call(a, cut).await.unwrap(), None);
        let rec = s
            .add_recording(a, &NewRecording { request: None, kind: RecordingKind::Message, storage_key: "default/cut.wav".into(), duration_ms: 3000, peak: 0.5, rms: 0.1, created_at: NOW })
            .await
            .unwrap();
        let req = s.create_request_for_call(a, cut, "+442079460999", NOW + Millis(2000)).await.unwrap();
        assert_eq!(s.request_for_call(a, cut).await.unwrap(), Some(req));
        s.attach_recording(a, rec, req, NOW + Millis(2000)).await.unwrap();
        assert_eq!(s.recordings_for_request(a, req).await.unwrap().len(), 1);
        assert!(matches!(s.attach_recording(a, rec, req, NOW).await, Err(StoreError::NotFound(_))), "already attached");
    })
    .await;
}

#[tokio::test]
async fn calls() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = s.ensure_default_organization().await.unwrap().id;
        let b = org(s, "b").await;
        let id = s
            .insert_call(&NewCall { org: a, call_id: "abc@pbx".into(), caller: "+442079460999".into(), called: "+442079460100".into(), received_at: NOW, instance: "i1".into() })
            .await
            .unwrap();
        s.call_answered(a, id, NOW + Millis(500)).await.unwrap();
        s.call_answered(a, id, NOW + Millis(900)).await.unwrap(); // first answer wins
        let req = s.create_request_for_call(a, id, "+442079460999", NOW + Millis(5000)).await.unwrap();
        s.call_ended(a, id, NOW + Millis(60_000), "1*", Some("rec/abc.wav"), Some(41_000)).await.unwrap();
        assert!(matches!(s.call_ended(b, id, NOW, "", None, None).await, Err(StoreError::NotFound(_))));
        assert!(matches!(s.call_answered(b, id, NOW).await, Err(StoreError::NotFound(_))));
        let calls = s.list_calls(a, 10).await.unwrap();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!((c.answered_at, c.ended_at), (Some(NOW + Millis(500)), Some(NOW + Millis(60_000))));
        assert_eq!((c.digits.as_str(), c.recording_path.as_deref(), c.recording_duration_ms), ("1*", Some("rec/abc.wav"), Some(41_000)));
        assert_eq!(s.request(a, req).await.unwrap().call, Some(id));
        assert!(s.list_calls(b, 10).await.unwrap().is_empty());
        // A call id from another org cannot be linked to a request.
        assert!(s.create_request_for_call(b, id, "x", NOW).await.is_err());

        // A message filed in one go: the request, the instance's note, the recording and its transcription job.
        let msg = NewRecording { request: None, kind: RecordingKind::Message, storage_key: "default/abc.wav".into(), duration_ms: 4000, peak: 0.5, rms: 0.1, created_at: NOW + Millis(7000) };
        let (req2, rec) = s.open_request_with_message(a, &NewRequest::for_call(id, "+442079460999"), "call taken by instance i1", &msg).await.unwrap();
        let r = s.request(a, req2).await.unwrap();
        assert_eq!((r.call, r.caller.as_str(), r.summary.as_str()), (Some(id), "+442079460999", "Phone call from +442079460999"));
        let kinds: Vec<_> = s.request_events(a, req2).await.unwrap().into_iter().map(|e| (e.kind, e.detail)).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(kinds.contains(&("instance".into(), "call taken by instance i1".into())), "{kinds:?}");
        assert_eq!(s.recordings_for_request(a, req2).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![rec]);
        assert!(s.transcription(a, rec).await.unwrap().is_some(), "its transcription job is queued");
        // Refused as a whole for another org's call: no recording is left behind.
        let before = s.recordings_by_storage_key("default/x.wav").await.unwrap().len();
        let other = NewRecording { storage_key: "default/x.wav".into(), ..msg };
        assert!(s.open_request_with_message(b, &NewRequest::for_call(id, "x"), "i1", &other).await.is_err());
        assert_eq!(s.recordings_by_storage_key("default/x.wav").await.unwrap().len(), before);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_work_leases_and_idempotent_notifications() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = org(s, "a").await;
        let ann = s.add_person(a, &person("Ann", "+442079460001", Role::Employee), NOW).await.unwrap();
        let boss = s.add_person(a, &person("Boss", "+442079460002", Role::Manager), NOW).await.unwrap();
        let pid = s
            .create_policy(a, &NewPolicy { name: "P".into(), steps: vec![Step { targets: vec![Target::Person(ann)], wait: Millis::minutes(5) }], repeat: 0 }, NOW)
            .await
            .unwrap();
        let req = s.create_request(a, &NewRequest { caller: "x".into(), ..NewRequest::default() }, NOW).await.unwrap();

        let mut engine = s.begin_escalation(a, req, pid, NOW).await.unwrap();
        assert_eq!(s.request(a, req).await.unwrap().state.status(), RequestStatus::Notifying);
        // Saved with its first command still queued, so it is due at once: if this instance
        // died now, another would claim it and send the notification.
        let claimed = s.claim_due_escalations(a, "i0", NOW, Millis::seconds(30), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert!(claimed[0].engine.has_pending_commands());
        let Some(Command::Notify(key)) = engine.poll_command() else { panic!("expected a notification") };
        assert!(s.record_notification(a, &key, NOW).await.unwrap(), "first recording sends");
        assert!(!s.record_notification(a, &key, NOW).await.unwrap(), "replay does not send twice");
        s.set_notification_status(a, &key, "failed", NOW + Millis(1)).await.unwrap();
        // Where it went and why it failed (issue 18 item 4): two phones of one page are both named.
        s.describe_notification(a, &key, Some("sip:ann@10.0.0.7:5062 (registered phone)"), None, NOW).await.unwrap();
        s.describe_notification(a, &key, Some("sip:ann@10.0.0.8:5062 (registered phone)"), None, NOW).await.unwrap();
        s.describe_notification(a, &key, None, Some("rang 30 s, no answer"), NOW).await.unwrap();
        let attempt = s.notifications_for_request(a, req).await.unwrap().remove(0);
        assert_eq!(attempt.target, "sip:ann@10.0.0.7:5062 (registered phone), sip:ann@10.0.0.8:5062 (registered phone)");
        assert_eq!(attempt.detail, "rang 30 s, no answer");
        assert!(s.complete_claim(a, claimed[0].id, "i0", &engine, NOW).await.unwrap());

        // Not due yet.
        assert!(s.claim_due_escalations(a, "i1", NOW, Millis::seconds(30), 10).await.unwrap().is_empty());
        let due = NOW + Millis::minutes(5);
        let (c1, c2) = tokio::join!(
            s.claim_due_escalations(a, "i1", due, Millis::seconds(30), 10),
            s.claim_due_escalations(a, "i2", due, Millis::seconds(30), 10),
        );
        let (c1, c2) = (c1.unwrap(), c2.unwrap());
        assert_eq!(c1.len() + c2.len(), 1, "{}: one claimer gets it", db.label);
        let (owner, mut work) = if c1.is_empty() { ("i2", c2) } else { ("i1", c1) };
        let work = work.remove(0);
        assert_eq!(work.request, req);
        // Leased: nobody else can claim it until the lease expires...
        assert!(s.claim_due_escalations(a, "i3", due + Millis(1), Millis::seconds(30), 10).await.unwrap().is_empty());
        // ...after which a takeover works and the old owner's save is refused.
        let later = due + Millis::seconds(31);
        let taken = s.claim_due_escalations(a, "i3", later, Millis::seconds(30), 10).await.unwrap();
        assert_eq!(taken.len(), 1);
        let mut engine = taken[0].engine.clone();
        assert!(!s.complete_claim(a, work.id, owner, &engine, later).await.unwrap());
        engine.handle(Input::TimePassed, later);
        let cmds: Vec<_> = std::iter::from_fn(|| engine.poll_command()).collect();
        assert!(cmds.iter().any(|c| matches!(c, Command::Notify(k) if k.person == boss)), "{cmds:?}");
        assert!(s.complete_claim(a, taken[0].id, "i3", &engine, later).await.unwrap());
        assert_eq!(s.notifications_for_request(a, req).await.unwrap()[0].status, "failed");
        // Another org sees no work.
        let b = org(s, "b").await;
        assert!(s.claim_due_escalations(b, "i9", later + Millis::hours(1), Millis::seconds(30), 10).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_escalations_survive_their_instance() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = org(s, "a").await;
        let ann = s.add_person(a, &person("Ann", "+442079460001", Role::Employee), NOW).await.unwrap();
        let pid = s
            .create_policy(a, &NewPolicy { name: "P".into(), steps: vec![Step { targets: vec![Target::Person(ann)], wait: Millis::minutes(5) }], repeat: 0 }, NOW)
            .await
            .unwrap();
        let req = s.create_request(a, &NewRequest { caller: "x".into(), ..NewRequest::default() }, NOW).await.unwrap();
        let mut engine = s.begin_escalation(a, req, pid, NOW).await.unwrap();
        while engine.poll_command().is_some() {}
        let lease = Millis::seconds(30);
        assert!(s.hold_escalation(a, &engine, "i1", lease, NOW).await.unwrap());
        // Held and alive: nobody else gets it, due or not, and its holder's saves go through.
        assert!(s.claim_orphaned_escalations(a, "i2", NOW + Millis::seconds(10), lease, 10, false).await.unwrap().is_empty());
        assert_eq!(s.renew_escalation_leases(a, "i1", lease, NOW + Millis::seconds(20)).await.unwrap(), 1);
        assert!(s.claim_orphaned_escalations(a, "i2", NOW + Millis::seconds(40), lease, 10, false).await.unwrap().is_empty(), "renewed until 50 s");
        // A restarted i1 takes its own work back at once, before it is due.
        assert!(s.claim_orphaned_escalations(a, "i1", NOW + Millis::seconds(41), lease, 10, false).await.unwrap().is_empty(), "running: not reclaimed");
        let mine = s.claim_orphaned_escalations(a, "i1", NOW + Millis::seconds(41), lease, 10, true).await.unwrap();
        assert_eq!((mine.len(), mine[0].request), (1, req));
        // i1 dies: after the lease, i2 takes the not-yet-due work over and i1's late save is refused.
        let later = NOW + Millis::seconds(72);
        let taken = s.claim_orphaned_escalations(a, "i2", later, lease, 10, false).await.unwrap();
        assert_eq!(taken.len(), 1, "{}", db.label);
        assert!(!s.hold_escalation(a, &engine, "i1", lease, later).await.unwrap(), "the new holder's state wins");
        assert!(s.hold_escalation(a, &taken[0].engine, "i2", lease, later).await.unwrap());
        assert_eq!(s.renew_escalation_leases(a, "i1", lease, later).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn users_and_passwords() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = org(s, "a").await;
        let ann = s.add_person(a, &person("Ann", "+442079460001", Role::Manager), NOW).await.unwrap();
        let uid = s.add_user(a, "Ann", "ANN@example.com", Role::Manager, "hunter2hunter2").await.unwrap();
        let u = s.verify_password("ann@example.com", "hunter2hunter2").await.unwrap().unwrap();
        assert_eq!((u.id, u.org, u.person, u.role), (uid, a, Some(ann), Role::Manager));
        assert!(s.verify_password("ann@example.com", "wrong password").await.unwrap().is_none());
        assert!(s.verify_password("nobody@example.com", "hunter2hunter2").await.unwrap().is_none());
        s.set_password("ann@example.com", "new password!").await.unwrap();
        assert!(s.verify_password("Ann@Example.com", "new password!").await.unwrap().is_some());
        assert!(matches!(s.add_user(a, "Ann", "ann@example.com", Role::Employee, "ann-second-try").await, Err(StoreError::Conflict(_))));
        match s.add_user(a, "Bo", "bo@example.com", Role::Employee, "short").await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "password"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.set_password("nobody@example.com", "ann-second-try").await, Err(StoreError::NotFound(_))));
    })
    .await;
}

#[tokio::test]
async fn metrics_and_demo_seed_is_idempotent() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let org = crate::demo::seed(s, NOW).await.unwrap();
        let snapshot = |s: Store| async move {
            (
                s.list_people(org).await.unwrap().len(),
                s.list_requests(org, 1000).await.unwrap(),
                s.list_calls(org, 1000).await.unwrap().len(),
                s.list_schedules(org).await.unwrap().len(),
                s.list_policies(org).await.unwrap().len(),
                s.list_organizations().await.unwrap().len(),
            )
        };
        let first = snapshot(s.clone()).await;
        assert_eq!(crate::demo::seed(s, NOW + Millis::hours(1)).await.unwrap(), org);
        let second = snapshot(s.clone()).await;
        assert_eq!(first, second, "seeding twice changes nothing");
        assert_eq!(first.0, 4);
        assert!(first.1.len() >= 30, "{}", first.1.len());
        assert_eq!(s.managers(org).await.unwrap().len(), 1);
        assert_eq!(s.list_policies(org).await.unwrap()[0].steps.len(), 3);

        let from = NOW - Millis::hours(30 * 24);
        let m = s.metrics(org, from, NOW, chrono_tz::America::New_York).await.unwrap();
        assert_eq!(m.total.requests, first.1.len());
        assert!(m.total.time_to_acknowledge.samples > 10);
        let mtta = m.total.time_to_acknowledge;
        assert!(mtta.p50 <= mtta.p90);
        assert!(m.total.time_to_complete.mean.unwrap() > mtta.mean.unwrap());
        assert!(!m.by_person.is_empty());
        assert!(m.by_day.len() >= 30);
        assert_eq!(m.by_hour.iter().map(|(_, s)| s.requests).sum::<usize>(), m.total.requests);
    })
    .await;
}

/// Issue 15 item 1: a text reply acts only on requests its sender was notified of. Ann was paged
/// for one request, Bob for another, a third paged nobody: Ann's "DONE" can only reach her own.
#[tokio::test]
async fn open_requests_notified_to_lists_only_that_persons_notifications() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = org(s, "texts").await;
        let ann = s.add_person(a, &person("Ann", "+442079460001", Role::Employee), NOW).await.unwrap();
        let bob = s.add_person(a, &person("Bob", "+442079460002", Role::Employee), NOW).await.unwrap();
        let new = || NewRequest { caller: "x".into(), ..NewRequest::default() };
        let for_ann = s.create_request(a, &new(), NOW).await.unwrap();
        let for_bob = s.create_request(a, &new(), NOW).await.unwrap();
        let for_nobody = s.create_request(a, &new(), NOW).await.unwrap();
        for (request, who) in [(for_ann, ann), (for_bob, bob)] {
            let key = crate::escalation::NotificationKey { request, stage: 0, person: who, channel: Channel::Text };
            assert!(s.record_notification(a, &key, NOW).await.unwrap());
        }
        assert_eq!(s.open_requests_notified_to(a, ann).await.unwrap(), vec![for_ann]);
        assert_eq!(s.open_requests_notified_to(a, bob).await.unwrap(), vec![for_bob]);
        // Another organization's person with the same id space sees nothing of this one.
        let b = org(s, "other").await;
        assert!(s.open_requests_notified_to(b, ann).await.unwrap().is_empty());
        // A completed request drops out.
        s.acknowledge(a, for_ann, Actor::Person(ann), NOW).await.unwrap();
        s.complete(a, for_ann, Actor::Person(ann), NOW).await.unwrap();
        assert!(s.open_requests_notified_to(a, ann).await.unwrap().is_empty());
        let _ = for_nobody;
    })
    .await;
}

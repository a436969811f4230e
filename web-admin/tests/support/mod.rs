//! Shared fixtures of the web admin's tests: a fresh SQLite store in a temp dir with two
//! organizations (A: a manager, an employee, a schedule, requests with a recording; B: a
//! manager and a request of its own), and the app built on it.
#![allow(dead_code)]

use oncall_core::person::{NewPerson, Role};
use oncall_core::request::{NewRecording, NewRequest, RecordingKind};
use oncall_core::schedule::{Layer, NewSchedule, Rotation, ShiftLength};
use oncall_core::{Actor, Millis, OrgId, PersonId, RecordingId, RequestId, Store, Timestamp};
use oncall_web::{LocalRecordings, StatusSource, WebConfig};
use std::path::PathBuf;
use std::sync::Arc;

pub const PASSWORD: &str = "correct-horse-42";
pub const MANAGER_A: &str = "manager@a.example";
pub const EMPLOYEE_A: &str = "employee@a.example";
pub const OTHER_EMPLOYEE_A: &str = "other@a.example";
pub const MANAGER_B: &str = "manager@b.example";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub org_a: OrgId,
    pub org_b: OrgId,
    pub manager_a: PersonId,
    pub employee_a: PersonId,
    pub other_a: PersonId,
    /// Handled by the employee (answered), with a recording.
    pub request_a: RequestId,
    /// Nobody involved yet.
    pub unassigned_a: RequestId,
    pub recording_a: RecordingId,
    pub request_b: RequestId,
    pub recording_b: RecordingId,
    pub recordings_dir: PathBuf,
    pub data_dir: PathBuf,
}

struct Up;
impl StatusSource for Up {
    fn healthy(&self) -> bool {
        true
    }
    fn prometheus(&self) -> String {
        "oncall_up 1\n".into()
    }
    fn health_details(&self) -> String {
        "trunk carrier: failed (403 Forbidden)\n".into()
    }
}

/// A 3-second 8 kHz mono 16-bit WAV tone (a real file the browser can play and seek).
pub fn tone_wav(seconds: u32) -> Vec<u8> {
    let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for i in 0..8000 * seconds {
            let v = (f64::from(i) * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 8000.0;
            w.write_sample(v as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    out.into_inner()
}

fn person(name: &str, email: &str, role: Role, phone: &str) -> NewPerson {
    NewPerson {
        name: name.into(),
        email: Some(email.into()),
        role: Some(role),
        phones: vec![phone.into()],
        time_zone: "Europe/London".into(),
        ..NewPerson::default()
    }
}

pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("oncall.db").display())).await.unwrap();
    let now = Timestamp::now();
    let recordings_dir = dir.path().join("recordings");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();

    let org_a = store.create_organization("Alpha Apartments", "alpha", "Europe/London", now).await.unwrap();
    let manager_a = store.add_person(org_a, &person("Ada Manager", MANAGER_A, Role::Manager, "+44 20 7946 0001"), now).await.unwrap();
    let employee_a = store.add_person(org_a, &person("Eve Employee", EMPLOYEE_A, Role::Employee, "+44 20 7946 0002"), now).await.unwrap();
    let other_a = store.add_person(org_a, &person("Oscar Other", OTHER_EMPLOYEE_A, Role::Employee, "+44 20 7946 0003"), now).await.unwrap();
    store.add_user(org_a, "Ada Manager", MANAGER_A, Role::Manager, PASSWORD).await.unwrap();
    store.add_user(org_a, "Eve Employee", EMPLOYEE_A, Role::Employee, PASSWORD).await.unwrap();
    store.add_user(org_a, "Oscar Other", OTHER_EMPLOYEE_A, Role::Employee, PASSWORD).await.unwrap();
    let today = now.to_utc().date_naive();
    store
        .create_schedule(
            org_a,
            &NewSchedule {
                name: "Front desk".into(),
                time_zone: "Europe/London".into(),
                layers: vec![Layer {
                    name: "Daily".into(),
                    rotation: Rotation {
                        members: vec![employee_a, other_a],
                        shift_length: ShiftLength::Days(1),
                        start_date: today - chrono::Duration::days(10),
                        handoff_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                    },
                }],
            },
            now,
        )
        .await
        .unwrap();

    let request_a = store.create_request(org_a, &NewRequest { caller: "+442079460999".into(), summary: "Water leak in 4B".into(), call: None }, now - Millis::minutes(30)).await.unwrap();
    store.append_event(org_a, request_a, Actor::Caller, "summary", "Water is coming through the ceiling", now - Millis::minutes(30)).await.unwrap();
    store.start_notifying(org_a, request_a, now - Millis::minutes(29)).await.unwrap();
    store.mark_answered(org_a, request_a, employee_a, now - Millis::minutes(28)).await.unwrap();
    let key_a = "alpha/2026/11/leak-message.wav";
    std::fs::create_dir_all(recordings_dir.join("alpha/2026/11")).unwrap();
    std::fs::write(recordings_dir.join(key_a), tone_wav(3)).unwrap();
    let recording_a = store
        .add_recording(org_a, &NewRecording { request: Some(request_a), kind: RecordingKind::Message, storage_key: key_a.into(), duration_ms: 3000, peak: 0.3, rms: 0.2, created_at: now - Millis::minutes(29) })
        .await
        .unwrap();
    let unassigned_a = store.create_request(org_a, &NewRequest { caller: "+442079460888".into(), summary: "Locked out".into(), call: None }, now - Millis::minutes(5)).await.unwrap();

    let org_b = store.create_organization("Beta Buildings", "beta", "America/New_York", now).await.unwrap();
    store.add_person(org_b, &person("Bob Boss", MANAGER_B, Role::Manager, "+1 212 555 0100"), now).await.unwrap();
    store.add_user(org_b, "Bob Boss", MANAGER_B, Role::Manager, PASSWORD).await.unwrap();
    let request_b = store.create_request(org_b, &NewRequest { caller: "+12125550111".into(), summary: "Secret of B".into(), call: None }, now - Millis::minutes(10)).await.unwrap();
    let key_b = "beta/2026/11/secret-message.wav";
    std::fs::create_dir_all(recordings_dir.join("beta/2026/11")).unwrap();
    std::fs::write(recordings_dir.join(key_b), tone_wav(1)).unwrap();
    let recording_b = store
        .add_recording(org_b, &NewRecording { request: Some(request_b), kind: RecordingKind::Message, storage_key: key_b.into(), duration_ms: 1000, peak: 0.3, rms: 0.2, created_at: now })
        .await
        .unwrap();

    Fixture { dir, store, org_a, org_b, manager_a, employee_a, other_a, request_a, unassigned_a, recording_a, request_b, recording_b, recordings_dir, data_dir }
}

pub fn app(f: &Fixture) -> axum::Router {
    app_with(f, |_| {})
}

/// The app with some settings changed (a shorter login backoff, forced HTTPS).
pub fn app_with(f: &Fixture, change: impl FnOnce(&mut WebConfig)) -> axum::Router {
    let mut cfg = WebConfig::new(f.data_dir.clone());
    change(&mut cfg);
    oncall_web::app(Arc::new(Up), f.store.clone(), cfg, Arc::new(LocalRecordings::new(f.recordings_dir.clone())), Default::default())
}

/// The value of the first `name="csrf" value="..."` in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a csrf field") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

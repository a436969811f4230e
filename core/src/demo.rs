//! Demo data: "Demo Apartments", a small building-maintenance team with a month of history, and
//! "Harbor Help Desk", a second client organization on the same server (issue 17), so the first run
//! shows that each organization's number reaches its own IVR, people and paging.
//!
//! [`seed`] is for trying OnCall out and for screenshots. Demo Apartments: four people, a weekly
//! rotation, a three-step policy and a few dozen past requests with plausible answer, acknowledge and
//! complete times so the charts have something to show. Harbor Help Desk: three people, a daily
//! rotation and a two-step policy, no history. Each organization is seeded once: when it already
//! exists it is left untouched. The history is generated from a fixed seed, so the same `now` always
//! produces the same data.

use crate::escalation::{NewPolicy, Step, Target};
use crate::ids::{OrgId, PersonId};
use crate::person::{Channel, NewPerson, NotificationRule, Role};
use crate::request::Actor;
use crate::schedule::{self, Layer, NewSchedule, Rotation, ShiftLength};
use crate::store::{NewCall, Result, Store};
use crate::timestamp::{Millis, Timestamp};
use chrono::{Datelike, NaiveTime};

pub const DEMO_SLUG: &str = "demo-apartments";
/// Web logins the demo creates: Dana the manager and Maria, an employee. The login page of the
/// web admin shows them while the demo organization exists.
pub const DEMO_MANAGER_EMAIL: &str = "dana@demo-apartments.example";
pub const DEMO_EMPLOYEE_EMAIL: &str = "maria@demo-apartments.example";
pub const DEMO_PASSWORD: &str = "oncall-demo-2026";
/// The second demo organization: its manager signs in with [`DEMO_PASSWORD`] too.
pub const DESK_SLUG: &str = "harbor-help-desk";
pub const DESK_MANAGER_EMAIL: &str = "lee@harbor-help-desk.example";
/// The demo employees' SIP accounts (organization, e-mail, username), all with [`DEMO_PHONE_PASSWORD`]: a
/// softphone registered as whoever is on call receives the page with no trunk (issue 18 item 13).
pub const DEMO_PHONES: [(&str, &str, &str); 5] = [
    (DEMO_SLUG, "maria@demo-apartments.example", "maria"),
    (DEMO_SLUG, "james@demo-apartments.example", "james"),
    (DEMO_SLUG, "aisha@demo-apartments.example", "aisha"),
    (DESK_SLUG, "sam@harbor-help-desk.example", "sam"),
    (DESK_SLUG, "noor@harbor-help-desk.example", "noor"),
];
pub const DEMO_PHONE_PASSWORD: &str = "oncall-phone-2026";
/// The numbers each demo organization answers (organization, number): a short one to call from a softphone
/// on the same machine (`sip:100@127.0.0.1:5060`), and the line its callers dial through a trunk.
pub const DEMO_NUMBERS: [(&str, &str); 4] = [(DEMO_SLUG, "100"), (DEMO_SLUG, DEMO_LINE), (DESK_SLUG, "200"), (DESK_SLUG, DESK_LINE)];
const DEMO_TZ: &str = "America/New_York";
const DESK_TZ: &str = "America/Chicago";
/// The number the demo building's residents call.
const DEMO_LINE: &str = "+12125550100";
/// The help desk's number.
const DESK_LINE: &str = "+13125550200";

/// A tiny deterministic generator (SplitMix64): demo data must be reproducible and needs no
/// cryptographic quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (hi > lo).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo).max(1) as u64;
        lo + (self.next() % span) as i64
    }
}

fn person(name: &str, email: &str, role: Role, phone: &str, rules: Vec<NotificationRule>) -> NewPerson {
    in_zone(DEMO_TZ, name, email, role, phone, rules)
}

fn in_zone(time_zone: &str, name: &str, email: &str, role: Role, phone: &str, rules: Vec<NotificationRule>) -> NewPerson {
    NewPerson {
        name: name.into(),
        email: Some(email.into()),
        role: Some(role),
        phones: vec![phone.into()],
        sip_uris: vec![],
        time_zone: time_zone.into(),
        notification_rules: rules,
    }
}

/// A login linked to the person with the same e-mail; one that exists already is kept.
async fn login(store: &Store, org: OrgId, name: &str, email: &str, role: Role) -> Result<()> {
    match store.add_user(org, name, email, role, DEMO_PASSWORD).await {
        Ok(_) | Err(crate::StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The Monday at least `days` days before `now` in `tz`: where a demo rotation begins.
fn monday_before(now: Timestamp, days: i64, tz: &str) -> Result<chrono::NaiveDate> {
    let tz: chrono_tz::Tz = tz.parse().map_err(|_| crate::ValidationError::new("time_zone", tz))?;
    let start = (now - Millis::hours(days * 24)).to_utc().with_timezone(&tz).date_naive();
    Ok(start - chrono::Days::new(u64::from(start.weekday().num_days_from_monday())))
}

/// Seeds the demo organizations (each once) and returns Demo Apartments' id.
pub async fn seed(store: &Store, now: Timestamp) -> Result<OrgId> {
    let apartments = seed_apartments(store, now).await?;
    seed_help_desk(store, now).await?;
    Ok(apartments)
}

async fn seed_apartments(store: &Store, now: Timestamp) -> Result<OrgId> {
    if let Some(org) = store.organization_by_slug(DEMO_SLUG).await? {
        return Ok(org.id);
    }
    let org = store.create_organization("Demo Apartments", DEMO_SLUG, DEMO_TZ, now).await?;
    let call_now = vec![NotificationRule::new(Channel::Call, Millis(0))];
    let maria = store
        .add_person(org, &person("Maria Lopez", "maria@demo-apartments.example", Role::Employee, "+1 212 555 0101", call_now.clone()), now)
        .await?;
    let james = store
        .add_person(org, &person("James Chen", "james@demo-apartments.example", Role::Employee, "+1 212 555 0102", call_now.clone()), now)
        .await?;
    // A call first, so the demo reaches a registered softphone at once; the text comes a minute later.
    let call_then_text = vec![
        NotificationRule::new(Channel::Call, Millis(0)),
        NotificationRule::new(Channel::Text, Millis::minutes(1)),
    ];
    let aisha = store
        .add_person(org, &person("Aisha Okafor", "aisha@demo-apartments.example", Role::Employee, "+1 212 555 0103", call_then_text), now)
        .await?;
    let dana = store
        .add_person(org, &person("Dana Whitfield", "dana@demo-apartments.example", Role::Manager, "+1 212 555 0199", call_now), now)
        .await?;
    store.create_team(org, "Maintenance", &[maria, james, aisha], now).await?;
    login(store, org, "Dana Whitfield", DEMO_MANAGER_EMAIL, Role::Manager).await?;
    login(store, org, "Maria Lopez", DEMO_EMPLOYEE_EMAIL, Role::Employee).await?;
    // Every employee of the rotation can log in, so whoever is on call can take the page in the browser (issue 19).
    login(store, org, "James Chen", "james@demo-apartments.example", Role::Employee).await?;
    login(store, org, "Aisha Okafor", "aisha@demo-apartments.example", Role::Employee).await?;

    // A weekly rotation that began on the Monday at least 35 days ago, handing off at 09:00.
    let monday = monday_before(now, 35, DEMO_TZ)?;
    let schedule_id = store
        .create_schedule(
            org,
            &NewSchedule {
                name: "Maintenance on-call".into(),
                time_zone: DEMO_TZ.into(),
                layers: vec![Layer {
                    name: "Weekly".into(),
                    rotation: Rotation {
                        members: vec![maria, james, aisha],
                        shift_length: ShiftLength::Weeks(1),
                        start_date: monday,
                        handoff_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
                    },
                }],
            },
            now,
        )
        .await?;
    store
        .create_policy(
            org,
            &NewPolicy {
                name: "Maintenance emergencies".into(),
                steps: vec![
                    Step { targets: vec![Target::Schedule(schedule_id)], wait: Millis::minutes(5) },
                    Step { targets: vec![Target::Person(maria), Target::Person(james), Target::Person(aisha)], wait: Millis::minutes(5) },
                    Step { targets: vec![Target::Person(dana)], wait: Millis::minutes(10) },
                ],
                repeat: 1,
            },
            now,
        )
        .await?;

    let schedule = store.schedule(org, schedule_id).await?;
    seed_history(store, org, &schedule, dana, now).await?;
    tracing::info!(org = %org, "seeded demo organization");
    Ok(org)
}

/// The second tenant. Created together with the demo numbers of both organizations: from then on calls are
/// matched by the dialled number, so Demo Apartments (also one seeded before there were numbers) must own its
/// numbers too. A number someone else owns already is left to them.
async fn seed_help_desk(store: &Store, now: Timestamp) -> Result<()> {
    if store.organization_by_slug(DESK_SLUG).await?.is_some() {
        return Ok(());
    }
    let org = store.create_organization("Harbor Help Desk", DESK_SLUG, DESK_TZ, now).await?;
    let call_now = vec![NotificationRule::new(Channel::Call, Millis(0))];
    let person = |name: &str, email: &str, role, phone: &str| in_zone(DESK_TZ, name, email, role, phone, call_now.clone());
    let sam = store.add_person(org, &person("Sam Rivera", "sam@harbor-help-desk.example", Role::Employee, "+1 312 555 0201"), now).await?;
    let noor = store.add_person(org, &person("Noor Haddad", "noor@harbor-help-desk.example", Role::Employee, "+1 312 555 0202"), now).await?;
    let lee = store.add_person(org, &person("Lee Park", DESK_MANAGER_EMAIL, Role::Manager, "+1 312 555 0299"), now).await?;
    login(store, org, "Lee Park", DESK_MANAGER_EMAIL, Role::Manager).await?;
    let schedule = store
        .create_schedule(
            org,
            &NewSchedule {
                name: "Help desk on-call".into(),
                time_zone: DESK_TZ.into(),
                layers: vec![Layer {
                    name: "Daily".into(),
                    rotation: Rotation {
                        members: vec![sam, noor],
                        shift_length: ShiftLength::Days(1),
                        start_date: monday_before(now, 7, DESK_TZ)?,
                        handoff_time: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
                    },
                }],
            },
            now,
        )
        .await?;
    let steps = vec![
        Step { targets: vec![Target::Schedule(schedule)], wait: Millis::minutes(5) },
        Step { targets: vec![Target::Person(lee)], wait: Millis::minutes(10) },
    ];
    store.create_policy(org, &NewPolicy { name: "Help desk".into(), steps, repeat: 1 }, now).await?;
    for (slug, number) in DEMO_NUMBERS {
        let Some(owner) = store.organization_by_slug(slug).await? else { continue };
        match store.add_number(owner.id, number, None, now).await {
            Ok(_) | Err(crate::StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    tracing::info!(org = %org, "seeded the demo's second organization");
    Ok(())
}

const CALLERS: &[&str] = &["+12125550142", "+12125550178", "+16465550113", "+19175550166", "+13475550120", "+12125550187"];
const SUMMARIES: &[&str] = &[
    "Water leaking from ceiling in 4B",
    "Locked out of apartment",
    "No heat in unit 2A",
    "Elevator stuck between floors",
    "Smoke detector beeping in hallway",
    "Front door buzzer broken",
    "Toilet overflowing in 3C",
    "Power out in half the apartment",
];

/// About 36 requests over the last 30 days, outcomes and timings drawn from the fixed seed.
async fn seed_history(store: &Store, org: OrgId, schedule: &schedule::Schedule, manager: PersonId, now: Timestamp) -> Result<()> {
    let mut rng = Rng(0x0C0F_FEE0);
    let mut received: Vec<i64> = (0..36).map(|_| rng.range(30 * 60_000, 30 * 86_400_000)).collect();
    received.sort_unstable_by(|a, b| b.cmp(a)); // oldest first
    for (i, ago) in received.into_iter().enumerate() {
        let at = now - Millis(ago);
        let caller = CALLERS[i % CALLERS.len()];
        let call = store
            .insert_call(&NewCall { org, call_id: format!("demo-{i}@oncall.invalid"), caller: caller.into(), called: DEMO_LINE.into(), received_at: at, instance: String::new() })
            .await?;
        let answered_call = at + Millis::seconds(1);
        store.call_answered(org, call, answered_call).await?;
        let req = store.create_request_for_call(org, call, caller, at + Millis::seconds(20)).await?;
        let t0 = at + Millis::seconds(20);
        store.append_event(org, req, Actor::Caller, "summary", SUMMARIES[i % SUMMARIES.len()], t0).await?;
        store.start_notifying(org, req, t0).await?;
        store.call_ended(org, call, t0 + Millis::seconds(5), "1", None, None).await?;

        let roll = rng.range(0, 100);
        let on_call = schedule::on_call(schedule, t0).map(|o| o.person).unwrap_or(manager);
        if roll < 8 {
            store.abandon(org, req, Actor::Caller, t0 + Millis::seconds(rng.range(20, 90))).await?;
            continue;
        }
        if roll < 16 {
            // Nobody picked up; the manager acknowledged later from the web.
            let exhausted = t0 + Millis::minutes(40);
            if exhausted > now {
                continue;
            }
            store.mark_exhausted(org, req, exhausted).await?;
            let ack = exhausted + Millis::minutes(rng.range(5, 60));
            if ack < now {
                store.acknowledge(org, req, Actor::Person(manager), ack).await?;
            }
            continue;
        }
        // Escalated to step 2 sometimes: slower answers from someone else.
        let slow = roll >= 80;
        let answered = t0 + Millis::seconds(if slow { rng.range(330, 900) } else { rng.range(15, 240) });
        let who = if slow { manager } else { on_call };
        let acked = answered + Millis::seconds(rng.range(10, 120));
        let completed = acked + Millis::minutes(rng.range(20, 240));
        if answered > now {
            continue;
        }
        store.mark_answered(org, req, who, answered).await?;
        if acked > now {
            continue;
        }
        store.acknowledge(org, req, Actor::Person(who), acked).await?;
        if completed > now {
            continue;
        }
        store.add_note(org, req, Actor::Person(who), "Fixed on site; resident informed.", completed - Millis::minutes(1)).await?;
        store.complete(org, req, Actor::Person(who), completed).await?;
    }
    Ok(())
}

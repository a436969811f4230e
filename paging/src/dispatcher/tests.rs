//! Dispatcher tests on a virtual clock: every decision in microseconds, no store, no sockets.

use super::*;
use oncall_core::dial_plan::DialPlan;
use oncall_core::escalation::{Directory, EscalationPolicy, Step, Target};
use oncall_core::{ContactPlan, NotificationRule, OrgId, PolicyId, SipUri, E164};

const REQ: RequestId = RequestId(42);
const ANN: PersonId = PersonId(1);
const BOB: PersonId = PersonId(2);
const MGR: PersonId = PersonId(9);
const CALLER: CallerRef = CallerRef(7);
/// Tuesday 2026-03-31 00:00 UTC (02:00 in Paris).
const T0: Timestamp = Timestamp(1_774_915_200_000);

fn at(seconds: i64) -> Timestamp {
    T0 + Millis::seconds(seconds)
}

fn settings() -> Settings {
    Settings {
        owner: "a".into(),
        snooze: Millis::minutes(10),
        texts: true,
        max_pages_per_hour: 0,
        dial_plan: DialPlan::default(),
    }
}

fn plan(person: PersonId, channel: Channel) -> ContactPlan {
    ContactPlan {
        person,
        rules: vec![NotificationRule::new(channel, Millis(0))],
    }
}

/// Ann (by `channel`), then Bob, five minutes each, then the manager (both by call).
fn engine(channel: Channel) -> Engine {
    engine_for(REQ, channel, T0)
}

/// [`engine`] for another request, begun at `now`.
fn engine_for(request: RequestId, channel: Channel, now: Timestamp) -> Engine {
    let step = |p| Step {
        targets: vec![Target::Person(p)],
        wait: Millis::minutes(5),
    };
    let policy = EscalationPolicy {
        id: PolicyId(1),
        org: OrgId(1),
        name: "Main".into(),
        steps: vec![step(ANN), step(BOB)],
        repeat: 0,
        disabled: false,
    };
    let directory = Directory {
        schedules: vec![],
        people: vec![plan(ANN, channel), plan(BOB, Channel::Call), plan(MGR, Channel::Call)],
        managers: vec![MGR],
    };
    let mut e = Engine::new(request, policy, directory);
    // As `Store::begin_escalation` does.
    e.handle(EngineInput::RequestCreated, now);
    e
}

fn key(stage: u32, person: PersonId) -> NotificationKey {
    NotificationKey {
        request: REQ,
        stage,
        person,
        channel: Channel::Call,
    }
}

fn orders(d: &mut Dispatcher) -> Vec<Order> {
    std::iter::from_fn(|| d.poll_order()).collect()
}

/// The orders that act on the escalation: no saves, statuses, log entries or heartbeat chores.
fn actions(d: &mut Dispatcher) -> Vec<Order> {
    orders(d)
        .into_iter()
        .filter(|o| {
            !matches!(
                o,
                Order::Save { .. }
                    | Order::SetStatus { .. }
                    | Order::Fail { .. }
                    | Order::WriteEvent { .. }
                    | Order::RenewLeases
                    | Order::ClaimOrphans { .. }
                    | Order::ClaimDueDeferred
                    | Order::TakeActions
            )
        })
        .collect()
}

/// A dispatcher past its first heartbeat, running the escalation of `engine` for a holding caller.
fn running(engine: Engine) -> Dispatcher {
    let mut d = Dispatcher::new(settings(), T0);
    d.handle_timeout(T0);
    orders(&mut d);
    d.handle(
        Input::EscalationBegun {
            engine: Box::new(engine),
            caller_call: Some(CALLER),
            policy_note: None,
        },
        T0,
    );
    d
}

fn saved_phase(orders: &[Order]) -> Option<Phase> {
    orders.iter().rev().find_map(|o| match o {
        Order::Save { engine } => Some(engine.phase()),
        _ => None,
    })
}

#[test]
fn the_first_heartbeat_is_at_once_and_takes_back_our_own_then_every_10_s() {
    let mut d = Dispatcher::new(settings(), T0);
    assert_eq!(d.poll_timeout(), Some(T0));
    d.handle_timeout(T0);
    assert_eq!(
        orders(&mut d),
        vec![
            Order::RenewLeases,
            Order::ClaimOrphans { include_own: true },
            Order::ClaimDueDeferred,
            Order::TakeActions
        ]
    );
    assert_eq!(d.poll_timeout(), Some(at(10)));
    d.handle_timeout(at(9));
    assert!(orders(&mut d).is_empty());
    d.handle_timeout(at(12));
    assert_eq!(
        orders(&mut d),
        vec![
            Order::RenewLeases,
            Order::ClaimOrphans { include_own: false },
            Order::ClaimDueDeferred,
            Order::TakeActions
        ]
    );
    assert_eq!(d.poll_timeout(), Some(at(22)), "a late beat delays the next one");
}

#[test]
fn a_begun_escalation_notes_its_instance_and_policy_then_notifies_and_saves() {
    let mut d = Dispatcher::new(settings(), T0);
    let note = "paged with policy Night desk (dialled oncall-night-bridge)".to_string();
    d.handle(
        Input::EscalationBegun {
            engine: Box::new(engine(Channel::Call)),
            caller_call: None,
            policy_note: Some(note.clone()),
        },
        T0,
    );
    let out = orders(&mut d);
    assert_eq!(
        out[0],
        Order::WriteEvent {
            request: REQ,
            kind: EventKind::Policy,
            detail: note
        }
    );
    assert_eq!(
        out[1],
        Order::WriteEvent {
            request: REQ,
            kind: EventKind::Instance,
            detail: "escalation run by instance a".into()
        }
    );
    assert_eq!(out[2], Order::Notify { key: key(0, ANN) });
    assert!(matches!(saved_phase(&out), Some(Phase::Step { stage: 0, .. })));
    assert!(d.is_running(REQ));
}

#[test]
fn a_person_is_paged_on_every_registered_phone_or_else_by_their_first_contact() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    let devices = vec![DeviceRef(1), DeviceRef(2)];
    d.handle(
        Input::PersonFound {
            key: key(0, ANN),
            disabled: false,
            devices,
            contacts: vec![],
        },
        at(1),
    );
    assert_eq!(
        orders(&mut d),
        vec![
            Order::Page {
                key: key(0, ANN),
                by: PageBy::Device(DeviceRef(1)),
                caller_call: Some(CALLER)
            },
            Order::Page {
                key: key(0, ANN),
                by: PageBy::Device(DeviceRef(2)),
                caller_call: Some(CALLER)
            },
        ]
    );
    let uri = Contact::Sip("sip:ann@192.0.2.5".parse::<SipUri>().unwrap());
    let phone = Contact::Phone("+15551230000".parse::<oncall_core::E164>().unwrap());
    d.handle(
        Input::PersonFound {
            key: key(0, ANN),
            disabled: false,
            devices: vec![],
            contacts: vec![uri.clone(), phone],
        },
        at(1),
    );
    assert_eq!(
        orders(&mut d),
        vec![Order::Page {
            key: key(0, ANN),
            by: PageBy::Contact(uri),
            caller_call: Some(CALLER)
        }]
    );
}

#[test]
fn a_486_escalates_at_once() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    d.handle(
        Input::Outcome {
            key: key(0, ANN),
            outcome: Outcome::Ringing,
        },
        at(1),
    );
    assert_eq!(
        orders(&mut d)[0],
        Order::SetStatus {
            key: key(0, ANN),
            status: NotificationStatus::Ringing
        }
    );
    d.handle(
        Input::Outcome {
            key: key(0, ANN),
            outcome: Outcome::Failed("Failed(486)".into()),
        },
        at(3),
    );
    let out = orders(&mut d);
    assert_eq!(
        out[0],
        Order::SetStatus {
            key: key(0, ANN),
            status: NotificationStatus::Failed
        }
    );
    assert_eq!(
        out[1],
        Order::Notify { key: key(1, BOB) },
        "Bob at once, not after Ann's five minutes"
    );
    assert_eq!(out[2], Order::EndStage { request: REQ, stage: 1 });
    assert!(matches!(saved_phase(&out), Some(Phase::Step { stage: 1, started, .. }) if started == at(3)));
}

#[test]
fn a_step_nobody_answers_times_out_to_the_next_and_ends_its_rings() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    d.handle(
        Input::Outcome {
            key: key(0, ANN),
            outcome: Outcome::Ringing,
        },
        at(1),
    );
    orders(&mut d);
    assert_eq!(
        d.poll_timeout(),
        Some(at(10)),
        "the heartbeat comes before the step's end"
    );
    d.handle_timeout(at(10));
    orders(&mut d);
    assert_eq!(d.engine(REQ).and_then(|e| e.poll_timeout()), Some(at(300)));
    d.handle_timeout(at(299));
    assert!(
        actions(&mut d).iter().all(|o| !matches!(o, Order::Notify { .. })),
        "not yet"
    );
    d.handle_timeout(at(300));
    assert_eq!(
        actions(&mut d),
        vec![
            Order::Notify { key: key(1, BOB) },
            Order::EndStage { request: REQ, stage: 1 }
        ]
    );
}

#[test]
fn an_acceptance_takes_the_request_ends_the_other_calls_and_finishes() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    d.handle(
        Input::Outcome {
            key: key(0, ANN),
            outcome: Outcome::Answered,
        },
        at(5),
    );
    d.handle(
        Input::Outcome {
            key: key(0, ANN),
            outcome: Outcome::Accepted,
        },
        at(20),
    );
    let out = orders(&mut d);
    assert_eq!(
        out.iter()
            .filter(|o| !matches!(o, Order::Save { .. } | Order::SetStatus { .. }))
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            Order::MarkAnswered {
                request: REQ,
                person: ANN
            },
            Order::Acknowledge {
                request: REQ,
                person: ANN
            },
            Order::EndCalls {
                request: REQ,
                keep: Some(key(0, ANN))
            },
            Order::Forget { request: REQ },
        ]
    );
    assert!(matches!(saved_phase(&out), Some(Phase::Answered { person: ANN, .. })));
    assert!(!d.is_running(REQ));
    // The employee presses 9 later: the store completes it though the escalation is over.
    d.handle(
        Input::Outcome {
            key: key(0, ANN),
            outcome: Outcome::Completed,
        },
        at(60),
    );
    assert_eq!(
        orders(&mut d),
        vec![
            Order::SetStatus {
                key: key(0, ANN),
                status: NotificationStatus::Completed
            },
            Order::Complete {
                request: REQ,
                person: ANN
            },
        ]
    );
}

#[test]
fn an_exhausted_escalation_ends_every_call_and_releases_the_holding_caller() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    d.handle(
        Input::Outcome {
            key: key(0, ANN),
            outcome: Outcome::Declined,
        },
        at(10),
    );
    d.handle(
        Input::Outcome {
            key: key(1, BOB),
            outcome: Outcome::Declined,
        },
        at(20),
    );
    assert_eq!(
        actions(&mut d),
        vec![
            Order::Notify { key: key(1, BOB) },
            Order::EndStage { request: REQ, stage: 1 },
            Order::Notify { key: key(2, MGR) },
            Order::EndStage { request: REQ, stage: 2 },
        ]
    );
    d.handle(
        Input::Outcome {
            key: key(2, MGR),
            outcome: Outcome::Failed("Unreachable".into()),
        },
        at(52),
    );
    assert_eq!(
        actions(&mut d),
        vec![
            Order::MarkExhausted { request: REQ },
            Order::EndCalls {
                request: REQ,
                keep: None
            },
            Order::ReleaseCaller { caller: CALLER },
            Order::Forget { request: REQ },
        ]
    );
}

/// Claims [`engine`] as saved by an instance that died at T0 (after its commands were carried out).
fn take_over(d: &mut Dispatcher, capped: bool, now: Timestamp) {
    let mut saved = engine(Channel::Call);
    while saved.poll_command().is_some() {}
    d.handle(
        Input::TakenOver {
            engine: Box::new(saved),
            capped,
        },
        now,
    );
}

#[test]
fn an_escalation_left_by_a_dead_instance_is_taken_over_and_catches_up() {
    // Instance a saved it at T0 (Ann's stage) and died; this one, b, claims it six minutes later.
    let mut d = Dispatcher::new(
        Settings {
            owner: "b".into(),
            ..settings()
        },
        at(360),
    );
    d.handle_timeout(at(360));
    assert_eq!(orders(&mut d)[1], Order::ClaimOrphans { include_own: true });
    take_over(&mut d, false, at(360));
    let out = orders(&mut d);
    assert_eq!(
        out[0],
        Order::WriteEvent {
            request: REQ,
            kind: EventKind::Instance,
            detail: "escalation taken over by instance b".into()
        }
    );
    assert_eq!(
        out[1],
        Order::Notify { key: key(1, BOB) },
        "Ann's step ended while nobody ran it"
    );
    assert!(matches!(saved_phase(&out), Some(Phase::Step { stage: 1, started, .. }) if started == at(300)));
    // Claimed again (a second heartbeat's race): already ours, nothing happens.
    d.handle(
        Input::TakenOver {
            engine: Box::new(engine(Channel::Call)),
            capped: false,
        },
        at(370),
    );
    assert!(orders(&mut d).is_empty());
}

#[test]
fn a_lost_lease_leaves_the_escalation_to_the_other_instance() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    d.handle(Input::LeaseLost { request: REQ }, at(1));
    assert_eq!(orders(&mut d), vec![Order::Forget { request: REQ }]);
    assert!(!d.is_running(REQ));
    d.handle_timeout(at(300));
    assert!(
        actions(&mut d).iter().all(|o| !matches!(o, Order::Notify { .. })),
        "no page from here any more"
    );
    d.handle(
        Input::Outcome {
            key: key(0, ANN),
            outcome: Outcome::Declined,
        },
        at(301),
    );
    assert_eq!(
        orders(&mut d),
        vec![Order::SetStatus {
            key: key(0, ANN),
            status: NotificationStatus::Declined
        }]
    );
}

fn paris_hours() -> BusinessHours {
    let week = "08:00-18:00";
    BusinessHours::parse("Europe/Paris", [week, week, week, week, week, "", ""], &[] as &[&str]).unwrap()
}

#[test]
fn a_normal_request_after_hours_is_deferred_to_the_opening_and_pages_when_claimed() {
    let mut d = Dispatcher::new(settings(), T0);
    // 02:00 in Paris: closed until 08:00 (06:00 UTC).
    d.handle(
        Input::RequestOpened {
            request: REQ,
            caller_call: Some(CALLER),
            normal: true,
            hours: Some(paris_hours()),
        },
        T0,
    );
    assert_eq!(
        orders(&mut d),
        vec![Order::Defer {
            request: REQ,
            at: at(6 * 3600),
            detail: "deferred until 2026-03-31 08:00 Europe/Paris (normal urgency, after business hours)".into(),
            caller_call: Some(CALLER),
        }]
    );
    let urgent = RequestId(43);
    d.handle(
        Input::RequestOpened {
            request: urgent,
            caller_call: None,
            normal: false,
            hours: Some(paris_hours()),
        },
        T0,
    );
    let daytime = RequestId(44);
    d.handle(
        Input::RequestOpened {
            request: daytime,
            caller_call: None,
            normal: true,
            hours: Some(paris_hours()),
        },
        at(8 * 3600),
    );
    let no_hours = RequestId(45);
    d.handle(
        Input::RequestOpened {
            request: no_hours,
            caller_call: None,
            normal: true,
            hours: None,
        },
        T0,
    );
    assert_eq!(
        orders(&mut d),
        vec![
            Order::Begin {
                request: urgent,
                caller_call: None
            },
            Order::Begin {
                request: daytime,
                caller_call: None
            },
            Order::Begin {
                request: no_hours,
                caller_call: None
            },
        ],
        "urgent pages at any hour, normal during business hours, and always without business hours"
    );
    // At the opening the heartbeat claims it; its caller is gone by then.
    d.handle(Input::DeferredDue { requests: vec![REQ] }, at(6 * 3600));
    assert_eq!(
        orders(&mut d),
        vec![Order::Begin {
            request: REQ,
            caller_call: None
        }]
    );
}

#[test]
fn a_deferral_that_cannot_be_stored_pages_now() {
    let mut d = Dispatcher::new(settings(), T0);
    d.handle(
        Input::DeferFailed {
            request: REQ,
            caller_call: Some(CALLER),
        },
        T0,
    );
    assert_eq!(
        orders(&mut d),
        vec![Order::Begin {
            request: REQ,
            caller_call: Some(CALLER)
        }]
    );
}

#[test]
fn a_request_already_running_is_neither_begun_nor_deferred_again() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    d.handle(
        Input::RequestOpened {
            request: REQ,
            caller_call: None,
            normal: true,
            hours: Some(paris_hours()),
        },
        T0,
    );
    d.handle(Input::DeferredDue { requests: vec![REQ] }, T0);
    assert!(orders(&mut d).is_empty());
}

#[test]
fn a_text_reply_acknowledges_the_request_and_ends_its_calls() {
    let mut d = running(engine(Channel::Text));
    let text = NotificationKey {
        channel: Channel::Text,
        ..key(0, ANN)
    };
    assert!(orders(&mut d).contains(&Order::Notify { key: text }));
    d.handle(
        Input::PersonFound {
            key: text,
            disabled: false,
            devices: vec![],
            contacts: vec![],
        },
        at(1),
    );
    assert_eq!(
        orders(&mut d),
        vec![Order::SendText {
            key: text,
            contacts: vec![]
        }]
    );
    d.handle(
        Input::Outcome {
            key: text,
            outcome: Outcome::Ringing,
        },
        at(2),
    );
    assert_eq!(
        orders(&mut d)[0],
        Order::SetStatus {
            key: text,
            status: NotificationStatus::Delivered
        }
    );
    d.handle(
        Input::TextReply {
            request: REQ,
            person: ANN,
            action: ReplyAction::Acknowledge,
        },
        at(60),
    );
    let out = orders(&mut d);
    assert!(
        out.contains(&Order::EndCalls {
            request: REQ,
            keep: None
        }) && out.contains(&Order::Forget { request: REQ })
    );
    assert!(matches!(saved_phase(&out), Some(Phase::Acknowledged { at: t, .. }) if t == at(60)));
}

#[test]
fn a_snooze_keeps_the_snoozers_call_and_pages_the_step_again_later() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    d.handle(
        Input::Outcome {
            key: key(0, ANN),
            outcome: Outcome::Snooze,
        },
        at(30),
    );
    assert_eq!(
        actions(&mut d),
        vec![Order::EndCalls {
            request: REQ,
            keep: Some(key(0, ANN))
        }]
    );
    d.handle_timeout(at(30 + 599));
    assert!(actions(&mut d).is_empty(), "still snoozed");
    d.handle_timeout(at(30 + 600));
    assert_eq!(
        actions(&mut d),
        vec![
            Order::Notify { key: key(1, ANN) },
            Order::EndStage { request: REQ, stage: 1 }
        ],
        "the same step again, as a new stage"
    );
}

#[test]
fn texts_turned_off_a_disabled_person_or_no_contact_fail_the_notification_at_once() {
    let mut d = Dispatcher::new(
        Settings {
            texts: false,
            ..settings()
        },
        T0,
    );
    d.handle(
        Input::EscalationBegun {
            engine: Box::new(engine(Channel::Text)),
            caller_call: None,
            policy_note: None,
        },
        T0,
    );
    let text = NotificationKey {
        channel: Channel::Text,
        ..key(0, ANN)
    };
    let out = orders(&mut d);
    assert!(!out.contains(&Order::Notify { key: text }));
    assert!(out.contains(&Order::Fail {
        key: text,
        reason: "texts are off ([texts] enabled = false)".into()
    }));
    assert!(
        out.contains(&Order::Notify { key: key(1, BOB) }),
        "Ann's only way failed: Bob at once"
    );

    d.handle(
        Input::PersonFound {
            key: key(1, BOB),
            disabled: true,
            devices: vec![DeviceRef(1)],
            contacts: vec![],
        },
        at(1),
    );
    let out = orders(&mut d);
    assert_eq!(
        out[0],
        Order::Fail {
            key: key(1, BOB),
            reason: "person is disabled".into()
        }
    );
    assert!(
        out.contains(&Order::Notify { key: key(2, MGR) }),
        "a disabled person is not paged"
    );

    d.handle(
        Input::PersonFound {
            key: key(2, MGR),
            disabled: false,
            devices: vec![],
            contacts: vec![],
        },
        at(2),
    );
    assert_eq!(
        actions(&mut d),
        vec![
            Order::MarkExhausted { request: REQ },
            Order::EndCalls {
                request: REQ,
                keep: None
            },
            Order::Forget { request: REQ }
        ],
        "nobody to call the manager on"
    );
}

#[test]
fn a_notification_that_cannot_be_carried_out_fails_and_moves_on() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    d.handle(
        Input::NotifyFailed {
            key: key(0, ANN),
            reason: "cannot resolve pbx.invalid".into(),
        },
        at(1),
    );
    let out = orders(&mut d);
    assert_eq!(
        out[0],
        Order::Fail {
            key: key(0, ANN),
            reason: "cannot resolve pbx.invalid".into()
        }
    );
    assert_eq!(out[1], Order::Notify { key: key(1, BOB) });
}

fn phone(number: &str) -> Contact {
    Contact::Phone(number.parse::<E164>().unwrap())
}

fn sip(uri: &str) -> Contact {
    Contact::Sip(uri.parse::<SipUri>().unwrap())
}

fn events(orders: &[Order], wanted: EventKind) -> Vec<String> {
    orders
        .iter()
        .filter_map(|o| match o {
            Order::WriteEvent { kind, detail, .. } if *kind == wanted => Some(detail.clone()),
            _ => None,
        })
        .collect()
}

/// Issue #15 item 4 at dial time: a `+882` number saved before the dial plan refused it is not
/// called (logged in the request); the person's next allowed contact is, and with none left the
/// notification fails and the escalation moves on at once.
#[test]
fn a_number_the_dial_plan_refuses_is_skipped_and_logged() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    let denied = phone("+88212345678");
    let allowed = phone("+442079460100");
    d.handle(
        Input::PersonFound {
            key: key(0, ANN),
            disabled: false,
            devices: vec![],
            contacts: vec![denied.clone(), allowed.clone()],
        },
        at(1),
    );
    let out = orders(&mut d);
    let log = events(&out, EventKind::DialPlan);
    assert!(
        log.len() == 1 && log[0].starts_with(&format!("+88212345678 ({ANN}) not called: ")),
        "{log:?}"
    );
    assert_eq!(
        out.last(),
        Some(&Order::Page {
            key: key(0, ANN),
            by: PageBy::Contact(allowed),
            caller_call: Some(CALLER)
        })
    );

    d.handle(
        Input::PersonFound {
            key: key(0, ANN),
            disabled: false,
            devices: vec![],
            contacts: vec![denied],
        },
        at(2),
    );
    let out = orders(&mut d);
    assert_eq!(events(&out, EventKind::DialPlan).len(), 1);
    assert!(out.contains(&Order::Fail {
        key: key(0, ANN),
        reason: "no phone number, SIP URI or registered phone (that the dial plan and the page cap allow)".into()
    }));
    assert!(
        out.contains(&Order::Notify { key: key(1, BOB) }),
        "nothing left to call Ann on: Bob at once"
    );
}

/// A text to a refused number is not sent to it ("not texted"); a SIP URI still gets it.
#[test]
fn a_text_goes_only_to_contacts_the_dial_plan_allows() {
    let mut d = running(engine(Channel::Text));
    orders(&mut d);
    let text = NotificationKey {
        channel: Channel::Text,
        ..key(0, ANN)
    };
    let uri = sip("sip:ann@192.0.2.5");
    d.handle(
        Input::PersonFound {
            key: text,
            disabled: false,
            devices: vec![],
            contacts: vec![phone("+88212345678"), uri.clone()],
        },
        at(1),
    );
    let out = orders(&mut d);
    assert!(
        events(&out, EventKind::DialPlan)[0].contains(" not texted: "),
        "{out:?}"
    );
    assert_eq!(
        out.last(),
        Some(&Order::SendText {
            key: text,
            contacts: vec![uri]
        })
    );
}

fn capped_settings() -> Settings {
    Settings {
        max_pages_per_hour: 1,
        ..settings()
    }
}

fn begin(d: &mut Dispatcher, request: RequestId, now: Timestamp) -> Vec<Order> {
    d.handle(
        Input::EscalationBegun {
            engine: Box::new(engine_for(request, Channel::Call, now)),
            caller_call: None,
            policy_note: None,
        },
        now,
    );
    orders(d)
}

/// `[paging] max_pages_per_hour = 1`: the second request in the hour is logged as capped and pages
/// no phone number (silently: the cap was logged once), only SIP URIs and registered phones; an
/// hour after the first, requests page phone numbers again.
#[test]
fn a_request_beyond_the_page_cap_pages_no_phone_number() {
    let mut d = Dispatcher::new(capped_settings(), T0);
    assert!(events(&begin(&mut d, RequestId(1), T0), EventKind::PageCap).is_empty());
    let out = begin(&mut d, REQ, at(60));
    let capped = events(&out, EventKind::PageCap);
    assert!(
        capped.len() == 1 && capped[0].contains("[paging] max_pages_per_hour"),
        "{capped:?}"
    );
    let uri = sip("sip:ann@192.0.2.5");
    d.handle(
        Input::PersonFound {
            key: key(0, ANN),
            disabled: false,
            devices: vec![],
            contacts: vec![phone("+442079460100"), uri.clone()],
        },
        at(61),
    );
    assert_eq!(
        orders(&mut d),
        vec![Order::Page {
            key: key(0, ANN),
            by: PageBy::Contact(uri),
            caller_call: None
        }],
        "no dial_plan entry, no trunk call"
    );
    d.handle(
        Input::PersonFound {
            key: key(0, ANN),
            disabled: false,
            devices: vec![DeviceRef(3)],
            contacts: vec![phone("+442079460100")],
        },
        at(62),
    );
    assert_eq!(
        actions(&mut d),
        vec![Order::Page {
            key: key(0, ANN),
            by: PageBy::Device(DeviceRef(3)),
            caller_call: None
        }],
        "registered phones still ring"
    );
    d.handle(
        Input::PersonFound {
            key: key(0, ANN),
            disabled: false,
            devices: vec![],
            contacts: vec![phone("+442079460100")],
        },
        at(63),
    );
    assert!(orders(&mut d).contains(&Order::Fail {
        key: key(0, ANN),
        reason: "no phone number, SIP URI or registered phone (that the dial plan and the page cap allow)".into()
    }));
    let later = begin(&mut d, RequestId(50), T0 + Millis::hours(1));
    assert!(events(&later, EventKind::PageCap).is_empty(), "the hour has passed");
}

/// A request capped by the instance that began it stays capped when taken over, and a takeover
/// is not counted against this instance's cap.
#[test]
fn a_taken_over_request_stays_capped_and_is_not_counted() {
    let mut d = Dispatcher::new(capped_settings(), T0);
    take_over(&mut d, true, at(400));
    orders(&mut d);
    d.handle(
        Input::PersonFound {
            key: key(1, BOB),
            disabled: false,
            devices: vec![],
            contacts: vec![phone("+442079460100")],
        },
        at(401),
    );
    assert!(orders(&mut d)
        .iter()
        .any(|o| matches!(o, Order::Fail { key: k, .. } if *k == key(1, BOB))));
    assert!(
        events(&begin(&mut d, RequestId(1), at(402)), EventKind::PageCap).is_empty(),
        "the cap's one page an hour is still free"
    );
}

// Buttons on a request (issue 18 item 6).

const CAT: PersonId = PersonId(3);
const BOSS: Actor = Actor::User(oncall_core::UserId(5));

fn act(d: &mut Dispatcher, action: Action, now: Timestamp) -> Vec<Order> {
    d.handle(Input::Action { request: REQ, action, by: BOSS }, now);
    orders(d)
}

fn notified(out: &[Order]) -> Vec<NotificationKey> {
    out.iter()
        .filter_map(|o| match o {
            Order::Notify { key } => Some(*key),
            _ => None,
        })
        .collect()
}

#[test]
fn a_queued_action_is_taken_at_once_and_on_every_heartbeat() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    d.handle(Input::ActionsQueued, at(3));
    assert_eq!(orders(&mut d), vec![Order::TakeActions]);
    d.handle_timeout(at(10));
    assert!(orders(&mut d).contains(&Order::TakeActions));
}

/// On a running escalation: page again repeats Ann's step as a new stage (ending the old stage's
/// rings), escalate moves to Bob's, and reassign pages Cat (learned with her plan) alone.
#[test]
fn page_again_escalate_and_reassign_reach_a_running_escalation_at_once() {
    let mut d = running(engine(Channel::Call));
    orders(&mut d);
    let out = act(&mut d, Action::PageAgain, at(60));
    assert_eq!(notified(&out), vec![key(1, ANN)]);
    assert!(out.contains(&Order::EndStage { request: REQ, stage: 1 }));
    assert!(matches!(saved_phase(&out), Some(Phase::Step { step: 0, stage: 1, started, .. }) if started == at(60)));
    let out = act(&mut d, Action::Escalate, at(70));
    assert_eq!(notified(&out), vec![key(2, BOB)]);
    assert!(out.contains(&Order::EndStage { request: REQ, stage: 2 }));
    let text = NotificationKey { channel: Channel::Text, ..key(3, CAT) };
    let out = act(&mut d, Action::Reassign(plan(CAT, Channel::Text)), at(80));
    assert_eq!(notified(&out), vec![text]);
    assert!(matches!(saved_phase(&out), Some(Phase::Reassigned { person: CAT, after: Some((1, 0)), .. })));
    assert!(!out.iter().any(|o| matches!(o, Order::LoadForAction { .. } | Order::Reopen { .. })));
    // Cat's five minutes pass unanswered: after Bob's step come the managers.
    d.handle_timeout(at(380));
    assert_eq!(notified(&orders(&mut d)), vec![key(4, MGR)]);
}

/// An exhausted request nobody runs is loaded from the store, reopened and paged from the first
/// step, and runs here from then on; escalating it is refused in its log and changes nothing.
#[test]
fn an_exhausted_request_is_loaded_reopened_and_paged_again() {
    let mut e = engine(Channel::Call);
    e.handle(EngineInput::TimePassed, at(900));
    while e.poll_command().is_some() {}
    assert!(matches!(e.phase(), Phase::Exhausted { .. }));
    let mut d = Dispatcher::new(settings(), T0);
    d.handle_timeout(T0);
    orders(&mut d);
    assert_eq!(act(&mut d, Action::Escalate, at(1000)), vec![Order::LoadForAction { request: REQ, action: Action::Escalate, by: BOSS }]);
    let loaded = |action| Input::LoadedForAction { request: REQ, engine: Some(Box::new(e.clone())), capped: false, action, by: BOSS };
    d.handle(loaded(Action::Escalate), at(1000));
    assert_eq!(
        orders(&mut d),
        vec![Order::WriteEvent {
            request: REQ,
            kind: EventKind::Action,
            detail: "escalate now not done: every step was paged already (page it again to start over)".into()
        }]
    );
    assert!(!d.is_running(REQ));
    d.handle(loaded(Action::PageAgain), at(1001));
    let out = orders(&mut d);
    assert_eq!(
        out[0],
        Order::WriteEvent { request: REQ, kind: EventKind::Instance, detail: "escalation run by instance a".into() }
    );
    assert!(out.contains(&Order::Reopen { request: REQ }));
    assert_eq!(notified(&out).iter().map(|k| k.person).collect::<Vec<_>>(), vec![ANN]);
    assert!(matches!(saved_phase(&out), Some(Phase::Step { step: 0, round: 0, .. })));
    assert!(d.is_running(REQ));
    // Nobody answers again: exhausted again, and the store is told.
    d.handle_timeout(at(1001 + 900));
    assert!(orders(&mut d).contains(&Order::MarkExhausted { request: REQ }));
    assert!(!d.is_running(REQ));
}

/// A request that never began paging (deferred after hours) begins on "page again"; escalating or
/// reassigning it is refused; an answered escalation is never touched.
#[test]
fn a_never_begun_request_begins_on_page_again_and_an_answered_one_is_left_alone() {
    let mut d = Dispatcher::new(settings(), T0);
    let none = |action| Input::LoadedForAction { request: REQ, engine: None, capped: false, action, by: BOSS };
    d.handle(none(Action::PageAgain), at(1));
    assert_eq!(orders(&mut d), vec![Order::Begin { request: REQ, caller_call: None }]);
    d.handle(none(Action::Reassign(plan(CAT, Channel::Call))), at(2));
    assert_eq!(
        orders(&mut d),
        vec![Order::WriteEvent {
            request: REQ,
            kind: EventKind::Action,
            detail: "reassign not done: the request is not paging yet (page it again first)".into()
        }]
    );
    let mut answered = engine(Channel::Call);
    answered.handle(EngineInput::Answered { person: ANN }, at(3));
    while answered.poll_command().is_some() {}
    d.handle(Input::LoadedForAction { request: REQ, engine: Some(Box::new(answered)), capped: false, action: Action::PageAgain, by: BOSS }, at(4));
    let out = orders(&mut d);
    assert!(matches!(&out[..], [Order::WriteEvent { kind: EventKind::Action, detail, .. }] if detail == "page again not done: the request was already answered"), "{out:?}");
    assert!(!d.is_running(REQ));
}

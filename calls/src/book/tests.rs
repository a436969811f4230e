//! Call book tests on a virtual clock: one test per decision, no sockets, no sleeps.

use super::*;
use std::sync::{Arc, Mutex};

const SECOND: Duration = Duration::from_secs(1);
const REQ: RequestRef = RequestRef(42);
const ERIN: PersonRef = PersonRef(1);
const FRANK: PersonRef = PersonRef(2);

fn settings() -> Settings {
    Settings {
        answer_after: Duration::ZERO,
        max_calls: 0,
        drain: 30 * SECOND,
    }
}

fn book(settings: Settings) -> CallBook {
    CallBook::new(settings)
}

fn outputs(b: &mut CallBook) -> Vec<Output> {
    std::iter::from_fn(|| b.poll_output()).collect()
}

fn source() -> IpAddr {
    "192.0.2.10".parse().unwrap()
}

fn invite(call: u64) -> IncomingCall {
    IncomingCall {
        call: CallId(call),
        source: source(),
        source_allowed: true,
        trusted: false,
        route: Route::Ivr,
        has_offer: true,
    }
}

fn key(stage: u32, person: PersonRef) -> PageKey {
    PageKey {
        request: REQ,
        stage,
        person,
    }
}

/// Admits `call` and answers it at once (ports reserved), dropping the outputs.
fn answered_call(b: &mut CallBook, call: u64, now: Instant) {
    b.handle(Input::Incoming(invite(call)), now);
    b.handle(Input::MediaReserved { call: CallId(call) }, now);
    outputs(b);
}

/// Places one leg per contact for `key`, returning the legs in order.
fn page(b: &mut CallBook, key: PageKey, contacts: u64, now: Instant) -> Vec<LegId> {
    b.handle(
        Input::Page {
            key,
            contacts: (0..contacts).map(ContactRef).collect(),
        },
        now,
    );
    outputs(b)
        .into_iter()
        .map(|o| match o {
            Output::PlaceLeg { leg, key: k, .. } if k == key => leg,
            other => panic!("expected PlaceLeg, got {other:?}"),
        })
        .collect()
}

fn reject(call: u64, status: u16, reason: RejectReason, retry_after: Option<u32>) -> Output {
    Output::Reject {
        call: CallId(call),
        status,
        reason,
        retry_after,
    }
}

fn report(key: PageKey, outcome: Outcome) -> Output {
    Output::Report { key, outcome }
}

#[test]
fn an_admitted_call_reserves_media_then_is_answered_and_its_ivr_starts() {
    let t0 = Instant::now();
    let mut b = book(settings());
    b.handle(Input::Incoming(invite(1)), t0);
    assert_eq!(outputs(&mut b), vec![Output::ReserveMedia { call: CallId(1) }]);
    b.handle(Input::MediaReserved { call: CallId(1) }, t0);
    assert_eq!(
        outputs(&mut b),
        vec![Output::Answer { call: CallId(1) }, Output::StartIvr { call: CallId(1) }]
    );
    assert_eq!(
        b.counters(),
        Counters {
            calls_received: 1,
            calls_answered: 1,
            calls_rejected: 0
        }
    );
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn with_answer_after_the_call_rings_first_and_is_answered_then() {
    let t0 = Instant::now();
    let mut b = book(Settings {
        answer_after: 2 * SECOND,
        ..settings()
    });
    b.handle(Input::Incoming(invite(1)), t0);
    b.handle(Input::MediaReserved { call: CallId(1) }, t0);
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::ReserveMedia { call: CallId(1) },
            Output::Ring { call: CallId(1) }
        ]
    );
    assert_eq!(b.poll_timeout(), Some(t0 + 2 * SECOND));
    b.handle_timeout(t0 + SECOND);
    assert!(outputs(&mut b).is_empty(), "not yet");
    b.handle_timeout(t0 + 2 * SECOND);
    assert_eq!(
        outputs(&mut b),
        vec![Output::Answer { call: CallId(1) }, Output::StartIvr { call: CallId(1) }]
    );
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn a_late_offer_starts_the_ivr_when_it_comes_and_later_offers_update_it() {
    let t0 = Instant::now();
    let mut b = book(settings());
    b.handle(
        Input::Incoming(IncomingCall {
            has_offer: false,
            ..invite(1)
        }),
        t0,
    );
    b.handle(Input::MediaReserved { call: CallId(1) }, t0);
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::ReserveMedia { call: CallId(1) },
            Output::Answer { call: CallId(1) }
        ]
    );
    b.handle(Input::Confirmed { call: CallId(1) }, t0);
    assert!(outputs(&mut b).is_empty(), "no session to tell yet");
    b.handle(Input::Offer { call: CallId(1) }, t0);
    assert_eq!(outputs(&mut b), vec![Output::StartIvr { call: CallId(1) }]);
    b.handle(Input::Offer { call: CallId(1) }, t0);
    b.handle(Input::Confirmed { call: CallId(1) }, t0);
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::UpdateCallMedia { call: CallId(1) },
            Output::CallConfirmed { call: CallId(1) }
        ]
    );
}

#[test]
fn a_call_that_ends_stops_its_ivr_or_is_logged_as_ended_early() {
    let t0 = Instant::now();
    let mut b = book(Settings {
        answer_after: 5 * SECOND,
        ..settings()
    });
    answered_call(&mut b, 1, t0);
    b.handle(Input::CallEnded { call: CallId(1) }, t0 + SECOND);
    assert_eq!(
        outputs(&mut b),
        vec![Output::EndedEarly { call: CallId(1) }],
        "hung up while ringing"
    );
    let mut b = book(settings());
    answered_call(&mut b, 2, t0);
    b.handle(Input::IvrHangup { call: CallId(2) }, t0 + SECOND);
    b.handle(Input::CallEnded { call: CallId(2) }, t0 + SECOND);
    assert_eq!(
        outputs(&mut b),
        vec![Output::HangUp { call: CallId(2) }, Output::StopIvr { call: CallId(2) }]
    );
    assert_eq!(b.active_calls(), 0);
}

#[test]
fn while_media_is_overloaded_new_calls_get_503_and_calls_in_progress_go_on() {
    let t0 = Instant::now();
    let mut b = book(settings());
    answered_call(&mut b, 1, t0);
    b.handle(Input::MediaLoad { overloaded: true }, t0);
    b.handle(Input::Incoming(invite(2)), t0);
    assert_eq!(outputs(&mut b), vec![reject(2, 503, RejectReason::MediaOverloaded, Some(5))]);
    assert_eq!(b.active_calls(), 1, "the call in progress is untouched");
    b.handle(Input::MediaLoad { overloaded: false }, t0 + SECOND);
    answered_call(&mut b, 3, t0 + SECOND);
    assert_eq!(b.active_calls(), 2, "let in again once the load fell");
}

#[test]
fn a_phone_ordered_after_another_answered_is_not_rung() {
    // Paging orders one phone at a time; the first answered (auto-answer) before the second order came.
    let t0 = Instant::now();
    let mut b = book(settings());
    let key = PageKey { request: RequestRef(1), person: PersonRef(1), stage: 0 };
    b.handle(Input::Page { key, contacts: vec![ContactRef(0)] }, t0);
    let leg = match outputs(&mut b).as_slice() {
        [Output::PlaceLeg { leg, .. }] => *leg,
        other => panic!("{other:?}"),
    };
    b.handle(Input::LegAnswered { leg, usable_media: true }, t0);
    outputs(&mut b);
    b.handle(Input::Page { key, contacts: vec![ContactRef(1)] }, t0);
    assert_eq!(outputs(&mut b), vec![Output::SkipContact { key, contact: ContactRef(1) }]);
}

#[test]
fn at_capacity_a_new_call_gets_503_retry_after_5() {
    let t0 = Instant::now();
    let mut b = book(Settings {
        max_calls: 2,
        ..settings()
    });
    answered_call(&mut b, 1, t0);
    answered_call(&mut b, 2, t0);
    b.handle(Input::Incoming(invite(3)), t0);
    assert_eq!(outputs(&mut b), vec![reject(3, 503, RejectReason::AtCapacity, Some(5))]);
    b.handle(Input::CallEnded { call: CallId(1) }, t0 + SECOND);
    outputs(&mut b);
    b.handle(Input::Incoming(invite(4)), t0 + SECOND);
    assert_eq!(
        outputs(&mut b),
        vec![Output::ReserveMedia { call: CallId(4) }],
        "a place is free again"
    );
    assert_eq!(b.counters().calls_rejected, 1);
}

#[test]
fn an_untrusted_source_gets_403_unless_the_redirect_target_bridges_it() {
    let t0 = Instant::now();
    let mut b = book(settings());
    b.handle(
        Input::Incoming(IncomingCall {
            source_allowed: false,
            ..invite(1)
        }),
        t0,
    );
    assert_eq!(
        outputs(&mut b),
        vec![reject(1, 403, RejectReason::UntrustedSource, None)]
    );
    b.handle(
        Input::Incoming(IncomingCall {
            source_allowed: false,
            route: Route::Bridge,
            ..invite(2)
        }),
        t0,
    );
    assert_eq!(outputs(&mut b), vec![Output::ReserveMedia { call: CallId(2) }]);
}

#[test]
fn the_redirect_target_answers_before_the_source_filter_and_admission() {
    let t0 = Instant::now();
    let mut b = book(Settings {
        max_calls: 1,
        ..settings()
    });
    answered_call(&mut b, 1, t0);
    b.handle(Input::Drain { trunks_pending: false }, t0);
    let contacts = vec!["<sip:erin@192.0.2.7>;q=1.0".to_string()];
    let redirected = Route::Redirect {
        contacts: contacts.clone(),
    };
    b.handle(
        Input::Incoming(IncomingCall {
            source_allowed: false,
            route: redirected,
            ..invite(2)
        }),
        t0,
    );
    b.handle(
        Input::Incoming(IncomingCall {
            route: Route::Reject { status: 480 },
            ..invite(3)
        }),
        t0,
    );
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::Redirect {
                call: CallId(2),
                contacts
            },
            reject(3, 480, RejectReason::Routed, None)
        ]
    );
    assert_eq!(
        b.counters().calls_rejected,
        0,
        "the redirect target's refusals are not counted as rejected"
    );
}

#[test]
fn a_source_calling_too_fast_gets_503_retry_after_10_and_spends_no_token_when_refused_earlier() {
    let t0 = Instant::now();
    let asked = Arc::new(Mutex::new(0));
    let counted = asked.clone();
    // One call per source, ever: the gate stands in for the token bucket.
    let gate: SourceGate = Box::new(move |_, _, _| {
        let mut n = counted.lock().unwrap();
        *n += 1;
        *n == 1
    });
    let mut b = book(settings()).with_source_gate(gate);
    b.handle(
        Input::Incoming(IncomingCall {
            source_allowed: false,
            ..invite(1)
        }),
        t0,
    );
    assert_eq!(*asked.lock().unwrap(), 0, "a 403 asks no token");
    answered_call(&mut b, 2, t0);
    b.handle(Input::Incoming(invite(3)), t0);
    assert_eq!(
        outputs(&mut b),
        vec![reject(3, 503, RejectReason::RateLimited, Some(10))]
    );
}

#[test]
fn the_rate_limit_rates_listed_sources_and_bridge_calls_as_trusted() {
    let t0 = Instant::now();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    // Only a trusted source gets in: the gate stands in for the bucket's two rates.
    let gate: SourceGate = Box::new(move |ip, trusted, at| {
        seen.lock().unwrap().push((ip, trusted, at));
        trusted
    });
    let mut b = book(settings()).with_source_gate(gate);
    b.handle(Input::Incoming(invite(1)), t0);
    b.handle(
        Input::Incoming(IncomingCall {
            trusted: true,
            ..invite(2)
        }),
        t0 + SECOND,
    );
    b.handle(
        Input::Incoming(IncomingCall {
            source_allowed: false,
            route: Route::Bridge,
            ..invite(3)
        }),
        t0 + 2 * SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![
            reject(1, 503, RejectReason::RateLimited, Some(10)),
            Output::ReserveMedia { call: CallId(2) },
            Output::ReserveMedia { call: CallId(3) },
        ]
    );
    assert_eq!(
        *asked.lock().unwrap(),
        vec![
            (source(), false, t0),
            (source(), true, t0 + SECOND),
            (source(), true, t0 + 2 * SECOND)
        ],
        "an unlisted source, a listed one, a bridge call from an unlisted one"
    );
}

#[test]
fn no_free_rtp_port_gets_503_retry_after_5() {
    let t0 = Instant::now();
    let mut b = book(settings());
    b.handle(Input::Incoming(invite(1)), t0);
    b.handle(Input::NoMediaPort { call: CallId(1) }, t0);
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::ReserveMedia { call: CallId(1) },
            reject(1, 503, RejectReason::NoMediaPort, Some(5))
        ]
    );
    assert_eq!(b.active_calls(), 0);
}

#[test]
fn one_page_order_places_one_leg_per_contact() {
    let t0 = Instant::now();
    let mut b = book(settings());
    b.handle(
        Input::Page {
            key: key(0, ERIN),
            contacts: vec![ContactRef(7), ContactRef(8)],
        },
        t0,
    );
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::PlaceLeg {
                leg: LegId(0),
                key: key(0, ERIN),
                contact: ContactRef(7)
            },
            Output::PlaceLeg {
                leg: LegId(1),
                key: key(0, ERIN),
                contact: ContactRef(8)
            },
        ]
    );
    assert_eq!(b.active_legs(), 2);
}

#[test]
fn ringing_is_reported_once_per_leg() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 1, t0);
    b.handle(Input::LegProgress { leg: legs[0] }, t0);
    b.handle(Input::LegProgress { leg: legs[0] }, t0 + SECOND);
    assert_eq!(outputs(&mut b), vec![report(key(0, ERIN), Outcome::Ringing)]);
}

#[test]
fn the_first_answer_wins_and_the_other_phones_get_cancel() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 3, t0);
    let other_page = page(&mut b, key(0, FRANK), 1, t0);
    b.handle(
        Input::LegAnswered {
            leg: legs[1],
            usable_media: true,
        },
        t0 + 5 * SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::CancelLeg { leg: legs[0] },
            Output::CancelLeg { leg: legs[2] },
            report(key(0, ERIN), Outcome::Answered),
            Output::StartPageSession {
                leg: legs[1],
                key: key(0, ERIN)
            },
        ],
        "Frank's page ({:?}) is another person's: it keeps ringing",
        other_page
    );
    // The losers' ends are not failures: the page was answered.
    b.handle(
        Input::LegEnded {
            leg: legs[0],
            reason: LegEnd::Failed(487),
        },
        t0 + 6 * SECOND,
    );
    b.handle(
        Input::LegEnded {
            leg: legs[2],
            reason: LegEnd::Failed(487),
        },
        t0 + 6 * SECOND,
    );
    assert!(outputs(&mut b).is_empty());
}

#[test]
fn a_phone_answering_after_another_took_the_page_gets_bye() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 2, t0);
    b.handle(
        Input::LegAnswered {
            leg: legs[0],
            usable_media: true,
        },
        t0 + 5 * SECOND,
    );
    assert!(outputs(&mut b).contains(&Output::CancelLeg { leg: legs[1] }));
    // Its 200 crossed our CANCEL.
    b.handle(
        Input::LegAnswered {
            leg: legs[1],
            usable_media: true,
        },
        t0 + 5 * SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![Output::ByeLeg { leg: legs[1] }],
        "no second report, no second session"
    );
    b.handle(
        Input::LegEnded {
            leg: legs[1],
            reason: LegEnd::LocalHangup,
        },
        t0 + 6 * SECOND,
    );
    assert!(outputs(&mut b).is_empty());
}

#[test]
fn a_486_is_reported_at_once() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 1, t0);
    b.handle(Input::LegProgress { leg: legs[0] }, t0);
    b.handle(
        Input::LegEnded {
            leg: legs[0],
            reason: LegEnd::Failed(486),
        },
        t0 + SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![
            report(key(0, ERIN), Outcome::Ringing),
            report(key(0, ERIN), Outcome::Failed("rang 1 s, busy (486)".into()))
        ]
    );
    assert_eq!(b.poll_timeout(), None, "nothing waits for a timer");
}

#[test]
fn a_busy_phone_is_not_a_failure_while_another_phone_of_the_page_rings() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 2, t0);
    b.handle(
        Input::LegEnded {
            leg: legs[0],
            reason: LegEnd::Failed(486),
        },
        t0 + SECOND,
    );
    assert!(outputs(&mut b).is_empty(), "the other phone still rings");
    b.handle(
        Input::LegEnded {
            leg: legs[1],
            reason: LegEnd::Failed(603),
        },
        t0 + 2 * SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![report(key(0, ERIN), Outcome::Failed("declined (603)".into()))]
    );
}

/// Issue 18 item 4: the failure says in words how long the phone rang and why it stopped.
#[test]
fn a_ring_nobody_answers_is_reported_with_how_long_it_rang() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 1, t0);
    b.handle(Input::LegProgress { leg: legs[0] }, t0 + SECOND);
    b.handle(Input::LegEnded { leg: legs[0], reason: LegEnd::Timeout }, t0 + 31 * SECOND);
    assert_eq!(
        outputs(&mut b),
        vec![report(key(0, ERIN), Outcome::Ringing), report(key(0, ERIN), Outcome::Failed("rang 30 s, no answer".into()))]
    );
    assert_eq!(LegEnd::Failed(407).describe(None), "the trunk refused our credentials");
    assert_eq!(LegEnd::Failed(500).describe(None), "refused (500)");
}

#[test]
fn a_leg_nobody_answers_is_reported_when_it_times_out() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 1, t0);
    b.handle(
        Input::LegEnded {
            leg: legs[0],
            reason: LegEnd::Unreachable,
        },
        t0 + 32 * SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![report(key(0, ERIN), Outcome::Failed("unreachable: no response from the phone or trunk".into()))]
    );
}

#[test]
fn a_leg_that_cannot_be_placed_is_reported_at_once() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 2, t0);
    b.handle(
        Input::LegNotPlaced {
            leg: legs[0],
            reason: "no free RTP port".into(),
        },
        t0,
    );
    assert_eq!(
        outputs(&mut b),
        vec![report(key(0, ERIN), Outcome::Failed("no free RTP port".into()))]
    );
    assert_eq!(b.active_legs(), 1);
}

#[test]
fn an_answer_without_usable_media_is_reported_and_hung_up() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 1, t0);
    b.handle(
        Input::LegAnswered {
            leg: legs[0],
            usable_media: false,
        },
        t0,
    );
    assert_eq!(
        outputs(&mut b),
        vec![
            report(key(0, ERIN), Outcome::Answered),
            report(key(0, ERIN), Outcome::Failed("no usable media in the answer".into())),
            Output::ByeLeg { leg: legs[0] },
        ]
    );
    b.handle(
        Input::LegEnded {
            leg: legs[0],
            reason: LegEnd::LocalHangup,
        },
        t0,
    );
    assert!(outputs(&mut b).is_empty(), "answered: no second failure");
}

#[test]
fn the_page_sessions_decisions_are_reported_even_after_its_leg_ended() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let legs = page(&mut b, key(0, ERIN), 1, t0);
    b.handle(
        Input::LegAnswered {
            leg: legs[0],
            usable_media: true,
        },
        t0,
    );
    b.handle(Input::LegOffer { leg: legs[0] }, t0);
    outputs(&mut b);
    b.handle(
        Input::Decision {
            leg: Some(legs[0]),
            key: key(0, ERIN),
            decision: PageDecision::Accepted,
        },
        t0 + SECOND,
    );
    b.handle(
        Input::Decision {
            leg: Some(legs[0]),
            key: key(0, ERIN),
            decision: PageDecision::Hangup,
        },
        t0 + 2 * SECOND,
    );
    b.handle(
        Input::LegEnded {
            leg: legs[0],
            reason: LegEnd::LocalHangup,
        },
        t0 + 2 * SECOND,
    );
    b.handle(
        Input::Decision {
            leg: Some(legs[0]),
            key: key(0, ERIN),
            decision: PageDecision::Completed,
        },
        t0 + 2 * SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![
            report(key(0, ERIN), Outcome::Accepted),
            Output::ByeLeg { leg: legs[0] },
            Output::StopPageSession { leg: legs[0] },
            report(key(0, ERIN), Outcome::Completed),
        ]
    );
    // Once the wrapper forgot the leg's handle, a decision still reports, and a hang-up asks nothing.
    for decision in [PageDecision::Declined, PageDecision::Hangup] {
        b.handle(
            Input::Decision {
                leg: None,
                key: key(0, ERIN),
                decision,
            },
            t0 + 3 * SECOND,
        );
    }
    assert_eq!(outputs(&mut b), vec![report(key(0, ERIN), Outcome::Declined)]);
}

#[test]
fn a_stage_that_ends_cancels_its_ringing_legs_only() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let erin = page(&mut b, key(0, ERIN), 2, t0);
    let listening = page(&mut b, key(0, FRANK), 1, t0);
    b.handle(
        Input::LegAnswered {
            leg: listening[0],
            usable_media: true,
        },
        t0,
    );
    outputs(&mut b);
    let next = page(&mut b, key(1, ERIN), 1, t0 + 300 * SECOND);
    // The escalation moved to stage 1: the rings of stage 0 are over.
    b.handle(Input::EndStage { request: REQ, stage: 1 }, t0 + 300 * SECOND);
    assert_eq!(
        outputs(&mut b),
        vec![Output::CancelLeg { leg: erin[0] }, Output::CancelLeg { leg: erin[1] }],
        "Frank, who answered, and stage 1's leg {next:?} go on"
    );
}

#[test]
fn the_end_of_a_request_ends_every_leg_but_the_accepting_one() {
    let t0 = Instant::now();
    let mut b = book(settings());
    let erin = page(&mut b, key(0, ERIN), 1, t0);
    let frank = page(&mut b, key(0, FRANK), 2, t0);
    let other = PageKey {
        request: RequestRef(43),
        stage: 0,
        person: ERIN,
    };
    page(&mut b, other, 1, t0);
    b.handle(
        Input::LegAnswered {
            leg: erin[0],
            usable_media: true,
        },
        t0,
    );
    b.handle(
        Input::LegAnswered {
            leg: frank[0],
            usable_media: true,
        },
        t0,
    );
    outputs(&mut b);
    b.handle(
        Input::EndRequest {
            request: REQ,
            keep: Some(key(0, FRANK)),
        },
        t0 + SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![Output::ByeLeg { leg: erin[0] }],
        "Frank's phones stay; request 43 is not touched"
    );
    b.handle(
        Input::EndRequest {
            request: REQ,
            keep: None,
        },
        t0 + SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::ByeLeg { leg: erin[0] },
            Output::ByeLeg { leg: frank[0] },
            Output::CancelLeg { leg: frank[1] }
        ],
        "exhausted: everything of the request ends (CANCEL while ringing, BYE once answered)"
    );
}

#[test]
fn a_drain_refuses_new_calls_and_hangs_up_what_is_left_after_the_drain_time() {
    let t0 = Instant::now();
    let mut b = book(settings());
    answered_call(&mut b, 1, t0);
    let legs = page(&mut b, key(0, ERIN), 2, t0);
    b.handle(
        Input::LegAnswered {
            leg: legs[0],
            usable_media: true,
        },
        t0,
    );
    outputs(&mut b);
    b.handle(Input::Drain { trunks_pending: false }, t0);
    assert!(b.is_draining());
    b.handle(Input::Incoming(invite(2)), t0 + SECOND);
    assert_eq!(outputs(&mut b), vec![reject(2, 503, RejectReason::Draining, Some(30))]);
    assert_eq!(b.poll_timeout(), Some(t0 + 30 * SECOND));
    b.handle_timeout(t0 + 29 * SECOND);
    assert!(outputs(&mut b).is_empty(), "calls may still end by themselves");
    b.handle_timeout(t0 + 30 * SECOND);
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::HangUp { call: CallId(1) },
            Output::ByeLeg { leg: legs[0] },
            Output::CancelLeg { leg: legs[1] }
        ]
    );
    assert_eq!(b.poll_timeout(), Some(t0 + 33 * SECOND), "then a grace for the BYEs");
    b.handle(Input::CallEnded { call: CallId(1) }, t0 + 31 * SECOND);
    b.handle(
        Input::LegEnded {
            leg: legs[0],
            reason: LegEnd::LocalHangup,
        },
        t0 + 31 * SECOND,
    );
    assert_eq!(
        outputs(&mut b),
        vec![
            Output::StopIvr { call: CallId(1) },
            Output::StopPageSession { leg: legs[0] }
        ]
    );
    // One leg never answers its CANCEL.
    b.handle_timeout(t0 + 33 * SECOND);
    assert_eq!(outputs(&mut b), vec![Output::Finished { forced: true }]);
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn a_drain_finishes_as_soon_as_calls_legs_and_trunks_are_done() {
    let t0 = Instant::now();
    let mut b = book(settings());
    answered_call(&mut b, 1, t0);
    b.handle(Input::Drain { trunks_pending: true }, t0);
    b.handle(Input::CallEnded { call: CallId(1) }, t0 + 2 * SECOND);
    assert_eq!(
        outputs(&mut b),
        vec![Output::StopIvr { call: CallId(1) }],
        "trunks still unregistering"
    );
    b.handle(Input::TrunksDone, t0 + 3 * SECOND);
    assert_eq!(outputs(&mut b), vec![Output::Finished { forced: false }]);
    assert_eq!(b.poll_timeout(), None);
    b.handle(Input::Drain { trunks_pending: false }, t0 + 4 * SECOND);
    assert!(outputs(&mut b).is_empty(), "a second SIGTERM changes nothing");
}

#[test]
fn an_idle_book_finishes_its_drain_at_once() {
    let t0 = Instant::now();
    let mut b = book(settings());
    b.handle(Input::Drain { trunks_pending: false }, t0);
    assert_eq!(outputs(&mut b), vec![Output::Finished { forced: false }]);
}

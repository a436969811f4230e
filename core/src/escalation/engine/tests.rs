//! Engine tests with a virtual clock: every path of an escalation, in microseconds.

use super::*;
use crate::escalation::policy::Step;
use crate::ids::{OrgId, PolicyId, ScheduleId};
use crate::person::NotificationRule;
use crate::schedule::{Layer, Rotation, ShiftLength};
use chrono::{NaiveDate, NaiveTime};

const REQ: RequestId = RequestId(42);
const ANN: PersonId = PersonId(1);
const BOB: PersonId = PersonId(2);
const CAT: PersonId = PersonId(3);
const MGR: PersonId = PersonId(9);
const T0: Timestamp = Timestamp(1_700_000_000_000);

fn min(m: i64) -> Timestamp {
    T0 + Millis::minutes(m)
}

fn call_only(p: PersonId) -> ContactPlan {
    ContactPlan { person: p, rules: vec![NotificationRule::new(Channel::Call, Millis(0))] }
}

fn policy(steps: Vec<Vec<Target>>, repeat: u32) -> EscalationPolicy {
    EscalationPolicy {
        id: PolicyId(1),
        org: OrgId(1),
        name: "p".into(),
        steps: steps.into_iter().map(|targets| Step { targets, wait: Millis::minutes(5) }).collect(),
        repeat,
        disabled: false,
    }
}

fn directory() -> Directory {
    Directory {
        schedules: vec![],
        people: vec![call_only(ANN), call_only(BOB), call_only(CAT), call_only(MGR)],
        managers: vec![MGR],
    }
}

fn two_step_engine(repeat: u32) -> Engine {
    Engine::new(REQ, policy(vec![vec![Target::Person(ANN)], vec![Target::Person(BOB)]], repeat), directory())
}

fn drain(e: &mut Engine) -> Vec<Command> {
    std::iter::from_fn(|| e.poll_command()).collect()
}

fn notify(stage: u32, person: PersonId, channel: Channel) -> Command {
    Command::Notify(NotificationKey { request: REQ, stage, person, channel })
}

fn key(stage: u32, person: PersonId) -> NotificationKey {
    NotificationKey { request: REQ, stage, person, channel: Channel::Call }
}

/// Drives the engine by its own timeouts up to `until`, collecting commands.
fn run_until(e: &mut Engine, until: Timestamp) -> Vec<(Timestamp, Command)> {
    let mut out = Vec::new();
    while let Some(t) = e.poll_timeout() {
        if t > until {
            break;
        }
        e.handle(Input::TimePassed, t);
        out.extend(drain(e).into_iter().map(|c| (t, c)));
    }
    out
}

#[test]
fn first_person_answers() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    assert_eq!(drain(&mut e), vec![notify(0, ANN, Channel::Call)]);
    assert_eq!(e.poll_timeout(), Some(min(5)));
    e.handle(Input::Delivered(key(0, ANN)), min(0) + Millis::seconds(1));
    e.handle(Input::Answered { person: ANN }, min(1));
    assert_eq!(drain(&mut e), vec![Command::CancelPending { request: REQ }]);
    assert_eq!(e.phase(), Phase::Answered { person: ANN, at: min(1) });
    assert_eq!(e.poll_timeout(), None);
    // Nothing more, ever.
    e.handle(Input::TimePassed, min(60));
    assert!(drain(&mut e).is_empty());
}

#[test]
fn first_declines_second_answers() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    // Ann declines after 30 s: no point waiting 5 minutes, Bob is paged at once.
    e.handle(Input::Declined { person: ANN }, T0 + Millis::seconds(30));
    assert_eq!(drain(&mut e), vec![notify(1, BOB, Channel::Call)]);
    assert!(matches!(e.phase(), Phase::Step { step: 1, round: 0, .. }));
    assert_eq!(e.poll_timeout(), Some(T0 + Millis::seconds(30) + Millis::minutes(5)));
    e.handle(Input::Answered { person: BOB }, min(2));
    assert_eq!(drain(&mut e), vec![Command::CancelPending { request: REQ }]);
    assert_eq!(e.phase(), Phase::Answered { person: BOB, at: min(2) });
}

#[test]
fn nobody_answers_repeats_then_managers_then_gives_up() {
    let mut e = two_step_engine(1);
    e.handle(Input::RequestCreated, T0);
    let mut all: Vec<_> = drain(&mut e).into_iter().map(|c| (T0, c)).collect();
    all.extend(run_until(&mut e, min(120)));
    assert_eq!(
        all,
        vec![
            (min(0), notify(0, ANN, Channel::Call)),
            (min(5), notify(1, BOB, Channel::Call)),
            (min(10), notify(2, ANN, Channel::Call)), // repeat pass
            (min(15), notify(3, BOB, Channel::Call)),
            (min(20), notify(4, MGR, Channel::Call)), // last resort
            (min(25), Command::Exhausted { request: REQ }),
        ]
    );
    assert_eq!(e.phase(), Phase::Exhausted { at: min(25) });
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn failures_skip_the_wait() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    e.handle(Input::Failed(key(0, ANN)), min(1));
    assert_eq!(drain(&mut e), vec![notify(1, BOB, Channel::Call)]);
    // A late report about stage 0 must not end stage 1.
    e.handle(Input::Failed(key(0, ANN)), min(2));
    assert!(drain(&mut e).is_empty());
    assert!(matches!(e.phase(), Phase::Step { step: 1, .. }));
}

#[test]
fn acknowledgement_mid_escalation_stops_it() {
    let mut e = two_step_engine(3);
    e.handle(Input::RequestCreated, T0);
    run_until(&mut e, min(7)); // Ann, then Bob at 5
    drain(&mut e);
    e.handle(Input::Acknowledged { by: Actor::Person(MGR) }, min(7));
    assert_eq!(drain(&mut e), vec![Command::CancelPending { request: REQ }]);
    assert_eq!(e.phase(), Phase::Acknowledged { by: Actor::Person(MGR), at: min(7) });
    assert!(run_until(&mut e, min(500)).is_empty());
}

#[test]
fn call_and_text_in_configured_order() {
    let mut dir = directory();
    dir.people[0].rules = vec![
        NotificationRule::new(Channel::Text, Millis(0)),
        NotificationRule::new(Channel::Call, Millis::minutes(1)),
    ];
    let mut e = Engine::new(REQ, policy(vec![vec![Target::Person(ANN)], vec![Target::Person(BOB)]], 0), dir);
    e.handle(Input::RequestCreated, T0);
    assert_eq!(drain(&mut e), vec![notify(0, ANN, Channel::Text)]);
    assert_eq!(e.poll_timeout(), Some(min(1)));
    // The text was delivered, but that is not an answer: the call still follows.
    e.handle(Input::Delivered(NotificationKey { request: REQ, stage: 0, person: ANN, channel: Channel::Text }), min(0));
    assert_eq!(run_until(&mut e, min(2)), vec![(min(1), notify(0, ANN, Channel::Call))]);
    e.handle(Input::Answered { person: ANN }, min(2));
    assert_eq!(drain(&mut e), vec![Command::CancelPending { request: REQ }]);
}

#[test]
fn schedule_targets_resolve_at_stage_start() {
    let sched = Schedule {
        id: ScheduleId(5),
        org: OrgId(1),
        name: "s".into(),
        time_zone: chrono_tz::UTC,
        layers: vec![Layer {
            name: "l".into(),
            rotation: Rotation {
                members: vec![CAT, BOB],
                shift_length: ShiftLength::Days(1),
                start_date: NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
                handoff_time: NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
            },
        }],
        overrides: vec![],
    };
    let who = schedule::on_call(&sched, T0).unwrap().person;
    let mut dir = directory();
    dir.schedules.push(sched);
    let mut e = Engine::new(REQ, policy(vec![vec![Target::Schedule(ScheduleId(5)), Target::Person(who)]], 0), dir);
    e.handle(Input::RequestCreated, T0);
    // Resolved once even though targeted twice.
    assert_eq!(drain(&mut e), vec![notify(0, who, Channel::Call)]);
}

#[test]
fn empty_stage_moves_on_and_no_managers_exhausts() {
    let mut dir = directory();
    dir.managers.clear();
    // Step 0 targets a schedule that doesn't exist: nobody, so step 1 starts immediately.
    let mut e = Engine::new(REQ, policy(vec![vec![Target::Schedule(ScheduleId(77))], vec![Target::Person(BOB)]], 0), dir);
    e.handle(Input::RequestCreated, T0);
    assert_eq!(drain(&mut e), vec![notify(1, BOB, Channel::Call)]);
    e.handle(Input::Failed(key(1, BOB)), min(1));
    assert_eq!(drain(&mut e), vec![Command::Exhausted { request: REQ }]);
}

#[test]
fn catches_up_after_sleeping() {
    // An instance that resumes the engine late replays the missed stages at their own times.
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    e.handle(Input::TimePassed, min(100));
    assert_eq!(
        drain(&mut e),
        vec![notify(1, BOB, Channel::Call), notify(2, MGR, Channel::Call), Command::Exhausted { request: REQ }]
    );
}

#[test]
fn state_survives_serialization() {
    let mut e = two_step_engine(1);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    let json = serde_json::to_string(&e).unwrap();
    let mut back: Engine = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
    back.handle(Input::TimePassed, min(5));
    e.handle(Input::TimePassed, min(5));
    assert_eq!(drain(&mut back), drain(&mut e));
}

#[test]
fn acknowledged_after_answered_has_no_second_cancel() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    e.handle(Input::Answered { person: ANN }, min(1));
    drain(&mut e);
    e.handle(Input::Acknowledged { by: Actor::Person(ANN) }, min(2));
    assert!(drain(&mut e).is_empty());
    assert_eq!(e.phase(), Phase::Acknowledged { by: Actor::Person(ANN), at: min(2) });
}

#[test]
fn escalate_now_moves_to_the_next_step_at_once() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    e.handle(Input::Delivered(key(0, ANN)), min(1));
    e.handle(Input::EscalateNow { person: ANN }, min(2));
    assert_eq!(drain(&mut e), vec![notify(1, BOB, Channel::Call)]);
    assert_eq!(e.poll_timeout(), Some(min(7)), "Bob's step gets its full wait");
}

#[test]
fn snooze_stops_the_step_and_pages_it_again_later() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    e.handle(Input::Snooze { person: ANN, until: min(15) }, min(1));
    assert_eq!(drain(&mut e), vec![Command::CancelPending { request: REQ }]);
    assert_eq!(e.poll_timeout(), Some(min(15)));
    assert!(!e.phase().is_finished());
    assert!(run_until(&mut e, min(14)).is_empty(), "nothing while snoozed");
    let again = run_until(&mut e, min(15));
    assert_eq!(again, vec![(min(15), notify(1, ANN, Channel::Call))], "Ann is paged again, as a new stage");
    assert_eq!(e.poll_timeout(), Some(min(20)));
    // Survives a restart while snoozed, and an acknowledgement ends it.
    e.handle(Input::Snooze { person: ANN, until: min(30) }, min(16));
    drain(&mut e);
    let mut e: Engine = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(e.poll_timeout(), Some(min(30)));
    e.handle(Input::Acknowledged { by: Actor::Person(ANN) }, min(20));
    assert!(e.phase().is_finished());
    assert_eq!(e.poll_timeout(), None);
}

// Buttons on a request (issue 18 item 6): page again, escalate, reassign.

#[test]
fn page_again_repeats_the_current_step_now_as_a_new_stage() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    e.handle(Input::Delivered(key(0, ANN)), min(1));
    e.handle(Input::PageAgain, min(2));
    // No CancelPending: the new stage number lets the caller end the old stage's rings.
    assert_eq!(drain(&mut e), vec![notify(1, ANN, Channel::Call)]);
    assert!(matches!(e.phase(), Phase::Step { step: 0, round: 0, stage: 1, started, .. } if started == min(2)));
    assert_eq!(e.poll_timeout(), Some(min(7)), "the step's full wait from now");
    // A late report about the old stage changes nothing.
    e.handle(Input::Failed(key(0, ANN)), min(3));
    assert!(drain(&mut e).is_empty());
    assert_eq!(run_until(&mut e, min(7)), vec![(min(7), notify(2, BOB, Channel::Call))], "then the policy goes on");
    // The managers' stage is paged again too.
    run_until(&mut e, min(12));
    assert!(matches!(e.phase(), Phase::LastResort { stage: 3, .. }));
    e.handle(Input::PageAgain, min(13));
    assert_eq!(drain(&mut e), vec![notify(4, MGR, Channel::Call)]);
    assert!(matches!(e.phase(), Phase::LastResort { stage: 4, .. }));
}

#[test]
fn page_again_restarts_an_exhausted_escalation_and_wakes_a_snoozed_one() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    run_until(&mut e, min(30));
    assert_eq!(e.phase(), Phase::Exhausted { at: min(15) });
    e.handle(Input::PageAgain, min(40));
    assert_eq!(drain(&mut e), vec![notify(3, ANN, Channel::Call)], "the first step of the first pass, new stage");
    assert!(matches!(e.phase(), Phase::Step { step: 0, round: 0, .. }) && !e.phase().is_finished());
    assert_eq!(
        run_until(&mut e, min(60)),
        vec![(min(45), notify(4, BOB, Channel::Call)), (min(50), notify(5, MGR, Channel::Call)), (min(55), Command::Exhausted { request: REQ })]
    );
    // Snoozed: the snoozed step starts now rather than at the snooze's end.
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    e.handle(Input::Snooze { person: ANN, until: min(15) }, min(1));
    drain(&mut e);
    e.handle(Input::PageAgain, min(2));
    assert_eq!(drain(&mut e), vec![notify(1, ANN, Channel::Call)]);
    assert_eq!(e.poll_timeout(), Some(min(7)));
}

#[test]
fn escalate_moves_on_and_ends_a_snooze_into_the_next_step() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    e.handle(Input::Escalate, min(1));
    assert_eq!(drain(&mut e), vec![notify(1, BOB, Channel::Call)]);
    e.handle(Input::Snooze { person: BOB, until: min(30) }, min(2));
    drain(&mut e);
    e.handle(Input::Escalate, min(3));
    assert_eq!(drain(&mut e), vec![notify(2, MGR, Channel::Call)], "after Bob's step: the managers");
    e.handle(Input::Escalate, min(4));
    assert_eq!(drain(&mut e), vec![Command::Exhausted { request: REQ }]);
    // Finished: nothing to escalate, nothing to page again once answered.
    e.handle(Input::Escalate, min(5));
    assert!(drain(&mut e).is_empty());
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    e.handle(Input::Answered { person: ANN }, min(1));
    drain(&mut e);
    for input in [Input::PageAgain, Input::Escalate, Input::Reassign { person: CAT }] {
        e.handle(input, min(2));
        assert!(drain(&mut e).is_empty(), "{input:?}");
    }
    assert_eq!(e.phase(), Phase::Answered { person: ANN, at: min(1) });
}

#[test]
fn reassign_pages_one_person_then_the_policy_goes_on_after_the_replaced_step() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    // Dan was not in the directory when the request began: learned with his plan.
    let dan = PersonId(4);
    e.learn(ContactPlan { person: dan, rules: vec![NotificationRule::new(Channel::Text, Millis(0)), NotificationRule::new(Channel::Call, Millis::minutes(1))] });
    e.handle(Input::Reassign { person: dan }, min(2));
    assert_eq!(drain(&mut e), vec![notify(1, dan, Channel::Text)]);
    assert_eq!(e.phase(), Phase::Reassigned { person: dan, stage: 1, started: min(2), deadline: min(7), after: Some((0, 0)) });
    assert_eq!(run_until(&mut e, min(3)), vec![(min(3), notify(1, dan, Channel::Call))]);
    // Ann's late answer of the replaced stage still takes it (she picked up a call in flight).
    let mut taken = e.clone();
    taken.handle(Input::Answered { person: ANN }, min(4));
    assert_eq!(drain(&mut taken), vec![Command::CancelPending { request: REQ }]);
    // Nobody answers Dan: the step after Ann's (Bob's) comes next, then the managers.
    assert_eq!(
        run_until(&mut e, min(20)),
        vec![(min(7), notify(2, BOB, Channel::Call)), (min(12), notify(3, MGR, Channel::Call)), (min(17), Command::Exhausted { request: REQ })]
    );
    // Reassigning an exhausted escalation pages the person, then it is exhausted again.
    e.handle(Input::Reassign { person: CAT }, min(30));
    assert_eq!(drain(&mut e), vec![notify(4, CAT, Channel::Call)]);
    assert!(matches!(e.phase(), Phase::Reassigned { person: CAT, after: None, .. }));
    e.handle(Input::Failed(key(4, CAT)), min(31));
    assert_eq!(drain(&mut e), vec![Command::Exhausted { request: REQ }], "nobody left: exhausted at once");
    assert_eq!(e.phase(), Phase::Exhausted { at: min(31) });
    // Someone without a contact plan: the stage ends at once and the policy goes on.
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    e.handle(Input::Reassign { person: PersonId(99) }, min(1));
    assert_eq!(drain(&mut e), vec![notify(2, BOB, Channel::Call)]);
}

#[test]
fn a_reassigned_stage_answers_pages_again_and_survives_serialization() {
    let mut e = two_step_engine(0);
    e.handle(Input::RequestCreated, T0);
    drain(&mut e);
    e.handle(Input::Reassign { person: CAT }, min(1));
    drain(&mut e);
    let mut e: Engine = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    e.handle(Input::PageAgain, min(2));
    assert_eq!(drain(&mut e), vec![notify(2, CAT, Channel::Call)], "Cat again, in a new stage");
    e.handle(Input::Escalate, min(3));
    assert_eq!(drain(&mut e), vec![notify(3, BOB, Channel::Call)], "escalating a reassignment: the step after the replaced one");
    e.handle(Input::Reassign { person: CAT }, min(4));
    e.handle(Input::Answered { person: CAT }, min(5));
    assert_eq!(drain(&mut e), vec![notify(4, CAT, Channel::Call), Command::CancelPending { request: REQ }]);
    assert_eq!(e.phase(), Phase::Answered { person: CAT, at: min(5) });
}

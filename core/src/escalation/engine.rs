//! The escalation engine: a sans-IO state machine paging people until someone answers.
//!
//! One `Engine` per request. The caller feeds it [`Input`]s with the current time
//! (`handle(input, now)`), drains [`Command`]s (`poll_command()`) and arranges to call
//! `handle(Input::TimePassed, t)` at `poll_timeout()`. It never reads a clock, sleeps or does
//! I/O, so a 30-minute escalation is tested in microseconds with a virtual clock, and the whole
//! value is `serde`-serializable so it can be persisted between instances (see
//! `store::escalation_work`).
//!
//! A *stage* is one run of one policy step (or the managers' last resort). Stages are numbered
//! from 0 and the number goes into every [`NotificationKey`], so replaying an engine after a
//! crash produces the same keys and the store's unique constraint keeps people from being
//! paged twice for the same stage.
//!
//! Rules:
//! - A stage starts by resolving its targets at that instant (schedules → who is on call) and
//!   expanding each person's notification rules into attempts due at `start + delay`.
//! - The stage ends when its wait is over, or early when every attempt failed or was declined
//!   (nobody left to wait for), or at once when it resolves to nobody.
//! - Attempts of an ended stage that were not yet sent are dropped; the next stage takes over.
//! - An answer or an acknowledgement ends the escalation and cancels pending notifications.
//! - After the last step of the last repeat the managers are notified; when their stage ends
//!   the request is exhausted.
//! - From the web (issue 18 item 6): [`Input::PageAgain`] runs the current stage again now (a new
//!   stage number, so everyone in it is paged again; an exhausted engine starts over from the first
//!   step), [`Input::Escalate`] moves on like [`Input::EscalateNow`], and [`Input::Reassign`] pages one
//!   person now in a stage of their own (the step's wait, or the managers' wait); when it ends
//!   unanswered the policy goes on with the step after the one it replaced (after the managers'
//!   stage, or on an exhausted engine: exhausted again). Answered and acknowledged engines ignore them.

use super::policy::{EscalationPolicy, Target};
use crate::ids::{PersonId, RequestId};
use crate::person::{Channel, ContactPlan};
use crate::request::Actor;
use crate::schedule::{self, Schedule};
use crate::timestamp::{Millis, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What the engine needs to know about the world, captured when the request starts. A
/// snapshot keeps the engine deterministic and serializable; schedule changes made while a
/// request escalates apply to the next request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// Schedules referenced by the policy.
    pub schedules: Vec<Schedule>,
    /// How each person wants to be notified.
    pub people: Vec<ContactPlan>,
    /// The last resort, in order.
    pub managers: Vec<PersonId>,
}

/// Identifies one notification; unique per request in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NotificationKey {
    pub request: RequestId,
    pub stage: u32,
    pub person: PersonId,
    pub channel: Channel,
}

/// Something that happened, reported to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Start escalating.
    RequestCreated,
    /// The notification reached the person's phone (the call rings, the text was delivered).
    Delivered(NotificationKey),
    /// The notification could not reach them (busy, no answer, carrier error).
    Failed(NotificationKey),
    /// The person picked up and took the request.
    Answered { person: PersonId },
    /// The person said no.
    Declined { person: PersonId },
    /// Someone (perhaps from the web admin) acknowledged the request.
    Acknowledged { by: Actor },
    /// A paged person asked to move on to the next step now (key 5, text `E`).
    EscalateNow { person: PersonId },
    /// A paged person asked to be paged again at `until` (key 7, text `S`): the current step's
    /// notifications stop and the same step starts over then.
    Snooze { person: PersonId, until: Timestamp },
    /// Someone on the web asked to page the current stage again now (a snoozed one starts now; an
    /// exhausted escalation starts over from the first step of the first pass).
    PageAgain,
    /// Someone on the web asked to move on to the next step now (also from a snooze).
    Escalate,
    /// Someone on the web asked to page `person` directly now, instead of the current stage. The
    /// person's contact plan must be in the directory ([`Engine::learn`]); without one the stage
    /// ends at once.
    Reassign { person: PersonId },
    /// Nothing happened but time passed; process whatever is due at `now`.
    TimePassed,
}

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Notify `key.person` by `key.channel`.
    Notify(NotificationKey),
    /// Stop every notification of this request still in flight (hang up ringing calls).
    CancelPending { request: RequestId },
    /// Nobody answered, not even the managers.
    Exhausted { request: RequestId },
}

/// Where the escalation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    NotStarted,
    /// Running policy step `step` in pass `round` (0-based).
    Step { step: usize, round: u32, stage: u32, started: Timestamp, deadline: Timestamp },
    /// Notifying the managers.
    LastResort { stage: u32, started: Timestamp, deadline: Timestamp },
    /// Someone snoozed the request: step `step` of pass `round` starts over at `until`.
    Snoozed { step: usize, round: u32, until: Timestamp },
    /// Paging `person` alone, reassigned from the web; when the stage ends the policy goes on after
    /// step `after` (`(step, round)`), or with exhaustion when `None` (it replaced the managers' stage
    /// or an exhausted escalation).
    Reassigned { person: PersonId, stage: u32, started: Timestamp, deadline: Timestamp, after: Option<(usize, u32)> },
    Answered { person: PersonId, at: Timestamp },
    Acknowledged { by: Actor, at: Timestamp },
    Exhausted { at: Timestamp },
}

impl Phase {
    /// True once the engine will never issue another command.
    pub fn is_finished(&self) -> bool {
        matches!(self, Phase::Answered { .. } | Phase::Acknowledged { .. } | Phase::Exhausted { .. })
    }

    fn running_stage(&self) -> Option<(u32, Timestamp)> {
        match *self {
            Phase::Step { stage, deadline, .. }
            | Phase::LastResort { stage, deadline, .. }
            | Phase::Reassigned { stage, deadline, .. } => Some((stage, deadline)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum AttemptState {
    Scheduled,
    Sent,
    Delivered,
    Failed,
    Declined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Attempt {
    person: PersonId,
    channel: Channel,
    due: Timestamp,
    state: AttemptState,
}

impl Attempt {
    /// Still a chance this attempt reaches someone who says yes.
    fn is_live(&self) -> bool {
        matches!(self.state, AttemptState::Scheduled | AttemptState::Sent | AttemptState::Delivered)
    }
}

/// Fallback wait for the managers' stage when the policy has no steps (validation prevents it).
const DEFAULT_LAST_RESORT_WAIT: Millis = Millis::minutes(5);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engine {
    request: RequestId,
    policy: EscalationPolicy,
    directory: Directory,
    phase: Phase,
    /// Attempts of the current stage only.
    attempts: Vec<Attempt>,
    next_stage: u32,
    commands: VecDeque<Command>,
}

impl Engine {
    pub fn new(request: RequestId, policy: EscalationPolicy, directory: Directory) -> Engine {
        Engine {
            request,
            policy,
            directory,
            phase: Phase::NotStarted,
            attempts: Vec::new(),
            next_stage: 0,
            commands: VecDeque::new(),
        }
    }

    pub fn request(&self) -> RequestId {
        self.request
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Adds (or refreshes) a person's contact plan in the directory snapshot, so a reassignment can
    /// page someone the request's directory did not have (added, or enabled, since it began).
    pub fn learn(&mut self, plan: ContactPlan) {
        match self.directory.people.iter_mut().find(|p| p.person == plan.person) {
            Some(p) => *p = plan,
            None => self.directory.people.push(plan),
        }
    }

    /// Feeds one input at time `now`. Inputs for stages that are over are ignored, so late
    /// delivery reports are harmless.
    pub fn handle(&mut self, input: Input, now: Timestamp) {
        // Let time catch up first, so an input is judged against the stage that is current at
        // `now` (a failure report for a stage that already ended must not end the next one).
        self.advance(now);
        match input {
            Input::RequestCreated => {
                if self.phase == Phase::NotStarted {
                    self.start_stage(0, 0, now);
                }
            }
            Input::Delivered(key) => self.set_attempt(key, AttemptState::Delivered),
            Input::Failed(key) => self.set_attempt(key, AttemptState::Failed),
            Input::Declined { person } => {
                if self.phase.running_stage().is_some() {
                    // A "no" covers every channel of this stage, sent or not.
                    for a in self.attempts.iter_mut().filter(|a| a.person == person) {
                        a.state = AttemptState::Declined;
                    }
                }
            }
            Input::Answered { person } => {
                if self.phase.running_stage().is_some() {
                    self.finish(Phase::Answered { person, at: now });
                }
            }
            Input::EscalateNow { .. } | Input::Escalate => match self.phase {
                // A snoozed step counts as the current one: the one after it starts now.
                Phase::Snoozed { step, round, .. } => self.after_step(step, round, now),
                _ => {
                    if let Some((_, deadline)) = self.phase.running_stage() {
                        self.next_stage(now.min(deadline));
                    }
                }
            },
            Input::PageAgain => match self.phase {
                Phase::NotStarted | Phase::Exhausted { .. } => self.start_stage(0, 0, now),
                Phase::Step { step, round, .. } | Phase::Snoozed { step, round, .. } => self.start_stage(step, round, now),
                Phase::LastResort { .. } => self.start_last_resort(now),
                Phase::Reassigned { person, after, .. } => self.start_reassigned(person, after, now),
                Phase::Answered { .. } | Phase::Acknowledged { .. } => {}
            },
            Input::Reassign { person } => {
                let after = match self.phase {
                    Phase::Step { step, round, .. } | Phase::Snoozed { step, round, .. } => Some((step, round)),
                    Phase::Reassigned { after, .. } => after,
                    Phase::LastResort { .. } | Phase::Exhausted { .. } => None,
                    // Not begun: the reassigned stage comes first, then the policy from its start.
                    Phase::NotStarted => match self.policy.steps.len() {
                        0 => None,
                        _ => Some((usize::MAX, 0)),
                    },
                    Phase::Answered { .. } | Phase::Acknowledged { .. } => return self.advance(now),
                };
                self.start_reassigned(person, after, now);
            }
            Input::Snooze { until, .. } => {
                let (step, round) = match self.phase {
                    Phase::Step { step, round, .. } => (step, round),
                    // Snoozing the managers' stage runs the last step's pass again, then the managers.
                    Phase::LastResort { .. } => (self.policy.steps.len().saturating_sub(1), self.policy.repeat),
                    _ => return self.advance(now),
                };
                self.attempts.clear();
                self.commands.push_back(Command::CancelPending { request: self.request });
                self.phase = Phase::Snoozed { step, round, until: until.max(now) };
            }
            Input::Acknowledged { by } => match self.phase {
                Phase::NotStarted
                | Phase::Step { .. }
                | Phase::LastResort { .. }
                | Phase::Snoozed { .. }
                | Phase::Reassigned { .. } => {
                    self.finish(Phase::Acknowledged { by, at: now })
                }
                // Answered then acknowledged: notifications were already cancelled.
                Phase::Answered { .. } => self.phase = Phase::Acknowledged { by, at: now },
                Phase::Acknowledged { .. } | Phase::Exhausted { .. } => {}
            },
            Input::TimePassed => {}
        }
        // The input may have ended the stage early (everyone declined) or made things due.
        self.advance(now);
    }

    /// The next command to carry out, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// True while commands are waiting to be drained (a persisted engine in this state is due
    /// at once: whoever resumes it must carry them out).
    pub fn has_pending_commands(&self) -> bool {
        !self.commands.is_empty()
    }

    /// When to call `handle(Input::TimePassed, t)` next; `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if let Phase::Snoozed { until, .. } = self.phase {
            return Some(until);
        }
        let (_, deadline) = self.phase.running_stage()?;
        let next_due = self
            .attempts
            .iter()
            .filter(|a| a.state == AttemptState::Scheduled)
            .map(|a| a.due)
            .min();
        Some(next_due.map_or(deadline, |d| d.min(deadline)))
    }

    fn set_attempt(&mut self, key: NotificationKey, state: AttemptState) {
        let Some((stage, _)) = self.phase.running_stage() else { return };
        if key.request != self.request || key.stage != stage {
            return;
        }
        if let Some(a) = self
            .attempts
            .iter_mut()
            .find(|a| a.person == key.person && a.channel == key.channel)
        {
            // Never resurrect a declined attempt with a late delivery report.
            if a.state != AttemptState::Declined {
                a.state = state;
            }
        }
    }

    fn finish(&mut self, phase: Phase) {
        let had_started = self.phase != Phase::NotStarted;
        self.phase = phase;
        self.attempts.clear();
        if had_started {
            self.commands.push_back(Command::CancelPending { request: self.request });
        }
    }

    /// Processes everything due at or before `now`, stage after stage if the engine was asleep
    /// (each stage starting at its predecessor's deadline, as if it had been awake).
    fn advance(&mut self, now: Timestamp) {
        // Bounded: each iteration either returns or starts a new stage, and there are at most
        // (steps × (repeat + 1) + 1) stages before exhaustion.
        loop {
            if let Phase::Snoozed { step, round, until } = self.phase {
                if until > now {
                    return;
                }
                self.start_stage(step, round, until);
            }
            let Some((stage, deadline)) = self.phase.running_stage() else { return };
            // Send what is due, in due order (the order of the person's rules breaks ties).
            let mut due: Vec<usize> = (0..self.attempts.len())
                .filter(|&i| self.attempts[i].state == AttemptState::Scheduled && self.attempts[i].due <= now.min(deadline))
                .collect();
            due.sort_by_key(|&i| (self.attempts[i].due, i));
            for i in due {
                let a = &mut self.attempts[i];
                a.state = AttemptState::Sent;
                self.commands.push_back(Command::Notify(NotificationKey {
                    request: self.request,
                    stage,
                    person: a.person,
                    channel: a.channel,
                }));
            }
            let nobody_left = !self.attempts.iter().any(Attempt::is_live);
            if nobody_left {
                // Don't wait for a deadline when there is nobody to wait for.
                self.next_stage(now.min(deadline));
            } else if deadline <= now {
                self.next_stage(deadline);
            } else {
                return;
            }
        }
    }

    /// Moves on from the current stage, which ended at `at`.
    fn next_stage(&mut self, at: Timestamp) {
        match self.phase {
            Phase::Step { step, round, .. } => self.after_step(step, round, at),
            Phase::LastResort { .. } | Phase::Reassigned { after: None, .. } => {
                self.phase = Phase::Exhausted { at };
                self.attempts.clear();
                self.commands.push_back(Command::Exhausted { request: self.request });
            }
            Phase::Reassigned { after: Some((step, round)), .. } => self.after_step(step, round, at),
            _ => {}
        }
    }

    /// Starts whatever follows step `step` of pass `round` at `at` (`usize::MAX`: nothing ran yet,
    /// the first step).
    fn after_step(&mut self, step: usize, round: u32, at: Timestamp) {
        let steps = self.policy.steps.len();
        if step == usize::MAX {
            self.start_stage(0, 0, at);
        } else if step + 1 < steps {
            self.start_stage(step + 1, round, at);
        } else if round < self.policy.repeat {
            self.start_stage(0, round + 1, at);
        } else {
            self.start_last_resort(at);
        }
    }

    /// Pages `person` alone from `at`, for the wait of the step they replace (the last step's for the
    /// managers' stage and exhausted escalations).
    fn start_reassigned(&mut self, person: PersonId, after: Option<(usize, u32)>, at: Timestamp) {
        let wait = after
            .and_then(|(step, _)| self.policy.steps.get(step))
            .or(self.policy.steps.first().filter(|_| after.is_some()))
            .or(self.policy.steps.last())
            .map_or(DEFAULT_LAST_RESORT_WAIT, |s| s.wait);
        let stage = self.take_stage_number();
        self.phase = Phase::Reassigned { person, stage, started: at, deadline: at + wait, after };
        self.attempts = expand(&[person], &self.directory, at);
    }

    fn start_stage(&mut self, step: usize, round: u32, at: Timestamp) {
        let Some(policy_step) = self.policy.steps.get(step) else {
            self.start_last_resort(at);
            return;
        };
        let people = resolve_targets(&policy_step.targets, &self.directory, at);
        let wait = policy_step.wait;
        let stage = self.take_stage_number();
        self.phase = Phase::Step { step, round, stage, started: at, deadline: at + wait };
        self.attempts = expand(&people, &self.directory, at);
    }

    fn start_last_resort(&mut self, at: Timestamp) {
        let wait = self.policy.steps.last().map_or(DEFAULT_LAST_RESORT_WAIT, |s| s.wait);
        let managers = self.directory.managers.clone();
        let stage = self.take_stage_number();
        self.phase = Phase::LastResort { stage, started: at, deadline: at + wait };
        self.attempts = expand(&managers, &self.directory, at);
    }

    fn take_stage_number(&mut self) -> u32 {
        let n = self.next_stage;
        self.next_stage = self.next_stage.saturating_add(1);
        n
    }
}

/// The distinct people a step's targets mean at `at`, in target order.
fn resolve_targets(targets: &[Target], directory: &Directory, at: Timestamp) -> Vec<PersonId> {
    let mut out: Vec<PersonId> = Vec::new();
    for target in targets {
        let person = match *target {
            Target::Person(p) => Some(p),
            Target::Schedule(id) => directory
                .schedules
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| schedule::on_call(s, at))
                .map(|oc| oc.person),
        };
        if let Some(p) = person {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// One attempt per (person, rule), due `delay` after the stage start. People without a
/// contact plan cannot be reached and are skipped.
fn expand(people: &[PersonId], directory: &Directory, at: Timestamp) -> Vec<Attempt> {
    let mut out = Vec::new();
    for &person in people {
        let Some(plan) = directory.people.iter().find(|p| p.person == person) else { continue };
        for rule in &plan.rules {
            if out.iter().any(|a: &Attempt| a.person == person && a.channel == rule.channel) {
                continue; // one notification per (stage, person, channel): the idempotency key
            }
            out.push(Attempt { person, channel: rule.channel, due: at + rule.delay, state: AttemptState::Scheduled });
        }
    }
    out
}

#[cfg(test)]
mod tests;

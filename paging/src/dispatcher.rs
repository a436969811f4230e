//! The paging dispatcher: every escalation this instance runs, and every decision between what
//! happened to a page (a call's or a text's outcome, a text reply, time passing) and what to do
//! next, as a sans-IO state machine over the domain's escalation [`Engine`].
//!
//! The thin task around it feeds [`Input`]s with the current time (`handle(input, now)`), drains
//! [`Order`]s (`poll_order()`) and carries them out against the store, the call side and the text
//! senders, feeding back what they return (an escalation begun, a person looked up, a lease lost),
//! and calls `handle_timeout(now)` at `poll_timeout()`. It never reads a clock, awaits or does I/O,
//! so a 30-minute escalation, a lease takeover or a deferral to Monday morning is tested in
//! microseconds.
//!
//! Decisions (the paging task's behaviour before the dispatcher, moved here unchanged):
//! - A request opened: a normal-urgency one while the organization is closed is deferred to the
//!   next opening ("deferred until …" in its log); anything else begins its escalation now, and so
//!   does a deferred one whose opening came, or one whose deferral could not be stored.
//! - The page cap (`[paging] max_pages_per_hour`, [`oncall_core::page_cap`], issue #15 item 4): a
//!   request beginning beyond it is logged (`page_cap`) and pages no phone number (no trunk call,
//!   no text); registered phones and SIP URIs still ring. One taken over stays capped when the
//!   instance that began it capped it (the wrapper reads that from its log).
//! - The engine's `Notify`: the notification is recorded (never twice per stage) and the person
//!   looked up; a call goes to every phone they registered with OnCall, or else to their first
//!   contact the dial plan and the cap allow; a text goes to the text senders with those contacts;
//!   a phone number the dial plan refuses is skipped with a `dial_plan` entry in the request's log.
//!   A disabled person, one with no such contact, or texts turned off fail the notification at
//!   once, and so does any failure to carry it out.
//! - An outcome: the notification's status is written; an acceptance marks the request answered
//!   and acknowledged by that person, a completion completes it; then the engine hears it (ringing
//!   and answered are deliveries, a 486 or no answer a failure, which moves on at once when
//!   nobody else is left in the stage).
//! - The engine's `CancelPending` ends the request's other calls (keeping the one of whoever
//!   accepted or snoozed); `Exhausted` marks the request exhausted, ends every call and releases
//!   the caller holding for a bridge; a new stage ends the previous stages' rings.
//! - After every change the escalation is saved under this instance's lease; a lost lease (another
//!   instance took over) drops it here. Every [`HEARTBEAT`] (the first at once) leases are renewed,
//!   orphaned escalations (and at start-up this instance's own) are claimed and resumed where they
//!   were saved, due deferred requests are claimed, and the buttons pressed on requests are taken.
//! - A button on a request (issue 18 item 6; taken from the store's queue on the heartbeat, or at
//!   once when the web wakes this process): "page again", "escalate now" and "reassign to <person>"
//!   reach the engine as [`EngineInput::PageAgain`], [`EngineInput::Escalate`] and
//!   [`EngineInput::Reassign`] (the person's current contact plan learned first). An escalation not
//!   running here is loaded from the store first (and runs here from then on); a request that never
//!   began paging (deferred after hours, or no policy then) begins now on "page again". An exhausted
//!   request paged again is reopened (exhausted → notifying). What cannot be done (escalating an
//!   exhausted or never-begun request, anything on an answered one) is said in the request's log.
//!
//! Differences from the inline task it replaces, all harmless: a notification that fails while
//! being carried out (a store error, an unresolvable contact) reaches the engine as the next input
//! rather than before the engine's next command, so a stage's other notifications are ordered
//! first; and a heartbeat's `ClaimDueDeferred` comes before the orders of the escalations its
//! `ClaimOrphans` took over.
//!
//! It deliberately does not know SIP (no URIs, peers, trunks, credentials or DNS: a page names the
//! person's [`Contact`] or an opaque [`DeviceRef`], which the calls side dials), the store (it orders
//! reads and writes and is told their results), the caller's recorded message and how it is read
//! out, text bodies and gateways, or which policy a request runs under (the wrapper chooses it when
//! it begins the escalation).

use oncall_core::business_hours::when_to_page;
use oncall_core::dial_plan::DialPlan;
use oncall_core::escalation::{Command, Engine, Input as EngineInput, NotificationKey, Phase};
use oncall_core::page_cap::{CapVerdict, PageCap};
use oncall_core::text_reply::ReplyAction;
use oncall_core::{Actor, BusinessHours, Channel, Contact, ContactPlan, Millis, PageWhen, PersonId, RequestId, Timestamp, Urgency};
use std::collections::{BTreeMap, VecDeque};

/// How long an escalation stays ours without a heartbeat: after a crash, another instance (or
/// this one restarted) carries it on after at most this long.
pub const LEASE: Millis = Millis(30_000);
/// How often leases are renewed and orphaned escalations and due deferred requests looked for.
pub const HEARTBEAT: Millis = Millis(10_000);

/// The caller's call while they hold for a bridge to the employee (the calls side's handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallerRef(pub u64);

/// A phone the person registered with OnCall (the calls side's handle to its contact and source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceRef(pub u64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// This instance's id: the owner of the leases it holds, written into the requests' logs.
    pub owner: String,
    /// How long a snooze (key 7, text `S`) lasts (`[paging] snooze_secs`).
    pub snooze: Millis,
    /// Whether text notifications can be sent (`[texts] enabled`).
    pub texts: bool,
    /// Requests that may page phone numbers per hour (`[paging] max_pages_per_hour`, 0: no cap).
    pub max_pages_per_hour: u32,
    /// The numbers that may be called or texted (the store's, checked again at dial time: a
    /// contact saved before a rule, or written to the database by hand, may break it).
    pub dial_plan: DialPlan,
}

/// What became of one notification: the calls side's report (for a text, `Ringing` is "delivered").
/// One type for both sides, owned by the calls crate whose legs produce it.
pub use oncall_calls::book::Outcome;

/// The status a notification's row gets (the store's `notifications.status` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationStatus {
    Delivered,
    Ringing,
    Answered,
    Accepted,
    Declined,
    Completed,
    Escalated,
    Snoozed,
    Failed,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Delivered => "delivered",
            NotificationStatus::Ringing => "ringing",
            NotificationStatus::Answered => "answered",
            NotificationStatus::Accepted => "accepted",
            NotificationStatus::Declined => "declined",
            NotificationStatus::Completed => "completed",
            NotificationStatus::Escalated => "escalated",
            NotificationStatus::Snoozed => "snoozed",
            NotificationStatus::Failed => "failed",
        }
    }
}

/// How a page reaches the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageBy {
    /// A phone they registered with OnCall.
    Device(DeviceRef),
    /// Their first contact: a SIP URI called directly, or a number through the first trunk.
    Contact(Contact),
}

/// The kind of a request log entry the dispatcher writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Which policy a bridge call pages with.
    Policy,
    /// Which instance runs the escalation.
    Instance,
    /// The request came beyond `[paging] max_pages_per_hour`.
    PageCap,
    /// A phone number the dial plan refuses was skipped.
    DialPlan,
    /// A button pressed on the request could not be carried out (the store's `event_kind::ACTION`).
    Action,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Policy => "policy",
            EventKind::Instance => "instance",
            EventKind::PageCap => "page_cap",
            EventKind::DialPlan => "dial_plan",
            EventKind::Action => "action",
        }
    }
}

/// A button pressed on a request (the store's `RequestAction`, a reassignment with the person's
/// contact plan as it is now).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    PageAgain,
    Escalate,
    Reassign(ContactPlan),
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::PageAgain => "page again",
            Action::Escalate => "escalate now",
            Action::Reassign(_) => "reassign",
        }
    }
}

/// Something that happened, reported to the dispatcher.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The call log opened a "page on-call" request. `normal` when its call chose a normal-urgency
    /// option (a `page_when_open` recording); `hours` the organization's business hours (`None`
    /// when it has none, or they cannot be read: it pages now rather than lose the request).
    RequestOpened {
        request: RequestId,
        caller_call: Option<CallerRef>,
        normal: bool,
        hours: Option<BusinessHours>,
    },
    /// [`Order::Defer`] could not be written: page now.
    DeferFailed {
        request: RequestId,
        caller_call: Option<CallerRef>,
    },
    /// Deferred requests whose opening came, claimed by [`Order::ClaimDueDeferred`].
    DeferredDue { requests: Vec<RequestId> },
    /// [`Order::Begin`] began the escalation (the engine has started), with the policy choice to
    /// write into the request's log when it is worth saying (a bridge call's schedule).
    EscalationBegun {
        engine: Box<Engine>,
        caller_call: Option<CallerRef>,
        policy_note: Option<String>,
    },
    /// An escalation claimed by [`Order::ClaimOrphans`]: its owner's lease had expired. `capped`
    /// when its request's log has a `page_cap` entry (the instance that began it capped it).
    TakenOver { engine: Box<Engine>, capped: bool },
    /// [`Order::Notify`] recorded the notification and looked the person up.
    PersonFound {
        key: NotificationKey,
        disabled: bool,
        devices: Vec<DeviceRef>,
        contacts: Vec<Contact>,
    },
    /// A notification could not be carried out (store error, unresolvable contact, no trunk, the
    /// text gateway refused it), with why.
    NotifyFailed { key: NotificationKey, reason: String },
    /// What became of a notification (from the calls side or the text senders).
    Outcome { key: NotificationKey, outcome: Outcome },
    /// A person replied to a text (the store was already changed by the reply handler).
    TextReply {
        request: RequestId,
        person: PersonId,
        action: ReplyAction,
    },
    /// [`Order::Save`] found another instance holding the lease: it took the escalation over.
    LeaseLost { request: RequestId },
    /// The web queued an action in this process: take the queue now rather than at the heartbeat.
    ActionsQueued,
    /// An action taken by [`Order::TakeActions`] (its request still open and not answered), asked by `by`.
    Action {
        request: RequestId,
        action: Action,
        by: Actor,
    },
    /// [`Order::LoadForAction`]'s result: the saved escalation (`None`: the request never began
    /// paging), `capped` as for [`Input::TakenOver`].
    LoadedForAction {
        request: RequestId,
        engine: Option<Box<Engine>>,
        capped: bool,
        action: Action,
        by: Actor,
    },
}

/// Something the wrapper must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// Defer the request to `at` in the store with this log detail; feed `DeferFailed` on error.
    Defer {
        request: RequestId,
        at: Timestamp,
        detail: String,
        caller_call: Option<CallerRef>,
    },
    /// Choose the request's policy, load its message and begin its escalation in the store; feed
    /// `EscalationBegun` (nothing when it cannot start: no enabled policy, store error).
    Begin {
        request: RequestId,
        caller_call: Option<CallerRef>,
    },
    /// Record the notification (the store's unique key: not when already recorded for this stage)
    /// and look the person up; feed `PersonFound` when recorded, `NotifyFailed` on error.
    Notify { key: NotificationKey },
    /// Page the person by call.
    Page {
        key: NotificationKey,
        by: PageBy,
        caller_call: Option<CallerRef>,
    },
    /// Send the text notification to the person's `contacts` (those the dial plan and the page
    /// cap allow); its outcome comes back as `Outcome` (`Ringing` = delivered).
    SendText {
        key: NotificationKey,
        contacts: Vec<Contact>,
    },
    /// End every call of `request` (CANCEL ringing, BYE answered) except those of `keep`.
    EndCalls {
        request: RequestId,
        keep: Option<NotificationKey>,
    },
    /// CANCEL the calls of `request` still ringing from stages before `stage`.
    EndStage { request: RequestId, stage: u32 },
    /// Tell the caller holding for a bridge that nobody is available.
    ReleaseCaller { caller: CallerRef },
    /// The notification failed (`reason` is for the log): write its status `failed`.
    Fail { key: NotificationKey, reason: String },
    /// Write a notification's status.
    SetStatus {
        key: NotificationKey,
        status: NotificationStatus,
    },
    /// notifying → answered, by `person` (may fail harmlessly: the acknowledgement follows).
    MarkAnswered { request: RequestId, person: PersonId },
    /// The request is acknowledged by `person`.
    Acknowledge { request: RequestId, person: PersonId },
    /// The request is completed by `person`.
    Complete { request: RequestId, person: PersonId },
    /// Nobody took the request.
    MarkExhausted { request: RequestId },
    /// Append to the request's log.
    WriteEvent {
        request: RequestId,
        kind: EventKind,
        detail: String,
    },
    /// Save the escalation under this instance's lease ([`LEASE`]); feed `LeaseLost` when another
    /// instance holds it.
    Save { engine: Box<Engine> },
    /// Renew the leases of every escalation this instance holds.
    RenewLeases,
    /// Claim orphaned escalations (and, at start-up, this instance's own); feed `TakenOver` for each.
    ClaimOrphans { include_own: bool },
    /// Claim the deferred requests due now; feed `DeferredDue`.
    ClaimDueDeferred,
    /// Take the pending request actions this instance may carry out; feed `Action` for each.
    TakeActions,
    /// Load the saved escalation of `request` (not running here) for `action`, keeping what its pages
    /// read out; feed `LoadedForAction`.
    LoadForAction {
        request: RequestId,
        action: Action,
        by: Actor,
    },
    /// exhausted → notifying: the request is paged again.
    Reopen { request: RequestId },
    /// The escalation is over here (finished, or another instance has it): drop what is kept for
    /// it (its caller's name, its message).
    Forget { request: RequestId },
}

/// One escalation this instance runs.
#[derive(Debug)]
struct Active {
    engine: Engine,
    caller_call: Option<CallerRef>,
    /// The stage the calls side last heard about, to end the rings of stages that ended.
    stage: Option<u32>,
    /// The notification whose employee accepted (or snoozed): its call stays up when the others end.
    accepted: Option<NotificationKey>,
    /// Phone numbers may be paged (false: the request came beyond `[paging] max_pages_per_hour`).
    trunk: bool,
}

pub struct Dispatcher {
    settings: Settings,
    // A BTreeMap: requests due at the same instant are driven in id order (deterministic runs).
    active: BTreeMap<RequestId, Active>,
    next_heartbeat: Timestamp,
    /// The first heartbeat also takes back what this instance held before a restart.
    restarting: bool,
    /// The requests that began paging in the last hour, for `max_pages_per_hour`.
    page_cap: PageCap,
    orders: VecDeque<Order>,
}

impl Dispatcher {
    /// The page cap for requests beginning from now on (the organization's own, which the operator may change).
    pub fn set_max_pages_per_hour(&mut self, max: u32) {
        self.settings.max_pages_per_hour = max;
    }

    /// A dispatcher starting at `now`: its first heartbeat is due at once.
    pub fn new(settings: Settings, now: Timestamp) -> Dispatcher {
        Dispatcher {
            settings,
            active: BTreeMap::new(),
            next_heartbeat: now,
            restarting: true,
            page_cap: PageCap::default(),
            orders: VecDeque::new(),
        }
    }

    /// Whether this instance runs the escalation of `request`.
    pub fn is_running(&self, request: RequestId) -> bool {
        self.active.contains_key(&request)
    }

    /// Whether this instance runs no escalation at all.
    pub fn is_idle(&self) -> bool {
        self.active.is_empty()
    }

    /// The escalation of `request`, while this instance runs it.
    pub fn engine(&self, request: RequestId) -> Option<&Engine> {
        self.active.get(&request).map(|a| &a.engine)
    }

    /// Feeds one input at time `now`.
    pub fn handle(&mut self, input: Input, now: Timestamp) {
        match input {
            Input::RequestOpened {
                request,
                caller_call,
                normal,
                hours,
            } => {
                if self.active.contains_key(&request) {
                    return;
                }
                if normal {
                    if let (PageWhen::At(at), Some(hours)) =
                        (when_to_page(Urgency::Normal, hours.as_ref(), now), &hours)
                    {
                        let detail = format!(
                            "deferred until {} {} (normal urgency, after business hours)",
                            hours.local(at).format("%Y-%m-%d %H:%M"),
                            hours.time_zone
                        );
                        return self.orders.push_back(Order::Defer {
                            request,
                            at,
                            detail,
                            caller_call,
                        });
                    }
                }
                self.orders.push_back(Order::Begin { request, caller_call });
            }
            Input::DeferFailed { request, caller_call } => {
                if !self.active.contains_key(&request) {
                    self.orders.push_back(Order::Begin { request, caller_call });
                }
            }
            Input::DeferredDue { requests } => {
                for request in requests {
                    if !self.active.contains_key(&request) {
                        // Its caller is long gone: nobody holds for a bridge.
                        self.orders.push_back(Order::Begin {
                            request,
                            caller_call: None,
                        });
                    }
                }
            }
            Input::EscalationBegun {
                engine,
                caller_call,
                policy_note,
            } => {
                let request = engine.request();
                if let Some(detail) = policy_note {
                    self.orders.push_back(Order::WriteEvent {
                        request,
                        kind: EventKind::Policy,
                        detail,
                    });
                }
                self.log_instance(request, "escalation run by instance");
                let trunk = self.admit(request, now);
                self.drive(
                    Active {
                        engine: *engine,
                        caller_call,
                        stage: None,
                        accepted: None,
                        trunk,
                    },
                    now,
                );
            }
            Input::TakenOver { engine, capped } => {
                let request = engine.request();
                if self.active.contains_key(&request) {
                    return;
                }
                self.log_instance(request, "escalation taken over by instance");
                let mut engine = *engine;
                // Whatever fell due while nobody ran it happens now, as if it had been awake.
                engine.handle(EngineInput::TimePassed, now);
                self.drive(
                    Active {
                        engine,
                        caller_call: None,
                        stage: None,
                        accepted: None,
                        // Not counted again: it was counted (or capped) where it began.
                        trunk: !capped,
                    },
                    now,
                );
            }
            Input::PersonFound {
                key,
                disabled,
                devices,
                contacts,
            } => self.on_person(key, disabled, devices, contacts, now),
            Input::NotifyFailed { key, reason } => self.fail(key, reason, now),
            Input::Outcome { key, outcome } => self.on_outcome(key, outcome, now),
            Input::TextReply {
                request,
                person,
                action,
            } => {
                let Some(mut a) = self.active.remove(&request) else {
                    return;
                };
                let input = match action {
                    ReplyAction::Acknowledge => EngineInput::Acknowledged {
                        by: oncall_core::Actor::Person(person),
                    },
                    // Completed in the store; the engine only needs to notice it is over.
                    ReplyAction::Complete => EngineInput::Acknowledged {
                        by: oncall_core::Actor::Person(person),
                    },
                    ReplyAction::EscalateNow => EngineInput::EscalateNow { person },
                    ReplyAction::Snooze => EngineInput::Snooze {
                        person,
                        until: now + self.settings.snooze,
                    },
                };
                a.engine.handle(input, now);
                self.drive(a, now);
            }
            Input::LeaseLost { request } => {
                if self.active.remove(&request).is_some() {
                    self.orders.push_back(Order::Forget { request });
                }
            }
            Input::ActionsQueued => self.orders.push_back(Order::TakeActions),
            Input::Action { request, action, by } => match self.active.remove(&request) {
                Some(a) => self.act(a, action, by, false, now),
                None => self.orders.push_back(Order::LoadForAction { request, action, by }),
            },
            Input::LoadedForAction {
                request,
                engine,
                capped,
                action,
                by,
            } => {
                if let Some(a) = self.active.remove(&request) {
                    // Begun or taken over here meanwhile: the running one is the one to act on.
                    return self.act(a, action, by, false, now);
                }
                let Some(mut engine) = engine.map(|e| *e) else {
                    return match action {
                        Action::PageAgain => self.orders.push_back(Order::Begin {
                            request,
                            caller_call: None,
                        }),
                        _ => self.refuse(request, &action, "the request is not paging yet (page it again first)"),
                    };
                };
                if engine.phase().is_finished() && !matches!(engine.phase(), Phase::Exhausted { .. }) {
                    return self.refuse(request, &action, "the request was already answered");
                }
                engine.handle(EngineInput::TimePassed, now);
                let a = Active {
                    engine,
                    caller_call: None,
                    stage: None,
                    accepted: None,
                    trunk: !capped,
                };
                self.act(a, action, by, true, now);
            }
        }
    }

    /// Carries out a button pressed on the request of `a` (see the module's notes); `loaded` when its
    /// escalation was loaded from the store for it (it runs here from now on).
    fn act(&mut self, mut a: Active, action: Action, by: Actor, loaded: bool, now: Timestamp) {
        let request = a.engine.request();
        let phase = a.engine.phase();
        let refusal = match (&action, phase) {
            (_, Phase::Answered { .. } | Phase::Acknowledged { .. }) => Some("the request was already answered"),
            (Action::Escalate, Phase::Exhausted { .. }) => Some("every step was paged already (page it again to start over)"),
            (Action::Escalate, Phase::NotStarted) => Some("the request is not paging yet"),
            _ => None,
        };
        if let Some(why) = refusal {
            self.refuse(request, &action, why);
            // Kept while it may still page; a finished one loaded for this is dropped unchanged.
            if !phase.is_finished() {
                self.active.insert(request, a);
            }
            return;
        }
        tracing::debug!(%request, action = action.name(), %by, "request action");
        if loaded {
            self.log_instance(request, "escalation run by instance");
        }
        let input = match action {
            Action::PageAgain => EngineInput::PageAgain,
            Action::Escalate => EngineInput::Escalate,
            Action::Reassign(plan) => {
                let person = plan.person;
                a.engine.learn(plan);
                EngineInput::Reassign { person }
            }
        };
        a.engine.handle(input, now);
        if matches!(phase, Phase::Exhausted { .. }) && !a.engine.phase().is_finished() {
            self.orders.push_back(Order::Reopen { request });
        }
        self.drive(a, now);
    }

    fn refuse(&mut self, request: RequestId, action: &Action, why: &str) {
        self.orders.push_back(Order::WriteEvent {
            request,
            kind: EventKind::Action,
            detail: format!("{} not done: {why}", action.name()),
        });
    }

    /// The next order to carry out, in order.
    pub fn poll_order(&mut self) -> Option<Order> {
        self.orders.pop_front()
    }

    /// When to call `handle_timeout` next: the next heartbeat or the soonest escalation timer.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let engines = self.active.values().filter_map(|a| a.engine.poll_timeout()).min();
        Some(engines.map_or(self.next_heartbeat, |t| t.min(self.next_heartbeat)))
    }

    /// Does what is due at `now`: the heartbeat, then the escalations whose timer came.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if now >= self.next_heartbeat {
            self.orders.push_back(Order::RenewLeases);
            self.orders.push_back(Order::ClaimOrphans {
                include_own: self.restarting,
            });
            self.orders.push_back(Order::ClaimDueDeferred);
            self.orders.push_back(Order::TakeActions);
            self.restarting = false;
            // A late beat delays the next one (rather than bunching them up).
            self.next_heartbeat = now + HEARTBEAT;
        }
        let due: Vec<RequestId> = self
            .active
            .iter()
            .filter(|(_, a)| a.engine.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for request in due {
            if let Some(mut a) = self.active.remove(&request) {
                a.engine.handle(EngineInput::TimePassed, now);
                self.drive(a, now);
            }
        }
    }

    /// Counts a request beginning to page against the cap; false (logged in the request) when it is
    /// beyond it and must not page phone numbers.
    fn admit(&mut self, request: RequestId, now: Timestamp) -> bool {
        let CapVerdict::Capped { max } = self.page_cap.admit(self.settings.max_pages_per_hour, now) else {
            return true;
        };
        let detail = format!(
            "{max} requests already paged in the last hour ([paging] max_pages_per_hour): no trunk calls or texts for this request; registered phones and SIP URIs are still paged"
        );
        self.orders.push_back(Order::WriteEvent {
            request,
            kind: EventKind::PageCap,
            detail,
        });
        false
    }

    /// The contacts a notification may use: phone numbers only when the request may page them and
    /// the dial plan allows them (each refusal is logged in the request); SIP URIs always.
    fn dialable(&mut self, key: NotificationKey, trunk: bool, contacts: Vec<Contact>) -> Vec<Contact> {
        let mut kept = Vec::with_capacity(contacts.len());
        for c in contacts {
            let Contact::Phone(number) = &c else {
                kept.push(c);
                continue;
            };
            match self.settings.dial_plan.check(number) {
                // The page cap was logged once for the whole request.
                Ok(()) if !trunk => {}
                Ok(()) => kept.push(c),
                Err(refusal) => {
                    let verb = if key.channel == Channel::Text {
                        "texted"
                    } else {
                        "called"
                    };
                    let detail = format!("{number} ({}) not {verb}: {refusal}", key.person);
                    self.orders.push_back(Order::WriteEvent {
                        request: key.request,
                        kind: EventKind::DialPlan,
                        detail,
                    });
                }
            }
        }
        kept
    }

    fn log_instance(&mut self, request: RequestId, what: &str) {
        let detail = format!("{what} {}", self.settings.owner);
        self.orders.push_back(Order::WriteEvent {
            request,
            kind: EventKind::Instance,
            detail,
        });
    }

    /// Carries out the engine's commands, tells the calls side about a stage change, saves the
    /// engine, and keeps it while it may still issue commands.
    fn drive(&mut self, mut a: Active, now: Timestamp) {
        let request = a.engine.request();
        while let Some(cmd) = a.engine.poll_command() {
            match cmd {
                Command::Notify(key) => {
                    if key.channel == Channel::Text && !self.settings.texts {
                        // Failed at once, before recording.
                        self.orders.push_back(Order::Fail {
                            key,
                            reason: "texts are off ([texts] enabled = false)".into(),
                        });
                        a.engine.handle(EngineInput::Failed(key), now);
                    } else {
                        self.orders.push_back(Order::Notify { key });
                    }
                }
                Command::CancelPending { request } => {
                    self.orders.push_back(Order::EndCalls {
                        request,
                        keep: a.accepted,
                    });
                }
                Command::Exhausted { request } => {
                    self.orders.push_back(Order::MarkExhausted { request });
                    self.orders.push_back(Order::EndCalls { request, keep: None });
                    if let Some(caller) = a.caller_call {
                        self.orders.push_back(Order::ReleaseCaller { caller });
                    }
                }
            }
        }
        let stage = match a.engine.phase() {
            Phase::Step { stage, .. } | Phase::LastResort { stage, .. } | Phase::Reassigned { stage, .. } => Some(stage),
            _ => None,
        };
        if let (Some(old), Some(new)) = (a.stage, stage) {
            if new != old {
                self.orders.push_back(Order::EndStage { request, stage: new });
            }
        }
        a.stage = stage.or(a.stage);
        self.orders.push_back(Order::Save {
            engine: Box::new(a.engine.clone()),
        });
        if a.engine.phase().is_finished() {
            self.orders.push_back(Order::Forget { request });
        } else {
            self.active.insert(request, a);
        }
    }

    fn on_person(
        &mut self,
        key: NotificationKey,
        disabled: bool,
        devices: Vec<DeviceRef>,
        contacts: Vec<Contact>,
        now: Timestamp,
    ) {
        let Some((caller_call, trunk)) = self.active.get(&key.request).map(|a| (a.caller_call, a.trunk)) else {
            return;
        };
        if disabled {
            return self.fail(key, "person is disabled".into(), now);
        }
        match key.channel {
            Channel::Text => {
                let contacts = self.dialable(key, trunk, contacts);
                self.orders.push_back(Order::SendText { key, contacts });
            }
            Channel::Call if !devices.is_empty() => {
                // Phones the person registered with OnCall ring together; the first to answer takes it.
                for device in devices {
                    self.orders.push_back(Order::Page {
                        key,
                        by: PageBy::Device(device),
                        caller_call,
                    });
                }
            }
            Channel::Call => match self.dialable(key, trunk, contacts).into_iter().next() {
                Some(contact) => self.orders.push_back(Order::Page {
                    key,
                    by: PageBy::Contact(contact),
                    caller_call,
                }),
                None => {
                    let reason =
                        "no phone number, SIP URI or registered phone (that the dial plan and the page cap allow)";
                    self.fail(key, reason.into(), now)
                }
            },
        }
    }

    /// A notification that could not be carried out: marked failed, and the engine told.
    fn fail(&mut self, key: NotificationKey, reason: String, now: Timestamp) {
        self.orders.push_back(Order::Fail { key, reason });
        let Some(mut a) = self.active.remove(&key.request) else {
            return;
        };
        a.engine.handle(EngineInput::Failed(key), now);
        self.drive(a, now);
    }

    fn on_outcome(&mut self, key: NotificationKey, outcome: Outcome, now: Timestamp) {
        let (request, person) = (key.request, key.person);
        let status = match &outcome {
            Outcome::Ringing if key.channel == Channel::Text => NotificationStatus::Delivered,
            Outcome::Ringing => NotificationStatus::Ringing,
            Outcome::Answered => NotificationStatus::Answered,
            Outcome::Accepted => NotificationStatus::Accepted,
            Outcome::Declined => NotificationStatus::Declined,
            Outcome::Completed => NotificationStatus::Completed,
            Outcome::EscalateNow => NotificationStatus::Escalated,
            Outcome::Snooze => NotificationStatus::Snoozed,
            Outcome::Failed(_) => NotificationStatus::Failed,
        };
        self.orders.push_back(Order::SetStatus { key, status });
        // Store transitions first: they hold even when the escalation has already finished.
        match &outcome {
            Outcome::Accepted => {
                // notifying → answered → acknowledged. From exhausted only the acknowledgement applies.
                self.orders.push_back(Order::MarkAnswered { request, person });
                self.orders.push_back(Order::Acknowledge { request, person });
            }
            Outcome::Completed => self.orders.push_back(Order::Complete { request, person }),
            _ => {}
        }
        let Some(mut a) = self.active.remove(&request) else {
            return;
        };
        let input = match outcome {
            Outcome::Ringing | Outcome::Answered => EngineInput::Delivered(key),
            Outcome::Accepted => {
                a.accepted = Some(key);
                EngineInput::Answered { person }
            }
            Outcome::Declined => EngineInput::Declined { person },
            Outcome::Failed(_) => EngineInput::Failed(key),
            Outcome::Completed => EngineInput::TimePassed,
            Outcome::EscalateNow => EngineInput::EscalateNow { person },
            Outcome::Snooze => {
                // The snoozing employee's own call stays up to hear "snoozed".
                a.accepted = Some(key);
                EngineInput::Snooze {
                    person,
                    until: now + self.settings.snooze,
                }
            }
        };
        a.engine.handle(input, now);
        self.drive(a, now);
    }
}

#[cfg(test)]
mod tests;

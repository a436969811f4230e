//! Paging (issue 6): phoning whoever is on call for a request a caller opened with "page on-call".
//!
//! The thin tokio task around the paging [`Dispatcher`] (`dispatcher.rs`, which makes every
//! decision: deferral, the page cap, who is paged how, the dial plan, outcomes, stage changes,
//! leases, heartbeats). It feeds the dispatcher [`Input`]s — from the calls side's
//! [`PagingEvent`]s and from the results of carrying out its orders — calls `handle_timeout` at
//! `poll_timeout()`, and carries out every [`Order`] against the store, the call controller
//! ([`ControllerCommand`], routes from the [`Dialer`]) and the text senders (`texts.rs`).
//!
//! What it keeps beside the dispatcher: the caller (as read out) and the message of every request
//! it runs, what the dispatcher's opaque handles stand for ([`CallerRef`] is the user agent's
//! [`CallRef`] number; a [`DeviceRef`] a [`RegisteredPhone`] looked up for one notification), and
//! the people looked up for notifications. It chooses a request's policy
//! (`redirect::choose_policy`) and loads its message when it begins the escalation.
//!
//! The behaviour, for the record (decided in the dispatcher):
//! - A caller still holding (`caller_call`) is bridged to the employee who presses 1 (see
//!   `hold_room.rs`); when the escalation is exhausted a holding caller is told nobody is available.
//! - Texts: `texts.rs` sends them (SMS gateway or SIP MESSAGE); their outcome comes back as a
//!   `CallResult` (`Ringing` = delivered), replies as [`PagingEvent::TextReply`] (the store was
//!   already changed by `texts.rs`).
//! - Business hours (issue 7 item 2): a request whose call chose a `normal` option after hours (the
//!   call row's recording kind is `page_when_open`) pages at the next opening; every heartbeat the
//!   due ones are claimed from the store, once across all instances.
//! - Toll fraud (issue #15 item 4): phone numbers the dial plan refuses are skipped (`dial_plan`
//!   event); a request beyond `[paging] max_pages_per_hour` pages no phone number (`page_cap`).

use crate::config::PagingConfig;
use crate::dispatcher::{Action, CallerRef, DeviceRef, Dispatcher, EventKind, Input, NotificationStatus, Order, PageBy, Settings, LEASE};
use oncall_calls::dial::{Dialer, RegisteredPhone};
use oncall_calls::orders::{CallRef, ControllerCommand, Outcome, PageOrder, PagingEvent};
use oncall_core::escalation::NotificationKey;
use oncall_core::{Actor, Channel, Millis, OrgId, Person, RecordingKind, RequestId, Store, Timestamp};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One organization's paging task (`per_org` clones one per organization, changing `org`).
#[derive(Clone)]
pub struct Paging {
    pub store: Store,
    pub org: OrgId,
    pub config: PagingConfig,
    /// Contacts and registered phones → routes (the calls side's dial plan).
    pub dialer: Dialer,
    pub controller: mpsc::UnboundedSender<ControllerCommand>,
    /// This instance's id: the owner of the escalation leases it holds.
    pub owner: String,
    /// Where message recordings are, to replay them in resumed escalations.
    pub recordings_root: PathBuf,
    /// The recordings archive: a message whose spool copy is gone (uploaded to S3 and deleted, or
    /// recorded by another instance) is read from here.
    pub archive: Arc<dyn oncall_recordings::storage::RecordingStore>,
    /// Sends `text` notifications (`[texts]`); `None` fails them.
    pub texts: Option<Arc<crate::texts::Texts>>,
    /// Speaks an alert's summary in its page call; `None`: alerts page without speech.
    pub speaker: Option<Arc<dyn crate::speech::Speaker>>,
}

/// What a request's pages read out.
struct Kept {
    caller: String,
    message: Arc<[i16]>,
    /// An alert's request: `message` is its summary, spoken before the keys.
    speak_first: bool,
    /// An alert's summary, for its texts.
    summary: Option<String>,
}

/// The task's state: the dispatcher, and what the wrapper keeps for the orders it carries out.
struct Run {
    dispatcher: Dispatcher,
    /// Every request begun (or taken over) here, until the dispatcher forgets it.
    requests: HashMap<RequestId, Kept>,
    /// What a `RequestOpened` event said (caller, message), until the request is begun or deferred.
    opened: HashMap<RequestId, (String, Option<PathBuf>)>,
    /// The registered phones behind the handles of a `PersonFound`, until paged.
    devices: HashMap<DeviceRef, (NotificationKey, RegisteredPhone)>,
    next_device: u64,
    /// The people looked up for notifications: their name for the log, their details for a text.
    people: HashMap<NotificationKey, Person>,
}

impl Run {
    fn device(&mut self, key: NotificationKey, phone: RegisteredPhone) -> DeviceRef {
        self.next_device += 1;
        let device = DeviceRef(self.next_device);
        self.devices.insert(device, (key, phone));
        device
    }

    fn forget(&mut self, request: RequestId) {
        self.requests.remove(&request);
        self.devices.retain(|_, (key, _)| key.request != request);
        self.people.retain(|key, _| key.request != request);
    }
}

/// The user agent's call handle is already an opaque number: the dispatcher's handle is that number.
fn caller_ref(call: CallRef) -> CallerRef {
    CallerRef(call.0)
}

fn call_ref(caller: CallerRef) -> CallRef {
    CallRef(caller.0)
}

impl Paging {
    pub async fn run(self, mut events: mpsc::UnboundedReceiver<PagingEvent>) {
        tracing::info!(org = %self.org, key_timeout_secs = self.config.key_timeout_secs, trunk = self.dialer.trunk_name().unwrap_or("(none)"), "paging enabled");
        let mut run = self.start(Timestamp::now());
        loop {
            let wake = run.dispatcher.poll_timeout();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep(Duration::from_millis((t - Timestamp::now()).0.max(0) as u64)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    self.on_event(&mut run, ev, Timestamp::now()).await;
                }
                _ = sleep => self.on_timeout(&mut run, Timestamp::now()).await,
                // A button pressed on a request in this process's web admin: taken now, not at the heartbeat.
                _ = self.store.request_actions_queued() => {
                    run.dispatcher.handle(Input::ActionsQueued, Timestamp::now());
                    self.carry_out(&mut run, Timestamp::now()).await;
                }
            }
        }
    }

    /// A dispatcher with this instance's settings, starting at `now` (its first heartbeat at once).
    fn start(&self, now: Timestamp) -> Run {
        let settings = Settings {
            owner: self.owner.clone(),
            snooze: Millis::seconds(self.config.snooze_secs as i64),
            texts: self.texts.is_some(),
            max_pages_per_hour: self.config.max_pages_per_hour,
            dial_plan: self.store.dial_plan().clone(),
        };
        Run { dispatcher: Dispatcher::new(settings, now), requests: HashMap::new(), opened: HashMap::new(), devices: HashMap::new(), next_device: 0, people: HashMap::new() }
    }

    async fn on_event(&self, run: &mut Run, ev: PagingEvent, now: Timestamp) {
        match ev {
            PagingEvent::RequestOpened { request, caller, recording, caller_call } => {
                // An alert's request has no recording (an empty path): its page speaks the summary.
                let recording = Some(recording).filter(|p| !p.as_os_str().is_empty());
                self.open(run, request, &caller, recording, caller_call, now).await;
            }
            PagingEvent::CallResult { key, outcome } => {
                tracing::info!(request = %key.request, person = %key.person, stage = key.stage, ?outcome, "page call result");
                // Why it ended, for the request page's attempts (the status itself comes from the dispatcher).
                let why = match &outcome {
                    Outcome::Failed(reason) => Some(reason.as_str()),
                    Outcome::Declined => Some("pressed 3, hung up, or chose no key"),
                    _ => None,
                };
                if let Some(why) = why {
                    self.describe(&key, None, Some(why), now).await;
                }
                run.dispatcher.handle(Input::Outcome { key, outcome }, now);
            }
            PagingEvent::TextReply { request, person, action } => {
                if run.dispatcher.is_running(request) {
                    tracing::info!(%request, %person, action = action.as_str(), "text reply applied to the escalation");
                }
                run.dispatcher.handle(Input::TextReply { request, person, action }, now);
            }
        }
        self.carry_out(run, now).await;
    }

    /// The dispatcher's timeout came: heartbeats and escalation timers.
    async fn on_timeout(&self, run: &mut Run, now: Timestamp) {
        run.dispatcher.handle_timeout(now);
        self.carry_out(run, now).await;
    }

    /// A "page on-call" request was opened: reads what the dispatcher decides on (whether its call
    /// chose a normal option, the business hours) and carries the decision out. True when the
    /// request was deferred to the next opening.
    async fn open(&self, run: &mut Run, request: RequestId, caller: &str, recording: Option<PathBuf>, caller_call: Option<CallRef>, now: Timestamp) -> bool {
        if run.dispatcher.is_running(request) {
            return false;
        }
        let normal = self.is_normal_urgency(request).await;
        // Only a normal request needs the hours; when they cannot be read it pages now rather than lose it.
        let hours = match normal {
            true => self.store.business_hours(self.org).await.map(|h| h.map(|s| s.hours)).unwrap_or_else(|e| {
                tracing::error!(%request, error = %e, "cannot read business hours; paging now");
                None
            }),
            false => None,
        };
        run.opened.insert(request, (caller.to_string(), recording));
        run.dispatcher.handle(Input::RequestOpened { request, caller_call: caller_call.map(caller_ref), normal, hours }, now);
        let first = run.dispatcher.poll_order();
        let deferring = matches!(first, Some(Order::Defer { .. }));
        if let Some(order) = first {
            self.carry_out_order(run, order, now).await;
        }
        self.carry_out(run, now).await;
        deferring && !run.dispatcher.is_running(request)
    }

    /// The request's call chose a `normal` option (its recording kind is `page_when_open`), or its alert came
    /// through an integration of `normal` urgency.
    async fn is_normal_urgency(&self, request: RequestId) -> bool {
        if self.store.alert_is_normal_urgency(self.org, request).await.unwrap_or(false) {
            return true;
        }
        let Ok(Some(call)) = self.store.request(self.org, request).await.map(|r| r.call) else { return false };
        matches!(self.store.call(self.org, call).await, Ok(c) if c.recording_kind.as_deref() == Some("page_when_open"))
    }

    /// Carries out the dispatcher's orders, and those they lead to, until there are none.
    async fn carry_out(&self, run: &mut Run, now: Timestamp) {
        while let Some(order) = run.dispatcher.poll_order() {
            self.carry_out_order(run, order, now).await;
        }
    }

    async fn carry_out_order(&self, run: &mut Run, order: Order, now: Timestamp) {
        match order {
            Order::Defer { request, at, detail, caller_call } => match self.store.defer_request(self.org, request, at, &detail, now).await {
                Ok(deferred) => {
                    match deferred {
                        true => tracing::info!(%request, page_at = %at, "after hours: the request pages when business hours start"),
                        false => tracing::info!(%request, "after hours: the request was already taken; not paged"),
                    }
                    // Its caller is long gone by the opening: it is begun from what the store has.
                    run.opened.remove(&request);
                }
                Err(e) => {
                    tracing::error!(%request, error = %e, "cannot defer the request; paging now");
                    run.dispatcher.handle(Input::DeferFailed { request, caller_call }, now);
                }
            },
            Order::Begin { request, caller_call } => self.begin(run, request, caller_call, now).await,
            Order::Notify { key } => {
                if let Err(reason) = self.look_up(run, key, now).await {
                    run.dispatcher.handle(Input::NotifyFailed { key, reason }, now);
                }
            }
            Order::Page { key, by, caller_call } => {
                if let Err(reason) = self.page(run, key, by, caller_call, now).await {
                    run.dispatcher.handle(Input::NotifyFailed { key, reason }, now);
                }
            }
            Order::SendText { key, contacts } => {
                if let Err(reason) = self.send_text(run, key, contacts, now).await {
                    run.dispatcher.handle(Input::NotifyFailed { key, reason }, now);
                }
            }
            Order::EndCalls { request, keep } => {
                tracing::info!(%request, "escalation ended: cancelling the other calls");
                let _ = self.controller.send(ControllerCommand::CancelRequest { request, keep });
            }
            Order::EndStage { request, stage } => {
                tracing::info!(%request, stage, "escalation moved to the next stage");
                let _ = self.controller.send(ControllerCommand::CancelStale { request, stage });
            }
            Order::ReleaseCaller { caller } => {
                let _ = self.controller.send(ControllerCommand::ReleaseCaller { caller: call_ref(caller) });
            }
            Order::Fail { key, reason } => {
                tracing::warn!(request = %key.request, person = %key.person, stage = key.stage, %reason, "notification failed");
                let _ = self.store.set_notification_status(self.org, &key, NotificationStatus::Failed.as_str(), now).await;
                self.describe(&key, None, Some(&reason), now).await;
            }
            Order::SetStatus { key, status } => {
                if status == NotificationStatus::Snoozed {
                    tracing::info!(request = %key.request, person = %key.person, snooze_secs = self.config.snooze_secs, "snoozed: the step is paged again then");
                }
                if let Err(e) = self.store.set_notification_status(self.org, &key, status.as_str(), now).await {
                    tracing::warn!(request = %key.request, error = %e, "cannot update the notification status");
                }
            }
            Order::MarkAnswered { request, person } => {
                if let Err(e) = self.store.mark_answered(self.org, request, person, now).await {
                    tracing::debug!(%request, error = %e, "not marked answered");
                }
            }
            Order::Acknowledge { request, person } => match self.store.acknowledge(self.org, request, Actor::Person(person), now).await {
                Ok(()) => tracing::info!(%request, %person, "request acknowledged by the employee"),
                Err(e) => tracing::warn!(%request, %person, error = %e, "cannot acknowledge (someone else took it?)"),
            },
            Order::Complete { request, person } => match self.store.complete(self.org, request, Actor::Person(person), now).await {
                Ok(()) => tracing::info!(%request, %person, "request completed by the employee"),
                Err(e) => tracing::warn!(%request, error = %e, "cannot complete the request"),
            },
            Order::MarkExhausted { request } => {
                tracing::warn!(%request, "escalation exhausted: nobody took the request");
                if let Err(e) = self.store.mark_exhausted(self.org, request, now).await {
                    tracing::warn!(%request, error = %e, "cannot mark the request exhausted");
                }
            }
            Order::WriteEvent { request, kind, detail } => self.write_event(request, kind, &detail, now).await,
            Order::Save { engine } => {
                let request = engine.request();
                match self.store.hold_escalation(self.org, &engine, &self.owner, LEASE, now).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(%request, "another instance took this escalation over (our lease had expired); leaving it to them");
                        return run.dispatcher.handle(Input::LeaseLost { request }, now);
                    }
                    Err(e) => tracing::warn!(%request, error = %e, "cannot save the escalation"),
                }
                if engine.phase().is_finished() {
                    tracing::info!(%request, phase = ?engine.phase(), "escalation finished");
                }
            }
            Order::RenewLeases => {
                if let Err(e) = self.store.renew_escalation_leases(self.org, &self.owner, LEASE, now).await {
                    tracing::warn!(error = %e, "cannot renew escalation leases");
                }
            }
            Order::ClaimOrphans { include_own } => self.take_over(run, include_own, now).await,
            Order::ClaimDueDeferred => match self.store.claim_due_deferred(self.org, now).await {
                Ok(requests) => {
                    for request in requests.iter().filter(|r| !run.dispatcher.is_running(**r)) {
                        tracing::info!(%request, "business hours started: paging the deferred request");
                    }
                    run.dispatcher.handle(Input::DeferredDue { requests }, now);
                }
                Err(e) => tracing::warn!(error = %e, "cannot look for deferred requests"),
            },
            Order::Forget { request } => run.forget(request),
            Order::TakeActions => self.take_actions(run, now).await,
            Order::LoadForAction { request, action, by } => self.load_for_action(run, request, action, by, now).await,
            Order::Reopen { request } => match self.store.start_notifying(self.org, request, now).await {
                Ok(()) => tracing::info!(%request, "exhausted request paged again"),
                Err(e) => tracing::warn!(%request, error = %e, "cannot reopen the exhausted request"),
            },
        }
    }

    /// Logs `detail` and writes it to the request's timeline as a `kind` event.
    async fn write_event(&self, request: RequestId, kind: EventKind, detail: &str, now: Timestamp) {
        match kind {
            EventKind::PageCap => tracing::warn!(%request, max_pages_per_hour = self.config.max_pages_per_hour, "page cap reached: this request places no trunk call and sends no text"),
            EventKind::DialPlan => tracing::warn!(%request, %detail, "not dialled: the dial plan refuses the number"),
            EventKind::Action => tracing::info!(%request, %detail, "request action not carried out"),
            EventKind::Policy | EventKind::Instance => {}
        }
        if let Err(e) = self.store.append_event(self.org, request, Actor::System, kind.as_str(), detail, now).await {
            tracing::warn!(%request, error = %e, kind = kind.as_str(), "cannot write to the request's log");
        }
    }

    /// Takes the buttons pressed on requests (`Order::TakeActions`) and hands each to the dispatcher: only for a
    /// request still open and not answered, and a reassignment with the person's contact plan as it is now. What
    /// cannot be done is said in the request's log.
    async fn take_actions(&self, run: &mut Run, now: Timestamp) {
        use oncall_core::store::RequestAction;
        use oncall_core::RequestStatus;
        let taken = match self.store.take_request_actions(self.org, &self.owner, now, 100).await {
            Ok(t) => t,
            Err(e) => return tracing::warn!(error = %e, "cannot take the request actions"),
        };
        for queued in taken {
            let request = queued.request;
            let status = match self.store.request(self.org, request).await {
                Ok(r) => r.state.status(),
                Err(e) => {
                    tracing::warn!(%request, error = %e, "cannot read the request of an action");
                    continue;
                }
            };
            let refuse = |why: String| async move {
                let detail = format!("{} not done: {why}", match queued.action {
                    RequestAction::PageAgain => "page again",
                    RequestAction::Escalate => "escalate now",
                    RequestAction::Reassign(_) => "reassign",
                });
                self.write_event(request, EventKind::Action, &detail, now).await;
            };
            if !matches!(status, RequestStatus::Received | RequestStatus::Notifying | RequestStatus::Exhausted) {
                refuse(format!("the request is {status}")).await;
                continue;
            }
            let action = match queued.action {
                RequestAction::PageAgain => Action::PageAgain,
                RequestAction::Escalate => Action::Escalate,
                RequestAction::Reassign(person) => match self.store.person(self.org, person).await {
                    Ok(p) if p.disabled => {
                        refuse(format!("{} is disabled", p.name)).await;
                        continue;
                    }
                    Ok(p) => Action::Reassign(p.contact_plan()),
                    Err(e) => {
                        refuse(format!("cannot load the person: {e}")).await;
                        continue;
                    }
                },
            };
            tracing::info!(%request, by = %queued.by, action = queued.action.as_str(), "request action taken");
            run.dispatcher.handle(Input::Action { request, action, by: queued.by }, now);
        }
    }

    /// Loads the saved escalation of a request not running here for a button pressed on it (`Order::LoadForAction`),
    /// with what its pages read out.
    async fn load_for_action(&self, run: &mut Run, request: RequestId, action: Action, by: Actor, now: Timestamp) {
        let engine = match self.store.stored_escalation(self.org, request).await {
            Ok(e) => e,
            Err(e) => return tracing::warn!(%request, error = %e, "cannot load the escalation for a request action"),
        };
        let capped = match &engine {
            Some(_) => {
                let (caller, recording) = self.stored_caller(request).await;
                run.requests.insert(request, self.kept(request, &caller, recording).await);
                self.store.request_events(self.org, request).await.map(|log| log.iter().any(|e| e.kind == EventKind::PageCap.as_str())).unwrap_or(false)
            }
            None => false,
        };
        run.dispatcher.handle(Input::LoadedForAction { request, engine: engine.map(Box::new), capped, action, by }, now);
    }

    /// The caller and the message recording of a request, from the store (a deferred or
    /// taken-over request: the call that opened it is gone).
    async fn stored_caller(&self, request: RequestId) -> (String, Option<PathBuf>) {
        let caller = self.store.request(self.org, request).await.map(|r| r.caller).unwrap_or_default();
        let recording = match self.store.recordings_for_request(self.org, request).await {
            Ok(list) => list.into_iter().find(|r| r.kind == RecordingKind::Message).map(|r| self.recordings_root.join(r.storage_key)),
            Err(_) => None,
        };
        (caller, recording)
    }

    /// What `request`'s pages read out: for an alert its summary, spoken (`speech.rs`) and played before the keys;
    /// else the caller's message.
    async fn kept(&self, request: RequestId, caller: &str, recording: Option<PathBuf>) -> Kept {
        let alert = self.alert(request).await;
        self.kept_for(request, caller, recording, alert).await
    }

    /// An alert's (or a script's) summary and its integration's policy; `None` for a call's request.
    async fn alert(&self, request: RequestId) -> Option<(String, Option<oncall_core::PolicyId>)> {
        self.store.alert_of_request(self.org, request).await.unwrap_or_else(|e| {
            tracing::warn!(%request, error = %e, "cannot tell whether the request is an alert's");
            None
        })
    }

    /// [`Paging::kept`] with the request's [`Paging::alert`] already read.
    async fn kept_for(&self, request: RequestId, caller: &str, recording: Option<PathBuf>, alert: Option<(String, Option<oncall_core::PolicyId>)>) -> Kept {
        let caller = announce_caller(caller);
        match alert {
            Some((summary, _)) => {
                // The organization's own voice (`oncall org set --speech-voice`), else `[paging] speech_voice`.
                let voice = self.store.organization(self.org).await.ok().and_then(|o| o.limits.speech_voice).unwrap_or_else(|| self.config.speech_voice.clone());
                let spoken = match &self.speaker {
                    Some(s) => s.speak(&summary, &voice).await,
                    None => None,
                };
                Kept { caller, message: spoken.unwrap_or_else(|| Arc::from(Vec::new())), speak_first: true, summary: Some(summary) }
            }
            None => Kept { caller, message: self.message(request, recording).await, speak_first: false, summary: None },
        }
    }

    async fn message(&self, request: RequestId, recording: Option<PathBuf>) -> Arc<[i16]> {
        match recording {
            Some(path) => oncall_recordings::access::load_message(request, path, &self.recordings_root, &*self.archive).await,
            None => Arc::from(Vec::new()),
        }
    }

    /// Begins the escalation of `request` (`Order::Begin`). The policy is the first enabled one, or,
    /// for a call dialled as `oncall-<schedule>-bridge`, the one that pages that schedule soonest
    /// (`redirect::choose_policy`; the choice goes to the request's log).
    async fn begin(&self, run: &mut Run, request: RequestId, caller_call: Option<CallerRef>, now: Timestamp) {
        let (caller, recording) = match run.opened.remove(&request) {
            Some(opened) => opened,
            None => self.stored_caller(request).await,
        };
        let policies = match self.store.list_policies(self.org).await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(%request, error = %e, "cannot list escalation policies; request not paged");
                return;
            }
        };
        // The number the call was dialled to (requests from the web or API have no call: "").
        let called = match self.store.request(self.org, request).await.map(|r| r.call) {
            Ok(Some(call)) => self.store.call(self.org, call).await.map(|c| c.called),
            Ok(None) => Ok(String::new()),
            Err(e) => Err(e),
        };
        let called = called.unwrap_or_else(|e| {
            tracing::warn!(%request, error = %e, "cannot read the request's call; paging with the first enabled policy");
            String::new()
        });
        use oncall_calls::redirect::{choose_policy, target_key, PolicyChoice};
        // Schedules are only read for `oncall-...` numbers.
        let key = target_key(&called);
        let schedules = match key {
            Some(_) => self.store.list_schedules(self.org).await.unwrap_or_else(|e| {
                tracing::warn!(%request, error = %e, "cannot list schedules; paging with the first enabled policy");
                Vec::new()
            }),
            None => Vec::new(),
        };
        // An alert's integration may name the policy.
        let alert = self.alert(request).await;
        let bound = alert.as_ref().and_then(|(_, p)| *p).and_then(|p| policies.iter().find(|x| x.id == p && !x.disabled));
        let choice = match bound {
            Some(p) => PolicyChoice::Default(p),
            None => choose_policy(&called, &schedules, &policies),
        };
        let Some(policy) = choice.policy() else {
            tracing::warn!(%request, "no enabled escalation policy: request not paged");
            return;
        };
        let dialled = key.map(|k| format!("oncall-{k}")).unwrap_or_default();
        let policy_note = match choice {
            PolicyChoice::Schedule { schedule, .. } => {
                tracing::info!(%request, policy = %policy.name, schedule = %schedule.name, %dialled, "bridge call: paging with the policy that pages its schedule");
                Some(format!("paged with policy {} (dialled {dialled})", policy.name))
            }
            PolicyChoice::Fallback { schedule, .. } => {
                tracing::warn!(%request, policy = %policy.name, schedule = %schedule.name, %dialled, "bridge call: no enabled policy pages its schedule; paging with the first enabled policy");
                Some(format!("paged with policy {} (dialled {dialled}, but no enabled policy pages schedule {})", policy.name, schedule.name))
            }
            PolicyChoice::Default(_) | PolicyChoice::Nothing => None,
        };
        let kept = self.kept_for(request, &caller, recording, alert).await;
        let engine = match self.store.begin_escalation(self.org, request, policy.id, now).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(%request, error = %e, "cannot start the escalation");
                return;
            }
        };
        tracing::info!(%request, policy = %policy.name, message_secs = kept.message.len() as f64 / 8000.0, "escalation started");
        // The organization's own page cap (`oncall org set --max-pages-per-hour`), read now so a change applies at once.
        let own_cap = self.store.organization(self.org).await.ok().and_then(|o| o.limits.max_pages_per_hour);
        run.dispatcher.set_max_pages_per_hour(own_cap.unwrap_or(self.config.max_pages_per_hour));
        run.requests.insert(request, kept);
        run.dispatcher.handle(Input::EscalationBegun { engine: Box::new(engine), caller_call, policy_note }, now);
    }

    /// Claims the escalations nobody runs (their instance died, or, with `include_own`, this one
    /// before it restarted) and hands them to the dispatcher, which resumes each where it was saved.
    async fn take_over(&self, run: &mut Run, include_own: bool, now: Timestamp) {
        let claimed = match self.store.claim_orphaned_escalations(self.org, &self.owner, now, LEASE, 100, include_own).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for orphaned escalations");
                return;
            }
        };
        for work in claimed {
            let request = work.request;
            if run.dispatcher.is_running(request) {
                continue;
            }
            let (caller, recording) = self.stored_caller(request).await;
            let kept = self.kept(request, &caller, recording).await;
            tracing::info!(%request, owner = %self.owner, phase = ?work.engine.phase(), "escalation taken over");
            let capped = self.store.request_events(self.org, request).await.map(|log| log.iter().any(|e| e.kind == EventKind::PageCap.as_str())).unwrap_or(false);
            run.requests.insert(request, kept);
            run.dispatcher.handle(Input::TakenOver { engine: Box::new(work.engine), capped }, now);
        }
    }

    /// Records the notification (`Order::Notify`) and tells the dispatcher who the person is and
    /// which phones they registered; `Err` with why when it cannot.
    async fn look_up(&self, run: &mut Run, key: NotificationKey, now: Timestamp) -> Result<(), String> {
        match self.store.record_notification(self.org, &key, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(request = %key.request, person = %key.person, stage = key.stage, "already paged for this stage; not again");
                return Ok(());
            }
            Err(e) => return Err(format!("cannot record the notification: {e}")),
        }
        let person = self.store.person(self.org, key.person).await.map_err(|e| format!("cannot load the person: {e}"))?;
        let devices = match key.channel {
            Channel::Call => self.dialer.registered_phones(self.org, key.person).into_iter().map(|p| run.device(key, p)).collect(),
            Channel::Text => Vec::new(),
        };
        let input = Input::PersonFound { key, disabled: person.disabled, devices, contacts: person.contacts.clone() };
        run.people.insert(key, person);
        run.dispatcher.handle(input, now);
        Ok(())
    }

    /// Notes where a notification went and why it ended, for the request page (a failure to write it is logged).
    async fn describe(&self, key: &NotificationKey, target: Option<&str>, detail: Option<&str>, now: Timestamp) {
        if let Err(e) = self.store.describe_notification(self.org, key, target, detail, now).await {
            tracing::warn!(request = %key.request, error = %e, "cannot note the notification's target or result");
        }
    }

    /// Asks the call controller to place one call of a notification (`Order::Page`).
    async fn page(&self, run: &mut Run, key: NotificationKey, by: PageBy, caller_call: Option<CallerRef>, now: Timestamp) -> Result<(), String> {
        // Forgotten meanwhile (the escalation ended while the person was looked up): nothing to page.
        let Some(kept) = run.requests.get(&key.request) else { return Ok(()) };
        let (caller, message, speak_first) = (kept.caller.clone(), kept.message.clone(), kept.speak_first);
        let name = run.people.get(&key).map(|p| p.name.clone()).unwrap_or_default();
        let (route, target) = match by {
            PageBy::Device(device) => {
                let Some((_, phone)) = run.devices.remove(&device) else { return Ok(()) };
                tracing::info!(request = %key.request, person = %key.person, %name, stage = key.stage, contact = %phone.contact, source = %phone.source, "paging a registered phone");
                let target = format!("{} (registered phone at {})", phone.contact, phone.source);
                (phone.route, target)
            }
            PageBy::Contact(contact) => {
                let route = self.dialer.route(&contact, "").await?;
                tracing::info!(request = %key.request, person = %key.person, %name, stage = key.stage, target = %route.target, via = %route.next_hop(), "paging by phone");
                let target = match (&contact, self.dialer.trunk_name()) {
                    (oncall_core::Contact::Phone(n), Some(trunk)) => format!("{} via trunk {trunk}", n.as_str()),
                    _ => route.target.clone(),
                };
                (route, target)
            }
        };
        self.describe(&key, Some(&target), None, now).await;
        let order = PageOrder { key, route, caller, message, caller_call: caller_call.map(call_ref), speak_first };
        self.controller.send(ControllerCommand::Page(order)).map_err(|_| "the call controller has stopped".to_string())
    }

    /// Sends a text notification (`Order::SendText`) to the contacts the dispatcher allowed.
    async fn send_text(&self, run: &mut Run, key: NotificationKey, contacts: Vec<oncall_core::Contact>, now: Timestamp) -> Result<(), String> {
        // Not reached without senders (the dispatcher's `texts` setting says whether there are).
        let texts = self.texts.as_ref().ok_or("no text senders")?;
        let (Some(person), Some(kept)) = (run.people.get(&key), run.requests.get(&key.request)) else { return Ok(()) };
        let to: Vec<&str> = contacts
            .iter()
            .map(|c| match c {
                oncall_core::Contact::Phone(n) => n.as_str(),
                oncall_core::Contact::Sip(u) => u.as_str(),
            })
            .collect();
        if !to.is_empty() {
            self.describe(&key, Some(&to.join(" or ")), None, now).await;
        }
        let person = Person { contacts, ..person.clone() };
        // A caller's message transcribed by now (issue 23) says what the request is about; an alert's summary
        // already does.
        let said = match &kept.summary {
            Some(s) => Some(s.clone()),
            None => self.store.request(self.org, key.request).await.ok().and_then(|r| r.transcript).map(|t| format!("\u{201c}{}\u{201d}", oncall_core::transcript::first_line(&t, 160))),
        };
        texts.send_notification(key, &person, &kept.caller, said.as_deref()).await
    }
}

/// The part of a caller worth reading out: the user part of a SIP URI (usually the number),
/// or the string as it is.
pub fn announce_caller(caller: &str) -> String {
    let Some(i) = caller.find("sip:").or_else(|| caller.find("tel:")) else { return caller.to_string() };
    let rest = &caller[i + 4..];
    rest.split(['@', ';', '>']).next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A paging task on `store` with no text senders and no archive, and the controller's end of its orders.
    fn test_paging(store: &Store, org: OrgId, config: PagingConfig, trunks: Vec<oncall_calls::config::TrunkConfig>) -> (Paging, mpsc::UnboundedReceiver<ControllerCommand>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let paging = Paging {
            store: store.clone(),
            org,
            config,
            dialer: Dialer::new(trunks, "sip:oncall@127.0.0.1".into(), None),
            controller: tx,
            owner: "test".into(),
            recordings_root: PathBuf::from("/nowhere"),
            archive: Arc::new(oncall_recordings::storage::LocalStore::new("/nowhere")),
            texts: None,
            speaker: None,
        };
        (paging, rx)
    }

    /// A request opened by a call to `called` whose recording is of `kind` ("page", "page_when_open").
    async fn call_request(store: &Store, org: OrgId, called: &str, kind: &str, at: Timestamp) -> RequestId {
        use oncall_core::store::NewCall;
        let new = NewCall { org, call_id: format!("c-{kind}-{}", rand::random::<u32>()), caller: "sip:+33100000000@example.net".into(), called: called.into(), received_at: at, instance: "test".into() };
        let call = store.insert_call(&new).await.unwrap();
        store.call_recording_started(org, call, "/nowhere.wav", kind).await.unwrap();
        store.create_request_for_call(org, call, &new.caller, at).await.unwrap()
    }

    /// Issue 18 item 6 through the store: an exhausted request "paged again" on the web is reopened and pages its
    /// first step; "reassign to Frank" pages Frank at once (woken in-process, no heartbeat); an action on a
    /// completed request is refused in its log. Time is passed in; the "controller" is a channel.
    #[tokio::test]
    async fn buttons_on_a_request_reach_the_paging_task() {
        use oncall_core::escalation::{NewPolicy, Step, Target};
        use oncall_core::store::RequestAction;
        use oncall_core::{NewPerson, RequestStatus};
        let now = Timestamp(1_800_000_000_000);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let org = store.create_organization("Acme", "acme", "UTC", now).await.unwrap();
        let person = |name: &str, port: u16| NewPerson { name: name.into(), sip_uris: vec![format!("sip:{name}@127.0.0.1:{port}")], time_zone: "UTC".into(), ..NewPerson::default() };
        let erin = store.add_person(org, &person("erin", 5998), now).await.unwrap();
        let frank = store.add_person(org, &person("frank", 5999), now).await.unwrap();
        let step = Step { targets: vec![Target::Person(erin)], wait: Millis::minutes(5) };
        store.create_policy(org, &NewPolicy { name: "Main".into(), steps: vec![step], repeat: 0 }, now).await.unwrap();
        let (paging, mut rx) = test_paging(&store, org, PagingConfig::default(), vec![]);
        let mut run = paging.start(now);
        paging.on_timeout(&mut run, now).await;
        let mut paged = || {
            let mut people = vec![];
            while let Ok(cmd) = rx.try_recv() {
                if let ControllerCommand::Page(order) = cmd {
                    people.push(order.key.person);
                }
            }
            people
        };
        let request = call_request(&store, org, "sip:100@127.0.0.1", "page", now).await;
        paging.open(&mut run, request, "+33100000000", None, None, now).await;
        assert_eq!(paged(), vec![erin]);
        // Nobody answers Erin, nor the (absent) managers: exhausted after 10 minutes.
        paging.on_timeout(&mut run, now + Millis::minutes(5)).await;
        paging.on_timeout(&mut run, now + Millis::minutes(10)).await;
        assert_eq!(store.request(org, request).await.unwrap().state.status(), RequestStatus::Exhausted);
        assert!(run.dispatcher.is_idle());
        let boss = Actor::User(oncall_core::UserId(1));
        let t = now + Millis::minutes(20);
        store.queue_request_action(org, request, RequestAction::PageAgain, boss, t).await.unwrap();
        paging.on_timeout(&mut run, t).await;
        assert_eq!(paged(), vec![erin], "paged again from the first step");
        assert_eq!(store.request(org, request).await.unwrap().state.status(), RequestStatus::Notifying);
        assert!(run.dispatcher.is_running(request));
        // Woken by the queue, as the loop is: no heartbeat needed.
        store.queue_request_action(org, request, RequestAction::Reassign(frank), boss, t + Millis(1000)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), store.request_actions_queued()).await.expect("woken");
        run.dispatcher.handle(Input::ActionsQueued, t + Millis(1000));
        paging.carry_out(&mut run, t + Millis(1000)).await;
        assert_eq!(paged(), vec![frank]);
        store.complete(org, request, boss, t + Millis(2000)).await.unwrap();
        store.queue_request_action(org, request, RequestAction::Escalate, boss, t + Millis(3000)).await.unwrap();
        paging.on_timeout(&mut run, t + Millis::seconds(20)).await;
        let log = store.request_events(org, request).await.unwrap();
        let actions: Vec<_> = log.iter().filter(|e| e.kind == "action").map(|e| (e.actor, e.detail.as_str())).collect();
        assert_eq!(
            actions,
            vec![(boss, "page again"), (boss, "reassign to frank"), (boss, "escalate now"), (Actor::System, "escalate now not done: the request is completed")]
        );
    }

    #[test]
    fn the_caller_is_read_out_from_the_user_part() {
        assert_eq!(announce_caller("\"Bob\" <sip:+15551234@10.0.0.1:5060>;tag=x"), "+15551234");
        assert_eq!(announce_caller("tel:+15551234"), "+15551234");
        assert_eq!(announce_caller("+15551234"), "+15551234");
    }

    /// A normal request opened at 02:00 in Paris is deferred to 08:00 and pages then; an urgent one at 02:00
    /// pages at once; one acknowledged on the web before opening is never paged. Time is passed in.
    #[tokio::test]
    async fn a_normal_request_after_hours_pages_at_opening_time() {
        use chrono::TimeZone;
        use oncall_core::escalation::{NewPolicy, Step, Target};
        use oncall_core::{BusinessHours, NewPerson};
        let tz = oncall_core::validation::parse_time_zone("tz", "Europe/Paris").unwrap();
        let paris = |d: u32, h: u32, m: u32| -> Timestamp { tz.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap().to_utc().into() };
        // Tuesday 2026-03-31, after the spring-forward of the 29th.
        let night = paris(31, 2, 0);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let org = store.create_organization("Acme", "acme", "Europe/Paris", night).await.unwrap();
        let week = "08:00-18:00";
        let hours = BusinessHours::parse("Europe/Paris", [week, week, week, week, week, "", ""], &[] as &[&str]).unwrap();
        store.set_business_hours(org, &hours, &Default::default(), night).await.unwrap();
        let erin = NewPerson { name: "Erin".into(), sip_uris: vec!["sip:erin@127.0.0.1:5999".into()], time_zone: "Europe/Paris".into(), ..NewPerson::default() };
        let erin = store.add_person(org, &erin, night).await.unwrap();
        let step = Step { targets: vec![Target::Person(erin)], wait: Millis::minutes(5) };
        store.create_policy(org, &NewPolicy { name: "Main".into(), steps: vec![step], repeat: 0 }, night).await.unwrap();
        let open_request = |kind: &'static str| call_request(&store, org, "sip:oncall@example.net", kind, night);
        let (paging, mut rx) = test_paging(&store, org, PagingConfig::default(), vec![]);
        let mut run = paging.start(night);
        let caller = "sip:+33100000000@example.net";

        let normal = open_request("page_when_open").await;
        assert!(paging.open(&mut run, normal, caller, None, None, night).await, "normal waits at 02:00");
        assert_eq!(store.deferred_until(org, normal).await.unwrap(), Some(paris(31, 8, 0)));
        let log = store.request_events(org, normal).await.unwrap();
        assert!(log.iter().any(|e| e.detail.starts_with("deferred until 2026-03-31 08:00 Europe/Paris")), "{log:?}");
        let handled = open_request("page_when_open").await;
        assert!(paging.open(&mut run, handled, caller, None, None, night).await);
        store.acknowledge(org, handled, Actor::System, paris(31, 7, 0)).await.unwrap();

        // The heartbeat claims the due ones.
        paging.on_timeout(&mut run, paris(31, 7, 59)).await;
        assert!(rx.try_recv().is_err() && run.dispatcher.is_idle(), "nothing before opening");
        paging.on_timeout(&mut run, paris(31, 8, 0)).await;
        match rx.try_recv() {
            Ok(ControllerCommand::Page(order)) => {
                assert_eq!((order.key.request, order.key.person), (normal, erin));
                assert_eq!(order.route.target, "sip:erin@127.0.0.1:5999");
            }
            other => panic!("expected a page at 08:00, got {other:?}"),
        }
        assert!(rx.try_recv().is_err(), "the acknowledged request is not paged");
        assert_eq!(store.request(org, normal).await.unwrap().state.status(), oncall_core::RequestStatus::Notifying);
        paging.on_timeout(&mut run, paris(31, 8, 1)).await;
        assert!(rx.try_recv().is_err(), "paged once");
        // During business hours a normal request is not deferred.
        let daytime = open_request("page_when_open").await;
        assert!(!paging.open(&mut run, daytime, caller, None, None, paris(31, 10, 0)).await);
        // Opened last: it begins paging at once, which would fill the channel checked above.
        // Issue 20: an alert through a `normal` integration waits for the hours too; an urgent one does not.
        let (calm, _) = store.create_integration(org, "Backups", None, night).await.unwrap();
        store.set_integration_urgency(org, calm.id, true).await.unwrap();
        let oncall_core::store::AlertOutcome::Opened(quiet) = store.alert_trigger(&calm, "backup", "Backup slow", night).await.unwrap() else { panic!() };
        assert!(paging.open(&mut run, quiet, "Backups", None, None, night).await, "a normal alert waits at 02:00");
        let urgent = open_request("page").await;
        assert!(!paging.open(&mut run, urgent, caller, None, None, night).await, "urgent pages at any hour");
    }

    /// A request whose call was dialled as `oncall-night-bridge` pages Night's on-call person through the policy
    /// that pages Night, and says so in its log; `oncall-weekend-bridge`, with no policy paging Weekend, falls back
    /// to the first enabled policy with a warning in the log; an ordinary number uses the first enabled policy.
    #[tokio::test]
    async fn a_bridge_call_pages_with_its_schedules_policy() {
        use oncall_core::escalation::{NewPolicy, Step, Target};
        use oncall_core::schedule::{Layer, NewSchedule, Rotation, ShiftLength};
        use oncall_core::NewPerson;
        let now = Timestamp::now();
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let org = store.create_organization("Acme", "acme", "UTC", now).await.unwrap();
        let person = |name: &str, port: u16| NewPerson { name: name.into(), sip_uris: vec![format!("sip:{name}@127.0.0.1:{port}")], time_zone: "UTC".into(), ..NewPerson::default() };
        let erin = store.add_person(org, &person("erin", 5998), now).await.unwrap();
        let frank = store.add_person(org, &person("frank", 5999), now).await.unwrap();
        let schedule = |name: &str, who| NewSchedule {
            name: name.into(),
            time_zone: "UTC".into(),
            layers: vec![Layer {
                name: "primary".into(),
                rotation: Rotation {
                    members: vec![who],
                    shift_length: ShiftLength::Days(1),
                    start_date: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                    handoff_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                },
            }],
        };
        let night = store.create_schedule(org, &schedule("Night", frank), now).await.unwrap();
        store.create_schedule(org, &schedule("Weekend", erin), now).await.unwrap();
        let step = |t| vec![Step { targets: vec![t], wait: Millis::minutes(5) }];
        store.create_policy(org, &NewPolicy { name: "Main".into(), steps: step(Target::Person(erin)), repeat: 0 }, now).await.unwrap();
        store.create_policy(org, &NewPolicy { name: "Night desk".into(), steps: step(Target::Schedule(night)), repeat: 0 }, now).await.unwrap();
        let open_request = |called: &'static str| call_request(&store, org, called, "page", now);
        let (paging, mut rx) = test_paging(&store, org, PagingConfig::default(), vec![]);
        let mut run = paging.start(now);
        let mut paged = |request| {
            let mut people = vec![];
            while let Ok(cmd) = rx.try_recv() {
                if let ControllerCommand::Page(order) = cmd {
                    assert_eq!(order.key.request, request);
                    people.push(order.key.person);
                }
            }
            people
        };
        let policy_log = |request| {
            let store = store.clone();
            async move {
                let log = store.request_events(org, request).await.unwrap();
                log.into_iter().filter(|e| e.kind == "policy").map(|e| e.detail).collect::<Vec<_>>()
            }
        };

        let bridged = open_request("sip:OnCall-Night-Bridge@127.0.0.1:5060").await;
        paging.open(&mut run, bridged, "+33100000000", None, None, now).await;
        assert_eq!(paged(bridged), vec![frank], "Night's on-call person, through Night desk");
        assert_eq!(policy_log(bridged).await, vec!["paged with policy Night desk (dialled oncall-Night-Bridge)"]);

        let fallback = open_request("sip:oncall-weekend-bridge@127.0.0.1").await;
        paging.open(&mut run, fallback, "+33100000000", None, None, now).await;
        assert_eq!(paged(fallback), vec![erin], "no policy pages Weekend: Main");
        assert_eq!(
            policy_log(fallback).await,
            vec!["paged with policy Main (dialled oncall-weekend-bridge, but no enabled policy pages schedule Weekend)"]
        );

        let ordinary = open_request("sip:100@127.0.0.1").await;
        paging.open(&mut run, ordinary, "+33100000000", None, None, now).await;
        assert_eq!(paged(ordinary), vec![erin]);
        assert!(policy_log(ordinary).await.is_empty());
    }

    /// Issue #15 item 4, at dial time: a manager's `+882…` number saved before the dial plan existed (here: by a
    /// store whose plan allowed it) is not called through the trunk; the request's log says why and the escalation
    /// moves on to the next step at once. A request beyond `[paging] max_pages_per_hour` places no trunk call at
    /// all (logged), but the person's SIP URI still rings. Time is passed in; the "controller" is a channel.
    #[tokio::test]
    async fn denied_numbers_and_requests_beyond_the_cap_never_reach_the_trunk() {
        use oncall_core::dial_plan::DialPlan;
        use oncall_core::escalation::{NewPolicy, Step, Target};
        use oncall_core::NewPerson;
        let now = Timestamp(1_800_000_000_000);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let org = store.create_organization("Acme", "acme", "UTC", now).await.unwrap();
        let legacy = store.clone().with_dial_plan(DialPlan::new(&["+", "+882"], &[] as &[&str]).unwrap());
        let mallory = NewPerson { name: "Mallory".into(), phones: vec!["+882 1234 5678".into()], time_zone: "UTC".into(), ..NewPerson::default() };
        let mallory = legacy.add_person(org, &mallory, now).await.unwrap();
        let erin = NewPerson { name: "Erin".into(), phones: vec!["+44 20 7946 0100".into()], sip_uris: vec!["sip:erin@127.0.0.1:5998".into()], time_zone: "UTC".into(), ..NewPerson::default() };
        let erin = store.add_person(org, &erin, now).await.unwrap();
        let step = |who| Step { targets: vec![Target::Person(who)], wait: Millis::minutes(5) };
        store.create_policy(org, &NewPolicy { name: "Main".into(), steps: vec![step(mallory), step(erin)], repeat: 0 }, now).await.unwrap();
        let trunk = oncall_calls::config::TrunkConfig { name: "carrier".into(), registrar: "127.0.0.1:5999".into(), username: "acme".into(), password: "secret".into(), ..Default::default() };
        let (paging, mut rx) = test_paging(&store, org, PagingConfig { max_pages_per_hour: 1, ..PagingConfig::default() }, vec![trunk]);
        let mut run = paging.start(now);
        let mut orders = || {
            let mut out = vec![];
            while let Ok(cmd) = rx.try_recv() {
                if let ControllerCommand::Page(order) = cmd {
                    out.push((order.key.person, order.route.target, order.route.credentials.is_some()));
                }
            }
            out
        };
        let events = |request, kind: &'static str| {
            let store = store.clone();
            async move { store.request_events(org, request).await.unwrap().into_iter().filter(|e| e.kind == kind).map(|e| e.detail).collect::<Vec<_>>() }
        };

        let first = store.create_request(org, &oncall_core::NewRequest { caller: "+15550100".into(), summary: "leak".into(), call: None }, now).await.unwrap();
        paging.open(&mut run, first, "+15550100", None, None, now).await;
        assert_eq!(orders(), vec![(erin, "sip:+442079460100@127.0.0.1:5999".to_string(), true)], "Mallory's +882 is skipped, Erin is called through the trunk");
        let log = events(first, "dial_plan").await;
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(log[0].starts_with(&format!("+88212345678 ({mallory}) not called: ")) && log[0].contains("International Networks"), "{log:?}");

        // The cap of 1 is used: the next request pages Erin's SIP URI only.
        let second = store.create_request(org, &oncall_core::NewRequest { caller: "+15550101".into(), summary: "leak".into(), call: None }, now + Millis(1000)).await.unwrap();
        paging.open(&mut run, second, "+15550101", None, None, now + Millis(1000)).await;
        assert_eq!(orders(), vec![(erin, "sip:erin@127.0.0.1:5998".to_string(), false)], "no trunk call beyond the cap");
        let capped = events(second, "page_cap").await;
        assert!(capped.len() == 1 && capped[0].contains("[paging] max_pages_per_hour"), "{capped:?}");
        assert_eq!(store.request(org, second).await.unwrap().state.status(), oncall_core::RequestStatus::Notifying, "the request is open and paging");
    }

}

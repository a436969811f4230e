//! Paging (issue 6): phoning whoever is on call for a request a caller opened with "page on-call".
//!
//! One tokio task owns the escalation [`Engine`] of every open request this instance runs (in memory;
//! each one is also saved after every change under a lease this instance renews every 10 s, so that
//! when it dies, another instance, or this one restarted, takes the escalation over where it was).
//! It is the thin loop around the sans-IO engine: it feeds it inputs (a request opened, what became
//! of a call, time passing), carries out its commands, and moves the request through the store:
//!
//! - `Notify` by call → look the person up, pick their first contact (a SIP URI is called directly,
//!   an E.164 number through the first `[[trunks]]` entry), record the notification (the ledger's
//!   unique key keeps a person from being paged twice for one stage) and ask the call controller to
//!   place the call ([`ControllerCommand::Page`]).
//! - The controller reports back ([`Outcome`]): ringing/answered → `Delivered`; the employee pressed 1
//!   → `Answered` and the request is answered then acknowledged by them; 3, no key or a hang-up before
//!   accepting → `Declined`; a call that never got answered → `Failed`; 9 → the request is completed.
//! - `CancelPending` / `Exhausted` → the controller stops every other leg of the request; a stage that
//!   ends while a phone still rings has that ring cancelled.
//!
//! - A caller still holding (`caller_call`) is bridged to the employee who presses 1 (see
//!   `hold_room.rs`); when the escalation is exhausted a holding caller is told nobody is available.
//!
//! - `Notify` by text → `texts.rs` sends it (SMS gateway or SIP MESSAGE, [`ControllerCommand::SendText`]);
//!   its outcome comes back as a `CallResult` (`Ringing` = delivered). Replies come back as
//!   [`PagingEvent::TextReply`] (the store was already changed by `texts.rs`).
//!
//! - Business hours (issue 7 item 2): a request whose call chose a `normal` option after hours (the call row's
//!   recording kind is `page_when_open`) is not paged when opened: its `page_at` is set to the next opening
//!   ("deferred until …" in its log). Every heartbeat (and at start-up) the due ones are claimed from the
//!   store, once across all instances, and their escalation starts then; one acknowledged or completed on
//!   the web before then stays unpaged.
//!
//! - Toll fraud (issue #15 item 4): a phone number is called or texted through the trunk only when the dial
//!   plan allows it (checked again here, not only when the contact was saved: a contact saved before the rule,
//!   or written to the database by hand, is skipped with a `dial_plan` event in the request's log and a
//!   warning; the person's next contact is used, or the notification fails and the escalation moves on). A
//!   request beyond `[paging] max_pages_per_hour` (`oncall_core::page_cap`) still runs its escalation, but
//!   only to registered phones and SIP URIs: it places no trunk call and sends no text (`page_cap` event).

use crate::config::PagingConfig;
use oncall_calls::dial::Dialer;
use oncall_calls::orders::{CallRef, ControllerCommand, Outcome, PageOrder, PagingEvent};
use oncall_core::escalation::{Command, Engine, Input, NotificationKey, Phase};
use oncall_core::business_hours::when_to_page;
use oncall_core::{Actor, Channel, Contact, Millis, OrgId, PageWhen, RecordingKind, RequestId, Store, Timestamp, Urgency};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

struct Active {
    engine: Engine,
    caller: String,
    caller_call: Option<CallRef>,
    message: Arc<[i16]>,
    /// The stage the controller last heard about, to cancel rings of stages that ended.
    stage: Option<u32>,
    /// The leg whose employee accepted (or snoozed): it stays up when the others are cancelled.
    accepted: Option<NotificationKey>,
    /// Trunk calls and texts allowed (false: the request came beyond `[paging] max_pages_per_hour`).
    trunk: bool,
}

/// Request event kinds written here for issue #15 item 4.
const EVENT_DIAL_PLAN: &str = "dial_plan";
const EVENT_PAGE_CAP: &str = "page_cap";

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
    /// The requests this instance paged through the trunk in the last hour (`[paging] max_pages_per_hour`).
    pub page_cap: std::sync::Mutex<oncall_core::page_cap::PageCap>,
}

/// How long an escalation stays ours without a heartbeat: after a crash, another instance (or
/// this one restarted) carries it on after at most this long.
const LEASE: Millis = Millis(30_000);
/// How often leases are renewed and orphaned escalations looked for.
const HEARTBEAT: Duration = Duration::from_secs(10);

impl Paging {
    pub async fn run(self, mut events: mpsc::UnboundedReceiver<PagingEvent>) {
        tracing::info!(key_timeout_secs = self.config.key_timeout_secs, trunk = self.dialer.trunk_name().unwrap_or("(none)"), "paging enabled");
        let mut active: HashMap<RequestId, Active> = HashMap::new();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first beat (at once) also takes back what this instance held before a restart.
        let mut restarting = true;
        loop {
            let next = active.values().filter_map(|a| a.engine.poll_timeout()).min();
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep(Duration::from_millis((t - Timestamp::now()).0.max(0) as u64)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    self.on_event(ev, &mut active).await;
                }
                _ = heartbeat.tick() => {
                    self.heartbeat(&mut active, restarting).await;
                    self.page_due_deferred(Timestamp::now(), &mut active).await;
                    restarting = false;
                }
                _ = sleep => {
                    let now = Timestamp::now();
                    let due: Vec<RequestId> = active.iter().filter(|(_, a)| a.engine.poll_timeout().is_some_and(|t| t <= now)).map(|(id, _)| *id).collect();
                    for id in due {
                        if let Some(mut a) = active.remove(&id) {
                            a.engine.handle(Input::TimePassed, now);
                            self.drive(a, &mut active).await;
                        }
                    }
                }
            }
        }
    }

    async fn on_event(&self, ev: PagingEvent, active: &mut HashMap<RequestId, Active>) {
        let now = Timestamp::now();
        match ev {
            PagingEvent::RequestOpened { request, caller, recording, caller_call } => {
                if active.contains_key(&request) || self.defer_if_after_hours(request, now).await {
                    return;
                }
                self.start_escalation(request, &caller, Some(recording), caller_call, now, active).await;
            }
            PagingEvent::CallResult { key, outcome } => self.on_call_result(key, outcome, now, active).await,
            PagingEvent::TextReply { request, person, action } => self.on_text_reply(request, person, action, now, active).await,
        }
    }

    /// The request's call chose a `normal` option after hours (see the module docs).
    async fn is_normal_urgency(&self, request: RequestId) -> bool {
        let Ok(Some(call)) = self.store.request(self.org, request).await.map(|r| r.call) else { return false };
        matches!(self.store.call(self.org, call).await, Ok(c) if c.recording_kind.as_deref() == Some("page_when_open"))
    }

    /// Defers a normal request while the organization is closed; true when it must not be paged now. When
    /// in doubt (the store fails) it pages now rather than lose the request.
    async fn defer_if_after_hours(&self, request: RequestId, now: Timestamp) -> bool {
        if !self.is_normal_urgency(request).await {
            return false;
        }
        let hours = match self.store.business_hours(self.org).await {
            Ok(h) => h.map(|s| s.hours),
            Err(e) => {
                tracing::error!(%request, error = %e, "cannot read business hours; paging now");
                return false;
            }
        };
        let (PageWhen::At(at), Some(hours)) = (when_to_page(Urgency::Normal, hours.as_ref(), now), hours.as_ref()) else { return false };
        let detail = format!("deferred until {} {} (normal urgency, after business hours)", hours.local(at).format("%Y-%m-%d %H:%M"), hours.time_zone);
        match self.store.defer_request(self.org, request, at, &detail, now).await {
            Ok(true) => {
                tracing::info!(%request, page_at = %at, "after hours: the request pages when business hours start");
                true
            }
            Ok(false) => {
                tracing::info!(%request, "after hours: the request was already taken; not paged");
                true
            }
            Err(e) => {
                tracing::error!(%request, error = %e, "cannot defer the request; paging now");
                false
            }
        }
    }

    /// Starts the escalation of the deferred requests due at `now` (claimed once across instances).
    async fn page_due_deferred(&self, now: Timestamp, active: &mut HashMap<RequestId, Active>) {
        let due = match self.store.claim_due_deferred(self.org, now).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for deferred requests");
                return;
            }
        };
        for request in due {
            if active.contains_key(&request) {
                continue;
            }
            let caller = self.store.request(self.org, request).await.map(|r| r.caller).unwrap_or_default();
            let recording = match self.store.recordings_for_request(self.org, request).await {
                Ok(list) => list.into_iter().find(|r| r.kind == RecordingKind::Message).map(|r| self.recordings_root.join(r.storage_key)),
                Err(_) => None,
            };
            tracing::info!(%request, "business hours started: paging the deferred request");
            self.start_escalation(request, &caller, recording, None, now, active).await;
        }
    }

    /// Begins the escalation of `request` and carries out its first commands. The policy is the first
    /// enabled one, or, for a call dialled as `oncall-<schedule>-bridge`, the one that pages that
    /// schedule soonest (`redirect::choose_policy`; the choice goes to the request's log).
    async fn start_escalation(
        &self,
        request: RequestId,
        caller: &str,
        recording: Option<PathBuf>,
        caller_call: Option<CallRef>,
        now: Timestamp,
        active: &mut HashMap<RequestId, Active>,
    ) {
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
        let choice = choose_policy(&called, &schedules, &policies);
        let Some(policy) = choice.policy() else {
            tracing::warn!(%request, "no enabled escalation policy: request not paged");
            return;
        };
        let dialled = key.map(|k| format!("oncall-{k}")).unwrap_or_default();
        let event = match choice {
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
        let message = match recording {
            Some(path) => oncall_recordings::access::load_message(request, path, &self.recordings_root, &*self.archive).await,
            None => Arc::from(Vec::new()),
        };
        let engine = match self.store.begin_escalation(self.org, request, policy.id, now).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(%request, error = %e, "cannot start the escalation");
                return;
            }
        };
        if let Some(detail) = event {
            if let Err(e) = self.store.append_event(self.org, request, Actor::System, "policy", &detail, now).await {
                tracing::warn!(%request, error = %e, "cannot log the escalation policy");
            }
        }
        self.log_instance(request, "escalation run by instance", now).await;
        let trunk = self.admit_page(request, now).await;
        tracing::info!(%request, policy = %policy.name, message_secs = message.len() as f64 / 8000.0, "escalation started");
        let a = Active { engine, caller: announce_caller(caller), caller_call, message, stage: None, accepted: None, trunk };
        self.drive(a, active).await;
    }

    async fn on_call_result(&self, key: NotificationKey, outcome: Outcome, now: Timestamp, active: &mut HashMap<RequestId, Active>) {
        let person = key.person;
        let request = key.request;
        tracing::info!(%request, %person, stage = key.stage, ?outcome, "page call result");
        let status = match &outcome {
            Outcome::Ringing if key.channel == Channel::Text => "delivered",
            Outcome::Ringing => "ringing",
            Outcome::Answered => "answered",
            Outcome::Accepted => "accepted",
            Outcome::Declined => "declined",
            Outcome::Completed => "completed",
            Outcome::EscalateNow => "escalated",
            Outcome::Snooze => "snoozed",
            Outcome::Failed(_) => "failed",
        };
        if let Err(e) = self.store.set_notification_status(self.org, &key, status, now).await {
            tracing::warn!(%request, error = %e, "cannot update the notification status");
        }
        // Store transitions first: they hold even when the escalation has already finished.
        match &outcome {
            Outcome::Accepted => {
                // notifying → answered → acknowledged. From exhausted only the acknowledgement applies.
                if let Err(e) = self.store.mark_answered(self.org, request, person, now).await {
                    tracing::debug!(%request, error = %e, "not marked answered");
                }
                match self.store.acknowledge(self.org, request, Actor::Person(person), now).await {
                    Ok(()) => tracing::info!(%request, %person, "request acknowledged by the employee"),
                    Err(e) => tracing::warn!(%request, %person, error = %e, "cannot acknowledge (someone else took it?)"),
                }
            }
            Outcome::Completed => match self.store.complete(self.org, request, Actor::Person(person), now).await {
                Ok(()) => tracing::info!(%request, %person, "request completed by the employee"),
                Err(e) => tracing::warn!(%request, error = %e, "cannot complete the request"),
            },
            _ => {}
        }
        let Some(mut a) = active.remove(&request) else { return };
        let input = match outcome {
            Outcome::Ringing | Outcome::Answered => Input::Delivered(key),
            Outcome::Accepted => {
                a.accepted = Some(key);
                Input::Answered { person }
            }
            Outcome::Declined => Input::Declined { person },
            Outcome::Failed(_) => Input::Failed(key),
            Outcome::Completed => Input::TimePassed,
            Outcome::EscalateNow => Input::EscalateNow { person },
            Outcome::Snooze => {
                // The snoozing employee's own call stays up to hear "snoozed".
                a.accepted = Some(key);
                let until = now + Millis::seconds(self.config.snooze_secs as i64);
                tracing::info!(%request, %person, snooze_secs = self.config.snooze_secs, "snoozed: the step is paged again then");
                Input::Snooze { person, until }
            }
        };
        a.engine.handle(input, now);
        self.drive(a, active).await;
    }

    async fn on_text_reply(
        &self,
        request: RequestId,
        person: oncall_core::PersonId,
        action: oncall_core::text_reply::ReplyAction,
        now: Timestamp,
        active: &mut HashMap<RequestId, Active>,
    ) {
        use oncall_core::text_reply::ReplyAction;
        let Some(mut a) = active.remove(&request) else { return };
        let input = match action {
            ReplyAction::Acknowledge => Input::Acknowledged { by: Actor::Person(person) },
            // Completed in the store; the engine only needs to notice it is over.
            ReplyAction::Complete => Input::Acknowledged { by: Actor::Person(person) },
            ReplyAction::EscalateNow => Input::EscalateNow { person },
            ReplyAction::Snooze => Input::Snooze { person, until: now + Millis::seconds(self.config.snooze_secs as i64) },
        };
        tracing::info!(%request, %person, action = action.as_str(), "text reply applied to the escalation");
        a.engine.handle(input, now);
        self.drive(a, active).await;
    }

    /// Carries out the engine's commands, tells the controller about a stage change, saves the
    /// engine, and keeps it while it may still issue commands.
    async fn drive(&self, mut a: Active, active: &mut HashMap<RequestId, Active>) {
        let request = a.engine.request();
        while let Some(cmd) = a.engine.poll_command() {
            let now = Timestamp::now();
            match cmd {
                Command::Notify(key) => {
                    if let Err(reason) = self.notify(&a, key, now).await {
                        tracing::warn!(%request, person = %key.person, stage = key.stage, %reason, "notification failed");
                        let _ = self.store.set_notification_status(self.org, &key, "failed", now).await;
                        a.engine.handle(Input::Failed(key), now);
                    }
                }
                Command::CancelPending { request } => {
                    tracing::info!(%request, "escalation ended: cancelling the other calls");
                    let _ = self.controller.send(ControllerCommand::CancelRequest { request, keep: a.accepted });
                }
                Command::Exhausted { request } => {
                    tracing::warn!(%request, "escalation exhausted: nobody took the request");
                    if let Err(e) = self.store.mark_exhausted(self.org, request, now).await {
                        tracing::warn!(%request, error = %e, "cannot mark the request exhausted");
                    }
                    let _ = self.controller.send(ControllerCommand::CancelRequest { request, keep: None });
                    if let Some(caller) = a.caller_call {
                        let _ = self.controller.send(ControllerCommand::ReleaseCaller { caller });
                    }
                }
            }
        }
        let stage = match a.engine.phase() {
            Phase::Step { stage, .. } | Phase::LastResort { stage, .. } => Some(stage),
            _ => None,
        };
        if let (Some(old), Some(new)) = (a.stage, stage) {
            if new != old {
                tracing::info!(%request, stage = new, "escalation moved to the next stage");
                let _ = self.controller.send(ControllerCommand::CancelStale { request, stage: new });
            }
        }
        a.stage = stage.or(a.stage);
        match self.store.hold_escalation(self.org, &a.engine, &self.owner, LEASE, Timestamp::now()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%request, "another instance took this escalation over (our lease had expired); leaving it to them");
                return;
            }
            Err(e) => tracing::warn!(%request, error = %e, "cannot save the escalation"),
        }
        if a.engine.phase().is_finished() {
            tracing::info!(%request, phase = ?a.engine.phase(), "escalation finished");
        } else {
            active.insert(request, a);
        }
    }

    /// Renews the leases of the escalations this instance runs, and takes over those nobody runs
    /// (their instance died, or, when `restarting`, this one before it restarted): each resumes
    /// where it was saved.
    async fn heartbeat(&self, active: &mut HashMap<RequestId, Active>, restarting: bool) {
        let now = Timestamp::now();
        if let Err(e) = self.store.renew_escalation_leases(self.org, &self.owner, LEASE, now).await {
            tracing::warn!(error = %e, "cannot renew escalation leases");
        }
        let claimed = match self.store.claim_orphaned_escalations(self.org, &self.owner, now, LEASE, 100, restarting).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for orphaned escalations");
                return;
            }
        };
        for work in claimed {
            let request = work.request;
            if active.contains_key(&request) {
                continue;
            }
            let caller = self.store.request(self.org, request).await.map(|r| r.caller).unwrap_or_default();
            let message_path = match self.store.recordings_for_request(self.org, request).await {
                Ok(list) => list.into_iter().find(|r| r.kind == RecordingKind::Message).map(|r| self.recordings_root.join(r.storage_key)),
                Err(_) => None,
            };
            let message = match message_path {
                Some(path) => oncall_recordings::access::load_message(request, path, &self.recordings_root, &*self.archive).await,
                None => Arc::from(Vec::new()),
            };
            tracing::info!(%request, owner = %self.owner, phase = ?work.engine.phase(), "escalation taken over");
            self.log_instance(request, "escalation taken over by instance", now).await;
            let mut engine = work.engine;
            engine.handle(Input::TimePassed, Timestamp::now());
            // A request capped by the instance that started it stays capped (its log says so).
            let capped = self.store.request_events(self.org, request).await.map(|log| log.iter().any(|e| e.kind == EVENT_PAGE_CAP)).unwrap_or(false);
            let a = Active { engine, caller: announce_caller(&caller), caller_call: None, message, stage: None, accepted: None, trunk: !capped };
            self.drive(a, active).await;
        }
    }

    /// Writes which instance drives the request into its event log (several instances share the database).
    async fn log_instance(&self, request: RequestId, what: &str, now: Timestamp) {
        let detail = format!("{what} {}", self.owner);
        if let Err(e) = self.store.append_event(self.org, request, Actor::System, "instance", &detail, now).await {
            tracing::warn!(%request, error = %e, "cannot write the instance to the request's log");
        }
    }

    /// Records the notification and orders the call; `Err` with why when it cannot be placed.
    async fn notify(&self, a: &Active, key: NotificationKey, now: Timestamp) -> Result<(), String> {
        if key.channel == Channel::Text {
            return self.notify_text(a, key, now).await;
        }
        if key.channel != Channel::Call {
            return Err(format!("channel {} is not supported yet", key.channel));
        }
        match self.store.record_notification(self.org, &key, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(request = %key.request, person = %key.person, stage = key.stage, "already paged for this stage; not again");
                return Ok(());
            }
            Err(e) => return Err(format!("cannot record the notification: {e}")),
        }
        let person = self.store.person(self.org, key.person).await.map_err(|e| format!("cannot load the person: {e}"))?;
        if person.disabled {
            return Err("person is disabled".into());
        }
        // Phones the person registered with OnCall ring together, and cost nothing per call; the first
        // to answer takes the page and the controller cancels the others.
        let phones = self.dialer.registered_phones(key.person);
        if !phones.is_empty() {
            for p in phones {
                tracing::info!(request = %key.request, person = %key.person, name = %person.name, stage = key.stage, contact = %p.contact, source = %p.source, "paging a registered phone");
                let order = PageOrder { key, route: p.route, caller: a.caller.clone(), message: a.message.clone(), caller_call: a.caller_call };
                self.controller.send(ControllerCommand::Page(order)).map_err(|_| "the call controller has stopped".to_string())?;
            }
            return Ok(());
        }
        let contacts = self.dialable(a, key, &person.contacts, now).await;
        let contact = contacts.first().ok_or("no phone number, SIP URI or registered phone (that the dial plan and the page cap allow)")?;
        let route = self.dialer.route(contact, "").await?;
        tracing::info!(request = %key.request, person = %key.person, name = %person.name, stage = key.stage, target = %route.target, via = %route.next_hop(), "paging by phone");
        let order = PageOrder { key, route, caller: a.caller.clone(), message: a.message.clone(), caller_call: a.caller_call };
        self.controller.send(ControllerCommand::Page(order)).map_err(|_| "the call controller has stopped".to_string())
    }
}

impl Paging {
    /// A `text` notification: recorded like a call's (never twice per stage), then sent by `texts.rs`.
    async fn notify_text(&self, a: &Active, key: NotificationKey, now: Timestamp) -> Result<(), String> {
        let texts = self.texts.as_ref().ok_or("texts are off ([texts] enabled = false)")?;
        match self.store.record_notification(self.org, &key, now).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(format!("cannot record the notification: {e}")),
        }
        let mut person = self.store.person(self.org, key.person).await.map_err(|e| format!("cannot load the person: {e}"))?;
        if person.disabled {
            return Err("person is disabled".into());
        }
        // Texts to a number the dial plan refuses, or beyond the page cap, are not sent (a SIP URI still is).
        person.contacts = self.dialable(a, key, &person.contacts, now).await;
        texts.send_notification(key, &person, &a.caller).await
    }

    /// Counts a request starting to page against `[paging] max_pages_per_hour`; false (logged in the request
    /// and as a warning) when it is beyond the cap and must not use the trunk.
    async fn admit_page(&self, request: RequestId, now: Timestamp) -> bool {
        use oncall_core::page_cap::CapVerdict;
        let verdict = self.page_cap.lock().map(|mut cap| cap.admit(self.config.max_pages_per_hour, now)).unwrap_or(CapVerdict::Page);
        let CapVerdict::Capped { max } = verdict else { return true };
        tracing::warn!(%request, max_pages_per_hour = max, "page cap reached: this request places no trunk call and sends no text");
        let detail = format!("{max} requests already paged in the last hour ([paging] max_pages_per_hour): no trunk calls or texts for this request; registered phones and SIP URIs are still paged");
        if let Err(e) = self.store.append_event(self.org, request, Actor::System, EVENT_PAGE_CAP, &detail, now).await {
            tracing::warn!(%request, error = %e, "cannot log the page cap");
        }
        false
    }

    /// The contacts a notification may use: phone numbers only when the request may use the trunk and the dial
    /// plan allows them (each one skipped is logged in the request); SIP URIs always.
    async fn dialable(&self, a: &Active, key: NotificationKey, contacts: &[Contact], now: Timestamp) -> Vec<Contact> {
        let mut kept = Vec::with_capacity(contacts.len());
        for c in contacts {
            let Contact::Phone(number) = c else {
                kept.push(c.clone());
                continue;
            };
            let refusal = match self.store.dial_plan().check(number) {
                Err(r) => r.to_string(),
                // The page cap has already been logged once for the whole request.
                Ok(()) if !a.trunk => continue,
                Ok(()) => {
                    kept.push(c.clone());
                    continue;
                }
            };
            tracing::warn!(request = %key.request, person = %key.person, stage = key.stage, %refusal, "not dialled: the dial plan refuses the number");
            let detail = format!("{number} ({}) not {}: {refusal}", key.person, if key.channel == Channel::Text { "texted" } else { "called" });
            if let Err(e) = self.store.append_event(self.org, key.request, Actor::System, EVENT_DIAL_PLAN, &detail, now).await {
                tracing::warn!(request = %key.request, error = %e, "cannot log the dial plan refusal");
            }
        }
        kept
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
        use oncall_core::store::NewCall;
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
        let open_request = |kind: &'static str| {
            let store = store.clone();
            async move {
                let new = NewCall { org, call_id: format!("c-{kind}-{}", rand::random::<u32>()), caller: "sip:+33100000000@example.net".into(), called: "sip:oncall@example.net".into(), received_at: night, instance: "test".into() };
                let call = store.insert_call(&new).await.unwrap();
                store.call_recording_started(org, call, "/nowhere.wav", kind).await.unwrap();
                store.create_request_for_call(org, call, &new.caller, night).await.unwrap()
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let paging = Paging {
            store: store.clone(),
            org,
            config: PagingConfig::default(),
            dialer: Dialer::new(vec![], "sip:oncall@127.0.0.1".into(), None),
            controller: tx,
            owner: "test".into(),
            recordings_root: PathBuf::from("/nowhere"),
            archive: Arc::new(oncall_recordings::storage::LocalStore::new("/nowhere")),
            texts: None,
            page_cap: Default::default(),
        };
        let mut active = HashMap::new();

        let urgent = open_request("page").await;
        assert!(!paging.defer_if_after_hours(urgent, night).await, "urgent pages at any hour");
        let normal = open_request("page_when_open").await;
        assert!(paging.defer_if_after_hours(normal, night).await, "normal waits at 02:00");
        assert_eq!(store.deferred_until(org, normal).await.unwrap(), Some(paris(31, 8, 0)));
        let log = store.request_events(org, normal).await.unwrap();
        assert!(log.iter().any(|e| e.detail.starts_with("deferred until 2026-03-31 08:00 Europe/Paris")), "{log:?}");
        let handled = open_request("page_when_open").await;
        assert!(paging.defer_if_after_hours(handled, night).await);
        store.acknowledge(org, handled, Actor::System, paris(31, 7, 0)).await.unwrap();

        paging.page_due_deferred(paris(31, 7, 59), &mut active).await;
        assert!(rx.try_recv().is_err() && active.is_empty(), "nothing before opening");
        paging.page_due_deferred(paris(31, 8, 0), &mut active).await;
        match rx.try_recv() {
            Ok(ControllerCommand::Page(order)) => {
                assert_eq!((order.key.request, order.key.person), (normal, erin));
                assert_eq!(order.route.target, "sip:erin@127.0.0.1:5999");
            }
            other => panic!("expected a page at 08:00, got {other:?}"),
        }
        assert!(rx.try_recv().is_err(), "the acknowledged request is not paged");
        assert_eq!(store.request(org, normal).await.unwrap().state.status(), oncall_core::RequestStatus::Notifying);
        paging.page_due_deferred(paris(31, 8, 1), &mut active).await;
        assert!(rx.try_recv().is_err(), "paged once");
        // During business hours a normal request is not deferred.
        let daytime = open_request("page_when_open").await;
        assert!(!paging.defer_if_after_hours(daytime, paris(31, 10, 0)).await);
    }

    /// A request whose call was dialled as `oncall-night-bridge` pages Night's on-call person through the policy
    /// that pages Night, and says so in its log; `oncall-weekend-bridge`, with no policy paging Weekend, falls back
    /// to the first enabled policy with a warning in the log; an ordinary number uses the first enabled policy.
    #[tokio::test]
    async fn a_bridge_call_pages_with_its_schedules_policy() {
        use oncall_core::escalation::{NewPolicy, Step, Target};
        use oncall_core::schedule::{Layer, NewSchedule, Rotation, ShiftLength};
        use oncall_core::store::NewCall;
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
        let open_request = |called: &'static str| {
            let store = store.clone();
            async move {
                let new = NewCall { org, call_id: format!("c-{}", rand::random::<u32>()), caller: "sip:+33100000000@example.net".into(), called: called.into(), received_at: now, instance: "test".into() };
                let call = store.insert_call(&new).await.unwrap();
                store.call_recording_started(org, call, "/nowhere.wav", "page").await.unwrap();
                store.create_request_for_call(org, call, &new.caller, now).await.unwrap()
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let paging = Paging {
            store: store.clone(),
            org,
            config: PagingConfig::default(),
            dialer: Dialer::new(vec![], "sip:oncall@127.0.0.1".into(), None),
            controller: tx,
            owner: "test".into(),
            recordings_root: PathBuf::from("/nowhere"),
            archive: Arc::new(oncall_recordings::storage::LocalStore::new("/nowhere")),
            texts: None,
            page_cap: Default::default(),
        };
        let mut active = HashMap::new();
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
        paging.start_escalation(bridged, "+33100000000", None, None, now, &mut active).await;
        assert_eq!(paged(bridged), vec![frank], "Night's on-call person, through Night desk");
        assert_eq!(policy_log(bridged).await, vec!["paged with policy Night desk (dialled oncall-Night-Bridge)"]);

        let fallback = open_request("sip:oncall-weekend-bridge@127.0.0.1").await;
        paging.start_escalation(fallback, "+33100000000", None, None, now, &mut active).await;
        assert_eq!(paged(fallback), vec![erin], "no policy pages Weekend: Main");
        assert_eq!(
            policy_log(fallback).await,
            vec!["paged with policy Main (dialled oncall-weekend-bridge, but no enabled policy pages schedule Weekend)"]
        );

        let ordinary = open_request("sip:100@127.0.0.1").await;
        paging.start_escalation(ordinary, "+33100000000", None, None, now, &mut active).await;
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
        let (tx, mut rx) = mpsc::unbounded_channel();
        let paging = Paging {
            store: store.clone(),
            org,
            config: PagingConfig { max_pages_per_hour: 1, ..PagingConfig::default() },
            dialer: Dialer::new(vec![trunk], "sip:oncall@127.0.0.1".into(), None),
            controller: tx,
            owner: "test".into(),
            recordings_root: PathBuf::from("/nowhere"),
            archive: Arc::new(oncall_recordings::storage::LocalStore::new("/nowhere")),
            texts: None,
            page_cap: Default::default(),
        };
        let mut active = HashMap::new();
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
        paging.start_escalation(first, "+15550100", None, None, now, &mut active).await;
        assert_eq!(orders(), vec![(erin, "sip:+442079460100@127.0.0.1:5999".to_string(), true)], "Mallory's +882 is skipped, Erin is called through the trunk");
        let log = events(first, "dial_plan").await;
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(log[0].starts_with(&format!("+88212345678 ({mallory}) not called: ")) && log[0].contains("International Networks"), "{log:?}");

        // The cap of 1 is used: the next request pages Erin's SIP URI only.
        let second = store.create_request(org, &oncall_core::NewRequest { caller: "+15550101".into(), summary: "leak".into(), call: None }, now + Millis(1000)).await.unwrap();
        paging.start_escalation(second, "+15550101", None, None, now + Millis(1000), &mut active).await;
        assert_eq!(orders(), vec![(erin, "sip:erin@127.0.0.1:5998".to_string(), false)], "no trunk call beyond the cap");
        let capped = events(second, "page_cap").await;
        assert!(capped.len() == 1 && capped[0].contains("[paging] max_pages_per_hour"), "{capped:?}");
        assert_eq!(store.request(org, second).await.unwrap().state.status(), oncall_core::RequestStatus::Notifying, "the request is open and paging");
    }

}

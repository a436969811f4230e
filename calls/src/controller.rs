//! The call controller: one tokio task that owns the SIP user agent, feeds it from the transports,
//! sends what it produces, and turns its events into media sessions and call-log rows.
//! It is the only place that knows about sockets, RTP ports, the media engine and the IVR at once.
//! It also places the paging task's calls to employees ("legs", see `paging.rs`) and runs a
//! [`PageSession`] on each once it is answered.

use crate::call_log::CallLogEvent;
use crate::ivr_session::{CloseJob, IvrSession, SessionEvent};
use crate::page_session::{PageDecision, PageSession, PageSessionEvent};
use crate::orders::{ControllerCommand, Outcome, PageOrder, PagingEvent};
use oncall_core::escalation::NotificationKey;

/// Where IVR sessions report: their events, and the thread that closes their recordings (which forwards
/// the events that must follow a recording).
struct Sessions {
    events: mpsc::UnboundedSender<SessionEvent>,
    closer: std::sync::mpsc::Sender<CloseJob>,
}
use oncall_core::{RecordingKind, Timestamp};
use crate::ivr_settings::IvrSource;
use oncall_sip::admission::{Admission, Verdict};
use oncall_sip::media::{MediaCallSpec, MediaCommand, MediaEngine, RtpPorts, Signal};
use oncall_sip::sdp::Negotiated;
use crate::trunks::Trunks;
use oncall_sip::transport::{Inbound, Sender};
use oncall_sip::ua::outbound::OutboundCall;
use oncall_sip::ua::{CallRef, UaEvent, UserAgent};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Counters shown on /metrics.
#[derive(Default)]
pub struct CallCounters {
    pub calls_received: AtomicU64,
    pub calls_answered: AtomicU64,
    pub calls_rejected: AtomicU64,
    pub active_calls: AtomicUsize,
    pub sip_messages: AtomicU64,
}

pub struct Controller {
    pub ua: UserAgent,
    pub sender: Sender,
    pub engine: MediaEngine,
    pub ports: RtpPorts,
    pub media_ip: IpAddr,
    pub answer_after: Duration,
    pub ivr: IvrSource,
    pub recordings_dir: PathBuf,
    pub org_slug: String,
    pub log: mpsc::UnboundedSender<CallLogEvent>,
    pub counters: Arc<CallCounters>,
    pub admission: Admission,
    /// How long a graceful shutdown waits for calls to finish before hanging them up.
    pub drain: Duration,
    pub trunks: Trunks,
    /// Set when `[paging] enabled`: where call results go, and the employee IVR's settings.
    pub paging: Option<PagingLink>,
    /// Set when `[registrar] enabled`: answers the REGISTERs the user agent hands over.
    pub registrar: Option<crate::phones::RegistrarService>,
    /// Text messages by SIP MESSAGE: sent for paging, and replies received (`[texts]`).
    pub texts: crate::sip_texts::SipTexts,
    /// The organization's business hours: after hours, `normal` IVR options defer their page.
    pub hours: crate::opening_hours::HoursSource,
    /// Set when `[redirect] enabled`: answers INVITEs to `oncall-<schedule>@` (see `redirect.rs`).
    pub redirect: Option<crate::redirect::Redirector>,
}

pub struct PagingLink {
    pub events: mpsc::UnboundedSender<PagingEvent>,
    pub key_timeout: Duration,
    pub max_retries: u32,
    /// Where "page on-call" callers wait for an employee, and for how long at most.
    pub hold: crate::hold_room::HoldRoom,
    pub max_hold: Duration,
}

/// A call we placed to page an employee.
struct Leg {
    key: NotificationKey,
    port: u16,
    /// Our RTP socket pair until media starts.
    sockets: Option<(UdpSocket, UdpSocket)>,
    caller: String,
    /// The caller's call while they hold for this page.
    caller_call: Option<CallRef>,
    message: Arc<[i16]>,
    target: String,
    rang: bool,
    answered: bool,
    media_started: bool,
}

struct CallState {
    /// Our RTP socket pair until media starts, then only the port number to release.
    sockets: Option<(UdpSocket, UdpSocket)>,
    port: u16,
    offer: Option<Negotiated>,
    media_started: bool,
    answer_at: Option<Instant>,
    call_id: String,
}

impl Controller {
    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut commands: mpsc::UnboundedReceiver<ControllerCommand>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let (session_tx, mut session_rx) = mpsc::unbounded_channel::<SessionEvent>();
        let sessions = Sessions { closer: crate::ivr_session::spawn_closer(session_tx.clone()), events: session_tx };
        let mut calls: HashMap<CallRef, CallState> = HashMap::new();
        let mut legs: HashMap<CallRef, Leg> = HashMap::new();
        let (page_tx, mut page_rx) = mpsc::unbounded_channel::<PageSessionEvent>();
        let mut commands_open = true;
        // Set by SIGTERM: (when to hang up whoever is left, when to stop regardless).
        let mut draining: Option<(Instant, Instant)> = None;
        loop {
            if let Some((hangup_at, stop_at)) = draining {
                let now = Instant::now();
                if (calls.is_empty() && legs.is_empty() && self.trunks.finished(now)) || now >= stop_at {
                    break;
                }
                if now >= hangup_at {
                    tracing::warn!(calls = calls.len(), "drain timeout: hanging up the remaining calls");
                    for call in calls.keys().copied().collect::<Vec<_>>() {
                        self.ua.hangup(call, now);
                    }
                    for call in legs.keys().copied().collect::<Vec<_>>() {
                        self.ua.cancel(call, now);
                    }
                    draining = Some((stop_at, stop_at));
                }
            }
            let next_answer = calls.values().filter_map(|c| c.answer_at).min();
            let drain_wake = draining.map(|(h, s)| h.min(s));
            let wake = [self.ua.poll_timeout(), next_answer, drain_wake, self.trunks.poll_timeout()].into_iter().flatten().min();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = inbound.recv() => {
                    let Some(msg) = msg else { break };
                    let now = Instant::now();
                    self.counters.sip_messages.fetch_add(1, Ordering::Relaxed);
                    self.ua.handle_datagram(&msg.data, msg.source, now);
                    // Take what else is queued before acting, to batch under load.
                    for _ in 0..64 {
                        match inbound.try_recv() {
                            Ok(m) => {
                                self.counters.sip_messages.fetch_add(1, Ordering::Relaxed);
                                self.ua.handle_datagram(&m.data, m.source, now)
                            }
                            Err(_) => break,
                        }
                    }
                }
                ev = session_rx.recv() => {
                    let Some(ev) = ev else { break };
                    match ev {
                        SessionEvent::Hangup(call) => self.ua.hangup(call, Instant::now()),
                        other => { let _ = self.log.send(CallLogEvent::Session(other)); }
                    }
                }
                cmd = commands.recv(), if commands_open => {
                    match cmd {
                        Some(cmd) => self.on_command(cmd, &mut legs, Instant::now()),
                        // Paging is off (or stopped): nothing more will come.
                        None => commands_open = false,
                    }
                }
                ev = page_rx.recv() => {
                    // Never None: this loop holds a sender.
                    if let Some(ev) = ev {
                        self.on_page_decision(ev, Instant::now());
                    }
                }
                _ = sleep => {
                    let now = Instant::now();
                    self.ua.handle_timeout(now);
                    let due: Vec<CallRef> = calls.iter().filter(|(_, c)| c.answer_at.is_some_and(|t| t <= now)).map(|(k, _)| *k).collect();
                    for call in due {
                        if let Some(c) = calls.get_mut(&call) {
                            c.answer_at = None;
                        }
                        self.answer(call, &mut calls, &sessions, now);
                    }
                }
                _ = shutdown.changed(), if draining.is_none() => {
                    let now = Instant::now();
                    tracing::info!(calls = calls.len(), drain_secs = self.drain.as_secs(), "draining: new calls get 503");
                    self.admission.start_draining();
                    draining = Some((now + self.drain, now + self.drain + Duration::from_secs(3)));
                    self.trunks.unregister_all(now);
                }
            }
            let now = Instant::now();
            while let Some(ev) = self.ua.poll_event() {
                if let Some(ev) = self.on_leg_event(ev, &mut legs, &page_tx, &sessions) {
                    self.on_event(ev, &mut calls, &sessions, now);
                }
            }
            // After the events: a challenge just received is answered in this same turn.
            self.trunks.drive(&mut self.ua, now);
            while let Some(t) = self.ua.poll_transmit() {
                self.sender.send(t.to, t.data);
            }
            self.counters.active_calls.store(calls.len(), Ordering::Relaxed);
        }
        // Let the last sessions close their recordings and report, so nothing recorded is lost.
        drop(sessions);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, session_rx.recv()).await {
            if !matches!(ev, SessionEvent::Hangup(_)) {
                let _ = self.log.send(CallLogEvent::Session(ev));
            }
        }
    }

    fn on_event(&mut self, ev: UaEvent, calls: &mut HashMap<CallRef, CallState>, sessions: &Sessions, now: Instant) {
        match ev {
            UaEvent::IncomingCall { call, call_id, from, to, offer, source, request_uri } => {
                self.counters.calls_received.fetch_add(1, Ordering::Relaxed);
                let span = tracing::info_span!("call", call_id = %call_id);
                let _e = span.enter();
                // `oncall-<schedule>@`: a 302 to the on-call people (or 403/404/480), before the trunks'
                // source filter, which the redirect's own trusted sources extend.
                // A `-bridge` call comes from a source the redirect trusts: the IVR takes it.
                let bridged = match self.redirect.as_ref().and_then(|r| r.decide(&request_uri, source.addr, Timestamp::now())) {
                    Some(crate::redirect::Decision::Redirect { contacts, .. }) => return self.ua.redirect(call, 302, &contacts, now),
                    Some(crate::redirect::Decision::Reject(status)) => return self.ua.reject(call, status, now),
                    Some(crate::redirect::Decision::Bridge { schedule }) => {
                        tracing::info!(%schedule, source = %source.addr, "bridge: an IVR call about the schedule");
                        true
                    }
                    None => false,
                };
                if !bridged && !self.trunks.source_allowed(source.addr.ip()) {
                    tracing::warn!(source = %source.addr, %from, "INVITE from an address no trunk allows; 403");
                    self.counters.calls_rejected.fetch_add(1, Ordering::Relaxed);
                    self.ua.reject(call, 403, now);
                    return;
                }
                // A trunk in `allowed_sources` (or a PBX the redirect trusts, for a bridge call) carries many
                // callers: it gets `trusted_calls_per_second_per_source` instead of the per-source limit.
                let trusted = bridged || self.trunks.source_listed(source.addr.ip());
                let verdict = self.admission.admit(source.addr.ip(), trusted, calls.len(), now);
                if verdict != Verdict::Accept {
                    tracing::info!(source = %source.addr, ?verdict, "503 for new call");
                    self.counters.calls_rejected.fetch_add(1, Ordering::Relaxed);
                    self.ua.reject_with(call, 503, &[("Retry-After", verdict.retry_after().to_string())], now);
                    return;
                }
                let Some(sockets) = self.ports.allocate() else {
                    tracing::warn!("no free RTP port; 503");
                    self.counters.calls_rejected.fetch_add(1, Ordering::Relaxed);
                    self.ua.reject_with(call, 503, &[("Retry-After", Verdict::Busy.retry_after().to_string())], now);
                    return;
                };
                let port = sockets.0.local_addr().map(|a| a.port()).unwrap_or(0);
                tracing::info!(%from, %to, source = %source.addr, rtp_port = port, "incoming call");
                // A bridge call is logged with the Request-URI its routing used (a proxy may rewrite it but not To),
                // so paging picks the same schedule's policy.
                let called = if bridged { request_uri.to_string() } else { to };
                let _ = self.log.send(CallLogEvent::Received { call, call_id: call_id.clone(), caller: from, called, at: Timestamp::now() });
                let answer_at = (!self.answer_after.is_zero()).then(|| now + self.answer_after);
                calls.insert(call, CallState { sockets: Some(sockets), port, offer, media_started: false, answer_at, call_id });
                if answer_at.is_some() {
                    self.ua.ring(call, now);
                } else {
                    self.answer(call, calls, sessions, now);
                }
            }
            UaEvent::Confirmed { call } => {
                if calls.get(&call).is_some_and(|c| c.media_started) {
                    self.engine.send(call, MediaCommand::Signal { call, signal: Signal::Confirmed });
                }
            }
            UaEvent::MediaChanged { call, media } => {
                let Some(c) = calls.get_mut(&call) else { return };
                if c.media_started {
                    tracing::info!(call_id = %c.call_id, direction = ?media.direction, "media changed");
                    self.engine.send(call, MediaCommand::Update { call, media });
                } else {
                    c.offer = Some(media);
                    self.start_media(call, calls, sessions);
                }
            }
            // Outbound calls are paging legs, handled in `on_leg_event`.
            UaEvent::Progress { .. } | UaEvent::Answered { .. } => {}
            // Standalone requests are trunk REGISTERs.
            UaEvent::Response { key, response } => {
                if !self.trunks.on_result(&key, Some(&response), now) {
                    tracing::debug!(status = response.status, "response to an unknown standalone request");
                }
            }
            UaEvent::RequestTimeout { key } => {
                self.trunks.on_result(&key, None, now);
            }
            // The outcome of a text MESSAGE we sent.
            UaEvent::MessageDone { message, result } => self.texts.on_message_done(message, result),
            // Out-of-dialog MESSAGE (only handed over when `[texts] enabled`): a text reply.
            UaEvent::Request { key, request, source } if request.method == oncall_sip::message::Method::Message => {
                // Issue 15 item 1: the sender is proven by the source (a trunk's) or the registrar's digest, never by From.
                let from_trunk = self.trunks.source_listed(source.addr.ip());
                self.texts.on_request(&mut self.ua, key, request, source, from_trunk, self.registrar.as_mut(), now)
            }
            UaEvent::Request { key, request, source } => match self.registrar.as_mut() {
                Some(r) => r.on_request(&mut self.ua, key, request, source, now),
                None => crate::phones::answer_unserved(&mut self.ua, &key, &request, now),
            },
            UaEvent::Info { call, content_type, body } => {
                self.engine.send(call, MediaCommand::Signal { call, signal: Signal::Info { content_type, body } });
            }
            UaEvent::Ended { call, reason } => {
                let Some(c) = calls.remove(&call) else { return };
                tracing::info!(call_id = %c.call_id, ?reason, "call ended");
                if c.media_started {
                    self.engine.send(call, MediaCommand::Remove(call));
                } else {
                    let _ = self.log.send(CallLogEvent::EndedEarly { call, at: Timestamp::now() });
                }
                self.ports.release(c.port);
            }
        }
    }

    fn answer(&mut self, call: CallRef, calls: &mut HashMap<CallRef, CallState>, sessions: &Sessions, now: Instant) {
        let Some(c) = calls.get(&call) else { return };
        self.ua.accept(call, SocketAddr::new(self.media_ip, c.port), now);
        self.counters.calls_answered.fetch_add(1, Ordering::Relaxed);
        let _ = self.log.send(CallLogEvent::Answered { call, at: Timestamp::now() });
        if c.offer.is_some() {
            self.start_media(call, calls, sessions);
        }
    }

    fn start_media(&mut self, call: CallRef, calls: &mut HashMap<CallRef, CallState>, sessions: &Sessions) {
        let Some(c) = calls.get_mut(&call) else { return };
        let (Some(media), Some((rtp, rtcp))) = (c.offer, c.sockets.take()) else { return };
        c.media_started = true;
        let path = self.recording_path(RecordingKind::Message);
        let (ivr, prompts) = self.ivr.get();
        let mut app = IvrSession::new(call, ivr, prompts, media.telephone_event.is_none(), path, sessions.events.clone(), sessions.closer.clone());
        if let Some(p) = self.paging.as_ref().filter(|p| !p.max_hold.is_zero()) {
            app = app.with_hold(p.hold.clone(), p.max_hold);
        }
        if let Some((hour, minute)) = self.hours.closed_until(Timestamp::now()) {
            app = app.after_hours(hour, minute);
        }
        self.engine.send(call, MediaCommand::Add(Box::new(MediaCallSpec { call, rtp, rtcp, media, app: Box::new(app) })));
    }
}

/// Paging legs: calls we place for the paging task, and the employee's decisions.
impl Controller {
    /// A new recording's path: `<recordings>/<org>/<year>/<month>/<time>-<random>-<what>.wav` (the uploader reads
    /// `what` back from the name when it registers a file a crash left).
    fn recording_path(&self, what: RecordingKind) -> PathBuf {
        let now = chrono::Utc::now();
        let token = format!("{}-{:08x}", now.format("%Y%m%dT%H%M%S"), rand::random::<u32>());
        self.recordings_dir.join(&self.org_slug).join(now.format("%Y").to_string()).join(now.format("%m").to_string()).join(format!("{token}-{what}.wav"))
    }

    fn report(&self, key: NotificationKey, outcome: Outcome) {
        if let Some(p) = &self.paging {
            let _ = p.events.send(PagingEvent::CallResult { key, outcome });
        }
    }

    fn on_command(&mut self, cmd: ControllerCommand, legs: &mut HashMap<CallRef, Leg>, now: Instant) {
        match cmd {
            ControllerCommand::Page(order) => self.place_leg(order, legs, now),
            ControllerCommand::SendText { key, route, body } => self.texts.send(&mut self.ua, key, route, body, now),
            ControllerCommand::ReleaseCaller { caller } => {
                if let Some(p) = &self.paging {
                    p.hold.nobody_available(caller);
                }
            }
            ControllerCommand::CancelRequest { request, keep } => {
                for (call, leg) in legs.iter() {
                    if leg.key.request == request && Some(leg.key) != keep {
                        tracing::info!(%request, person = %leg.key.person, target = %leg.target, answered = leg.answered, "ending page call");
                        // CANCEL while it rings, BYE once answered.
                        self.ua.cancel(*call, now);
                    }
                }
            }
            ControllerCommand::CancelStale { request, stage } => {
                for (call, leg) in legs.iter() {
                    if leg.key.request == request && leg.key.stage < stage && !leg.answered {
                        tracing::info!(%request, person = %leg.key.person, target = %leg.target, "stage over: cancelling the ring");
                        self.ua.cancel(*call, now);
                    }
                }
            }
        }
    }

    fn place_leg(&mut self, order: PageOrder, legs: &mut HashMap<CallRef, Leg>, now: Instant) {
        let PageOrder { key, route, caller, caller_call, message } = order;
        let crate::dial::Route { target, via, credentials, from_uri } = route;
        let Some(sockets) = self.ports.allocate() else {
            tracing::warn!(request = %key.request, person = %key.person, "no free RTP port for a page call");
            return self.report(key, Outcome::Failed("no free RTP port".into()));
        };
        let port = sockets.0.local_addr().map(|a| a.port()).unwrap_or(0);
        let out = OutboundCall {
            target: target.clone(),
            via,
            from_uri,
            from_display: Some("OnCall".into()),
            local_media: SocketAddr::new(self.media_ip, port),
            credentials,
        };
        let call = self.ua.place_call(out, now);
        tracing::info!(call = call.0, request = %key.request, person = %key.person, %target, via = %via.addr, rtp_port = port, "page call placed");
        legs.insert(call, Leg { key, port, sockets: Some(sockets), caller, caller_call, message, target, rang: false, answered: false, media_started: false });
    }

    /// Takes the UA events of paging legs; gives back the others.
    fn on_leg_event(&mut self, ev: UaEvent, legs: &mut HashMap<CallRef, Leg>, page_tx: &mpsc::UnboundedSender<PageSessionEvent>, sessions: &Sessions) -> Option<UaEvent> {
        let call = match &ev {
            UaEvent::Progress { call, .. } | UaEvent::Answered { call, .. } | UaEvent::Ended { call, .. } | UaEvent::MediaChanged { call, .. } | UaEvent::Confirmed { call } => *call,
            _ => return Some(ev),
        };
        if !legs.contains_key(&call) {
            return Some(ev);
        }
        match ev {
            UaEvent::Progress { status, .. } => {
                let leg = legs.get_mut(&call)?;
                if !leg.rang {
                    leg.rang = true;
                    tracing::info!(call = call.0, request = %leg.key.request, person = %leg.key.person, status, "page call ringing");
                    let key = leg.key;
                    self.report(key, Outcome::Ringing);
                }
            }
            UaEvent::Answered { media, .. } => {
                let key = legs.get(&call)?.key;
                if legs.iter().any(|(other, l)| *other != call && l.key == key && l.answered) {
                    // Another phone of the same page answered first: this one is hung up at once.
                    tracing::info!(call = call.0, request = %key.request, person = %key.person, "answered after another phone took the page; hanging up");
                    self.ua.hangup(call, Instant::now());
                    return None;
                }
                let leg = legs.get_mut(&call)?;
                leg.answered = true;
                // Several phones of one person ring for one page: the first to answer takes it.
                for (other, l) in legs.iter() {
                    if *other != call && l.key == key && !l.answered {
                        tracing::info!(call = other.0, request = %key.request, person = %key.person, target = %l.target, "another phone answered: cancelling this one");
                        self.ua.cancel(*other, Instant::now());
                    }
                }
                let leg = legs.get_mut(&call)?;
                tracing::info!(call = call.0, request = %key.request, person = %key.person, "page call answered");
                self.report(key, Outcome::Answered);
                let (Some(media), Some((rtp, rtcp))) = (media, leg.sockets.take()) else {
                    tracing::warn!(call = call.0, request = %key.request, "page call answered without usable media; hanging up");
                    self.report(key, Outcome::Failed("no usable media in the answer".into()));
                    self.ua.hangup(call, Instant::now());
                    return None;
                };
                leg.media_started = true;
                let (_, prompts) = self.ivr.get();
                let (timeout, retries) = self.paging.as_ref().map_or((Duration::from_secs(8), 2), |p| (p.key_timeout, p.max_retries));
                let caller_call = leg.caller_call;
                let mut app = PageSession::new(call, key, &leg.caller, leg.message.clone(), prompts, media.telephone_event.is_none(), timeout, retries, page_tx.clone());
                if let (Some(caller_call), Some(p)) = (caller_call, &self.paging) {
                    app = app.with_caller(p.hold.clone(), caller_call, self.recording_path(RecordingKind::Conversation), sessions.closer.clone());
                }
                self.engine.send(call, MediaCommand::Add(Box::new(MediaCallSpec { call, rtp, rtcp, media, app: Box::new(app) })));
            }
            UaEvent::MediaChanged { media, .. } if legs.get(&call).is_some_and(|l| l.media_started) => {
                self.engine.send(call, MediaCommand::Update { call, media });
            }
            UaEvent::Ended { reason, .. } => {
                let leg = legs.remove(&call)?;
                tracing::info!(call = call.0, request = %leg.key.request, person = %leg.key.person, ?reason, "page call ended");
                if leg.media_started {
                    // The session's `finish` reports a decline if the employee had not accepted.
                    self.engine.send(call, MediaCommand::Remove(call));
                } else if !leg.answered && !legs.values().any(|l| l.key == leg.key) {
                    // Failed only when no other phone of this page is still ringing or answered.
                    self.report(leg.key, Outcome::Failed(format!("{reason:?}")));
                }
                self.ports.release(leg.port);
            }
            _ => {}
        }
        None
    }

    fn on_page_decision(&mut self, ev: PageSessionEvent, now: Instant) {
        tracing::info!(call = ev.call.0, request = %ev.key.request, person = %ev.key.person, decision = ?ev.decision, "employee's decision");
        match ev.decision {
            PageDecision::Hangup => self.ua.hangup(ev.call, now),
            PageDecision::Accepted => self.report(ev.key, Outcome::Accepted),
            PageDecision::Declined => self.report(ev.key, Outcome::Declined),
            PageDecision::Completed => self.report(ev.key, Outcome::Completed),
            PageDecision::EscalateNow => self.report(ev.key, Outcome::EscalateNow),
            PageDecision::Snooze => self.report(ev.key, Outcome::Snooze),
        }
    }
}

//! The call controller: one tokio task that owns the SIP user agent and the [`CallBook`], feeds
//! the user agent from the transports and sends what it produces, turns its events, the paging
//! task's commands, the media sessions' reports and the clock into the book's inputs, and carries
//! out the book's outputs with the user agent, the RTP ports, the media engine and the call log.
//!
//! Every decision about a call or a page leg (admit or refuse, ring, answer, which phone takes a
//! page, what to CANCEL, when a drain is over) is the book's. What stays here is what only IO
//! needs: the redirect target's routing, the RTP sockets and ports, offers and media, the page
//! orders' routes and messages, the sessions it builds, and the log lines of what it carries out.

use crate::book::{self, CallBook, CallId, ContactRef, IncomingCall, Input, LegEnd, LegId, Output, PageKey, Route};
use crate::call_log::CallLogEvent;
use crate::ivr_session::{CloseJob, IvrSession, SessionEvent};
use crate::orders::{ControllerCommand, Outcome, PageOrder, PagingEvent};
use crate::page_session::{PageSession, PageSessionEvent};
use crate::trunks::Trunks;
use oncall_core::escalation::NotificationKey;
use oncall_core::{Channel, OrgId, PersonId, RecordingKind, RequestId, Timestamp};
use oncall_sip::admission::{Admission, Verdict};
use oncall_sip::media::{MediaCallSpec, MediaCommand, MediaEngine, RtpPorts, Signal};
use oncall_sip::sdp::Negotiated;
use oncall_sip::transport::{Inbound, Sender};
use oncall_sip::ua::outbound::OutboundCall;
use oncall_sip::ua::redirect::RedirectContact;
use oncall_sip::ua::{CallRef, EndReason, UaEvent, UserAgent};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

mod browser;

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
    /// Every call's and leg's decisions, with the answer delay, the call ceiling, the drain time
    /// and the per-source rate limit ([`source_gate`]).
    pub book: CallBook,
    /// Every organization's IVR, hours and recordings prefix; a call gets its number's.
    pub tenants: crate::tenants::Tenants,
    pub recordings_dir: PathBuf,
    pub log: mpsc::UnboundedSender<CallLogEvent>,
    pub counters: Arc<CallCounters>,
    pub trunks: Trunks,
    /// Set when `[paging] enabled`: where call results go, and the employee IVR's settings.
    pub paging: Option<PagingLink>,
    /// Set when `[registrar] enabled`: answers the REGISTERs the user agent hands over.
    pub registrar: Option<crate::phones::RegistrarService>,
    /// Text messages by SIP MESSAGE: sent for paging, and replies received (`[texts]`).
    pub texts: crate::sip_texts::SipTexts,
    /// Set when `[redirect] enabled`: answers INVITEs to `oncall-<schedule>@` (see `redirect.rs`).
    pub redirect: Option<crate::redirect::Redirector>,
    /// The numbers organizations own: which organization a call is for; a call to nobody's number is refused.
    pub numbers: crate::numbers::NumberBook,
    /// `[sip] max_media_load`: above it new calls get 503 (0 turns the check off).
    pub max_media_load: f64,
    /// What the book was last told (`Input::MediaLoad`).
    pub media_overloaded: bool,
    /// The tabs where people take pages in the browser, and what they say (issue 19).
    pub browsers: Option<oncall_core::browser_desk::BrowserDesk>,
    pub from_tabs: Option<mpsc::UnboundedReceiver<(oncall_core::browser_desk::TabId, oncall_core::browser_desk::FromTab)>>,
}

pub struct PagingLink {
    pub events: mpsc::UnboundedSender<PagingEvent>,
    pub key_timeout: Duration,
    pub max_retries: u32,
    /// Where "page on-call" callers wait for an employee, and for how long at most.
    pub hold: crate::hold_room::HoldRoom,
    pub max_hold: Duration,
}

/// The book's per-source rate limit: `admission`'s token buckets. Build it with `max_calls: 0` and
/// never drain it: the book keeps the ceiling and the drain, and asks the gate last.
pub fn source_gate(mut admission: Admission) -> book::SourceGate {
    Box::new(move |source, trusted, now| admission.admit(source, trusted, 0, now) == Verdict::Accept)
}

/// Where IVR sessions report: their events, and the thread that closes their recordings (which forwards
/// the events that must follow a recording).
struct Sessions {
    events: mpsc::UnboundedSender<SessionEvent>,
    closer: std::sync::mpsc::Sender<CloseJob>,
}

/// An incoming call from its INVITE to its end: what carrying out the book's outputs needs.
struct CallState {
    call_id: String,
    /// The organization answering: its IVR, hours, recordings prefix and call rows.
    org: OrgId,
    from: String,
    to: String,
    /// What the call log records as called: To, or the Request-URI of a bridge call.
    called: String,
    source: SocketAddr,
    /// The redirect target's Contacts, for the book's `Redirect`.
    redirect: Vec<RedirectContact>,
    /// The latest remote media (the INVITE's offer, a late-offer ACK, a re-INVITE).
    offer: Option<Negotiated>,
    /// Our RTP socket pair from `ReserveMedia` until media starts.
    sockets: Option<(UdpSocket, UdpSocket)>,
    /// The port to release at the end, once reserved.
    port: Option<u16>,
}

/// A call we placed to page an employee, from `PlaceLeg` to its end.
struct LegState {
    call: CallRef,
    key: NotificationKey,
    port: u16,
    /// Our RTP socket pair until media starts.
    sockets: Option<(UdpSocket, UdpSocket)>,
    /// The callee's media: its answer, then re-INVITEs.
    media: Option<Negotiated>,
    caller: String,
    /// The caller's call while they hold for this page.
    caller_call: Option<CallRef>,
    message: Arc<[i16]>,
    /// An alert's page: the message plays before the keys.
    speak_first: bool,
    target: String,
    /// A leg to a browser tab instead of a SIP call.
    browser: Option<browser::BrowserSide>,
}

/// The IO side of every call and leg the book holds, and the channels sessions report on.
struct Held {
    calls: HashMap<CallRef, CallState>,
    legs: HashMap<LegId, LegState>,
    /// The user agent's handle of each leg placed → the book's id for it.
    leg_of: HashMap<CallRef, LegId>,
    /// Page orders waiting for the book's `PlaceLeg`, by the contact handle they were given.
    orders: HashMap<ContactRef, PageOrder>,
    next_contact: u64,
    sessions: Sessions,
    page_tx: mpsc::UnboundedSender<PageSessionEvent>,
    /// The book said `Finished`: leave the loop.
    finished: bool,
    /// Browser legs' numbers handed out so far.
    next_browser_call: u64,
    /// Browser legs the book cancelled or hung up this turn: ended once its outputs are carried out.
    browser_ended: Vec<(LegId, LegEnd)>,
}

/// What the book was fed, for the log lines of what it answers (its outputs say what, not why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// A leg's 180/183.
    Progress { call: CallRef, status: u16 },
    /// A leg's 2xx.
    Answer { call: CallRef },
    /// `CancelStale`.
    StageOver,
    /// `CancelRequest`.
    RequestOver,
    /// The clock (answers due, the drain's deadlines).
    Timer,
    Other,
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
        let (page_tx, mut page_rx) = mpsc::unbounded_channel::<PageSessionEvent>();
        let mut held = Held {
            calls: HashMap::new(),
            legs: HashMap::new(),
            leg_of: HashMap::new(),
            orders: HashMap::new(),
            next_contact: 0,
            sessions,
            page_tx,
            finished: false,
            next_browser_call: 0,
            browser_ended: Vec::new(),
        };
        // Without browser phones the branch below waits forever.
        let mut from_tabs = self.from_tabs.take();
        let mut commands_open = true;
        // Set by SIGTERM until the trunks' unregistrations are over (the book waits for them).
        let mut trunks_pending = false;
        while !held.finished {
            let wake = [self.ua.poll_timeout(), self.book.poll_timeout(), self.trunks.poll_timeout()].into_iter().flatten().min();
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
                        SessionEvent::Hangup(call) => self.feed(&mut held, Input::IvrHangup { call: book_call(call) }, Cause::Other, Instant::now()),
                        other => { let _ = self.log.send(CallLogEvent::Session(other)); }
                    }
                }
                cmd = commands.recv(), if commands_open => {
                    match cmd {
                        Some(cmd) => self.on_command(cmd, &mut held, Instant::now()),
                        // Paging is off (or stopped): nothing more will come.
                        None => commands_open = false,
                    }
                }
                Some((tab, msg)) = async { match from_tabs.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                    self.on_tab(&mut held, tab, msg, Instant::now());
                }
                ev = page_rx.recv() => {
                    // Never None: `held` holds a sender.
                    if let Some(ev) = ev {
                        self.on_page_decision(ev, &mut held, Instant::now());
                    }
                }
                _ = sleep => {
                    let now = Instant::now();
                    self.ua.handle_timeout(now);
                    self.book.handle_timeout(now);
                    self.carry_out(&mut held, Cause::Timer, now);
                }
                _ = shutdown.changed(), if !self.book.is_draining() => {
                    let now = Instant::now();
                    let drain = self.book.settings().drain;
                    tracing::info!(calls = self.book.active_calls(), drain_secs = drain.as_secs(), "draining: new calls get 503");
                    self.trunks.unregister_all(now);
                    trunks_pending = !self.trunks.finished(now);
                    self.feed(&mut held, Input::Drain { trunks_pending }, Cause::Other, now);
                }
            }
            let now = Instant::now();
            while let Some(ev) = self.ua.poll_event() {
                self.on_event(ev, &mut held, now);
            }
            // After the events: a challenge just received is answered in this same turn.
            self.trunks.drive(&mut self.ua, now);
            if trunks_pending && self.trunks.finished(now) {
                trunks_pending = false;
                self.feed(&mut held, Input::TrunksDone, Cause::Other, now);
            }
            while let Some(t) = self.ua.poll_transmit() {
                self.sender.send(t.to, t.data);
            }
            self.publish_counters();
        }
        // Let the last sessions close their recordings and report, so nothing recorded is lost.
        drop(held);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, session_rx.recv()).await {
            if !matches!(ev, SessionEvent::Hangup(_)) {
                let _ = self.log.send(CallLogEvent::Session(ev));
            }
        }
    }

    /// /metrics reads the book's counts; the messages are counted here, as they come in.
    fn publish_counters(&self) {
        let c = self.book.counters();
        self.counters.calls_received.store(c.calls_received, Ordering::Relaxed);
        self.counters.calls_answered.store(c.calls_answered, Ordering::Relaxed);
        self.counters.calls_rejected.store(c.calls_rejected, Ordering::Relaxed);
        self.counters.active_calls.store(self.book.active_calls(), Ordering::Relaxed);
    }

    /// One input to the book, and everything it answers carried out.
    fn feed(&mut self, held: &mut Held, input: Input, cause: Cause, now: Instant) {
        self.book.handle(input, now);
        self.carry_out(held, cause, now);
    }

    fn on_event(&mut self, ev: UaEvent, held: &mut Held, now: Instant) {
        let call = match &ev {
            UaEvent::Progress { call, .. }
            | UaEvent::Answered { call, .. }
            | UaEvent::Ended { call, .. }
            | UaEvent::MediaChanged { call, .. }
            | UaEvent::Confirmed { call } => Some(*call),
            _ => None,
        };
        if let Some(leg) = call.and_then(|c| held.leg_of.get(&c).copied()) {
            return self.on_leg_event(ev, leg, held, now);
        }
        match ev {
            UaEvent::IncomingCall { call, call_id, from, to, offer, source, request_uri } => {
                let span = tracing::info_span!("call", call_id = %call_id);
                let _e = span.enter();
                // `oncall-<schedule>@`: a 302 to the on-call people (or 403/404/480), or a `-bridge` call
                // from a source the redirect target trusts, which the IVR takes.
                let mut redirect = Vec::new();
                let mut org = self.numbers.served();
                let admit = self.numbers.admit(&request_uri, &to, self.trunks.source_trunk(source.addr.ip()));
                let admitted = match admit {
                    crate::numbers::Admit::Org(o) => Some(o),
                    crate::numbers::Admit::Refuse { .. } => None,
                };
                let route = match self.redirect.as_ref().and_then(|r| r.decide(&request_uri, source.addr, admitted, Timestamp::now())) {
                    Some(crate::redirect::Decision::Redirect { contacts, .. }) => {
                        let route = Route::Redirect { contacts: contacts.iter().map(RedirectContact::header_value).collect() };
                        redirect = contacts;
                        route
                    }
                    Some(crate::redirect::Decision::Reject(status)) => Route::Reject { status },
                    Some(crate::redirect::Decision::Bridge { schedule }) => match admitted {
                        // (The redirector only finds a schedule in an organization the number routes to.)
                        Some(o) if self.tenants.get(o).is_some() => {
                            tracing::info!(%schedule, source = %source.addr, "bridge: an IVR call about the schedule");
                            org = o;
                            Route::Bridge
                        }
                        _ => Route::Reject { status: 480 },
                    },
                    None => match admit {
                        crate::numbers::Admit::Org(o) if self.tenants.get(o).is_some_and(|t| t.max_calls.is_some_and(|max| held.calls.values().filter(|c| c.org == o).count() >= max as usize)) => {
                            tracing::warn!(org = %o, "the organization's calls are at its max_calls (oncall org set); 503");
                            Route::Reject { status: 503 }
                        }
                        crate::numbers::Admit::Org(o) if self.tenants.get(o).is_some() => {
                            org = o;
                            Route::Ivr
                        }
                        // Created a moment ago: served after the next settings reload.
                        crate::numbers::Admit::Org(_) => Route::Reject { status: 480 },
                        crate::numbers::Admit::Refuse { status, reason } => {
                            tracing::info!(%request_uri, %to, status, reason, "call refused by its number");
                            Route::Reject { status }
                        }
                    },
                };
                // A bridge call is logged with the Request-URI its routing used (a proxy may rewrite it but not
                // To), so paging picks the same schedule's policy.
                let called = if route == Route::Bridge { request_uri } else { to.clone() };
                let ip = source.addr.ip();
                let incoming = IncomingCall {
                    call: book_call(call),
                    source: ip,
                    source_allowed: self.trunks.source_allowed(ip),
                    // A trunk in `allowed_sources` carries many callers: it gets
                    // `trusted_calls_per_second_per_source` instead of the per-source limit.
                    trusted: self.trunks.source_listed(ip),
                    route,
                    has_offer: offer.is_some(),
                };
                let state = CallState { call_id, org, from, to, called, source: source.addr, redirect, offer, sockets: None, port: None };
                held.calls.insert(call, state);
                self.check_media_load(held, now);
                self.feed(held, Input::Incoming(incoming), Cause::Other, now);
            }
            UaEvent::Confirmed { call } => self.feed(held, Input::Confirmed { call: book_call(call) }, Cause::Other, now),
            UaEvent::MediaChanged { call, media } => {
                let Some(c) = held.calls.get_mut(&call) else { return };
                c.offer = Some(media);
                self.feed(held, Input::Offer { call: book_call(call) }, Cause::Other, now);
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
                // Calls refused or redirected are forgotten when the book says so; these are held.
                let Some(c) = held.calls.get(&call) else { return };
                tracing::info!(call_id = %c.call_id, ?reason, "call ended");
                self.feed(held, Input::CallEnded { call: book_call(call) }, Cause::Other, now);
                // The book's `StopIvr`/`EndedEarly` released it; this only covers a call it no longer held.
                if let Some(port) = held.calls.remove(&call).and_then(|c| c.port) {
                    self.ports.release(port);
                }
            }
        }
    }

    /// The user agent's events for a paging leg.
    fn on_leg_event(&mut self, ev: UaEvent, leg: LegId, held: &mut Held, now: Instant) {
        let Some(l) = held.legs.get_mut(&leg) else { return };
        let (input, cause) = match ev {
            UaEvent::Progress { call, status } => (Input::LegProgress { leg }, Cause::Progress { call, status }),
            UaEvent::Answered { call, media } => {
                l.media = media;
                // Media we can send needs the callee's answer and our sockets.
                let usable_media = media.is_some() && l.sockets.is_some();
                (Input::LegAnswered { leg, usable_media }, Cause::Answer { call })
            }
            UaEvent::MediaChanged { media, .. } => {
                l.media = Some(media);
                (Input::LegOffer { leg }, Cause::Other)
            }
            UaEvent::Ended { call, reason } => {
                tracing::info!(call = call.0, request = %l.key.request, person = %l.key.person, ?reason, "page call ended");
                self.feed(held, Input::LegEnded { leg, reason: leg_end(reason) }, Cause::Other, now);
                held.leg_of.remove(&call);
                if let Some(l) = held.legs.remove(&leg) {
                    self.ports.release(l.port);
                }
                return;
            }
            _ => return,
        };
        self.feed(held, input, cause, now);
    }

    fn on_command(&mut self, cmd: ControllerCommand, held: &mut Held, now: Instant) {
        match cmd {
            ControllerCommand::Page(order) => {
                let contact = ContactRef(held.next_contact);
                held.next_contact += 1;
                let key = page_key(order.key);
                held.orders.insert(contact, order);
                // Paging sends one order per phone of a person; the book gathers those of one key.
                self.feed(held, Input::Page { key, contacts: vec![contact] }, Cause::Other, now);
            }
            ControllerCommand::SendText { key, route, body } => self.texts.send(&mut self.ua, key, route, body, now),
            ControllerCommand::ReleaseCaller { caller } => {
                if let Some(p) = &self.paging {
                    p.hold.nobody_available(caller);
                }
            }
            ControllerCommand::CancelRequest { request, keep } => {
                let input = Input::EndRequest { request: book::RequestRef(request.get()), keep: keep.map(page_key) };
                self.feed(held, input, Cause::RequestOver, now);
            }
            ControllerCommand::CancelStale { request, stage } => {
                let input = Input::EndStage { request: book::RequestRef(request.get()), stage };
                self.feed(held, input, Cause::StageOver, now);
            }
        }
    }

    fn on_page_decision(&mut self, ev: PageSessionEvent, held: &mut Held, now: Instant) {
        tracing::info!(call = ev.call.0, request = %ev.key.request, person = %ev.key.person, decision = ?ev.decision, "employee's decision");
        // The session may report after its leg ended, when its handle is forgotten.
        let leg = held.leg_of.get(&ev.call).copied();
        self.feed(held, Input::Decision { leg, key: page_key(ev.key), decision: ev.decision }, Cause::Other, now);
    }

    /// Carries out what the book asks, in order, until it asks nothing more.
    fn carry_out(&mut self, held: &mut Held, cause: Cause, now: Instant) {
        // Log lines only: whether this turn's answer took the page, and whether the drain's hang-up was logged.
        let mut took_page = false;
        let mut drain_logged = false;
        while let Some(output) = self.book.poll_output() {
            if cause == Cause::Timer && !drain_logged && matches!(output, Output::HangUp { .. } | Output::ByeLeg { .. } | Output::CancelLeg { .. }) {
                // Only the drain ends calls and legs on the clock.
                drain_logged = true;
                tracing::warn!(calls = self.book.active_calls(), legs = self.book.active_legs(), "drain timeout: hanging up the remaining calls");
            }
            match output {
                Output::Redirect { call, .. } => {
                    let call = ua_call(call);
                    let contacts = held.calls.remove(&call).map(|c| c.redirect).unwrap_or_default();
                    self.ua.redirect(call, 302, &contacts, now);
                }
                Output::Reject { call, status, reason, retry_after } => self.reject(held, ua_call(call), status, reason, retry_after, now),
                Output::ReserveMedia { call } => self.reserve_media(held, ua_call(call), now),
                Output::Ring { call } => self.ua.ring(ua_call(call), now),
                Output::Answer { call } => {
                    let call = ua_call(call);
                    let Some(port) = held.calls.get(&call).and_then(|c| c.port) else { continue };
                    self.ua.accept(call, SocketAddr::new(self.media_ip, port), now);
                    let _ = self.log.send(CallLogEvent::Answered { call, at: Timestamp::now() });
                }
                Output::StartIvr { call } => self.start_ivr(held, ua_call(call)),
                Output::UpdateCallMedia { call } => {
                    let call = ua_call(call);
                    let Some(c) = held.calls.get(&call) else { continue };
                    let Some(media) = c.offer else { continue };
                    tracing::info!(call_id = %c.call_id, direction = ?media.direction, "media changed");
                    self.engine.send(call, MediaCommand::Update { call, media });
                }
                Output::CallConfirmed { call } => {
                    let call = ua_call(call);
                    self.engine.send(call, MediaCommand::Signal { call, signal: Signal::Confirmed });
                }
                Output::HangUp { call } => self.ua.hangup(ua_call(call), now),
                Output::StopIvr { call } => {
                    let call = ua_call(call);
                    self.engine.send(call, MediaCommand::Remove(call));
                    self.forget_call(held, call);
                }
                Output::EndedEarly { call } => {
                    let call = ua_call(call);
                    let _ = self.log.send(CallLogEvent::EndedEarly { call, at: Timestamp::now() });
                    self.forget_call(held, call);
                }
                Output::PlaceLeg { leg, contact, .. } => self.place_leg(held, leg, contact, now),
                Output::SkipContact { contact, .. } => {
                    if let Some(order) = held.orders.remove(&contact) {
                        tracing::info!(request = %order.key.request, person = %order.key.person, target = %order.route.target, "another phone already answered: not ringing this one");
                    }
                }
                Output::CancelLeg { leg } => {
                    let Some(l) = held.legs.get(&leg) else { continue };
                    let (call, key, target, to_browser) = (l.call, l.key, &l.target, l.browser.is_some());
                    match cause {
                        Cause::Answer { .. } => {
                            tracing::info!(call = call.0, request = %key.request, person = %key.person, %target, "another phone answered: cancelling this one")
                        }
                        Cause::StageOver => {
                            tracing::info!(request = %key.request, person = %key.person, %target, "stage over: cancelling the ring")
                        }
                        Cause::RequestOver => {
                            tracing::info!(request = %key.request, person = %key.person, %target, answered = false, "ending page call")
                        }
                        _ => {}
                    }
                    if to_browser {
                        let reason = if matches!(cause, Cause::Answer { .. }) { "Answered on another device." } else { "The page ended." };
                        self.stop_browser_leg(held, leg, reason, LegEnd::Cancelled);
                    } else {
                        self.ua.cancel(call, now);
                    }
                }
                Output::ByeLeg { leg } => {
                    let Some(l) = held.legs.get(&leg) else { continue };
                    let (call, key, target, to_browser) = (l.call, l.key, &l.target, l.browser.is_some());
                    match cause {
                        Cause::Answer { call: answering } if answering == call && !took_page => {
                            tracing::info!(call = call.0, request = %key.request, person = %key.person, "answered after another phone took the page; hanging up")
                        }
                        Cause::RequestOver => {
                            tracing::info!(request = %key.request, person = %key.person, %target, answered = true, "ending page call")
                        }
                        _ => {}
                    }
                    if to_browser {
                        self.stop_browser_leg(held, leg, "The call is over.", LegEnd::LocalHangup);
                    } else {
                        self.ua.hangup(call, now);
                    }
                }
                Output::StartPageSession { leg, .. } => self.start_page_session(held, leg),
                Output::UpdateLegMedia { leg } => {
                    let Some(l) = held.legs.get(&leg) else { continue };
                    let Some(media) = l.media else { continue };
                    self.engine.send(l.call, MediaCommand::Update { call: l.call, media });
                }
                Output::StopPageSession { leg } => {
                    // The session's `finish` reports a decline if the employee had not accepted.
                    let Some(l) = held.legs.get(&leg) else { continue };
                    self.engine.send(l.call, MediaCommand::Remove(l.call));
                }
                Output::Report { key, outcome } => {
                    let key = notification_key(key);
                    match (&outcome, cause) {
                        (Outcome::Ringing, Cause::Progress { call, status }) => {
                            tracing::info!(call = call.0, request = %key.request, person = %key.person, status, "page call ringing")
                        }
                        (Outcome::Answered, Cause::Answer { call }) => {
                            took_page = true;
                            tracing::info!(call = call.0, request = %key.request, person = %key.person, "page call answered")
                        }
                        (Outcome::Failed(_), Cause::Answer { call }) => {
                            tracing::warn!(call = call.0, request = %key.request, "page call answered without usable media; hanging up")
                        }
                        _ => {}
                    }
                    if let Some(p) = &self.paging {
                        let _ = p.events.send(PagingEvent::CallResult { key, outcome });
                    }
                }
                Output::Finished { forced } => {
                    tracing::info!(forced, "drain over: stopping");
                    held.finished = true;
                }
            }
        }
        for (leg, end) in std::mem::take(&mut held.browser_ended) {
            self.end_browser_leg(held, leg, end, now);
        }
    }

    /// Tells the book when the busiest media thread's load crosses `max_media_load` (asked at each new INVITE: the
    /// one moment it matters).
    fn check_media_load(&mut self, held: &mut Held, now: Instant) {
        if self.max_media_load <= 0.0 {
            return;
        }
        let load = self.engine.stats.load();
        // Hysteresis: let calls in again only well below the limit, so admission does not flap call by call.
        let overloaded = if self.media_overloaded { load > self.max_media_load * 0.85 } else { load > self.max_media_load };
        if overloaded != self.media_overloaded {
            self.media_overloaded = overloaded;
            if overloaded {
                tracing::warn!(load = format!("{load:.2}"), limit = self.max_media_load, "media threads near their 20 ms budget: new calls get 503 until the load falls");
            } else {
                tracing::info!(load = format!("{load:.2}"), "media load back down: taking new calls again");
            }
            self.feed(held, Input::MediaLoad { overloaded }, Cause::Other, now);
        }
    }

    fn reject(&mut self, held: &mut Held, call: CallRef, status: u16, reason: book::RejectReason, retry_after: Option<u32>, now: Instant) {
        use book::RejectReason::*;
        if let Some(c) = held.calls.remove(&call) {
            match reason {
                // The redirect target logs its own refusals.
                Routed => {}
                UntrustedSource => tracing::warn!(source = %c.source, from = %c.from, "INVITE from an address no trunk allows; 403"),
                Draining | AtCapacity | RateLimited | MediaOverloaded => tracing::info!(source = %c.source, ?reason, "503 for new call"),
                NoMediaPort => tracing::warn!("no free RTP port; 503"),
            }
        }
        match retry_after {
            Some(secs) => self.ua.reject_with(call, status, &[("Retry-After", secs.to_string())], now),
            None => self.ua.reject(call, status, now),
        }
    }

    fn reserve_media(&mut self, held: &mut Held, call: CallRef, now: Instant) {
        let Some(c) = held.calls.get_mut(&call) else { return };
        let Some(sockets) = self.ports.allocate() else {
            return self.book.handle(Input::NoMediaPort { call: book_call(call) }, now);
        };
        let port = sockets.0.local_addr().map(|a| a.port()).unwrap_or(0);
        tracing::info!(from = %c.from, to = %c.to, source = %c.source, rtp_port = port, "incoming call");
        let received = CallLogEvent::Received { call, org: c.org, call_id: c.call_id.clone(), caller: c.from.clone(), called: c.called.clone(), at: Timestamp::now() };
        let _ = self.log.send(received);
        c.sockets = Some(sockets);
        c.port = Some(port);
        self.book.handle(Input::MediaReserved { call: book_call(call) }, now);
    }

    fn forget_call(&mut self, held: &mut Held, call: CallRef) {
        if let Some(port) = held.calls.remove(&call).and_then(|c| c.port) {
            self.ports.release(port);
        }
    }

    fn start_ivr(&mut self, held: &mut Held, call: CallRef) {
        let Some(c) = held.calls.get_mut(&call) else { return };
        let (Some(media), Some((rtp, rtcp))) = (c.offer, c.sockets.take()) else { return };
        let Some(tenant) = self.tenants.get(c.org) else { return };
        let path = self.recording_path(&tenant.slug, RecordingKind::Message);
        let (ivr, prompts) = tenant.ivr.get();
        let sessions = &held.sessions;
        let mut app = IvrSession::new(call, ivr, prompts, media.telephone_event.is_none(), path, sessions.events.clone(), sessions.closer.clone());
        if let Some(p) = self.paging.as_ref().filter(|p| !p.max_hold.is_zero()) {
            app = app.with_hold(p.hold.clone(), p.max_hold);
        }
        if let Some((hour, minute)) = tenant.hours.closed_until(Timestamp::now()) {
            app = app.after_hours(hour, minute);
        }
        self.engine.send(call, MediaCommand::Add(Box::new(MediaCallSpec { call, rtp, rtcp, media, app: Box::new(app), browser: None })));
    }
}

/// Paging legs: calls we place for the paging task, and the sessions on them.
impl Controller {
    /// A new recording's path: `<recordings>/<org>/<year>/<month>/<time>-<random>-<what>.wav` (the uploader reads
    /// `what` back from the name when it registers a file a crash left).
    fn recording_path(&self, org_slug: &str, what: RecordingKind) -> PathBuf {
        let now = chrono::Utc::now();
        let token = format!("{}-{:08x}", now.format("%Y%m%dT%H%M%S"), rand::random::<u32>());
        self.recordings_dir.join(org_slug).join(now.format("%Y").to_string()).join(now.format("%m").to_string()).join(format!("{token}-{what}.wav"))
    }

    fn place_leg(&mut self, held: &mut Held, leg: LegId, contact: ContactRef, now: Instant) {
        let Some(order) = held.orders.remove(&contact) else { return };
        if let Some(tab) = order.route.browser {
            return self.place_browser_leg(held, leg, tab, order, now);
        }
        let PageOrder { key, route, caller, caller_call, message, speak_first } = order;
        let crate::dial::Route { target, via, credentials, from_uri, media_encryption, .. } = route;
        let Some(sockets) = self.ports.allocate() else {
            tracing::warn!(request = %key.request, person = %key.person, "no free RTP port for a page call");
            return self.book.handle(Input::LegNotPlaced { leg, reason: "no free RTP port".into() }, now);
        };
        let port = sockets.0.local_addr().map(|a| a.port()).unwrap_or(0);
        let out = OutboundCall {
            target: target.clone(),
            via,
            from_uri,
            from_display: Some("OnCall".into()),
            local_media: SocketAddr::new(self.media_ip, port),
            credentials,
            media_encryption,
        };
        let call = self.ua.place_call(out, now);
        tracing::info!(call = call.0, request = %key.request, person = %key.person, %target, via = %via.addr, rtp_port = port, "page call placed");
        held.leg_of.insert(call, leg);
        held.legs.insert(leg, LegState { call, key, port, sockets: Some(sockets), media: None, caller, caller_call, message, speak_first, target, browser: None });
    }

    /// The organization a page speaks for: the holding caller's, else the first one served.
    fn page_org(&self, calls: &HashMap<CallRef, CallState>, caller_call: Option<CallRef>) -> OrgId {
        caller_call.and_then(|c| calls.get(&c)).map_or(self.numbers.served(), |c| c.org)
    }

    fn start_page_session(&mut self, held: &mut Held, leg: LegId) {
        let Some(l) = held.legs.get_mut(&leg) else { return };
        let (Some(media), Some((rtp, rtcp))) = (l.media, l.sockets.take()) else { return };
        let webrtc = l.browser.as_mut().and_then(|b| b.webrtc.take());
        // The holding caller's organization (its prompts, its recordings prefix), else the first one's prompts.
        let org = self.page_org(&held.calls, l.caller_call);
        let Some(tenant) = self.tenants.get(org) else { return };
        let (_, prompts) = tenant.ivr.get();
        let (timeout, retries) = self.paging.as_ref().map_or((Duration::from_secs(8), 2), |p| (p.key_timeout, p.max_retries));
        let call = l.call;
        let mut app = PageSession::new(call, l.key, &l.caller, l.message.clone(), prompts, media.telephone_event.is_none(), timeout, retries, held.page_tx.clone());
        if l.speak_first {
            app = app.with_message_first();
        }
        if let (Some(caller_call), Some(p)) = (l.caller_call, &self.paging) {
            app = app.with_caller(p.hold.clone(), caller_call, self.recording_path(&tenant.slug, RecordingKind::Conversation), held.sessions.closer.clone());
        }
        self.engine.send(call, MediaCommand::Add(Box::new(MediaCallSpec { call, rtp, rtcp, media, app: Box::new(app), browser: webrtc })));
    }
}

/// An incoming call's id in the book is its user agent handle's number.
fn book_call(call: CallRef) -> CallId {
    CallId(call.0)
}

fn ua_call(call: CallId) -> CallRef {
    CallRef(call.0)
}

/// A page order's key as the book sees it (a page leg is always the call channel).
fn page_key(key: NotificationKey) -> PageKey {
    PageKey { request: book::RequestRef(key.request.get()), stage: key.stage, person: book::PersonRef(key.person.get()) }
}

/// The notification a page leg carries out: texts never become legs, so its channel is `Call`.
fn notification_key(key: PageKey) -> NotificationKey {
    NotificationKey { request: RequestId(key.request.0), stage: key.stage, person: PersonId(key.person.0), channel: Channel::Call }
}

fn leg_end(reason: EndReason) -> LegEnd {
    match reason {
        EndReason::RemoteHangup => LegEnd::RemoteHangup,
        EndReason::Cancelled => LegEnd::Cancelled,
        EndReason::LocalHangup => LegEnd::LocalHangup,
        EndReason::Rejected => LegEnd::Rejected,
        EndReason::Timeout => LegEnd::Timeout,
        EndReason::Failed(status) => LegEnd::Failed(status),
        EndReason::Unreachable => LegEnd::Unreachable,
    }
}

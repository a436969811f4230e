//! The call book: every call this instance holds (incoming calls and the page legs it places),
//! and every application-level decision about them, as a sans-IO state machine.
//!
//! The thin task around it ([`crate::controller::Controller`]) feeds [`Input`]s with the current
//! time (`handle(input, now)`), drains [`Output`]s (`poll_output()`) and carries them out with the
//! user agent and the media engine, and calls `handle_timeout(now)` at `poll_timeout()`. The book
//! never reads a clock, binds a port or sends a datagram, so its tests run on a virtual clock in
//! microseconds.
//!
//! Decisions (each one the behaviour the controller had inline before, moved here unchanged):
//! - An incoming call: a route decided by the redirect target (302, a rejection, or a bridge call
//!   the IVR takes) comes first; then 403 from a source no trunk allows (bridge calls are trusted);
//!   then 503 while draining (Retry-After 30), at the call ceiling (5), while the media engine is
//!   overloaded (5: `Input::MediaLoad`, so calls in progress keep their timing) or when the source calls too
//!   fast (10; a source a trunk lists, and a bridge call, are rated as trusted); then RTP ports
//!   are reserved (503, Retry-After 5, when none is free); then the call rings and is answered
//!   `answer_after` later (at once when zero), and the IVR starts as soon as the call is answered
//!   and its media is known.
//! - A page order: one leg per device or contact of the person, all ringing together. The first
//!   to answer takes the page and the others still ringing get CANCEL; one answering after that
//!   (the CANCEL crossed its 200) gets BYE. A leg's ring and answer are reported once; its failure
//!   (486, 603, no answer, unreachable) is reported at once, but only when no other leg of the same
//!   page is still ringing or answered.
//! - The end of a request (someone took it, or nobody could be reached): every leg of it ends
//!   (CANCEL while ringing, BYE once answered) except the one of the employee who took it. The end
//!   of a stage: its legs still ringing get CANCEL; answered ones go on.
//! - Drain (graceful shutdown): new calls get 503, the book waits up to the drain time for calls
//!   and legs to end, then hangs up what is left and reports `Finished` when everything ended, or
//!   [`STOP_GRACE`] later regardless.
//!
//! It deliberately does not know SIP (no messages, URIs, Call-IDs or peers: calls and legs are
//! opaque ids), sockets or RTP ports (it asks for them with [`Output::ReserveMedia`] and
//! [`Output::PlaceLeg`]), the IVR or the page session (it only says when to start and stop them),
//! the call log or metrics exposition (it keeps [`Counters`]), trunk registrations (the wrapper
//! reports when they are finished with [`Input::TrunksDone`]) or paging policy (which person, which
//! contact, when: that is the paging dispatcher's).

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// An incoming call, named by the wrapper (the user agent's call handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// A page leg: a call the book decided to place, numbered by the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

/// One device or contact of a page order: the wrapper's handle to what it needs to dial it
/// (Request-URI, next hop, credentials). The book only hands it back in [`Output::PlaceLeg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactRef(pub u64);

/// The request a page is for (the domain's request id, opaque here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestRef(pub i64);

/// The person a page is for (the domain's person id, opaque here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonRef(pub i64);

/// Which page a leg carries out: one notification by call of one person in one escalation stage.
/// All legs of one key are the phones of one person ringing for the same page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub request: RequestRef,
    pub stage: u32,
    pub person: PersonRef,
}

/// What the book is configured with (`[sip] answer_after_ms`, `max_calls`, `shutdown_drain_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long an incoming call rings before it is answered; zero answers at once.
    pub answer_after: Duration,
    /// Calls held at once before new ones get 503; 0 means no limit.
    pub max_calls: usize,
    /// How long a drain waits for calls to end before hanging them up.
    pub drain: Duration,
}

/// After the drain's hang-up, how long the last BYEs and CANCELs may take before the book
/// reports `Finished` anyway.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Retry-After seconds of a 503, by why (the values of `oncall_sip::admission::Verdict`).
const RETRY_DRAINING: u32 = 30;
const RETRY_BUSY: u32 = 5;
const RETRY_RATE_LIMITED: u32 = 10;

/// The per-source rate limit, asked after the draining and ceiling checks (so a refused call
/// spends no token) with the source, whether it is trusted (it gets the trusted rate) and the
/// time: true lets the call in. The wrapper passes the sans-IO token bucket it already has
/// (`oncall_sip::admission`, with no ceiling of its own).
pub type SourceGate = Box<dyn FnMut(IpAddr, bool, Instant) -> bool + Send>;

/// How an incoming call is routed, decided before the book sees it (the redirect target answers
/// INVITEs to `oncall-<schedule>@`; everything else goes to the IVR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The IVR takes it, if its source is allowed.
    Ivr,
    /// A `-bridge` call from a source the redirect target trusts: the IVR takes it, whatever the
    /// trunks' source filter says.
    Bridge,
    /// 302 to these Contacts (URIs with their q-values, as the redirect target wrote them).
    Redirect { contacts: Vec<String> },
    /// The redirect target refuses it (403 untrusted source, 404 no such schedule, 480 nobody on call).
    Reject { status: u16 },
}

/// A new INVITE, as the book needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    pub call: CallId,
    /// The address it came from (for the per-source rate limit).
    pub source: IpAddr,
    /// Whether the trunks' source filter allows that address.
    pub source_allowed: bool,
    /// Whether a trunk's `allowed_sources` lists that address: a carrier or PBX carrying many
    /// callers, rated as trusted. A bridge call is trusted whatever this says.
    pub trusted: bool,
    pub route: Route,
    /// The INVITE carried an SDP offer we can answer (else it comes in the ACK).
    pub has_offer: bool,
}

/// Why a leg ended (the user agent's end reasons, one for one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    RemoteHangup,
    Cancelled,
    LocalHangup,
    Rejected,
    Timeout,
    /// A final response: 486 busy, 603 decline, 404, ...
    Failed(u16),
    /// No response at all.
    Unreachable,
}

impl LegEnd {
    /// Why a page call was not answered, in the words a manager reads on the request page (issue 18
    /// item 4), with how long it rang when it did: "rang 30 s, no answer", "busy (486)".
    pub fn describe(self, rang_for: Option<Duration>) -> String {
        let why = match self {
            LegEnd::Timeout => "no answer".to_string(),
            LegEnd::Failed(486) => "busy (486)".to_string(),
            LegEnd::Failed(600) => "busy everywhere (600)".to_string(),
            LegEnd::Failed(603) => "declined (603)".to_string(),
            LegEnd::Failed(480) => "not available (480)".to_string(),
            LegEnd::Failed(404) => "no such number or user (404)".to_string(),
            LegEnd::Failed(408) => "no answer (408)".to_string(),
            LegEnd::Failed(487) | LegEnd::Cancelled => "cancelled".to_string(),
            LegEnd::Failed(401) | LegEnd::Failed(407) => "the trunk refused our credentials".to_string(),
            LegEnd::Failed(status) => format!("refused ({status})"),
            LegEnd::Unreachable => "unreachable: no response from the phone or trunk".to_string(),
            LegEnd::Rejected => "rejected".to_string(),
            LegEnd::RemoteHangup | LegEnd::LocalHangup => "hung up before answering".to_string(),
        };
        match rang_for {
            Some(d) => format!("rang {} s, {why}", d.as_secs_f64().round() as u64),
            None => why,
        }
    }
}

/// What the employee decided in the page session, or what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDecision {
    Accepted,
    /// Pressed 3, never chose, or hung up before accepting.
    Declined,
    /// Pressed 9 after accepting.
    Completed,
    /// Pressed 5.
    EscalateNow,
    /// Pressed 7.
    Snooze,
    /// The flow is over: send BYE.
    Hangup,
}

/// What became of a page, reported to the paging side (`orders::Outcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 180/183: the phone rings.
    Ringing,
    /// The employee picked up.
    Answered,
    Accepted,
    Declined,
    Completed,
    EscalateNow,
    Snooze,
    /// Never answered (busy, rejected, unreachable, cancelled), with why.
    Failed(String),
}

/// Something that happened, reported to the book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A new INVITE.
    Incoming(IncomingCall),
    /// The RTP ports asked for by [`Output::ReserveMedia`] are ours.
    MediaReserved { call: CallId },
    /// No RTP port was free for [`Output::ReserveMedia`].
    NoMediaPort { call: CallId },
    /// New remote media for an incoming call (the answer in a late-offer ACK, a re-INVITE).
    Offer { call: CallId },
    /// The ACK for our 2xx arrived.
    Confirmed { call: CallId },
    /// The IVR is done with the call.
    IvrHangup { call: CallId },
    /// The call is over, for whatever reason.
    CallEnded { call: CallId },
    /// Page `key` on each of these devices or contacts at once.
    Page { key: PageKey, contacts: Vec<ContactRef> },
    /// [`Output::PlaceLeg`] could not be carried out (no free RTP port).
    LegNotPlaced { leg: LegId, reason: String },
    /// A provisional response (180/183) for a leg.
    LegProgress { leg: LegId },
    /// A 2xx for a leg; `usable_media` when its SDP gives media we can send.
    LegAnswered { leg: LegId, usable_media: bool },
    /// New remote media for an answered leg.
    LegOffer { leg: LegId },
    /// The leg is over.
    LegEnded { leg: LegId, reason: LegEnd },
    /// The page session decided (it carries its key: it may report after its leg ended, when the
    /// wrapper no longer knows the leg and `leg` is `None`).
    Decision {
        leg: Option<LegId>,
        key: PageKey,
        decision: PageDecision,
    },
    /// End every leg of `request` except those of `keep` (`ControllerCommand::CancelRequest`).
    EndRequest { request: RequestRef, keep: Option<PageKey> },
    /// The stages of `request` before `stage` are over (`ControllerCommand::CancelStale`).
    EndStage { request: RequestRef, stage: u32 },
    /// Graceful shutdown; `trunks_pending` while trunk unregistrations are still under way.
    Drain { trunks_pending: bool },
    /// The trunks are unregistered (or gave up).
    TrunksDone,
    /// The media engine's load crossed `[sip] max_media_load` (up: new calls get 503 so the calls in progress keep
    /// their 20 ms timing; down: they are let in again).
    MediaLoad { overloaded: bool },
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The redirect target refused it.
    Routed,
    /// 403: no trunk allows its source.
    UntrustedSource,
    /// 503: shutting down.
    Draining,
    /// 503: at `max_calls`.
    AtCapacity,
    /// 503: the media threads are near the end of their 20 ms budget.
    MediaOverloaded,
    /// 503: its source calls too fast.
    RateLimited,
    /// 503: no RTP port free.
    NoMediaPort,
}

/// Something the wrapper must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// 302 with these Contacts.
    Redirect { call: CallId, contacts: Vec<String> },
    /// A final error response, with Retry-After when it is a 503.
    Reject {
        call: CallId,
        status: u16,
        reason: RejectReason,
        retry_after: Option<u32>,
    },
    /// Reserve an RTP port pair for the call, then feed `MediaReserved` or `NoMediaPort`.
    ReserveMedia { call: CallId },
    /// 180 Ringing (the answer comes `answer_after` later).
    Ring { call: CallId },
    /// 200 OK with our media address.
    Answer { call: CallId },
    /// Start the IVR session on the call's media.
    StartIvr { call: CallId },
    /// Pass new remote media to the call's running session.
    UpdateCallMedia { call: CallId },
    /// Tell the call's running session the ACK arrived.
    CallConfirmed { call: CallId },
    /// Hang up (BYE once answered, 480 before).
    HangUp { call: CallId },
    /// Stop the call's IVR session (it closes its recording and reports).
    StopIvr { call: CallId },
    /// The call ended before any media ran (for the call log); its ports are free.
    EndedEarly { call: CallId },
    /// Reserve ports and place a call to `contact` for `key`; feed `LegNotPlaced` when it cannot be.
    PlaceLeg {
        leg: LegId,
        key: PageKey,
        contact: ContactRef,
    },
    /// Do not ring `contact`: another phone of the same page already answered (paging sends one order per
    /// phone, and an auto-answering phone can answer before the next order arrives). Forget its order.
    SkipContact { key: PageKey, contact: ContactRef },
    /// CANCEL the leg (still ringing, as far as the book knows).
    CancelLeg { leg: LegId },
    /// BYE the leg (answered).
    ByeLeg { leg: LegId },
    /// Start the page session on the answered leg's media.
    StartPageSession { leg: LegId, key: PageKey },
    /// Pass new remote media to the leg's page session.
    UpdateLegMedia { leg: LegId },
    /// Stop the leg's page session (it reports a decline if the employee had not accepted).
    StopPageSession { leg: LegId },
    /// Tell the paging side what became of `key`.
    Report { key: PageKey, outcome: Outcome },
    /// Drain over: every call and leg ended (`forced` false), or time ran out (`forced` true).
    Finished { forced: bool },
}

/// Counters shown on /metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub calls_received: u64,
    pub calls_answered: u64,
    pub calls_rejected: u64,
}

#[derive(Debug)]
struct Call {
    /// The RTP ports are reserved (the IVR can start once the call is answered and has an offer).
    media_reserved: bool,
    has_offer: bool,
    media_started: bool,
    /// When to answer a ringing call.
    answer_at: Option<Instant>,
}

#[derive(Debug)]
struct Leg {
    key: PageKey,
    /// When its phone started ringing (180/183), for "rang 30 s, no answer".
    rang_at: Option<Instant>,
    answered: bool,
    media_started: bool,
}

#[derive(Debug)]
struct Drain {
    /// When to hang up what is left; `None` once done.
    hangup_at: Option<Instant>,
    /// When to report `Finished` regardless.
    stop_at: Instant,
    trunks_pending: bool,
    finished: bool,
}

pub struct CallBook {
    settings: Settings,
    gate: Option<SourceGate>,
    // BTreeMaps: outputs for many calls (drain, a request's end) come in id order, so runs and
    // tests are deterministic.
    calls: BTreeMap<CallId, Call>,
    legs: BTreeMap<LegId, Leg>,
    next_leg: u64,
    drain: Option<Drain>,
    /// The last `Input::MediaLoad`.
    media_overloaded: bool,
    counters: Counters,
    out: VecDeque<Output>,
}

impl CallBook {
    pub fn new(settings: Settings) -> CallBook {
        CallBook {
            settings,
            gate: None,
            calls: BTreeMap::new(),
            legs: BTreeMap::new(),
            next_leg: 0,
            drain: None,
            media_overloaded: false,
            counters: Counters::default(),
            out: VecDeque::new(),
        }
    }

    /// Adds the per-source rate limit (none by default).
    pub fn with_source_gate(mut self, gate: SourceGate) -> CallBook {
        self.gate = Some(gate);
        self
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Incoming calls held (ringing or answered): what the call ceiling counts.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Page legs placed and not yet ended.
    pub fn active_legs(&self) -> usize {
        self.legs.len()
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_some()
    }

    /// Feeds one input at time `now`.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Incoming(call) => self.on_incoming(call, now),
            Input::MediaReserved { call } => self.on_media_reserved(call, now),
            Input::NoMediaPort { call } => {
                if self.calls.remove(&call).is_some() {
                    self.reject(call, 503, RejectReason::NoMediaPort, Some(RETRY_BUSY));
                }
            }
            Input::Offer { call } => {
                let Some(c) = self.calls.get_mut(&call) else { return };
                if c.media_started {
                    self.out.push_back(Output::UpdateCallMedia { call });
                } else {
                    // A late offer starts the IVR whether or not the answer was sent
                    // (in practice it only comes in the ACK of our 2xx).
                    c.has_offer = true;
                    self.start_ivr(call);
                }
            }
            Input::Confirmed { call } => {
                if self.calls.get(&call).is_some_and(|c| c.media_started) {
                    self.out.push_back(Output::CallConfirmed { call });
                }
            }
            Input::IvrHangup { call } => self.out.push_back(Output::HangUp { call }),
            Input::CallEnded { call } => {
                let Some(c) = self.calls.remove(&call) else { return };
                self.out.push_back(if c.media_started {
                    Output::StopIvr { call }
                } else {
                    Output::EndedEarly { call }
                });
            }
            Input::Page { key, contacts } => {
                let taken = self.legs.values().any(|l| l.key == key && l.answered);
                for contact in contacts {
                    if taken {
                        self.out.push_back(Output::SkipContact { key, contact });
                        continue;
                    }
                    let leg = LegId(self.next_leg);
                    self.next_leg += 1;
                    self.legs.insert(
                        leg,
                        Leg {
                            key,
                            rang_at: None,
                            answered: false,
                            media_started: false,
                        },
                    );
                    self.out.push_back(Output::PlaceLeg { leg, key, contact });
                }
            }
            Input::LegNotPlaced { leg, reason } => {
                // Reported at once, even while another phone of the page rings.
                if let Some(l) = self.legs.remove(&leg) {
                    self.report(l.key, Outcome::Failed(reason));
                }
            }
            Input::LegProgress { leg } => {
                let Some(l) = self.legs.get_mut(&leg) else { return };
                if l.rang_at.is_none() {
                    l.rang_at = Some(now);
                    let key = l.key;
                    self.report(key, Outcome::Ringing);
                }
            }
            Input::LegAnswered { leg, usable_media } => self.on_leg_answered(leg, usable_media),
            Input::LegOffer { leg } => {
                if self.legs.get(&leg).is_some_and(|l| l.media_started) {
                    self.out.push_back(Output::UpdateLegMedia { leg });
                }
            }
            Input::LegEnded { leg, reason } => {
                let Some(l) = self.legs.remove(&leg) else { return };
                if l.media_started {
                    self.out.push_back(Output::StopPageSession { leg });
                } else if !l.answered && !self.legs.values().any(|other| other.key == l.key) {
                    // Failed only when no other phone of this page is still ringing or answered.
                    let rang_for = l.rang_at.map(|t| now.saturating_duration_since(t));
                    self.report(l.key, Outcome::Failed(reason.describe(rang_for)));
                }
            }
            Input::Decision { leg, key, decision } => {
                let outcome = match decision {
                    PageDecision::Hangup => {
                        // A leg already ended has nothing left to hang up.
                        if let Some(leg) = leg {
                            self.out.push_back(Output::ByeLeg { leg });
                        }
                        return;
                    }
                    PageDecision::Accepted => Outcome::Accepted,
                    PageDecision::Declined => Outcome::Declined,
                    PageDecision::Completed => Outcome::Completed,
                    PageDecision::EscalateNow => Outcome::EscalateNow,
                    PageDecision::Snooze => Outcome::Snooze,
                };
                self.report(key, outcome);
            }
            Input::EndRequest { request, keep } => {
                let ending: Vec<(LegId, bool)> = self
                    .legs
                    .iter()
                    .filter(|(_, l)| l.key.request == request && Some(l.key) != keep)
                    .map(|(id, l)| (*id, l.answered))
                    .collect();
                for (leg, answered) in ending {
                    self.end_leg(leg, answered);
                }
            }
            Input::EndStage { request, stage } => {
                let stale: Vec<LegId> = self
                    .legs
                    .iter()
                    .filter(|(_, l)| l.key.request == request && l.key.stage < stage && !l.answered)
                    .map(|(id, _)| *id)
                    .collect();
                for leg in stale {
                    self.out.push_back(Output::CancelLeg { leg });
                }
            }
            Input::Drain { trunks_pending } => {
                if self.drain.is_none() {
                    let hangup_at = now + self.settings.drain;
                    self.drain = Some(Drain {
                        hangup_at: Some(hangup_at),
                        stop_at: hangup_at + STOP_GRACE,
                        trunks_pending,
                        finished: false,
                    });
                }
            }
            Input::MediaLoad { overloaded } => self.media_overloaded = overloaded,
            Input::TrunksDone => {
                if let Some(d) = &mut self.drain {
                    d.trunks_pending = false;
                }
            }
        }
        self.check_drained(now);
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call `handle_timeout` next: the next answer of a ringing call, or the drain's deadlines.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let answer = self.calls.values().filter_map(|c| c.answer_at).min();
        let drain = self
            .drain
            .as_ref()
            .filter(|d| !d.finished)
            .map(|d| d.hangup_at.unwrap_or(d.stop_at));
        answer.into_iter().chain(drain).min()
    }

    /// Does what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(hangup_at) = self.drain.as_ref().and_then(|d| d.hangup_at) {
            if now >= hangup_at {
                self.drain_hangup();
            }
        }
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.answer_at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for call in due {
            if let Some(c) = self.calls.get_mut(&call) {
                c.answer_at = None;
            }
            self.answer(call);
        }
        self.check_drained(now);
    }

    fn on_incoming(&mut self, ic: IncomingCall, now: Instant) {
        let IncomingCall {
            call,
            source,
            source_allowed,
            trusted,
            route,
            has_offer,
        } = ic;
        self.counters.calls_received += 1;
        // The redirect target's answer comes before the trunks' source filter, which its own
        // trusted sources extend (a bridge call is let in from them).
        let bridged = match route {
            Route::Redirect { contacts } => return self.out.push_back(Output::Redirect { call, contacts }),
            // Not counted as rejected.
            Route::Reject { status } => {
                return self.out.push_back(Output::Reject {
                    call,
                    status,
                    reason: RejectReason::Routed,
                    retry_after: None,
                })
            }
            Route::Bridge => true,
            Route::Ivr => false,
        };
        if !bridged && !source_allowed {
            return self.reject(call, 403, RejectReason::UntrustedSource, None);
        }
        // Admission, in `oncall_sip::admission`'s order: draining, the ceiling, then the source's rate.
        if self.drain.is_some() {
            return self.reject(call, 503, RejectReason::Draining, Some(RETRY_DRAINING));
        }
        if self.settings.max_calls > 0 && self.calls.len() >= self.settings.max_calls {
            return self.reject(call, 503, RejectReason::AtCapacity, Some(RETRY_BUSY));
        }
        if self.media_overloaded {
            return self.reject(call, 503, RejectReason::MediaOverloaded, Some(RETRY_BUSY));
        }
        if let Some(gate) = &mut self.gate {
            if !gate(source, bridged || trusted, now) {
                return self.reject(call, 503, RejectReason::RateLimited, Some(RETRY_RATE_LIMITED));
            }
        }
        self.calls.insert(
            call,
            Call {
                media_reserved: false,
                has_offer,
                media_started: false,
                answer_at: None,
            },
        );
        self.out.push_back(Output::ReserveMedia { call });
    }

    fn on_media_reserved(&mut self, call: CallId, now: Instant) {
        let answer_after = self.settings.answer_after;
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.media_reserved = true;
        if answer_after.is_zero() {
            self.answer(call);
        } else {
            c.answer_at = Some(now + answer_after);
            self.out.push_back(Output::Ring { call });
        }
    }

    fn reject(&mut self, call: CallId, status: u16, reason: RejectReason, retry_after: Option<u32>) {
        self.counters.calls_rejected += 1;
        self.out.push_back(Output::Reject {
            call,
            status,
            reason,
            retry_after,
        });
    }

    fn answer(&mut self, call: CallId) {
        let Some(c) = self.calls.get(&call) else { return };
        let has_offer = c.has_offer;
        self.out.push_back(Output::Answer { call });
        self.counters.calls_answered += 1;
        if has_offer {
            self.start_ivr(call);
        }
    }

    fn start_ivr(&mut self, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.media_started || !c.media_reserved || !c.has_offer {
            return;
        }
        c.media_started = true;
        self.out.push_back(Output::StartIvr { call });
    }

    fn on_leg_answered(&mut self, leg: LegId, usable_media: bool) {
        let Some(key) = self.legs.get(&leg).map(|l| l.key) else {
            return;
        };
        if self
            .legs
            .iter()
            .any(|(other, l)| *other != leg && l.key == key && l.answered)
        {
            // Another phone of the same page answered first (this one's 200 crossed our CANCEL).
            return self.out.push_back(Output::ByeLeg { leg });
        }
        // The first to answer takes the page: the other phones still ringing are cancelled.
        let losers: Vec<LegId> = self
            .legs
            .iter()
            .filter(|(other, l)| **other != leg && l.key == key && !l.answered)
            .map(|(id, _)| *id)
            .collect();
        if let Some(l) = self.legs.get_mut(&leg) {
            l.answered = true;
        }
        for loser in losers {
            self.out.push_back(Output::CancelLeg { leg: loser });
        }
        self.report(key, Outcome::Answered);
        if !usable_media {
            self.report(key, Outcome::Failed("no usable media in the answer".into()));
            return self.out.push_back(Output::ByeLeg { leg });
        }
        if let Some(l) = self.legs.get_mut(&leg) {
            l.media_started = true;
        }
        self.out.push_back(Output::StartPageSession { leg, key });
    }

    /// CANCEL while it rings, BYE once answered.
    fn end_leg(&mut self, leg: LegId, answered: bool) {
        self.out.push_back(if answered {
            Output::ByeLeg { leg }
        } else {
            Output::CancelLeg { leg }
        });
    }

    fn report(&mut self, key: PageKey, outcome: Outcome) {
        self.out.push_back(Output::Report { key, outcome });
    }

    /// The drain time is over: hang up the calls and end the legs that are left.
    fn drain_hangup(&mut self) {
        if let Some(d) = &mut self.drain {
            d.hangup_at = None;
        }
        let calls: Vec<CallId> = self.calls.keys().copied().collect();
        for call in calls {
            self.out.push_back(Output::HangUp { call });
        }
        let legs: Vec<(LegId, bool)> = self.legs.iter().map(|(id, l)| (*id, l.answered)).collect();
        for (leg, answered) in legs {
            self.end_leg(leg, answered);
        }
    }

    fn check_drained(&mut self, now: Instant) {
        let idle = self.calls.is_empty() && self.legs.is_empty();
        let Some(d) = &mut self.drain else { return };
        if d.finished {
            return;
        }
        let done = idle && !d.trunks_pending;
        if done || now >= d.stop_at {
            d.finished = true;
            self.out.push_back(Output::Finished { forced: !done });
        }
    }
}

#[cfg(test)]
mod tests;

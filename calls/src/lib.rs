//! OnCall's call application: the **call book**, a sans-IO core that owns every call's legs and
//! makes every decision about them, and the call controller that carries them out.
//!
//! What comes in to the book: [`book::Input`]s — an incoming INVITE already routed (IVR, bridge, redirect or
//! refusal) with whether its source is allowed, media reserved or not, a call's offer,
//! confirmation and end, a page order (one person, one stage, a list of devices or contacts),
//! the progress, answer and end of each leg, the page session's decisions, the end of a request
//! or of a stage, and the drain — each with the current time (`Instant`), plus
//! `handle_timeout(now)` at `poll_timeout()`. What goes out: [`book::Output`]s — answer, ring,
//! reject (status, reason, Retry-After), redirect, reserve media, start/update/stop the IVR or page
//! session, place a leg, CANCEL or BYE a leg, hang up a call, report a page's outcome, and
//! `Finished` at the end of a drain. Calls, legs, contacts, requests and people are opaque id
//! newtypes.
//!
//! What the book deliberately does not do: SIP (messages, URIs, transactions, dialogs, the user agent),
//! sockets and RTP ports, media and the IVR itself, the call log, trunk registrations, the dial
//! plan (contact → Request-URI, next hop, credentials) and paging policy. It depends on nothing.
//!
//! Wired: [`controller::Controller`] is the thin tokio task around [`CallBook`]. It maps the user
//! agent's `CallRef`s to [`CallId`]/[`LegId`], feeds the book the user agent's events, the paging
//! task's commands, the page and IVR sessions' reports, the clock and the shutdown, and carries
//! the outputs out (SIP responses and requests, RTP ports, media sessions, the call log, reports
//! to paging). It keeps only IO state per call and leg (sockets, ports, media, the page order's
//! route and message, the redirect target's Contacts) and makes no decision the book makes.
//!
//! # What the book took over from the controller
//! - The `UaEvent::IncomingCall` arm (redirect decision applied, source filter 403,
//!   `Admission::admit` 503s, no-RTP-port 503, ring or answer), and the `Confirmed`,
//!   `MediaChanged` and `Ended` arms' decisions → `Input::Incoming`, `MediaReserved`/`NoMediaPort`,
//!   `Offer`, `Confirmed`, `CallEnded`. The per-source token bucket stays
//!   `oncall_sip::admission`'s, asked through [`book::SourceGate`] with the trusted flag.
//! - When to answer and when to start the IVR (the `answer_at` scan of the timer) →
//!   `Output::Answer`, `StartIvr`, `handle_timeout`.
//! - The drain (its deadlines, the hang-up of what is left, when to stop) and the IVR's hang-up →
//!   `Input::Drain`, `TrunksDone`, `IvrHangup`, `Output::HangUp`, `Finished`.
//! - The paging commands' leg bookkeeping (`Page`, `CancelRequest`, `CancelStale`, the no-RTP-port
//!   report) → `Input::Page`, `LegNotPlaced`, `EndRequest`, `EndStage`.
//! - The legs' events (ring reported once, first answer wins, CANCEL the losers, BYE a late
//!   answer, no usable media, failure reported when no sibling is left) → `Input::LegProgress`,
//!   `LegAnswered`, `LegOffer`, `LegEnded`.
//! - The page session's decisions and the reports to paging → `Input::Decision`, `Output::Report`.
//! - The `calls_received`/`calls_answered`/`calls_rejected`/`active_calls` counts of
//!   `CallCounters` → [`book::Counters`], [`CallBook::active_calls`] (the controller publishes them).

pub mod book;
pub mod call_log;
pub mod config;
pub mod controller;
pub mod dial;
pub mod hold_room;
pub mod numbers;
pub mod tenants;
pub mod ivr_session;
pub mod ivr_settings;
pub mod opening_hours;
pub mod orders;
pub mod page_session;
pub mod phones;
pub mod playback;
pub mod redirect;
pub mod settings_watch;
pub mod sip_texts;
pub mod trunks;

pub use book::{CallBook, CallId, ContactRef, Input, LegId, Output, PageKey, PersonRef, RequestRef, Settings};

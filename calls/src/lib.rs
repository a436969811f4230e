//! OnCall's call application, first step: the **call book**, a sans-IO core that owns every
//! call's legs and makes the decisions the call controller makes today.
//!
//! What comes in: [`book::Input`]s — an incoming INVITE already routed (IVR, bridge, redirect or
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
//! What it deliberately does not do: SIP (messages, URIs, transactions, dialogs, the user agent),
//! sockets and RTP ports, media and the IVR itself, the call log, trunk registrations, the dial
//! plan (contact → Request-URI, next hop, credentials) and paging policy. It depends on nothing.
//!
//! Not wired into the binary yet: the next step replaces the inline logic of the controller
//! (`src/call_control.rs`) with a thin tokio task around [`CallBook`] that maps the user agent's
//! `CallRef`s to [`CallId`]/[`LegId`] and carries the outputs out.
//!
//! # What it replaces in `src/call_control.rs`
//! - `Controller::on_event`, the `UaEvent::IncomingCall` arm (redirect decision applied, source
//!   filter 403, `Admission::admit` 503s, no-RTP-port 503, ring or answer), and the
//!   `Confirmed`, `MediaChanged` and `Ended` arms' decisions → `Input::Incoming`,
//!   `MediaReserved`/`NoMediaPort`, `Offer`, `Confirmed`, `CallEnded`.
//! - `Controller::answer`, `Controller::start_media`'s "when" (not the `IvrSession` it builds),
//!   and the `answer_at` scan of `Controller::run`'s timer arm → `Output::Answer`, `StartIvr`,
//!   `handle_timeout`.
//! - `Controller::run`'s drain (`draining` deadlines, the hang-up of what is left, the break
//!   condition) and its `SessionEvent::Hangup` arm → `Input::Drain`, `TrunksDone`, `IvrHangup`,
//!   `Output::HangUp`, `Finished`.
//! - `Controller::on_command` (`CancelRequest`, `CancelStale`; `Page` via `place_leg`'s leg
//!   bookkeeping and its no-RTP-port report) → `Input::Page`, `LegNotPlaced`, `EndRequest`,
//!   `EndStage`.
//! - `Controller::on_leg_event` (ring reported once, first answer wins, CANCEL the losers, BYE a
//!   late answer, no usable media, failure reported when no sibling is left) → `Input::LegProgress`,
//!   `LegAnswered`, `LegOffer`, `LegEnded`.
//! - `Controller::on_page_decision` and `Controller::report` → `Input::Decision`, `Output::Report`.
//! - The `calls_received`/`calls_answered`/`calls_rejected`/`active_calls` updates of
//!   `CallCounters` → [`book::Counters`], [`CallBook::active_calls`].

pub mod book;
pub mod call_log;
pub mod config;
pub mod controller;
pub mod dial;
pub mod hold_room;
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

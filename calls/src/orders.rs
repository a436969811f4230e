//! What the calls side and paging say to each other. Paging orders ([`ControllerCommand`]): page
//! this person by this route, end a request's or a stage's calls, send this text, release this
//! caller. The calls side reports ([`PagingEvent`]): a "page on-call" request opened by a call,
//! what became of a page ([`Outcome`]), a text reply applied.

use crate::dial::Route;
use oncall_core::escalation::NotificationKey;
use oncall_core::RequestId;
use std::path::PathBuf;
use std::sync::Arc;

/// The user agent's handle to a call: paging keeps it for a caller holding for a bridge.
pub use oncall_sip::ua::CallRef;

/// What became of one page: the call book's type.
pub use crate::book::Outcome;

/// What the paging task hears about.
#[derive(Debug)]
pub enum PagingEvent {
    /// The call log opened a "page on-call" request and stored its message.
    RequestOpened { request: RequestId, caller: String, recording: PathBuf, caller_call: Option<CallRef> },
    /// What became of one paging call or text.
    CallResult { key: NotificationKey, outcome: Outcome },
    /// A person replied to a text (the reply handler already acknowledged/completed it in the store).
    TextReply { request: RequestId, person: oncall_core::PersonId, action: oncall_core::text_reply::ReplyAction },
}

/// One call to place for a notification.
#[derive(Debug, Clone)]
pub struct PageOrder {
    pub key: NotificationKey,
    pub route: Route,
    /// The caller as it is read out ("new request from 5 5 5 …").
    pub caller: String,
    /// The caller's message, 8 kHz mono.
    pub message: Arc<[i16]>,
    /// The caller's call, holding for a bridge (when they have not hung up).
    pub caller_call: Option<CallRef>,
    /// An alert's page (issue 20): `message` is its summary, spoken right after "new request".
    pub speak_first: bool,
}

/// What the paging task asks of the call controller.
#[derive(Debug)]
pub enum ControllerCommand {
    Page(PageOrder),
    /// End every leg of `request` (CANCEL the ringing ones, BYE the answered ones) except `keep`.
    CancelRequest { request: RequestId, keep: Option<NotificationKey> },
    /// CANCEL the legs of `request` still ringing from stages before `stage` (their stage ended).
    CancelStale { request: RequestId, stage: u32 },
    /// Send a SIP MESSAGE (RFC 3428) along `route`; with a `key`, its outcome is reported as a
    /// `CallResult` (`Ringing` = delivered, `Failed`); without, it is an answer to a reply.
    SendText { key: Option<NotificationKey>, route: Route, body: String },
    /// Nobody could be reached: tell the caller holding for a bridge, and let them go.
    ReleaseCaller { caller: CallRef },
}

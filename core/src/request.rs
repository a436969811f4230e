//! Requests: one per incoming call or API submission, and their lifecycle.
//!
//! ```text
//! received ─► notifying ─► answered ─► acknowledged ─► completed
//!     │           │           │             │
//!     └───────────┴───────────┴─────────────┴─► abandoned      (caller hung up, cancelled)
//!                 └─► exhausted                                 (nobody answered)
//! ```
//!
//! Acknowledging or completing may skip earlier states (a manager can acknowledge from the web
//! while nobody answered the phone). Every transition is stamped with time and actor and
//! appended to the request's event log. [`RequestState`] carries the stamps its state implies,
//! so an acknowledged request without `acknowledged_at` cannot be built.

use crate::ids::{CallRowId, OrgId, PersonId, RecordingId, RequestId, UserId};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Who did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Actor {
    Person(PersonId),
    User(UserId),
    /// The caller (hung up, pressed a key).
    Caller,
    /// OnCall itself (escalation engine, timeouts).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Person(p) => write!(f, "person:{}", p.0),
            Actor::User(u) => write!(f, "user:{}", u.0),
            Actor::Caller => f.write_str("caller"),
            Actor::System => f.write_str("system"),
        }
    }
}

impl FromStr for Actor {
    type Err = String;
    fn from_str(s: &str) -> Result<Actor, String> {
        let bad = || format!("bad actor {s:?}");
        match s {
            "caller" => return Ok(Actor::Caller),
            "system" => return Ok(Actor::System),
            _ => {}
        }
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        match kind {
            "person" => Ok(Actor::Person(PersonId(id))),
            "user" => Ok(Actor::User(UserId(id))),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for Actor {
    type Error = String;
    fn try_from(s: String) -> Result<Actor, String> {
        s.parse()
    }
}

impl From<Actor> for String {
    fn from(a: Actor) -> String {
        a.to_string()
    }
}

/// The flat status, as stored in `requests.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Received,
    Notifying,
    Answered,
    Acknowledged,
    Completed,
    Abandoned,
    Exhausted,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 7] = [
        RequestStatus::Received,
        RequestStatus::Notifying,
        RequestStatus::Answered,
        RequestStatus::Acknowledged,
        RequestStatus::Completed,
        RequestStatus::Abandoned,
        RequestStatus::Exhausted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Received => "received",
            RequestStatus::Notifying => "notifying",
            RequestStatus::Answered => "answered",
            RequestStatus::Acknowledged => "acknowledged",
            RequestStatus::Completed => "completed",
            RequestStatus::Abandoned => "abandoned",
            RequestStatus::Exhausted => "exhausted",
        }
    }

    pub fn parse(s: &str) -> Option<RequestStatus> {
        RequestStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No transition leaves these. (Exhausted is not one: a manager may still acknowledge.)
    pub fn is_terminal(self) -> bool {
        matches!(self, RequestStatus::Completed | RequestStatus::Abandoned)
    }

    /// The states from which `self` may be entered.
    pub fn allowed_from(self) -> &'static [RequestStatus] {
        use RequestStatus::*;
        match self {
            Received => &[],
            // Exhausted: paged again from the web (issue 18 item 6).
            Notifying => &[Received, Exhausted],
            Answered => &[Received, Notifying],
            Acknowledged => &[Received, Notifying, Answered, Exhausted],
            Completed => &[Received, Notifying, Answered, Acknowledged, Exhausted],
            Abandoned => &[Received, Notifying, Answered],
            Exhausted => &[Received, Notifying],
        }
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When and by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub at: Timestamp,
    pub by: Actor,
}

/// The lifecycle state with the stamps it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RequestState {
    Received,
    Notifying { since: Timestamp },
    Answered { answered: Stamp },
    Acknowledged { answered: Option<Stamp>, acknowledged: Stamp },
    Completed { answered: Option<Stamp>, acknowledged: Option<Stamp>, completed: Stamp },
    Abandoned { answered: Option<Stamp>, abandoned: Stamp },
    Exhausted { at: Timestamp },
}

impl RequestState {
    pub fn status(&self) -> RequestStatus {
        match self {
            RequestState::Received => RequestStatus::Received,
            RequestState::Notifying { .. } => RequestStatus::Notifying,
            RequestState::Answered { .. } => RequestStatus::Answered,
            RequestState::Acknowledged { .. } => RequestStatus::Acknowledged,
            RequestState::Completed { .. } => RequestStatus::Completed,
            RequestState::Abandoned { .. } => RequestStatus::Abandoned,
            RequestState::Exhausted { .. } => RequestStatus::Exhausted,
        }
    }

    pub fn answered(&self) -> Option<Stamp> {
        match *self {
            RequestState::Answered { answered } => Some(answered),
            RequestState::Acknowledged { answered, .. }
            | RequestState::Completed { answered, .. }
            | RequestState::Abandoned { answered, .. } => answered,
            _ => None,
        }
    }

    pub fn acknowledged(&self) -> Option<Stamp> {
        match *self {
            RequestState::Acknowledged { acknowledged, .. } => Some(acknowledged),
            RequestState::Completed { acknowledged, .. } => acknowledged,
            _ => None,
        }
    }

    pub fn completed(&self) -> Option<Stamp> {
        match *self {
            RequestState::Completed { completed, .. } => Some(completed),
            _ => None,
        }
    }
}

/// A stored request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub org: OrgId,
    pub call: Option<CallRowId>,
    /// Caller's number or URI as received, or the API submitter.
    pub caller: String,
    pub summary: String,
    pub received_at: Timestamp,
    pub state: RequestState,
    /// Where it came from: `call`, or `alert` (monitoring, issue 20; `caller` is then the integration's name).
    #[serde(default = "call_source")]
    pub source: String,
    /// Alerts counted on it (0 for a call's request).
    #[serde(default)]
    pub alert_count: i64,
    /// What the caller said in their message, once transcribed (issue 23).
    #[serde(default)]
    pub transcript: Option<String>,
}

fn call_source() -> String {
    "call".into()
}

/// Input for a new request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewRequest {
    pub caller: String,
    pub summary: String,
    pub call: Option<CallRowId>,
}

/// One line of a request's append-only log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEvent {
    pub at: Timestamp,
    pub actor: Actor,
    /// `status` (detail: the new status), `note`, `notification`, `recording`, ... (see
    /// `store::event_kind`).
    pub kind: String,
    pub detail: String,
}

/// What a recording holds, as stored in `recordings.kind` (and as the `-<kind>.wav` end of its file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingKind {
    /// The caller's message (voicemail), recorded by the IVR.
    Message,
    /// A held caller's call bridged to the on-call person.
    Conversation,
}

impl RecordingKind {
    pub const ALL: [RecordingKind; 2] = [RecordingKind::Message, RecordingKind::Conversation];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingKind::Message => "message",
            RecordingKind::Conversation => "conversation",
        }
    }
}

impl fmt::Display for RecordingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordingKind {
    type Err = String;
    fn from_str(s: &str) -> Result<RecordingKind, String> {
        RecordingKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("bad recording kind {s:?}"))
    }
}

/// A recording linked to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub id: RecordingId,
    pub org: OrgId,
    pub request: Option<RequestId>,
    pub kind: RecordingKind,
    /// Storage key or path, as the recordings crate wrote it.
    pub storage_key: String,
    pub duration_ms: i64,
    /// Peak and RMS level, 0.0..=1.0 (for the waveform thumbnail and silence detection).
    pub peak: f64,
    pub rms: f64,
    pub created_at: Timestamp,
}

/// Input for a new recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRecording {
    pub request: Option<RequestId>,
    pub kind: RecordingKind,
    pub storage_key: String,
    pub duration_ms: i64,
    pub peak: f64,
    pub rms: f64,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_round_trip() {
        for a in [Actor::Person(PersonId(3)), Actor::User(UserId(4)), Actor::Caller, Actor::System] {
            assert_eq!(a.to_string().parse::<Actor>().unwrap(), a);
        }
        assert!("person:x".parse::<Actor>().is_err());
        assert!("robot:1".parse::<Actor>().is_err());
    }

    #[test]
    fn recording_kinds_keep_their_stored_text() {
        for (k, text) in [(RecordingKind::Message, "message"), (RecordingKind::Conversation, "conversation")] {
            assert_eq!((k.as_str(), k.to_string()), (text, text.to_string()));
            assert_eq!(text.parse::<RecordingKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::Value::String(text.into()));
        }
        assert!("greeting".parse::<RecordingKind>().is_err());
    }

    #[test]
    fn transitions() {
        use RequestStatus::*;
        assert!(Acknowledged.allowed_from().contains(&Answered));
        assert!(!Acknowledged.allowed_from().contains(&Acknowledged));
        assert!(!Answered.allowed_from().contains(&Completed));
        for s in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(s.as_str()), Some(s));
            if s.is_terminal() {
                assert!(RequestStatus::ALL.iter().all(|t| !t.allowed_from().contains(&s)));
            }
        }
    }
}

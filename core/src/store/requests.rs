//! Requests: creation, guarded lifecycle transitions, the event log, notes and recordings.
//!
//! Every transition is one conditional `UPDATE ... WHERE status IN (<allowed sources>)` plus an
//! event row, in one transaction. The condition is what makes concurrent instances safe: when
//! two acknowledge the same request at once, PostgreSQL re-checks the `WHERE` of the second
//! after the first commits (and SQLite serializes the writers), so exactly one update matches
//! and the other gets `StoreError::Transition`.

use super::rows::{corrupt, f64_, i64_, opt_actor, opt_i64, opt_ts, string, ts};
use super::{Result, Store, StoreError};
use crate::ids::{CallRowId, OrgId, PersonId, RecordingId, RequestId};
use crate::request::{
    Actor, NewRecording, NewRequest, Recording, RecordingKind, Request, RequestEvent, RequestState, RequestStatus,
    Stamp,
};
use crate::timestamp::Timestamp;
use crate::validation::ValidationError;
use sqlx::any::AnyRow;

pub(super) const REQUEST_COLUMNS: &str = "id, call_row_id, caller, summary, status, received_at, notifying_at, \
     answered_at, answered_by, acknowledged_at, acknowledged_by, completed_at, completed_by, \
     abandoned_at, abandoned_by, exhausted_at, source, alert_count, transcript";

/// What the requests list asks for. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Any of these statuses (empty: all).
    pub statuses: Vec<RequestStatus>,
    /// Only requests not completed or abandoned.
    pub open_only: bool,
    /// Received at or after.
    pub from: Option<Timestamp>,
    /// Received before.
    pub to: Option<Timestamp>,
    /// Requests this person answered, acknowledged, completed or was notified of.
    pub person: Option<PersonId>,
    /// Substring of the caller's number or URI.
    pub caller: Option<String>,
    /// Words in what the caller said (the message's transcript) or the alert's summary, any case.
    pub words: Option<String>,
    /// At most this many (clamped to 1..=1000; 0 means 200).
    pub limit: i64,
    pub offset: i64,
}

enum Bind {
    I64(i64),
    Text(String),
}

/// Event kinds written by the store.
pub mod event_kind {
    pub const STATUS: &str = "status";
    pub const NOTE: &str = "note";
    pub const RECORDING: &str = "recording";
    pub const NOTIFICATION: &str = "notification";
    /// A normal request opened after hours waits for the opening (detail: "deferred until …").
    pub const DEFERRED: &str = "deferred";
    /// A button pressed on the request (detail: "page again", "escalate now", "reassign to <name>"), by its
    /// actor; or, by the system, why paging could not carry one out.
    pub const ACTION: &str = "action";
    /// A recording's transcription finished (detail: "<kind> <recording>: <status>", then the text or reason).
    pub const TRANSCRIBED: &str = "transcribed";
}

fn stamp(row: &AnyRow, at: &str, by: &str) -> Result<Option<Stamp>> {
    match (opt_ts(row, at)?, opt_actor(row, by)?) {
        (Some(at), Some(by)) => Ok(Some(Stamp { at, by })),
        (None, None) => Ok(None),
        _ => Err(corrupt(at, format!("{at} and {by} must be set together"))),
    }
}

fn required<T>(v: Option<T>, col: &str) -> Result<T> {
    v.ok_or_else(|| corrupt(col, "missing for this status"))
}

pub(super) fn request_from_row(org: OrgId, row: &AnyRow) -> Result<Request> {
    let status_s = string(row, "status")?;
    let status = RequestStatus::parse(&status_s).ok_or_else(|| corrupt("requests.status", &status_s))?;
    let answered = stamp(row, "answered_at", "answered_by")?;
    let acknowledged = stamp(row, "acknowledged_at", "acknowledged_by")?;
    let state = match status {
        RequestStatus::Received => RequestState::Received,
        RequestStatus::Notifying => RequestState::Notifying { since: required(opt_ts(row, "notifying_at")?, "notifying_at")? },
        RequestStatus::Answered => RequestState::Answered { answered: required(answered, "answered_at")? },
        RequestStatus::Acknowledged => {
            RequestState::Acknowledged { answered, acknowledged: required(acknowledged, "acknowledged_at")? }
        }
        RequestStatus::Completed => RequestState::Completed {
            answered,
            acknowledged,
            completed: required(stamp(row, "completed_at", "completed_by")?, "completed_at")?,
        },
        RequestStatus::Abandoned => {
            RequestState::Abandoned { answered, abandoned: required(stamp(row, "abandoned_at", "abandoned_by")?, "abandoned_at")? }
        }
        RequestStatus::Exhausted => RequestState::Exhausted { at: required(opt_ts(row, "exhausted_at")?, "exhausted_at")? },
    };
    Ok(Request {
        id: RequestId(i64_(row, "id")?),
        org,
        call: opt_i64(row, "call_row_id")?.map(CallRowId),
        caller: string(row, "caller")?,
        summary: string(row, "summary")?,
        received_at: ts(row, "received_at")?,
        state,
        source: string(row, "source")?,
        alert_count: i64_(row, "alert_count")?,
        transcript: super::rows::opt_string(row, "transcript")?,
    })
}

/// The columns a transition into `to` stamps.
fn stamp_columns(to: RequestStatus) -> (&'static str, Option<&'static str>) {
    match to {
        RequestStatus::Received => ("received_at", None),
        RequestStatus::Notifying => ("notifying_at", None),
        RequestStatus::Answered => ("answered_at", Some("answered_by")),
        RequestStatus::Acknowledged => ("acknowledged_at", Some("acknowledged_by")),
        RequestStatus::Completed => ("completed_at", Some("completed_by")),
        RequestStatus::Abandoned => ("abandoned_at", Some("abandoned_by")),
        RequestStatus::Exhausted => ("exhausted_at", None),
    }
}

impl Store {
    pub async fn create_request(&self, org: OrgId, new: &NewRequest, at: Timestamp) -> Result<RequestId> {
        let mut tx = self.pool().begin().await?;
        let id = insert_request(&mut tx, org, new, at).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A caller's message filed in one transaction: the request (received), a note of `detail` by the system
    /// (which instance took the call), and the recording with its transcription job. What the call log does for
    /// every message, as one commit instead of three.
    pub async fn open_request_with_message(
        &self,
        org: OrgId,
        new: &NewRequest,
        detail: &str,
        recording: &NewRecording,
    ) -> Result<(RequestId, RecordingId)> {
        let at = recording.created_at;
        let mut tx = self.pool().begin().await?;
        let id = insert_request(&mut tx, org, new, at).await?;
        insert_event(&mut tx, org, id, at, Actor::System, "instance", detail).await?;
        let rec = insert_recording(&mut tx, org, &NewRecording { request: Some(id), ..recording.clone() }).await?;
        tx.commit().await?;
        Ok((id, rec))
    }

    pub async fn request(&self, org: OrgId, id: RequestId) -> Result<Request> {
        let row = sqlx::query(&format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE org_id = $1 AND id = $2"))
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        request_from_row(org, &row)
    }

    /// Which organization request `id` belongs to: for routing the server's own events (a paging
    /// call's result, a recorded conversation) to that organization's task. Never an access check:
    /// what a person may see is asked with their organization, as everywhere else.
    pub async fn organization_of_request(&self, id: RequestId) -> Result<Option<OrgId>> {
        let row = sqlx::query("SELECT org_id FROM requests WHERE id = $1").bind(id.0).fetch_optional(self.pool()).await?;
        row.map(|r| super::rows::i64_(&r, "org_id").map(OrgId)).transpose()
    }

    /// The newest `limit` requests.
    pub async fn list_requests(&self, org: OrgId, limit: i64) -> Result<Vec<Request>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE org_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2"
        ))
        .bind(org.0)
        .bind(limit.clamp(0, 10_000))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| request_from_row(org, r)).collect()
    }

    /// Requests matching `filter`, newest first.
    pub async fn search_requests(&self, org: OrgId, filter: &RequestFilter) -> Result<Vec<Request>> {
        let mut binds = vec![Bind::I64(org.0)];
        let mut sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE org_id = $1");
        let push = |binds: &mut Vec<Bind>, b: Bind| -> String {
            binds.push(b);
            format!("${}", binds.len())
        };
        if !filter.statuses.is_empty() {
            // Statuses come from our enum, never from input text.
            let list = filter.statuses.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
            sql.push_str(&format!(" AND status IN ({list})"));
        }
        if filter.open_only {
            sql.push_str(" AND status NOT IN ('completed', 'abandoned')");
        }
        if let Some(from) = filter.from {
            let p = push(&mut binds, Bind::I64(from.0));
            sql.push_str(&format!(" AND received_at >= {p}"));
        }
        if let Some(to) = filter.to {
            let p = push(&mut binds, Bind::I64(to.0));
            sql.push_str(&format!(" AND received_at < {p}"));
        }
        if let Some(person) = filter.person {
            let actor = push(&mut binds, Bind::Text(Actor::Person(person).to_string()));
            let id = push(&mut binds, Bind::I64(person.0));
            sql.push_str(&format!(
                " AND (answered_by = {actor} OR acknowledged_by = {actor} OR completed_by = {actor} \
                 OR id IN (SELECT request_id FROM notifications WHERE org_id = $1 AND person_id = {id}))"
            ));
        }
        if let Some(caller) = filter.caller.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            let escaped = caller.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let p = push(&mut binds, Bind::Text(format!("%{escaped}%")));
            sql.push_str(&format!(" AND caller LIKE {p} ESCAPE '\\'"));
        }
        if let Some(words) = filter.words.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            let escaped = words.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let p = push(&mut binds, Bind::Text(format!("%{escaped}%")));
            sql.push_str(&format!(
                " AND (LOWER(COALESCE(transcript, '')) LIKE {p} ESCAPE '\\' OR LOWER(summary) LIKE {p} ESCAPE '\\')"
            ));
        }
        let limit = if filter.limit <= 0 { 200 } else { filter.limit.min(1000) };
        let l = push(&mut binds, Bind::I64(limit));
        let o = push(&mut binds, Bind::I64(filter.offset.max(0)));
        sql.push_str(&format!(" ORDER BY received_at DESC, id DESC LIMIT {l} OFFSET {o}"));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::I64(v) => q.bind(v),
                Bind::Text(v) => q.bind(v),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(|r| request_from_row(org, r)).collect()
    }

    /// True if `person` answered, acknowledged, completed or was notified of the request: the
    /// employees who may act on it.
    pub async fn request_involves(&self, org: OrgId, id: RequestId, person: PersonId) -> Result<bool> {
        let req = self.request(org, id).await?;
        let me = Actor::Person(person);
        let state = req.state;
        let stamped = [state.answered(), state.acknowledged(), state.completed()].into_iter().flatten().any(|s| s.by == me);
        if stamped {
            return Ok(true);
        }
        let row = sqlx::query("SELECT id FROM notifications WHERE org_id = $1 AND request_id = $2 AND person_id = $3 LIMIT 1")
            .bind(org.0)
            .bind(id.0)
            .bind(person.0)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// received → notifying (the escalation started).
    pub async fn start_notifying(&self, org: OrgId, id: RequestId, at: Timestamp) -> Result<()> {
        self.transition(org, id, RequestStatus::Notifying, Actor::System, at).await
    }

    /// Someone picked up.
    pub async fn mark_answered(&self, org: OrgId, id: RequestId, person: PersonId, at: Timestamp) -> Result<()> {
        self.transition(org, id, RequestStatus::Answered, Actor::Person(person), at).await
    }

    /// Someone took responsibility. Exactly one of concurrent callers succeeds; the others get
    /// `StoreError::Transition { current: Acknowledged, .. }`.
    pub async fn acknowledge(&self, org: OrgId, id: RequestId, by: Actor, at: Timestamp) -> Result<()> {
        self.transition(org, id, RequestStatus::Acknowledged, by, at).await
    }

    pub async fn complete(&self, org: OrgId, id: RequestId, by: Actor, at: Timestamp) -> Result<()> {
        self.transition(org, id, RequestStatus::Completed, by, at).await
    }

    /// The caller hung up before anyone took it, or it was cancelled.
    pub async fn abandon(&self, org: OrgId, id: RequestId, by: Actor, at: Timestamp) -> Result<()> {
        self.transition(org, id, RequestStatus::Abandoned, by, at).await
    }

    /// The escalation gave up.
    pub async fn mark_exhausted(&self, org: OrgId, id: RequestId, at: Timestamp) -> Result<()> {
        self.transition(org, id, RequestStatus::Exhausted, Actor::System, at).await
    }

    async fn transition(&self, org: OrgId, id: RequestId, to: RequestStatus, by: Actor, at: Timestamp) -> Result<()> {
        let (at_col, by_col) = stamp_columns(to);
        // The allowed list comes from our own constants, never from input, so inlining it is safe.
        let allowed = to
            .allowed_from()
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        if allowed.is_empty() {
            let current = self.request(org, id).await?.state.status();
            return Err(StoreError::Transition { id, current, wanted: to });
        }
        let set_by = by_col.map(|c| format!(", {c} = $5")).unwrap_or_default();
        let sql = format!(
            "UPDATE requests SET status = $1, {at_col} = $2{set_by} \
             WHERE org_id = $3 AND id = $4 AND status IN ({allowed})"
        );
        let mut tx = self.pool().begin().await?;
        let mut q = sqlx::query(&sql).bind(to.as_str()).bind(at.0).bind(org.0).bind(id.0);
        if by_col.is_some() {
            q = q.bind(by.to_string());
        }
        let done = q.execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            // Either it does not exist (in this org) or it is in a state we cannot leave.
            let current = self.request(org, id).await?.state.status();
            return Err(StoreError::Transition { id, current, wanted: to });
        }
        insert_event(&mut tx, org, id, at, by, event_kind::STATUS, to.as_str()).await?;
        tx.commit().await?;
        tracing::debug!(request = %id, org = %org, status = %to, "request transition");
        Ok(())
    }

    /// Appends a free-text note to the request's log.
    pub async fn add_note(&self, org: OrgId, id: RequestId, author: Actor, text: &str, at: Timestamp) -> Result<()> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ValidationError::new("note", "must not be empty").into());
        }
        if text.len() > 10_000 {
            return Err(ValidationError::new("note", "must be at most 10000 characters").into());
        }
        self.append_event(org, id, author, event_kind::NOTE, text, at).await
    }

    /// Appends any event to the log (the paging flow records notifications this way).
    pub async fn append_event(&self, org: OrgId, id: RequestId, actor: Actor, kind: &str, detail: &str, at: Timestamp) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        insert_event(&mut tx, org, id, at, actor, kind, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The log, oldest first.
    pub async fn request_events(&self, org: OrgId, id: RequestId) -> Result<Vec<RequestEvent>> {
        let rows = sqlx::query("SELECT at, actor, kind, detail FROM request_events WHERE org_id = $1 AND request_id = $2 ORDER BY id")
            .bind(org.0)
            .bind(id.0)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RequestEvent {
                    at: ts(r, "at")?,
                    actor: required(opt_actor(r, "actor")?, "actor")?,
                    kind: string(r, "kind")?,
                    detail: string(r, "detail")?,
                })
            })
            .collect()
    }

    /// Notes only, oldest first.
    pub async fn notes(&self, org: OrgId, id: RequestId) -> Result<Vec<RequestEvent>> {
        Ok(self.request_events(org, id).await?.into_iter().filter(|e| e.kind == event_kind::NOTE).collect())
    }

    pub async fn add_recording(&self, org: OrgId, new: &NewRecording) -> Result<RecordingId> {
        let mut tx = self.pool().begin().await?;
        let id = insert_recording(&mut tx, org, new).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn recordings_for_request(&self, org: OrgId, id: RequestId) -> Result<Vec<Recording>> {
        let sql = format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE org_id = $1 AND request_id = $2 ORDER BY created_at, id");
        let rows = sqlx::query(&sql)
        .bind(org.0)
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| recording_from_row(org, r)).collect()
    }

    /// The caller's message of each of `requests` that has one, in one query (the request lists' players).
    pub async fn messages_of(&self, org: OrgId, requests: &[RequestId]) -> Result<std::collections::HashMap<RequestId, Recording>> {
        let mut out = std::collections::HashMap::new();
        if requests.is_empty() {
            return Ok(out);
        }
        let list = (0..requests.len()).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE org_id = $1 AND kind = $2 AND request_id IN ({list}) ORDER BY created_at, id");
        let mut q = sqlx::query(&sql).bind(org.0).bind(RecordingKind::Message.as_str());
        for r in requests {
            q = q.bind(r.0);
        }
        for row in q.fetch_all(self.pool()).await? {
            let rec = recording_from_row(org, &row)?;
            if let Some(req) = rec.request {
                out.entry(req).or_insert(rec);
            }
        }
        Ok(out)
    }

    /// One recording of the organization.
    pub async fn recording(&self, org: OrgId, id: RecordingId) -> Result<Recording> {
        let sql = format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE org_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
        .bind(org.0)
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        recording_from_row(org, &row)
    }
}

/// `recordings.kind` of a row; any text but a [`RecordingKind`]'s is a corrupt row.
pub(super) fn recording_kind(r: &AnyRow) -> Result<RecordingKind> {
    let kind = string(r, "kind")?;
    kind.parse().map_err(|_| corrupt("recordings.kind", kind))
}

pub(super) const RECORDING_COLUMNS: &str = "id, request_id, kind, storage_key, duration_ms, peak, rms, created_at";

pub(super) fn recording_from_row(org: OrgId, r: &AnyRow) -> Result<Recording> {
    Ok(Recording {
        id: RecordingId(i64_(r, "id")?),
        org,
        request: opt_i64(r, "request_id")?.map(RequestId),
        kind: recording_kind(r)?,
        storage_key: string(r, "storage_key")?,
        duration_ms: i64_(r, "duration_ms")?,
        peak: f64_(r, "peak")?,
        rms: f64_(r, "rms")?,
        created_at: ts(r, "created_at")?,
    })
}

/// The request row and its first event (received, by the caller).
async fn insert_request(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, new: &NewRequest, at: Timestamp) -> Result<RequestId> {
    if new.caller.len() > 500 || new.summary.len() > 10_000 {
        return Err(ValidationError::new("summary", "too long").into());
    }
    let row = sqlx::query(
        "INSERT INTO requests (org_id, call_row_id, caller, summary, status, received_at) \
         VALUES ($1, $2, $3, $4, 'received', $5) RETURNING id",
    )
    .bind(org.0)
    .bind(new.call.map(|c| c.0))
    .bind(new.caller.trim())
    .bind(new.summary.trim())
    .bind(at.0)
    .fetch_one(&mut **tx)
    .await?;
    let id = RequestId(i64_(&row, "id")?);
    insert_event(tx, org, id, at, Actor::Caller, event_kind::STATUS, RequestStatus::Received.as_str()).await?;
    Ok(id)
}

/// The recording row, its transcription job and, for a request's recording, the request's event.
async fn insert_recording(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, new: &NewRecording) -> Result<RecordingId> {
    if new.storage_key.trim().is_empty() {
        return Err(ValidationError::new("storage_key", "must not be empty").into());
    }
    if new.duration_ms < 0 {
        return Err(ValidationError::new("duration_ms", "must not be negative").into());
    }
    if !new.peak.is_finite() || !new.rms.is_finite() {
        return Err(ValidationError::new("peak", "levels must be finite numbers").into());
    }
    let row = sqlx::query(
        "INSERT INTO recordings (org_id, request_id, kind, storage_key, duration_ms, peak, rms, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(org.0)
    .bind(new.request.map(|r| r.0))
    .bind(new.kind.as_str())
    .bind(&new.storage_key)
    .bind(new.duration_ms)
    .bind(new.peak)
    .bind(new.rms)
    .bind(new.created_at.0)
    .fetch_one(&mut **tx)
    .await?;
    let id = RecordingId(i64_(&row, "id")?);
    enqueue_transcription(tx, org, id, new.created_at).await?;
    if let Some(req) = new.request {
        insert_event(tx, org, req, new.created_at, Actor::System, event_kind::RECORDING, &format!("{} {}", new.kind, id))
            .await?;
    }
    Ok(id)
}

/// Inserts one log row; the `(org_id, request_id)` foreign key rejects a request of another org.
pub(super) async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    org: OrgId,
    id: RequestId,
    at: Timestamp,
    actor: Actor,
    kind: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO request_events (org_id, request_id, at, actor, kind, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(org.0)
        .bind(id.0)
        .bind(at.0)
        .bind(actor.to_string())
        .bind(kind)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Queues a new recording's transcription (issue 23) in `add_recording`'s transaction, so no recording is
/// left out of the queue (`transcriptions.rs` runs it).
async fn enqueue_transcription(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, id: RecordingId, at: Timestamp) -> Result<()> {
    sqlx::query("INSERT INTO transcriptions (recording_id, org_id, status, next_attempt_at, created_at) VALUES ($1, $2, 'pending', $3, $3)")
        .bind(id.0)
        .bind(org.0)
        .bind(at.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

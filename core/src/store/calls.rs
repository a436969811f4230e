//! Calls as the SIP side sees them: one row per inbound call, and the request it may open.
//!
//! `call_id` is the SIP Call-ID string; the row id (`CallRowId`) is what the rest of OnCall
//! refers to. Digits are what the caller pressed in the IVR, kept for the call log.

use super::rows::{i64_, opt_i64, opt_string, opt_ts, string, ts};
use super::{one_row, Result, Store, StoreError};
use crate::ids::{CallRowId, OrgId, RequestId};
use crate::request::NewRequest;
use crate::timestamp::Timestamp;
use crate::validation::ValidationError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCall {
    pub org: OrgId,
    /// The SIP Call-ID.
    pub call_id: String,
    /// From: as received (number or URI).
    pub caller: String,
    /// To: / Request-URI as received.
    pub called: String,
    pub received_at: Timestamp,
    /// The `[instance] id` carrying the call: after a crash it closes the calls it left open.
    pub instance: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub id: CallRowId,
    pub org: OrgId,
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub received_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub digits: String,
    pub recording_path: Option<String>,
    pub recording_duration_ms: Option<i64>,
    /// What the recording is for ("page" or "message"), set when it starts.
    pub recording_kind: Option<String>,
}

/// Header values can be long, but not this long; longer is garbage or an attack.
const MAX_FIELD: usize = 1024;

fn check_len(field: &str, v: &str) -> Result<(), ValidationError> {
    if v.len() > MAX_FIELD {
        return Err(ValidationError::new(field, format!("longer than {MAX_FIELD} bytes")));
    }
    Ok(())
}

impl Store {
    pub async fn insert_call(&self, call: &NewCall) -> Result<CallRowId> {
        check_len("call_id", &call.call_id)?;
        check_len("caller", &call.caller)?;
        check_len("called", &call.called)?;
        check_len("instance", &call.instance)?;
        let row = sqlx::query(
            "INSERT INTO calls (org_id, call_id, caller, called, received_at, instance) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(call.org.0)
        .bind(&call.call_id)
        .bind(&call.caller)
        .bind(&call.called)
        .bind(call.received_at.0)
        .bind(&call.instance)
        .fetch_one(self.pool())
        .await?;
        Ok(CallRowId(i64_(&row, "id")?))
    }

    /// The IVR answered (200 OK sent). Only the first answer counts.
    pub async fn call_answered(&self, org: OrgId, id: CallRowId, at: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE calls SET answered_at = $1 WHERE org_id = $2 AND id = $3 AND answered_at IS NULL")
            .bind(at.0)
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            self.call(org, id).await?; // NotFound if it does not exist; already answered is fine
        }
        Ok(())
    }

    /// The call is over: what was pressed and what was recorded.
    pub async fn call_ended(
        &self,
        org: OrgId,
        id: CallRowId,
        at: Timestamp,
        digits: &str,
        recording_path: Option<&str>,
        recording_duration_ms: Option<i64>,
    ) -> Result<()> {
        check_len("digits", digits)?;
        if let Some(p) = recording_path {
            check_len("recording_path", p)?;
        }
        if recording_duration_ms.is_some_and(|d| d < 0) {
            return Err(ValidationError::new("recording_duration_ms", "must not be negative").into());
        }
        let done = sqlx::query(
            "UPDATE calls SET ended_at = $1, digits = $2, recording_path = $3, recording_duration_ms = $4 \
             WHERE org_id = $5 AND id = $6",
        )
        .bind(at.0)
        .bind(digits)
        .bind(recording_path)
        .bind(recording_duration_ms)
        .bind(org.0)
        .bind(id.0)
        .execute(self.pool())
        .await?;
        one_row(&done, id)
    }

    pub async fn call(&self, org: OrgId, id: CallRowId) -> Result<Call> {
        let row = sqlx::query(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE org_id = $1 AND id = $2"))
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        call_from_row(org, &row)
    }

    /// The newest `limit` calls.
    pub async fn list_calls(&self, org: OrgId, limit: i64) -> Result<Vec<Call>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE org_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2"
        ))
        .bind(org.0)
        .bind(limit.clamp(0, 10_000))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| call_from_row(org, r)).collect()
    }

    /// The caller started leaving a message: where it goes and what it is for are saved at once, so that a
    /// crash before the call ends still leads from the call to its recording (see [`Store::open_calls_of`]).
    pub async fn call_recording_started(&self, org: OrgId, id: CallRowId, recording_path: &str, kind: &str) -> Result<()> {
        check_len("recording_path", recording_path)?;
        check_len("recording_kind", kind)?;
        let done = sqlx::query("UPDATE calls SET recording_path = $1, recording_kind = $2 WHERE org_id = $3 AND id = $4")
            .bind(recording_path)
            .bind(kind)
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        one_row(&done, id)
    }

    /// Calls `instance` took that never ended: at its start-up, the calls a crash cut.
    pub async fn open_calls_of(&self, org: OrgId, instance: &str) -> Result<Vec<Call>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE org_id = $1 AND instance = $2 AND ended_at IS NULL ORDER BY id"
        ))
        .bind(org.0)
        .bind(instance)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| call_from_row(org, r)).collect()
    }

    /// The request a call opened, if any.
    pub async fn request_for_call(&self, org: OrgId, call: CallRowId) -> Result<Option<RequestId>> {
        let row = sqlx::query("SELECT id FROM requests WHERE org_id = $1 AND call_row_id = $2 ORDER BY id LIMIT 1")
            .bind(org.0)
            .bind(call.0)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| i64_(&r, "id").map(RequestId)).transpose()
    }

    /// Opens a request for a call (the caller chose "page on-call" or left a message).
    pub async fn create_request_for_call(&self, org: OrgId, call: CallRowId, caller: &str, at: Timestamp) -> Result<RequestId> {
        self.create_request(org, &NewRequest::for_call(call, caller), at).await
    }
}

impl NewRequest {
    /// The request a phone call opens.
    pub fn for_call(call: CallRowId, caller: &str) -> NewRequest {
        NewRequest { caller: caller.to_string(), summary: format!("Phone call from {caller}"), call: Some(call) }
    }
}

const CALL_COLUMNS: &str =
    "id, call_id, caller, called, received_at, answered_at, ended_at, digits, recording_path, recording_duration_ms, recording_kind";

fn call_from_row(org: OrgId, r: &sqlx::any::AnyRow) -> Result<Call> {
    Ok(Call {
        id: CallRowId(i64_(r, "id")?),
        org,
        call_id: string(r, "call_id")?,
        caller: string(r, "caller")?,
        called: string(r, "called")?,
        received_at: ts(r, "received_at")?,
        answered_at: opt_ts(r, "answered_at")?,
        ended_at: opt_ts(r, "ended_at")?,
        digits: string(r, "digits")?,
        recording_path: opt_string(r, "recording_path")?,
        recording_duration_ms: opt_i64(r, "recording_duration_ms")?,
        recording_kind: opt_string(r, "recording_kind")?,
    })
}

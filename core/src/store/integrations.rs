//! Integration keys and alert requests (issue 20): monitoring (Alertmanager, Grafana, anything speaking
//! PagerDuty's Events API v2, scripts) opens requests that page like a phone call does.
//!
//! A key is a bearer secret of one organization (shown once, kept as its SHA-256 digest). An alert names a
//! de-duplication key; while a request with the same integration and key is open, further alerts count on
//! it (`alert_count`, an `alert` line in its log) instead of opening and paging another, so a storm of a
//! hundred alerts in one group pages once. Resolving completes the request, which ends its paging.

use super::requests::insert_event;
use super::rows::{i64_, opt_i64, opt_ts, string, ts, updated};
use super::{Result, Store, StoreError};
use crate::ids::{OrgId, PolicyId, RequestId};
use crate::request::{Actor, RequestStatus};
use crate::secret;
use crate::timestamp::Timestamp;
use crate::validation::{self, ValidationError};
use serde::Serialize;

/// Requests opened by alerts say so in `requests.source`.
pub const ALERT_SOURCE: &str = "alert";
/// Requests scripts open with a user's API token (`POST /api/v1/requests`).
pub const API_SOURCE: &str = "api";
/// The log line of each alert counted on a request (detail: the alert's summary).
pub const ALERT_EVENT: &str = "alert";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Integration {
    pub id: i64,
    pub org: OrgId,
    pub name: String,
    /// The first characters of the secret, to tell keys apart in lists.
    pub prefix: String,
    /// The escalation policy its alerts page with; `None`: the organization's first enabled one.
    pub policy: Option<PolicyId>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// A heartbeat monitor: the job must beat at least this often (seconds), else a request opens.
    pub heartbeat_secs: Option<i64>,
    pub last_beat_at: Option<Timestamp>,
    /// `urgent` (pages at once) or `normal` (after business hours, pages when they start).
    pub urgency: String,
}

/// The de-duplication key of a missed heartbeat's request.
pub const HEARTBEAT_KEY: &str = "heartbeat";

/// What an alert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertOutcome {
    /// A new request: page it.
    Opened(RequestId),
    /// Counted on the open request with the same key (its `alert_count` now).
    Counted(RequestId, i64),
    /// Resolved: the request is completed (its paging ends).
    Resolved(RequestId),
    /// Acknowledged by the monitoring tool.
    Acknowledged(RequestId),
    /// Resolve or acknowledge for a key with no open request: nothing to do.
    NoOpenRequest,
}

impl AlertOutcome {
    pub fn request(self) -> Option<RequestId> {
        match self {
            AlertOutcome::Opened(r) | AlertOutcome::Counted(r, _) | AlertOutcome::Resolved(r) | AlertOutcome::Acknowledged(r) => Some(r),
            AlertOutcome::NoOpenRequest => None,
        }
    }
}

const COLUMNS: &str = "id, org_id, name, prefix, policy_id, created_at, revoked_at, heartbeat_secs, last_beat_at, urgency";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Integration> {
    Ok(Integration {
        id: i64_(row, "id")?,
        org: OrgId(i64_(row, "org_id")?),
        name: string(row, "name")?,
        prefix: string(row, "prefix")?,
        policy: opt_i64(row, "policy_id")?.map(PolicyId),
        created_at: ts(row, "created_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
        heartbeat_secs: opt_i64(row, "heartbeat_secs")?,
        last_beat_at: opt_ts(row, "last_beat_at")?,
        urgency: string(row, "urgency")?,
    })
}

/// Longest de-duplication key and summary kept (longer ones are cut, not refused: a tool's alert must not be lost).
const MAX_DEDUP: usize = 255;
const MAX_SUMMARY: usize = 1024;

fn cut(s: &str, max: usize) -> String {
    let s = s.trim();
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl Store {
    /// Creates an integration key; returns it and its secret (shown to the manager once).
    pub async fn create_integration(&self, org: OrgId, name: &str, policy: Option<PolicyId>, now: Timestamp) -> Result<(Integration, String)> {
        self.create_monitor(org, name, policy, None, now).await
    }

    /// An integration key that is also a heartbeat monitor when `heartbeat_secs` is given (at least 1).
    pub async fn create_monitor(&self, org: OrgId, name: &str, policy: Option<PolicyId>, heartbeat_secs: Option<i64>, now: Timestamp) -> Result<(Integration, String)> {
        let name = validation::non_blank("name", name)?;
        if heartbeat_secs.is_some_and(|s| s < 1) {
            return Err(ValidationError::new("heartbeat", "the interval must be at least one second").into());
        }
        if let Some(p) = policy {
            self.policy(org, p).await?;
        }
        let token = format!("oci_{}", secret::new_token());
        let prefix = token[..12].to_string();
        let row = sqlx::query(
            "INSERT INTO integration_keys (org_id, name, token_hash, prefix, policy_id, created_at, heartbeat_secs) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(org.0)
        .bind(&name)
        .bind(secret::digest(&token))
        .bind(&prefix)
        .bind(policy.map(|p| p.0))
        .bind(now.0)
        .bind(heartbeat_secs)
        .fetch_one(self.pool())
        .await?;
        let integration = Integration { id: i64_(&row, "id")?, org, name, prefix, policy, created_at: now, revoked_at: None, heartbeat_secs, last_beat_at: None, urgency: "urgent".into() };
        Ok((integration, token))
    }

    /// Sets an integration's urgency: `normal` alerts opened after business hours page when they start.
    pub async fn set_integration_urgency(&self, org: OrgId, id: i64, normal: bool) -> Result<()> {
        let done = sqlx::query("UPDATE integration_keys SET urgency = $1 WHERE org_id = $2 AND id = $3")
            .bind(if normal { "normal" } else { "urgent" })
            .bind(org.0)
            .bind(id)
            .execute(self.pool())
            .await?;
        updated(done.rows_affected(), format_args!("integration {id}"))
    }

    /// Whether `request` came from an integration of `normal` urgency (it waits for business hours).
    pub async fn alert_is_normal_urgency(&self, org: OrgId, request: RequestId) -> Result<bool> {
        let row = sqlx::query("SELECT k.urgency FROM requests r JOIN integration_keys k ON k.id = r.integration_id AND k.org_id = r.org_id WHERE r.org_id = $1 AND r.id = $2")
            .bind(org.0)
            .bind(request.0)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| string(&r, "urgency")).transpose()?.is_some_and(|u| u == "normal"))
    }

    pub async fn list_integrations(&self, org: OrgId) -> Result<Vec<Integration>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM integration_keys WHERE org_id = $1 ORDER BY id")).bind(org.0).fetch_all(self.pool()).await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn revoke_integration(&self, org: OrgId, id: i64, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE integration_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(now.0)
            .bind(org.0)
            .bind(id)
            .execute(self.pool())
            .await?;
        updated(done.rows_affected(), format_args!("integration {id}"))
    }

    /// The live integration a secret belongs to (not revoked, its organization not disabled).
    pub async fn integration_by_secret(&self, token: &str) -> Result<Option<Integration>> {
        let cols = COLUMNS.split(", ").map(|c| format!("k.{c}")).collect::<Vec<_>>().join(", ");
        let row = sqlx::query(&format!(
            "SELECT {cols} FROM integration_keys k JOIN organizations o ON o.id = k.org_id \
             WHERE k.token_hash = $1 AND k.revoked_at IS NULL AND o.disabled_at IS NULL"
        ))
        .bind(secret::digest(token.trim()))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The open request of `integration` with `dedup_key`, if any.
    async fn open_alert(&self, integration: &Integration, dedup_key: &str) -> Result<Option<RequestId>> {
        let row = sqlx::query(
            "SELECT id FROM requests WHERE org_id = $1 AND integration_id = $2 AND dedup_key = $3 \
             AND status NOT IN ('completed', 'abandoned') ORDER BY id DESC LIMIT 1",
        )
        .bind(integration.org.0)
        .bind(integration.id)
        .bind(dedup_key)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok(RequestId(i64_(&r, "id")?))).transpose()
    }

    /// A firing alert: opens a request (caller: the integration's name, summary: the alert's) or counts on the
    /// open one with the same `dedup_key`.
    pub async fn alert_trigger(&self, integration: &Integration, dedup_key: &str, summary: &str, now: Timestamp) -> Result<AlertOutcome> {
        self.alert_trigger_detailed(integration, dedup_key, summary, summary, now).await
    }

    /// [`Store::alert_trigger`] with the request log's line for this alert (`detail`: the summary and, say, its labels).
    pub async fn alert_trigger_detailed(&self, integration: &Integration, dedup_key: &str, summary: &str, detail: &str, now: Timestamp) -> Result<AlertOutcome> {
        let (dedup_key, summary, detail) = (cut(dedup_key, MAX_DEDUP), cut(summary, MAX_SUMMARY), cut(detail, 4 * MAX_SUMMARY));
        if dedup_key.is_empty() {
            return Err(ValidationError::new("dedup_key", "must not be empty").into());
        }
        let org = integration.org;
        let mut tx = self.pool().begin().await?;
        // Count on the open one in the same transaction as the check, so two alerts racing open one request
        // on SQLite (one writer); on PostgreSQL the loser of a race opens a second, which the next alert joins.
        let open = sqlx::query(
            "UPDATE requests SET alert_count = alert_count + 1 WHERE org_id = $1 AND integration_id = $2 AND dedup_key = $3 \
             AND status NOT IN ('completed', 'abandoned') RETURNING id, alert_count",
        )
        .bind(org.0)
        .bind(integration.id)
        .bind(&dedup_key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = open {
            let id = RequestId(i64_(&row, "id")?);
            let count = i64_(&row, "alert_count")?;
            insert_event(&mut tx, org, id, now, Actor::System, ALERT_EVENT, &detail).await?;
            tx.commit().await?;
            return Ok(AlertOutcome::Counted(id, count));
        }
        let row = sqlx::query(
            "INSERT INTO requests (org_id, caller, summary, status, received_at, source, integration_id, dedup_key, alert_count) \
             VALUES ($1, $2, $3, 'received', $4, $5, $6, $7, 1) RETURNING id",
        )
        .bind(org.0)
        .bind(&integration.name)
        .bind(&summary)
        .bind(now.0)
        .bind(ALERT_SOURCE)
        .bind(integration.id)
        .bind(&dedup_key)
        .fetch_one(&mut *tx)
        .await?;
        let id = RequestId(i64_(&row, "id")?);
        insert_event(&mut tx, org, id, now, Actor::System, super::requests::event_kind::STATUS, RequestStatus::Received.as_str()).await?;
        insert_event(&mut tx, org, id, now, Actor::System, ALERT_EVENT, &detail).await?;
        tx.commit().await?;
        Ok(AlertOutcome::Opened(id))
    }

    /// A resolved alert completes its open request (which ends its paging).
    pub async fn alert_resolve(&self, integration: &Integration, dedup_key: &str, now: Timestamp) -> Result<AlertOutcome> {
        let Some(id) = self.open_alert(integration, &cut(dedup_key, MAX_DEDUP)).await? else { return Ok(AlertOutcome::NoOpenRequest) };
        self.complete(integration.org, id, Actor::System, now).await?;
        Ok(AlertOutcome::Resolved(id))
    }

    /// Acknowledged in the monitoring tool: the request is taken (its paging ends).
    pub async fn alert_acknowledge(&self, integration: &Integration, dedup_key: &str, now: Timestamp) -> Result<AlertOutcome> {
        let Some(id) = self.open_alert(integration, &cut(dedup_key, MAX_DEDUP)).await? else { return Ok(AlertOutcome::NoOpenRequest) };
        match self.acknowledge(integration.org, id, Actor::System, now).await {
            Ok(()) | Err(StoreError::Transition { .. }) => Ok(AlertOutcome::Acknowledged(id)),
            Err(e) => Err(e),
        }
    }

    /// A beat of heartbeat monitor `integration` at `now`: remembered, and the request a missed beat opened is
    /// resolved. `Err(Invalid)` for a key that is no heartbeat.
    pub async fn heartbeat(&self, integration: &Integration, now: Timestamp) -> Result<AlertOutcome> {
        if integration.heartbeat_secs.is_none() {
            return Err(ValidationError::new("key", "this integration key is not a heartbeat monitor (oncall integration add --heartbeat-secs)").into());
        }
        sqlx::query("UPDATE integration_keys SET last_beat_at = $1 WHERE id = $2 AND org_id = $3").bind(now.0).bind(integration.id).bind(integration.org.0).execute(self.pool()).await?;
        self.alert_resolve(integration, HEARTBEAT_KEY, now).await
    }

    /// The heartbeat monitors whose beat is overdue at `now` (none since the interval, counted from the last
    /// beat or from their creation) and whose missed beat has no open request yet; their organization is
    /// enabled and they are not revoked.
    pub async fn overdue_heartbeats(&self, now: Timestamp) -> Result<Vec<Integration>> {
        let cols = COLUMNS.split(", ").map(|c| format!("k.{c}")).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {cols} FROM integration_keys k JOIN organizations o ON o.id = k.org_id \
             WHERE k.heartbeat_secs IS NOT NULL AND k.revoked_at IS NULL AND o.disabled_at IS NULL \
             AND COALESCE(k.last_beat_at, k.created_at) + k.heartbeat_secs * 1000 <= $1 \
             AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.org_id = k.org_id AND r.integration_id = k.id AND r.dedup_key = $2 \
                             AND r.status NOT IN ('completed', 'abandoned')) ORDER BY k.id"
        ))
        .bind(now.0)
        .bind(HEARTBEAT_KEY)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// A request a script opened through the API (`POST /api/v1/requests`): paged like an alert, its summary spoken.
    pub async fn create_api_request(&self, org: OrgId, caller: &str, summary: &str, now: Timestamp) -> Result<RequestId> {
        let summary = cut(summary, MAX_SUMMARY);
        if summary.is_empty() {
            return Err(ValidationError::new("summary", "say what is wrong").into());
        }
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("INSERT INTO requests (org_id, caller, summary, status, received_at, source) VALUES ($1, $2, $3, 'received', $4, $5) RETURNING id")
            .bind(org.0)
            .bind(cut(caller, 200))
            .bind(&summary)
            .bind(now.0)
            .bind(API_SOURCE)
            .fetch_one(&mut *tx)
            .await?;
        let id = RequestId(i64_(&row, "id")?);
        insert_event(&mut tx, org, id, now, Actor::System, super::requests::event_kind::STATUS, RequestStatus::Received.as_str()).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// What paging needs of a request an alert (or a script) opened: its summary (spoken in the page call) and
    /// the integration's policy. `None` for a request from a call.
    pub async fn alert_of_request(&self, org: OrgId, id: RequestId) -> Result<Option<(String, Option<PolicyId>)>> {
        let row = sqlx::query(
            "SELECT r.summary, k.policy_id FROM requests r LEFT JOIN integration_keys k ON k.id = r.integration_id AND k.org_id = r.org_id \
             WHERE r.org_id = $1 AND r.id = $2 AND r.source IN ($3, $4)",
        )
        .bind(org.0)
        .bind(id.0)
        .bind(ALERT_SOURCE)
        .bind(API_SOURCE)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((string(&r, "summary")?, opt_i64(&r, "policy_id")?.map(PolicyId)))).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A storm of alerts with one key opens one request; resolving completes it; the next firing opens a new one.
    /// A revoked key, or one of a disabled organization, is nobody's.
    #[tokio::test]
    async fn alerts_with_one_key_open_one_request_until_resolved() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let now = Timestamp(1_800_000_000_000);
        let org = store.create_organization("Ops", "ops", "UTC", now).await.unwrap();
        let (key, secret) = store.create_integration(org, "Alertmanager", None, now).await.unwrap();
        let found = store.integration_by_secret(&secret).await.unwrap().expect("the key");
        assert_eq!(found.id, key.id);
        let first = store.alert_trigger(&key, "{}:{alertname=\"DiskFull\"}", "Disk full on db1", now).await.unwrap();
        let AlertOutcome::Opened(request) = first else { panic!("{first:?}") };
        for n in 2..=100 {
            assert_eq!(store.alert_trigger(&key, "{}:{alertname=\"DiskFull\"}", "Disk full on db1", now).await.unwrap(), AlertOutcome::Counted(request, n));
        }
        assert!(matches!(store.alert_trigger(&key, "other", "CPU", now).await.unwrap(), AlertOutcome::Opened(r) if r != request));
        assert_eq!(store.alert_of_request(org, request).await.unwrap(), Some(("Disk full on db1".into(), None)));
        assert_eq!(store.alert_resolve(&key, "{}:{alertname=\"DiskFull\"}", now).await.unwrap(), AlertOutcome::Resolved(request));
        assert_eq!(store.request(org, request).await.unwrap().state.status(), RequestStatus::Completed);
        assert_eq!(store.alert_resolve(&key, "{}:{alertname=\"DiskFull\"}", now).await.unwrap(), AlertOutcome::NoOpenRequest);
        assert!(matches!(store.alert_trigger(&key, "{}:{alertname=\"DiskFull\"}", "again", now).await.unwrap(), AlertOutcome::Opened(r) if r != request));
        store.revoke_integration(org, key.id, now).await.unwrap();
        assert_eq!(store.integration_by_secret(&secret).await.unwrap(), None);
        let (_, other) = store.create_integration(org, "Grafana", None, now).await.unwrap();
        store.set_organization_disabled(org, Some(now)).await.unwrap();
        assert_eq!(store.integration_by_secret(&other).await.unwrap(), None);
    }

    /// A heartbeat monitor on a virtual clock: overdue once its interval passes without a beat (counted from
    /// its creation, then from the last beat); the missed beat's request is opened once (the check does not
    /// find it overdue again while that is open); the next beat resolves it.
    #[tokio::test]
    async fn a_missed_heartbeat_opens_one_request_and_the_next_beat_resolves_it() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let t0 = Timestamp(1_800_000_000_000);
        let at = |secs: i64| Timestamp(t0.0 + secs * 1000);
        let org = store.create_organization("Ops", "ops", "UTC", t0).await.unwrap();
        let (job, _) = store.create_monitor(org, "Nightly backup", None, Some(60), t0).await.unwrap();
        let (plain, _) = store.create_integration(org, "Alertmanager", None, t0).await.unwrap();
        assert!(store.overdue_heartbeats(at(59)).await.unwrap().is_empty());
        assert_eq!(store.overdue_heartbeats(at(60)).await.unwrap().iter().map(|i| i.id).collect::<Vec<_>>(), vec![job.id]);
        let AlertOutcome::Opened(request) = store.alert_trigger(&job, HEARTBEAT_KEY, "No heartbeat", at(60)).await.unwrap() else { panic!() };
        assert!(store.overdue_heartbeats(at(120)).await.unwrap().is_empty(), "one request per missed beat");
        assert_eq!(store.heartbeat(&job, at(130)).await.unwrap(), AlertOutcome::Resolved(request));
        assert_eq!(store.request(org, request).await.unwrap().state.status(), RequestStatus::Completed);
        assert!(store.overdue_heartbeats(at(189)).await.unwrap().is_empty(), "counted from the last beat");
        assert_eq!(store.overdue_heartbeats(at(190)).await.unwrap().len(), 1);
        assert!(matches!(store.heartbeat(&plain, at(190)).await, Err(StoreError::Invalid(_))), "not a heartbeat");
        assert!(matches!(store.create_monitor(org, "x", None, Some(0), t0).await, Err(StoreError::Invalid(_))));
        assert!(!store.alert_is_normal_urgency(org, request).await.unwrap(), "urgent by default");
        store.set_integration_urgency(org, job.id, true).await.unwrap();
        assert!(store.alert_is_normal_urgency(org, request).await.unwrap());
    }
}

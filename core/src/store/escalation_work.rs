//! Escalations in flight, shared between instances (issue 10), and the notification ledger.
//!
//! An instance that starts an escalation saves the engine (JSON) with `due_at` =
//! `engine.poll_timeout()`. Any instance may then *claim* due work: the claim sets a lease
//! (`lease_owner`, `lease_expires_at`) so nobody else touches that row until the lease expires;
//! a crashed owner's work is picked up after expiry. On PostgreSQL the claim uses
//! `FOR UPDATE SKIP LOCKED` so concurrent claimers never block on each other or take the same
//! row; SQLite has a single writer, so one statement in a transaction is already exclusive.
//!
//! Before sending a notification the owner records it under its `NotificationKey`; the unique
//! constraint means that after a takeover the replayed engine's notifications that were already
//! sent are recognised and not sent again.

use super::rows::{corrupt, i64_, opt_ts, string, ts};
use super::{Backend, Result, Store};
use crate::escalation::{Engine, Input, NotificationKey};
use crate::ids::{OrgId, PersonId, PolicyId, RequestId, WorkId};
use crate::person::Channel;
use crate::timestamp::{Millis, Timestamp};
use serde::{Deserialize, Serialize};

/// Work handed to one instance until `lease_expires_at`.
#[derive(Debug, Clone)]
pub struct ClaimedWork {
    pub id: WorkId,
    pub request: RequestId,
    pub engine: Engine,
    pub due_at: Option<Timestamp>,
    pub lease_expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub key: NotificationKey,
    pub status: String,
    /// Where it went (an address, a registered phone, a number through a trunk); empty until placed.
    pub target: String,
    /// Why it ended as it did, in plain words; empty while it is under way or when it went through.
    pub detail: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The `WHERE` of one notification row, its placeholders numbered from `first` (bound by [`bind_key`]).
fn key_columns(first: usize) -> String {
    let n = |i: usize| first + i;
    format!("org_id = ${} AND request_id = ${} AND stage = ${} AND person_id = ${} AND channel = ${}", n(0), n(1), n(2), n(3), n(4))
}

/// Binds a notification's key to the placeholders of [`key_columns`].
fn bind_key<'q>(q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>, org: OrgId, key: &NotificationKey) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(org.0).bind(key.request.0).bind(i64::from(key.stage)).bind(key.person.0).bind(key.channel.as_str())
}

/// When persisted work must next be looked at: now if it still has commands to carry out
/// (the instance may crash before draining them), else the engine's own timeout.
fn due_at(engine: &Engine, now: Timestamp) -> Option<i64> {
    if engine.has_pending_commands() {
        Some(now.0)
    } else {
        engine.poll_timeout().map(|t| t.0)
    }
}

fn to_json(engine: &Engine) -> Result<String> {
    serde_json::to_string(engine).map_err(|e| corrupt("escalation_work.state", e))
}

impl Store {
    /// Starts escalating `request` under `policy`: snapshots the directory, feeds the engine
    /// `RequestCreated`, moves the request to notifying and persists the engine *with its first
    /// commands still queued*. The caller drains them (recording each notification first),
    /// then saves again; if it dies in between, whoever claims the work next replays them and
    /// the notification ledger drops the ones already sent.
    pub async fn begin_escalation(&self, org: OrgId, request: RequestId, policy: PolicyId, now: Timestamp) -> Result<Engine> {
        let policy = self.policy(org, policy).await?;
        let directory = self.escalation_directory(org, &policy).await?;
        let mut engine = Engine::new(request, policy, directory);
        engine.handle(Input::RequestCreated, now);
        self.start_notifying(org, request, now).await?;
        self.save_escalation(org, &engine, now).await?;
        Ok(engine)
    }

    /// Saves (or replaces) the escalation of `engine.request()`, unleased.
    pub async fn save_escalation(&self, org: OrgId, engine: &Engine, now: Timestamp) -> Result<WorkId> {
        let row = sqlx::query(
            "INSERT INTO escalation_work (org_id, request_id, due_at, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (request_id) DO UPDATE SET due_at = excluded.due_at, state = excluded.state, \
             updated_at = excluded.updated_at, lease_owner = NULL, lease_expires_at = NULL \
             RETURNING id",
        )
        .bind(org.0)
        .bind(engine.request().0)
        .bind(due_at(engine, now))
        .bind(to_json(engine)?)
        .bind(now.0)
        .fetch_one(self.pool())
        .await?;
        Ok(WorkId(i64_(&row, "id")?))
    }

    /// The saved escalation of `request`, finished or not, whoever holds it (`None`: it never began).
    /// A button pressed on the request loads it this way when no instance runs it.
    pub async fn stored_escalation(&self, org: OrgId, request: RequestId) -> Result<Option<Engine>> {
        let row = sqlx::query("SELECT state FROM escalation_work WHERE org_id = $1 AND request_id = $2")
            .bind(org.0)
            .bind(request.0)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| serde_json::from_str(&string(&r, "state")?).map_err(|e| corrupt("escalation_work.state", e))).transpose()
    }

    /// Leases up to `limit` escalations due at `now` to `owner` for `lease`.
    pub async fn claim_due_escalations(
        &self,
        org: OrgId,
        owner: &str,
        now: Timestamp,
        lease: Millis,
        limit: i64,
    ) -> Result<Vec<ClaimedWork>> {
        self.claim_escalations(org, owner, now, lease, limit, "due_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at <= $3)").await
    }

    /// Leases up to `limit` unfinished escalations nobody holds (never leased, or the lease
    /// expired: their instance died), due or not: the instance then runs them to their next
    /// timeout itself. With `include_own` (at start-up) also those `owner` held before a restart,
    /// whose leases have not expired yet; a running instance leaves them out, it drives them already.
    pub async fn claim_orphaned_escalations(
        &self,
        org: OrgId,
        owner: &str,
        now: Timestamp,
        lease: Millis,
        limit: i64,
        include_own: bool,
    ) -> Result<Vec<ClaimedWork>> {
        let condition = if include_own {
            "(lease_owner IS NULL OR lease_owner = $1 OR lease_expires_at <= $3)"
        } else {
            "(lease_owner IS NULL OR lease_expires_at <= $3)"
        };
        self.claim_escalations(org, owner, now, lease, limit, condition).await
    }

    /// `condition` narrows the unfinished work of `org` ($1 owner, $3 now).
    async fn claim_escalations(&self, org: OrgId, owner: &str, now: Timestamp, lease: Millis, limit: i64, condition: &str) -> Result<Vec<ClaimedWork>> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE escalation_work SET lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM escalation_work \
                 WHERE org_id = $4 AND due_at IS NOT NULL AND {condition} \
                 ORDER BY due_at LIMIT $5{lock}) \
             RETURNING id, request_id, state, due_at, lease_expires_at"
        );
        let expires = now + lease;
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(expires.0)
            .bind(now.0)
            .bind(org.0)
            .bind(limit.clamp(0, 1000))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                let state = string(r, "state")?;
                Ok(ClaimedWork {
                    id: WorkId(i64_(r, "id")?),
                    request: RequestId(i64_(r, "request_id")?),
                    engine: serde_json::from_str(&state).map_err(|e| corrupt("escalation_work.state", e))?,
                    due_at: opt_ts(r, "due_at")?,
                    lease_expires_at: ts(r, "lease_expires_at")?,
                })
            })
            .collect()
    }

    /// Saves the escalation of `engine.request()` as held by `owner` until `now + lease` (a finished
    /// one is released). False, and nothing written, when another instance holds a live lease on
    /// it: that instance took over and its state wins.
    pub async fn hold_escalation(&self, org: OrgId, engine: &Engine, owner: &str, lease: Millis, now: Timestamp) -> Result<bool> {
        let due = due_at(engine, now);
        let (lease_owner, expires) = match due {
            Some(_) => (Some(owner), Some((now + lease).0)),
            None => (None, None),
        };
        let done = sqlx::query(
            "INSERT INTO escalation_work (org_id, request_id, due_at, state, lease_owner, lease_expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (request_id) DO UPDATE SET due_at = excluded.due_at, state = excluded.state, \
             updated_at = excluded.updated_at, lease_owner = excluded.lease_owner, lease_expires_at = excluded.lease_expires_at \
             WHERE escalation_work.lease_owner IS NULL OR escalation_work.lease_owner = $8 \
             OR escalation_work.lease_expires_at <= $7",
        )
        .bind(org.0)
        .bind(engine.request().0)
        .bind(due)
        .bind(to_json(engine)?)
        .bind(lease_owner)
        .bind(expires)
        .bind(now.0)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends every lease `owner` holds on unfinished work to `now + lease` (the heartbeat of a
    /// live instance). Returns how many were extended.
    pub async fn renew_escalation_leases(&self, org: OrgId, owner: &str, lease: Millis, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE escalation_work SET lease_expires_at = $1 \
             WHERE org_id = $2 AND lease_owner = $3 AND due_at IS NOT NULL",
        )
        .bind((now + lease).0)
        .bind(org.0)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Stores the advanced engine and releases the lease. Returns false (and writes nothing)
    /// if `owner` no longer holds the lease — someone else took over and its state wins.
    pub async fn complete_claim(&self, org: OrgId, work: WorkId, owner: &str, engine: &Engine, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE escalation_work SET state = $1, due_at = $2, updated_at = $3, lease_owner = NULL, lease_expires_at = NULL \
             WHERE org_id = $4 AND id = $5 AND lease_owner = $6 AND lease_expires_at > $3",
        )
        .bind(to_json(engine)?)
        .bind(due_at(engine, now))
        .bind(now.0)
        .bind(org.0)
        .bind(work.0)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that `key` is being sent. True means "you send it"; false means it was already
    /// recorded (by us before a crash, or by another instance) and must not be sent again.
    pub async fn record_notification(&self, org: OrgId, key: &NotificationKey, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO notifications (org_id, request_id, stage, person_id, channel, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'sending', $6, $6) \
             ON CONFLICT (request_id, stage, person_id, channel) DO NOTHING",
        )
        .bind(org.0)
        .bind(key.request.0)
        .bind(i64::from(key.stage))
        .bind(key.person.0)
        .bind(key.channel.as_str())
        .bind(now.0)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Updates a recorded notification's status ("delivered", "failed", "answered", ...).
    pub async fn set_notification_status(&self, org: OrgId, key: &NotificationKey, status: &str, now: Timestamp) -> Result<()> {
        let sql = format!("UPDATE notifications SET status = $1, updated_at = $2 WHERE {}", key_columns(3));
        bind_key(sqlx::query(&sql).bind(status).bind(now.0), org, key).execute(self.pool()).await?;
        Ok(())
    }

    /// Notes where a notification went (`target`) and/or why it ended (`detail`); `None` keeps what is there.
    /// Several phones of one page share one notification: their targets are joined with ", ".
    pub async fn describe_notification(&self, org: OrgId, key: &NotificationKey, target: Option<&str>, detail: Option<&str>, now: Timestamp) -> Result<()> {
        let sql = format!(
            "UPDATE notifications SET \
               target = CASE WHEN $1 IS NULL THEN target WHEN target = '' THEN $1 ELSE target || ', ' || $1 END, \
               detail = COALESCE($2, detail), updated_at = $3 WHERE {}",
            key_columns(4)
        );
        bind_key(sqlx::query(&sql).bind(target).bind(detail).bind(now.0), org, key).execute(self.pool()).await?;
        Ok(())
    }

    pub async fn notifications_for_request(&self, org: OrgId, id: RequestId) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(
            "SELECT stage, person_id, channel, status, target, detail, created_at, updated_at FROM notifications \
             WHERE org_id = $1 AND request_id = $2 ORDER BY stage, id",
        )
        .bind(org.0)
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let ch = string(r, "channel")?;
                let stage = i64_(r, "stage")?;
                Ok(NotificationRecord {
                    key: NotificationKey {
                        request: id,
                        stage: u32::try_from(stage).map_err(|_| corrupt("notifications.stage", stage))?,
                        person: PersonId(i64_(r, "person_id")?),
                        channel: ch.parse::<Channel>().map_err(|_| corrupt("notifications.channel", &ch))?,
                    },
                    status: string(r, "status")?,
                    target: string(r, "target")?,
                    detail: string(r, "detail")?,
                    created_at: ts(r, "created_at")?,
                    updated_at: ts(r, "updated_at")?,
                })
            })
            .collect()
    }
}

//! Webhooks and their delivery queue, shared between instances (issue 10).
//!
//! The request log (`request_events`, append-only) is the source: [`Store::enqueue_webhook_deliveries`]
//! copies each webhook's new status events into `webhook_deliveries`, one row per (webhook,
//! event), and moves the webhook's cursor. Any instance may run it at any time: the unique
//! (webhook_id, event_id) turns a second copy into a no-op. The cursor trails the log by a
//! settling window, because an id is taken when a transaction *starts* writing and becomes
//! visible when it commits: on PostgreSQL event 9 may appear after event 10 was seen. Events
//! inside the window are looked at again on the next pass (and skipped by the unique key).
//!
//! [`Store::claim_webhook_deliveries`] leases due deliveries to one instance (PostgreSQL:
//! `FOR UPDATE SKIP LOCKED`; SQLite has a single writer), oldest event of a request first: a
//! request's later events wait while an earlier one is still pending, so a receiver sees
//! `request.created` before `request.completed`. [`Store::finish_webhook_attempt`] logs the
//! attempt and either closes the delivery or schedules the next try; it only changes the
//! delivery while the caller still holds the lease.

use super::requests::request_from_row;
use super::requests::REQUEST_COLUMNS;
use super::rows::{corrupt, i64_, opt_actor, opt_i64, opt_string, opt_ts, string, ts, u32_};
use super::{one_row, Backend, Result, Store, StoreError};
use crate::ids::{OrgId, RequestId};
use crate::request::{Actor, Request};
use crate::timestamp::{Millis, Timestamp};
use crate::webhook::{DeliveryId, Format, NewWebhook, NextStep, Webhook, WebhookEvent, WebhookId};
use sqlx::any::AnyRow;

const WEBHOOK_COLUMNS: &str = "id, org_id, name, url, secret, format, events, disabled_at, created_at";

/// A delivery leased to one instance until `lease_expires_at`, with what its body needs.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub webhook: Webhook,
    pub organization: super::Organization,
    pub event_id: i64,
    pub event: WebhookEvent,
    pub event_at: Timestamp,
    pub actor: Actor,
    pub request: Request,
    /// Attempts made before this one.
    pub attempts: u32,
    pub lease_expires_at: Timestamp,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration: Millis,
}

/// One line of a webhook's delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLog {
    pub delivery: DeliveryId,
    pub event: WebhookEvent,
    pub request: RequestId,
    pub attempt: u32,
    pub at: Timestamp,
    pub duration: Millis,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

/// Deliveries of one webhook by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

fn events_text(events: &[WebhookEvent]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for e in WebhookEvent::ALL {
        if events.contains(&e) {
            names.push(e.as_str());
        }
    }
    names.join(" ")
}

fn webhook_from_row(row: &AnyRow) -> Result<Webhook> {
    let format_s = string(row, "format")?;
    let events = string(row, "events")?
        .split_whitespace()
        .map(|e| WebhookEvent::parse(e).ok_or_else(|| corrupt("webhooks.events", e)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Webhook {
        id: WebhookId(i64_(row, "id")?),
        org: OrgId(i64_(row, "org_id")?),
        name: string(row, "name")?,
        url: string(row, "url")?,
        format: Format::parse(&format_s).ok_or_else(|| corrupt("webhooks.format", &format_s))?,
        events,
        secret: string(row, "secret")?,
        disabled: opt_i64(row, "disabled_at")?.is_some(),
        created_at: ts(row, "created_at")?,
    })
}

impl Store {
    /// Adds a webhook. It is sent the events logged from now on (not the history). Returns its
    /// id and secret (generated unless given), which the caller shows once.
    pub async fn create_webhook(&self, org: OrgId, new: &NewWebhook, now: Timestamp) -> Result<(WebhookId, String)> {
        let (name, url, secret) = new.validate()?;
        let row = sqlx::query(
            "INSERT INTO webhooks (org_id, name, url, secret, format, events, event_cursor, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(id), 0) FROM request_events), $7, $7) RETURNING id",
        )
        .bind(org.0)
        .bind(name)
        .bind(url)
        .bind(&secret)
        .bind(new.format.as_str())
        .bind(events_text(&new.events))
        .bind(now.0)
        .fetch_one(self.pool())
        .await?;
        Ok((WebhookId(i64_(&row, "id")?), secret))
    }

    pub async fn list_webhooks(&self, org: OrgId) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 ORDER BY name, id"
        ))
        .bind(org.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    pub async fn webhook(&self, org: OrgId, id: WebhookId) -> Result<Webhook> {
        let row = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.0)
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        webhook_from_row(&row)
    }

    /// A disabled webhook gets no sends; its deliveries wait and go out when it is enabled again.
    pub async fn set_webhook_disabled(&self, org: OrgId, id: WebhookId, disabled: bool, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE webhooks SET disabled_at = $1, updated_at = $2 WHERE org_id = $3 AND id = $4")
            .bind(disabled.then_some(now.0))
            .bind(now.0)
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        one_row(&done, id)
    }

    /// Replaces the secret (a new one is generated when `secret` is `None`); returns it.
    pub async fn set_webhook_secret(
        &self,
        org: OrgId,
        id: WebhookId,
        secret: Option<&str>,
        now: Timestamp,
    ) -> Result<String> {
        let current = self.webhook(org, id).await?;
        let check = NewWebhook {
            name: current.name,
            url: current.url,
            secret: secret.map(str::to_string),
            ..NewWebhook::default()
        };
        let (_, _, secret) = check.validate()?;
        let done = sqlx::query("UPDATE webhooks SET secret = $1, updated_at = $2 WHERE org_id = $3 AND id = $4")
            .bind(&secret)
            .bind(now.0)
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        one_row(&done, id)?;
        Ok(secret)
    }

    /// Deletes the webhook with its queue and log.
    pub async fn delete_webhook(&self, org: OrgId, id: WebhookId) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for table in ["webhook_attempts", "webhook_deliveries"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE org_id = $1 AND webhook_id = $2"))
                .bind(org.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM webhooks WHERE org_id = $1 AND id = $2")
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        one_row(&done, id)?;
        tx.commit().await?;
        Ok(())
    }

    /// Copies new status events of every organization into the delivery queue of each enabled
    /// webhook that wants them; returns how many deliveries were added. Events logged within
    /// `settle` before `now` stay above the cursor and are looked at again next time.
    pub async fn enqueue_webhook_deliveries(&self, now: Timestamp, settle: Millis) -> Result<u64> {
        let hooks = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS}, event_cursor FROM webhooks WHERE disabled_at IS NULL ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut added = 0;
        for row in &hooks {
            let hook = webhook_from_row(row)?;
            let cursor = i64_(row, "event_cursor")?;
            // Nothing logged past the cursor (the usual case): no write at all.
            let newest = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM request_events WHERE org_id = $1")
                .bind(hook.org.0)
                .fetch_one(self.pool())
                .await?;
            if i64_(&newest, "m")? <= cursor {
                continue;
            }
            let wanted: Vec<WebhookEvent> = WebhookEvent::ALL.into_iter().filter(|e| hook.wants(*e)).collect();
            // Status names come from our enum, never from input, so inlining them is safe.
            let statuses = wanted
                .iter()
                .filter_map(|e| e.status())
                .map(|s| format!("'{}'", s.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut kinds = Vec::new();
            if !statuses.is_empty() {
                kinds.push(format!("(e.kind = 'status' AND e.detail IN ({statuses}))"));
            }
            if wanted.contains(&WebhookEvent::Transcribed) {
                kinds.push("e.kind = 'transcribed'".to_string());
            }
            let mut tx = self.pool().begin().await?;
            if !kinds.is_empty() {
                let done = sqlx::query(&format!(
                    "INSERT INTO webhook_deliveries \
                     (org_id, webhook_id, event_id, request_id, event, status, attempts, next_attempt_at, created_at) \
                     SELECT e.org_id, $1, e.id, e.request_id, CASE WHEN e.kind = 'status' THEN e.detail ELSE e.kind END, \
                     'pending', 0, $2, $2 FROM request_events e \
                     WHERE e.org_id = $3 AND e.id > $4 AND ({}) \
                     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries x WHERE x.webhook_id = $1 AND x.event_id = e.id) \
                     ON CONFLICT (webhook_id, event_id) DO NOTHING",
                    kinds.join(" OR ")
                ))
                .bind(hook.id.0)
                .bind(now.0)
                .bind(hook.org.0)
                .bind(cursor)
                .execute(&mut *tx)
                .await?;
                added += done.rows_affected();
            }
            // The NOT EXISTS skips events already queued without burning an id on the conflict;
            // the unique key still settles two instances racing here. The cursor only passes
            // events old enough that no earlier id can still commit.
            sqlx::query(
                "UPDATE webhooks SET event_cursor = (SELECT COALESCE(MAX(id), $1) FROM request_events \
                 WHERE org_id = $2 AND id > $1 AND at <= $3) WHERE id = $4 AND event_cursor = $1",
            )
            .bind(cursor)
            .bind(hook.org.0)
            .bind((now - settle).0)
            .bind(hook.id.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(added)
    }

    /// Leases up to `limit` due deliveries (of enabled webhooks, every organization) to `owner`
    /// until `now + lease`. The lease must outlast a send (the HTTP timeout), or another
    /// instance may send the same event again after it expires.
    pub async fn claim_webhook_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Millis,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_expires_at = $2 \
             WHERE id IN (SELECT d.id FROM webhook_deliveries d \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
                 AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= $3) \
                 AND d.webhook_id IN (SELECT w.id FROM webhooks w WHERE w.disabled_at IS NULL) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.webhook_id = d.webhook_id \
                     AND p.request_id = d.request_id AND p.status = 'pending' AND p.event_id < d.event_id) \
                 ORDER BY d.next_attempt_at, d.id LIMIT $4{lock}) \
             RETURNING id, org_id, webhook_id, event_id, request_id, attempts, lease_expires_at"
        );
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind((now + lease).0)
            .bind(now.0)
            .bind(limit.clamp(0, 1000))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let org = OrgId(i64_(r, "org_id")?);
            let event_id = i64_(r, "event_id")?;
            let webhook = self.webhook(org, WebhookId(i64_(r, "webhook_id")?)).await?;
            let ev = sqlx::query("SELECT at, actor, kind, detail FROM request_events WHERE org_id = $1 AND id = $2")
                .bind(org.0)
                .bind(event_id)
                .fetch_one(self.pool())
                .await?;
            let stored = match string(&ev, "kind")?.as_str() {
                "status" => string(&ev, "detail")?,
                other => other.to_string(),
            };
            let event = WebhookEvent::from_stored(&stored).ok_or_else(|| corrupt("request_events.detail", &stored))?;
            let req = sqlx::query(&format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE org_id = $1 AND id = $2"
            ))
            .bind(org.0)
            .bind(i64_(r, "request_id")?)
            .fetch_one(self.pool())
            .await?;
            out.push(ClaimedDelivery {
                id: DeliveryId(i64_(r, "id")?),
                webhook,
                organization: self.organization(org).await?,
                event_id,
                event,
                event_at: ts(&ev, "at")?,
                actor: opt_actor(&ev, "actor")?.ok_or_else(|| corrupt("request_events.actor", "missing"))?,
                request: request_from_row(org, &req)?,
                attempts: u32_(r, "attempts")?,
                lease_expires_at: ts(r, "lease_expires_at")?,
            });
        }
        Ok(out)
    }

    /// Logs an attempt and applies `next` (delivered, retry at, give up). Returns false if
    /// `owner` had lost the lease (the attempt is still logged: it happened), in which case the
    /// delivery is left to whoever holds it now.
    pub async fn finish_webhook_attempt(
        &self,
        delivery: &ClaimedDelivery,
        owner: &str,
        outcome: &AttemptOutcome,
        next: NextStep,
        now: Timestamp,
    ) -> Result<bool> {
        let org = delivery.webhook.org;
        let error = outcome
            .error
            .as_deref()
            .map(|e| e.chars().take(1000).collect::<String>());
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (org_id, webhook_id, delivery_id, attempt, at, duration_ms, status_code, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(org.0)
        .bind(delivery.webhook.id.0)
        .bind(delivery.id.0)
        .bind(i64::from(delivery.attempts) + 1)
        .bind(now.0)
        .bind(outcome.duration.0.max(0))
        .bind(outcome.status_code.map(i64::from))
        .bind(error.clone())
        .execute(&mut *tx)
        .await?;
        let (status, next_at, finished) = match next {
            NextStep::Delivered => ("delivered", now, Some(now.0)),
            NextStep::RetryAt(t) => ("pending", t, None),
            NextStep::GiveUp => ("failed", now, Some(now.0)),
        };
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, finished_at = $3, \
             last_status_code = $4, last_error = $5, lease_owner = NULL, lease_expires_at = NULL \
             WHERE org_id = $6 AND id = $7 AND status = 'pending' AND lease_owner = $8",
        )
        .bind(status)
        .bind(next_at.0)
        .bind(finished)
        .bind(outcome.status_code.map(i64::from))
        .bind(error)
        .bind(org.0)
        .bind(delivery.id.0)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The newest `limit` attempts of a webhook, newest first.
    pub async fn webhook_attempts(&self, org: OrgId, id: WebhookId, limit: i64) -> Result<Vec<AttemptLog>> {
        let rows = sqlx::query(
            "SELECT a.delivery_id, a.attempt, a.at, a.duration_ms, a.status_code, a.error, d.event, d.request_id \
             FROM webhook_attempts a JOIN webhook_deliveries d ON d.org_id = a.org_id AND d.id = a.delivery_id \
             WHERE a.org_id = $1 AND a.webhook_id = $2 ORDER BY a.id DESC LIMIT $3",
        )
        .bind(org.0)
        .bind(id.0)
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let status = string(r, "event")?;
                let event = WebhookEvent::from_stored(&status)
                    .ok_or_else(|| corrupt("webhook_deliveries.event", &status))?;
                let code = opt_i64(r, "status_code")?;
                Ok(AttemptLog {
                    delivery: DeliveryId(i64_(r, "delivery_id")?),
                    event,
                    request: RequestId(i64_(r, "request_id")?),
                    attempt: u32_(r, "attempt")?,
                    at: ts(r, "at")?,
                    duration: Millis(i64_(r, "duration_ms")?),
                    status_code: code
                        .map(|c| u16::try_from(c).map_err(|_| corrupt("webhook_attempts.status_code", c)))
                        .transpose()?,
                    error: opt_string(r, "error")?,
                })
            })
            .collect()
    }

    /// How many deliveries of the webhook are pending, delivered and given up.
    pub async fn webhook_delivery_counts(&self, org: OrgId, id: WebhookId) -> Result<DeliveryCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE org_id = $1 AND webhook_id = $2 GROUP BY status")
            .bind(org.0)
            .bind(id.0)
            .fetch_all(self.pool())
            .await?;
        let mut c = DeliveryCounts::default();
        for r in &rows {
            let n = i64_(r, "n")?;
            match string(r, "status")?.as_str() {
                "pending" => c.pending = n,
                "delivered" => c.delivered = n,
                _ => c.failed += n,
            }
        }
        Ok(c)
    }

    /// When the oldest pending delivery of the webhook is next due, if any (for the page).
    pub async fn webhook_next_attempt(&self, org: OrgId, id: WebhookId) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT MIN(next_attempt_at) AS t FROM webhook_deliveries WHERE org_id = $1 AND webhook_id = $2 AND status = 'pending'")
            .bind(org.0)
            .bind(id.0)
            .fetch_one(self.pool())
            .await?;
        opt_ts(&row, "t")
    }

    /// Puts the webhook's given-up deliveries back in the queue, due now.
    pub async fn retry_failed_webhook_deliveries(&self, org: OrgId, id: WebhookId, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, finished_at = NULL \
             WHERE org_id = $2 AND webhook_id = $3 AND status = 'failed'",
        )
        .bind(now.0)
        .bind(org.0)
        .bind(id.0)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Forgets attempts logged before `before` (the delivery rows stay, so nothing is resent).
    pub async fn prune_webhook_attempts(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM webhook_attempts WHERE at < $1")
            .bind(before.0)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::NewRequest;
    use crate::store::testing::{on_each_backend, TestDb};
    use crate::webhook::RetryPolicy;

    const NOW: Timestamp = Timestamp(1_717_200_000_000);
    const SETTLE: Millis = Millis::seconds(5);
    const LEASE: Millis = Millis::seconds(30);

    async fn org(s: &Store, slug: &str) -> OrgId {
        s.create_organization("Hooks", slug, "Europe/London", NOW)
            .await
            .unwrap()
    }

    fn hook(url: &str) -> NewWebhook {
        NewWebhook {
            name: "Ops".into(),
            url: url.into(),
            ..NewWebhook::default()
        }
    }

    async fn request(s: &Store, org: OrgId, at: Timestamp) -> RequestId {
        s.create_request(
            org,
            &NewRequest {
                caller: "+12125550142".into(),
                summary: "Leak".into(),
                call: None,
            },
            at,
        )
        .await
        .unwrap()
    }

    fn ok() -> AttemptOutcome {
        AttemptOutcome {
            status_code: Some(200),
            error: None,
            duration: Millis(12),
        }
    }

    #[tokio::test]
    async fn webhooks_are_created_listed_disabled_and_deleted_per_organization() {
        on_each_backend(|db: TestDb| async move {
            let s = &db.store;
            let (a, b) = (org(s, "a").await, org(s, "b").await);
            let (id, secret) = s
                .create_webhook(
                    a,
                    &NewWebhook {
                        format: Format::Slack,
                        events: vec![WebhookEvent::Completed, WebhookEvent::Created],
                        ..hook("https://x.example/h")
                    },
                    NOW,
                )
                .await
                .unwrap();
            assert!(secret.starts_with("whsec_"));
            let w = s.webhook(a, id).await.unwrap();
            assert_eq!(
                (w.format, w.events.clone(), w.secret.clone(), w.disabled),
                (
                    Format::Slack,
                    vec![WebhookEvent::Created, WebhookEvent::Completed],
                    secret,
                    false
                ),
                "{}",
                db.label
            );
            assert!(
                matches!(s.webhook(b, id).await, Err(StoreError::NotFound(_))),
                "{}",
                db.label
            );
            assert!(matches!(s.delete_webhook(b, id).await, Err(StoreError::NotFound(_))));
            match s.create_webhook(a, &hook("ftp://nope"), NOW).await {
                Err(StoreError::Invalid(e)) => assert_eq!(e.field, "url"),
                other => panic!("{} {other:?}", db.label),
            }
            s.set_webhook_disabled(a, id, true, NOW).await.unwrap();
            assert!(s.list_webhooks(a).await.unwrap()[0].disabled);
            assert!(s.list_webhooks(b).await.unwrap().is_empty());
            let new = s
                .set_webhook_secret(a, id, Some("a-secret-of-my-own"), NOW)
                .await
                .unwrap();
            assert_eq!(s.webhook(a, id).await.unwrap().secret, new);
            s.delete_webhook(a, id).await.unwrap();
            assert!(s.list_webhooks(a).await.unwrap().is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn every_status_event_is_queued_once_per_webhook_and_claimed_by_one_instance() {
        on_each_backend(|db: TestDb| async move {
            let s = &db.store;
            let other = Store::connect(&db.url).await.unwrap();
            let (a, b) = (org(s, "a").await, org(s, "b").await);
            // History before the webhook existed is not sent.
            let old = request(s, a, NOW - Millis::minutes(10)).await;
            let (all, _) = s.create_webhook(a, &hook("https://x.example/all"), NOW).await.unwrap();
            let (done_only, _) = s
                .create_webhook(
                    a,
                    &NewWebhook {
                        events: vec![WebhookEvent::Completed],
                        ..hook("https://x.example/done")
                    },
                    NOW,
                )
                .await
                .unwrap();
            let r = request(s, a, NOW).await;
            s.add_note(a, r, Actor::Caller, "not a status", NOW).await.unwrap();
            s.acknowledge(a, r, Actor::System, NOW + Millis(1)).await.unwrap();
            s.complete(a, r, Actor::System, NOW + Millis(2)).await.unwrap();
            s.complete(a, old, Actor::System, NOW + Millis(3)).await.unwrap();
            request(s, b, NOW).await; // another organization's request: nobody here hears of it

            let t = NOW + Millis::seconds(1);
            assert_eq!(
                s.enqueue_webhook_deliveries(t, SETTLE).await.unwrap(),
                4 + 2,
                "{}",
                db.label
            );
            // Inside the settling window the cursor has not moved: a second pass, from another
            // instance, adds nothing.
            assert_eq!(
                other.enqueue_webhook_deliveries(t, SETTLE).await.unwrap(),
                0,
                "{}",
                db.label
            );
            assert_eq!(
                other
                    .enqueue_webhook_deliveries(t + Millis::minutes(1), SETTLE)
                    .await
                    .unwrap(),
                0
            );

            // Instance 1 claims; instance 2 finds nothing free. Only the first pending event of
            // each (webhook, request) is handed out, so events arrive in order.
            let c1 = s.claim_webhook_deliveries("one", t, LEASE, 100).await.unwrap();
            let c2 = other.claim_webhook_deliveries("two", t, LEASE, 100).await.unwrap();
            assert!(c2.is_empty(), "{}: {c2:?}", db.label);
            let mut got: Vec<(WebhookId, RequestId, WebhookEvent)> =
                c1.iter().map(|c| (c.webhook.id, c.request.id, c.event)).collect();
            got.sort_by_key(|g| (g.0, g.1));
            assert_eq!(
                got,
                vec![
                    (all, old, WebhookEvent::Completed),
                    (all, r, WebhookEvent::Created),
                    (done_only, old, WebhookEvent::Completed),
                    (done_only, r, WebhookEvent::Completed)
                ],
                "{}",
                db.label
            );
            let created = c1.iter().find(|c| c.event == WebhookEvent::Created).unwrap();
            assert_eq!(
                (created.actor, created.event_at, created.attempts),
                (Actor::Caller, NOW, 0)
            );
            assert_eq!(
                created.request.state.status(),
                crate::RequestStatus::Completed,
                "the request as it is now"
            );
            assert_eq!(created.organization.slug, "a");

            for c in &c1 {
                assert!(s
                    .finish_webhook_attempt(c, "one", &ok(), NextStep::Delivered, t)
                    .await
                    .unwrap());
            }
            // Then the acknowledged event, then the completed one.
            for expected in [WebhookEvent::Acknowledged, WebhookEvent::Completed] {
                let next = other.claim_webhook_deliveries("two", t, LEASE, 100).await.unwrap();
                assert_eq!(
                    next.iter().map(|c| c.event).collect::<Vec<_>>(),
                    vec![expected],
                    "{}",
                    db.label
                );
                assert!(other
                    .finish_webhook_attempt(&next[0], "two", &ok(), NextStep::Delivered, t)
                    .await
                    .unwrap());
            }
            assert!(s
                .claim_webhook_deliveries("one", t + Millis::hours(1), LEASE, 100)
                .await
                .unwrap()
                .is_empty());
            assert_eq!(
                s.webhook_delivery_counts(a, all).await.unwrap(),
                DeliveryCounts {
                    pending: 0,
                    delivered: 4,
                    failed: 0
                }
            );
            assert_eq!(s.webhook_attempts(a, all, 50).await.unwrap().len(), 4);
            assert!(s.webhook_attempts(b, all, 50).await.unwrap().is_empty(), "tenancy");
        })
        .await;
    }

    #[tokio::test]
    async fn failures_back_off_leases_expire_and_a_late_owner_changes_nothing() {
        on_each_backend(|db: TestDb| async move {
            let s = &db.store;
            let a = org(s, "a").await;
            let (id, _) = s.create_webhook(a, &hook("https://x.example/h"), NOW).await.unwrap();
            let policy = RetryPolicy {
                initial: Millis::seconds(1),
                max_delay: Millis::seconds(4),
                max_attempts: Some(3),
            };
            request(s, a, NOW).await;
            s.enqueue_webhook_deliveries(NOW, SETTLE).await.unwrap();
            let refused = AttemptOutcome {
                status_code: None,
                error: Some("connection refused".into()),
                duration: Millis(1),
            };

            let mut t = NOW;
            let c = s.claim_webhook_deliveries("one", t, LEASE, 10).await.unwrap();
            assert_eq!(c.len(), 1, "{}", db.label);
            assert!(s
                .finish_webhook_attempt(&c[0], "one", &refused, policy.after_attempt(1, false, t), t)
                .await
                .unwrap());
            // Not due before the backoff is over.
            assert!(s
                .claim_webhook_deliveries("one", t + Millis(999), LEASE, 10)
                .await
                .unwrap()
                .is_empty());
            assert_eq!(
                s.webhook_next_attempt(a, id).await.unwrap(),
                Some(t + Millis::seconds(1))
            );
            t = t + Millis::seconds(1);
            let c = s.claim_webhook_deliveries("one", t, LEASE, 10).await.unwrap();
            assert_eq!(c[0].attempts, 1);
            // Instance "one" stalls past its lease; "two" takes over and sends.
            let late = t + LEASE;
            let c2 = s.claim_webhook_deliveries("two", late, LEASE, 10).await.unwrap();
            assert_eq!(c2.len(), 1, "{}: an expired lease is claimable", db.label);
            let server_error = AttemptOutcome {
                status_code: Some(500),
                error: None,
                duration: Millis(3),
            };
            assert!(s
                .finish_webhook_attempt(&c2[0], "two", &server_error, policy.after_attempt(2, false, late), late)
                .await
                .unwrap());
            assert!(
                !s.finish_webhook_attempt(&c[0], "one", &ok(), NextStep::Delivered, late)
                    .await
                    .unwrap(),
                "the stale owner writes nothing"
            );
            assert_eq!(s.webhook_delivery_counts(a, id).await.unwrap().pending, 1);
            let t3 = late + Millis::seconds(2);
            let c3 = s.claim_webhook_deliveries("two", t3, LEASE, 10).await.unwrap();
            assert_eq!(c3[0].attempts, 2);
            assert!(s
                .finish_webhook_attempt(&c3[0], "two", &refused, policy.after_attempt(3, false, t3), t3)
                .await
                .unwrap());
            assert_eq!(
                s.webhook_delivery_counts(a, id).await.unwrap(),
                DeliveryCounts {
                    pending: 0,
                    delivered: 0,
                    failed: 1
                },
                "{}",
                db.label
            );
            let log = s.webhook_attempts(a, id, 10).await.unwrap();
            // Newest first; the stale owner's attempt is logged too (it did happen).
            assert_eq!(
                log.iter().map(|l| (l.attempt, l.status_code)).collect::<Vec<_>>(),
                vec![(3, None), (2, Some(200)), (2, Some(500)), (1, None)],
                "{}",
                db.label
            );
            assert_eq!(log.len(), 4);
            assert_eq!(log[0].error.as_deref(), Some("connection refused"));
            // Retry by hand: pending again, and a disabled webhook is not sent.
            assert_eq!(s.retry_failed_webhook_deliveries(a, id, t3).await.unwrap(), 1);
            s.set_webhook_disabled(a, id, true, t3).await.unwrap();
            assert!(s
                .claim_webhook_deliveries("two", t3, LEASE, 10)
                .await
                .unwrap()
                .is_empty());
            s.set_webhook_disabled(a, id, false, t3).await.unwrap();
            assert_eq!(s.claim_webhook_deliveries("two", t3, LEASE, 10).await.unwrap().len(), 1);
            assert_eq!(s.prune_webhook_attempts(t3 + Millis(1)).await.unwrap(), 4);
        })
        .await;
    }
}

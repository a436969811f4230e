//! The buttons on a request (issue 18 item 6) on their way from the web to paging: "Page again",
//! "Escalate now", "Reassign to <person>".
//!
//! The web queues an action ([`Store::queue_request_action`]: the row and the timeline event naming
//! who asked, in one transaction) and wakes this process's paging task ([`Store::request_actions_queued`]).
//! The paging task takes the pending actions ([`Store::take_request_actions`]) on that wake-up and on
//! every heartbeat: the actions of requests whose escalation it leases, and of those nobody leases
//! (finished, never begun, or their instance died), never those another live instance holds. Each
//! action is taken exactly once: the `UPDATE ... WHERE taken_at IS NULL` is re-checked by PostgreSQL
//! for concurrent takers (and `SKIP LOCKED` keeps them from waiting on each other); SQLite has one writer.

use super::requests::{event_kind, insert_event};
use super::rows::{corrupt, i64_, opt_i64, string, ts};
use super::{Backend, Result, Store, StoreError};
use crate::ids::{OrgId, PersonId, RequestId};
use crate::request::Actor;
use crate::timestamp::Timestamp;

/// What was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestAction {
    /// Page the current step again now; an exhausted request starts over from the first step, one
    /// that never began paging (after hours) begins now.
    PageAgain,
    /// Move on to the next step now.
    Escalate,
    /// Page this person directly now.
    Reassign(PersonId),
}

impl RequestAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestAction::PageAgain => "page_again",
            RequestAction::Escalate => "escalate",
            RequestAction::Reassign(_) => "reassign",
        }
    }
}

/// An action waiting in (or taken from) the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAction {
    pub id: i64,
    pub request: RequestId,
    pub action: RequestAction,
    pub by: Actor,
    pub created_at: Timestamp,
}

fn action_from_row(r: &sqlx::any::AnyRow) -> Result<QueuedAction> {
    let kind = string(r, "action")?;
    let person = opt_i64(r, "person_id")?.map(PersonId);
    let action = match (kind.as_str(), person) {
        ("page_again", None) => RequestAction::PageAgain,
        ("escalate", None) => RequestAction::Escalate,
        ("reassign", Some(p)) => RequestAction::Reassign(p),
        _ => return Err(corrupt("request_actions.action", kind)),
    };
    let by = string(r, "by_actor")?;
    Ok(QueuedAction {
        id: i64_(r, "id")?,
        request: RequestId(i64_(r, "request_id")?),
        action,
        by: by.parse().map_err(|_| corrupt("request_actions.by_actor", &by))?,
        created_at: ts(r, "created_at")?,
    })
}

impl Store {
    /// Queues `action` on `request`, asked by `by`, and writes the timeline event (kind
    /// [`event_kind::ACTION`], actor `by`: "page again", "escalate now", "reassign to <name>"). Which
    /// requests may take which action is the caller's rule; a reassignment's person must be of `org`.
    pub async fn queue_request_action(&self, org: OrgId, request: RequestId, action: RequestAction, by: Actor, now: Timestamp) -> Result<i64> {
        let mut tx = self.pool().begin().await?;
        let (person, detail) = match action {
            RequestAction::PageAgain => (None, "page again".to_string()),
            RequestAction::Escalate => (None, "escalate now".to_string()),
            RequestAction::Reassign(p) => {
                let row = sqlx::query("SELECT name FROM people WHERE org_id = $1 AND id = $2")
                    .bind(org.0)
                    .bind(p.0)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(p.to_string()))?;
                (Some(p.0), format!("reassign to {}", string(&row, "name")?))
            }
        };
        let row = sqlx::query(
            "INSERT INTO request_actions (org_id, request_id, action, person_id, by_actor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(org.0)
        .bind(request.0)
        .bind(action.as_str())
        .bind(person)
        .bind(by.to_string())
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await?;
        let id = i64_(&row, "id")?;
        insert_event(&mut tx, org, request, now, by, event_kind::ACTION, &detail).await?;
        tx.commit().await?;
        // This process's paging task takes it at once; other instances' on their next heartbeat.
        self.actions_queued.notify_one();
        tracing::info!(%request, %org, action = action.as_str(), by = %by, "request action queued");
        Ok(id)
    }

    /// Wakes (once per [`Store::queue_request_action`] since the last wait, on any clone of this
    /// store) when an action was queued in this process.
    pub async fn request_actions_queued(&self) {
        self.actions_queued.notified().await
    }

    /// Takes up to `limit` pending actions for `owner` at `now`, oldest first: those of requests
    /// whose escalation no other instance holds a live lease on.
    pub async fn take_request_actions(&self, org: OrgId, owner: &str, now: Timestamp, limit: i64) -> Result<Vec<QueuedAction>> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE OF a SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE request_actions SET taken_at = $1, taken_by = $2 \
             WHERE taken_at IS NULL AND id IN (SELECT a.id FROM request_actions a \
                 WHERE a.org_id = $3 AND a.taken_at IS NULL AND NOT EXISTS (SELECT 1 FROM escalation_work w \
                     WHERE w.org_id = a.org_id AND w.request_id = a.request_id AND w.lease_owner IS NOT NULL \
                     AND w.lease_owner <> $2 AND w.lease_expires_at > $1) \
                 ORDER BY a.id LIMIT $4{lock}) \
             RETURNING id, request_id, action, person_id, by_actor, created_at"
        );
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(&sql)
            .bind(now.0)
            .bind(owner)
            .bind(org.0)
            .bind(limit.clamp(0, 1000))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = rows.iter().map(action_from_row).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|a| a.id);
        Ok(out)
    }

    /// The actions on `request` not taken yet, oldest first (the request page says they are on their way).
    pub async fn pending_request_actions(&self, org: OrgId, request: RequestId) -> Result<Vec<QueuedAction>> {
        let rows = sqlx::query(
            "SELECT id, request_id, action, person_id, by_actor, created_at FROM request_actions \
             WHERE org_id = $1 AND request_id = $2 AND taken_at IS NULL ORDER BY id",
        )
        .bind(org.0)
        .bind(request.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(action_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{on_each_backend, TestDb};
    use super::*;
    use crate::escalation::{NewPolicy, Step, Target};
    use crate::person::{NewPerson, Role};
    use crate::request::NewRequest;
    use crate::timestamp::Millis;

    const NOW: Timestamp = Timestamp(1_717_200_000_000);

    fn person(name: &str) -> NewPerson {
        NewPerson {
            name: name.into(),
            email: Some(format!("{}@example.com", name.to_lowercase())),
            role: Some(Role::Employee),
            phones: vec!["+442079460001".into()],
            time_zone: "Europe/London".into(),
            ..NewPerson::default()
        }
    }

    /// Queued with a timeline event naming who asked; taken once, oldest first, by the instance holding the
    /// request's lease or by anyone when nobody holds it, never while another live instance holds it; a
    /// reassignment names a person of the organization.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn actions_are_queued_with_an_event_and_taken_once_by_the_lease_holder() {
        on_each_backend(|db: TestDb| async move {
            let s = &db.store;
            let a = s.create_organization("A", "a", "Europe/London", NOW).await.unwrap();
            let b = s.create_organization("B", "b", "Europe/London", NOW).await.unwrap();
            let ann = s.add_person(a, &person("Ann"), NOW).await.unwrap();
            let stranger = s.add_person(b, &person("Zed"), NOW).await.unwrap();
            let policy = NewPolicy { name: "P".into(), steps: vec![Step { targets: vec![Target::Person(ann)], wait: Millis::minutes(5) }], repeat: 0 };
            let pid = s.create_policy(a, &policy, NOW).await.unwrap();
            let new = |c: &str| NewRequest { caller: c.into(), ..NewRequest::default() };
            let held = s.create_request(a, &new("1"), NOW).await.unwrap();
            let free = s.create_request(a, &new("2"), NOW).await.unwrap();
            let mut engine = s.begin_escalation(a, held, pid, NOW).await.unwrap();
            while engine.poll_command().is_some() {}
            assert!(s.hold_escalation(a, &engine, "i1", Millis::seconds(30), NOW).await.unwrap());
            let boss = Actor::User(crate::ids::UserId(7));

            // The wake-up is kept for a task not waiting yet.
            s.queue_request_action(a, held, RequestAction::Escalate, boss, NOW).await.unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(5), s.request_actions_queued()).await.expect("woken");
            s.queue_request_action(a, free, RequestAction::Reassign(ann), Actor::Person(ann), NOW + Millis(1)).await.unwrap();
            s.queue_request_action(a, free, RequestAction::PageAgain, boss, NOW + Millis(2)).await.unwrap();
            let log = s.request_events(a, free).await.unwrap();
            let acts: Vec<_> = log.iter().filter(|e| e.kind == event_kind::ACTION).map(|e| (e.actor, e.detail.as_str())).collect();
            assert_eq!(acts, vec![(Actor::Person(ann), "reassign to Ann"), (boss, "page again")], "{}", db.label);
            assert!(matches!(s.queue_request_action(a, free, RequestAction::Reassign(stranger), boss, NOW).await, Err(StoreError::NotFound(_))));
            assert!(matches!(s.queue_request_action(b, free, RequestAction::PageAgain, boss, NOW).await, Err(StoreError::NotFound(_))), "another org's request");
            assert_eq!(s.pending_request_actions(a, free).await.unwrap().len(), 2);

            // i2 may not take the action on the request i1 holds, only the free ones, oldest first.
            let t = NOW + Millis::seconds(10);
            let got: Vec<_> = s.take_request_actions(a, "i2", t, 10).await.unwrap().into_iter().map(|q| (q.request, q.action, q.by)).collect();
            assert_eq!(got, vec![(free, RequestAction::Reassign(ann), Actor::Person(ann)), (free, RequestAction::PageAgain, boss)], "{}", db.label);
            assert!(s.pending_request_actions(a, free).await.unwrap().is_empty());
            assert!(s.take_request_actions(b, "i1", t, 10).await.unwrap().is_empty(), "another org's queue");
            // Two takers at once (i1 and a second store): the held request's action goes to i1 once.
            let second = Store::connect(&db.url).await.unwrap();
            let (x, y) = tokio::join!(s.take_request_actions(a, "i1", t, 10), second.take_request_actions(a, "i1", t, 10));
            let mut all = x.unwrap();
            all.extend(y.unwrap());
            assert_eq!(all.iter().map(|q| (q.request, q.action)).collect::<Vec<_>>(), vec![(held, RequestAction::Escalate)], "{}", db.label);
            // Once i1's lease expired (it died), anyone takes the held request's actions.
            s.queue_request_action(a, held, RequestAction::PageAgain, boss, t).await.unwrap();
            assert!(s.take_request_actions(a, "i2", NOW + Millis::seconds(29), 10).await.unwrap().is_empty(), "i1 still holds it");
            assert_eq!(s.take_request_actions(a, "i2", NOW + Millis::seconds(30), 10).await.unwrap().len(), 1, "{}", db.label);
        })
        .await;
    }
}

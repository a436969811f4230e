//! Shift swaps (`shift_swaps`): asked by the requester, answered by the colleague, decided by a
//! manager or applied at acceptance when the schedule does not need approval. Every transition is
//! one conditional `UPDATE ... WHERE status IN (...)`, so two clicks racing cannot both win, and
//! applying writes the overrides in the same transaction (an overlap writes nothing).

use super::rows::{corrupt, i64_, opt_i64, opt_ts, string, ts};
use super::schedules::insert_override;
use super::{Result, Store, StoreError};
use crate::ids::{OrgId, OverrideId, PersonId, ScheduleId};
use crate::schedule::{NewSwap, Span, Swap, SwapId, SwapStatus};
use crate::timestamp::Timestamp;
use crate::validation::ValidationError;
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, schedule_id, requester_id, taker_id, starts_at, ends_at, back_starts_at, back_ends_at, status, \
                       created_at, answered_at, decided_at, override_id, back_override_id";

/// How many swaps the lists show (open ones first, then the most recent).
const LIST_LIMIT: i64 = 50;

impl Store {
    /// Stores a new request (status `asked`). Refused when either person is not of the
    /// organization, the schedule does not exist there, or the same shift already has an open
    /// request.
    pub async fn request_swap(&self, org: OrgId, new: &NewSwap, now: Timestamp) -> Result<SwapId> {
        new.validate()?;
        self.check_people_exist(org, &[new.requester, new.taker], "swap.people").await?;
        let open = sqlx::query(
            "SELECT id FROM shift_swaps WHERE org_id = $1 AND schedule_id = $2 AND requester_id = $3 AND starts_at = $4 \
             AND status IN ('asked', 'accepted')",
        )
        .bind(org.0)
        .bind(new.schedule.0)
        .bind(new.requester.0)
        .bind(new.shift.start.0)
        .fetch_optional(self.pool())
        .await?;
        if open.is_some() {
            return Err(StoreError::Conflict("an open swap request for this shift".into()));
        }
        let row = sqlx::query(
            "INSERT INTO shift_swaps (org_id, schedule_id, requester_id, taker_id, starts_at, ends_at, back_starts_at, back_ends_at, status, created_at) \
             SELECT $1, id, $3, $4, $5, $6, $7, $8, 'asked', $9 FROM schedules WHERE org_id = $1 AND id = $2 RETURNING id",
        )
        .bind(org.0)
        .bind(new.schedule.0)
        .bind(new.requester.0)
        .bind(new.taker.0)
        .bind(new.shift.start.0)
        .bind(new.shift.end.0)
        .bind(new.back.map(|b| b.start.0))
        .bind(new.back.map(|b| b.end.0))
        .bind(now.0)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(new.schedule.to_string()))?;
        Ok(SwapId(i64_(&row, "id")?))
    }

    pub async fn swap(&self, org: OrgId, id: SwapId) -> Result<Swap> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM shift_swaps WHERE org_id = $1 AND id = $2"))
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        swap_row(&row)
    }

    /// A schedule's swaps: open ones first, then the most recent.
    pub async fn swaps_of_schedule(&self, org: OrgId, schedule: ScheduleId) -> Result<Vec<Swap>> {
        self.swaps_where(org, "schedule_id = $2", schedule.0).await
    }

    /// The swaps a person asked for or was asked to take: open ones first, then the most recent.
    pub async fn swaps_of_person(&self, org: OrgId, person: PersonId) -> Result<Vec<Swap>> {
        self.swaps_where(org, "(requester_id = $2 OR taker_id = $2)", person.0).await
    }

    /// `org`'s swaps matching `filter` (its one parameter `$2` bound to `id`), open ones first, then the most recent.
    async fn swaps_where(&self, org: OrgId, filter: &str, id: i64) -> Result<Vec<Swap>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM shift_swaps WHERE org_id = $1 AND {filter} \
             ORDER BY CASE WHEN status IN ('asked', 'accepted') THEN 0 ELSE 1 END, created_at DESC, id DESC LIMIT {LIST_LIMIT}"
        ))
        .bind(org.0)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(swap_row).collect()
    }

    /// The colleague (`taker`) says yes. When the schedule does not need approval the swap is
    /// applied at once. Returns the new status (`accepted` or `approved`).
    pub async fn accept_swap(&self, org: OrgId, id: SwapId, taker: PersonId, now: Timestamp) -> Result<SwapStatus> {
        let swap = self.swap(org, id).await?;
        if swap.new.taker != taker {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let need = self.swaps_need_approval(org, swap.new.schedule).await?;
        let mut tx = self.pool().begin().await?;
        move_status(&mut tx, org, &swap, &[SwapStatus::Asked], SwapStatus::Accepted, "answered_at", now).await?;
        if need {
            tx.commit().await?;
            return Ok(SwapStatus::Accepted);
        }
        apply(&mut tx, org, &swap, SwapStatus::Accepted, now).await?;
        tx.commit().await?;
        Ok(SwapStatus::Approved)
    }

    /// The colleague says no.
    pub async fn decline_swap(&self, org: OrgId, id: SwapId, taker: PersonId, now: Timestamp) -> Result<()> {
        let swap = self.swap(org, id).await?;
        if swap.new.taker != taker {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let mut tx = self.pool().begin().await?;
        move_status(&mut tx, org, &swap, &[SwapStatus::Asked], SwapStatus::Declined, "answered_at", now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The requester withdraws a request nobody has decided yet.
    pub async fn cancel_swap(&self, org: OrgId, id: SwapId, requester: PersonId, now: Timestamp) -> Result<()> {
        let swap = self.swap(org, id).await?;
        if swap.new.requester != requester {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let mut tx = self.pool().begin().await?;
        move_status(&mut tx, org, &swap, &[SwapStatus::Asked, SwapStatus::Accepted], SwapStatus::Cancelled, "decided_at", now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A manager approves (writes the overrides) or refuses an accepted swap of `schedule`.
    pub async fn decide_swap(&self, org: OrgId, schedule: ScheduleId, id: SwapId, approve: bool, now: Timestamp) -> Result<SwapStatus> {
        let swap = self.swap(org, id).await?;
        if swap.new.schedule != schedule {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let mut tx = self.pool().begin().await?;
        if approve {
            apply(&mut tx, org, &swap, SwapStatus::Accepted, now).await?;
        } else {
            move_status(&mut tx, org, &swap, &[SwapStatus::Accepted], SwapStatus::Refused, "decided_at", now).await?;
        }
        tx.commit().await?;
        Ok(if approve { SwapStatus::Approved } else { SwapStatus::Refused })
    }
}

/// `from` → `to`, stamping `column`; an error (nothing changed) when the swap is no longer in
/// one of the `from` states.
async fn move_status(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, swap: &Swap, from: &[SwapStatus], to: SwapStatus, column: &str, now: Timestamp) -> Result<()> {
    let from_list = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
    let done = sqlx::query(&format!("UPDATE shift_swaps SET status = $1, {column} = $2 WHERE org_id = $3 AND id = $4 AND status IN ({from_list})"))
        .bind(to.as_str())
        .bind(now.0)
        .bind(org.0)
        .bind(swap.id.0)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ValidationError::new("swap.status", format!("this request is already {}", current_status(tx, org, swap.id).await?)).into());
    }
    Ok(())
}

async fn current_status(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, id: SwapId) -> Result<SwapStatus> {
    let row = sqlx::query("SELECT status FROM shift_swaps WHERE org_id = $1 AND id = $2")
        .bind(org.0)
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    let s = string(&row, "status")?;
    s.parse().map_err(|e| corrupt("shift_swaps.status", e))
}

/// `from` → approved, with the swap's overrides written (all or nothing).
async fn apply(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, swap: &Swap, from: SwapStatus, now: Timestamp) -> Result<()> {
    move_status(tx, org, swap, &[from], SwapStatus::Approved, "decided_at", now).await?;
    let mut ids = Vec::new();
    for o in swap.new.overrides() {
        ids.push(insert_override(tx, org, swap.new.schedule, &o, now).await?);
    }
    sqlx::query("UPDATE shift_swaps SET override_id = $1, back_override_id = $2 WHERE org_id = $3 AND id = $4")
        .bind(ids.first().map(|i| i.0))
        .bind(ids.get(1).map(|i| i.0))
        .bind(org.0)
        .bind(swap.id.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn swap_row(r: &AnyRow) -> Result<Swap> {
    let status = string(r, "status")?;
    let back = match (opt_ts(r, "back_starts_at")?, opt_ts(r, "back_ends_at")?) {
        (Some(start), Some(end)) => Some(Span { start, end }),
        _ => None,
    };
    Ok(Swap {
        id: SwapId(i64_(r, "id")?),
        new: NewSwap {
            schedule: ScheduleId(i64_(r, "schedule_id")?),
            requester: PersonId(i64_(r, "requester_id")?),
            taker: PersonId(i64_(r, "taker_id")?),
            shift: Span { start: ts(r, "starts_at")?, end: ts(r, "ends_at")? },
            back,
        },
        status: status.parse().map_err(|e| corrupt("shift_swaps.status", e))?,
        created_at: ts(r, "created_at")?,
        answered_at: opt_ts(r, "answered_at")?,
        decided_at: opt_ts(r, "decided_at")?,
        overrides: [opt_i64(r, "override_id")?, opt_i64(r, "back_override_id")?].into_iter().flatten().map(OverrideId).collect(),
    })
}

#[cfg(test)]
mod tests;

//! Fetches the rows `metrics::compute` needs for a date range.

use super::rows::{corrupt, opt_actor, opt_ts, string, ts};
use super::{Result, Store};
use crate::ids::OrgId;
use crate::metrics::{self, Metrics, MetricsRow};
use crate::request::RequestStatus;
use crate::timestamp::Timestamp;
use chrono_tz::Tz;

impl Store {
    /// Metrics of the requests received in `[from, to)`, bucketed in `tz`.
    pub async fn metrics(&self, org: OrgId, from: Timestamp, to: Timestamp, tz: Tz) -> Result<Metrics> {
        let rows = sqlx::query(
            "SELECT status, received_at, answered_at, answered_by, acknowledged_at, acknowledged_by, completed_at, source \
             FROM requests WHERE org_id = $1 AND received_at >= $2 AND received_at < $3",
        )
        .bind(org.0)
        .bind(from.0)
        .bind(to.0)
        .fetch_all(self.pool())
        .await?;
        let rows = rows
            .iter()
            .map(|r| {
                let s = string(r, "status")?;
                Ok(MetricsRow {
                    status: RequestStatus::parse(&s).ok_or_else(|| corrupt("requests.status", &s))?,
                    received_at: ts(r, "received_at")?,
                    answered_at: opt_ts(r, "answered_at")?,
                    answered_by: opt_actor(r, "answered_by")?,
                    acknowledged_at: opt_ts(r, "acknowledged_at")?,
                    acknowledged_by: opt_actor(r, "acknowledged_by")?,
                    completed_at: opt_ts(r, "completed_at")?,
                    source: string(r, "source")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(metrics::compute(&rows, tz, from, to))
    }
}

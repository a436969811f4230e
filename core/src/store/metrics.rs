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

/// Totals since the database began, per organization, for Prometheus (`/metrics`): the dashboard and alert rules
/// take rates of them. Counts only grow, except when retention or an organization's removal deletes rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PagingTotals {
    /// (organization slug, request status, requests now in it)
    pub requests: Vec<(String, String, u64)>,
    /// (slug, channel, notification status, notifications)
    pub notifications: Vec<(String, String, String, u64)>,
    /// (slug, acknowledged requests, their seconds from received to acknowledged, summed)
    pub acknowledged: Vec<(String, u64, f64)>,
}

impl Store {
    pub async fn paging_totals(&self) -> Result<PagingTotals> {
        let count = |r: &sqlx::any::AnyRow, c: &str| -> Result<u64> { Ok(sqlx::Row::try_get::<i64, _>(r, c)?.max(0) as u64) };
        let mut out = PagingTotals::default();
        for r in sqlx::query("SELECT o.slug, r.status, COUNT(*) AS n FROM requests r JOIN organizations o ON o.id = r.org_id GROUP BY o.slug, r.status ORDER BY o.slug, r.status")
            .fetch_all(self.pool())
            .await?
        {
            out.requests.push((string(&r, "slug")?, string(&r, "status")?, count(&r, "n")?));
        }
        for r in sqlx::query(
            "SELECT o.slug, n.channel, n.status, COUNT(*) AS n FROM notifications n JOIN organizations o ON o.id = n.org_id \
             GROUP BY o.slug, n.channel, n.status ORDER BY o.slug, n.channel, n.status",
        )
        .fetch_all(self.pool())
        .await?
        {
            out.notifications.push((string(&r, "slug")?, string(&r, "channel")?, string(&r, "status")?, count(&r, "n")?));
        }
        for r in sqlx::query(
            "SELECT o.slug, COUNT(*) AS n, CAST(COALESCE(SUM(r.acknowledged_at - r.received_at), 0) AS BIGINT) AS ms FROM requests r \
             JOIN organizations o ON o.id = r.org_id WHERE r.acknowledged_at IS NOT NULL GROUP BY o.slug ORDER BY o.slug",
        )
        .fetch_all(self.pool())
        .await?
        {
            out.acknowledged.push((string(&r, "slug")?, count(&r, "n")?, count(&r, "ms")? as f64 / 1000.0));
        }
        Ok(out)
    }
}

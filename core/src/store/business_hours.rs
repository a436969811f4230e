//! Business hours and deferred paging in the store (issue 7 items 1 and 2).
//!
//! An organization's opening times are one `business_hours` row (weekly hours as JSON, in the text form of
//! [`crate::business_hours::parse_day`]) plus its `business_closures`; no row means always open. Saving
//! replaces both in one transaction, so a half-saved week is never read.
//!
//! A "normal" request opened after hours is deferred: `requests.page_at` holds the instant it should page.
//! [`Store::claim_due_deferred`] hands each due request to exactly one caller (one conditional `UPDATE`
//! that moves `page_at` a lease ahead, so a claimer that dies before starting the escalation is covered; PostgreSQL re-checks the condition for a concurrent second instance, SQLite
//! serializes writers), and only while the request is still `received`: one acknowledged or completed on the
//! web before its time is never paged.

use super::requests::{event_kind, insert_event};
use super::rows::{corrupt, i64_, opt_ts, string, ts};
use super::{Result, Store};
use crate::business_hours::{format_day, parse_date, parse_day, weekday_name, BusinessHours, OpenInterval, WEEKDAYS};
use crate::ids::{OrgId, RequestId};
use crate::request::Actor;
use crate::timestamp::Timestamp;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// An organization's stored business hours, with the label of each closure ("Christmas").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBusinessHours {
    pub hours: BusinessHours,
    /// A label for each date in `hours.closures` (empty when none was given).
    pub closure_labels: BTreeMap<NaiveDate, String>,
    pub updated_at: Timestamp,
}

fn weekly_json(hours: &BusinessHours) -> String {
    let map: BTreeMap<&str, String> = WEEKDAYS
        .iter()
        .map(|d| (weekday_name(*d), format_day(hours.day(*d))))
        .collect();
    serde_json::to_string(&map).unwrap_or_default()
}

fn weekly_from_json(json: &str) -> Result<[Vec<OpenInterval>; 7]> {
    let map: BTreeMap<String, String> =
        serde_json::from_str(json).map_err(|e| corrupt("business_hours.weekly", e.to_string()))?;
    let mut weekly: [Vec<OpenInterval>; 7] = Default::default();
    for (i, day) in WEEKDAYS.iter().enumerate() {
        let name = weekday_name(*day);
        weekly[i] = parse_day(name, map.get(name).map(String::as_str).unwrap_or(""))
            .map_err(|e| corrupt("business_hours.weekly", e.to_string()))?;
    }
    Ok(weekly)
}

impl Store {
    /// The organization's business hours, or `None` (always open).
    pub async fn business_hours(&self, org: OrgId) -> Result<Option<StoredBusinessHours>> {
        let Some(row) = sqlx::query("SELECT time_zone, weekly, updated_at FROM business_hours WHERE org_id = $1")
            .bind(org.0)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        let tz_name = string(&row, "time_zone")?;
        let tz = tz_name
            .parse()
            .map_err(|_| corrupt("business_hours.time_zone", &tz_name))?;
        let weekly = weekly_from_json(&string(&row, "weekly")?)?;
        let rows = sqlx::query("SELECT day, label FROM business_closures WHERE org_id = $1 ORDER BY day")
            .bind(org.0)
            .fetch_all(self.pool())
            .await?;
        let mut closure_labels = BTreeMap::new();
        for r in &rows {
            let day = string(r, "day")?;
            let date = parse_date("day", &day).map_err(|_| corrupt("business_closures.day", &day))?;
            closure_labels.insert(date, string(r, "label")?);
        }
        let closures: BTreeSet<NaiveDate> = closure_labels.keys().copied().collect();
        let hours =
            BusinessHours::new(tz, weekly, closures).map_err(|e| corrupt("business_hours.weekly", e.to_string()))?;
        Ok(Some(StoredBusinessHours {
            hours,
            closure_labels,
            updated_at: ts(&row, "updated_at")?,
        }))
    }

    /// Replaces the organization's business hours and closures (labels for dates not in `hours.closures`
    /// are ignored; missing labels are empty).
    pub async fn set_business_hours(
        &self,
        org: OrgId,
        hours: &BusinessHours,
        labels: &BTreeMap<NaiveDate, String>,
        now: Timestamp,
    ) -> Result<()> {
        if let Some((day, _)) = labels.iter().find(|(_, l)| l.len() > 200) {
            return Err(
                crate::ValidationError::new(format!("closures.{day}"), "label must be at most 200 characters").into(),
            );
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO business_hours (org_id, time_zone, weekly, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id) DO UPDATE SET time_zone = excluded.time_zone, weekly = excluded.weekly, updated_at = excluded.updated_at",
        )
        .bind(org.0)
        .bind(hours.time_zone.name())
        .bind(weekly_json(hours))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM business_closures WHERE org_id = $1")
            .bind(org.0)
            .execute(&mut *tx)
            .await?;
        for day in &hours.closures {
            sqlx::query("INSERT INTO business_closures (org_id, day, label) VALUES ($1, $2, $3)")
                .bind(org.0)
                .bind(day.format("%Y-%m-%d").to_string())
                .bind(labels.get(day).map(|l| l.trim()).unwrap_or(""))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the business hours: the organization is always open again.
    pub async fn clear_business_hours(&self, org: OrgId) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM business_closures WHERE org_id = $1")
            .bind(org.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM business_hours WHERE org_id = $1")
            .bind(org.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Defers a `received` request's paging until `page_at` and logs `detail` ("deferred until …") as a
    /// `deferred` event. `false` when the request is no longer `received` (someone took it already).
    pub async fn defer_request(
        &self,
        org: OrgId,
        id: RequestId,
        page_at: Timestamp,
        detail: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let done =
            sqlx::query("UPDATE requests SET page_at = $1 WHERE org_id = $2 AND id = $3 AND status = 'received'")
                .bind(page_at.0)
                .bind(org.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_event(&mut tx, org, id, now, Actor::System, event_kind::DEFERRED, detail).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// When a deferred request will page, while it is still waiting (`received` with `page_at` set).
    pub async fn deferred_until(&self, org: OrgId, id: RequestId) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT page_at FROM requests WHERE org_id = $1 AND id = $2 AND status = 'received'")
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => opt_ts(&r, "page_at")?,
            None => None,
        })
    }

    /// Takes the deferred requests due at `now` (still `received`): each is returned to exactly one caller,
    /// which starts its escalation. Oldest deadline first. The claim is a lease, not a removal: `page_at`
    /// moves [`DEFERRED_CLAIM_LEASE`] ahead, so a request whose claimer died before its escalation started
    /// (the request is still `received`; starting it makes it `notifying`) is due again then, on any instance.
    pub async fn claim_due_deferred(&self, org: OrgId, now: Timestamp) -> Result<Vec<RequestId>> {
        let rows = sqlx::query(
            "UPDATE requests SET page_at = $3 \
             WHERE org_id = $1 AND page_at IS NOT NULL AND page_at <= $2 AND status = 'received' \
             RETURNING id, received_at",
        )
        .bind(org.0)
        .bind(now.0)
        .bind((now + DEFERRED_CLAIM_LEASE).0)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = rows
            .iter()
            .map(|r| Ok((i64_(r, "received_at")?, RequestId(i64_(r, "id")?))))
            .collect::<Result<Vec<_>>>()?;
        claimed.sort();
        Ok(claimed.into_iter().map(|(_, id)| id).collect())
    }
}

/// How long a claimed deferred request waits for its escalation to start before it is due again.
pub const DEFERRED_CLAIM_LEASE: crate::Millis = crate::Millis(5 * 60 * 1000);

#[cfg(test)]
mod tests {
    use super::super::testing::on_each_backend;
    use super::*;
    use crate::request::{NewRequest, RequestStatus};

    const NOW: Timestamp = Timestamp(1_780_000_000_000);

    fn hours() -> BusinessHours {
        let w = "08:00-12:00, 13:00-18:00";
        BusinessHours::parse(
            "Europe/Paris",
            [w, w, w, w, w, "09:00-12:00", ""],
            &["2026-12-25", "2026-01-01"],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn business_hours_round_trip_and_clear() {
        on_each_backend(|db| async move {
            let s = db.store;
            let org = s.create_organization("A", "a", "UTC", NOW).await.unwrap();
            assert_eq!(s.business_hours(org).await.unwrap(), None, "none stored: always open");
            let labels = BTreeMap::from([(NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(), "Christmas".to_string())]);
            s.set_business_hours(org, &hours(), &labels, NOW).await.unwrap();
            let got = s.business_hours(org).await.unwrap().unwrap();
            assert_eq!(got.hours, hours(), "{}", db.label);
            assert_eq!(got.closure_labels.len(), 2);
            assert_eq!(
                got.closure_labels[&NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()],
                "Christmas"
            );
            assert_eq!(got.updated_at, NOW);
            // Saving again replaces everything.
            let fewer = BusinessHours::parse(
                "America/New_York",
                ["09:00-17:00", "", "", "", "", "", ""],
                &[] as &[&str],
            )
            .unwrap();
            s.set_business_hours(org, &fewer, &BTreeMap::new(), NOW + crate::Millis(1))
                .await
                .unwrap();
            let got = s.business_hours(org).await.unwrap().unwrap();
            assert_eq!(got.hours, fewer);
            assert!(got.closure_labels.is_empty());
            // Another organization is untouched.
            let other = s.create_organization("B", "b", "UTC", NOW).await.unwrap();
            assert_eq!(s.business_hours(other).await.unwrap(), None);
            s.clear_business_hours(org).await.unwrap();
            assert_eq!(s.business_hours(org).await.unwrap(), None);
        })
        .await;
    }

    #[tokio::test]
    async fn a_deferred_request_is_claimed_once_when_due_and_never_once_handled() {
        on_each_backend(|db| async move {
            let s = db.store;
            let org = s.create_organization("A", "a", "UTC", NOW).await.unwrap();
            let new = NewRequest {
                caller: "+15550001".into(),
                summary: String::new(),
                call: None,
            };
            let a = s.create_request(org, &new, NOW).await.unwrap();
            let b = s.create_request(org, &new, NOW).await.unwrap();
            let later = NOW + crate::Millis::hours(6);
            assert!(s
                .defer_request(org, a, later, "deferred until 08:00", NOW)
                .await
                .unwrap());
            assert!(s
                .defer_request(org, b, later, "deferred until 08:00", NOW)
                .await
                .unwrap());
            assert_eq!(s.deferred_until(org, a).await.unwrap(), Some(later));
            let events = s.request_events(org, a).await.unwrap();
            assert_eq!(
                (events[1].kind.as_str(), events[1].detail.as_str()),
                (event_kind::DEFERRED, "deferred until 08:00")
            );
            // b is acknowledged on the web before opening time: it is not paged.
            s.acknowledge(org, b, Actor::System, NOW + crate::Millis::hours(1))
                .await
                .unwrap();
            assert_eq!(s.deferred_until(org, b).await.unwrap(), None);
            assert!(
                s.claim_due_deferred(org, later - crate::Millis(1))
                    .await
                    .unwrap()
                    .is_empty(),
                "not due yet"
            );
            // A second instance on the same database races for it: exactly one gets it.
            let second = Store::connect(&db.url).await.unwrap();
            let (x, y) = tokio::join!(s.claim_due_deferred(org, later), second.claim_due_deferred(org, later));
            let mut all = x.unwrap();
            all.extend(y.unwrap());
            assert_eq!(all, vec![a], "{}", db.label);
            assert!(s.claim_due_deferred(org, later).await.unwrap().is_empty());
            assert_eq!(s.request(org, a).await.unwrap().state.status(), RequestStatus::Received);
            // Its claimer died before starting the escalation (still `received`): due again after the lease.
            let retry = later + DEFERRED_CLAIM_LEASE;
            assert!(s.claim_due_deferred(org, retry - crate::Millis(1)).await.unwrap().is_empty());
            assert_eq!(s.claim_due_deferred(org, retry).await.unwrap(), vec![a]);
            // Once its escalation starts (`notifying`) it is never claimed again.
            s.start_notifying(org, a, retry).await.unwrap();
            assert!(s.claim_due_deferred(org, retry + DEFERRED_CLAIM_LEASE).await.unwrap().is_empty());
            // Deferring something no longer received does nothing.
            assert!(!s.defer_request(org, b, later, "x", NOW).await.unwrap());
        })
        .await;
    }
}

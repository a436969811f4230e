//! Deleting an organization and everything it holds (issue 17), saying what was removed.

use super::rows::i64_;
use super::{Result, Store};
use crate::ids::OrgId;

/// What deleting an organization removed: rows per table (only tables that had some). Its recording files and
/// archived objects are the caller's to delete (the store holds only rows); they are filed under the
/// organization's slug.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgRemoval {
    pub rows: Vec<(&'static str, u64)>,
}

impl OrgRemoval {
    pub fn count(&self, table: &str) -> u64 {
        self.rows.iter().find(|(t, _)| *t == table).map_or(0, |(_, n)| *n)
    }
}

/// Every table holding an organization's rows, children before the tables they point to.
const BY_ORG_ID: &[&str] = &[
    "webhook_attempts",
    "webhook_deliveries",
    "webhooks",
    "request_actions",
    "notifications",
    "escalation_work",
    "transcriptions",
    "recordings",
    "request_events",
    "requests",
    "calls",
    "shift_swaps",
    "api_tokens",
    "escalation_targets",
    "escalation_steps",
    "escalation_policies",
    "schedule_overrides",
    "layer_members",
    "schedule_layers",
    "schedules",
    "team_members",
    "teams",
    "notification_rules",
    "contact_methods",
    "ivr_settings",
    "business_hours",
    "business_closures",
    "organization_numbers",
    "integration_keys",
    "sip_accounts",
    "users",
    "people",
];

impl Store {
    /// Deletes organization `org` and all its rows, in one transaction; another organization's rows are
    /// never touched (every statement is by `org_id`).
    pub async fn delete_organization(&self, org: OrgId) -> Result<OrgRemoval> {
        self.organization(org).await?;
        let mut removal = OrgRemoval::default();
        let mut tx = self.pool().begin().await?;
        // Rows keyed through a parent rather than by org_id (registered phones, web sign-ins), before their parents.
        let through: [(&'static str, &str); 2] = [
            ("sip_bindings", "DELETE FROM sip_bindings WHERE account_id IN (SELECT id FROM sip_accounts WHERE org_id = $1)"),
            ("web_sessions", "DELETE FROM web_sessions WHERE user_id IN (SELECT id FROM users WHERE org_id = $1)"),
        ];
        for (table, sql) in through {
            let n = sqlx::query(sql).bind(org.0).execute(&mut *tx).await?.rows_affected();
            removal.rows.push((table, n));
        }
        for table in BY_ORG_ID.iter().copied() {
            let n = sqlx::query(&format!("DELETE FROM {table} WHERE org_id = $1")).bind(org.0).execute(&mut *tx).await?.rows_affected();
            removal.rows.push((table, n));
        }
        sqlx::query("DELETE FROM organizations WHERE id = $1").bind(org.0).execute(&mut *tx).await?;
        tx.commit().await?;
        removal.rows.retain(|(_, n)| *n > 0);
        Ok(removal)
    }

    /// Rows per table that `org` holds now (the operator's "before" count, and tests' "after").
    pub async fn organization_row_counts(&self, org: OrgId) -> Result<Vec<(&'static str, u64)>> {
        let mut out = Vec::new();
        for table in BY_ORG_ID.iter().copied() {
            let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table} WHERE org_id = $1")).bind(org.0).fetch_one(self.pool()).await?;
            let n = i64_(&row, "n")? as u64;
            if n > 0 {
                out.push((table, n));
            }
        }
        Ok(out)
    }
}

//! The numbers each organization answers (issue 17), saved for `core::inbound::route`.

use super::rows::{i64_, opt_ts, string};
use super::{Result, Store, StoreError};
use crate::ids::OrgId;
use crate::inbound::{normalize, OwnedNumber};
use crate::timestamp::Timestamp;

fn source_column(source: Option<&str>) -> String {
    source.map(str::trim).unwrap_or("").to_string()
}

impl Store {
    /// Gives `address` (normalized first) to `org`, for calls from anywhere or only through trunk `source`.
    /// An address another organization owns (for the same source) is a conflict naming it.
    pub async fn add_number(&self, org: OrgId, address: &str, source: Option<&str>, now: Timestamp) -> Result<String> {
        let address = normalize(address)?;
        let source = source_column(source);
        let owner = sqlx::query("SELECT o.slug FROM organization_numbers n JOIN organizations o ON o.id = n.org_id WHERE n.address = $1 AND n.source = $2")
            .bind(&address)
            .bind(&source)
            .fetch_optional(self.pool())
            .await?;
        if let Some(row) = owner {
            let slug = string(&row, "slug")?;
            return Err(StoreError::Conflict(format!("{address} already belongs to organization {slug}")));
        }
        sqlx::query("INSERT INTO organization_numbers (org_id, address, source, created_at) VALUES ($1, $2, $3, $4)")
            .bind(org.0)
            .bind(&address)
            .bind(&source)
            .bind(now.0)
            .execute(self.pool())
            .await?;
        Ok(address)
    }

    /// Takes `address` away from `org`; false when it had no such number.
    pub async fn remove_number(&self, org: OrgId, address: &str) -> Result<bool> {
        let address = normalize(address)?;
        let done = sqlx::query("DELETE FROM organization_numbers WHERE org_id = $1 AND address = $2").bind(org.0).bind(&address).execute(self.pool()).await?;
        Ok(done.rows_affected() > 0)
    }

    /// `org`'s numbers, or every organization's (`None`: the routing table), with whether their
    /// organization is disabled.
    pub async fn numbers(&self, org: Option<OrgId>) -> Result<Vec<OwnedNumber>> {
        let sql = "SELECT n.org_id, n.address, n.source, o.disabled_at FROM organization_numbers n JOIN organizations o ON o.id = n.org_id";
        let rows = match org {
            Some(org) => sqlx::query(&format!("{sql} WHERE n.org_id = $1 ORDER BY n.address")).bind(org.0).fetch_all(self.pool()).await?,
            None => sqlx::query(&format!("{sql} ORDER BY n.org_id, n.address")).fetch_all(self.pool()).await?,
        };
        rows.iter()
            .map(|row| {
                let source = string(row, "source")?;
                Ok(OwnedNumber {
                    org: OrgId(i64_(row, "org_id")?),
                    address: string(row, "address")?,
                    source: (!source.is_empty()).then_some(source),
                    org_disabled: opt_ts(row, "disabled_at")?.is_some(),
                })
            })
            .collect()
    }
}

//! Organizations (tenants): create, look up by slug, and the single-org default.

use super::rows::{i64_, opt_i64, opt_string, opt_ts, string, ts, updated};
use super::{Result, Store, StoreError};
use crate::ids::OrgId;
use crate::timestamp::Timestamp;
use crate::validation::{self, ValidationError};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    /// URL-safe, unique: `demo-apartments`.
    pub slug: String,
    /// Default zone for new schedules and for metrics.
    pub time_zone: Tz,
    pub created_at: Timestamp,
    /// Switched off by the operator (issue 17): its numbers get the unknown-number answer, its people
    /// cannot sign in; its data stays until it is deleted.
    #[serde(default)]
    pub disabled_at: Option<Timestamp>,
    #[serde(default)]
    pub limits: OrgLimits,
}

/// What the operator sets per organization (issue 17); `None`: the server's setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgLimits {
    /// Its calls in progress at once; one more gets 503 (the server's `[sip] max_calls` holds for all).
    pub max_calls: Option<u32>,
    /// Requests per hour that may page phone numbers (trunk calls, texts), instead of `[paging] max_pages_per_hour`.
    pub max_pages_per_hour: Option<u32>,
    /// The number or SIP identity its texts are sent from, instead of `[texts] from`.
    pub text_from: Option<String>,
    /// The espeak-ng voice (language) its alert summaries are spoken with, instead of `[paging] speech_voice`.
    #[serde(default)]
    pub speech_voice: Option<String>,
    /// The language its callers speak (BCP 47: en, en-US, de), for transcription, instead of `[transcription] language`.
    #[serde(default)]
    pub language: Option<String>,
}

/// Name of the organization created on first start of a single-tenant install.
pub const DEFAULT_ORG_NAME: &str = "Default";

const COLUMNS: &str = "id, name, slug, time_zone, created_at, disabled_at, max_calls, max_pages_per_hour, text_from, speech_voice, language";

fn from_row(row: &AnyRow) -> Result<Organization> {
    let tz = string(row, "time_zone")?;
    Ok(Organization {
        id: OrgId(i64_(row, "id")?),
        name: string(row, "name")?,
        slug: string(row, "slug")?,
        time_zone: tz.parse().map_err(|_| super::rows::corrupt("time_zone", &tz))?,
        created_at: ts(row, "created_at")?,
        disabled_at: opt_ts(row, "disabled_at")?,
        limits: OrgLimits {
            max_calls: opt_i64(row, "max_calls")?.map(|n| n.clamp(0, u32::MAX as i64) as u32),
            max_pages_per_hour: opt_i64(row, "max_pages_per_hour")?.map(|n| n.clamp(0, u32::MAX as i64) as u32),
            text_from: opt_string(row, "text_from")?.filter(|s| !s.is_empty()),
            speech_voice: opt_string(row, "speech_voice")?.filter(|s| !s.is_empty()),
            language: opt_string(row, "language")?.filter(|s| !s.is_empty()),
        },
    })
}

/// Lowercase letters, digits and single dashes: safe in URLs and unambiguous to type.
pub fn validate_slug(slug: &str) -> Result<String, ValidationError> {
    let s = slug.trim();
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if !ok {
        return Err(ValidationError::new("slug", "use lowercase letters, digits and dashes, like demo-apartments"));
    }
    Ok(s.to_string())
}

/// A slug derived from a name: "Demo Apartments" → "demo-apartments".
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() { "org".to_string() } else { trimmed.chars().take(63).collect::<String>().trim_end_matches('-').to_string() }
}

impl Store {
    pub async fn create_organization(&self, name: &str, slug: &str, time_zone: &str, now: Timestamp) -> Result<OrgId> {
        let name = validation::non_blank("name", name)?;
        let slug = validate_slug(slug)?;
        let tz = validation::parse_time_zone("time_zone", time_zone)?;
        let row = sqlx::query(
            "INSERT INTO organizations (name, slug, time_zone, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(&slug)
        .bind(tz.name())
        .bind(now.0)
        .fetch_one(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("organization with slug {slug:?}")),
            other => other,
        })?;
        Ok(OrgId(i64_(&row, "id")?))
    }

    pub async fn organization(&self, id: OrgId) -> Result<Organization> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM organizations WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        from_row(&row)
    }

    pub async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM organizations WHERE slug = $1"))
            .bind(slug.trim())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The first organization: the one a single-tenant install routes every call to.
    pub async fn default_organization(&self) -> Result<Option<Organization>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM organizations ORDER BY id LIMIT 1"))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_organizations(&self) -> Result<Vec<Organization>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM organizations ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Renames organization `id` (its slug, which recordings and settings are filed under, stays).
    pub async fn rename_organization(&self, id: OrgId, name: &str) -> Result<()> {
        let name = validation::non_blank("name", name)?;
        let done = sqlx::query("UPDATE organizations SET name = $1 WHERE id = $2").bind(name).bind(id.0).execute(self.pool()).await?;
        updated(done.rows_affected(), id)
    }

    /// Sets organization `id`'s limits and text identity (each `None` goes back to the server's setting).
    pub async fn set_organization_limits(&self, id: OrgId, limits: &OrgLimits) -> Result<()> {
        if let Some(v) = &limits.speech_voice {
            if v.is_empty() || v.len() > 32 || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c)) {
                return Err(ValidationError::new("speech_voice", "an espeak-ng voice name such as en, en-us or de").into());
            }
        }
        if let Some(l) = &limits.language {
            if !crate::transcript::valid_language(l) {
                return Err(ValidationError::new("language", "a language tag such as en, en-US or de").into());
            }
        }
        let done = sqlx::query("UPDATE organizations SET max_calls = $1, max_pages_per_hour = $2, text_from = $3, speech_voice = $4, language = $5 WHERE id = $6")
            .bind(limits.max_calls.map(i64::from))
            .bind(limits.max_pages_per_hour.map(i64::from))
            .bind(limits.text_from.clone().filter(|s| !s.trim().is_empty()))
            .bind(limits.speech_voice.clone())
            .bind(limits.language.clone())
            .bind(id.0)
            .execute(self.pool())
            .await?;
        updated(done.rows_affected(), id)
    }

    /// Switches organization `id` off (`Some(now)`) or on again (`None`).
    pub async fn set_organization_disabled(&self, id: OrgId, disabled_at: Option<Timestamp>) -> Result<()> {
        let done = sqlx::query("UPDATE organizations SET disabled_at = $1 WHERE id = $2")
            .bind(disabled_at.map(|t| t.0))
            .bind(id.0)
            .execute(self.pool())
            .await?;
        updated(done.rows_affected(), id)
    }

    /// The organization an operator names by slug or id.
    pub async fn find_organization(&self, slug_or_id: &str) -> Result<Organization> {
        if let Some(org) = self.organization_by_slug(slug_or_id).await? {
            return Ok(org);
        }
        match slug_or_id.trim().trim_start_matches("org:").parse::<i64>() {
            Ok(id) => self.organization(OrgId(id)).await,
            Err(_) => Err(StoreError::NotFound(format!("organization {slug_or_id:?}"))),
        }
    }

    /// Returns the default organization, creating "Default" (UTC) if there is none. Two
    /// instances starting together may race; the loser's insert hits the unique slug and it
    /// reads the winner's row.
    pub async fn ensure_default_organization(&self) -> Result<Organization> {
        if let Some(org) = self.default_organization().await? {
            return Ok(org);
        }
        match self.create_organization(DEFAULT_ORG_NAME, "default", "UTC", Timestamp::now()).await {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        self.default_organization()
            .await?
            .ok_or_else(|| StoreError::NotFound("default organization".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Demo Apartments"), "demo-apartments");
        assert_eq!(slugify("  Ünïcode & Co.  "), "n-code-co");
        assert_eq!(slugify("!!!"), "org");
        assert!(validate_slug("demo-apartments").is_ok());
        for bad in ["", "Demo", "a--b", "-a", "a b", "a_b"] {
            assert_eq!(validate_slug(bad).unwrap_err().field, "slug");
        }
    }
}

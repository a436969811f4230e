//! The IVR menu an organization edits on the web, and its uploaded greeting.
//!
//! The domain crate does not know the IVR's types (that is `oncall-ivr`): the menu is stored as
//! the JSON the web admin validated, and the greeting as a storage key relative to the data
//! directory. The binary reads both when a call comes in (falling back to the config file's
//! `[ivr]` section when an organization has never saved one).

use super::rows::{opt_string, string, ts};
use super::{Result, Store};
use crate::ids::OrgId;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrSettings {
    /// `oncall_ivr::IvrConfig` as JSON.
    pub menu_json: String,
    /// Path of the 8 kHz greeting WAV relative to `storage.data_dir`, if one was uploaded.
    pub greeting_key: Option<String>,
    pub updated_at: Timestamp,
}

impl Store {
    pub async fn ivr_settings(&self, org: OrgId) -> Result<Option<IvrSettings>> {
        let row = sqlx::query("SELECT menu_json, greeting_key, updated_at FROM ivr_settings WHERE org_id = $1")
            .bind(org.0)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(IvrSettings { menu_json: string(&r, "menu_json")?, greeting_key: opt_string(&r, "greeting_key")?, updated_at: ts(&r, "updated_at")? })
        })
        .transpose()
    }

    /// Saves the menu (keeps the greeting).
    pub async fn set_ivr_menu(&self, org: OrgId, menu_json: &str, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE ivr_settings SET menu_json = $1, updated_at = $2 WHERE org_id = $3")
            .bind(menu_json)
            .bind(now.0)
            .bind(org.0)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            sqlx::query("INSERT INTO ivr_settings (org_id, menu_json, greeting_key, updated_at) VALUES ($1, $2, NULL, $3)")
                .bind(org.0)
                .bind(menu_json)
                .bind(now.0)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Records the uploaded greeting; `default_menu_json` is stored if the org has no menu yet.
    pub async fn set_ivr_greeting(&self, org: OrgId, greeting_key: Option<&str>, default_menu_json: &str, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE ivr_settings SET greeting_key = $1, updated_at = $2 WHERE org_id = $3")
            .bind(greeting_key)
            .bind(now.0)
            .bind(org.0)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            sqlx::query("INSERT INTO ivr_settings (org_id, menu_json, greeting_key, updated_at) VALUES ($1, $2, $3, $4)")
                .bind(org.0)
                .bind(default_menu_json)
                .bind(greeting_key)
                .bind(now.0)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }
}

//! Logins of the web admin: e-mail + Argon2id password hash.
//!
//! A user belongs to one organization and is linked to the person with the same e-mail there,
//! if any (so "my shifts" works after login). E-mails are unique across organizations because
//! login happens before we know the organization.

use super::rows::{corrupt, i64_, opt_i64, opt_ts, string};
use super::{one_row, Result, Store, StoreError};
use crate::ids::{OrgId, PersonId, UserId};
use crate::password::{self, PasswordError};
use crate::person::Role;
use crate::timestamp::Timestamp;
use crate::validation::{self, ValidationError};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub org: OrgId,
    pub person: Option<PersonId>,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// Disabled users cannot log in and their sessions and API tokens stop working.
    #[serde(default)]
    pub disabled: bool,
}

pub(super) const USER_COLUMNS: &str = "id, org_id, person_id, name, email, role, disabled_at";

pub(super) fn user_from_row(row: &AnyRow) -> Result<User> {
    let role = string(row, "role")?;
    Ok(User {
        id: UserId(i64_(row, "id")?),
        org: OrgId(i64_(row, "org_id")?),
        person: opt_i64(row, "person_id")?.map(PersonId),
        name: string(row, "name")?,
        email: string(row, "email")?,
        role: role.parse().map_err(|_| corrupt("users.role", &role))?,
        disabled: opt_i64(row, "disabled_at")?.is_some(),
    })
}

impl From<PasswordError> for StoreError {
    fn from(e: PasswordError) -> StoreError {
        match e {
            PasswordError::TooShort | PasswordError::TooLong | PasswordError::Common => {
                // The field is named already: "must be at least 12 characters", not "password: must…".
                let message = e.to_string();
                StoreError::Invalid(ValidationError::new("password", message.trim_start_matches("password: ")))
            }
            PasswordError::Hash(m) => StoreError::Password(m),
        }
    }
}

/// Whether `password` matches `row`'s `password_hash` (off the async workers). Without a row it burns
/// comparable time, so unknown e-mails are not faster to reject, and says no.
pub(super) async fn password_matches(row: Option<&AnyRow>, password: &str) -> Result<bool> {
    let Some(row) = row else {
        let _ = tokio::task::spawn_blocking(|| password::hash("timing-equalizer")).await;
        return Ok(false);
    };
    let stored = string(row, "password_hash")?;
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || password::verify(&pw, &stored)).await.map_err(|e| StoreError::Password(e.to_string()))
}

/// Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
pub(super) async fn hash_blocking(password: &str) -> Result<String> {
    let p = password.to_string();
    tokio::task::spawn_blocking(move || password::hash(&p))
        .await
        .map_err(|e| StoreError::Password(e.to_string()))?
        .map_err(StoreError::from)
}

impl Store {
    pub async fn add_user(&self, org: OrgId, name: &str, email: &str, role: Role, password: &str) -> Result<UserId> {
        let name = validation::non_blank("name", name)?;
        let email = validation::email("email", email)?;
        let hash = hash_blocking(password).await?;
        let person = self.person_by_email(org, &email).await?;
        let row = sqlx::query(
            "INSERT INTO users (org_id, person_id, name, email, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(org.0)
        .bind(person.map(|p| p.0))
        .bind(&name)
        .bind(&email)
        .bind(role.as_str())
        .bind(hash)
        .bind(Timestamp::now().0)
        .fetch_one(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("user with e-mail {email:?}")),
            other => other,
        })?;
        Ok(UserId(i64_(&row, "id")?))
    }

    pub async fn set_password(&self, email: &str, password: &str) -> Result<()> {
        let hash = hash_blocking(password).await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE email = $2")
            .bind(hash)
            .bind(email.trim().to_lowercase())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {email:?}")));
        }
        Ok(())
    }

    /// The user if `password` is right; `None` for a wrong password, an unknown e-mail, a
    /// disabled user or one of a disabled organization (indistinguishable on purpose).
    pub async fn verify_password(&self, email: &str, password: &str) -> Result<Option<User>> {
        let cols = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
        let row = sqlx::query(&format!(
            "SELECT {cols}, u.password_hash, o.disabled_at AS org_disabled_at FROM users u JOIN organizations o ON o.id = u.org_id WHERE u.email = $1"
        ))
            .bind(email.trim().to_lowercase())
            .fetch_optional(self.pool())
            .await?;
        let ok = password_matches(row.as_ref(), password).await?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row)?;
        if !ok || user.disabled || opt_ts(&row, "org_disabled_at")?.is_some() {
            return Ok(None);
        }
        Ok(Some(user))
    }

    /// One user of the organization.
    pub async fn user(&self, org: OrgId, id: UserId) -> Result<User> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND id = $2"))
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        user_from_row(&row)
    }

    /// Every login of the organization, by name.
    pub async fn list_users(&self, org: OrgId) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 ORDER BY name, id"))
            .bind(org.0)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// The login linked to a person, if any.
    pub async fn user_for_person(&self, org: OrgId, person: PersonId) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND person_id = $2 ORDER BY id LIMIT 1"))
            .bind(org.0)
            .bind(person.0)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Changes a user's own password after checking the current one. `Ok(false)` if the
    /// current password is wrong.
    pub async fn change_password(&self, org: OrgId, id: UserId, current: &str, new: &str) -> Result<bool> {
        let user = self.user(org, id).await?;
        if self.verify_password(&user.email, current).await?.is_none() {
            return Ok(false);
        }
        let hash = hash_blocking(new).await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE org_id = $2 AND id = $3")
            .bind(hash)
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        Ok(true)
    }

    /// Disables or re-enables a login; disabling also ends its sessions.
    pub async fn set_user_disabled(&self, org: OrgId, id: UserId, disabled: bool, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE users SET disabled_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(disabled.then_some(now.0))
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        one_row(&done, id)?;
        if disabled {
            self.delete_user_sessions(id, None).await?;
        }
        Ok(())
    }

    /// Sets the role of a login (a manager promoting or demoting someone).
    pub async fn set_user_role(&self, org: OrgId, id: UserId, role: Role) -> Result<()> {
        let done = sqlx::query("UPDATE users SET role = $1 WHERE org_id = $2 AND id = $3")
            .bind(role.as_str())
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        one_row(&done, id)
    }
}

//! Logins of the web admin: e-mail + Argon2id password hash.
//!
//! A user belongs to one organization and is linked to the person with the same e-mail there,
//! if any (so "my shifts" works after login). E-mails are unique across organizations because
//! login happens before we know the organization.

use super::rows::{corrupt, i64_, opt_i64, string};
use super::{Result, Store, StoreError};
use crate::ids::{OrgId, PersonId, UserId};
use crate::password::{self, PasswordError};
use crate::person::Role;
use crate::timestamp::Timestamp;
use crate::validation::{self, ValidationError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub org: OrgId,
    pub person: Option<PersonId>,
    pub name: String,
    pub email: String,
    pub role: Role,
}

impl From<PasswordError> for StoreError {
    fn from(e: PasswordError) -> StoreError {
        match e {
            PasswordError::TooShort | PasswordError::TooLong => {
                StoreError::Invalid(ValidationError::new("password", e.to_string()))
            }
            PasswordError::Hash(m) => StoreError::Password(m),
        }
    }
}

/// Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
async fn hash_blocking(password: &str) -> Result<String> {
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

    /// The user if `password` is right; `None` for a wrong password or an unknown e-mail
    /// (indistinguishable on purpose).
    pub async fn verify_password(&self, email: &str, password: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, org_id, person_id, name, email, role, password_hash FROM users WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            // Burn comparable time so unknown e-mails are not faster to reject.
            let _ = tokio::task::spawn_blocking(|| password::hash("timing-equalizer")).await;
            return Ok(None);
        };
        let stored = string(&row, "password_hash")?;
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &stored))
            .await
            .map_err(|e| StoreError::Password(e.to_string()))?;
        if !ok {
            return Ok(None);
        }
        let role = string(&row, "role")?;
        Ok(Some(User {
            id: UserId(i64_(&row, "id")?),
            org: OrgId(i64_(&row, "org_id")?),
            person: opt_i64(&row, "person_id")?.map(PersonId),
            name: string(&row, "name")?,
            email: string(&row, "email")?,
            role: role.parse().map_err(|_| corrupt("users.role", &role))?,
        }))
    }
}

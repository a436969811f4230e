//! Web login sessions and per-user API tokens.
//!
//! Both are bearer secrets from [`crate::secret`]: the caller gets the token once, the database
//! keeps its SHA-256 digest. A session carries its own CSRF token (random, stored in clear: it is
//! not a credential by itself, only proof that a form came from a page we rendered). Looking a
//! session or token up also checks that its user and their organization are not disabled, so
//! disabling someone (or the operator disabling their organization) logs them out everywhere at once.

use super::rows::{i64_, opt_ts, string, ts};
use super::users::{user_from_row, USER_COLUMNS};
use super::{Result, Store, StoreError};
use crate::ids::{OrgId, UserId};
use crate::secret;
use crate::timestamp::{Millis, Timestamp};
use crate::validation;
use serde::{Deserialize, Serialize};

pub use super::users::User;

/// A logged-in session: who, and the CSRF token its forms must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

/// A session just created: `token` goes into the cookie and is not stored anywhere.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

/// An API token as listed (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl Store {
    /// Opens a session for `user` lasting `ttl`.
    pub async fn create_session(&self, user: &User, now: Timestamp, ttl: Millis) -> Result<NewSession> {
        let token = secret::new_token();
        let csrf_token = secret::new_token();
        let expires_at = now + ttl;
        sqlx::query("INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(secret::digest(&token))
            .bind(user.id.0)
            .bind(&csrf_token)
            .bind(now.0)
            .bind(expires_at.0)
            .execute(self.pool())
            .await?;
        Ok(NewSession { token, session: Session { user: user.clone(), csrf_token, expires_at } })
    }

    /// The live session for a cookie value, or `None` (unknown, expired, user disabled).
    pub async fn session(&self, token: &str, now: Timestamp) -> Result<Option<Session>> {
        let cols = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
        let row = sqlx::query(&format!(
            "SELECT {cols}, s.csrf_token, s.expires_at FROM web_sessions s JOIN users u ON u.id = s.user_id \
             JOIN organizations o ON o.id = u.org_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL AND o.disabled_at IS NULL"
        ))
        .bind(secret::digest(token))
        .bind(now.0)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Session { user: user_from_row(&row)?, csrf_token: string(&row, "csrf_token")?, expires_at: ts(&row, "expires_at")? }))
    }

    /// Logs out one session (no error if it is already gone).
    pub async fn delete_session(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1").bind(secret::digest(token)).execute(self.pool()).await?;
        Ok(())
    }

    /// Logs a user out everywhere except, optionally, the session `keep` (after a password change).
    pub async fn delete_user_sessions(&self, user: UserId, keep: Option<&str>) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(user.0)
            .bind(keep.map(secret::digest).unwrap_or_default())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_sessions(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1").bind(now.0).execute(self.pool()).await?;
        Ok(done.rows_affected())
    }

    // ---- API tokens ----

    /// Creates a token for `user`; returns the secret, shown to the user once.
    pub async fn create_api_token(&self, user: &User, name: &str, now: Timestamp) -> Result<String> {
        let name = validation::non_blank("name", name)?;
        let token = format!("oc_{}", secret::new_token());
        sqlx::query(
            "INSERT INTO api_tokens (org_id, user_id, name, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.org.0)
        .bind(user.id.0)
        .bind(&name)
        .bind(secret::digest(&token))
        .bind(token.chars().take(10).collect::<String>())
        .bind(now.0)
        .execute(self.pool())
        .await?;
        Ok(token)
    }

    /// The user a bearer token belongs to (not revoked, user not disabled); stamps its use.
    pub async fn api_token_user(&self, token: &str, now: Timestamp) -> Result<Option<User>> {
        let cols = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
        let hash = secret::digest(token.trim());
        let row = sqlx::query(&format!(
            "SELECT {cols}, t.id AS token_id FROM api_tokens t JOIN users u ON u.id = t.user_id AND u.org_id = t.org_id \
             JOIN organizations o ON o.id = u.org_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL AND o.disabled_at IS NULL"
        ))
        .bind(&hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(i64_(&row, "token_id")?)
            .execute(self.pool())
            .await?;
        Ok(Some(user_from_row(&row)?))
    }

    /// A user's live tokens, newest first.
    pub async fn list_api_tokens(&self, org: OrgId, user: UserId) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, name, prefix, created_at, last_used_at FROM api_tokens \
             WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC",
        )
        .bind(org.0)
        .bind(user.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiToken {
                    id: i64_(r, "id")?,
                    name: string(r, "name")?,
                    prefix: string(r, "prefix")?,
                    created_at: ts(r, "created_at")?,
                    last_used_at: opt_ts(r, "last_used_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of the user's own tokens.
    pub async fn revoke_api_token(&self, org: OrgId, user: UserId, id: i64, now: Timestamp) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE org_id = $2 AND user_id = $3 AND id = $4 AND revoked_at IS NULL",
        )
        .bind(now.0)
        .bind(org.0)
        .bind(user.0)
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("API token {id}")));
        }
        Ok(())
    }
}


//! Operators (issue 17): the people who run the server for its client organizations. They belong to no
//! organization; their sessions live in `operator_sessions`, apart from the organizations' web sessions,
//! so neither kind of cookie opens the other's pages. Passwords and session tokens are kept as for users
//! (Argon2 hashes, SHA-256 digests of bearer secrets).

use super::rows::{i64_, string, ts};
use super::users::{hash_blocking, password_matches};
use super::{Result, Store, StoreError};
use crate::secret;
use crate::timestamp::{Millis, Timestamp};
use crate::validation;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operator {
    pub id: i64,
    pub name: String,
    pub email: String,
}

/// A signed-in operator and the CSRF token their forms must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSession {
    pub operator: Operator,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

fn operator_from_row(row: &sqlx::any::AnyRow) -> Result<Operator> {
    Ok(Operator { id: i64_(row, "id")?, name: string(row, "name")?, email: string(row, "email")? })
}

impl Store {
    /// Adds an operator; a taken e-mail is a conflict.
    pub async fn add_operator(&self, name: &str, email: &str, password: &str, now: Timestamp) -> Result<i64> {
        let name = validation::non_blank("name", name)?;
        let email = validation::email("email", email)?;
        let hash = hash_blocking(password).await?;
        let row = sqlx::query("INSERT INTO operators (name, email, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(&name)
            .bind(&email)
            .bind(hash)
            .bind(now.0)
            .fetch_one(self.pool())
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("operator with e-mail {email:?}")),
                other => other,
            })?;
        i64_(&row, "id")
    }

    /// Sets an operator's password and signs them out everywhere.
    pub async fn set_operator_password(&self, email: &str, password: &str) -> Result<()> {
        let hash = hash_blocking(password).await?;
        let email = email.trim().to_lowercase();
        let done = sqlx::query("UPDATE operators SET password_hash = $1 WHERE email = $2").bind(hash).bind(&email).execute(self.pool()).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("operator {email:?}")));
        }
        sqlx::query("DELETE FROM operator_sessions WHERE operator_id IN (SELECT id FROM operators WHERE email = $1)").bind(&email).execute(self.pool()).await?;
        Ok(())
    }

    pub async fn list_operators(&self) -> Result<Vec<Operator>> {
        let rows = sqlx::query("SELECT id, name, email FROM operators ORDER BY email").fetch_all(self.pool()).await?;
        rows.iter().map(operator_from_row).collect()
    }

    /// The operator if `password` is right; `None` otherwise (an unknown e-mail takes as long).
    pub async fn verify_operator_password(&self, email: &str, password: &str) -> Result<Option<Operator>> {
        let row = sqlx::query("SELECT id, name, email, password_hash FROM operators WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(self.pool())
            .await?;
        let ok = password_matches(row.as_ref(), password).await?;
        row.filter(|_| ok).map(|r| operator_from_row(&r)).transpose()
    }

    /// Opens a session for `operator` lasting `ttl`: the cookie's token (not stored) and the session.
    pub async fn create_operator_session(&self, operator: &Operator, now: Timestamp, ttl: Millis) -> Result<(String, OperatorSession)> {
        let token = secret::new_token();
        let csrf_token = secret::new_token();
        let expires_at = now + ttl;
        sqlx::query("INSERT INTO operator_sessions (token_hash, operator_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(secret::digest(&token))
            .bind(operator.id)
            .bind(&csrf_token)
            .bind(now.0)
            .bind(expires_at.0)
            .execute(self.pool())
            .await?;
        Ok((token, OperatorSession { operator: operator.clone(), csrf_token, expires_at }))
    }

    /// The live operator session for a cookie value, or `None`.
    pub async fn operator_session(&self, token: &str, now: Timestamp) -> Result<Option<OperatorSession>> {
        let row = sqlx::query(
            "SELECT o.id, o.name, o.email, s.csrf_token, s.expires_at FROM operator_sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(secret::digest(token))
        .bind(now.0)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(OperatorSession { operator: operator_from_row(&row)?, csrf_token: string(&row, "csrf_token")?, expires_at: ts(&row, "expires_at")? }))
    }

    pub async fn delete_operator_session(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM operator_sessions WHERE token_hash = $1").bind(secret::digest(token)).execute(self.pool()).await?;
        Ok(())
    }
}

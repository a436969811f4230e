//! SIP accounts of people (their own phones register to OnCall) and the devices' current bindings.
//!
//! The domain crate knows nothing of SIP: an account is a username and two opaque digest keys (HA1 in
//! hex, computed by the caller for a realm), a binding is a contact URI with a source address and an
//! expiry. The registrar in the binary keeps the live state in memory and writes every change here, so
//! a restarted (or another) instance can load the bindings that have not expired.

use super::rows::{i64_, string, ts, u32_};
use super::{one_row, Result, Store, StoreError};
use crate::ids::{OrgId, PersonId};
use crate::timestamp::Timestamp;
use crate::validation::ValidationError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAccount {
    pub id: i64,
    pub org: OrgId,
    pub person: PersonId,
    pub username: String,
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub created_at: Timestamp,
}

/// A registered device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipBinding {
    pub username: String,
    pub contact: String,
    /// `ip:port` the REGISTER came from.
    pub source_addr: String,
    /// `udp` or `tcp`.
    pub transport: String,
    pub expires_at: Timestamp,
    pub call_id: String,
    pub cseq: u32,
}

/// What `set_sip_account` stores: the keys are lower-case hex `H(username:realm:password)` per algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSipAccount<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub ha1_md5: &'a str,
    pub ha1_sha256: &'a str,
}

const ACCOUNT_COLUMNS: &str = "id, org_id, person_id, username, realm, ha1_md5, ha1_sha256, created_at";

fn account(r: &sqlx::any::AnyRow) -> Result<SipAccount> {
    Ok(SipAccount {
        id: i64_(r, "id")?,
        org: OrgId(i64_(r, "org_id")?),
        person: PersonId(i64_(r, "person_id")?),
        username: string(r, "username")?,
        realm: string(r, "realm")?,
        ha1_md5: string(r, "ha1_md5")?,
        ha1_sha256: string(r, "ha1_sha256")?,
        created_at: ts(r, "created_at")?,
    })
}

fn binding(r: &sqlx::any::AnyRow) -> Result<SipBinding> {
    Ok(SipBinding {
        username: string(r, "username")?,
        contact: string(r, "contact")?,
        source_addr: string(r, "source_addr")?,
        transport: string(r, "transport")?,
        expires_at: ts(r, "expires_at")?,
        call_id: string(r, "call_id")?,
        cseq: u32_(r, "cseq")?,
    })
}

/// A SIP username: what phones put before the `@`, so letters, digits and `-_.!~*'()+` only.
pub fn validate_sip_username(username: &str) -> Result<(), ValidationError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "username",
            "1 to 64 letters, digits or - _ . ! ~ * ' ( ) +",
        ))
    }
}

fn validate_keys(ha1_md5: &str, ha1_sha256: &str) -> Result<(), ValidationError> {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(ha1_md5, 32) {
        return Err(ValidationError::new("ha1_md5", "must be 32 hex digits"));
    }
    if !hex(ha1_sha256, 64) {
        return Err(ValidationError::new("ha1_sha256", "must be 64 hex digits"));
    }
    Ok(())
}

impl Store {
    /// Creates the person's account `username`, or replaces its keys when the person already has it.
    /// A username taken by someone else is a Conflict.
    pub async fn set_sip_account(
        &self,
        org: OrgId,
        person: PersonId,
        account: &NewSipAccount<'_>,
        now: Timestamp,
    ) -> Result<i64> {
        let NewSipAccount {
            username,
            realm,
            ha1_md5,
            ha1_sha256,
        } = *account;
        validate_sip_username(username)?;
        validate_keys(ha1_md5, ha1_sha256)?;
        let (md5, sha) = (ha1_md5.to_ascii_lowercase(), ha1_sha256.to_ascii_lowercase());
        let existing = sqlx::query("SELECT id, org_id, person_id FROM sip_accounts WHERE username = $1")
            .bind(username)
            .fetch_optional(self.pool())
            .await?;
        if let Some(r) = existing {
            if i64_(&r, "org_id")? != org.0 || i64_(&r, "person_id")? != person.0 {
                return Err(StoreError::Conflict(format!("SIP username {username}")));
            }
            let id = i64_(&r, "id")?;
            let done = sqlx::query("UPDATE sip_accounts SET realm = $1, ha1_md5 = $2, ha1_sha256 = $3, updated_at = $4 WHERE id = $5 AND org_id = $6")
                .bind(realm)
                .bind(&md5)
                .bind(&sha)
                .bind(now.0)
                .bind(id)
                .bind(org.0)
                .execute(self.pool())
                .await?;
            one_row(&done, username)?;
            return Ok(id);
        }
        let row = sqlx::query(
            "INSERT INTO sip_accounts (org_id, person_id, username, realm, ha1_md5, ha1_sha256, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(org.0)
        .bind(person.0)
        .bind(username)
        .bind(realm)
        .bind(&md5)
        .bind(&sha)
        .bind(now.0)
        .fetch_one(self.pool())
        .await?;
        i64_(&row, "id")
    }

    /// Every account of every organization (usernames are unique installation-wide), by username.
    pub async fn all_sip_accounts(&self) -> Result<Vec<SipAccount>> {
        let rows = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM sip_accounts ORDER BY username"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(account).collect()
    }

    /// One person's accounts.
    pub async fn sip_accounts_of(&self, org: OrgId, person: PersonId) -> Result<Vec<SipAccount>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM sip_accounts WHERE org_id = $1 AND person_id = $2 ORDER BY username"
        ))
        .bind(org.0)
        .bind(person.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(account).collect()
    }

    /// Deletes an account and its bindings.
    pub async fn delete_sip_account(&self, org: OrgId, username: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM sip_bindings WHERE account_id IN (SELECT id FROM sip_accounts WHERE org_id = $1 AND username = $2)")
            .bind(org.0)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM sip_accounts WHERE org_id = $1 AND username = $2")
            .bind(org.0)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        one_row(&done, username)?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a device's registration (added or refreshed), keyed by (account, contact).
    pub async fn upsert_sip_binding(&self, b: &SipBinding, now: Timestamp) -> Result<()> {
        let Some(r) = sqlx::query("SELECT id FROM sip_accounts WHERE username = $1")
            .bind(&b.username)
            .fetch_optional(self.pool())
            .await?
        else {
            return Err(StoreError::NotFound(format!("SIP account {}", b.username)));
        };
        let account = i64_(&r, "id")?;
        let done = sqlx::query(
            "UPDATE sip_bindings SET source_addr = $1, transport = $2, expires_at = $3, call_id = $4, cseq = $5, updated_at = $6 \
             WHERE account_id = $7 AND contact = $8",
        )
        .bind(&b.source_addr)
        .bind(&b.transport)
        .bind(b.expires_at.0)
        .bind(&b.call_id)
        .bind(b.cseq as i64)
        .bind(now.0)
        .bind(account)
        .bind(&b.contact)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO sip_bindings (account_id, contact, source_addr, transport, expires_at, call_id, cseq, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(account)
            .bind(&b.contact)
            .bind(&b.source_addr)
            .bind(&b.transport)
            .bind(b.expires_at.0)
            .bind(&b.call_id)
            .bind(b.cseq as i64)
            .bind(now.0)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// Forgets one device of an account (unregistered or expired); absent rows are fine.
    pub async fn remove_sip_binding(&self, username: &str, contact: &str) -> Result<()> {
        sqlx::query("DELETE FROM sip_bindings WHERE contact = $1 AND account_id IN (SELECT id FROM sip_accounts WHERE username = $2)")
            .bind(contact)
            .bind(username)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every binding that has not expired at `now` (what a starting instance loads).
    pub async fn live_sip_bindings(&self, now: Timestamp) -> Result<Vec<SipBinding>> {
        let rows = sqlx::query(
            "SELECT a.username, b.contact, b.source_addr, b.transport, b.expires_at, b.call_id, b.cseq \
             FROM sip_bindings b JOIN sip_accounts a ON a.id = b.account_id WHERE b.expires_at > $1 ORDER BY a.username, b.id",
        )
        .bind(now.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(binding).collect()
    }

    /// A person's devices registered at `now`, over all their accounts.
    pub async fn sip_bindings_of(&self, org: OrgId, person: PersonId, now: Timestamp) -> Result<Vec<SipBinding>> {
        let rows = sqlx::query(
            "SELECT a.username, b.contact, b.source_addr, b.transport, b.expires_at, b.call_id, b.cseq \
             FROM sip_bindings b JOIN sip_accounts a ON a.id = b.account_id \
             WHERE a.org_id = $1 AND a.person_id = $2 AND b.expires_at > $3 ORDER BY b.id",
        )
        .bind(org.0)
        .bind(person.0)
        .bind(now.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(binding).collect()
    }

    /// Deletes bindings that expired before `now`; returns how many.
    pub async fn purge_expired_sip_bindings(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sip_bindings WHERE expires_at <= $1")
            .bind(now.0)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{on_each_backend, TestDb};
    use super::*;
    use crate::person::{NewPerson, Role};

    const NOW: Timestamp = Timestamp(1_717_200_000_000);
    const MD5: &str = "0123456789abcdef0123456789abcdef";

    fn sha() -> String {
        "ab".repeat(32)
    }

    async fn person(s: &Store, org: OrgId, name: &str) -> PersonId {
        let p = NewPerson {
            name: name.into(),
            role: Some(Role::Employee),
            time_zone: "UTC".into(),
            phones: vec!["+44 20 7946 0001".into()],
            ..NewPerson::default()
        };
        s.add_person(org, &p, NOW).await.unwrap()
    }

    fn device(username: &str, contact: &str, expires_at: Timestamp, cseq: u32) -> SipBinding {
        SipBinding {
            username: username.into(),
            contact: contact.into(),
            source_addr: "192.0.2.10:5060".into(),
            transport: "udp".into(),
            expires_at,
            call_id: "cid".into(),
            cseq,
        }
    }

    #[tokio::test]
    async fn accounts_and_bindings() {
        on_each_backend(|db: TestDb| async move {
            let s = &db.store;
            let org = s.create_organization("Org", "org", "UTC", NOW).await.unwrap();
            let other = s.create_organization("Other", "other", "UTC", NOW).await.unwrap();
            let ann = person(s, org, "Ann").await;
            let bob = person(s, org, "Bob").await;
            let id = s
                .set_sip_account(
                    org,
                    ann,
                    &NewSipAccount {
                        username: "ann",
                        realm: "oncall",
                        ha1_md5: MD5,
                        ha1_sha256: &sha(),
                    },
                    NOW,
                )
                .await
                .unwrap();
            // Same person again: keys replaced, same row.
            let upper = MD5.to_uppercase();
            assert_eq!(
                s.set_sip_account(
                    org,
                    ann,
                    &NewSipAccount {
                        username: "ann",
                        realm: "oncall",
                        ha1_md5: &upper,
                        ha1_sha256: &sha()
                    },
                    NOW
                )
                .await
                .unwrap(),
                id
            );
            assert!(
                matches!(
                    s.set_sip_account(
                        org,
                        bob,
                        &NewSipAccount {
                            username: "ann",
                            realm: "oncall",
                            ha1_md5: MD5,
                            ha1_sha256: &sha()
                        },
                        NOW
                    )
                    .await,
                    Err(StoreError::Conflict(_))
                ),
                "{}",
                db.label
            );
            assert!(matches!(
                s.set_sip_account(
                    org,
                    bob,
                    &NewSipAccount {
                        username: "bad user",
                        realm: "oncall",
                        ha1_md5: MD5,
                        ha1_sha256: &sha()
                    },
                    NOW
                )
                .await,
                Err(StoreError::Invalid(_))
            ));
            assert!(matches!(
                s.set_sip_account(
                    org,
                    bob,
                    &NewSipAccount {
                        username: "bob",
                        realm: "oncall",
                        ha1_md5: "xyz",
                        ha1_sha256: &sha()
                    },
                    NOW
                )
                .await,
                Err(StoreError::Invalid(_))
            ));
            // A person of another organization cannot be the owner.
            assert!(s
                .set_sip_account(
                    other,
                    ann,
                    &NewSipAccount {
                        username: "ann2",
                        realm: "oncall",
                        ha1_md5: MD5,
                        ha1_sha256: &sha()
                    },
                    NOW
                )
                .await
                .is_err());
            s.set_sip_account(
                org,
                bob,
                &NewSipAccount {
                    username: "bob",
                    realm: "oncall",
                    ha1_md5: MD5,
                    ha1_sha256: &sha(),
                },
                NOW,
            )
            .await
            .unwrap();
            let all = s.all_sip_accounts().await.unwrap();
            assert_eq!(
                all.iter().map(|a| a.username.as_str()).collect::<Vec<_>>(),
                vec!["ann", "bob"]
            );
            assert_eq!(all[0].ha1_md5, MD5, "stored lower-case");
            assert_eq!(s.sip_accounts_of(org, ann).await.unwrap().len(), 1);

            let later = Timestamp(NOW.0 + 3_600_000);
            s.upsert_sip_binding(&device("ann", "sip:ann@192.0.2.10", later, 1), NOW)
                .await
                .unwrap();
            s.upsert_sip_binding(&device("ann", "sip:ann@192.0.2.10", later, 2), NOW)
                .await
                .unwrap();
            s.upsert_sip_binding(&device("ann", "sip:ann@192.0.2.11", Timestamp(NOW.0 + 1000), 1), NOW)
                .await
                .unwrap();
            s.upsert_sip_binding(&device("bob", "sip:bob@192.0.2.12", later, 1), NOW)
                .await
                .unwrap();
            assert!(matches!(
                s.upsert_sip_binding(&device("nobody", "sip:x@y", later, 1), NOW).await,
                Err(StoreError::NotFound(_))
            ));
            let anns = s.sip_bindings_of(org, ann, NOW).await.unwrap();
            assert_eq!(anns.len(), 2, "{}", db.label);
            assert_eq!(anns[0].cseq, 2);
            assert_eq!(s.live_sip_bindings(NOW).await.unwrap().len(), 3);
            let after = Timestamp(NOW.0 + 2000);
            assert_eq!(s.live_sip_bindings(after).await.unwrap().len(), 2);
            assert_eq!(s.purge_expired_sip_bindings(after).await.unwrap(), 1);
            s.remove_sip_binding("ann", "sip:ann@192.0.2.10").await.unwrap();
            s.remove_sip_binding("ann", "sip:gone@192.0.2.10").await.unwrap();
            assert!(s.sip_bindings_of(org, ann, NOW).await.unwrap().is_empty());
            s.delete_sip_account(org, "bob").await.unwrap();
            assert!(s.live_sip_bindings(NOW).await.unwrap().is_empty());
            assert!(matches!(
                s.delete_sip_account(other, "ann").await,
                Err(StoreError::NotFound(_))
            ));
        })
        .await;
    }
}

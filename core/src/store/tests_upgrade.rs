//! Upgrades (issue 24 item 4): a database made by the first schema, with data in every table a caller's
//! request touches, is brought to the current schema by `Store::connect` and keeps every row; a database
//! newer than the binary is refused before anything in it changes.

use super::backend::Backend;
use super::*;
use crate::ids::{OrgId, RequestId};
use crate::request::RequestStatus;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use std::borrow::Cow;

/// The oldest supported schema: migration 0001 alone, as the first build of OnCall left it.
async fn first_schema_with_data(url: &str) {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap();
    let all = migrations::migrator(Backend::Sqlite);
    let first = Migrator { migrations: Cow::Owned(all.migrations.iter().filter(|m| m.version == 1).cloned().collect()), ..Migrator::DEFAULT };
    first.run(&pool).await.unwrap();
    let hash = crate::password::hash("old-password-1").unwrap();
    let t = 1_600_000_000_000i64;
    for sql in [
        format!("INSERT INTO organizations (id, name, slug, time_zone, created_at) VALUES (1, 'Old Apartments', 'old', 'Europe/London', {t})"),
        format!("INSERT INTO people (id, org_id, name, email, role, time_zone, created_at) VALUES (1, 1, 'Maria', 'maria@old.example', 'employee', 'Europe/London', {t})"),
        "INSERT INTO contact_methods (org_id, person_id, position, kind, address) VALUES (1, 1, 0, 'phone', '+441632960001')".into(),
        "INSERT INTO notification_rules (org_id, person_id, position, channel, delay_ms) VALUES (1, 1, 0, 'call', 0)".into(),
        format!("INSERT INTO users (org_id, person_id, name, email, role, password_hash, created_at) VALUES (1, 1, 'Maria', 'maria@old.example', 'manager', '{hash}', {t})"),
        format!("INSERT INTO calls (id, org_id, call_id, caller, called, received_at, answered_at, ended_at, digits, recording_path, recording_duration_ms) VALUES (1, 1, 'c1@old', '+15551230000', '100', {t}, {t}, {}, '1', '2020/09/13/c1.wav', 7000)", t + 13_000),
        format!("INSERT INTO requests (id, org_id, call_row_id, caller, summary, status, received_at, notifying_at, acknowledged_at, acknowledged_by) VALUES (1, 1, 1, '+15551230000', 'Water through the ceiling', 'acknowledged', {t}, {t}, {}, 'person:1')", t + 60_000),
        format!("INSERT INTO request_events (org_id, request_id, at, actor, kind, detail) VALUES (1, 1, {t}, 'system', 'received', 'call c1@old')"),
        format!("INSERT INTO recordings (org_id, request_id, kind, storage_key, duration_ms, peak, rms, created_at) VALUES (1, 1, 'message', '2020/09/13/c1.wav', 7000, 0.5, 0.1, {t})"),
    ] {
        sqlx::query(&sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    pool.close().await;
}

#[tokio::test]
async fn an_upgrade_from_the_first_schema_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    first_schema_with_data(&url).await;

    let store = Store::connect(&url).await.expect("the current binary migrates the first schema");
    assert_eq!(store.schema_version().await.unwrap(), Store::known_schema_version());
    let org = OrgId(1);
    assert_eq!(store.organization(org).await.unwrap().name, "Old Apartments");
    let people = store.list_people(org).await.unwrap();
    assert_eq!(people.len(), 1);
    assert_eq!(people[0].phones().map(|p| p.to_string()).collect::<Vec<_>>(), vec!["+441632960001".to_string()]);
    let user = store.verify_password("maria@old.example", "old-password-1").await.unwrap().expect("the old password still logs in");
    assert_eq!(user.org, org);
    let request = store.request(org, RequestId(1)).await.unwrap();
    assert_eq!(request.state.status(), RequestStatus::Acknowledged);
    assert_eq!(request.summary, "Water through the ceiling");
    assert_eq!(store.request_events(org, RequestId(1)).await.unwrap().len(), 1);
    let recordings = store.recordings_for_request(org, RequestId(1)).await.unwrap();
    assert_eq!(recordings.len(), 1);
    assert_eq!(recordings[0].storage_key, "2020/09/13/c1.wav");
    assert_eq!(store.list_calls(org, 10).await.unwrap().len(), 1);
    store.close().await;

    // Opening it again is a no-op: nothing left to apply.
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.list_people(org).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_database_from_a_newer_binary_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("new.db").display());
    let store = Store::connect(&url).await.unwrap();
    let future = Store::known_schema_version() + 1;
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES ($1, 'from the future', CURRENT_TIMESTAMP, TRUE, X'00', 1)")
        .bind(future)
        .execute(store.pool())
        .await
        .unwrap();
    let org = store.create_organization("Kept", "kept", "UTC", crate::timestamp::Timestamp(0)).await.unwrap();
    store.close().await;

    let err = Store::connect(&url).await.expect_err("a newer schema is refused");
    let text = err.to_string();
    assert!(matches!(err, StoreError::NewerSchema { found, .. } if found == future), "{text}");
    assert!(text.contains("newer OnCall") && text.contains("not changed"), "{text}");
    // Untouched: the rows are there for the newer binary.
    let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations WHERE id = $1").bind(org.0).fetch_one(&pool).await.unwrap();
    assert_eq!(n, 1);
}

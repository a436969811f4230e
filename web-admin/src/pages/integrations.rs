//! Integration keys (managers only, issue 20): the keys monitoring tools send alerts with. A new key is shown
//! once, with the addresses to paste into Alertmanager, Grafana or an Events API v2 sender (docs/integrations.md);
//! a revoked key gets 403 from then on.

use super::layout::{base, see_other, Flash};
use crate::auth::{Manager, Viewer};
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::render;
use crate::views;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use oncall_core::{PolicyId, Timestamp};
use serde::Deserialize;
use serde_json::json;

async fn page(state: &AppState, v: &Viewer, headers: &HeaderMap, flash: Option<&str>, new_key: Option<(String, String)>, error: Option<String>) -> WebResult<Response> {
    let policies = state.store.list_policies(v.org.id).await?;
    let keys: Vec<_> = state
        .store
        .list_integrations(v.org.id)
        .await?
        .into_iter()
        .map(|i| {
            let policy = i.policy.and_then(|p| policies.iter().find(|x| x.id == p)).map(|p| p.name.clone());
            json!({"id": i.id, "name": i.name, "prefix": i.prefix, "policy": policy, "created": views::time(i.created_at, v.tz),
                   "revoked": i.revoked_at.map(|t| views::time(t, v.tz)), "urgency": i.urgency, "heartbeat_secs": i.heartbeat_secs})
        })
        .collect();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("oncall.example.com");
    let mut ctx = base(v, "integrations", flash);
    ctx.insert("keys", &keys);
    ctx.insert("policies", &policies.iter().filter(|p| !p.disabled).map(|p| json!({"id": p.id.0, "name": p.name})).collect::<Vec<_>>());
    ctx.insert("base_url", &format!("http://{host}"));
    ctx.insert("new_key", &new_key.map(|(name, key)| json!({"name": name, "key": key})));
    ctx.insert("error", &error);
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok((status, render("integrations.html", &ctx)?).into_response())
}

pub async fn list(State(state): State<AppState>, Manager(v): Manager, headers: HeaderMap, Query(f): Query<Flash>) -> WebResult<Response> {
    page(&state, &v, &headers, super::layout::flash_message(f.flash.as_deref()), None, None).await
}

#[derive(Debug, Deserialize)]
pub struct NewKey {
    name: String,
    /// A policy id, or empty for the organization's first enabled one.
    #[serde(default)]
    policy: String,
    /// `normal`: alerts after business hours page when they start; else urgent.
    #[serde(default)]
    urgency: String,
}

pub async fn create(State(state): State<AppState>, Manager(v): Manager, headers: HeaderMap, Form(f): Form<NewKey>) -> WebResult<Response> {
    let policy = match f.policy.trim() {
        "" => None,
        id => Some(PolicyId(id.parse().map_err(|_| WebError::BadRequest("Choose a policy from the list.".into()))?)),
    };
    match state.store.create_integration(v.org.id, &f.name, policy, Timestamp::now()).await {
        Ok((integration, key)) => {
            if f.urgency == "normal" {
                state.store.set_integration_urgency(v.org.id, integration.id, true).await?;
            }
            tracing::info!(org = %v.org.id, user = %v.user.id, integration = integration.id, "integration key created");
            page(&state, &v, &headers, None, Some((integration.name, key)), None).await
        }
        Err(oncall_core::StoreError::Invalid(e)) => page(&state, &v, &headers, None, None, Some(e.to_string())).await,
        Err(oncall_core::StoreError::NotFound(_)) => page(&state, &v, &headers, None, None, Some("That policy does not exist.".into())).await,
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    state.store.revoke_integration(v.org.id, id, Timestamp::now()).await?;
    tracing::info!(org = %v.org.id, user = %v.user.id, integration = id, "integration key revoked");
    Ok(see_other("/integrations?flash=saved").into_response())
}

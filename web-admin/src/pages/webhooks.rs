//! Webhooks (managers only): list, add (the secret is shown once), enable/disable, delete, a new
//! secret, and each webhook's delivery log with its last attempts. Sending is the binary's
//! webhook task; this page only edits the `webhooks` rows and reads the log (docs/webhooks.md).

use super::layout::{base, see_other, Flash};
use crate::auth::{Manager, Viewer};
use crate::error::WebResult;
use crate::state::AppState;
use crate::templates::render;
use crate::views;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use oncall_core::webhook::{Format, NewWebhook, Webhook, WebhookEvent, WebhookId};
use oncall_core::{StoreError, Timestamp};
use serde_json::{json, Value};

/// How many attempts the delivery log shows.
const LOG_LINES: i64 = 50;

fn event_options(selected: &[WebhookEvent]) -> Vec<Value> {
    WebhookEvent::ALL
        .iter()
        .map(|e| json!({"name": e.as_str(), "checked": selected.contains(e)}))
        .collect()
}

fn hook_view(w: &Webhook) -> Value {
    json!({
        "id": w.id.0, "name": w.name, "url": w.url, "format": w.format.as_str(), "disabled": w.disabled,
        "events": if w.events.is_empty() { "all events".to_string() } else { w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ") },
        "secret_hint": w.secret_hint(),
    })
}

async fn list_page(
    state: &AppState,
    v: &Viewer,
    flash: Option<&str>,
    form: &NewWebhook,
    error: Option<String>,
    status: StatusCode,
) -> WebResult<Response> {
    let mut rows = Vec::new();
    for w in state.store.list_webhooks(v.org.id).await? {
        let c = state.store.webhook_delivery_counts(v.org.id, w.id).await?;
        let mut h = hook_view(&w);
        h["counts"] = json!({"pending": c.pending, "delivered": c.delivered, "failed": c.failed});
        rows.push(h);
    }
    let mut ctx = base(v, "webhooks", flash);
    ctx.insert("webhooks", &rows);
    ctx.insert(
        "form",
        &json!({"name": form.name, "url": form.url, "format": form.format.as_str()}),
    );
    ctx.insert("events", &event_options(&form.events));
    ctx.insert("error", &error);
    Ok((status, render("webhooks.html", &ctx)?).into_response())
}

pub async fn list(State(state): State<AppState>, Manager(v): Manager, Query(f): Query<Flash>) -> WebResult<Response> {
    list_page(
        &state,
        &v,
        f.flash.as_deref(),
        &NewWebhook::default(),
        None,
        StatusCode::OK,
    )
    .await
}

fn parse_form(pairs: &[(String, String)]) -> NewWebhook {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let events = pairs
        .iter()
        .filter(|(k, _)| k == "events")
        .filter_map(|(_, v)| WebhookEvent::parse(v))
        .collect();
    let secret = get("secret");
    NewWebhook {
        name: get("name"),
        url: get("url"),
        format: Format::parse(&get("format")).unwrap_or_default(),
        events,
        secret: (!secret.is_empty()).then_some(secret),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Manager(v): Manager,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let new = parse_form(&pairs);
    // Issue #15 (SSRF): a literal private address or localhost is refused when saved; names are
    // checked again by the sender once resolved.
    let saved = match state.config.webhook_destinations.check_url(new.url.trim()) {
        Ok(()) => state.store.create_webhook(v.org.id, &new, Timestamp::now()).await,
        Err(e) => Err(StoreError::Invalid(e)),
    };
    match saved {
        Ok((id, secret)) => detail_page(&state, &v, id, None, Some(secret), None)
            .await
            .map(IntoResponse::into_response),
        Err(StoreError::Invalid(e)) => {
            let field = match e.field.as_str() {
                "url" => "URL",
                "name" => "Name",
                "secret" => "Secret",
                other => other,
            };
            list_page(
                &state,
                &v,
                None,
                &NewWebhook { secret: None, ..new },
                Some(format!("{field}: {}.", e.message)),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    id: WebhookId,
    flash: Option<&str>,
    new_secret: Option<String>,
    error: Option<String>,
) -> WebResult<Html<String>> {
    let org = v.org.id;
    let tz = v.tz;
    let w = state.store.webhook(org, id).await?;
    let counts = state.store.webhook_delivery_counts(org, id).await?;
    let next = state.store.webhook_next_attempt(org, id).await?;
    let log: Vec<Value> = state
        .store
        .webhook_attempts(org, id, LOG_LINES)
        .await?
        .iter()
        .map(|a| {
            let ok = a.status_code.is_some_and(oncall_core::webhook::is_success);
            json!({
                "at": views::time(a.at, tz), "event": a.event.as_str(), "request": a.request.0, "attempt": a.attempt,
                "status": a.status_code, "error": a.error, "ok": ok, "took": views::duration(a.duration),
            })
        })
        .collect();
    let mut ctx = base(v, "webhooks", flash);
    ctx.insert("w", &hook_view(&w));
    ctx.insert(
        "counts",
        &json!({"pending": counts.pending, "delivered": counts.delivered, "failed": counts.failed}),
    );
    ctx.insert("next_attempt", &next.map(|t| views::time(t, tz)));
    ctx.insert("log", &log);
    ctx.insert("new_secret", &new_secret);
    ctx.insert("error", &error);
    Ok(render("webhook.html", &ctx)?)
}

pub async fn show(
    State(state): State<AppState>,
    Manager(v): Manager,
    Path(id): Path<i64>,
    Query(f): Query<Flash>,
) -> WebResult<Html<String>> {
    detail_page(&state, &v, WebhookId(id), f.flash.as_deref(), None, None).await
}

pub async fn disable(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    state
        .store
        .set_webhook_disabled(v.org.id, WebhookId(id), true, Timestamp::now())
        .await?;
    Ok(see_other(&format!("/webhooks/{id}?flash=disabled")).into_response())
}

pub async fn enable(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    state
        .store
        .set_webhook_disabled(v.org.id, WebhookId(id), false, Timestamp::now())
        .await?;
    Ok(see_other(&format!("/webhooks/{id}?flash=enabled")).into_response())
}

pub async fn delete(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    state.store.delete_webhook(v.org.id, WebhookId(id)).await?;
    Ok(see_other("/webhooks?flash=deleted").into_response())
}

/// A new secret: generated, or the one typed in (e.g. to match the receiver's configuration).
pub async fn new_secret(
    State(state): State<AppState>,
    Manager(v): Manager,
    Path(id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let typed = pairs
        .iter()
        .find(|(k, _)| k == "secret")
        .map(|(_, s)| s.trim())
        .filter(|s| !s.is_empty());
    match state
        .store
        .set_webhook_secret(v.org.id, WebhookId(id), typed, Timestamp::now())
        .await
    {
        Ok(secret) => Ok(detail_page(&state, &v, WebhookId(id), None, Some(secret), None)
            .await?
            .into_response()),
        Err(StoreError::Invalid(e)) => {
            let page = detail_page(
                &state,
                &v,
                WebhookId(id),
                None,
                None,
                Some(format!("Secret: {}.", e.message)),
            )
            .await?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Puts the given-up deliveries back in the queue.
pub async fn retry(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    state.store.webhook(v.org.id, WebhookId(id)).await?;
    state
        .store
        .retry_failed_webhook_deliveries(v.org.id, WebhookId(id), Timestamp::now())
        .await?;
    Ok(see_other(&format!("/webhooks/{id}?flash=requeued")).into_response())
}

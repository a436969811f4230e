//! The operator's area (issue 17): whoever runs the server creates, renames, disables and deletes client
//! organizations, gives them numbers and invites their first manager, in the browser as with `oncall org`.
//!
//! Its own role and its own session: an operator signs in at `/operator/login` (accounts from `oncall operator
//! add`), gets the `oncall_operator` cookie, and every page under `/operator` checks it (and the CSRF token of
//! every form) in [`operator_layer`]. An organization's session never opens these pages and an operator's
//! session never opens an organization's: the operator sees counts, numbers and names, not requests or
//! recordings.

use super::layout::see_other;
use crate::auth::{self, csrf_checked, is_tls, set_cookie, LOGIN_CSRF_COOKIE};
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::render;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use oncall_core::store::OperatorSession;
use oncall_core::{secret, Millis, OrgId, Role, Timestamp};
use serde::Deserialize;
use std::net::SocketAddr;
use tera::Context;

pub const OPERATOR_COOKIE: &str = "oncall_operator";
/// Login attempts are limited per e-mail like the organizations' logins, under a key of their own.
const LIMIT_PREFIX: &str = "operator:";

pub fn routes(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/operator", get(show))
        .route("/operator/logout", post(logout))
        .route("/operator/orgs", post(add))
        .route("/operator/orgs/{id}/rename", post(rename))
        .route("/operator/orgs/{id}/disable", post(disable))
        .route("/operator/orgs/{id}/enable", post(enable))
        .route("/operator/orgs/{id}/delete", post(delete))
        .route("/operator/orgs/{id}/numbers", post(add_number))
        .route("/operator/orgs/{id}/numbers/remove", post(remove_number))
        .layer(axum::middleware::from_fn_with_state(state, operator_layer));
    Router::new().route("/operator/login", get(login_form).post(login)).merge(protected)
}

/// The signed-in operator of this request.
#[derive(Debug, Clone)]
pub struct OperatorViewer {
    pub session: OperatorSession,
    token: String,
}

impl<S: Send + Sync> FromRequestParts<S> for OperatorViewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<OperatorViewer>().cloned().ok_or(WebError::Forbidden)
    }
}

/// Resolves the operator cookie (or sends the browser to the operator login) and checks every form's CSRF token.
pub async fn operator_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = auth::cookie(req.headers(), OPERATOR_COOKIE) else {
        return see_other("/operator/login").into_response();
    };
    let session = match state.store.operator_session(&token, Timestamp::now()).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other("/operator/login").into_response(),
        Err(e) => return WebError::from(e).into_response(),
    };
    let csrf = session.csrf_token.clone();
    match csrf_checked(&state, req, &csrf).await {
        Ok(mut req) => {
            req.extensions_mut().insert(OperatorViewer { session, token });
            next.run(req).await
        }
        Err(refused) => refused,
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
}

async fn login_page(state: &AppState, headers: &HeaderMap, email: &str, error: Option<&str>, status: StatusCode) -> WebResult<Response> {
    let token = auth::cookie(headers, LOGIN_CSRF_COOKIE).filter(|t| t.len() == 64).unwrap_or_else(secret::new_token);
    let mut ctx = Context::new();
    ctx.insert("csrf", &token);
    ctx.insert("email", email);
    ctx.insert("error", &error);
    let html = render("operator_login.html", &ctx)?;
    let secure = is_tls(headers, state.config.force_secure_cookies);
    Ok((status, [(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &token, 3600, secure))], html).into_response())
}

async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> WebResult<Response> {
    login_page(&state, &headers, "", None, StatusCode::OK).await
}

async fn login(State(state): State<AppState>, req: Request) -> WebResult<Response> {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = crate::client_addr::client_key(peer, req.headers(), &state.config.trusted_proxies);
    let headers = req.headers().clone();
    let Form(form) = Form::<LoginForm>::from_request(req, &state).await.map_err(|_| WebError::BadRequest("The login form was incomplete.".into()))?;
    let cookie_token = auth::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if cookie_token.is_empty() || !secret::constant_time_eq(&cookie_token, &form.csrf) {
        return login_page(&state, &headers, &form.email, Some("The login form expired. Please try again."), StatusCode::BAD_REQUEST).await;
    }
    let key = format!("{LIMIT_PREFIX}{}", form.email.trim());
    let admitted = match state.login_limiter.begin(&key, ip.as_deref(), Timestamp::now()).await? {
        Ok(a) => a,
        Err(_) => return login_page(&state, &headers, &form.email, Some("Too many failed attempts. Try again later."), StatusCode::TOO_MANY_REQUESTS).await,
    };
    let Some(operator) = state.store.verify_operator_password(&form.email, &form.password).await? else {
        tracing::info!(email = %form.email.trim(), ip = ?ip, "failed operator login");
        return login_page(&state, &headers, &form.email, Some("Wrong e-mail or password."), StatusCode::UNAUTHORIZED).await;
    };
    state.login_limiter.succeeded(admitted).await?;
    let ttl = Millis::hours(state.config.session_hours.max(1));
    let (token, _) = state.store.create_operator_session(&operator, Timestamp::now(), ttl).await?;
    tracing::info!(operator = %operator.email, "operator login");
    let secure = is_tls(&headers, state.config.force_secure_cookies);
    let mut resp = see_other("/operator").into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(OPERATOR_COOKIE, &token, ttl.0 / 1000, secure));
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure));
    Ok(resp)
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, v: OperatorViewer) -> WebResult<Response> {
    state.store.delete_operator_session(&v.token).await?;
    let secure = is_tls(&headers, state.config.force_secure_cookies);
    Ok(([(header::SET_COOKIE, set_cookie(OPERATOR_COOKIE, "", 0, secure))], see_other("/operator/login")).into_response())
}

/// The organizations page, with what just happened (`flash`) or why it did not (`error`, with status 400).
async fn page(state: &AppState, v: &OperatorViewer, flash: Option<String>, error: Option<String>) -> WebResult<Response> {
    let numbers = state.store.numbers(None).await?;
    let mut orgs = Vec::new();
    for o in state.store.list_organizations().await? {
        let counts = state.store.organization_row_counts(o.id).await?;
        let count = |t: &str| counts.iter().find(|(n, _)| *n == t).map_or(0, |(_, c)| *c);
        let owned: Vec<String> = numbers
            .iter()
            .filter(|n| n.org == o.id)
            .map(|n| n.source.as_ref().map_or_else(|| n.address.clone(), |s| format!("{} (via {s})", n.address)))
            .collect();
        orgs.push(serde_json::json!({
            "id": o.id.0, "name": o.name, "slug": o.slug, "time_zone": o.time_zone.name(), "disabled": o.disabled_at.is_some(),
            "numbers": owned, "people": count("people"), "users": count("users"), "requests": count("requests"), "calls": count("calls"),
            "limits": o.limits,
        }));
    }
    let mut ctx = Context::new();
    ctx.insert("operator", &v.session.operator);
    ctx.insert("csrf", &v.session.csrf_token);
    ctx.insert("orgs", &orgs);
    ctx.insert("flash", &flash);
    ctx.insert("error", &error);
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok((status, render("operator.html", &ctx)?).into_response())
}

async fn show(State(state): State<AppState>, v: OperatorViewer) -> WebResult<Response> {
    page(&state, &v, None, None).await
}

/// A store error a person can act on goes back to the page; anything else is the error page.
async fn outcome(state: &AppState, v: &OperatorViewer, done: Result<String, WebError>) -> WebResult<Response> {
    match done {
        Ok(flash) => page(state, v, Some(flash), None).await,
        Err(WebError::Invalid(e)) => page(state, v, None, Some(e.to_string())).await,
        Err(WebError::Conflict(e) | WebError::BadRequest(e)) => page(state, v, None, Some(e)).await,
        Err(WebError::NotFound) => page(state, v, None, Some("No such organization (deleted meanwhile?).".into())).await,
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    time_zone: String,
    /// Numbers or SIP addresses, separated by commas (a number may have spaces: +1 555 987 0000).
    #[serde(default)]
    numbers: String,
    #[serde(default)]
    manager_name: String,
    #[serde(default)]
    manager_email: String,
}

async fn add(State(state): State<AppState>, v: OperatorViewer, Form(f): Form<AddForm>) -> WebResult<Response> {
    let done = async {
        let store = &state.store;
        let now = Timestamp::now();
        let slug = if f.slug.trim().is_empty() { oncall_core::store::slugify(&f.name) } else { f.slug.trim().to_string() };
        let zone = if f.time_zone.trim().is_empty() { "UTC" } else { f.time_zone.trim() };
        // Checked before anything is created, so a bad number leaves no half-made organization behind.
        let numbers: Vec<String> = f.numbers.split([',', ';', '\n']).filter(|n| !n.trim().is_empty()).map(|n| oncall_core::inbound::normalize(n)).collect::<Result<_, _>>()?;
        let org = store.create_organization(f.name.trim(), &slug, zone, now).await?;
        let mut said = vec![format!("Created {} ({slug}).", f.name.trim())];
        for n in &numbers {
            match store.add_number(org, n, None, now).await {
                Ok(n) => said.push(format!("{n} answers for it.")),
                Err(e) => said.push(format!("{n} was not added: {e}.")),
            }
        }
        if !f.manager_email.trim().is_empty() {
            let name = if f.manager_name.trim().is_empty() { "Manager" } else { f.manager_name.trim() };
            let password = secret::new_token()[..20].to_string();
            store.add_user(org, name, &f.manager_email, Role::Manager, &password).await?;
            said.push(format!("{} signs in at /login with the one-time password {password} (shown only now; they change it under Account).", f.manager_email.trim()));
        }
        tracing::info!(operator = %v.session.operator.email, org = %slug, "organization created");
        Ok::<_, WebError>(said.join(" "))
    };
    let done = done.await;
    outcome(&state, &v, done).await
}

#[derive(Debug, Deserialize)]
pub struct RenameForm {
    name: String,
}

async fn rename(State(state): State<AppState>, v: OperatorViewer, Path(id): Path<i64>, Form(f): Form<RenameForm>) -> WebResult<Response> {
    let done = async {
        let o = state.store.organization(OrgId(id)).await?;
        state.store.rename_organization(o.id, f.name.trim()).await?;
        Ok::<_, WebError>(format!("{} is now called {}.", o.slug, f.name.trim()))
    };
    let done = done.await;
    outcome(&state, &v, done).await
}

async fn set_disabled(state: &AppState, v: &OperatorViewer, id: i64, disabled: bool) -> WebResult<Response> {
    let done = async {
        let o = state.store.organization(OrgId(id)).await?;
        state.store.set_organization_disabled(o.id, disabled.then(Timestamp::now)).await?;
        tracing::info!(operator = %v.session.operator.email, org = %o.slug, disabled, "organization switched");
        Ok::<_, WebError>(if disabled {
            format!("{} is disabled: its numbers get the unknown-number answer and its people cannot sign in; its data stays.", o.slug)
        } else {
            format!("{} is enabled again.", o.slug)
        })
    };
    let done = done.await;
    outcome(state, v, done).await
}

async fn disable(State(state): State<AppState>, v: OperatorViewer, Path(id): Path<i64>) -> WebResult<Response> {
    set_disabled(&state, &v, id, true).await
}

async fn enable(State(state): State<AppState>, v: OperatorViewer, Path(id): Path<i64>) -> WebResult<Response> {
    set_disabled(&state, &v, id, false).await
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    /// The slug typed again: deleting cannot be undone.
    #[serde(default)]
    confirm: String,
}

async fn delete(State(state): State<AppState>, v: OperatorViewer, Path(id): Path<i64>, Form(f): Form<DeleteForm>) -> WebResult<Response> {
    let done = async {
        let o = state.store.organization(OrgId(id)).await?;
        if f.confirm.trim() != o.slug {
            return Err(WebError::BadRequest(format!("Type {} to delete that organization; nothing was deleted.", o.slug)));
        }
        // Rows first (one transaction), then the files, as `oncall org delete` does.
        let removal = state.store.delete_organization(o.id).await?;
        let files = match &state.org_files {
            Some(f) => match f.remove_recordings(o.slug.clone()).await {
                Ok(n) => format!("{n} recording files"),
                Err(e) => format!("its recording files could not all be removed ({e}); run `oncall org delete` again or remove recordings/{} by hand", o.slug),
            },
            None => "no recording files (none are kept here)".into(),
        };
        let rows: Vec<String> = removal.rows.iter().map(|(t, n)| format!("{n} {t}")).collect();
        tracing::info!(operator = %v.session.operator.email, org = %o.slug, %files, "organization deleted");
        Ok::<_, WebError>(format!("Deleted {} ({}): {}; {files}.", o.name, o.slug, if rows.is_empty() { "no rows".into() } else { rows.join(", ") }))
    };
    let done = done.await;
    outcome(&state, &v, done).await
}

#[derive(Debug, Deserialize)]
pub struct NumberForm {
    number: String,
}

async fn add_number(State(state): State<AppState>, v: OperatorViewer, Path(id): Path<i64>, Form(f): Form<NumberForm>) -> WebResult<Response> {
    let done = async {
        let o = state.store.organization(OrgId(id)).await?;
        let n = state.store.add_number(o.id, &f.number, None, Timestamp::now()).await.map_err(|e| match e {
            oncall_core::StoreError::Conflict(m) => WebError::BadRequest(format!("{m}.")),
            other => other.into(),
        })?;
        Ok::<_, WebError>(format!("{n} answers for {}.", o.slug))
    };
    let done = done.await;
    outcome(&state, &v, done).await
}

async fn remove_number(State(state): State<AppState>, v: OperatorViewer, Path(id): Path<i64>, Form(f): Form<NumberForm>) -> WebResult<Response> {
    let done = async {
        let o = state.store.organization(OrgId(id)).await?;
        // A listed number may carry " (via trunk)": the address is its first word.
        let number = f.number.split_whitespace().next().unwrap_or("");
        if !state.store.remove_number(o.id, number).await? {
            return Err(WebError::BadRequest(format!("{} has no number {number}.", o.slug)));
        }
        Ok::<_, WebError>(format!("{number} no longer answers for {}.", o.slug))
    };
    let done = done.await;
    outcome(&state, &v, done).await
}

//! Logging in and out, changing one's password, and personal API tokens.

use super::layout::{base, see_other, Flash};
use crate::auth::{self, is_tls, safe_next, set_cookie, Viewer, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::render;
use crate::views;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use oncall_core::{secret, Millis, Timestamp};
use serde::Deserialize;
use std::net::SocketAddr;
use tera::Context;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

async fn login_page(state: &AppState, headers: &HeaderMap, email: &str, next: &str, error: Option<&str>, status: StatusCode) -> WebResult<Response> {
    // Reuse the double-submit cookie if the browser has one, so two open tabs both work.
    let token = auth::cookie(headers, LOGIN_CSRF_COOKIE).filter(|t| t.len() == 64).unwrap_or_else(secret::new_token);
    let mut ctx = Context::new();
    ctx.insert("csrf", &token);
    ctx.insert("email", email);
    ctx.insert("next", next);
    ctx.insert("error", &error);
    let demo = state.store.organization_by_slug(oncall_core::demo::DEMO_SLUG).await?.is_some();
    let desk = state.store.organization_by_slug(oncall_core::demo::DESK_SLUG).await?.is_some();
    if demo {
        ctx.insert(
            "demo",
            &serde_json::json!({
                "manager": oncall_core::demo::DEMO_MANAGER_EMAIL,
                "employee": oncall_core::demo::DEMO_EMPLOYEE_EMAIL,
                "password": oncall_core::demo::DEMO_PASSWORD,
                "desk_manager": desk.then_some(oncall_core::demo::DESK_MANAGER_EMAIL),
            }),
        );
    }
    let html = render("login.html", &ctx)?;
    let secure = is_tls(headers, state.config.force_secure_cookies);
    Ok((status, [(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &token, 3600, secure))], html).into_response())
}

pub async fn login_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<LoginQuery>) -> WebResult<Response> {
    // Already logged in: go straight on.
    if let Some(t) = auth::cookie(&headers, SESSION_COOKIE) {
        if state.store.session(&t, Timestamp::now()).await?.is_some() {
            return Ok(see_other(&safe_next(q.next.as_deref())).into_response());
        }
    }
    login_page(&state, &headers, "", &safe_next(q.next.as_deref()), None, StatusCode::OK).await
}

pub async fn login(State(state): State<AppState>, req: Request) -> WebResult<Response> {
    // The client behind a trusted proxy, not the proxy: else everyone shares one per-source limit.
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = crate::client_addr::client_key(peer, req.headers(), &state.config.trusted_proxies);
    let headers = req.headers().clone();
    let Form(form) = Form::<LoginForm>::from_request(req, &state).await.map_err(|_| WebError::BadRequest("The login form was incomplete.".into()))?;
    let next = safe_next(form.next.as_deref());
    let cookie_token = auth::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if cookie_token.is_empty() || !secret::constant_time_eq(&cookie_token, &form.csrf) {
        return login_page(&state, &headers, &form.email, &next, Some("The login form expired. Please try again."), StatusCode::BAD_REQUEST).await;
    }
    let now = Timestamp::now();
    // The attempt takes its place before the password is checked, so parallel tries are judged
    // in turn; until `succeeded` it counts as a failure.
    let admitted = match state.login_limiter.begin(&form.email, ip.as_deref(), now).await? {
        Ok(a) => a,
        Err(wait) => {
            tracing::info!(email = %form.email.trim(), ip = ?ip, wait_ms = wait.0, "login refused by the rate limiter");
            let msg = format!("Too many failed attempts. Try again in {}.", wait_text(wait));
            return login_page(&state, &headers, &form.email, &next, Some(&msg), StatusCode::TOO_MANY_REQUESTS).await;
        }
    };
    let Some(user) = state.store.verify_password(&form.email, &form.password).await? else {
        tracing::info!(email = %form.email.trim(), ip = ?ip, "failed login");
        return login_page(&state, &headers, &form.email, &next, Some("Wrong e-mail or password."), StatusCode::UNAUTHORIZED).await;
    };
    state.login_limiter.succeeded(admitted).await?;
    let ttl = Millis::hours(state.config.session_hours.max(1));
    let created = state.store.create_session(&user, Timestamp::now(), ttl).await?;
    let secure = is_tls(&headers, state.config.force_secure_cookies);
    tracing::info!(user = %user.id, org = %user.org, "login");
    let mut resp = see_other(&next).into_response();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &created.token, ttl.0 / 1000, secure));
    h.append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure));
    Ok(resp)
}

use axum::extract::FromRequest;

/// "40 seconds", "3 minutes": a backoff as the login page says it (rounded up).
fn wait_text(wait: Millis) -> String {
    let secs = u64::try_from(wait.0).unwrap_or(0).div_ceil(1000).max(1);
    let (n, unit) = if secs < 120 { (secs, "second") } else { (secs.div_ceil(60), "minute") };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap, v: Viewer) -> WebResult<Response> {
    state.store.delete_session(&v.token).await?;
    let secure = is_tls(&headers, state.config.force_secure_cookies);
    Ok(([(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, secure))], see_other("/login")).into_response())
}

async fn account_page(state: &AppState, v: &Viewer, flash: Option<&str>, error: Option<String>, new_token: Option<String>) -> WebResult<Html<String>> {
    let mut ctx = base(v, "account", flash);
    let tokens: Vec<_> = state
        .store
        .list_api_tokens(v.org.id, v.user.id)
        .await?
        .into_iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id, "name": t.name, "prefix": t.prefix,
                "created": views::time(t.created_at, v.tz),
                "last_used": t.last_used_at.map(|l| views::time(l, v.tz)),
            })
        })
        .collect();
    ctx.insert("tokens", &tokens);
    ctx.insert("error", &error);
    ctx.insert("new_token", &new_token);
    Ok(render("account.html", &ctx)?)
}

pub async fn show(State(state): State<AppState>, v: Viewer, Query(f): Query<Flash>) -> WebResult<Html<String>> {
    account_page(&state, &v, f.flash.as_deref(), None, None).await
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

pub async fn change_password(State(state): State<AppState>, v: Viewer, Form(f): Form<PasswordForm>) -> WebResult<Response> {
    let error = if f.new != f.confirm {
        Some("The new password and its confirmation differ.".to_string())
    } else {
        match state.store.change_password(v.org.id, v.user.id, &f.current, &f.new).await {
            Ok(true) => None,
            Ok(false) => Some("The current password is wrong.".to_string()),
            Err(oncall_core::StoreError::Invalid(e)) => Some(format!("New password: {}", e.message)),
            Err(e) => return Err(e.into()),
        }
    };
    if let Some(e) = error {
        let page = account_page(&state, &v, None, Some(e), None).await?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    state.store.delete_user_sessions(v.user.id, Some(&v.token)).await?;
    Ok(see_other("/account?flash=password").into_response())
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    name: String,
}

pub async fn create_token(State(state): State<AppState>, v: Viewer, Form(f): Form<TokenForm>) -> WebResult<Response> {
    match state.store.create_api_token(&v.user, &f.name, Timestamp::now()).await {
        Ok(token) => Ok(account_page(&state, &v, None, None, Some(token)).await?.into_response()),
        Err(oncall_core::StoreError::Invalid(e)) => {
            let page = account_page(&state, &v, None, Some(format!("Token name: {}", e.message)), None).await?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>) -> WebResult<Response> {
    state.store.revoke_api_token(v.org.id, v.user.id, id, Timestamp::now()).await?;
    Ok(see_other("/account?flash=revoked").into_response())
}

//! Who is asking: the session cookie, CSRF checks and roles.
//!
//! A login creates a row in `web_sessions` and sets `oncall_session` (HttpOnly, SameSite=Lax,
//! Secure over TLS) to the random token; the database keeps only its digest. Every page under
//! the session layer gets a [`Viewer`]: the user, their organization and the session's CSRF
//! token. Every state-changing request (anything but GET/HEAD) must carry that token, in the
//! `csrf` form field, the `csrf` query parameter (multipart uploads) or the `X-CSRF-Token`
//! header (scripts); the check happens in the layer, so no handler can forget it.
//!
//! The login form has no session yet, so it uses a double-submit cookie instead
//! (`oncall_login_csrf`, compared with the form field).

use crate::error::WebError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use oncall_core::secret;
use oncall_core::store::User;
use oncall_core::{Actor, Organization, Role, Timestamp};

pub const SESSION_COOKIE: &str = "oncall_session";
pub const LOGIN_CSRF_COOKIE: &str = "oncall_login_csrf";
/// Largest request body the CSRF layer buffers (greeting uploads are the biggest).
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// The logged-in user of this request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    pub org: Organization,
    pub csrf: String,
    /// The session token (to keep this session when logging out the others).
    pub token: String,
}

impl Viewer {
    pub fn is_manager(&self) -> bool {
        self.user.role == Role::Manager
    }

    /// How the viewer appears in request logs and metrics: as their person when linked (so
    /// per-person response times count web acknowledgements), else as the login.
    pub fn actor(&self) -> Actor {
        match self.user.person {
            Some(p) => Actor::Person(p),
            None => Actor::User(self.user.id),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Viewer, WebError> {
        // The session layer put it there; a route outside the layer asking for it is a bug.
        parts.extensions.get::<Viewer>().cloned().ok_or_else(|| WebError::Internal("no session on a protected route".into()))
    }
}

/// A viewer who is a manager; employees get 403.
#[derive(Debug, Clone)]
pub struct Manager(pub Viewer);

impl<S: Send + Sync> FromRequestParts<S> for Manager {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Manager, WebError> {
        let v = Viewer::from_request_parts(parts, s).await?;
        if !v.is_manager() {
            return Err(WebError::Forbidden);
        }
        Ok(Manager(v))
    }
}

/// The value of cookie `name`, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// True when the request reached us over TLS (directly or via a proxy that says so).
pub fn is_tls(headers: &HeaderMap, force: bool) -> bool {
    force
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().unwrap_or("").trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value with our attributes. `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
    // Names and values are our own hex tokens: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Only local paths may be a redirect target after login (no open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// The session layer: resolves the cookie to a [`Viewer`] (or sends the browser to the login
/// page) and checks the CSRF token of every non-GET request.
pub async fn session_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = cookie(req.headers(), SESSION_COOKIE) else {
        return to_login(&req);
    };
    let session = match state.store.session(&token, Timestamp::now()).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login(&req),
        Err(e) => return WebError::from(e).into_response(),
    };
    let org = match state.store.organization(session.user.org).await {
        Ok(o) => o,
        Err(e) => return WebError::from(e).into_response(),
    };
    let viewer = Viewer { user: session.user, org, csrf: session.csrf_token, token };

    let (mut parts, body) = req.into_parts();
    let body = if parts.method == Method::GET || parts.method == Method::HEAD {
        body
    } else {
        let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => return WebError::BadRequest("The upload is too large (25 MB at most).".into()).into_response(),
        };
        if !csrf_ok(&parts, &bytes, &viewer.csrf) {
            return WebError::BadRequest("This form has expired. Go back, reload the page and try again.".into()).into_response();
        }
        Body::from(bytes)
    };
    parts.extensions.insert(viewer);
    next.run(Request::from_parts(parts, body)).await
}

fn csrf_ok(parts: &Parts, body: &[u8], expected: &str) -> bool {
    let from_header = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let from_query = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let from_body = if is_form {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v))
    } else {
        None
    };
    [from_header, from_query, from_body].into_iter().flatten().any(|t| secret::constant_time_eq(&t, expected))
}

fn to_login(req: &Request) -> Response {
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if req.method() == Method::GET {
        let next = serde_urlencoded::to_string([("next", path)]).unwrap_or_default();
        Redirect::to(&format!("/login?{next}")).into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_redirects() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; oncall_session=abc ; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "zz"), None);
        assert_eq!(safe_next(Some("/requests?x=1")), "/requests?x=1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil"] {
            assert_eq!(safe_next(Some(bad)), "/");
        }
        let c = set_cookie(SESSION_COOKIE, "t", 60, true);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        assert!(!set_cookie(SESSION_COOKIE, "t", 60, false).to_str().unwrap().contains("Secure"));
    }
}

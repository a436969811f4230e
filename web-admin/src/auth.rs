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

/// The logged-in user of this request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    pub org: Organization,
    /// The zone the viewer's pages show times in: their person's when the login is linked to one
    /// (issue 18 item 11), else the organization's.
    pub tz: chrono_tz::Tz,
    pub csrf: String,
    /// The session token (to keep this session when logging out the others).
    pub token: String,
}

impl Viewer {
    /// The viewer for `user` of `org`, with their person's time zone when they have one.
    pub async fn load(store: &oncall_core::Store, user: User, org: Organization, csrf: String, token: String) -> Result<Viewer, oncall_core::StoreError> {
        let tz = match user.person {
            Some(p) => match store.person(org.id, p).await {
                Ok(person) => person.time_zone,
                Err(oncall_core::StoreError::NotFound(_)) => org.time_zone,
                Err(e) => return Err(e),
            },
            None => org.time_zone,
        };
        Ok(Viewer { user, org, tz, csrf, token })
    }

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

/// Only a path on this site may be a redirect target after login (no open redirect, issue 15
/// item 3). Anything else becomes `/`.
///
/// Browsers are lenient where a prefix check is not: they drop tabs and newlines anywhere in a
/// URL (so `/\t/evil.example` is `//evil.example`, another host), read `\` as `/`, and resolve
/// dot segments (`/.//evil` is `//evil`). So the candidate is refused outright if it holds any
/// control character, whitespace or backslash (raw or percent-encoded), then resolved the way a
/// browser would against a placeholder origin; only if it stays on that origin is its
/// *normalised* path, query and fragment returned, and even then never one that begins with
/// `//` (which a browser would read as another host).
pub fn safe_next(next: Option<&str>) -> String {
    next.and_then(same_origin_path).unwrap_or_else(|| "/".to_string())
}

fn same_origin_path(n: &str) -> Option<String> {
    const BASE: &str = "http://oncall.invalid/";
    if !n.starts_with('/') || n.starts_with("//") {
        return None;
    }
    // Raw: browsers strip or reinterpret these. Percent-decoded: a proxy or a later decode
    // step might, so an encoded `%09` or `%5C` is refused as well (an encoded space is fine).
    let dangerous = |c: char| c.is_control() || c == '\\';
    let decoded = percent_encoding::percent_decode_str(n).decode_utf8_lossy();
    if n.chars().any(|c| dangerous(c) || c.is_whitespace()) || decoded.chars().any(dangerous) || decoded.starts_with("//") {
        return None;
    }
    let base = url::Url::parse(BASE).ok()?;
    let resolved = base.join(n).ok()?;
    if resolved.origin() != base.origin() {
        return None;
    }
    let mut out = resolved.path().to_string();
    if let Some(q) = resolved.query() {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = resolved.fragment() {
        out.push('#');
        out.push_str(f);
    }
    (out.starts_with('/') && !out.starts_with("//")).then_some(out)
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
    let viewer = match Viewer::load(&state.store, session.user, org, session.csrf_token, token).await {
        Ok(v) => v,
        Err(e) => return WebError::from(e).into_response(),
    };

    match csrf_checked(&state, req, &viewer.csrf).await {
        Ok(mut req) => {
            req.extensions_mut().insert(viewer);
            next.run(req).await
        }
        Err(refused) => refused,
    }
}

/// `req` when it is a GET/HEAD or carries the CSRF token `expected`; else the error page. Shared by the
/// organizations' session layer and the operator's.
pub(crate) async fn csrf_checked(state: &AppState, req: Request, expected: &str) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let expired = || WebError::BadRequest("This form has expired. Go back, reload the page and try again.".into()).into_response();
    let body = if parts.method == Method::GET || parts.method == Method::HEAD {
        body
    } else if is_form(&parts) {
        // Only a form carries its token in the body, so only a form is buffered here, and no more
        // than `max_body_bytes` of it (issue 15: bodies were buffered up to 25 MB on every route).
        // Other bodies (multipart uploads, JSON) stream on to their extractor, which the route's
        // `DefaultBodyLimit` bounds.
        let bytes = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => return Err(WebError::TooLarge("The form is too large.".into()).into_response()),
        };
        if !csrf_ok(&parts, &bytes, expected) {
            return Err(expired());
        }
        Body::from(bytes)
    } else {
        if !csrf_ok(&parts, &[], expected) {
            return Err(expired());
        }
        body
    };
    Ok(Request::from_parts(parts, body))
}

fn csrf_ok(parts: &Parts, body: &[u8], expected: &str) -> bool {
    let from_header = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let from_query = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
    let from_body = if is_form(parts) {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v))
    } else {
        None
    };
    [from_header, from_query, from_body].into_iter().flatten().any(|t| secret::constant_time_eq(&t, expected))
}

fn is_form(parts: &Parts) -> bool {
    parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
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
        let c = set_cookie(SESSION_COOKIE, "t", 60, true);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        assert!(!set_cookie(SESSION_COOKIE, "t", 60, false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn safe_next_keeps_local_paths() {
        for ok in ["/", "/requests?x=1", "/requests/12", "/schedules/3?month=2026-11#today", "/people?q=a%20b", "/my/shifts"] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        // Dot segments are resolved, as the browser would.
        assert_eq!(safe_next(Some("/a/../requests")), "/requests");
        assert_eq!(safe_next(None), "/");
    }

    /// Issue 15 item 3: every spelling of "another host" a browser accepts goes to `/`.
    #[test]
    fn safe_next_refuses_every_way_to_another_origin() {
        let bad = [
            // The reported attack, as the query decodes it: Chromium drops the tab and goes to //127.0.0.1:9999/x.
            "/\t/127.0.0.1:9999/x",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "/\u{a0}/evil.example",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\\/evil.example",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%5Cevil.example",
            "/%5C/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/.//evil.example",
            "/./../../evil.example/..//x",
            "/..//evil.example",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
            "@evil.example",
            "\t/evil.example",
        ];
        for b in bad {
            let got = safe_next(Some(b));
            assert!(!got.starts_with("//") && !got.contains('\\') && got.starts_with('/'), "{b:?} gave {got:?}");
            let resolved = url::Url::parse("http://oncall.invalid/").unwrap().join(&got).unwrap();
            assert_eq!(resolved.host_str(), Some("oncall.invalid"), "{b:?} gave {got:?}");
        }
        // The exact attack string must not survive in any form.
        assert_eq!(safe_next(Some("/\t/127.0.0.1:9999/x")), "/");
        assert_eq!(safe_next(Some("/.//evil.example")), "/");
    }
}

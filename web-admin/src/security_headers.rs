//! Browser defences sent with every response (issue 15 item 7).
//!
//! One middleware around the whole application adds:
//! - `Content-Security-Policy`: scripts, styles, images, media and form targets only from this
//!   site, no plugins, no `<base>` rewriting, and `frame-ancestors 'none'` (no clickjacking).
//!   The templates have no inline scripts or event handlers (app.js attaches its behaviour), so
//!   script-src needs no `'unsafe-inline'`. Inline `style="..."` *attributes* stay allowed
//!   (`style-src-attr`): the schedule grid and colour dots position and colour elements with
//!   them; attributes cannot run script, while `<style>` elements stay refused.
//! - `X-Frame-Options: DENY` for browsers that predate `frame-ancestors`.
//! - `X-Content-Type-Options: nosniff`, so an uploaded greeting or a recording is never
//!   sniffed into HTML.
//! - `Referrer-Policy: same-origin`: links out of the site never carry a page address (private
//!   calendar feed URLs hold their token in the path).
//! - `Strict-Transport-Security` only when the request came over HTTPS (a proxy saying
//!   `X-Forwarded-Proto: https`, or `[http] secure_cookies = true` for a TLS proxy that does not
//!   say so). Browsers ignore the header on plain HTTP anyway, so a forged `X-Forwarded-Proto`
//!   over HTTP cannot pin a site to HTTPS.
//!
//! A handler that sets one of these headers itself keeps its own value.

use crate::auth::is_tls;
use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The policy of every page (charts are inline SVG, recordings and greetings `<audio>` from here).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; \
img-src 'self'; media-src 'self'; connect-src 'self'; font-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// One year: browsers remember to use HTTPS only for this site.
pub const HSTS: &str = "max-age=31536000";

/// The middleware. Its state is `force_tls` (the `[http] secure_cookies` setting).
pub async fn add(State(force_tls): State<bool>, req: Request, next: Next) -> Response {
    let tls = is_tls(req.headers(), force_tls);
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.entry(X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    h.entry(X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    if tls {
        h.entry(STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(HSTS));
    }
    resp
}

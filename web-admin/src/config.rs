//! The web admin's settings ([`WebConfig`]), filled by the binary from its config file. Its own module
//! (re-exported as `oncall_web::WebConfig`) so the state and handlers can use it without importing `lib.rs`,
//! which builds the application from them.

use crate::metrics_access::MetricsAccess;
use crate::{client_addr, rate_limit};
use std::path::PathBuf;

/// Settings of the web admin, filled by the binary from its config.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `storage.data_dir`: uploaded greetings go to `<data_dir>/sounds/<org-slug>/greeting.wav`.
    pub data_dir: PathBuf,
    /// Mark cookies `Secure` always. Without it they are `Secure` only when the request came
    /// over TLS (a reverse proxy sending `X-Forwarded-Proto: https`).
    pub force_secure_cookies: bool,
    /// How long a login lasts.
    pub session_hours: i64,
    /// The IVR menu shown (and used) until an organization saves its own: the config file's `[ivr]`.
    pub default_ivr: oncall_ivr::IvrConfig,
    /// The login rate limiter's rule (tests shorten its backoffs).
    pub login_policy: rate_limit::LoginPolicy,
    /// Peers whose `X-Forwarded-For` names the client (the login limiter's per-source key): `[http] trusted_proxies`.
    pub trusted_proxies: Vec<client_addr::TrustedProxy>,
    /// Who may read `/metrics` (loopback peers by default).
    pub metrics_access: MetricsAccess,
    /// Largest body of a form or JSON request; bigger ones get 413.
    pub max_body_bytes: usize,
    /// Largest upload, on the routes that take one (the IVR greeting).
    pub max_upload_bytes: usize,
    /// Where managers may point webhooks (`[webhooks] allow_private`; issue #15, SSRF).
    pub webhook_destinations: oncall_core::destination::DestinationPolicy,
    /// The prompts calls can play (built in, plus `[storage] sounds_dir`): a menu is checked against them before
    /// it is saved, and the phone-menu page plays them.
    pub prompts: std::sync::Arc<oncall_recordings::PromptLibrary>,
    /// Whether paging can reach people now (trunks, texts, registered phones): the dashboard's and the
    /// People page's warnings. [`NotKnown`](crate::reachability::NotKnown) until the binary sets the paging side's.
    pub reachability: std::sync::Arc<dyn crate::reachability::Reachability>,
}

impl WebConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> WebConfig {
        WebConfig {
            data_dir: data_dir.into(),
            force_secure_cookies: false,
            session_hours: 12,
            default_ivr: oncall_ivr::IvrConfig::default(),
            login_policy: rate_limit::LoginPolicy::default(),
            trusted_proxies: client_addr::loopback_proxies(),
            metrics_access: MetricsAccess::Loopback,
            max_body_bytes: 64 * 1024,
            max_upload_bytes: 25 * 1024 * 1024,
            webhook_destinations: Default::default(),
            prompts: std::sync::Arc::new(oncall_recordings::PromptLibrary::embedded().unwrap_or_default()),
            reachability: std::sync::Arc::new(crate::reachability::NotKnown),
        }
    }
}

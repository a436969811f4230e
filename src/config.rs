//! OnCall's configuration: one TOML file, every key overridable by `ONCALL_<SECTION>_<KEY>`
//! environment variables, validated at start-up with messages that name the key.
//! `docs/configuration.md` documents every key; keep the two in step.

use anyhow::{bail, Context, Result};
use oncall_ivr::IvrConfig;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub sip: SipConfig,
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub ivr: IvrConfig,
    pub log: LogConfig,
    /// SIP trunks (`[[trunks]]`): providers OnCall registers with, or PBXs it accepts calls from.
    pub trunks: Vec<TrunkConfig>,
    pub paging: PagingConfig,
    pub instance: InstanceConfig,
    pub webhooks: WebhooksConfig,
    pub registrar: RegistrarSection,
    /// `[texts]`: text-message notifications and replies (issue 6 item 6).
    pub texts: TextsConfig,
    /// `[redirect]`: `oncall-<schedule>@` answered with a 302 to the on-call people (issue 7 item 4).
    pub redirect: RedirectConfig,
    /// `[business_hours]`: opening times seeding the organization's business hours (issue 7 item 1).
    pub business_hours: BusinessHoursConfig,
    /// `[dial_plan]`: which numbers may be called or texted through a trunk (issue #15 item 4).
    pub dial_plan: DialPlanConfig,
}

/// `[dial_plan]`: E.164 prefixes allowed and denied for calls and texts through a trunk; the longest
/// matching prefix decides (`oncall_core::dial_plan`). `denied_prefixes` adds to the built-in list of
/// premium, shared-cost and satellite ranges; allowing one of those exactly lets it back in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialPlanConfig {
    /// `["+"]`: every country. `["+1", "+44"]`: North America and the UK only.
    pub allowed_prefixes: Vec<String>,
    pub denied_prefixes: Vec<String>,
}

impl Default for DialPlanConfig {
    fn default() -> Self {
        DialPlanConfig { allowed_prefixes: vec!["+".into()], denied_prefixes: Vec::new() }
    }
}

impl DialPlanConfig {
    pub fn plan(&self) -> Result<oncall_core::dial_plan::DialPlan, oncall_core::dial_plan::DialPlanError> {
        oncall_core::dial_plan::DialPlan::new(&self.allowed_prefixes, &self.denied_prefixes)
    }
}

/// `[business_hours]`: weekly opening times in `time_zone` and closed dates. Written to the database at
/// start-up only when the organization has none stored yet: after that the web page (Business hours) is
/// what counts, and this section is ignored (a note is logged). No day set: no business hours from the
/// config (always open unless set on the web).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BusinessHoursConfig {
    /// IANA zone the hours are in; empty: the organization's zone.
    pub time_zone: String,
    /// `"08:00-18:00"`, several as `"08:00-12:00, 13:00-17:00"`, or `"closed"` / absent.
    pub monday: Option<String>,
    pub tuesday: Option<String>,
    pub wednesday: Option<String>,
    pub thursday: Option<String>,
    pub friday: Option<String>,
    pub saturday: Option<String>,
    pub sunday: Option<String>,
    /// Holidays and closures, `YYYY-MM-DD`, in the business hours' zone.
    pub closed: Vec<String>,
}

impl BusinessHoursConfig {
    fn days(&self) -> [Option<&str>; 7] {
        [&self.monday, &self.tuesday, &self.wednesday, &self.thursday, &self.friday, &self.saturday, &self.sunday].map(|d| d.as_deref())
    }

    /// Whether the section sets any hours at all.
    pub fn is_set(&self) -> bool {
        self.days().iter().any(Option::is_some)
    }

    /// The hours, with `org_zone` when `time_zone` is empty; `Ok(None)` when no day is set. Errors name the
    /// key (`business_hours.monday: ...`).
    pub fn hours(&self, org_zone: &str) -> Result<Option<oncall_core::BusinessHours>> {
        if !self.is_set() {
            if !self.closed.is_empty() || !self.time_zone.is_empty() {
                bail!("business_hours: set the opening hours of at least one day (monday = \"08:00-18:00\")");
            }
            return Ok(None);
        }
        let zone = if self.time_zone.trim().is_empty() { org_zone } else { self.time_zone.as_str() };
        let days = self.days().map(|d| d.unwrap_or(""));
        oncall_core::BusinessHours::parse(zone, days, &self.closed).map(Some).map_err(|e| anyhow::anyhow!("business_hours.{e}"))
    }
}

/// `[redirect]`: an INVITE to `oncall-<schedule>@` is answered `302 Moved Temporarily` with the
/// on-call people's phones as Contacts (see `src/redirect.rs`, `docs/pbx.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedirectConfig {
    /// On by default; off, `oncall-...` users are ordinary calls to the IVR.
    pub enabled: bool,
    /// Addresses or CIDR ranges (besides every `[[trunks]]` entry's `allowed_sources`, and phones
    /// registered with OnCall) that may ask for a redirect; anyone else gets 403, since a 302 lists
    /// employees' numbers.
    pub allowed_sources: Vec<String>,
    /// At most this many Contacts in one 302 (q-values step down by 1/this from 1.0).
    pub max_contacts: usize,
}

impl Default for RedirectConfig {
    fn default() -> Self {
        RedirectConfig { enabled: true, allowed_sources: Vec::new(), max_contacts: 10 }
    }
}

impl RedirectConfig {
    pub fn sources(&self) -> Vec<SourceNet> {
        self.allowed_sources.iter().filter_map(|s| s.parse::<SourceNet>().ok()).collect()
    }

    fn validate(&self) -> Result<()> {
        for src in &self.allowed_sources {
            if src.parse::<SourceNet>().is_err() {
                bail!("redirect.allowed_sources: {src:?} is not an IP address or CIDR range");
            }
        }
        if !(1..=20).contains(&self.max_contacts) {
            bail!("redirect.max_contacts ({}) must be between 1 and 20", self.max_contacts);
        }
        Ok(())
    }
}

/// `[texts]`: how `text` notifications are sent (an HTTP SMS gateway, Twilio-compatible by default,
/// or SIP MESSAGE) and how replies come back (`POST /api/v1/texts/inbound`, or SIP MESSAGE).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextsConfig {
    /// Off: a `text` notification fails at once (the escalation moves on) and replies are refused.
    pub enabled: bool,
    /// `"http"`: the SMS gateway at `url` (people's SIP URIs still get SIP MESSAGE); `"sip"`: SIP
    /// MESSAGE, phone numbers through the first `[[trunks]]` entry, SIP URIs directly.
    pub transport: String,
    /// The gateway's endpoint, e.g. `https://api.twilio.com/2010-04-01/Accounts/<sid>/Messages.json`.
    pub url: String,
    /// HTTP basic auth user (Twilio: the account SID); empty sends no Authorization.
    pub account: String,
    /// HTTP basic auth password (Twilio: the auth token).
    pub token: String,
    /// The sender: a number the gateway lets us send from (`{from}`), or the From URI of SIP MESSAGEs.
    pub from: String,
    /// `"form"` (application/x-www-form-urlencoded) or `"json"`: how placeholders are escaped.
    pub body_format: String,
    /// The request body with `{to}`, `{from}` and `{body}`; empty: `To={to}&From={from}&Body={body}`
    /// (form) or `{"to":"{to}","from":"{from}","body":"{body}"}` (json).
    pub body_template: String,
    /// How long the gateway or the SIP peer has to accept a text.
    pub timeout_secs: u64,
    /// Shared secret of the inbound webhook (`?token=` or `X-OnCall-Token`), at least 32 characters;
    /// empty refuses every reply. Used when `inbound_signature = "token"`.
    pub inbound_token: String,
    /// How an inbound webhook post proves it is the gateway's: `"token"` (`inbound_token`) or
    /// `"twilio"` (`X-Twilio-Signature` under `token`, over `[http] public_url` + path).
    pub inbound_signature: String,
    /// Inbound webhook posts accepted per minute from one source address (0: no limit).
    pub inbound_posts_per_minute: u32,
    /// Refused inbound posts (bad signature or token) from one source address within 15 minutes
    /// before it gets 429 for the rest of them (0: no limit).
    pub inbound_max_failures: u32,
}

/// Shortest `[texts] inbound_token` accepted: it is all that stands between the internet and
/// acknowledging someone's emergency (issue 15 item 1).
pub const MIN_INBOUND_TOKEN_LEN: usize = 32;

impl Default for TextsConfig {
    fn default() -> Self {
        TextsConfig {
            enabled: false,
            transport: "http".into(),
            url: String::new(),
            account: String::new(),
            token: String::new(),
            from: String::new(),
            body_format: "form".into(),
            body_template: String::new(),
            timeout_secs: 10,
            inbound_token: String::new(),
            inbound_signature: "token".into(),
            inbound_posts_per_minute: 60,
            inbound_max_failures: 5,
        }
    }
}

impl TextsConfig {
    fn validate(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        match self.transport.as_str() {
            "http" => {
                if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
                    bail!("texts.url ({:?}) must start with http:// or https:// when texts.transport = \"http\"", self.url);
                }
            }
            "sip" => {}
            other => bail!("texts.transport ({other:?}) must be \"http\" or \"sip\""),
        }
        if !matches!(self.body_format.as_str(), "form" | "json") {
            bail!("texts.body_format ({:?}) must be \"form\" or \"json\"", self.body_format);
        }
        match self.inbound_signature.as_str() {
            "token" => {
                let len = self.inbound_token.chars().count();
                if len > 0 && len < MIN_INBOUND_TOKEN_LEN {
                    bail!("texts.inbound_token is {len} characters; it must be at least {MIN_INBOUND_TOKEN_LEN} (or empty to refuse every inbound text)");
                }
            }
            "twilio" => {
                if self.token.is_empty() {
                    bail!("texts.inbound_signature = \"twilio\" checks X-Twilio-Signature with the auth token: set texts.token");
                }
            }
            other => bail!("texts.inbound_signature ({other:?}) must be \"token\" or \"twilio\""),
        }
        if self.timeout_secs == 0 || self.timeout_secs > 120 {
            bail!("texts.timeout_secs ({}) must be between 1 and 120", self.timeout_secs);
        }
        Ok(())
    }
}

/// `[registrar]`: OnCall as a SIP registrar for employees' own phones (issue 6 item 2; accounts are
/// created with `oncall person sip-account`). Lockout limits count failed digest answers (issue 9 item 3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarSection {
    /// Off: REGISTER gets 405 as from any endpoint. On: every REGISTER is challenged (401).
    pub enabled: bool,
    /// Digest realm; part of every stored key, so changing it means setting every password again.
    pub realm: String,
    pub min_expires_secs: u32,
    pub max_expires_secs: u32,
    pub default_expires_secs: u32,
    pub max_devices_per_account: usize,
    /// Digest algorithms challenged with, in order: "MD5", "SHA-256". Some phones (baresip 1.0) fail on a
    /// 401 that offers an algorithm they do not know: give them ["MD5"].
    pub algorithms: Vec<String>,
    /// Failed digest answers from one source IP within the window before it is locked out (0: never).
    pub lockout_source_attempts: u32,
    /// Failed digest answers for one username within the window before it is locked out (0: never).
    pub lockout_account_attempts: u32,
    pub lockout_window_secs: u64,
    pub lockout_secs: u64,
}

impl Default for RegistrarSection {
    fn default() -> Self {
        RegistrarSection {
            enabled: false,
            realm: "oncall".into(),
            min_expires_secs: 60,
            max_expires_secs: 3600,
            default_expires_secs: 3600,
            max_devices_per_account: 10,
            algorithms: vec!["MD5".into(), "SHA-256".into()],
            lockout_source_attempts: 10,
            lockout_account_attempts: 5,
            lockout_window_secs: 300,
            lockout_secs: 900,
        }
    }
}

impl RegistrarSection {
    fn validate(&self) -> Result<()> {
        if self.realm.trim().is_empty() || self.realm.contains(['"', '\\', '\r', '\n']) {
            bail!("registrar.realm must be non-empty and hold no quote, backslash or line break");
        }
        if self.min_expires_secs == 0 || self.min_expires_secs > self.max_expires_secs {
            bail!("registrar.min_expires_secs ({}) must be at least 1 and at most registrar.max_expires_secs ({})", self.min_expires_secs, self.max_expires_secs);
        }
        if self.default_expires_secs < self.min_expires_secs || self.default_expires_secs > self.max_expires_secs {
            bail!("registrar.default_expires_secs ({}) must lie between registrar.min_expires_secs and registrar.max_expires_secs", self.default_expires_secs);
        }
        if self.algorithms.is_empty() || self.algorithms.iter().any(|a| !a.eq_ignore_ascii_case("MD5") && !a.eq_ignore_ascii_case("SHA-256")) {
            bail!("registrar.algorithms must list \"MD5\" and/or \"SHA-256\" (got {:?})", self.algorithms);
        }
        if self.max_devices_per_account == 0 {
            bail!("registrar.max_devices_per_account must be at least 1");
        }
        if self.lockout_window_secs == 0 || self.lockout_secs == 0 {
            bail!("registrar.lockout_window_secs and registrar.lockout_secs must be at least 1");
        }
        Ok(())
    }
}

/// `[webhooks]`: sending request events to the webhooks managers add on the web (issue 7,
/// docs/webhooks.md). The webhooks themselves live in the database; this is how they are sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Run the sender on this instance (any number of instances may: deliveries are leased).
    pub enabled: bool,
    /// How often the queue is looked at.
    pub poll_interval_ms: u64,
    /// How long a receiver has to answer one POST.
    pub timeout_secs: u64,
    /// The wait after the first failed attempt; it doubles after each further failure...
    pub retry_initial_ms: u64,
    /// ... up to this.
    pub retry_max_secs: u64,
    /// Attempts before a delivery is given up (shown as failed, retryable on the web); 0: never give up.
    pub max_attempts: u32,
    /// The site's address as people reach it (e.g. `https://oncall.example.com`): payloads then
    /// link to the request. Empty: no link.
    pub public_url: Option<String>,
    /// Address blocks (CIDRs such as `"10.1.0.0/16"`, `"127.0.0.1/32"`) webhooks may reach although
    /// they are not public (issue #15: loopback, private, link-local ... are refused otherwise).
    pub allow_private: Vec<String>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig { enabled: true, poll_interval_ms: 1000, timeout_secs: 10, retry_initial_ms: 1000, retry_max_secs: 3600, max_attempts: 20, public_url: None, allow_private: Vec::new() }
    }
}

impl WebhooksConfig {
    pub fn retry_policy(&self) -> oncall_core::webhook::RetryPolicy {
        oncall_core::webhook::RetryPolicy {
            initial: oncall_core::Millis(i64::try_from(self.retry_initial_ms).unwrap_or(i64::MAX)),
            max_delay: oncall_core::Millis::seconds(i64::try_from(self.retry_max_secs).unwrap_or(i64::MAX / 1000)),
            max_attempts: (self.max_attempts > 0).then_some(self.max_attempts),
        }
    }

    /// Which addresses webhooks may be sent to (validated at start-up, so the parse cannot fail then).
    pub fn destination_policy(&self) -> oncall_core::destination::DestinationPolicy {
        oncall_core::destination::DestinationPolicy { allow_private: self.allow_private.iter().filter_map(|c| c.parse().ok()).collect() }
    }

    fn validate(&self) -> Result<()> {
        for (i, c) in self.allow_private.iter().enumerate() {
            if let Err(e) = c.parse::<oncall_core::destination::Cidr>() {
                bail!("webhooks.allow_private[{i}]: {e}");
            }
        }
        if self.poll_interval_ms < 50 || self.poll_interval_ms > 600_000 {
            bail!("webhooks.poll_interval_ms ({}) must be between 50 and 600000", self.poll_interval_ms);
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            bail!("webhooks.timeout_secs ({}) must be between 1 and 300", self.timeout_secs);
        }
        if self.retry_initial_ms == 0 {
            bail!("webhooks.retry_initial_ms must be at least 1");
        }
        if self.retry_max_secs.saturating_mul(1000) < self.retry_initial_ms {
            bail!("webhooks.retry_max_secs ({}) must not be below webhooks.retry_initial_ms ({} ms)", self.retry_max_secs, self.retry_initial_ms);
        }
        if let Some(url) = self.public_url.as_deref().filter(|u| !u.is_empty()) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("webhooks.public_url ({url:?}) must start with http:// or https://");
            }
        }
        Ok(())
    }
}

/// `[instance]`: this process among several sharing one database (issue 10).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct InstanceConfig {
    /// Names this instance in leases on escalations, logs and /metrics; empty: the host name. Two
    /// instances sharing a database need different ids; keep it stable across restarts, so a
    /// restarted instance takes its own escalations back at once instead of after the lease.
    pub id: String,
}

impl InstanceConfig {
    pub fn id(&self) -> String {
        if !self.id.trim().is_empty() {
            return self.id.trim().to_string();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "oncall".into())
    }
}

/// `[paging]`: phoning whoever is on call when a caller chose "page on-call" (issue 6).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagingConfig {
    /// On by default: a "page on-call" request phones (or texts) whoever is on call. Off: requests are opened
    /// and stored, nobody is phoned, and callers are released after their message.
    pub enabled: bool,
    /// How long the employee has to press a key after each announcement.
    pub key_timeout_secs: u64,
    /// Announcements repeated without a key press before it counts as a decline.
    pub max_retries: u32,
    /// How long a "page on-call" caller holds for an employee (music) before being released with
    /// "someone will get back to you"; 0 releases them right after their message (no live bridge).
    pub max_hold_secs: u64,
    /// Key 7 on a page call: the step is paged again after this long.
    pub snooze_secs: u64,
    /// Requests paged per organization in any hour with trunk calls and texts (issue #15 item 4); beyond it a
    /// request still opens and rings registered phones and SIP URIs, but costs nothing. 0: no cap.
    pub max_pages_per_hour: u32,
}

impl Default for PagingConfig {
    fn default() -> Self {
        PagingConfig { enabled: true, key_timeout_secs: 8, max_retries: 2, max_hold_secs: 300, snooze_secs: 900, max_pages_per_hour: 60 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    pub listen_udp: SocketAddr,
    pub listen_tcp: SocketAddr,
    /// Address put in Via/Contact/SDP when the listen address is a wildcard or behind NAT.
    pub advertise: Option<std::net::IpAddr>,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Ring (180) this long before answering; 0 answers at once.
    pub answer_after_ms: u64,
    /// Media threads; 0 = one per CPU core.
    pub media_threads: usize,
    /// Sent as Server/User-Agent; empty sends none (scanners learn nothing).
    pub server_header: String,
    pub max_tcp_connections: usize,
    pub tcp_idle_timeout_secs: u64,
    /// A TCP message must arrive whole within this long of its first byte (slowloris).
    pub tcp_message_timeout_secs: u64,
    /// Calls held at once; beyond it new calls get 503 with Retry-After. 0 = no limit.
    pub max_calls: usize,
    /// New calls per second accepted from one source address (0 = no limit), and the burst above it. On by
    /// default (issue #15 item 4: anonymous callers page people); sources in a trunk's `allowed_sources` are
    /// limited by `trusted_calls_per_second_per_source` instead.
    pub calls_per_second_per_source: f64,
    pub call_burst_per_source: f64,
    /// The same for a trunk or PBX listed in `[[trunks]] allowed_sources` (it carries many callers); 0 = no limit.
    pub trusted_calls_per_second_per_source: f64,
    /// On SIGTERM, how long calls in progress may continue before OnCall hangs them up.
    pub shutdown_drain_secs: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen_udp: "127.0.0.1:5060".parse().expect("literal address"),
            listen_tcp: "127.0.0.1:5060".parse().expect("literal address"),
            advertise: None,
            rtp_port_min: 20000,
            rtp_port_max: 30000,
            answer_after_ms: 0,
            media_threads: 0,
            server_header: String::new(),
            max_tcp_connections: 1024,
            tcp_idle_timeout_secs: 120,
            tcp_message_timeout_secs: 30,
            max_calls: 4000,
            calls_per_second_per_source: 5.0,
            call_burst_per_source: 20.0,
            trusted_calls_per_second_per_source: 0.0,
            shutdown_drain_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The site's address as people reach it (e.g. `https://oncall.example.com`), for links in texts;
    /// unset: built from `listen`.
    pub public_url: Option<String>,
    /// Treat every request as HTTPS: `Secure` cookies and HSTS even when the TLS proxy in front does not send
    /// `X-Forwarded-Proto: https` (issue 15 item 7).
    pub secure_cookies: bool,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client, for the login
    /// limiter's per-source key (issue 15); default the same host's proxy, 127.0.0.1 and ::1.
    pub trusted_proxies: Vec<String>,
    /// HTTP connections open at once (issue 15 item 2); more wait in the listen backlog. 0: sized from the
    /// open-file limit after the SIP/RTP reserve (see `src/fd_budget.rs`); a larger value is cut to that room.
    pub max_connections: usize,
    /// A request head must be complete within this long (also how long a quiet keep-alive connection stays).
    pub header_read_timeout_secs: u64,
    /// A connection moving no byte either way for this long is closed.
    pub idle_timeout_secs: u64,
    /// A request, body included, must be handled within this long (else 408).
    pub request_timeout_secs: u64,
    /// Who may read `/metrics`: `"loopback"` (peers on 127.0.0.0/8 or ::1, not proxied), `"token"`
    /// (`Authorization: Bearer <metrics_token>`, from anywhere) or `"open"`.
    pub metrics_access: String,
    /// The bearer token for `metrics_access = "token"` (at least 16 characters).
    pub metrics_token: String,
    /// Largest request body of forms and JSON (bytes).
    pub max_body_bytes: usize,
    /// Largest upload (the IVR greeting), in bytes.
    pub max_upload_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".parse().expect("literal address"),
            public_url: None,
            secure_cookies: false,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            max_connections: 0,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            request_timeout_secs: 300,
            metrics_access: "loopback".into(),
            metrics_token: String::new(),
            max_body_bytes: 64 * 1024,
            max_upload_bytes: 25 * 1024 * 1024,
        }
    }
}

impl HttpConfig {
    /// `trusted_proxies` parsed (checked at start-up by [`HttpConfig::validate`]).
    pub fn trusted_proxies(&self) -> Result<Vec<oncall_web::client_addr::TrustedProxy>> {
        self.trusted_proxies.iter().map(|p| p.parse().map_err(|e| anyhow::anyhow!("http.trusted_proxies: {e}"))).collect()
    }

    /// `metrics_access` and `metrics_token` as the web crate's type (validated by [`HttpConfig::validate`]).
    pub fn metrics_access(&self) -> oncall_web::MetricsAccess {
        match self.metrics_access.as_str() {
            "open" => oncall_web::MetricsAccess::Open,
            "token" => oncall_web::MetricsAccess::Token(self.metrics_token.clone()),
            _ => oncall_web::MetricsAccess::Loopback,
        }
    }

    fn validate(&self) -> Result<()> {
        self.trusted_proxies()?;
        for (key, v) in [("header_read_timeout_secs", self.header_read_timeout_secs), ("idle_timeout_secs", self.idle_timeout_secs), ("request_timeout_secs", self.request_timeout_secs)] {
            if !(1..=3600).contains(&v) {
                bail!("http.{key} ({v}) must be between 1 and 3600");
            }
        }
        match self.metrics_access.as_str() {
            "loopback" | "open" => {}
            "token" if self.metrics_token.len() >= 16 => {}
            "token" => bail!("http.metrics_token must be at least 16 characters with http.metrics_access = \"token\""),
            other => bail!("http.metrics_access ({other:?}) must be \"loopback\", \"token\" or \"open\""),
        }
        if self.max_body_bytes < 1024 {
            bail!("http.max_body_bytes ({}) must be at least 1024", self.max_body_bytes);
        }
        if self.max_upload_bytes < self.max_body_bytes {
            bail!("http.max_upload_bytes ({}) must be at least http.max_body_bytes ({})", self.max_upload_bytes, self.max_body_bytes);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// Default: SQLite at `<data_dir>/oncall.db`. `postgres://...` for PostgreSQL.
    pub database_url: Option<String>,
    /// Default: `<data_dir>/recordings`.
    pub recordings_dir: Option<PathBuf>,
    /// Prompt files that replace or add to the prompts built into the binary (by file stem); unset: built-in only.
    pub sounds_dir: Option<PathBuf>,
    /// Where finished recordings are archived: "local" (the recordings folder itself) or "s3".
    pub backend: oncall_recordings::storage::Backend,
    /// Keep the local spool copy after a verified upload.
    pub keep_spool: bool,
    /// Delete recordings older than this many days (unset: keep forever); per organization slug below.
    pub retention_days: Option<u32>,
    pub retention_by_org: std::collections::BTreeMap<String, u32>,
    /// Serve playback as a redirect to a presigned S3 URL valid this long (unset: stream through OnCall).
    pub presign_secs: Option<u64>,
    pub s3: Option<oncall_recordings::storage::S3Settings>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data"),
            database_url: None,
            recordings_dir: None,
            sounds_dir: None,
            backend: Default::default(),
            keep_spool: false,
            retention_days: None,
            retention_by_org: Default::default(),
            presign_secs: None,
            s3: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `oncall=debug,info`; RUST_LOG wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into() }
    }
}

/// One `[[trunks]]` entry: a provider's registrar OnCall registers with (`register = true`), or a
/// PBX that sends calls without registration (`register = false`, usually with `allowed_sources`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrunkConfig {
    /// Shown in logs, /healthz and /metrics.
    pub name: String,
    /// `host:port`, `host` (port 5060) or a SIP URI such as `sip:sip.example.net:5060`; an IP address
    /// (no DNS lookups yet).
    pub registrar: String,
    /// "udp" or "tcp".
    pub transport: String,
    pub username: String,
    pub password: String,
    /// The domain of the address of record `sip:<username>@<domain>`; default: the registrar's host.
    pub domain: Option<String>,
    /// E.164 number or SIP URI used as From for outbound calls through this trunk.
    pub caller_id: Option<String>,
    /// Register with the registrar; false = PBX mode (no registration).
    pub register: bool,
    /// IP addresses or CIDR ranges INVITEs are accepted from (PBX mode). When any trunk lists some,
    /// INVITEs from every other address get 403.
    pub allowed_sources: Vec<String>,
    /// The registration expiry asked for, in seconds.
    pub expires_secs: u32,
}

impl Default for TrunkConfig {
    fn default() -> Self {
        TrunkConfig {
            name: String::new(),
            registrar: String::new(),
            transport: "udp".into(),
            username: String::new(),
            password: String::new(),
            domain: None,
            caller_id: None,
            register: true,
            allowed_sources: Vec::new(),
            expires_secs: 3600,
        }
    }
}

/// An allowed source: one address or a CIDR range (core's address block type).
pub use oncall_core::destination::Cidr as SourceNet;

impl TrunkConfig {
    /// The registrar as (host, port, transport), from `host:port`, `host` or a SIP URI.
    pub fn registrar_parts(&self) -> Result<(String, u16, &'static str), String> {
        let transport = match self.transport.to_ascii_lowercase().as_str() {
            "udp" => "udp",
            "tcp" => "tcp",
            other => return Err(format!("transport must be \"udp\" or \"tcp\", not {other:?}")),
        };
        let r = self.registrar.trim();
        let hostport = match r.split_once(':') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sip") => rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest),
            _ => r,
        };
        let hostport = hostport.split(';').next().unwrap_or(hostport);
        if hostport.is_empty() {
            return Err("registrar is empty".into());
        }
        let (host, port) = oncall_sip::message::uri::split_hostport(hostport).map_err(|e| format!("registrar {r:?}: {e}"))?;
        Ok((host.trim_matches(|c| c == '[' || c == ']').to_string(), port.unwrap_or(5060), transport))
    }

    /// The registrar's socket address (an IP literal: no DNS yet).
    pub fn registrar_addr(&self) -> Result<SocketAddr, String> {
        let (host, port, _) = self.registrar_parts()?;
        let ip: IpAddr = host.parse().map_err(|_| format!("registrar host {host:?} must be an IP address (DNS names are not resolved yet)"))?;
        Ok(SocketAddr::new(ip, port))
    }

    /// `sip:<username>@<domain>`.
    pub fn aor(&self) -> String {
        let domain = self.domain.clone().unwrap_or_else(|| self.registrar_parts().map(|(h, p, _)| if p == 5060 { h } else { format!("{h}:{p}") }).unwrap_or_default());
        format!("sip:{}@{}", self.username, domain)
    }

    pub fn sources(&self) -> Vec<SourceNet> {
        self.allowed_sources.iter().filter_map(|s| s.parse::<SourceNet>().ok()).collect()
    }
}

impl StorageConfig {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("oncall.db").display()))
    }
    pub fn recordings_dir(&self) -> PathBuf {
        self.recordings_dir.clone().unwrap_or_else(|| self.data_dir.join("recordings"))
    }

    /// The archive part of the storage settings, as the recordings crate takes them.
    pub fn archive(&self) -> oncall_recordings::storage::ArchiveSettings {
        oncall_recordings::storage::ArchiveSettings {
            backend: self.backend,
            keep_spool: self.keep_spool,
            retention_days: self.retention_days,
            retention_by_org: self.retention_by_org.clone(),
            presign_secs: self.presign_secs,
            s3: self.s3.clone(),
        }
    }
}

impl Config {
    /// Reads the file (if given; a missing default file is fine), applies env overrides, validates.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let mut table: toml::Table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?;
                text.parse().with_context(|| format!("parsing {}", p.display()))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, std::env::vars())?;
        let cfg: Config = Config::deserialize(toml::Value::Table(table)).context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        self.webhooks.validate()?;
        self.registrar.validate()?;
        self.texts.validate()?;
        if self.texts.enabled && self.texts.inbound_signature == "twilio" && self.http.public_url.as_deref().unwrap_or("").is_empty() {
            bail!("texts.inbound_signature = \"twilio\" needs http.public_url (Twilio signs the URL it posts to)");
        }
        self.redirect.validate()?;
        self.http.validate()?;
        self.dial_plan.plan().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.business_hours.hours("UTC")?;
        if let Some(url) = self.http.public_url.as_deref().filter(|u| !u.is_empty()) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("http.public_url ({url:?}) must start with http:// or https://");
            }
        }
        if self.paging.key_timeout_secs == 0 || self.paging.key_timeout_secs > 120 {
            bail!("paging.key_timeout_secs ({}) must be between 1 and 120", self.paging.key_timeout_secs);
        }
        if self.sip.rtp_port_min >= self.sip.rtp_port_max {
            bail!("sip.rtp_port_min ({}) must be below sip.rtp_port_max ({})", self.sip.rtp_port_min, self.sip.rtp_port_max);
        }
        if self.sip.rtp_port_max - self.sip.rtp_port_min < 4 {
            bail!("sip.rtp_port_min..sip.rtp_port_max must hold at least two RTP/RTCP pairs");
        }
        if self.ivr.timeout_secs == 0 {
            bail!("ivr.timeout_secs must be at least 1");
        }
        if self.ivr.max_message_secs == 0 {
            bail!("ivr.max_message_secs must be at least 1");
        }
        self.storage.archive().validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.trunks.iter().enumerate() {
            let key = format!("trunks[{i}]");
            if t.name.trim().is_empty() {
                bail!("{key}.name must be set");
            }
            if !names.insert(t.name.as_str()) {
                bail!("{key}.name {:?} is used by two trunks", t.name);
            }
            for src in &t.allowed_sources {
                if src.parse::<SourceNet>().is_err() {
                    bail!("{key}.allowed_sources: {src:?} is not an IP address or CIDR range");
                }
            }
            if t.register {
                let (_, _, transport) = t.registrar_parts().map_err(|e| anyhow::anyhow!("{key}.registrar / transport: {e}"))?;
                t.registrar_addr().map_err(|e| anyhow::anyhow!("{key}.registrar: {e}"))?;
                if transport == "tcp" {
                    bail!("{key}.transport = \"tcp\": registering over TCP needs outbound TCP connections, not implemented yet (use \"udp\")");
                }
                if t.username.is_empty() {
                    bail!("{key}.username must be set when register = true");
                }
                if t.expires_secs < 10 {
                    bail!("{key}.expires_secs must be at least 10");
                }
            } else if !t.registrar.is_empty() {
                t.registrar_parts().map_err(|e| anyhow::anyhow!("{key}.registrar / transport: {e}"))?;
            }
        }
        let url = self.storage.database_url();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            bail!("storage.database_url must start with sqlite:// or postgres:// (got {url:?})");
        }
        Ok(())
    }
}

/// `ONCALL_SIP_LISTEN_UDP=...` sets `[sip] listen_udp`. Values are parsed as TOML when they can
/// be (numbers, booleans), otherwise taken as strings.
fn apply_env(table: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) -> Result<()> {
    const SECTIONS: [&str; 5] = ["sip", "http", "storage", "ivr", "log"];
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("ONCALL_") else { continue };
        let rest = rest.to_ascii_lowercase();
        let Some((section, key)) = rest.split_once('_') else { continue };
        // Other ONCALL_* variables (ONCALL_CONFIG, ONCALL_PASSWORD, test settings) are not config keys.
        if !SECTIONS.contains(&section) {
            continue;
        }
        let parsed = format!("v = {value}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v"));
        let v = parsed.unwrap_or(toml::Value::String(value.clone()));
        // A double underscore reaches into a nested table: ONCALL_STORAGE_S3__BUCKET sets [storage.s3] bucket.
        let mut path: Vec<&str> = vec![section];
        path.extend(key.split("__"));
        let (leaf, tables) = path.split_last().unwrap_or((&section, &[]));
        let mut cur = &mut *table;
        for sub in tables {
            let entry = cur.entry(sub.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = match entry {
                toml::Value::Table(t) => t,
                _ => bail!("environment variable {name}: config key {sub:?} is not a table"),
            };
        }
        cur.insert(leaf.to_string(), v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut t: toml::Table = "[sip]\nlisten_udp = \"127.0.0.1:5070\"\n".parse().unwrap();
        apply_env(&mut t, [("ONCALL_SIP_LISTEN_UDP".to_string(), "127.0.0.1:6000".to_string()), ("ONCALL_IVR_TIMEOUT_SECS".into(), "2".into())].into_iter()).unwrap();
        apply_env(&mut t, [("ONCALL_STORAGE_S3__BUCKET".to_string(), "calls".to_string())].into_iter()).unwrap();
        let cfg = Config::deserialize(toml::Value::Table(t)).unwrap();
        assert_eq!(cfg.sip.listen_udp.port(), 6000);
        assert_eq!(cfg.storage.s3.map(|s| s.bucket).as_deref(), Some("calls"));
        assert_eq!(cfg.ivr.timeout_secs, 2);
    }

    #[test]
    fn trunks_parse_and_validate() {
        let t: toml::Table = r#"
[[trunks]]
name = "provider"
registrar = "sip:192.0.2.10:5080"
username = "alice"
password = "pw"
expires_secs = 600

[[trunks]]
name = "pbx"
register = false
allowed_sources = ["10.0.0.0/8", "192.0.2.7"]
"#
        .parse()
        .unwrap();
        let cfg = Config::deserialize(toml::Value::Table(t)).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.trunks[0].registrar_addr().unwrap(), "192.0.2.10:5080".parse().unwrap());
        assert_eq!(cfg.trunks[0].aor(), "sip:alice@192.0.2.10:5080");
        assert!(cfg.trunks[0].register && cfg.trunks[0].transport == "udp");
        let nets = cfg.trunks[1].sources();
        assert!(nets[0].contains("10.1.2.3".parse().unwrap()) && !nets[0].contains("11.0.0.1".parse().unwrap()));
        assert!(nets[1].contains("192.0.2.7".parse().unwrap()) && !nets[1].contains("192.0.2.8".parse().unwrap()));
        let mut bad = cfg.clone();
        bad.trunks[1].allowed_sources.push("nope".into());
        assert!(bad.validate().unwrap_err().to_string().contains("trunks[1].allowed_sources"));
        let mut bad = cfg.clone();
        bad.trunks[0].registrar = "sip.example.net".into();
        assert!(bad.validate().unwrap_err().to_string().contains("trunks[0].registrar"));
        let mut bad = cfg;
        bad.trunks[0].transport = "sctp".into();
        assert!(bad.validate().unwrap_err().to_string().contains("trunks[0]"));
    }

    #[test]
    fn business_hours_parse_and_errors_name_the_key() {
        let t: toml::Table = "[business_hours]\ntime_zone = \"Europe/Paris\"\nmonday = \"08:00-18:00\"\nsaturday = \"closed\"\nclosed = [\"2026-12-25\"]\n".parse().unwrap();
        let cfg = Config::deserialize(toml::Value::Table(t)).unwrap();
        cfg.validate().unwrap();
        let hours = cfg.business_hours.hours("UTC").unwrap().unwrap();
        assert_eq!(hours.time_zone.name(), "Europe/Paris");
        assert_eq!(hours.closures.len(), 1);
        assert!(Config::default().business_hours.hours("UTC").unwrap().is_none(), "absent: always open");
        let mut bad = cfg.clone();
        bad.business_hours.tuesday = Some("9-5".into());
        assert!(bad.validate().unwrap_err().to_string().contains("business_hours.tuesday"));
        let mut bad = cfg.clone();
        bad.business_hours.closed = vec!["25/12/2026".into()];
        assert!(bad.validate().unwrap_err().to_string().contains("business_hours.closed[0]"));
        let mut bad = cfg;
        bad.business_hours.time_zone = "Nowhere/Town".into();
        assert!(bad.validate().unwrap_err().to_string().contains("business_hours.time_zone"));
    }

    #[test]
    fn redirect_section_parses_and_errors_name_the_key() {
        let t: toml::Table = "[redirect]\nallowed_sources = [\"192.0.2.20\", \"10.0.0.0/8\"]\nmax_contacts = 5\n".parse().unwrap();
        let cfg = Config::deserialize(toml::Value::Table(t)).unwrap();
        cfg.validate().unwrap();
        assert!(cfg.redirect.enabled);
        assert_eq!(cfg.redirect.sources().len(), 2);
        let mut bad = cfg.clone();
        bad.redirect.allowed_sources.push("pbx.example".into());
        assert!(bad.validate().unwrap_err().to_string().contains("redirect.allowed_sources"));
        let mut bad = cfg;
        bad.redirect.max_contacts = 0;
        assert!(bad.validate().unwrap_err().to_string().contains("redirect.max_contacts"));
    }

    /// Issue #15 item 4: the defaults limit anonymous callers, cap pages and deny premium ranges; a bad prefix is
    /// a start-up error naming the key.
    #[test]
    fn toll_fraud_defaults_and_the_dial_plan_section() {
        let cfg = Config::default();
        assert_eq!((cfg.sip.calls_per_second_per_source, cfg.sip.call_burst_per_source, cfg.sip.trusted_calls_per_second_per_source), (5.0, 20.0, 0.0));
        assert_eq!(cfg.paging.max_pages_per_hour, 60);
        let plan = cfg.dial_plan.plan().unwrap();
        assert!(plan.check(&"+88212345678".parse().unwrap()).is_err());
        let t: toml::Table = "[dial_plan]\nallowed_prefixes = [\"+1\", \"+44\"]\ndenied_prefixes = [\"+4420\"]\n".parse().unwrap();
        let cfg = Config::deserialize(toml::Value::Table(t)).unwrap();
        cfg.validate().unwrap();
        assert!(cfg.dial_plan.plan().unwrap().check(&"+33123456789".parse().unwrap()).is_err());
        let mut bad = cfg;
        bad.dial_plan.allowed_prefixes.push("44".into());
        assert!(bad.validate().unwrap_err().to_string().contains("dial_plan.allowed_prefixes[2]"));
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_named() {
        let t: toml::Table = "[sip]\nlisten_udpp = \"x\"\n".parse().unwrap();
        let e = Config::deserialize(toml::Value::Table(t)).unwrap_err().to_string();
        assert!(e.contains("listen_udpp"), "{e}");
        let mut cfg = Config::default();
        cfg.sip.rtp_port_min = 30000;
        assert!(cfg.validate().unwrap_err().to_string().contains("sip.rtp_port_min"));
        let mut t = toml::Table::new();
        apply_env(&mut t, [("ONCALL_TEST_POSTGRES_URL".to_string(), "x".to_string())].into_iter()).unwrap();
        assert!(t.is_empty(), "variables outside the config sections are not config");
        let mut t = toml::Table::new();
        apply_env(&mut t, [("ONCALL_SIP_NOPE".to_string(), "1".to_string())].into_iter()).unwrap();
        assert!(Config::deserialize(toml::Value::Table(t)).unwrap_err().to_string().contains("nope"), "unknown keys are named");
    }
}

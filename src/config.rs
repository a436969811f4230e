//! OnCall's configuration: one TOML file, every key overridable by `ONCALL_<SECTION>_<KEY>`
//! environment variables, validated at start-up with messages that name the key.
//! `docs/configuration.md` documents every key; keep the two in step.

use anyhow::{bail, Context, Result};
use oncall_ivr::IvrConfig;
pub use oncall_calls::config::{BusinessHoursConfig, RedirectConfig, RegistrarSection, TrunkConfig};
pub use oncall_paging::config::{EmailConfig, PagingConfig, TextsConfig, WebhooksConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
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
    /// `[email]`: alerts by e-mail to `<integration key>@domain` (issue 20).
    pub email: EmailConfig,
    /// `[transcription]`: what callers said, in words (issue 23).
    pub transcription: oncall_transcribe::TranscriptionConfig,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    pub listen_udp: SocketAddr,
    pub listen_tcp: SocketAddr,
    /// SIP over TLS (RFC 3261 §26; usually port 5061): set with `tls_certificate` and `tls_private_key`.
    /// Unset: no TLS listener.
    pub listen_tls: Option<SocketAddr>,
    /// PEM certificate chain (leaf first) and its private key for `listen_tls`; re-read when the files
    /// change (a renewal needs no restart).
    pub tls_certificate: Option<std::path::PathBuf>,
    pub tls_private_key: Option<std::path::PathBuf>,
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
    /// New calls get 503 (Retry-After 5) while the busiest media thread uses more than this share of its 20 ms
    /// tick (smoothed over ~200 ms; waking late counts), so the calls in progress keep their timing. 0 = off.
    pub max_media_load: f64,
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
            listen_tls: None,
            tls_certificate: None,
            tls_private_key: None,
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
            max_media_load: 0.4,
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
    /// open-file limit after the SIP/RTP reserve (see `oncall_web::fd_budget`); a larger value is cut to that room.
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
    /// "text" (the default: one readable line per event) or "json" (one JSON object per line).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Text }
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
        self.paging.validate()?;
        self.email.validate()?;
        self.transcription.choice().map_err(|e| anyhow::anyhow!("{e}"))?;
        if self.sip.listen_tls.is_some() {
            let (Some(cert), Some(key)) = (&self.sip.tls_certificate, &self.sip.tls_private_key) else {
                bail!("sip.listen_tls needs sip.tls_certificate and sip.tls_private_key (PEM files)");
            };
            // Loaded once here so `check` and a start both refuse an expired certificate or a key of another one.
            oncall_sip::transport::tls::server_config(cert, key).map_err(|e| anyhow::anyhow!("sip.tls_certificate / sip.tls_private_key: {e}"))?;
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
        oncall_calls::config::validate_trunks(&self.trunks)?;
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
    // Every table of the file (not [[trunks]], an array). Longest first: business_hours before a "business" section.
    const SECTIONS: [&str; 15] = [
        "business_hours", "transcription", "dial_plan", "registrar", "webhooks", "instance", "redirect", "storage", "paging",
        "email", "texts", "http", "sip", "ivr", "log",
    ];
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("ONCALL_") else { continue };
        let rest = rest.to_ascii_lowercase();
        // Other ONCALL_* variables (ONCALL_CONFIG, ONCALL_PASSWORD, test settings) are not config keys.
        let Some((section, key)) = SECTIONS.iter().find_map(|s| rest.strip_prefix(s)?.strip_prefix('_').map(|k| (*s, k))) else { continue };
        if key.is_empty() {
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
        // Sections with an underscore in their name, and nested tables of them.
        let more = [("ONCALL_BUSINESS_HOURS_TIME_ZONE", "Europe/Paris"), ("ONCALL_TRANSCRIPTION_HTTP__API_KEY", "sk-1"), ("ONCALL_PAGING_ENABLED", "true")];
        apply_env(&mut t, more.into_iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        let cfg = Config::deserialize(toml::Value::Table(t)).unwrap();
        assert_eq!(cfg.transcription.http.api_key.as_deref(), Some("sk-1"));
        assert!(cfg.paging.enabled);
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

    #[test]
    fn the_texts_section_is_validated() {
        let ok: Config =
            toml::from_str("[texts]\nenabled = true\nurl = \"https://gw.example/send\"\n").unwrap();
        ok.validate().unwrap();
        assert_eq!(ok.texts.body_format, "form");
        let off: Config = toml::from_str("[texts]\nurl = \"nonsense\"\n").unwrap();
        off.validate().unwrap();
        for bad in [
            "url = \"gw.example\"",
            "transport = \"smtp\"\nurl = \"http://x\"",
            "body_format = \"xml\"\nurl = \"http://x\"",
            "timeout_secs = 0\nurl = \"http://x\"",
        ] {
            let cfg: Config = toml::from_str(&format!("[texts]\nenabled = true\n{bad}\n")).unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.starts_with("texts."), "{bad}: {e}");
        }
        // Issue 15 item 1: a guessable inbound token, and a Twilio check that cannot be done.
        for (bad, key) in [
            ("inbound_token = \"hook-secret-42\"", "texts.inbound_token"),
            ("inbound_signature = \"hmac\"", "texts.inbound_signature"),
            ("inbound_signature = \"twilio\"", "texts.inbound_signature"),
            ("inbound_signature = \"twilio\"\ntoken = \"tok\"", "texts.inbound_signature"),
        ] {
            let cfg: Config =
                toml::from_str(&format!("[texts]\nenabled = true\nurl = \"http://x\"\n{bad}\n")).unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.starts_with(key), "{bad}: {e}");
        }
        let twilio: Config = toml::from_str(
            "[http]\npublic_url = \"https://oncall.example.com\"\n[texts]\nenabled = true\nurl = \"http://x\"\ninbound_signature = \"twilio\"\ntoken = \"tok\"\n",
        )
        .unwrap();
        twilio.validate().unwrap();
        let long: Config = toml::from_str(&format!(
            "[texts]\nenabled = true\nurl = \"http://x\"\ninbound_token = \"{}\"\n",
            "k".repeat(32)
        ))
        .unwrap();
        long.validate().unwrap();
        let cfg: Config = toml::from_str("[http]\npublic_url = \"oncall.lan\"\n").unwrap();
        assert!(cfg.validate().unwrap_err().to_string().starts_with("http.public_url"));
    }
}

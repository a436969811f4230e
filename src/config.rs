//! OnCall's configuration: one TOML file, every key overridable by `ONCALL_<SECTION>_<KEY>`
//! environment variables, validated at start-up with messages that name the key.
//! `docs/configuration.md` documents every key; keep the two in step.

use anyhow::{bail, Context, Result};
use oncall_ivr::IvrConfig;
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
    /// Calls held at once; beyond it new calls get 503 with Retry-After. 0 = no limit.
    pub max_calls: usize,
    /// New calls per second accepted from one source address (0 = no limit), and the burst above it.
    pub calls_per_second_per_source: f64,
    pub call_burst_per_source: f64,
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
            max_calls: 4000,
            calls_per_second_per_source: 0.0,
            call_burst_per_source: 100.0,
            shutdown_drain_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: "127.0.0.1:8080".parse().expect("literal address") }
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
    pub sounds_dir: PathBuf,
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
            sounds_dir: PathBuf::from("sounds"),
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

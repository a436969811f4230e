//! The calls side's sections of the configuration file: `[[trunks]]`, `[registrar]`, `[redirect]`
//! and `[business_hours]`. The binary composes them into its `Config` (one TOML file, env overrides);
//! each is validated here with messages that name the key.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use oncall_sip::transaction::Transport;
use oncall_sip::transport::TlsPeer;
use oncall_sip::ua::outbound::MediaEncryption;
use oncall_sip::transport::ServerName;
use std::net::{IpAddr, SocketAddr};

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
/// on-call people's phones as Contacts (see `redirect.rs`, `docs/pbx.md`).
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

    pub fn validate(&self) -> Result<()> {
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
    pub fn validate(&self) -> Result<()> {
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
    /// "udp", "tcp" or "tls" (RFC 3261 §26: signalling encrypted, the peer's certificate verified; port 5061
    /// by default). A `sips:` registrar URI means "tls".
    pub transport: String,
    /// SRTP on calls placed through the trunk: "srtp" (required: RTP/SAVP), "optional" (keys offered, plain
    /// RTP if the trunk ignores them) or "none". Empty: "srtp" over TLS, "none" otherwise.
    pub media_encryption: String,
    /// PEM file of the CA (or the self-signed certificate) the trunk's TLS certificate must chain to; default:
    /// the system's roots.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// The name the trunk's certificate must carry; default: `domain`, else the registrar's address.
    pub tls_server_name: Option<String>,
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
    /// The organization (slug) that brings this trunk (issue 17): every call through it is that organization's,
    /// and its people's numbers are called and texted through it; no other organization's are. `None`: shared
    /// by every organization without a trunk of its own.
    pub organization: Option<String>,
}

impl Default for TrunkConfig {
    fn default() -> Self {
        TrunkConfig {
            name: String::new(),
            registrar: String::new(),
            transport: "udp".into(),
            media_encryption: String::new(),
            tls_ca_file: None,
            tls_server_name: None,
            username: String::new(),
            password: String::new(),
            domain: None,
            caller_id: None,
            register: true,
            allowed_sources: Vec::new(),
            expires_secs: 3600,
            organization: None,
        }
    }
}

/// An allowed source: one address or a CIDR range (core's address block type).
pub use oncall_core::destination::Cidr as SourceNet;

impl TrunkConfig {
    /// The registrar as (host, port, transport), from `host:port`, `host` or a SIP URI.
    pub fn registrar_parts(&self) -> Result<(String, u16, &'static str), String> {
        let r = self.registrar.trim();
        let sips = r.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
        let transport = match self.transport.to_ascii_lowercase().as_str() {
            _ if sips => "tls",
            "udp" => "udp",
            "tcp" => "tcp",
            "tls" => "tls",
            other => return Err(format!("transport must be \"udp\", \"tcp\" or \"tls\", not {other:?}")),
        };
        let hostport = match r.split_once(':') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") => rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest),
            _ => r,
        };
        let hostport = hostport.split(';').next().unwrap_or(hostport);
        if hostport.is_empty() {
            return Err("registrar is empty".into());
        }
        let (host, port) = oncall_sip::message::uri::split_hostport(hostport).map_err(|e| format!("registrar {r:?}: {e}"))?;
        let default_port = if transport == "tls" { 5061 } else { 5060 };
        Ok((host.trim_matches(|c| c == '[' || c == ']').to_string(), port.unwrap_or(default_port), transport))
    }

    /// The transport requests to the trunk use.
    pub fn transport(&self) -> Transport {
        match self.registrar_parts().map(|p| p.2) {
            Ok("tls") => Transport::Tls,
            Ok("tcp") => Transport::Tcp,
            _ => Transport::Udp,
        }
    }

    /// SRTP on calls placed through the trunk (`media_encryption`; validated by [`validate_trunks`]).
    pub fn media_encryption(&self) -> Result<MediaEncryption, String> {
        match self.media_encryption.to_ascii_lowercase().as_str() {
            "" if self.transport() == Transport::Tls => Ok(MediaEncryption::Srtp),
            "" | "none" => Ok(MediaEncryption::None),
            "optional" => Ok(MediaEncryption::Optional),
            "srtp" => Ok(MediaEncryption::Srtp),
            other => Err(format!("media_encryption must be \"srtp\", \"optional\" or \"none\", not {other:?}")),
        }
    }

    /// How the trunk's certificate is checked, for a TLS trunk.
    pub fn tls_peer(&self) -> Result<Option<TlsPeer>, String> {
        if self.transport() != Transport::Tls {
            return Ok(None);
        }
        let config = oncall_sip::transport::tls::client_config(self.tls_ca_file.as_deref()).map_err(|e| e.to_string())?;
        let name = match (&self.tls_server_name, &self.domain) {
            (Some(n), _) | (None, Some(n)) => n.clone(),
            (None, None) => self.registrar_parts()?.0,
        };
        let server_name = ServerName::try_from(name.clone()).map_err(|_| format!("tls_server_name {name:?} is not a host name or IP address"))?;
        Ok(Some(TlsPeer { server_name, config }))
    }

    /// The URI scheme and transport parameter of our Contact and the trunk's domain for this transport.
    pub fn contact_for(&self, user: &str, advertised: SocketAddr) -> String {
        match self.transport() {
            Transport::Udp => format!("<sip:{user}@{advertised}>"),
            Transport::Tcp => format!("<sip:{user}@{advertised};transport=tcp>"),
            Transport::Tls => format!("<sip:{user}@{advertised};transport=tls>"),
        }
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

/// Every `[[trunks]]` entry: names set and unique, sources parse, registering trunks usable.
pub fn validate_trunks(trunks: &[TrunkConfig]) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for (i, t) in trunks.iter().enumerate() {
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
                t.registrar_parts().map_err(|e| anyhow::anyhow!("{key}.registrar / transport: {e}"))?;
                t.registrar_addr().map_err(|e| anyhow::anyhow!("{key}.registrar: {e}"))?;
                if t.username.is_empty() {
                    bail!("{key}.username must be set when register = true");
                }
                if t.expires_secs < 10 {
                    bail!("{key}.expires_secs must be at least 10");
                }
            } else if !t.registrar.is_empty() {
                t.registrar_parts().map_err(|e| anyhow::anyhow!("{key}.registrar / transport: {e}"))?;
            }
            t.media_encryption().map_err(|e| anyhow::anyhow!("{key}.{e}"))?;
            t.tls_peer().map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        }
    Ok(())
}

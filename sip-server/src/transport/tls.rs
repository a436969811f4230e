//! TLS for SIP (RFC 3261 §26.2.1): our certificate from PEM files, checked at start and reloaded when
//! the files change, and how peers' certificates are checked when we connect out (system roots or a
//! configured CA, host name verified). rustls on ring, the stack the HTTP clients already build.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: String },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("{0} holds no PEM private key")]
    NoKey(PathBuf),
    #[error("the certificate in {path} expired on {date} (UTC): renew it")]
    Expired { path: PathBuf, date: String },
    #[error("the certificate in {path} is not valid before {date} (UTC)")]
    NotYetValid { path: PathBuf, date: String },
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS setup: {0}")]
    Rustls(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |e: rustls::pki_types::pem::Error| TlsError::Read { path: path.to_path_buf(), error: e.to_string() };
    let certs = CertificateDer::pem_file_iter(path).map_err(read)?.collect::<Result<Vec<_>, _>>().map_err(read)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// A server configuration from a certificate chain and its key, refused with the reason an operator can act
/// on: unreadable, expired or not yet valid (the leaf's dates), or a key of another certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(cert)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    if let Some((not_before, not_after)) = validity(&certs[0]) {
        if now > not_after {
            return Err(TlsError::Expired { path: cert.to_path_buf(), date: format_unix(not_after) });
        }
        if now < not_before {
            return Err(TlsError::NotYetValid { path: cert.to_path_buf(), date: format_unix(not_before) });
        }
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey(key.to_path_buf()),
        e => TlsError::Read { path: key.to_path_buf(), error: e.to_string() },
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch { cert: cert.to_path_buf(), key: key.to_path_buf() },
            e => TlsError::Rustls(e.to_string()),
        })?;
    Ok(Arc::new(config))
}

/// The client configuration for peers we connect to: certificates checked against `ca_file` when given,
/// else the system's roots.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for c in read_certs(path)? {
                roots.add(c).map_err(|e| TlsError::Rustls(format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Our certificate as the listener uses it: swapped for the new one when its files change (a renewal by
/// certbot or ACME), kept when the new files fail to load (logged with the reason).
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
    stamp: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
}

impl ServerTls {
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerTls>, TlsError> {
        let config = server_config(cert, key)?;
        Ok(Arc::new(ServerTls { cert: cert.into(), key: key.into(), current: RwLock::new(config), stamp: RwLock::new(stamps(cert, key)) }))
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads when either file's modification time changed; true when a new certificate is in use.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamps(&self.cert, &self.key);
        if *self.stamp.read().unwrap_or_else(|p| p.into_inner()) == now {
            return false;
        }
        *self.stamp.write().unwrap_or_else(|p| p.into_inner()) = now;
        match server_config(&self.cert, &self.key) {
            Ok(c) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = c;
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "the changed TLS certificate was not loaded; still serving the previous one");
                false
            }
        }
    }

    /// Checks the files every `every` for as long as the runtime lives.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                this.reload_if_changed();
            }
        });
    }
}

fn stamps(cert: &Path, key: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(cert), m(key))
}

/// One DER element: (tag, contents, what follows).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, &b| acc << 8 | b as usize), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The leaf certificate's notBefore and notAfter as Unix seconds (RFC 5280 §4.1.2.5), read straight from
/// the DER: the check an operator needs at start-up without an X.509 crate in the build.
pub fn validity(cert: &[u8]) -> Option<(i64, i64)> {
    let (_, certificate, _) = der(cert).filter(|e| e.0 == 0x30)?;
    let (_, tbs, _) = der(certificate).filter(|e| e.0 == 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = der(rest)?.2; // version
    }
    rest = der(rest)?.2; // serial number
    rest = der(rest)?.2; // signature algorithm
    rest = der(rest)?.2; // issuer
    let (_, validity, _) = der(rest).filter(|e| e.0 == 0x30)?;
    let (t1, before, rest) = der(validity)?;
    let (t2, after, _) = der(rest)?;
    Some((asn1_time(t1, before)?, asn1_time(t2, after)?))
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) to Unix seconds.
fn asn1_time(tag: u8, text: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let n = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let days = days_from_civil(year, n(0)?, n(2)?);
    Some(days * 86400 + n(4)? * 3600 + n(6)? * 60 + n(8)?)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn format_unix(secs: i64) -> String {
    // Inverse of days_from_civil, for the message only.
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn1_times_and_calendar() {
        assert_eq!(asn1_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(asn1_time(0x18, b"20261204052316Z"), Some(1_796_361_796));
        assert_eq!(format_unix(1_796_361_796), "2026-12-04 05:23");
        assert_eq!(asn1_time(0x17, b"4912310000Z"), None);
        assert_eq!(der(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
    }
}

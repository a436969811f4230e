//! The SIP trunks: one sans-IO [`Registration`] per `[[trunks]]` entry that registers, the client
//! transactions they wait on, the PBX-mode source filter, and the board /healthz and /metrics read.
//! The call controller owns [`Trunks`] and drives it from its loop.

use crate::config::{SourceNet, TrunkConfig};
use oncall_sip::message::Header;
use oncall_sip::registration::{Registration, RegistrationStatus, TrunkRegistration};
use oncall_sip::transaction::{Peer, TxKey};
use oncall_sip::ua::UserAgent;
use std::collections::HashMap;
use oncall_sip::transport::Sender;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What /healthz and /metrics show of one trunk, written by the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkRow {
    pub name: String,
    pub state: TrunkState,
    pub detail: String,
}

/// Where a trunk's registration stands; /healthz prints [`TrunkState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkState {
    Registering,
    Registered,
    /// The last attempt failed; the registration retries later.
    Failed,
    /// Unregistered at shutdown.
    Unregistered,
    /// A PBX-mode trunk: calls are accepted from its addresses, nothing registers.
    Pbx,
}

impl TrunkState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkState::Registering => "registering",
            TrunkState::Registered => "registered",
            TrunkState::Failed => "failed",
            TrunkState::Unregistered => "unregistered",
            TrunkState::Pbx => "pbx",
        }
    }
}

impl std::fmt::Display for TrunkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub type TrunkBoard = Arc<Mutex<Vec<TrunkRow>>>;

/// The trunks' registrations (one sans-IO [`Registration`] each), the client transactions they
/// wait on, and the PBX-mode source filter. Owned by the controller, which drives it from its loop.
pub struct Trunks {
    regs: Vec<(String, Registration)>,
    /// REGISTER transaction → index in `regs`.
    pending: HashMap<TxKey, usize>,
    /// Trunks in PBX mode (shown as "pbx").
    pbx: Vec<String>,
    /// When any trunk lists allowed sources, INVITEs from anywhere else get 403. With the trunk's name: a
    /// number may be tied to the trunk its calls come through (issue 17).
    allowed_sources: Vec<(String, SourceNet)>,
    board: TrunkBoard,
    /// On shutdown: how long unregistrations may take before the controller stops anyway.
    unregister_deadline: Option<Instant>,
    /// The deadline passed: registrations are no longer driven.
    abandoned: bool,
    /// The transport and each registering trunk's address: a failed registration shows why its TCP or TLS
    /// connection failed (a refused certificate), not only that nothing answered.
    links: Option<(Sender, HashMap<String, SocketAddr>)>,
}

impl Trunks {
    pub fn new(regs: Vec<(String, Registration)>, pbx: Vec<String>, allowed_sources: Vec<(String, SourceNet)>, board: TrunkBoard) -> Trunks {
        let t = Trunks { regs, pending: HashMap::new(), pbx, allowed_sources, board, unregister_deadline: None, abandoned: false, links: None };
        t.publish();
        t
    }

    /// Reports connection failures (TLS verification) of the trunks at `addrs` with their state.
    pub fn with_links(mut self, sender: Sender, addrs: HashMap<String, SocketAddr>) -> Trunks {
        self.links = Some((sender, addrs));
        self
    }

    fn link_failure(&self, name: &str) -> Option<String> {
        let (sender, addrs) = self.links.as_ref()?;
        sender.connection_failure(*addrs.get(name)?)
    }

    /// Whether an INVITE from `ip` may come in (PBX mode source filter).
    pub fn source_allowed(&self, ip: IpAddr) -> bool {
        self.allowed_sources.is_empty() || self.source_listed(ip)
    }

    /// Whether `ip` is in some trunk's `allowed_sources`: a carrier or PBX trusted to assert who is
    /// calling or texting (an empty list trusts nobody here, unlike [`Self::source_allowed`]).
    pub fn source_listed(&self, ip: IpAddr) -> bool {
        self.source_trunk(ip).is_some()
    }

    /// The first trunk whose `allowed_sources` lists `ip`: the trunk a call from there came through.
    pub fn source_trunk(&self, ip: IpAddr) -> Option<&str> {
        self.allowed_sources.iter().find(|(_, n)| n.contains(ip)).map(|(name, _)| name.as_str())
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.abandoned {
            return None;
        }
        self.regs.iter().filter_map(|(_, r)| r.poll_timeout()).chain(self.unregister_deadline).min()
    }

    /// Runs the registrations' timers and sends every REGISTER that is due.
    pub fn drive(&mut self, ua: &mut UserAgent, now: Instant) {
        if self.abandoned {
            return;
        }
        if self.unregister_deadline.is_some_and(|d| now >= d) {
            tracing::warn!("trunk unregistration not answered in time; stopping anyway");
            self.abandoned = true;
            return;
        }
        for (i, (name, reg)) in self.regs.iter_mut().enumerate() {
            let before = reg.status().clone();
            reg.handle_timeout(now);
            while let Some(mut request) = reg.poll_request(now) {
                let to = reg.registrar();
                request.headers.0.insert(0, Header { name: "Via".into(), value: ua.new_via(to.transport) });
                let expires = request.headers.get("Expires").unwrap_or("").to_string();
                let authenticated = request.headers.get("Authorization").or(request.headers.get("Proxy-Authorization")).is_some();
                tracing::debug!(trunk = %name, registrar = %to.addr, expires, authenticated, "REGISTER");
                match ua.send_request(request, to, now) {
                    Some(key) => {
                        self.pending.insert(key, i);
                    }
                    None => reg.handle_no_response(now),
                }
            }
            log_change(name, &before, reg.status(), now);
        }
        self.pending.retain(|_, i| !self.regs[*i].1.is_finished());
        self.publish();
    }

    /// Feeds a final response or a timeout of a standalone request; false when it is not ours.
    pub fn on_result(&mut self, key: &TxKey, response: Option<&oncall_sip::message::Response>, now: Instant) -> bool {
        let Some(i) = self.pending.remove(key) else { return false };
        let (name, reg) = &mut self.regs[i];
        let before = reg.status().clone();
        match response {
            Some(r) => {
                tracing::debug!(trunk = %name, status = r.status, "REGISTER answered");
                reg.handle_response(r, now)
            }
            None => reg.handle_no_response(now),
        }
        log_change(name, &before, reg.status(), now);
        true
    }

    pub fn unregister_all(&mut self, now: Instant) {
        for (_, reg) in &mut self.regs {
            reg.unregister(now);
        }
        self.unregister_deadline = Some(now + Duration::from_secs(4));
    }

    /// Every unregistration answered, or out of time.
    pub fn finished(&self, now: Instant) -> bool {
        self.abandoned || self.regs.iter().all(|(_, r)| r.is_finished()) || self.unregister_deadline.is_some_and(|d| now >= d)
    }

    fn publish(&self) {
        let now = Instant::now();
        let mut rows: Vec<TrunkRow> = self
            .regs
            .iter()
            .map(|(name, reg)| {
                let (state, detail) = match reg.status() {
                    RegistrationStatus::Registering => (TrunkState::Registering, String::new()),
                    RegistrationStatus::Registered { until } => (TrunkState::Registered, format!("expires in {} s", until.saturating_duration_since(now).as_secs())),
                    RegistrationStatus::Failed { reason, retry_at } => {
                        let reason = self.link_failure(name).unwrap_or_else(|| reason.to_string());
                        (TrunkState::Failed, format!("{reason}; retry in {} s", retry_at.saturating_duration_since(now).as_secs()))
                    }
                    RegistrationStatus::Stopped => (TrunkState::Unregistered, String::new()),
                };
                TrunkRow { name: name.clone(), state, detail }
            })
            .collect();
        rows.extend(self.pbx.iter().map(|n| TrunkRow { name: n.clone(), state: TrunkState::Pbx, detail: String::new() }));
        if let Ok(mut b) = self.board.lock() {
            *b = rows;
        }
    }
}

/// The trunks of `[[trunks]]`: one registration per `[[trunks]]` entry with `register = true` (validated by `Config::validate`),
/// the PBX-mode names, and the union of every trunk's allowed sources.
pub fn from_config(trunks: &[TrunkConfig], ua: &UserAgent, board: TrunkBoard) -> Trunks {
    let mut regs = Vec::new();
    let mut pbx = Vec::new();
    let mut sources = Vec::new();
    for t in trunks {
        sources.extend(t.sources().into_iter().map(|n| (t.name.clone(), n)));
        if !t.register {
            tracing::info!(trunk = %t.name, allowed_sources = ?t.allowed_sources, "trunk in PBX mode (no registration)");
            pbx.push(t.name.clone());
            continue;
        }
        // validate() checked the address; a trunk that still cannot be used is logged, not fatal.
        let addr = match t.registrar_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(trunk = %t.name, error = %e, "trunk skipped");
                continue;
            }
        };
        let contact = t.contact_for(&t.username, ua.advertised(t.transport()));
        tracing::info!(trunk = %t.name, registrar = %addr, aor = %t.aor(), expires_secs = t.expires_secs, "trunk registering");
        regs.push((
            t.name.clone(),
            Registration::new(TrunkRegistration {
                registrar: Peer { addr, transport: t.transport(), conn: None },
                aor: t.aor(),
                username: t.username.clone(),
                password: t.password.clone(),
                expires_secs: t.expires_secs,
                contact,
            }),
        ));
    }
    Trunks::new(regs, pbx, sources, board)
}

fn log_change(name: &str, before: &RegistrationStatus, after: &RegistrationStatus, now: Instant) {
    if before == after {
        return;
    }
    match after {
        RegistrationStatus::Registered { until } => {
            let refreshed = matches!(before, RegistrationStatus::Registered { .. });
            tracing::info!(trunk = %name, expires_secs = until.saturating_duration_since(now).as_secs(), refreshed, "trunk registered");
        }
        RegistrationStatus::Failed { reason, retry_at } => {
            tracing::warn!(trunk = %name, %reason, retry_in_secs = retry_at.saturating_duration_since(now).as_secs_f32(), "trunk registration failed");
        }
        RegistrationStatus::Stopped => tracing::info!(trunk = %name, "trunk unregistered"),
        RegistrationStatus::Registering => {}
    }
}


//! The registrar for employees' own phones, wired to the store: owns the sans-IO
//! [`oncall_sip::registrar::Registrar`], answers the REGISTERs the call controller hands over, keeps the
//! accounts fresh from the database (the settings watch re-reads them every few seconds, and a read starts at
//! once when a phone answers for an account the copy lacks: a new account works at once), writes every
//! binding change to the database on a background task (so another instance, or this one after a
//! restart, knows the phones), and publishes what `/metrics` and the paging code read.
//!
//! Text replies by SIP MESSAGE are only taken from a device that proves its account with the same
//! digest ([`RegistrarService::authenticate_sender`]): one challenge/verify path, so the replay and
//! lockout rules of REGISTER hold for MESSAGE too.
//!
//! Lockouts: a source the registrar locks out is also blocked at the user agent, so its further
//! REGISTERs are dropped unanswered until the lockout ends (svcrack then stops, hearing nothing).

use crate::config::RegistrarSection;
use crate::settings_watch::Watched;
use oncall_core::prometheus_text::{Kind, PrometheusText};
use oncall_core::{OrgId, PersonId, Store, Timestamp};
use oncall_sip::auth::digest::Algorithm;
use oncall_sip::message::{Method, Request, Response};
use oncall_sip::registrar::{AccountKeys, BindingChange, LockoutConfig, LockoutTarget, Registrar, RegistrarConfig};
use oncall_sip::transaction::{Peer, Transport, TxKey};
use oncall_sip::ua::UserAgent;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One account as the registrar needs it.
#[derive(Debug, Clone)]
struct Account {
    org: OrgId,
    person: PersonId,
    keys: AccountKeys,
}

/// The registrar's copy of the accounts, and when it was read (the start of the read): the registrar
/// holds a failed answer's judgement until a read begun after it has completed (issue 18 item 2).
#[derive(Default)]
struct AccountBook {
    table: RwLock<HashMap<String, Account>>,
    read_at: Mutex<Option<Instant>>,
    /// One read at a time, so an older read never overwrites a newer one.
    loading: tokio::sync::Mutex<()>,
}

type AccountTable = Arc<AccountBook>;

/// What the registrar looks accounts up in: the copy, and when it was read.
struct Lookup<'a> {
    table: &'a HashMap<String, Account>,
    read_at: Option<Instant>,
}

impl oncall_sip::registrar::Accounts for Lookup<'_> {
    fn keys(&self, username: &str) -> Option<AccountKeys> {
        self.table.get(username).map(|a| a.keys.clone())
    }
    fn read_at(&self) -> Option<Instant> {
        self.read_at
    }
}

/// A phone registered by a person, for the paging code to ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredDevice {
    pub username: String,
    /// The Contact URI the phone registered (the Request-URI of an INVITE to it).
    pub contact: String,
    /// Where its REGISTER came from: send the INVITE here (behind NAT the Contact's host is unreachable).
    pub source: SocketAddr,
    pub transport: Transport,
    /// The TCP or TLS connection the REGISTER came on (None after a restart, or over UDP).
    pub conn: Option<u64>,
    pub expires_at: Instant,
}

/// What other tasks read: counters for `/metrics` and the current devices per person. Cheap to clone.
#[derive(Clone, Default)]
pub struct RegistrarHandle {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    devices: Mutex<HashMap<PersonId, Vec<RegisteredDevice>>>,
    bindings: AtomicU64,
    challenges: AtomicU64,
    registered: AtomicU64,
    auth_failures: AtomicU64,
    source_lockouts: AtomicU64,
    account_lockouts: AtomicU64,
    rejected_locked: AtomicU64,
    replays: AtomicU64,
    grace_answers: AtomicU64,
    repeated_bad_answers: AtomicU64,
}

impl RegistrarHandle {
    /// The person's phones registered now (all of them ring when they are paged).
    pub fn registered_devices(&self, person: PersonId) -> Vec<RegisteredDevice> {
        let now = Instant::now();
        let devices = self.inner.devices.lock().unwrap_or_else(|p| p.into_inner());
        devices
            .get(&person)
            .map(|d| d.iter().filter(|d| d.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    /// The registrar's families for `/metrics`.
    pub fn write_metrics(&self, out: &mut PrometheusText) {
        let s = &self.inner;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let families = [
            (
                "oncall_registrar_bindings",
                Kind::Gauge,
                "Devices registered to OnCall's registrar.",
                &s.bindings,
            ),
            (
                "oncall_registrar_challenges_total",
                Kind::Counter,
                "401s sent to REGISTERs (no or stale credentials, or a failed answer).",
                &s.challenges,
            ),
            (
                "oncall_registrar_registrations_total",
                Kind::Counter,
                "Successful REGISTERs (including removals and fetches).",
                &s.registered,
            ),
            (
                "oncall_registrar_auth_failures_total",
                Kind::Counter,
                "Digest answers that did not verify (wrong password or unknown user).",
                &s.auth_failures,
            ),
            (
                "oncall_registrar_rejected_locked_total",
                Kind::Counter,
                "REGISTERs answered 403 because their source or account was locked out.",
                &s.rejected_locked,
            ),
            (
                "oncall_registrar_replays_total",
                Kind::Counter,
                "Verified digest answers refused because their nonce was already used with that nc.",
                &s.replays,
            ),
        ];
        for (name, kind, help, n) in families {
            out.family(name, kind, help).sample(&[], g(n));
        }
        // Failed answers that did not count toward the lockouts (issue 18 item 2), by why.
        out.family(
            "oncall_registrar_uncounted_failures_total",
            Kind::Counter,
            "Failed digest answers not counted toward lockouts: while the accounts were re-read (a new account), or a resend of an answer that had already failed.",
        )
        .sample(&[("reason", "account_reload")], g(&s.grace_answers))
        .sample(&[("reason", "repeated_answer")], g(&s.repeated_bad_answers));
        out.family(
            "oncall_registrar_lockouts_total",
            Kind::Counter,
            "Lockouts started after too many failed digest answers.",
        )
        .sample(&[("kind", "source")], g(&s.source_lockouts))
        .sample(&[("kind", "account")], g(&s.account_lockouts));
    }
}

/// A binding change on its way to the database, with wall-clock expiry.
enum Persist {
    Set(oncall_core::store::SipBinding),
    Remove { username: String, contact: String },
}

pub struct RegistrarService {
    registrar: Registrar,
    /// The digest realm the accounts' keys were made for.
    realm: String,
    accounts: AccountTable,
    handle: RegistrarHandle,
    persist: mpsc::UnboundedSender<Persist>,
    /// Pokes the task that re-reads the accounts at once (a phone answered for an account the copy lacks).
    reload: Arc<tokio::sync::Notify>,
}

pub fn registrar_config(section: &RegistrarSection) -> RegistrarConfig {
    let mut cfg = RegistrarConfig::new(section.realm.clone());
    cfg.min_expires = section.min_expires_secs;
    cfg.max_expires = section.max_expires_secs;
    cfg.default_expires = section.default_expires_secs;
    cfg.max_bindings_per_account = section.max_devices_per_account;
    // Validated at start-up: each is MD5 or SHA-256.
    cfg.algorithms = section
        .algorithms
        .iter()
        .map(|a| {
            if a.eq_ignore_ascii_case("SHA-256") {
                Algorithm::Sha256
            } else {
                Algorithm::Md5
            }
        })
        .collect();
    cfg.lockout = LockoutConfig {
        source_attempts: section.lockout_source_attempts,
        account_attempts: section.lockout_account_attempts,
        window: Duration::from_secs(section.lockout_window_secs),
        duration: Duration::from_secs(section.lockout_secs),
    };
    cfg
}

impl RegistrarService {
    /// Loads the accounts and the bindings that have not expired, and starts the reload and persistence tasks.
    pub async fn start(store: Store, section: &RegistrarSection) -> anyhow::Result<RegistrarService> {
        let now = Instant::now();
        let cfg = registrar_config(section);
        let realm = cfg.realm.clone();
        let mut registrar = Registrar::new(cfg, rand::random(), now);
        let accounts: AccountTable = Default::default();
        load_accounts(&store, &realm, &accounts).await?;
        let wall = Timestamp::now();
        let mut restored = 0;
        for b in store.live_sip_bindings(wall).await? {
            let Ok(addr) = b.source_addr.parse::<SocketAddr>() else {
                continue;
            };
            let transport = match b.transport.as_str() {
                "tcp" => Transport::Tcp,
                "tls" => Transport::Tls,
                _ => Transport::Udp,
            };
            let left = Duration::from_millis((b.expires_at.0 - wall.0).max(0) as u64);
            // A TCP connection does not survive a restart: the phone's next REGISTER opens a new one.
            let source = Peer {
                addr,
                transport,
                conn: None,
            };
            let binding = oncall_sip::registrar::Binding {
                contact: b.contact,
                expires_at: now + left,
                source,
                call_id: b.call_id,
                cseq: b.cseq,
            };
            registrar.restore(&b.username, binding, now);
            restored += 1;
        }
        tracing::info!(realm = %realm, accounts = accounts.table.read().map(|a| a.len()).unwrap_or(0), restored_bindings = restored, "registrar enabled");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(persist_task(store.clone(), rx));
        let reload = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(reload_on_demand(store.clone(), realm.clone(), accounts.clone(), reload.clone()));
        let service = RegistrarService {
            registrar,
            realm,
            accounts,
            handle: RegistrarHandle::default(),
            persist: tx,
            reload,
        };
        service.publish(now);
        Ok(service)
    }

    /// The copy of the SIP accounts the settings watch keeps fresh.
    pub fn watched(&self) -> AccountsWatch {
        AccountsWatch { realm: self.realm.clone(), table: self.accounts.clone() }
    }

    pub fn handle(&self) -> RegistrarHandle {
        self.handle.clone()
    }

    /// Answers a request the user agent handed over ([`oncall_sip::ua::UaEvent::Request`]).
    pub fn on_request(&mut self, ua: &mut UserAgent, key: TxKey, request: Request, source: Peer, now: Instant) {
        if request.method != Method::Register {
            return answer_unserved(ua, &key, &request, now);
        }
        self.registrar.handle_timeout(now);
        let response = {
            let table = self.accounts.table.read().unwrap_or_else(|p| p.into_inner());
            let lookup = Lookup { table: &table, read_at: self.read_at() };
            self.registrar.handle_register(&request, source, &lookup, now)
        };
        ua.respond_to(&key, response, now);
        self.reload_if_asked();
        self.block_locked_sources(ua, now);
        let wall = Timestamp::now();
        while let Some(change) = self.registrar.poll_change() {
            let msg = match change {
                BindingChange::Set { username, binding } => {
                    let left = binding.expires_at.saturating_duration_since(now).as_millis() as i64;
                    Persist::Set(oncall_core::store::SipBinding {
                        username,
                        contact: binding.contact,
                        source_addr: binding.source.addr.to_string(),
                        transport: binding.source.transport.as_str().to_ascii_lowercase(),
                        expires_at: Timestamp(wall.0 + left),
                        call_id: binding.call_id,
                        cseq: binding.cseq,
                    })
                }
                BindingChange::Removed { username, contact } => Persist::Remove { username, contact },
            };
            let _ = self.persist.send(msg);
        }
        self.publish(now);
    }

    /// Proves who sent `request` (a MESSAGE) by the digest of their SIP account, as for REGISTER:
    /// `Some((username, org, person))` when it verifies. Otherwise the 401 challenge (or 403 while locked
    /// out) has been sent and `None` comes back; the From header is never looked at.
    pub fn authenticate_sender(
        &mut self,
        ua: &mut UserAgent,
        key: &TxKey,
        request: &Request,
        source: Peer,
        now: Instant,
    ) -> Option<(String, OrgId, PersonId)> {
        self.registrar.handle_timeout(now);
        let result = {
            let table = self.accounts.table.read().unwrap_or_else(|p| p.into_inner());
            let lookup = Lookup { table: &table, read_at: self.read_at() };
            self.registrar
                .authenticate(request, source, &lookup, now)
                .map(|username| table.get(&username).map(|a| (username, a.org, a.person)))
        };
        let proven = match result {
            Ok(Some(p)) => Some(p),
            // The account was removed between the key lookup and now.
            Ok(None) => {
                let resp = Response::from_request_headers(
                    &request.headers,
                    403,
                    Some(&format!("{:016x}", rand::random::<u64>())),
                );
                ua.respond_to(key, resp, now);
                None
            }
            Err(resp) => {
                ua.respond_to(key, resp, now);
                None
            }
        };
        self.reload_if_asked();
        self.block_locked_sources(ua, now);
        self.publish(now);
        proven
    }

    fn read_at(&self) -> Option<Instant> {
        *self.accounts.read_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A failed answer waits for a fresh read of the accounts: start one now (not at the next 3 s pass).
    fn reload_if_asked(&mut self) {
        if self.registrar.poll_accounts_reload() {
            self.reload.notify_one();
        }
    }

    /// A source the registrar just locked out is also silenced at the user agent.
    fn block_locked_sources(&mut self, ua: &mut UserAgent, now: Instant) {
        while let Some(lock) = self.registrar.poll_lockout() {
            if let LockoutTarget::Source(ip) = lock.target {
                ua.block_registers_from(ip, lock.until, now);
            }
        }
    }

    /// Copies counters and the devices per person to the shared handle.
    fn publish(&self, now: Instant) {
        let s = &self.handle.inner;
        let st = self.registrar.stats;
        s.challenges.store(st.challenges, Ordering::Relaxed);
        s.registered.store(st.registered, Ordering::Relaxed);
        s.auth_failures.store(st.auth_failures, Ordering::Relaxed);
        s.source_lockouts.store(st.source_lockouts, Ordering::Relaxed);
        s.account_lockouts.store(st.account_lockouts, Ordering::Relaxed);
        s.rejected_locked.store(st.rejected_locked, Ordering::Relaxed);
        s.replays.store(st.replays, Ordering::Relaxed);
        s.grace_answers.store(st.grace_answers, Ordering::Relaxed);
        s.repeated_bad_answers.store(st.repeated_bad_answers, Ordering::Relaxed);
        s.bindings
            .store(self.registrar.binding_count(now) as u64, Ordering::Relaxed);
        let table = self.accounts.table.read().unwrap_or_else(|p| p.into_inner());
        let mut devices: HashMap<PersonId, Vec<RegisteredDevice>> = HashMap::new();
        for (username, account) in table.iter() {
            for b in self.registrar.bindings(username, now) {
                devices.entry(account.person).or_default().push(RegisteredDevice {
                    username: username.clone(),
                    contact: b.contact.clone(),
                    source: b.source.addr,
                    transport: b.source.transport,
                    conn: b.source.conn,
                    expires_at: b.expires_at,
                });
            }
        }
        *s.devices.lock().unwrap_or_else(|p| p.into_inner()) = devices;
    }
}

/// 405 for a handed-over request nobody serves (MESSAGE until text replies exist).
pub fn answer_unserved(ua: &mut UserAgent, key: &TxKey, request: &Request, now: Instant) {
    let mut resp =
        Response::from_request_headers(&request.headers, 405, Some(&format!("{:016x}", rand::random::<u64>())));
    resp.headers
        .push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER");
    ua.respond_to(key, resp, now);
}

async fn load_accounts(store: &Store, realm: &str, book: &AccountTable) -> anyhow::Result<()> {
    let _one_at_a_time = book.loading.lock().await;
    // Taken before the query: the copy holds at least everything stored by this instant.
    let started = Instant::now();
    let rows = store.all_sip_accounts().await?;
    let mut map = HashMap::new();
    for a in rows {
        if a.realm != realm {
            tracing::warn!(username = %a.username, stored_realm = %a.realm, %realm, "SIP account was set for another realm; set its password again (oncall person sip-account)");
            continue;
        }
        map.insert(
            a.username,
            Account {
                org: a.org,
                person: a.person,
                keys: AccountKeys {
                    ha1_md5: a.ha1_md5,
                    ha1_sha256: a.ha1_sha256,
                },
            },
        );
    }
    *book.table.write().unwrap_or_else(|p| p.into_inner()) = map;
    *book.read_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
    Ok(())
}

/// Re-reads the accounts whenever the registrar asks (a phone answered for an account the copy lacks,
/// typically one created a moment ago by `oncall person sip-account` or the web). Pokes that arrive
/// during a read are served by one more read after it.
async fn reload_on_demand(store: Store, realm: String, book: AccountTable, poke: Arc<tokio::sync::Notify>) {
    loop {
        poke.notified().await;
        match load_accounts(&store, &realm, &book).await {
            Ok(()) => tracing::debug!("SIP accounts re-read on demand"),
            Err(e) => tracing::warn!(error = %e, "cannot re-read SIP accounts; keeping the previous ones"),
        }
    }
}

/// Re-reads the SIP accounts (a new one works without a restart) and purges expired bindings.
pub struct AccountsWatch {
    realm: String,
    table: AccountTable,
}

impl Watched for AccountsWatch {
    fn reload<'a>(&'a mut self, store: &'a Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if let Err(e) = load_accounts(store, &self.realm, &self.table).await {
                tracing::warn!(error = %e, "cannot reload SIP accounts; keeping the previous ones");
            }
            if let Err(e) = store.purge_expired_sip_bindings(Timestamp::now()).await {
                tracing::warn!(error = %e, "cannot purge expired SIP bindings");
            }
        })
    }
}

/// Writes binding changes in order; a failed write is logged and the next change goes on (the
/// in-memory registrar stays right, and the phone's next refresh writes the row again).
async fn persist_task(store: Store, mut rx: mpsc::UnboundedReceiver<Persist>) {
    while let Some(msg) = rx.recv().await {
        let result = match &msg {
            Persist::Set(b) => store.upsert_sip_binding(b, Timestamp::now()).await,
            Persist::Remove { username, contact } => store.remove_sip_binding(username, contact).await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot store a SIP binding change");
        }
    }
}

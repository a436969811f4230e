//! OnCall as a SIP registrar (RFC 3261 §10.3) for employees' own devices, sans-IO.
//!
//! Fed a parsed REGISTER, the address it came from, the time and a way to look up an account's stored
//! digest keys (HA1 for MD5 and SHA-256, RFC 7616 §3.4.2: the password itself is never held), it returns
//! the response to send. It keeps the bindings (address-of-record → contacts with an expiry) in memory
//! and queues every change ([`Registrar::poll_change`]) so the caller can persist them; bindings read
//! back from storage after a restart go in with [`Registrar::restore`].
//!
//! Authentication: every REGISTER is challenged (401 with an MD5 and a SHA-256 challenge, `qop=auth`)
//! before anything else is looked at, and a wrong password and an unknown username fail in exactly
//! the same way (a fresh 401), so a scanner (SIPVicious `svwar`) cannot tell which accounts exist.
//! Nonces are the issue time, a serial number and an HMAC-SHA-256 of both and the client's IP address
//! under a per-process secret, so any nonce can be checked without a table and only from the address
//! it was issued to; an old one gets `stale=true` (RFC 7616 §3.3). Replays (issue 15 item 5: a captured
//! REGISTER sent again from another port with a new Call-ID and Contact) are refused by a small table
//! of used nonces (`nonce_uses.rs`): the `nc` must grow on each use, and a nonce answered without qop
//! is single-use. A refused replay is re-challenged with `stale=true` and counts no failure, so a
//! phone that re-sends its last answer in a new transaction just answers the new nonce.
//!
//! [`Registrar::authenticate`] is that one challenge/verify path for any request (REGISTER, and the
//! MESSAGE text replies the binary accepts only from authenticated devices).
//!
//! Lockout against password guessing (`svcrack`): failed digest answers are counted per source IP and
//! per username (existing or not, so a lockout reveals nothing either) within a window; past the
//! limit, REGISTERs from that source or for that username get 403 for the lockout period. The attempt
//! that crosses the limit is logged (`warn`) and queued for [`Registrar::poll_lockout`], so the binary
//! can also drop the source's further REGISTERs at the user agent (silence, which makes `svcrack`
//! give up) and count lockouts on `/metrics`.
//!
//! A fresh account (issue 18 item 2): the caller's table of accounts is a copy that another process
//! (`oncall person sip-account`, the web) changes behind its back, so a phone registering just after
//! its account was made can be judged against a copy that lacks it. When the caller can re-read its
//! copy ([`Accounts::read_at`] is `Some`), the first failed answer for a username is not counted while
//! no read that began after it has completed: the registrar asks for a reload
//! ([`Registrar::poll_accounts_reload`]) and challenges again with `stale=true`, so the phone answers
//! the new nonce at once instead of giving up. The grace is the same for a wrong password and an
//! unknown username (a scanner learns nothing from it), lasts at most [`GRACE_ANSWERS`] answers and
//! [`GRACE_TIME`], is given to one username once per lockout window and to a few usernames per source,
//! so `svcrack` gains a guess or two at most. Once a read after the failure has completed, failures
//! count as before.
//!
//! A burst of the same bad answer (same username, nonce and response: a phone re-sending its last
//! REGISTER, retransmissions that became new transactions) counts as one failure. Every failed or
//! refused answer is logged with its reason ([`DigestFailure`]).
//!
//! Not done: the Request-URI domain check (any domain is this registrar's), `q` values
//! (every device of a person rings), Path/GRUU/outbound (RFC 3327, 5627, 5626).

use crate::auth::digest::{self, Algorithm, Challenge, Credentials};
use crate::message::{uri::unescape, Headers, NameAddr, Request, Response, Uri};
use crate::transaction::Peer;
use nonce_uses::{NonceId, NonceUse, NonceUses};
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Tuning of the registrar; [`RegistrarConfig::new`] gives sane defaults for a realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// The digest realm, part of every stored HA1: changing it invalidates all credentials.
    pub realm: String,
    /// Shorter registrations get 423 Interval Too Brief with this Min-Expires (seconds).
    pub min_expires: u32,
    /// Longer ones are shortened to this.
    pub max_expires: u32,
    /// When neither the Contact nor an Expires header says.
    pub default_expires: u32,
    /// How long a nonce is accepted before the client is asked again with `stale=true`.
    pub nonce_lifetime: Duration,
    /// Devices one account may register at once; more get 403.
    pub max_bindings_per_account: usize,
    /// The challenges of a 401, in this order (both by default). Some deployed stacks (baresip 1.0's libre)
    /// give up on a 401 that holds any algorithm they do not know, so MD5 alone is an option.
    pub algorithms: Vec<Algorithm>,
    pub lockout: LockoutConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failed digest answers from one source IP within `window` before it is locked out (0 = never).
    pub source_attempts: u32,
    /// Failed digest answers for one username within `window` before it is locked out (0 = never).
    pub account_attempts: u32,
    pub window: Duration,
    pub duration: Duration,
}

impl RegistrarConfig {
    pub fn new(realm: impl Into<String>) -> RegistrarConfig {
        RegistrarConfig {
            realm: realm.into(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            nonce_lifetime: Duration::from_secs(300),
            max_bindings_per_account: 10,
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            lockout: LockoutConfig {
                source_attempts: 10,
                account_attempts: 5,
                window: Duration::from_secs(300),
                duration: Duration::from_secs(900),
            },
        }
    }
}

/// What the server stores for one account: `H(username:realm:password)` per algorithm, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKeys {
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl AccountKeys {
    /// The keys for a password (what `oncall person sip-account` stores).
    pub fn from_password(username: &str, realm: &str, password: &str) -> AccountKeys {
        AccountKeys {
            ha1_md5: digest::ha1(Algorithm::Md5, username, realm, password),
            ha1_sha256: digest::ha1(Algorithm::Sha256, username, realm, password),
        }
    }

    fn for_algorithm(&self, a: Algorithm) -> &str {
        match a {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// The caller's account table: username → keys. A map, or any closure.
pub trait Accounts {
    fn keys(&self, username: &str) -> Option<AccountKeys>;

    /// When the table was last read from its source (the instant the read began), for a table that is a
    /// copy which can be re-read; `None` (the default) for a table that is always current, where a
    /// failed answer is judged at once.
    fn read_at(&self) -> Option<Instant> {
        None
    }
}

impl Accounts for HashMap<String, AccountKeys> {
    fn keys(&self, username: &str) -> Option<AccountKeys> {
        self.get(username).cloned()
    }
}

impl<F: Fn(&str) -> Option<AccountKeys>> Accounts for F {
    fn keys(&self, username: &str) -> Option<AccountKeys> {
        self(username)
    }
}

/// One registered device of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact URI as the device sent it (without `<>` and header parameters): where to send INVITEs.
    pub contact: String,
    pub expires_at: Instant,
    /// Where the REGISTER came from (behind NAT this, not the Contact, reaches the device).
    pub source: Peer,
    pub call_id: String,
    pub cseq: u32,
}

/// A change to persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    /// Added or refreshed.
    Set { username: String, binding: Binding },
    /// Removed by the device (expires 0, `Contact: *`) or expired.
    Removed { username: String, contact: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockoutTarget {
    Source(IpAddr),
    Account(String),
}

/// A lockout that just started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub target: LockoutTarget,
    pub until: Instant,
}

/// Why a digest answer was refused or failed, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestFailure {
    /// No account of that username (in the table as the registrar saw it).
    UnknownUser,
    /// The account exists; the response does not match its key (wrong password, or a broken client).
    WrongResponse,
    /// The nonce is this registrar's but older than its lifetime.
    StaleNonce,
    /// The nonce was not issued by this registrar (this process) to this address.
    ForeignNonce,
    /// Credentials for another realm only.
    RealmMismatch,
    /// An algorithm this registrar does not offer.
    Algorithm,
}

impl std::fmt::Display for DigestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DigestFailure::UnknownUser => "unknown user",
            DigestFailure::WrongResponse => "wrong password (the response does not match the account's key)",
            DigestFailure::StaleNonce => "stale nonce",
            DigestFailure::ForeignNonce => "nonce not issued here or to this address (a restart, or another source)",
            DigestFailure::RealmMismatch => "credentials for another realm",
            DigestFailure::Algorithm => "algorithm not offered",
        })
    }
}

/// How many failed answers one username's grace covers while the account table is re-read.
pub const GRACE_ANSWERS: u32 = 8;
/// How long that grace lasts at most.
pub const GRACE_TIME: Duration = Duration::from_secs(2);
/// How many usernames one source may be given the grace for within a lockout window.
const GRACE_USERNAMES_PER_SOURCE: u32 = 3;
/// Usernames under grace tracked at most (beyond it, failures are judged at once).
const MAX_GRACE: usize = 4096;
/// Failed answers remembered to count a repeat of one only once.
const REMEMBERED_BAD_ANSWERS: usize = 256;

/// A username's first failed answer, waiting for a fresh read of the accounts.
struct Grace {
    asked_at: Instant,
    answers: u32,
    /// A read after the failure completed (or the grace ran out): failures count again.
    judged: bool,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistrarStats {
    /// 401s sent (no or stale credentials, or a failed answer).
    pub challenges: u64,
    /// Successful REGISTERs (including removals and fetches).
    pub registered: u64,
    /// Digest answers that did not verify (wrong password or unknown user).
    pub auth_failures: u64,
    pub source_lockouts: u64,
    pub account_lockouts: u64,
    /// REGISTERs answered 403 because their source or account was locked out.
    pub rejected_locked: u64,
    /// Verified answers refused because their nonce was already used with that `nc` (replays).
    pub replays: u64,
    /// Failed answers not counted while the account table was re-read (a fresh account).
    pub grace_answers: u64,
    /// Failed answers not counted because the same answer had already failed.
    pub repeated_bad_answers: u64,
}

/// How many sources or usernames are tracked for lockouts at most; beyond it the oldest idle ones go.
const MAX_TRACKED: usize = 65_536;
/// Nonce: 16 hex digits of issue time (seconds since the registrar started), 8 of a serial number
/// (two challenges in one second to one address differ, so answering one never replays the other)
/// and 32 of the HMAC.
const NONCE_LEN: usize = 56;

pub struct Registrar {
    cfg: RegistrarConfig,
    secret: [u8; 32],
    /// Time zero of nonces.
    epoch: Instant,
    /// Serial number of the next nonce.
    next_nonce: u32,
    bindings: HashMap<String, Vec<Binding>>,
    by_source: Failures<IpAddr>,
    by_account: Failures<String>,
    nonce_uses: NonceUses,
    changes: VecDeque<BindingChange>,
    lockouts: VecDeque<Lockout>,
    /// Usernames whose failed answers wait for a fresh read of the accounts.
    grace: HashMap<String, Grace>,
    /// Per source: start of its window and how many usernames got the grace in it.
    grace_sources: HashMap<IpAddr, (Instant, u32)>,
    /// SHA-256 of (username, nonce, response) of recent failed answers.
    bad_answers: VecDeque<[u8; 32]>,
    /// The caller should re-read its accounts.
    reload_wanted: bool,
    pub stats: RegistrarStats,
}

enum NonceCheck {
    /// Issued at this many seconds after the epoch, with this serial number.
    Fresh(NonceId),
    Stale,
    Invalid,
}

impl Registrar {
    /// `secret` signs nonces (random per process is fine: after a restart devices are simply
    /// challenged again).
    pub fn new(cfg: RegistrarConfig, secret: [u8; 32], now: Instant) -> Registrar {
        Registrar {
            cfg,
            secret,
            epoch: now,
            next_nonce: 0,
            bindings: HashMap::new(),
            by_source: Failures::default(),
            by_account: Failures::default(),
            nonce_uses: NonceUses::new(MAX_TRACKED),
            changes: VecDeque::new(),
            lockouts: VecDeque::new(),
            grace: HashMap::new(),
            grace_sources: HashMap::new(),
            bad_answers: VecDeque::new(),
            reload_wanted: false,
            stats: RegistrarStats::default(),
        }
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.cfg
    }

    /// Answers one REGISTER from `source` (its top Via already stamped by the user agent).
    pub fn handle_register(&mut self, req: &Request, source: Peer, accounts: &impl Accounts, now: Instant) -> Response {
        // §10.3 step 3: authenticate first, before the AOR or the contacts are looked at.
        let username = match self.authenticate(req, source, accounts, now) {
            Ok(u) => u,
            Err(resp) => return resp,
        };
        // §10.3 step 4: the authenticated user may only change their own address-of-record.
        let aor_user = aor_user(&req.headers);
        if aor_user.as_deref() != Some(username.as_str()) {
            tracing::info!(source = %source.addr, %username, aor = ?aor_user, "REGISTER for another user's address-of-record; 403");
            return self.answer(req, 403);
        }
        self.update_bindings(req, &username, source, now)
    }

    /// The digest check of any request from `source` for its own method: `Ok(username)` when its
    /// `Authorization` answers, with the account's key, a fresh nonce this registrar issued to that
    /// IP address and not yet used with that `nc`; otherwise the response to send (a 401 challenge,
    /// or 403 while the source or account is locked out). Failed answers count toward the lockouts
    /// whatever the method, so MESSAGE is no side door for password guessing.
    pub fn authenticate(
        &mut self,
        req: &Request,
        source: Peer,
        accounts: &impl Accounts,
        now: Instant,
    ) -> Result<String, Response> {
        let ip = source.addr.ip();
        if self.by_source.locked(&ip, now) {
            self.stats.rejected_locked += 1;
            return Err(self.answer(req, 403));
        }
        let all: Vec<Credentials> = req.headers.get_all("Authorization").filter_map(|v| Credentials::parse(v).ok()).collect();
        let method = req.method.as_str();
        let Some(creds) = all.iter().find(|c| c.realm == self.cfg.realm).cloned() else {
            if let Some(other) = all.first() {
                log_failure(source, &other.username, method, DigestFailure::RealmMismatch, "challenged again, not counted");
            }
            return Err(self.challenge(req, source, false, now));
        };
        if self.by_account.locked(&creds.username, now) {
            self.stats.rejected_locked += 1;
            return Err(self.answer(req, 403));
        }
        let issued = match self.check_nonce(&creds.nonce, ip, now) {
            NonceCheck::Fresh(id) => id,
            // Not a guess at the password: no failure is counted, the device just asks again.
            NonceCheck::Stale => {
                log_failure(source, &creds.username, method, DigestFailure::StaleNonce, "challenged again with stale=true, not counted");
                return Err(self.challenge(req, source, true, now));
            }
            NonceCheck::Invalid => {
                log_failure(source, &creds.username, method, DigestFailure::ForeignNonce, "challenged again, not counted");
                return Err(self.challenge(req, source, false, now));
            }
        };
        if !self.cfg.algorithms.contains(&creds.algorithm) {
            log_failure(source, &creds.username, method, DigestFailure::Algorithm, "challenged again, not counted");
            return Err(self.challenge(req, source, false, now));
        }
        let keys = accounts.keys(&creds.username);
        // An unknown user is checked against a key nobody has, so both cases do the same work.
        let decoy = digest::ha1(creds.algorithm, &creds.username, &self.cfg.realm, &hex(&self.secret));
        let ha1 = keys
            .as_ref()
            .map_or(decoy.as_str(), |k| k.for_algorithm(creds.algorithm));
        let verified = creds.verify_ha1(ha1, method) && keys.is_some();
        if !verified {
            let reason = if keys.is_none() { DigestFailure::UnknownUser } else { DigestFailure::WrongResponse };
            if self.in_grace(&creds.username, ip, accounts.read_at(), now) {
                self.stats.grace_answers += 1;
                self.reload_wanted = true;
                log_failure(source, &creds.username, method, reason, "not counted while the accounts are re-read (a new account?); challenged again with stale=true");
                return Err(self.challenge(req, source, true, now));
            }
            if !self.first_time_bad(&creds) {
                self.stats.repeated_bad_answers += 1;
                log_failure(source, &creds.username, method, reason, "the same answer again (a resend): counted once; challenged again");
                return Err(self.challenge(req, source, false, now));
            }
            self.stats.auth_failures += 1;
            log_failure(source, &creds.username, method, reason, "counted toward the lockouts");
            if self.record_failure(ip, &creds.username, now) {
                return Err(self.answer(req, 403));
            }
            return Err(self.challenge(req, source, false, now));
        }
        // Only now, with the answer verified, is the nonce's use recorded: strangers cannot fill the table.
        // An `nc` that is not hex cannot grow, so it counts as a replay (the digest covers it verbatim).
        let nc = match creds.nc.as_deref().map(|n| u32::from_str_radix(n, 16)) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => Some(0),
        };
        let nc = if creds.qop_auth { nc } else { None };
        let seen = match nc {
            Some(0) => NonceUse::Replayed,
            _ => self.nonce_uses.record(issued, nc),
        };
        if seen != NonceUse::Accepted {
            self.stats.replays += 1;
            tracing::info!(source = %source.addr, username = %creds.username, %method, nc = ?creds.nc, ?seen, "digest answer on a nonce already used (replay or resend); challenged again");
            return Err(self.challenge(req, source, true, now));
        }
        self.by_account.clear(&creds.username);
        self.grace.remove(&creds.username);
        Ok(creds.username)
    }

    /// Whether a failed answer for `username` from `ip` waits for a fresh read of the accounts instead of
    /// counting (see the module docs). `read_at`: when the caller's table was last read, if it can be re-read.
    fn in_grace(&mut self, username: &str, ip: IpAddr, read_at: Option<Instant>, now: Instant) -> bool {
        let Some(read_at) = read_at else { return false };
        if let Some(g) = self.grace.get_mut(username) {
            if g.judged {
                return false;
            }
            let read_since = read_at > g.asked_at;
            if read_since || g.answers >= GRACE_ANSWERS || now.saturating_duration_since(g.asked_at) >= GRACE_TIME {
                g.judged = true;
                return false;
            }
            g.answers += 1;
            return true;
        }
        if self.grace.len() >= MAX_GRACE {
            self.purge_grace(now);
            if self.grace.len() >= MAX_GRACE {
                return false;
            }
        }
        let window = self.cfg.lockout.window;
        let entry = self.grace_sources.entry(ip).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) > window {
            *entry = (now, 0);
        }
        if entry.1 >= GRACE_USERNAMES_PER_SOURCE {
            return false;
        }
        entry.1 += 1;
        self.grace.insert(username.to_string(), Grace { asked_at: now, answers: 1, judged: false });
        true
    }

    /// Remembers a failed answer; false when the very same answer (username, nonce, response) failed before.
    fn first_time_bad(&mut self, creds: &Credentials) -> bool {
        let data = format!("{}\0{}\0{}", creds.username, creds.nonce, creds.response.to_ascii_lowercase());
        let fp = digest::hmac_sha256(&self.secret, data.as_bytes());
        if self.bad_answers.contains(&fp) {
            return false;
        }
        if self.bad_answers.len() >= REMEMBERED_BAD_ANSWERS {
            self.bad_answers.pop_front();
        }
        self.bad_answers.push_back(fp);
        true
    }

    fn purge_grace(&mut self, now: Instant) {
        let window = self.cfg.lockout.window.max(GRACE_TIME);
        self.grace.retain(|_, g| now.saturating_duration_since(g.asked_at) <= window);
        self.grace_sources.retain(|_, (start, _)| now.saturating_duration_since(*start) <= window);
    }

    /// True once after a failed answer that a fresh read of the accounts may turn into a success: the
    /// caller should re-read its table now (the failures wait for it, see [`Accounts::read_at`]).
    pub fn poll_accounts_reload(&mut self) -> bool {
        std::mem::take(&mut self.reload_wanted)
    }

    /// §10.3 steps 6-8: applies the Contact list (all or nothing) and answers with the bindings.
    fn update_bindings(&mut self, req: &Request, username: &str, source: Peer, now: Instant) -> Response {
        let h = &req.headers;
        let call_id = h.call_id().unwrap_or_default().to_string();
        let cseq = h.cseq().map(|c| c.seq).unwrap_or(0);
        let header_expires = h.get("Expires").and_then(|v| v.trim().parse::<u64>().ok());
        let contacts = h.list_values("Contact");
        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || header_expires != Some(0) {
                return self.bad_request(req, "Contact: * needs Expires: 0 and no other contact");
            }
            let removed: Vec<Binding> = self.bindings.remove(username).unwrap_or_default();
            for b in removed {
                self.changes.push_back(BindingChange::Removed {
                    username: username.to_string(),
                    contact: b.contact,
                });
            }
            tracing::info!(%username, source = %source.addr, "all devices unregistered");
            return self.ok(req, username, now);
        }
        // Parse and check everything before changing anything.
        let mut wanted: Vec<(String, u32)> = Vec::new();
        for c in contacts.iter().filter(|c| !c.is_empty()) {
            let Ok(na) = NameAddr::parse(c) else {
                return self.bad_request(req, "unparseable Contact");
            };
            if !matches!(na.uri, Uri::Sip(_)) {
                return self.bad_request(req, "Contact must be a sip: or sips: URI");
            }
            let expires = na
                .param("expires")
                .flatten()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .or(header_expires)
                .unwrap_or(self.cfg.default_expires as u64);
            if expires != 0 && expires < self.cfg.min_expires as u64 {
                let mut resp = self.answer(req, 423);
                resp.headers.push("Min-Expires", self.cfg.min_expires.to_string());
                return resp;
            }
            wanted.push((na.uri.to_string(), expires.min(self.cfg.max_expires as u64) as u32));
        }
        let current = self.bindings.get(username).map(Vec::as_slice).unwrap_or(&[]);
        for (contact, _) in &wanted {
            if let Some(b) = current.iter().find(|b| same_contact(&b.contact, contact)) {
                // §10.3 step 7: a retransmitted or reordered REGISTER must not undo a newer one.
                if b.call_id == call_id && cseq <= b.cseq {
                    return self.answer(req, 500);
                }
            }
        }
        let after = current
            .iter()
            .filter(|b| b.expires_at > now && !wanted.iter().any(|(c, _)| same_contact(&b.contact, c)))
            .count()
            + wanted.iter().filter(|(_, e)| *e > 0).count();
        if after > self.cfg.max_bindings_per_account {
            tracing::info!(%username, devices = after, "REGISTER would exceed max_bindings_per_account; 403");
            return self.answer(req, 403);
        }
        let list = self.bindings.entry(username.to_string()).or_default();
        for (contact, expires) in wanted {
            list.retain(|b| !same_contact(&b.contact, &contact));
            if expires == 0 {
                tracing::info!(%username, %contact, "device unregistered");
                self.changes.push_back(BindingChange::Removed {
                    username: username.to_string(),
                    contact,
                });
                continue;
            }
            let binding = Binding {
                contact,
                expires_at: now + Duration::from_secs(expires as u64),
                source,
                call_id: call_id.clone(),
                cseq,
            };
            tracing::info!(%username, contact = %binding.contact, source = %source.addr, expires_secs = expires, "device registered");
            self.changes.push_back(BindingChange::Set {
                username: username.to_string(),
                binding: binding.clone(),
            });
            list.push(binding);
        }
        if list.is_empty() {
            self.bindings.remove(username);
        }
        self.ok(req, username, now)
    }

    /// 200 with every current binding and its remaining lifetime (§10.3 step 8).
    fn ok(&mut self, req: &Request, username: &str, now: Instant) -> Response {
        self.stats.registered += 1;
        let mut resp = self.answer(req, 200);
        for b in self.bindings(username, now) {
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            resp.headers.push("Contact", format!("<{}>;expires={left}", b.contact));
        }
        resp
    }

    fn bad_request(&self, req: &Request, why: &str) -> Response {
        let mut resp = self.answer(req, 400);
        resp.reason = format!("Bad Request ({why})");
        resp
    }

    /// A response with the §8.2.6.2 headers and a To tag that is the same for every retransmission.
    fn answer(&self, req: &Request, status: u16) -> Response {
        let call_id = req.headers.call_id().unwrap_or_default();
        let tag = hex(&digest::hmac_sha256(&self.secret, format!("tag:{call_id}").as_bytes())[..8]);
        Response::from_request_headers(&req.headers, status, Some(&tag))
    }

    /// 401 with an MD5 and a SHA-256 challenge on one fresh nonce. MD5 comes first: many deployed phones
    /// (and `svcrack`) read only the first; RFC 8760 clients pick SHA-256 from the list.
    fn challenge(&mut self, req: &Request, source: Peer, stale: bool, now: Instant) -> Response {
        self.stats.challenges += 1;
        let nonce = self.nonce(source.addr.ip(), now);
        let mut resp = self.answer(req, 401);
        for &algorithm in &self.cfg.algorithms {
            let c = Challenge {
                realm: self.cfg.realm.clone(),
                nonce: nonce.clone(),
                opaque: None,
                algorithm,
                qop_auth: true,
                stale,
            };
            resp.headers.push("WWW-Authenticate", c.to_header());
        }
        resp
    }

    fn nonce(&mut self, ip: IpAddr, now: Instant) -> String {
        let t = now.saturating_duration_since(self.epoch).as_secs();
        let serial = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        let head = format!("{t:016x}{serial:08x}");
        let mac = self.nonce_mac(&head, ip);
        format!("{head}{mac}")
    }

    /// The MAC covers the client's IP address (not the port, which NAT may change between the
    /// challenge and the answer), so a nonce is only good from where it was sent.
    fn nonce_mac(&self, head: &str, ip: IpAddr) -> String {
        let mut data = head.as_bytes().to_vec();
        match ip.to_canonical() {
            IpAddr::V4(v4) => data.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => data.extend_from_slice(&v6.octets()),
        }
        data.extend_from_slice(self.cfg.realm.as_bytes());
        hex(&digest::hmac_sha256(&self.secret, &data)[..16])
    }

    fn check_nonce(&self, nonce: &str, ip: IpAddr, now: Instant) -> NonceCheck {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return NonceCheck::Invalid;
        }
        let (Ok(t), Ok(serial)) = (
            u64::from_str_radix(&nonce[..16], 16),
            u32::from_str_radix(&nonce[16..24], 16),
        ) else {
            return NonceCheck::Invalid;
        };
        if !digest::constant_time_eq(
            self.nonce_mac(&nonce[..24].to_ascii_lowercase(), ip).as_bytes(),
            nonce[24..].to_ascii_lowercase().as_bytes(),
        ) {
            return NonceCheck::Invalid;
        }
        let age = now.saturating_duration_since(self.epoch).as_secs().checked_sub(t);
        match age {
            None => NonceCheck::Invalid,
            Some(a) if a > self.cfg.nonce_lifetime.as_secs() => NonceCheck::Stale,
            Some(_) => NonceCheck::Fresh(NonceId { issued: t, serial }),
        }
    }

    /// Counts one failed answer; true when it started a lockout (of the source or the account).
    fn record_failure(&mut self, ip: IpAddr, username: &str, now: Instant) -> bool {
        let l = self.cfg.lockout;
        let mut locked = false;
        if let Some(until) = self.by_source.fail(ip, l.source_attempts, l.window, l.duration, now) {
            self.stats.source_lockouts += 1;
            tracing::warn!(source = %ip, failures = l.source_attempts, lockout_secs = l.duration.as_secs(), "registrar: source locked out after failed digest answers");
            self.lockouts.push_back(Lockout {
                target: LockoutTarget::Source(ip),
                until,
            });
            locked = true;
        }
        if let Some(until) = self
            .by_account
            .fail(username.to_string(), l.account_attempts, l.window, l.duration, now)
        {
            self.stats.account_lockouts += 1;
            tracing::warn!(%username, source = %ip, failures = l.account_attempts, lockout_secs = l.duration.as_secs(), "registrar: account locked out after failed digest answers");
            self.lockouts.push_back(Lockout {
                target: LockoutTarget::Account(username.to_string()),
                until,
            });
            locked = true;
        }
        locked
    }

    /// The account's devices that have not expired at `now`.
    pub fn bindings(&self, username: &str, now: Instant) -> Vec<&Binding> {
        self.bindings
            .get(username)
            .map(|l| l.iter().filter(|b| b.expires_at > now).collect())
            .unwrap_or_default()
    }

    /// Unexpired bindings of all accounts.
    pub fn binding_count(&self, now: Instant) -> usize {
        self.bindings.values().flatten().filter(|b| b.expires_at > now).count()
    }

    /// Puts back a binding read from storage (no change is queued for it).
    pub fn restore(&mut self, username: &str, binding: Binding, now: Instant) {
        if binding.expires_at <= now {
            return;
        }
        let list = self.bindings.entry(username.to_string()).or_default();
        list.retain(|b| !same_contact(&b.contact, &binding.contact));
        list.push(binding);
    }

    /// Whether `ip` is locked out at `now`.
    pub fn source_locked(&self, ip: IpAddr, now: Instant) -> bool {
        self.by_source.locked(&ip, now)
    }

    pub fn poll_change(&mut self) -> Option<BindingChange> {
        self.changes.pop_front()
    }

    pub fn poll_lockout(&mut self) -> Option<Lockout> {
        self.lockouts.pop_front()
    }

    /// The next binding expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.bindings.values().flatten().map(|b| b.expires_at).min()
    }

    /// Drops expired bindings (queuing their removal) and forgets stale failure counts.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (username, list) in self.bindings.iter_mut() {
            list.retain(|b| {
                let live = b.expires_at > now;
                if !live {
                    tracing::info!(%username, contact = %b.contact, "device registration expired");
                    self.changes.push_back(BindingChange::Removed {
                        username: username.clone(),
                        contact: b.contact.clone(),
                    });
                }
                live
            });
        }
        self.bindings.retain(|_, l| !l.is_empty());
        let window = self.cfg.lockout.window;
        self.by_source.purge(window, now);
        self.by_account.purge(window, now);
        self.purge_grace(now);
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        self.nonce_uses
            .purge(secs.saturating_sub(self.cfg.nonce_lifetime.as_secs()));
    }
}

/// One line per refused or failed digest answer, saying why and what was done about it.
fn log_failure(source: Peer, username: &str, method: &str, reason: DigestFailure, outcome: &str) {
    tracing::info!(source = %source.addr, %username, %method, %reason, "digest answer refused: {reason}; {outcome}");
}

/// Whether two contact URIs name the same device: RFC 3261 §19.1.4 in short (scheme, user and port
/// exact, host case-insensitive, parameters ignored).
fn same_contact(a: &str, b: &str) -> bool {
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(Uri::Sip(x)), Ok(Uri::Sip(y))) => {
            x.secure == y.secure
                && x.user.as_deref().map(unescape) == y.user.as_deref().map(unescape)
                && x.host.eq_ignore_ascii_case(&y.host)
                && x.port == y.port
        }
        _ => a == b,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Failed attempts per key (source IP or username) within a window, and lockouts.
struct Failures<K> {
    map: HashMap<K, FailureEntry>,
}

struct FailureEntry {
    window_start: Instant,
    count: u32,
    locked_until: Option<Instant>,
}

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Failures { map: HashMap::new() }
    }
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn locked(&self, key: &K, now: Instant) -> bool {
        self.map.get(key).and_then(|e| e.locked_until).is_some_and(|u| now < u)
    }

    fn clear(&mut self, key: &K) {
        if self.map.get(key).is_some_and(|e| e.locked_until.is_none()) {
            self.map.remove(key);
        }
    }

    /// Counts a failure; returns the end of the lockout it starts, if it starts one.
    fn fail(&mut self, key: K, limit: u32, window: Duration, duration: Duration, now: Instant) -> Option<Instant> {
        if limit == 0 {
            return None;
        }
        if self.map.len() >= MAX_TRACKED && !self.map.contains_key(&key) {
            self.purge(window, now);
            if self.map.len() >= MAX_TRACKED {
                // Still full of live entries: forget one that is not locked out.
                if let Some(k) = self
                    .map
                    .iter()
                    .find(|(_, e)| e.locked_until.is_none())
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&k);
                }
            }
        }
        let e = self.map.entry(key).or_insert(FailureEntry {
            window_start: now,
            count: 0,
            locked_until: None,
        });
        if e.locked_until.is_some_and(|u| now < u) {
            return None;
        }
        if e.locked_until.is_some() || now.saturating_duration_since(e.window_start) > window {
            *e = FailureEntry {
                window_start: now,
                count: 0,
                locked_until: None,
            };
        }
        e.count += 1;
        if e.count >= limit {
            let until = now + duration;
            e.locked_until = Some(until);
            return Some(until);
        }
        None
    }

    fn purge(&mut self, window: Duration, now: Instant) {
        self.map.retain(|_, e| match e.locked_until {
            Some(u) => now < u,
            None => now.saturating_duration_since(e.window_start) <= window,
        });
    }
}

/// The user part of a REGISTER's To URI, unescaped: the account it is for (or None).
pub fn aor_user(headers: &Headers) -> Option<String> {
    headers
        .to()
        .and_then(|t| t.uri.as_sip().and_then(|u| u.user.as_deref().map(unescape)))
}

mod nonce_uses;
#[cfg(test)]
mod tests;

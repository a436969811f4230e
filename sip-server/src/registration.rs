//! Registration of OnCall's contact with a trunk's registrar (RFC 3261 §10.2), sans-IO.
//!
//! One [`Registration`] per trunk. It builds the REGISTER requests (same Call-ID and From tag for
//! every refresh, CSeq counting up, §10.2.4), answers `401`/`407` digest challenges (SHA-256 over
//! MD5, `qop=auth`, stale nonces; the policy is [`crate::auth::client`]'s), reads the granted expiry from the 200 and
//! schedules the refresh at 80% of it, and after a failure retries with a jittered backoff (5 s
//! doubling to 5 min). `unregister` sends `Expires: 0` (§10.2.2) on shutdown.
//!
//! The caller owns the I/O: it takes the request from [`Registration::poll_request`], adds a top Via
//! with a fresh branch (the transaction layer's job), sends it on a client transaction and feeds
//! the final response back with [`Registration::handle_response`] (or
//! [`Registration::handle_no_response`] when the transaction timed out), and calls
//! [`Registration::handle_timeout`] at [`Registration::poll_timeout`].
//!
//! Deliberately not here: DNS (SRV/NAPTR) resolution of the registrar, outbound (RFC 5626) flows,
//! GRUU, `auth-int` and `-sess` digests.

use crate::auth::client::{AuthError, ClientAuth};
use crate::message::{Headers, Method, NameAddr, Request, Response};
use crate::transaction::Peer;
use std::time::{Duration, Instant};

/// First retry delay after a failure; it doubles on each further failure up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// If a transaction never reports back (it always should: Timer F is 32 s), give up on it after this.
const RESPONSE_GUARD: Duration = Duration::from_secs(40);

/// What one trunk registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkRegistration {
    /// Where REGISTERs are sent.
    pub registrar: Peer,
    /// The address of record, `sip:user@domain`: From and To. The Request-URI is `sip:domain`.
    pub aor: String,
    /// Digest username and password.
    pub username: String,
    pub password: String,
    /// The expiry we ask for.
    pub expires_secs: u32,
    /// Our Contact header value, e.g. `<sip:alice@192.0.2.1:5060>`.
    pub contact: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationStatus {
    /// The first REGISTER (or a retry after failure) is on its way.
    Registering,
    /// The registrar accepted our contact until `until`.
    Registered { until: Instant },
    /// The last attempt failed; the next one goes at `retry_at`.
    Failed { reason: String, retry_at: Instant },
    /// Unregistered (or unregistering) on shutdown; nothing more is sent.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A REGISTER is due at this time (None: at once).
    Due(Option<Instant>),
    /// A REGISTER is in flight (sent at this time).
    Waiting(Instant),
    /// Unregistration is due now / in flight; then `Done`.
    UnregisterDue,
    Unregistering(Instant),
    Done,
}

pub struct Registration {
    cfg: TrunkRegistration,
    request_uri: String,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The expiry we ask for (raised by a 423 Interval Too Brief).
    expires: u32,
    phase: Phase,
    status: RegistrationStatus,
    /// The challenge answered last (reused by refreshes, `nc` counting up) and whether to answer the next.
    auth: ClientAuth,
    /// Failures since the last success, for the backoff.
    failures: u32,
    rng: u64,
}

/// `sip:user@domain` → `sip:domain` (the registrar's Request-URI, §10.2).
fn request_uri_of(aor: &str) -> String {
    let (scheme, rest) = aor.split_once(':').unwrap_or(("sip", aor));
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let host = host.split(';').next().unwrap_or(host);
    format!("{scheme}:{host}")
}

/// The URI inside a Contact value, for comparing our binding with what the registrar lists.
fn contact_uri(value: &str) -> String {
    let v = value.trim();
    let inner = match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    };
    inner.trim().to_ascii_lowercase()
}

impl Registration {
    /// A registration that sends its first REGISTER at once (at the first `poll_request`).
    pub fn new(cfg: TrunkRegistration) -> Registration {
        Self::with_seed(cfg, rand::random())
    }

    /// The same with a fixed seed for the tags and the jitter (tests).
    pub fn with_seed(cfg: TrunkRegistration, seed: u64) -> Registration {
        let mut rng = seed | 1;
        let mut next = || {
            rng = xorshift(rng);
            rng
        };
        let call_id = format!("{:016x}@oncall", next());
        let from_tag = format!("{:08x}", next() as u32);
        Registration {
            request_uri: request_uri_of(&cfg.aor),
            expires: cfg.expires_secs,
            call_id,
            from_tag,
            cseq: 0,
            phase: Phase::Due(None),
            status: RegistrationStatus::Registering,
            auth: ClientAuth::new(cfg.username.clone(), cfg.password.clone()),
            failures: 0,
            rng,
            cfg,
        }
    }

    pub fn registrar(&self) -> Peer {
        self.cfg.registrar
    }

    pub fn status(&self) -> &RegistrationStatus {
        &self.status
    }

    /// Whether nothing more will be sent (unregistered, or never registered before shutdown).
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// The REGISTER to send now, if one is due. Has no Via: the caller adds a top Via with a fresh branch.
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        let expires = match self.phase {
            Phase::Due(at) if at.is_none_or(|at| at <= now) => self.expires,
            Phase::UnregisterDue => 0,
            _ => return None,
        };
        self.phase = if expires == 0 {
            Phase::Unregistering(now)
        } else {
            Phase::Waiting(now)
        };
        Some(self.build(expires))
    }

    fn build(&mut self, expires: u32) -> Request {
        self.cseq += 1;
        let mut headers = Headers::default();
        headers.push("Max-Forwards", "70");
        headers.push("From", format!("<{}>;tag={}", self.cfg.aor, self.from_tag));
        headers.push("To", format!("<{}>", self.cfg.aor));
        headers.push("Call-ID", self.call_id.clone());
        headers.push("CSeq", format!("{} REGISTER", self.cseq));
        headers.push("Contact", self.cfg.contact.clone());
        headers.push("Expires", expires.to_string());
        let mut request = Request {
            method: Method::Register,
            uri: self.request_uri.clone(),
            headers,
            body: Vec::new(),
        };
        self.rng = xorshift(self.rng);
        self.auth.authorize(&mut request, &format!("{:016x}", self.rng));
        request
    }

    /// The final response to the last REGISTER.
    pub fn handle_response(&mut self, response: &Response, now: Instant) {
        let unregistering = matches!(self.phase, Phase::Unregistering(_));
        if !unregistering && !matches!(self.phase, Phase::Waiting(_)) {
            return; // nothing in flight: a late or duplicate response
        }
        if response.headers.cseq().is_some_and(|c| c.seq != self.cseq) {
            return; // answers an older request
        }
        match response.status {
            200..=299 if unregistering => self.stop(),
            200..=299 => {
                let granted = self.granted_expiry(response);
                if granted == 0 {
                    return self.fail("registrar granted no expiry (binding removed)".into(), now);
                }
                self.failures = 0;
                self.auth.on_success();
                let granted = Duration::from_secs(granted.into());
                // Refresh at 80% of the granted time, so a lost REGISTER still has time to be retried.
                let refresh = (granted * 4 / 5).max(Duration::from_secs(1));
                self.status = RegistrationStatus::Registered { until: now + granted };
                self.phase = Phase::Due(Some(now + refresh));
            }
            401 | 407 => {
                if let Err(e) = self.auth.on_challenge(response) {
                    let reason = match e {
                        AuthError::NoChallenge => format!("{} without a usable digest challenge", response.status),
                        AuthError::Rejected | AuthError::NoCredentials => {
                            format!("credentials rejected ({} {})", response.status, response.reason)
                        }
                        AuthError::TooManyStale => e.to_string(),
                    };
                    return self.end_attempt(reason, now, unregistering);
                }
                // Answer at once.
                self.phase = if unregistering {
                    Phase::UnregisterDue
                } else {
                    Phase::Due(None)
                };
            }
            423 => {
                // Interval Too Brief: ask again with the registrar's minimum (§10.3 step 7).
                let min = response
                    .headers
                    .get("Min-Expires")
                    .and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    Some(m) if m > self.expires && !unregistering => {
                        self.expires = m;
                        self.phase = Phase::Due(None);
                    }
                    _ => self.end_attempt("423 without a usable Min-Expires".into(), now, unregistering),
                }
            }
            s => self.end_attempt(format!("{s} {}", response.reason), now, unregistering),
        }
    }

    /// The REGISTER's transaction ended without a final response (Timer F, or it could not be sent).
    pub fn handle_no_response(&mut self, now: Instant) {
        match self.phase {
            Phase::Waiting(_) => self.fail("no response from the registrar".into(), now),
            Phase::Unregistering(_) => self.stop(),
            _ => {}
        }
    }

    /// Timers: a due REGISTER is reported by `poll_request`; this only catches a lost transaction.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Waiting(sent) | Phase::Unregistering(sent) if now >= sent + RESPONSE_GUARD => {
                self.handle_no_response(now)
            }
            _ => {}
        }
    }

    /// When `poll_request` or `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Due(Some(at)) => Some(at),
            Phase::Due(None) | Phase::UnregisterDue => Some(due_now()),
            Phase::Waiting(sent) | Phase::Unregistering(sent) => Some(sent + RESPONSE_GUARD),
            Phase::Done => None,
        }
    }

    /// Removes our binding (`Expires: 0`) if we may hold one; afterwards nothing more is sent.
    pub fn unregister(&mut self, _now: Instant) {
        let may_be_bound =
            matches!(self.status, RegistrationStatus::Registered { .. }) || matches!(self.phase, Phase::Waiting(_));
        if may_be_bound {
            // A response to an in-flight REGISTER is ignored from here on (its CSeq is older).
            self.phase = Phase::UnregisterDue;
        } else {
            self.stop();
        }
    }

    fn stop(&mut self) {
        self.phase = Phase::Done;
        self.status = RegistrationStatus::Stopped;
    }

    fn end_attempt(&mut self, reason: String, now: Instant, unregistering: bool) {
        if unregistering {
            self.stop();
        } else {
            self.fail(reason, now);
        }
    }

    fn fail(&mut self, reason: String, now: Instant) {
        self.failures += 1;
        // A fresh attempt starts from a new challenge.
        self.auth.reset();
        let retry_at = now + self.backoff();
        self.phase = Phase::Due(Some(retry_at));
        self.status = RegistrationStatus::Failed { reason, retry_at };
    }

    /// 5 s · 2^(failures-1), at most 5 min, minus up to 20% jitter so trunks that failed together
    /// do not retry in lockstep.
    fn backoff(&mut self) -> Duration {
        let exp = self.failures.saturating_sub(1).min(16);
        let base = (MIN_BACKOFF * (1u32 << exp)).min(MAX_BACKOFF);
        self.rng = xorshift(self.rng);
        let jitter = (self.rng % 1000) as u32; // 0..999 per mille of 20%
        base - base * jitter / 5000
    }

    /// Our binding's expiry from a 2xx: the `expires` parameter of our Contact, else the Expires
    /// header, else what we asked for.
    fn granted_expiry(&self, response: &Response) -> u32 {
        let ours = contact_uri(&self.cfg.contact);
        for value in response.headers.list_values("Contact") {
            let Ok(na) = NameAddr::parse(value) else { continue };
            if contact_uri(value) != ours {
                continue;
            }
            if let Some(Some(e)) = na.param("expires") {
                if let Ok(e) = e.trim().parse() {
                    return e;
                }
            }
        }
        response
            .headers
            .get("Expires")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.expires)
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The deadline reported for "due at once": an instant no later than any `now` a real-clock caller
/// holds (the first time it was asked). Virtual-clock callers simply call `poll_request` again.
fn due_now() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::digest::{Algorithm, Challenge, Credentials};
    use crate::transaction::Transport;

    fn cfg() -> TrunkRegistration {
        TrunkRegistration {
            registrar: Peer {
                addr: "127.0.0.1:5060".parse().unwrap(),
                transport: Transport::Udp,
                conn: None,
            },
            aor: "sip:alice@example.org".into(),
            username: "alice".into(),
            password: "secret".into(),
            expires_secs: 3600,
            contact: "<sip:alice@192.0.2.1:5070>".into(),
        }
    }

    fn response(req: &Request, status: u16, extra: &[(&str, &str)]) -> Response {
        let mut r = Response::from_request_headers(&req.headers, status, Some("srv"));
        for (n, v) in extra {
            r.headers.push(*n, *v);
        }
        r
    }

    fn challenge(nonce: &str, stale: bool, sha: bool) -> String {
        let c = Challenge {
            realm: "example.org".into(),
            nonce: nonce.into(),
            opaque: None,
            algorithm: if sha { Algorithm::Sha256 } else { Algorithm::Md5 },
            qop_auth: true,
            stale,
        };
        c.to_header()
    }

    fn verify(req: &Request, header: &str, nonce: &str, sha: bool) -> bool {
        let creds = Credentials::parse(req.headers.get(header).expect("credentials")).unwrap();
        let c = Challenge::parse(&challenge(nonce, false, sha)).unwrap();
        creds.uri == req.uri && creds.verify(&c, "REGISTER", "secret")
    }

    #[test]
    fn challenge_then_auth_then_registered_and_refresh_at_80_percent() {
        let t0 = Instant::now();
        let mut reg = Registration::with_seed(cfg(), 7);
        assert_eq!(reg.status(), &RegistrationStatus::Registering);
        let r1 = reg.poll_request(t0).expect("first REGISTER at once");
        assert_eq!(r1.uri, "sip:example.org");
        assert_eq!(r1.headers.get("Expires"), Some("3600"));
        assert!(r1.headers.get("Authorization").is_none());
        assert!(reg.poll_request(t0).is_none(), "one request in flight");
        reg.handle_response(
            &response(&r1, 401, &[("WWW-Authenticate", &challenge("n1", false, false))]),
            t0,
        );
        let r2 = reg.poll_request(t0).expect("answers the challenge at once");
        assert!(verify(&r2, "Authorization", "n1", false));
        assert_eq!(r2.headers.call_id(), r1.headers.call_id());
        assert_eq!(r2.headers.cseq().unwrap().seq, r1.headers.cseq().unwrap().seq + 1);
        let t1 = t0 + Duration::from_millis(30);
        reg.handle_response(
            &response(
                &r2,
                200,
                &[
                    ("Contact", "<sip:alice@192.0.2.1:5070>;expires=600"),
                    ("Expires", "3600"),
                ],
            ),
            t1,
        );
        assert_eq!(
            reg.status(),
            &RegistrationStatus::Registered {
                until: t1 + Duration::from_secs(600)
            }
        );
        assert_eq!(
            reg.poll_timeout(),
            Some(t1 + Duration::from_secs(480)),
            "refresh at 80% of the Contact's expires"
        );
        assert!(reg.poll_request(t1 + Duration::from_secs(479)).is_none());
        let r3 = reg.poll_request(t1 + Duration::from_secs(480)).expect("refresh");
        assert_eq!(
            r3.headers.call_id(),
            r1.headers.call_id(),
            "same Call-ID across refreshes"
        );
        assert_eq!(r3.headers.cseq().unwrap().seq, 3);
        // The refresh reuses the nonce (nc=2) to save a round trip.
        assert!(
            Credentials::parse(r3.headers.get("Authorization").unwrap())
                .unwrap()
                .nc
                .as_deref()
                == Some("00000002")
        );
        // A registrar that wants a new nonce challenges again: that is answered, not a failure.
        let t2 = t1 + Duration::from_secs(480);
        reg.handle_response(
            &response(&r3, 401, &[("WWW-Authenticate", &challenge("n2", false, false))]),
            t2,
        );
        let r4 = reg.poll_request(t2).expect("answers the new nonce");
        assert!(verify(&r4, "Authorization", "n2", false));
        reg.handle_response(&response(&r4, 200, &[("Expires", "100")]), t2);
        assert_eq!(
            reg.status(),
            &RegistrationStatus::Registered {
                until: t2 + Duration::from_secs(100)
            }
        );
        assert_eq!(
            reg.poll_timeout(),
            Some(t2 + Duration::from_secs(80)),
            "Expires header when the Contact has none"
        );
    }

    #[test]
    fn sha256_preferred_and_proxy_challenge() {
        let t0 = Instant::now();
        let mut reg = Registration::with_seed(cfg(), 1);
        let r1 = reg.poll_request(t0).unwrap();
        let mut resp = response(&r1, 407, &[("Proxy-Authenticate", &challenge("m", false, false))]);
        resp.headers.push("Proxy-Authenticate", challenge("s", false, true));
        reg.handle_response(&resp, t0);
        let r2 = reg.poll_request(t0).unwrap();
        assert!(r2.headers.get("Authorization").is_none());
        assert!(verify(&r2, "Proxy-Authorization", "s", true));
    }

    #[test]
    fn wrong_password_fails_and_backs_off_doubling_to_five_minutes() {
        let mut now = Instant::now();
        let mut reg = Registration::with_seed(cfg(), 42);
        let mut delays = Vec::new();
        for i in 0..9 {
            let r = reg.poll_request(now).expect("attempt");
            assert!(
                r.headers.get("Authorization").is_none(),
                "each attempt starts unauthenticated"
            );
            reg.handle_response(
                &response(
                    &r,
                    401,
                    &[("WWW-Authenticate", &challenge(&format!("a{i}"), false, false))],
                ),
                now,
            );
            let r = reg.poll_request(now).expect("answer");
            reg.handle_response(
                &response(
                    &r,
                    401,
                    &[("WWW-Authenticate", &challenge(&format!("b{i}"), false, false))],
                ),
                now,
            );
            let RegistrationStatus::Failed { reason, retry_at } = reg.status().clone() else {
                panic!("{:?}", reg.status())
            };
            assert!(reason.contains("credentials rejected"), "{reason}");
            assert!(
                reg.poll_request(retry_at - Duration::from_millis(1)).is_none(),
                "nothing before the retry"
            );
            delays.push(retry_at - now);
            now = retry_at;
        }
        let nominal = [5, 10, 20, 40, 80, 160, 300, 300, 300];
        for (d, n) in delays.iter().zip(nominal) {
            let n = Duration::from_secs(n);
            assert!(
                *d <= n && *d >= n * 4 / 5,
                "delay {d:?} not within 20% below {n:?}: {delays:?}"
            );
        }
        // Success resets the backoff.
        let r = reg.poll_request(now).unwrap();
        reg.handle_response(&response(&r, 200, &[("Expires", "60")]), now);
        assert!(matches!(reg.status(), RegistrationStatus::Registered { .. }));
        let r = reg.poll_request(now + Duration::from_secs(48)).unwrap();
        now += Duration::from_secs(48);
        reg.handle_response(&response(&r, 500, &[]), now);
        let RegistrationStatus::Failed { retry_at, .. } = reg.status().clone() else {
            panic!()
        };
        assert!(retry_at - now <= Duration::from_secs(5) && retry_at - now >= Duration::from_secs(4));
    }

    #[test]
    fn forbidden_is_a_failure_not_answered() {
        let t0 = Instant::now();
        let mut reg = Registration::with_seed(cfg(), 3);
        let r = reg.poll_request(t0).unwrap();
        reg.handle_response(
            &response(&r, 401, &[("WWW-Authenticate", &challenge("n", false, false))]),
            t0,
        );
        let r = reg.poll_request(t0).unwrap();
        reg.handle_response(&response(&r, 403, &[]), t0);
        let RegistrationStatus::Failed { reason, retry_at } = reg.status().clone() else {
            panic!("{:?}", reg.status())
        };
        assert!(reason.starts_with("403"), "{reason}");
        assert!(retry_at >= t0 + Duration::from_secs(4));
        assert!(reg.poll_request(t0 + Duration::from_secs(1)).is_none());
    }

    #[test]
    fn stale_nonce_is_retried_then_bounded() {
        let t0 = Instant::now();
        let mut reg = Registration::with_seed(cfg(), 5);
        let r = reg.poll_request(t0).unwrap();
        reg.handle_response(
            &response(&r, 401, &[("WWW-Authenticate", &challenge("n1", false, false))]),
            t0,
        );
        let r = reg.poll_request(t0).unwrap();
        reg.handle_response(
            &response(&r, 401, &[("WWW-Authenticate", &challenge("n2", true, false))]),
            t0,
        );
        let r = reg.poll_request(t0).expect("stale=true: answered with the new nonce");
        assert!(verify(&r, "Authorization", "n2", false));
        reg.handle_response(&response(&r, 200, &[]), t0);
        assert_eq!(
            reg.status(),
            &RegistrationStatus::Registered {
                until: t0 + Duration::from_secs(3600)
            }
        );
        // A registrar that calls every nonce stale is not answered forever.
        let mut now = t0 + Duration::from_secs(2880);
        let mut sent = 0;
        while let Some(r) = reg.poll_request(now) {
            sent += 1;
            reg.handle_response(
                &response(
                    &r,
                    401,
                    &[("WWW-Authenticate", &challenge(&format!("s{sent}"), true, false))],
                ),
                now,
            );
            now += Duration::from_millis(1);
        }
        assert!(sent <= 5, "{sent}");
        assert!(matches!(reg.status(), RegistrationStatus::Failed { .. }));
    }

    #[test]
    fn timeout_interval_too_brief_and_unregister() {
        let t0 = Instant::now();
        let mut reg = Registration::with_seed(
            TrunkRegistration {
                expires_secs: 30,
                ..cfg()
            },
            9,
        );
        let r = reg.poll_request(t0).unwrap();
        reg.handle_no_response(t0 + Duration::from_secs(32));
        assert!(matches!(reg.status(), RegistrationStatus::Failed { .. }));
        let at = reg.poll_timeout().unwrap();
        let r2 = reg.poll_request(at).unwrap();
        assert!(r2.headers.cseq().unwrap().seq > r.headers.cseq().unwrap().seq);
        reg.handle_response(&response(&r2, 423, &[("Min-Expires", "60")]), at);
        let r3 = reg.poll_request(at).expect("retried at once with Min-Expires");
        assert_eq!(r3.headers.get("Expires"), Some("60"));
        reg.handle_response(&response(&r3, 200, &[]), at);
        assert!(matches!(reg.status(), RegistrationStatus::Registered { .. }));
        reg.unregister(at);
        let u = reg.poll_request(at).expect("unregister");
        assert_eq!(u.headers.get("Expires"), Some("0"));
        reg.handle_response(&response(&u, 200, &[]), at);
        assert!(reg.is_finished());
        assert_eq!(reg.poll_timeout(), None);
        assert!(reg.poll_request(at + Duration::from_secs(3600)).is_none());
    }

    #[test]
    fn stray_and_old_responses_are_ignored() {
        let t0 = Instant::now();
        let mut reg = Registration::with_seed(cfg(), 11);
        let r1 = reg.poll_request(t0).unwrap();
        reg.handle_response(
            &response(&r1, 401, &[("WWW-Authenticate", &challenge("n", false, false))]),
            t0,
        );
        let r2 = reg.poll_request(t0).unwrap();
        reg.handle_response(&response(&r1, 500, &[]), t0); // CSeq of r1: stale
        assert_eq!(reg.status(), &RegistrationStatus::Registering);
        reg.handle_response(&response(&r2, 200, &[]), t0);
        reg.handle_response(&response(&r2, 500, &[]), t0); // nothing in flight
        assert!(matches!(reg.status(), RegistrationStatus::Registered { .. }));
    }
}

//! The client side of SIP digest authentication (RFC 3261 §22.2 and §22.3, RFC 7616, RFC 8760): one
//! challenge/response path for every request OnCall sends — REGISTER to a trunk, INVITE of a page
//! call, MESSAGE of a text — so a fix to stale nonces or algorithm choice lands once.
//!
//! [`ClientAuth`] holds one account's username and password and what the last attempt learned:
//! - which challenge to answer: of the offered `WWW-Authenticate` (401) or `Proxy-Authenticate` (407)
//!   values it takes SHA-256 over MD5 (RFC 8760 §2.4), `qop=auth` when offered;
//! - whether to answer at all: a second challenge after a fresh answer means the password is wrong,
//!   unless it says `stale=true` (the nonce aged, RFC 7616 §3.3), which is answered with the new
//!   nonce, at most [`MAX_STALE_IN_ROW`] times in a row; a nonce answered once is never answered again;
//! - the challenge answered last, so a later request (a registration refresh) is authorized without
//!   a round trip, `nc` counting up (RFC 7616 §3.4). A challenge after such a reused answer only
//!   means the nonce aged, and is answered.
//!
//! Sans-IO: the caller passes the client nonce in (tests are deterministic) and sends the request.
//! Deliberately not here: credentials for several realms at once (a proxy's and the UAS's in one
//! request), `auth-int` and the `-sess` algorithms.

use super::digest::{Algorithm, Challenge};
use crate::message::{Request, Response};

/// How many `stale=true` challenges in a row are answered before giving up.
pub const MAX_STALE_IN_ROW: u32 = 3;

/// Why a challenge is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials to answer the challenge with")]
    NoCredentials,
    #[error("no usable digest challenge")]
    NoChallenge,
    /// Challenged again after a fresh answer, or with a nonce already answered.
    #[error("credentials rejected")]
    Rejected,
    #[error("too many stale nonces")]
    TooManyStale,
}

/// How the request in flight was authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    None,
    /// With the challenge answered for an earlier request (nc > 1).
    Reused,
    /// Answering the challenge that request's predecessor got.
    Fresh,
}

/// The challenge the next request answers.
#[derive(Debug, Clone)]
struct Answering {
    challenge: Challenge,
    /// `Proxy-Authorization` (407) rather than `Authorization` (401).
    proxy: bool,
    /// Requests authorized with this nonce so far.
    nc: u32,
}

/// One account's answers to digest challenges across the requests of one registration, call or text.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    username: String,
    password: String,
    answering: Option<Answering>,
    /// A challenge arrived since the last request was authorized: the next answer is fresh.
    challenged: bool,
    sent: Sent,
    stale_in_row: u32,
    /// Nonces answered fresh since the last success (or reset): never answered again.
    answered: Vec<String>,
}

impl ClientAuth {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> ClientAuth {
        ClientAuth {
            username: username.into(),
            password: password.into(),
            answering: None,
            challenged: false,
            sent: Sent::None,
            stale_in_row: 0,
            answered: Vec::new(),
        }
    }

    /// A 401 or 407 to the request in flight: `Ok` when it is to be answered (the next
    /// [`ClientAuth::authorize`] carries the answer), else why not (the attempt has failed).
    pub fn on_challenge(&mut self, response: &Response) -> Result<(), AuthError> {
        let proxy = response.status == 407;
        let header = if proxy {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let challenge = choose(response.headers.get_all(header)).ok_or(AuthError::NoChallenge)?;
        if self.answered.contains(&challenge.nonce) {
            return Err(AuthError::Rejected);
        }
        if challenge.stale {
            self.stale_in_row += 1;
            if self.stale_in_row > MAX_STALE_IN_ROW {
                return Err(AuthError::TooManyStale);
            }
        } else if self.sent == Sent::Fresh {
            return Err(AuthError::Rejected);
        }
        self.answering = Some(Answering {
            challenge,
            proxy,
            nc: 0,
        });
        self.challenged = true;
        Ok(())
    }

    /// Adds `Authorization` (or `Proxy-Authorization`) answering the current challenge to `request`
    /// (which carries none), for its method and Request-URI; `cnonce` is a fresh random value. Without
    /// a challenge yet the request goes as it is.
    pub fn authorize(&mut self, request: &mut Request, cnonce: &str) {
        self.sent = Sent::None;
        if let Some(a) = self.answering.as_mut() {
            a.nc += 1;
            let creds = a.challenge.respond(
                &self.username,
                &self.password,
                request.method.as_str(),
                &request.uri,
                cnonce,
                a.nc,
            );
            let name = if a.proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            request.headers.push(name, creds.to_header());
            if self.challenged {
                self.sent = Sent::Fresh;
                self.answered.push(a.challenge.nonce.clone());
            } else {
                self.sent = Sent::Reused;
            }
        }
        self.challenged = false;
    }

    /// For a request sent once (INVITE, MESSAGE): the 401/407 `response` to `sent` is answered by
    /// `sent` again with its CSeq number one up and the new credentials in place of any old ones.
    /// The caller gives it a new top Via (a new transaction).
    pub fn retry(&mut self, sent: &Request, response: &Response, cnonce: &str) -> Result<Request, AuthError> {
        self.on_challenge(response)?;
        let mut request = sent.clone();
        if let Some(cseq) = request.headers.cseq() {
            request.headers.set("CSeq", format!("{} {}", cseq.seq + 1, cseq.method));
        }
        request.headers.remove("Authorization");
        request.headers.remove("Proxy-Authorization");
        self.authorize(&mut request, cnonce);
        Ok(request)
    }

    /// The request was answered without a challenge: the next challenge starts a new attempt (stale
    /// count and answered nonces from zero). The challenge is kept for the next request.
    pub fn on_success(&mut self) {
        self.stale_in_row = 0;
        self.answered.clear();
    }

    /// The attempt failed: forget the challenge too, so the next request starts unauthenticated.
    pub fn reset(&mut self) {
        *self = ClientAuth::new(std::mem::take(&mut self.username), std::mem::take(&mut self.password));
    }
}

/// Of several offered challenges (RFC 8760 §2.4: one per algorithm), the SHA-256 one, else the first
/// usable; unparseable ones (unknown algorithm, `auth-int` only) are skipped.
fn choose<'a>(offered: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut best: Option<Challenge> = None;
    for c in offered.filter_map(|v| Challenge::parse(v).ok()) {
        if c.algorithm == Algorithm::Sha256 {
            return Some(c);
        }
        best.get_or_insert(c);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::digest::Credentials;
    use crate::message::{Headers, Method};

    fn request(method: &str, uri: &str) -> Request {
        let mut headers = Headers::default();
        headers.push("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1");
        headers.push("CSeq", format!("1 {method}"));
        Request {
            method: Method::from_token(method),
            uri: uri.into(),
            headers,
            body: Vec::new(),
        }
    }

    fn challenged(status: u16, values: &[&str]) -> Response {
        let mut r = Response::from_request_headers(&Headers::default(), status, None);
        let name = if status == 407 {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        for v in values {
            r.headers.push(name, *v);
        }
        r
    }

    fn digest(nonce: &str, stale: bool) -> String {
        let c = Challenge {
            realm: "example.org".into(),
            nonce: nonce.into(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop_auth: true,
            stale,
        };
        c.to_header()
    }

    fn credentials(r: &Request, name: &str) -> Credentials {
        Credentials::parse(r.headers.get(name).expect("credentials")).unwrap()
    }

    // RFC 7616 §3.9.1: the server offers SHA-256 and MD5 for the same nonce.
    const RFC7616_SHA256: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC7616_MD5: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_sha256_is_preferred_over_md5_whatever_the_order() {
        for order in [[RFC7616_MD5, RFC7616_SHA256], [RFC7616_SHA256, RFC7616_MD5]] {
            let mut auth = ClientAuth::new("Mufasa", "Circle of Life");
            let sent = request("GET", "/dir/index.html");
            let retry = auth.retry(&sent, &challenged(401, &order), RFC7616_CNONCE).unwrap();
            let c = credentials(&retry, "Authorization");
            assert_eq!(c.algorithm, Algorithm::Sha256);
            assert_eq!(
                c.response,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
            );
            assert_eq!(
                (c.nc.as_deref(), c.opaque.as_deref()),
                (Some("00000001"), Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"))
            );
        }
        // MD5 alone is answered with MD5 (the same section's second response).
        let mut auth = ClientAuth::new("Mufasa", "Circle of Life");
        let retry = auth
            .retry(
                &request("GET", "/dir/index.html"),
                &challenged(401, &[RFC7616_MD5]),
                RFC7616_CNONCE,
            )
            .unwrap();
        assert_eq!(
            credentials(&retry, "Authorization").response,
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc2617_example_and_the_retry_is_the_request_again_with_cseq_one_up() {
        let mut auth = ClientAuth::new("Mufasa", "Circle Of Life");
        let mut sent = request("GET", "/dir/index.html");
        sent.headers.push("Proxy-Authorization", "Digest stale");
        let offered = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let retry = auth.retry(&sent, &challenged(401, &[offered]), "0a4f113b").unwrap();
        assert_eq!(
            credentials(&retry, "Authorization").response,
            "6629fae49393a05397450978507c4ef1"
        );
        assert_eq!(retry.headers.get("CSeq"), Some("2 GET"));
        assert_eq!(
            retry.headers.count("Proxy-Authorization"),
            0,
            "old credentials are replaced"
        );
        assert_eq!(
            retry.headers.get("Via"),
            sent.headers.get("Via"),
            "the caller puts a new Via"
        );
    }

    #[test]
    fn a_407_is_answered_with_proxy_authorization() {
        let mut auth = ClientAuth::new("alice", "secret");
        let retry = auth
            .retry(
                &request("INVITE", "sip:+1555@trunk"),
                &challenged(407, &[&digest("n", false)]),
                "c",
            )
            .unwrap();
        assert!(retry.headers.get("Authorization").is_none());
        let c = credentials(&retry, "Proxy-Authorization");
        let offered = Challenge::parse(&digest("n", false)).unwrap();
        assert!(c.uri == "sip:+1555@trunk" && c.verify(&offered, "INVITE", "secret"));
    }

    #[test]
    fn a_second_challenge_after_a_fresh_answer_is_a_wrong_password() {
        let mut auth = ClientAuth::new("alice", "wrong");
        let first = auth
            .retry(
                &request("MESSAGE", "sip:b@x"),
                &challenged(401, &[&digest("n1", false)]),
                "c",
            )
            .unwrap();
        assert_eq!(
            auth.retry(&first, &challenged(401, &[&digest("n2", false)]), "c"),
            Err(AuthError::Rejected)
        );
    }

    #[test]
    fn stale_nonces_are_answered_a_bounded_number_of_times_and_never_the_same_nonce_twice() {
        let mut auth = ClientAuth::new("alice", "secret");
        let mut sent = auth
            .retry(
                &request("REGISTER", "sip:x"),
                &challenged(401, &[&digest("n0", false)]),
                "c",
            )
            .unwrap();
        for i in 1..=MAX_STALE_IN_ROW {
            sent = auth
                .retry(&sent, &challenged(401, &[&digest(&format!("s{i}"), true)]), "c")
                .unwrap();
            assert_eq!(credentials(&sent, "Authorization").nonce, format!("s{i}"));
            assert_eq!(sent.headers.cseq().unwrap().seq, i + 2);
        }
        assert_eq!(
            auth.retry(&sent, &challenged(401, &[&digest("s9", true)]), "c"),
            Err(AuthError::TooManyStale)
        );

        let mut auth = ClientAuth::new("alice", "secret");
        let sent = auth
            .retry(
                &request("REGISTER", "sip:x"),
                &challenged(401, &[&digest("n0", false)]),
                "c",
            )
            .unwrap();
        assert_eq!(
            auth.retry(&sent, &challenged(401, &[&digest("n0", true)]), "c"),
            Err(AuthError::Rejected),
            "a stale challenge must bring a new nonce"
        );
    }

    #[test]
    fn a_reused_answer_is_counted_up_and_a_challenge_after_it_is_answered() {
        let mut auth = ClientAuth::new("alice", "secret");
        let mut r1 = request("REGISTER", "sip:x");
        auth.authorize(&mut r1, "c");
        assert!(r1.headers.get("Authorization").is_none(), "nothing to answer yet");
        auth.on_challenge(&challenged(401, &[&digest("n1", false)])).unwrap();
        let mut r2 = request("REGISTER", "sip:x");
        auth.authorize(&mut r2, "c");
        assert_eq!(credentials(&r2, "Authorization").nc.as_deref(), Some("00000001"));
        auth.on_success();
        let mut r3 = request("REGISTER", "sip:x");
        auth.authorize(&mut r3, "c2");
        let c = credentials(&r3, "Authorization");
        assert_eq!((c.nonce.as_str(), c.nc.as_deref()), ("n1", Some("00000002")));
        // The registrar wants a new nonce: answered, not a failure; even the same nonce after a success.
        assert_eq!(auth.on_challenge(&challenged(401, &[&digest("n1", false)])), Ok(()));
        let mut r4 = request("REGISTER", "sip:x");
        auth.authorize(&mut r4, "c3");
        assert_eq!(credentials(&r4, "Authorization").nc.as_deref(), Some("00000001"));
        // After a failure the next request starts unauthenticated.
        auth.reset();
        let mut r5 = request("REGISTER", "sip:x");
        auth.authorize(&mut r5, "c");
        assert!(r5.headers.get("Authorization").is_none());
    }

    #[test]
    fn unusable_challenges_are_refused() {
        let mut auth = ClientAuth::new("alice", "secret");
        let sent = request("INVITE", "sip:b@x");
        assert_eq!(
            auth.retry(&sent, &challenged(401, &[]), "c"),
            Err(AuthError::NoChallenge)
        );
        assert_eq!(
            auth.retry(
                &sent,
                &challenged(
                    407,
                    &[
                        "Basic realm=\"x\"",
                        "Digest realm=\"x\", nonce=\"n\", algorithm=SHA-512-256"
                    ]
                ),
                "c"
            ),
            Err(AuthError::NoChallenge)
        );
        // A 401's challenge is in WWW-Authenticate, not Proxy-Authenticate.
        let mut wrong_header = challenged(407, &[&digest("n", false)]);
        wrong_header.status = 401;
        assert_eq!(auth.retry(&sent, &wrong_header, "c"), Err(AuthError::NoChallenge));
        // An unusable value next to a usable one does not hide it.
        let sent2 = auth
            .retry(
                &sent,
                &challenged(
                    401,
                    &["Digest realm=\"x\", nonce=\"m\", qop=\"auth-int\"", &digest("n", false)],
                ),
                "c",
            )
            .unwrap();
        assert_eq!(credentials(&sent2, "Authorization").nonce, "n");
    }
}

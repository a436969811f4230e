//! Alerts by e-mail (issue 20): an optional SMTP listener (`[email]`, off by default) that opens a request per
//! message to `<key>@<domain>`, de-duplicated by subject, as the other receivers do.
//!
//! [`Session`] is the protocol, sans-IO: fed one line at a time, it returns the replies and asks the edge to
//! check a recipient's key ([`Step::CheckKey`], answered with [`Session::key_checked`]) and to deliver a
//! finished message ([`Step::Deliver`]). An unknown or revoked key is refused at RCPT (550), so nothing is
//! accepted that opens nothing. [`serve`] is the edge: a TCP listener, line reads with a size cap and a timeout
//! per connection, and the store.
//!
//! A key is 64 hex characters after `oci_`; an address's local part may carry at most 64, so the recipient is
//! the key without its prefix (`4f1c…@alerts.example.com`; with the prefix is accepted too).

use oncall_core::store::{AlertOutcome, Integration};
use oncall_core::{Store, Timestamp};
use oncall_web::alerts::AlertPager;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Longest line and message accepted (an alert mail is small; a big one is refused, not cut).
const MAX_LINE: usize = 4096;
const MAX_MESSAGE: usize = 256 * 1024;
/// Idle time before a connection is closed.
const IDLE: Duration = Duration::from_secs(60);
/// Connections served at once; more get 421 and are closed (each holds up to a message's bytes in memory).
const MAX_CONNECTIONS: usize = 64;

/// What the edge does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this reply line (without CRLF).
    Reply(String),
    /// Look the key up and answer with [`Session::key_checked`].
    CheckKey(String),
    /// A whole message for the key: open or count its request, then send the reply the session gives.
    Deliver { key: String, subject: String },
    /// Close the connection.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeted,
    Mail,
    Rcpt,
    Data,
}

pub struct Session {
    domain: String,
    state: State,
    key: Option<String>,
    subject: Option<String>,
    in_headers: bool,
    size: usize,
}

impl Session {
    /// A session for mail to `<key>@domain`; the first step is the greeting.
    pub fn new(domain: &str) -> (Session, Step) {
        let s = Session { domain: domain.to_ascii_lowercase(), state: State::Greeted, key: None, subject: None, in_headers: true, size: 0 };
        let greeting = Step::Reply(format!("220 {} OnCall alert mail ready", s.domain));
        (s, greeting)
    }

    /// One line from the client (without CRLF).
    pub fn line(&mut self, line: &str) -> Vec<Step> {
        if self.state == State::Data {
            return self.data_line(line);
        }
        let (verb, arg) = line.split_once(' ').map_or((line, ""), |(v, a)| (v, a.trim()));
        match verb.to_ascii_uppercase().as_str() {
            "HELO" | "EHLO" => {
                self.reset();
                vec![Step::Reply(format!("250 {}", self.domain))]
            }
            "MAIL" if self.state == State::Greeted || self.state == State::Mail => {
                self.reset();
                self.state = State::Mail;
                vec![Step::Reply("250 OK".into())]
            }
            "RCPT" if self.state == State::Mail && self.key.is_none() => match self.key_of(arg) {
                Some(key) => vec![Step::CheckKey(key)],
                None => vec![Step::Reply(format!("550 5.1.1 send to <integration key>@{} (oncall integration add)", self.domain))],
            },
            "RCPT" if self.state == State::Rcpt => vec![Step::Reply("452 4.5.3 one recipient per message".into())],
            "DATA" if self.state == State::Rcpt => {
                self.state = State::Data;
                vec![Step::Reply("354 end with <CRLF>.<CRLF>".into())]
            }
            "RSET" => {
                self.reset();
                vec![Step::Reply("250 OK".into())]
            }
            "NOOP" => vec![Step::Reply("250 OK".into())],
            "QUIT" => vec![Step::Reply("221 bye".into()), Step::Close],
            "MAIL" | "RCPT" | "DATA" => vec![Step::Reply("503 5.5.1 bad sequence of commands".into())],
            _ => vec![Step::Reply("502 5.5.2 command not implemented".into())],
        }
    }

    /// The edge's answer to [`Step::CheckKey`].
    pub fn key_checked(&mut self, key: &str, known: bool) -> Step {
        if known {
            self.key = Some(key.to_string());
            self.state = State::Rcpt;
            Step::Reply("250 OK".into())
        } else {
            Step::Reply("550 5.1.1 unknown or revoked integration key".into())
        }
    }

    /// The reply after a [`Step::Deliver`]: accepted, or a temporary failure the sender retries.
    pub fn delivered(&mut self, ok: bool) -> Step {
        self.reset();
        self.state = State::Mail;
        Step::Reply(if ok { "250 OK: request opened or counted".into() } else { "451 4.3.0 try again later".into() })
    }

    fn reset(&mut self) {
        self.key = None;
        self.subject = None;
        self.in_headers = true;
        self.size = 0;
        if self.state != State::Greeted {
            self.state = State::Mail;
        }
    }

    /// The key of `TO:<local@domain>` when the domain is ours.
    fn key_of(&self, arg: &str) -> Option<String> {
        let addr = arg.get(3..).filter(|_| arg.len() >= 3 && arg[..3].eq_ignore_ascii_case("TO:"))?.trim();
        let addr = addr.trim_start_matches('<').split('>').next()?.trim();
        let (local, domain) = addr.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(&self.domain) || local.is_empty() {
            return None;
        }
        Some(if local.starts_with("oci_") { local.to_string() } else { format!("oci_{local}") })
    }

    fn data_line(&mut self, line: &str) -> Vec<Step> {
        if line == "." {
            let key = self.key.clone().unwrap_or_default();
            let subject = self.subject.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "Alert by e-mail".into());
            return vec![Step::Deliver { key, subject }];
        }
        self.size += line.len() + 2;
        if self.size > MAX_MESSAGE {
            self.reset();
            return vec![Step::Reply("552 5.3.4 message too big".into()), Step::Close];
        }
        if self.in_headers {
            if line.is_empty() {
                self.in_headers = false;
            } else if let Some(v) = line.get(..8).filter(|h| h.eq_ignore_ascii_case("subject:")).map(|_| line[8..].trim()) {
                self.subject = Some(v.to_string());
            }
        }
        Vec::new()
    }
}

/// Listens on `listen` for mail to `<key>@domain` until the task is dropped.
pub async fn serve(listener: TcpListener, domain: String, store: Store, pager: Option<Arc<dyn AlertPager>>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else { continue };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "alert mail: {MAX_CONNECTIONS} connections already open; 421");
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(b"421 too many connections, try again later\r\n")).await;
            });
            continue;
        };
        let (store, pager, domain) = (store.clone(), pager.clone(), domain.clone());
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection(stream, &domain, &store, pager.as_deref()).await {
                tracing::debug!(%peer, error = %e, "alert mail connection ended");
            }
        });
    }
}

async fn connection(stream: tokio::net::TcpStream, domain: &str, store: &Store, pager: Option<&dyn AlertPager>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).take(MAX_MESSAGE as u64 + 64 * 1024);
    let (mut session, greeting) = Session::new(domain);
    let mut integration: Option<Integration> = None;
    let mut steps = vec![greeting];
    loop {
        let mut i = 0;
        while i < steps.len() {
            let next = match std::mem::replace(&mut steps[i], Step::Close) {
                Step::Reply(text) => {
                    write.write_all(format!("{text}\r\n").as_bytes()).await?;
                    None
                }
                Step::Close => return Ok(()),
                Step::CheckKey(key) => {
                    integration = store.integration_by_secret(&key).await.ok().flatten();
                    Some(session.key_checked(&key, integration.is_some()))
                }
                Step::Deliver { subject, .. } => {
                    let ok = match &integration {
                        Some(i) => deliver(store, pager, i, &subject).await,
                        None => false,
                    };
                    Some(session.delivered(ok))
                }
            };
            if let Some(n) = next {
                steps.push(n);
            }
            i += 1;
        }
        let mut raw = Vec::new();
        let read = tokio::time::timeout(IDLE, lines.read_until(b'\n', &mut raw)).await;
        let Ok(Ok(n)) = read else { return Ok(()) };
        if n == 0 {
            return Ok(());
        }
        if raw.len() > MAX_LINE + 2 {
            write.write_all(b"500 5.5.6 line too long\r\n").await?;
            return Ok(());
        }
        let line = String::from_utf8_lossy(&raw);
        steps = session.line(line.trim_end_matches(['\r', '\n']));
    }
}

/// Opens (or counts on) the request for a message with `subject`: the subject is its summary and de-duplication key.
async fn deliver(store: &Store, pager: Option<&dyn AlertPager>, integration: &Integration, subject: &str) -> bool {
    match store.alert_trigger(integration, subject, subject, Timestamp::now()).await {
        Ok(outcome) => {
            tracing::info!(integration = %integration.name, %subject, ?outcome, "alert by e-mail");
            if let (AlertOutcome::Opened(request), Some(p)) = (outcome, pager) {
                p.opened(request, integration.name.clone());
            }
            true
        }
        Err(e) => {
            tracing::warn!(integration = %integration.name, error = %e, "cannot store an alert mail");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(steps: &[Step]) -> Vec<String> {
        steps.iter().filter_map(|s| if let Step::Reply(r) = s { Some(r.clone()) } else { None }).collect()
    }

    #[test]
    fn a_message_to_a_key_is_delivered_with_its_subject() {
        let (mut s, greeting) = Session::new("Alerts.Example.com");
        assert_eq!(greeting, Step::Reply("220 alerts.example.com OnCall alert mail ready".into()));
        assert_eq!(replies(&s.line("EHLO monitor")), vec!["250 alerts.example.com"]);
        assert_eq!(replies(&s.line("MAIL FROM:<nagios@example.com>")), vec!["250 OK"]);
        assert_eq!(s.line("RCPT TO:<4f1c@alerts.example.com>"), vec![Step::CheckKey("oci_4f1c".into())]);
        assert_eq!(s.key_checked("oci_4f1c", true), Step::Reply("250 OK".into()));
        assert!(replies(&s.line("DATA"))[0].starts_with("354"));
        for l in ["From: nagios@example.com", "Subject: PROBLEM: web1 is DOWN", "", "Host web1 is down.", "Subject: not a header"] {
            assert!(s.line(l).is_empty());
        }
        assert_eq!(s.line("."), vec![Step::Deliver { key: "oci_4f1c".into(), subject: "PROBLEM: web1 is DOWN".into() }]);
        assert!(matches!(s.delivered(true), Step::Reply(r) if r.starts_with("250")));
        assert_eq!(s.line("QUIT"), vec![Step::Reply("221 bye".into()), Step::Close]);
    }

    #[test]
    fn unknown_keys_other_domains_and_bad_sequences_are_refused() {
        let (mut s, _) = Session::new("alerts.example.com");
        assert!(replies(&s.line("DATA"))[0].starts_with("503"));
        s.line("HELO x");
        s.line("MAIL FROM:<a@b>");
        assert!(replies(&s.line("RCPT TO:<someone@elsewhere.example>"))[0].starts_with("550"));
        assert!(matches!(s.line("RCPT TO:<oci_nope@alerts.example.com>").as_slice(), [Step::CheckKey(k)] if k == "oci_nope"));
        assert!(matches!(s.key_checked("oci_nope", false), Step::Reply(r) if r.starts_with("550")));
        assert!(replies(&s.line("DATA"))[0].starts_with("503"), "no recipient accepted");
        assert!(replies(&s.line("VRFY root"))[0].starts_with("502"));
    }
}

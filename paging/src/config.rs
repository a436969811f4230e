//! The paging side's sections of the configuration file: `[paging]`, `[texts]` and `[webhooks]`. The
//! binary composes them into its `Config` (one TOML file, env overrides); each is validated here with
//! messages that name the key.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// `[paging]`: phoning whoever is on call when a caller chose "page on-call" (issue 6).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagingConfig {
    /// On by default: a "page on-call" request phones (or texts) whoever is on call. Off: requests are opened
    /// and stored, nobody is phoned, and callers are released after their message.
    pub enabled: bool,
    /// How long the employee has to press a key after each announcement.
    pub key_timeout_secs: u64,
    /// Announcements repeated without a key press before it counts as a decline.
    pub max_retries: u32,
    /// How long a "page on-call" caller holds for an employee (music) before being released with
    /// "someone will get back to you"; 0 releases them right after their message (no live bridge).
    pub max_hold_secs: u64,
    /// Key 7 on a page call: the step is paged again after this long.
    pub snooze_secs: u64,
    /// Requests paged per organization in any hour with trunk calls and texts (issue #15 item 4); beyond it a
    /// request still opens and rings registered phones and SIP URIs, but costs nothing. 0: no cap.
    pub max_pages_per_hour: u32,
    /// The espeak-ng voice (language) an alert's summary is spoken with in its page call (issue 20): `en`,
    /// `de`, `fr`, … (`espeak-ng --voices` lists them).
    pub speech_voice: String,
}

impl PagingConfig {
    pub fn validate(&self) -> Result<()> {
        if self.key_timeout_secs == 0 || self.key_timeout_secs > 120 {
            bail!("paging.key_timeout_secs ({}) must be between 1 and 120", self.key_timeout_secs);
        }
        Ok(())
    }
}

impl Default for PagingConfig {
    fn default() -> Self {
        PagingConfig { enabled: true, key_timeout_secs: 8, max_retries: 2, max_hold_secs: 300, snooze_secs: 900, max_pages_per_hour: 60, speech_voice: "en".into() }
    }
}

/// `[email]`: alerts by e-mail (issue 20, `mail.rs`): an SMTP listener for mail to `<integration key>@domain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Off by default.
    pub enabled: bool,
    /// Where the SMTP listener binds (a mail server in front relays to it; port 25 needs privileges).
    pub listen: String,
    /// The domain of the addresses: mail to `<key>@<domain>` opens requests; other recipients get 550.
    pub domain: String,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig { enabled: false, listen: "127.0.0.1:2525".into(), domain: String::new() }
    }
}

impl EmailConfig {
    pub fn validate(&self) -> Result<()> {
        if self.enabled && self.domain.trim().is_empty() {
            bail!("email.domain must be set when [email] enabled = true (mail goes to <integration key>@<domain>)");
        }
        if self.enabled && self.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!("email.listen ({:?}) must be an address and port, like 127.0.0.1:2525", self.listen);
        }
        Ok(())
    }
}

/// `[texts]`: how `text` notifications are sent (an HTTP SMS gateway, Twilio-compatible by default,
/// or SIP MESSAGE) and how replies come back (`POST /api/v1/texts/inbound`, or SIP MESSAGE).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextsConfig {
    /// Off: a `text` notification fails at once (the escalation moves on) and replies are refused.
    pub enabled: bool,
    /// `"http"`: the SMS gateway at `url` (people's SIP URIs still get SIP MESSAGE); `"sip"`: SIP
    /// MESSAGE, phone numbers through the first `[[trunks]]` entry, SIP URIs directly.
    pub transport: String,
    /// The gateway's endpoint, e.g. `https://api.twilio.com/2010-04-01/Accounts/<sid>/Messages.json`.
    pub url: String,
    /// HTTP basic auth user (Twilio: the account SID); empty sends no Authorization.
    pub account: String,
    /// HTTP basic auth password (Twilio: the auth token).
    pub token: String,
    /// The sender: a number the gateway lets us send from (`{from}`), or the From URI of SIP MESSAGEs.
    pub from: String,
    /// `"form"` (application/x-www-form-urlencoded) or `"json"`: how placeholders are escaped.
    pub body_format: String,
    /// The request body with `{to}`, `{from}` and `{body}`; empty: `To={to}&From={from}&Body={body}`
    /// (form) or `{"to":"{to}","from":"{from}","body":"{body}"}` (json).
    pub body_template: String,
    /// How long the gateway or the SIP peer has to accept a text.
    pub timeout_secs: u64,
    /// Shared secret of the inbound webhook (`?token=` or `X-OnCall-Token`), at least 32 characters;
    /// empty refuses every reply. Used when `inbound_signature = "token"`.
    pub inbound_token: String,
    /// How an inbound webhook post proves it is the gateway's: `"token"` (`inbound_token`) or
    /// `"twilio"` (`X-Twilio-Signature` under `token`, over `[http] public_url` + path).
    pub inbound_signature: String,
    /// Inbound webhook posts accepted per minute from one source address (0: no limit).
    pub inbound_posts_per_minute: u32,
    /// Refused inbound posts (bad signature or token) from one source address within 15 minutes
    /// before it gets 429 for the rest of them (0: no limit).
    pub inbound_max_failures: u32,
}

/// Shortest `[texts] inbound_token` accepted: it is all that stands between the internet and
/// acknowledging someone's emergency (issue 15 item 1).
pub const MIN_INBOUND_TOKEN_LEN: usize = 32;

impl Default for TextsConfig {
    fn default() -> Self {
        TextsConfig {
            enabled: false,
            transport: "http".into(),
            url: String::new(),
            account: String::new(),
            token: String::new(),
            from: String::new(),
            body_format: "form".into(),
            body_template: String::new(),
            timeout_secs: 10,
            inbound_token: String::new(),
            inbound_signature: "token".into(),
            inbound_posts_per_minute: 60,
            inbound_max_failures: 5,
        }
    }
}

impl TextsConfig {
    pub fn validate(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        match self.transport.as_str() {
            "http" => {
                if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
                    bail!("texts.url ({:?}) must start with http:// or https:// when texts.transport = \"http\"", self.url);
                }
            }
            "sip" => {}
            other => bail!("texts.transport ({other:?}) must be \"http\" or \"sip\""),
        }
        if !matches!(self.body_format.as_str(), "form" | "json") {
            bail!("texts.body_format ({:?}) must be \"form\" or \"json\"", self.body_format);
        }
        match self.inbound_signature.as_str() {
            "token" => {
                let len = self.inbound_token.chars().count();
                if len > 0 && len < MIN_INBOUND_TOKEN_LEN {
                    bail!("texts.inbound_token is {len} characters; it must be at least {MIN_INBOUND_TOKEN_LEN} (or empty to refuse every inbound text)");
                }
            }
            "twilio" => {
                if self.token.is_empty() {
                    bail!("texts.inbound_signature = \"twilio\" checks X-Twilio-Signature with the auth token: set texts.token");
                }
            }
            other => bail!("texts.inbound_signature ({other:?}) must be \"token\" or \"twilio\""),
        }
        if self.timeout_secs == 0 || self.timeout_secs > 120 {
            bail!("texts.timeout_secs ({}) must be between 1 and 120", self.timeout_secs);
        }
        Ok(())
    }
}

/// `[webhooks]`: sending request events to the webhooks managers add on the web (issue 7,
/// docs/webhooks.md). The webhooks themselves live in the database; this is how they are sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Run the sender on this instance (any number of instances may: deliveries are leased).
    pub enabled: bool,
    /// How often the queue is looked at.
    pub poll_interval_ms: u64,
    /// How long a receiver has to answer one POST.
    pub timeout_secs: u64,
    /// The wait after the first failed attempt; it doubles after each further failure...
    pub retry_initial_ms: u64,
    /// ... up to this.
    pub retry_max_secs: u64,
    /// Attempts before a delivery is given up (shown as failed, retryable on the web); 0: never give up.
    pub max_attempts: u32,
    /// The site's address as people reach it (e.g. `https://oncall.example.com`): payloads then
    /// link to the request. Empty: no link.
    pub public_url: Option<String>,
    /// Address blocks (CIDRs such as `"10.1.0.0/16"`, `"127.0.0.1/32"`) webhooks may reach although
    /// they are not public (issue #15: loopback, private, link-local ... are refused otherwise).
    pub allow_private: Vec<String>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig { enabled: true, poll_interval_ms: 1000, timeout_secs: 10, retry_initial_ms: 1000, retry_max_secs: 3600, max_attempts: 20, public_url: None, allow_private: Vec::new() }
    }
}

impl WebhooksConfig {
    pub fn retry_policy(&self) -> oncall_core::webhook::RetryPolicy {
        oncall_core::webhook::RetryPolicy {
            initial: oncall_core::Millis(i64::try_from(self.retry_initial_ms).unwrap_or(i64::MAX)),
            max_delay: oncall_core::Millis::seconds(i64::try_from(self.retry_max_secs).unwrap_or(i64::MAX / 1000)),
            max_attempts: (self.max_attempts > 0).then_some(self.max_attempts),
        }
    }

    /// Which addresses webhooks may be sent to (validated at start-up, so the parse cannot fail then).
    pub fn destination_policy(&self) -> oncall_core::destination::DestinationPolicy {
        oncall_core::destination::DestinationPolicy { allow_private: self.allow_private.iter().filter_map(|c| c.parse().ok()).collect() }
    }

    pub fn validate(&self) -> Result<()> {
        for (i, c) in self.allow_private.iter().enumerate() {
            if let Err(e) = c.parse::<oncall_core::destination::Cidr>() {
                bail!("webhooks.allow_private[{i}]: {e}");
            }
        }
        if self.poll_interval_ms < 50 || self.poll_interval_ms > 600_000 {
            bail!("webhooks.poll_interval_ms ({}) must be between 50 and 600000", self.poll_interval_ms);
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            bail!("webhooks.timeout_secs ({}) must be between 1 and 300", self.timeout_secs);
        }
        if self.retry_initial_ms == 0 {
            bail!("webhooks.retry_initial_ms must be at least 1");
        }
        if self.retry_max_secs.saturating_mul(1000) < self.retry_initial_ms {
            bail!("webhooks.retry_max_secs ({}) must not be below webhooks.retry_initial_ms ({} ms)", self.retry_max_secs, self.retry_initial_ms);
        }
        if let Some(url) = self.public_url.as_deref().filter(|u| !u.is_empty()) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("webhooks.public_url ({url:?}) must start with http:// or https://");
            }
        }
        Ok(())
    }
}


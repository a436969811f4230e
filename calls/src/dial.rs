//! The dial plan of the calls side: how a person's contact becomes something the user agent can
//! send to — a Request-URI, the next hop, digest credentials and a From. Paging decides *whom* to
//! reach by which contact; this decides *how*, so paging never names a SIP peer or a trunk.
//!
//! - A phone the person registered with OnCall: its Contact URI, sent to where its REGISTER came
//!   from (behind NAT the Contact's host is unreachable).
//! - A SIP URI: sent directly to its host (an IP literal or an A/AAAA record; no NAPTR/SRV).
//! - A phone number: `sip:<number>@<domain>` through the first `[[trunks]]` entry, with its
//!   credentials and caller id.
//!
//! Whether a number may be dialled at all (the dial plan's prefixes, the page cap) is paging's
//! check, made before it asks for a route.

use crate::config::TrunkConfig;
use crate::phones::RegistrarHandle;
use oncall_core::browser_desk::{BrowserDesk, TabId};
use oncall_core::{Contact, OrgId, PersonId};
use oncall_sip::transaction::{Peer, Transport};
use oncall_sip::ua::outbound::MediaEncryption;
use std::net::{IpAddr, SocketAddr};

/// Where one call or SIP MESSAGE goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The Request-URI.
    pub target: String,
    /// The next hop the request is sent to.
    pub via: Peer,
    /// Digest credentials for a challenge on the way (a trunk's).
    pub credentials: Option<(String, String)>,
    pub from_uri: String,
    /// SRTP for a call on this route (the trunk's `media_encryption`; a phone registered over TLS: required).
    pub media_encryption: MediaEncryption,
    /// A browser tab of the person (issue 19): the page rings it over its WebSocket, and `via` is unused.
    pub browser: Option<TabId>,
}

impl Route {
    /// Where the request is sent, for logs.
    pub fn next_hop(&self) -> SocketAddr {
        self.via.addr
    }
}

/// One phone a person registered with OnCall, routed.
#[derive(Debug, Clone)]
pub struct RegisteredPhone {
    pub route: Route,
    /// The registered Contact and the address it registered from, for logs.
    pub contact: String,
    pub source: SocketAddr,
}

/// Turns contacts into routes. Cheap to clone and share between the paging task and texts.
#[derive(Clone)]
pub struct Dialer {
    trunks: Vec<TrunkConfig>,
    /// Our own SIP URI: the From of requests sent directly to a SIP URI or a registered phone.
    local_uri: String,
    registrar: Option<RegistrarHandle>,
    /// The tabs where people take pages in the browser.
    browsers: Option<BrowserDesk>,
}

impl Dialer {
    pub fn new(trunks: Vec<TrunkConfig>, local_uri: String, registrar: Option<RegistrarHandle>) -> Dialer {
        Dialer { trunks, local_uri, registrar, browsers: None }
    }

    /// With the browser tabs, which ring with a person's registered phones.
    pub fn with_browsers(mut self, desk: BrowserDesk) -> Dialer {
        self.browsers = Some(desk);
        self
    }

    /// The dialer of organization `slug` (issue 17): its own trunks first, then the shared ones (no
    /// `organization`); never another organization's.
    pub fn for_org(&self, slug: &str) -> Dialer {
        let own = self.trunks.iter().filter(|t| t.organization.as_deref() == Some(slug));
        let shared = self.trunks.iter().filter(|t| t.organization.is_none());
        Dialer { trunks: own.chain(shared).cloned().collect(), local_uri: self.local_uri.clone(), registrar: self.registrar.clone(), browsers: self.browsers.clone() }
    }

    /// Our own SIP URI.
    pub fn local_uri(&self) -> &str {
        &self.local_uri
    }

    /// The phones `person` of `org` registered that are current now, and the browser tabs they take pages in;
    /// they all ring for a page.
    pub fn registered_phones(&self, org: OrgId, person: PersonId) -> Vec<RegisteredPhone> {
        let mut phones = self.sip_phones(person);
        let tabs = self.browsers.as_ref().map(|d| d.tabs_of(org, person)).unwrap_or_default();
        phones.extend(tabs.into_iter().map(|tab| {
            let target = format!("browser tab {}", tab.0);
            let nowhere = Peer { addr: SocketAddr::from(([0, 0, 0, 0], 0)), transport: Transport::Udp, conn: None };
            let route = Route { target: target.clone(), via: nowhere, credentials: None, from_uri: self.local_uri.clone(), media_encryption: MediaEncryption::None, browser: Some(tab) };
            RegisteredPhone { route, contact: target, source: nowhere.addr }
        }));
        phones
    }

    fn sip_phones(&self, person: PersonId) -> Vec<RegisteredPhone> {
        let Some(registrar) = &self.registrar else { return Vec::new() };
        registrar
            .registered_devices(person)
            .into_iter()
            .map(|d| RegisteredPhone {
                route: Route {
                    target: d.contact.clone(),
                    // The connection it registered on, for TCP and TLS: a phone behind NAT accepts no new one.
                    via: Peer { addr: d.source, transport: d.transport, conn: d.conn },
                    credentials: None,
                    from_uri: self.local_uri.clone(),
                    // A phone that registered over TLS gets its audio encrypted too (RFC 4568 keys travel in that TLS).
                    media_encryption: if d.transport == Transport::Tls { MediaEncryption::Srtp } else { MediaEncryption::None },
                    browser: None,
                },
                contact: d.contact,
                source: d.source,
            })
            .collect()
    }

    /// The route of a call or text to `contact`. `from` overrides the sender (`[texts] from`: a SIP URI, or
    /// a number sent as `sip:<from>@<trunk domain>` through the trunk); empty keeps our URI or the trunk's
    /// caller id.
    pub async fn route(&self, contact: &Contact, from: &str) -> Result<Route, String> {
        match contact {
            Contact::Sip(uri) => {
                let addr = resolve_sip_uri(uri.as_str()).await?;
                let from_uri = if from.starts_with("sip:") { from.to_string() } else { self.local_uri.clone() };
                Ok(Route { target: uri.as_str().to_string(), via: Peer { addr, transport: Transport::Udp, conn: None }, credentials: None, from_uri, media_encryption: MediaEncryption::None, browser: None })
            }
            Contact::Phone(number) => {
                let trunk = self.trunks.first().ok_or("a phone number needs a [[trunks]] entry to call or text through")?;
                let addr = trunk.registrar_addr().map_err(|e| format!("trunk {}: {e}", trunk.name))?;
                let domain = trunk.aor().rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
                let from_uri = match (&trunk.caller_id, from) {
                    (_, f) if f.starts_with("sip:") => f.to_string(),
                    (_, f) if !f.is_empty() => format!("sip:{f}@{domain}"),
                    (Some(id), _) if id.starts_with("sip:") || id.starts_with("sips:") => id.clone(),
                    (Some(id), _) => format!("sip:{id}@{domain}"),
                    (None, _) => trunk.aor(),
                };
                let credentials = (!trunk.username.is_empty()).then(|| (trunk.username.clone(), trunk.password.clone()));
                let media_encryption = trunk.media_encryption().unwrap_or_default();
                Ok(Route { target: format!("sip:{}@{domain}", number.as_str()), via: Peer { addr, transport: trunk.transport(), conn: None }, credentials, from_uri, media_encryption, browser: None })
            }
        }
    }

    /// The name of the trunk phone numbers go through, for logs.
    pub fn trunk_name(&self) -> Option<&str> {
        self.trunks.first().map(|t| t.name.as_str())
    }
}

/// The UDP address a `sip:user@host[:port][;params]` URI is reached at (port 5060 by default).
pub async fn resolve_sip_uri(uri: &str) -> Result<SocketAddr, String> {
    let rest = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:")).ok_or_else(|| format!("{uri:?} is not a SIP URI"))?;
    let rest = rest.split([';', '?', '>']).next().unwrap_or("");
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let (host, port) = oncall_sip::message::uri::split_hostport(hostport).map_err(|e| format!("{uri:?}: {e}"))?;
    let host = host.trim_matches(|c| c == '[' || c == ']');
    let port = port.unwrap_or(5060);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    // A host name: its A/AAAA record (no NAPTR/SRV lookups).
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sip_uris_resolve_to_their_host_and_port() {
        assert_eq!(resolve_sip_uri("sip:erin@127.0.0.1:5070;transport=udp").await, Ok("127.0.0.1:5070".parse().unwrap()));
        assert_eq!(resolve_sip_uri("sip:10.1.2.3").await, Ok("10.1.2.3:5060".parse().unwrap()));
        assert!(resolve_sip_uri("mailto:x@y").await.is_err());
    }

    /// Issue 17: an organization's numbers go through its own trunk, else a shared one; never another's.
    #[tokio::test]
    async fn an_organization_calls_out_through_its_own_trunk() {
        let trunk = |name: &str, registrar: &str, org: Option<&str>| TrunkConfig {
            name: name.into(),
            registrar: registrar.into(),
            username: format!("{name}-user"),
            organization: org.map(str::to_string),
            ..TrunkConfig::default()
        };
        let dialer = Dialer::new(
            vec![trunk("apartments", "192.0.2.1", Some("apartments")), trunk("shared", "192.0.2.2", None), trunk("desk", "192.0.2.3", Some("help-desk"))],
            "sip:oncall@127.0.0.1".into(),
            None,
        );
        async fn via(d: &Dialer) -> Result<(String, Option<String>), String> {
            let number = Contact::Phone("+15551230000".parse().unwrap());
            d.route(&number, "").await.map(|r| (r.via.addr.ip().to_string(), r.credentials.map(|c| c.0)))
        }
        assert_eq!(via(&dialer.for_org("help-desk")).await, Ok(("192.0.2.3".into(), Some("desk-user".into()))));
        assert_eq!(via(&dialer.for_org("apartments")).await, Ok(("192.0.2.1".into(), Some("apartments-user".into()))));
        assert_eq!(via(&dialer.for_org("night-desk")).await, Ok(("192.0.2.2".into(), Some("shared-user".into()))), "the shared trunk");
        let own_only = Dialer::new(vec![trunk("desk", "192.0.2.3", Some("help-desk"))], "sip:oncall@127.0.0.1".into(), None);
        assert!(via(&own_only.for_org("apartments")).await.is_err(), "never another organization's trunk");
    }
}

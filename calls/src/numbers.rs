//! Which organization an INVITE is for (issue 17): the calls side's copy of the numbers organizations own
//! (`oncall org number add`), kept fresh by the settings watch, and the answer for each call.
//!
//! With no numbers configured every call reaches the organization this server answers for (a single-tenant
//! install changes nothing). Once numbers exist, a call to a number nobody owns, or to a disabled
//! organization's, gets 404 instead of an IVR; never another organization's. A call to an organization's
//! number is answered with that organization's IVR and hours ([`crate::tenants`]).

use crate::settings_watch::Watched;
use oncall_core::inbound::{route, InboundCall, OwnedNumber, Routed};
use oncall_core::{OrgId, Store};
use crate::config::TrunkConfig;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

/// What to do with an incoming call, by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// This organization's IVR.
    Org(OrgId),
    /// Refused with this status; the reason is for the log.
    Refuse { status: u16, reason: &'static str },
}

/// Trunk name → (the organization that brings it, whether that organization is disabled), as last read.
type TrunkOwners = Arc<RwLock<Arc<HashMap<String, (OrgId, bool)>>>>;

#[derive(Clone)]
pub struct NumberBook {
    table: Arc<RwLock<Arc<Vec<OwnedNumber>>>>,
    /// `[[trunks]] organization`: trunk name → slug (from the config file).
    trunk_slugs: Arc<HashMap<String, String>>,
    trunk_owners: TrunkOwners,
    served: OrgId,
}

/// `(user, host)` of the first SIP or tel URI in a header value or Request-URI: `"Desk" <sip:+1555@h:5060>;tag=x`
/// → `("+1555", "h")`; `tel:+1555` → `("+1555", "")`.
pub fn user_and_host(value: &str) -> (&str, &str) {
    let Some(at) = ["sip:", "sips:", "tel:"].iter().filter_map(|s| value.find(s).map(|i| i + s.len())).min() else { return ("", "") };
    let rest = &value[at..];
    let rest = &rest[..rest.find(['>', ';', '?', ' ']).unwrap_or(rest.len())];
    match rest.split_once('@') {
        Some((user, host)) => {
            let host = host.strip_prefix('[').map_or_else(|| host.split(':').next().unwrap_or(host), |h| h.split(']').next().unwrap_or(h));
            (user, host)
        }
        None => (rest, ""),
    }
}

impl NumberBook {
    /// The book for a server whose calls go to `served` while no numbers exist, read once now (so the first calls are routed too).
    pub async fn load(store: &Store, served: OrgId, trunks: &[TrunkConfig]) -> oncall_core::store::Result<NumberBook> {
        let table = store.numbers(None).await?;
        let trunk_slugs: HashMap<String, String> = trunks.iter().filter_map(|t| Some((t.name.clone(), t.organization.clone()?))).collect();
        let owners = read_owners(store, &trunk_slugs).await?;
        Ok(NumberBook { table: Arc::new(RwLock::new(Arc::new(table))), trunk_slugs: Arc::new(trunk_slugs), trunk_owners: Arc::new(RwLock::new(Arc::new(owners))), served })
    }

    /// An empty book (tests, and a server that does not route by number).
    pub fn empty(served: OrgId) -> NumberBook {
        NumberBook { table: Arc::default(), trunk_slugs: Arc::default(), trunk_owners: Arc::default(), served }
    }

    /// The organization calls go to while no numbers exist (and page legs without a holding caller).
    pub fn served(&self) -> OrgId {
        self.served
    }

    fn snapshot(&self) -> Arc<Vec<OwnedNumber>> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The answer for a call to `request_uri` (To `to`) that came through trunk `source`.
    pub fn admit(&self, request_uri: &str, to: &str, source: Option<&str>) -> Admit {
        // A trunk an organization brings carries only that organization's calls, whatever the number.
        let owners = self.trunk_owners.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(&(org, disabled)) = source.and_then(|t| owners.get(t)) {
            return if disabled { Admit::Refuse { status: 404, reason: "the call came through a disabled organization's trunk" } } else { Admit::Org(org) };
        }
        let table = self.snapshot();
        if table.is_empty() {
            return Admit::Org(self.served);
        }
        let (user, host) = user_and_host(request_uri);
        let to_user = Some(user_and_host(to).0).filter(|u| !u.is_empty());
        match route(&table, &InboundCall { user, host, to_user, source }) {
            Routed::Org(org) => Admit::Org(org),
            Routed::Disabled(_) => Admit::Refuse { status: 404, reason: "the number belongs to a disabled organization" },
            Routed::Nobody => Admit::Refuse { status: 404, reason: "no organization owns the number" },
        }
    }

    /// The copy the settings watch refreshes.
    pub fn watched(&self) -> NumbersWatch {
        NumbersWatch { table: self.table.clone(), trunk_slugs: self.trunk_slugs.clone(), trunk_owners: self.trunk_owners.clone() }
    }
}

/// The organizations that bring trunks, by trunk name; a slug no organization has is logged and ignored.
async fn read_owners(store: &Store, trunk_slugs: &HashMap<String, String>) -> oncall_core::store::Result<HashMap<String, (OrgId, bool)>> {
    if trunk_slugs.is_empty() {
        return Ok(HashMap::new());
    }
    let orgs = store.list_organizations().await?;
    let mut owners = HashMap::new();
    for (trunk, slug) in trunk_slugs {
        match orgs.iter().find(|o| &o.slug == slug) {
            Some(o) => {
                owners.insert(trunk.clone(), (o.id, o.disabled_at.is_some()));
            }
            None => tracing::warn!(%trunk, organization = %slug, "[[trunks]] organization names no organization (oncall org list); its calls are routed by number"),
        }
    }
    Ok(owners)
}

pub struct NumbersWatch {
    table: Arc<RwLock<Arc<Vec<OwnedNumber>>>>,
    trunk_slugs: Arc<HashMap<String, String>>,
    trunk_owners: TrunkOwners,
}

impl Watched for NumbersWatch {
    fn reload<'a>(&'a mut self, store: &'a Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            match store.numbers(None).await {
                Ok(t) => *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(t),
                Err(e) => tracing::warn!(error = %e, "cannot re-read the organizations' numbers; keeping the previous ones"),
            }
            match read_owners(store, &self.trunk_slugs).await {
                Ok(o) => *self.trunk_owners.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(o),
                Err(e) => tracing::warn!(error = %e, "cannot re-read which organizations bring trunks; keeping the previous answer"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(numbers: Vec<OwnedNumber>) -> NumberBook {
        NumberBook { table: Arc::new(RwLock::new(Arc::new(numbers))), ..NumberBook::empty(OrgId(1)) }
    }

    fn owned(org: i64, address: &str, disabled: bool) -> OwnedNumber {
        OwnedNumber { org: OrgId(org), address: address.into(), source: None, org_disabled: disabled }
    }

    #[test]
    fn uris_give_their_user_and_host() {
        assert_eq!(user_and_host("sip:+15551230000@127.0.0.1:5060;transport=udp"), ("+15551230000", "127.0.0.1"));
        assert_eq!(user_and_host("\"Desk\" <sip:help@Desk.Example>;tag=1"), ("help", "Desk.Example"));
        assert_eq!(user_and_host("<sip:100@[::1]:5080>"), ("100", "::1"));
        assert_eq!(user_and_host("tel:+15551230000"), ("+15551230000", ""));
        assert_eq!(user_and_host("garbage"), ("", ""));
    }

    /// Issue 17: a trunk an organization brings carries only its calls, whatever number they are for.
    #[test]
    fn a_trunk_an_organization_brings_carries_its_calls() {
        let b = book(vec![owned(1, "+15551230000", false)]);
        *b.trunk_owners.write().unwrap() = Arc::new(HashMap::from([("desk-pbx".to_string(), (OrgId(2), false)), ("gone-pbx".to_string(), (OrgId(3), true))]));
        assert_eq!(b.admit("sip:+15551230000@10.0.0.1", "", Some("desk-pbx")), Admit::Org(OrgId(2)));
        assert_eq!(b.admit("sip:4100@10.0.0.1", "", Some("desk-pbx")), Admit::Org(OrgId(2)));
        assert!(matches!(b.admit("sip:4100@10.0.0.1", "", Some("gone-pbx")), Admit::Refuse { status: 404, .. }));
        assert_eq!(b.admit("sip:+15551230000@10.0.0.1", "", Some("shared")), Admit::Org(OrgId(1)));
    }

    #[test]
    fn without_numbers_every_call_reaches_the_first_organization() {
        assert_eq!(NumberBook::empty(OrgId(1)).admit("sip:anything@h", "<sip:anything@h>", None), Admit::Org(OrgId(1)));
    }

    #[test]
    fn a_call_gets_its_own_organizations_ivr_or_a_refusal_never_another_ones() {
        let b = book(vec![owned(1, "+15551230000", false), owned(2, "+15559870000", false), owned(3, "+15550000003", true)]);
        assert_eq!(b.admit("sip:+15551230000@10.0.0.1", "", None), Admit::Org(OrgId(1)));
        assert_eq!(b.admit("sip:oncall@10.0.0.1", "<sip:15551230000@carrier>", None), Admit::Org(OrgId(1)), "the To user, without its plus");
        assert_eq!(b.admit("sip:+15559870000@10.0.0.1", "", None), Admit::Org(OrgId(2)));
        assert!(matches!(b.admit("sip:+15550000003@10.0.0.1", "", None), Admit::Refuse { status: 404, .. }));
        assert!(matches!(b.admit("sip:+15557777777@10.0.0.1", "", None), Admit::Refuse { status: 404, .. }));
    }
}

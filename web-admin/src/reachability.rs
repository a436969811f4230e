//! Paging health as the web shows it: can paging reach a person right now, and if not, why and
//! what fixes it (issue 18 item 5). The dashboard warns about whoever is on call now; the People
//! page flags everyone nobody could reach.
//!
//! The web knows people and their contacts, not trunks, texts or registered phones: those belong to
//! the paging and calls side, which implements [`Reachability`] (`oncall_paging::reachability`) and
//! the binary puts in [`WebConfig::reachability`](crate::WebConfig). Until then (tests, a web-only
//! build) [`NotKnown`] says nothing, so no page warns about what it cannot know.
//!
//! Deliberately not here: the rules of whom paging tries by which contact (the dispatcher's), DNS
//! lookups of SIP URIs, and the page cap (it passes within the hour).

use oncall_core::Person;
use serde::Serialize;
use std::fmt;

/// One way of reaching a person that paging cannot use now, in plain words, and what fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactProblem {
    /// The contact, as a manager recognises it: `+12125550101`, `texts to +12125550101`,
    /// `phone account maria`.
    pub contact: String,
    /// What stands in the way, e.g. "no [[trunks]] entry dials phone numbers".
    pub problem: String,
    /// What to do about it, e.g. "add a trunk to oncall.toml (docs/configuration.md)".
    pub fix: String,
}

impl ContactProblem {
    pub fn new(contact: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> ContactProblem {
        ContactProblem { contact: contact.into(), problem: problem.into(), fix: fix.into() }
    }
}

/// How a person can be reached now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// Nothing paging would try gets through: no call and no text reaches them.
    pub unreachable: bool,
    /// Every contact (or way) that cannot be used, also when others can.
    pub problems: Vec<ContactProblem>,
}

/// What the paging side knows about reaching people. Answers from memory (configuration and the
/// registrar's current bindings): the pages call it once per person shown.
pub trait Reachability: Send + Sync + 'static {
    /// Problems of paging as a whole (e.g. `[paging] enabled = false`), shown once on the dashboard.
    fn general(&self) -> Vec<ContactProblem> {
        Vec::new()
    }
    /// How `person` can be reached now; `phone_accounts` are the usernames of their SIP accounts
    /// (phones registering to OnCall), read from the store by the page.
    fn reach(&self, person: &Person, phone_accounts: &[String]) -> Reach;
    /// Whether the paging side runs at all (`[paging] enabled`); `None` when not known. Request
    /// actions (page again, escalate, reassign) are refused when it is off: nobody would carry them out.
    fn paging_on(&self) -> Option<bool> {
        None
    }
    /// False for [`NotKnown`]: pages skip the store reads a verdict would need.
    fn known(&self) -> bool {
        true
    }
}

impl fmt::Debug for dyn Reachability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.known() { "Reachability" } else { "Reachability(not known)" })
    }
}

/// No paging side to ask: nobody is flagged and nothing is warned about.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotKnown;

impl Reachability for NotKnown {
    fn reach(&self, _: &Person, _: &[String]) -> Reach {
        Reach::default()
    }
    fn known(&self) -> bool {
        false
    }
}

/// The person's reach as the pages need it: their phone accounts read from the store first.
pub async fn reach_of(store: &oncall_core::Store, r: &dyn Reachability, person: &Person) -> Result<Reach, oncall_core::StoreError> {
    if !r.known() {
        return Ok(Reach::default());
    }
    let accounts: Vec<String> = store.sip_accounts_of(person.org, person.id).await?.into_iter().map(|a| a.username).collect();
    Ok(r.reach(person, &accounts))
}

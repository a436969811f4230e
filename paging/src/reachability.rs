//! Can paging reach a person right now? The web's health warnings (issue 18 item 5): the dashboard
//! warns about whoever is on call, the People page flags anyone nobody could reach. This is the
//! paging side's answer to [`oncall_web::reachability::Reachability`], from the same rules the
//! dispatcher and the text senders follow:
//!
//! - a call rings every phone the person registered with OnCall, else goes to their first contact:
//!   a SIP URI directly, or a number the dial plan allows through the first `[[trunks]]` entry;
//! - a text needs `[texts]` on, and goes to a number (the SMS gateway; with `transport = "sip"`
//!   through the first trunk) or a SIP URI (SIP MESSAGE directly);
//! - the person is *unreachable* when none of the channels their notification rules use gets
//!   through. Each contact that cannot be used is named with what fixes it, also when others work.
//!
//! [`assess`] is the pure decision (contacts and facts in, verdict out); [`PagingReach`] feeds it
//! the configuration and the registrar's current bindings. Deliberately not judged: the page cap
//! (it passes within the hour), whether a SIP URI's host resolves, whether the trunk is registered
//! right now (the /healthz board says), and phones registered to another instance of a cluster
//! (this instance's paging would not ring them either).

use oncall_calls::phones::RegistrarHandle;
use oncall_core::dial_plan::DialPlan;
use oncall_core::person::Channel;
use oncall_core::{Contact, Person};
use oncall_web::reachability::{ContactProblem, Reach, Reachability};

/// How texts go out (`[texts] enabled` and `transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRoute {
    /// `[texts] enabled = false`: a text notification fails at once.
    Off,
    /// The HTTP SMS gateway for numbers (SIP URIs still get SIP MESSAGE).
    Gateway,
    /// SIP MESSAGE: numbers through the first trunk, SIP URIs directly.
    Sip,
}

/// What the configuration says about reaching people.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `[paging] enabled`.
    pub paging: bool,
    /// The first `[[trunks]]` entry's name: phone numbers are called (and texted by SIP) through it.
    pub trunk: Option<String>,
    pub texts: TextRoute,
    /// `[registrar] enabled`: people's phones can register to OnCall.
    pub registrar: bool,
    pub dial_plan: DialPlan,
}

const TRUNK_FIX: &str = "add a [[trunks]] entry to oncall.toml (docs/configuration.md)";
/// For someone with no phone account yet: a registered softphone needs no trunk.
const NO_TRUNK_FIX: &str = "add a [[trunks]] entry to oncall.toml (docs/configuration.md), or give them a phone account (oncall person sip-account)";

/// Problems of paging as a whole.
pub fn general(facts: &Facts) -> Vec<ContactProblem> {
    if facts.paging {
        return Vec::new();
    }
    vec![ContactProblem::new(
        "Paging",
        "paging is off ([paging] enabled = false): requests are stored, but nobody is phoned or texted",
        "set [paging] enabled = true in oncall.toml",
    )]
}

/// How `person` can be reached now, given the usernames of their phone accounts, the accounts
/// among them with a phone registered now, and the facts.
pub fn assess(person: &Person, accounts: &[String], registered: &[String], facts: &Facts) -> Reach {
    let mut problems = Vec::new();
    if person.disabled {
        problems.push(ContactProblem::new("Everything", "they are disabled, so they are never paged", "enable them on the People page"));
        return Reach { unreachable: true, problems };
    }
    let uses = |c: Channel| (person.notification_rules.is_empty() && c == Channel::Call) || person.notification_rules.iter().any(|r| r.channel == c);
    let has_sip = person.contacts.iter().any(|c| matches!(c, Contact::Sip(_)));
    // The numbers the dial plan allows; each refused one is a problem of its own.
    let mut allowed = Vec::new();
    for number in person.phones() {
        match facts.dial_plan.check(number) {
            Ok(()) => allowed.push(number),
            Err(refusal) => problems.push(ContactProblem::new(number.as_str(), refusal.to_string(), "change the number on their edit page, or [dial_plan] in oncall.toml")),
        }
    }
    if person.contacts.is_empty() && accounts.is_empty() {
        problems.push(ContactProblem::new("Contacts", "no phone number, SIP address or phone account", "add a phone number on their edit page"));
    }

    let mut reachable = false;
    if uses(Channel::Call) {
        // Registered phones ring first; any one is enough.
        let device = !registered.is_empty();
        for username in accounts {
            let contact = format!("phone account {username}");
            if !facts.registrar {
                problems.push(ContactProblem::new(contact, "the registrar is off, so no phone can sign in", "set [registrar] enabled = true in oncall.toml"));
            } else if !registered.contains(username) {
                problems.push(ContactProblem::new(
                    contact,
                    "no phone is registered for it now",
                    format!("sign in a softphone as {username} (README: Receive a page with a softphone)"),
                ));
            }
        }
        let trunk_number = facts.trunk.is_some() && !allowed.is_empty();
        if facts.trunk.is_none() {
            for number in &allowed {
                let fix = if accounts.is_empty() { NO_TRUNK_FIX } else { TRUNK_FIX };
                problems.push(ContactProblem::new(format!("calls to {number}"), "no [[trunks]] entry dials phone numbers", fix));
            }
        }
        reachable |= device || has_sip || trunk_number;
    }
    if uses(Channel::Text) {
        let text_number = match facts.texts {
            TextRoute::Off => {
                problems.push(ContactProblem::new("Texts", "texts are off ([texts] enabled = false)", "set [texts] in oncall.toml (an SMS gateway or SIP MESSAGE), or notify them by call"));
                false
            }
            TextRoute::Gateway => !allowed.is_empty(),
            TextRoute::Sip if facts.trunk.is_none() => {
                for number in &allowed {
                    problems.push(ContactProblem::new(
                        format!("texts to {number}"),
                        "[texts] transport = \"sip\" sends texts to numbers through the first [[trunks]] entry, and there is none",
                        "add a [[trunks]] entry, or send texts through an SMS gateway ([texts] transport = \"http\")",
                    ));
                }
                false
            }
            TextRoute::Sip => !allowed.is_empty(),
        };
        let text = facts.texts != TextRoute::Off && (text_number || has_sip);
        if facts.texts != TextRoute::Off && !text && allowed.is_empty() && !has_sip && !person.contacts.is_empty() {
            problems.push(ContactProblem::new("Texts", "no phone number or SIP address that can be texted", "add a phone number on their edit page"));
        }
        reachable |= text;
    }
    Reach { unreachable: !reachable, problems }
}

/// The paging side's [`Reachability`]: the configuration, and the registrar's bindings now.
pub struct PagingReach {
    pub facts: Facts,
    /// `None` with `[registrar] enabled = false`.
    pub registrar: Option<RegistrarHandle>,
}

impl PagingReach {
    /// From the configuration: `[paging]`, `[texts]`, the first trunk's name, the registrar's handle
    /// (`None` with `[registrar] enabled = false`) and the dial plan.
    pub fn new(paging: &crate::config::PagingConfig, texts: &crate::config::TextsConfig, trunk: Option<&str>, registrar: Option<RegistrarHandle>, dial_plan: DialPlan) -> PagingReach {
        let texts = match (texts.enabled, texts.transport.as_str()) {
            (false, _) => TextRoute::Off,
            (true, "sip") => TextRoute::Sip,
            (true, _) => TextRoute::Gateway,
        };
        let facts = Facts { paging: paging.enabled, trunk: trunk.map(str::to_string), texts, registrar: registrar.is_some(), dial_plan };
        PagingReach { facts, registrar }
    }
}

impl Reachability for PagingReach {
    fn general(&self) -> Vec<ContactProblem> {
        general(&self.facts)
    }

    fn paging_on(&self) -> Option<bool> {
        Some(self.facts.paging)
    }

    fn reach(&self, person: &Person, phone_accounts: &[String]) -> Reach {
        let registered: Vec<String> = match &self.registrar {
            Some(r) => r.registered_devices(person.id).into_iter().map(|d| d.username).collect(),
            None => Vec::new(),
        };
        assess(person, phone_accounts, &registered, &self.facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_core::person::NotificationRule;
    use oncall_core::{Millis, OrgId, PersonId, Role};

    /// The demo's shape: `serve --demo` has no trunk, the registrar on and texts off.
    fn demo_facts() -> Facts {
        Facts { paging: true, trunk: None, texts: TextRoute::Off, registrar: true, dial_plan: DialPlan::default() }
    }

    fn person(contacts: &[&str], rules: &[Channel]) -> Person {
        Person {
            id: PersonId(1),
            org: OrgId(1),
            name: "Maria Lopez".into(),
            email: None,
            role: Role::Employee,
            contacts: contacts
                .iter()
                .map(|c| if c.starts_with("sip:") { Contact::Sip(c.parse().unwrap()) } else { Contact::Phone(c.parse().unwrap()) })
                .collect(),
            time_zone: "America/New_York".parse().unwrap(),
            notification_rules: rules.iter().map(|c| NotificationRule::new(*c, Millis(0))).collect(),
            disabled: false,
        }
    }

    fn accounts(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_registered_phone_reaches_a_person_whose_number_has_no_trunk() {
        let maria = person(&["+12125550101"], &[Channel::Call]);
        let r = assess(&maria, &accounts(&["maria"]), &accounts(&["maria"]), &demo_facts());
        assert!(!r.unreachable, "{r:?}");
        // The number still cannot be called, and the page says why.
        assert_eq!(r.problems, vec![ContactProblem::new("calls to +12125550101", "no [[trunks]] entry dials phone numbers", TRUNK_FIX)]);
    }

    #[test]
    fn without_a_registered_phone_the_same_person_is_unreachable_and_told_to_sign_in() {
        let maria = person(&["+12125550101"], &[Channel::Call]);
        let r = assess(&maria, &accounts(&["maria"]), &[], &demo_facts());
        assert!(r.unreachable);
        assert_eq!(r.problems.len(), 2, "{r:?}");
        assert_eq!(r.problems[0].contact, "phone account maria");
        assert_eq!(r.problems[0].problem, "no phone is registered for it now");
        assert!(r.problems[0].fix.starts_with("sign in a softphone as maria"), "{r:?}");
        assert_eq!(r.problems[1].contact, "calls to +12125550101");
    }

    #[test]
    fn a_number_alone_needs_a_trunk() {
        let dana = person(&["+12125550199"], &[Channel::Call]);
        let r = assess(&dana, &[], &[], &demo_facts());
        assert!(r.unreachable);
        // Without a phone account, signing in a softphone is the other way out.
        assert_eq!(r.problems[0].fix, NO_TRUNK_FIX);
        let with_trunk = Facts { trunk: Some("carrier".into()), ..demo_facts() };
        assert_eq!(assess(&dana, &[], &[], &with_trunk), Reach::default());
    }

    #[test]
    fn the_registrar_off_is_named_for_each_phone_account() {
        let maria = person(&["+12125550101"], &[Channel::Call]);
        let facts = Facts { registrar: false, ..demo_facts() };
        let r = assess(&maria, &accounts(&["maria"]), &[], &facts);
        assert!(r.unreachable);
        assert_eq!(r.problems[0].problem, "the registrar is off, so no phone can sign in");
        assert_eq!(r.problems[0].fix, "set [registrar] enabled = true in oncall.toml");
    }

    #[test]
    fn a_sip_uri_is_always_reachable() {
        let erin = person(&["sip:erin@10.0.0.5"], &[Channel::Call]);
        assert_eq!(assess(&erin, &[], &[], &demo_facts()), Reach::default());
    }

    #[test]
    fn texts_off_is_a_problem_only_for_people_who_are_texted() {
        let aisha = person(&["+12125550103"], &[Channel::Call, Channel::Text]);
        let r = assess(&aisha, &accounts(&["aisha"]), &accounts(&["aisha"]), &demo_facts());
        assert!(!r.unreachable);
        assert!(r.problems.iter().any(|p| p.contact == "Texts" && p.problem.contains("[texts] enabled = false")), "{r:?}");

        // Texted only: texts off leaves nothing, however many phones are registered.
        let texted = person(&["+12125550103"], &[Channel::Text]);
        assert!(assess(&texted, &accounts(&["aisha"]), &accounts(&["aisha"]), &demo_facts()).unreachable);
        // An SMS gateway reaches the number with no trunk; SIP MESSAGE to a number needs one.
        let gateway = Facts { texts: TextRoute::Gateway, ..demo_facts() };
        assert_eq!(assess(&texted, &[], &[], &gateway), Reach::default());
        let sip = Facts { texts: TextRoute::Sip, ..demo_facts() };
        let r = assess(&texted, &[], &[], &sip);
        assert!(r.unreachable);
        assert_eq!(r.problems[0].contact, "texts to +12125550103");
    }

    #[test]
    fn a_number_the_dial_plan_refuses_is_named_with_the_rule() {
        let sailor = person(&["+8816123456"], &[Channel::Call]);
        let facts = Facts { trunk: Some("carrier".into()), ..demo_facts() };
        let r = assess(&sailor, &[], &[], &facts);
        assert!(r.unreachable);
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].contact, "+8816123456");
        assert!(r.problems[0].problem.contains("[dial_plan] allowed_prefixes"), "{r:?}");
    }

    #[test]
    fn nobody_without_contacts_or_disabled_is_reachable_and_paging_off_is_general() {
        let nobody = person(&[], &[Channel::Call]);
        let r = assess(&nobody, &[], &[], &demo_facts());
        assert!(r.unreachable);
        assert_eq!(r.problems[0].contact, "Contacts");
        let mut gone = person(&["sip:erin@10.0.0.5"], &[Channel::Call]);
        gone.disabled = true;
        assert!(assess(&gone, &[], &[], &demo_facts()).unreachable);

        assert!(general(&demo_facts()).is_empty());
        let off = general(&Facts { paging: false, ..demo_facts() });
        assert_eq!(off[0].fix, "set [paging] enabled = true in oncall.toml");
    }
}

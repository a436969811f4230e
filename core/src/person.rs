//! People who can be paged, their roles and how they want to be notified.
//!
//! A person has contact addresses (E.164 numbers and/or SIP URIs), a home time zone and an
//! ordered list of notification rules ("call me at once, text me after 2 minutes"). The rules
//! are what the escalation engine expands into notifications; the addresses are only needed by
//! whoever actually dials or texts, so the engine never sees them.

use crate::ids::{OrgId, PersonId};
use crate::phone::{Contact, E164, SipUri};
use crate::timestamp::Millis;
use crate::validation::{self, ValidationError};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a person may do in the organization. Managers are also the escalation last resort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Manager,
    Employee,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Employee => "employee",
        }
    }
}

impl FromStr for Role {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Role, ValidationError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "manager" => Ok(Role::Manager),
            "employee" => Ok(Role::Employee),
            _ => Err(ValidationError::new("role", format!("{s:?} is not manager or employee"))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a notification reaches a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A phone call (to an E.164 number or a SIP URI).
    Call,
    /// A text message (needs an E.164 number).
    Text,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Call => "call",
            Channel::Text => "text",
        }
    }
}

impl FromStr for Channel {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Channel, ValidationError> {
        match s {
            "call" => Ok(Channel::Call),
            "text" => Ok(Channel::Text),
            _ => Err(ValidationError::new("channel", format!("{s:?} is not call or text"))),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// "Notify me by `channel`, `delay` after I become a target."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRule {
    pub channel: Channel,
    pub delay: Millis,
}

impl NotificationRule {
    pub fn new(channel: Channel, delay: Millis) -> NotificationRule {
        NotificationRule { channel, delay }
    }
}

/// The only part of a person the escalation engine needs: who, and the rules, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPlan {
    pub person: PersonId,
    pub rules: Vec<NotificationRule>,
}

/// A stored person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub org: OrgId,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub contacts: Vec<Contact>,
    pub time_zone: Tz,
    pub notification_rules: Vec<NotificationRule>,
    /// Disabled people stay in history but are never paged nor put on new shifts.
    #[serde(default)]
    pub disabled: bool,
}

impl Person {
    pub fn phones(&self) -> impl Iterator<Item = &E164> {
        self.contacts.iter().filter_map(|c| match c {
            Contact::Phone(p) => Some(p),
            Contact::Sip(_) => None,
        })
    }

    /// The person as the input type, e.g. to pre-fill an edit form.
    pub fn to_new(&self) -> NewPerson {
        NewPerson {
            name: self.name.clone(),
            email: self.email.clone(),
            role: Some(self.role),
            phones: self.phones().map(|p| p.to_string()).collect(),
            sip_uris: self
                .contacts
                .iter()
                .filter_map(|c| match c {
                    Contact::Sip(u) => Some(u.to_string()),
                    Contact::Phone(_) => None,
                })
                .collect(),
            time_zone: self.time_zone.name().to_string(),
            notification_rules: self.notification_rules.clone(),
        }
    }

    pub fn contact_plan(&self) -> ContactPlan {
        ContactPlan {
            person: self.id,
            rules: self.notification_rules.clone(),
        }
    }
}

/// Input for creating a person, as typed by a human: strings are parsed by [`NewPerson::validate`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewPerson {
    pub name: String,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub phones: Vec<String>,
    pub sip_uris: Vec<String>,
    pub time_zone: String,
    /// Empty means the default: a call right away.
    pub notification_rules: Vec<NotificationRule>,
}

/// A `NewPerson` that passed validation; only this can be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPerson {
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub contacts: Vec<Contact>,
    pub time_zone: Tz,
    pub notification_rules: Vec<NotificationRule>,
}

/// The longest delay a rule may have: beyond a day it is a mistake, not a policy.
const MAX_RULE_DELAY: Millis = Millis::hours(24);

impl NewPerson {
    pub fn validate(&self) -> Result<ValidPerson, ValidationError> {
        let name = validation::non_blank("name", &self.name)?;
        let email = match self.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => Some(validation::email("email", e)?),
        };
        let mut contacts = Vec::new();
        for (i, p) in self.phones.iter().enumerate() {
            let phone = p
                .parse::<E164>()
                .map_err(|e| ValidationError::new(format!("phones[{i}]"), e.to_string()))?;
            contacts.push(Contact::Phone(phone));
        }
        for (i, u) in self.sip_uris.iter().enumerate() {
            let uri = u
                .parse::<SipUri>()
                .map_err(|e| ValidationError::new(format!("sip_uris[{i}]"), e.to_string()))?;
            contacts.push(Contact::Sip(uri));
        }
        let time_zone = validation::parse_time_zone("time_zone", &self.time_zone)?;
        let notification_rules = if self.notification_rules.is_empty() {
            vec![NotificationRule::new(Channel::Call, Millis(0))]
        } else {
            self.notification_rules.clone()
        };
        let has_phone = contacts.iter().any(|c| matches!(c, Contact::Phone(_)));
        for (i, rule) in notification_rules.iter().enumerate() {
            let field = format!("notification_rules[{i}]");
            if rule.delay < Millis(0) || rule.delay > MAX_RULE_DELAY {
                return Err(ValidationError::new(field, "delay must be between 0 and 24 hours"));
            }
            match rule.channel {
                Channel::Text if !has_phone => {
                    return Err(ValidationError::new(field, "a text needs a phone number"));
                }
                Channel::Call if contacts.is_empty() => {
                    return Err(ValidationError::new(field, "a call needs a phone number or a SIP URI"));
                }
                _ => {}
            }
            if notification_rules[..i].iter().any(|r| r.channel == rule.channel && r.delay == rule.delay) {
                return Err(ValidationError::new(field, "duplicates an earlier rule"));
            }
        }
        Ok(ValidPerson {
            name,
            email,
            role: self.role.unwrap_or(Role::Employee),
            contacts,
            time_zone,
            notification_rules,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> NewPerson {
        NewPerson {
            name: "Ann".into(),
            phones: vec!["+1 415 555 0100".into()],
            time_zone: "America/New_York".into(),
            ..NewPerson::default()
        }
    }

    #[test]
    fn defaults_to_a_call() {
        let p = base().validate().unwrap();
        assert_eq!(p.notification_rules, vec![NotificationRule::new(Channel::Call, Millis(0))]);
        assert_eq!(p.role, Role::Employee);
    }

    #[test]
    fn names_the_bad_field() {
        let mut p = base();
        p.phones.push("555-0100".into());
        assert_eq!(p.validate().unwrap_err().field, "phones[1]");

        let mut p = base();
        p.time_zone = "Nowhere/Land".into();
        assert_eq!(p.validate().unwrap_err().field, "time_zone");

        let mut p = base();
        p.phones.clear();
        p.sip_uris.push("sip:ann@pbx.local".into());
        p.notification_rules = vec![NotificationRule::new(Channel::Text, Millis(0))];
        assert_eq!(p.validate().unwrap_err().field, "notification_rules[0]");

        let mut p = base();
        p.name = "  ".into();
        assert_eq!(p.validate().unwrap_err().field, "name");
    }
}

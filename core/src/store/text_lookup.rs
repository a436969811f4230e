//! Lookups for text-message replies (issue 6 item 6): who sent a reply (a phone number from an SMS
//! gateway, or the From URI of a SIP MESSAGE), and which requests are open for them.
//!
//! People are few per organization, so the sender is matched in memory over `list_people` rather
//! than with SQL on normalized contacts; the matching rule is [`sender_matches`] (pure, tested).

use super::rows::i64_;
use super::{Result, Store};
use crate::ids::{OrgId, PersonId, RequestId};
use crate::person::Person;
use crate::phone::Contact;

impl Store {
    /// The enabled person whose contacts match `sender` (`+15551234`, `sip:erin@192.0.2.30:5060`,
    /// `"Erin" <sip:erin@host>;tag=x`, or `sip:+15551234@provider`), if exactly one does.
    pub async fn person_by_text_sender(&self, org: OrgId, sender: &str) -> Result<Option<Person>> {
        let mut found: Vec<Person> = self
            .list_people(org)
            .await?
            .into_iter()
            .filter(|p| !p.disabled && p.contacts.iter().any(|c| sender_matches(c, sender)))
            .collect();
        Ok(if found.len() == 1 { found.pop() } else { None })
    }

    /// The requests `person` was notified of (by call or text) that are still open (not completed
    /// nor abandoned), newest first.
    pub async fn open_requests_notified_to(&self, org: OrgId, person: PersonId) -> Result<Vec<RequestId>> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.id AS id FROM requests r JOIN notifications n ON n.org_id = r.org_id AND n.request_id = r.id \
             WHERE r.org_id = $1 AND n.person_id = $2 AND r.status NOT IN ('completed', 'abandoned') ORDER BY r.id DESC LIMIT 50",
        )
        .bind(org.0)
        .bind(person.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(RequestId(i64_(r, "id")?))).collect()
    }
}

/// `sip:user@host[:port][;params]` (inside `<>` or not) → (user, host) in lower case.
fn sip_user_host(s: &str) -> Option<(String, String)> {
    let start = s.find("sip:").or_else(|| s.find("sips:"))?;
    let rest = &s[start..];
    let rest = rest.split_once(':').map(|(_, r)| r)?;
    let rest = rest.split(['>', ';', '?']).next().unwrap_or("");
    let (user, hostport) = rest.rsplit_once('@').unwrap_or(("", rest));
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    Some((user.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

/// Digits of a phone number, without `+`, spaces or dashes; `None` if it has anything else.
fn phone_digits(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s.strip_prefix("tel:").unwrap_or(s);
    let digits: String = s
        .chars()
        .filter(|c| !matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
        .collect();
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Whether a reply from `sender` comes from this contact. SIP URIs match on user and host (the
/// port and parameters vary with the device); phone numbers on their digits, also as the user part
/// of a SIP URI (a trunk delivering an SMS as MESSAGE).
pub fn sender_matches(contact: &Contact, sender: &str) -> bool {
    match contact {
        Contact::Sip(uri) => match (sip_user_host(uri.as_str()), sip_user_host(sender)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        Contact::Phone(number) => {
            let want = phone_digits(number.as_str());
            let got = match sip_user_host(sender) {
                Some((user, _)) => phone_digits(&user),
                None => phone_digits(sender),
            };
            want.is_some() && want == got
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_match_contacts() {
        let phone = Contact::Phone("+15551234567".parse().unwrap());
        let sip = Contact::Sip("sip:erin@127.0.0.1:5070".parse().unwrap());
        assert!(sender_matches(&phone, "+15551234567"));
        assert!(sender_matches(&phone, "15551234567"));
        assert!(sender_matches(&phone, "<sip:+15551234567@203.0.113.1>;tag=9"));
        assert!(!sender_matches(&phone, "+15551234568"));
        assert!(!sender_matches(&phone, "sip:erin@127.0.0.1"));
        assert!(sender_matches(&sip, "\"Erin\" <sip:erin@127.0.0.1:40123>;tag=abc"));
        assert!(sender_matches(&sip, "sip:ERIN@127.0.0.1"));
        assert!(!sender_matches(&sip, "sip:frank@127.0.0.1"));
        assert!(!sender_matches(&sip, "+15551234567"));
    }
}

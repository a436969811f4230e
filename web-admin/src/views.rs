//! Turning domain values into what templates show: local times, durations, ages, status
//! labels, person colours. Templates get plain strings and numbers; all formatting is here so
//! it is tested once and the same everywhere.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use oncall_core::person::Person;
use oncall_core::{Actor, Millis, PersonId, RequestStatus, Timestamp};
use serde::Serialize;
use std::collections::HashMap;

pub fn local(t: Timestamp, tz: Tz) -> DateTime<Tz> {
    t.to_utc().with_timezone(&tz)
}

/// "Tue 4 Nov 2026, 14:05".
pub fn time(t: Timestamp, tz: Tz) -> String {
    local(t, tz).format("%a %-d %b %Y, %H:%M").to_string()
}

/// "14:05" (for timelines within a day).
pub fn clock(t: Timestamp, tz: Tz) -> String {
    local(t, tz).format("%H:%M").to_string()
}

/// For `<input type="datetime-local">`.
pub fn input_datetime(t: Timestamp, tz: Tz) -> String {
    local(t, tz).format("%Y-%m-%dT%H:%M").to_string()
}

/// Parses `<input type="datetime-local">` (with or without seconds) in `tz`.
pub fn parse_input_datetime(s: &str, tz: Tz) -> Option<Timestamp> {
    let s = s.trim();
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    oncall_core::schedule::resolve_local(tz, naive)
}

/// What became of one notification attempt, in words a manager reads without docs (issue 18 item 4):
/// the status's meaning, then why (`detail`, written by paging: "rang 30 s, no answer", "texts are off").
pub fn attempt_result(status: &str, detail: &str) -> String {
    let what = match status {
        "sending" => "placing it",
        "ringing" => "ringing",
        "delivered" => "text delivered",
        "answered" => "answered, hearing the request",
        "accepted" => "accepted (pressed 1)",
        "declined" => "declined",
        "completed" => "completed (pressed 9)",
        "escalated" => "sent on to the next step (pressed 5)",
        "snoozed" => "snoozed (pressed 7)",
        "failed" => "not reached",
        other => other,
    };
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

/// How a caller is shown: a phone number as itself with a `tel:` link (issue 18 item 8: not
/// `sip:+15551230012@127.0.0.1:5480`), anything else as the SIP user and host, without parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub text: String,
    pub tel: Option<String>,
}

pub fn caller(raw: &str) -> Caller {
    let raw = raw.trim();
    // `"Name" <sip:...>;tag=..`: the URI inside the brackets.
    let uri = raw.rsplit_once('<').and_then(|(_, r)| r.split_once('>')).map_or(raw, |(u, _)| u);
    let (scheme, rest) = match uri.split_once(':') {
        Some((s, r)) if ["sip", "sips", "tel"].contains(&s.to_ascii_lowercase().as_str()) => (s.to_ascii_lowercase(), r),
        _ => (String::new(), uri),
    };
    let rest = rest.split([';', '?']).next().unwrap_or("");
    let (user, host) = match rest.rsplit_once('@') {
        Some((u, h)) => (u, Some(h)),
        None if scheme == "tel" || scheme.is_empty() => (rest, None),
        None => ("", Some(rest)),
    };
    let digits = user.strip_prefix('+').unwrap_or(user);
    let is_number = !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit());
    if is_number {
        return Caller { text: user.to_string(), tel: Some(format!("tel:{user}")) };
    }
    let text = match (user, host) {
        ("", Some(h)) => h.to_string(),
        (u, Some(h)) => format!("{u}@{h}"),
        (u, None) if u.is_empty() => "unknown caller".to_string(),
        (u, None) => u.to_string(),
    };
    Caller { text, tel: None }
}

/// Midnight starting `d` in `tz`.
pub fn day_start(d: NaiveDate, tz: Tz) -> Timestamp {
    let naive = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    oncall_core::schedule::resolve_local(tz, naive)
        .unwrap_or_else(|| Timestamp::from(tz.from_utc_datetime(&naive).with_timezone(&chrono::Utc)))
}

/// "45 s", "3 min 05 s", "2 h 10 min", "3 d 4 h".
pub fn duration(d: Millis) -> String {
    let s = d.0.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A recording's transcription for the request page: the text by line (a conversation has one per side) and
/// one line saying where it stands.
pub fn transcript(t: &oncall_core::store::transcriptions::StoredTranscription) -> serde_json::Value {
    use oncall_core::transcript::TranscriptionStatus as S;
    let by = t.engine.as_deref().map(|e| format!(" by {e}")).unwrap_or_default();
    let confidence = t.confidence.map(|c| format!(", {:.0} % confident", c * 100.0)).unwrap_or_default();
    let reason = t.reason.as_deref().unwrap_or("");
    let label = match t.status {
        S::Pending if t.attempts == 0 => "Transcribing…".to_string(),
        S::Pending => format!("Transcribing… (attempt {} failed: {reason}; trying again)", t.attempts),
        S::Done if t.text.as_deref().unwrap_or("").is_empty() => format!("Transcribed{by}: {reason}"),
        S::Done => format!("Transcribed{by}{confidence}"),
        S::Empty => format!("Not transcribed: {reason}"),
        S::Failed => format!("Transcription failed after {} attempts: {reason}", t.attempts),
    };
    let text = t.text.clone().unwrap_or_default();
    serde_json::json!({
        "status": t.status.as_str(), "text": text, "lines": text.lines().collect::<Vec<_>>(),
        "label": label, "low_quality": t.low_quality,
    })
}

/// Like [`duration`] but for `Option` (metrics with no samples).
pub fn opt_duration(d: Option<Millis>) -> String {
    d.map(duration).unwrap_or_else(|| "–".into())
}

/// "3 min ago" style age, coarse.
pub fn age(now: Timestamp, t: Timestamp) -> String {
    let s = (now - t).0.max(0) / 1000;
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Human label and CSS class of a status.
pub fn status_label(s: RequestStatus) -> (&'static str, &'static str) {
    match s {
        RequestStatus::Received => ("Received", "st-new"),
        RequestStatus::Notifying => ("Paging", "st-new"),
        RequestStatus::Answered => ("Answered", "st-progress"),
        RequestStatus::Acknowledged => ("Acknowledged", "st-progress"),
        RequestStatus::Completed => ("Completed", "st-done"),
        RequestStatus::Abandoned => ("Abandoned", "st-muted"),
        RequestStatus::Exhausted => ("Nobody answered", "st-alert"),
    }
}

/// Distinct colours for people on calendars (colour-blind-friendly order first).
pub const PALETTE: &[&str] = &[
    "#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#dc2626", "#65a30d", "#9333ea", "#0d9488", "#ea580c", "#4f46e5",
];

/// Names and colours of the organization's people, for labels.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub people: HashMap<PersonId, (String, &'static str)>,
}

impl Directory {
    pub fn new(people: &[Person]) -> Directory {
        // Colour by position in the id-sorted list: stable as long as nobody is added before.
        let mut ids: Vec<PersonId> = people.iter().map(|p| p.id).collect();
        ids.sort();
        let map = people
            .iter()
            .map(|p| {
                let i = ids.iter().position(|x| *x == p.id).unwrap_or(0);
                (p.id, (p.name.clone(), PALETTE[i % PALETTE.len()]))
            })
            .collect();
        Directory { people: map }
    }

    pub fn name(&self, p: PersonId) -> String {
        self.people.get(&p).map(|(n, _)| n.clone()).unwrap_or_else(|| format!("{p}"))
    }

    pub fn colour(&self, p: PersonId) -> &'static str {
        self.people.get(&p).map(|(_, c)| *c).unwrap_or("#64748b")
    }

    /// "Maria Lopez", "the caller", "OnCall", "user 3".
    pub fn actor(&self, a: Actor, users: &HashMap<i64, String>) -> String {
        match a {
            Actor::Person(p) => self.name(p),
            Actor::User(u) => users.get(&u.0).cloned().unwrap_or_else(|| format!("user {}", u.0)),
            Actor::Caller => "the caller".into(),
            Actor::System => "OnCall".into(),
        }
    }
}

/// A person as lists show them.
#[derive(Debug, Clone, Serialize)]
pub struct PersonView {
    pub id: i64,
    pub name: String,
    pub colour: &'static str,
    pub phone: String,
    pub email: String,
    pub role: &'static str,
    pub disabled: bool,
}

pub fn person_view(p: &Person, dir: &Directory) -> PersonView {
    PersonView {
        id: p.id.0,
        name: p.name.clone(),
        colour: dir.colour(p.id),
        phone: p.phones().next().map(|e| e.to_string()).unwrap_or_default(),
        email: p.email.clone().unwrap_or_default(),
        role: p.role.as_str(),
        disabled: p.disabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(Millis::seconds(45)), "45 s");
        assert_eq!(duration(Millis::seconds(185)), "3 min 05 s");
        assert_eq!(duration(Millis::minutes(130)), "2 h 10 min");
        assert_eq!(duration(Millis::hours(76)), "3 d 4 h");
        assert_eq!(opt_duration(None), "–");
    }

    #[test]
    fn datetime_inputs_round_trip() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let t = parse_input_datetime("2026-11-03T09:30", tz).unwrap();
        assert_eq!(input_datetime(t, tz), "2026-11-03T09:30");
        assert!(parse_input_datetime("yesterday", tz).is_none());
    }

    #[test]
    fn callers_show_as_numbers_when_they_are() {
        let tel = |n: &str| Caller { text: n.into(), tel: Some(format!("tel:{n}")) };
        assert_eq!(caller("sip:+15551230012@127.0.0.1:5480"), tel("+15551230012"));
        assert_eq!(caller("\"Bob\" <sip:+15551230012@pbx.example;user=phone>;tag=ab"), tel("+15551230012"));
        assert_eq!(caller("tel:+442079460777"), tel("+442079460777"));
        assert_eq!(caller("+442079460777"), tel("+442079460777"));
        assert_eq!(caller("sip:100@10.0.0.5"), tel("100"));
        assert_eq!(caller("sip:alice@example.com;transport=tcp"), Caller { text: "alice@example.com".into(), tel: None });
        assert_eq!(caller("sip:example.com"), Caller { text: "example.com".into(), tel: None });
        assert_eq!(caller(""), Caller { text: "unknown caller".into(), tel: None });
    }

    #[test]
    fn attempts_read_as_sentences() {
        assert_eq!(attempt_result("failed", "rang 30 s, no answer"), "not reached: rang 30 s, no answer");
        assert_eq!(attempt_result("failed", "texts are off ([texts] enabled = false)"), "not reached: texts are off ([texts] enabled = false)");
        assert_eq!(attempt_result("accepted", ""), "accepted (pressed 1)");
        assert_eq!(attempt_result("delivered", ""), "text delivered");
    }
}

//! Text-message replies to a page (issue 6 item 6): what an employee's SMS or SIP MESSAGE asks for.
//!
//! A reply is one action word and, optionally, the request's short id (its number), in either
//! order and any case: `1`, `ACK`, `a 12`, `12 done`, `Done #12`. `1`/`ACK`/`A` acknowledges,
//! `DONE`/`D` completes, `E` escalates to the next step now, `S` snoozes. Anything else is not
//! understood and the sender is told what is (see [`HELP`]).
//!
//! Pure: no store, no clock. Which person sent it and which of their open requests it names is
//! decided by the caller (`oncall_paging::texts`), with [`pick_request`] for the "which one?" rule.

use crate::ids::RequestId;

/// What a reply asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyAction {
    Acknowledge,
    Complete,
    EscalateNow,
    Snooze,
}

impl ReplyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyAction::Acknowledge => "acknowledge",
            ReplyAction::Complete => "complete",
            ReplyAction::EscalateNow => "escalate",
            ReplyAction::Snooze => "snooze",
        }
    }
}

/// A parsed reply: the action and, when given, the request's short id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub action: ReplyAction,
    pub request: Option<RequestId>,
}

/// Sent back to a reply that could not be understood.
pub const HELP: &str = "OnCall: reply 1 or ACK to take a request, DONE when done, E to escalate, S to snooze; add the request number when several are open (ACK 12).";

/// Why a reply was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    /// No action word, or two of them, or an unknown word.
    NotUnderstood(String),
}

/// Parses a reply. The short id is a number of up to 18 digits, optionally prefixed by `#`.
/// `1` alone is the acknowledge shortcut; `1 12` acknowledges request 12, `12 1` too.
pub fn parse(text: &str) -> Result<Reply, ParseError> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ':' || c == '.' || c == '!')
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Err(ParseError::Empty);
    }
    if words.len() > 2 {
        return Err(ParseError::NotUnderstood(text.trim().to_string()));
    }
    let action_of = |w: &str| match w.to_ascii_uppercase().as_str() {
        "1" | "ACK" | "A" | "ACKNOWLEDGE" | "OK" => Some(ReplyAction::Acknowledge),
        "DONE" | "D" => Some(ReplyAction::Complete),
        "E" | "ESC" | "ESCALATE" => Some(ReplyAction::EscalateNow),
        "S" | "SNOOZE" => Some(ReplyAction::Snooze),
        _ => None,
    };
    let id_of = |w: &str| {
        let digits = w.strip_prefix('#').unwrap_or(w);
        (!digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<i64>().ok())
            .flatten()
            .filter(|n| *n > 0)
            .map(RequestId)
    };
    let not_understood = || ParseError::NotUnderstood(text.trim().to_string());
    match words.as_slice() {
        [w] => action_of(w)
            .map(|action| Reply { action, request: None })
            .ok_or_else(not_understood),
        [a, b] => {
            // "ACK 12" or "12 ACK". In "1 12" the first word wins as the action; "12 1" has the
            // 1 as action since 12 is no action word.
            if let (Some(action), Some(id)) = (action_of(a), id_of(b)) {
                return Ok(Reply {
                    action,
                    request: Some(id),
                });
            }
            if let (Some(id), Some(action)) = (id_of(a), action_of(b)) {
                return Ok(Reply {
                    action,
                    request: Some(id),
                });
            }
            Err(not_understood())
        }
        _ => Err(not_understood()),
    }
}

/// Which request a reply applies to, among the sender's open ones (newest first or any order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    One(RequestId),
    /// The sender has no open request (or not the one named).
    None,
    /// Several are open and no id was given: ask which.
    Ambiguous(Vec<RequestId>),
}

/// The request a reply names: its id when given and open for the sender, else their only open one.
pub fn pick_request(reply: &Reply, open: &[RequestId]) -> Pick {
    match reply.request {
        Some(id) if open.contains(&id) => Pick::One(id),
        Some(_) => Pick::None,
        None => match open {
            [] => Pick::None,
            [only] => Pick::One(*only),
            many => Pick::Ambiguous(many.to_vec()),
        },
    }
}

/// The answer to a reply without an id when several requests are open.
pub fn ask_which(open: &[RequestId]) -> String {
    let ids: Vec<String> = open.iter().map(|r| format!("#{}", r.0)).collect();
    format!(
        "OnCall: you have {} open requests ({}). Reply with the number, e.g. ACK {}.",
        open.len(),
        ids.join(", "),
        open[0].0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (ReplyAction, Option<i64>) {
        let r = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        (r.action, r.request.map(|r| r.0))
    }

    #[test]
    fn action_words_in_any_case() {
        use ReplyAction::*;
        for (text, action) in [
            ("1", Acknowledge),
            ("ACK", Acknowledge),
            ("ack", Acknowledge),
            ("a", Acknowledge),
            (" Ack \n", Acknowledge),
            ("DONE", Complete),
            ("done", Complete),
            ("D", Complete),
            ("e", EscalateNow),
            ("S", Snooze),
            ("s", Snooze),
        ] {
            assert_eq!(ok(text), (action, None), "{text:?}");
        }
    }

    #[test]
    fn the_short_id_before_or_after() {
        use ReplyAction::*;
        assert_eq!(ok("ACK 12"), (Acknowledge, Some(12)));
        assert_eq!(ok("12 done"), (Complete, Some(12)));
        assert_eq!(ok("Done #12"), (Complete, Some(12)));
        assert_eq!(ok("1 12"), (Acknowledge, Some(12)));
        assert_eq!(ok("12 1"), (Acknowledge, Some(12)));
        assert_eq!(ok("ack 1"), (Acknowledge, Some(1)));
        assert_eq!(ok("s, 7"), (Snooze, Some(7)));
    }

    #[test]
    fn anything_else_is_not_understood() {
        assert_eq!(parse("   "), Err(ParseError::Empty));
        for text in [
            "hello",
            "ACK DONE",
            "12",
            "ACK 12 13",
            "ACK -3",
            "ACK 0",
            "ACK 12a",
            "yes please do",
        ] {
            assert!(matches!(parse(text), Err(ParseError::NotUnderstood(_))), "{text:?}");
        }
    }

    #[test]
    fn several_open_requests_need_the_id() {
        let reply = |request: Option<i64>| Reply {
            action: ReplyAction::Acknowledge,
            request: request.map(RequestId),
        };
        let open = [RequestId(12), RequestId(15)];
        assert_eq!(pick_request(&reply(None), &open), Pick::Ambiguous(open.to_vec()));
        assert_eq!(pick_request(&reply(Some(15)), &open), Pick::One(RequestId(15)));
        assert_eq!(pick_request(&reply(Some(99)), &open), Pick::None);
        assert_eq!(pick_request(&reply(None), &open[..1]), Pick::One(RequestId(12)));
        assert_eq!(pick_request(&reply(None), &[]), Pick::None);
        let ask = ask_which(&open);
        assert!(
            ask.contains("#12") && ask.contains("#15") && ask.contains("ACK 12"),
            "{ask}"
        );
    }
}

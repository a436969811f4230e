//! The outbound dial plan: which E.164 numbers OnCall may call or text through a paid trunk.
//!
//! Toll fraud (issue #15 item 4) dials numbers that pay the dialled party: international premium
//! and shared-cost services, satellite phones and the "international networks" ranges that
//! International Revenue Share Fraud rents out. A dial plan is a list of prefixes, each allowed or
//! denied; the **longest** prefix matching a number decides, and a number no prefix matches is
//! refused. The default is `allowed = ["+"]` (every country) plus [`BUILT_IN_DENIED`]. When an
//! operator's allowed prefix is exactly as long as a built-in denied one, the operator wins: that
//! is how a ship's Iridium phone is let back in (`allowed_prefixes = ["+", "+8816"]`).
//!
//! The plan is checked twice: when a contact is saved (the store refuses the person, naming the
//! rule), and again right before a page calls or texts the number (a contact saved before the rule,
//! or written to the database by hand, is skipped). SIP URIs are not numbers and are never checked
//! here: they are dialled directly to their host, not through the trunk's credentials.
//!
//! Deliberately not here: per-country numbering plans (the carrier knows them), rate tables, or a
//! per-organization plan (the trunk and its bill belong to the whole server).

use crate::phone::E164;
use std::fmt;

/// Ranges denied unless an operator allows them, with why. International ranges are ITU-T E.164
/// assignments; national ones are the premium/personal-number ranges best known for fraud.
/// International freephone (+800) is deliberately not here: it costs the caller nothing.
pub const BUILT_IN_DENIED: &[(&str, &str)] = &[
    // ITU-T E.164 shared and non-geographic codes.
    ("+808", "International Shared Cost Service"),
    ("+870", "Inmarsat satellite"),
    ("+878", "Universal Personal Telecommunications"),
    ("+881", "Global Mobile Satellite System (Iridium, Globalstar, Thuraya)"),
    ("+882", "International Networks"),
    ("+883", "International Networks"),
    ("+888", "OCHA disaster relief networks"),
    ("+979", "International Premium Rate Service"),
    (
        "+991",
        "International Telecommunications Public Correspondence Service trial",
    ),
    // North America: 900 and 976 are premium-rate.
    ("+1900", "NANP premium rate (900)"),
    ("+1976", "NANP premium rate (976)"),
    // United Kingdom: 09 premium rate, 0871-0873 service charge, 070 personal numbers.
    ("+449", "UK premium rate (09)"),
    ("+4487", "UK service charge (087)"),
    ("+4470", "UK personal numbers (070)"),
    // Germany, France, Netherlands, Italy, Spain, Austria, Australia: premium rate.
    ("+49900", "German premium rate (0900)"),
    ("+49137", "German mass-calling (0137)"),
    ("+3389", "French premium rate (089)"),
    ("+31900", "Dutch premium rate (0900)"),
    ("+31906", "Dutch premium rate (0906)"),
    ("+31909", "Dutch premium rate (0909)"),
    ("+39899", "Italian premium rate (899)"),
    ("+34803", "Spanish premium rate (803)"),
    ("+34806", "Spanish premium rate (806)"),
    ("+34807", "Spanish premium rate (807)"),
    ("+34905", "Spanish mass-calling (905)"),
    ("+43900", "Austrian premium rate (0900)"),
    ("+43930", "Austrian premium rate (0930)"),
    ("+61190", "Australian premium rate (190)"),
];

/// Where a rule comes from: it decides ties and what a refusal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    BuiltIn(&'static str),
    Configured,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    prefix: String,
    allow: bool,
    origin: Origin,
}

/// Why a number is not dialled; the message names the rule and the key that changes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialRefusal {
    #[error("{number} is in {prefix} ({what}), denied by default as a premium or satellite range; allow it with [dial_plan] allowed_prefixes")]
    BuiltIn {
        number: String,
        prefix: String,
        what: &'static str,
    },
    #[error("{number} matches [dial_plan] denied_prefixes {prefix:?}")]
    Denied { number: String, prefix: String },
    #[error("{number} matches none of [dial_plan] allowed_prefixes ({allowed})")]
    NotAllowed { number: String, allowed: String },
}

/// A prefix in the configuration that is not `+` and digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialPlanError {
    #[error("{key}: {prefix:?} must be '+' followed by at most 15 digits (E.164), like \"+44\"")]
    BadPrefix { key: String, prefix: String },
    #[error("dial_plan: {prefix:?} is both in allowed_prefixes and denied_prefixes")]
    Both { prefix: String },
}

/// Allowed and denied prefixes, longest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPlan {
    rules: Vec<Rule>,
    /// `allowed_prefixes` as configured, for messages.
    allowed: String,
}

impl Default for DialPlan {
    /// Every country, less [`BUILT_IN_DENIED`].
    fn default() -> Self {
        DialPlan::new(&["+"], &[] as &[&str]).expect("the built-in prefixes are valid")
    }
}

fn check_prefix(key: &str, prefix: &str) -> Result<String, DialPlanError> {
    let p = prefix.trim();
    let digits = p
        .strip_prefix('+')
        .filter(|d| d.len() <= 15 && d.bytes().all(|b| b.is_ascii_digit()));
    match digits {
        Some(_) => Ok(p.to_string()),
        None => Err(DialPlanError::BadPrefix {
            key: key.to_string(),
            prefix: prefix.to_string(),
        }),
    }
}

impl DialPlan {
    /// A plan from the configuration's `allowed_prefixes` and `denied_prefixes` (the latter adds to
    /// [`BUILT_IN_DENIED`]).
    pub fn new(allowed: &[impl AsRef<str>], denied: &[impl AsRef<str>]) -> Result<DialPlan, DialPlanError> {
        let mut rules = Vec::new();
        for (i, p) in allowed.iter().enumerate() {
            let prefix = check_prefix(&format!("dial_plan.allowed_prefixes[{i}]"), p.as_ref())?;
            rules.push(Rule {
                prefix,
                allow: true,
                origin: Origin::Configured,
            });
        }
        for (i, p) in denied.iter().enumerate() {
            let prefix = check_prefix(&format!("dial_plan.denied_prefixes[{i}]"), p.as_ref())?;
            if rules.iter().any(|r| r.allow && r.prefix == prefix) {
                return Err(DialPlanError::Both { prefix });
            }
            rules.push(Rule {
                prefix,
                allow: false,
                origin: Origin::Configured,
            });
        }
        for (prefix, what) in BUILT_IN_DENIED {
            rules.push(Rule {
                prefix: prefix.to_string(),
                allow: false,
                origin: Origin::BuiltIn(what),
            });
        }
        // Longest first; at equal length configured rules come first (a stable sort keeps the order
        // they were pushed in), so the operator's choice beats the built-in list.
        rules.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        let allowed = allowed.iter().map(|p| p.as_ref().trim()).collect::<Vec<_>>().join(", ");
        Ok(DialPlan { rules, allowed })
    }

    /// Whether `number` may be called or texted through a trunk.
    pub fn check(&self, number: &E164) -> Result<(), DialRefusal> {
        let n = number.as_str();
        let Some(rule) = self.rules.iter().find(|r| n.starts_with(&r.prefix)) else {
            return Err(DialRefusal::NotAllowed {
                number: n.to_string(),
                allowed: self.allowed.clone(),
            });
        };
        match (rule.allow, rule.origin) {
            (true, _) => Ok(()),
            (false, Origin::BuiltIn(what)) => Err(DialRefusal::BuiltIn {
                number: n.to_string(),
                prefix: rule.prefix.clone(),
                what,
            }),
            (false, Origin::Configured) => Err(DialRefusal::Denied {
                number: n.to_string(),
                prefix: rule.prefix.clone(),
            }),
        }
    }
}

impl fmt::Display for DialPlan {
    /// `allow +1, +44; deny +449, …` (for the start-up log).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |allow: bool| {
            self.rules
                .iter()
                .filter(|r| r.allow == allow)
                .map(|r| r.prefix.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "allow {}; deny {}", list(true), list(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> E164 {
        s.parse().unwrap()
    }

    /// The attack of issue #15 item 4: a manager's `+882…` contact was dialled with trunk credentials.
    #[test]
    fn the_default_plan_refuses_premium_and_satellite_ranges() {
        let plan = DialPlan::default();
        for refused in [
            "+882 1234 5678",
            "+883 5100 0000 01",
            "+881 6 1234 5678",
            "+870 7 7312 3456",
            "+979 1234 5678",
            "+808 1234 5678",
            "+1 900 555 0100",
            "+1 976 555 0100",
            "+44 909 879 0000",
            "+44 871 123 4567",
            "+44 70 1234 5678",
            "+49 900 1234567",
        ] {
            let err = plan.check(&n(refused)).unwrap_err();
            assert!(matches!(err, DialRefusal::BuiltIn { .. }), "{refused}: {err}");
            assert!(
                err.to_string().contains("[dial_plan] allowed_prefixes"),
                "the message says how to allow it: {err}"
            );
        }
        for allowed in [
            "+1 415 555 0100",
            "+1 212 555 0103",
            "+44 20 7183 8750",
            "+44 7700 900123",
            "+49 30 1234567",
            "+33 1 23 45 67 89",
            "+800 1234 5678",
            "+61 2 9374 4000",
        ] {
            assert_eq!(plan.check(&n(allowed)), Ok(()), "{allowed}");
        }
    }

    #[test]
    fn the_longest_prefix_decides_and_the_operator_beats_the_built_in_list() {
        // Only North America and the UK, one UK range denied, Iridium let back in.
        let plan = DialPlan::new(&["+1", "+44", "+8816"], &["+4420"]).unwrap();
        assert_eq!(plan.check(&n("+14155550100")), Ok(()));
        assert!(
            matches!(plan.check(&n("+19005550100")), Err(DialRefusal::BuiltIn { .. })),
            "+1900 is longer than +1"
        );
        assert!(
            matches!(plan.check(&n("+442071838750")), Err(DialRefusal::Denied { ref prefix, .. }) if prefix == "+4420")
        );
        assert_eq!(plan.check(&n("+447700900123")), Ok(()));
        assert_eq!(plan.check(&n("+881612345678")), Ok(()), "+8816 beats the built-in +881");
        assert!(
            matches!(plan.check(&n("+881212345678")), Err(DialRefusal::BuiltIn { .. })),
            "the rest of +881 stays denied"
        );
        let err = plan.check(&n("+33123456789")).unwrap_err();
        assert!(matches!(err, DialRefusal::NotAllowed { .. }));
        assert!(err.to_string().contains("+1, +44, +8816"), "{err}");
        // Allowing a built-in prefix itself re-allows the whole range.
        let sat = DialPlan::new(&["+", "+881"], &[] as &[&str]).unwrap();
        assert_eq!(sat.check(&n("+881212345678")), Ok(()));
        assert!(sat.check(&n("+882123456789")).is_err());
    }

    #[test]
    fn bad_prefixes_are_refused_naming_the_key() {
        let e = DialPlan::new(&["+1", "44"], &[] as &[&str]).unwrap_err();
        assert!(e.to_string().contains("dial_plan.allowed_prefixes[1]"), "{e}");
        let e = DialPlan::new(&["+"], &["+1-900"]).unwrap_err();
        assert!(e.to_string().contains("dial_plan.denied_prefixes[0]"), "{e}");
        assert!(matches!(
            DialPlan::new(&["+", "+44"], &["+44"]),
            Err(DialPlanError::Both { .. })
        ));
        // Nothing allowed at all refuses every number (a server that must never use the trunk for calls).
        let none = DialPlan::new(&[] as &[&str], &[] as &[&str]).unwrap();
        assert!(none.check(&n("+14155550100")).is_err());
    }
}

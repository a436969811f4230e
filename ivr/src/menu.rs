//! The IVR menu definition: what the caller hears and what each key does. Loaded from the
//! `[ivr]` section of the config (later edited on the web). Prompts are names of files in `sounds/`.
//!
//! A "page on-call" option carries an [`Urgency`] (issue 7 item 2): `urgent` (the default, so older configs
//! keep paging at once) pages at any hour; `normal` pages during business hours and, after hours, records the
//! message and tells the caller when they will be called back (see `flow.rs`).

use crate::digit::Digit;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// Played once when the call is answered, before the menu.
    #[serde(default = "defaults::greeting")]
    pub greeting: String,
    /// Seconds to wait for a key after the menu prompt ends.
    #[serde(default = "defaults::timeout_secs")]
    pub timeout_secs: u64,
    /// Invalid keys or timeouts tolerated before goodbye.
    #[serde(default = "defaults::max_retries")]
    pub max_retries: u32,
    #[serde(default = "defaults::invalid_prompt")]
    pub invalid_prompt: String,
    #[serde(default = "defaults::no_input_prompt")]
    pub no_input_prompt: String,
    #[serde(default = "defaults::goodbye_prompt")]
    pub goodbye_prompt: String,
    /// Longest message a caller may leave, in seconds.
    #[serde(default = "defaults::max_message_secs")]
    pub max_message_secs: u64,
    /// Continuous silence that ends a message, in seconds (0 disables).
    #[serde(default = "defaults::silence_secs")]
    pub silence_secs: u64,
    /// After hours, a caller who chose a `normal` option hears "if this is an emergency, press 1", and
    /// pressing it makes the request urgent (it pages at once).
    #[serde(default)]
    pub after_hours_emergency: bool,
    #[serde(default = "defaults::menu")]
    pub menu: Menu,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    pub prompt: String,
    pub options: Vec<MenuOption>,
}

// No deny_unknown_fields here: serde cannot combine it with the flattened action (it would refuse `action`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuOption {
    pub digit: Digit,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Record a message and open a request; the paging flow starts from it (for `normal` urgency, after
    /// hours, only when business hours start).
    PageOnCall {
        #[serde(default)]
        urgency: Urgency,
    },
    /// Record a message and open a request without paging.
    RecordMessage,
    /// Play a prompt, then return to this menu.
    Play { prompt: String },
    /// Enter a sub-menu.
    SubMenu { menu: Box<Menu> },
    /// Replay the current menu prompt.
    Repeat,
    /// Say goodbye and hang up.
    Hangup,
}

/// How urgent the requests of a "page on-call" option are.
///
/// The one definition: the menu is where an urgency is chosen, and the domain crate (`oncall-core`, whose
/// `when_to_page` decides when a request of each urgency pages) re-exports this type. The dependency points
/// core → ivr because this crate is small (serde and thiserror only) and must stay so: the media path links
/// it, and must not link core's sqlx store. Nothing here may depend on core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Page the escalation policy at once, at any hour.
    #[default]
    Urgent,
    /// Page during business hours; after hours, record the message and page when business hours start.
    Normal,
}

impl IvrConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Every prompt name the menu can play, to check at start-up that the files exist.
    pub fn prompt_names(&self) -> Vec<&str> {
        let mut names = vec![self.greeting.as_str(), &self.invalid_prompt, &self.no_input_prompt, &self.goodbye_prompt];
        names.extend(crate::fixed_prompts::FIXED_PROMPTS);
        names.extend(crate::spoken_time::PROMPTS);
        fn walk<'a>(m: &'a Menu, out: &mut Vec<&'a str>) {
            out.push(&m.prompt);
            for o in &m.options {
                match &o.action {
                    Action::Play { prompt } => out.push(prompt),
                    Action::SubMenu { menu } => walk(menu, out),
                    _ => {}
                }
            }
        }
        walk(&self.menu, &mut names);
        names
    }
}

/// Why a menu cannot be used. One check for the web (before it says "Saved.") and the call side (before a
/// call gets the menu, or at start-up for `[ivr]`), so a manager never saves a menu callers will not hear
/// (issue 18 item 7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MenuProblem {
    #[error("there is no prompt named {0:?}: choose one of the built-in prompts (or the uploaded greeting); a prompt is named without its file extension")]
    UnknownPrompt(String),
    #[error("no key pages the on-call staff: give at least one key the action \"page on call\" so a caller can reach someone")]
    NobodyPaged,
}

impl IvrConfig {
    /// Every prompt it plays exists (`has_prompt`), and some key (in any sub-menu) pages on call.
    pub fn check(&self, has_prompt: impl Fn(&str) -> bool) -> Result<(), MenuProblem> {
        if let Some(missing) = self.prompt_names().into_iter().find(|n| !has_prompt(n)) {
            return Err(MenuProblem::UnknownPrompt(missing.to_string()));
        }
        fn pages(m: &Menu) -> bool {
            m.options.iter().any(|o| match &o.action {
                Action::PageOnCall { .. } => true,
                Action::SubMenu { menu } => pages(menu),
                _ => false,
            })
        }
        if !pages(&self.menu) {
            return Err(MenuProblem::NobodyPaged);
        }
        Ok(())
    }
}

impl Default for IvrConfig {
    fn default() -> Self {
        IvrConfig {
            greeting: defaults::greeting(),
            timeout_secs: defaults::timeout_secs(),
            max_retries: defaults::max_retries(),
            invalid_prompt: defaults::invalid_prompt(),
            no_input_prompt: defaults::no_input_prompt(),
            goodbye_prompt: defaults::goodbye_prompt(),
            max_message_secs: defaults::max_message_secs(),
            silence_secs: defaults::silence_secs(),
            after_hours_emergency: false,
            menu: defaults::menu(),
        }
    }
}

mod defaults {
    use super::*;
    pub fn greeting() -> String {
        "greeting".into()
    }
    pub fn timeout_secs() -> u64 {
        5
    }
    pub fn max_retries() -> u32 {
        3
    }
    pub fn invalid_prompt() -> String {
        "invalid".into()
    }
    pub fn no_input_prompt() -> String {
        "no_input".into()
    }
    pub fn goodbye_prompt() -> String {
        "goodbye".into()
    }
    pub fn max_message_secs() -> u64 {
        120
    }
    pub fn silence_secs() -> u64 {
        5
    }
    /// "For an emergency, press 1. To leave a message, press 2. To repeat this menu, press star."
    pub fn menu() -> Menu {
        Menu {
            prompt: "menu".into(),
            options: vec![
                MenuOption { digit: Digit::D1, action: Action::PageOnCall { urgency: Urgency::Urgent } },
                MenuOption { digit: Digit::D2, action: Action::RecordMessage },
                MenuOption { digit: Digit::Star, action: Action::Repeat },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_menu_with_an_unknown_prompt_or_no_paging_key_is_refused() {
        let known = |n: &str| !n.contains(' ') && !n.contains('.');
        assert_eq!(IvrConfig::default().check(known), Ok(()));
        let mut cfg = IvrConfig::default();
        cfg.menu.options.push(MenuOption { digit: Digit::from_char('8').unwrap(), action: Action::Play { prompt: "my menu.mp3".into() } });
        assert_eq!(cfg.check(known), Err(MenuProblem::UnknownPrompt("my menu.mp3".into())));
        let mut cfg = IvrConfig::default();
        cfg.menu.options.retain(|o| !matches!(o.action, Action::PageOnCall { .. }));
        assert_eq!(cfg.check(known), Err(MenuProblem::NobodyPaged));
        // A paging key in a sub-menu counts.
        let sub = Menu { prompt: "menu".into(), options: vec![MenuOption { digit: Digit::from_char('1').unwrap(), action: Action::PageOnCall { urgency: Urgency::Urgent } }] };
        cfg.menu.options.push(MenuOption { digit: Digit::from_char('4').unwrap(), action: Action::SubMenu { menu: Box::new(sub) } });
        assert_eq!(cfg.check(known), Ok(()));
    }
}

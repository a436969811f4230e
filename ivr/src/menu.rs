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

//! The IVR menu's stored form: an [`IvrConfig`] as JSON, the text of `ivr_settings.menu_json`. The web site
//! writes it when an organization saves its menu and reads it back to show the form; the telephony side reads
//! it to apply the menu to calls. One format for both, defined next to the types it serializes.
//!
//! The JSON is serde's rendering of [`IvrConfig`] (the same field names as the `[ivr]` TOML section). This
//! module does no validation beyond parsing: whether the prompts it names exist is the caller's question.

use crate::menu::IvrConfig;

/// A stored menu that does not parse (or, in theory, a config serde cannot write). Displays as serde_json's
/// message.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct MenuJsonError(#[from] serde_json::Error);

/// The stored form of a config.
pub fn to_json(cfg: &IvrConfig) -> Result<String, MenuJsonError> {
    Ok(serde_json::to_string(cfg)?)
}

/// Reads what [`to_json`] wrote.
pub fn from_json(text: &str) -> Result<IvrConfig, MenuJsonError> {
    Ok(serde_json::from_str(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::{Action, Menu, MenuOption};
    use crate::Digit;

    #[test]
    fn round_trips_including_sub_menus() {
        let mut cfg = IvrConfig::default();
        cfg.timeout_secs = 9;
        let sub = Menu { prompt: "sub".into(), options: vec![MenuOption { digit: Digit::from_char('#').unwrap(), action: Action::Hangup }] };
        cfg.menu.options.push(MenuOption { digit: Digit::from_char('7').unwrap(), action: Action::SubMenu { menu: Box::new(sub) } });
        cfg.menu.options.push(MenuOption { digit: Digit::from_char('8').unwrap(), action: Action::Play { prompt: "thank_you".into() } });
        let back = from_json(&to_json(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }
}

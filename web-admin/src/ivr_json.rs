//! The per-organization IVR menu as stored in `ivr_settings.menu_json`: `oncall_ivr::IvrConfig` as JSON.
//! The binary reads an organization's menu with [`from_json`] too.

use oncall_ivr::IvrConfig;

/// The stored form of a config.
pub fn to_json(cfg: &IvrConfig) -> Result<String, String> {
    serde_json::to_string(cfg).map_err(|e| e.to_string())
}

/// Reads what [`to_json`] wrote.
pub fn from_json(text: &str) -> Result<IvrConfig, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_ivr::menu::{Action, Menu, MenuOption};
    use oncall_ivr::Digit;

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

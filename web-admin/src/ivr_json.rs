//! The per-organization IVR menu as stored in `ivr_settings.menu_json`.
//!
//! `oncall_ivr::IvrConfig` serializes to JSON fine, but its `MenuOption` combines
//! `#[serde(flatten)]` with `deny_unknown_fields`, which serde cannot deserialize (every
//! flattened field is reported as unknown). So reading goes through this module: options are
//! taken apart by hand (`digit` plus the action's fields) and the rest uses the derived code.
//! The binary should read an organization's menu with [`from_json`] too.

use oncall_ivr::menu::{Action, Menu, MenuOption};
use oncall_ivr::{Digit, IvrConfig};
use serde_json::Value;

/// The stored form of a config.
pub fn to_json(cfg: &IvrConfig) -> Result<String, String> {
    serde_json::to_string(cfg).map_err(|e| e.to_string())
}

/// Reads what [`to_json`] wrote.
pub fn from_json(text: &str) -> Result<IvrConfig, String> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let obj = v.as_object_mut().ok_or("the IVR menu is not a JSON object")?;
    let menu = obj.remove("menu");
    let mut cfg: IvrConfig = serde_json::from_value(Value::Object(obj.clone())).map_err(|e| e.to_string())?;
    if let Some(m) = menu {
        cfg.menu = menu_from(&m)?;
    }
    Ok(cfg)
}

fn menu_from(v: &Value) -> Result<Menu, String> {
    let prompt = v.get("prompt").and_then(Value::as_str).ok_or("menu.prompt missing")?.to_string();
    let mut options = Vec::new();
    for o in v.get("options").and_then(Value::as_array).ok_or("menu.options missing")? {
        let digit = o.get("digit").and_then(Value::as_str).and_then(|d| d.chars().next()).and_then(Digit::from_char).ok_or("menu option without a valid digit")?;
        let action = match o.get("action").and_then(Value::as_str) {
            Some("sub_menu") => Action::SubMenu { menu: Box::new(menu_from(o.get("menu").ok_or("sub_menu without menu")?)?) },
            Some(_) => {
                let mut rest = o.clone();
                if let Some(m) = rest.as_object_mut() {
                    m.remove("digit");
                }
                serde_json::from_value(rest).map_err(|e| e.to_string())?
            }
            None => return Err("menu option without an action".into()),
        };
        options.push(MenuOption { digit, action });
    }
    Ok(Menu { prompt, options })
}

#[cfg(test)]
mod tests {
    use super::*;

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

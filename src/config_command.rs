//! `oncall config check|show` (issue 24): check a configuration file before a restart (keys, addresses, trunks,
//! the prompts the menu names), and see what the server would run with, secrets masked.

use crate::config::Config;
use anyhow::Result;
use clap::Subcommand;
use std::path::Path;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the file (and ONCALL_* overrides): every problem names its key; exit status 1 on any.
    Check,
    /// Print the effective configuration as TOML, secrets masked.
    Show,
}

/// Keys whose values are secrets (masked by `show`).
const SECRETS: &[&str] = &["password", "token", "inbound_token", "metrics_token", "secret", "secret_key", "secret_access_key", "access_key_id", "api_key"];

/// Runs before the server's own loading, so that a broken file is reported rather than refused.
pub fn run(path: Option<&Path>, command: &ConfigCommand) -> Result<()> {
    let shown = path.map_or("(no file: built-in defaults and ONCALL_* variables)".to_string(), |p| p.display().to_string());
    let cfg = match Config::load(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{shown}: {e:#}");
            std::process::exit(1);
        }
    };
    match command {
        ConfigCommand::Check => {
            let mut problems = problems(&cfg);
            // The prompts the menu names, built in or from storage.sounds_dir (a missing folder is reported above).
            if !problems.iter().any(|p| p.starts_with("storage.sounds_dir")) {
                if let Err(e) = crate::load_prompts(&cfg) {
                    problems.push(format!("{e:#}"));
                }
            }
            println!("{shown}: {}", if problems.is_empty() { "ok" } else { "problems found" });
            println!("  SIP {} (UDP), {} (TCP); HTTP {}; database {}; recordings {}", cfg.sip.listen_udp, cfg.sip.listen_tcp, cfg.http.listen, database(&cfg), cfg.storage.recordings_dir().display());
            for t in &cfg.trunks {
                let how = if t.register { format!("registers as {} with {}", t.username, t.registrar) } else { format!("PBX mode, calls from {:?}", t.allowed_sources) };
                println!("  trunk {}: {how}{}", t.name, t.organization.as_ref().map(|o| format!(" (organization {o})")).unwrap_or_default());
            }
            let on = |b: bool| if b { "on" } else { "off" };
            println!("  paging {}, registrar {}, texts {}, redirect {}, alert mail {}", on(cfg.paging.enabled), on(cfg.registrar.enabled), on(cfg.texts.enabled), on(cfg.redirect.enabled), on(cfg.email.enabled));
            let transcription = match cfg.transcription.choice() {
                Ok(oncall_transcribe::config::Choice::Off) if cfg.transcription.engine == "auto" => "off (auto: pocketsphinx and pocketsphinx-en-us are not installed)".to_string(),
                Ok(oncall_transcribe::config::Choice::Off) => "off".to_string(),
                Ok(c) => format!("{c:?}").to_lowercase(),
                Err(e) => e,
            };
            println!("  transcription {transcription}");
            for p in &problems {
                println!("problem: {p}");
            }
            if !problems.is_empty() {
                std::process::exit(1);
            }
        }
        ConfigCommand::Show => {
            let mut value = toml::Value::try_from(&cfg)?;
            mask(&mut value, None);
            print!("{}", toml::to_string_pretty(&value)?);
        }
    }
    Ok(())
}

fn database(cfg: &Config) -> String {
    match &cfg.storage.database_url {
        Some(url) => masked_url(url),
        None => "SQLite in the data folder".into(),
    }
}

/// What loading accepts but would fail at run time, each naming its key.
pub fn problems(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in cfg.trunks.iter().enumerate() {
        let key = format!("trunks[{i}] ({})", t.name);
        if t.register {
            if t.username.is_empty() {
                out.push(format!("{key}.username: a registering trunk needs the username its provider gave"));
            } else if t.password.is_empty() {
                out.push(format!("{key}.password: a registering trunk needs its digest password (or set register = false for a PBX)"));
            }
            if let Err(e) = t.registrar_addr() {
                out.push(format!("{key}.registrar: {e}"));
            }
        } else if !t.registrar.is_empty() {
            if let Err(e) = t.registrar_parts() {
                out.push(format!("{key}.registrar: {e}"));
            }
        }
    }
    if let Some(dir) = &cfg.storage.sounds_dir {
        if !dir.is_dir() {
            out.push(format!("storage.sounds_dir: {} is not a folder (leave it out to use the built-in prompts)", dir.display()));
        }
    }
    out
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((creds, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match creds.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

fn mask(v: &mut toml::Value, key: Option<&str>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                mask(v, Some(k));
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(|v| mask(v, key)),
        toml::Value::String(s) if key.is_some_and(|k| SECRETS.contains(&k)) && !s.is_empty() => *s = "***".into(),
        toml::Value::String(s) if key == Some("database_url") => *s = masked_url(s),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_trunk_problems_named() {
        assert_eq!(masked_url("postgres://oncall:s3cret@db:5432/oncall"), "postgres://oncall:***@db:5432/oncall");
        assert_eq!(masked_url("sqlite://data/oncall.db"), "sqlite://data/oncall.db");
        let mut cfg = Config::default();
        cfg.trunks.push(oncall_calls::config::TrunkConfig { name: "carrier".into(), registrar: "192.0.2.10".into(), username: "acme".into(), ..Default::default() });
        cfg.texts.token = "tok".into();
        let p = problems(&cfg);
        assert!(p.len() == 1 && p[0].starts_with("trunks[0] (carrier).password"), "{p:?}");
        let mut v = toml::Value::try_from(&cfg).unwrap();
        mask(&mut v, None);
        let shown = toml::to_string(&v).unwrap();
        assert!(shown.contains("token = \"***\"") && !shown.contains("\"tok\""), "{shown}");
    }
}

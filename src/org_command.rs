//! `oncall org …`: the operator's commands for client organizations (issue 17). The operator is whoever
//! runs the server (holds its config and database), not an organization's manager.

use crate::config::{Config, StorageConfig};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use oncall_core::{Role, Store, Timestamp};

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organization; prints its slug. With --manager-email, also its first manager, whose
    /// one-time password is printed (they change it under Account).
    Add {
        #[arg(long)]
        name: String,
        /// URL-safe name (default: from --name, "Help Desk" → help-desk).
        #[arg(long)]
        slug: Option<String>,
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// A number or SIP address it answers (repeatable): +15551230000, 4100, help@oncall.example.com.
        #[arg(long)]
        number: Vec<String>,
        #[arg(long)]
        manager_email: Option<String>,
        #[arg(long, default_value = "Manager")]
        manager_name: String,
    },
    /// List organizations with their numbers, people and state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Rename an organization (its slug stays).
    Rename {
        /// Slug or id.
        org: String,
        #[arg(long)]
        name: String,
    },
    /// Set an organization's own limits and text sender; only the options given change (0 or "" clears one).
    Set {
        /// Slug or id.
        org: String,
        /// Its calls in progress at once; one more gets 503 (the server's [sip] max_calls still holds for all).
        #[arg(long)]
        max_calls: Option<u32>,
        /// Requests per hour that may page phone numbers, instead of [paging] max_pages_per_hour.
        #[arg(long)]
        max_pages_per_hour: Option<u32>,
        /// The number or SIP URI its texts come from, instead of [texts] from.
        #[arg(long)]
        text_from: Option<String>,
        /// The espeak-ng voice its alert summaries are spoken with (en, en-us, de, fr…), instead of [paging] speech_voice.
        #[arg(long)]
        speech_voice: Option<String>,
        /// The language its callers speak (en, en-US, de…), for transcribing their messages, instead of
        /// [transcription] language. An empty value goes back to the server's.
        #[arg(long)]
        language: Option<String>,
    },
    /// Switch an organization off: its numbers get the unknown-number answer; its data stays.
    Disable { org: String },
    /// Switch a disabled organization on again.
    Enable { org: String },
    /// Delete an organization with its people, schedules, requests and recordings (local and archived);
    /// prints what it removed. Needs --yes.
    Delete {
        org: String,
        #[arg(long)]
        yes: bool,
    },
    /// The numbers and SIP addresses an organization answers.
    Number {
        #[command(subcommand)]
        command: NumberCommand,
    },
}

#[derive(Subcommand)]
pub enum NumberCommand {
    /// Give the organization a number or SIP address.
    Add {
        org: String,
        number: String,
        /// Only for calls through this [[trunks]] entry (by name), e.g. a PBX that sends short extensions.
        #[arg(long)]
        trunk: Option<String>,
    },
    /// Take a number away.
    Remove { org: String, number: String },
    /// List an organization's numbers (all organizations' without an argument).
    List { org: Option<String> },
}

pub async fn run(cfg: &Config, store: &Store, command: OrgCommand) -> Result<()> {
    let now = Timestamp::now();
    match command {
        OrgCommand::Add { name, slug, time_zone, number, manager_email, manager_name } => {
            let slug = slug.unwrap_or_else(|| oncall_core::store::slugify(&name));
            let org = store.create_organization(&name, &slug, &time_zone, now).await?;
            for n in &number {
                let n = store.add_number(org, n, None, now).await?;
                println!("number {n} answers for {slug}");
            }
            if let Some(email) = manager_email {
                let password = oncall_core::secret::new_token()[..20].to_string();
                store.add_user(org, &manager_name, &email, Role::Manager, &password).await?;
                println!("manager {email} signs in at http://{}/login with one-time password {password} (change it under Account)", cfg.http.listen);
            }
            println!("{slug}");
        }
        OrgCommand::List { json } => {
            let numbers = store.numbers(None).await?;
            let mut rows = Vec::new();
            for org in store.list_organizations().await? {
                let counts = store.organization_row_counts(org.id).await?;
                let count = |t: &str| counts.iter().find(|(n, _)| *n == t).map_or(0, |(_, c)| *c);
                let owned: Vec<String> = numbers.iter().filter(|n| n.org == org.id).map(|n| match &n.source {
                    Some(s) => format!("{} (via {s})", n.address),
                    None => n.address.clone(),
                }).collect();
                rows.push((org, owned, count("people"), count("requests"), count("calls")));
            }
            if json {
                let list: Vec<_> = rows.iter().map(|(o, numbers, people, requests, calls)| serde_json::json!({
                    "id": o.id.0, "slug": o.slug, "name": o.name, "time_zone": o.time_zone.name(),
                    "disabled": o.disabled_at.is_some(), "numbers": numbers, "people": people, "requests": requests, "calls": calls,
                    "limits": o.limits,
                })).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:<4} {:<24} {:<28} {:<9} {:>6} {:>8} {:>6}  numbers", "id", "slug", "name", "state", "people", "requests", "calls");
                for (o, numbers, people, requests, calls) in &rows {
                    let state = if o.disabled_at.is_some() { "disabled" } else { "active" };
                    let numbers = if numbers.is_empty() { "(none: calls reach it only as the default)".to_string() } else { numbers.join(", ") };
                    println!("{:<4} {:<24} {:<28} {:<9} {:>6} {:>8} {:>6}  {numbers}", o.id.0, o.slug, o.name, state, people, requests, calls);
                }
            }
        }
        OrgCommand::Rename { org, name } => {
            let o = store.find_organization(&org).await?;
            store.rename_organization(o.id, &name).await?;
            println!("{} renamed to {name:?}", o.slug);
        }
        OrgCommand::Set { org, max_calls, max_pages_per_hour, text_from, speech_voice, language } => {
            let o = store.find_organization(&org).await?;
            let mut limits = o.limits.clone();
            let own = |n: u32| (n > 0).then_some(n);
            if let Some(n) = max_calls {
                limits.max_calls = own(n);
            }
            if let Some(n) = max_pages_per_hour {
                limits.max_pages_per_hour = own(n);
            }
            if let Some(from) = text_from {
                limits.text_from = Some(from.trim().to_string()).filter(|f| !f.is_empty());
            }
            if let Some(voice) = speech_voice {
                limits.speech_voice = Some(voice.trim().to_string()).filter(|v| !v.is_empty());
            }
            if let Some(language) = language {
                limits.language = Some(language.trim().to_string()).filter(|l| !l.is_empty());
            }
            store.set_organization_limits(o.id, &limits).await?;
            println!("{}: {}", o.slug, describe_limits(&limits));
        }
        OrgCommand::Disable { org } => {
            let o = store.find_organization(&org).await?;
            store.set_organization_disabled(o.id, Some(now)).await?;
            println!("{} disabled: its numbers get the unknown-number answer; `oncall org enable {}` undoes it", o.slug, o.slug);
        }
        OrgCommand::Enable { org } => {
            let o = store.find_organization(&org).await?;
            store.set_organization_disabled(o.id, None).await?;
            println!("{} enabled", o.slug);
        }
        OrgCommand::Delete { org, yes } => {
            let o = store.find_organization(&org).await?;
            if !yes {
                let counts = store.organization_row_counts(o.id).await?;
                let what: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
                bail!("deleting {} removes {} and its recordings; run again with --yes", o.slug, if what.is_empty() { "nothing else".into() } else { what.join(", ") });
            }
            let removal = store.delete_organization(o.id).await?;
            let files = remove_recordings(&cfg.storage, &o.slug).await?;
            println!("deleted organization {} ({}):", o.slug, o.name);
            for (table, n) in &removal.rows {
                println!("  {n:>6} {table}");
            }
            println!("  {:>6} recording files ({} rows had recordings)", files, removal.count("recordings"));
        }
        OrgCommand::Number { command } => match command {
            NumberCommand::Add { org, number, trunk } => {
                let o = store.find_organization(&org).await?;
                if let Some(t) = &trunk {
                    if !cfg.trunks.iter().any(|x| &x.name == t) {
                        bail!("--trunk {t}: no [[trunks]] entry has that name");
                    }
                }
                let n = store.add_number(o.id, &number, trunk.as_deref(), now).await?;
                println!("number {n} answers for {}", o.slug);
            }
            NumberCommand::Remove { org, number } => {
                let o = store.find_organization(&org).await?;
                if !store.remove_number(o.id, &number).await? {
                    bail!("{} has no number {number}", o.slug);
                }
                println!("number {number} removed from {}", o.slug);
            }
            NumberCommand::List { org } => {
                let filter = match org {
                    Some(org) => Some(store.find_organization(&org).await?.id),
                    None => None,
                };
                let slugs: std::collections::HashMap<_, _> = store.list_organizations().await?.into_iter().map(|o| (o.id, o.slug)).collect();
                for n in store.numbers(filter).await? {
                    let via = n.source.map(|s| format!(" (via trunk {s})")).unwrap_or_default();
                    println!("{:<32} {}{via}", n.address, slugs.get(&n.org).map_or("?", String::as_str));
                }
            }
        },
    }
    Ok(())
}

/// "max 20 calls, 10 pages per hour, texts from +15550001111", or the server's settings.
fn describe_limits(l: &oncall_core::store::OrgLimits) -> String {
    let calls = l.max_calls.map_or("calls up to [sip] max_calls".to_string(), |n| format!("max {n} calls at once"));
    let pages = l.max_pages_per_hour.map_or("[paging] max_pages_per_hour".to_string(), |n| format!("{n} paging requests per hour"));
    let from = l.text_from.as_ref().map_or("texts from [texts] from".to_string(), |f| format!("texts from {f}"));
    let voice = l.speech_voice.as_ref().map_or("alerts spoken in [paging] speech_voice".to_string(), |v| format!("alerts spoken in {v}"));
    let language = l.language.as_ref().map_or("messages transcribed in [transcription] language".to_string(), |v| format!("messages transcribed in {v}"));
    format!("{calls}, {pages}, {from}, {voice}, {language}")
}

/// Removes an organization's recordings: every archived object under its prefix and its local folder.
/// Returns how many files or objects went.
async fn remove_recordings(storage: &StorageConfig, slug: &str) -> Result<usize> {
    let dir = storage.recordings_dir();
    let mut removed = 0;
    let archive = storage.archive().open(&dir).await?;
    for object in archive.list(&format!("{slug}/")).await? {
        archive.delete(&object.key).await.with_context(|| format!("deleting archived recording {}", object.key))?;
        removed += 1;
    }
    let local = dir.join(slug);
    if local.exists() {
        removed += walk_files(&local);
        std::fs::remove_dir_all(&local).with_context(|| format!("removing {}", local.display()))?;
    }
    Ok(removed)
}

fn walk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries.flatten().map(|e| if e.path().is_dir() { walk_files(&e.path()) } else { 1 }).sum()
    })
}

/// The operator web area's "delete organization" removes recordings as `oncall org delete` does.
pub struct RecordingsRemover(pub StorageConfig);

impl oncall_web::OrgFiles for RecordingsRemover {
    fn remove_recordings(&self, slug: String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, String>> + Send + '_>> {
        Box::pin(async move { remove_recordings(&self.0, &slug).await.map_err(|e| format!("{e:#}")) })
    }
}

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Add an operator (signs in at /operator); prints a generated password unless --password is given.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Operator")]
        name: String,
        #[arg(long, env = "ONCALL_OPERATOR_PASSWORD")]
        password: Option<String>,
    },
    /// Set an operator's password (signs them out everywhere).
    Passwd {
        #[arg(long)]
        email: String,
        #[arg(long, env = "ONCALL_OPERATOR_PASSWORD")]
        password: String,
    },
    /// List the operators.
    List,
}

pub async fn run_operator(cfg: &Config, store: &Store, command: OperatorCommand) -> Result<()> {
    match command {
        OperatorCommand::Add { email, name, password } => {
            let (password, generated) = match password {
                Some(p) => (p, false),
                None => (oncall_core::secret::new_token()[..20].to_string(), true),
            };
            store.add_operator(&name, &email, &password, Timestamp::now()).await?;
            if generated {
                println!("operator {email} signs in at http://{}/operator/login with password {password}", cfg.http.listen);
            } else {
                println!("operator {email} added; sign in at http://{}/operator/login", cfg.http.listen);
            }
        }
        OperatorCommand::Passwd { email, password } => {
            store.set_operator_password(&email, &password).await?;
            println!("password changed for operator {email}");
        }
        OperatorCommand::List => {
            for o in store.list_operators().await? {
                println!("{}  {}", o.email, o.name);
            }
        }
    }
    Ok(())
}

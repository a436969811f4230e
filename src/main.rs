//! `oncall`: the one binary. It only wires the crates together: config, store, SIP transports,
//! user agent, media engine, IVR sessions, and the HTTP endpoints.

mod backup_command;
mod config;
mod config_command;
mod log_format;
mod integration_command;
mod org_command;
mod store_gauges;

use anyhow::{bail, Context, Result};
use oncall_calls::controller::{CallCounters, Controller, PagingLink};
use oncall_calls::trunks::{TrunkBoard, TrunkState};
use oncall_calls::{call_log, hold_room, opening_hours, phones, redirect, trunks};
use oncall_paging::{escalations, texts, webhooks};
use clap::{Parser, Subcommand};
use config::Config;
use oncall_core::prometheus_text::{Kind, PrometheusText, Value};
use oncall_core::{Role, Store, Timestamp};
use oncall_recordings::PromptLibrary;
use oncall_sip::media::{MediaEngine, RtpPorts};
use oncall_sip::sdp::Codec;
use oncall_sip::transaction::TimerConfig;
use oncall_sip::transport::{self, TransportLimits};
use oncall_sip::ua::{UaConfig, UserAgent};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "oncall",
    version,
    about = "OnCall: a self-hosted on-call telephony server",
    long_about = "OnCall answers calls from your SIP trunk or PBX, runs an IVR menu, records the caller's \
                  request and pages whoever is on call.\n\nStart with `oncall demo` then `oncall serve`, and point a \
                  softphone at sip:100@127.0.0.1:5060. Configuration: one TOML file (--config), every key \
                  overridable by ONCALL_<SECTION>_<KEY> environment variables; see docs/configuration.md."
)]
struct Cli {
    /// Configuration file (TOML). Without it, built-in defaults and ONCALL_* variables apply.
    #[arg(long, short, global = true, env = "ONCALL_CONFIG")]
    config: Option<PathBuf>,
    /// The organization (slug or id) that person, policy, schedule, user, calls and requests commands work on; default:
    /// the first one.
    #[arg(long, global = true, env = "ONCALL_ORG")]
    org: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: SIP (UDP+TCP), media, IVR and the HTTP endpoints.
    Serve {
        /// Seed the demo organizations "Demo Apartments" and "Harbor Help Desk" first (idempotent).
        #[arg(long)]
        demo: bool,
    },
    /// Seed the demo organizations "Demo Apartments" and "Harbor Help Desk" (idempotent).
    Demo,
    /// List recent calls.
    Calls {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List recent requests with their status and who took them.
    Requests {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add people to page (maintenance; the web admin does the same).
    Person {
        #[command(subcommand)]
        command: PersonCommand,
    },
    /// Add escalation policies (maintenance; the web admin does the same).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Add on-call schedules (maintenance; the web admin does the same).
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
    /// Manage web users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Recordings maintenance.
    Recordings {
        #[command(subcommand)]
        command: RecordingsCommand,
    },
    /// Client organizations (operator): add, list, rename, disable, delete, and the numbers each answers.
    Org {
        #[command(subcommand)]
        command: org_command::OrgCommand,
    },
    /// Integration keys for monitoring (Alertmanager, Grafana, Events API v2, scripts) in the --org organization.
    Integration {
        #[command(subcommand)]
        command: integration_command::IntegrationCommand,
    },
    /// Check the configuration file before a restart (`check`), or print the effective one, secrets masked (`show`).
    Config {
        #[command(subcommand)]
        command: config_command::ConfigCommand,
    },
    /// Back up while the server runs: a consistent database snapshot (SQLite), the recordings kept only on this
    /// machine and a manifest with checksums, into the new folder DIR. PostgreSQL: checks it and says to use pg_dump.
    Backup { dir: PathBuf },
    /// Restore a backup folder into the configured data folder, which must be empty; checksums are checked first.
    Restore { dir: PathBuf },
    /// Operator accounts: who signs in at /operator to manage the organizations in the browser.
    Operator {
        #[command(subcommand)]
        command: org_command::OperatorCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user to the default organization.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// manager or employee
        #[arg(long, default_value = "employee")]
        role: String,
        #[arg(long, env = "ONCALL_PASSWORD")]
        password: String,
    },
    /// Change a user's password.
    Passwd {
        #[arg(long)]
        email: String,
        #[arg(long, env = "ONCALL_PASSWORD")]
        password: String,
    },
}

#[derive(Subcommand)]
enum PersonCommand {
    /// Give a person SIP credentials for their own phone (registering to OnCall, [registrar]). Stores only
    /// the digest keys (HA1, MD5 and SHA-256) for the configured realm, never the password; run again to
    /// change the password.
    SipAccount {
        /// The person's e-mail or id.
        person: String,
        #[arg(long)]
        username: String,
        #[arg(long, env = "ONCALL_SIP_PASSWORD")]
        password: String,
    },
    /// List the phones a person has registered (from the database; expired ones are left out).
    SipDevices {
        /// The person's e-mail or id.
        person: String,
    },
    /// Add a person to the default organization; prints their id.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// E.164 number, called through the first [[trunks]] entry (repeatable).
        #[arg(long)]
        phone: Vec<String>,
        /// SIP URI called directly, e.g. sip:erin@192.0.2.10:5060 (repeatable).
        #[arg(long)]
        sip_uri: Vec<String>,
        /// manager or employee
        #[arg(long, default_value = "employee")]
        role: String,
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// Notify by text message at once (needs --phone; [texts]) instead of by call.
        #[arg(long)]
        text: bool,
    },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Add a schedule whose rotation starts today at 00:00 (its time zone) with the first --person, then the
    /// next every --shift-days; --backup people form a second, lower layer (the backups); prints its id.
    Add {
        #[arg(long)]
        name: String,
        /// A rotation member by e-mail, in order (repeatable).
        #[arg(long = "person", required = true)]
        people: Vec<String>,
        /// A member of the backup layer by e-mail, in order (repeatable).
        #[arg(long = "backup")]
        backups: Vec<String>,
        #[arg(long, default_value_t = 7)]
        shift_days: u32,
        #[arg(long, default_value = "UTC")]
        time_zone: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Add a policy: one step per --person (by e-mail), in order, each waiting --wait-secs.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long = "person", required = true)]
        people: Vec<String>,
        #[arg(long, default_value_t = 60)]
        wait_secs: i64,
        /// Extra passes over all steps.
        #[arg(long, default_value_t = 0)]
        repeat: u32,
    },
}

#[derive(Subcommand)]
enum RecordingsCommand {
    /// Repair WAV files whose header sizes are wrong (left by a crash).
    Repair,
    /// Check that every recording in the database is in storage; report missing and orphaned objects.
    Verify,
    /// Move the local archive to S3 (configure [storage.s3] first), verifying every object.
    Migrate {
        /// Only "s3" is supported.
        #[arg(long)]
        to: String,
        /// Delete each local file once its object is verified.
        #[arg(long)]
        delete_local: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Config { command } = &cli.command {
        return config_command::run(cli.config.as_deref(), command);
    }
    let mut cfg = Config::load(cli.config.as_deref())?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let json = cfg.log.format == config::LogFormat::Json;
    let ansi = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let format = if json { log_format::WithInstance::json(&cfg.instance.id) } else { log_format::WithInstance::new(&cfg.instance.id, ansi) };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .fmt_fields(log_format::fields())
        .event_format(format)
        .init();
    // The media threads keep 20 ms schedules; signalling, the database and the web can wait a few milliseconds.
    // Nice 5 on the runtime's threads (a thread may lower its own priority without privileges) lets the media
    // threads, at nice 0, win a busy CPU (issue 22: late ticks under load).
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().on_thread_start(below_media_priority).build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve { demo } => {
                if demo {
                    let store = open_store(&cfg).await?;
                    oncall_core::demo::seed(&store, Timestamp::now()).await?;
                    // The demo pages registered softphones: no trunk needed to receive a page. Debian's baresip
                    // 1.0 gives up on a 401 that also offers SHA-256, so the demo challenges with MD5 unless
                    // the config chose the algorithms.
                    cfg.registrar.enabled = true;
                    if cfg.registrar.algorithms == oncall_calls::config::RegistrarSection::default().algorithms {
                        cfg.registrar.algorithms = vec!["MD5".into()];
                    }
                    seed_demo_phones(&cfg, &store).await?;
                    store.close().await;
                    eprintln!("{DEMO_LOGINS}");
                    eprintln!("{DEMO_PHONES}");
                }
                serve(cfg).await
            }
            Command::Demo => {
                let store = open_store(&cfg).await?;
                let org = oncall_core::demo::seed(&store, Timestamp::now()).await?;
                println!("demo organizations \"Demo Apartments\" (id {org}) and \"Harbor Help Desk\" ready; run `oncall serve` and open http://{}", cfg.http.listen);
                println!("{DEMO_LOGINS}");
                Ok(())
            }
            Command::Calls { limit, json } => list_calls(&cfg, cli.org.as_deref(), limit, json).await,
            Command::Org { command } => {
                let store = open_store(&cfg).await?;
                org_command::run(&cfg, &store, command).await
            }
            Command::Integration { command } => {
                let store = open_store(&cfg).await?;
                let org = target_org(&store, cli.org.as_deref()).await?;
                let base = cfg.http.public_url.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| format!("http://{}", cfg.http.listen));
                integration_command::run(&store, &org, base.trim_end_matches('/'), command).await
            }
            Command::Backup { dir } => {
                let store = open_store(&cfg).await?;
                let done = backup_command::backup(&cfg, &store, &dir).await;
                store.close().await;
                done
            }
            Command::Restore { dir } => backup_command::restore(&cfg, &dir).await,
            // Handled before the configuration is loaded (main's first lines).
            Command::Config { .. } => Ok(()),
            Command::Operator { command } => {
                let store = open_store(&cfg).await?;
                org_command::run_operator(&cfg, &store, command).await
            }
            Command::User { command } => {
                let store = open_store(&cfg).await?;
                match command {
                    UserCommand::Add { name, email, role, password } => {
                        let role = parse_role(&role)?;
                        let org = target_org(&store, cli.org.as_deref()).await?;
                        store.add_user(org.id, &name, &email, role, &password).await?;
                        println!("user {email} added");
                    }
                    UserCommand::Passwd { email, password } => {
                        store.set_password(&email, &password).await?;
                        println!("password changed for {email}");
                    }
                }
                Ok(())
            }
            Command::Recordings { command } => recordings_command(&cfg, command).await,
            Command::Requests { limit, json } => list_requests(&cfg, cli.org.as_deref(), limit, json).await,
            Command::Person { command: PersonCommand::SipAccount { person, username, password } } => sip_account_command(&cfg, cli.org.as_deref(), &person, &username, &password).await,
            Command::Person { command: PersonCommand::SipDevices { person } } => sip_devices_command(&cfg, cli.org.as_deref(), &person).await,
            Command::Person { command: PersonCommand::Add { name, email, phone, sip_uri, role, time_zone, text } } => {
                let store = open_store(&cfg).await?;
                let org = target_org(&store, cli.org.as_deref()).await?;
                let rules = if text { vec![oncall_core::NotificationRule::new(oncall_core::Channel::Text, oncall_core::Millis(0))] } else { Vec::new() };
                let new = oncall_core::NewPerson { name, email, role: Some(parse_role(&role)?), phones: phone, sip_uris: sip_uri, time_zone, notification_rules: rules };
                let id = store.add_person(org.id, &new, Timestamp::now()).await?;
                println!("{}", id.0);
                Ok(())
            }
            Command::Schedule { command: ScheduleCommand::Add { name, people, backups, shift_days, time_zone } } => {
                use oncall_core::schedule::{Layer, NewSchedule, Rotation, ShiftLength};
                let store = open_store(&cfg).await?;
                let org = target_org(&store, cli.org.as_deref()).await?;
                let tz = oncall_core::validation::parse_time_zone("--time-zone", &time_zone)?;
                let today = chrono::Utc::now().with_timezone(&tz).date_naive();
                let mut layers = Vec::new();
                // Bottom layer first: the backups, then the rotation on top of them.
                for (layer, emails) in [("Backup", &backups), ("Primary", &people)] {
                    if emails.is_empty() {
                        continue;
                    }
                    let mut members = Vec::new();
                    for email in emails {
                        let Some(id) = store.person_by_email(org.id, email).await? else { bail!("{email}: nobody has that e-mail") };
                        members.push(id);
                    }
                    let rotation = Rotation { members, shift_length: ShiftLength::Days(shift_days), start_date: today, handoff_time: chrono::NaiveTime::MIN };
                    layers.push(Layer { name: layer.into(), rotation });
                }
                let id = store.create_schedule(org.id, &NewSchedule { name, time_zone, layers }, Timestamp::now()).await?;
                println!("{}", id.0);
                Ok(())
            }
            Command::Policy { command: PolicyCommand::Add { name, people, wait_secs, repeat } } => {
                use oncall_core::escalation::{NewPolicy, Step, Target};
                let store = open_store(&cfg).await?;
                let org = target_org(&store, cli.org.as_deref()).await?;
                let mut steps = Vec::new();
                for email in &people {
                    let Some(id) = store.person_by_email(org.id, email).await? else { bail!("--person {email}: nobody has that e-mail") };
                    steps.push(Step { targets: vec![Target::Person(id)], wait: oncall_core::Millis::seconds(wait_secs) });
                }
                let id = store.create_policy(org.id, &NewPolicy { name, steps, repeat }, Timestamp::now()).await?;
                println!("{}", id.0);
                Ok(())
            }
        }
    })
}

/// The organization `--org` names, or the first (created as "Default" on a fresh install).
async fn target_org(store: &Store, org: Option<&str>) -> Result<oncall_core::Organization> {
    Ok(match org {
        Some(org) => store.find_organization(org).await.with_context(|| format!("--org {org}: `oncall org list` shows the organizations"))?,
        None => store.ensure_default_organization().await?,
    })
}

fn parse_role(role: &str) -> Result<Role> {
    match role {
        "manager" => Ok(Role::Manager),
        "employee" => Ok(Role::Employee),
        other => bail!("--role must be manager or employee, not {other:?}"),
    }
}

async fn list_requests(cfg: &Config, org: Option<&str>, limit: i64, json: bool) -> Result<()> {
    let store = open_store(cfg).await?;
    let org = target_org(&store, org).await?;
    let requests = store.list_requests(org.id, limit).await?;
    let rfc = |t: Option<Timestamp>| t.map(|t| t.to_utc().to_rfc3339());
    let actor = |a: oncall_core::Actor| serde_json::to_value(a).unwrap_or_default();
    let mut rows = Vec::new();
    for r in &requests {
        let notifications = store.notifications_for_request(org.id, r.id).await?;
        let recordings = store.recordings_for_request(org.id, r.id).await?;
        let transcriptions = store.transcriptions_for_request(org.id, r.id).await?;
        let st = r.state;
        rows.push(serde_json::json!({
            "id": r.id.0, "caller": r.caller, "summary": r.summary, "transcript": r.transcript, "source": r.source, "alert_count": r.alert_count, "status": st.status().as_str(), "received_at": rfc(Some(r.received_at)),
            "answered_at": rfc(st.answered().map(|s| s.at)), "answered_by": st.answered().map(|s| actor(s.by)),
            "acknowledged_at": rfc(st.acknowledged().map(|s| s.at)), "acknowledged_by": st.acknowledged().map(|s| actor(s.by)),
            "completed_at": rfc(st.completed().map(|s| s.at)),
            "recordings": recordings.iter().map(|rec| &rec.storage_key).collect::<Vec<_>>(),
            "transcriptions": transcriptions.iter().map(|t| serde_json::json!({
                "recording": t.recording.0, "kind": t.kind.as_str(), "status": t.status.as_str(), "attempts": t.attempts, "engine": t.engine,
                "text": t.text, "confidence": t.confidence, "low_quality": t.low_quality, "reason": t.reason, "audio_ms": t.audio_ms, "engine_ms": t.engine_ms,
            })).collect::<Vec<_>>(),
            "notifications": notifications.iter().map(|n| serde_json::json!({
                "stage": n.key.stage, "person": n.key.person.0, "channel": n.key.channel.as_str(), "status": n.status,
                "target": n.target, "detail": n.detail,
            })).collect::<Vec<_>>(),
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &requests {
            println!("{:>6}  {}  {:<12} {}", r.id.0, r.received_at.to_utc().format("%F %T"), r.state.status().as_str(), r.caller);
        }
    }
    Ok(())
}

const DEMO_LOGINS: &str = "demo logins (password oncall-demo-2026): Demo Apartments' manager dana@demo-apartments.example \
                           and employee maria@demo-apartments.example; Harbor Help Desk's manager lee@harbor-help-desk.example";
const DEMO_PHONES: &str = "demo numbers: call sip:100@<this server> for Demo Apartments, sip:200@ for Harbor Help Desk; demo phones \
                           (register to receive pages; password oncall-phone-2026): maria, james, aisha (Demo Apartments), \
                           sam, noor (Harbor Help Desk); whoever is on call now is paged first (see README)";

/// The demo employees' SIP accounts, set once (a password changed later stays).
async fn seed_demo_phones(cfg: &Config, store: &Store) -> Result<()> {
    use oncall_sip::registrar::AccountKeys;
    let existing: Vec<String> = store.all_sip_accounts().await?.into_iter().map(|a| a.username).collect();
    let realm = &cfg.registrar.realm;
    for (slug, email, username) in oncall_core::demo::DEMO_PHONES {
        let Some(org) = store.organization_by_slug(slug).await? else { continue };
        let Some(person) = store.person_by_email(org.id, email).await? else { continue };
        if existing.iter().any(|u| u == username) {
            continue;
        }
        let keys = AccountKeys::from_password(username, realm, oncall_core::demo::DEMO_PHONE_PASSWORD);
        let account = oncall_core::store::NewSipAccount { username, realm, ha1_md5: &keys.ha1_md5, ha1_sha256: &keys.ha1_sha256 };
        store.set_sip_account(org.id, person, &account, Timestamp::now()).await?;
    }
    Ok(())
}

async fn recordings_command(cfg: &Config, command: RecordingsCommand) -> Result<()> {
    let dir = cfg.storage.recordings_dir();
    match command {
        RecordingsCommand::Repair => {
            for (path, outcome) in oncall_recordings::repair_dir(&dir) {
                println!("{}: {:?}", path.display(), outcome);
            }
        }
        RecordingsCommand::Verify => {
            let store = open_store(cfg).await?;
            let archive = cfg.storage.archive().open(&dir).await?;
            let report = oncall_recordings::verify::verify(&store, &*archive, &dir).await?;
            println!("{report}");
            if !report.is_clean() {
                bail!("recordings verify found problems");
            }
        }
        RecordingsCommand::Migrate { to, delete_local } => {
            if to != "s3" {
                bail!("--to must be s3");
            }
            let store = open_store(cfg).await?;
            let target = cfg.storage.archive().open_s3().await?;
            let local = oncall_recordings::storage::LocalStore::new(&dir);
            let report = oncall_recordings::migrate::migrate(&store, &local, &*target, delete_local).await?;
            println!("{report:?}");
        }
    }
    Ok(())
}

async fn open_store(cfg: &Config) -> Result<Store> {
    oncall_recordings::private_files::create_dir_all(&cfg.storage.data_dir).with_context(|| format!("creating storage.data_dir {}", cfg.storage.data_dir.display()))?;
    // The database, greetings and (by default) recordings are below: no access for other users (issue #15).
    oncall_recordings::private_files::restrict_dir(&cfg.storage.data_dir).with_context(|| format!("restricting storage.data_dir {}", cfg.storage.data_dir.display()))?;
    let url = cfg.storage.database_url();
    let store = Store::connect(&url).await.with_context(|| format!("opening database {url}"))?;
    // Every contact saved through this store (web form, CLI) is checked against the dial plan.
    Ok(store.with_dial_plan(cfg.dial_plan.plan()?))
}

async fn list_calls(cfg: &Config, org: Option<&str>, limit: i64, json: bool) -> Result<()> {
    let store = open_store(cfg).await?;
    let org = target_org(&store, org).await?;
    let calls = store.list_calls(org.id, limit).await?;
    let rfc = |t: Option<Timestamp>| t.map(|t| t.to_utc().to_rfc3339());
    let rows: Vec<serde_json::Value> = calls
        .iter()
        .map(|c| {
            serde_json::json!({
                "call_id": c.call_id, "caller": c.caller, "called": c.called,
                "received_at": rfc(Some(c.received_at)), "answered_at": rfc(c.answered_at), "ended_at": rfc(c.ended_at),
                "digits": c.digits, "recording_path": c.recording_path, "recording_duration_ms": c.recording_duration_ms,
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for c in &calls {
            println!("{}  {:<30} digits={:<8} recording={}", c.received_at.to_utc().format("%F %T"), c.caller, c.digits, c.recording_path.as_deref().unwrap_or("-"));
        }
    }
    Ok(())
}

/// Raises the open-file limit: every call holds two RTP sockets.
fn raise_fd_limit() {
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() {
        if soft < hard {
            let _ = rlimit::Resource::NOFILE.set(hard, hard);
        }
    }
}

struct Status {
    ready: AtomicBool,
    counters: Arc<CallCounters>,
    engine: MediaEngine,
    trunks: TrunkBoard,
    /// Registrar counters and devices; None with `[registrar] enabled = false`.
    registrar: Option<phones::RegistrarHandle>,
    /// Callers holding for (or talking with) an employee; None with paging off.
    hold: Option<hold_room::HoldRoom>,
    /// `oncall-<schedule>@` answers; None with `[redirect] enabled = false`.
    redirects: Option<Arc<redirect::RedirectCounters>>,
    /// `[instance] id`, labelled on `oncall_instance_info` so each instance's series can be told apart.
    instance: String,
    /// Requests, notifications and disk space, refreshed from the store in the background.
    store_gauges: Arc<store_gauges::StoreGauges>,
    /// The tabs taking pages in a browser.
    browsers: oncall_core::browser_desk::BrowserDesk,
}

impl Status {
    /// One `oncall_trunk_registered{trunk="name"} 1|0` per registering trunk (PBX-mode trunks have none).
    fn write_trunks(&self, out: &mut PrometheusText) {
        let rows = self.trunks.lock().map(|r| r.clone()).unwrap_or_default();
        let mut registering = rows.iter().filter(|r| r.state != TrunkState::Pbx).peekable();
        if registering.peek().is_none() {
            return;
        }
        let mut f = out.family("oncall_trunk_registered", Kind::Gauge, "Whether the trunk's registration is current.");
        for r in registering {
            f.sample(&[("trunk", &r.name)], r.state == TrunkState::Registered);
        }
    }
}

impl oncall_web::StatusSource for Status {
    fn healthy(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn health_details(&self) -> String {
        let rows = self.trunks.lock().map(|r| r.clone()).unwrap_or_default();
        rows.iter()
            .map(|r| if r.detail.is_empty() { format!("trunk {}: {}\n", r.name, r.state) } else { format!("trunk {}: {} ({})\n", r.name, r.state, r.detail) })
            .collect()
    }

    fn prometheus(&self) -> String {
        let mut out = PrometheusText::new();
        out.family("oncall_instance_info", Kind::Gauge, "This instance's [instance] id and version.")
            .sample(&[("instance", &self.instance), ("version", env!("CARGO_PKG_VERSION"))], 1u64);
        self.write_counters(&mut out);
        self.write_trunks(&mut out);
        if let Some(h) = &self.hold {
            out.family("oncall_callers_holding", Kind::Gauge, "Callers holding for, or talking with, the on-call staff.")
                .sample(&[], h.len());
        }
        if let Some(r) = &self.registrar {
            r.write_metrics(&mut out);
        }
        out.family("oncall_browser_phones", Kind::Gauge, "Browser tabs taking pages (the browser phone's WebSockets open).").sample(&[], self.browsers.open_tabs());
        if let Some(r) = &self.redirects {
            r.write_metrics(&mut out);
        }
        self.store_gauges.write(&mut out);
        out.finish()
    }
}

impl Status {
    /// The call controller's counters and the media engine's.
    fn write_counters(&self, out: &mut PrometheusText) {
        let c = &self.counters;
        let s = &self.engine.stats;
        let load = |a: &std::sync::atomic::AtomicU64| Value::from(a.load(Ordering::Relaxed));
        let families = [
            ("oncall_calls_received_total", Kind::Counter, "Incoming INVITEs that start a call, whatever became of them.", load(&c.calls_received)),
            ("oncall_calls_answered_total", Kind::Counter, "Incoming calls answered.", load(&c.calls_answered)),
            ("oncall_calls_rejected_total", Kind::Counter, "Incoming calls refused (403: a source no trunk allows; 503: over a limit).", load(&c.calls_rejected)),
            ("oncall_active_calls", Kind::Gauge, "Calls in progress.", c.active_calls.load(Ordering::Relaxed).into()),
            ("oncall_sip_messages_total", Kind::Counter, "SIP messages received.", load(&c.sip_messages)),
            ("oncall_media_calls", Kind::Gauge, "Calls the media engine sends and receives RTP for.", s.calls.load(Ordering::Relaxed).into()),
            ("oncall_rtp_packets_sent_total", Kind::Counter, "RTP packets sent.", load(&s.packets_sent)),
            ("oncall_rtp_packets_received_total", Kind::Counter, "RTP packets received.", load(&s.packets_received)),
            ("oncall_media_ticks_late_total", Kind::Counter, "Media engine 20 ms ticks that started late.", load(&s.ticks_late)),
            ("oncall_srtp_refused_total", Kind::Counter, "Packets dropped on SRTP calls: a wrong authentication tag (forged, or plain RTP), a replay, or too short.", load(&s.srtp_refused)),
        ];
        for (name, kind, help, value) in families {
            out.family(name, kind, help).sample(&[], value);
        }
        out.family("oncall_media_load", Kind::Gauge, "The busiest media thread's share of its 20 ms tick used (smoothed); above [sip] max_media_load new calls get 503.")
            .sample(&[], Value::Float(s.load()));
        let (p50, p99, n) = s.send_jitter.lock().map(|h| (h.quantile_us(0.5), h.quantile_us(0.99), h.count())).unwrap_or_default();
        out.family("oncall_rtp_send_jitter_us", Kind::Summary, "Deviation of RTP send intervals from 20 ms.").summary(
            &[],
            &[(0.5, p50.into()), (0.99, p99.into())],
            None,
            n,
        );
    }
}

fn below_media_priority() {
    // SAFETY: gettid and setpriority are plain system calls on this thread; a failure only leaves the priority.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 5);
    }
}

/// The built-in prompts, overridden by `[storage] sounds_dir` when set; every prompt the menu names must exist.
fn load_prompts(cfg: &Config) -> Result<PromptLibrary> {
    let mut prompts = PromptLibrary::embedded().context("decoding the built-in prompts")?;
    if let Some(dir) = &cfg.storage.sounds_dir {
        let custom = PromptLibrary::load_dir(dir).with_context(|| format!("loading prompts from storage.sounds_dir {}", dir.display()))?;
        let added = custom.len();
        let replaced = prompts.overlay(custom);
        tracing::info!(dir = %dir.display(), replaced, added = added - replaced, "prompts from storage.sounds_dir");
    }
    // The check the web makes before saving a menu, for the config file's `[ivr]`.
    if let Err(e) = cfg.ivr.check(|n| prompts.get(n).is_some()) {
        bail!("ivr: {e} (built-in prompts, or audio files in storage.sounds_dir)");
    }
    Ok(prompts)
}

async fn serve(cfg: Config) -> Result<()> {
    raise_fd_limit();
    let store = open_store(&cfg).await?;
    let org = store.ensure_default_organization().await?;
    let recordings_dir = cfg.storage.recordings_dir();
    oncall_recordings::private_files::create_dir_all(&recordings_dir).with_context(|| format!("creating {}", recordings_dir.display()))?;
    oncall_recordings::private_files::restrict_dir(&recordings_dir).with_context(|| format!("restricting {}", recordings_dir.display()))?;
    // The uploader first repairs WAVs a crash left with short headers and registers files the database never
    // heard of, then archives finished recordings (a no-op copy for the local backend) with retries.
    let settings = cfg.storage.archive();
    let archive = settings.open(&recordings_dir).await.context("opening the recordings archive ([storage])")?;
    let mut ucfg = oncall_recordings::uploader::UploaderConfig::new(&recordings_dir);
    ucfg.keep_spool = settings.keep_spool;
    ucfg.retention = settings.retention();
    let uploader = oncall_recordings::uploader::start(store.clone(), archive.clone(), ucfg).await.context("starting the recordings uploader")?;
    let prompts = load_prompts(&cfg)?;
    let prompts_for_web = prompts.clone();

    // One watch keeps the call path's copies of web-edited settings fresh (IVR, hours, redirect, SIP accounts).
    let mut watch = oncall_calls::settings_watch::SettingsWatch::new(store.clone());
    // Business hours (issue 7): `[business_hours]` seeds the organization's once; the web page edits them after.
    opening_hours::HoursSource::seed(&store, org.id, org.time_zone.name(), &cfg.business_hours).await.context("business hours ([business_hours])")?;
    // Issue 17: every organization's IVR and hours (the config file's `[ivr]` until its managers save one).
    let tenants = oncall_calls::tenants::Tenants::default();
    let mut tenants_watch = tenants.watched(cfg.ivr.clone(), cfg.storage.data_dir.clone(), prompts);
    // Read every organization once before the first call (the watch re-reads them after).
    oncall_calls::settings_watch::Watched::reload(&mut tenants_watch, &store).await;
    watch.watch(tenants_watch);

    let (in_tx, in_rx) = tokio::sync::mpsc::channel(8192);
    let limits = TransportLimits {
        max_tcp_connections: cfg.sip.max_tcp_connections,
        tcp_idle_timeout: Duration::from_secs(cfg.sip.tcp_idle_timeout_secs),
        tcp_message_timeout: Duration::from_secs(cfg.sip.tcp_message_timeout_secs),
    };
    let tls = match (cfg.sip.listen_tls, &cfg.sip.tls_certificate, &cfg.sip.tls_private_key) {
        (Some(addr), Some(cert), Some(key)) => {
            let server = transport::tls::ServerTls::load(cert, key).context("sip.tls_certificate / sip.tls_private_key")?;
            server.watch(Duration::from_secs(30));
            Some((addr, server))
        }
        _ => None,
    };
    let bound = transport::bind(cfg.sip.listen_udp, cfg.sip.listen_tcp, tls, limits, in_tx).await.context("binding sip.listen_udp / sip.listen_tcp / sip.listen_tls")?;
    if let Some(addr) = bound.tls_addr {
        tracing::info!(%addr, "SIP over TLS listening");
    }
    // Trunks over TLS: how each one's certificate is checked when we connect (validate() built them once already).
    let mut trunk_addrs = std::collections::HashMap::new();
    for t in &cfg.trunks {
        let Ok(addr) = t.registrar_addr() else { continue };
        trunk_addrs.insert(t.name.clone(), addr);
        if let Some(peer) = t.tls_peer().map_err(|e| anyhow::anyhow!("trunk {}: {e}", t.name))? {
            bound.sender.set_tls_peer(addr, peer);
        }
    }
    let advertise_ip = cfg.sip.advertise.unwrap_or_else(|| cfg.sip.listen_udp.ip());
    if advertise_ip.is_unspecified() {
        bail!("sip.listen_udp is a wildcard address: set sip.advertise to the address peers should use");
    }
    let ua = UserAgent::new(UaConfig {
        advertised_udp: SocketAddr::new(advertise_ip, bound.udp_addr.port()),
        advertised_tcp: SocketAddr::new(cfg.sip.advertise.unwrap_or_else(|| cfg.sip.listen_tcp.ip()), bound.tcp_addr.port()),
        advertised_tls: bound.tls_addr.map(|a| SocketAddr::new(cfg.sip.advertise.unwrap_or_else(|| a.ip()), a.port())),
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event_pt: 101,
        server_header: (!cfg.sip.server_header.is_empty()).then(|| cfg.sip.server_header.clone()),
        timers: TimerConfig::default(),
        app_methods: oncall_sip::ua::checks::AppMethods { register: cfg.registrar.enabled, message: cfg.texts.enabled },
    });
    let threads = if cfg.sip.media_threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { cfg.sip.media_threads };
    let engine = MediaEngine::start(threads);
    let counters = Arc::new(CallCounters::default());
    let (log_tx, log_rx) = tokio::sync::mpsc::unbounded_channel();
    let registrar = if cfg.registrar.enabled { Some(phones::RegistrarService::start(store.clone(), &cfg.registrar).await.context("starting the registrar ([registrar])")?) } else { None };
    let registrar_handle = registrar.as_ref().map(|r| r.handle());
    if let Some(r) = &registrar {
        watch.watch(r.watched());
    }
    // Browser phones (issue 19): the site's WebSockets open tabs here, paging rings them with the phones.
    let (browser_desk, from_tabs) = oncall_core::browser_desk::BrowserDesk::new();
    let dialer = oncall_calls::dial::Dialer::new(cfg.trunks.clone(), format!("sip:oncall@{}", ua.advertised(oncall_sip::transaction::Transport::Udp)), registrar_handle.clone())
        .with_browsers(browser_desk.clone());
    // Paging (issue 6): the call log hands "page on-call" requests to the paging task, which asks the
    // controller to phone people; the controller reports what became of each call back to it.
    let (command_tx, command_rx) = tokio::sync::mpsc::unbounded_channel();
    let (paging_events_tx, paging_events_rx) = tokio::sync::mpsc::unbounded_channel();
    // Text messages (issue 6 item 6): sent for paging, replies by webhook or SIP MESSAGE.
    let texts = cfg.texts.enabled.then(|| {
        let link_base = cfg.http.public_url.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| format!("http://{}", cfg.http.listen));
        let client = webhooks::http_client().map_err(|e| tracing::error!(error = %e, "texts: cannot build the HTTP client")).ok();
        tracing::info!(transport = %cfg.texts.transport, "texts enabled");
        Arc::new(texts::Texts {
            config: cfg.texts.clone(),
            store: store.clone(),
            link_base,
            dialer: dialer.clone(),
            controller: command_tx.clone(),
            paging: cfg.paging.enabled.then(|| paging_events_tx.clone()),
            client,
        })
    });
    let replies = texts.clone().map(|t| t as Arc<dyn oncall_calls::sip_texts::TextReplies>);
    let sip_texts = oncall_calls::sip_texts::SipTexts::new(replies, cfg.paging.enabled.then(|| paging_events_tx.clone()), Some(command_tx.clone()));
    let (paging_tx, paging_link) = if cfg.paging.enabled {
        if cfg.trunks.is_empty() && !cfg.registrar.enabled && !cfg.texts.enabled {
            tracing::warn!(
                "paging is on but there is no [[trunks]] entry, [registrar] or [texts]: only people whose contact is a SIP URI \
                 can be phoned; the others' notifications fail and the escalation moves on (see docs/configuration.md)"
            );
        }
        let (tx, rx) = (paging_events_tx, paging_events_rx);
        let hold = hold_room::HoldRoom::default();
        // One paging task per organization (issue 17), each with its own escalations.
        let paging = escalations::Paging {
            store: store.clone(),
            org: org.id,
            config: cfg.paging.clone(),
            dialer,
            controller: command_tx,
            owner: cfg.instance.id(),
            recordings_root: recordings_dir.clone(),
            archive: archive.clone(),
            texts: texts.clone(),
            speaker: Some(Arc::new(oncall_paging::speech::EspeakNg::default())),
        };
        tokio::spawn(oncall_paging::per_org::run(store.clone(), paging, rx));
        let link = PagingLink {
            events: tx.clone(),
            key_timeout: Duration::from_secs(cfg.paging.key_timeout_secs),
            max_retries: cfg.paging.max_retries,
            hold,
            max_hold: Duration::from_secs(cfg.paging.max_hold_secs),
        };
        (Some(tx), Some(link))
    } else {
        tracing::info!("paging disabled ([paging] enabled = false): requests are stored, nobody is phoned");
        drop(command_tx);
        (None, None)
    };
    let alert_events = paging_tx.clone();
    let log_task = tokio::spawn(call_log::run(store.clone(), cfg.instance.id(), recordings_dir.clone(), log_rx, paging_tx));

    let trunk_board: TrunkBoard = Default::default();
    let trunks = trunks::from_config(&cfg.trunks, &ua, trunk_board.clone()).with_links(bound.sender.clone(), trunk_addrs);
    // Issue 7 item 4: `oncall-<schedule>@` answered with a 302 to the on-call people's phones.
    let redirector = redirect::Redirector::start(&cfg.redirect, &cfg.trunks, registrar_handle.clone());
    if let Some(r) = &redirector {
        watch.watch(r.watched());
    }
    // Issue 17: the numbers organizations own (`oncall org number add`); none configured = every call is ours.
    let numbers = oncall_calls::numbers::NumberBook::load(&store, org.id, &cfg.trunks).await.context("reading the organizations' numbers")?;
    watch.watch(numbers.watched());
    watch.spawn();
    let redirect_counters = redirector.as_ref().map(|r| r.counters.clone());
    let controller = Controller {
        ua,
        sender: bound.sender.clone(),
        engine: engine.clone(),
        ports: RtpPorts::new(advertise_ip, cfg.sip.rtp_port_min, cfg.sip.rtp_port_max),
        media_ip: advertise_ip,
        book: oncall_calls::CallBook::new(oncall_calls::Settings {
            answer_after: Duration::from_millis(cfg.sip.answer_after_ms),
            max_calls: cfg.sip.max_calls,
            drain: Duration::from_secs(cfg.sip.shutdown_drain_secs),
        })
        .with_source_gate(oncall_calls::controller::source_gate(oncall_sip::admission::Admission::new(
            oncall_sip::admission::AdmissionConfig {
                // The book keeps the call ceiling: the bucket only rates sources.
                max_calls: 0,
                per_source_rate: cfg.sip.calls_per_second_per_source,
                per_source_burst: cfg.sip.call_burst_per_source,
                trusted_rate: cfg.sip.trusted_calls_per_second_per_source,
            },
        ))),
        tenants,
        recordings_dir,
        log: log_tx,
        counters: counters.clone(),
        trunks,
        paging: paging_link,
        registrar,
        texts: sip_texts,
        redirect: redirector,
        numbers,
        max_media_load: cfg.sip.max_media_load,
        media_overloaded: false,
        browsers: Some(browser_desk.clone()),
        from_tabs: Some(from_tabs),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let controller_hold = controller.paging.as_ref().map(|p| p.hold.clone());
    let control = tokio::spawn(controller.run(in_rx, command_rx, stop_rx));
    // Webhooks (issue 7): sent from the database's delivery queue, safe to run on every instance.
    let webhook_task = cfg.webhooks.enabled.then(|| tokio::spawn(webhooks::Sender { store: store.clone(), config: cfg.webhooks.clone() }.run(stop_tx.subscribe())));

    // Playback, downloads and transcription read the spool while the file is there, else the archive (S3 with
    // `keep_spool = false` deletes the spool copy once uploaded; in a cluster it may be on another instance).
    let recordings = Arc::new(oncall_recordings::access::SpoolThenArchive::new(&cfg.storage.recordings_dir(), archive.clone()));
    // Transcription (issue 23): off the media threads, from the store's queue; paging never waits for it.
    let transcription_task = match oncall_transcribe::engine(&cfg.transcription, &cfg.storage.data_dir).map_err(|e| anyhow::anyhow!("{e}"))? {
        Some(engine) => {
            let worker = oncall_transcribe::worker::Worker {
                store: store.clone(),
                recordings: recordings.clone(),
                engine,
                config: cfg.transcription.clone(),
                owner: cfg.instance.id(),
            };
            Some(tokio::spawn(Arc::new(worker).run(stop_tx.subscribe())))
        }
        None => {
            tracing::info!(engine = %cfg.transcription.engine, "transcription off (install pocketsphinx and pocketsphinx-en-us, or set [transcription] engine)");
            None
        }
    };

    // Paging health (issue 18 item 5): the dashboard and the People page say whom paging cannot reach now.
    let reach = oncall_paging::reachability::PagingReach::new(&cfg.paging, &cfg.texts, cfg.trunks.first().map(|t| t.name.as_str()), registrar_handle.clone(), store.dial_plan().clone());
    let store_gauges = Arc::new(store_gauges::StoreGauges::new(cfg.storage.data_dir.clone()));
    store_gauges.refresh(&store).await;
    tokio::spawn(store_gauges.clone().run(store.clone(), stop_tx.subscribe()));
    let status = Arc::new(Status { ready: AtomicBool::new(false), counters, engine, trunks: trunk_board, registrar: registrar_handle, hold: controller_hold, redirects: redirect_counters, instance: cfg.instance.id(), store_gauges: store_gauges.clone(), browsers: browser_desk.clone() });
    let listener = oncall_web::server::bind(cfg.http.listen).context("binding http.listen")?;
    let http_addr = listener.local_addr()?;
    let mut web = oncall_web::WebConfig::new(cfg.storage.data_dir.clone());
    web.default_ivr = cfg.ivr.clone();
    web.webhook_destinations = cfg.webhooks.destination_policy();
    web.prompts = Arc::new(prompts_for_web);
    web.force_secure_cookies = cfg.http.secure_cookies;
    web.trusted_proxies = cfg.http.trusted_proxies()?;
    web.reachability = Arc::new(reach);
    web.metrics_access = cfg.http.metrics_access();
    web.max_body_bytes = cfg.http.max_body_bytes;
    web.max_upload_bytes = cfg.http.max_upload_bytes;
    // Alerts from monitoring and API requests (issue 20): always received (and stored); paged when paging is on.
    let alert_pager = alert_events.map(|tx| Arc::new(oncall_paging::alert_pages::AlertPages(tx)) as Arc<dyn oncall_web::alerts::AlertPager>);
    let hooks = oncall_web::Hooks { org_files: Some(Arc::new(org_command::RecordingsRemover(cfg.storage.clone()))), pager: alert_pager.clone(), browsers: Some(browser_desk.clone()) };
    let mut app = oncall_web::app(status.clone(), store.clone(), web, recordings, hooks);
    app = app.merge(oncall_web::alerts::routes(store.clone(), alert_pager.clone()));
    tokio::spawn(oncall_paging::heartbeats::run(store.clone(), alert_pager.clone()));
    if cfg.email.enabled {
        let listener = tokio::net::TcpListener::bind(&cfg.email.listen).await.with_context(|| format!("binding email.listen {}", cfg.email.listen))?;
        tracing::info!(listen = %cfg.email.listen, domain = %cfg.email.domain, "alerts by e-mail: mail to <integration key>@{}", cfg.email.domain);
        tokio::spawn(oncall_paging::mail::serve(listener, cfg.email.domain.trim().to_string(), store.clone(), alert_pager));
    }
    if let Some(t) = &texts {
        app = app.merge(oncall_web::text_inbound::routes(Arc::new(texts::WebInbound(t.clone())), texts::inbound_auth(&cfg.texts, cfg.http.public_url.as_deref()), texts::inbound_throttle(&cfg.texts)));
    }
    let app = app.layer(axum::extract::DefaultBodyLimit::max(cfg.http.max_body_bytes));
    let http = oncall_web::server::HttpServer::start(listener, app, http_limits(&cfg)).context("starting the HTTP server")?;
    status.ready.store(true, Ordering::Relaxed);
    tracing::info!(sip_udp = %bound.udp_addr, sip_tcp = %bound.tcp_addr, http = %http_addr, organization = %org.name, "listening");
    eprintln!("OnCall is answering sip:100@{} (UDP and TCP) — admin on http://{}", bound.udp_addr, http_addr);

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = control.await;
    // The controller has ended; its log sender is dropped, so the log task finishes once the last
    // recordings (closed on their own thread) and call rows are written.
    if tokio::time::timeout(Duration::from_secs(10), log_task).await.is_err() {
        tracing::warn!("call log did not finish writing within 10 s");
    }
    if let Some(task) = transcription_task {
        // A job in progress is cut; its lease expires and it is taken again at the next start.
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    if let Some(task) = webhook_task {
        let _ = tokio::time::timeout(Duration::from_secs(cfg.webhooks.timeout_secs + 5), task).await;
    }
    uploader.shutdown().await;
    // HTTP served through the drain (health checks, people acknowledging); now let requests in flight finish.
    http.shutdown(Duration::from_secs(5)).await;
    store.close().await;
    Ok(())
}

/// `[http]` limits, with the connection cap taken from what the open-file limit leaves after SIP and RTP.
fn http_limits(cfg: &Config) -> oncall_web::server::ServerLimits {
    let limit = rlimit::Resource::NOFILE.get().map(|(soft, _)| soft).unwrap_or(1024);
    let sip = oncall_web::fd_budget::SipNeeds::from_ports(cfg.sip.rtp_port_min, cfg.sip.rtp_port_max, cfg.sip.max_calls, cfg.sip.max_tcp_connections);
    let b = oncall_web::fd_budget::plan(limit, sip, cfg.http.max_connections as u64);
    tracing::info!(open_files = b.limit, sip_rtp_reserve = b.sip_reserve, http_connections = b.http_connections, "file descriptor budget");
    if b.short {
        tracing::warn!(
            open_files = b.limit,
            sip_rtp_reserve = b.sip_reserve,
            "the open-file limit is below what [sip] may need at full load (RTP range, max_calls, max_tcp_connections): raise LimitNOFILE or narrow the RTP range"
        );
    }
    if b.clamped {
        tracing::warn!(configured = cfg.http.max_connections, used = b.http_connections, "http.max_connections cut to what the open-file limit leaves after SIP and RTP");
    }
    oncall_web::server::ServerLimits {
        max_connections: b.http_connections as usize,
        header_read_timeout: Duration::from_secs(cfg.http.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(cfg.http.idle_timeout_secs),
        request_timeout: Duration::from_secs(cfg.http.request_timeout_secs),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `oncall person sip-account`: stores the digest keys of `password` for the configured realm.
async fn sip_account_command(cfg: &Config, org: Option<&str>, person: &str, username: &str, password: &str) -> Result<()> {
    use oncall_sip::registrar::AccountKeys;
    if password.len() < 8 {
        bail!("--password must be at least 8 characters (phones are scanned for weak SIP passwords)");
    }
    let store = open_store(cfg).await?;
    let org = target_org(&store, org).await?;
    let id = person_arg(&store, org.id, person).await?;
    let realm = &cfg.registrar.realm;
    let keys = AccountKeys::from_password(username, realm, password);
    let account = oncall_core::store::NewSipAccount { username, realm, ha1_md5: &keys.ha1_md5, ha1_sha256: &keys.ha1_sha256 };
    store.set_sip_account(org.id, id, &account, Timestamp::now()).await?;
    println!("SIP account {username} set for person {} (realm {realm})", id.0);
    if !cfg.registrar.enabled {
        println!("note: [registrar] enabled = false; enable it so phones can register");
    }
    Ok(())
}

/// A person named on the command line by e-mail or id.
async fn person_arg(store: &Store, org: oncall_core::OrgId, person: &str) -> Result<oncall_core::PersonId> {
    match person.parse::<i64>() {
        Ok(n) => Ok(store.person(org, oncall_core::PersonId(n)).await.map(|p| p.id).with_context(|| format!("person {person}"))?),
        Err(_) => match store.person_by_email(org, person).await? {
            Some(id) => Ok(id),
            None => bail!("person {person:?}: nobody has that e-mail"),
        },
    }
}

/// `oncall person sip-devices`: one line per registered phone.
async fn sip_devices_command(cfg: &Config, org: Option<&str>, person: &str) -> Result<()> {
    let store = open_store(cfg).await?;
    let org = target_org(&store, org).await?;
    let id = person_arg(&store, org.id, person).await?;
    for b in store.sip_bindings_of(org.id, id, Timestamp::now()).await? {
        println!("{}  {}  {}/{}  until {}", b.username, b.contact, b.source_addr, b.transport, b.expires_at.to_utc().format("%F %T"));
    }
    Ok(())
}

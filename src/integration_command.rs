//! `oncall integration …`: a manager's integration keys for monitoring (issue 20), in the organization `--org`
//! names: each key lets one tool (Alertmanager, Grafana, an Events API v2 sender, a script) open requests.

use anyhow::{Context, Result};
use clap::Subcommand;
use oncall_core::{Organization, Store, Timestamp};

#[derive(Subcommand)]
pub enum IntegrationCommand {
    /// Create a key; prints it once with the URLs to paste into the tool.
    Add {
        /// What sends with it: "Alertmanager", "Grafana", "backup job".
        #[arg(long)]
        name: String,
        /// The escalation policy (name or id) its alerts page with; default: the first enabled one.
        #[arg(long)]
        policy: Option<String>,
        /// Make it a heartbeat monitor: the job must hit /api/v1/heartbeat with the key at least this often
        /// (seconds), else a request opens (and the next beat resolves it).
        #[arg(long)]
        heartbeat_secs: Option<i64>,
        /// `urgent` pages at once (the default); `normal` alerts opened after business hours page when they start.
        #[arg(long, default_value = "urgent")]
        urgency: String,
    },
    /// List the keys (their first characters, never the secret).
    List,
    /// Revoke a key: its tool gets 403 from then on.
    Revoke { id: i64 },
}

pub async fn run(store: &Store, org: &Organization, base_url: &str, command: IntegrationCommand) -> Result<()> {
    let now = Timestamp::now();
    match command {
        IntegrationCommand::Add { name, policy, heartbeat_secs, urgency } => {
            let normal = match urgency.as_str() {
                "urgent" => false,
                "normal" => true,
                other => anyhow::bail!("--urgency must be urgent or normal, not {other:?}"),
            };
            let policy = match policy {
                Some(p) => {
                    let policies = store.list_policies(org.id).await?;
                    let found = policies.iter().find(|x| x.name.eq_ignore_ascii_case(&p) || x.id.0.to_string() == p);
                    Some(found.map(|x| x.id).with_context(|| format!("--policy {p}: no such escalation policy in {}", org.slug))?)
                }
                None => None,
            };
            let (integration, secret) = store.create_monitor(org.id, &name, policy, heartbeat_secs, now).await?;
            if normal {
                store.set_integration_urgency(org.id, integration.id, true).await?;
            }
            println!("integration {} ({}) for {}: key {secret}", integration.id, integration.name, org.slug);
            if let Some(secs) = heartbeat_secs {
                println!("  heartbeat: the job runs `curl -fsS -X POST -H 'Authorization: Bearer <key>' {base_url}/api/v1/heartbeat` at least every {secs} s");
            }
            println!("  Alertmanager webhook_configs url: {base_url}/api/v1/alerts/alertmanager (http_config.authorization.credentials: the key)");
            println!("  Events API v2 (PagerDuty-compatible): POST {base_url}/v2/enqueue with routing_key = the key");
            println!("  generic JSON: POST {base_url}/api/v1/alerts with Authorization: Bearer <key>");
            println!("the key is shown only now");
        }
        IntegrationCommand::List => {
            for i in store.list_integrations(org.id).await? {
                let state = if i.revoked_at.is_some() { "revoked" } else { "active" };
                let beat = i.heartbeat_secs.map(|s| format!("  heartbeat every {s} s")).unwrap_or_default();
                println!("{:<4} {:<24} {}…  {state}  {}{beat}", i.id, i.name, i.prefix, i.urgency);
            }
        }
        IntegrationCommand::Revoke { id } => {
            store.revoke_integration(org.id, id, now).await?;
            println!("integration {id} revoked");
        }
    }
    Ok(())
}

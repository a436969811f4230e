//! An organization's business hours as the call controller sees them: read from the store by the
//! settings watch, before the first call and every few seconds after (so an edit on the web reaches the next call without a restart), and the
//! config file's `[business_hours]` written to the store once, when the organization has none yet.
//!
//! The controller asks one synchronous question per call, [`HoursSource::closed_until`]: is the
//! organization closed now, and if so at what local time does it open again (for "we will call you back
//! after eight A M"). The paging task reads the store itself when it decides to defer a request.

use crate::config::BusinessHoursConfig;
use anyhow::Result;
use chrono::Timelike;
use oncall_core::{BusinessHours, OrgId, Store, Timestamp};
use crate::settings_watch::Watched;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

#[derive(Clone, Default)]
pub struct HoursSource {
    current: Arc<RwLock<Option<BusinessHours>>>,
}

impl HoursSource {
    fn set(&self, hours: Option<BusinessHours>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = hours;
    }

    /// `None` when open at `now` (or no business hours: always open); otherwise the local hour and minute
    /// of the next opening. A week that never opens again counts as open (normal requests page at once).
    pub fn closed_until(&self, now: Timestamp) -> Option<(u32, u32)> {
        let g = self.current.read().unwrap_or_else(|p| p.into_inner());
        let hours = g.as_ref()?;
        let opens = hours.next_opening(now).filter(|t| *t > now)?;
        let local = hours.local(opens);
        Some((local.hour(), local.minute()))
    }

    /// Writes `[business_hours]` to the store when the organization has no business hours yet (the web
    /// page's later edits win); the settings watch then loads what the store holds.
    pub async fn seed(store: &Store, org: OrgId, org_zone: &str, cfg: &BusinessHoursConfig) -> Result<()> {
        let stored = store.business_hours(org).await?;
        match (stored.is_some(), cfg.hours(org_zone)?) {
            (false, Some(hours)) => {
                store
                    .set_business_hours(org, &hours, &Default::default(), Timestamp::now())
                    .await?;
                tracing::info!(time_zone = %hours.time_zone, "business hours from [business_hours] saved for the organization");
            }
            (true, Some(_)) => {
                tracing::info!("business hours already set (on the web): [business_hours] in the config is ignored")
            }
            _ => {}
        }
        Ok(())
    }

    /// The copy the settings watch keeps fresh.
    pub fn watched(&self, org: OrgId) -> HoursWatch {
        HoursWatch { target: self.clone(), org, seen: None }
    }
}

/// Re-reads the organization's business hours; swaps them in when their stamp changed.
pub struct HoursWatch {
    target: HoursSource,
    org: OrgId,
    seen: Option<Timestamp>,
}

impl Watched for HoursWatch {
    fn reload<'a>(&'a mut self, store: &'a Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            match store.business_hours(self.org).await {
                Ok(s) => {
                    let stamp = s.as_ref().map(|s| s.updated_at);
                    if stamp != self.seen {
                        self.seen = stamp;
                        self.target.set(s.map(|s| s.hours));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read business hours"),
            }
        })
    }
}

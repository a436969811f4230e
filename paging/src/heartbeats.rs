//! Heartbeat monitors (issue 20): every few seconds, each monitor whose beat is overdue (and whose missed beat
//! has no open request yet, `Store::overdue_heartbeats`) opens a request like an alert does, and it is paged.
//! The next beat (`POST /api/v1/heartbeat`) resolves it. Time is passed in, so [`check`] runs on a virtual clock
//! in tests.

use oncall_core::store::integrations::HEARTBEAT_KEY;
use oncall_core::store::AlertOutcome;
use oncall_core::{Millis, Store, Timestamp};
use oncall_web::alerts::AlertPager;
use std::sync::Arc;
use std::time::Duration;

/// How often the monitors are checked: a missed beat opens its request at most this late.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Checks the monitors at `now`; returns how many requests it opened.
pub async fn check(store: &Store, pager: Option<&dyn AlertPager>, now: Timestamp) -> usize {
    let overdue = match store.overdue_heartbeats(now).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the heartbeat monitors");
            return 0;
        }
    };
    let mut opened = 0;
    for monitor in overdue {
        let since = monitor.last_beat_at.unwrap_or(monitor.created_at);
        let summary = format!("No heartbeat from {} for {}", monitor.name, spoken_duration(Millis(now.0 - since.0)));
        match store.alert_trigger(&monitor, HEARTBEAT_KEY, &summary, now).await {
            Ok(AlertOutcome::Opened(request)) => {
                tracing::warn!(monitor = %monitor.name, org = %monitor.org, %request, "heartbeat missed: request opened");
                if let Some(p) = pager {
                    p.opened(request, monitor.name.clone());
                }
                opened += 1;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(monitor = %monitor.name, error = %e, "cannot open the missed heartbeat's request"),
        }
    }
    opened
}

/// "3 minutes", "1 hour", "45 seconds": how long a monitor has been silent, as the page call says it.
fn spoken_duration(d: Millis) -> String {
    let secs = (d.0 / 1000).max(0);
    let (n, unit) = match secs {
        s if s < 120 => (s, "second"),
        s if s < 2 * 3600 => (s / 60, "minute"),
        s => (s / 3600, "hour"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Checks every [`CHECK_EVERY`] for as long as the server runs.
pub async fn run(store: Store, pager: Option<Arc<dyn AlertPager>>) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        check(&store, pager.as_deref(), Timestamp::now()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_core::RequestId;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Paged(Mutex<Vec<(RequestId, String)>>);

    impl AlertPager for Paged {
        fn opened(&self, request: RequestId, caller: String) {
            self.0.lock().unwrap().push((request, caller));
        }
    }

    /// On a virtual clock: nothing before the interval, one page when it passes, none on later checks while
    /// the request is open, and the summary says how long the job has been silent.
    #[tokio::test]
    async fn a_missed_beat_pages_once() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let t0 = Timestamp(1_800_000_000_000);
        let org = store.create_organization("Ops", "ops", "UTC", t0).await.unwrap();
        store.create_monitor(org, "Nightly backup", None, Some(3600), t0).await.unwrap();
        let paged = Paged::default();
        assert_eq!(check(&store, Some(&paged), Timestamp(t0.0 + 3_599_000)).await, 0);
        assert_eq!(check(&store, Some(&paged), Timestamp(t0.0 + 3_600_000)).await, 1);
        assert_eq!(check(&store, Some(&paged), Timestamp(t0.0 + 7_200_000)).await, 0);
        let pages = paged.0.lock().unwrap().clone();
        assert_eq!(pages.len(), 1);
        let request = store.request(org, pages[0].0).await.unwrap();
        assert_eq!((pages[0].1.as_str(), request.summary.as_str()), ("Nightly backup", "No heartbeat from Nightly backup for 60 minutes"));
    }
}

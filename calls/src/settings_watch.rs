//! One background task keeps the calls side's copies of what managers edit on the web fresh: the IVR
//! menu and greeting ([`crate::ivr_settings`]), business hours ([`crate::opening_hours`]), schedules and
//! people for the redirect target ([`crate::redirect`]), and SIP accounts ([`crate::phones`]). The
//! call path reads those copies (no database query per INVITE); this task re-reads the store every
//! [`RELOAD_EVERY`]. (The registrar service also re-reads the SIP accounts at once when a phone answers
//! for an account its copy lacks: `phones::reload_on_demand`, which reads only the accounts.)
//!
//! Each copy is a [`Watched`]: it reads what it needs and swaps its snapshot in, keeping the
//! previous one when the store cannot be read.

use oncall_core::Store;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How often the store is re-read (another instance's edits, or the command line's, are seen this late
/// at most).
pub const RELOAD_EVERY: Duration = Duration::from_secs(3);

/// A copy of some settings the call path reads.
pub trait Watched: Send + 'static {
    /// Re-reads the store and swaps the copy in; logs (and keeps the old copy) on error.
    fn reload<'a>(&'a mut self, store: &'a Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

pub struct SettingsWatch {
    store: Store,
    watched: Vec<Box<dyn Watched>>,
}

impl SettingsWatch {
    pub fn new(store: Store) -> SettingsWatch {
        SettingsWatch { store, watched: Vec::new() }
    }

    pub fn watch(&mut self, w: impl Watched) {
        self.watched.push(Box::new(w));
    }

    /// Runs until the process ends; the first pass is at once.
    pub fn spawn(mut self) {
        tokio::spawn(async move {
            loop {
                for w in &mut self.watched {
                    w.reload(&self.store).await;
                }
                tokio::time::sleep(RELOAD_EVERY).await;
            }
        });
    }
}

//! One background task keeps the calls side's copies of what managers edit on the web fresh: the IVR
//! menu and greeting ([`crate::ivr_settings`]), business hours ([`crate::opening_hours`]), schedules and
//! people for the redirect target ([`crate::redirect`]), and SIP accounts ([`crate::phones`]). The
//! call path reads those copies (no database query per INVITE); this task re-reads the store every
//! [`RELOAD_EVERY`], and at once when [`SettingsWatch::reload_now`] is poked.
//!
//! Each copy is a [`Watched`]: it reads what it needs and swaps its snapshot in, keeping the
//! previous one when the store cannot be read.

use oncall_core::Store;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often the store is re-read when nothing pokes the watch (another instance's edits, or the
/// command line's, are seen this late at most).
pub const RELOAD_EVERY: Duration = Duration::from_secs(3);

/// A copy of some settings the call path reads.
pub trait Watched: Send + 'static {
    /// Re-reads the store and swaps the copy in; logs (and keeps the old copy) on error.
    fn reload<'a>(&'a mut self, store: &'a Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

pub struct SettingsWatch {
    store: Store,
    watched: Vec<Box<dyn Watched>>,
    poke: Arc<Notify>,
}

impl SettingsWatch {
    pub fn new(store: Store) -> SettingsWatch {
        SettingsWatch { store, watched: Vec::new(), poke: Arc::new(Notify::new()) }
    }

    pub fn watch(&mut self, w: impl Watched) {
        self.watched.push(Box::new(w));
    }

    /// Reloads every copy as soon as possible (after a change made in this process).
    pub fn reload_now(&self) -> Arc<Notify> {
        self.poke.clone()
    }

    /// Runs until the process ends; the first pass is at once.
    pub fn spawn(mut self) {
        tokio::spawn(async move {
            loop {
                for w in &mut self.watched {
                    w.reload(&self.store).await;
                }
                tokio::select! {
                    _ = tokio::time::sleep(RELOAD_EVERY) => {}
                    _ = self.poke.notified() => {}
                }
            }
        });
    }
}

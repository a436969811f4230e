//! The browser tabs where employees take pages (issue 19): who is available in a browser now, and the messages
//! between a tab's WebSocket (web-admin) and the call controller (calls). The site opens a tab for a logged-in
//! person (their identity is the session's, never the tab's word), paging rings the person's tabs with their
//! phones, and the controller answers the tab's WebRTC offer and carries its keys. Nothing here does IO: two
//! channels, and the table of open tabs.

use crate::{OrgId, PersonId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// One open tab: one WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TabId(pub u64);

/// What the server tells a tab, as JSON (`{"type": "ring", ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToTab {
    /// The WebSocket is set up: the tab takes pages for `name`.
    Ready { name: String },
    /// A page rings this tab; `leg` names it in what the tab sends back.
    Ring { leg: u64, caller: String, organization: String, message_secs: u32 },
    /// The server's WebRTC answer to the tab's offer for `leg`.
    Answer { leg: u64, sdp: String },
    /// The leg is over (answered elsewhere, the page ended, the call hung up), with why, for the person.
    Ended { leg: u64, reason: String },
}

/// What a tab tells the server, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromTab {
    /// The person answered the ring: their browser's WebRTC offer.
    Accept { leg: u64, offer: String },
    /// A key pressed on the page call (a button or the keyboard): `0`-`9`, `*`, `#`.
    Key { leg: u64, key: char },
    /// Declined while ringing, or hung up.
    HangUp { leg: u64 },
    /// The WebSocket closed (the tab closed, reloaded or lost the network): sent by the desk, never by a tab.
    #[serde(skip)]
    Closed,
}

struct Tab {
    org: OrgId,
    person: PersonId,
    out: mpsc::UnboundedSender<ToTab>,
}

#[derive(Default)]
struct Tabs {
    open: HashMap<TabId, Tab>,
    next: u64,
}

/// The open tabs, shared by the site and the calls side. Cheap to clone.
#[derive(Clone)]
pub struct BrowserDesk {
    tabs: Arc<Mutex<Tabs>>,
    to_calls: mpsc::UnboundedSender<(TabId, FromTab)>,
}

impl BrowserDesk {
    /// The desk, and the receiver of what tabs say, for the call controller.
    pub fn new() -> (BrowserDesk, mpsc::UnboundedReceiver<(TabId, FromTab)>) {
        let (to_calls, from_tabs) = mpsc::unbounded_channel();
        (BrowserDesk { tabs: Arc::default(), to_calls }, from_tabs)
    }

    fn tabs(&self) -> std::sync::MutexGuard<'_, Tabs> {
        self.tabs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A tab for `person` of `org` (proven by the site's session), and what the server will tell it.
    pub fn open(&self, org: OrgId, person: PersonId) -> (TabId, mpsc::UnboundedReceiver<ToTab>) {
        let (out, rx) = mpsc::unbounded_channel();
        let mut tabs = self.tabs();
        tabs.next += 1;
        let id = TabId(tabs.next);
        tabs.open.insert(id, Tab { org, person, out });
        (id, rx)
    }

    /// The tab's WebSocket closed: it rings no more, and its calls end.
    pub fn close(&self, tab: TabId) {
        if self.tabs().open.remove(&tab).is_some() {
            let _ = self.to_calls.send((tab, FromTab::Closed));
        }
    }

    /// What the tab said, for the controller (a tab already closed says nothing more).
    pub fn from_tab(&self, tab: TabId, msg: FromTab) {
        if self.tabs().open.contains_key(&tab) {
            let _ = self.to_calls.send((tab, msg));
        }
    }

    /// Tells the tab `msg`; false when it is closed.
    pub fn send(&self, tab: TabId, msg: ToTab) -> bool {
        self.tabs().open.get(&tab).is_some_and(|t| t.out.send(msg).is_ok())
    }

    /// The tabs `person` of `org` has open now, oldest first.
    pub fn tabs_of(&self, org: OrgId, person: PersonId) -> Vec<TabId> {
        let mut ids: Vec<TabId> = self.tabs().open.iter().filter(|(_, t)| t.org == org && t.person == person).map(|(id, _)| *id).collect();
        ids.sort_by_key(|t| t.0);
        ids
    }

    /// The person a tab belongs to.
    pub fn owner(&self, tab: TabId) -> Option<(OrgId, PersonId)> {
        self.tabs().open.get(&tab).map(|t| (t.org, t.person))
    }

    /// Open tabs, for `/metrics`.
    pub fn open_tabs(&self) -> usize {
        self.tabs().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tab_rings_for_its_person_only_and_closing_it_reaches_the_calls_side() {
        let (desk, mut calls) = BrowserDesk::new();
        let (erin, frank) = (PersonId(1), PersonId(2));
        let (tab, mut rx) = desk.open(OrgId(1), erin);
        assert_eq!(desk.tabs_of(OrgId(1), erin), vec![tab]);
        assert!(desk.tabs_of(OrgId(1), frank).is_empty());
        assert!(desk.tabs_of(OrgId(2), erin).is_empty(), "another organization's person with the same id");
        assert!(desk.send(tab, ToTab::Ended { leg: 1, reason: "x".into() }));
        assert!(rx.try_recv().is_ok());
        desk.from_tab(tab, FromTab::HangUp { leg: 1 });
        desk.close(tab);
        desk.from_tab(tab, FromTab::HangUp { leg: 2 });
        assert_eq!(calls.try_recv().unwrap(), (tab, FromTab::HangUp { leg: 1 }));
        assert_eq!(calls.try_recv().unwrap(), (tab, FromTab::Closed));
        assert!(calls.try_recv().is_err(), "a closed tab says nothing more");
        assert!(!desk.send(tab, ToTab::Ended { leg: 1, reason: "x".into() }));
    }

    #[test]
    fn messages_are_json_with_a_type() {
        let ring = ToTab::Ring { leg: 7, caller: "+1555".into(), organization: "Demo".into(), message_secs: 4 };
        assert_eq!(serde_json::to_string(&ring).unwrap(), r#"{"type":"ring","leg":7,"caller":"+1555","organization":"Demo","message_secs":4}"#);
        let key: FromTab = serde_json::from_str(r#"{"type":"key","leg":7,"key":"1"}"#).unwrap();
        assert_eq!(key, FromTab::Key { leg: 7, key: '1' });
        assert!(serde_json::from_str::<FromTab>(r#"{"type":"closed"}"#).is_err(), "a tab cannot say it closed");
    }
}

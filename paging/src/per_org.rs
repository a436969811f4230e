//! One paging task per organization (issue 17): each runs its own escalations against its own
//! schedules and policies, claims its own orphaned escalations and due deferred requests, and
//! never reads another organization's rows ([`Paging`] asks the store with its `org`).
//!
//! The call side and the text handlers send [`PagingEvent`]s on one channel; every event names a
//! request, and the request's organization (read once from the store, then kept) says which task
//! it goes to. A task is started for every organization at start-up (so each resumes its own
//! escalations after a restart) and for one created later on its first event.

use crate::escalations::Paging;
use oncall_calls::orders::PagingEvent;
use oncall_core::store::Organization;
use oncall_core::{OrgId, RequestId, Store};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// How many request → organization answers are kept (requests far older are rarely paged again,
/// and a miss costs one indexed read).
const KEEP: usize = 10_000;

fn request_of(ev: &PagingEvent) -> RequestId {
    match ev {
        PagingEvent::RequestOpened { request, .. } | PagingEvent::TextReply { request, .. } => *request,
        PagingEvent::CallResult { key, .. } => key.request,
    }
}

struct Router {
    store: Store,
    /// Every organization's task is this one with its `org` changed.
    template: Paging,
    tasks: HashMap<OrgId, mpsc::UnboundedSender<PagingEvent>>,
    org_of: HashMap<RequestId, OrgId>,
}

impl Router {
    /// Starts `org`'s task: the template with its `org`, and a dialer with the organization's own trunks.
    fn spawn(&mut self, org: &Organization) -> mpsc::UnboundedSender<PagingEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let paging = Paging { org: org.id, dialer: self.template.dialer.for_org(&org.slug), ..self.template.clone() };
        tokio::spawn(paging.run(rx));
        self.tasks.insert(org.id, tx.clone());
        tx
    }

    /// `org`'s task, started on its first event when the organization was created after start-up.
    async fn task(&mut self, org: OrgId) -> Option<mpsc::UnboundedSender<PagingEvent>> {
        if let Some(tx) = self.tasks.get(&org) {
            return Some(tx.clone());
        }
        match self.store.organization(org).await {
            Ok(o) => Some(self.spawn(&o)),
            Err(e) => {
                tracing::error!(%org, error = %e, "cannot read the organization to start its paging; event dropped");
                None
            }
        }
    }

    async fn org_of(&mut self, request: RequestId) -> Option<OrgId> {
        if let Some(org) = self.org_of.get(&request) {
            return Some(*org);
        }
        match self.store.organization_of_request(request).await {
            Ok(Some(org)) => {
                if self.org_of.len() >= KEEP {
                    self.org_of.clear();
                }
                self.org_of.insert(request, org);
                Some(org)
            }
            Ok(None) => {
                tracing::warn!(request = %request, "a paging event for a request that no longer exists is dropped");
                None
            }
            Err(e) => {
                tracing::error!(request = %request, error = %e, "cannot tell which organization a paging event is for; dropped");
                None
            }
        }
    }
}

/// Starts a paging task for each organization now (`template` with its `org` and dialer changed), then hands
/// each event to its request's organization's task until `events` closes.
pub async fn run(store: Store, template: Paging, mut events: mpsc::UnboundedReceiver<PagingEvent>) {
    let mut router = Router { store: store.clone(), template, tasks: HashMap::new(), org_of: HashMap::new() };
    match store.list_organizations().await {
        Ok(orgs) => {
            for org in &orgs {
                router.spawn(org);
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list the organizations: their paging starts with their next request"),
    }
    while let Some(ev) = events.recv().await {
        let Some(org) = router.org_of(request_of(&ev)).await else { continue };
        if let Some(task) = router.task(org).await {
            let _ = task.send(ev);
        }
    }
}

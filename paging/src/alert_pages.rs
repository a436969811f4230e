//! Requests opened by alerts (issue 20, `oncall_web::alerts`) start paging like a call's: the receiver hands
//! the request to the paging tasks, whose page call speaks the alert's summary (`speech.rs`).

use oncall_calls::orders::PagingEvent;
use oncall_core::RequestId;
use std::path::PathBuf;
use tokio::sync::mpsc;

pub struct AlertPages(pub mpsc::UnboundedSender<PagingEvent>);

impl oncall_web::alerts::AlertPager for AlertPages {
    fn opened(&self, request: RequestId, caller: String) {
        // No recording: the escalation speaks the summary instead.
        let _ = self.0.send(PagingEvent::RequestOpened { request, caller, recording: PathBuf::new(), caller_call: None });
    }
}

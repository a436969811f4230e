//! Writes what happens to calls into the store, in order, off the signalling path: the controller
//! sends events on a channel and this task turns them into rows (calls, requests, recordings).
//! A "page on-call" request, once its message is stored, is handed to the paging task (when on).

use crate::ivr_session::SessionEvent;
use crate::paging::PagingEvent;
use oncall_core::request::NewRecording;
use oncall_core::store::NewCall;
use oncall_core::{CallRowId, OrgId, Store, Timestamp};
use oncall_ivr::RequestKind;
use oncall_sip::ua::CallRef;
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum CallLogEvent {
    Received { call: CallRef, call_id: String, caller: String, called: String, at: Timestamp },
    Answered { call: CallRef, at: Timestamp },
    /// The call ended without media (cancelled, rejected).
    EndedEarly { call: CallRef, at: Timestamp },
    Session(SessionEvent),
}

struct Row {
    id: CallRowId,
    recording: Option<(String, i64)>,
}

pub async fn run(
    store: Store,
    org: OrgId,
    recordings_root: PathBuf,
    mut rx: mpsc::UnboundedReceiver<CallLogEvent>,
    paging: Option<mpsc::UnboundedSender<PagingEvent>>,
) {
    let mut rows: HashMap<CallRef, Row> = HashMap::new();
    while let Some(ev) = rx.recv().await {
        let result = match ev {
            CallLogEvent::Received { call, call_id, caller, called, at } => {
                let new = NewCall { org, call_id, caller, called, received_at: at };
                store.insert_call(&new).await.map(|id| {
                    rows.insert(call, Row { id, recording: None });
                })
            }
            CallLogEvent::Answered { call, at } => match rows.get(&call) {
                Some(r) => store.call_answered(org, r.id, at).await,
                None => Ok(()),
            },
            CallLogEvent::EndedEarly { call, at } => match rows.remove(&call) {
                Some(r) => store.call_ended(org, r.id, at, "", None, None).await,
                None => Ok(()),
            },
            CallLogEvent::Session(SessionEvent::MessageRecorded { call, kind, info }) => {
                let Some(row) = rows.get_mut(&call) else { continue };
                let key = info.path.strip_prefix(&recordings_root).unwrap_or(&info.path).to_string_lossy().into_owned();
                row.recording = Some((info.path.to_string_lossy().into_owned(), info.duration_ms as i64));
                let at = Timestamp::now();
                let caller = store.call(org, row.id).await.map(|c| c.caller).unwrap_or_default();
                let request = store.create_request_for_call(org, row.id, &caller, at).await;
                let request = match request {
                    Ok(r) => {
                        tracing::info!(call = call.0, request = %r, kind = ?kind, "request opened");
                        Some(r)
                    }
                    Err(e) => {
                        tracing::error!(call = call.0, error = %e, "cannot open request");
                        None
                    }
                };
                let rec = NewRecording {
                    request,
                    kind: match kind {
                        RequestKind::Page | RequestKind::Message => "message".into(),
                    },
                    storage_key: key,
                    duration_ms: info.duration_ms as i64,
                    peak: info.peak as f64,
                    rms: info.rms as f64,
                    created_at: at,
                };
                let added = store.add_recording(org, &rec).await.map(drop);
                // Paged only once the message is stored: the employee hears it.
                if let (Some(paging), Some(request), RequestKind::Page) = (&paging, request, kind) {
                    let _ = paging.send(PagingEvent::RequestOpened { request, caller, recording: info.path.clone(), caller_call: Some(call) });
                }
                added
            }
            CallLogEvent::Session(SessionEvent::Finished { call, digits }) => match rows.remove(&call) {
                Some(r) => {
                    let (path, dur) = r.recording.map_or((None, None), |(p, d)| (Some(p), Some(d)));
                    store.call_ended(org, r.id, Timestamp::now(), &digits, path.as_deref(), dur).await
                }
                None => Ok(()),
            },
            CallLogEvent::Session(SessionEvent::ConversationRecorded { request, info }) => {
                let key = info.path.strip_prefix(&recordings_root).unwrap_or(&info.path).to_string_lossy().into_owned();
                let rec = NewRecording {
                    request: Some(request),
                    kind: "conversation".into(),
                    storage_key: key,
                    duration_ms: info.duration_ms as i64,
                    peak: info.peak as f64,
                    rms: info.rms as f64,
                    created_at: Timestamp::now(),
                };
                store.add_recording(org, &rec).await.map(drop)
            }
            CallLogEvent::Session(_) => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "call log write failed");
        }
    }
}

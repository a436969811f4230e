//! Writes what happens to calls into the store, in order, off the signalling path: the controller
//! sends events on a channel and this task turns them into rows (calls, requests, recordings).
//! A "page on-call" request, once its message is stored, is handed to the paging task (when on).

use crate::ivr_session::SessionEvent;
use crate::orders::PagingEvent;
use oncall_core::request::{NewRecording, NewRequest, RecordingKind};
use oncall_core::store::NewCall;
use oncall_core::{CallRowId, OrgId, Store, Timestamp};
use oncall_ivr::RequestKind;
use oncall_sip::ua::CallRef;
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum CallLogEvent {
    Received { call: CallRef, org: OrgId, call_id: String, caller: String, called: String, at: Timestamp },
    Answered { call: CallRef, at: Timestamp },
    /// The call ended without media (cancelled, rejected).
    EndedEarly { call: CallRef, at: Timestamp },
    Session(SessionEvent),
}

struct Row {
    id: CallRowId,
    org: OrgId,
    /// As written to the row: the request opened for the call names it without reading the row back.
    caller: String,
    recording: Option<(String, i64)>,
}

/// What the call row says a recording is for.
fn kind_name(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Page => "page",
        RequestKind::Message => "message",
        RequestKind::PageWhenOpen => "page_when_open",
    }
}

/// `instance` is this instance's `[instance] id`: its calls are tagged with it, and the calls a crash left open
/// under it are closed first, in every organization (see [`recover_cut_calls`]). Each call's rows are
/// written to the organization its number routed it to.
pub async fn run(
    store: Store,
    instance: String,
    recordings_root: PathBuf,
    mut rx: mpsc::UnboundedReceiver<CallLogEvent>,
    paging: Option<mpsc::UnboundedSender<PagingEvent>>,
) {
    match store.list_organizations().await {
        Ok(orgs) => {
            for org in orgs {
                recover_cut_calls(&store, org.id, &instance, &recordings_root, paging.as_ref()).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list the organizations to close the calls a crash cut"),
    }
    let mut rows: HashMap<CallRef, Row> = HashMap::new();
    while let Some(ev) = rx.recv().await {
        let result = match ev {
            CallLogEvent::Received { call, org, call_id, caller, called, at } => {
                let new = NewCall { org, call_id, caller, called, received_at: at, instance: instance.clone() };
                store.insert_call(&new).await.map(|id| {
                    rows.insert(call, Row { id, org, caller: new.caller, recording: None });
                })
            }
            CallLogEvent::Answered { call, at } => match rows.get(&call) {
                Some(r) => store.call_answered(r.org, r.id, at).await,
                None => Ok(()),
            },
            CallLogEvent::EndedEarly { call, at } => match rows.remove(&call) {
                Some(r) => store.call_ended(r.org, r.id, at, "", None, None).await,
                None => Ok(()),
            },
            CallLogEvent::Session(SessionEvent::RecordingStarted { call, kind, path }) => match rows.get(&call) {
                Some(r) => store.call_recording_started(r.org, r.id, &path.to_string_lossy(), kind_name(kind)).await,
                None => Ok(()),
            },
            CallLogEvent::Session(SessionEvent::MessageRecorded { call, kind, info }) => {
                let Some(row) = rows.get_mut(&call) else { continue };
                let org = row.org;
                let key = info.path.strip_prefix(&recordings_root).unwrap_or(&info.path).to_string_lossy().into_owned();
                row.recording = Some((info.path.to_string_lossy().into_owned(), info.duration_ms as i64));
                let caller = row.caller.clone();
                let rec = NewRecording {
                    request: None,
                    kind: RecordingKind::Message,
                    storage_key: key,
                    duration_ms: info.duration_ms as i64,
                    peak: info.peak as f64,
                    rms: info.rms as f64,
                    created_at: Timestamp::now(),
                };
                let detail = format!("call taken by instance {instance}");
                let (request, added) = match store.open_request_with_message(org, &NewRequest::for_call(row.id, &caller), &detail, &rec).await {
                    Ok((r, _)) => {
                        tracing::info!(call = call.0, request = %r, kind = ?kind, "request opened");
                        (Some(r), Ok(()))
                    }
                    Err(e) => {
                        // The message is kept even without its request: a manager finds it among the recordings.
                        tracing::error!(call = call.0, error = %e, "cannot open request");
                        (None, store.add_recording(org, &rec).await.map(drop))
                    }
                };
                // Paged only once the message is stored: the employee hears it.
                if let (Some(paging), Some(request), RequestKind::Page | RequestKind::PageWhenOpen) = (&paging, request, kind) {
                    let _ = paging.send(PagingEvent::RequestOpened { request, caller, recording: info.path.clone(), caller_call: Some(call) });
                }
                added
            }
            CallLogEvent::Session(SessionEvent::Finished { call, digits }) => match rows.remove(&call) {
                Some(r) => {
                    let (path, dur) = r.recording.map_or((None, None), |(p, d)| (Some(p), Some(d)));
                    store.call_ended(r.org, r.id, Timestamp::now(), &digits, path.as_deref(), dur).await
                }
                None => Ok(()),
            },
            CallLogEvent::Session(SessionEvent::ConversationRecorded { request, info }) => {
                let org = match store.organization_of_request(request).await {
                    Ok(Some(org)) => org,
                    Ok(None) => {
                        tracing::warn!(request = %request, "a conversation was recorded for a request that no longer exists");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(request = %request, error = %e, "cannot file a recorded conversation");
                        continue;
                    }
                };
                let key = info.path.strip_prefix(&recordings_root).unwrap_or(&info.path).to_string_lossy().into_owned();
                let rec = NewRecording {
                    request: Some(request),
                    kind: RecordingKind::Conversation,
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

/// Start-up after a crash: the calls this instance was carrying when it died never ended. Each gets its end (the
/// last write to its recording, else when it came in); one whose caller had started a message gets the request that
/// message was for, with the recording attached (the uploader repaired the WAV and registered it, request-less,
/// before this runs), and a "page on-call" one is paged like any other. A caller cut mid-message loses nothing
/// that reached the disk.
async fn recover_cut_calls(
    store: &Store,
    org: OrgId,
    instance: &str,
    recordings_root: &std::path::Path,
    paging: Option<&mpsc::UnboundedSender<PagingEvent>>,
) {
    let calls = match store.open_calls_of(org, instance).await {
        Ok(c) => c,
        Err(e) => return tracing::error!(error = %e, "cannot look for calls cut by a crash"),
    };
    for call in calls {
        if let Err(e) = recover_cut_call(store, org, &call, recordings_root, paging).await {
            tracing::error!(call_row = call.id.0, error = %e, "cannot recover a call cut by a crash");
        }
    }
}

async fn recover_cut_call(
    store: &Store,
    org: OrgId,
    call: &oncall_core::store::Call,
    recordings_root: &std::path::Path,
    paging: Option<&mpsc::UnboundedSender<PagingEvent>>,
) -> oncall_core::store::Result<()> {
    let Some(path) = call.recording_path.as_deref().map(PathBuf::from) else {
        tracing::warn!(call_row = call.id.0, caller = %call.caller, "closing a call cut by a crash (no message recorded)");
        return store.call_ended(org, call.id, call.received_at, &call.digits, None, None).await;
    };
    let key = path.strip_prefix(recordings_root).unwrap_or(&path).to_string_lossy().into_owned();
    let measured = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || oncall_recordings::uploader::measure_wav(&p)).await.ok().and_then(Result::ok)
    };
    // With S3 the uploader may already have archived the repaired file and removed the spool copy: its row
    // (registered at start-up) has the measurements.
    let measured = match measured {
        Some((d, peak, rms, modified)) => Some((d as i64, f64::from(peak), f64::from(rms), modified)),
        None => store.recordings_by_storage_key(&key).await?.into_iter().find(|r| r.org == org).map(|r| (r.duration_ms, r.peak, r.rms, r.created_at)),
    };
    let Some((duration_ms, peak, rms, modified)) = measured else {
        tracing::error!(call_row = call.id.0, path = %path.display(), "closing a call cut by a crash: its recording is unreadable");
        return store.call_ended(org, call.id, call.received_at, &call.digits, None, None).await;
    };
    let request = match store.request_for_call(org, call.id).await? {
        Some(r) => r,
        None => {
            let r = store.create_request_for_call(org, call.id, &call.caller, modified).await?;
            store
                .append_event(org, r, oncall_core::Actor::System, "note", "the call was cut by a restart of OnCall; the message is kept as far as it was recorded", modified)
                .await?;
            // The uploader registered the file without a request; without that row (its registration failed), add one.
            let rows = store.recordings_by_storage_key(&key).await?;
            match rows.iter().find(|r| r.org == org && r.request.is_none()) {
                Some(row) => store.attach_recording(org, row.id, r, modified).await?,
                None if rows.iter().any(|r| r.org == org) => {}
                None => {
                    let rec = NewRecording {
                        request: Some(r),
                        kind: RecordingKind::Message,
                        storage_key: key.clone(),
                        duration_ms,
                        peak,
                        rms,
                        created_at: modified,
                    };
                    store.add_recording(org, &rec).await?;
                }
            }
            tracing::warn!(call_row = call.id.0, request = %r, duration_ms, "opened the request of a message cut by a crash");
            if let (Some(paging), Some("page" | "page_when_open")) = (paging, call.recording_kind.as_deref()) {
                let _ = paging.send(PagingEvent::RequestOpened { request: r, caller: call.caller.clone(), recording: path.clone(), caller_call: None });
            }
            r
        }
    };
    tracing::info!(call_row = call.id.0, %request, "closed a call cut by a crash");
    store
        .call_ended(org, call.id, modified.max(call.received_at), &call.digits, Some(&path.to_string_lossy()), Some(duration_ms))
        .await
}

//! Requests: the filtered list, the detail page (timeline, notes, recordings), acknowledging
//! and completing, and the recordings themselves, served with HTTP Range so the browser's
//! `<audio>` can seek.
//!
//! Managers see every request of their organization. Employees see the requests they are
//! involved in (answered, acknowledged, completed or were paged for); any other id is a 404,
//! exactly like another organization's.
//!
//! The paging buttons (issue 18 item 6): "Page again" and "Reassign to <person>" are for managers,
//! "Escalate now" also for the employees who may see the request. They are queued in the store
//! ([`oncall_core::store::RequestAction`], with the timeline event naming who asked) for the paging
//! task that runs the escalation; a request someone has (answered, acknowledged) or closed (completed,
//! abandoned) takes none: 409 with the reason ([`action_refusal`]).

use super::layout::{base, see_other, Flash};
use crate::auth::Viewer;
use crate::error::{WebError, WebResult};
use crate::recording_source::{parse_range, RangeRequest};
use crate::state::AppState;
use crate::templates::render;
use crate::views::{self, Directory};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use chrono::NaiveDate;
use chrono_tz::Tz;
use oncall_core::request::{Recording, Request};
use oncall_core::store::{event_kind, RequestAction, RequestFilter};
use oncall_core::{OrgId, PersonId, RecordingId, RequestId, RequestStatus, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A request as the lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRow {
    pub id: i64,
    /// The caller as shown (a number when it is one) and its `tel:` link; `caller_raw` as stored.
    pub caller: String,
    pub caller_tel: Option<String>,
    pub caller_raw: String,
    pub summary: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub status_class: &'static str,
    pub received: String,
    pub age: String,
    pub handled_by: Option<String>,
    pub open: bool,
    /// The caller's message (recording id and length), for the lists' players (issue 18 item 6).
    pub message: Option<MessageCell>,
    /// "Phone call", or for a request from monitoring "Alert from <integration>" and how often it was received.
    pub source: String,
    pub is_alert: bool,
    /// The first line of what the caller said, once transcribed (issue 23).
    pub transcript: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageCell {
    pub id: i64,
    pub duration: String,
}

/// The rows of a request list, each with its caller's message (one query for all of them).
pub async fn request_rows(state: &AppState, org: OrgId, requests: &[Request], now: Timestamp, tz: Tz, dir: &Directory, users: &HashMap<i64, String>) -> WebResult<Vec<RequestRow>> {
    let ids: Vec<RequestId> = requests.iter().map(|r| r.id).collect();
    let mut messages = state.store.messages_of(org, &ids).await?;
    Ok(requests
        .iter()
        .map(|r| {
            let mut row = request_row(r, now, tz, dir, users);
            row.message = messages.remove(&r.id).map(|m| MessageCell { id: m.id.0, duration: views::duration(oncall_core::Millis(m.duration_ms)) });
            row
        })
        .collect())
}

pub fn request_row(r: &Request, now: Timestamp, tz: Tz, dir: &Directory, users: &HashMap<i64, String>) -> RequestRow {
    let status = r.state.status();
    let (label, class) = views::status_label(status);
    let handled_by = [r.state.completed(), r.state.acknowledged(), r.state.answered()].into_iter().flatten().next().map(|s| dir.actor(s.by, users));
    let shown = views::caller(&r.caller);
    RequestRow {
        id: r.id.0,
        caller: shown.text,
        caller_tel: shown.tel,
        caller_raw: r.caller.clone(),
        summary: r.summary.clone(),
        status: status.as_str(),
        status_label: label,
        status_class: class,
        received: views::time(r.received_at, tz),
        age: views::age(now, r.received_at),
        handled_by,
        open: !status.is_terminal(),
        message: None,
        source: match (r.source.as_str(), r.alert_count) {
            ("alert", n) if n > 1 => format!("Alert from {} (received {n} times)", r.caller),
            ("alert", _) => format!("Alert from {}", r.caller),
            _ => "Phone call".into(),
        },
        is_alert: r.source == "alert",
        transcript: r.transcript.as_deref().map(|t| oncall_core::transcript::first_line(t, 120)),
    }
}

/// Login names by user id (for actors that are logins without a person).
pub async fn user_names(state: &AppState, org: OrgId) -> WebResult<HashMap<i64, String>> {
    Ok(state.store.list_users(org).await?.into_iter().map(|u| (u.id.0, u.name)).collect())
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    caller: String,
    #[serde(default)]
    words: String,
    #[serde(default)]
    page: Option<i64>,
}

/// The filter from query parameters; bad dates are reported rather than ignored.
pub fn parse_filter(q: &ListQuery, tz: Tz) -> Result<RequestFilter, WebError> {
    let mut f = RequestFilter { limit: 50, ..RequestFilter::default() };
    match q.status.as_str() {
        "" | "all" => {}
        "open" => f.open_only = true,
        s => f.statuses = vec![RequestStatus::parse(s).ok_or_else(|| WebError::BadRequest(format!("Unknown status {s:?}.")))?],
    }
    let date = |s: &str, field: &str| -> Result<Option<NaiveDate>, WebError> {
        if s.trim().is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map(Some).map_err(|_| WebError::BadRequest(format!("{field}: use a date like 2026-11-03.")))
    };
    f.from = date(&q.from, "From")?.map(|d| views::day_start(d, tz));
    f.to = date(&q.to, "To")?.and_then(|d| d.succ_opt()).map(|d| views::day_start(d, tz));
    if !q.person.trim().is_empty() {
        f.person = Some(PersonId(q.person.trim().parse().map_err(|_| WebError::BadRequest("Unknown person.".into()))?));
    }
    // People type numbers with spaces and dashes; stored callers have none.
    let caller: String = q.caller.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
    f.caller = (!caller.is_empty()).then_some(caller);
    f.words = Some(q.words.trim().to_string()).filter(|w| !w.is_empty());
    f.offset = (q.page.unwrap_or(1).max(1) - 1) * f.limit;
    Ok(f)
}

pub async fn list(State(state): State<AppState>, v: Viewer, Query(q): Query<ListQuery>) -> WebResult<Html<String>> {
    let org = v.org.id;
    let tz = v.tz;
    let mut filter = parse_filter(&q, tz)?;
    if !v.is_manager() {
        // Employees: their own requests, whatever the form says.
        filter.person = Some(v.user.person.unwrap_or(PersonId(-1)));
    }
    let people = state.store.list_people(org).await?;
    let dir = Directory::new(&people);
    let users = user_names(&state, org).await?;
    let now = Timestamp::now();
    let found = state.store.search_requests(org, &filter).await?;
    let rows = request_rows(&state, org, &found, now, tz, &dir, &users).await?;
    let mut ctx = base(&v, "requests", None);
    let page = q.page.unwrap_or(1).max(1);
    ctx.insert("has_next", &(rows.len() as i64 == filter.limit));
    ctx.insert("requests", &rows);
    ctx.insert("people", &people.iter().map(|p| views::person_view(p, &dir)).collect::<Vec<_>>());
    ctx.insert("statuses", &RequestStatus::ALL.iter().map(|s| (s.as_str(), views::status_label(*s).0)).collect::<Vec<_>>());
    ctx.insert("q", &serde_json::json!({"status": q.status, "from": q.from, "to": q.to, "person": q.person, "caller": q.caller, "words": q.words}));
    let mut query_without_page = serde_urlencoded::to_string([("status", &q.status), ("from", &q.from), ("to", &q.to), ("person", &q.person), ("caller", &q.caller), ("words", &q.words)]).unwrap_or_default();
    if !query_without_page.is_empty() {
        query_without_page.push('&');
    }
    ctx.insert("query_prefix", &query_without_page);
    ctx.insert("page", &page);
    ctx.insert("filtered", &(!q.status.is_empty() || !q.from.is_empty() || !q.to.is_empty() || !q.person.is_empty() || !q.caller.is_empty() || !q.words.is_empty()));
    Ok(render("requests.html", &ctx)?)
}

/// The request if the viewer may see it; 404 otherwise (other org, or not involved).
pub async fn visible_request(state: &AppState, v: &Viewer, id: RequestId) -> WebResult<Request> {
    let req = state.store.request(v.org.id, id).await?;
    if !v.is_manager() {
        let Some(me) = v.user.person else { return Err(WebError::NotFound) };
        if !state.store.request_involves(v.org.id, id, me).await? {
            return Err(WebError::NotFound);
        }
    }
    Ok(req)
}

pub async fn show(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>, Query(f): Query<Flash>) -> WebResult<Html<String>> {
    let org = v.org.id;
    let tz = v.tz;
    let req = visible_request(&state, &v, RequestId(id)).await?;
    let people = state.store.list_people(org).await?;
    let dir = Directory::new(&people);
    let users = user_names(&state, org).await?;
    let now = Timestamp::now();
    let events = state.store.request_events(org, req.id).await?;
    let recordings = state.store.recordings_for_request(org, req.id).await?;
    // What the caller said, when the IVR or the seed wrote it down.
    let said = events.iter().rev().find(|e| e.kind == "summary").map(|e| e.detail.clone());
    let timeline: Vec<_> = events
        .iter()
        .map(|e| {
            let who = dir.actor(e.actor, &users);
            let (icon, text) = match e.kind.as_str() {
                event_kind::ACTION => ("action", format!("{} — {who}", capitalized(&e.detail))),
                event_kind::STATUS => {
                    let label = RequestStatus::parse(&e.detail).map(|s| views::status_label(s).0).unwrap_or("?");
                    ("status", format!("{label} — {who}"))
                }
                event_kind::NOTE => ("note", format!("{who}: {}", e.detail)),
                event_kind::RECORDING => ("recording", "Message recorded".to_string()),
                event_kind::NOTIFICATION => ("notification", e.detail.clone()),
                event_kind::DEFERRED => ("deferred", format!("After hours: {}", e.detail)),
                event_kind::TRANSCRIBED => ("transcribed", format!("Transcribed {}", e.detail)),
                "summary" => ("summary", format!("Caller said: {}", e.detail)),
                other => ("other", format!("{other}: {}", e.detail)),
            };
            serde_json::json!({"at": views::time(e.at, tz), "icon": icon, "text": text})
        })
        .collect();
    // Every notification attempt: who, how, where to, when, and what became of it.
    let attempts: Vec<_> = state
        .store
        .notifications_for_request(org, req.id)
        .await?
        .iter()
        .map(|n| {
            serde_json::json!({
                "stage": n.key.stage + 1, "person": dir.name(n.key.person), "channel": n.key.channel.as_str(),
                "target": n.target, "at": views::time(n.created_at, tz), "result": views::attempt_result(&n.status, &n.detail),
                "failed": n.status == "failed",
            })
        })
        .collect();
    let mut transcripts: HashMap<i64, _> =
        state.store.transcriptions_for_request(org, req.id).await?.into_iter().map(|t| (t.recording.0, t)).collect();
    let recs: Vec<_> = recordings
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id.0, "kind": r.kind, "duration": views::duration(oncall_core::Millis(r.duration_ms)),
                "mime": mime_for(&r.storage_key), "created": views::time(r.created_at, tz),
                "transcript": transcripts.remove(&r.id.0).map(|t| views::transcript(&t)),
            })
        })
        .collect();
    let status = req.state.status();
    let mut ctx = base(&v, "requests", f.flash.as_deref());
    ctx.insert("r", &request_row(&req, now, tz, &dir, &users));
    ctx.insert("said", &said);
    ctx.insert("timeline", &timeline);
    ctx.insert("attempts", &attempts);
    ctx.insert("recordings", &recs);
    // A normal request opened after hours: when it will page unless someone takes it first.
    ctx.insert("pages_at", &state.store.deferred_until(org, req.id).await?.map(|t| views::time(t, tz)));
    ctx.insert("can_acknowledge", &RequestStatus::Acknowledged.allowed_from().contains(&status));
    ctx.insert("can_complete", &RequestStatus::Completed.allowed_from().contains(&status));
    // The paging buttons this viewer may press on this request now.
    let allowed = |a: RequestAction| action_refusal(&v, status, a).is_none();
    ctx.insert("can_page_again", &allowed(RequestAction::PageAgain));
    ctx.insert("can_escalate", &allowed(RequestAction::Escalate));
    ctx.insert("can_reassign", &allowed(RequestAction::Reassign(PersonId(0))));
    ctx.insert("reassignable", &people.iter().filter(|p| !p.disabled).map(|p| serde_json::json!({"id": p.id.0, "name": p.name})).collect::<Vec<_>>());
    let pending: Vec<_> = state
        .store
        .pending_request_actions(org, req.id)
        .await?
        .iter()
        .map(|a| {
            let what = match a.action {
                RequestAction::PageAgain => "Page again".to_string(),
                RequestAction::Escalate => "Escalate now".to_string(),
                RequestAction::Reassign(p) => format!("Reassign to {}", dir.name(p)),
            };
            serde_json::json!({"what": what, "by": dir.actor(a.by, &users), "at": views::time(a.created_at, tz)})
        })
        .collect();
    ctx.insert("pending_actions", &pending);
    ctx.insert("answered", &req.state.answered().map(|s| format!("{} after {}", dir.actor(s.by, &users), views::duration(s.at - req.received_at))));
    ctx.insert("acknowledged", &req.state.acknowledged().map(|s| format!("{} after {}", dir.actor(s.by, &users), views::duration(s.at - req.received_at))));
    ctx.insert("completed", &req.state.completed().map(|s| format!("{} after {}", dir.actor(s.by, &users), views::duration(s.at - req.received_at))));
    Ok(render("request.html", &ctx)?)
}

#[derive(Debug, Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    note: String,
}

async fn act(state: &AppState, v: &Viewer, id: i64, note: &str, to: RequestStatus) -> WebResult<Response> {
    let req = visible_request(state, v, RequestId(id)).await?;
    let now = Timestamp::now();
    if !note.trim().is_empty() {
        state.store.add_note(v.org.id, req.id, v.actor(), note, now).await?;
    }
    match to {
        RequestStatus::Acknowledged => state.store.acknowledge(v.org.id, req.id, v.actor(), now).await?,
        _ => state.store.complete(v.org.id, req.id, v.actor(), now).await?,
    }
    tracing::info!(request = %req.id, org = %v.org.id, user = %v.user.id, status = %to, "request updated from the web");
    let flash = if to == RequestStatus::Acknowledged { "acknowledged" } else { "completed" };
    Ok(see_other(&format!("/requests/{id}?flash={flash}")).into_response())
}

pub async fn acknowledge(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>, Form(f): Form<NoteForm>) -> WebResult<Response> {
    act(&state, &v, id, &f.note, RequestStatus::Acknowledged).await
}

pub async fn complete(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>, Form(f): Form<NoteForm>) -> WebResult<Response> {
    act(&state, &v, id, &f.note, RequestStatus::Completed).await
}

pub async fn add_note(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>, Form(f): Form<NoteForm>) -> WebResult<Response> {
    let req = visible_request(&state, &v, RequestId(id)).await?;
    state.store.add_note(v.org.id, req.id, v.actor(), &f.note, Timestamp::now()).await?;
    Ok(see_other(&format!("/requests/{id}?flash=note#notes")).into_response())
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Why `v` may not press `action` on a request that is `status` now (`Err` of the web's answer), or
/// `None`. Page again and reassign are for managers; escalate also for an employee who may see it.
pub fn action_refusal(v: &Viewer, status: RequestStatus, action: RequestAction) -> Option<WebError> {
    if !v.is_manager() && !matches!(action, RequestAction::Escalate) {
        return Some(WebError::Forbidden);
    }
    let conflict = |m: &str| Some(WebError::Conflict(m.to_string()));
    match (status, action) {
        (RequestStatus::Completed | RequestStatus::Abandoned, _) => conflict(&format!("This request is {status}: there is nobody left to page.")),
        (RequestStatus::Answered | RequestStatus::Acknowledged, _) => conflict(&format!("This request is {status}: someone has it already.")),
        (RequestStatus::Received, RequestAction::Escalate | RequestAction::Reassign(_)) => {
            conflict("This request is not paging yet (it waits for business hours, or no policy was enabled): page it again to start.")
        }
        (RequestStatus::Exhausted, RequestAction::Escalate) => conflict("Every step was paged already: page it again to start over."),
        _ => None,
    }
}

/// Queues `action` on request `id` for the paging task, after the role and status checks; the
/// request as it was.
pub async fn queue_action(state: &AppState, v: &Viewer, id: RequestId, action: RequestAction) -> WebResult<Request> {
    let req = visible_request(state, v, id).await?;
    if let Some(refusal) = action_refusal(v, req.state.status(), action) {
        return Err(refusal);
    }
    if state.config.reachability.paging_on() == Some(false) {
        return Err(WebError::Conflict("Paging is off ([paging] enabled = false in oncall.toml): nobody would be paged. Turn it on, then try again.".into()));
    }
    if let RequestAction::Reassign(person) = action {
        match state.store.person(v.org.id, person).await {
            Ok(p) if p.disabled => return Err(WebError::BadRequest(format!("{} is disabled: enable them first.", p.name))),
            Ok(_) => {}
            Err(oncall_core::StoreError::NotFound(_)) => return Err(WebError::BadRequest("Unknown person.".into())),
            Err(e) => return Err(e.into()),
        }
    }
    state.store.queue_request_action(v.org.id, req.id, action, v.actor(), Timestamp::now()).await?;
    tracing::info!(request = %req.id, org = %v.org.id, user = %v.user.id, action = action.as_str(), "request action from the web");
    Ok(req)
}

#[derive(Debug, Deserialize)]
pub struct ReassignForm {
    #[serde(default)]
    person: String,
}

pub async fn page_again(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>) -> WebResult<Response> {
    queue_action(&state, &v, RequestId(id), RequestAction::PageAgain).await?;
    Ok(see_other(&format!("/requests/{id}?flash=paging-again")).into_response())
}

pub async fn escalate(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>) -> WebResult<Response> {
    queue_action(&state, &v, RequestId(id), RequestAction::Escalate).await?;
    Ok(see_other(&format!("/requests/{id}?flash=escalating")).into_response())
}

pub async fn reassign(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>, Form(f): Form<ReassignForm>) -> WebResult<Response> {
    let person = f.person.trim().parse().map(PersonId).map_err(|_| WebError::BadRequest("Choose the person to page.".into()))?;
    queue_action(&state, &v, RequestId(id), RequestAction::Reassign(person)).await?;
    Ok(see_other(&format!("/requests/{id}?flash=reassigned")).into_response())
}

/// The recording if the viewer may hear it (its request is visible to them).
pub async fn visible_recording(state: &AppState, v: &Viewer, id: RecordingId) -> WebResult<Recording> {
    let rec = state.store.recording(v.org.id, id).await?;
    match rec.request {
        Some(req) => {
            visible_request(state, v, req).await?;
        }
        None if !v.is_manager() => return Err(WebError::NotFound),
        None => {}
    }
    Ok(rec)
}

pub fn mime_for(key: &str) -> &'static str {
    match key.rsplit('.').next().map(|e| e.to_ascii_lowercase()).as_deref() {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        Some("ogg") | Some("oga") => "audio/ogg",
        Some("flac") => "audio/flac",
        _ => "application/octet-stream",
    }
}

/// Streams a stored object with Range support. `attachment` names the download.
pub async fn serve_object(state: &AppState, key: &str, headers: &HeaderMap, attachment: Option<String>) -> WebResult<Response> {
    let src = state.recordings.clone();
    let k = key.to_string();
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (status, bytes, range, size) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let size = src.size(&k)?;
        match parse_range(range_header.as_deref(), size) {
            RangeRequest::Full => Ok((StatusCode::OK, src.read(&k, 0..size)?, None, size)),
            RangeRequest::Partial(r) => Ok((StatusCode::PARTIAL_CONTENT, src.read(&k, r.clone())?, Some(r), size)),
            RangeRequest::Unsatisfiable => Ok((StatusCode::RANGE_NOT_SATISFIABLE, Vec::new(), None, size)),
        }
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))?
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            tracing::warn!(key, "recording file missing");
            WebError::NotFound
        } else {
            WebError::Internal(format!("reading recording {key}: {e}"))
        }
    })?;
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime_for(key)));
    // Private: recordings are personal data; never cached by shared caches.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    match (status, range) {
        (StatusCode::PARTIAL_CONTENT, Some(r)) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1)) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        (StatusCode::RANGE_NOT_SATISFIABLE, _) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        _ => {}
    }
    if let Some(name) = attachment {
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}

pub async fn recording(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>, headers: HeaderMap) -> WebResult<Response> {
    let rec = visible_recording(&state, &v, RecordingId(id)).await?;
    serve_object(&state, &rec.storage_key, &headers, None).await
}

pub async fn download(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>, headers: HeaderMap) -> WebResult<Response> {
    let rec = visible_recording(&state, &v, RecordingId(id)).await?;
    let ext = rec.storage_key.rsplit('.').next().filter(|e| e.len() <= 4 && e.chars().all(|c| c.is_ascii_alphanumeric())).unwrap_or("wav");
    let day = views::local(rec.created_at, v.tz).format("%Y-%m-%d-%H%M");
    let name = match rec.request {
        Some(r) => format!("request-{}-{day}.{ext}", r.0),
        None => format!("recording-{}-{day}.{ext}", rec.id.0),
    };
    serve_object(&state, &rec.storage_key, &headers, Some(name)).await
}

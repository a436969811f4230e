//! The JSON API under `/api/v1`, mirroring the site: requests, schedules and shifts, who is
//! on call now, metrics, people and policies. Documented in docs/api.md.
//!
//! Authentication is a per-user bearer token (`Authorization: Bearer oc_...`, created on the
//! Account page). The token acts as its user: same organization scope, same role checks as
//! the pages, same 404 for another organization's ids. Cookies are ignored here, so the API
//! needs no CSRF protection (a browser never attaches a bearer token by itself).

use crate::auth::Viewer;
use crate::error::WebError;
use crate::pages::reports::{self, RangeQuery};
use crate::pages::requests::{self as req_pages, parse_filter, ListQuery};
use crate::state::AppState;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use oncall_core::webhook::{Format, NewWebhook, Webhook, WebhookEvent, WebhookId};
use axum::{Json, Router};
use chrono::NaiveDate;
use oncall_core::schedule::{self, Override};
use oncall_core::{Millis, PersonId, RecordingId, RequestId, RequestStatus, ScheduleId, StoreError, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/requests", get(list_requests).post(create_request))
        .route("/api/v1/requests/{id}", get(get_request))
        .route("/api/v1/requests/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/requests/{id}/complete", post(complete))
        .route("/api/v1/requests/{id}/notes", post(add_note))
        .route("/api/v1/requests/{id}/page-again", post(page_again))
        .route("/api/v1/requests/{id}/escalate", post(escalate))
        .route("/api/v1/requests/{id}/reassign", post(reassign))
        .route("/api/v1/recordings/{id}", get(recording))
        .route("/api/v1/oncall", get(on_call_now))
        .route("/api/v1/oncall/{schedule}", get(on_call_in_schedule))
        .route("/api/v1/schedules", get(list_schedules))
        .route("/api/v1/schedules/{id}", get(get_schedule))
        .route("/api/v1/schedules/{id}/shifts", get(shifts))
        .route("/api/v1/schedules/{id}/overrides", post(add_override))
        .route("/api/v1/metrics", get(metrics))
        .route("/api/v1/people", get(people))
        .route("/api/v1/policies", get(policies))
        .route("/api/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route("/api/v1/webhooks/{id}", get(get_webhook).delete(delete_webhook))
        .route("/api/v1/webhooks/{id}/enable", post(enable_webhook))
        .route("/api/v1/webhooks/{id}/disable", post(disable_webhook))
        .with_state(state)
}

/// An API error: `{"error": {"code": "...", "message": "..."}}` with the matching status.
#[derive(Debug)]
pub struct ApiError(WebError);

impl<E: Into<WebError>> From<E> for ApiError {
    fn from(e: E) -> ApiError {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::CONFLICT => "conflict",
            _ => "internal",
        };
        if let WebError::Internal(m) = &self.0 {
            tracing::error!(error = %m, "API request failed");
        }
        let field = match &self.0 {
            WebError::Invalid(v) => Some(v.field.clone()),
            _ => None,
        };
        (status, Json(json!({"error": {"code": code, "message": self.0.public_message(), "field": field}}))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The token's user, as a viewer (no CSRF: not a browser session).
pub struct ApiUser(pub Viewer);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<ApiUser, Response> {
        let unauthorized = |msg: &str| {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"oncall\"")],
                Json(json!({"error": {"code": "unauthorized", "message": msg}})),
            )
                .into_response()
        };
        let token = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(unauthorized("Send an API token: Authorization: Bearer <token> (create one on the Account page)."));
        };
        let user = match state.store.api_token_user(token, Timestamp::now()).await {
            Ok(Some(u)) => u,
            Ok(None) => return Err(unauthorized("This API token is unknown or revoked.")),
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        let org = state.store.organization(user.org).await.map_err(|e| ApiError::from(e).into_response())?;
        let viewer = Viewer::load(&state.store, user, org, String::new(), String::new()).await.map_err(|e| ApiError::from(e).into_response())?;
        Ok(ApiUser(viewer))
    }
}

fn manager(v: &Viewer) -> Result<(), ApiError> {
    if v.is_manager() {
        Ok(())
    } else {
        Err(ApiError(WebError::Forbidden))
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn opt_rfc(t: Option<Timestamp>) -> Option<String> {
    t.map(rfc3339)
}

fn request_json(r: &oncall_core::Request) -> Value {
    let stamp = |s: Option<oncall_core::request::Stamp>| s.map(|s| json!({"at": rfc3339(s.at), "by": s.by.to_string()}));
    json!({
        "id": r.id.0,
        "caller": r.caller,
        "summary": r.summary,
        "source": r.source,
        "alert_count": r.alert_count,
        "transcript": r.transcript,
        "status": r.state.status().as_str(),
        "received_at": rfc3339(r.received_at),
        "answered": stamp(r.state.answered()),
        "acknowledged": stamp(r.state.acknowledged()),
        "completed": stamp(r.state.completed()),
    })
}

async fn me(ApiUser(v): ApiUser) -> Json<Value> {
    Json(json!({
        "id": v.user.id.0, "name": v.user.name, "email": v.user.email, "role": v.user.role.as_str(),
        "person_id": v.user.person.map(|p| p.0),
        "organization": {"id": v.org.id.0, "name": v.org.name, "slug": v.org.slug, "time_zone": v.org.time_zone.name()},
    }))
}

async fn list_requests(State(state): State<AppState>, ApiUser(v): ApiUser, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    let mut filter = parse_filter(&q, v.tz)?;
    if !v.is_manager() {
        filter.person = Some(v.user.person.unwrap_or(PersonId(-1)));
    }
    let rows = state.store.search_requests(v.org.id, &filter).await?;
    Ok(Json(json!({"requests": rows.iter().map(request_json).collect::<Vec<_>>(), "limit": filter.limit, "offset": filter.offset})))
}

#[derive(Debug, Deserialize)]
struct NewApiRequest {
    summary: String,
}

/// `POST /api/v1/requests` (managers, issue 20): a script opens a request that pages whoever is on call, its
/// summary spoken in the page call; the caller shown is the token's user.
async fn create_request(State(state): State<AppState>, ApiUser(v): ApiUser, Json(b): Json<NewApiRequest>) -> ApiResult<(StatusCode, Json<Value>)> {
    if !v.is_manager() {
        return Err(ApiError(WebError::Forbidden));
    }
    let id = state.store.create_api_request(v.org.id, &v.user.name, &b.summary, Timestamp::now()).await?;
    tracing::info!(request = %id, org = %v.org.id, user = %v.user.id, "request opened through the API");
    if let Some(p) = &state.pager {
        p.opened(id, v.user.name.clone());
    }
    let r = state.store.request(v.org.id, id).await?;
    Ok((StatusCode::CREATED, Json(request_json(&r))))
}

async fn get_request(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    let r = req_pages::visible_request(&state, &v, RequestId(id)).await?;
    let events = state.store.request_events(v.org.id, r.id).await?;
    let recs = state.store.recordings_for_request(v.org.id, r.id).await?;
    let mut body = request_json(&r);
    body["events"] = json!(events.iter().map(|e| json!({"at": rfc3339(e.at), "actor": e.actor.to_string(), "kind": e.kind, "detail": e.detail})).collect::<Vec<_>>());
    let attempts = state.store.notifications_for_request(v.org.id, r.id).await?;
    body["notifications"] = json!(attempts
        .iter()
        .map(|n| json!({
            "stage": n.key.stage, "person": n.key.person.0, "channel": n.key.channel.as_str(), "target": n.target,
            "status": n.status, "detail": n.detail, "result": crate::views::attempt_result(&n.status, &n.detail),
            "created_at": rfc3339(n.created_at), "updated_at": rfc3339(n.updated_at),
        }))
        .collect::<Vec<_>>());
    body["recordings"] = json!(recs
        .iter()
        .map(|x| json!({"id": x.id.0, "kind": x.kind, "duration_ms": x.duration_ms, "created_at": rfc3339(x.created_at), "url": format!("/api/v1/recordings/{}", x.id.0)}))
        .collect::<Vec<_>>());
    let transcriptions = state.store.transcriptions_for_request(v.org.id, r.id).await?;
    body["transcriptions"] = json!(transcriptions
        .iter()
        .map(|t| json!({
            "recording": t.recording.0, "status": t.status.as_str(), "text": t.text, "engine": t.engine, "language": t.language,
            "confidence": t.confidence, "low_quality": t.low_quality, "reason": t.reason, "attempts": t.attempts,
            "finished_at": t.finished_at.map(rfc3339),
        }))
        .collect::<Vec<_>>());
    Ok(Json(body))
}

#[derive(Debug, Default, Deserialize)]
pub struct NoteBody {
    #[serde(default)]
    note: String,
}

async fn transition(state: &AppState, v: &Viewer, id: i64, note: &str, to: RequestStatus) -> ApiResult<Json<Value>> {
    let r = req_pages::visible_request(state, v, RequestId(id)).await?;
    let now = Timestamp::now();
    if !note.trim().is_empty() {
        state.store.add_note(v.org.id, r.id, v.actor(), note, now).await?;
    }
    match to {
        RequestStatus::Acknowledged => state.store.acknowledge(v.org.id, r.id, v.actor(), now).await?,
        _ => state.store.complete(v.org.id, r.id, v.actor(), now).await?,
    }
    Ok(Json(request_json(&state.store.request(v.org.id, r.id).await?)))
}

async fn acknowledge(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>, body: Option<Json<NoteBody>>) -> ApiResult<Json<Value>> {
    transition(&state, &v, id, &body.map(|b| b.0.note).unwrap_or_default(), RequestStatus::Acknowledged).await
}

async fn complete(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>, body: Option<Json<NoteBody>>) -> ApiResult<Json<Value>> {
    transition(&state, &v, id, &body.map(|b| b.0.note).unwrap_or_default(), RequestStatus::Completed).await
}

async fn add_note(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>, Json(b): Json<NoteBody>) -> ApiResult<(StatusCode, Json<Value>)> {
    let r = req_pages::visible_request(&state, &v, RequestId(id)).await?;
    state.store.add_note(v.org.id, r.id, v.actor(), &b.note, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, Json(json!({"ok": true}))))
}

/// A paging button (issue 18 item 6): 202 with the request and the queued action; the paging task
/// carries it out at once (or at its next heartbeat on another instance). 403/409 as on the page.
async fn queue_action(state: &AppState, v: &Viewer, id: i64, action: oncall_core::store::RequestAction) -> ApiResult<(StatusCode, Json<Value>)> {
    let r = req_pages::queue_action(state, v, RequestId(id), action).await?;
    let mut body = request_json(&r);
    body["queued"] = json!(action.as_str());
    Ok((StatusCode::ACCEPTED, Json(body)))
}

async fn page_again(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>) -> ApiResult<(StatusCode, Json<Value>)> {
    queue_action(&state, &v, id, oncall_core::store::RequestAction::PageAgain).await
}

async fn escalate(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>) -> ApiResult<(StatusCode, Json<Value>)> {
    queue_action(&state, &v, id, oncall_core::store::RequestAction::Escalate).await
}

#[derive(Debug, Deserialize)]
pub struct ReassignBody {
    person: i64,
}

async fn reassign(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>, Json(b): Json<ReassignBody>) -> ApiResult<(StatusCode, Json<Value>)> {
    queue_action(&state, &v, id, oncall_core::store::RequestAction::Reassign(PersonId(b.person))).await
}

async fn recording(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>, headers: HeaderMap) -> ApiResult<Response> {
    let rec = req_pages::visible_recording(&state, &v, RecordingId(id)).await?;
    Ok(req_pages::serve_object(&state, &rec.storage_key, &headers, None).await?)
}

async fn on_call_now(State(state): State<AppState>, ApiUser(v): ApiUser) -> ApiResult<Json<Value>> {
    let now = Timestamp::now();
    let people = state.store.list_people(v.org.id).await?;
    let out: Vec<_> = state
        .store
        .list_schedules(v.org.id)
        .await?
        .iter()
        .map(|s| {
            let who = schedule::on_call(s, now);
            let p = who.and_then(|o| people.iter().find(|p| p.id == o.person));
            let until = who.and_then(|_| schedule::whole_shifts(s, now, now + Millis::hours(24 * 28)).first().map(|sh| sh.end));
            json!({
                "schedule": {"id": s.id.0, "name": s.name},
                "person": p.map(|p| json!({"id": p.id.0, "name": p.name, "phone": p.phones().next().map(|e| e.to_string())})),
                "until": opt_rfc(until),
            })
        })
        .collect();
    Ok(Json(json!({"at": rfc3339(now), "on_call": out})))
}

fn schedule_json(s: &oncall_core::Schedule) -> Value {
    json!({
        "id": s.id.0, "name": s.name, "time_zone": s.time_zone.name(),
        "layers": s.layers.iter().map(|l| json!({
            "name": l.name,
            "members": l.rotation.members.iter().map(|p| p.0).collect::<Vec<_>>(),
            "shift_length": l.rotation.shift_length,
            "start_date": l.rotation.start_date.format("%Y-%m-%d").to_string(),
            "handoff_time": l.rotation.handoff_time.format("%H:%M").to_string(),
        })).collect::<Vec<_>>(),
        "overrides": s.overrides.iter().map(|o| json!({"id": o.id.map(|i| i.0), "person_id": o.person.0, "start": rfc3339(o.start), "end": rfc3339(o.end)})).collect::<Vec<_>>(),
    })
}

async fn list_schedules(State(state): State<AppState>, ApiUser(v): ApiUser) -> ApiResult<Json<Value>> {
    manager(&v)?;
    let s = state.store.list_schedules(v.org.id).await?;
    Ok(Json(json!({"schedules": s.iter().map(schedule_json).collect::<Vec<_>>()})))
}

async fn get_schedule(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    manager(&v)?;
    Ok(Json(schedule_json(&state.store.schedule(v.org.id, ScheduleId(id)).await?)))
}

/// `from`/`to` as local dates of the schedule (to inclusive), default: the next 14 days.
async fn shifts(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>, Query(q): Query<RangeQuery>) -> ApiResult<Json<Value>> {
    let s = state.store.schedule(v.org.id, ScheduleId(id)).await?;
    let tz = s.time_zone;
    let today = crate::views::local(Timestamp::now(), tz).date_naive();
    let date = |x: &Option<String>| -> Result<Option<NaiveDate>, ApiError> {
        match x.as_deref().filter(|x| !x.is_empty()) {
            None => Ok(None),
            Some(x) => NaiveDate::parse_from_str(x, "%Y-%m-%d").map(Some).map_err(|_| ApiError(WebError::BadRequest("from/to: use YYYY-MM-DD.".into()))),
        }
    };
    let from = date(&q.from)?.unwrap_or(today);
    let to = date(&q.to)?.unwrap_or(from + chrono::Duration::days(13));
    if to < from || (to - from).num_days() > 366 {
        return Err(ApiError(WebError::BadRequest("from must not be after to, and the range is at most a year.".into())));
    }
    let (a, b) = crate::calendar::range(from, (to - from).num_days() + 1, tz);
    let mut list = schedule::shifts(&s, a, b);
    if !v.is_manager() {
        // Employees see their own shifts only.
        let me = v.user.person.unwrap_or(PersonId(-1));
        list.retain(|sh| sh.person == me);
    }
    Ok(Json(json!({
        "schedule_id": s.id.0, "time_zone": tz.name(),
        "shifts": list.iter().map(|sh| json!({
            "person_id": sh.person.0, "start": rfc3339(sh.start), "end": rfc3339(sh.end),
            "source": match sh.source { schedule::Source::Override(_) => "override", schedule::Source::Layer(_) => "rotation" },
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
pub struct OverrideBody {
    person_id: i64,
    start: String,
    end: String,
}

async fn add_override(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>, Json(b): Json<OverrideBody>) -> ApiResult<(StatusCode, Json<Value>)> {
    manager(&v)?;
    let parse = |s: &str, field: &str| {
        chrono::DateTime::parse_from_rfc3339(s).map(|t| Timestamp::from(t.to_utc())).map_err(|_| ApiError(WebError::Invalid(oncall_core::ValidationError::new(field, "use RFC 3339, e.g. 2026-11-03T09:00:00Z"))))
    };
    let o = Override::new(PersonId(b.person_id), parse(&b.start, "start")?, parse(&b.end, "end")?);
    let oid = state.store.add_override(v.org.id, ScheduleId(id), &o, Timestamp::now()).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError(WebError::NotFound),
        e => ApiError::from(e),
    })?;
    Ok((StatusCode::CREATED, Json(json!({"id": oid.0, "person_id": o.person.0, "start": rfc3339(o.start), "end": rfc3339(o.end)}))))
}

async fn metrics(State(state): State<AppState>, ApiUser(v): ApiUser, Query(q): Query<RangeQuery>) -> ApiResult<Json<Value>> {
    manager(&v)?;
    let tz = v.tz;
    let (from, to) = reports::date_range(&q, tz, Timestamp::now())?;
    let m = reports::compute(&state, v.org.id, tz, from, to).await?;
    Ok(Json(json!({
        "from": from.format("%Y-%m-%d").to_string(), "to": to.format("%Y-%m-%d").to_string(), "time_zone": tz.name(),
        "total": m.total,
        "by_day": m.by_day.iter().map(|(d, s)| json!({"date": d.format("%Y-%m-%d").to_string(), "summary": s})).collect::<Vec<_>>(),
        "by_hour": m.by_hour.iter().map(|(h, s)| json!({"hour": h, "summary": s})).collect::<Vec<_>>(),
        "by_person": m.by_person.iter().map(|(p, s)| json!({"person_id": p.0, "summary": s})).collect::<Vec<_>>(),
        "by_source": m.by_source.iter().map(|(source, s)| json!({"source": source, "summary": s})).collect::<Vec<_>>(),
    })))
}

async fn people(State(state): State<AppState>, ApiUser(v): ApiUser) -> ApiResult<Json<Value>> {
    manager(&v)?;
    Ok(Json(json!({"people": state.store.list_people(v.org.id).await?})))
}

async fn policies(State(state): State<AppState>, ApiUser(v): ApiUser) -> ApiResult<Json<Value>> {
    manager(&v)?;
    Ok(Json(json!({"policies": state.store.list_policies(v.org.id).await?})))
}

/// A schedule named in a URL: its id, its name (any case) or its name as a slug
/// (`Maintenance on-call` → `maintenance-on-call`). The oldest schedule wins a tie.
pub fn find_schedule<'a>(schedules: &'a [oncall_core::Schedule], key: &str) -> Option<&'a oncall_core::Schedule> {
    schedule::on_call_order::find(schedules, key)
}

/// Who is on call in one schedule now, for PBXs and scripts: the person on call first, then
/// whoever is on shift in the layers below (the backups, top layer first), each with their
/// contacts in the person's order and when their shift ends. Disabled people are left out.
async fn on_call_in_schedule(State(state): State<AppState>, ApiUser(v): ApiUser, Path(key): Path<String>) -> ApiResult<Json<Value>> {
    let schedules = state.store.list_schedules(v.org.id).await?;
    let s = find_schedule(&schedules, &key).ok_or(ApiError(WebError::NotFound))?;
    let people = state.store.list_people(v.org.id).await?;
    let now = Timestamp::now();
    Ok(Json(on_call_json(s, &people, now)))
}

/// The body of `GET /api/v1/oncall/{schedule}` at `now` (pure, so it is tested without a clock).
pub fn on_call_json(s: &oncall_core::Schedule, people: &[oncall_core::Person], now: Timestamp) -> Value {
    let entries = schedule::on_call_order(s, now);
    let list: Vec<Value> = entries
        .iter()
        .filter_map(|e| {
            let p = people.iter().find(|p| p.id == e.person && !p.disabled)?;
            let contacts: Vec<Value> = p
                .contacts
                .iter()
                .map(|c| match c {
                    oncall_core::Contact::Phone(e) => json!({"kind": "phone", "address": e.as_str()}),
                    oncall_core::Contact::Sip(u) => json!({"kind": "sip", "address": u.as_str()}),
                })
                .collect();
            Some(json!({
                "person": {"id": p.id.0, "name": p.name, "email": p.email},
                "phone": p.phones().next().map(|e| e.as_str().to_string()),
                "contacts": contacts,
                "source": e.role.as_str(),
                "layer": e.role.layer(),
                "until": opt_rfc(e.until),
            }))
        })
        .enumerate()
        .map(|(i, mut v)| {
            v["order"] = json!(i + 1);
            v
        })
        .collect();
    let until = list.first().and_then(|e| e["until"].as_str().map(str::to_string));
    json!({
        "schedule": {"id": s.id.0, "name": s.name, "slug": oncall_core::store::slugify(&s.name), "time_zone": s.time_zone.name()},
        "now": rfc3339(now),
        "on_call": list,
        "until": until,
    })
}

fn webhook_json(w: &Webhook) -> Value {
    json!({
        "id": w.id.0, "name": w.name, "url": w.url, "format": w.format.as_str(),
        "events": w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "enabled": !w.disabled, "created_at": rfc3339(w.created_at),
    })
}

async fn list_webhooks(State(state): State<AppState>, ApiUser(v): ApiUser) -> ApiResult<Json<Value>> {
    manager(&v)?;
    let mut out = Vec::new();
    for w in state.store.list_webhooks(v.org.id).await? {
        let c = state.store.webhook_delivery_counts(v.org.id, w.id).await?;
        let mut j = webhook_json(&w);
        j["deliveries"] = json!({"pending": c.pending, "delivered": c.delivered, "failed": c.failed});
        out.push(j);
    }
    Ok(Json(json!({"webhooks": out})))
}

#[derive(Debug, Deserialize)]
pub struct WebhookBody {
    name: String,
    url: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    secret: Option<String>,
}

async fn create_webhook(State(state): State<AppState>, ApiUser(v): ApiUser, Json(b): Json<WebhookBody>) -> ApiResult<(StatusCode, Json<Value>)> {
    manager(&v)?;
    let invalid = |field: &str, m: &str| ApiError(WebError::Invalid(oncall_core::ValidationError::new(field, m)));
    let format = match b.format.as_deref() {
        None => Format::Json,
        Some(f) => Format::parse(f).ok_or_else(|| invalid("format", "use json or slack"))?,
    };
    let events = b.events.iter().map(|e| WebhookEvent::parse(e).ok_or_else(|| invalid("events", &format!("unknown event {e:?}")))).collect::<Result<Vec<_>, _>>()?;
    let new = NewWebhook { name: b.name, url: b.url, format, events, secret: b.secret };
    // Issue #15 (SSRF): see pages/webhooks.rs.
    state.config.webhook_destinations.check_url(new.url.trim()).map_err(|e| ApiError(WebError::Invalid(e)))?;
    let (id, secret) = state.store.create_webhook(v.org.id, &new, Timestamp::now()).await?;
    let mut j = webhook_json(&state.store.webhook(v.org.id, id).await?);
    j["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(j)))
}

async fn get_webhook(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    manager(&v)?;
    let w = state.store.webhook(v.org.id, WebhookId(id)).await?;
    let c = state.store.webhook_delivery_counts(v.org.id, w.id).await?;
    let attempts = state.store.webhook_attempts(v.org.id, w.id, 50).await?;
    let mut j = webhook_json(&w);
    j["deliveries"] = json!({"pending": c.pending, "delivered": c.delivered, "failed": c.failed});
    j["attempts"] = json!(attempts
        .iter()
        .map(|a| json!({"delivery": a.delivery.0, "event": a.event.as_str(), "request_id": a.request.0, "attempt": a.attempt,
            "at": rfc3339(a.at), "duration_ms": a.duration.0, "status": a.status_code, "error": a.error}))
        .collect::<Vec<_>>());
    Ok(Json(j))
}

async fn set_webhook_enabled(state: &AppState, v: &Viewer, id: i64, enabled: bool) -> ApiResult<Json<Value>> {
    manager(v)?;
    state.store.set_webhook_disabled(v.org.id, WebhookId(id), !enabled, Timestamp::now()).await?;
    Ok(Json(webhook_json(&state.store.webhook(v.org.id, WebhookId(id)).await?)))
}

async fn enable_webhook(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    set_webhook_enabled(&state, &v, id, true).await
}

async fn disable_webhook(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    set_webhook_enabled(&state, &v, id, false).await
}

async fn delete_webhook(State(state): State<AppState>, ApiUser(v): ApiUser, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    manager(&v)?;
    state.store.delete_webhook(v.org.id, WebhookId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

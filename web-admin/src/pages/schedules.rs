//! Schedules: the calendar (month and week), editing rotations (layers), overrides, an
//! employee's own shifts, shift swaps and the private iCal feed.
//!
//! Everyone may read a schedule; only managers edit it. Employees ask a colleague to take or
//! trade a shift from My shifts; the colleague answers there and a manager approves on the
//! schedule page (or the schedule lets accepted swaps through on their own).
//!
//! Rotation forms use indexed field names (`layers[0].member` repeated in order, ...) so the
//! page works without JavaScript: member order is the order of the select boxes.

use super::layout::{base, see_other, Flash};
use crate::auth::{Manager, Viewer};
use crate::calendar::{self, FeedEvent};
use crate::error::{WebError, WebResult};
use crate::state::AppState;
use crate::templates::render;
use crate::views::{self, Directory};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use chrono::{Duration, NaiveDate, NaiveTime};
use oncall_core::person::Person;
use oncall_core::schedule::{self, Layer, NewSchedule, NewSwap, Override, Rotation, Schedule, ShiftLength, Span, Swap, SwapId, SwapStatus};
use oncall_core::{Millis, OverrideId, PersonId, ScheduleId, StoreError, Timestamp};
use serde::Deserialize;
use std::collections::BTreeMap;

pub async fn list(State(state): State<AppState>, v: Viewer, Query(f): Query<Flash>) -> WebResult<Html<String>> {
    let org = v.org.id;
    let now = Timestamp::now();
    let people = state.store.list_people(org).await?;
    let dir = Directory::new(&people);
    let schedules = state.store.list_schedules(org).await?;
    let rows: Vec<_> = schedules
        .iter()
        .map(|s| {
            let who = schedule::on_call(s, now).map(|o| o.person);
            let next = schedule::next_on_call(s, now);
            serde_json::json!({
                "next": next.map(|n| dir.name(n.person)), "next_at": next.map(|n| views::time(n.start, s.time_zone)),
                "id": s.id.0, "name": s.name, "time_zone": s.time_zone.name(), "layers": s.layers.len(),
                "on_call": who.map(|p| dir.name(p)), "colour": who.map(|p| dir.colour(p)),
                "members": s.layers.iter().flat_map(|l| l.rotation.members.iter()).map(|p| dir.name(*p)).collect::<std::collections::BTreeSet<_>>(),
            })
        })
        .collect();
    let mut ctx = base(&v, "schedules", f.flash.as_deref());
    ctx.insert("schedules", &rows);
    Ok(render("schedules.html", &ctx)?)
}

#[derive(Debug, Default, Deserialize)]
pub struct CalendarQuery {
    view: Option<String>,
    date: Option<String>,
    override_date: Option<String>,
    flash: Option<String>,
}

async fn schedule_page(state: &AppState, v: &Viewer, id: ScheduleId, q: &CalendarQuery, error: Option<String>, status: StatusCode) -> WebResult<Response> {
    let org = v.org.id;
    let can_edit = v.is_manager();
    let sched = state.store.schedule(org, id).await?;
    let tz = sched.time_zone;
    let people = state.store.list_people(org).await?;
    let dir = Directory::new(&people);
    let now = Timestamp::now();
    let today = views::local(now, tz).date_naive();
    let date = q.date.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).unwrap_or(today);
    let week = q.view.as_deref() == Some("week");
    let (first, n, month, prev, next, title) = if week {
        let first = calendar::week_start(date);
        let last = first + Duration::days(6);
        let title = format!("{} – {}", first.format("%-d %b"), last.format("%-d %b %Y"));
        (first, 7, None, first - Duration::days(7), first + Duration::days(7), title)
    } else {
        let (first, n) = calendar::month_grid(date);
        (first, n, Some(chrono::Datelike::month(&date)), calendar::add_months(date, -1), calendar::add_months(date, 1), date.format("%B %Y").to_string())
    };
    let (from, to) = calendar::range(first, n, tz);
    let shifts = schedule::shifts(&sched, from, to);
    let days = calendar::days(&shifts, first, n, tz, &dir, month, today);
    let weeks: Vec<_> = days.chunks(7).map(|w| w.to_vec()).collect();
    // Legend: everyone visible this period, in order of first appearance.
    let mut legend: Vec<(i64, String, &str)> = Vec::new();
    for s in &shifts {
        if !legend.iter().any(|(id, _, _)| *id == s.person.0) {
            legend.push((s.person.0, dir.name(s.person), dir.colour(s.person)));
        }
    }
    let overrides: Vec<_> = sched
        .overrides
        .iter()
        .filter(|o| o.end > now - Millis::hours(24 * 7))
        .map(|o| {
            serde_json::json!({
                "id": o.id.map(|i| i.0), "person": dir.name(o.person), "colour": dir.colour(o.person),
                "start": views::time(o.start, tz), "end": views::time(o.end, tz), "past": o.end <= now,
            })
        })
        .collect();
    // Clicking a day pre-fills the override form with that whole day (from the layer handoff
    // time when there is one, so it replaces exactly one day's shift).
    let handoff = sched.layers.first().map(|l| l.rotation.handoff_time).unwrap_or(NaiveTime::MIN);
    let prefill_day = q.override_date.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let (ov_start, ov_end) = match prefill_day {
        Some(d) => (format!("{}T{}", d.format("%Y-%m-%d"), handoff.format("%H:%M")), format!("{}T{}", (d + Duration::days(1)).format("%Y-%m-%d"), handoff.format("%H:%M"))),
        None => (String::new(), String::new()),
    };
    let current = schedule::on_call(&sched, now).map(|o| o.person);
    let next_up = schedule::next_on_call(&sched, now);
    let swaps: Vec<_> = state.store.swaps_of_schedule(org, id).await?.iter().filter(|w| w.status.is_open() || w.decided_at.is_some_and(|t| t > now - Millis::hours(24 * 14))).map(|w| swap_view(w, &dir, tz, None, &sched.name)).collect();
    let mut ctx = base(v, "schedules", q.flash.as_deref());
    if let Some(m) = swap_flash(q.flash.as_deref()) {
        ctx.insert("flash", m);
    }
    ctx.insert("can_edit", &can_edit);
    ctx.insert("next_up", &next_up.map(|n| serde_json::json!({"person": dir.name(n.person), "start": views::time(n.start, tz)})));
    ctx.insert("swaps", &swaps);
    ctx.insert("need_approval", &state.store.swaps_need_approval(org, id).await?);
    ctx.insert("s", &serde_json::json!({"id": sched.id.0, "name": sched.name, "time_zone": tz.name()}));
    ctx.insert("on_call_now", &current.map(|p| dir.name(p)));
    ctx.insert("weeks", &weeks);
    ctx.insert("week_view", &week);
    ctx.insert("title", &title);
    ctx.insert("date", &date.format("%Y-%m-%d").to_string());
    ctx.insert("prev", &prev.format("%Y-%m-%d").to_string());
    ctx.insert("next", &next.format("%Y-%m-%d").to_string());
    ctx.insert("today", &today.format("%Y-%m-%d").to_string());
    ctx.insert("legend", &legend);
    ctx.insert("overrides", &overrides);
    ctx.insert("people", &people.iter().filter(|p| !p.disabled).map(|p| views::person_view(p, &dir)).collect::<Vec<_>>());
    ctx.insert("handoff", &handoff.format("%H:%M").to_string());
    ctx.insert("ov_start", &ov_start);
    ctx.insert("ov_end", &ov_end);
    ctx.insert("ov_open", &(prefill_day.is_some() || error.is_some()));
    ctx.insert("error", &error);
    ctx.insert("hours", &(0..24).step_by(3).collect::<Vec<_>>());
    Ok((status, render("schedule.html", &ctx)?).into_response())
}

pub async fn show(State(state): State<AppState>, v: Viewer, Path(id): Path<i64>, Query(q): Query<CalendarQuery>) -> WebResult<Response> {
    schedule_page(&state, &v, ScheduleId(id), &q, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct OverrideForm {
    person: String,
    start: String,
    end: String,
}

pub async fn add_override(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>, Form(f): Form<OverrideForm>) -> WebResult<Response> {
    let sched = state.store.schedule(v.org.id, ScheduleId(id)).await?;
    let tz = sched.time_zone;
    let result = async {
        let person = PersonId(f.person.trim().parse().map_err(|_| "Choose who covers.".to_string())?);
        let start = views::parse_input_datetime(&f.start, tz).ok_or("Start: enter a date and time.")?;
        let end = views::parse_input_datetime(&f.end, tz).ok_or("End: enter a date and time.")?;
        Ok::<_, String>(Override::new(person, start, end))
    }
    .await;
    let err = match result {
        Err(e) => e,
        Ok(o) => match state.store.add_override(v.org.id, sched.id, &o, Timestamp::now()).await {
            Ok(_) => {
                let date = views::local(o.start, tz).format("%Y-%m-%d");
                return Ok(see_other(&format!("/schedules/{id}?date={date}&flash=override")).into_response());
            }
            Err(StoreError::Invalid(e)) => friendly_override_error(&e, &state, &sched, &o).await,
            Err(e) => return Err(e.into()),
        },
    };
    let q = CalendarQuery::default();
    schedule_page(&state, &v, sched.id, &q, Some(err), StatusCode::BAD_REQUEST).await
}

/// The store's message names ids and UTC; say it with names and local times instead.
async fn friendly_override_error(e: &oncall_core::ValidationError, state: &AppState, sched: &Schedule, o: &Override) -> String {
    let tz = sched.time_zone;
    match e.field.as_str() {
        "override.end" => "The override must end after it starts.".into(),
        "override.start" => {
            let people = state.store.list_people(sched.org).await.unwrap_or_default();
            let dir = Directory::new(&people);
            match sched.overrides.iter().find(|x| x.overlaps(o)) {
                Some(x) => format!(
                    "This overlaps the override of {} from {} to {}. Remove that one first or pick other times.",
                    dir.name(x.person),
                    views::time(x.start, tz),
                    views::time(x.end, tz)
                ),
                None => "This overlaps another override.".into(),
            }
        }
        "override.person" => "Choose someone of your organization.".into(),
        _ => e.to_string(),
    }
}

pub async fn remove_override(State(state): State<AppState>, Manager(v): Manager, Path((id, oid)): Path<(i64, i64)>) -> WebResult<Response> {
    // Make sure the override belongs to this schedule (and so to this organization).
    let sched = state.store.schedule(v.org.id, ScheduleId(id)).await?;
    if !sched.overrides.iter().any(|o| o.id == Some(OverrideId(oid))) {
        return Err(WebError::NotFound);
    }
    state.store.remove_override(v.org.id, OverrideId(oid)).await?;
    Ok(see_other(&format!("/schedules/{id}?flash=override-removed")).into_response())
}

// ---- creating and editing rotations ----

/// The editable shape of a layer, as the form shows it.
#[derive(Debug, Clone, serde::Serialize)]
struct LayerForm {
    name: String,
    members: Vec<i64>,
    shift_count: u32,
    shift_unit: &'static str,
    start_date: String,
    handoff_time: String,
}

fn layer_form(l: &Layer) -> LayerForm {
    let (count, unit) = match l.rotation.shift_length {
        ShiftLength::Hours(n) => (n, "hours"),
        ShiftLength::Days(n) => (n, "days"),
        ShiftLength::Weeks(n) => (n, "weeks"),
    };
    LayerForm {
        name: l.name.clone(),
        members: l.rotation.members.iter().map(|p| p.0).collect(),
        shift_count: count,
        shift_unit: unit,
        start_date: l.rotation.start_date.format("%Y-%m-%d").to_string(),
        handoff_time: l.rotation.handoff_time.format("%H:%M").to_string(),
    }
}

fn blank_layer(today: NaiveDate) -> LayerForm {
    LayerForm { name: String::new(), members: vec![], shift_count: 1, shift_unit: "weeks", start_date: calendar::week_start(today).format("%Y-%m-%d").to_string(), handoff_time: "09:00".into() }
}

#[allow(clippy::too_many_arguments)]
fn edit_page(v: &Viewer, people: &[Person], id: Option<i64>, name: &str, tz: &str, layers: Vec<LayerForm>, need_approval: bool, error: Option<String>, status: StatusCode) -> WebResult<Response> {
    let dir = Directory::new(people);
    let today = views::local(Timestamp::now(), v.org.time_zone).date_naive();
    let mut layers = layers;
    // Always one empty layer to add; member slots: current members plus three spare.
    let show_blank = layers.iter().all(|l| !l.name.is_empty() || !l.members.is_empty());
    if show_blank {
        let mut b = blank_layer(today);
        if layers.is_empty() {
            b.name = "Primary".into();
        }
        layers.push(b);
    }
    let existing = layers.len() - usize::from(show_blank);
    let layers: Vec<_> = layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let slots = (l.members.len() + 3).max(4);
            let mut members: Vec<Option<i64>> = l.members.iter().copied().map(Some).collect();
            members.resize(slots, None);
            serde_json::json!({"i": i, "l": l, "slots": members, "is_new": i >= existing})
        })
        .collect();
    let mut ctx = base(v, "schedules", None);
    ctx.insert("id", &id);
    ctx.insert("name", name);
    ctx.insert("time_zone", tz);
    ctx.insert("layers", &layers);
    ctx.insert("people", &people.iter().filter(|p| !p.disabled).map(|p| views::person_view(p, &dir)).collect::<Vec<_>>());
    ctx.insert("error", &error);
    ctx.insert("zones", &common_zones(tz));
    ctx.insert("need_approval", &need_approval);
    Ok((status, render("schedule_edit.html", &ctx)?).into_response())
}

/// Time zones offered first in the picker (any IANA name can be typed).
fn common_zones(current: &str) -> Vec<String> {
    let mut z: Vec<String> = [
        "UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
        "America/Sao_Paulo", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !current.is_empty() && !z.iter().any(|x| x == current) {
        z.insert(0, current.to_string());
    }
    z
}

pub async fn new_form(State(state): State<AppState>, Manager(v): Manager) -> WebResult<Response> {
    let people = state.store.list_people(v.org.id).await?;
    edit_page(&v, &people, None, "", v.org.time_zone.name(), vec![], true, None, StatusCode::OK)
}

pub async fn edit_form(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    let s = state.store.schedule(v.org.id, ScheduleId(id)).await?;
    let people = state.store.list_people(v.org.id).await?;
    let need = state.store.swaps_need_approval(v.org.id, s.id).await?;
    edit_page(&v, &people, Some(id), &s.name, s.time_zone.name(), s.layers.iter().map(layer_form).collect(), need, None, StatusCode::OK)
}

/// Parses the rotation form. Returns the schedule and the layers as typed (to re-show them).
fn parse_schedule_form(pairs: &[(String, String)]) -> (Result<NewSchedule, String>, String, String, Vec<LayerForm>) {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let name = get("name");
    let tz = get("time_zone");
    let mut by_index: BTreeMap<usize, Vec<(&str, &str)>> = BTreeMap::new();
    for (k, v) in pairs {
        if let Some(rest) = k.strip_prefix("layers[") {
            if let Some((idx, field)) = rest.split_once("].") {
                if let Ok(i) = idx.parse::<usize>() {
                    by_index.entry(i).or_default().push((field, v.as_str()));
                }
            }
        }
    }
    let mut forms = Vec::new();
    let mut layers = Vec::new();
    let mut error: Option<String> = None;
    for (pos, (_, fields)) in by_index.iter().enumerate() {
        let one = |f: &str| fields.iter().find(|(k, _)| *k == f).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
        let members: Vec<i64> = fields.iter().filter(|(k, _)| *k == "member").filter_map(|(_, v)| v.trim().parse().ok()).collect();
        let lname = one("name");
        let removed = one("remove") == "on";
        let form = LayerForm {
            name: lname.clone(),
            members: members.clone(),
            shift_count: one("shift_count").parse().unwrap_or(0),
            shift_unit: match one("shift_unit").as_str() {
                "hours" => "hours",
                "days" => "days",
                _ => "weeks",
            },
            start_date: one("start_date"),
            handoff_time: one("handoff_time"),
        };
        // An untouched blank layer, or one ticked for removal, is dropped.
        if removed || (lname.is_empty() && members.is_empty()) {
            continue;
        }
        forms.push(form.clone());
        let n = pos + 1;
        let parsed = (|| {
            let start_date = NaiveDate::parse_from_str(&form.start_date, "%Y-%m-%d").map_err(|_| format!("Layer {n}: choose the date the rotation starts."))?;
            let handoff_time = NaiveTime::parse_from_str(&form.handoff_time, "%H:%M")
                .or_else(|_| NaiveTime::parse_from_str(&form.handoff_time, "%H:%M:%S"))
                .map_err(|_| format!("Layer {n}: enter the handoff time like 09:00."))?;
            let shift_length = match form.shift_unit {
                "hours" => ShiftLength::Hours(form.shift_count),
                "days" => ShiftLength::Days(form.shift_count),
                _ => ShiftLength::Weeks(form.shift_count),
            };
            Ok::<_, String>(Layer {
                name: if lname.is_empty() { format!("Layer {n}") } else { lname.clone() },
                rotation: Rotation { members: members.iter().map(|m| PersonId(*m)).collect(), shift_length, start_date, handoff_time },
            })
        })();
        match parsed {
            Ok(l) => layers.push(l),
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    let result = match error {
        Some(e) => Err(e),
        None if layers.is_empty() => Err("Add at least one rotation layer with its members.".into()),
        None => Ok(NewSchedule { name: name.clone(), time_zone: tz.clone(), layers }),
    };
    (result, name, tz, forms)
}

fn friendly_schedule_error(e: &oncall_core::ValidationError) -> String {
    // `layers[0].members` → "Layer 1 members".
    let field = e.field.strip_prefix("layers[").and_then(|r| r.split_once("].")).map(|(i, f)| {
        let n = i.parse::<usize>().map(|i| i + 1).unwrap_or(0);
        format!("Layer {n} {}", f.replace('_', " "))
    });
    match field {
        Some(f) => format!("{f}: {}.", e.message),
        None => format!("{}: {}.", e.field.replace('_', " "), e.message),
    }
}

async fn save(state: &AppState, v: &Viewer, id: Option<ScheduleId>, pairs: Vec<(String, String)>) -> WebResult<Response> {
    let people = state.store.list_people(v.org.id).await?;
    let (parsed, name, tz, forms) = parse_schedule_form(&pairs);
    // The checkbox sends nothing when unticked, so the form carries a marker saying it showed it;
    // a post without the marker (an older form, a script) leaves the setting alone.
    let has = |k: &str| pairs.iter().any(|(n, _)| n == k);
    // (A new schedule without it keeps the default: swaps need approval.)
    let need_approval = has("swaps_approval_shown").then(|| has("swaps_need_approval"));
    let err = match parsed {
        Err(e) => e,
        Ok(new) => {
            let res = match id {
                Some(id) => state.store.update_schedule(v.org.id, id, &new).await.map(|_| id),
                None => state.store.create_schedule(v.org.id, &new, Timestamp::now()).await,
            };
            match res {
                Ok(sid) if need_approval.is_some() => {
                    state.store.set_swaps_need_approval(v.org.id, sid, need_approval.unwrap_or(true)).await?;
                    return Ok(see_other(&format!("/schedules/{}?flash={}", sid.0, if id.is_some() { "saved" } else { "created" })).into_response());
                }
                Ok(sid) => return Ok(see_other(&format!("/schedules/{}?flash={}", sid.0, if id.is_some() { "saved" } else { "created" })).into_response()),
                Err(StoreError::Invalid(e)) => friendly_schedule_error(&e),
                Err(e) => return Err(e.into()),
            }
        }
    };
    edit_page(v, &people, id.map(|i| i.0), &name, &tz, forms, need_approval.unwrap_or(true), Some(err), StatusCode::BAD_REQUEST)
}

pub async fn create(State(state): State<AppState>, Manager(v): Manager, Form(pairs): Form<Vec<(String, String)>>) -> WebResult<Response> {
    save(&state, &v, None, pairs).await
}

pub async fn update(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>, Form(pairs): Form<Vec<(String, String)>>) -> WebResult<Response> {
    state.store.schedule(v.org.id, ScheduleId(id)).await?; // 404 before anything else
    save(&state, &v, Some(ScheduleId(id)), pairs).await
}

// ---- my shifts and the iCal feed ----

/// A person's shifts across all schedules overlapping `[from, to)`, whole (not cut at the window), by start.
pub fn person_shifts(schedules: &[Schedule], person: PersonId, from: Timestamp, to: Timestamp) -> Vec<(&Schedule, schedule::Shift)> {
    let mut out: Vec<_> = schedules.iter().flat_map(|s| schedule::whole_shifts(s, from, to).into_iter().filter(|sh| sh.person == person).map(move |sh| (s, sh))).collect();
    out.sort_by_key(|(_, sh)| sh.start);
    out
}

/// How far ahead My shifts lists shifts (and the shifts a swap may name).
const MY_HORIZON: Millis = Millis(56 * 24 * 3_600_000);

pub async fn my_shifts(State(state): State<AppState>, v: Viewer, headers: HeaderMap, Query(f): Query<Flash>) -> WebResult<Response> {
    my_shifts_page(&state, &v, &headers, f.flash.as_deref(), None, StatusCode::OK).await
}

/// What the flash codes of swaps say (the layout's table knows the others).
fn swap_flash(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "swap-asked" => "Request sent. Your colleague sees it on their My shifts page.",
        "swap-accepted" => "Accepted. A manager approves it next; until then the schedule stays as it was.",
        "swap-applied" => "Done: the swap is on the schedule now.",
        "swap-declined" => "Declined. Your colleague sees your answer.",
        "swap-cancelled" => "Request withdrawn.",
        "swap-approved" => "Approved: the swap is on the schedule now.",
        "swap-refused" => "Refused. Both people see it on their My shifts page.",
        _ => return None,
    })
}

/// A swap as the lists show it; `me` marks which side the viewer is on.
fn swap_view(w: &Swap, dir: &Directory, tz: chrono_tz::Tz, me: Option<PersonId>, schedule: &str) -> serde_json::Value {
    let span = |s: Span| format!("{} → {}", views::time(s.start, tz), views::time(s.end, tz));
    let status = match w.status {
        SwapStatus::Asked => "waiting for the colleague",
        SwapStatus::Accepted => "accepted, waiting for a manager",
        SwapStatus::Approved => "approved",
        SwapStatus::Declined => "declined",
        SwapStatus::Refused => "refused by a manager",
        SwapStatus::Cancelled => "withdrawn",
    };
    serde_json::json!({
        "id": w.id.0, "schedule_id": w.new.schedule.0, "schedule": schedule,
        "requester": dir.name(w.new.requester), "taker": dir.name(w.new.taker),
        "shift": span(w.new.shift), "back": w.new.back.map(span), "is_swap": w.new.back.is_some(),
        "status": w.status.as_str(), "status_text": status, "open": w.status.is_open(),
        "mine": me == Some(w.new.requester), "for_me": me == Some(w.new.taker),
    })
}

async fn my_shifts_page(state: &AppState, v: &Viewer, headers: &HeaderMap, flash: Option<&str>, error: Option<String>, status: StatusCode) -> WebResult<Response> {
    let mut ctx = base(v, "my_shifts", flash);
    if let Some(m) = swap_flash(flash) {
        ctx.insert("flash", m);
    }
    ctx.insert("error", &error);
    let tz = v.tz;
    let Some(me) = v.user.person else {
        ctx.insert("shifts", &Vec::<()>::new());
        ctx.insert("feed_url", &None::<String>);
        ctx.insert("team", &Vec::<()>::new());
        ctx.insert("incoming", &Vec::<()>::new());
        ctx.insert("outgoing", &Vec::<()>::new());
        return Ok((status, render("my_shifts.html", &ctx)?).into_response());
    };
    let now = Timestamp::now();
    let schedules = state.store.list_schedules(v.org.id).await?;
    let people = state.store.list_people(v.org.id).await?;
    let dir = Directory::new(&people);
    let shifts: Vec<_> = person_shifts(&schedules, me, now, now + MY_HORIZON)
        .into_iter()
        .map(|(s, sh)| {
            // Who takes over when this shift ends (issue 18 item 9).
            let then = schedule::on_call(s, sh.end).map(|o| o.person).filter(|p| *p != me);
            serde_json::json!({
                "schedule": s.name, "schedule_id": s.id.0, "start": views::time(sh.start, tz), "end": views::time(sh.end, tz),
                "length": views::duration(sh.end - sh.start), "now": sh.start <= now,
                "is_override": matches!(sh.source, schedule::Source::Override(_)),
                "then": then.map(|p| dir.name(p)),
                "can_swap": sh.start > now && matches!(sh.source, schedule::Source::Layer(_)),
                "start_ms": sh.start.0,
            })
        })
        .collect();
    // The schedules the viewer is on: who is on call now and who is next.
    let team: Vec<_> = schedules
        .iter()
        .filter(|s| s.layers.iter().any(|l| l.rotation.members.contains(&me)) || s.overrides.iter().any(|o| o.person == me && o.end > now))
        .map(|s| {
            let who = schedule::on_call(s, now).map(|o| o.person);
            let next = schedule::next_on_call(s, now);
            serde_json::json!({
                "id": s.id.0, "name": s.name, "now": who.map(|p| dir.name(p)), "now_is_me": who == Some(me),
                "next": next.map(|n| dir.name(n.person)), "next_is_me": next.is_some_and(|n| n.person == me),
                "next_at": next.map(|n| views::time(n.start, tz)),
            })
        })
        .collect();
    let names: std::collections::HashMap<i64, &str> = schedules.iter().map(|s| (s.id.0, s.name.as_str())).collect();
    let swaps = state.store.swaps_of_person(v.org.id, me).await?;
    let recent = |w: &&Swap| w.status.is_open() || w.decided_at.or(w.answered_at).is_some_and(|t| t > now - Millis::hours(24 * 14));
    let view = |w: &Swap| swap_view(w, &dir, tz, Some(me), names.get(&w.new.schedule.0).copied().unwrap_or(""));
    let incoming: Vec<_> = swaps.iter().filter(|w| w.new.taker == me).filter(recent).map(view).collect();
    let outgoing: Vec<_> = swaps.iter().filter(|w| w.new.requester == me).filter(recent).map(view).collect();
    let token = state.store.calendar_token(v.org.id, me).await?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = if crate::auth::is_tls(headers, state.config.force_secure_cookies) { "https" } else { "http" };
    ctx.insert("shifts", &shifts);
    ctx.insert("team", &team);
    ctx.insert("incoming", &incoming);
    ctx.insert("outgoing", &outgoing);
    ctx.insert("feed_url", &Some(format!("{scheme}://{host}/calendar/{token}.ics")));
    Ok((status, render("my_shifts.html", &ctx)?).into_response())
}

// ---- shift swaps ----

/// The shift of `person` in `sched` starting at `start`, if it is one they could hand over: in
/// the future, within My shifts' horizon, from a rotation (not an override).
fn shift_starting(sched: &Schedule, person: PersonId, start: Timestamp, now: Timestamp) -> Option<Span> {
    if start <= now || start >= now + MY_HORIZON {
        return None;
    }
    schedule::whole_shifts(sched, now, now + MY_HORIZON + Millis::hours(24 * 14))
        .into_iter()
        .find(|s| s.start == start && s.person == person && matches!(s.source, schedule::Source::Layer(_)))
        .map(|s| Span { start: s.start, end: s.end })
}

#[derive(Debug, Deserialize)]
pub struct SwapQuery {
    schedule: i64,
    start: i64,
}

pub async fn swap_form(State(state): State<AppState>, v: Viewer, Query(q): Query<SwapQuery>) -> WebResult<Response> {
    swap_page(&state, &v, ScheduleId(q.schedule), Timestamp(q.start), None, StatusCode::OK).await
}

/// The page asking a colleague: give the shift away (to anyone of the organization) or trade it
/// for one of their shifts of the same schedule.
async fn swap_page(state: &AppState, v: &Viewer, id: ScheduleId, start: Timestamp, error: Option<String>, status: StatusCode) -> WebResult<Response> {
    let me = v.user.person.ok_or(WebError::NotFound)?;
    let sched = state.store.schedule(v.org.id, id).await?;
    let now = Timestamp::now();
    let shift = shift_starting(&sched, me, start, now).ok_or(WebError::NotFound)?;
    let people = state.store.list_people(v.org.id).await?;
    let dir = Directory::new(&people);
    let tz = v.tz;
    let colleagues: Vec<_> = people.iter().filter(|p| !p.disabled && p.id != me).map(|p| views::person_view(p, &dir)).collect();
    let theirs: Vec<_> = schedule::whole_shifts(&sched, now, now + MY_HORIZON)
        .into_iter()
        .filter(|s| s.person != me && s.start > now && matches!(s.source, schedule::Source::Layer(_)))
        .filter(|s| !(s.start < shift.end && shift.start < s.end))
        .filter(|s| people.iter().any(|p| p.id == s.person && !p.disabled))
        .map(|s| {
            serde_json::json!({
                "value": format!("{}:{}", s.person.0, s.start.0), "person": dir.name(s.person), "colour": dir.colour(s.person),
                "start": views::time(s.start, tz), "end": views::time(s.end, tz), "length": views::duration(s.end - s.start),
            })
        })
        .collect();
    let mut ctx = base(v, "my_shifts", None);
    ctx.insert("s", &serde_json::json!({"id": sched.id.0, "name": sched.name}));
    ctx.insert("shift", &serde_json::json!({"start": views::time(shift.start, tz), "end": views::time(shift.end, tz), "length": views::duration(shift.end - shift.start), "start_ms": shift.start.0}));
    ctx.insert("colleagues", &colleagues);
    ctx.insert("theirs", &theirs);
    ctx.insert("need_approval", &state.store.swaps_need_approval(v.org.id, id).await?);
    ctx.insert("error", &error);
    Ok((status, render("schedule_swap.html", &ctx)?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SwapForm {
    schedule: i64,
    start: i64,
    /// "give" or "swap".
    kind: String,
    /// Who takes the shift, for "give".
    #[serde(default)]
    taker: String,
    /// "<person>:<start>" of the colleague's shift, for "swap".
    #[serde(default)]
    with: String,
}

pub async fn request_swap(State(state): State<AppState>, v: Viewer, Form(f): Form<SwapForm>) -> WebResult<Response> {
    let me = v.user.person.ok_or(WebError::NotFound)?;
    let id = ScheduleId(f.schedule);
    let sched = state.store.schedule(v.org.id, id).await?;
    let now = Timestamp::now();
    let start = Timestamp(f.start);
    let shift = shift_starting(&sched, me, start, now).ok_or(WebError::NotFound)?;
    let parsed = if f.kind == "swap" {
        const CHOOSE: &str = "Choose the colleague's shift you take instead.";
        let theirs = f.with.split_once(':').and_then(|(who, at)| Some((PersonId(who.parse().ok()?), Timestamp(at.parse().ok()?))));
        match theirs {
            None => Err(CHOOSE),
            Some((who, at)) => match shift_starting(&sched, who, at, now) {
                Some(back) => Ok(NewSwap { schedule: id, requester: me, taker: who, shift, back: Some(back) }),
                None => Err("That shift is no longer theirs to trade; choose another."),
            },
        }
    } else {
        match f.taker.trim().parse() {
            Ok(t) => Ok(NewSwap { schedule: id, requester: me, taker: PersonId(t), shift, back: None }),
            Err(_) => Err("Choose who takes the shift."),
        }
    };
    let err = match parsed {
        Err(e) => e.to_string(),
        Ok(new) => match state.store.request_swap(v.org.id, &new, now).await {
            Ok(_) => return Ok(see_other("/my/shifts?flash=swap-asked").into_response()),
            Err(StoreError::Conflict(_)) => "You already asked someone about this shift; withdraw that request first.".into(),
            Err(StoreError::Invalid(e)) if e.field == "swap.back" => "The shift you take instead must not overlap the one you give.".into(),
            Err(StoreError::Invalid(e)) if e.field == "swap.taker" => "Choose someone else.".into(),
            Err(StoreError::NotFound(_)) => "Choose someone of your organization.".into(),
            Err(e) => return Err(e.into()),
        },
    };
    swap_page(&state, &v, id, start, Some(err), StatusCode::BAD_REQUEST).await
}

/// Says why a swap could not move on, in words (the overrides it would write overlap one that is
/// there, or someone answered first).
fn friendly_swap_error(e: &oncall_core::ValidationError) -> String {
    match e.field.as_str() {
        "override.start" => "The swap overlaps an override already on the schedule. A manager can remove that override, then try again.".into(),
        "swap.status" => format!("Nothing changed: {}.", e.message),
        _ => e.to_string(),
    }
}

/// The viewer's answer to a swap: `accept` or `decline` (as the colleague asked) or `cancel` (as
/// the requester). Someone else's swap, or another organization's, is 404.
pub async fn answer_swap(State(state): State<AppState>, v: Viewer, headers: HeaderMap, Path((id, action)): Path<(i64, String)>) -> WebResult<Response> {
    let me = v.user.person.ok_or(WebError::NotFound)?;
    let id = SwapId(id);
    let now = Timestamp::now();
    let result = match action.as_str() {
        "accept" => state.store.accept_swap(v.org.id, id, me, now).await.map(|s| if s == SwapStatus::Approved { "swap-applied" } else { "swap-accepted" }),
        "decline" => state.store.decline_swap(v.org.id, id, me, now).await.map(|_| "swap-declined"),
        "cancel" => state.store.cancel_swap(v.org.id, id, me, now).await.map(|_| "swap-cancelled"),
        _ => return Err(WebError::NotFound),
    };
    match result {
        Ok(code) => Ok(see_other(&format!("/my/shifts?flash={code}")).into_response()),
        Err(StoreError::Invalid(e)) => my_shifts_page(&state, &v, &headers, None, Some(friendly_swap_error(&e)), StatusCode::CONFLICT).await,
        Err(e) => Err(e.into()),
    }
}

/// A manager's decision on an accepted swap of schedule `id`: `approve` writes the overrides,
/// `refuse` writes nothing.
pub async fn decide_swap(State(state): State<AppState>, Manager(v): Manager, Path((id, sid, action)): Path<(i64, i64, String)>) -> WebResult<Response> {
    let approve = match action.as_str() {
        "approve" => true,
        "refuse" => false,
        _ => return Err(WebError::NotFound),
    };
    match state.store.decide_swap(v.org.id, ScheduleId(id), SwapId(sid), approve, Timestamp::now()).await {
        Ok(_) => Ok(see_other(&format!("/schedules/{id}?flash={}", if approve { "swap-approved" } else { "swap-refused" })).into_response()),
        Err(StoreError::Invalid(e)) => schedule_page(&state, &v, ScheduleId(id), &CalendarQuery::default(), Some(friendly_swap_error(&e)), StatusCode::CONFLICT).await,
        Err(e) => Err(e.into()),
    }
}

pub async fn reset_feed(State(state): State<AppState>, v: Viewer) -> WebResult<Response> {
    let me = v.user.person.ok_or(WebError::NotFound)?;
    state.store.reset_calendar_token(v.org.id, me).await?;
    Ok(see_other("/my/shifts?flash=feed").into_response())
}

/// `GET /calendar/<token>.ics`: no login (calendar apps cannot log in); the token is the key.
pub async fn ical_feed(State(state): State<AppState>, Path(token): Path<String>) -> WebResult<Response> {
    let token = token.strip_suffix(".ics").unwrap_or(&token);
    let (org, person) = state.store.person_by_calendar_token(token).await?.ok_or(WebError::NotFound)?;
    let p = state.store.person(org, person).await?;
    let schedules = state.store.list_schedules(org).await?;
    let now = Timestamp::now();
    let events: Vec<_> = person_shifts(&schedules, person, now - Millis::hours(24 * 30), now + Millis::hours(24 * 120))
        .into_iter()
        .map(|(s, sh)| FeedEvent { uid: format!("{}-{}-{}@oncall", s.id.0, person.0, sh.start.0), summary: format!("On call: {}", s.name), start: sh.start, end: sh.end })
        .collect();
    let body = calendar::ical(&format!("{} – on-call shifts", p.name), &events, now);
    Ok(([(header::CONTENT_TYPE, "text/calendar; charset=utf-8"), (header::CACHE_CONTROL, "private, max-age=300")], body).into_response())
}

//! The home page. Managers: who is on call now in every schedule (with phone), open requests
//! with their age, today's counts with MTTA/MTTR. Employees: their open requests and their
//! next shifts. Both: a warning for each person on call now whom paging cannot reach, with what
//! fixes it (managers about everyone, employees about themselves; `crate::reachability`).

use super::layout::{base, Flash};
use crate::auth::Viewer;
use crate::error::WebResult;
use crate::pages::requests::{request_rows, user_names};
use crate::reachability::reach_of;
use crate::state::AppState;
use crate::templates::render;
use crate::views::{self, Directory};
use axum::extract::{Query, State};
use axum::response::Html;
use oncall_core::store::RequestFilter;
use oncall_core::{schedule, Millis, Timestamp};

pub async fn show(State(state): State<AppState>, v: Viewer, Query(f): Query<Flash>) -> WebResult<Html<String>> {
    let store = &state.store;
    let org = v.org.id;
    let tz = v.tz;
    let now = Timestamp::now();
    let people = store.list_people(org).await?;
    let dir = Directory::new(&people);
    let users = user_names(&state, org).await?;
    let mut ctx = base(&v, "dashboard", f.flash.as_deref());

    let mut filter = RequestFilter { open_only: true, limit: 50, ..RequestFilter::default() };
    if !v.is_manager() {
        filter.person = Some(v.user.person.unwrap_or(oncall_core::PersonId(-1)));
    }
    let found = store.search_requests(org, &filter).await?;
    let open = request_rows(&state, org, &found, now, tz, &dir, &users).await?;
    ctx.insert("open_requests", &open);

    let schedules = store.list_schedules(org).await?;
    let on_call: Vec<_> = schedules
        .iter()
        .map(|s| {
            let who = schedule::on_call(s, now);
            let until = who.and_then(|_| schedule::whole_shifts(s, now, now + Millis::hours(24 * 28)).first().map(|sh| sh.end));
            let person = who.and_then(|o| people.iter().find(|p| p.id == o.person));
            serde_json::json!({
                "schedule_id": s.id.0,
                "schedule": s.name,
                "person": person.map(|p| p.name.clone()),
                "colour": who.map(|o| dir.colour(o.person)),
                "phone": person.and_then(|p| p.phones().next().map(|e| e.to_string())),
                "until": until.map(|t| views::time(t, tz)),
                "is_override": matches!(who.map(|o| o.source), Some(schedule::Source::Override(_))),
            })
        })
        .collect();
    ctx.insert("on_call", &on_call);

    // Paging health: everyone on call now, once however many schedules they cover.
    let mut on_call_now: Vec<(&oncall_core::Person, Vec<&str>)> = Vec::new();
    for s in &schedules {
        let Some(p) = schedule::on_call(s, now).and_then(|o| people.iter().find(|p| p.id == o.person)) else { continue };
        if !v.is_manager() && v.user.person != Some(p.id) {
            continue;
        }
        match on_call_now.iter_mut().find(|(q, _)| q.id == p.id) {
            Some((_, names)) => names.push(&s.name),
            None => on_call_now.push((p, vec![&s.name])),
        }
    }
    let (mut cannot_reach, mut partly) = (Vec::new(), Vec::new());
    for (p, names) in on_call_now {
        let reach = reach_of(&state.store, &*state.config.reachability, p).await?;
        let w = serde_json::json!({"person_id": p.id.0, "person": p.name, "schedules": names.join(", "), "problems": reach.problems});
        if reach.unreachable {
            cannot_reach.push(w);
        } else if !reach.problems.is_empty() {
            partly.push(w);
        }
    }
    ctx.insert("cannot_reach", &cannot_reach);
    ctx.insert("partly_reachable", &partly);
    ctx.insert("paging_problems", &if v.is_manager() { state.config.reachability.general() } else { Vec::new() });

    if v.is_manager() {
        let today = views::day_start(views::local(now, tz).date_naive(), tz);
        let m = store.metrics(org, today, now + Millis(1), tz).await?;
        ctx.insert(
            "today",
            &serde_json::json!({
                "requests": m.total.requests,
                "answered": m.total.answered,
                "acknowledged": m.total.acknowledged,
                "completed": m.total.completed,
                "mtta": views::opt_duration(m.total.time_to_acknowledge.mean),
                "mttr": views::opt_duration(m.total.time_to_complete.mean),
            }),
        );
    } else if let Some(me) = v.user.person {
        // My next shifts over the coming four weeks, across schedules.
        let mut mine: Vec<(Timestamp, serde_json::Value)> = Vec::new();
        for s in &schedules {
            for sh in schedule::whole_shifts(s, now, now + Millis::hours(24 * 28)).into_iter().filter(|sh| sh.person == me).take(5) {
                mine.push((sh.start, serde_json::json!({"schedule": s.name, "start": views::time(sh.start, tz), "end": views::time(sh.end, tz), "now": sh.start <= now})));
            }
        }
        mine.sort_by_key(|(t, _)| *t);
        ctx.insert("my_shifts", &mine.into_iter().map(|(_, v)| v).take(6).collect::<Vec<_>>());
    }
    Ok(render("dashboard.html", &ctx)?)
}

//! Escalation policies: list, add, edit (steps with targets and waits, repeats), disable.
//! Step targets are `person:<id>` or `schedule:<id>` values of select boxes.

use super::layout::{base, see_other, Flash};
use crate::auth::{Manager, Viewer};
use crate::error::WebResult;
use crate::state::AppState;
use crate::templates::render;
use crate::views::{self, Directory};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use oncall_core::escalation::{NewPolicy, Step, Target};
use oncall_core::{Millis, PersonId, PolicyId, ScheduleId, StoreError, Timestamp};
use std::collections::BTreeMap;

fn target_value(t: &Target) -> String {
    match t {
        Target::Person(p) => format!("person:{}", p.0),
        Target::Schedule(s) => format!("schedule:{}", s.0),
    }
}

fn parse_target(s: &str) -> Option<Target> {
    let (kind, id) = s.split_once(':')?;
    let id: i64 = id.parse().ok()?;
    match kind {
        "person" => Some(Target::Person(PersonId(id))),
        "schedule" => Some(Target::Schedule(ScheduleId(id))),
        _ => None,
    }
}

pub async fn list(State(state): State<AppState>, Manager(v): Manager, Query(f): Query<Flash>) -> WebResult<Html<String>> {
    let org = v.org.id;
    let people = state.store.list_people(org).await?;
    let dir = Directory::new(&people);
    let schedules = state.store.list_schedules(org).await?;
    let name_of = |t: &Target| match t {
        Target::Person(p) => dir.name(*p),
        Target::Schedule(s) => format!("on call in {}", schedules.iter().find(|x| x.id == *s).map(|x| x.name.as_str()).unwrap_or("?")),
    };
    let rows: Vec<_> = state
        .store
        .list_policies(org)
        .await?
        .iter()
        .map(|p| {
            let steps: Vec<_> = p.steps.iter().map(|s| serde_json::json!({"targets": s.targets.iter().map(name_of).collect::<Vec<_>>(), "wait": views::duration(s.wait)})).collect();
            serde_json::json!({"id": p.id.0, "name": p.name, "repeat": p.repeat, "disabled": p.disabled, "steps": steps})
        })
        .collect();
    let mut ctx = base(&v, "policies", f.flash.as_deref());
    ctx.insert("policies", &rows);
    Ok(render("policies.html", &ctx)?)
}

#[derive(Debug, Clone, Default, serde::Serialize)]
struct StepView {
    targets: Vec<String>,
    wait: String,
}

async fn form_page(state: &AppState, v: &Viewer, id: Option<i64>, name: &str, repeat: &str, steps: Vec<StepView>, error: Option<String>, status: StatusCode) -> WebResult<Response> {
    let org = v.org.id;
    let people = state.store.list_people(org).await?;
    let dir = Directory::new(&people);
    let mut options: Vec<(String, String)> = state.store.list_schedules(org).await?.iter().map(|s| (format!("schedule:{}", s.id.0), format!("Whoever is on call in {}", s.name))).collect();
    options.extend(people.iter().filter(|p| !p.disabled).map(|p| (format!("person:{}", p.id.0), p.name.clone())));
    let mut steps = steps;
    steps.push(StepView { targets: vec![], wait: "5".into() });
    let steps: Vec<_> = steps
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let n = (s.targets.len() + 2).max(3);
            s.targets.resize(n, String::new());
            serde_json::json!({"i": i, "s": s})
        })
        .collect();
    let _ = dir;
    let mut ctx = base(v, "policies", None);
    ctx.insert("id", &id);
    ctx.insert("name", name);
    ctx.insert("repeat", repeat);
    ctx.insert("steps", &steps);
    ctx.insert("options", &options);
    ctx.insert("error", &error);
    Ok((status, render("policy_edit.html", &ctx)?).into_response())
}

pub async fn new_form(State(state): State<AppState>, Manager(v): Manager) -> WebResult<Response> {
    form_page(&state, &v, None, "", "0", vec![], None, StatusCode::OK).await
}

pub async fn edit_form(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    let p = state.store.policy(v.org.id, PolicyId(id)).await?;
    let steps = p.steps.iter().map(|s| StepView { targets: s.targets.iter().map(target_value).collect(), wait: (s.wait.0 / 60_000).to_string() }).collect();
    form_page(&state, &v, Some(id), &p.name, &p.repeat.to_string(), steps, None, StatusCode::OK).await
}

fn parse(pairs: &[(String, String)]) -> (Result<NewPolicy, String>, String, String, Vec<StepView>) {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let name = get("name");
    let repeat_s = get("repeat");
    let mut by: BTreeMap<usize, StepView> = BTreeMap::new();
    for (k, v) in pairs {
        let Some(rest) = k.strip_prefix("steps[") else { continue };
        let Some((i, field)) = rest.split_once("].") else { continue };
        let Ok(i) = i.parse::<usize>() else { continue };
        let e = by.entry(i).or_default();
        match field {
            "target" if !v.trim().is_empty() => e.targets.push(v.trim().to_string()),
            "wait" => e.wait = v.trim().to_string(),
            _ => {}
        }
    }
    let views: Vec<StepView> = by.into_values().filter(|s| !s.targets.is_empty()).collect();
    let result = (|| {
        let repeat: u32 = if repeat_s.is_empty() { 0 } else { repeat_s.parse().map_err(|_| "Repeat: a number of extra rounds, like 1.".to_string())? };
        let mut steps = Vec::new();
        for (i, s) in views.iter().enumerate() {
            let wait: f64 = s.wait.parse().map_err(|_| format!("Step {}: the wait is a number of minutes.", i + 1))?;
            let targets = s.targets.iter().map(|t| parse_target(t).ok_or_else(|| format!("Step {}: unknown target.", i + 1))).collect::<Result<Vec<_>, _>>()?;
            steps.push(Step { targets, wait: Millis((wait * 60_000.0).round() as i64) });
        }
        Ok(NewPolicy { name: name.clone(), steps, repeat })
    })();
    (result, name, repeat_s, views)
}

fn friendly(e: &oncall_core::ValidationError) -> String {
    let field = e.field.strip_prefix("steps[").and_then(|r| r.split_once(']')).map(|(i, rest)| {
        let n = i.parse::<usize>().map(|i| i + 1).unwrap_or(0);
        format!("Step {n}{}", rest.replace('.', " "))
    });
    format!("{}: {}.", field.unwrap_or_else(|| e.field.clone()), e.message)
}

async fn save(state: &AppState, v: &Viewer, id: Option<PolicyId>, pairs: Vec<(String, String)>) -> WebResult<Response> {
    let (parsed, name, repeat, steps) = parse(&pairs);
    let err = match parsed {
        Err(e) => e,
        Ok(new) => {
            let res = match id {
                Some(id) => state.store.update_policy(v.org.id, id, &new).await,
                None => state.store.create_policy(v.org.id, &new, Timestamp::now()).await.map(|_| ()),
            };
            match res {
                Ok(()) => return Ok(see_other(&format!("/policies?flash={}", if id.is_some() { "saved" } else { "created" })).into_response()),
                Err(StoreError::Invalid(e)) => friendly(&e),
                Err(e) => return Err(e.into()),
            }
        }
    };
    form_page(state, v, id.map(|i| i.0), &name, &repeat, steps, Some(err), StatusCode::BAD_REQUEST).await
}

pub async fn create(State(state): State<AppState>, Manager(v): Manager, Form(pairs): Form<Vec<(String, String)>>) -> WebResult<Response> {
    save(&state, &v, None, pairs).await
}

pub async fn update(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>, Form(pairs): Form<Vec<(String, String)>>) -> WebResult<Response> {
    state.store.policy(v.org.id, PolicyId(id)).await?;
    save(&state, &v, Some(PolicyId(id)), pairs).await
}

pub async fn disable(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    state.store.set_policy_disabled(v.org.id, PolicyId(id), true, Timestamp::now()).await?;
    Ok(see_other("/policies?flash=disabled").into_response())
}

pub async fn enable(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    state.store.set_policy_disabled(v.org.id, PolicyId(id), false, Timestamp::now()).await?;
    Ok(see_other("/policies?flash=enabled").into_response())
}

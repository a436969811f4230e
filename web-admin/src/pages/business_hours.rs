//! Business hours (managers only, issue 7 item 1): the organization's weekly opening times in its time
//! zone and the days it is closed (holidays). After hours, phone-menu options marked `normal` record the
//! caller's message and page when business hours start; `urgent` ones page at any hour. Saving an empty
//! week is refused (remove the hours instead: always open). The config file's `[business_hours]` only
//! seeds these once, so what is saved here is what counts.

use super::layout::{base, see_other, Flash};
use crate::auth::{Manager, Viewer};
use crate::error::WebResult;
use crate::state::AppState;
use crate::templates::render;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::NaiveDate;
use oncall_core::business_hours::{format_day, parse_date, weekday_name, WEEKDAYS};
use oncall_core::{BusinessHours, StoreError, Timestamp};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What the form shows: the text of each day, the closures one per line ("2026-12-25 Christmas").
struct FormView {
    time_zone: String,
    days: Vec<(String, String)>,
    closures: String,
}

fn view_of(hours: &BusinessHours, labels: &BTreeMap<NaiveDate, String>) -> FormView {
    FormView {
        time_zone: hours.time_zone.name().to_string(),
        days: WEEKDAYS
            .iter()
            .map(|d| (weekday_name(*d).to_string(), format_day(hours.day(*d))))
            .collect(),
        closures: hours
            .closures
            .iter()
            .map(|d| {
                format!(
                    "{} {}",
                    d.format("%Y-%m-%d"),
                    labels.get(d).map(String::as_str).unwrap_or("")
                )
                .trim_end()
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

async fn page(
    state: &AppState,
    v: &Viewer,
    form: Option<FormView>,
    flash: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> WebResult<Response> {
    let stored = state.store.business_hours(v.org.id).await?;
    let now = Timestamp::now();
    let summary = stored.as_ref().map(|s| {
        let open = s.hours.is_open(now);
        let next = if open {
            None
        } else {
            s.hours
                .next_opening(now)
                .map(|t| s.hours.local(t).format("%a %-d %b %Y, %H:%M").to_string())
        };
        json!({"open": open, "next_opening": next})
    });
    let form = form.unwrap_or_else(|| match &stored {
        Some(s) => view_of(&s.hours, &s.closure_labels),
        None => FormView {
            time_zone: v.org.time_zone.name().to_string(),
            days: WEEKDAYS
                .iter()
                .map(|d| (weekday_name(*d).to_string(), String::new()))
                .collect(),
            closures: String::new(),
        },
    });
    let days: Vec<Value> = form
        .days
        .iter()
        .map(|(name, text)| {
            let mut label = name.clone();
            label[..1].make_ascii_uppercase();
            json!({"name": name, "label": label, "text": text})
        })
        .collect();
    let mut ctx = base(v, "business_hours", flash);
    ctx.insert("configured", &stored.is_some());
    ctx.insert("summary", &summary);
    ctx.insert("time_zone", &form.time_zone);
    ctx.insert("days", &days);
    ctx.insert("closures", &form.closures);
    ctx.insert("error", &error);
    Ok((status, render("business_hours.html", &ctx)?).into_response())
}

pub async fn show(State(state): State<AppState>, Manager(v): Manager, Query(f): Query<Flash>) -> WebResult<Response> {
    page(&state, &v, None, f.flash.as_deref(), None, StatusCode::OK).await
}

/// Reads the form: the week through the same parser as the config file, closures as `YYYY-MM-DD label`
/// lines. Errors are sentences naming the box.
fn parse_form(pairs: &[(String, String)]) -> (FormView, Result<(BusinessHours, BTreeMap<NaiveDate, String>), String>) {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let form = FormView {
        time_zone: get("time_zone"),
        days: WEEKDAYS
            .iter()
            .map(|d| (weekday_name(*d).to_string(), get(weekday_name(*d))))
            .collect(),
        closures: get("closures"),
    };
    let parsed = (|| {
        let mut dates = Vec::new();
        let mut labels = BTreeMap::new();
        for (i, line) in form
            .closures
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            let (date, label) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let day = parse_date("closed", date).map_err(|e| format!("Closed days, line {}: {}.", i + 1, e.message))?;
            labels.insert(day, label.trim().to_string());
            dates.push(date.to_string());
        }
        let days: [&str; 7] = std::array::from_fn(|i| form.days[i].1.as_str());
        let hours = BusinessHours::parse(&form.time_zone, days, &dates).map_err(|e| {
            let field = match e.field.as_str() {
                "time_zone" => "Time zone".to_string(),
                "weekly" => "Opening hours".to_string(),
                day => {
                    let mut d = day.to_string();
                    if !d.is_empty() {
                        d[..1].make_ascii_uppercase();
                    }
                    d
                }
            };
            format!("{field}: {}.", e.message)
        })?;
        Ok((hours, labels))
    })();
    (form, parsed)
}

pub async fn save(
    State(state): State<AppState>,
    Manager(v): Manager,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    if pairs.iter().any(|(k, _)| k == "remove") {
        state.store.clear_business_hours(v.org.id).await?;
        return Ok(see_other("/business-hours?flash=deleted").into_response());
    }
    let (form, parsed) = parse_form(&pairs);
    let (hours, labels) = match parsed {
        Ok(p) => p,
        Err(msg) => return page(&state, &v, Some(form), None, Some(msg), StatusCode::BAD_REQUEST).await,
    };
    match state
        .store
        .set_business_hours(v.org.id, &hours, &labels, Timestamp::now())
        .await
    {
        Ok(()) => Ok(see_other("/business-hours?flash=saved").into_response()),
        Err(StoreError::Invalid(e)) => {
            page(
                &state,
                &v,
                Some(form),
                None,
                Some(format!("{}: {}.", e.field, e.message)),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

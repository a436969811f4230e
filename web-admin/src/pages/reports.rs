//! The metrics page (`/reports`; `/metrics` is Prometheus): requests per day, time to answer /
//! acknowledge / complete per day (p50 and p90), requests by hour of day and per-person
//! response times, over a date range (default: the last 30 days) in the organization's zone.

use crate::auth::Manager;
use crate::charts::{self, Series, Unit};
use crate::error::{WebError, WebResult};
use super::layout::base;
use crate::state::AppState;
use crate::templates::render;
use crate::views::{self, Directory};
use axum::extract::{Query, State};
use axum::response::Html;
use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use oncall_core::metrics::Metrics;
use oncall_core::{Millis, Timestamp};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The inclusive local dates asked for, defaulting to the last 30 days; at most two years.
pub fn date_range(q: &RangeQuery, tz: Tz, now: Timestamp) -> Result<(NaiveDate, NaiveDate), WebError> {
    let today = views::local(now, tz).date_naive();
    let parse = |s: &Option<String>, field: &str| -> Result<Option<NaiveDate>, WebError> {
        match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| WebError::BadRequest(format!("{field}: use a date like 2026-11-03."))),
        }
    };
    let to = parse(&q.to, "To")?.unwrap_or(today);
    let from = parse(&q.from, "From")?.unwrap_or(to - Duration::days(29));
    if from > to {
        return Err(WebError::BadRequest("The start date is after the end date.".into()));
    }
    if (to - from).num_days() > 731 {
        return Err(WebError::BadRequest("Choose at most two years.".into()));
    }
    Ok((from, to))
}

pub async fn compute(state: &AppState, org: oncall_core::OrgId, tz: Tz, from: NaiveDate, to: NaiveDate) -> WebResult<Metrics> {
    let start = views::day_start(from, tz);
    let end = views::day_start(to + Duration::days(1), tz);
    Ok(state.store.metrics(org, start, end, tz).await?)
}

fn minutes(m: Option<Millis>) -> Option<f64> {
    m.map(|m| m.0 as f64 / 60_000.0)
}


pub async fn show(State(state): State<AppState>, Manager(v): Manager, Query(q): Query<RangeQuery>) -> WebResult<Html<String>> {
    let tz = v.tz;
    let now = Timestamp::now();
    let (from, to) = date_range(&q, tz, now)?;
    let m = compute(&state, v.org.id, tz, from, to).await?;
    let people = state.store.list_people(v.org.id).await?;
    let dir = Directory::new(&people);

    let day_labels: Vec<String> = m.by_day.iter().map(|(d, _)| d.format("%-d %b").to_string()).collect();
    let per_day = charts::bars("Requests per day", &day_labels, &m.by_day.iter().map(|(_, s)| s.requests as f64).collect::<Vec<_>>(), "#2563eb", Unit::Count);
    let timing = |pick: fn(&oncall_core::metrics::Summary) -> &oncall_core::metrics::Stats, title: &str, colour: &str| {
        charts::lines(
            title,
            &day_labels,
            &[
                Series { name: "p50 (median)", colour, dashed: false, values: m.by_day.iter().map(|(_, s)| minutes(pick(s).p50)).collect() },
                Series { name: "p90", colour, dashed: true, values: m.by_day.iter().map(|(_, s)| minutes(pick(s).p90)).collect() },
            ],
            Unit::Minutes,
        )
    };
    let answer = timing(|s| &s.time_to_answer, "Time to answer per day", "#059669");
    let ack = timing(|s| &s.time_to_acknowledge, "Time to acknowledge per day", "#d97706");
    let complete = timing(|s| &s.time_to_complete, "Time to complete per day", "#7c3aed");
    let hour_labels: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let by_hour = charts::bars("Requests by hour of day", &hour_labels, &m.by_hour.iter().map(|(_, s)| s.requests as f64).collect::<Vec<_>>(), "#0891b2", Unit::Count);
    let person_rows: Vec<_> = m
        .by_person
        .iter()
        .map(|(p, s)| {
            serde_json::json!({
                "name": dir.name(*p), "colour": dir.colour(*p), "requests": s.requests,
                "answer_p50": views::opt_duration(s.time_to_answer.p50), "ack_p50": views::opt_duration(s.time_to_acknowledge.p50),
                "ack_p90": views::opt_duration(s.time_to_acknowledge.p90), "complete_p50": views::opt_duration(s.time_to_complete.p50),
            })
        })
        .collect();
    let per_person = charts::hbars(
        "Median time to acknowledge per person",
        &m.by_person.iter().map(|(p, s)| (dir.name(*p), minutes(s.time_to_acknowledge.p50).unwrap_or(0.0), views::opt_duration(s.time_to_acknowledge.p50))).collect::<Vec<_>>(),
        "#d97706",
    );
    let t = &m.total;
    let mut ctx = base(&v, "reports", None);
    ctx.insert("from", &from.format("%Y-%m-%d").to_string());
    ctx.insert("to", &to.format("%Y-%m-%d").to_string());
    ctx.insert("presets", &[(7, "7 days"), (30, "30 days"), (90, "90 days")].iter().map(|(d, l)| {
        let today = views::local(now, tz).date_naive();
        serde_json::json!({"label": l, "from": (today - Duration::days(d - 1)).format("%Y-%m-%d").to_string(), "to": today.format("%Y-%m-%d").to_string()})
    }).collect::<Vec<_>>());
    ctx.insert(
        "total",
        &serde_json::json!({
            "requests": t.requests, "answered": t.answered, "acknowledged": t.acknowledged, "completed": t.completed,
            "exhausted": t.exhausted, "abandoned": t.abandoned,
            "tta_p50": views::opt_duration(t.time_to_answer.p50), "tta_p90": views::opt_duration(t.time_to_answer.p90),
            "mtta": views::opt_duration(t.time_to_acknowledge.mean), "tta_ack_p90": views::opt_duration(t.time_to_acknowledge.p90),
            "mttr": views::opt_duration(t.time_to_complete.mean), "ttc_p90": views::opt_duration(t.time_to_complete.p90),
        }),
    );
    ctx.insert("empty", &(t.requests == 0));
    ctx.insert("chart_per_day", &per_day);
    ctx.insert("chart_answer", &answer);
    ctx.insert("chart_ack", &ack);
    ctx.insert("chart_complete", &complete);
    ctx.insert("chart_by_hour", &by_hour);
    ctx.insert("chart_per_person", &per_person);
    ctx.insert("people", &person_rows);
    let source_rows: Vec<_> = m
        .by_source
        .iter()
        .map(|(source, s)| {
            let name = match source.as_str() {
                "call" => "Phone calls",
                "alert" => "Alerts from monitoring",
                "api" => "Opened through the API",
                other => other,
            };
            serde_json::json!({
                "name": name, "requests": s.requests, "acknowledged": s.acknowledged, "exhausted": s.exhausted,
                "ack_p50": views::opt_duration(s.time_to_acknowledge.p50), "complete_p50": views::opt_duration(s.time_to_complete.p50),
            })
        })
        .collect();
    ctx.insert("sources", &source_rows);
    Ok(render("reports.html", &ctx)?)
}

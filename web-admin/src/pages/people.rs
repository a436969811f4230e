//! People: list, add, edit (contacts, role, time zone, notification rules), disable. A person
//! can be given a web login from the same form (e-mail + initial password). The list flags anyone
//! paging cannot reach now ("cannot be reached", with why and the fix; `crate::reachability`).

use super::layout::{base, see_other, Flash};
use crate::auth::{Manager, Viewer};
use crate::error::WebResult;
use crate::reachability::reach_of;
use crate::state::AppState;
use crate::templates::render;
use crate::views::{self, Directory};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use oncall_core::person::{Channel, NewPerson, NotificationRule, Role};
use oncall_core::{Millis, PersonId, StoreError, Timestamp};

pub async fn list(State(state): State<AppState>, Manager(v): Manager, Query(f): Query<Flash>) -> WebResult<Html<String>> {
    let org = v.org.id;
    let people = state.store.list_people(org).await?;
    let dir = Directory::new(&people);
    let users = state.store.list_users(org).await?;
    let mut rows = Vec::with_capacity(people.len());
    for p in &people {
        let login = users.iter().find(|u| u.person == Some(p.id));
        let rules: Vec<String> = p.notification_rules.iter().map(rule_text).collect();
        // A disabled person is never paged on purpose: their badge says so, no flag.
        let reach = if p.disabled { Default::default() } else { reach_of(&state.store, &*state.config.reachability, p).await? };
        rows.push(serde_json::json!({"p": views::person_view(p, &dir), "login": login.map(|u| u.email.clone()), "rules": rules, "reach": reach}));
    }
    let mut ctx = base(&v, "people", f.flash.as_deref());
    ctx.insert("people", &rows);
    let teams: Vec<_> = state.store.list_teams(org).await?.into_iter().map(|t| serde_json::json!({"name": t.name, "members": t.members.iter().map(|m| dir.name(*m)).collect::<Vec<_>>()})).collect();
    ctx.insert("teams", &teams);
    Ok(render("people.html", &ctx)?)
}

pub fn rule_text(r: &NotificationRule) -> String {
    let what = match r.channel {
        Channel::Call => "Call",
        Channel::Text => "Text",
    };
    if r.delay.0 == 0 {
        format!("{what} at once")
    } else {
        format!("{what} after {}", views::duration(r.delay))
    }
}

/// The form's values as typed, to show again with an error.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct PersonFormView {
    name: String,
    email: String,
    role: String,
    phones: String,
    sip_uris: String,
    time_zone: String,
    rules: Vec<(String, String)>,
    has_login: bool,
}

fn form_page(v: &Viewer, id: Option<i64>, f: PersonFormView, error: Option<String>, status: StatusCode) -> WebResult<Response> {
    let mut f = f;
    while f.rules.len() < 4 {
        f.rules.push((String::new(), String::new()));
    }
    let mut ctx = base(v, "people", None);
    ctx.insert("id", &id);
    ctx.insert("f", &f);
    ctx.insert("error", &error);
    Ok((status, render("person_edit.html", &ctx)?).into_response())
}

pub async fn new_form(Manager(v): Manager) -> WebResult<Response> {
    let f = PersonFormView { role: "employee".into(), time_zone: v.org.time_zone.name().into(), rules: vec![("call".into(), "0".into())], ..Default::default() };
    form_page(&v, None, f, None, StatusCode::OK)
}

pub async fn edit_form(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    let p = state.store.person(v.org.id, PersonId(id)).await?;
    let n = p.to_new();
    let has_login = state.store.user_for_person(v.org.id, p.id).await?.is_some();
    let f = PersonFormView {
        name: n.name,
        email: n.email.unwrap_or_default(),
        role: p.role.as_str().into(),
        phones: n.phones.join("\n"),
        sip_uris: n.sip_uris.join("\n"),
        time_zone: n.time_zone,
        rules: p.notification_rules.iter().map(|r| (r.channel.as_str().to_string(), (r.delay.0 / 60_000).to_string())).collect(),
        has_login,
    };
    form_page(&v, Some(id), f, None, StatusCode::OK)
}

fn parse(pairs: &[(String, String)]) -> (Result<(NewPerson, String), String>, PersonFormView) {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.to_string()).unwrap_or_default();
    let all = |k: &str| pairs.iter().filter(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).collect::<Vec<_>>();
    let lines = |s: &str| s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect::<Vec<_>>();
    let channels = all("rule_channel");
    let delays = all("rule_delay");
    let view = PersonFormView {
        name: get("name"),
        email: get("email"),
        role: get("role"),
        phones: get("phones"),
        sip_uris: get("sip_uris"),
        time_zone: get("time_zone"),
        rules: channels.iter().cloned().zip(delays.iter().cloned()).collect(),
        has_login: false,
    };
    let result = (|| {
        let mut rules = Vec::new();
        for (i, (c, d)) in channels.iter().zip(delays.iter()).enumerate() {
            if c.is_empty() {
                continue;
            }
            let channel: Channel = c.parse().map_err(|_| format!("Rule {}: choose call or text.", i + 1))?;
            let minutes: i64 = if d.is_empty() { 0 } else { d.parse().map_err(|_| format!("Rule {}: the delay is a number of minutes.", i + 1))? };
            rules.push(NotificationRule::new(channel, Millis::minutes(minutes)));
        }
        let role: Role = view.role.parse().map_err(|_| "Choose a role.".to_string())?;
        let email = view.email.trim();
        Ok((
            NewPerson {
                name: view.name.clone(),
                email: (!email.is_empty()).then(|| email.to_string()),
                role: Some(role),
                phones: lines(&view.phones),
                sip_uris: lines(&view.sip_uris),
                time_zone: view.time_zone.clone(),
                notification_rules: rules,
            },
            get("login_password"),
        ))
    })();
    (result, view)
}

fn friendly(e: &StoreError) -> Option<String> {
    match e {
        StoreError::Invalid(v) => {
            let field = v.field.replace("phones[", "Phone ").replace("sip_uris[", "SIP address ").replace("notification_rules[", "Rule ").replace(']', "");
            // Indices in messages are 0-based; people count from 1.
            let field = field
                .split(' ')
                .map(|w| w.parse::<usize>().map(|n| (n + 1).to_string()).unwrap_or_else(|_| w.to_string()))
                .collect::<Vec<_>>()
                .join(" ")
                .replace('_', " ");
            Some(format!("{field}: {}.", v.message))
        }
        StoreError::Conflict(m) => Some(format!("{} is already used.", m.replace("person with e-mail", "The e-mail").replace("user with e-mail", "The login e-mail"))),
        _ => None,
    }
}

async fn save(state: &AppState, v: &Viewer, id: Option<PersonId>, pairs: Vec<(String, String)>) -> WebResult<Response> {
    let (parsed, mut view) = parse(&pairs);
    if let Some(id) = id {
        view.has_login = state.store.user_for_person(v.org.id, id).await?.is_some();
    }
    let err = match parsed {
        Err(e) => e,
        Ok((new, password)) => {
            let res = match id {
                Some(id) => state.store.update_person(v.org.id, id, &new).await.map(|_| id),
                None => state.store.add_person(v.org.id, &new, Timestamp::now()).await,
            };
            match res {
                Ok(pid) => {
                    // Optional login for the person, linked by e-mail.
                    if !password.is_empty() && !view.has_login {
                        let email = new.email.clone().unwrap_or_default();
                        let role = new.role.unwrap_or(Role::Employee);
                        if let Err(e) = state.store.add_user(v.org.id, &new.name, &email, role, &password).await {
                            let msg = friendly(&e).ok_or(e)?;
                            return form_page(v, Some(pid.0), view, Some(format!("Saved, but the login was not created: {msg}")), StatusCode::BAD_REQUEST);
                        }
                    }
                    return Ok(see_other(&format!("/people?flash={}", if id.is_some() { "saved" } else { "created" })).into_response());
                }
                Err(e) => friendly(&e).ok_or(e)?,
            }
        }
    };
    form_page(v, id.map(|i| i.0), view, Some(err), StatusCode::BAD_REQUEST)
}

pub async fn create(State(state): State<AppState>, Manager(v): Manager, Form(pairs): Form<Vec<(String, String)>>) -> WebResult<Response> {
    save(&state, &v, None, pairs).await
}

pub async fn update(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>, Form(pairs): Form<Vec<(String, String)>>) -> WebResult<Response> {
    state.store.person(v.org.id, PersonId(id)).await?;
    save(&state, &v, Some(PersonId(id)), pairs).await
}

pub async fn disable(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    if v.user.person == Some(PersonId(id)) {
        return Err(crate::error::WebError::BadRequest("You cannot disable yourself.".into()));
    }
    state.store.set_person_disabled(v.org.id, PersonId(id), true, Timestamp::now()).await?;
    Ok(see_other("/people?flash=disabled").into_response())
}

pub async fn enable(State(state): State<AppState>, Manager(v): Manager, Path(id): Path<i64>) -> WebResult<Response> {
    state.store.set_person_disabled(v.org.id, PersonId(id), false, Timestamp::now()).await?;
    Ok(see_other("/people?flash=enabled").into_response())
}

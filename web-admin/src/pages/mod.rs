//! The server-rendered site, one file per area. Every route except the login pages, static
//! files and the private calendar feeds sits behind [`crate::auth::session_layer`], or, under
//! `/operator`, behind [`operator::operator_layer`].

pub mod account;
pub mod business_hours;
pub mod dashboard;
pub mod integrations;
pub mod ivr;
pub mod operator;
pub mod people;
pub mod policies;
pub mod reports;
pub mod requests;
pub mod schedules;
pub mod webhooks;

mod layout;
// The pages' shared helpers, still reachable at `pages::base` and so on.
pub use layout::{base, flash_message, see_other, Flash};

use crate::auth::session_layer;
use crate::state::AppState;
use crate::templates;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

pub fn routes(state: AppState) -> Router {
    let protected = Router::new()
        .route("/", get(dashboard::show))
        .route("/logout", post(account::logout))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/requests", get(requests::list))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/acknowledge", post(requests::acknowledge))
        .route("/requests/{id}/complete", post(requests::complete))
        .route("/requests/{id}/notes", post(requests::add_note))
        .route("/requests/{id}/page-again", post(requests::page_again))
        .route("/requests/{id}/escalate", post(requests::escalate))
        .route("/requests/{id}/reassign", post(requests::reassign))
        .route("/recordings/{id}", get(requests::recording))
        .route("/recordings/{id}/download", get(requests::download))
        .route("/schedules", get(schedules::list))
        .route("/schedules/new", get(schedules::new_form).post(schedules::create))
        .route("/schedules/{id}", get(schedules::show))
        .route("/schedules/{id}/edit", get(schedules::edit_form).post(schedules::update))
        .route("/schedules/{id}/overrides", post(schedules::add_override))
        .route("/schedules/{id}/overrides/{oid}/delete", post(schedules::remove_override))
        .route("/schedules/{id}/swaps/{sid}/{action}", post(schedules::decide_swap))
        .route("/my/shifts", get(schedules::my_shifts))
        .route("/my/shifts/swap", get(schedules::swap_form))
        .route("/my/swaps", post(schedules::request_swap))
        .route("/my/swaps/{id}/{action}", post(schedules::answer_swap))
        .route("/my/calendar/reset", post(schedules::reset_feed))
        .route("/reports", get(reports::show))
        .route("/people", get(people::list))
        .route("/people/new", get(people::new_form).post(people::create))
        .route("/people/{id}/edit", get(people::edit_form).post(people::update))
        .route("/people/{id}/disable", post(people::disable))
        .route("/people/{id}/enable", post(people::enable))
        .route("/policies", get(policies::list))
        .route("/policies/new", get(policies::new_form).post(policies::create))
        .route("/policies/{id}/edit", get(policies::edit_form).post(policies::update))
        .route("/policies/{id}/disable", post(policies::disable))
        .route("/policies/{id}/enable", post(policies::enable))
        .route("/ivr", get(ivr::show).post(ivr::save_menu))
        .route("/business-hours", get(business_hours::show).post(business_hours::save))
        // The one route that takes an upload gets the big body limit; every other keeps `max_body_bytes`.
        .route("/ivr/greeting", post(ivr::upload_greeting).layer(axum::extract::DefaultBodyLimit::max(state.config.max_upload_bytes)))
        .route("/ivr/greeting.wav", get(ivr::greeting_audio))
        .route("/ivr/prompts/{name}", get(ivr::prompt_audio))
        .route("/integrations", get(integrations::list).post(integrations::create))
        .route("/integrations/{id}/revoke", post(integrations::revoke))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::show))
        .route("/webhooks/{id}/disable", post(webhooks::disable))
        .route("/webhooks/{id}/enable", post(webhooks::enable))
        .route("/webhooks/{id}/delete", post(webhooks::delete))
        .route("/webhooks/{id}/secret", post(webhooks::new_secret))
        .route("/webhooks/{id}/retry", post(webhooks::retry))
        .layer(axum::middleware::from_fn_with_state(state.clone(), session_layer));
    Router::new()
        .route("/login", get(account::login_form).post(account::login))
        .route("/static/style.css", get(style))
        .route("/static/app.js", get(script))
        .route("/calendar/{token}", get(schedules::ical_feed))
        .merge(operator::routes(state.clone()))
        .merge(protected)
        .fallback(not_found)
        .with_state(state)
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], templates::STYLE_CSS)
}

async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], templates::APP_JS)
}

async fn not_found() -> crate::error::WebError {
    crate::error::WebError::NotFound
}

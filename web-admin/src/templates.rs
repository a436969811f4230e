//! The tera templates and static files, embedded in the binary at compile time.
//!
//! One `Tera` instance is built on first use from `include_str!`ed sources, so the binary
//! needs no template directory at run time. Autoescaping is on for every template (tera's
//! default for `.html`), so names and notes typed by users cannot inject markup.

use axum::response::Html;
use std::sync::OnceLock;
use tera::{Context, Tera};

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = embedded!(
    "base.html",
    "macros.html",
    "error.html",
    "login.html",
    "operator_login.html",
    "operator.html",
    "dashboard.html",
    "requests.html",
    "request.html",
    "schedules.html",
    "schedule.html",
    "schedule_edit.html",
    "my_shifts.html",
    "schedule_swap.html",
    "reports.html",
    "people.html",
    "person_edit.html",
    "policies.html",
    "policy_edit.html",
    "ivr.html",
    "account.html",
    "webhooks.html",
    "integrations.html",
    "webhook.html",
    "business_hours.html",
);

pub const STYLE_CSS: &str = include_str!("../static/style.css");
pub const APP_JS: &str = include_str!("../static/app.js");

fn tera() -> &'static Result<Tera, String> {
    static TERA: OnceLock<Result<Tera, String>> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut t = Tera::default();
        t.autoescape_on(vec![".html"]);
        t.add_raw_templates(TEMPLATES.iter().copied()).map_err(|e| format!("{e:?}"))?;
        Ok(t)
    })
}

/// Why a page could not be rendered. The handlers' `crate::error::WebError` turns it into a 500 page;
/// this module does not name that type, because the error page itself is rendered here.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The embedded templates do not parse (caught by the `templates_parse` test before a release).
    #[error("templates: {0}")]
    Load(String),
    #[error(transparent)]
    Render(#[from] tera::Error),
}

/// Renders `name` with `ctx`.
pub fn render(name: &str, ctx: &Context) -> Result<Html<String>, RenderError> {
    let t = tera().as_ref().map_err(|e| RenderError::Load(e.clone()))?;
    Ok(Html(t.render(name, ctx)?))
}

/// The error page; falls back to plain HTML if the templates themselves are broken.
pub fn error_page(status: u16, title: &str, message: &str) -> String {
    let mut ctx = Context::new();
    ctx.insert("status", &status);
    ctx.insert("title", title);
    ctx.insert("message", message);
    match tera().as_ref().ok().and_then(|t| t.render("error.html", &ctx).ok()) {
        Some(html) => html,
        None => format!("<!doctype html><title>{status}</title><h1>{status}</h1>"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_parse() {
        if let Err(e) = super::tera() {
            panic!("templates do not parse: {e}");
        }
    }
}

//! What every page handler shares: the context of the layout (who is logged in, the CSRF token, the
//! flash line), the `?flash=` query it comes from, and the redirect after a form POST. Its own module so
//! the pages use it without importing `pages/mod.rs`, which only routes to them.

use crate::auth::Viewer;
use serde::Deserialize;
use tera::Context;

/// `?flash=...` after a redirect: a fixed set of messages, so links cannot make us say anything.
#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    pub flash: Option<String>,
}

pub fn flash_message(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "saved" => "Saved.",
        "created" => "Created.",
        "acknowledged" => "Acknowledged. The caller's request is yours now.",
        "completed" => "Marked as completed. Thank you!",
        "note" => "Note added.",
        "override" => "Override added; the calendar shows it now.",
        "override-removed" => "Override removed.",
        "password" => "Password changed. Other sessions were logged out.",
        "disabled" => "Disabled.",
        "enabled" => "Enabled again.",
        "greeting" => "Greeting uploaded and converted for the phone line.",
        "feed" => "New calendar link created; the old one no longer works.",
        "revoked" => "Token revoked.",
        "deleted" => "Deleted.",
        "requeued" => "The failed deliveries are queued again.",
        "paging-again" => "Paging again now.",
        "escalating" => "Moving on to the next step now.",
        "reassigned" => "Reassigned: paging them now.",
        _ => return None,
    })
}

/// The context every page's layout needs.
pub fn base(v: &Viewer, active: &str, flash: Option<&str>) -> Context {
    let mut ctx = Context::new();
    ctx.insert("me", &serde_json::json!({
        "name": v.user.name,
        "email": v.user.email,
        "is_manager": v.is_manager(),
        "role": v.user.role.as_str(),
        "has_person": v.user.person.is_some(),
    }));
    ctx.insert("org_name", &v.org.name);
    // Every page says which zone its times are in (the viewer's own, issue 18 item 11).
    ctx.insert("time_zone", v.tz.name());
    ctx.insert("csrf", &v.csrf);
    ctx.insert("active", active);
    ctx.insert("flash", &flash_message(flash));
    ctx
}

/// `303 See Other` to `to`: the answer to every successful form POST (no resubmit on reload).
pub fn see_other(to: &str) -> axum::response::Redirect {
    axum::response::Redirect::to(to)
}

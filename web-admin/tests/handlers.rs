//! Handler tests: the whole app driven through tower's `oneshot`, with a tiny cookie jar, on a
//! fresh SQLite store (see support/mod.rs). Each test is one behaviour a user relies on.

mod support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use oncall_core::RequestStatus;
use std::collections::HashMap;
use support::*;
use tower::ServiceExt;

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn location(&self) -> String {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }
}

/// A browser-ish client: keeps cookies, sends forms.
struct Client {
    app: Router,
    cookies: HashMap<String, String>,
}

impl Client {
    fn new(app: Router) -> Client {
        Client { app, cookies: HashMap::new() }
    }

    async fn send(&mut self, req: Request<Body>) -> Resp {
        let mut req = req;
        if !self.cookies.is_empty() {
            let c = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            req.headers_mut().insert(header::COOKIE, c.parse().unwrap());
        }
        let resp = self.app.clone().oneshot(req).await.unwrap();
        for sc in resp.headers().get_all(header::SET_COOKIE) {
            let s = sc.to_str().unwrap();
            let (kv, _) = s.split_once(';').unwrap_or((s, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() || s.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec();
        Resp { status, headers, body }
    }

    async fn get(&mut self, uri: &str) -> Resp {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn get_with(&mut self, uri: &str, name: &str, value: &str) -> Resp {
        self.send(Request::get(uri).header(name, value).body(Body::empty()).unwrap()).await
    }

    async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> Resp {
        let body = serde_urlencoded::to_string(form).unwrap();
        let req = Request::builder().method(Method::POST).uri(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from(body)).unwrap();
        self.send(req).await
    }

    async fn login(&mut self, email: &str, password: &str) -> Resp {
        let page = self.get("/login").await;
        let csrf = csrf_in(&page.text());
        self.post("/login", &[("email", email), ("password", password), ("csrf", &csrf), ("next", "/")]).await
    }

    /// Logs in and returns the session's CSRF token (read from the dashboard).
    async fn logged_in(&mut self, email: &str) -> String {
        let r = self.login(email, PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "login of {email}: {}", r.text());
        let home = self.get("/").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.text());
        csrf_in(&home.text())
    }
}

#[tokio::test]
async fn login_sets_a_safe_cookie_and_protected_pages_redirect() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let r = c.get("/requests?status=open").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2Frequests%3Fstatus%3Dopen");

    let bad = c.login(MANAGER_A, "wrong password!").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.text().contains("Wrong e-mail or password"));

    let page = c.get("/login").await;
    let csrf = csrf_in(&page.text());
    let ok = c.post("/login", &[("email", MANAGER_A), ("password", PASSWORD), ("csrf", &csrf), ("next", "/requests")]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), "/requests");
    let cookie = ok.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).find(|c| c.starts_with("oncall_session=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"), "{cookie}");
    assert_eq!(c.get("/requests").await.status, StatusCode::OK);

    // Behind a TLS proxy the cookie is Secure.
    let mut tls = Client::new(app(&f));
    let page = tls.get("/login").await;
    let csrf = csrf_in(&page.text());
    let body = serde_urlencoded::to_string([("email", MANAGER_A), ("password", PASSWORD), ("csrf", csrf.as_str())]).unwrap();
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(Body::from(body))
        .unwrap();
    let r = tls.send(req).await;
    assert!(r.headers.get_all(header::SET_COOKIE).iter().any(|v| v.to_str().unwrap().starts_with("oncall_session=") && v.to_str().unwrap().contains("Secure")));

    // Logout ends the session.
    let csrf = csrf_in(&c.get("/").await.text());
    assert_eq!(c.post("/logout", &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(c.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_form_without_its_csrf_cookie_is_refused() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let r = c.post("/login", &[("email", MANAGER_A), ("password", PASSWORD), ("csrf", "forged")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!c.cookies.contains_key("oncall_session"));
}

#[tokio::test]
async fn repeated_failures_are_rate_limited() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    for _ in 0..5 {
        assert_eq!(c.login(EMPLOYEE_A, "not the password").await.status, StatusCode::UNAUTHORIZED);
    }
    let r = c.login(EMPLOYEE_A, PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(r.text().contains("Too many failed attempts"));
}

#[tokio::test]
async fn every_post_needs_the_session_csrf_token() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let uri = format!("/requests/{}/acknowledge", f.unassigned_a.0);
    let r = c.post(&uri, &[("note", "no token")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c.post(&uri, &[("note", "wrong"), ("csrf", "0000")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(f.store.request(f.org_a, f.unassigned_a).await.unwrap().state.status(), RequestStatus::Received);
    let r = c.post(&uri, &[("note", "on my way"), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(f.store.request(f.org_a, f.unassigned_a).await.unwrap().state.status(), RequestStatus::Acknowledged);
}

#[tokio::test]
async fn dashboard_shows_who_is_on_call_and_open_requests() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    c.logged_in(MANAGER_A).await;
    let html = c.get("/").await.text();
    assert!(html.contains("Front desk"));
    assert!(html.contains("Eve Employee") || html.contains("Oscar Other"), "someone is on call");
    assert!(html.contains("tel:+4420794600"), "with the phone number");
    assert!(html.contains("Water leak in 4B") && html.contains("Locked out"));
    assert!(html.contains("MTTA"));
}

#[tokio::test]
async fn requests_list_filters_and_searches() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    c.logged_in(MANAGER_A).await;
    let all = c.get("/requests").await.text();
    assert!(all.contains("Water leak in 4B") && all.contains("Locked out"));
    assert!(!all.contains("Secret of B"), "organization B's request never shows");
    let by_caller = c.get("/requests?caller=%2B44+20+7946+0888").await.text();
    assert!(by_caller.contains("Locked out") && !by_caller.contains("Water leak"));
    let answered = c.get("/requests?status=answered").await.text();
    assert!(answered.contains("Water leak") && !answered.contains("Locked out"));
    let person = c.get(&format!("/requests?person={}", f.employee_a.0)).await.text();
    assert!(person.contains("Water leak") && !person.contains("Locked out"));
    let none = c.get("/requests?from=2001-01-01&to=2001-01-02").await.text();
    assert!(none.contains("No requests match"));
    assert_eq!(c.get("/requests?from=yesterday").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn request_detail_has_timeline_player_and_actions() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let html = c.get(&format!("/requests/{}", f.request_a.0)).await.text();
    assert!(html.contains("Water is coming through the ceiling"));
    assert!(html.contains(&format!("<audio controls preload=\"metadata\" src=\"/recordings/{}\"", f.recording_a.0)));
    assert!(html.contains(&format!("/recordings/{}/download", f.recording_a.0)));
    assert!(html.contains("Answered — Eve Employee"));

    let r = c.post(&format!("/requests/{}/complete", f.request_a.0), &[("csrf", &csrf), ("note", "Fixed the pipe")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("/requests/{}?flash=completed", f.request_a.0));
    let html = c.get(&r.location()).await.text();
    assert!(html.contains("Marked as completed") && html.contains("Fixed the pipe"));
    assert!(!html.contains("id=\"complete\""), "no complete button on a completed request");
    // Completing twice is a clear conflict, not a crash.
    let again = c.post(&format!("/requests/{}/complete", f.request_a.0), &[("csrf", &csrf)]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.text().contains("cannot become completed"));
}

#[tokio::test]
async fn recordings_answer_range_requests() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    c.logged_in(MANAGER_A).await;
    let uri = format!("/recordings/{}", f.recording_a.0);
    let full = c.get(&uri).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(full.headers[header::ACCEPT_RANGES], "bytes");
    let size = full.body.len();
    assert_eq!(size, 44 + 3 * 8000 * 2);

    let part = c.get_with(&uri, "range", "bytes=100-199").await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers[header::CONTENT_RANGE], format!("bytes 100-199/{size}").as_str());
    assert_eq!(part.body, full.body[100..200]);
    let tail = c.get_with(&uri, "range", "bytes=-10").await;
    assert_eq!(tail.body, full.body[size - 10..]);
    let open = c.get_with(&uri, "range", "bytes=48000-").await;
    assert_eq!(open.headers[header::CONTENT_RANGE], format!("bytes 48000-{}/{size}", size - 1).as_str());
    let bad = c.get_with(&uri, "range", &format!("bytes={}-", size + 5)).await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(bad.headers[header::CONTENT_RANGE], format!("bytes */{size}").as_str());

    let dl = c.get(&format!("{uri}/download")).await;
    assert_eq!(dl.status, StatusCode::OK);
    let cd = dl.headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(cd.starts_with("attachment; filename=\"request-") && cd.ends_with(".wav\""), "{cd}");
}

#[tokio::test]
async fn organization_b_gets_404_for_organization_a() {
    let f = fixture().await;
    let mut b = Client::new(app(&f));
    b.logged_in(MANAGER_B).await;
    for uri in [
        format!("/requests/{}", f.request_a.0),
        format!("/recordings/{}", f.recording_a.0),
        format!("/recordings/{}/download", f.recording_a.0),
        "/schedules/1".to_string(),
        format!("/people/{}/edit", f.employee_a.0),
    ] {
        let r = b.get(&uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(r.text().contains("Not found"));
    }
    let csrf = csrf_in(&b.get("/").await.text());
    let r = b.post(&format!("/requests/{}/complete", f.request_a.0), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(f.store.request(f.org_a, f.request_a).await.unwrap().state.status(), RequestStatus::Answered);
    // And B's own things work.
    assert_eq!(b.get(&format!("/recordings/{}", f.recording_b.0)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn employees_see_their_own_requests_and_no_manager_pages() {
    let f = fixture().await;
    let mut e = Client::new(app(&f));
    let csrf = e.logged_in(EMPLOYEE_A).await;
    for uri in ["/people", "/reports", "/policies", "/ivr", "/people/new", "/schedules/new", "/schedules/1/edit"] {
        let r = e.get(uri).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(r.text().contains("for managers"));
    }
    let list = e.get("/requests").await.text();
    assert!(list.contains("Water leak") && !list.contains("Locked out"), "only requests they handled");
    assert_eq!(e.get(&format!("/requests/{}", f.unassigned_a.0)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(e.get(&format!("/recordings/{}", f.recording_a.0)).await.status, StatusCode::OK);
    // The assigned employee may complete it.
    let r = e.post(&format!("/requests/{}/complete", f.request_a.0), &[("csrf", &csrf), ("note", "done")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Another employee may not even see it.
    let mut o = Client::new(app(&f));
    o.logged_in(OTHER_EMPLOYEE_A).await;
    assert_eq!(o.get(&format!("/requests/{}", f.request_a.0)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(o.get(&format!("/recordings/{}", f.recording_a.0)).await.status, StatusCode::NOT_FOUND);
    // Their own shifts and a calendar feed.
    let shifts = e.get("/my/shifts").await.text();
    assert!(shifts.contains("Front desk") && shifts.contains("/calendar/"));
}

#[tokio::test]
async fn rotation_and_override_show_on_the_calendar() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    assert_eq!(c.get("/schedules/new").await.status, StatusCode::OK);
    let today = chrono::Utc::now().date_naive();
    let start = today.format("%Y-%m-%d").to_string();
    let other = f.other_a.0.to_string();
    let manager = f.manager_a.0.to_string();
    // Validation errors come back in the form.
    let r = c.post("/schedules/new", &[("csrf", &csrf), ("name", "Nights"), ("time_zone", "Europe/London"), ("layers[0].name", "Weekly"), ("layers[0].shift_count", "1"), ("layers[0].shift_unit", "weeks"), ("layers[0].start_date", &start), ("layers[0].handoff_time", "09:00")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("Layer 1 members: a rotation needs at least one member"), "{}", r.text());
    let r = c
        .post(
            "/schedules/new",
            &[
                ("csrf", &csrf), ("name", "Nights"), ("time_zone", "Europe/London"),
                ("layers[0].name", "Weekly"), ("layers[0].shift_count", "1"), ("layers[0].shift_unit", "weeks"),
                ("layers[0].start_date", &start), ("layers[0].handoff_time", "00:00"),
                ("layers[0].member", &other), ("layers[0].member", ""), ("layers[0].member", &manager),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let loc = r.location();
    let id: i64 = loc.trim_start_matches("/schedules/").split('?').next().unwrap().parse().unwrap();
    let cal = c.get(&loc).await.text();
    assert!(cal.contains("Oscar Other") && cal.contains("Ada Manager"), "both members on the month view");
    let week = c.get(&format!("/schedules/{id}?view=week&date={start}")).await.text();
    assert!(week.contains("class=\"bar") && week.contains("Oscar Other"));

    // Edit: change the order; the calendar follows.
    let r = c
        .post(
            &format!("/schedules/{id}/edit"),
            &[("csrf", &csrf), ("name", "Nights"), ("time_zone", "Europe/London"), ("layers[0].name", "Weekly"), ("layers[0].shift_count", "2"), ("layers[0].shift_unit", "days"), ("layers[0].start_date", &start), ("layers[0].handoff_time", "08:00"), ("layers[0].member", &manager)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let s = f.store.schedule(f.org_a, oncall_core::ScheduleId(id)).await.unwrap();
    assert_eq!(s.layers[0].rotation.members, vec![f.manager_a]);

    // Clicking a day pre-fills the override form.
    let day = (today + chrono::Duration::days(3)).format("%Y-%m-%d").to_string();
    let pre = c.get(&format!("/schedules/{id}?override_date={day}")).await.text();
    assert!(pre.contains(&format!("value=\"{day}T08:00\"")));
    let end = (today + chrono::Duration::days(4)).format("%Y-%m-%d").to_string();
    let r = c.post(&format!("/schedules/{id}/overrides"), &[("csrf", &csrf), ("person", &f.employee_a.0.to_string()), ("start", &format!("{day}T08:00")), ("end", &format!("{end}T08:00"))]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let cal = c.get(&r.location()).await.text();
    assert!(cal.contains("Eve Employee") && cal.contains("chip override"), "override visible at once");
    // An overlapping one is refused with names, not ids.
    let r = c.post(&format!("/schedules/{id}/overrides"), &[("csrf", &csrf), ("person", &f.other_a.0.to_string()), ("start", &format!("{day}T12:00")), ("end", &format!("{end}T12:00"))]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("overlaps the override of Eve Employee"), "{}", r.text());
}

#[tokio::test]
async fn ical_feed_lists_my_shifts_without_login() {
    let f = fixture().await;
    let token = f.store.calendar_token(f.org_a, f.employee_a).await.unwrap();
    let mut anon = Client::new(app(&f));
    let r = anon.get(&format!("/calendar/{token}.ics")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/calendar; charset=utf-8");
    let body = r.text();
    assert!(body.starts_with("BEGIN:VCALENDAR\r\n") && body.contains("SUMMARY:On call: Front desk"));
    assert_eq!(anon.get(&format!("/calendar/{}.ics", "0".repeat(64))).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_page_draws_svg_charts() {
    let f = fixture().await;
    oncall_core::demo::seed(&f.store, oncall_core::Timestamp::now()).await.unwrap();
    let mut c = Client::new(app(&f));
    let r = c.login(oncall_core::demo::DEMO_MANAGER_EMAIL, oncall_core::demo::DEMO_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let html = c.get("/reports").await.text();
    assert!(html.matches("<svg class=\"chart\"").count() >= 6, "{html}");
    assert!(html.contains("p90") && html.contains("Median time to acknowledge, per person"));
    assert!(html.contains("id=\"by-source\"") && html.contains("Phone calls"), "the metrics are split by source");
    assert_eq!(c.get("/reports?from=2026-02-01&to=2026-01-01").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn people_and_policies_can_be_added_edited_and_disabled() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let r = c.post("/people/new", &[("csrf", &csrf), ("name", "Nia New"), ("email", "nia@a.example"), ("role", "employee"), ("time_zone", "Europe/London"), ("phones", "+44 20 7946 0100"), ("rule_channel", "call"), ("rule_delay", "0"), ("rule_channel", "text"), ("rule_delay", "2"), ("login_password", "nia-password-1")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let list = c.get("/people").await.text();
    assert!(list.contains("Nia New") && list.contains("Text after 2 min 00 s") && list.contains("nia@a.example"));
    let bad = c.post("/people/new", &[("csrf", &csrf), ("name", "X"), ("role", "employee"), ("time_zone", "Europe/London"), ("phones", "555-0100")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("Phone 1"), "{}", bad.text());
    let nia = f.store.list_people(f.org_a).await.unwrap().into_iter().find(|p| p.name == "Nia New").unwrap();
    assert_eq!(c.post(&format!("/people/{}/disable", nia.id.0), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert!(f.store.person(f.org_a, nia.id).await.unwrap().disabled);
    assert_eq!(Client::new(app(&f)).login("nia@a.example", "nia-password-1").await.status, StatusCode::UNAUTHORIZED, "a disabled person cannot log in");

    let sched = f.store.list_schedules(f.org_a).await.unwrap()[0].id.0;
    let r = c.post("/policies/new", &[("csrf", &csrf), ("name", "Leaks"), ("repeat", "1"), ("steps[0].target", &format!("schedule:{sched}")), ("steps[0].wait", "5"), ("steps[1].target", &format!("person:{}", f.manager_a.0)), ("steps[1].wait", "10")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let html = c.get("/policies").await.text();
    assert!(html.contains("Leaks") && html.contains("on call in Front desk") && html.contains("Ada Manager"));
    let bad = c.post("/policies/new", &[("csrf", &csrf), ("name", "Too quick"), ("steps[0].target", &format!("person:{}", f.manager_a.0)), ("steps[0].wait", "0.1")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("Step 1 wait"), "{}", bad.text());
}

#[tokio::test]
async fn password_change_needs_the_current_password() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(EMPLOYEE_A).await;
    let r = c.post("/account/password", &[("csrf", &csrf), ("current", "nope nope"), ("new", "brand-new-pass"), ("confirm", "brand-new-pass")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("current password is wrong"));
    let r = c.post("/account/password", &[("csrf", &csrf), ("current", PASSWORD), ("new", "brand-new-pass"), ("confirm", "brand-new-pass")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(f.store.verify_password(EMPLOYEE_A, "brand-new-pass").await.unwrap().is_some());
    assert_eq!(c.get("/account").await.status, StatusCode::OK, "this session stays logged in");
}

#[tokio::test]
async fn api_tokens_mirror_the_site_with_the_same_scoping() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let page = c.post("/account/tokens", &[("csrf", &csrf), ("name", "status board")]).await.text();
    let start = page.find("id=\"new-token\">").unwrap() + "id=\"new-token\">".len();
    let token = page[start..].split('<').next().unwrap().to_string();
    assert!(token.starts_with("oc_"));

    let mut api = Client::new(app(&f));
    let auth = format!("Bearer {token}");
    assert_eq!(api.get("/api/v1/requests").await.status, StatusCode::UNAUTHORIZED);
    let r = api.get_with("/api/v1/requests?status=open", "authorization", &auth).await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["requests"].as_array().unwrap().len(), 2);
    let r = api.get_with(&format!("/api/v1/requests/{}", f.request_b.0), "authorization", &auth).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "not_found");
    assert_eq!(api.get_with(&format!("/api/v1/recordings/{}", f.recording_b.0), "authorization", &auth).await.status, StatusCode::NOT_FOUND);
    let r = api.get_with(&format!("/api/v1/recordings/{}", f.recording_a.0), "authorization", &auth).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api.get_with("/api/v1/oncall", "authorization", &auth).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["on_call"][0]["schedule"]["name"], "Front desk");
    assert!(v["on_call"][0]["person"]["phone"].as_str().unwrap().starts_with("+44"));
    let r = api.get_with("/api/v1/metrics", "authorization", &auth).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["total"]["requests"], 2);
    let r = api.get_with("/api/v1/schedules/1/shifts", "authorization", &auth).await;
    assert_eq!(r.status, StatusCode::OK);
    let req = Request::post(format!("/api/v1/requests/{}/acknowledge", f.unassigned_a.0))
        .header("authorization", &auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"note":"from the API"}"#))
        .unwrap();
    let r = api.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["status"], "acknowledged");

    // Revoked tokens stop working.
    let list = c.get("/account").await.text();
    let id_start = list.find("/account/tokens/").unwrap() + "/account/tokens/".len();
    let id = list[id_start..].split('/').next().unwrap().to_string();
    assert_eq!(c.post(&format!("/account/tokens/{id}/revoke"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(api.get_with("/api/v1/requests", "authorization", &auth).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ivr_menu_and_greeting_upload() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let html = c.get("/ivr").await.text();
    assert!(html.contains("Page on call"));
    let r = c
        .post("/ivr", &[("csrf", &csrf), ("menu_prompt", "menu"), ("timeout_secs", "7"), ("max_retries", "2"), ("max_message_secs", "60"), ("silence_secs", "4"), ("digit", "1"), ("action", "page_on_call"), ("prompt", ""), ("sub", ""), ("digit", "9"), ("action", "play"), ("prompt", "thank_you"), ("sub", "")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let saved = f.store.ivr_settings(f.org_a).await.unwrap().unwrap();
    let cfg = oncall_ivr::menu_json::from_json(&saved.menu_json).unwrap();
    assert_eq!(cfg.timeout_secs, 7);
    assert_eq!(cfg.menu.options.len(), 2);
    let dup = c.post("/ivr", &[("csrf", &csrf), ("timeout_secs", "7"), ("max_retries", "2"), ("max_message_secs", "60"), ("silence_secs", "4"), ("digit", "1"), ("action", "hangup"), ("prompt", ""), ("sub", ""), ("digit", "1"), ("action", "repeat"), ("prompt", ""), ("sub", "")]).await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(dup.text().contains("used twice"));

    // Issue 18 item 7: the call side's own check refuses what callers would not get, before "Saved.".
    let form = |prompt: &'static str, first: &'static str| {
        vec![("csrf", csrf.clone()), ("menu_prompt", "menu".into()), ("timeout_secs", "7".into()), ("max_retries", "2".into()), ("max_message_secs", "60".into()), ("silence_secs", "4".into()),
             ("digit", "1".into()), ("action", first.into()), ("prompt", "".into()), ("sub", "".into()), ("digit", "9".into()), ("action", "play".into()), ("prompt", prompt.into()), ("sub", "".into())]
    };
    for (prompt, first, says) in [("my menu.mp3", "page_on_call", "no prompt named &quot;my menu.mp3&quot;"), ("thank_you", "record_message", "No key pages the on-call staff")] {
        let pairs = form(prompt, first);
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = c.post("/ivr", &refs).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{prompt}/{first}");
        let text = r.text();
        assert!(text.contains(says) && !text.contains("Saved"), "{says}: {text}");
    }
    assert_eq!(oncall_ivr::menu_json::from_json(&f.store.ivr_settings(f.org_a).await.unwrap().unwrap().menu_json).unwrap(), cfg, "nothing refused was stored");
    // Prompts can be played in the browser.
    let wav = c.get("/ivr/prompts/thank_you.wav").await;
    assert_eq!(wav.status, StatusCode::OK);
    assert!(wav.body.starts_with(b"RIFF"), "a WAV file");
    assert_eq!(c.get("/ivr/prompts/nothing.wav").await.status, StatusCode::NOT_FOUND);

    // A 16 kHz stereo WAV upload becomes 8 kHz mono.
    let spec = hound::WavSpec { channels: 2, sample_rate: 16000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut wav = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut wav, spec).unwrap();
        for i in 0..16000 {
            let v = ((i as f64) * 0.05).sin() * 5000.0;
            w.write_sample(v as i16).unwrap();
            w.write_sample(v as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    let boundary = "XyZboundary";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"greeting\"; filename=\"hello.wav\"\r\nContent-Type: audio/wav\r\n\r\n").into_bytes();
    body.extend_from_slice(&wav.into_inner());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::post(format!("/ivr/greeting?csrf={csrf}")).header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}")).body(Body::from(body.clone())).unwrap();
    let r = c.send(req).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let path = f.data_dir.join("sounds/alpha/greeting.wav");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "the greeting is not readable by other users (issue #15): {mode:o}");
    }
    let reader = hound::WavReader::open(&path).unwrap();
    assert_eq!((reader.spec().sample_rate, reader.spec().channels), (8000, 1));
    assert!((reader.duration() as i64 - 8000).abs() < 200, "one second: {}", reader.duration());
    assert_eq!(f.store.ivr_settings(f.org_a).await.unwrap().unwrap().greeting_key.as_deref(), Some("sounds/alpha/greeting.wav"));
    let preview = c.get_with("/ivr/greeting.wav", "range", "bytes=0-43").await;
    assert_eq!(preview.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&preview.body[0..4], b"RIFF");
    // Multipart without the token in the query is refused.
    let req = Request::post("/ivr/greeting").header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}")).body(Body::from(body)).unwrap();
    assert_eq!(c.send(req).await.status, StatusCode::BAD_REQUEST);
    // Not audio: a clear message.
    let junk = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"greeting\"; filename=\"x.mp3\"\r\n\r\nhello\r\n--{boundary}--\r\n");
    let req = Request::post(format!("/ivr/greeting?csrf={csrf}")).header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}")).body(Body::from(junk)).unwrap();
    let r = c.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("could not be read as audio"));
}

/// Issue #15 decode bomb: a greeting upload of a ~100 KB FLAC that decodes to an hour of silence
/// (its header's length blanked, so only decoding can tell) is refused with the length message;
/// decoding stops at the two-minute bound, and no greeting is written.
#[tokio::test]
async fn a_small_greeting_upload_decoding_to_an_hour_is_refused_as_too_long() {
    let out = std::process::Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-t", "flac", "-", "trim", "0", "3600"])
        .output()
        .expect("sox is needed for this test (scripts/install-test-deps.sh)");
    assert!(out.status.success());
    let mut flac = out.stdout;
    // STREAMINFO's total-samples field set to 0 ("unknown").
    flac[21] &= 0xf0;
    flac[22..26].fill(0);
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let boundary = "XyZboundary";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"greeting\"; filename=\"silence.flac\"\r\nContent-Type: audio/flac\r\n\r\n").into_bytes();
    body.extend_from_slice(&flac);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::post(format!("/ivr/greeting?csrf={csrf}")).header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}")).body(Body::from(body)).unwrap();
    let started = std::time::Instant::now();
    let r = c.send(req).await;
    eprintln!("{} byte FLAC of 1 h silence refused in {:?}", flac.len(), started.elapsed());
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("longer than two minutes"), "{}", r.text());
    assert!(!f.data_dir.join("sounds/alpha/greeting.wav").exists());
    assert!(f.store.ivr_settings(f.org_a).await.unwrap().is_none_or(|s| s.greeting_key.is_none()));
}

#[tokio::test]
async fn ops_endpoints_and_static_files_need_no_login() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    assert_eq!(c.get("/healthz").await.text(), "ok\n");
    // `/metrics` is for loopback peers by default (the server puts the peer in ConnectInfo).
    let local = Request::get("/metrics").extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)))).body(Body::empty()).unwrap();
    assert!(c.send(local).await.text().contains("oncall_up 1"));
    let css = c.get("/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
    let missing = c.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn demo_logins_are_shown_on_the_login_page() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    assert!(!c.get("/login").await.text().contains("Demo organization"));
    oncall_core::demo::seed(&f.store, oncall_core::Timestamp::now()).await.unwrap();
    let html = c.get("/login").await.text();
    assert!(html.contains(oncall_core::demo::DEMO_MANAGER_EMAIL) && html.contains(oncall_core::demo::DEMO_PASSWORD));
    let r = c.login(oncall_core::demo::DEMO_MANAGER_EMAIL, oncall_core::demo::DEMO_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let dash = c.get("/").await.text();
    assert!(dash.contains("Maintenance on-call"));
}

/// Logs `email` in and creates an API token on the Account page; returns `Bearer <token>`.
async fn api_token(f: &support::Fixture, email: &str) -> String {
    let mut c = Client::new(app(f));
    let csrf = c.logged_in(email).await;
    let page = c.post("/account/tokens", &[("csrf", &csrf), ("name", "pbx")]).await.text();
    let start = page.find("id=\"new-token\">").unwrap() + "id=\"new-token\">".len();
    format!("Bearer {}", page[start..].split('<').next().unwrap())
}

async fn json_of(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("not JSON ({}): {}", r.status, r.text()))
}

#[tokio::test]
async fn a_pbx_asks_who_is_on_call_in_one_schedule() {
    let f = fixture().await;
    let auth = api_token(&f, EMPLOYEE_A).await;
    let sched = f.store.list_schedules(f.org_a).await.unwrap()[0].id.0;
    let mut api = Client::new(app(&f));
    assert_eq!(api.get("/api/v1/oncall/front-desk").await.status, StatusCode::UNAUTHORIZED);
    let mut bodies = Vec::new();
    for key in ["front-desk", "Front%20desk", "FRONT%20DESK", &sched.to_string()] {
        let r = api.get_with(&format!("/api/v1/oncall/{key}"), "authorization", &auth).await;
        assert_eq!(r.status, StatusCode::OK, "{key}: {}", r.text());
        bodies.push(json_of(&r).await);
    }
    let v = &bodies[0];
    assert_eq!(v["schedule"]["id"], sched);
    assert_eq!(v["schedule"]["slug"], "front-desk");
    let first = &v["on_call"][0];
    assert_eq!(first["order"], 1);
    assert_eq!(first["source"], "rotation");
    let names = ["Eve Employee", "Oscar Other"];
    assert!(names.contains(&first["person"]["name"].as_str().unwrap()), "{v}");
    assert!(first["phone"].as_str().unwrap().starts_with("+44207946000"), "{v}");
    assert_eq!(first["contacts"][0]["kind"], "phone");
    assert!(first["until"].as_str().unwrap().ends_with(":00:00.000Z"), "shift end: {v}");
    assert_eq!(v["until"], first["until"]);
    assert_eq!(v["on_call"].as_array().unwrap().len(), 1, "one layer, no backups: {v}");
    for other in &bodies[1..] {
        assert_eq!(other["on_call"][0]["person"], first["person"]);
    }
    // Unknown names and another organization's schedules are simply not found.
    assert_eq!(api.get_with("/api/v1/oncall/no-such-schedule", "authorization", &auth).await.status, StatusCode::NOT_FOUND);
    let b_sched = f
        .store
        .create_schedule(f.org_b, &oncall_core::schedule::NewSchedule { name: "B only".into(), time_zone: "UTC".into(), layers: vec![] }, oncall_core::Timestamp::now())
        .await
        .unwrap();
    assert_eq!(api.get_with(&format!("/api/v1/oncall/{}", b_sched.0), "authorization", &auth).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.get_with("/api/v1/oncall/b-only", "authorization", &auth).await.status, StatusCode::NOT_FOUND);
}

#[test]
fn on_call_order_is_override_then_the_layers_from_the_top() {
    use oncall_core::schedule::{Layer, Override, Rotation, Schedule, ShiftLength};
    use oncall_core::{OrgId, PersonId, ScheduleId, Timestamp};
    let person = |id: i64, name: &str, phone: &str| {
        let new = oncall_core::NewPerson { name: name.into(), phones: vec![phone.into()], sip_uris: vec![format!("sip:{id}@pbx.example")], time_zone: "UTC".into(), ..Default::default() };
        let v = new.validate().unwrap();
        oncall_core::Person { id: PersonId(id), org: OrgId(1), name: v.name, email: None, role: v.role, contacts: v.contacts, time_zone: v.time_zone, notification_rules: vec![], disabled: false }
    };
    let people = vec![person(1, "Ann", "+12125550101"), person(2, "Bob", "+12125550102"), person(3, "Cat", "+12125550103")];
    let layer = |name: &str, members: Vec<i64>, unit: ShiftLength| Layer {
        name: name.into(),
        rotation: Rotation {
            members: members.into_iter().map(PersonId).collect(),
            shift_length: unit,
            start_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            handoff_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        },
    };
    let now = Timestamp::from(chrono::DateTime::parse_from_rfc3339("2026-01-05T12:00:00Z").unwrap().to_utc());
    let mut s = Schedule {
        id: ScheduleId(7),
        org: OrgId(1),
        name: "Maintenance on-call".into(),
        time_zone: chrono_tz::UTC,
        layers: vec![layer("Weekly", vec![1], ShiftLength::Weeks(1)), layer("Daytime", vec![2], ShiftLength::Days(1))],
        overrides: vec![],
    };
    let v = oncall_web::api::on_call_json(&s, &people, now);
    let order: Vec<(&str, &str)> = v["on_call"].as_array().unwrap().iter().map(|e| (e["person"]["name"].as_str().unwrap(), e["source"].as_str().unwrap())).collect();
    assert_eq!(order, [("Bob", "rotation"), ("Ann", "backup")], "{v}");
    assert_eq!(v["on_call"][0]["until"], "2026-01-06T09:00:00.000Z");
    assert_eq!(v["on_call"][1]["until"], "2026-01-12T09:00:00.000Z");
    assert_eq!(v["on_call"][1]["contacts"][1], serde_json::json!({"kind": "sip", "address": "sip:1@pbx.example"}));
    // An override puts Cat first; the layers follow as backups.
    s.overrides.push(Override::new(PersonId(3), now - oncall_core::Millis::hours(1), now + oncall_core::Millis::hours(2)));
    let v = oncall_web::api::on_call_json(&s, &people, now);
    let order: Vec<&str> = v["on_call"].as_array().unwrap().iter().map(|e| e["person"]["name"].as_str().unwrap()).collect();
    assert_eq!(order, ["Cat", "Bob", "Ann"]);
    assert_eq!(v["until"], "2026-01-05T14:00:00.000Z");
    assert_eq!(v["schedule"]["slug"], "maintenance-on-call");
    // Nobody on shift: an empty list, not an error.
    s.layers.clear();
    s.overrides.clear();
    let v = oncall_web::api::on_call_json(&s, &people, now);
    assert!(v["on_call"].as_array().unwrap().is_empty() && v["until"].is_null());
}

#[tokio::test]
async fn managers_add_webhooks_see_the_secret_once_and_read_the_delivery_log() {
    use oncall_core::store::AttemptOutcome;
    use oncall_core::webhook::NextStep;
    use oncall_core::{Millis, Timestamp};
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    assert!(c.get("/webhooks").await.text().contains("No webhooks"));
    let bad = c.post("/webhooks", &[("csrf", &csrf), ("name", "Ops"), ("url", "ftp://nope"), ("format", "json")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("URL: must start with https:"), "{}", bad.text());
    let r = c.post("/webhooks", &[("csrf", &csrf), ("name", "Ops channel"), ("url", "https://hooks.example.com/x"), ("format", "slack"), ("events", "request.created"), ("events", "request.completed")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = r.text();
    let start = page.find("id=\"new-secret\">").unwrap() + "id=\"new-secret\">".len();
    let secret = page[start..].split('<').next().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let hook = f.store.list_webhooks(f.org_a).await.unwrap().remove(0);
    assert_eq!(hook.secret, secret);
    assert_eq!(hook.events.len(), 2);
    let detail = c.get(&format!("/webhooks/{}", hook.id.0)).await.text();
    assert!(!detail.contains(&secret), "the secret is shown once");
    assert!(detail.contains("Slack-compatible") && detail.contains("Nothing sent yet"));
    assert!(c.get("/webhooks").await.text().contains("Ops channel"));

    // A request event, one failed attempt and one delivery: the log shows both.
    let now = Timestamp::now();
    let rid = f.store.create_request(f.org_a, &oncall_core::NewRequest { caller: "+442079460777".into(), summary: "Door".into(), call: None }, now).await.unwrap();
    f.store.enqueue_webhook_deliveries(now, Millis::seconds(30)).await.unwrap();
    let d = f.store.claim_webhook_deliveries("test", now, Millis::seconds(30), 10).await.unwrap().remove(0);
    let failed = AttemptOutcome { status_code: Some(503), error: None, duration: Millis(20) };
    f.store.finish_webhook_attempt(&d, "test", &failed, NextStep::RetryAt(now), now).await.unwrap();
    let d = f.store.claim_webhook_deliveries("test", now, Millis::seconds(30), 10).await.unwrap().remove(0);
    let ok = AttemptOutcome { status_code: Some(200), error: None, duration: Millis(20) };
    f.store.finish_webhook_attempt(&d, "test", &ok, NextStep::Delivered, now).await.unwrap();
    let detail = c.get(&format!("/webhooks/{}", hook.id.0)).await.text();
    assert!(detail.contains("request.created") && detail.contains(">503<") && detail.contains(">200<") && detail.contains(&format!("#{}", rid.0)), "{detail}");

    // Employees have no webhook pages.
    let mut e = Client::new(app(&f));
    e.logged_in(EMPLOYEE_A).await;
    assert_eq!(e.get("/webhooks").await.status, StatusCode::FORBIDDEN);
    assert_eq!(e.get(&format!("/webhooks/{}", hook.id.0)).await.status, StatusCode::FORBIDDEN);

    // Disable, new secret, delete.
    assert_eq!(c.post(&format!("/webhooks/{}/disable", hook.id.0), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert!(f.store.webhook(f.org_a, hook.id).await.unwrap().disabled);
    let r = c.post(&format!("/webhooks/{}/secret", hook.id.0), &[("csrf", &csrf), ("secret", "")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(f.store.webhook(f.org_a, hook.id).await.unwrap().secret, secret);
    assert_eq!(c.post(&format!("/webhooks/{}/secret", hook.id.0), &[("csrf", &csrf), ("secret", "short")]).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.post(&format!("/webhooks/{}/delete", hook.id.0), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert!(f.store.list_webhooks(f.org_a).await.unwrap().is_empty());
    // Without the CSRF token nothing happens.
    assert_eq!(c.post("/webhooks", &[("name", "x"), ("url", "https://x.example")]).await.status, StatusCode::BAD_REQUEST);
}

/// Issue #15 (SSRF): a manager saving a webhook that points at the metadata service, loopback or
/// the LAN is refused with a message naming why, on the page and in the API; the operator's
/// `[webhooks] allow_private` opens exactly the blocks it names.
#[tokio::test]
async fn webhook_urls_pointing_inside_the_server_network_are_refused_when_saved() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    for url in ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:5432/", "http://localhost:9090/", "http://[::1]/", "http://[::ffff:127.0.0.1]:22/", "http://0.0.0.0:8080/", "http://10.0.0.5/", "http://2130706433/"] {
        let r = c.post("/webhooks", &[("csrf", &csrf), ("name", "Probe"), ("url", url), ("format", "json")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(r.text().contains("which this server does not send webhooks to"), "{url}: {}", r.text());
    }
    let auth = api_token(&f, MANAGER_A).await;
    let post = |url: &str| Request::post("/api/v1/webhooks").header("authorization", &auth).header(header::CONTENT_TYPE, "application/json").body(Body::from(serde_json::json!({"name": "Probe", "url": url}).to_string())).unwrap();
    let r = c.send(post("http://169.254.169.254/latest/meta-data/iam/")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let v = json_of(&r).await;
    assert_eq!(v["error"]["field"], "url", "{v}");
    assert!(f.store.list_webhooks(f.org_a).await.unwrap().is_empty(), "nothing was saved");

    // The operator allows a lab receiver on 127.0.0.1: that one saves, the metadata service still does not.
    let lab = app_with(&f, |cfg| cfg.webhook_destinations.allow_private = vec!["127.0.0.1/32".parse().unwrap()]);
    let mut api = Client::new(lab);
    assert_eq!(api.send(post("http://127.0.0.1:8081/hook")).await.status, StatusCode::CREATED);
    assert_eq!(api.send(post("http://169.254.169.254/")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(f.store.list_webhooks(f.org_a).await.unwrap().len(), 1);
}

#[tokio::test]
async fn webhooks_in_the_api() {
    let f = fixture().await;
    let auth = api_token(&f, MANAGER_A).await;
    let mut api = Client::new(app(&f));
    let post = |body: &str| Request::post("/api/v1/webhooks").header("authorization", &auth).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap();
    let r = api.send(post(r#"{"name": "Script", "url": "https://hooks.example.com/hook", "events": ["request.exhausted"]}"#)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = json_of(&r).await;
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(v["events"], serde_json::json!(["request.exhausted"]));
    assert_eq!(v["format"], "json");
    let id = v["id"].as_i64().unwrap();
    let r = api.send(post(r#"{"name": "Bad", "url": "https://x.example", "events": ["request.nope"]}"#)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&r).await["error"]["field"], "events");
    let list = json_of(&api.get_with("/api/v1/webhooks", "authorization", &auth).await).await;
    assert_eq!(list["webhooks"][0]["name"], "Script");
    assert!(list["webhooks"][0].get("secret").is_none(), "never listed again");
    let r = api.send(Request::post(format!("/api/v1/webhooks/{id}/disable")).header("authorization", &auth).body(Body::empty()).unwrap()).await;
    assert_eq!(json_of(&r).await["enabled"], false);
    let one = json_of(&api.get_with(&format!("/api/v1/webhooks/{id}"), "authorization", &auth).await).await;
    assert_eq!(one["attempts"], serde_json::json!([]));
    // Employees may not; another organization's manager does not see it.
    let emp = api_token(&f, EMPLOYEE_A).await;
    assert_eq!(api.get_with("/api/v1/webhooks", "authorization", &emp).await.status, StatusCode::FORBIDDEN);
    let b = api_token(&f, MANAGER_B).await;
    assert_eq!(api.get_with(&format!("/api/v1/webhooks/{id}"), "authorization", &b).await.status, StatusCode::NOT_FOUND);
    let r = api.send(Request::delete(format!("/api/v1/webhooks/{id}")).header("authorization", &auth).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(f.store.list_webhooks(f.org_a).await.unwrap().is_empty());
}

#[tokio::test]
async fn managers_set_business_hours_with_clear_errors_and_deferred_requests_show_when_they_page() {
    use oncall_core::{Millis, Timestamp};
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let page = c.get("/business-hours").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Always open") && page.text().contains("Europe&#x2F;London"), "the org's zone is proposed");

    let week = "08:00-18:00";
    let mut form = vec![("csrf", csrf.as_str()), ("time_zone", "Europe/Paris"), ("monday", week), ("tuesday", "08:00-12:00, 13:00-17:00"), ("wednesday", week), ("thursday", week), ("friday", week), ("saturday", ""), ("sunday", "closed"), ("closures", "2026-12-25 Christmas\n2026-01-01")];
    // Clear errors naming the box; nothing is saved and the form keeps what was typed.
    for (key, bad, says) in [("tuesday", "9-5", "Tuesday: &quot;9&quot; is not a time"), ("time_zone", "Paris", "Time zone: unknown time zone"), ("closures", "25/12/2026 Christmas", "Closed days, line 1: ")] {
        let mut f2 = form.clone();
        f2.iter_mut().find(|(k, _)| *k == key).unwrap().1 = bad;
        let r = c.post("/business-hours", &f2).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{key}");
        assert!(r.text().contains(says), "{key}: {}", r.text());
        assert!(r.text().contains(&bad.replace('/', "&#x2F;")), "the typed value stays");
    }
    let mut empty = form.clone();
    for (k, v) in empty.iter_mut() {
        if !["csrf", "time_zone", "closures"].contains(k) {
            *v = "";
        }
    }
    let r = c.post("/business-hours", &empty).await;
    assert!(r.status == StatusCode::BAD_REQUEST && r.text().contains("Opening hours: open at least one period a week"), "{}", r.text());
    assert!(f.store.business_hours(f.org_a).await.unwrap().is_none());

    let r = c.post("/business-hours", &form).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/business-hours?flash=saved".to_string()));
    let stored = f.store.business_hours(f.org_a).await.unwrap().unwrap();
    assert_eq!(stored.hours.time_zone.name(), "Europe/Paris");
    assert_eq!(stored.closure_labels.len(), 2);
    let page = c.get("/business-hours?flash=saved").await.text();
    assert!(page.contains("08:00-12:00, 13:00-17:00") && page.contains("2026-12-25 Christmas") && page.contains("Saved."), "{page}");
    assert!(page.contains("Open now") || page.contains("Closed now"));

    // A deferred request shows when it pages, and the log says why.
    let at = Timestamp::now() + Millis::hours(5);
    assert!(f.store.defer_request(f.org_a, f.unassigned_a, at, "deferred until 08:00 Europe/Paris", Timestamp::now()).await.unwrap());
    let detail = c.get(&format!("/requests/{}", f.unassigned_a.0)).await.text();
    assert!(detail.contains("id=\"pages-at\"") && detail.contains("After hours: deferred until 08:00"), "{detail}");

    // Employees cannot see or change business hours.
    let mut e = Client::new(app(&f));
    let ecsrf = e.logged_in(EMPLOYEE_A).await;
    assert_eq!(e.get("/business-hours").await.status, StatusCode::FORBIDDEN);
    assert_eq!(e.post("/business-hours", &[("csrf", ecsrf.as_str()), ("remove", "1")]).await.status, StatusCode::FORBIDDEN);

    // The phone menu marks an option normal and turns on the emergency offer.
    let r = c
        .post("/ivr", &[("csrf", &csrf), ("menu_prompt", "menu"), ("timeout_secs", "7"), ("max_retries", "2"), ("max_message_secs", "60"), ("silence_secs", "4"), ("after_hours_emergency", "1"), ("digit", "1"), ("action", "page_on_call"), ("prompt", ""), ("sub", ""), ("digit", "2"), ("action", "page_on_call_normal"), ("prompt", ""), ("sub", "")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let saved = oncall_ivr::menu_json::from_json(&f.store.ivr_settings(f.org_a).await.unwrap().unwrap().menu_json).unwrap();
    assert!(saved.after_hours_emergency);
    assert_eq!(saved.menu.options[1].action, oncall_ivr::menu::Action::PageOnCall { urgency: oncall_ivr::Urgency::Normal });
    let ivr = c.get("/ivr").await.text();
    assert!(ivr.contains(r#"value="page_on_call_normal" selected"#) && ivr.contains(r#"value="1" checked"#), "{ivr}");

    // Removing them: always open again.
    form.truncate(1);
    form.push(("remove", "1"));
    assert_eq!(c.post("/business-hours", &form).await.status, StatusCode::SEE_OTHER);
    assert!(f.store.business_hours(f.org_a).await.unwrap().is_none());
}

/// A second OnCall instance: its own `Store` (own pool) on the fixture's database file, its own app.
async fn second_instance(f: &support::Fixture) -> Router {
    struct Up;
    impl oncall_web::StatusSource for Up {
        fn healthy(&self) -> bool {
            true
        }
        fn prometheus(&self) -> String {
            String::new()
        }
    }
    let store = oncall_core::Store::connect(&format!("sqlite://{}", f.dir.path().join("oncall.db").display())).await.unwrap();
    let cfg = oncall_web::WebConfig::new(f.data_dir.clone());
    oncall_web::app(std::sync::Arc::new(Up), store, cfg, std::sync::Arc::new(oncall_web::LocalRecordings::new(f.recordings_dir.clone())), Default::default())
}

#[tokio::test]
async fn instances_on_one_database_share_the_login_limit() {
    let f = fixture().await;
    let mut a = Client::new(app(&f));
    for _ in 0..5 {
        assert_eq!(a.login(EMPLOYEE_A, "not the password").await.status, StatusCode::UNAUTHORIZED);
    }
    let on_a = a.login(EMPLOYEE_A, PASSWORD).await;
    assert_eq!(on_a.status, StatusCode::TOO_MANY_REQUESTS);

    // Behind a load balancer the guesser's next try lands on instance B, which keeps nothing in memory
    // from A: the failures are in the database, so B refuses it exactly as A does.
    let mut b = Client::new(second_instance(&f).await);
    let on_b = b.login(EMPLOYEE_A, PASSWORD).await;
    assert_eq!(on_b.status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits: {}", on_b.text());
    let message = |r: &Resp| r.text().lines().find(|l| l.contains("Too many failed attempts")).map(str::trim).map(String::from);
    assert_eq!(message(&on_b), message(&on_a));
    // Per account only a short backoff (issue 15): an outsider's failures cannot lock the owner out for long.
    // (The wait counts down from 15 s; a slow machine may already read 14.)
    let wait: u32 = message(&on_b)
        .and_then(|m| m.split("Try again in ").nth(1).and_then(|t| t.split_whitespace().next()).and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no wait in {:?}", message(&on_b)));
    assert!((1..=15).contains(&wait), "{:?}", message(&on_b));
    // Other accounts log in on B as usual.
    assert_eq!(b.login(MANAGER_A, PASSWORD).await.status, StatusCode::SEE_OTHER);
}

// ---- issue 15: web login and browser defences ----

fn assert_security_headers(r: &Resp, what: &str) {
    let h = |n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let csp = h("content-security-policy");
    for part in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{what}: inline scripts allowed");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("referrer-policy"), "same-origin", "{what}");
}

/// Issue 15 item 7: a page, the login page, error pages and the ops endpoints all carry the
/// browser defences; HSTS only over HTTPS (a proxy's `X-Forwarded-Proto`, or `secure_cookies`).
#[tokio::test]
async fn every_response_carries_the_security_headers_and_hsts_only_over_https() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let login = c.get("/login").await;
    assert_security_headers(&login, "/login");
    assert!(login.headers.get("strict-transport-security").is_none(), "no HSTS over plain HTTP");
    c.logged_in(MANAGER_A).await;
    for path in ["/", "/requests", "/no-such-page", "/requests/999999", "/healthz", "/static/app.js", "/api/v1/oncall"] {
        let r = c.get(path).await;
        assert_security_headers(&r, path);
        assert!(r.headers.get("strict-transport-security").is_none(), "{path}: no HSTS over plain HTTP");
    }
    let missing = c.get("/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!missing.text().contains("javascript:"), "the error page needs no javascript: URL");

    let via_proxy = c.get_with("/", "x-forwarded-proto", "https").await;
    assert_eq!(via_proxy.headers.get("strict-transport-security").unwrap(), "max-age=31536000");

    // A TLS proxy that does not say so: `[http] secure_cookies = true` forces both.
    let mut forced = Client::new(app_with(&f, |cfg| cfg.force_secure_cookies = true));
    let page = forced.get("/login").await;
    assert_security_headers(&page, "/login (forced)");
    assert_eq!(page.headers.get("strict-transport-security").unwrap(), "max-age=31536000");
    let csrf_cookie = page.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_string();
    assert!(csrf_cookie.contains("; Secure"), "{csrf_cookie}");
    let r = forced.login(MANAGER_A, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.headers.get_all(header::SET_COOKIE).iter().any(|v| v.to_str().unwrap().starts_with("oncall_session=") && v.to_str().unwrap().contains("; Secure")));
}

/// Issue 15 item 3: the reported `next` and its cousins end on the dashboard, not another origin.
#[tokio::test]
async fn login_next_to_another_origin_goes_to_the_dashboard() {
    let f = fixture().await;
    for next in ["/\t/127.0.0.1:9999/x", "//evil.example/x", "/\\evil.example", "/.//evil.example", "https://evil.example/", "/%5Cevil.example"] {
        let mut c = Client::new(app(&f));
        let page = c.get(&format!("/login?{}", serde_urlencoded::to_string([("next", next)]).unwrap())).await;
        assert!(!page.text().contains("evil.example") && !page.text().contains("127.0.0.1:9999"), "{next:?} echoed into the form");
        let csrf = csrf_in(&page.text());
        let r = c.post("/login", &[("email", MANAGER_A), ("password", PASSWORD), ("csrf", &csrf), ("next", next)]).await;
        assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/".to_string()), "next = {next:?}");
        // Already logged in, the login page redirects at once: same rule.
        let again = c.get(&format!("/login?{}", serde_urlencoded::to_string([("next", next)]).unwrap())).await;
        assert_eq!((again.status, again.location()), (StatusCode::SEE_OTHER, "/".to_string()), "next = {next:?}");
    }
}

/// A login form post from `ip` (the server's ConnectInfo), with the given CSRF cookie and token.
fn login_from(ip: [u8; 4], csrf: &str, email: &str, password: &str) -> Request<Body> {
    let body = serde_urlencoded::to_string([("email", email), ("password", password), ("csrf", csrf), ("next", "/")]).unwrap();
    let mut req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("oncall_login_csrf={csrf}"))
        .body(Body::from(body))
        .unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((ip, 40000))));
    req
}

/// Issue 15: 12 wrong passwords sent in parallel all got 401 (each passed the limiter before any
/// failure was written). Now they are judged in turn: the 5 free ones get 401, the other 7 get 429.
/// And the account is not locked: once the short backoff has passed, its owner logs in from
/// another address.
#[tokio::test]
async fn twelve_parallel_wrong_logins_are_judged_in_turn_and_the_owner_gets_in_after_a_short_backoff() {
    let f = fixture().await;
    let backoff = oncall_web::rate_limit::Backoff { free: 5, first: oncall_core::Millis::seconds(5), max: oncall_core::Millis::seconds(10) };
    let app = app_with(&f, |cfg| cfg.login_policy.per_email = backoff);
    let csrf = oncall_core::secret::new_token();
    let attacker = [203, 0, 113, 66];
    let tries: Vec<_> = (0..12)
        .map(|i| {
            let app = app.clone();
            let req = login_from(attacker, &csrf, EMPLOYEE_A, &format!("wrong-guess-{i:02}"));
            tokio::spawn(async move { app.oneshot(req).await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    let count = |s: StatusCode| statuses.iter().filter(|&&x| x == s).count();
    assert_eq!((count(StatusCode::UNAUTHORIZED), count(StatusCode::TOO_MANY_REQUESTS)), (5, 7), "{statuses:?}");

    // The owner, from home: refused during the backoff (the right password is not even checked)…
    let owner = [198, 51, 100, 7];
    let r = app.clone().oneshot(login_from(owner, &csrf, EMPLOYEE_A, PASSWORD)).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = String::from_utf8(axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
    let secs: u64 = body.split("Try again in ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).expect("the wait in seconds");
    assert!(secs <= 5, "per-account backoff is short: {secs} s");
    // …and in once it has passed (the 7 refused tries did not lengthen it).
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    let r = app.clone().oneshot(login_from(owner, &csrf, EMPLOYEE_A, PASSWORD)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the owner is not locked out");
}

/// Issue 15: behind the reverse proxy on the same host every login came from 127.0.0.1, so one
/// outsider's wrong passwords used up everybody's per-source allowance. Now the client is read
/// from the trusted proxy's `X-Forwarded-For`: the outsider is throttled, a colleague is not, and a
/// forged `X-Forwarded-For` from a peer that is not a proxy changes nothing.
#[tokio::test]
async fn behind_the_local_proxy_each_client_has_its_own_per_source_limit() {
    let f = fixture().await;
    let app = app_with(&f, |cfg| {
        cfg.login_policy.per_ip.free = 3;
        cfg.login_policy.per_email.free = 100;
    });
    let csrf = oncall_core::secret::new_token();
    let via_proxy = |client: &'static str, email: &str, password: &str| {
        let mut req = login_from([127, 0, 0, 1], &csrf, email, password);
        req.headers_mut().insert("x-forwarded-for", client.parse().unwrap());
        req
    };
    for _ in 0..3 {
        let r = app.clone().oneshot(via_proxy("203.0.113.66", MANAGER_A, "not-the-password")).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app.clone().oneshot(via_proxy("203.0.113.66", OTHER_EMPLOYEE_A, "not-the-password")).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the outsider is throttled");
    let r = app.clone().oneshot(via_proxy("198.51.100.7", EMPLOYEE_A, PASSWORD)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a colleague behind the same proxy is not");
    // A peer that is not a proxy cannot pose as another client.
    for _ in 0..3 {
        let mut req = login_from([192, 0, 2, 50], &csrf, MANAGER_A, "not-the-password");
        req.headers_mut().insert("x-forwarded-for", "198.51.100.200".parse().unwrap());
        assert_eq!(app.clone().oneshot(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let mut req = login_from([192, 0, 2, 50], &csrf, MANAGER_A, "not-the-password");
    req.headers_mut().insert("x-forwarded-for", "198.51.100.201".parse().unwrap());
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Issue 15: new passwords need 12 characters and must not be common, on every form that sets one.
#[tokio::test]
async fn weak_new_passwords_are_refused_with_a_clear_message() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(EMPLOYEE_A).await;
    let r = c.post("/account/password", &[("csrf", &csrf), ("current", PASSWORD), ("new", "short-pass1"), ("confirm", "short-pass1")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("at least 12 characters"), "{}", r.text());
    let r = c.post("/account/password", &[("csrf", &csrf), ("current", PASSWORD), ("new", "Password2026!"), ("confirm", "Password2026!")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("most common passwords"), "{}", r.text());
    assert!(f.store.verify_password(EMPLOYEE_A, PASSWORD).await.unwrap().is_some(), "unchanged");

    let mut m = Client::new(app(&f));
    let csrf = m.logged_in(MANAGER_A).await;
    let r = m.post("/people/new", &[("csrf", &csrf), ("name", "Wes Weak"), ("email", "wes@a.example"), ("role", "employee"), ("time_zone", "Europe/London"), ("phones", "+44 20 7946 0111"), ("rule_channel", "call"), ("rule_delay", "0"), ("login_password", "qwertyuiop123")]).await;
    assert!(r.text().contains("login was not created") && r.text().contains("most common passwords"), "{}", r.text());
    assert!(f.store.verify_password("wes@a.example", "qwertyuiop123").await.unwrap().is_none());
}

/// A GET of `/metrics` from `peer`, with `extra` headers.
fn metrics_from(peer: [u8; 4], extra: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get("/metrics").extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((peer, 40000))));
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// Issue 15: `/metrics` (counters and the version) was open to anyone. By default only a loopback
/// peer that did not come through a proxy reads it; with a token, only a bearer of it.
#[tokio::test]
async fn metrics_are_refused_to_remote_and_proxied_peers_and_need_the_token_when_set() {
    let f = fixture().await;
    let app = app(&f);
    let status = |r: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(r).await.unwrap().status() }
    };
    assert_eq!(status(metrics_from([192, 0, 2, 7], &[])).await, StatusCode::FORBIDDEN);
    assert_eq!(status(metrics_from([127, 0, 0, 1], &[("x-forwarded-for", "192.0.2.7")])).await, StatusCode::FORBIDDEN);
    assert_eq!(status(Request::get("/metrics").body(Body::empty()).unwrap()).await, StatusCode::FORBIDDEN, "no peer address: refused");
    assert_eq!(status(metrics_from([127, 0, 0, 1], &[])).await, StatusCode::OK);
    // /healthz stays open for load balancers, but its details (trunk names, registration errors) are
    // shown only to those who may read /metrics.
    let health = |peer: [u8; 4]| {
        let app = app.clone();
        async move {
            let r = Request::get("/healthz").extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((peer, 40000))));
            let r = app.oneshot(r.body(Body::empty()).unwrap()).await.unwrap();
            let status = r.status();
            (status, String::from_utf8_lossy(&axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap()).into_owned())
        }
    };
    assert_eq!(health([192, 0, 2, 7]).await, (StatusCode::OK, "ok\n".to_string()), "a remote peer sees the status alone");
    let (status, body) = health([127, 0, 0, 1]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("trunk carrier: failed"), "loopback sees the trunk details: {body}");

    let token = "metrics-token-0123456789";
    let app = app_with(&f, |c| c.metrics_access = oncall_web::MetricsAccess::Token(token.into()));
    let status = |r: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(r).await.unwrap().status() }
    };
    assert_eq!(status(metrics_from([192, 0, 2, 7], &[])).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(metrics_from([127, 0, 0, 1], &[])).await, StatusCode::UNAUTHORIZED, "loopback is not enough once a token is set");
    assert_eq!(status(metrics_from([192, 0, 2, 7], &[("authorization", "Bearer metrics-token-wrong")])).await, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {token}");
    let ok = app.clone().oneshot(metrics_from([192, 0, 2, 7], &[("authorization", bearer.as_str())])).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body = axum::body::to_bytes(ok.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("oncall_up 1"));
}

/// Issue 15: authenticated POST bodies were buffered up to 25 MB on every route. A 1 MiB form
/// post to a form route is now refused with 413 before the handler runs, and nothing changes.
#[tokio::test]
async fn a_one_mib_form_post_gets_413_and_changes_nothing() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let notes_before = f.store.notes(f.org_a, f.request_a).await.unwrap().len();
    let big = "x".repeat(1024 * 1024);
    let r = c.post(&format!("/requests/{}/notes", f.request_a.0), &[("csrf", &csrf), ("note", &big)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(f.store.notes(f.org_a, f.request_a).await.unwrap().len(), notes_before, "no note was added");
    // The same route still takes a normal note.
    let r = c.post(&format!("/requests/{}/notes", f.request_a.0), &[("csrf", &csrf), ("note", "called back")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(f.store.notes(f.org_a, f.request_a).await.unwrap().len(), notes_before + 1);
    // A big JSON body (token in the header) is bounded the same way, by the extractor.
    let req = Request::post(format!("/requests/{}/notes", f.request_a.0)).header("x-csrf-token", &csrf).header(header::CONTENT_TYPE, "application/json").body(Body::from(format!("{{\"note\":\"{big}\"}}"))).unwrap();
    assert!(c.send(req).await.status.is_client_error());
    assert_eq!(f.store.notes(f.org_a, f.request_a).await.unwrap().len(), notes_before + 1);
}

/// The greeting upload keeps its own, larger limit: a body over the form limit is read (and found
/// not to be audio), one over `max_upload_bytes` gets 413.
#[tokio::test]
async fn the_greeting_upload_has_its_own_larger_limit() {
    let f = fixture().await;
    let mut c = Client::new(app_with(&f, |cfg| cfg.max_upload_bytes = 512 * 1024));
    let csrf = c.logged_in(MANAGER_A).await;
    let boundary = "XyZboundary";
    let upload = |size: usize| {
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"greeting\"; filename=\"x.mp3\"\r\n\r\n").into_bytes();
        body.extend(std::iter::repeat_n(b'a', size));
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Request::post(format!("/ivr/greeting?csrf={csrf}")).header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}")).body(Body::from(body)).unwrap()
    };
    let r = c.send(upload(200 * 1024)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "read whole, then refused as not audio: {}", r.text());
    let r = c.send(upload(1024 * 1024)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
}

/// Issue #15 item 4: a manager's `+882…` contact was dialled with the trunk's credentials. Saving one through the
/// form is now refused, naming the rule, and nothing is written; editing someone to that number too.
#[tokio::test]
async fn a_premium_or_satellite_number_cannot_be_saved_as_a_contact() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let form = |phone: &'static str| vec![("name", "Irsf Fraud"), ("email", "irsf@a.example"), ("role", "manager"), ("time_zone", "Europe/London"), ("phones", phone), ("rule_channel", "call"), ("rule_delay", "0")];
    let mut bad = form("+882 1234 5678");
    bad.push(("csrf", &csrf));
    let r = c.post("/people/new", &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("+88212345678") && r.text().contains("International Networks") && r.text().contains("[dial_plan] allowed_prefixes"), "{}", r.text());
    assert!(!f.store.list_people(f.org_a).await.unwrap().iter().any(|p| p.name == "Irsf Fraud"), "nothing was saved");
    let mut ok = form("+44 20 7946 0199");
    ok.push(("csrf", &csrf));
    assert_eq!(c.post("/people/new", &ok).await.status, StatusCode::SEE_OTHER);
    let id = f.store.list_people(f.org_a).await.unwrap().into_iter().find(|p| p.name == "Irsf Fraud").unwrap().id;
    let mut edit = form("+1 900 555 0100");
    edit.push(("csrf", &csrf));
    let r = c.post(&format!("/people/{}/edit", id.0), &edit).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("NANP premium rate"), "{}", r.text());
    assert_eq!(f.store.person(f.org_a, id).await.unwrap().phones().next().unwrap().as_str(), "+442079460199", "the old number stays");
}

/// Issue 18 item 8: a caller that is a phone number shows as one, with a working `tel:` link,
/// not as the SIP URI the call came with.
#[tokio::test]
async fn a_phone_caller_shows_as_a_number_with_a_tel_link() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    c.logged_in(MANAGER_A).await;
    let new = oncall_core::NewRequest { caller: "sip:+15551230012@127.0.0.1:5480".into(), summary: "Heating".into(), call: None };
    let rid = f.store.create_request(f.org_a, &new, oncall_core::Timestamp::now()).await.unwrap();
    for page in ["/requests".to_string(), "/".to_string()] {
        let html = c.get(&page).await.text();
        assert!(html.contains(">+15551230012<"), "{page} shows the number");
    }
    let detail = c.get(&format!("/requests/{}", rid.0)).await.text();
    assert!(detail.contains(r#"<a href="tel:+15551230012">+15551230012</a>"#), "a tel: link to the number");
    assert!(!detail.contains("tel:sip:"), "never a tel: link to a SIP URI");
}

/// Issue 18 item 4: the request page and the API list every notification attempt with where it went and
/// what became of it in plain words.
#[tokio::test]
async fn the_request_lists_every_paging_attempt_with_its_result() {
    use oncall_core::escalation::NotificationKey;
    let f = fixture().await;
    let now = oncall_core::Timestamp::now();
    let key = NotificationKey { request: f.request_a, stage: 0, person: f.employee_a, channel: oncall_core::Channel::Call };
    f.store.record_notification(f.org_a, &key, now).await.unwrap();
    f.store.set_notification_status(f.org_a, &key, "failed", now).await.unwrap();
    f.store.describe_notification(f.org_a, &key, Some("+442079460123 via trunk carrier"), Some("rang 30 s, no answer"), now).await.unwrap();
    let text = NotificationKey { channel: oncall_core::Channel::Text, ..key };
    f.store.record_notification(f.org_a, &text, now).await.unwrap();
    f.store.set_notification_status(f.org_a, &text, "failed", now).await.unwrap();
    f.store.describe_notification(f.org_a, &text, None, Some("texts are off ([texts] enabled = false)"), now).await.unwrap();

    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let html = c.get(&format!("/requests/{}", f.request_a.0)).await.text();
    assert!(html.contains("Who was paged"), "{html}");
    assert!(html.contains("+442079460123 via trunk carrier") && html.contains("not reached: rang 30 s, no answer"));
    assert!(html.contains("not reached: texts are off ([texts] enabled = false)"));
    let page = c.post("/account/tokens", &[("csrf", &csrf), ("name", "attempts")]).await.text();
    let start = page.find("id=\"new-token\">").unwrap() + "id=\"new-token\">".len();
    let auth = format!("Bearer {}", page[start..].split('<').next().unwrap());
    let api = Client::new(app(&f)).get_with(&format!("/api/v1/requests/{}", f.request_a.0), "authorization", &auth).await;
    let body: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    let attempts = body["notifications"].as_array().expect("notifications in the API");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["target"], "+442079460123 via trunk carrier");
    assert_eq!(attempts[0]["detail"], "rang 30 s, no answer");
    assert_eq!(attempts[1]["result"], "not reached: texts are off ([texts] enabled = false)");
}

/// Issue 18 item 11: a person's time zone is honoured on their pages, and every page says which zone its times
/// are in.
#[tokio::test]
async fn an_employee_sees_times_in_their_own_time_zone() {
    let f = fixture().await;
    let mut m = Client::new(app(&f));
    m.logged_in(MANAGER_A).await;
    assert!(m.get("/requests").await.text().contains("times in Europe&#x2F;London"), "the manager's person is in London");
    let mut eve = f.store.person(f.org_a, f.employee_a).await.unwrap();
    eve.time_zone = "Asia/Tokyo".parse().unwrap();
    let edited = oncall_core::NewPerson {
        name: eve.name.clone(),
        email: eve.email.clone(),
        role: Some(eve.role),
        phones: vec!["+442079460123".into()],
        time_zone: "Asia/Tokyo".into(),
        ..oncall_core::NewPerson::default()
    };
    f.store.update_person(f.org_a, f.employee_a, &edited).await.unwrap();
    let mut e = Client::new(app(&f));
    e.logged_in(EMPLOYEE_A).await;
    let html = e.get(&format!("/requests/{}", f.request_a.0)).await.text();
    assert!(html.contains("times in Asia&#x2F;Tokyo"), "the footer names the employee's zone");
    let r = f.store.request(f.org_a, f.request_a).await.unwrap();
    let tokyo = r.received_at.to_utc().with_timezone(&chrono_tz::Asia::Tokyo).format("%H:%M").to_string();
    assert!(html.contains(&tokyo), "the request's time is shown in Tokyo time ({tokyo})");
}

/// Issue 18 item 6: the request lists show what the caller needs: the message's length and a player.
#[tokio::test]
async fn request_lists_play_the_callers_message() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    c.logged_in(MANAGER_A).await;
    let player = format!("<audio controls preload=\"none\" src=\"/recordings/{}\"", f.recording_a.0);
    for page in ["/requests", "/"] {
        let html = c.get(page).await.text();
        assert!(html.contains(&player), "{page} has a player for the message");
        assert!(html.contains("data-refresh="), "{page} refreshes itself");
    }
}

/// The first number after `marker` in `html`.
fn number_after(html: &str, marker: &str) -> String {
    let at = html.find(marker).unwrap_or_else(|| panic!("no {marker:?} in the page")) + marker.len();
    html[at..].chars().take_while(|c| c.is_ascii_digit() || *c == ':').collect()
}

/// Issue 18 item 9: employees read schedules (no edit or override forms) and see who is on call
/// next; a give-away goes asked → accepted by the colleague → approved by a manager, and only
/// then becomes an override.
#[tokio::test]
async fn employees_read_schedules_and_a_give_away_needs_the_colleague_then_a_manager() {
    let f = fixture().await;
    let sid = f.store.list_schedules(f.org_a).await.unwrap()[0].id;
    let mut e = Client::new(app(&f));
    let csrf = e.logged_in(EMPLOYEE_A).await;
    let list = e.get("/schedules").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text().contains("Front desk") && !list.text().contains("New schedule"));
    let page = e.get(&format!("/schedules/{}", sid.0)).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("is on call now") && html.contains("Next: <strong>"), "{html}");
    assert!(!html.contains("override-form") && !html.contains("Edit rotations") && !html.contains("data-clickable"), "read-only: {html}");
    assert!(!html.contains("class=\"day-num\" href"), "day numbers are not links for employees");
    assert_eq!(e.get(&format!("/schedules/{}/edit", sid.0)).await.status, StatusCode::FORBIDDEN);
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M").to_string();
    let r = e.post(&format!("/schedules/{}/overrides", sid.0), &[("csrf", &csrf), ("person", &f.employee_a.0.to_string()), ("start", &now), ("end", &now)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // My shifts: who takes over after each shift, and the schedule's next on call.
    let mine = e.get("/my/shifts").await.text();
    assert!(mine.contains("Then on call") && mine.contains("Oscar Other") && mine.contains("Your schedules"), "{mine}");
    let start = number_after(&mine, "/my/shifts/swap?schedule=1&start=");
    let swap_page = e.get(&format!("/my/shifts/swap?schedule={}&start={start}", sid.0)).await;
    assert_eq!(swap_page.status, StatusCode::OK, "{}", swap_page.text());
    assert!(swap_page.text().contains("Give it away") && swap_page.text().contains("Oscar Other"));
    // A shift that is not theirs (an hour later) is 404.
    let later = (start.parse::<i64>().unwrap() + 3_600_000).to_string();
    assert_eq!(e.get(&format!("/my/shifts/swap?schedule={}&start={later}", sid.0)).await.status, StatusCode::NOT_FOUND);
    let form = [("csrf", csrf.as_str()), ("schedule", "1"), ("start", start.as_str()), ("kind", "give"), ("taker", &f.other_a.0.to_string())];
    let r = e.post("/my/swaps", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.location(), "/my/shifts?flash=swap-asked");
    assert!(e.get(&r.location()).await.text().contains("waiting for the colleague"));
    // Asking twice about the same shift is refused in words.
    let again = e.post("/my/swaps", &form).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.text().contains("already asked someone"));
    let swap = f.store.swaps_of_person(f.org_a, f.employee_a).await.unwrap()[0].id;
    // The requester cannot accept for the colleague.
    assert_eq!(e.post(&format!("/my/swaps/{}/accept", swap.0), &[("csrf", &csrf)]).await.status, StatusCode::NOT_FOUND);

    // The colleague sees it and accepts; nothing changes on the schedule yet.
    let mut o = Client::new(app(&f));
    let ocsrf = o.logged_in(OTHER_EMPLOYEE_A).await;
    let theirs = o.get("/my/shifts").await.text();
    assert!(theirs.contains("Eve Employee</strong> asks you to take their shift") && theirs.contains(&format!("/my/swaps/{}/accept", swap.0)), "{theirs}");
    let r = o.post(&format!("/my/swaps/{}/accept", swap.0), &[("csrf", &ocsrf)]).await;
    assert_eq!(r.location(), "/my/shifts?flash=swap-accepted");
    assert!(f.store.schedule(f.org_a, sid).await.unwrap().overrides.is_empty());
    let r = o.post(&format!("/my/swaps/{}/accept", swap.0), &[("csrf", &ocsrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "answered once");
    // Employees cannot approve; another organization's manager gets 404.
    assert_eq!(o.post(&format!("/schedules/{}/swaps/{}/approve", sid.0, swap.0), &[("csrf", &ocsrf)]).await.status, StatusCode::FORBIDDEN);
    let mut b = Client::new(app(&f));
    let bcsrf = b.logged_in(MANAGER_B).await;
    assert_eq!(b.post(&format!("/schedules/{}/swaps/{}/approve", sid.0, swap.0), &[("csrf", &bcsrf)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.post(&format!("/my/swaps/{}/accept", swap.0), &[("csrf", &bcsrf)]).await.status, StatusCode::NOT_FOUND);

    // The manager approves on the schedule page: the colleague is on call for that shift.
    let mut m = Client::new(app(&f));
    let mcsrf = m.logged_in(MANAGER_A).await;
    let page = m.get(&format!("/schedules/{}", sid.0)).await.text();
    assert!(page.contains(&format!("/schedules/{}/swaps/{}/approve", sid.0, swap.0)) && page.contains("accepted, waiting for a manager"), "{page}");
    let r = m.post(&format!("/schedules/{}/swaps/{}/approve", sid.0, swap.0), &[("csrf", &mcsrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(m.get(&r.location()).await.text().contains("Approved: the swap is on the schedule now."));
    let sched = f.store.schedule(f.org_a, sid).await.unwrap();
    assert_eq!(sched.overrides.len(), 1);
    let at = oncall_core::Timestamp(start.parse().unwrap());
    assert_eq!(oncall_core::on_call(&sched, at).unwrap().person, f.other_a);
}

/// With "swaps need approval" unticked on the edit page, the colleague's yes applies a trade at
/// once (two overrides); another organization cannot see or touch it.
#[tokio::test]
async fn without_approval_a_trade_applies_when_the_colleague_accepts() {
    let f = fixture().await;
    let sched = f.store.list_schedules(f.org_a).await.unwrap().remove(0);
    let sid = sched.id;
    let mut m = Client::new(app(&f));
    let mcsrf = m.logged_in(MANAGER_A).await;
    assert!(m.get(&format!("/schedules/{}/edit", sid.0)).await.text().contains("name=\"swaps_need_approval\" checked"));
    let r0 = &sched.layers[0].rotation;
    let (emp, oth, start_date) = (f.employee_a.0.to_string(), f.other_a.0.to_string(), r0.start_date.format("%Y-%m-%d").to_string());
    let r = m
        .post(
            &format!("/schedules/{}/edit", sid.0),
            &[
                ("csrf", &mcsrf), ("name", "Front desk"), ("time_zone", "Europe/London"), ("swaps_approval_shown", "1"),
                ("layers[0].name", "Daily"), ("layers[0].shift_count", "1"), ("layers[0].shift_unit", "days"),
                ("layers[0].start_date", &start_date), ("layers[0].handoff_time", "09:00"), ("layers[0].member", &emp), ("layers[0].member", &oth),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(!f.store.swaps_need_approval(f.org_a, sid).await.unwrap());

    let mut e = Client::new(app(&f));
    let csrf = e.logged_in(EMPLOYEE_A).await;
    let start = number_after(&e.get("/my/shifts").await.text(), "/my/shifts/swap?schedule=1&start=");
    let page = e.get(&format!("/my/shifts/swap?schedule={}&start={start}", sid.0)).await.text();
    let with = number_after(&page, "name=\"with\" value=\"");
    assert!(with.starts_with(&format!("{oth}:")), "Oscar's shift offered: {with}");
    let r = e.post("/my/swaps", &[("csrf", &csrf), ("schedule", "1"), ("start", &start), ("kind", "swap"), ("with", &with)]).await;
    assert_eq!(r.location(), "/my/shifts?flash=swap-asked", "{}", r.text());
    let swap = f.store.swaps_of_person(f.org_a, f.employee_a).await.unwrap()[0].id;

    // Organization B: 404 for the swap, its page and the schedule's decision.
    let mut b = Client::new(app(&f));
    let bcsrf = b.logged_in(MANAGER_B).await;
    assert_eq!(b.get(&format!("/my/shifts/swap?schedule={}&start={start}", sid.0)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.post(&format!("/my/swaps/{}/decline", swap.0), &[("csrf", &bcsrf)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.post(&format!("/schedules/{}/swaps/{}/refuse", sid.0, swap.0), &[("csrf", &bcsrf)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.get(&format!("/schedules/{}", sid.0)).await.status, StatusCode::NOT_FOUND);

    let mut o = Client::new(app(&f));
    let ocsrf = o.logged_in(OTHER_EMPLOYEE_A).await;
    let r = o.post(&format!("/my/swaps/{}/accept", swap.0), &[("csrf", &ocsrf)]).await;
    assert_eq!(r.location(), "/my/shifts?flash=swap-applied");
    let sched = f.store.schedule(f.org_a, sid).await.unwrap();
    assert_eq!(sched.overrides.len(), 2);
    let back: i64 = with.split_once(':').unwrap().1.parse().unwrap();
    assert_eq!(oncall_core::on_call(&sched, oncall_core::Timestamp(start.parse().unwrap())).unwrap().person, f.other_a);
    assert_eq!(oncall_core::on_call(&sched, oncall_core::Timestamp(back)).unwrap().person, f.employee_a);
    assert!(e.get("/my/shifts").await.text().contains("approved"));
}

/// Issue 18 item 6: "Page again", "Escalate now" and "Reassign to <person>" on a request are queued for the
/// paging task with a timeline event naming who asked. Managers have all three; the employee paged for the
/// request may escalate it; another employee gets 404; a request someone has or that is closed shows no
/// buttons and answers 409 with the reason, on the site and in the API.
#[tokio::test]
async fn paging_buttons_are_queued_with_role_checks_and_409_on_closed_requests() {
    use oncall_core::escalation::NotificationKey;
    use oncall_core::store::RequestAction;
    use oncall_core::{Channel, NewRequest, RequestId, Timestamp};
    let f = fixture().await;
    let now = Timestamp::now();
    let new = |s: &str| NewRequest { caller: "+442079460777".into(), summary: s.into(), call: None };
    let paging = f.store.create_request(f.org_a, &new("Boiler out"), now).await.unwrap();
    f.store.start_notifying(f.org_a, paging, now).await.unwrap();
    let key = NotificationKey { request: paging, stage: 0, person: f.employee_a, channel: Channel::Call };
    f.store.record_notification(f.org_a, &key, now).await.unwrap();
    let exhausted = f.store.create_request(f.org_a, &new("Alarm"), now).await.unwrap();
    f.store.start_notifying(f.org_a, exhausted, now).await.unwrap();
    f.store.mark_exhausted(f.org_a, exhausted, now).await.unwrap();
    let pending = |r: RequestId| {
        let store = f.store.clone();
        let org = f.org_a;
        async move { store.pending_request_actions(org, r).await.unwrap().into_iter().map(|a| a.action).collect::<Vec<_>>() }
    };

    let mut m = Client::new(app(&f));
    let csrf = m.logged_in(MANAGER_A).await;
    let html = m.get(&format!("/requests/{}", paging.0)).await.text();
    for id in ["id=\"page-again\"", "id=\"escalate\"", "id=\"reassign\""] {
        assert!(html.contains(id), "{id}");
    }
    assert!(html.contains(&format!("<option value=\"{}\">Oscar Other</option>", f.other_a.0)));
    let r = m.post(&format!("/requests/{}/page-again", paging.0), &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, format!("/requests/{}?flash=paging-again", paging.0)));
    let html = m.get(&r.location()).await.text();
    assert!(html.contains("Paging again now.") && html.contains("Page again — Ada Manager"), "the timeline names who asked");
    assert!(html.contains("Page again — asked by Ada Manager"), "shown as on its way");
    let r = m.post(&format!("/requests/{}/reassign", paging.0), &[("csrf", &csrf), ("person", &f.other_a.0.to_string())]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(m.get(&r.location()).await.text().contains("Reassign to Oscar Other — Ada Manager"));
    assert_eq!(m.post(&format!("/requests/{}/reassign", paging.0), &[("csrf", &csrf), ("person", "99999")]).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(m.post(&format!("/requests/{}/reassign", paging.0), &[("csrf", &csrf), ("person", "")]).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(pending(paging).await, vec![RequestAction::PageAgain, RequestAction::Reassign(f.other_a)]);
    // Exhausted: page again (from the first step) and reassign, but nothing to escalate.
    let html = m.get(&format!("/requests/{}", exhausted.0)).await.text();
    assert!(html.contains("id=\"page-again\"") && !html.contains("id=\"escalate\""));
    let r = m.post(&format!("/requests/{}/escalate", exhausted.0), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("page it again to start over"), "{}", r.text());
    // Answered (someone has it) and completed: no buttons, 409.
    let html = m.get(&format!("/requests/{}", f.request_a.0)).await.text();
    assert!(!html.contains("id=\"page-again\"") && !html.contains("id=\"paging-actions\""));
    let r = m.post(&format!("/requests/{}/page-again", f.request_a.0), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("someone has it already"), "{}", r.text());
    m.post(&format!("/requests/{}/complete", f.request_a.0), &[("csrf", &csrf)]).await;
    let r = m.post(&format!("/requests/{}/reassign", f.request_a.0), &[("csrf", &csrf), ("person", &f.other_a.0.to_string())]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("This request is completed"), "{}", r.text());
    assert!(pending(f.request_a).await.is_empty());

    // The employee paged for it may escalate, nothing else; another employee does not see it.
    let mut e = Client::new(app(&f));
    let ecsrf = e.logged_in(EMPLOYEE_A).await;
    let html = e.get(&format!("/requests/{}", paging.0)).await.text();
    assert!(html.contains("id=\"escalate\"") && !html.contains("id=\"page-again\"") && !html.contains("id=\"reassign\""));
    assert_eq!(e.post(&format!("/requests/{}/page-again", paging.0), &[("csrf", &ecsrf)]).await.status, StatusCode::FORBIDDEN);
    let r = e.post(&format!("/requests/{}/escalate", paging.0), &[("csrf", &ecsrf)]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, format!("/requests/{}?flash=escalating", paging.0)));
    assert!(e.get(&r.location()).await.text().contains("Escalate now — Eve Employee"));
    let mut o = Client::new(app(&f));
    let ocsrf = o.logged_in(OTHER_EMPLOYEE_A).await;
    assert_eq!(o.post(&format!("/requests/{}/escalate", paging.0), &[("csrf", &ocsrf)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(m.post(&format!("/requests/{}/page-again", paging.0), &[]).await.status, StatusCode::BAD_REQUEST, "no CSRF token");

    // The API: 202 with the queued action, the same checks.
    let token = api_token(&f, MANAGER_A).await;
    let mut api = Client::new(app(&f));
    let post_json = |uri: String, body: &str, token: &str| {
        Request::builder().method(Method::POST).uri(uri).header(header::AUTHORIZATION, token).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
    };
    let r = api.send(post_json(format!("/api/v1/requests/{}/escalate", paging.0), "", &token)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let body = json_of(&r).await;
    assert_eq!((body["queued"].as_str(), body["status"].as_str()), (Some("escalate"), Some("notifying")));
    let r = api.send(post_json(format!("/api/v1/requests/{}/reassign", exhausted.0), &format!("{{\"person\": {}}}", f.employee_a.0), &token)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(pending(exhausted).await, vec![RequestAction::Reassign(f.employee_a)]);
    let r = api.send(post_json(format!("/api/v1/requests/{}/page-again", f.request_a.0), "", &token)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let body = json_of(&r).await;
    assert_eq!(body["error"]["code"], "conflict");
    assert!(body["error"]["message"].as_str().unwrap().contains("completed"), "{body}");
    let etoken = api_token(&f, EMPLOYEE_A).await;
    assert_eq!(api.send(post_json(format!("/api/v1/requests/{}/page-again", paging.0), "", &etoken)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(api.send(post_json(format!("/api/v1/requests/{}/page-again", f.request_b.0), "", &token)).await.status, StatusCode::NOT_FOUND, "another org's");
}

/// Issue 18 item 11: My shifts gives a long shift's real end, not the end of the weeks it lists.
#[tokio::test]
async fn my_shifts_show_a_long_shifts_real_end() {
    use oncall_core::schedule::{Layer, NewSchedule, Rotation, ShiftLength};
    let f = fixture().await;
    let start = chrono::Utc::now().date_naive() - chrono::Days::new(10);
    let rotation = Rotation { members: vec![f.employee_a, f.other_a], shift_length: ShiftLength::Days(100), start_date: start, handoff_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap() };
    let new = NewSchedule { name: "Long watch".into(), time_zone: "Europe/London".into(), layers: vec![Layer { name: "Only".into(), rotation }] };
    f.store.create_schedule(f.org_a, &new, oncall_core::Timestamp::now()).await.unwrap();
    let mut e = Client::new(app(&f));
    e.logged_in(EMPLOYEE_A).await;
    let page = e.get("/my/shifts").await.text();
    let (begins, ends) = (start.format("%a %-d %b %Y, 09:00").to_string(), (start + chrono::Days::new(100)).format("%a %-d %b %Y, 09:00").to_string());
    assert!(page.contains("Long watch") && page.contains(&ends), "My shifts should say the shift ends {ends}:\n{page}");
    assert!(page.contains(&begins), "and that it began {begins}");
}

/// Paging off: the request buttons answer 409 saying so, instead of queueing work nobody carries out.
#[tokio::test]
async fn request_actions_are_refused_while_paging_is_off() {
    struct PagingOff;
    impl oncall_web::reachability::Reachability for PagingOff {
        fn paging_on(&self) -> Option<bool> {
            Some(false)
        }
        fn reach(&self, _person: &oncall_core::Person, _accounts: &[String]) -> oncall_web::reachability::Reach {
            oncall_web::reachability::Reach { unreachable: false, problems: Vec::new() }
        }
    }
    let f = fixture().await;
    let mut c = Client::new(app_with(&f, |w| w.reachability = std::sync::Arc::new(PagingOff)));
    let csrf = c.logged_in(MANAGER_A).await;
    let r = c.post(&format!("/requests/{}/page-again", f.unassigned_a.0), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("Paging is off"), "{}", r.text());
    assert!(f.store.take_request_actions(f.org_a, "test", oncall_core::Timestamp::now(), 10).await.unwrap().is_empty(), "nothing was queued");
}

/// Issue 17 item 1: the operator's area, with its own role and session. A manager's session does not open it
/// and a manager's password is not an operator's; the operator's session opens no organization's page. The
/// operator creates an organization with numbers and a first manager (one-time password shown once), who signs
/// in; a bad number creates nothing; disabling signs the organization's people out and keeps them out; deleting
/// needs the slug typed and says what it removed.
#[tokio::test]
async fn the_operator_manages_organizations_in_the_browser() {
    let f = fixture().await;
    f.store.add_operator("Olive", "olive@operator.example", PASSWORD, oncall_core::Timestamp::now()).await.unwrap();
    let mut manager = Client::new(app(&f));
    manager.logged_in(MANAGER_A).await;
    let r = manager.get("/operator").await;
    assert_eq!((r.status, r.location().as_str()), (StatusCode::SEE_OTHER, "/operator/login"));
    let page = manager.get("/operator/login").await;
    let csrf = csrf_in(&page.text());
    let r = manager.post("/operator/login", &[("email", MANAGER_A), ("password", PASSWORD), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a manager is no operator");

    let mut op = Client::new(app(&f));
    let page = op.get("/operator/login").await;
    let csrf = csrf_in(&page.text());
    let r = op.post("/operator/login", &[("email", "olive@operator.example"), ("password", PASSWORD), ("csrf", &csrf)]).await;
    assert_eq!((r.status, r.location().as_str()), (StatusCode::SEE_OTHER, "/operator"), "{}", r.text());
    let home = op.get("/operator").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text().contains("Alpha Apartments") && home.text().contains("Beta Buildings"), "{}", home.text());
    let csrf = csrf_in(&home.text());
    assert_eq!(op.get("/requests").await.status, StatusCode::SEE_OTHER, "the operator's session opens no organization's page");
    assert_eq!(op.post("/operator/orgs", &[("name", "Night Desk")]).await.status, StatusCode::BAD_REQUEST, "no CSRF token");

    let r = op
        .post("/operator/orgs", &[("csrf", &csrf), ("name", "Night Desk"), ("time_zone", "Europe/Berlin"), ("numbers", "+1 555 987 0000, 4100"), ("manager_email", "boss@night.example")])
        .await;
    let text = r.text();
    assert_eq!(r.status, StatusCode::OK, "{text}");
    assert!(text.contains("+15559870000 answers for it") && text.contains("4100 answers for it"), "{text}");
    let password: String = text.split("one-time password ").nth(1).unwrap_or("").chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    assert_eq!(password.len(), 20, "{text}");
    let mut boss = Client::new(app(&f));
    assert_eq!(boss.login("boss@night.example", &password).await.status, StatusCode::SEE_OTHER);
    assert_eq!(boss.get("/").await.status, StatusCode::OK);

    let r = op.post("/operator/orgs", &[("csrf", &csrf), ("name", "Broken"), ("numbers", "not a number!")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("E.164"), "{}", r.text());
    assert!(f.store.find_organization("broken").await.is_err(), "a bad number creates nothing");

    let night = f.store.find_organization("night-desk").await.unwrap();
    let r = op.post(&format!("/operator/orgs/{}/disable", night.id.0), &[("csrf", &csrf)]).await;
    assert!(r.status == StatusCode::OK && r.text().contains("night-desk is disabled"), "{}", r.text());
    assert_eq!(boss.get("/").await.status, StatusCode::SEE_OTHER, "a disabled organization's session ends");
    assert_eq!(boss.login("boss@night.example", &password).await.status, StatusCode::UNAUTHORIZED);

    let r = op.post(&format!("/operator/orgs/{}/delete", night.id.0), &[("csrf", &csrf), ("confirm", "nope")]).await;
    assert!(r.status == StatusCode::BAD_REQUEST && r.text().contains("nothing was deleted"), "{}", r.text());
    let r = op.post(&format!("/operator/orgs/{}/delete", night.id.0), &[("csrf", &csrf), ("confirm", "night-desk")]).await;
    let text = r.text();
    assert!(r.status == StatusCode::OK && text.contains("Deleted Night Desk (night-desk)") && text.contains("1 users") && text.contains("2 organization_numbers"), "{text}");
    assert!(f.store.find_organization("night-desk").await.is_err());
    assert!(f.store.find_organization("alpha").await.is_ok() && f.store.find_organization("beta").await.is_ok());

    let r = op.post("/operator/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(op.get("/operator").await.status, StatusCode::SEE_OTHER);
}

/// Issue 20: a manager creates an integration key on the web (shown once, with the URLs to paste) and revokes
/// it; an employee cannot reach the page; another organization's manager does not see it.
#[tokio::test]
async fn managers_create_and_revoke_integration_keys() {
    let f = fixture().await;
    let mut c = Client::new(app(&f));
    let csrf = c.logged_in(MANAGER_A).await;
    let r = c.post("/integrations", &[("csrf", &csrf), ("name", "Prom East"), ("policy", "")]).await;
    let text = r.text();
    assert_eq!(r.status, StatusCode::OK, "{text}");
    assert!(text.contains("/api/v1/alerts/alertmanager") && text.contains("/v2/enqueue"), "{text}");
    let key: String = text.split("<code class=\"token\">").nth(1).unwrap_or("").chars().take_while(|c| *c != '<').collect();
    assert!(key.starts_with("oci_"), "{text}");
    let found = f.store.integration_by_secret(&key).await.unwrap().expect("the key works");
    assert_eq!(found.org, f.org_a);
    let list = c.get("/integrations").await.text();
    assert!(list.contains("Prom East") && !list.contains(&key), "the secret is not shown again");
    let r = c.post(&format!("/integrations/{}/revoke", found.id), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(f.store.integration_by_secret(&key).await.unwrap().is_none(), "revoked");

    let mut other = Client::new(app(&f));
    let csrf_b = other.logged_in(MANAGER_B).await;
    assert!(!other.get("/integrations").await.text().contains("Prom East"));
    assert_eq!(other.post(&format!("/integrations/{}/revoke", found.id), &[("csrf", &csrf_b)]).await.status, StatusCode::NOT_FOUND);
    let mut employee = Client::new(app(&f));
    employee.logged_in(EMPLOYEE_A).await;
    assert_eq!(employee.get("/integrations").await.status, StatusCode::FORBIDDEN);
}

/// Issue 20: a script opens a request with a manager's API token (201, source "api", its summary); an
/// employee's token gets 403, and an empty summary 400.
#[tokio::test]
async fn a_script_opens_a_request_with_a_managers_token() {
    let f = fixture().await;
    let manager = api_token(&f, MANAGER_A).await;
    let employee = api_token(&f, EMPLOYEE_A).await;
    let mut api = Client::new(app(&f));
    let post = |auth: &str, body: &str| {
        Request::post("/api/v1/requests").header("authorization", auth).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
    };
    let r = api.send(post(&manager, r#"{"summary": "Nightly import failed"}"#)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = json_of(&r).await;
    assert_eq!((v["source"].as_str(), v["summary"].as_str(), v["status"].as_str()), (Some("api"), Some("Nightly import failed"), Some("received")), "{v}");
    let id = oncall_core::RequestId(v["id"].as_i64().unwrap());
    assert!(f.store.alert_of_request(f.org_a, id).await.unwrap().is_some(), "paged like an alert, its summary spoken");
    assert_eq!(api.send(post(&employee, r#"{"summary": "x"}"#)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(api.send(post(&manager, r#"{"summary": "  "}"#)).await.status, StatusCode::BAD_REQUEST);
}

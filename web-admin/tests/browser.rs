//! End-to-end tests in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver), against the web admin served on a loopback port. One session walks through
//! what managers and employees do: log in, create a rotation and see it on the calendar, add an
//! override by clicking a day, play and seek a recording, complete a request, and the access
//! rules (an employee cannot open manager pages; organization B gets 404 for A's request and
//! recording). Screenshots of the main pages land in `test-output/web-admin/` (git-ignored).
//!
//! Chromium and chromedriver come from `scripts/install-browser.sh`, which the test runs itself
//! if they are missing. The WebDriver client is `tests/support/webdriver.rs`, shared with the
//! browser phone's test.

mod support;

#[path = "../../tests/support/webdriver.rs"]
mod webdriver;

use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use support::*;
use webdriver::{ensure_browser, ELEMENT};

/// The shared driver, with its profile folder, where screenshots go, and this site's own steps.
struct Driver {
    d: webdriver::Driver,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl std::ops::Deref for Driver {
    type Target = webdriver::Driver;
    fn deref(&self) -> &webdriver::Driver {
        &self.d
    }
}

impl Driver {
    fn start(base: String) -> Driver {
        let profile = tempfile::tempdir().unwrap();
        let d = webdriver::Driver::start(base, profile.path(), &[]);
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("test-output/web-admin");
        std::fs::create_dir_all(&shots).unwrap();
        Driver { d, shots, _profile: profile }
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine;
        let b64 = self.cmd("GET", "/screenshot", json!({}));
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    fn window(&self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", json!({"width": width, "height": height}));
    }

    fn login(&self, email: &str) {
        self.d.login(email, PASSWORD);
    }

    /// A real mouse click `dx`, `dy` pixels from the centre of the element `css`.
    fn click_at(&self, css: &str, dx: i64, dy: i64) {
        let id = self.find(css);
        let actions = json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
            {"type": "pointerMove", "duration": 0, "origin": {ELEMENT: id}, "x": dx, "y": dy},
            {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}]});
        self.cmd("POST", "/actions", actions);
        self.cmd("DELETE", "/actions", json!({}));
    }

    /// The console messages since the last call that report a Content-Security-Policy refusal.
    fn csp_violations(&self) -> Vec<String> {
        let logs = self.cmd("POST", "/se/log", json!({"type": "browser"}));
        logs.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .filter(|m| m.contains("Content Security Policy") || m.contains("Content-Security-Policy"))
            .map(str::to_string)
            .collect()
    }

    fn logout(&self) {
        self.click("form[action='/logout'] button");
        self.wait_for("the login page", "return location.pathname === '/login'");
    }
}

#[test]
fn browser_walkthrough() {
    ensure_browser();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let f = rt.block_on(fixture());
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = support::app(&f);
    rt.spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap() });
    let d = Driver::start(format!("http://{addr}"));

    // Log in as a manager.
    d.go("/requests");
    d.wait_for("the login redirect", "return location.pathname === '/login'");
    d.screenshot("login");
    d.login(MANAGER_A);
    assert!(d.text().contains("On call now"));
    d.screenshot("dashboard");
    // Issue 18 item 6: the open-request list refreshes itself; a new call's request appears without a reload.
    let new = oncall_core::NewRequest { caller: "+442079460555".into(), summary: "Boiler in the basement".into(), call: None };
    rt.block_on(f.store.create_request(f.org_a, &new, oncall_core::Timestamp::now())).unwrap();
    d.wait_for("the new request in the refreshed list", "return document.querySelector('#open-requests').innerText.includes('Boiler in the basement')");

    // Create a rotation and see it on the calendar.
    d.go("/schedules/new");
    d.type_in("input[name=name]", "Evenings");
    d.type_in("input[name='layers[0].name']", "Weekly");
    d.set("input[name='layers[0].shift_count']", "1");
    d.set("select[name='layers[0].shift_unit']", "weeks");
    let today = chrono::Utc::now().date_naive();
    let monday = today - chrono::Duration::days(i64::from(chrono::Datelike::weekday(&today).num_days_from_monday()));
    d.set("input[name='layers[0].start_date']", &monday.format("%Y-%m-%d").to_string());
    d.set("input[name='layers[0].handoff_time']", "18:00");
    d.js(
        "const s = document.querySelectorAll(\"select[name='layers[0].member']\"); s[0].value = arguments[0]; s[1].value = arguments[1];",
        json!([f.other_a.0.to_string(), f.employee_a.0.to_string()]),
    );
    d.click("#schedule-form button[type=submit]");
    d.wait_for("the calendar", "return !!document.querySelector('#calendar')");
    let cal = d.text();
    assert!(cal.contains("Oscar Other") && cal.contains("Eve Employee"), "members on the calendar: {cal}");
    assert!(d.js("return document.querySelectorAll('.chip').length", json!([])).as_u64().unwrap() >= 7);
    d.screenshot("schedule-month");
    let schedule_url = d.url();

    // Add an override by clicking a day (the script fills the form in place).
    let day = d.js("const c = [...document.querySelectorAll('.month-day:not(.other)')]; return c[Math.min(20, c.length - 1)].dataset.date", json!([])).as_str().unwrap().to_string();
    d.click(&format!(".month-day[data-date='{day}'] a.day-num"));
    d.wait_for("the override form", &format!("return document.querySelector('#override-form input[name=start]').value.startsWith('{day}T18:00')"));
    d.set("#override-form select[name=person]", &f.manager_a.0.to_string());
    d.click("#override-form button[type=submit]");
    d.wait_for("the override on the calendar", "return document.body.innerText.includes('Override added')");
    let chip = d.js(&format!("const c = document.querySelector(\".month-day[data-date='{day}'] .chip.override\"); return c && c.innerText"), json!([]));
    assert!(chip.as_str().unwrap_or("").contains("Ada Manager"), "override chip: {chip}");
    d.screenshot("schedule-override");
    let path = schedule_url.split_once(&addr.to_string()).map(|(_, p)| p).unwrap().split('?').next().unwrap().to_string();
    d.go(&format!("{path}?view=week"));
    d.wait_for("the week view", "return document.querySelectorAll('.week .bar').length > 0");
    d.screenshot("schedule-week");

    // Open a request: the audio element loads and seeks (the server answers Range requests).
    d.go(&format!("/requests/{}", f.request_a.0));
    d.wait_for("audio metadata", "const a = document.querySelector('audio'); return a && a.readyState >= 1 && a.duration > 2.9");
    d.js("document.querySelector('audio').currentTime = 2.0", json!([]));
    d.wait_for(
        "the seek",
        "const a = document.querySelector('audio'); return !a.seeking && Math.abs(a.currentTime - 2.0) < 0.1 && a.seekable.length > 0 && a.seekable.end(0) > 2.9",
    );
    d.screenshot("request");

    // Complete it with a note.
    d.type_in("#action-form textarea[name=note]", "Replaced the pipe under 5B");
    d.click("#complete");
    d.wait_for("the completion", "return document.body.innerText.includes('Marked as completed')");
    assert!(d.text().contains("Replaced the pipe under 5B"));
    assert!(d.text().contains("Completed"));

    d.go("/requests");
    d.screenshot("requests");
    d.go("/reports");
    d.wait_for("charts", "return document.querySelectorAll('svg.chart').length >= 1");
    // Issue 18 item 10: chart text is at least 12 px on a desktop page (the SVG scales to its card).
    d.window(1280, 900);
    let smallest = d.js(
        "let min = 1e9; for (const s of document.querySelectorAll('svg.chart')) { const k = s.getBoundingClientRect().width / s.viewBox.baseVal.width; \
         for (const t of s.querySelectorAll('text')) { min = Math.min(min, parseFloat(getComputedStyle(t).fontSize) * k); } } return min",
        json!([]),
    );
    assert!(smallest.as_f64().unwrap() >= 12.0, "smallest chart text {smallest} px at 1280 px wide");
    d.screenshot("metrics");
    // Issue 18 item 12: at 390 px nothing scrolls sideways, and the menu opens from the keyboard.
    d.window(390, 844);
    for page in ["/".to_string(), "/requests".to_string(), format!("/requests/{}", f.request_a.0), "/ivr".to_string()] {
        d.go(&page);
        let wide = d.js("return document.documentElement.scrollWidth - window.innerWidth", json!([]));
        assert!(wide.as_f64().unwrap_or(1.0) <= 0.0, "{page} scrolls sideways by {wide} px at 390 px wide");
    }
    d.screenshot("ivr-390");
    // The phone menu's key pickers show their digit.
    let narrow = d.js("return Math.min(...[...document.querySelectorAll('select[name=digit]')].map(s => s.getBoundingClientRect().width))", json!([]));
    assert!(narrow.as_f64().unwrap_or(0.0) >= 44.0, "a key picker is {narrow} px wide at 390 px");
    let opened = d.js(
        "const t = document.getElementById('nav-toggle'); t.focus(); const focused = document.activeElement === t; t.click(); \
         return focused && getComputedStyle(document.querySelector('.nav')).display !== 'none'",
        json!([]),
    );
    assert_eq!(opened, json!(true), "the menu's toggle takes the focus and opens the menu");
    assert!(d.js("return !!document.querySelector('a.skip[href=\"#main\"]') && !!document.getElementById('main')", json!([])).as_bool().unwrap());
    d.window(1280, 900);
    d.go("/people");
    d.screenshot("people");
    d.go("/ivr");
    d.screenshot("ivr");
    // Every page so far ran under the Content-Security-Policy (issue 15 item 7): app.js filled the
    // override form above, and the browser refused nothing on any of them.
    let refused = d.csp_violations();
    assert!(refused.is_empty(), "the CSP blocked parts of the site: {refused:#?}");
    // Control: an injected inline script is refused, and the refusal shows in that log.
    d.js("const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.appendChild(s);", json!([]));
    assert_eq!(d.js("return window.injected === 1", json!([])), json!(false), "an inline script ran");
    assert!(!d.csp_violations().is_empty(), "the refused inline script was not reported");
    // Inline style attributes (the colour dots) still apply.
    d.go("/people");
    let dot = d.js("const e = document.querySelector('.dot'); return e && getComputedStyle(e).backgroundColor", json!([]));
    assert!(dot.as_str().is_some_and(|c| c != "rgba(0, 0, 0, 0)"), "colour dot unstyled: {dot}");

    // A phone's width: the employee opening a link from a text message.
    d.window(390, 844);
    d.go(&format!("/requests/{}", f.request_a.0));
    let overflow = d.js("return document.documentElement.scrollWidth - window.innerWidth", json!([])).as_i64().unwrap();
    assert!(overflow <= 1, "no horizontal scrolling on a phone ({overflow}px)");
    d.screenshot("request-phone");
    d.window(1280, 1000);
    d.logout();

    // An employee cannot open manager pages.
    d.login(EMPLOYEE_A);
    d.go("/people");
    assert!(d.text().contains("This page is for managers"));
    // Issue 18 item 9: employees read schedules (no override form, no edit button).
    d.go("/schedules");
    assert!(d.text().contains("Front desk"), "{}", d.text());
    assert_eq!(d.js("return !!document.querySelector('a[href=\"/schedules/new\"]')", json!([])), json!(false));
    d.go("/my/shifts");
    assert!(d.text().contains("Calendar feed"));
    d.screenshot("employee-my-shifts");
    // The feed address selects itself on click (app.js, no inline handler).
    d.click("#feed-url");
    let selected = d.js("const e = document.getElementById('feed-url'); return e.selectionEnd - e.selectionStart", json!([]));
    assert!(selected.as_i64().unwrap_or(0) > 10, "feed address not selected: {selected}");
    // "Back" on an error page goes back (app.js, no javascript: URL).
    d.go("/no-such-page");
    assert!(d.text().contains("Not found"));
    d.click("a[data-back]");
    d.wait_for("the page before the error", "return location.pathname === '/my/shifts'");
    let refused = d.csp_violations();
    assert!(refused.is_empty(), "the CSP blocked parts of the site: {refused:#?}");
    d.logout();

    // Organization B cannot read organization A's request or recording.
    d.login(MANAGER_B);
    d.go(&format!("/requests/{}", f.request_a.0));
    assert!(d.text().contains("Not found"));
    d.screenshot("other-org-404");
    let status = d.cmd(
        "POST",
        "/execute/async",
        json!({"script": "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => done(r.status));", "args": [format!("/recordings/{}", f.recording_a.0)]}),
    );
    assert_eq!(status, json!(404));
    let own = d.cmd(
        "POST",
        "/execute/async",
        json!({"script": "const done = arguments[arguments.length - 1]; fetch(arguments[0], {headers: {Range: 'bytes=0-3'}}).then(r => done(r.status));", "args": [format!("/recordings/{}", f.recording_b.0)]}),
    );
    assert_eq!(own, json!(206));
    drop(d);
    drop(f);
}

/// Issue 15 item 3, the reported attack: `/login?next=%2F%09%2F127.0.0.1%3A<port>%2Fx` used to send
/// Chromium, after a successful login, to another origin (Chromium drops the tab from
/// `/\t/127.0.0.1:<port>/x` and reads `//127.0.0.1:<port>/x`). A second server on another loopback
/// port stands in for the attacker's site and counts its visitors: after the login the browser
/// must be on OnCall's dashboard and the attacker must have seen nobody.
#[test]
fn login_next_never_leaves_the_site() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    ensure_browser();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let f = rt.block_on(fixture());
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = support::app(&f);
    rt.spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap() });
    let evil_listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let evil = evil_listener.local_addr().unwrap();
    let visits = Arc::new(AtomicUsize::new(0));
    let counter = visits.clone();
    let evil_app = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { "phishing page" }
    });
    rt.spawn(async move { axum::serve(evil_listener, evil_app).await.unwrap() });
    let d = Driver::start(format!("http://{addr}"));

    let attacks = [
        format!("/login?next=%2F%09%2F127.0.0.1%3A{}%2Fx", evil.port()),
        format!("/login?next=%2F%5C127.0.0.1%3A{}%2Fx", evil.port()),
        format!("/login?next=%2F.%2F%2F127.0.0.1%3A{}%2Fx", evil.port()),
        format!("/login?next=%2F%0A%2F127.0.0.1%3A{}%2Fx", evil.port()),
    ];
    for (i, attack) in attacks.iter().enumerate() {
        d.go(attack);
        d.type_in("input[name=email]", MANAGER_A);
        d.type_in("input[name=password]", PASSWORD);
        d.click("form button[type=submit]");
        // Done when on the dashboard, or when the browser has gone anywhere else (the attack worked).
        d.wait_for(
            "the dashboard or another origin",
            &format!("return location.host !== '{addr}' || (location.pathname === '/' && !!document.querySelector('h1') && document.querySelector('h1').innerText === 'Dashboard')"),
        );
        let at = d.url();
        assert!(at.starts_with(&format!("http://{addr}/")), "attack {i} ({attack}) left the site for {at}");
        assert_eq!(visits.load(Ordering::SeqCst), 0, "attack {i} ({attack}) reached the other origin");
        if i == 0 {
            d.screenshot("login-next-attack");
        }
        d.logout();
    }
    // A local `next` still works.
    d.go("/login?next=%2Frequests%3Fstatus%3Dopen");
    d.type_in("input[name=email]", MANAGER_A);
    d.type_in("input[name=password]", PASSWORD);
    d.click("form button[type=submit]");
    d.wait_for("the requests page", "return location.pathname === '/requests' && location.search === '?status=open'");
    drop(d);
    drop(f);
}

/// Issue 18 item 9: a day cell takes clicks anywhere, not only on its 29 × 20 px number (an empty
/// corner, a shift), in the month and the week view; overrides are striped in the week view too;
/// employees get the calendar without the override form.
#[test]
fn calendar_days_take_clicks_anywhere_and_week_overrides_are_striped() {
    ensure_browser();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let f = rt.block_on(fixture());
    let sid = rt.block_on(f.store.list_schedules(f.org_a)).unwrap()[0].id;
    // An override today from 12:00 to 15:00 (London), to see in the week view.
    let tz: chrono_tz::Tz = "Europe/London".parse().unwrap();
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let local = |h: u32| oncall_core::schedule::resolve_local(tz, today.and_hms_opt(h, 0, 0).unwrap()).unwrap();
    let o = oncall_core::schedule::Override::new(f.manager_a, local(12), local(15));
    rt.block_on(f.store.add_override(f.org_a, sid, &o, oncall_core::Timestamp::now())).unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = support::app(&f);
    rt.spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap() });
    let d = Driver::start(format!("http://{addr}"));
    d.login(MANAGER_A);

    // Month view: the bottom-right corner of a day cell is empty (the cell itself is hit there).
    d.go(&format!("/schedules/{}", sid.0));
    d.wait_for("the month", "return !!document.querySelector('#calendar .month-day')");
    let day = d.js("const c = [...document.querySelectorAll('.month-day:not(.other)')]; return c[Math.min(16, c.length - 1)].dataset.date", json!([])).as_str().unwrap().to_string();
    let cell = format!(".month-day[data-date='{day}']");
    let hit = d.js(
        "const c = document.querySelector(arguments[0]); const r = c.getBoundingClientRect(); c.scrollIntoView({block: 'center'}); \
         const q = c.getBoundingClientRect(); return [document.elementFromPoint(q.right - 6, q.bottom - 6) === c, r.width, q.height]",
        json!([cell]),
    );
    assert_eq!(hit[0], json!(true), "the corner of {cell} is not empty: {hit}");
    let (w, h) = (d.js("return document.querySelector(arguments[0]).getBoundingClientRect().width", json!([cell])).as_f64().unwrap() as i64, hit[2].as_f64().unwrap() as i64);
    d.click_at(&cell, w / 2 - 6, h / 2 - 6);
    d.wait_for("the form filled from the empty corner", &format!("return document.getElementById('override').open && document.querySelector('#override-form input[name=start]').value === '{day}T09:00'"));
    assert!(!d.url().contains("override_date"), "filled in place, no reload");
    // A shift (chip) of another day.
    let other = d.js("const c = [...document.querySelectorAll('.month-day:not(.other)')].filter(c => c.querySelector('.chip')); return c[Math.min(3, c.length - 1)].dataset.date", json!([])).as_str().unwrap().to_string();
    d.click(&format!(".month-day[data-date='{other}'] .chip"));
    d.wait_for("the form filled from a shift", &format!("return document.querySelector('#override-form input[name=start]').value === '{other}T09:00'"));
    d.screenshot("schedule-click-anywhere");

    // Week view: the override is striped, and an empty stretch of a day's column takes clicks.
    d.go(&format!("/schedules/{}?view=week", sid.0));
    d.wait_for("the week", "return document.querySelectorAll('.week .bar').length > 0");
    let stripes = d.js("const b = document.querySelector('.week .bar.override'); return b && getComputedStyle(b).backgroundImage", json!([]));
    assert!(stripes.as_str().is_some_and(|s| s.contains("repeating-linear-gradient")), "week-view override not striped: {stripes}");
    let plain = d.js("const b = document.querySelector('.week .bar:not(.override)'); return b && getComputedStyle(b).backgroundImage", json!([]));
    assert_eq!(plain, json!("none"), "ordinary shifts are not striped");
    let ws = today.format("%Y-%m-%d").to_string();
    let col = format!(".week-day[data-date='{ws}']");
    d.click_at(&col, 0, 0);
    d.wait_for("the form filled from the week view", &format!("return document.querySelector('#override-form input[name=start]').value === '{ws}T09:00'"));
    d.screenshot("schedule-week-striped");
    assert!(d.csp_violations().is_empty());
    d.logout();

    // An employee: the same calendar, read-only; clicks do nothing.
    d.login(EMPLOYEE_A);
    d.go(&format!("/schedules/{}", sid.0));
    d.wait_for("the month", "return !!document.querySelector('#calendar .month-day')");
    assert!(d.text().contains("Next:"), "who is on call next: {}", d.text());
    assert_eq!(d.js("return !!document.getElementById('override-form') || !!document.querySelector('a.day-num')", json!([])), json!(false));
    d.click(&format!("{cell} .day-num"));
    assert!(d.url().ends_with(&format!("/schedules/{}", sid.0)), "nothing happens: {}", d.url());
    d.screenshot("schedule-employee");
    drop(d);
    drop(f);
}

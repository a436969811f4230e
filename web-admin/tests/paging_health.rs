//! Paging health on the web (issue 18 item 5): the dashboard warns about whoever is on call now and
//! cannot be reached, with the fix; the People page flags everyone nobody could reach. The paging
//! side's rules are tested in `oncall_paging::reachability`; here a stand-in shaped like
//! `serve --demo` (phone numbers and no trunk, phone accounts that may or may not be signed in)
//! shows what the pages make of its answers and that they hand it the person's phone accounts.

mod support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use oncall_core::store::NewSipAccount;
use oncall_core::{Person, PersonId, Timestamp};
use oncall_web::reachability::{ContactProblem, Reach, Reachability};
use std::sync::Arc;
use support::*;
use tower::ServiceExt;

/// The demo's facts: no trunk, the registrar on, `registered` the accounts signed in now.
struct DemoLike {
    registered: Vec<String>,
    paging: bool,
}

impl Reachability for DemoLike {
    fn general(&self) -> Vec<ContactProblem> {
        if self.paging {
            return Vec::new();
        }
        vec![ContactProblem::new("Paging", "paging is off ([paging] enabled = false)", "set [paging] enabled = true in oncall.toml")]
    }

    fn paging_on(&self) -> Option<bool> {
        Some(self.paging)
    }

    fn reach(&self, person: &Person, accounts: &[String]) -> Reach {
        let mut problems: Vec<ContactProblem> = accounts
            .iter()
            .filter(|a| !self.registered.contains(a))
            .map(|a| ContactProblem::new(format!("phone account {a}"), "no phone is registered for it now", format!("sign in a softphone as {a}")))
            .collect();
        for n in person.phones() {
            problems.push(ContactProblem::new(format!("calls to {n}"), "no [[trunks]] entry dials phone numbers", "add a [[trunks]] entry to oncall.toml"));
        }
        Reach { unreachable: !accounts.iter().any(|a| self.registered.contains(a)), problems }
    }
}

fn demo_like(registered: &[&str]) -> Arc<dyn Reachability> {
    Arc::new(DemoLike { registered: registered.iter().map(|s| s.to_string()).collect(), paging: true })
}

/// Cookies and GETs: enough to log in and read pages.
struct Browser {
    app: Router,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    async fn send(&mut self, mut req: Request<Body>) -> (StatusCode, String) {
        if !self.cookies.is_empty() {
            let c = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            req.headers_mut().insert(header::COOKIE, c.parse().unwrap());
        }
        let resp = self.app.clone().oneshot(req).await.unwrap();
        for sc in resp.headers().get_all(header::SET_COOKIE) {
            let (k, v) = sc.to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.insert(k.to_string(), v.to_string());
        }
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&mut self, uri: &str) -> String {
        let (status, body) = self.send(Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        body
    }

    async fn logged_in(app: Router, email: &str) -> Browser {
        let mut b = Browser { app, cookies: Default::default() };
        let (_, login) = b.send(Request::get("/login").body(Body::empty()).unwrap()).await;
        let form = serde_urlencoded::to_string([("email", email), ("password", PASSWORD), ("csrf", &csrf_in(&login)), ("next", "/")]).unwrap();
        let req = Request::builder().method(Method::POST).uri("/login").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from(form)).unwrap();
        let (status, body) = b.send(req).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "login of {email}: {body}");
        b
    }
}

async fn give_phone_account(f: &Fixture, person: PersonId, username: &str) {
    let account = NewSipAccount { username, realm: "oncall", ha1_md5: "0123456789abcdef0123456789abcdef", ha1_sha256: &"ab".repeat(32) };
    f.store.set_sip_account(f.org_a, person, &account, Timestamp::now()).await.unwrap();
}

/// Who is on call for Front desk now (the fixture's daily rotation of Eve and Oscar), and the other one.
async fn on_call_now(f: &Fixture) -> (PersonId, PersonId) {
    let schedules = f.store.list_schedules(f.org_a).await.unwrap();
    let who = oncall_core::schedule::on_call(&schedules[0], Timestamp::now()).expect("someone is on call").person;
    (who, if who == f.employee_a { f.other_a } else { f.employee_a })
}

fn username(f: &Fixture, p: PersonId) -> &'static str {
    if p == f.employee_a {
        "eve"
    } else {
        "oscar"
    }
}

#[tokio::test]
async fn the_dashboard_warns_when_the_person_on_call_has_no_registered_phone_and_says_what_to_do() {
    let f = fixture().await;
    let (on_call, _) = on_call_now(&f).await;
    give_phone_account(&f, on_call, username(&f, on_call)).await;
    let name = f.store.person(f.org_a, on_call).await.unwrap().name;

    let app = app_with(&f, |c| c.reachability = demo_like(&[]));
    let mut manager = Browser::logged_in(app, MANAGER_A).await;
    let home = manager.get("/").await;
    let id = format!("id=\"cannot-reach-{}\"", on_call.0);
    assert!(home.contains(&id), "{home}");
    assert!(home.contains(&format!("{name} is on call now (Front desk) but paging cannot reach them.")), "{home}");
    let user = username(&f, on_call);
    assert!(home.contains(&format!("<strong>phone account {user}</strong>: no phone is registered for it now. Fix: sign in a softphone as {user}.")), "{home}");
    assert!(home.contains("no [[trunks]] entry dials phone numbers. Fix: add a [[trunks]] entry to oncall.toml."), "{home}");

    // Signed in: no warning box, the number that cannot be called is listed under "some contacts".
    let app = app_with(&f, |c| c.reachability = demo_like(&[user]));
    let mut manager = Browser::logged_in(app, MANAGER_A).await;
    let home = manager.get("/").await;
    assert!(!home.contains("cannot-reach-"), "{home}");
    assert!(home.contains("id=\"partly-reachable\""), "{home}");
    assert!(home.contains(&format!("<strong>{name}</strong> (Front desk) can be reached, but not by:")), "{home}");
    assert!(!home.contains(&format!("phone account {user}")), "{home}");
}

#[tokio::test]
async fn an_employee_is_warned_only_about_themselves_and_paging_off_only_to_managers() {
    let f = fixture().await;
    let (on_call, off_duty) = on_call_now(&f).await;
    let email = |p: PersonId| if p == f.employee_a { EMPLOYEE_A } else { OTHER_EMPLOYEE_A };
    let reach: Arc<dyn Reachability> = Arc::new(DemoLike { registered: Vec::new(), paging: false });

    let app = app_with(&f, |c| c.reachability = reach.clone());
    let home = Browser::logged_in(app.clone(), email(on_call)).await.get("/").await;
    assert!(home.contains(&format!("id=\"cannot-reach-{}\"", on_call.0)), "{home}");
    assert!(!home.contains("paging is off"), "{home}");
    let home = Browser::logged_in(app.clone(), email(off_duty)).await.get("/").await;
    assert!(!home.contains("cannot-reach-"), "{home}");

    let home = Browser::logged_in(app, MANAGER_A).await.get("/").await;
    assert!(home.contains("<strong>Paging: paging is off ([paging] enabled = false).</strong> Fix: set [paging] enabled = true in oncall.toml."), "{home}");
}

#[tokio::test]
async fn the_people_page_flags_whoever_cannot_be_reached_with_the_reason() {
    let f = fixture().await;
    give_phone_account(&f, f.employee_a, "eve").await;
    give_phone_account(&f, f.other_a, "oscar").await;
    // Eve's softphone is signed in, Oscar's is not, Ada has only a number.
    let app = app_with(&f, |c| c.reachability = demo_like(&["eve"]));
    let page = Browser::logged_in(app, MANAGER_A).await.get("/people").await;

    assert!(!page.contains(&format!("id=\"unreachable-{}\"", f.employee_a.0)), "{page}");
    assert!(page.contains(&format!("id=\"unreachable-{}\">cannot be reached</span>", f.other_a.0)), "{page}");
    let oscar = page.split(&format!("id=\"reach-{}\"", f.other_a.0)).nth(1).expect("Oscar's reasons").split("</ul>").next().unwrap();
    assert!(oscar.contains("<li>phone account oscar: no phone is registered for it now. Fix: sign in a softphone as oscar.</li>"), "{oscar}");
    assert!(page.contains(&format!("id=\"unreachable-{}\">cannot be reached</span>", f.manager_a.0)), "{page}");
    assert!(page.contains("<li>calls to +442079460001: no [[trunks]] entry dials phone numbers."), "{page}");
    // Eve can be reached; what cannot be used is still listed, muted.
    let eve = page.split(&format!("id=\"reach-{}\"", f.employee_a.0)).nth(1).expect("Eve's notes").split("</ul>").next().unwrap();
    assert!(eve.contains("calls to +442079460002") && !eve.contains("phone account"), "{eve}");

    // A disabled person is not flagged: they are not paged on purpose.
    f.store.set_person_disabled(f.org_a, f.other_a, true, Timestamp::now()).await.unwrap();
    let app = app_with(&f, |c| c.reachability = demo_like(&["eve"]));
    let page = Browser::logged_in(app, MANAGER_A).await.get("/people").await;
    assert!(!page.contains(&format!("id=\"unreachable-{}\"", f.other_a.0)), "{page}");
}

#[tokio::test]
async fn without_a_paging_side_nothing_is_flagged() {
    let f = fixture().await;
    let mut manager = Browser::logged_in(app(&f), MANAGER_A).await;
    assert!(!manager.get("/").await.contains("class=\"health\""));
    assert!(!manager.get("/people").await.contains("cannot be reached"));
}

//! The browser phone's WebSocket (issue 19): `GET /phone/ws`. A logged-in person's tab keeps it open while it
//! takes pages; the server rings the tab, relays its WebRTC offer and keys to the call controller and tells it
//! when a call ends (the messages are `oncall_core::browser_desk`'s). Who the tab is comes from the session
//! cookie, never from the tab, and only a page of this site's own origin may open it (a WebSocket is not bound
//! by the same-origin rule, so another site could otherwise open one with the person's cookie).
//!
//! Refusals are a close frame with a code and a reason the page shows: 4401 not logged in, 4403 another
//! origin or a login without a person, 4400 a malformed message, 4503 browser phones off on this server.

use crate::auth::{cookie, SESSION_COOKIE};
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use oncall_core::browser_desk::{BrowserDesk, FromTab, ToTab};
use oncall_core::{OrgId, PersonId, Timestamp};

/// An offer is a few kilobytes; nothing a tab sends is larger.
const MAX_MESSAGE: usize = 64 * 1024;
const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(25);

pub fn routes(state: AppState) -> Router {
    Router::new().route("/phone/ws", get(connect)).with_state(state)
}

/// Who a tab is for: proven by the session.
struct Owner {
    org: OrgId,
    person: PersonId,
    name: String,
}

/// Why a tab is refused: the close code and the reason it shows.
type Refusal = (u16, String);

async fn connect(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let verdict = admit(&state, &headers).await;
    let desk = state.browsers.clone();
    ws.max_message_size(MAX_MESSAGE).on_upgrade(move |socket| async move {
        match (verdict, desk) {
            (Err((code, reason)), _) => refuse(socket, code, reason).await,
            (Ok(_), None) => refuse(socket, 4503, "Browser phones are off on this server: the calls side is not running.".into()).await,
            (Ok(owner), Some(desk)) => serve(socket, desk, owner).await,
        }
    })
}

/// The origin check, then the session's person.
async fn admit(state: &AppState, headers: &HeaderMap) -> Result<Owner, Refusal> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (origin, host) = (text(header::ORIGIN), text(header::HOST));
    if !same_origin(origin, host) {
        tracing::warn!(origin, host, "browser phone: WebSocket from another origin refused");
        return Err((4403, format!("This page's origin ({origin}) is not this server's: open OnCall at its own address.")));
    }
    let not_logged_in = || (4401, "Not logged in: sign in again, then reload this page.".to_string());
    let token = cookie(headers, SESSION_COOKIE).ok_or_else(not_logged_in)?;
    let session = match state.store.session(&token, Timestamp::now()).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(not_logged_in()),
        Err(e) => return Err((1011, format!("The server could not check your session ({e}); it will try again."))),
    };
    let user = session.user;
    let Some(person) = user.person else {
        return Err((4403, "Your login is not linked to a person who can be paged: a manager links it on the People page.".into()));
    };
    let name = match state.store.person(user.org, person).await {
        Ok(p) => p.name,
        Err(e) => return Err((1011, format!("The server could not load your person ({e}); it will try again."))),
    };
    Ok(Owner { org: user.org, person, name })
}

/// Whether `origin` (`scheme://host[:port]`) names the `host` the request was sent to.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) else { return false };
    !host.is_empty() && rest.eq_ignore_ascii_case(host)
}

async fn refuse(mut socket: WebSocket, code: u16, mut reason: String) {
    // A close frame's reason is at most 123 bytes (RFC 6455 §5.5).
    if reason.len() > 123 {
        let mut end = 120;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

async fn serve(mut socket: WebSocket, desk: BrowserDesk, owner: Owner) {
    let (tab, mut to_tab) = desk.open(owner.org, owner.person);
    tracing::info!(tab = tab.0, org = %owner.org, person = %owner.person, "browser phone ready");
    let mut refusal = None;
    // Keeps proxies and NATs from dropping a quiet socket, and finds a vanished tab.
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if send(&mut socket, &ToTab::Ready { name: owner.name }).await {
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
                msg = to_tab.recv() => {
                    let Some(msg) = msg else { break };
                    if !send(&mut socket, &msg).await {
                        break;
                    }
                }
                msg = socket.recv() => match msg {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<FromTab>(text.as_str()) {
                        Ok(msg) => desk.from_tab(tab, msg),
                        Err(e) => {
                            refusal = Some((4400, format!("A message from this page was not understood ({e}): reload the page.")));
                            break;
                        }
                    },
                    // Pings are answered by the socket itself; binary frames mean nothing here.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Binary(_))) => {
                        refusal = Some((4400, "Binary messages are not understood: reload the page.".to_string()));
                        break;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                },
            }
        }
    }
    desk.close(tab);
    tracing::info!(tab = tab.0, person = %owner.person, reason = refusal.as_ref().map(|r| r.1.as_str()).unwrap_or("closed"), "browser phone gone");
    if let Some((code, reason)) = refusal {
        refuse(socket, code, reason).await;
    }
}

async fn send(socket: &mut WebSocket, msg: &ToTab) -> bool {
    let Ok(text) = serde_json::to_string(msg) else { return false };
    socket.send(Message::Text(text.into())).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn only_this_servers_own_origin_may_open_the_phone() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("https://oncall.example", "oncall.example"));
        assert!(!same_origin("https://evil.example", "oncall.example"));
        assert!(!same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same_origin("", "127.0.0.1:8080"), "no Origin: not a browser page");
        assert!(!same_origin("null", "127.0.0.1:8080"));
        assert!(!same_origin("http://oncall.example", ""));
    }
}

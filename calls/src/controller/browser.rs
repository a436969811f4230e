//! Page legs to a browser tab (issue 19): rung over the tab's WebSocket instead of an INVITE, answered with the
//! tab's WebRTC offer, their keys carried as messages. The book sees them as any other leg: they ring with the
//! person's phones, the first to answer wins and the others are cancelled; the page session and the bridge run
//! on the media engine as for a SIP leg, with the WebRTC leg in place of RTP.

use super::*;
use oncall_core::browser_desk::{FromTab, TabId, ToTab};
use oncall_sip::media::webrtc::BrowserLeg;
use oncall_sip::sdp::{Codec, Direction};

/// Browser legs' handles, numbered far above the user agent's own, so the two never meet. A tab knows its leg by
/// the small number above this (JavaScript's numbers are exact only to 2^53).
const FIRST_BROWSER_CALL: u64 = 1 << 62;

/// The handle of the leg a tab calls `n`; `None` for a number no leg can have.
fn browser_call(n: u64) -> Option<CallRef> {
    (n < FIRST_BROWSER_CALL).then(|| CallRef(FIRST_BROWSER_CALL + n))
}

/// What the tab calls the leg `call`.
fn tab_leg(call: CallRef) -> u64 {
    call.0 - FIRST_BROWSER_CALL
}

/// A leg's browser side.
pub(super) struct BrowserSide {
    pub tab: TabId,
    /// The WebRTC leg, from the tab's accept until the page session takes it.
    pub webrtc: Option<Box<BrowserLeg>>,
}

impl Controller {
    /// Rings the tab `tab` for the page `order`.
    pub(super) fn place_browser_leg(&mut self, held: &mut Held, leg: LegId, tab: TabId, order: PageOrder, now: Instant) {
        let PageOrder { key, route, caller, caller_call, message, speak_first } = order;
        let Some(desk) = &self.browsers else {
            return self.book.handle(Input::LegNotPlaced { leg, reason: "browser phones are off".into() }, now);
        };
        let Some(sockets) = self.ports.allocate() else {
            tracing::warn!(request = %key.request, person = %key.person, "no free RTP port for a browser page");
            return self.book.handle(Input::LegNotPlaced { leg, reason: "no free RTP port".into() }, now);
        };
        let port = sockets.0.local_addr().map(|a| a.port()).unwrap_or(0);
        held.next_browser_call += 1;
        let Some(call) = browser_call(held.next_browser_call) else { return };
        let organization = self.tenants.get(self.page_org(&held.calls, caller_call)).map(|t| t.slug.clone()).unwrap_or_default();
        let ring = ToTab::Ring { leg: tab_leg(call), caller: caller.clone(), organization, message_secs: (message.len() / 8000) as u32 };
        if !desk.send(tab, ring) {
            self.ports.release(port);
            return self.book.handle(Input::LegNotPlaced { leg, reason: "the browser tab closed".into() }, now);
        }
        tracing::info!(call = call.0, request = %key.request, person = %key.person, tab = tab.0, rtp_port = port, "page ringing in a browser");
        held.leg_of.insert(call, leg);
        let browser = Some(BrowserSide { tab, webrtc: None });
        held.legs.insert(leg, LegState { call, key, port, sockets: Some(sockets), media: None, caller, caller_call, message, speak_first, target: route.target, browser });
        // The tab rings as soon as it hears: its 180.
        self.book.handle(Input::LegProgress { leg }, now);
    }

    /// What a tab said.
    pub(super) fn on_tab(&mut self, held: &mut Held, tab: TabId, msg: FromTab, now: Instant) {
        // A tab speaks only for the legs that rang it.
        let leg_of_tab = |held: &Held, n: u64| browser_call(n).and_then(|c| held.leg_of.get(&c).copied()).filter(|leg| held.legs.get(leg).is_some_and(|l| l.browser.as_ref().is_some_and(|b| b.tab == tab)));
        match msg {
            FromTab::Closed => {
                let legs: Vec<(LegId, bool)> = held.legs.iter().filter(|(_, l)| l.browser.as_ref().is_some_and(|b| b.tab == tab)).map(|(id, l)| (*id, l.media.is_some())).collect();
                for (leg, answered) in legs {
                    self.end_browser_leg(held, leg, if answered { LegEnd::RemoteHangup } else { LegEnd::Unreachable }, now);
                }
            }
            FromTab::Accept { leg: n, offer } => {
                let Some(leg) = leg_of_tab(held, n) else { return };
                let Some(l) = held.legs.get_mut(&leg) else { return };
                if l.media.is_some() {
                    return;
                }
                match BrowserLeg::answer(&offer, SocketAddr::new(self.media_ip, l.port), now) {
                    Ok((webrtc, sdp)) => {
                        self.tell(tab, ToTab::Answer { leg: n, sdp });
                        // The codec is the one the browser's media turns out to use; the engine follows it.
                        l.media = Some(Negotiated { codec: Codec::Pcmu, telephone_event: None, remote: None, direction: Direction::SendRecv, srtp: None });
                        if let Some(b) = l.browser.as_mut() {
                            b.webrtc = Some(Box::new(webrtc));
                        }
                        let (call, usable_media) = (l.call, l.sockets.is_some());
                        self.feed(held, Input::LegAnswered { leg, usable_media }, Cause::Answer { call }, now);
                    }
                    Err(e) => {
                        tracing::warn!(call = n, tab = tab.0, error = %e, "a browser's offer was refused");
                        self.tell(tab, ToTab::Ended { leg: n, reason: format!("Your browser's call could not be set up ({e}). Reload the page and try again.") });
                        self.end_browser_leg(held, leg, LegEnd::Failed(488), now);
                    }
                }
            }
            FromTab::Key { leg: n, key } => {
                let Some(leg) = leg_of_tab(held, n) else { return };
                if !(key.is_ascii_digit() || key == '*' || key == '#') {
                    return;
                }
                let Some(call) = held.legs.get(&leg).filter(|l| l.media.is_some()).map(|l| l.call) else { return };
                // Keys arrive as SIP INFO's would: the page session reads them the same way.
                let body = format!("Signal={key}\r\nDuration=160\r\n").into_bytes();
                self.engine.send(call, MediaCommand::Signal { call, signal: Signal::Info { content_type: "application/dtmf-relay".into(), body } });
            }
            FromTab::HangUp { leg: n } => {
                let Some(leg) = leg_of_tab(held, n) else { return };
                let answered = held.legs.get(&leg).is_some_and(|l| l.media.is_some());
                self.end_browser_leg(held, leg, if answered { LegEnd::RemoteHangup } else { LegEnd::Rejected }, now);
            }
        }
    }

    fn tell(&self, tab: TabId, msg: ToTab) {
        if let Some(desk) = &self.browsers {
            desk.send(tab, msg);
        }
    }

    /// The book's CANCEL or BYE of a browser leg: the tab stops ringing or ends the call, and the leg ends once the
    /// book's outputs of this turn are carried out (as a SIP leg's `Ended` comes after its CANCEL).
    pub(super) fn stop_browser_leg(&mut self, held: &mut Held, leg: LegId, reason: &str, end: LegEnd) {
        let Some((call, tab)) = held.legs.get(&leg).and_then(|l| Some((l.call, l.browser.as_ref()?.tab))) else { return };
        self.tell(tab, ToTab::Ended { leg: tab_leg(call), reason: reason.into() });
        held.browser_ended.push((leg, end));
    }

    /// Ends a browser leg as the user agent's `Ended` ends a SIP one.
    pub(super) fn end_browser_leg(&mut self, held: &mut Held, leg: LegId, reason: LegEnd, now: Instant) {
        let Some(l) = held.legs.get(&leg) else { return };
        tracing::info!(call = l.call.0, request = %l.key.request, person = %l.key.person, ?reason, "browser page call ended");
        self.feed(held, Input::LegEnded { leg, reason }, Cause::Other, now);
        if let Some(l) = held.legs.remove(&leg) {
            held.leg_of.remove(&l.call);
            self.ports.release(l.port);
        }
    }
}

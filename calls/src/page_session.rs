//! The employee's side of a page as a media app: once their phone answers, it runs the sans-IO
//! [`PageFlow`] ("new request from …, press 1 to take it, 2 to hear the message, 3 to decline"),
//! plays the prompts and the caller's recorded message it asks for, and reports the employee's
//! decision to the call controller, which hands it to the paging task.
//!
//! When the caller still holds ([`PageSession::with_caller`]) and the employee presses 1, the session
//! connects to them through the [`HoldRoom`] and relays audio both ways, recording the conversation
//! as a stereo WAV (caller left, employee right). If the caller left meanwhile, the employee hears the
//! recorded message instead. Keys pressed during the bridge (RFC 4733 telephone-events) are relayed to
//! the caller (see `oncall_sip::media::bridge`) and still count for the employee (9 = done).

use crate::hold_room::HoldRoom;
use crate::ivr_session::CloseJob;
use crate::playback::{KeyInput, Playback};
use oncall_recordings::WavRecorder;
use oncall_sip::media::bridge::{interleave, BridgeLink, TelephoneEvent};
use oncall_sip::rtp::SAMPLES_PER_FRAME;
use std::path::PathBuf;
use oncall_core::escalation::NotificationKey;
use oncall_ivr::page_flow::{PageFlow, PageInput, PageOutput};
use oncall_recordings::PromptLibrary;
use oncall_sip::media::{MediaApp, Signal};
use oncall_sip::ua::CallRef;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// What the employee decided, or what the session needs from the controller (the calls crate's type,
/// shared with its call book).
pub use crate::book::PageDecision;

#[derive(Debug, Clone, Copy)]
pub struct PageSessionEvent {
    pub call: CallRef,
    /// The notification this call carries out (request, stage, person, channel).
    pub key: NotificationKey,
    pub decision: PageDecision,
}

pub struct PageSession {
    call: CallRef,
    key: NotificationKey,
    flow: PageFlow,
    prompts: Arc<PromptLibrary>,
    /// The caller's message, decoded to 8 kHz mono before the call was placed.
    message: Arc<[i16]>,
    playback: Playback,
    keys: KeyInput,
    tx: UnboundedSender<PageSessionEvent>,
    started: bool,
    caller: Option<CallerLink>,
    /// The RTP timestamp of the last telephone-event heard: the key that bridges is not relayed.
    last_event: Option<u32>,
}

/// The caller who holds for this page, and what bridging to them needs.
struct CallerLink {
    room: HoldRoom,
    call: CallRef,
    recording_path: PathBuf,
    closer: std::sync::mpsc::Sender<CloseJob>,
    bridge: Option<Bridge>,
}

struct Bridge {
    link: BridgeLink,
    recorder: Option<WavRecorder>,
    /// The employee's latest frame, paired with the caller's in the stereo recording.
    heard: [i16; SAMPLES_PER_FRAME],
    stereo: [i16; 2 * SAMPLES_PER_FRAME],
}

impl PageSession {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        call: CallRef,
        key: NotificationKey,
        caller: &str,
        message: Arc<[i16]>,
        prompts: Arc<PromptLibrary>,
        in_band_dtmf: bool,
        key_timeout: Duration,
        max_retries: u32,
        tx: UnboundedSender<PageSessionEvent>,
    ) -> PageSession {
        PageSession {
            call,
            key,
            flow: PageFlow::new(caller, false, key_timeout, max_retries),
            prompts,
            message,
            playback: Playback::default(),
            keys: KeyInput::new(in_band_dtmf),
            tx,
            started: false,
            caller: None,
            last_event: None,
        }
    }

    /// An alert's page: the message (its spoken summary) plays before the keys.
    pub fn with_message_first(mut self) -> PageSession {
        self.flow = self.flow.with_message_first();
        self
    }

    /// The caller holds as `caller_call` in `room`: pressing 1 bridges to them (the flow offers it),
    /// recording the conversation to `recording_path`, closed by the recording `closer`.
    pub fn with_caller(mut self, room: HoldRoom, caller_call: CallRef, recording_path: PathBuf, closer: std::sync::mpsc::Sender<CloseJob>) -> Self {
        self.flow = self.flow.with_caller_present();
        self.caller = Some(CallerLink { room, call: caller_call, recording_path, closer, bridge: None });
        self
    }

    /// Joins the caller; false when they are gone (or someone else has them).
    fn bridge(&mut self) -> bool {
        let Some(c) = &mut self.caller else { return false };
        let Some(mut link) = c.room.connect(c.call) else { return false };
        // The rest of the key press that got us here (its end packets) is not the caller's to hear.
        link.ignore_event(self.last_event);
        if let Some(dir) = c.recording_path.parent() {
            // Closed to other local users, like the file itself (issue #15).
            let _ = oncall_recordings::private_files::create_dir_all(dir);
        }
        let recorder = match WavRecorder::create(&c.recording_path, 2, 8000) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(request = %self.key.request, error = %e, "cannot create the conversation recording; talking without it");
                None
            }
        };
        tracing::info!(call = self.call.0, request = %self.key.request, person = %self.key.person, caller_call = c.call.0, "employee bridged to the caller");
        c.bridge = Some(Bridge { link, recorder, heard: [0; SAMPLES_PER_FRAME], stereo: [0; 2 * SAMPLES_PER_FRAME] });
        true
    }

    /// Ends the bridge (either side left, or the employee is done) and hands the recording to the closer.
    fn unbridge(&mut self) {
        let Some(c) = &mut self.caller else { return };
        let Some(b) = c.bridge.take() else { return };
        b.link.close();
        if let Some(rec) = b.recorder {
            let _ = c.closer.send(CloseJob::Conversation { request: self.key.request, rec });
        }
    }

    fn bridged(&mut self) -> Option<&mut Bridge> {
        self.caller.as_mut().and_then(|c| c.bridge.as_mut())
    }

    fn input(&mut self, input: PageInput, now: Instant) {
        if let PageInput::Digit(d) = &input {
            tracing::info!(call = self.call.0, request = %self.key.request, person = %self.key.person, digit = %d, "employee pressed a key");
        }
        self.flow.handle(input, now);
        self.pump(now);
    }

    fn pump(&mut self, now: Instant) {
        while let Some(out) = self.flow.poll_output() {
            let decision = match out {
                // Appended, not replacing: accepting queues "accepted", the message and "press 9" in a row.
                PageOutput::Play(names) => {
                    let prompts = &self.prompts;
                    self.playback.enqueue(names.iter().filter_map(|n| {
                        let p = prompts.get(n);
                        if p.is_none() {
                            tracing::warn!(prompt = %n, "prompt missing from sounds; skipped");
                        }
                        p
                    }));
                    None
                }
                PageOutput::StopPlayback => {
                    self.playback.stop();
                    None
                }
                PageOutput::PlayMessage => {
                    self.playback.enqueue([self.message.clone()]);
                    None
                }
                PageOutput::Accepted => Some(PageDecision::Accepted),
                PageOutput::Declined => Some(PageDecision::Declined),
                PageOutput::EscalateNow => Some(PageDecision::EscalateNow),
                PageOutput::Snooze => Some(PageDecision::Snooze),
                PageOutput::Completed => {
                    self.unbridge();
                    Some(PageDecision::Completed)
                }
                PageOutput::Hangup => {
                    self.unbridge();
                    Some(PageDecision::Hangup)
                }
                PageOutput::Bridge => {
                    if !self.bridge() {
                        tracing::info!(call = self.call.0, request = %self.key.request, "the caller is no longer holding; playing the message");
                        self.flow.handle(PageInput::CallerGone, now);
                    }
                    None
                }
            };
            if let Some(decision) = decision {
                let _ = self.tx.send(PageSessionEvent { call: self.call, key: self.key, decision });
            }
        }
    }
}

impl MediaApp for PageSession {
    fn on_audio(&mut self, pcm: &[i16], now: Instant) {
        if let Some(b) = self.bridged() {
            b.link.send(pcm);
            let n = pcm.len().min(SAMPLES_PER_FRAME);
            b.heard[..n].copy_from_slice(&pcm[..n]);
        }
        if let Some(d) = self.keys.on_audio(pcm) {
            self.input(PageInput::Digit(d), now);
        }
    }

    fn on_telephone_event(&mut self, payload: &[u8], timestamp: u32, marker: bool, now: Instant) {
        if let Some(b) = self.bridged() {
            b.link.send_event(payload, timestamp, marker);
        }
        self.last_event = Some(timestamp);
        if let Some(d) = self.keys.on_telephone_event(payload, timestamp, marker) {
            self.input(PageInput::Digit(d), now);
        }
    }

    fn next_telephone_event(&mut self, rtp_timestamp: u32) -> Option<TelephoneEvent> {
        self.bridged()?.link.recv_event(rtp_timestamp)
    }

    fn next_frame(&mut self, out: &mut [i16], now: Instant) -> bool {
        if !self.started {
            self.started = true;
            self.input(PageInput::Answered, now);
        }
        if self.flow.poll_timeout().is_some_and(|t| now >= t) {
            self.flow.handle_timeout(now);
            self.pump(now);
        }
        if let Some(b) = self.bridged() {
            if b.link.is_closed() {
                tracing::info!(call = self.call.0, request = %self.key.request, "the caller left the call");
                self.unbridge();
                self.input(PageInput::BridgeEnded, now);
            } else {
                // The caller's voice to the employee, and both sides to the recording.
                b.link.recv(out);
                if let Some(rec) = &mut b.recorder {
                    interleave(out, &b.heard, &mut b.stereo);
                    if let Err(e) = rec.write(&b.stereo) {
                        tracing::error!(error = %e, "conversation recording write failed");
                        b.recorder = None;
                    } else {
                        let _ = rec.checkpoint_if_due();
                    }
                }
                // A lost packet leaves silence, not a repeat of the last frame.
                b.heard = [0; SAMPLES_PER_FRAME];
                return true;
            }
        }
        if self.playback.fill(out) {
            self.input(PageInput::PlaybackFinished, now);
        }
        true
    }

    fn on_signal(&mut self, signal: Signal, now: Instant) {
        match signal {
            Signal::Info { content_type, body } => {
                if let Some(d) = self.keys.on_info(&content_type, &body) {
                    self.input(PageInput::Digit(d), now);
                }
            }
            // The employee's browser lost its network mid-call: end the leg as a hang-up would (the caller hears
            // that they left; not yet accepted counts as a decline).
            Signal::PeerGone => {
                tracing::info!(call = self.call.0, request = %self.key.request, person = %self.key.person, "the employee's browser is gone; ending the page call");
                self.unbridge();
                self.input(PageInput::Hangup, now);
                let _ = self.tx.send(PageSessionEvent { call: self.call, key: self.key, decision: PageDecision::Hangup });
            }
            Signal::Confirmed => {}
        }
    }

    fn finish(&mut self, now: Instant) {
        // The caller hears that the employee left.
        self.unbridge();
        // Hanging up before accepting counts as a decline (the flow says so).
        self.flow.handle(PageInput::Hangup, now);
        self.pump(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_core::{Channel, PersonId, RequestId};

    /// Prompts of 0.1 s, each a distinct constant so the frames say what plays; the message is 0.3 s of 7.
    fn session() -> (PageSession, tokio::sync::mpsc::UnboundedReceiver<PageSessionEvent>) {
        let mut prompts = PromptLibrary::new();
        for (i, name) in ["new_request", "from", "press_1_talk", "accepted", "press_9_done", "declined", "goodbye", "completed"].iter().enumerate() {
            prompts.insert(*name, vec![100 + i as i16; 800]);
        }
        let key = NotificationKey { request: RequestId(1), stage: 0, person: PersonId(2), channel: Channel::Call };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let s = PageSession::new(CallRef(9), key, "tester", Arc::from(vec![7i16; 2400]), Arc::new(prompts), false, Duration::from_secs(5), 1, tx);
        (s, rx)
    }

    fn press(s: &mut PageSession, key: char, now: Instant) {
        s.on_signal(Signal::Info { content_type: "application/dtmf-relay".into(), body: format!("Signal={key}\r\nDuration=160\r\n").into_bytes() }, now);
    }

    /// Runs `secs` of 20 ms frames from `t`; returns the first sample of each frame and the time after.
    fn run(s: &mut PageSession, t: Instant, secs: f64) -> (Vec<i16>, Instant) {
        let mut out = [0i16; 160];
        let mut firsts = Vec::new();
        let mut now = t;
        for _ in 0..(secs / 0.02).round() as usize {
            s.next_frame(&mut out, now);
            firsts.push(out[0]);
            now += Duration::from_millis(20);
        }
        (firsts, now)
    }

    fn decisions(rx: &mut tokio::sync::mpsc::UnboundedReceiver<PageSessionEvent>) -> Vec<PageDecision> {
        std::iter::from_fn(|| rx.try_recv().ok()).map(|e| e.decision).collect()
    }

    #[test]
    fn accepting_plays_accepted_then_the_message_and_9_says_goodbye_at_once() {
        let (mut s, mut rx) = session();
        let (heard, t) = run(&mut s, Instant::now(), 0.4);
        assert_eq!(heard[0], 100, "the announcement starts with new_request");
        press(&mut s, '1', t);
        assert_eq!(decisions(&mut rx), vec![PageDecision::Accepted]);
        let (heard, t) = run(&mut s, t, 0.5);
        assert_eq!(&heard[..5], &[103; 5], "\"accepted\" first");
        assert_eq!(&heard[5..20], &[7; 15], "then the caller's message");
        // 9 in the middle of "press 9 when done": "marked as done" right away, then BYE.
        press(&mut s, '9', t);
        assert_eq!(decisions(&mut rx), vec![PageDecision::Completed]);
        let (heard, _) = run(&mut s, t, 0.2);
        assert_eq!(heard[0], 107, "\"completed\" barges in");
        assert_eq!(decisions(&mut rx), vec![PageDecision::Hangup]);
    }

    /// Issue 19: a browser whose network vanished ends its page call: a decline when not yet accepted, then the
    /// hang-up that ends the leg; an accepted one only hangs up.
    #[test]
    fn a_vanished_browser_ends_the_page_call() {
        let (mut s, mut rx) = session();
        let (_, t) = run(&mut s, Instant::now(), 0.1);
        s.on_signal(Signal::PeerGone, t);
        assert_eq!(decisions(&mut rx), vec![PageDecision::Declined, PageDecision::Hangup]);
        let (mut s, mut rx) = session();
        let (_, t) = run(&mut s, Instant::now(), 0.1);
        press(&mut s, '1', t);
        s.on_signal(Signal::PeerGone, t);
        assert_eq!(decisions(&mut rx), vec![PageDecision::Accepted, PageDecision::Hangup]);
    }

    #[test]
    fn declining_or_hanging_up_before_accepting_is_a_decline() {
        let (mut s, mut rx) = session();
        let (_, t) = run(&mut s, Instant::now(), 0.1);
        press(&mut s, '3', t);
        assert_eq!(decisions(&mut rx), vec![PageDecision::Declined]);
        let (heard, _) = run(&mut s, t, 0.2);
        assert_eq!(heard[0], 105, "\"declined\"");
        assert_eq!(decisions(&mut rx), vec![PageDecision::Hangup]);

        let (mut s, mut rx) = session();
        let (_, t) = run(&mut s, Instant::now(), 0.1);
        s.finish(t);
        assert_eq!(decisions(&mut rx), vec![PageDecision::Declined]);
    }

    /// Bridged to a holding caller: the employee's telephone-events reach the caller's end re-stamped for
    /// the caller's leg, and the caller's reach the employee's leg (the engine then sends them).
    #[test]
    fn keys_cross_the_bridge_both_ways() {
        let (s, _rx) = session();
        let room = HoldRoom::default();
        let caller = CallRef(3);
        room.enter(caller);
        let dir = std::env::temp_dir().join(format!("oncall-page-session-dtmf-{}", std::process::id()));
        let (closer, _jobs) = std::sync::mpsc::channel();
        let mut s = s.with_caller(room.clone(), caller, dir.join("conversation.wav"), closer);
        let (_, t) = run(&mut s, Instant::now(), 0.1);
        // 1 by telephone-event (event 1 at timestamp 3000): it bridges; its end packets stay here.
        s.on_telephone_event(&[1, 10, 0, 160], 3000, true, t);
        s.on_telephone_event(&[1, 0x80 | 10, 1, 64], 3000, false, t);
        s.on_telephone_event(&[1, 0x80 | 10, 1, 64], 3000, false, t);
        let crate::hold_room::HoldNews::Bridged(mut caller_end) = room.poll(caller) else { panic!("not bridged") };
        assert_eq!(caller_end.recv_event(0), None, "the 1 that bridged is not relayed");
        // The employee presses 4 (event 4, two packets of one event at their timestamp 7000).
        s.on_telephone_event(&[4, 10, 0, 160], 7000, true, t);
        s.on_telephone_event(&[4, 0x80 | 10, 1, 64], 7000, false, t);
        let first = caller_end.recv_event(123_456).expect("relayed to the caller");
        assert_eq!((first.payload, first.timestamp, first.marker), ([4, 10, 0, 160], 123_456, true));
        let end = caller_end.recv_event(123_616).unwrap();
        assert_eq!((end.payload, end.timestamp, end.marker), ([4, 0x80 | 10, 1, 64], 123_456, false));
        // The caller presses 2: the employee's leg gets it on its own clock.
        caller_end.send_event(&[2, 10, 0, 160], 555, true);
        let got = s.next_telephone_event(9_000).expect("relayed to the employee");
        assert_eq!((got.payload[0], got.timestamp, got.marker), (2, 9_000, true));
        assert!(s.next_telephone_event(9_160).is_none());
        s.finish(t);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_key_after_the_retries_is_a_decline() {
        let (mut s, mut rx) = session();
        // Announcement 0.3 s + 5 s wait, one reprompt (0.1 s) + 5 s wait, then "goodbye".
        run(&mut s, Instant::now(), 11.0);
        assert_eq!(decisions(&mut rx), vec![PageDecision::Declined, PageDecision::Hangup]);
    }
}

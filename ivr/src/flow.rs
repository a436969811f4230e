//! The IVR call flow as a sans-IO state machine.
//!
//! Inputs: the call started, a key (from any DTMF source), the current prompt finished, the
//! recording heard enough silence, the caller hung up, and time (`handle_timeout(now)`).
//! Outputs: play these prompts (replacing what plays), stop playing, start/stop recording, a
//! message was recorded (open a request), hang up. A key press during a prompt stops it (barge-in).
//! The flow never touches audio or sockets; the media engine does what the outputs say.
//!
//! With a hold configured ([`IvrFlow::with_hold`], when paging is on), a "page on-call" caller is not
//! released after the message: they hear "please hold" and hold music while the on-call staff is
//! phoned, until an employee takes the call ([`Input::Bridged`]), nobody could be reached
//! ([`Input::NobodyAvailable`]), the hold limit passes, or they press # to hang up (the request stays
//! open either way).
//!
//! After hours ([`IvrFlow::after_hours`], set by the binary from the organization's business hours when
//! the call starts), a caller choosing a `normal` "page on-call" option hears "our office is closed, we will
//! call you back after eight A M", leaves a message, and is released: the request is
//! [`RequestKind::PageWhenOpen`] and pages when business hours start. With `after_hours_emergency` on, they
//! are first offered "if this is an emergency, press 1": pressing 1 makes it an urgent page (held as usual);
//! any other key or no key within the menu timeout leaves the message for the morning. Urgent options ignore
//! business hours.

use crate::digit::Digit;
use crate::menu::{Action, IvrConfig, Menu, Urgency};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kept at its old path; the list lives in `fixed_prompts` so the menu can use it without the flow.
pub use crate::fixed_prompts::FIXED_PROMPTS;

/// How long after a key ended a step the same key is taken as the tail of that press (see the module docs).
/// Longer than a duplicate's delay (INFO beside RFC 4733, a tone's dropout: well under a second), shorter
/// than hearing the next prompt and deciding to press the key again.
pub const KEY_TAIL: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Digit(Digit),
    PlaybackFinished,
    /// The recording heard the configured length of continuous silence.
    Silence,
    /// On hold: an employee took the call and the audio now goes between them.
    Bridged,
    /// The employee left the bridge.
    BridgeEnded,
    /// On hold: the escalation ran out of people.
    NobodyAvailable,
    Hangup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// "page on-call": the paging flow will notify whoever is on call.
    Page,
    /// "page on-call" with `normal` urgency after hours: the request opens now and pages when business hours
    /// start (the caller was told when).
    PageWhenOpen,
    /// A message only.
    Message,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Play these prompts in order, replacing anything playing.
    Play(Vec<String>),
    StopPlayback,
    StartRecording,
    StopRecording,
    /// The caller's message is complete (recording stopped): open a request of this kind.
    MessageRecorded(RequestKind),
    /// The caller waits for an employee: offer them to the bridge.
    EnterHold,
    /// The caller no longer waits (gave up, timed out, nobody available): withdraw the offer.
    LeaveHold,
    Hangup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    NotStarted,
    /// Playing the menu prompt (or greeting + prompt); keys barge in.
    MenuPrompt,
    /// Prompt done, waiting for a key until the deadline.
    MenuWait { deadline: Instant },
    /// After hours, "closed … call you back after … if this is an emergency, press 1"; keys barge in.
    AfterHoursPrompt,
    /// Waiting for 1 (emergency) until the deadline, then the message is left for the morning.
    AfterHoursWait { deadline: Instant },
    /// "Leave your message after the tone" + beep.
    RecordPrompt(RequestKind),
    Recording { kind: RequestKind, deadline: Instant },
    /// Waiting for an employee, hearing "please hold" then hold music.
    Holding { deadline: Instant },
    /// Talking with an employee.
    Bridged,
    /// Saying thank you / goodbye; hang up when it ends.
    Closing,
    Done,
}

pub struct IvrFlow {
    cfg: Arc<IvrConfig>,
    /// The menu path: the root then sub-menus entered.
    stack: Vec<Menu>,
    state: State,
    retries: u32,
    /// Every key pressed, in order, for the call record.
    pub digits: String,
    outputs: VecDeque<Output>,
    /// How long a paging caller may hold; None: no hold (paging off), goodbye after the message.
    hold: Option<Duration>,
    /// Closed now: the local hour and minute business hours start again. None: open (or no business hours).
    reopens: Option<(u32, u32)>,
    /// The key that ended the previous step and when: its repeats within [`KEY_TAIL`] are not new presses.
    ended_by: Option<(Digit, Instant)>,
}

impl IvrFlow {
    pub fn new(cfg: Arc<IvrConfig>) -> Self {
        let root = cfg.menu.clone();
        IvrFlow { cfg, stack: vec![root], state: State::NotStarted, retries: 0, digits: String::new(), outputs: VecDeque::new(), hold: None, reopens: None, ended_by: None }
    }

    /// "Page on-call" callers hold for an employee for at most `max_hold` after their message.
    pub fn with_hold(mut self, max_hold: Duration) -> Self {
        self.hold = Some(max_hold);
        self
    }

    /// The organization is closed now and opens again at `hour:minute` local time (24-hour clock): `normal`
    /// options defer their page to then.
    pub fn after_hours(mut self, hour: u32, minute: u32) -> Self {
        self.reopens = Some((hour, minute));
        self
    }

    /// Whether the caller is waiting for an employee (the session looks for one to bridge to).
    pub fn is_holding(&self) -> bool {
        matches!(self.state, State::Holding { .. })
    }

    /// What the message being recorded is for, while one is (saved with the call, for crash recovery).
    pub fn recording_kind(&self) -> Option<RequestKind> {
        match self.state {
            State::Recording { kind, .. } => Some(kind),
            _ => None,
        }
    }

    fn menu(&self) -> &Menu {
        // the stack always holds at least the root menu
        self.stack.last().unwrap_or(&self.cfg.menu)
    }

    pub fn start(&mut self, _now: Instant) {
        if self.state == State::NotStarted {
            let prompts = vec![self.cfg.greeting.clone(), self.menu().prompt.clone()];
            self.outputs.push_back(Output::Play(prompts));
            self.state = State::MenuPrompt;
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn handle(&mut self, input: Input, now: Instant) {
        if let Input::Digit(d) = input {
            if self.is_tail_of_previous_key(d, now) {
                return;
            }
        }
        let before = std::mem::discriminant(&self.state);
        let key = match input {
            Input::Digit(d) => Some(d),
            _ => None,
        };
        self.step(input, now);
        // A key that moved the flow to another step: remember it, so its tail does not act in the new step.
        if let Some(d) = key {
            if std::mem::discriminant(&self.state) != before {
                self.ended_by = Some((d, now));
            }
        }
    }

    /// Whether `d` at `now` is the same press as the key that just ended a step (see [`KEY_TAIL`]).
    fn is_tail_of_previous_key(&self, d: Digit, now: Instant) -> bool {
        let in_menu = matches!(self.state, State::MenuPrompt | State::MenuWait { .. });
        match self.ended_by {
            Some((key, at)) => key == d && !in_menu && now.saturating_duration_since(at) < KEY_TAIL,
            None => false,
        }
    }

    fn step(&mut self, input: Input, now: Instant) {
        match (&self.state, input) {
            (State::Done, _) => {}
            (State::Recording { kind, .. }, Input::Hangup) => {
                // The caller hung up mid-message: keep what was said.
                let kind = *kind;
                self.outputs.push_back(Output::StopRecording);
                self.outputs.push_back(Output::MessageRecorded(kind));
                self.state = State::Done;
            }
            (_, Input::Hangup) => self.state = State::Done,
            (State::MenuPrompt, Input::Digit(d)) | (State::MenuWait { .. }, Input::Digit(d)) => {
                self.digits.push(d.to_char());
                if self.state == State::MenuPrompt {
                    self.outputs.push_back(Output::StopPlayback);
                }
                self.on_menu_key(d, now);
            }
            (State::MenuPrompt, Input::PlaybackFinished) => {
                self.state = State::MenuWait { deadline: now + self.cfg.timeout() };
            }
            (State::AfterHoursPrompt, Input::Digit(d)) => {
                self.digits.push(d.to_char());
                self.outputs.push_back(Output::StopPlayback);
                self.on_emergency_key(d);
            }
            (State::AfterHoursWait { .. }, Input::Digit(d)) => {
                self.digits.push(d.to_char());
                self.on_emergency_key(d);
            }
            (State::AfterHoursPrompt, Input::PlaybackFinished) => {
                self.state = State::AfterHoursWait { deadline: now + self.cfg.timeout() };
            }
            (State::RecordPrompt(kind), Input::Digit(d)) => {
                // A key during "leave your message" skips to the tone-less recording.
                self.digits.push(d.to_char());
                let kind = *kind;
                self.outputs.push_back(Output::StopPlayback);
                self.begin_recording(kind, now);
            }
            (State::RecordPrompt(kind), Input::PlaybackFinished) => {
                let kind = *kind;
                self.begin_recording(kind, now);
            }
            (State::Recording { kind, .. }, Input::Digit(d)) => {
                let kind = *kind;
                self.digits.push(d.to_char());
                if d == Digit::Pound {
                    self.finish_recording(kind, now);
                }
            }
            (State::Recording { kind, .. }, Input::Silence) => {
                let kind = *kind;
                self.finish_recording(kind, now);
            }
            (State::Holding { .. }, Input::PlaybackFinished) => self.outputs.push_back(Output::Play(vec!["hold_music".into()])),
            (State::Holding { .. }, Input::Digit(d)) => {
                self.digits.push(d.to_char());
                if d == Digit::Pound {
                    self.outputs.push_back(Output::LeaveHold);
                    self.close(vec!["request_created".into(), self.cfg.goodbye_prompt.clone()]);
                }
            }
            (State::Holding { .. }, Input::Bridged) => {
                self.outputs.push_back(Output::StopPlayback);
                self.state = State::Bridged;
            }
            (State::Holding { .. }, Input::NobodyAvailable) => {
                self.outputs.push_back(Output::LeaveHold);
                self.close(vec!["everyone_unavailable".into(), self.cfg.goodbye_prompt.clone()]);
            }
            (State::Bridged, Input::Digit(d)) => self.digits.push(d.to_char()),
            (State::Bridged, Input::BridgeEnded) => self.close(vec!["staff_left".into(), self.cfg.goodbye_prompt.clone()]),
            (State::Closing, Input::PlaybackFinished) => {
                self.outputs.push_back(Output::Hangup);
                self.state = State::Done;
            }
            (State::Closing, Input::Digit(d)) => self.digits.push(d.to_char()),
            _ => {}
        }
    }

    fn on_menu_key(&mut self, d: Digit, now: Instant) {
        let action = self.menu().options.iter().find(|o| o.digit == d).map(|o| o.action.clone());
        match action {
            None => self.retry(&self.cfg.invalid_prompt.clone(), now),
            Some(Action::PageOnCall { urgency: Urgency::Normal }) if self.reopens.is_some() => self.after_hours_notice(),
            Some(Action::PageOnCall { .. }) => self.ask_for_message(RequestKind::Page),
            Some(Action::RecordMessage) => self.ask_for_message(RequestKind::Message),
            Some(Action::Repeat) => self.play_menu(vec![]),
            Some(Action::Play { prompt }) => self.play_menu(vec![prompt]),
            Some(Action::SubMenu { menu }) => {
                self.stack.push(*menu);
                self.retries = 0;
                self.play_menu(vec![]);
            }
            Some(Action::Hangup) => self.close(vec![self.cfg.goodbye_prompt.clone()]),
        }
    }

    fn play_menu(&mut self, mut before: Vec<String>) {
        before.push(self.menu().prompt.clone());
        self.outputs.push_back(Output::Play(before));
        self.state = State::MenuPrompt;
    }

    /// An invalid key or a timeout: explain and repeat the menu, or give up after max_retries.
    fn retry(&mut self, explanation: &str, _now: Instant) {
        self.retries += 1;
        if self.retries > self.cfg.max_retries {
            self.close(vec![explanation.to_string(), self.cfg.goodbye_prompt.clone()]);
        } else {
            self.play_menu(vec![explanation.to_string()]);
        }
    }

    /// "We will call you back after <time>".
    fn call_back_prompts(&self) -> Vec<String> {
        let mut prompts = vec!["call_back_after".to_string()];
        if let Some((h, m)) = self.reopens {
            prompts.extend(crate::spoken_time::clock(h, m));
        }
        prompts
    }

    /// A normal page after hours: say when it will be handled, then offer the emergency key or go straight to
    /// the message.
    fn after_hours_notice(&mut self) {
        let mut prompts = vec!["closed_now".to_string()];
        prompts.extend(self.call_back_prompts());
        if self.cfg.after_hours_emergency {
            prompts.push("after_hours_emergency".into());
            self.outputs.push_back(Output::Play(prompts));
            self.state = State::AfterHoursPrompt;
        } else {
            prompts.extend(["record_after_tone".to_string(), "beep".to_string()]);
            self.outputs.push_back(Output::Play(prompts));
            self.state = State::RecordPrompt(RequestKind::PageWhenOpen);
        }
    }

    /// 1 after the emergency offer: an urgent page now; any other key: the message waits for the opening.
    fn on_emergency_key(&mut self, d: Digit) {
        let kind = if d == Digit::D1 { RequestKind::Page } else { RequestKind::PageWhenOpen };
        self.ask_for_message(kind);
    }

    fn ask_for_message(&mut self, kind: RequestKind) {
        self.outputs.push_back(Output::Play(vec!["record_after_tone".into(), "beep".into()]));
        self.state = State::RecordPrompt(kind);
    }

    fn begin_recording(&mut self, kind: RequestKind, now: Instant) {
        self.outputs.push_back(Output::StartRecording);
        self.state = State::Recording { kind, deadline: now + Duration::from_secs(self.cfg.max_message_secs) };
    }

    fn finish_recording(&mut self, kind: RequestKind, now: Instant) {
        self.outputs.push_back(Output::StopRecording);
        self.outputs.push_back(Output::MessageRecorded(kind));
        if let (RequestKind::Page, Some(max_hold)) = (kind, self.hold) {
            self.outputs.push_back(Output::Play(vec!["please_hold".into()]));
            self.outputs.push_back(Output::EnterHold);
            self.state = State::Holding { deadline: now + max_hold };
            return;
        }
        let closing = match kind {
            RequestKind::Page => vec!["request_created".into(), self.cfg.goodbye_prompt.clone()],
            RequestKind::Message => vec!["thank_you".into(), self.cfg.goodbye_prompt.clone()],
            RequestKind::PageWhenOpen => {
                let mut p = vec!["thank_you".to_string()];
                p.extend(self.call_back_prompts());
                p.push(self.cfg.goodbye_prompt.clone());
                p
            }
        };
        self.close(closing);
    }

    fn close(&mut self, prompts: Vec<String>) {
        self.outputs.push_back(Output::Play(prompts));
        self.state = State::Closing;
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::MenuWait { deadline }
            | State::AfterHoursWait { deadline }
            | State::Recording { deadline, .. }
            | State::Holding { deadline } => Some(deadline),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::MenuWait { deadline } if now >= deadline => {
                let p = self.cfg.no_input_prompt.clone();
                self.retry(&p, now);
            }
            State::AfterHoursWait { deadline } if now >= deadline => self.ask_for_message(RequestKind::PageWhenOpen),
            State::Recording { kind, deadline } if now >= deadline => self.finish_recording(kind, now),
            State::Holding { deadline } if now >= deadline => {
                self.outputs.push_back(Output::LeaveHold);
                self.close(vec!["request_created".into(), self.cfg.goodbye_prompt.clone()]);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::MenuOption;

    fn flow() -> (IvrFlow, Instant) {
        let mut f = IvrFlow::new(Arc::new(IvrConfig::default()));
        let t = Instant::now();
        f.start(t);
        (f, t)
    }

    fn drain(f: &mut IvrFlow) -> Vec<Output> {
        std::iter::from_fn(|| f.poll_output()).collect()
    }

    fn play(names: &[&str]) -> Output {
        Output::Play(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn page_on_call_records_until_pound() {
        let (mut f, t) = flow();
        assert_eq!(drain(&mut f), vec![play(&["greeting", "menu"])]);
        f.handle(Input::Digit(Digit::D1), t); // barge-in during the greeting
        assert_eq!(drain(&mut f), vec![Output::StopPlayback, play(&["record_after_tone", "beep"])]);
        f.handle(Input::PlaybackFinished, t);
        assert_eq!(drain(&mut f), vec![Output::StartRecording]);
        f.handle(Input::Digit(Digit::Pound), t + Duration::from_secs(4));
        assert_eq!(
            drain(&mut f),
            vec![Output::StopRecording, Output::MessageRecorded(RequestKind::Page), play(&["request_created", "goodbye"])]
        );
        f.handle(Input::PlaybackFinished, t + Duration::from_secs(8));
        assert_eq!(drain(&mut f), vec![Output::Hangup]);
        assert_eq!(f.digits, "1#");
        assert!(f.is_done());
    }

    /// A paging caller with a hold: message, then "please hold" and music until someone takes the call.
    fn holding(max_hold: Duration) -> (IvrFlow, Instant) {
        let mut f = IvrFlow::new(Arc::new(IvrConfig::default())).with_hold(max_hold);
        let t = Instant::now();
        f.start(t);
        f.handle(Input::Digit(Digit::D1), t);
        f.handle(Input::PlaybackFinished, t);
        drain(&mut f);
        f.handle(Input::Digit(Digit::Pound), t);
        assert_eq!(
            drain(&mut f),
            vec![
                Output::StopRecording,
                Output::MessageRecorded(RequestKind::Page),
                play(&["please_hold"]),
                Output::EnterHold
            ]
        );
        assert!(f.is_holding());
        (f, t)
    }

    #[test]
    fn a_held_caller_hears_music_until_bridged_and_is_told_when_the_employee_leaves() {
        let (mut f, t) = holding(Duration::from_secs(300));
        f.handle(Input::PlaybackFinished, t);
        f.handle(Input::PlaybackFinished, t);
        assert_eq!(drain(&mut f), vec![play(&["hold_music"]), play(&["hold_music"])], "the music loops");
        f.handle(Input::Bridged, t);
        assert_eq!(drain(&mut f), vec![Output::StopPlayback]);
        assert!(!f.is_holding() && f.poll_timeout().is_none(), "no hold limit once talking");
        f.handle(Input::Digit(Digit::D5), t);
        assert!(drain(&mut f).is_empty(), "keys while talking do nothing");
        f.handle(Input::BridgeEnded, t);
        assert_eq!(drain(&mut f), vec![play(&["staff_left", "goodbye"])]);
        f.handle(Input::PlaybackFinished, t);
        assert_eq!(drain(&mut f), vec![Output::Hangup]);
    }

    #[test]
    fn a_held_caller_leaves_on_pound_on_the_hold_limit_or_when_nobody_is_available() {
        let (mut f, t) = holding(Duration::from_secs(300));
        // A second press of # once "please hold" has been heard (not the tail of the one that ended the message).
        f.handle(Input::Digit(Digit::Pound), t + KEY_TAIL);
        assert_eq!(drain(&mut f), vec![Output::LeaveHold, play(&["request_created", "goodbye"])]);

        let (mut f, t) = holding(Duration::from_secs(300));
        assert_eq!(f.poll_timeout(), Some(t + Duration::from_secs(300)));
        f.handle_timeout(t + Duration::from_secs(300));
        assert_eq!(drain(&mut f), vec![Output::LeaveHold, play(&["request_created", "goodbye"])]);

        let (mut f, t) = holding(Duration::from_secs(300));
        f.handle(Input::NobodyAvailable, t);
        assert_eq!(drain(&mut f), vec![Output::LeaveHold, play(&["everyone_unavailable", "goodbye"])]);
        f.handle(Input::PlaybackFinished, t);
        assert_eq!(drain(&mut f), vec![Output::Hangup]);
    }

    /// Issue 18: the `#` that ends the message reaches the flow again (SIP INFO beside RFC 4733, an in-band
    /// tone broken by a late packet): the held caller must stay holding, and a real `#` later still leaves.
    #[test]
    fn the_pound_that_ends_the_message_does_not_also_end_the_hold() {
        let (mut f, t) = holding(Duration::from_secs(300));
        for ms in [0, 20, 60, 400, 1400] {
            f.handle(Input::Digit(Digit::Pound), t + Duration::from_millis(ms));
            assert!(drain(&mut f).is_empty(), "the tail of the press {ms} ms on did something");
            assert!(f.is_holding(), "released by the tail of the message's # ({ms} ms on)");
        }
        assert_eq!(f.digits, "1#", "one press, recorded once");
        f.handle(Input::Digit(Digit::Pound), t + KEY_TAIL + Duration::from_millis(500));
        assert_eq!(drain(&mut f), vec![Output::LeaveHold, play(&["request_created", "goodbye"])]);
        assert_eq!(f.digits, "1##");
    }

    /// The tail rule is about the same key only, and not in menus: typing ahead `1 1` is two choices.
    #[test]
    fn other_keys_and_menu_type_ahead_are_not_swallowed() {
        let (mut f, t) = holding(Duration::from_secs(300));
        f.handle(Input::Digit(Digit::D5), t + Duration::from_millis(10));
        assert!(f.is_holding());
        assert_eq!(f.digits, "1#5");

        let mut cfg = IvrConfig::default();
        let sub = Menu { prompt: "sub".into(), options: vec![MenuOption { digit: Digit::D1, action: Action::RecordMessage }] };
        cfg.menu.options.push(MenuOption { digit: Digit::D4, action: Action::SubMenu { menu: Box::new(sub) } });
        let mut f = IvrFlow::new(Arc::new(cfg));
        let t = Instant::now();
        f.start(t);
        f.handle(Input::Digit(Digit::D4), t);
        f.handle(Input::Digit(Digit::D4), t + Duration::from_millis(100));
        assert_eq!(f.digits, "44", "a repeated key in a menu is read");
        // A key that skipped "leave your message" does not also act in the recording.
        let (mut f, t) = flow();
        f.handle(Input::Digit(Digit::D1), t);
        f.handle(Input::Digit(Digit::Pound), t + Duration::from_millis(500));
        drain(&mut f);
        assert_eq!(f.recording_kind(), Some(RequestKind::Page));
        f.handle(Input::Digit(Digit::Pound), t + Duration::from_millis(560));
        assert_eq!(f.recording_kind(), Some(RequestKind::Page), "the skip key's tail ended the message");
    }

    #[test]
    fn silent_caller_gets_retries_then_goodbye() {
        let (mut f, mut t) = flow();
        drain(&mut f);
        for _ in 0..3 {
            f.handle(Input::PlaybackFinished, t);
            t = f.poll_timeout().expect("waiting for a key");
            f.handle_timeout(t);
            assert_eq!(drain(&mut f), vec![play(&["no_input", "menu"])]);
        }
        f.handle(Input::PlaybackFinished, t);
        t = f.poll_timeout().unwrap();
        f.handle_timeout(t);
        assert_eq!(drain(&mut f), vec![play(&["no_input", "goodbye"])]);
        f.handle(Input::PlaybackFinished, t);
        assert_eq!(drain(&mut f), vec![Output::Hangup]);
    }

    #[test]
    fn invalid_key_and_repeat() {
        let (mut f, t) = flow();
        drain(&mut f);
        f.handle(Input::PlaybackFinished, t);
        f.handle(Input::Digit(Digit::D9), t);
        assert_eq!(drain(&mut f), vec![play(&["invalid", "menu"])]);
        f.handle(Input::Digit(Digit::Star), t);
        assert_eq!(drain(&mut f), vec![Output::StopPlayback, play(&["menu"])]);
    }

    #[test]
    fn silence_and_max_length_end_a_message_and_hangup_keeps_it() {
        let (mut f, t) = flow();
        f.handle(Input::Digit(Digit::D2), t);
        f.handle(Input::PlaybackFinished, t);
        drain(&mut f);
        f.handle(Input::Silence, t);
        assert_eq!(drain(&mut f)[..2], [Output::StopRecording, Output::MessageRecorded(RequestKind::Message)]);

        let (mut f, t) = flow();
        f.handle(Input::Digit(Digit::D2), t);
        f.handle(Input::PlaybackFinished, t);
        drain(&mut f);
        let deadline = f.poll_timeout().unwrap();
        assert_eq!(deadline - t, Duration::from_secs(120));
        f.handle_timeout(deadline);
        assert_eq!(drain(&mut f)[..2], [Output::StopRecording, Output::MessageRecorded(RequestKind::Message)]);

        let (mut f, t) = flow();
        f.handle(Input::Digit(Digit::D1), t);
        f.handle(Input::PlaybackFinished, t);
        drain(&mut f);
        f.handle(Input::Hangup, t);
        assert_eq!(drain(&mut f), vec![Output::StopRecording, Output::MessageRecorded(RequestKind::Page)]);
        assert!(f.is_done());
    }

    #[test]
    fn menu_options_deserialize_with_their_action() {
        use crate::menu::{Action, Menu};
        let m: Menu = toml::from_str(
            r#"
            prompt = "menu"
            [[options]]
            digit = "1"
            action = "page_on_call"
            [[options]]
            digit = "3"
            action = "play"
            prompt = "hours"
            [[options]]
            digit = "4"
            action = "sub_menu"
            menu = { prompt = "sub", options = [{ digit = "0", action = "hangup" }] }
            "#,
        )
        .unwrap();
        assert_eq!(m.options[1].action, Action::Play { prompt: "hours".into() });
        assert!(matches!(&m.options[2].action, Action::SubMenu { menu } if menu.options[0].action == Action::Hangup));
    }

    /// Key 1 is an urgent page, key 3 a normal one; closed until 08:00 when `closed`.
    fn business_flow(emergency: bool, closed: bool) -> (IvrFlow, Instant) {
        let mut cfg = IvrConfig::default();
        cfg.after_hours_emergency = emergency;
        cfg.menu.options.push(MenuOption { digit: Digit::D3, action: Action::PageOnCall { urgency: Urgency::Normal } });
        let mut f = IvrFlow::new(Arc::new(cfg)).with_hold(Duration::from_secs(300));
        if closed {
            f = f.after_hours(8, 0);
        }
        let t = Instant::now();
        f.start(t);
        drain(&mut f);
        (f, t)
    }

    /// Records a message from the record prompt on and returns what the flow said at the end.
    fn leave_message(f: &mut IvrFlow, t: Instant) -> Vec<Output> {
        f.handle(Input::PlaybackFinished, t);
        assert_eq!(drain(f), vec![Output::StartRecording]);
        f.handle(Input::Digit(Digit::Pound), t + Duration::from_secs(10));
        drain(f)
    }

    #[test]
    fn a_normal_option_during_business_hours_pages_like_an_urgent_one() {
        let (mut f, t) = business_flow(true, false);
        f.handle(Input::Digit(Digit::D3), t);
        assert_eq!(drain(&mut f), vec![Output::StopPlayback, play(&["record_after_tone", "beep"])]);
        let end = leave_message(&mut f, t);
        assert_eq!(end[1], Output::MessageRecorded(RequestKind::Page));
        assert!(f.is_holding());
    }

    #[test]
    fn after_hours_an_urgent_option_still_pages_at_once() {
        let (mut f, t) = business_flow(true, true);
        f.handle(Input::Digit(Digit::D1), t);
        assert_eq!(drain(&mut f), vec![Output::StopPlayback, play(&["record_after_tone", "beep"])]);
        assert_eq!(leave_message(&mut f, t)[1], Output::MessageRecorded(RequestKind::Page));
        assert!(f.is_holding());
    }

    #[test]
    fn after_hours_a_normal_option_says_when_it_will_be_handled_and_releases_the_caller() {
        let (mut f, t) = business_flow(false, true);
        f.handle(Input::Digit(Digit::D3), t);
        assert_eq!(
            drain(&mut f),
            vec![Output::StopPlayback, play(&["closed_now", "call_back_after", "digit_8", "am", "record_after_tone", "beep"])]
        );
        let end = leave_message(&mut f, t);
        assert_eq!(
            end,
            vec![
                Output::StopRecording,
                Output::MessageRecorded(RequestKind::PageWhenOpen),
                play(&["thank_you", "call_back_after", "digit_8", "am", "goodbye"])
            ]
        );
        assert!(!f.is_holding(), "nobody is paged now: no hold");
        f.handle(Input::PlaybackFinished, t);
        assert_eq!(drain(&mut f), vec![Output::Hangup]);
    }

    #[test]
    fn after_hours_pressing_1_for_an_emergency_makes_the_page_urgent() {
        let (mut f, t) = business_flow(true, true);
        f.handle(Input::Digit(Digit::D3), t);
        let offer = play(&["closed_now", "call_back_after", "digit_8", "am", "after_hours_emergency"]);
        assert_eq!(drain(&mut f), vec![Output::StopPlayback, offer]);
        f.handle(Input::Digit(Digit::D1), t); // barges into the offer
        assert_eq!(drain(&mut f), vec![Output::StopPlayback, play(&["record_after_tone", "beep"])]);
        assert_eq!(leave_message(&mut f, t)[1], Output::MessageRecorded(RequestKind::Page));
        assert!(f.is_holding());
        assert_eq!(f.digits, "31#");
    }

    #[test]
    fn after_hours_no_key_after_the_emergency_offer_leaves_the_message_for_the_morning() {
        let (mut f, t) = business_flow(true, true);
        f.handle(Input::Digit(Digit::D3), t);
        drain(&mut f);
        f.handle(Input::PlaybackFinished, t + Duration::from_secs(9));
        let deadline = f.poll_timeout().expect("waiting for the emergency key");
        assert_eq!(deadline, t + Duration::from_secs(9) + Duration::from_secs(5), "the menu timeout");
        f.handle_timeout(deadline - Duration::from_millis(1));
        assert!(drain(&mut f).is_empty(), "not yet");
        f.handle_timeout(deadline);
        assert_eq!(drain(&mut f), vec![play(&["record_after_tone", "beep"])]);
        assert_eq!(leave_message(&mut f, deadline)[1], Output::MessageRecorded(RequestKind::PageWhenOpen));

        // Any other key is "not an emergency" too, and a hang-up mid-message keeps the deferred kind.
        let (mut f, t) = business_flow(true, true);
        f.handle(Input::Digit(Digit::D3), t);
        f.handle(Input::PlaybackFinished, t);
        f.handle(Input::Digit(Digit::D2), t);
        f.handle(Input::PlaybackFinished, t);
        drain(&mut f);
        f.handle(Input::Hangup, t);
        assert_eq!(drain(&mut f), vec![Output::StopRecording, Output::MessageRecorded(RequestKind::PageWhenOpen)]);
    }

    #[test]
    fn page_options_default_to_urgent_and_accept_normal() {
        let m: Menu = toml::from_str(
            r#"
            prompt = "menu"
            [[options]]
            digit = "1"
            action = "page_on_call"
            [[options]]
            digit = "2"
            action = "page_on_call"
            urgency = "normal"
            "#,
        )
        .unwrap();
        assert_eq!(m.options[0].action, Action::PageOnCall { urgency: Urgency::Urgent });
        assert_eq!(m.options[1].action, Action::PageOnCall { urgency: Urgency::Normal });
        assert!(toml::from_str::<Menu>("prompt = \"m\"\n[[options]]\ndigit = \"1\"\naction = \"page_on_call\"\nurgency = \"soon\"").is_err());
        let cfg: IvrConfig = toml::from_str("after_hours_emergency = true").unwrap();
        assert!(cfg.after_hours_emergency);
        for p in ["closed_now", "call_back_after", "after_hours_emergency", "am", "number_12"] {
            assert!(cfg.prompt_names().contains(&p), "{p}");
        }
    }

    #[test]
    fn menu_config_round_trips_through_toml_shape() {
        let cfg = IvrConfig::default();
        assert!(cfg.prompt_names().contains(&"beep"));
    }
}

//! The IVR an on-call employee hears when OnCall pages them by phone, as a sans-IO state machine.
//!
//! "New request from <caller, digit by digit>. Press 1 to talk to the caller, 2 to hear the message,
//! 3 to decline." Then: 1 → accept and bridge to the caller (if still on the line; else play the message);
//! 2 → play the recorded message, then "press 1 to accept"; 3 → decline (the escalation moves on);
//! 5 → escalate to the next step now; 7 → snooze (page again later); * → repeat the announcement;
//! no key → repeat up to the retry limit, then treat as no answer. After accepting, 9 marks the request
//! done. Every choice is confirmed aloud ("Acknowledged.", "Declined.", "Escalating.", "Snoozed."). The flow decides; the call controller carries the decisions out (bridge, play, SIP, store).

use crate::digit::Digit;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageInput {
    /// The employee answered.
    Answered,
    Digit(Digit),
    PlaybackFinished,
    /// The caller hung up meanwhile (no bridge possible any more).
    CallerGone,
    /// The bridge ended because the caller hung up; the employee may still press 9.
    BridgeEnded,
    Hangup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOutput {
    Play(Vec<String>),
    StopPlayback,
    /// Play the caller's recorded message.
    PlayMessage,
    /// The employee took the request (acknowledged).
    Accepted,
    /// The employee declined (or never chose): escalate.
    Declined,
    /// Connect the employee with the caller.
    Bridge,
    /// The employee marked the request done (key 9).
    Completed,
    /// The employee wants the next step paged now (key 5).
    EscalateNow,
    /// The employee wants to be paged again later (key 7).
    Snooze,
    Hangup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ringing,
    /// Announcing the request, waiting for 1/2/3.
    Announce { deadline: Option<Instant> },
    /// Playing the caller's message, then "press 1 to accept".
    Message { deadline: Option<Instant> },
    Bridged,
    /// Accepted without a bridge: "press 9 when done" window.
    AfterAccept { deadline: Option<Instant> },
    Closing,
    Done,
}

pub struct PageFlow {
    state: State,
    caller_digits: String,
    caller_present: bool,
    accepted: bool,
    retries: u32,
    max_retries: u32,
    timeout: Duration,
    /// An alert's page: its message (the spoken summary) plays right after "new request", before the keys.
    message_first: bool,
    outputs: VecDeque<PageOutput>,
}

impl PageFlow {
    /// `caller` is the caller's number as it should be read out (digits, `+`, `*`, `#`).
    pub fn new(caller: &str, caller_present: bool, timeout: Duration, max_retries: u32) -> Self {
        PageFlow {
            state: State::Ringing,
            caller_digits: caller.chars().filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#').collect(),
            caller_present,
            accepted: false,
            retries: 0,
            max_retries,
            timeout,
            message_first: false,
            outputs: VecDeque::new(),
        }
    }

    /// The page of an alert (no caller): "New request", the message (its summary, spoken), then the keys; 2
    /// plays the message again, 1 accepts.
    pub fn with_message_first(mut self) -> Self {
        self.message_first = true;
        self
    }

    /// The caller holds for this page: accepting bridges to them (unless [`PageInput::CallerGone`]).
    pub fn with_caller_present(mut self) -> Self {
        self.caller_present = true;
        self
    }

    /// The announcement: "New request from 5 5 5 1 2 3 4. Press 1 to talk…".
    fn announcement(&self) -> Vec<String> {
        let mut p = vec!["new_request".to_string(), "from".to_string()];
        for c in self.caller_digits.chars() {
            p.push(match c {
                '*' => "star".into(),
                '#' => "pound".into(),
                d => format!("digit_{d}"),
            });
        }
        p.push("press_1_talk".into());
        p
    }

    pub fn handle(&mut self, input: PageInput, now: Instant) {
        use PageInput as I;
        use State as S;
        match (self.state, input) {
            (S::Done, _) => {}
            (_, I::Hangup) => {
                if !self.accepted && self.state != S::Closing {
                    self.outputs.push_back(PageOutput::Declined);
                }
                self.state = S::Done;
            }
            // Accepted, but the caller left before the bridge was made: fall back to the message.
            (S::Bridged, I::CallerGone) => {
                self.caller_present = false;
                self.accept_without_caller();
            }
            (_, I::CallerGone) => self.caller_present = false,
            (S::Ringing, I::Answered) if self.message_first => {
                self.outputs.push_back(PageOutput::Play(vec!["new_request".into()]));
                self.outputs.push_back(PageOutput::PlayMessage);
                self.outputs.push_back(PageOutput::Play(vec!["press_1_talk".into()]));
                self.state = S::Announce { deadline: None };
            }
            (S::Ringing, I::Answered) => {
                self.outputs.push_back(PageOutput::Play(self.announcement()));
                self.state = S::Announce { deadline: None };
            }
            (S::Announce { .. }, I::PlaybackFinished) => self.state = S::Announce { deadline: Some(now + self.timeout) },
            (S::Message { .. }, I::PlaybackFinished) => self.state = S::Message { deadline: Some(now + self.timeout) },
            (S::AfterAccept { .. }, I::PlaybackFinished) => self.state = S::AfterAccept { deadline: Some(now + self.timeout) },
            (S::Closing, I::PlaybackFinished) => {
                self.outputs.push_back(PageOutput::Hangup);
                self.state = S::Done;
            }
            (S::Announce { .. }, I::Digit(d)) => {
                self.outputs.push_back(PageOutput::StopPlayback);
                match d {
                    Digit::D1 => self.accept(),
                    Digit::D2 => {
                        self.outputs.push_back(PageOutput::PlayMessage);
                        self.state = S::Message { deadline: None };
                    }
                    Digit::D3 | Digit::D5 | Digit::D7 => self.pass_on(d),
                    // Star repeats the announcement without using up a retry.
                    Digit::Star => {
                        self.outputs.push_back(PageOutput::Play(self.announcement()));
                        self.state = S::Announce { deadline: None };
                    }
                    _ => self.reprompt(),
                }
            }
            (S::Message { .. }, I::Digit(Digit::D1)) => {
                self.outputs.push_back(PageOutput::StopPlayback);
                self.accept();
            }
            (S::Message { .. }, I::Digit(d @ (Digit::D3 | Digit::D5 | Digit::D7))) => {
                self.outputs.push_back(PageOutput::StopPlayback);
                self.pass_on(d);
            }
            (S::Bridged, I::BridgeEnded) => {
                self.outputs.push_back(PageOutput::Play(vec!["press_9_done".into()]));
                self.state = S::AfterAccept { deadline: None };
            }
            (S::Bridged | S::AfterAccept { .. }, I::Digit(Digit::D9)) => {
                // 9 barges in like any key: stop what plays, then confirm.
                self.outputs.push_back(PageOutput::StopPlayback);
                self.outputs.push_back(PageOutput::Completed);
                self.close("completed");
            }
            _ => {}
        }
    }

    fn accept(&mut self) {
        self.accepted = true;
        self.outputs.push_back(PageOutput::Accepted);
        if self.caller_present {
            self.outputs.push_back(PageOutput::Bridge);
            self.state = State::Bridged;
        } else {
            self.accept_without_caller();
        }
    }

    /// The caller left: what they said is all there is.
    fn accept_without_caller(&mut self) {
        self.outputs.push_back(PageOutput::Play(vec!["accepted".into()]));
        self.outputs.push_back(PageOutput::PlayMessage);
        self.outputs.push_back(PageOutput::Play(vec!["press_9_done".into()]));
        self.state = State::AfterAccept { deadline: None };
    }

    /// 3 declines, 5 escalates now, 7 snoozes: the request goes on without this employee for now.
    fn pass_on(&mut self, d: Digit) {
        let (output, prompt) = match d {
            Digit::D5 => (PageOutput::EscalateNow, "escalating"),
            Digit::D7 => (PageOutput::Snooze, "snoozed"),
            _ => (PageOutput::Declined, "declined"),
        };
        self.outputs.push_back(output);
        self.close(prompt);
    }

    fn reprompt(&mut self) {
        self.retries += 1;
        if self.retries > self.max_retries {
            self.outputs.push_back(PageOutput::Declined);
            self.close("goodbye");
        } else {
            self.outputs.push_back(PageOutput::Play(vec!["press_1_talk".into()]));
            self.state = State::Announce { deadline: None };
        }
    }

    fn close(&mut self, prompt: &str) {
        self.outputs.push_back(PageOutput::Play(vec![prompt.into()]));
        self.state = State::Closing;
    }

    pub fn poll_output(&mut self) -> Option<PageOutput> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Announce { deadline } | State::Message { deadline } | State::AfterAccept { deadline } => deadline,
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Announce { deadline: Some(d) } | State::Message { deadline: Some(d) } if now >= d => self.reprompt(),
            State::AfterAccept { deadline: Some(d) } if now >= d => self.close("goodbye"),
            _ => {}
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(present: bool) -> (PageFlow, Instant) {
        let mut f = PageFlow::new("+1 555-0123", present, Duration::from_secs(5), 2);
        let t = Instant::now();
        f.handle(PageInput::Answered, t);
        (f, t)
    }

    fn drain(f: &mut PageFlow) -> Vec<PageOutput> {
        std::iter::from_fn(|| f.poll_output()).collect()
    }

    #[test]
    fn announcement_reads_the_caller_digit_by_digit() {
        let (mut f, _) = flow(true);
        let PageOutput::Play(p) = &drain(&mut f)[0] else { panic!() };
        assert_eq!(p[..3], ["new_request", "from", "digit_1"]);
        assert_eq!(p.len(), 2 + 8 + 1, "1 5 5 5 0 1 2 3 then the choices");
        assert_eq!(p.last().unwrap(), "press_1_talk");
    }

    #[test]
    fn press_1_bridges_and_9_completes() {
        let (mut f, t) = flow(true);
        drain(&mut f);
        f.handle(PageInput::Digit(Digit::D1), t);
        assert_eq!(drain(&mut f), vec![PageOutput::StopPlayback, PageOutput::Accepted, PageOutput::Bridge]);
        f.handle(PageInput::BridgeEnded, t);
        f.handle(PageInput::Digit(Digit::D9), t);
        let out = drain(&mut f);
        assert!(out.contains(&PageOutput::Completed));
        f.handle(PageInput::PlaybackFinished, t);
        assert_eq!(drain(&mut f), vec![PageOutput::Hangup]);
    }

    #[test]
    fn press_2_hears_the_message_then_accepts_and_caller_gone_means_no_bridge() {
        let (mut f, t) = flow(true);
        drain(&mut f);
        f.handle(PageInput::Digit(Digit::D2), t);
        assert_eq!(drain(&mut f), vec![PageOutput::StopPlayback, PageOutput::PlayMessage]);
        f.handle(PageInput::CallerGone, t);
        f.handle(PageInput::Digit(Digit::D1), t);
        let out = drain(&mut f);
        assert!(out.contains(&PageOutput::Accepted) && !out.contains(&PageOutput::Bridge), "{out:?}");
    }

    #[test]
    fn a_caller_gone_when_the_bridge_is_made_means_the_message_instead() {
        let (mut f, t) = flow(true);
        drain(&mut f);
        f.handle(PageInput::Digit(Digit::D1), t);
        assert_eq!(drain(&mut f), vec![PageOutput::StopPlayback, PageOutput::Accepted, PageOutput::Bridge]);
        f.handle(PageInput::CallerGone, t);
        assert_eq!(
            drain(&mut f),
            vec![PageOutput::Play(vec!["accepted".into()]), PageOutput::PlayMessage, PageOutput::Play(vec!["press_9_done".into()])]
        );
    }

    #[test]
    fn five_escalates_seven_snoozes_and_star_repeats() {
        let (mut f, t) = flow(true);
        let first = drain(&mut f);
        f.handle(PageInput::Digit(Digit::Star), t);
        let again = drain(&mut f);
        assert_eq!(again[1..], first[..], "the same announcement again");
        f.handle(PageInput::Digit(Digit::D5), t);
        assert_eq!(drain(&mut f), vec![PageOutput::StopPlayback, PageOutput::EscalateNow, PageOutput::Play(vec!["escalating".into()])]);

        let (mut f, t) = flow(true);
        drain(&mut f);
        f.handle(PageInput::Digit(Digit::D2), t);
        f.handle(PageInput::PlaybackFinished, t);
        drain(&mut f);
        f.handle(PageInput::Digit(Digit::D7), t);
        assert_eq!(drain(&mut f), vec![PageOutput::StopPlayback, PageOutput::Snooze, PageOutput::Play(vec!["snoozed".into()])]);
        f.handle(PageInput::PlaybackFinished, t);
        assert_eq!(drain(&mut f), vec![PageOutput::Hangup]);
    }

    #[test]
    fn press_3_declines_and_silence_declines_after_retries() {
        let (mut f, t) = flow(true);
        drain(&mut f);
        f.handle(PageInput::Digit(Digit::D3), t);
        assert!(drain(&mut f).contains(&PageOutput::Declined));

        let (mut f, mut t) = flow(true);
        drain(&mut f);
        for _ in 0..3 {
            f.handle(PageInput::PlaybackFinished, t);
            t = f.poll_timeout().unwrap();
            f.handle_timeout(t);
        }
        assert!(drain(&mut f).contains(&PageOutput::Declined), "no choice after 2 retries declines");
    }

    #[test]
    fn hanging_up_before_choosing_declines() {
        let (mut f, t) = flow(true);
        drain(&mut f);
        f.handle(PageInput::Hangup, t);
        assert_eq!(drain(&mut f), vec![PageOutput::Declined]);
        assert!(f.is_done());
    }

    /// An alert's page speaks its summary before the keys; 1 accepts without a bridge (nobody holds).
    #[test]
    fn an_alerts_page_plays_its_message_before_the_keys() {
        let now = Instant::now();
        let mut f = PageFlow::new("", false, Duration::from_secs(8), 2).with_message_first();
        f.handle(PageInput::Answered, now);
        assert_eq!(
            std::iter::from_fn(|| f.poll_output()).collect::<Vec<_>>(),
            vec![PageOutput::Play(vec!["new_request".into()]), PageOutput::PlayMessage, PageOutput::Play(vec!["press_1_talk".into()])]
        );
        f.handle(PageInput::PlaybackFinished, now);
        f.handle(PageInput::Digit(Digit::D1), now);
        let out: Vec<_> = std::iter::from_fn(|| f.poll_output()).collect();
        assert!(out.contains(&PageOutput::Accepted) && !out.contains(&PageOutput::Bridge), "{out:?}");
    }
}
//! One caller's IVR session as a media app: turns audio and key presses into IVR flow inputs, plays
//! the prompts the flow asks for, and records the caller's message to a WAV that stays playable if
//! the process dies (checkpointed every second). A "page on-call" caller then holds in the
//! [`HoldRoom`] until an employee takes the call, and the session relays audio both ways.

use crate::hold_room::{HoldNews, HoldRoom};
use crate::playback::{KeyInput, Playback};
use oncall_sip::media::bridge::BridgeLink;
use oncall_ivr::silence::SilenceDetector;
use oncall_ivr::{Input, IvrConfig, IvrFlow, Output, RequestKind};
use oncall_recordings::{PromptLibrary, RecordingInfo, WavRecorder};
use oncall_sip::media::{MediaApp, Signal};
use oncall_sip::ua::CallRef;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// What a session tells the call controller.
#[derive(Debug)]
pub enum SessionEvent {
    /// The IVR is done with the caller: send BYE.
    Hangup(CallRef),
    /// The caller started leaving a message there (saved at once: a crash must not orphan the file).
    RecordingStarted { call: CallRef, kind: RequestKind, path: PathBuf },
    MessageRecorded { call: CallRef, kind: RequestKind, info: RecordingInfo },
    /// The stereo recording of a bridged conversation (caller left, employee right) is on disk.
    ConversationRecorded { request: oncall_core::RequestId, info: RecordingInfo },
    /// The session left the media engine; `digits` is every key pressed.
    Finished { call: CallRef, digits: String },
}

pub struct IvrSession {
    call: CallRef,
    flow: IvrFlow,
    prompts: Arc<PromptLibrary>,
    playback: Playback,
    keys: KeyInput,
    silence: SilenceDetector,
    silence_enabled: bool,
    recorder: Option<WavRecorder>,
    /// A stopped recording waiting for the flow to say what it was for.
    stopped: Option<WavRecorder>,
    closer: std::sync::mpsc::Sender<CloseJob>,
    recording_path: PathBuf,
    tx: UnboundedSender<SessionEvent>,
    started: bool,
    /// Where a paging caller waits (paging on).
    hold: Option<HoldRoom>,
    /// The bridge to the employee who took the call.
    link: Option<BridgeLink>,
}

impl IvrSession {
    /// A "page on-call" caller holds in `room` for at most `max_hold` after their message.
    pub fn with_hold(mut self, room: HoldRoom, max_hold: Duration) -> Self {
        self.flow = self.flow.with_hold(max_hold);
        self.hold = Some(room);
        self
    }

    /// The organization is closed and opens again at `hour:minute` local time: `normal` options defer.
    pub fn after_hours(mut self, hour: u32, minute: u32) -> Self {
        self.flow = self.flow.after_hours(hour, minute);
        self
    }

    pub fn new(
        call: CallRef,
        cfg: Arc<IvrConfig>,
        prompts: Arc<PromptLibrary>,
        in_band_dtmf: bool,
        recording_path: PathBuf,
        tx: UnboundedSender<SessionEvent>,
        closer: std::sync::mpsc::Sender<CloseJob>,
    ) -> Self {
        let silence_ms = (cfg.silence_secs * 1000).min(u32::MAX as u64) as u32;
        IvrSession {
            call,
            silence_enabled: cfg.silence_secs > 0,
            flow: IvrFlow::new(cfg),
            prompts,
            playback: Playback::default(),
            keys: KeyInput::new(in_band_dtmf),
            silence: SilenceDetector::new(-45.0, silence_ms.max(1)),
            recorder: None,
            stopped: None,
            closer,
            recording_path,
            tx,
            started: false,
            hold: None,
            link: None,
        }
    }

    fn input(&mut self, input: Input, now: Instant) {
        if let Input::Digit(d) = &input {
            tracing::info!(call = self.call.0, digit = %d, "key pressed");
        }
        self.flow.handle(input, now);
        self.pump();
    }

    /// Carries out what the flow asked for.
    fn pump(&mut self) {
        while let Some(out) = self.flow.poll_output() {
            match out {
                Output::Play(names) => {
                    let prompts = &self.prompts;
                    self.playback.play(names.iter().filter_map(|n| {
                        let p = prompts.get(n);
                        if p.is_none() {
                            tracing::warn!(prompt = %n, "prompt missing from sounds; skipped");
                        }
                        p
                    }));
                }
                Output::StopPlayback => self.playback.stop(),
                Output::StartRecording => self.start_recording(),
                Output::StopRecording => self.stop_recording(),
                Output::MessageRecorded(kind) => {
                    if let Some(rec) = self.stopped.take() {
                        let _ = self.closer.send(CloseJob::Recording { call: self.call, kind, rec });
                    }
                }
                Output::EnterHold => {
                    if let Some(room) = &self.hold {
                        tracing::info!(call = self.call.0, "caller holding for the on-call staff");
                        room.enter(self.call);
                    }
                }
                Output::LeaveHold => self.leave_hold(),
                Output::Hangup => {
                    let _ = self.tx.send(SessionEvent::Hangup(self.call));
                }
            }
        }
    }

    fn start_recording(&mut self) {
        if let Some(dir) = self.recording_path.parent() {
            // Closed to other local users, like the file itself (issue #15).
            let _ = oncall_recordings::private_files::create_dir_all(dir);
        }
        match WavRecorder::create(&self.recording_path, 1, 8000) {
            Ok(r) => {
                tracing::info!(call = self.call.0, path = %self.recording_path.display(), "recording started");
                self.recorder = Some(r);
                let kind = self.flow.recording_kind().unwrap_or(RequestKind::Message);
                let _ = self.tx.send(SessionEvent::RecordingStarted { call: self.call, kind, path: self.recording_path.clone() });
                self.silence.reset();
            }
            Err(e) => tracing::error!(call = self.call.0, error = %e, "cannot create recording"),
        }
    }

    fn leave_hold(&mut self) {
        if let Some(room) = &self.hold {
            room.leave(self.call);
        }
        self.link = None;
    }

    /// While holding: picks up a bridge an employee made, or the news that nobody is available.
    /// While bridged: notices the employee leaving.
    fn watch_hold(&mut self, now: Instant) {
        if let Some(link) = &self.link {
            if link.is_closed() {
                tracing::info!(call = self.call.0, "the employee left the call");
                self.leave_hold();
                self.input(Input::BridgeEnded, now);
            }
            return;
        }
        let Some(room) = &self.hold else { return };
        if !self.flow.is_holding() {
            return;
        }
        match room.poll(self.call) {
            HoldNews::Nothing => {}
            HoldNews::Bridged(link) => {
                tracing::info!(call = self.call.0, "caller bridged to the on-call employee");
                self.link = Some(link);
                self.input(Input::Bridged, now);
            }
            HoldNews::NobodyAvailable => self.input(Input::NobodyAvailable, now),
        }
    }

    fn stop_recording(&mut self) {
        if let Some(r) = self.recorder.take() {
            self.stopped = Some(r);
        }
    }
}

impl MediaApp for IvrSession {
    fn on_audio(&mut self, pcm: &[i16], now: Instant) {
        if let Some(link) = &self.link {
            link.send(pcm);
        }
        if let Some(d) = self.keys.on_audio(pcm) {
            self.input(Input::Digit(d), now);
        }
        if let Some(rec) = &mut self.recorder {
            if let Err(e) = rec.write(pcm) {
                tracing::error!(call = self.call.0, error = %e, "recording write failed");
            }
            let _ = rec.checkpoint_if_due();
            if self.silence_enabled && self.silence.feed(pcm) && self.silence.heard_sound() {
                self.input(Input::Silence, now);
            }
        }
    }

    fn on_telephone_event(&mut self, payload: &[u8], timestamp: u32, marker: bool, now: Instant) {
        // Bridged: the caller's keys reach the employee's phone too (RFC 4733 relay).
        if let Some(link) = &self.link {
            link.send_event(payload, timestamp, marker);
        }
        if let Some(d) = self.keys.on_telephone_event(payload, timestamp, marker) {
            self.input(Input::Digit(d), now);
        }
    }

    fn next_telephone_event(&mut self, rtp_timestamp: u32) -> Option<oncall_sip::media::bridge::TelephoneEvent> {
        self.link.as_mut()?.recv_event(rtp_timestamp)
    }

    fn next_frame(&mut self, out: &mut [i16], now: Instant) -> bool {
        if !self.started {
            self.started = true;
            self.flow.start(now);
            self.pump();
        }
        if self.flow.poll_timeout().is_some_and(|t| now >= t) {
            self.flow.handle_timeout(now);
            self.pump();
        }
        if self.hold.is_some() {
            self.watch_hold(now);
        }
        if let Some(link) = &self.link {
            // Talking: the employee's voice (the flow plays nothing while bridged).
            link.recv(out);
            return true;
        }
        if self.playback.fill(out) {
            self.input(Input::PlaybackFinished, now);
        }
        // Silence is sent too: it keeps NAT bindings open and the caller's jitter buffer fed.
        true
    }

    fn on_signal(&mut self, signal: Signal, now: Instant) {
        if let Signal::Info { content_type, body } = signal {
            if let Some(d) = self.keys.on_info(&content_type, &body) {
                self.input(Input::Digit(d), now);
            }
        }
    }

    fn finish(&mut self, now: Instant) {
        self.leave_hold();
        self.flow.handle(Input::Hangup, now);
        self.pump();
        self.stop_recording();
        if let Some(rec) = self.stopped.take() {
            let _ = self.closer.send(CloseJob::Recording { call: self.call, kind: RequestKind::Message, rec });
        }
        // Through the closer too, so the call log sees the recording before the end of the call.
        let _ = self.closer.send(CloseJob::Event(SessionEvent::Finished { call: self.call, digits: self.flow.digits.clone() }));
    }
}

/// Work for the recording closer thread.
pub enum CloseJob {
    Recording { call: CallRef, kind: RequestKind, rec: WavRecorder },
    Conversation { request: oncall_core::RequestId, rec: WavRecorder },
    Event(SessionEvent),
}

/// Finishing a WAV syncs it to disk, which can take milliseconds: never on a media thread, where it would
/// delay every call's next packet. One thread closes recordings in order and forwards the events after them.
pub fn spawn_closer(tx: UnboundedSender<SessionEvent>) -> std::sync::mpsc::Sender<CloseJob> {
    let (jobs, rx) = std::sync::mpsc::channel::<CloseJob>();
    std::thread::Builder::new()
        .name("recording-closer".into())
        .spawn(move || {
            for job in rx {
                match job {
                    CloseJob::Recording { call, kind, rec } => match rec.finish() {
                        Ok(info) => {
                            tracing::info!(call = call.0, path = %info.path.display(), duration_ms = info.duration_ms, "message recorded");
                            let _ = tx.send(SessionEvent::MessageRecorded { call, kind, info });
                        }
                        Err(e) => tracing::error!(call = call.0, error = %e, "cannot finish recording"),
                    },
                    CloseJob::Conversation { request, rec } => match rec.finish() {
                        Ok(info) => {
                            tracing::info!(%request, path = %info.path.display(), duration_ms = info.duration_ms, "conversation recorded");
                            let _ = tx.send(SessionEvent::ConversationRecorded { request, info });
                        }
                        Err(e) => tracing::error!(%request, error = %e, "cannot finish the conversation recording"),
                    },
                    CloseJob::Event(ev) => {
                        let _ = tx.send(ev);
                    }
                }
            }
        })
        .expect("spawning the recording closer thread at start-up");
    jobs
}

//! RTP media for all calls: a few engine threads, each ticking every 20 ms for every call it owns
//! (one timer for all calls, not a task and a timer per packet), plus the RTP port pool.
//!
//! Each tick, per call: read what arrived (non-blocking, into one reused buffer; only from the sockets one
//! `epoll_wait` reports readable), feed the jitter
//! buffer and telephone-events, hand one decoded frame to the call's [`MediaApp`], ask it for the
//! next frame and send it. What a call *does* with audio (IVR, recording, bridging) is the app's.

pub mod batch_recv;
pub mod bridge;
pub mod engine;
pub mod histogram;
pub mod ports;
pub mod readiness;
pub mod webrtc;
#[doc(hidden)]
pub mod webrtc_peer;

pub use engine::{EngineStats, MediaCallSpec, MediaCommand, MediaEngine};
pub use ports::RtpPorts;

use std::time::Instant;

/// Signals from the signalling side for a call's media app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// An in-dialog INFO (DTMF relay).
    Info { content_type: String, body: Vec<u8> },
    /// The ACK arrived.
    Confirmed,
    /// The far end's media went away without a hang-up (a browser whose network vanished: ICE gave up).
    PeerGone,
}

/// What a call does with its audio. Called from a media thread, every 20 ms; must not block.
pub trait MediaApp: Send {
    /// One 20 ms frame (160 samples) heard from the peer; silence when nothing arrived in time.
    fn on_audio(&mut self, pcm: &[i16], now: Instant);
    /// One RFC 4733 telephone-event packet (payload, RTP timestamp, marker bit).
    fn on_telephone_event(&mut self, payload: &[u8], timestamp: u32, marker: bool, now: Instant);
    /// Fills the next frame to send; returns false to send nothing this tick.
    fn next_frame(&mut self, out: &mut [i16], now: Instant) -> bool;
    fn on_signal(&mut self, signal: Signal, now: Instant);
    /// The call left the engine: flush and close whatever the app holds.
    fn finish(&mut self, now: Instant);
    /// A telephone-event to send on this call now (keys relayed from a bridged call), stamped for this
    /// stream, whose next RTP timestamp is `rtp_timestamp`. Asked every tick until it says `None`; the
    /// engine sends it with the call's telephone-event payload type, or drops it when none was negotiated.
    fn next_telephone_event(&mut self, _rtp_timestamp: u32) -> Option<bridge::TelephoneEvent> {
        None
    }
}

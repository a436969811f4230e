//! RTP (RFC 3550) for one G.711 audio stream: packet views read in place, a sender that stamps
//! sequence/timestamp/SSRC/marker, a small jitter buffer, and basic RTCP reports.
//!
//! Nothing here allocates per packet: packets are parsed from and written into reused buffers.

pub mod g711;
pub mod jitter_buffer;
pub mod packet;
pub mod rtcp;
pub mod sender;
pub mod srtp;

pub use jitter_buffer::JitterBuffer;
pub use packet::{RtpHeader, RtpPacket};
pub use sender::RtpSender;

/// 20 ms of 8 kHz audio: one G.711 frame.
pub const SAMPLES_PER_FRAME: usize = 160;

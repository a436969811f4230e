//! OnCall's SIP user agent: message parsing and validation, transports, the RFC 3261 transaction
//! layer, dialogs, SDP offer/answer and RTP media.
//!
//! Protocol cores (`transaction`, `ua`, `rtp::jitter_buffer`, `sdp`) are sans-IO: fed with bytes and
//! an `Instant`, they return what to send and when to wake up. The tokio code in `transport` and
//! `media` only moves bytes between sockets and those cores.

pub mod admission;
pub mod auth;
pub mod media;
pub mod message;
pub mod registrar;
pub mod registration;
pub mod rtp;
pub mod sdp;
pub mod transaction;
pub mod transport;
pub mod ua;

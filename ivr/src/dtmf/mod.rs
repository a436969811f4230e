//! DTMF key presses from the three ways they reach a SIP server.
//!
//! - [`rfc4733`]: telephone-event RTP packets (the normal case; negotiated in SDP as `telephone-event/8000`).
//! - [`sip_info`]: SIP INFO requests with `application/dtmf-relay` or `application/dtmf` bodies.
//! - [`goertzel`]: tones in the audio itself, for peers that send neither.
//!
//! All three produce a [`Digit`](crate::digit::Digit) once per key press; the IVR does not care which path it took.
//! None of them does I/O or keeps time: they are fed packets, bodies and samples.

pub mod goertzel;
pub mod rfc4733;
pub mod sip_info;

pub use goertzel::ToneDetector;
pub use rfc4733::{EventDecoder, Rfc4733Error, TelephoneEvent};
pub use sip_info::DtmfInfoError;

//! An SDP offer (RFC 4566) parsed and negotiated against what OnCall supports (RFC 3264 §6.1).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oncall_sip::sdp::{negotiate, Codec, SessionDescription};

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = SessionDescription::parse(data) {
        let _ = negotiate(&offer, &[Codec::Pcmu, Codec::Pcma]);
        let _ = negotiate(&offer, &[Codec::Pcma]);
        let _ = negotiate(&offer, &[]);
    }
});

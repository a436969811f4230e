//! An RTP packet (RFC 3550 §5.1: CSRCs, header extension, padding) as it arrives on a media socket.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = oncall_sip::rtp::RtpPacket::parse(data);
});

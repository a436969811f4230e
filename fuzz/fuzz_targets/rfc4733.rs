//! A stream of RFC 4733 telephone-event payloads fed to one decoder, as during a call: the input is a sequence of
//! records `[marker/flags byte, 4 timestamp bytes, length byte, payload...]`, so the decoder's state (retransmitted
//! end packets, timestamp changes, missing starts) is exercised, not just the 4-byte parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oncall_ivr::dtmf::EventDecoder;

fuzz_target!(|data: &[u8]| {
    let mut decoder = EventDecoder::new();
    let mut rest = data;
    while rest.len() >= 6 {
        let marker = rest[0] & 1 == 1;
        let timestamp = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = (rest[5] as usize % 16).min(rest.len() - 6);
        let payload = &rest[6..6 + len];
        let _ = decoder.feed(payload, timestamp, marker);
        rest = &rest[6 + len..];
    }
});

//! A UDP datagram as the transport hands it to the parser (RFC 3261 §18.3: Content-Length may be absent, the body
//! runs to the end of the datagram). Must never panic; errors are the expected outcome for most inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = oncall_sip::message::parse_datagram(data);
});

//! WWW-Authenticate / Authorization header values (RFC 7616 Digest): the same text parsed as a challenge and as
//! credentials. Only UTF-8 input is meaningful (header values reach the parser as &str).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oncall_sip::auth::digest::{Challenge, Credentials};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Challenge::parse(text);
        let _ = Credentials::parse(text);
    }
});

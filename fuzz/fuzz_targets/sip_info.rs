//! The body of a SIP INFO carrying a key press (application/dtmf-relay or application/dtmf). The first byte picks
//! the Content-Type so both body grammars (and an unknown type) are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 4] = [
    "application/dtmf-relay",
    "application/dtmf",
    "Application/DTMF-Relay; charset=x",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let _ = oncall_ivr::dtmf::sip_info::parse(TYPES[pick as usize % TYPES.len()], body);
});

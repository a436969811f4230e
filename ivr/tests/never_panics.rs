//! Property tests over the IVR's readers of network input: RFC 4733 telephone-event streams and SIP INFO DTMF
//! bodies. The short, always-on counterpart of the `rfc4733` and `sip_info` cargo-fuzz targets in `fuzz/`, with the
//! same input shapes, plus the decoder's promise: one press, however its packets are repeated, is one digit.

use oncall_ivr::dtmf::{sip_info, EventDecoder, TelephoneEvent};
use oncall_ivr::Digit;
use proptest::prelude::*;

const TYPES: [&str; 4] = ["application/dtmf-relay", "application/dtmf", "Application/DTMF-Relay; charset=x", "text/plain"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The fuzz target's records: `[marker byte, 4 timestamp bytes, length byte, payload...]` fed to one decoder.
    #[test]
    fn event_stream_never_panics(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut decoder = EventDecoder::new();
        let mut rest = &data[..];
        while rest.len() >= 6 {
            let marker = rest[0] & 1 == 1;
            let timestamp = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
            let len = (rest[5] as usize % 16).min(rest.len() - 6);
            let _ = decoder.feed(&rest[6..6 + len], timestamp, marker);
            rest = &rest[6 + len..];
        }
    }

    /// A key press sent as RFC 4733 §2.5.1 says (marker start, growing durations, three end packets), each packet
    /// duplicated or dropped at random but the first kept, is reported exactly once, as its key.
    #[test]
    fn one_press_is_one_digit(code in 0u8..16, ts in any::<u32>(), volume in 0u8..64,
                              copies in prop::collection::vec(0usize..3, 8)) {
        let mut packets = Vec::new();
        for i in 0..5u16 {
            packets.push((TelephoneEvent { event: code, end: false, volume, duration: 160 * (i + 1) }, i == 0));
        }
        for _ in 0..3 {
            packets.push((TelephoneEvent { event: code, end: true, volume, duration: 960 }, false));
        }
        let mut decoder = EventDecoder::new();
        let mut digits = Vec::new();
        for (i, (event, marker)) in packets.iter().enumerate() {
            let times = if i == 0 { copies[i].max(1) } else { copies[i] };
            for _ in 0..times {
                digits.extend(decoder.feed(&event.to_bytes(), ts, *marker).unwrap());
            }
        }
        prop_assert_eq!(digits, vec![Digit::from_event_code(code).unwrap()]);
    }

    /// The fuzz target's shape: the first byte picks the Content-Type, the rest is the body.
    #[test]
    fn sip_info_bodies_never_panic(pick in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = sip_info::parse(TYPES[pick as usize % TYPES.len()], &body);
    }

    /// Bodies close to real ones (`Signal=5\r\nDuration=160`), with odd spacing, case, Unicode and numbers.
    #[test]
    fn sip_info_near_valid_bodies_never_panic(body in "([Ss]ignal|[Dd]uration|[a-zé]{0,6}) ?[=:]? ?([0-9#*A-Da-d]{0,3}|[ -~é€😀]{0,6})(\r?\n[ -~é]{0,20}){0,3}") {
        for t in TYPES {
            let _ = sip_info::parse(t, body.as_bytes());
        }
    }
}

//! RFC 4475 torture messages against the parser alone: every §3.1.1, §3.2, §3.3 and §3.4 message
//! parses; every §3.1.2 message is rejected; none panics. The verdicts come from the RFC sections
//! (see fixtures/rfc4475/README.md), not from the `_V`/`_I` file suffixes.

use oncall_sip::message::{parse_datagram, ParseErrorKind};

const PARSES: &[&str] = &[
    // 3.1.1 valid
    "WSINV", "INTMETH", "ESC01_V", "ESCNULL_V", "ESC02_V", "LWSDISP_V", "LONGREQ_V", "DBLREQ", "SEMIURI_V",
    "TRANSPORTS_V", "MPART01", "UNREASON_V", "NOREASON_V",
    // 3.2 transaction layer
    "BADBRANCH_V",
    // 3.3 application layer
    "UNKSCM_V", "NOVELSC_V", "UNKSM2_V", "BEXT01_V", "INVUT_V", "REGAUT01_V", "MULTI01_I", "MCL01_I", "BCAST_V",
    "ZEROMF_V", "CPARAM01_V", "CPARAM02_V", "REGESCRT_V", "SDP01_V", "INSUF_I",
    // 3.4 backward compatibility
    "INV2543_I",
];

const REJECTED: &[&str] = &[
    "BADINV01_I", "CLERR_I", "NCL_I", "SCALAR02_V", "SCALARLG_V", "QUOTBAL_I", "LTGTRURI_I", "LWSRURI_I",
    "LWSSTART_V", "TRWS_I", "ESCRURI_V", "BADDATE_V", "REGBADCT_I", "BADASPEC_I", "BADDN_I", "BADVERS_V",
    "MISMATCH01_V", "MISMATCH02_V", "BIGCODE_V",
    // not in the RFC: no SIP-Version on the request line
    "TEST_I",
];

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/rfc4475/TC_{name}.dat", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_legal_message_parses() {
    let failures: Vec<String> = PARSES
        .iter()
        .filter_map(|n| parse_datagram(&load(n)).err().map(|e| format!("{n}: {e:?}")))
        .collect();
    assert!(failures.is_empty(), "legal messages rejected:\n{}", failures.join("\n"));
}

#[test]
fn every_illegal_message_is_rejected() {
    let accepted: Vec<&str> = REJECTED.iter().copied().filter(|n| parse_datagram(&load(n)).is_ok()).collect();
    assert!(accepted.is_empty(), "illegal messages accepted: {accepted:?}");
}

#[test]
fn badvers_is_505_and_requests_keep_headers_for_the_answer() {
    let e = parse_datagram(&load("BADVERS_V")).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::VersionNotSupported);
    assert!(e.partial.is_some());
    let e = parse_datagram(&load("SCALAR02_V")).unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::BadRequest(_)));
    // responses are dropped, never answered
    let e = parse_datagram(&load("BIGCODE_V")).unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::Unparseable(_)));
}

#[test]
fn the_corpus_covers_all_fifty_files() {
    let dir = format!("{}/tests/fixtures/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let n = std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "dat")).count();
    assert_eq!(n, 50);
    assert_eq!(PARSES.len() + REJECTED.len(), 50);
}

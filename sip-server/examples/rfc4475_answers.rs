//! Prints what OnCall's user agent answers to each RFC 4475 torture message (the table in docs/conformance.md).
//! `cargo run -p oncall-sip --example rfc4475_answers`

use oncall_sip::transaction::{Peer, Transport};
use oncall_sip::ua::{UaConfig, UserAgent};
use std::time::Instant;

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rfc4475");
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "dat")).collect();
    names.sort();
    for path in names {
        let mut ua = UserAgent::new(UaConfig::on("127.0.0.1:5060".parse().unwrap()));
        let peer = Peer { addr: "192.0.2.1:5060".parse().unwrap(), transport: Transport::Udp, conn: None };
        ua.handle_datagram(&std::fs::read(&path).unwrap(), peer, Instant::now());
        let mut answers: Vec<String> = std::iter::from_fn(|| ua.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.data).lines().next().unwrap_or("").trim_start_matches("SIP/2.0 ").to_string())
            .collect();
        let mut call = false;
        while let Some(ev) = ua.poll_event() {
            call |= matches!(ev, oncall_sip::ua::UaEvent::IncomingCall { .. });
        }
        if call {
            answers.push("(call offered to the IVR)".into());
        }
        if answers.is_empty() {
            answers.push("(no answer: dropped)".into());
        }
        println!("{}\t{}", path.file_stem().unwrap().to_string_lossy(), answers.join("; "));
    }
}

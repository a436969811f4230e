//! One binary, nothing beside it: a copy of the `oncall` executable alone in an empty folder runs `serve --demo`
//! (prompts built in, SQLite and recordings created under `./data`) and a baresip caller hears the greeting.
//! Issue 16 item 6: before, the server stopped with "cannot read prompt directory sounds" outside the checkout.

mod support;

use std::fs;
use std::process::Command;
use std::time::Duration;
use support::*;

#[test]
fn the_binary_alone_in_an_empty_folder_serves_the_demo_and_answers_with_the_ivr() {
    let dir = TestDir::new("standalone");
    let empty = dir.subdir("empty");
    let binary = empty.join("oncall");
    fs::copy(env!("CARGO_BIN_EXE_oncall"), &binary).expect("copy the binary");
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 1, "the folder holds only the binary");

    let sip = format!("{LOOPBACK}:{}", free_port());
    let http: std::net::SocketAddr = format!("{LOOPBACK}:{}", free_port()).parse().unwrap();
    let mut rtp_min = free_ports(21);
    rtp_min += rtp_min % 2;
    let mut cmd = Command::new(&binary);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ONCALL_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(&empty)
        .args(["serve", "--demo"])
        .env("RUST_LOG", "info")
        .env("ONCALL_SIP_LISTEN_UDP", &sip)
        .env("ONCALL_SIP_LISTEN_TCP", &sip)
        .env("ONCALL_SIP_RTP_PORT_MIN", rtp_min.to_string())
        .env("ONCALL_SIP_RTP_PORT_MAX", (rtp_min + 19).to_string())
        .env("ONCALL_HTTP_LISTEN", http.to_string())
        .env("ONCALL_PAGING_ENABLED", "false");
    let mut server = Spawned::spawn(&mut cmd, &dir.path, "oncall");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while http_get(http, "/healthz").map(|(s, _)| s) != Some(200) {
        assert!(server.is_running(), "oncall exited in an empty folder:\n{}", tail(&server.stderr_text(), 40));
        assert!(std::time::Instant::now() < deadline, "not ready in 20 s:\n{}", tail(&server.stderr_text(), 40));
        std::thread::sleep(Duration::from_millis(50));
    }

    let work = dir.subdir("baresip");
    let microphone = silence_wav_secs(&work, 30);
    let mut phone = Baresip::start(&work.join("phone"), &microphone, Duration::from_secs(30));
    phone.command("dial", &format!("sip:100@{sip}"));
    let Some((established, _)) = phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)) else {
        panic!("the call was not answered:\n{}\n{}", tail(&phone.log(), 30), tail(&server.stderr_text(), 30));
    };
    sleep_until(established + Duration::from_secs(3));
    phone.command("hangup", "");
    let _ = phone.wait_event("CALL_CLOSED", Duration::from_secs(5));
    let heard = read_wav(&phone.heard_wav().expect("baresip dumped what it heard"));
    let (offset, corr) = greeting_match(&heard.samples, 1.5);
    eprintln!("[e2e] standalone: greeting heard at {offset:.2} s, correlation {corr:.3}");
    assert!(corr > 0.9, "the caller did not hear the built-in greeting (correlation {corr:.3})");
    assert!(empty.join("data").join("oncall.db").is_file(), "the database is created under ./data");
    server.kill();
}

//! WAV repair at start-up over whatever a crash left on disk: the fuzz bytes are written to a temporary file and
//! repaired; a repaired file must then be valid (repairing it again changes nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oncall_recordings::{repair_wav, RepairOutcome};
use std::path::PathBuf;
use std::sync::OnceLock;

/// One file per fuzzing process, rewritten for every input (under /dev/shm when there is one: no disk wear).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("oncall-fuzz-wav-{}.wav", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write scratch WAV");
    if let Ok(RepairOutcome::Repaired { .. }) = repair_wav(path) {
        let again = repair_wav(path).expect("a repaired file can be read again");
        assert_eq!(again, RepairOutcome::AlreadyValid, "repair is not idempotent");
    }
});

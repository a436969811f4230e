//! Property tests over the start-up WAV repair: whatever a crash (or a disk) left, `repair_wav` returns an error or an
//! outcome, never panics, and a file it repaired reads back as valid. The always-on counterpart of the `wav_repair`
//! cargo-fuzz target in `fuzz/`: random bytes, and real 16-bit PCM WAVs with a damaged header, truncated or extended.

use oncall_recordings::{repair_wav, RepairOutcome};
use proptest::prelude::*;
use std::path::Path;

/// A well-formed mono or stereo 16-bit PCM WAV at 8 kHz holding `audio`.
fn wav(channels: u16, audio: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(44 + audio.len());
    let block = channels * 2;
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + audio.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&(8000 * u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(audio.len() as u32).to_le_bytes());
    v.extend_from_slice(audio);
    v
}

fn check(path: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    std::fs::write(path, bytes).unwrap();
    if let Ok(RepairOutcome::Repaired { .. }) = repair_wav(path) {
        let again = repair_wav(path);
        prop_assert!(matches!(again, Ok(RepairOutcome::AlreadyValid)), "repair is not idempotent: {again:?}");
        let reader = hound::WavReader::open(path);
        prop_assert!(reader.is_ok(), "a repaired file does not open: {:?}", reader.err());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let dir = tempfile::tempdir().unwrap();
        check(&dir.path().join("x.wav"), &data)?;
    }

    /// A real WAV, then a crash's damage: header size fields zeroed or garbled, the file cut anywhere (even inside
    /// the header or mid-frame), or extra bytes after the data chunk.
    #[test]
    fn damaged_recordings_never_panic(stereo in any::<bool>(), audio_len in 0usize..600,
                                      edits in prop::collection::vec((0usize..48, any::<u8>()), 0..4),
                                      cut in prop::option::of(0usize..700), tail in prop::collection::vec(any::<u8>(), 0..12)) {
        let audio: Vec<u8> = (0..audio_len).map(|i| (i * 7) as u8).collect();
        let mut bytes = wav(if stereo { 2 } else { 1 }, &audio);
        for (at, b) in edits {
            if at < bytes.len() {
                bytes[at] = b;
            }
        }
        if let Some(c) = cut {
            bytes.truncate(c.min(bytes.len()));
        }
        bytes.extend_from_slice(&tail);
        let dir = tempfile::tempdir().unwrap();
        check(&dir.path().join("x.wav"), &bytes)?;
    }

    /// The crash case the recorder can actually produce: a valid header whose sizes lag behind the audio on disk
    /// (written at the last checkpoint). Repair must keep every whole frame.
    #[test]
    fn lagging_header_keeps_every_whole_frame(stereo in any::<bool>(), declared in 0usize..300, more in 0usize..300) {
        let block = if stereo { 4 } else { 2 };
        let declared = declared / block * block;
        let audio: Vec<u8> = (0..declared + more).map(|i| (i * 13) as u8).collect();
        let mut bytes = wav(if stereo { 2 } else { 1 }, &audio[..declared]);
        bytes.extend_from_slice(&audio[declared..]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        std::fs::write(&path, &bytes).unwrap();
        let out = repair_wav(&path);
        prop_assert!(out.is_ok(), "{out:?}");
        let reader = hound::WavReader::open(&path).unwrap();
        let frames = reader.duration() as usize;
        prop_assert_eq!(frames, (declared + more) / block);
    }
}

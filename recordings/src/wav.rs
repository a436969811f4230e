//! The call recorder: 16-bit PCM WAV files that are playable at every checkpoint, so a crash mid-call loses at most
//! the last second of a message rather than the whole file.
//!
//! A WAV header holds two sizes (RIFF and `data`) that a normal writer only fills in when it closes the file; a
//! process killed before that leaves a file players reject. [`WavRecorder::checkpoint`] rewrites both sizes for the
//! audio written so far and flushes it to the OS (hound 3.5's `WavWriter::flush` does exactly this: it updates the
//! header, flushes its buffer, and seeks back). Audio written after the last checkpoint may still reach the disk; the
//! header then undercounts it, and [`crate::repair`] recovers it at start-up.
//!
//! Samples go through a 64 KiB buffer, so `write` allocates nothing and makes a system call only every couple of
//! seconds of audio. Not here: choosing file names, storage quotas, encoding to compressed formats.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use crate::levels::LevelMeter;

/// Write buffer size: 1 s of 8 kHz stereo, so a checkpoint a second writes once; small because every call holds one.
const BUFFER_BYTES: usize = 16 * 1024;

#[derive(Debug, Error)]
pub enum RecorderError {
    #[error("cannot create recording {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("invalid recording format: {0}")]
    InvalidFormat(&'static str),
    #[error("{samples} samples are not a whole number of {channels}-channel frames")]
    PartialFrame { samples: usize, channels: u16 },
    #[error("writing recording: {0}")]
    Wav(#[from] hound::Error),
    #[error("syncing recording to disk: {0}")]
    Io(#[from] io::Error),
}

/// What a finished recording contains.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingInfo {
    pub path: PathBuf,
    pub channels: u16,
    pub sample_rate: u32,
    /// Length in milliseconds (rounded down).
    pub duration_ms: u64,
    /// Length in frames (one sample per channel).
    pub samples: u64,
    /// Largest sample magnitude, 0.0..=1.0 of full scale.
    pub peak: f32,
    /// RMS level over all channels, 0.0..=1.0 of full scale. A spoken message is typically 0.03-0.2; below ~0.003
    /// (−50 dBFS) the caller probably said nothing.
    pub rms: f32,
}

/// Records interleaved 16-bit PCM to a WAV file.
pub struct WavRecorder {
    writer: hound::WavWriter<BufWriter<File>>,
    /// A second handle on the same open file, for `sync_all` (hound does not give its file back).
    sync_handle: File,
    path: PathBuf,
    channels: u16,
    sample_rate: u32,
    frames: u64,
    /// `frames` at the last checkpoint.
    checkpointed: u64,
    meter: LevelMeter,
}

impl std::fmt::Debug for WavRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder")
            .field("path", &self.path)
            .field("channels", &self.channels)
            .field("sample_rate", &self.sample_rate)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl WavRecorder {
    /// Creates the file and writes a header. Refuses to overwrite an existing file: a recording is somebody's
    /// message, and a clash of names should fail loudly rather than lose it.
    pub fn create(path: impl AsRef<Path>, channels: u16, sample_rate: u32) -> Result<WavRecorder, RecorderError> {
        let path = path.as_ref().to_path_buf();
        if channels == 0 {
            return Err(RecorderError::InvalidFormat("channels must be at least 1"));
        }
        if sample_rate == 0 {
            return Err(RecorderError::InvalidFormat("sample rate must be positive"));
        }
        let create_err = |source| RecorderError::Create { path: path.clone(), source };
        // 0640, never readable by other local users (issue #15).
        let file = crate::private_files::create_new(&path).map_err(create_err)?;
        let sync_handle = file.try_clone().map_err(create_err)?;
        let spec =
            hound::WavSpec { channels, sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let writer = hound::WavWriter::new(BufWriter::with_capacity(BUFFER_BYTES, file), spec)?;
        Ok(WavRecorder { writer, sync_handle, path, channels, sample_rate, frames: 0, checkpointed: 0, meter: LevelMeter::new() })
    }

    /// Appends interleaved samples (whole frames only).
    pub fn write(&mut self, interleaved: &[i16]) -> Result<(), RecorderError> {
        if interleaved.len() % usize::from(self.channels) != 0 {
            return Err(RecorderError::PartialFrame { samples: interleaved.len(), channels: self.channels });
        }
        // hound's 16-bit writer fills a recycled buffer and hands it over in one write: no per-sample
        // dispatch and no allocation once the first frame has sized the buffer.
        let mut w = self.writer.get_i16_writer(interleaved.len() as u32);
        for &sample in interleaved {
            w.write_sample(sample);
        }
        w.flush()?;
        self.meter.update(interleaved);
        self.frames += (interleaved.len() / usize::from(self.channels)) as u64;
        Ok(())
    }

    /// Makes the file on disk a complete, playable WAV of everything written so far (header sizes updated, buffer
    /// flushed to the OS). Call about once a second; it costs two small seeks and writes. It does not `fsync`: that
    /// protects against power loss rather than a crash, and [`WavRecorder::finish`] does it once at the end.
    pub fn checkpoint(&mut self) -> Result<(), RecorderError> {
        self.writer.flush()?;
        self.checkpointed = self.frames;
        Ok(())
    }

    /// Checkpoints when a second of audio or more was written since the last checkpoint: a recorder fed
    /// frame by frame calls this after each write and loses at most a second to a crash.
    pub fn checkpoint_if_due(&mut self) -> Result<(), RecorderError> {
        if self.frames - self.checkpointed >= u64::from(self.sample_rate) {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Milliseconds recorded so far.
    pub fn duration_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(self.sample_rate)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the final header, syncs the file to disk, and reports what was recorded.
    pub fn finish(self) -> Result<RecordingInfo, RecorderError> {
        let info = RecordingInfo {
            path: self.path,
            channels: self.channels,
            sample_rate: self.sample_rate,
            duration_ms: self.frames * 1000 / u64::from(self.sample_rate),
            samples: self.frames,
            peak: self.meter.peak(),
            rms: self.meter.rms(),
        };
        self.writer.finalize()?;
        self.sync_handle.sync_all()?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;

    fn read(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut reader = hound::WavReader::open(path).expect("a valid WAV");
        let samples = reader.samples::<i16>().map(|s| s.expect("sample")).collect();
        (reader.spec(), samples)
    }

    fn ramp(n: usize) -> Vec<i16> {
        (0..n).map(|i| (i as i32 * 7 % 20000 - 10000) as i16).collect()
    }

    #[test]
    fn records_and_reports_levels() {
        let dir = TestDir::new("wav-records");
        let path = dir.path().join("a.wav");
        let mut rec = WavRecorder::create(&path, 1, 8000).unwrap();
        let audio: Vec<i16> = (0..16000).map(|n| (16384.0 * (n as f64 * 0.3).sin()) as i16).collect();
        for frame in audio.chunks(160) {
            rec.write(frame).unwrap();
        }
        assert_eq!(rec.duration_ms(), 2000);
        let info = rec.finish().unwrap();
        assert_eq!(info.samples, 16000);
        assert_eq!(info.duration_ms, 2000);
        assert!((info.peak - 0.5).abs() < 0.001, "{}", info.peak);
        assert!((info.rms - 0.3536).abs() < 0.002, "{}", info.rms);
        let (spec, samples) = read(&path);
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 8000, 16));
        assert_eq!(samples, audio);
    }

    #[test]
    fn stereo_frames() {
        let dir = TestDir::new("wav-stereo");
        let path = dir.path().join("s.wav");
        let mut rec = WavRecorder::create(&path, 2, 16000).unwrap();
        rec.write(&ramp(320)).unwrap();
        assert!(matches!(rec.write(&[1, 2, 3]), Err(RecorderError::PartialFrame { samples: 3, channels: 2 })));
        let info = rec.finish().unwrap();
        assert_eq!((info.samples, info.duration_ms), (160, 10));
        assert_eq!(read(&path).1, ramp(320));
    }

    #[test]
    fn checkpoint_leaves_a_playable_file_if_the_process_dies() {
        let dir = TestDir::new("wav-checkpoint");
        let path = dir.path().join("crash.wav");
        let mut rec = WavRecorder::create(&path, 1, 8000).unwrap();
        let audio = ramp(8000);
        rec.write(&audio).unwrap();
        rec.checkpoint().unwrap();
        // The file is readable while still being recorded.
        assert_eq!(read(&path).1, audio);
        rec.write(&ramp(40000)).unwrap();
        // Simulate the process dying: no drop, no finalize. Part of the new audio reached the file (the buffer
        // overflowed) but the header still describes the checkpoint.
        std::mem::forget(rec);
        assert_eq!(read(&path).1, audio);
        // Repair recovers what reached the disk after the checkpoint, in whole frames.
        let outcome = crate::repair::repair_wav(&path).unwrap();
        let crate::repair::RepairOutcome::Repaired { old_data_len, new_data_len } = outcome else {
            panic!("expected a repair, got {outcome:?}");
        };
        assert_eq!(old_data_len, 16000);
        assert!(new_data_len > old_data_len);
        let samples = read(&path).1;
        assert_eq!(samples.len() as u32, new_data_len / 2);
        assert_eq!(&samples[..8000], &audio[..]);
        assert_eq!(&samples[8000..], &ramp(40000)[..samples.len() - 8000]);
    }

    #[test]
    fn checkpoint_if_due_checkpoints_each_second_of_audio() {
        let dir = TestDir::new("wav-checkpoint-due");
        let path = dir.path().join("due.wav");
        let mut rec = WavRecorder::create(&path, 2, 8000).unwrap();
        // 49 writes of 160 stereo frames: 7840 frames, under a second.
        for frame in ramp(2 * 7840).chunks(320) {
            rec.write(frame).unwrap();
            rec.checkpoint_if_due().unwrap();
        }
        assert_eq!(rec.checkpointed, 0, "0.98 s: not due yet");
        rec.write(&ramp(320)).unwrap();
        rec.checkpoint_if_due().unwrap();
        assert_eq!(rec.checkpointed, 8000, "a second of stereo frames");
        std::mem::forget(rec);
        assert_eq!(read(&path).1.len(), 2 * 8000, "the header on disk describes the checkpoint");
    }

    #[test]
    fn refuses_to_overwrite_and_rejects_bad_formats() {
        let dir = TestDir::new("wav-overwrite");
        let path = dir.path().join("x.wav");
        WavRecorder::create(&path, 1, 8000).unwrap().finish().unwrap();
        assert!(matches!(WavRecorder::create(&path, 1, 8000), Err(RecorderError::Create { .. })));
        let other = dir.path().join("y.wav");
        assert!(matches!(WavRecorder::create(&other, 0, 8000), Err(RecorderError::InvalidFormat(_))));
        assert!(matches!(WavRecorder::create(&other, 1, 0), Err(RecorderError::InvalidFormat(_))));
    }

    #[test]
    fn empty_recording_is_valid() {
        let dir = TestDir::new("wav-empty");
        let path = dir.path().join("e.wav");
        let info = WavRecorder::create(&path, 1, 8000).unwrap().finish().unwrap();
        assert_eq!((info.samples, info.peak, info.rms), (0, 0.0, 0.0));
        assert!(read(&path).1.is_empty());
    }

    /// Issue #15: recordings were created 0644, readable by every local account.
    #[cfg(unix)]
    #[test]
    fn recordings_are_not_readable_by_other_users() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TestDir::new("wav-mode");
        let path = dir.path().join("m.wav");
        WavRecorder::create(&path, 1, 8000).unwrap().finish().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o007, 0, "mode {mode:o}");
    }
}

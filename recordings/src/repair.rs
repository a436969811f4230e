//! Repair of 16-bit PCM WAV files whose header sizes are wrong because the writer died: run over the recordings
//! directory at start-up, before anything reads the files.
//!
//! A WAV file (RIFF, as hound writes it) is `RIFF <size> WAVE`, a `fmt ` chunk, and a `data` chunk whose size field
//! counts the audio bytes. A recorder killed between checkpoints leaves both size fields too small (or zero, or
//! 0xFFFFFFFF for streaming writers) while more audio follows on disk. [`repair_wav`] makes the `data` chunk run to
//! the end of the file, drops a trailing partial frame, and rewrites both sizes. A file whose sizes already agree
//! with its length is left byte-for-byte untouched, including files with extra chunks (`LIST`) after the audio.
//!
//! Not handled: other sample formats (8/24/32-bit, float, compressed), a damaged `fmt ` chunk, RF64 files over
//! 4 GiB, and files still being written (only run this when no recorder is active).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RepairError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("not a WAV file: {0}")]
    NotWav(&'static str),
    #[error("unsupported WAV format: {0}")]
    Unsupported(String),
    #[error("audio data of {0} bytes does not fit a WAV header")]
    TooLarge(u64),
}

/// What [`repair_wav`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The header already described the file; nothing was written.
    AlreadyValid,
    /// The header was rewritten. Lengths are of the `data` chunk, in bytes.
    Repaired { old_data_len: u32, new_data_len: u32 },
}

/// Where things are in a WAV file, as far as repair cares.
struct Layout {
    riff_size: u32,
    /// Bytes per frame (channels × 2).
    block_align: u64,
    /// Offset of the first audio byte; the `data` size field is the 4 bytes before it.
    data_start: u64,
    /// The `data` chunk size the header claims.
    declared_data_len: u32,
}

/// Fixes the header sizes of the 16-bit PCM WAV at `path` if they do not match the file.
pub fn repair_wav(path: impl AsRef<Path>) -> Result<RepairOutcome, RepairError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path.as_ref())?;
    let file_len = file.metadata()?.len();
    let layout = read_layout(&mut file, file_len)?;

    let available = file_len - layout.data_start;
    let declared = u64::from(layout.declared_data_len);
    // The declared data is whole frames, fits, and whatever follows it is a well-formed sequence of chunks ending
    // exactly at EOF.
    let declared_is_consistent = declared % layout.block_align == 0
        && declared <= available
        && chunks_end_exactly_at(&mut file, layout.data_start + declared + (declared & 1), file_len)?;

    if declared_is_consistent && u64::from(layout.riff_size) == file_len - 8 {
        return Ok(RepairOutcome::AlreadyValid);
    }

    let (new_data_len, new_file_len) = if declared_is_consistent && declared > 0 {
        // Only the RIFF size is off (some writers miscount pad bytes): keep the data and any trailing chunks.
        (declared, file_len)
    } else {
        // The audio runs to the end of the file; keep whole frames only.
        let whole = available - available % layout.block_align;
        (whole, layout.data_start + whole)
    };
    let new_riff_size = new_file_len - 8;
    let (Ok(new_data_len_u32), Ok(new_riff_size_u32)) = (u32::try_from(new_data_len), u32::try_from(new_riff_size))
    else {
        return Err(RepairError::TooLarge(new_data_len));
    };

    if new_file_len < file_len {
        file.set_len(new_file_len)?;
    }
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&new_riff_size_u32.to_le_bytes())?;
    file.seek(SeekFrom::Start(layout.data_start - 4))?;
    file.write_all(&new_data_len_u32.to_le_bytes())?;
    file.sync_all()?;

    Ok(RepairOutcome::Repaired { old_data_len: layout.declared_data_len, new_data_len: new_data_len_u32 })
}

/// Repairs every `*.wav` file under `dir`, recursively (symlinks are not followed). Returns one entry per file, in
/// path order; a directory that cannot be read appears with its error.
pub fn repair_dir(dir: impl AsRef<Path>) -> Vec<(PathBuf, Result<RepairOutcome, RepairError>)> {
    let mut results = Vec::new();
    walk(dir.as_ref(), &mut results);
    results
}

fn walk(dir: &Path, results: &mut Vec<(PathBuf, Result<RepairOutcome, RepairError>)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            results.push((dir.to_path_buf(), Err(e.into())));
            return;
        }
    };
    let mut paths: Vec<(PathBuf, std::fs::FileType)> = Vec::new();
    for entry in entries {
        match entry.and_then(|e| Ok((e.path(), e.file_type()?))) {
            Ok(found) => paths.push(found),
            Err(e) => results.push((dir.to_path_buf(), Err(e.into()))),
        }
    }
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, file_type) in paths {
        if file_type.is_dir() {
            walk(&path, results);
        } else if file_type.is_file() && path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("wav")) {
            let outcome = repair_wav(&path);
            results.push((path, outcome));
        }
    }
}

fn read_u32_le(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn read_u16_le(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[0], bytes[1]])
}

/// Walks the chunks up to `data`, checking the format on the way.
fn read_layout(file: &mut File, file_len: u64) -> Result<Layout, RepairError> {
    let mut riff = [0u8; 12];
    file.seek(SeekFrom::Start(0))?;
    if file_len < 12 {
        return Err(RepairError::NotWav("shorter than a RIFF header"));
    }
    file.read_exact(&mut riff)?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(RepairError::NotWav("no RIFF/WAVE signature"));
    }
    let riff_size = read_u32_le(&riff[4..8]);

    let mut pos = 12u64;
    let mut block_align = None;
    loop {
        if pos + 8 > file_len {
            return Err(RepairError::NotWav("no data chunk"));
        }
        let mut header = [0u8; 8];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut header)?;
        let (id, size) = (&header[0..4], read_u32_le(&header[4..8]));
        match id {
            b"fmt " => {
                if size < 16 || pos + 8 + 16 > file_len {
                    return Err(RepairError::NotWav("fmt chunk too short"));
                }
                let mut fmt = [0u8; 16];
                file.read_exact(&mut fmt)?;
                let (format_tag, channels, bits) =
                    (read_u16_le(&fmt[0..2]), read_u16_le(&fmt[2..4]), read_u16_le(&fmt[14..16]));
                // 1 = PCM; 0xFFFE = WAVE_FORMAT_EXTENSIBLE, which hound uses for more than two channels.
                if !(format_tag == 1 || format_tag == 0xfffe) || bits != 16 || channels == 0 {
                    return Err(RepairError::Unsupported(format!(
                        "format tag {format_tag:#06x}, {channels} channels, {bits} bits (need 16-bit PCM)"
                    )));
                }
                // A header whose block size disagrees with its channels is not one a recorder wrote; "repairing"
                // its sizes would leave a file no player opens (found by `tests/wav_repair_props.rs`).
                let (rate, byte_rate, declared_align) = (read_u32_le(&fmt[4..8]), read_u32_le(&fmt[8..12]), read_u16_le(&fmt[12..14]));
                if u64::from(declared_align) != u64::from(channels) * 2
                    || u64::from(byte_rate) != u64::from(rate) * u64::from(declared_align)
                {
                    return Err(RepairError::Unsupported(format!(
                        "inconsistent fmt chunk: block align {declared_align} and {byte_rate} bytes/s for {channels} \
                         channels of 16 bits at {rate} Hz"
                    )));
                }
                block_align = Some(u64::from(channels) * 2);
            }
            b"data" => {
                let block_align = block_align.ok_or(RepairError::NotWav("data chunk before fmt chunk"))?;
                return Ok(Layout { riff_size, block_align, data_start: pos + 8, declared_data_len: size });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos += 8 + u64::from(size) + u64::from(size & 1);
    }
}

/// Whether the bytes from `pos` to `end` are whole chunks (printable four-character id, size that fits). Audio
/// bytes written past a stale header almost never pass this (silence starts with a zero id, speech with binary).
fn chunks_end_exactly_at(file: &mut File, mut pos: u64, end: u64) -> io::Result<bool> {
    // A real file has a handful of trailing chunks at most; give up on anything longer as not a chunk list.
    for _ in 0..64 {
        if pos == end {
            return Ok(true);
        }
        if pos > end || end - pos < 8 {
            return Ok(false);
        }
        let mut header = [0u8; 8];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut header)?;
        if !header[0..4].iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Ok(false);
        }
        let size = u64::from(read_u32_le(&header[4..8]));
        pos += 8 + size + (size & 1);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;

    fn samples(n: usize) -> Vec<i16> {
        (0..n).map(|i| ((i as i32 * 131) % 30000 - 15000) as i16).collect()
    }

    fn write_wav(path: &Path, channels: u16, audio: &[i16]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in audio {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }

    fn read(path: &Path) -> Vec<i16> {
        hound::WavReader::open(path).unwrap().samples::<i16>().map(|s| s.unwrap()).collect()
    }

    fn set_u32(path: &Path, offset: u64, value: u32) {
        let mut f = OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&value.to_le_bytes()).unwrap();
    }

    fn append(path: &Path, bytes: &[u8]) {
        OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
    }

    fn as_bytes(audio: &[i16]) -> Vec<u8> {
        audio.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    /// hound writes a 44-byte header for mono/stereo 16-bit: RIFF size at 4, data size at 40.
    const DATA_SIZE_AT: u64 = 40;

    #[test]
    fn good_files_are_untouched() {
        let dir = TestDir::new("repair-good");
        let path = dir.path().join("good.wav");
        write_wav(&path, 1, &samples(1000));
        let before = std::fs::read(&path).unwrap();
        assert_eq!(repair_wav(&path).unwrap(), RepairOutcome::AlreadyValid);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn trailing_chunks_after_data_are_not_audio() {
        let dir = TestDir::new("repair-list");
        let path = dir.path().join("list.wav");
        write_wav(&path, 1, &samples(100));
        // A LIST chunk of 5 bytes plus its pad byte, and the RIFF size updated to match.
        append(&path, b"LIST\x05\x00\x00\x00INFOx\x00");
        let len = std::fs::metadata(&path).unwrap().len() as u32;
        set_u32(&path, 4, len - 8);
        assert_eq!(repair_wav(&path).unwrap(), RepairOutcome::AlreadyValid);
        assert_eq!(read(&path), samples(100));
    }

    #[test]
    fn zero_sizes_are_repaired() {
        let dir = TestDir::new("repair-zero");
        let path = dir.path().join("zero.wav");
        write_wav(&path, 1, &samples(4000));
        set_u32(&path, 4, 0);
        set_u32(&path, DATA_SIZE_AT, 0);
        assert_eq!(repair_wav(&path).unwrap(), RepairOutcome::Repaired { old_data_len: 0, new_data_len: 8000 });
        assert_eq!(read(&path), samples(4000));
        assert_eq!(repair_wav(&path).unwrap(), RepairOutcome::AlreadyValid);
    }

    #[test]
    fn audio_after_a_stale_header_is_recovered_and_a_partial_frame_dropped() {
        let dir = TestDir::new("repair-stale");
        let path = dir.path().join("stale.wav");
        // A stereo file checkpointed after 100 frames, then 50 more frames and half a frame written before the crash.
        let first = samples(200);
        write_wav(&path, 2, &first);
        let more = samples(101);
        let mut bytes = as_bytes(&more);
        bytes.push(0x7f); // and an odd byte
        append(&path, &bytes);
        assert_eq!(repair_wav(&path).unwrap(), RepairOutcome::Repaired { old_data_len: 400, new_data_len: 600 });
        let mut expected = first;
        expected.extend_from_slice(&more[..100]);
        assert_eq!(read(&path), expected);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 44 + 600);
    }

    #[test]
    fn oversized_header_is_shrunk_to_the_file() {
        let dir = TestDir::new("repair-over");
        let path = dir.path().join("over.wav");
        write_wav(&path, 1, &samples(300));
        // Streaming writers put 0xFFFFFFFF in both sizes.
        set_u32(&path, 4, u32::MAX);
        set_u32(&path, DATA_SIZE_AT, u32::MAX);
        assert_eq!(repair_wav(&path).unwrap(), RepairOutcome::Repaired { old_data_len: u32::MAX, new_data_len: 600 });
        assert_eq!(read(&path), samples(300));
    }

    #[test]
    fn wrong_riff_size_alone_is_fixed_without_touching_data() {
        let dir = TestDir::new("repair-riff");
        let path = dir.path().join("riff.wav");
        write_wav(&path, 1, &samples(10));
        set_u32(&path, 4, 12345);
        assert_eq!(repair_wav(&path).unwrap(), RepairOutcome::Repaired { old_data_len: 20, new_data_len: 20 });
        assert_eq!(read(&path), samples(10));
    }

    #[test]
    fn non_wav_and_unsupported_files_are_errors() {
        let dir = TestDir::new("repair-bad");
        let text = dir.path().join("notes.wav");
        std::fs::write(&text, b"this is not audio, just text in a file").unwrap();
        assert!(matches!(repair_wav(&text), Err(RepairError::NotWav(_))));
        let short = dir.path().join("short.wav");
        std::fs::write(&short, b"RIFF").unwrap();
        assert!(matches!(repair_wav(&short), Err(RepairError::NotWav(_))));
        let float = dir.path().join("float.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&float, spec).unwrap();
        w.write_sample(0.5f32).unwrap();
        w.finalize().unwrap();
        assert!(matches!(repair_wav(&float), Err(RepairError::Unsupported(_))));
        assert!(matches!(repair_wav(dir.path().join("missing.wav")), Err(RepairError::Io(_))));
    }

    #[test]
    fn repair_dir_walks_subdirectories() {
        let dir = TestDir::new("repair-dir");
        let sub = dir.path().join("2024/05");
        std::fs::create_dir_all(&sub).unwrap();
        write_wav(&dir.path().join("a.wav"), 1, &samples(10));
        write_wav(&sub.join("b.WAV"), 1, &samples(10));
        set_u32(&sub.join("b.WAV"), DATA_SIZE_AT, 0);
        std::fs::write(sub.join("c.wav"), b"garbage").unwrap();
        std::fs::write(sub.join("readme.txt"), b"not a wav").unwrap();
        let results = repair_dir(dir.path());
        let summary: Vec<(String, String)> = results
            .iter()
            .map(|(p, r)| {
                let name = p.strip_prefix(dir.path()).unwrap().display().to_string();
                let outcome = match r {
                    Ok(RepairOutcome::AlreadyValid) => "valid".to_string(),
                    Ok(RepairOutcome::Repaired { new_data_len, .. }) => format!("repaired {new_data_len}"),
                    Err(_) => "error".to_string(),
                };
                (name, outcome)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("2024/05/b.WAV".to_string(), "repaired 20".to_string()),
                ("2024/05/c.wav".to_string(), "error".to_string()),
                ("a.wav".to_string(), "valid".to_string()),
            ]
        );
        assert_eq!(read(&sub.join("b.WAV")), samples(10));
    }
}

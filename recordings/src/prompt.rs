//! Prompt loading: any audio file symphonia can decode (WAV, MP3, FLAC, Ogg Vorbis: the formats symphonia is built with, issue 22 item 4) turned
//! into 8 kHz mono 16-bit samples, the format the RTP path plays without further conversion.
//!
//! [`decode_to_8k_mono`] decodes, mixes all channels down to mono by averaging, and resamples with
//! [`crate::resample`]. [`PromptLibrary`] loads a directory of such files once at start-up and hands out
//! `Arc<[i16]>` clips by name (the file stem: `menu.wav` is `"menu"`), so every call can play them without copying.
//! [`PromptLibrary::embedded`] holds the product's own prompts, built into the binary from `sounds/` (see
//! `build.rs`); a configured directory only overrides or adds to them ([`PromptLibrary::overlay`]).
//!
//! Not here: text-to-speech, streaming playback, and encoding to G.711 (the media path does that per frame).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use thiserror::Error;

use crate::resample::resample;

/// The rate prompts are converted to: G.711's.
pub const PROMPT_SAMPLE_RATE: u32 = 8000;

/// File extensions [`PromptLibrary::load_dir`] treats as audio (compared case-insensitively).
pub const AUDIO_EXTENSIONS: &[&str] =
    &["wav", "wave", "mp3", "flac", "ogg", "oga"];

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("cannot decode audio: {0}")]
    Codec(#[from] SymphoniaError),
    #[error("no audio track")]
    NoAudioTrack,
    #[error("audio track has no sample rate")]
    NoSampleRate,
    #[error("longer than {max_seconds} s")]
    TooLong { max_seconds: u32 },
    #[error("sample rate {rate} Hz is above {max} Hz")]
    SampleRateTooHigh { rate: u32, max: u32 },
    #[error("more than {max} packets")]
    TooManyPackets { max: u64 },
}

/// Bounds on one decode (issue #15: a 0.9 MB FLAC of silence took 78 s of CPU and 1.25 GB before
/// the greeting's length was checked). Checked while decoding, packet by packet, so work and
/// memory stop growing as soon as a bound is passed: at most `max_seconds` of audio at no more
/// than `max_sample_rate` is ever held, and at most `max_packets` packets (of any track,
/// decodable or not) are read. A declared length above the bound is refused before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_seconds: u32,
    pub max_sample_rate: u32,
    pub max_packets: u64,
}

impl DecodeLimits {
    /// For the operator's prompt files: an hour at up to 384 kHz.
    pub const PROMPTS: DecodeLimits = DecodeLimits { max_seconds: 3600, max_sample_rate: 384_000, max_packets: 10_000_000 };

    /// For files people upload: `max_seconds` at up to 96 kHz (about 37 MB of samples for two
    /// minutes), and packets no shorter than 1 ms on average.
    pub fn upload(max_seconds: u32) -> DecodeLimits {
        DecodeLimits { max_seconds, max_sample_rate: 96_000, max_packets: u64::from(max_seconds) * 1000 + 1000 }
    }
}

#[derive(Debug, Error)]
pub enum PromptError {
    #[error("cannot read prompt directory {path}: {source}")]
    ReadDir { path: PathBuf, source: io::Error },
    #[error("cannot load prompt {path}: {source}")]
    Decode { path: PathBuf, source: DecodeError },
    #[error("prompt {name:?} exists twice: {first} and {second}")]
    Duplicate { name: String, first: PathBuf, second: PathBuf },
}

/// Decodes the audio file at `path` to 8 kHz mono. The extension is used as a hint; the content decides.
pub fn decode_to_8k_mono(path: impl AsRef<Path>) -> Result<Vec<i16>, DecodeError> {
    let path = path.as_ref();
    let file = File::open(path)?;
    decode(Box::new(file), path.extension().and_then(|e| e.to_str()), DecodeLimits::PROMPTS)
}

/// Decodes an in-memory audio file (e.g. an upload) to 8 kHz mono. `extension_hint` is the file extension if known
/// (`Some("mp3")`); the content decides.
pub fn decode_bytes_to_8k_mono(bytes: &[u8], extension_hint: Option<&str>) -> Result<Vec<i16>, DecodeError> {
    decode_bytes_to_8k_mono_within(bytes, extension_hint, DecodeLimits::PROMPTS)
}

/// [`decode_bytes_to_8k_mono`] within `limits`: what uploads go through.
pub fn decode_bytes_to_8k_mono_within(bytes: &[u8], extension_hint: Option<&str>, limits: DecodeLimits) -> Result<Vec<i16>, DecodeError> {
    decode(Box::new(Cursor::new(bytes.to_vec())), extension_hint, limits)
}

fn decode(source: Box<dyn MediaSource>, extension_hint: Option<&str>, limits: DecodeLimits) -> Result<Vec<i16>, DecodeError> {
    let stream = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = extension_hint {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe().format(
        &hint,
        stream,
        // Gapless: an MP3 encoder's delay and padding (LAME header) are trimmed, not played as ~40 ms of silence.
        &FormatOptions { enable_gapless: true, ..Default::default() },
        &MetadataOptions::default(),
    )?;
    let mut format = probed.format;
    let track =
        format.tracks().iter().find(|t| t.codec_params.codec != CODEC_TYPE_NULL).ok_or(DecodeError::NoAudioTrack)?;
    let track_id = track.id;
    let mut sample_rate = track.codec_params.sample_rate;
    let too_long = || DecodeError::TooLong { max_seconds: limits.max_seconds };
    if let Some(rate) = sample_rate {
        if rate > limits.max_sample_rate {
            return Err(DecodeError::SampleRateTooHigh { rate, max: limits.max_sample_rate });
        }
        // The header's own length (a liar is caught below, while decoding).
        if track.codec_params.n_frames.is_some_and(|n| n > u64::from(limits.max_seconds) * u64::from(rate)) {
            return Err(too_long());
        }
    }
    let mut decoder = symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default())?;

    let mut mono: Vec<f32> = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    let mut packets: u64 = 0;
    loop {
        packets += 1;
        if packets > limits.max_packets {
            return Err(DecodeError::TooManyPackets { max: limits.max_packets });
        }
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            // Symphonia reports the end of the stream as an unexpected EOF.
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            // A new chained stream (e.g. concatenated Ogg files): a prompt is the first one.
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(e.into()),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A corrupt packet is skipped, as players do; the prompt loses a few milliseconds.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let spec = *decoded.spec();
        let rate = *sample_rate.get_or_insert(spec.rate);
        if rate > limits.max_sample_rate {
            return Err(DecodeError::SampleRateTooHigh { rate, max: limits.max_sample_rate });
        }
        // Checked before this packet's samples are kept, so memory never exceeds the bound.
        if (mono.len() + decoded.frames()) as u64 > u64::from(limits.max_seconds) * u64::from(rate) {
            return Err(too_long());
        }
        let channels = spec.channels.count().max(1);
        let needed = decoded.capacity() as u64;
        let buf = match &mut buffer {
            Some(buf) if buf.capacity() as u64 >= needed * channels as u64 => buf,
            _ => buffer.insert(SampleBuffer::new(needed, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let scale = 1.0 / channels as f32;
        mono.extend(buf.samples().chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() * scale));
    }

    let sample_rate = sample_rate.ok_or(DecodeError::NoSampleRate)?;
    let resampled = resample(&mono, sample_rate, PROMPT_SAMPLE_RATE);
    Ok(resampled.iter().map(|&v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16).collect())
}

/// Prompts by name, decoded once and shared between calls.
#[derive(Debug, Clone, Default)]
pub struct PromptLibrary {
    prompts: HashMap<String, Arc<[i16]>>,
}

impl PromptLibrary {
    pub fn new() -> PromptLibrary {
        PromptLibrary::default()
    }

    /// Loads every audio file (by extension, see [`AUDIO_EXTENSIONS`]) directly in `dir`, keyed by file stem. Other
    /// files (README, scripts) are ignored. Any file that fails to decode fails the whole load, naming the file: a
    /// missing prompt would otherwise surface as silence in the middle of a call.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<PromptLibrary, PromptError> {
        let dir = dir.as_ref();
        let read_dir_err = |source| PromptError::ReadDir { path: dir.to_path_buf(), source };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir_err)? {
            let path = entry.map_err(read_dir_err)?.path();
            let is_audio = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)));
            if is_audio && path.is_file() {
                paths.push(path);
            }
        }
        // Sorted so that a duplicate is always reported the same way.
        paths.sort();

        let mut library = PromptLibrary::new();
        let mut sources: HashMap<String, PathBuf> = HashMap::new();
        for path in paths {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            if let Some(first) = sources.get(&name) {
                return Err(PromptError::Duplicate { name, first: first.clone(), second: path });
            }
            let samples =
                decode_to_8k_mono(&path).map_err(|source| PromptError::Decode { path: path.clone(), source })?;
            library.insert(name.clone(), samples);
            sources.insert(name, path);
        }
        Ok(library)
    }

    /// The prompts built into the binary (`sounds/*.wav` when it was compiled), decoded.
    pub fn embedded() -> Result<PromptLibrary, PromptError> {
        // Decoded once per process: the server's prompt loader and the web admin's menu check both start
        // from it, and a copy only clones the `Arc`s of the samples.
        static DECODED: std::sync::OnceLock<PromptLibrary> = std::sync::OnceLock::new();
        if let Some(library) = DECODED.get() {
            return Ok(library.clone());
        }
        let mut library = PromptLibrary::new();
        for (name, wav) in EMBEDDED_PROMPTS {
            let samples = decode_bytes_to_8k_mono(wav, Some("wav"))
                .map_err(|source| PromptError::Decode { path: PathBuf::from(format!("(built in) {name}.wav")), source })?;
            library.insert(*name, samples);
        }
        Ok(DECODED.get_or_init(|| library).clone())
    }

    /// Puts every prompt of `other` in place of (or beside) this library's prompt of the same name; returns how
    /// many it replaced.
    pub fn overlay(&mut self, other: PromptLibrary) -> usize {
        let mut replaced = 0;
        for (name, samples) in other.prompts {
            replaced += usize::from(self.prompts.insert(name, samples).is_some());
        }
        replaced
    }

    /// The prompt called `name` (8 kHz mono samples).
    pub fn get(&self, name: &str) -> Option<Arc<[i16]>> {
        self.prompts.get(name).cloned()
    }

    /// Adds or replaces a prompt (for generated audio and tests).
    pub fn insert(&mut self, name: impl Into<String>, samples: impl Into<Arc<[i16]>>) {
        self.prompts.insert(name.into(), samples.into());
    }

    /// Names of all prompts, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.prompts.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

// `EMBEDDED_PROMPTS`: (name, WAV bytes) for every file of `sounds/`, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/embedded_prompts.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;

    #[test]
    fn the_built_in_prompts_decode_and_a_directory_overrides_them() {
        let mut library = PromptLibrary::embedded().expect("built-in prompts decode");
        assert_eq!(library.len(), EMBEDDED_PROMPTS.len());
        for name in ["greeting", "menu", "goodbye", "record_after_tone", "new_request", "digit_0"] {
            assert!(library.get(name).is_some_and(|p| !p.is_empty()), "built-in prompt {name}");
        }
        let mut custom = PromptLibrary::new();
        custom.insert("greeting", vec![1i16; 80]);
        custom.insert("extra", vec![2i16; 80]);
        assert_eq!(library.overlay(custom), 1, "only the greeting existed before");
        assert_eq!(&*library.get("greeting").unwrap(), &[1i16; 80][..]);
        assert!(library.get("extra").is_some());
    }
    use std::process::Command;

    fn sox_available() -> bool {
        Command::new("sox").arg("--version").output().is_ok_and(|o| o.status.success())
    }

    /// Runs sox to synthesise a 1 kHz tone into `path`; false if sox cannot write that format here.
    fn sox_tone(path: &Path, rate: u32, channels: u32, seconds: f32) -> bool {
        Command::new("sox")
            .args(["-D", "-n", "-r", &rate.to_string(), "-c", &channels.to_string(), "-b", "16"])
            .arg(path)
            .args(["synth", &seconds.to_string(), "sine", "1000", "vol", "0.5"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Estimates the frequency of a tone from its zero crossings.
    fn frequency(samples: &[i16]) -> f64 {
        let crossings = samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        crossings as f64 / 2.0 / (samples.len() as f64 / f64::from(PROMPT_SAMPLE_RATE))
    }

    /// `lossy` (MP3): an MP3 without a LAME header carries its encoder delay and padding as audio (sox's: up
    /// to two 1,152-sample frames, 420 samples at 8 kHz), and the codec takes a few per cent off the level.
    fn check_tone(samples: &[i16], seconds: f64, lossy: bool, what: &str) {
        let expected = seconds * f64::from(PROMPT_SAMPLE_RATE);
        let slack = if lossy { 420.0 } else { 0.0 };
        let len = samples.len() as f64;
        assert!(len >= expected * 0.99 && len <= expected * 1.01 + slack, "{what}: {len} samples, expected {expected}");
        // Skip the ends (filter ramp) when measuring.
        let middle = &samples[samples.len() / 10..samples.len() * 9 / 10];
        let hz = frequency(middle);
        assert!((hz - 1000.0).abs() < 10.0, "{what}: {hz} Hz");
        let peak = middle.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        let lowest = if lossy { 14000 } else { 15000 };
        assert!((lowest..=17500).contains(&peak), "{what}: peak {peak}");
    }

    #[test]
    fn decodes_and_converts_sox_fixtures() {
        if !sox_available() {
            eprintln!("sox not installed: skipping prompt decoding fixtures");
            return;
        }
        let dir = TestDir::new("prompt-fixtures");
        let cases: &[(&str, u32, u32)] = &[
            ("wav", 44100, 2),
            ("flac", 44100, 1),
            ("ogg", 48000, 2),
            ("wav", 8000, 1),
            ("wav", 16000, 1),
            ("mp3", 44100, 2),
        ];
        for &(ext, rate, channels) in cases {
            let path = dir.path().join(format!("tone_{rate}_{channels}.{ext}"));
            if !sox_tone(&path, rate, channels, 1.5) {
                assert_eq!(ext, "mp3", "sox should write {ext}");
                eprintln!("this sox cannot write MP3 (libsox-fmt-mp3 missing): skipping the MP3 case");
                continue;
            }
            let what = path.display().to_string();
            let samples = decode_to_8k_mono(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
            check_tone(&samples, 1.5, ext == "mp3", &what);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(decode_bytes_to_8k_mono(&bytes, Some(ext)).unwrap(), samples, "{what} from bytes");
            assert_eq!(decode_bytes_to_8k_mono(&bytes, None).unwrap(), samples, "{what} without hint");
        }
    }

    #[test]
    fn stereo_channels_are_averaged() {
        let dir = TestDir::new("prompt-stereo");
        let path = dir.path().join("lr.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for _ in 0..800 {
            w.write_sample(10000i16).unwrap();
            w.write_sample(-2000i16).unwrap();
        }
        w.finalize().unwrap();
        let samples = decode_to_8k_mono(&path).unwrap();
        assert_eq!(samples.len(), 800);
        assert!(samples.iter().all(|&s| s == 4000), "{:?}", &samples[..4]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode_bytes_to_8k_mono(b"definitely not audio data at all", Some("wav")).is_err());
        assert!(decode_bytes_to_8k_mono(&[], None).is_err());
        assert!(matches!(decode_to_8k_mono("/nonexistent/prompt.wav"), Err(DecodeError::Io(_))));
    }

    #[test]
    fn loads_the_shipped_sounds() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sounds");
        let library = PromptLibrary::load_dir(&dir).unwrap();
        for name in [
            "greeting",
            "menu",
            "invalid",
            "record_after_tone",
            "beep",
            "thank_you",
            "goodbye",
            "digit_0",
            "digit_9",
            "star",
            "pound",
            "hold_music",
            "everyone_unavailable",
            "press_1_talk",
        ] {
            let prompt = library.get(name).unwrap_or_else(|| panic!("prompt {name} missing"));
            assert!(prompt.len() > 800, "{name} is {} samples", prompt.len());
        }
        assert_eq!(library.get("hold_music").map(|p| p.len()), Some(80000));
        assert_eq!(library.get("beep").map(|p| p.len()), Some(3200));
        assert!(library.get("generate").is_none(), "the script is not a prompt");
        assert!(library.get("README").is_none());
        assert!(library.len() >= 30);
    }

    #[test]
    fn load_dir_reports_bad_and_duplicate_files() {
        let dir = TestDir::new("prompt-lib");
        std::fs::write(dir.path().join("broken.wav"), b"RIFF....WAVEjunk").unwrap();
        assert!(matches!(PromptLibrary::load_dir(dir.path()), Err(PromptError::Decode { .. })));
        std::fs::remove_file(dir.path().join("broken.wav")).unwrap();

        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        for name in ["hello.wav", "hello.WAV"] {
            let mut w = hound::WavWriter::create(dir.path().join(name), spec).unwrap();
            w.write_sample(1i16).unwrap();
            w.finalize().unwrap();
        }
        assert!(matches!(PromptLibrary::load_dir(dir.path()), Err(PromptError::Duplicate { .. })));
        std::fs::remove_file(dir.path().join("hello.WAV")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let library = PromptLibrary::load_dir(dir.path()).unwrap();
        assert_eq!(library.names().collect::<Vec<_>>(), vec!["hello"]);
        assert_eq!(library.get("hello").as_deref(), Some(&[1i16][..]));
        assert!(matches!(PromptLibrary::load_dir(dir.path().join("missing")), Err(PromptError::ReadDir { .. })));
    }

    /// A FLAC of `seconds` of silence made by sox (tiny: silence compresses to almost nothing).
    fn sox_silence_flac(seconds: u32) -> Vec<u8> {
        let out = Command::new("sox")
            .args(["-n", "-r", "8000", "-c", "1", "-t", "flac", "-", "trim", "0", &seconds.to_string()])
            .output()
            .expect("sox is needed for this test (scripts/install-test-deps.sh)");
        assert!(out.status.success(), "sox: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// Issue #15 decode bomb: an upload of a few kilobytes that decodes to an hour of audio is
    /// refused with the length error, both when its header says how long it is (refused before
    /// decoding) and when the header's length is blanked out (refused while decoding, as soon as
    /// more than the limit came out: at most `max_seconds` of samples are ever held).
    #[test]
    fn an_hour_of_silence_in_a_small_flac_is_refused_without_decoding_it_all() {
        let bomb = sox_silence_flac(3600);
        let limits = DecodeLimits::upload(120);
        let started = std::time::Instant::now();
        let declared = decode_bytes_to_8k_mono_within(&bomb, Some("flac"), limits);
        let declared_took = started.elapsed();
        assert!(matches!(declared, Err(DecodeError::TooLong { max_seconds: 120 })), "{declared:?}");

        // STREAMINFO's 36-bit total-samples field (bytes 21..26 of the file, low 4 bits of byte
        // 21 on) set to 0, "unknown": the decoder has to find out by decoding.
        let mut liar = bomb.clone();
        assert_eq!(&liar[..4], b"fLaC");
        liar[21] &= 0xf0;
        liar[22..26].fill(0);
        let started = std::time::Instant::now();
        let streamed = decode_bytes_to_8k_mono_within(&liar, Some("flac"), limits);
        let streamed_took = started.elapsed();
        assert!(matches!(streamed, Err(DecodeError::TooLong { max_seconds: 120 })), "{streamed:?}");
        assert_eq!(streamed.unwrap_err().to_string(), "longer than 120 s");
        eprintln!(
            "{} byte FLAC of 1 h silence: refused from its header in {declared_took:?}, by decoding in {streamed_took:?}",
            bomb.len()
        );

        // Within the limit, the same kind of file decodes.
        let short = decode_bytes_to_8k_mono_within(&sox_silence_flac(3), Some("flac"), limits).unwrap();
        assert_eq!(short.len(), 3 * 8000);
        // And a packet budget stops files made of countless tiny packets.
        let tight = DecodeLimits { max_packets: 2, ..limits };
        assert!(matches!(decode_bytes_to_8k_mono_within(&sox_silence_flac(3), Some("flac"), tight), Err(DecodeError::TooManyPackets { max: 2 })));
    }
}

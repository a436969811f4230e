//! OnCall's audio building blocks: G.711 companding, the call recorder (WAV files that stay playable if the process
//! dies mid-call), repair of WAV files left behind by a crash, and loading prompt files of any common format as
//! 8 kHz mono PCM.
//!
//! Everything here is synchronous library code over `std::fs`; the server runs the file work on a blocking thread.

pub mod g711;
pub mod levels;
pub mod prompt;
pub mod repair;
pub mod resample;
pub mod wav;

pub use prompt::{decode_bytes_to_8k_mono, decode_to_8k_mono, PromptLibrary};
pub use repair::{repair_dir, repair_wav, RepairOutcome};
pub use wav::{RecordingInfo, WavRecorder};

#[cfg(test)]
mod test_dir;

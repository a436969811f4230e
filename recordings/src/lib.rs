//! OnCall's audio building blocks: G.711 companding, the call recorder (WAV files that stay playable if the process
//! dies mid-call), repair of WAV files left behind by a crash, and loading prompt files of any common format as
//! 8 kHz mono PCM; and where recordings are kept for years: the archive ([`storage`]: local folder or S3), the
//! background [`uploader`] from the local spool to the archive with its retry queue ([`spool`]), retention, and the
//! `oncall recordings verify` / `migrate` checks ([`verify`], [`migrate`]).
//!
//! Reading a recording back wherever it is now (spool, then archive) is [`access`].
//!
//! The audio code is synchronous over `std::fs` (the server runs it on a blocking thread); storage is async (tokio).

pub mod access;
pub mod levels;
pub mod migrate;
pub mod playback;
pub mod private_files;
pub mod prompt;
pub mod repair;
pub mod resample;
pub mod spool;
pub mod storage;
pub mod uploader;
pub mod verify;
pub mod wav;

pub use prompt::{decode_bytes_to_8k_mono, decode_bytes_to_8k_mono_within, decode_to_8k_mono, DecodeLimits, PromptLibrary};
pub use repair::{repair_dir, repair_wav, RepairOutcome};
pub use wav::{RecordingInfo, WavRecorder};

#[cfg(test)]
mod test_dir;

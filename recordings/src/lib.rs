//! OnCall's audio building blocks: G.711 companding, the call recorder (WAV files that stay playable if the process
//! dies mid-call), repair of WAV files left behind by a crash, and loading prompt files of any common format as
//! 8 kHz mono PCM.
//!
//! Everything here is synchronous library code over `std::fs`; the server runs the file work on a blocking thread.

pub mod g711;

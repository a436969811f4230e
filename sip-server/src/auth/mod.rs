//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616 with SHA-256, RFC 8760):
//! answering a registrar's or proxy's challenge as a client, and challenging and verifying as a server.
//! Sans-IO: nonces and client nonces are passed in, so tests are deterministic.
//!
//! `digest` is the format and the arithmetic (challenges, credentials, responses); `client` decides
//! which challenge a request of ours answers and when to stop answering.

pub mod client;
pub mod digest;

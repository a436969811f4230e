//! SRTP and SRTCP (RFC 3711) with the suites SDES offers: AES counter mode with HMAC-SHA1 (RFC 4568 §6.2,
//! AES_CM_128_HMAC_SHA1_80 and _32; RFC 6188, AES_256_CM_HMAC_SHA1_80 and _32) and AES-GCM (RFC 7714,
//! AEAD_AES_128_GCM and AEAD_AES_256_GCM). Sans-IO and in place: a packet is encrypted and its tag appended
//! in the caller's buffer; nothing allocates per packet.
//!
//! Our own code on the RustCrypto block cipher, MAC and AEAD rather than a protocol crate, for the reasons in
//! docs/architecture.md#srtp (per-packet cost and build time, measured against libsrtp2 and rtc-srtp); the
//! tests hold packets libsrtp2 2.5 protected with the same keys. One [`Srtp`] is one direction of one call;
//! the key derivation rate is 0 (what SDES peers use).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Aes256};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The crypto suites OnCall accepts, in the order it prefers them when it offers (it offers the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl Suite {
    pub const ALL: [Suite; 6] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    fn gcm(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }

    fn key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::AeadAes128Gcm => 16,
            _ => 32,
        }
    }

    fn salt_len(self) -> usize {
        if self.gcm() { 12 } else { 14 }
    }

    /// Bytes of master key and salt, as SDES carries them in `inline:` (30, 46, 28 or 44).
    pub fn master_len(self) -> usize {
        self.key_len() + self.salt_len()
    }

    /// Bytes of the SRTP authentication tag.
    pub fn tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm256HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 | Suite::AesCm256HmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
        }
    }

    /// SRTCP always uses the 80-bit HMAC tag in the counter-mode suites (RFC 4568 §6.2), GCM its 16 bytes.
    fn rtcp_tag_len(self) -> usize {
        if self.gcm() { 16 } else { 10 }
    }
}

/// Room for the longest master key and salt (AES-256: 32 + 14); a suite uses the first `master_len()` bytes.
pub const MASTER_LEN: usize = 46;
/// Bytes SRTP adds to an RTP packet at most (GCM's tag); SRTCP adds the index and its tag.
pub const MAX_OVERHEAD: usize = 16;
pub const MAX_RTCP_OVERHEAD: usize = 4 + 16;
/// Packets the replay window remembers behind the highest index seen (RFC 3711 §3.3.2 asks for at least 64).
const REPLAY_WINDOW: u64 = 64;
/// Sources tracked per direction: a peer that switches SSRC (a transfer, a re-INVITE) gets a fresh stream.
const MAX_STREAMS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("packet too short for SRTP")]
    TooShort,
    #[error("authentication tag does not match")]
    BadTag,
    #[error("replayed or too old")]
    Replay,
    #[error("no room in the buffer for the tag")]
    NoRoom,
}

/// AES in counter mode, 128- or 256-bit key: the key derivation's PRF and the counter-mode suites' cipher.
enum Ctr {
    A128(Aes128),
    A256(Aes256),
}

impl Ctr {
    fn new(key: &[u8]) -> Ctr {
        match key.len() {
            16 => Ctr::A128(Aes128::new(key.into())),
            _ => Ctr::A256(Aes256::new(key.into())),
        }
    }

    fn xor(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            Ctr::A128(c) => keystream_xor(c, iv, data),
            Ctr::A256(c) => keystream_xor(c, iv, data),
        }
    }
}

enum Aead {
    A128(Box<Aes128Gcm>),
    A256(Box<Aes256Gcm>),
}

/// How one direction's packets are sealed: AES-CM with an HMAC-SHA1 key already absorbed (cloned per packet
/// so the key is not re-hashed), or AES-GCM.
enum Seal {
    Cm { cipher: Ctr, mac: HmacSha1 },
    Gcm(Aead),
}

/// The keys of one direction, derived from a master key (RFC 3711 §4.3, key derivation rate 0).
struct SessionKeys {
    seal: Seal,
    /// The session salt (14 bytes for AES-CM, 12 for GCM).
    salt: [u8; 14],
}

impl SessionKeys {
    fn derive(suite: Suite, master: &[u8; MASTER_LEN], labels: [u8; 3]) -> SessionKeys {
        let (key_len, salt_len) = (suite.key_len(), suite.salt_len());
        let prf_cipher = Ctr::new(&master[..key_len]);
        // A 96-bit GCM salt is placed as libsrtp places it: left-aligned in the 112-bit field, zeros after.
        let mut master_salt = [0u8; 14];
        master_salt[..salt_len].copy_from_slice(&master[key_len..key_len + salt_len]);
        let prf = |label: u8, out: &mut [u8]| {
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(&master_salt);
            iv[7] ^= label; // key_id = label || index/kdr (0), right-aligned in the 112-bit salt
            out.fill(0);
            prf_cipher.xor(&iv, out);
        };
        let mut key = [0u8; 32];
        prf(labels[0], &mut key[..key_len]);
        let mut salt = [0u8; 14];
        prf(labels[2], &mut salt[..salt_len]);
        let seal = if suite.gcm() {
            Seal::Gcm(match key_len {
                16 => Aead::A128(Box::new(Aes128Gcm::new(key[..16].into()))),
                _ => Aead::A256(Box::new(Aes256Gcm::new(key[..32].into()))),
            })
        } else {
            let mut auth = [0u8; 20];
            prf(labels[1], &mut auth);
            Seal::Cm { cipher: Ctr::new(&key[..key_len]), mac: <HmacSha1 as Mac>::new_from_slice(&auth).expect("HMAC takes any key") }
        };
        SessionKeys { seal, salt }
    }

    /// The counter block for a packet: salt ⊕ SSRC·2^64 ⊕ index·2^16 (RFC 3711 §4.1.1).
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        iv
    }

    /// The GCM nonce: (0x0000 ‖ SSRC ‖ `middle` ‖ `low`) ⊕ salt, where RTP puts ROC ‖ SEQ there and SRTCP
    /// 0x0000 ‖ its index (RFC 7714 §8.1, §9.1).
    fn nonce(&self, ssrc: u32, high: u32, low: u16) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[2..6].copy_from_slice(&ssrc.to_be_bytes());
        n[6..10].copy_from_slice(&high.to_be_bytes());
        n[10..12].copy_from_slice(&low.to_be_bytes());
        for (b, s) in n.iter_mut().zip(&self.salt[..12]) {
            *b ^= s;
        }
        n
    }

    fn tag(mac: &HmacSha1, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// Encrypts `data` in place with `aad` authenticated; returns GCM's 16-byte tag.
    fn gcm_seal(aead: &Aead, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let tag = match aead {
            Aead::A128(c) => c.encrypt_in_place_detached(nonce.into(), aad, data),
            Aead::A256(c) => c.encrypt_in_place_detached(nonce.into(), aad, data),
        };
        tag.expect("a packet is far below GCM's length limit").into()
    }

    /// Checks GCM's tag and only then decrypts `data` in place.
    fn gcm_open(aead: &Aead, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<(), SrtpError> {
        let tag = aes_gcm::Tag::from_slice(tag);
        match aead {
            Aead::A128(c) => c.decrypt_in_place_detached(nonce.into(), aad, data, tag),
            Aead::A256(c) => c.decrypt_in_place_detached(nonce.into(), aad, data, tag),
        }
        .map_err(|_| SrtpError::BadTag)
    }
}

/// XORs the AES counter-mode keystream starting at `iv` into `data` (the counter is the last 16 bits,
/// carrying into the rest as a 128-bit big-endian integer).
fn keystream_xor<C: BlockEncrypt + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>>(cipher: &C, iv: &[u8; 16], data: &mut [u8]) {
    let base = u128::from_be_bytes(*iv);
    // Eight blocks per call let AES-NI pipeline them; a 20 ms G.711 frame is ten.
    let mut blocks = [aes::Block::default(); 8];
    for (chunk_no, chunk) in data.chunks_mut(16 * blocks.len()).enumerate() {
        let n = chunk.len().div_ceil(16);
        for (i, b) in blocks[..n].iter_mut().enumerate() {
            let counter = base.wrapping_add((chunk_no * 8 + i) as u128);
            b.copy_from_slice(&counter.to_be_bytes());
        }
        cipher.encrypt_blocks(&mut blocks[..n]);
        for (d, k) in chunk.iter_mut().zip(blocks[..n].iter().flat_map(|b| b.iter())) {
            *d ^= k;
        }
    }
}

fn tags_match(a: &[u8], b: &[u8]) -> bool {
    // Constant time: a forged packet learns nothing from how fast it was refused.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What one direction knows of one SSRC: rollover counter, highest sequence and the replay window.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    roc: u32,
    highest_seq: u16,
    /// Bit n set: the packet n behind the highest index arrived.
    window: u64,
}

impl Stream {
    fn index(&self) -> u64 {
        (self.roc as u64) << 16 | self.highest_seq as u64
    }

    /// The rollover counter the packet `seq` most likely belongs to (RFC 3711 Appendix A).
    fn guess_roc(&self, seq: u16) -> u32 {
        let (s_l, seq) = (self.highest_seq as i32, seq as i32);
        if s_l < 32768 {
            // ROC 0 has no earlier cycle: such a packet counts in cycle 0 (as libsrtp counts it).
            if seq - s_l > 32768 { self.roc.saturating_sub(1) } else { self.roc }
        } else if s_l - 32768 > seq {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        }
    }

    fn check_replay(&self, index: u64) -> Result<(), SrtpError> {
        let highest = self.index();
        if index > highest {
            return Ok(());
        }
        let behind = highest - index;
        if behind >= REPLAY_WINDOW || self.window & (1 << behind) != 0 {
            return Err(SrtpError::Replay);
        }
        Ok(())
    }

    fn accept(&mut self, index: u64) {
        let highest = self.index();
        if index > highest {
            let ahead = index - highest;
            self.window = if ahead >= REPLAY_WINDOW { 1 } else { self.window << ahead | 1 };
            self.roc = (index >> 16) as u32;
            self.highest_seq = index as u16;
        } else {
            self.window |= 1 << (highest - index);
        }
    }
}

/// One direction of SRTP and SRTCP for a call: protect what we send, or unprotect what we receive.
pub struct Srtp {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    streams: Vec<Stream>,
    /// Our last SRTCP index (31 bits; the first packet carries 1, as libsrtp's), when this context protects.
    rtcp_index: u32,
    /// Highest SRTCP index received and its window, when this context unprotects.
    rtcp_in: Option<(u32, u64)>,
}

impl Srtp {
    pub fn new(suite: Suite, master: &[u8; MASTER_LEN]) -> Srtp {
        Srtp {
            suite,
            rtp: SessionKeys::derive(suite, master, [0, 1, 2]),
            rtcp: SessionKeys::derive(suite, master, [3, 4, 5]),
            streams: Vec::new(),
            rtcp_index: 0,
            rtcp_in: None,
        }
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Our outgoing stream for `ssrc`; a new one starts at `seq` with ROC 0 (`window` 0 marks it fresh).
    fn stream(&mut self, ssrc: u32, seq: u16) -> &mut Stream {
        let i = match self.streams.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => i,
            None => {
                if self.streams.len() == MAX_STREAMS {
                    self.streams.remove(0);
                }
                self.streams.push(Stream { ssrc, roc: 0, highest_seq: seq, window: 0 });
                self.streams.len() - 1
            }
        };
        &mut self.streams[i]
    }

    /// Encrypts the RTP packet in `buf[..len]` and appends its tag; returns the SRTP length.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let header = header_len(&buf[..len])?;
        let tag_len = self.suite.tag_len();
        if buf.len() < len + tag_len {
            return Err(SrtpError::NoRoom);
        }
        let (seq, ssrc) = seq_ssrc(buf);
        let stream = self.stream(ssrc, seq);
        let roc = if stream.window == 0 { 0 } else { stream.guess_roc(seq) };
        let index = (roc as u64) << 16 | seq as u64;
        if stream.window == 0 || index > stream.index() {
            (stream.roc, stream.highest_seq, stream.window) = (roc, seq, 1);
        }
        match &self.rtp.seal {
            Seal::Cm { cipher, mac } => {
                cipher.xor(&self.rtp.iv(ssrc, index), &mut buf[header..len]);
                let tag = SessionKeys::tag(mac, &[&buf[..len], &roc.to_be_bytes()]);
                buf[len..len + tag_len].copy_from_slice(&tag[..tag_len]);
            }
            Seal::Gcm(aead) => {
                let nonce = self.rtp.nonce(ssrc, roc, seq);
                let (head, body) = buf[..len].split_at_mut(header);
                let tag = SessionKeys::gcm_seal(aead, &nonce, head, body);
                buf[len..len + 16].copy_from_slice(&tag);
            }
        }
        Ok(len + tag_len)
    }

    /// Checks the tag and the replay window of the SRTP packet in `buf`, then decrypts it in place;
    /// returns the RTP length. A packet that fails changes nothing.
    pub fn unprotect(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.tag_len();
        if buf.len() < 12 + tag_len {
            return Err(SrtpError::TooShort);
        }
        let len = buf.len() - tag_len;
        let header = header_len(&buf[..len])?;
        let (seq, ssrc) = seq_ssrc(buf);
        let known = self.streams.iter().position(|s| s.ssrc == ssrc);
        let (roc, index) = match known {
            Some(i) => {
                let s = &self.streams[i];
                let roc = s.guess_roc(seq);
                let index = (roc as u64) << 16 | seq as u64;
                s.check_replay(index)?;
                (roc, index)
            }
            None => (0, seq as u64),
        };
        match &self.rtp.seal {
            Seal::Cm { cipher, mac } => {
                let tag = SessionKeys::tag(mac, &[&buf[..len], &roc.to_be_bytes()]);
                if !tags_match(&tag[..tag_len], &buf[len..]) {
                    return Err(SrtpError::BadTag);
                }
                cipher.xor(&self.rtp.iv(ssrc, index), &mut buf[header..len]);
            }
            Seal::Gcm(aead) => {
                let nonce = self.rtp.nonce(ssrc, roc, seq);
                let (packet, tag) = buf.split_at_mut(len);
                let (head, body) = packet.split_at_mut(header);
                SessionKeys::gcm_open(aead, &nonce, head, body, tag)?;
            }
        }
        match known {
            Some(i) => self.streams[i].accept(index),
            None => {
                if self.streams.len() == MAX_STREAMS {
                    self.streams.remove(0);
                }
                self.streams.push(Stream { ssrc, roc, highest_seq: seq, window: 1 });
            }
        }
        Ok(len)
    }

    /// Encrypts the compound RTCP packet in `buf[..len]` after its first 8 bytes and appends E‖index and the
    /// tag (RFC 3711 §3.4; GCM: the tag, then E‖index, RFC 7714 §9); returns the SRTCP length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtcp_tag_len();
        if len < 8 {
            return Err(SrtpError::TooShort);
        }
        if buf.len() < len + 4 + tag_len {
            return Err(SrtpError::NoRoom);
        }
        self.rtcp_index = (self.rtcp_index + 1) & 0x7fff_ffff;
        let index = self.rtcp_index;
        let e_index = (index | 0x8000_0000).to_be_bytes();
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        match &self.rtcp.seal {
            Seal::Cm { cipher, mac } => {
                cipher.xor(&self.rtcp.iv(ssrc, index as u64), &mut buf[8..len]);
                buf[len..len + 4].copy_from_slice(&e_index);
                let tag = SessionKeys::tag(mac, &[&buf[..len + 4]]);
                buf[len + 4..len + 4 + tag_len].copy_from_slice(&tag[..tag_len]);
            }
            Seal::Gcm(aead) => {
                let nonce = self.rtcp.nonce(ssrc, index >> 16, index as u16);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&buf[..8]);
                aad[8..].copy_from_slice(&e_index);
                let tag = SessionKeys::gcm_seal(aead, &nonce, &aad, &mut buf[8..len]);
                buf[len..len + 16].copy_from_slice(&tag);
                buf[len + 16..len + 20].copy_from_slice(&e_index);
            }
        }
        Ok(len + 4 + tag_len)
    }

    /// Checks and decrypts the SRTCP packet in `buf`; returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtcp_tag_len();
        if buf.len() < 8 + 4 + tag_len {
            return Err(SrtpError::TooShort);
        }
        let len = buf.len() - 4 - tag_len;
        let (e_at, tag_at) = if self.suite.gcm() { (len + tag_len, len) } else { (len, len + 4) };
        let e_index = u32::from_be_bytes(buf[e_at..e_at + 4].try_into().expect("4 bytes"));
        let index = e_index & 0x7fff_ffff;
        if let Some((highest, window)) = self.rtcp_in {
            let behind = highest.wrapping_sub(index) as u64;
            if index <= highest && (behind >= REPLAY_WINDOW || window & (1 << behind) != 0) {
                return Err(SrtpError::Replay);
            }
        }
        let encrypted = e_index & 0x8000_0000 != 0;
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        match &self.rtcp.seal {
            Seal::Cm { cipher, mac } => {
                let tag = SessionKeys::tag(mac, &[&buf[..tag_at]]);
                if !tags_match(&tag[..tag_len], &buf[tag_at..]) {
                    return Err(SrtpError::BadTag);
                }
                if encrypted {
                    cipher.xor(&self.rtcp.iv(ssrc, index as u64), &mut buf[8..len]);
                }
            }
            Seal::Gcm(aead) => {
                let nonce = self.rtcp.nonce(ssrc, index >> 16, index as u16);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&buf[..8]);
                aad[8..].copy_from_slice(&e_index.to_be_bytes());
                let (packet, rest) = buf.split_at_mut(len);
                let tag = &rest[..tag_len];
                if encrypted {
                    SessionKeys::gcm_open(aead, &nonce, &aad, &mut packet[8..], tag)?;
                } else {
                    // Unencrypted SRTCP under GCM (RFC 7714 §9.3) is not something OnCall or its peers send: refused.
                    return Err(SrtpError::BadTag);
                }
            }
        }
        self.rtcp_in = Some(match self.rtcp_in {
            Some((highest, window)) if index > highest => {
                let ahead = (index - highest) as u64;
                (index, if ahead >= REPLAY_WINDOW { 1 } else { window << ahead | 1 })
            }
            Some((highest, window)) => (highest, window | 1 << (highest - index)),
            None => (index, 1),
        });
        Ok(len)
    }
}

fn seq_ssrc(buf: &[u8]) -> (u16, u32) {
    (u16::from_be_bytes([buf[2], buf[3]]), u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]))
}

/// Bytes of the RTP header (fixed part, CSRCs, extension): what SRTP leaves in the clear.
fn header_len(buf: &[u8]) -> Result<usize, SrtpError> {
    if buf.len() < 12 || buf[0] >> 6 != 2 {
        return Err(SrtpError::TooShort);
    }
    let mut len = 12 + 4 * (buf[0] & 0x0f) as usize;
    if buf[0] & 0x10 != 0 {
        if buf.len() < len + 4 {
            return Err(SrtpError::TooShort);
        }
        len += 4 + 4 * u16::from_be_bytes([buf[len + 2], buf[len + 3]]) as usize;
    }
    if buf.len() < len {
        return Err(SrtpError::TooShort);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn aes_cm_keystream_matches_rfc3711_b2() {
        let cipher = Ctr::new(&hex("2B7E151628AED2A6ABF7158809CF4F3C"));
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        let mut ks = vec![0u8; 48];
        cipher.xor(&iv, &mut ks);
        assert_eq!(ks, hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0"));
        // Block 0xFEFF..0xFF01 of the same stream.
        let mut far = [0u8; 16];
        let mut iv2 = iv;
        iv2[14] = 0xfe;
        iv2[15] = 0xff;
        cipher.xor(&iv2, &mut far);
        assert_eq!(far.to_vec(), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    }

    fn master(bytes: &[u8]) -> [u8; MASTER_LEN] {
        let mut m = [0u8; MASTER_LEN];
        m[..bytes.len()].copy_from_slice(bytes);
        m
    }

    #[test]
    fn key_derivation_matches_rfc3711_b3() {
        let m = master(&hex("E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6"));
        let keys = SessionKeys::derive(Suite::AesCm128HmacSha1_80, &m, [0, 1, 2]);
        assert_eq!(keys.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        let Seal::Cm { cipher, mac } = &keys.seal else { panic!("a counter-mode suite") };
        // The cipher key is only inside the AES schedule: check it by its first keystream block.
        let expected = Ctr::new(&hex("C61E7A93744F39EE10734AFE3FF7A087"));
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        cipher.xor(&[0; 16], &mut a);
        expected.xor(&[0; 16], &mut b);
        assert_eq!(a, b);
        let auth = <HmacSha1 as Mac>::new_from_slice(&hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF")[..20]).unwrap();
        assert_eq!(SessionKeys::tag(mac, &[b"x"]), <[u8; 20]>::from(auth.chain_update(b"x").finalize().into_bytes()));
    }

    /// Packets libsrtp2 2.5.0 (Debian) protected with the key bytes 1, 8, 15, … (i·7+1): RTP with sequence
    /// numbers 1, 65535 and 0 (after the rollover), and one sender report, for every suite.
    #[test]
    fn every_suite_protects_like_libsrtp2() {
        let vectors: [(Suite, [&str; 4]); 5] = [
            (Suite::AesCm128HmacSha1_80, [
                "8000000100000140cafebabe772df8504084fcfd4fce3d9ffdf2207ab043f28ede3cb1bc086d569af3a0",
                "8000ffff00000140cafebabe000f02bea0f1c928eb98ad36f7b6f46e5408d025c014adc42814ce4ef598",
                "8000000000000140cafebabec76cde47d16b3a6a21c8841c5c966b0366f719337ffccec59fad5bd236b3",
                "80c80006cafebabef2c8ad77b492baa64f0344aa01736ac6681eb4bc80000001c44a8f3f6ddf411abdfe",
            ]),
            (Suite::AesCm256HmacSha1_80, [
                "8000000100000140cafebabee6e82a2d057219b3c4e74c7601f543e88f9d227d8bffe74f92a05f66b974",
                "8000ffff00000140cafebabef1ab18a7e91e89d4671e50eb81ea88d42686aca8c6cdb1d8ba5082837612",
                "8000000000000140cafebabe1b033e3269e130fd1edbcd35e46233a00ffee6c88ee76de5271c1a612c39",
                "80c80006cafebabe63604400237551c2c944f7974948134dc865d0c68000000192edaecb6ba01cbac62c",
            ]),
            (Suite::AesCm256HmacSha1_32, [
                "8000000100000140cafebabee6e82a2d057219b3c4e74c7601f543e88f9d227d8bffe74f",
                "8000ffff00000140cafebabef1ab18a7e91e89d4671e50eb81ea88d42686aca8c6cdb1d8",
                "8000000000000140cafebabe1b033e3269e130fd1edbcd35e46233a00ffee6c88ee76de5",
                "80c80006cafebabe63604400237551c2c944f7974948134dc865d0c68000000192edaecb6ba01cbac62c",
            ]),
            (Suite::AeadAes128Gcm, [
                "8000000100000140cafebabe7dd40d208bf15b08ff6b97062435577d8d8f707e9ec80b9843a5afd84c78d0c90b2589cd",
                "8000ffff00000140cafebabe27579e0d1ae8d81a4458cc781da4a173e95f9e3e35211052bea0d1254c2ad09d68c0068b",
                "8000000000000140cafebabee6159c5462102b1e8d9f830cfd3dcfa5492657c1ba3ffd38fba86b5ca563a89dfe5cbf2e",
                "80c80006cafebabeeb18dce0b9e5789cdda2003af8b140dc80ae400df8c6c0862f3a164e3813016821df953580000001",
            ]),
            (Suite::AeadAes256Gcm, [
                "8000000100000140cafebabe632ade49fc30be3f10a911ccd148c3de569abc0d341d3aa0fd48ebe1909b334eb3328727",
                "8000ffff00000140cafebabe03b0a12e682d5e6de8fa4c88519827c3c46f866adf183862c7628c97f5203ccaead42fbb",
                "8000000000000140cafebabeb448c2a390f17b51cd295165ddd3eb5d714d0781908e471add5032e11ef361b596859e07",
                "80c80006cafebabe8820980613698ba8a2a9d7680e66e7746db7b0324055a7a0b111ac0fcafa8fac9c60698380000001",
            ]),
        ];
        let key: Vec<u8> = (0..MASTER_LEN).map(|i| (i * 7 + 1) as u8).collect();
        for (suite, expected) in vectors {
            let m = master(&key[..suite.master_len()]);
            let (mut tx, mut rx) = (Srtp::new(suite, &m), Srtp::new(suite, &m));
            for (seq, want) in [1u16, 65535, 0].into_iter().zip(expected) {
                let mut pkt = [0u8; 64];
                pkt[..12].copy_from_slice(&hex("80000000 00000140 cafebabe"));
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                for (i, b) in pkt[12..32].iter_mut().enumerate() {
                    *b = 0xab + i as u8;
                }
                let n = tx.protect(&mut pkt, 32).unwrap();
                assert_eq!(&pkt[..n], &hex(want)[..], "{} seq {seq}", suite.name());
                assert_eq!(rx.unprotect(&mut pkt[..n]), Ok(32), "{} opens its own", suite.name());
            }
            let mut sr = [0u8; 64];
            sr[..8].copy_from_slice(&hex("80c80006 cafebabe"));
            sr[8..28].fill(0x55);
            let n = tx.protect_rtcp(&mut sr, 28).unwrap();
            assert_eq!(&sr[..n], &hex(expected[3])[..], "{} SRTCP", suite.name());
            assert_eq!(rx.unprotect_rtcp(&mut sr[..n]), Ok(28));
            assert_eq!(sr[8..28], [0x55; 20]);
        }
    }

    /// libsrtp's own reference packet (srtp_driver.c), checked here against libsrtp2 2.5 as well.
    #[test]
    fn protects_like_libsrtp() {
        let master = master(&hex("e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6"));
        let plain = hex("800f1234decafbadcafebabeabababababababababababababababab");
        let mut buf = plain.clone();
        buf.resize(plain.len() + 10, 0);
        let n = Srtp::new(Suite::AesCm128HmacSha1_80, &master).protect(&mut buf, plain.len()).unwrap();
        assert_eq!(&buf[..n], &hex("800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb")[..]);
        let mut rx = Srtp::new(Suite::AesCm128HmacSha1_80, &master);
        let m = rx.unprotect(&mut buf[..n]).unwrap();
        assert_eq!(&buf[..m], &plain[..]);
    }

    fn packet(seq: u16, ssrc: u32, payload: u8) -> Vec<u8> {
        let mut p = vec![0u8; 12 + 160 + MAX_OVERHEAD];
        p[0] = 0x80;
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p[12..172].fill(payload);
        p
    }

    #[test]
    fn round_trip_across_rollover_and_replay_refused() {
        let master = [7u8; MASTER_LEN];
        for suite in Suite::ALL {
            let (mut tx, mut rx) = (Srtp::new(suite, &master), Srtp::new(suite, &master));
            let mut sent = Vec::new();
            for (k, seq) in (65530u16..=65535).chain(0..5).enumerate() {
                let mut p = packet(seq, 0x1234, k as u8);
                let n = tx.protect(&mut p, 172).unwrap();
                p.truncate(n);
                assert_ne!(p[12], k as u8, "payload encrypted");
                sent.push(p.clone());
                let m = rx.unprotect(&mut p).unwrap();
                assert_eq!((m, p[12]), (172, k as u8));
            }
            // The same packet again, and a late one outside the window, are refused; a flipped bit is too.
            let mut again = sent[3].clone();
            assert_eq!(rx.unprotect(&mut again), Err(SrtpError::Replay));
            let mut forged = packet(5, 0x1234, 0);
            let n = tx.protect(&mut forged, 172).unwrap();
            forged.truncate(n);
            forged[20] ^= 1;
            assert_eq!(rx.unprotect(&mut forged), Err(SrtpError::BadTag));
        }
    }

    #[test]
    fn plain_rtp_and_garbage_are_refused() {
        let mut rx = Srtp::new(Suite::AesCm128HmacSha1_80, &[1; MASTER_LEN]);
        let mut plain = packet(1, 9, 0xff);
        plain.truncate(172);
        assert_eq!(rx.unprotect(&mut plain), Err(SrtpError::BadTag));
        assert_eq!(rx.unprotect(&mut [0x80; 5]), Err(SrtpError::TooShort));
        assert_eq!(rx.unprotect_rtcp(&mut [0x80; 30]), Err(SrtpError::BadTag));
    }

    #[test]
    fn late_packet_inside_the_window_is_accepted_once() {
        let master = [3u8; MASTER_LEN];
        let (mut tx, mut rx) = (Srtp::new(Suite::AesCm128HmacSha1_32, &master), Srtp::new(Suite::AesCm128HmacSha1_32, &master));
        let mut pkts: Vec<Vec<u8>> = (100..110)
            .map(|seq| {
                let mut p = packet(seq, 5, 1);
                let n = tx.protect(&mut p, 172).unwrap();
                p.truncate(n);
                p
            })
            .collect();
        let late = pkts.remove(4);
        for mut p in pkts {
            rx.unprotect(&mut p).unwrap();
        }
        let mut l = late.clone();
        assert_eq!(rx.unprotect(&mut l), Ok(172));
        let mut l = late;
        assert_eq!(rx.unprotect(&mut l), Err(SrtpError::Replay));
    }

    #[test]
    fn srtcp_round_trip() {
        let master = [9u8; MASTER_LEN];
        let (mut tx, mut rx) = (Srtp::new(Suite::AesCm128HmacSha1_32, &master), Srtp::new(Suite::AesCm128HmacSha1_32, &master));
        let mut sr = [0u8; 28 + MAX_RTCP_OVERHEAD];
        let sr_len = 28 + 4 + 10;
        sr[0] = 0x80;
        sr[1] = 200;
        sr[4..8].copy_from_slice(&42u32.to_be_bytes());
        sr[8..28].fill(0x55);
        let n = tx.protect_rtcp(&mut sr, 28).unwrap();
        assert_eq!(n, sr_len);
        assert_ne!(sr[8], 0x55);
        let mut copy = sr;
        assert_eq!(rx.unprotect_rtcp(&mut sr[..n]), Ok(28));
        assert_eq!(sr[8..28], [0x55; 20]);
        assert_eq!(rx.unprotect_rtcp(&mut copy[..n]), Err(SrtpError::Replay));
    }
}

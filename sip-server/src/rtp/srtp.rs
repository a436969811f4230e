//! SRTP and SRTCP (RFC 3711) with the AES counter-mode suites SDES offers (RFC 4568 §6.2):
//! AES_CM_128_HMAC_SHA1_80 and _32. Sans-IO and in place: a packet is encrypted and its tag appended
//! in the caller's buffer; nothing allocates per packet.
//!
//! Our own code on the RustCrypto block cipher and MAC rather than a protocol crate, for the reasons in
//! docs/architecture.md#srtp (per-packet cost and build time, measured against libsrtp2 and rtc-srtp).
//! One [`Srtp`] is one direction of one call; the key derivation rate is 0 (what SDES peers use).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The crypto suites OnCall offers and accepts, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    pub const ALL: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Bytes of the SRTP authentication tag. SRTCP always uses 80 bits (RFC 4568 §6.2).
    pub fn tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// Master key (16 bytes) and master salt (14 bytes), as SDES carries them in `inline:`.
pub const MASTER_LEN: usize = 30;
const SRTCP_TAG_LEN: usize = 10;
/// Bytes SRTP adds to an RTP packet at most (the 80-bit tag); SRTCP adds the index and its tag.
pub const MAX_OVERHEAD: usize = 10;
pub const MAX_RTCP_OVERHEAD: usize = 4 + SRTCP_TAG_LEN;
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

/// The keys of one direction, derived from a master key (RFC 3711 §4.3, key derivation rate 0).
struct SessionKeys {
    cipher: Aes128,
    salt: [u8; 14],
    /// The MAC with its key already absorbed; cloned per packet so the key is not re-hashed.
    mac: HmacSha1,
}

impl SessionKeys {
    fn derive(master: &[u8; MASTER_LEN], labels: [u8; 3]) -> SessionKeys {
        let master_cipher = Aes128::new(master[..16].into());
        let master_salt: [u8; 14] = master[16..].try_into().expect("14 salt bytes");
        let prf = |label: u8, out: &mut [u8]| {
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(&master_salt);
            iv[7] ^= label; // key_id = label || index/kdr (0), right-aligned in the 112-bit salt
            keystream_xor(&master_cipher, &iv, out);
        };
        let (mut key, mut salt, mut auth) = ([0u8; 16], [0u8; 14], [0u8; 20]);
        prf(labels[0], &mut key);
        prf(labels[1], &mut auth);
        prf(labels[2], &mut salt);
        SessionKeys { cipher: Aes128::new(&key.into()), salt, mac: <HmacSha1 as Mac>::new_from_slice(&auth).expect("HMAC takes any key") }
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

    fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// XORs the AES counter-mode keystream starting at `iv` into `data` (the counter is the last 16 bits,
/// carrying into the rest as a 128-bit big-endian integer).
fn keystream_xor(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
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
            if seq - s_l > 32768 { self.roc.wrapping_sub(1) } else { self.roc }
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
    /// Our next SRTCP index (31 bits), when this context protects.
    rtcp_index: u32,
    /// Highest SRTCP index received and its window, when this context unprotects.
    rtcp_in: Option<(u32, u64)>,
}

impl Srtp {
    pub fn new(suite: Suite, master: &[u8; MASTER_LEN]) -> Srtp {
        Srtp {
            suite,
            rtp: SessionKeys::derive(master, [0, 1, 2]),
            rtcp: SessionKeys::derive(master, [3, 4, 5]),
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
        let iv = self.rtp.iv(ssrc, index);
        keystream_xor(&self.rtp.cipher, &iv, &mut buf[header..len]);
        let tag = self.rtp.tag(&[&buf[..len], &roc.to_be_bytes()]);
        buf[len..len + tag_len].copy_from_slice(&tag[..tag_len]);
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
        let tag = self.rtp.tag(&[&buf[..len], &roc.to_be_bytes()]);
        if !tags_match(&tag[..tag_len], &buf[len..]) {
            return Err(SrtpError::BadTag);
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
        let iv = self.rtp.iv(ssrc, index);
        keystream_xor(&self.rtp.cipher, &iv, &mut buf[header..len]);
        Ok(len)
    }

    /// Encrypts the compound RTCP packet in `buf[..len]` after its first 8 bytes and appends E‖index and
    /// the tag (RFC 3711 §3.4); returns the SRTCP length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len < 8 {
            return Err(SrtpError::TooShort);
        }
        if buf.len() < len + MAX_RTCP_OVERHEAD {
            return Err(SrtpError::NoRoom);
        }
        let index = self.rtcp_index;
        self.rtcp_index = (self.rtcp_index + 1) & 0x7fff_ffff;
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let iv = self.rtcp.iv(ssrc, index as u64);
        keystream_xor(&self.rtcp.cipher, &iv, &mut buf[8..len]);
        buf[len..len + 4].copy_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.rtcp.tag(&[&buf[..len + 4]]);
        buf[len + 4..len + 4 + SRTCP_TAG_LEN].copy_from_slice(&tag[..SRTCP_TAG_LEN]);
        Ok(len + MAX_RTCP_OVERHEAD)
    }

    /// Checks and decrypts the SRTCP packet in `buf`; returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        if buf.len() < 8 + MAX_RTCP_OVERHEAD {
            return Err(SrtpError::TooShort);
        }
        let tag_at = buf.len() - SRTCP_TAG_LEN;
        let tag = self.rtcp.tag(&[&buf[..tag_at]]);
        if !tags_match(&tag[..SRTCP_TAG_LEN], &buf[tag_at..]) {
            return Err(SrtpError::BadTag);
        }
        let e_index = u32::from_be_bytes(buf[tag_at - 4..tag_at].try_into().expect("4 bytes"));
        let index = e_index & 0x7fff_ffff;
        if let Some((highest, window)) = self.rtcp_in {
            let behind = highest.wrapping_sub(index) as u64;
            if index <= highest && (behind >= REPLAY_WINDOW || window & (1 << behind) != 0) {
                return Err(SrtpError::Replay);
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
        let len = tag_at - 4;
        if e_index & 0x8000_0000 != 0 {
            let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            let iv = self.rtcp.iv(ssrc, index as u64);
            keystream_xor(&self.rtcp.cipher, &iv, &mut buf[8..len]);
        }
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
        let cipher = Aes128::new(hex("2B7E151628AED2A6ABF7158809CF4F3C")[..].into());
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        let mut ks = vec![0u8; 48];
        keystream_xor(&cipher, &iv, &mut ks);
        assert_eq!(ks, hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0"));
        // Block 0xFEFF..0xFF01 of the same stream.
        let mut far = [0u8; 16];
        let mut iv2 = iv;
        iv2[14] = 0xfe;
        iv2[15] = 0xff;
        keystream_xor(&cipher, &iv2, &mut far);
        assert_eq!(far.to_vec(), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    }

    #[test]
    fn key_derivation_matches_rfc3711_b3() {
        let mut master = [0u8; MASTER_LEN];
        master[..16].copy_from_slice(&hex("E1F97A0D3E018BE0D64FA32C06DE4139"));
        master[16..].copy_from_slice(&hex("0EC675AD498AFEEBB6960B3AABE6"));
        let keys = SessionKeys::derive(&master, [0, 1, 2]);
        assert_eq!(keys.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        // The cipher key is only inside the AES schedule: check it by its first keystream block.
        let expected = Aes128::new(hex("C61E7A93744F39EE10734AFE3FF7A087")[..].into());
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        keystream_xor(&keys.cipher, &[0; 16], &mut a);
        keystream_xor(&expected, &[0; 16], &mut b);
        assert_eq!(a, b);
        let auth = <HmacSha1 as Mac>::new_from_slice(&hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF")[..20]).unwrap();
        assert_eq!(keys.tag(&[b"x"]), <[u8; 20]>::from(auth.chain_update(b"x").finalize().into_bytes()));
    }

    /// libsrtp's own reference packet (srtp_driver.c), checked here against libsrtp2 2.5 as well.
    #[test]
    fn protects_like_libsrtp() {
        let master: [u8; MASTER_LEN] = hex("e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6").try_into().unwrap();
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
        sr[0] = 0x80;
        sr[1] = 200;
        sr[4..8].copy_from_slice(&42u32.to_be_bytes());
        sr[8..28].fill(0x55);
        let n = tx.protect_rtcp(&mut sr, 28).unwrap();
        assert_eq!(n, 42);
        assert_ne!(sr[8], 0x55);
        let mut copy = sr;
        assert_eq!(rx.unprotect_rtcp(&mut sr[..n]), Ok(28));
        assert_eq!(sr[8..28], [0x55; 20]);
        assert_eq!(rx.unprotect_rtcp(&mut copy[..n]), Err(SrtpError::Replay));
    }
}

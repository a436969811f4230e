//! SDP offer/answer for audio (RFC 4566 syntax, RFC 3264 negotiation) limited to what a phone line
//! needs: G.711 μ-law (PT 0) and A-law (PT 8), RFC 4733 telephone-event, direction attributes
//! for hold (RFC 3264 §8.4), `c=` addresses and SDES keys for SRTP (RFC 4568 `a=crypto`, `RTP/SAVP`).
//! Video and other media lines are answered with port 0.
//!
//! Parsing is tolerant (unknown lines are skipped); a body with no usable audio line is an error.

use crate::rtp::srtp::{Suite, MASTER_LEN};
use base64::Engine as _;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction an answer takes for an offer (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    pub fn we_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    pub media: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub rtpmaps: Vec<(u8, String)>,
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    /// `a=crypto:` lines: (tag, suite, key parameters).
    pub crypto: Vec<(u32, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin_address: Option<IpAddr>,
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    pub media: Vec<MediaLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8 text")]
    NotText,
    #[error("SDP has no m=audio line")]
    NoAudio,
    #[error("SDP line {0:?} is malformed")]
    BadLine(String),
    #[error("no common codec (OnCall speaks PCMU and PCMA)")]
    NoCommonCodec,
    #[error("SDP audio line has no connection address")]
    NoConnection,
    #[error("SRTP required but no usable a=crypto line (OnCall takes AES_CM_128/AES_256_CM with HMAC_SHA1_80/_32 and AEAD_AES_128/256_GCM, without MKI)")]
    NoCommonCrypto,
}

impl SessionDescription {
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let mut sd = SessionDescription { origin_address: None, connection: None, direction: None, media: Vec::new() };
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            let Some((kind, value)) = line.split_once('=') else { continue };
            match kind {
                "o" => sd.origin_address = value.split_whitespace().nth(5).and_then(|a| a.parse().ok()),
                "c" => {
                    let addr = parse_connection(value).ok_or_else(|| SdpError::BadLine(line.to_string()))?;
                    match sd.media.last_mut() {
                        Some(m) => m.connection = Some(addr),
                        None => sd.connection = Some(addr),
                    }
                }
                "m" => {
                    let mut parts = value.split_whitespace();
                    let (Some(media), Some(port), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
                        return Err(SdpError::BadLine(line.to_string()));
                    };
                    // "port/count" is legal; OnCall uses the first port.
                    let port = port.split('/').next().and_then(|p| p.parse().ok()).ok_or_else(|| SdpError::BadLine(line.to_string()))?;
                    sd.media.push(MediaLine {
                        media: media.to_string(),
                        port,
                        proto: proto.to_string(),
                        formats: parts.map(str::to_string).collect(),
                        rtpmaps: Vec::new(),
                        connection: None,
                        direction: None,
                        crypto: Vec::new(),
                    });
                }
                "a" => {
                    let dir = match value {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    if let Some(d) = dir {
                        match sd.media.last_mut() {
                            Some(m) => m.direction = Some(d),
                            None => sd.direction = Some(d),
                        }
                    } else if let Some(c) = value.strip_prefix("crypto:") {
                        let mut p = c.split_whitespace();
                        if let (Some(tag), Some(suite), Some(key), Some(m)) = (p.next(), p.next(), p.next(), sd.media.last_mut()) {
                            if let Ok(tag) = tag.parse() {
                                m.crypto.push((tag, suite.to_string(), key.to_string()));
                            }
                        }
                    } else if let Some(map) = value.strip_prefix("rtpmap:") {
                        if let (Some((pt, enc)), Some(m)) = (map.split_once(' '), sd.media.last_mut()) {
                            if let Ok(pt) = pt.trim().parse() {
                                m.rtpmaps.push((pt, enc.trim().to_string()));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if !sd.media.iter().any(|m| m.media == "audio") {
            return Err(SdpError::NoAudio);
        }
        Ok(sd)
    }

    pub fn audio(&self) -> Option<&MediaLine> {
        self.media.iter().find(|m| m.media == "audio" && m.port != 0)
    }
}

fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut p = value.split_whitespace();
    let (_net, _kind, addr) = (p.next()?, p.next()?, p.next()?);
    // multicast "addr/ttl" forms: keep the address part
    addr.split('/').next()?.parse().ok()
}

/// What was agreed for the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// The payload type the peer uses for telephone-event, when it offered RFC 4733.
    pub telephone_event: Option<u8>,
    /// Where the peer wants RTP (`None` when on hold with 0.0.0.0).
    pub remote: Option<SocketAddr>,
    /// Our direction towards the peer.
    pub direction: Direction,
    /// SRTP keys, when the stream is encrypted.
    pub srtp: Option<Sdes>,
}

/// SDES keys agreed for SRTP (RFC 4568): the peer's, to decrypt what it sends, and ours, which our SDP
/// carries. `savp` says the profile was `RTP/SAVP` (SRTP required) rather than keys on an `RTP/AVP` line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sdes {
    pub suite: Suite,
    pub tag: u32,
    pub remote: [u8; MASTER_LEN],
    pub local: [u8; MASTER_LEN],
    pub savp: bool,
}

impl std::fmt::Debug for Sdes {
    // Keys never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sdes").field("suite", &self.suite).field("tag", &self.tag).field("savp", &self.savp).finish_non_exhaustive()
    }
}

impl Sdes {
    /// What we offer on a call we place: the 80-bit suite with a fresh key; `remote` is filled from the answer.
    pub fn offer(savp: bool) -> Sdes {
        Sdes { suite: Suite::AesCm128HmacSha1_80, tag: 1, remote: [0; MASTER_LEN], local: fresh_key(Suite::AesCm128HmacSha1_80), savp }
    }

    /// The answer to our offer: its keys are the peer's, the local key stays the one we offered.
    pub fn completed_by(self, answer: Option<Sdes>) -> Option<Sdes> {
        answer.filter(|a| a.tag == self.tag && a.suite == self.suite).map(|a| Sdes { local: self.local, savp: self.savp, ..a })
    }
}

/// A random master key and salt for `suite` (the rest of the array zero, as a decoded peer key's is).
fn fresh_key(suite: Suite) -> [u8; MASTER_LEN] {
    let mut key = [0u8; MASTER_LEN];
    rand::Rng::fill(&mut rand::thread_rng(), &mut key[..suite.master_len()]);
    key
}

/// The first `a=crypto` line we can use: a known suite with one inline key and no MKI (RFC 4568 §9.1).
fn choose_crypto(audio: &MediaLine) -> Option<Sdes> {
    audio.crypto.iter().find_map(|(tag, suite, params)| {
        let suite = Suite::from_name(suite)?;
        // One key ("inline:KEY|lifetime|MKI:len" may list several, separated by ';'); lifetime ignored, MKI refused.
        let key = params.strip_prefix("inline:")?;
        if key.contains(';') || key.split('|').skip(1).any(|p| p.contains(':')) {
            return None;
        }
        let raw = base64::engine::general_purpose::STANDARD.decode(key.split('|').next()?).ok()?;
        if raw.len() != suite.master_len() {
            return None;
        }
        let mut remote = [0u8; MASTER_LEN];
        remote[..raw.len()].copy_from_slice(&raw);
        Some(Sdes { suite, tag: *tag, remote, local: fresh_key(suite), savp: audio.proto.eq_ignore_ascii_case("RTP/SAVP") })
    })
}

impl MediaLine {
    fn encoding_of(&self, pt: u8) -> Option<String> {
        self.rtpmaps.iter().find(|(p, _)| *p == pt).map(|(_, e)| e.to_ascii_lowercase())
    }

    fn offers(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }
}

/// Chooses the codec for an offer (the offerer's order wins among PCMU/PCMA, RFC 3264 §6.1).
pub fn negotiate(offer: &SessionDescription, supported: &[Codec]) -> Result<Negotiated, SdpError> {
    let audio = offer.audio().ok_or(SdpError::NoCommonCodec)?;
    let codec = audio
        .offers()
        .find_map(|pt| {
            let enc = audio.encoding_of(pt);
            let c = match (pt, enc.as_deref()) {
                (_, Some(e)) if e.starts_with("pcmu/8000") => Some(Codec::Pcmu),
                (_, Some(e)) if e.starts_with("pcma/8000") => Some(Codec::Pcma),
                (0, None) => Some(Codec::Pcmu),
                (8, None) => Some(Codec::Pcma),
                _ => None,
            };
            c.filter(|c| supported.contains(c))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let telephone_event = audio
        .offers()
        .find(|&pt| audio.encoding_of(pt).is_some_and(|e| e.starts_with("telephone-event/8000")));
    let ip = audio.connection.or(offer.connection).ok_or(SdpError::NoConnection)?;
    let direction = audio.direction.or(offer.direction).unwrap_or(Direction::SendRecv);
    // c=0.0.0.0 is RFC 2543 hold: the peer wants nothing sent.
    let remote = (!ip.is_unspecified()).then(|| SocketAddr::new(ip, audio.port));
    let direction = if remote.is_none() { Direction::Inactive } else { direction.answer() };
    let srtp = choose_crypto(audio);
    if srtp.is_none() && audio.proto.eq_ignore_ascii_case("RTP/SAVP") {
        return Err(SdpError::NoCommonCrypto);
    }
    Ok(Negotiated { codec, telephone_event, remote, direction, srtp })
}

/// A re-offer keeps our key when the suite stays (RFC 4568 §7.1.4 allows either; keeping it spares the
/// media thread a new context and the peer a rekey).
pub fn keep_local_key(previous: Option<&Negotiated>, next: &mut Negotiated) {
    if let (Some(old), Some(new)) = (previous.and_then(|p| p.srtp), next.srtp.as_mut()) {
        if old.suite == new.suite {
            new.local = old.local;
        }
    }
}

/// Builds our SDP (offer or answer) for one audio stream at `local`, with our SRTP key when `srtp` is set.
pub fn build(local: SocketAddr, session_id: u64, version: u64, codecs: &[Codec], telephone_event: Option<u8>, direction: Direction, srtp: Option<&Sdes>) -> Vec<u8> {
    let family = if local.is_ipv6() { "IP6" } else { "IP4" };
    let ip = local.ip();
    let mut s = String::with_capacity(256);
    // Neither o= nor s= names the product: a scanner sweeping with INVITEs learns nothing from the answer.
    let _ = write!(s, "v=0\r\no=- {session_id} {version} IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n");
    let profile = if srtp.is_some_and(|k| k.savp) { "RTP/SAVP" } else { "RTP/AVP" };
    let _ = write!(s, "m=audio {} {profile}", local.port());
    for c in codecs {
        let _ = write!(s, " {}", c.payload_type());
    }
    if let Some(te) = telephone_event {
        let _ = write!(s, " {te}");
    }
    s.push_str("\r\n");
    for c in codecs {
        let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", c.payload_type(), c.name());
    }
    if let Some(te) = telephone_event {
        let _ = write!(s, "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n");
    }
    let _ = write!(s, "a=ptime:20\r\na={}\r\n", direction.attr());
    if let Some(k) = srtp {
        let key = base64::engine::general_purpose::STANDARD.encode(&k.local[..k.suite.master_len()]);
        let _ = write!(s, "a=crypto:{} {} inline:{key}\r\n", k.tag, k.suite.name());
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
m=video 4002 RTP/AVP 31\r\n";

    #[test]
    fn offerer_order_wins_and_telephone_event_found() {
        let n = negotiate(&SessionDescription::parse(OFFER).unwrap(), &[Codec::Pcmu, Codec::Pcma]).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.telephone_event, Some(101));
        assert_eq!(n.remote, Some("192.0.2.1:4000".parse().unwrap()));
        assert_eq!(n.direction, Direction::SendRecv);
    }

    #[test]
    fn g729_only_has_no_common_codec() {
        let offer = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
        assert_eq!(negotiate(&SessionDescription::parse(offer).unwrap(), &[Codec::Pcmu]), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn hold_forms() {
        let sendonly = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
        let n = negotiate(&SessionDescription::parse(sendonly).unwrap(), &[Codec::Pcmu]).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        let zero = b"v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let n = negotiate(&SessionDescription::parse(zero).unwrap(), &[Codec::Pcmu]).unwrap();
        assert_eq!(n.remote, None);
        assert_eq!(n.direction, Direction::Inactive);
    }

    #[test]
    fn built_answer_parses_back() {
        let body = build("127.0.0.1:10000".parse().unwrap(), 7, 1, &[Codec::Pcmu], Some(101), Direction::SendRecv, None);
        let sd = SessionDescription::parse(&body).unwrap();
        let n = negotiate(&sd, &[Codec::Pcmu]).unwrap();
        assert_eq!(n.remote, Some("127.0.0.1:10000".parse().unwrap()));
        assert_eq!(n.telephone_event, Some(101));
    }

    const SRTP_OFFER: &[u8] = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/SAVP 0\r\n\
a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20\r\n";

    #[test]
    fn srtp_offer_is_answered_with_our_own_key_on_the_chosen_line() {
        let n = negotiate(&SessionDescription::parse(SRTP_OFFER).unwrap(), &[Codec::Pcmu]).unwrap();
        let k = n.srtp.expect("crypto chosen");
        assert_eq!((k.tag, k.suite, k.savp), (2, Suite::AesCm128HmacSha1_32, true));
        assert_eq!(&k.remote[..4], b"70xw");
        assert_eq!(k.remote[30..], [0; MASTER_LEN - 30]);
        assert_ne!(k.local, k.remote);
        let answer = build("127.0.0.1:10000".parse().unwrap(), 1, 1, &[n.codec], None, n.direction, Some(&k));
        let back = SessionDescription::parse(&answer).unwrap();
        let line = back.audio().unwrap();
        assert_eq!(line.proto, "RTP/SAVP");
        assert_eq!(line.crypto.len(), 1);
        // The offerer completes its own offer with our answer: our local key is its remote key.
        let offered = Sdes { suite: k.suite, tag: 2, remote: [0; MASTER_LEN], local: k.remote, savp: true };
        let got = offered.completed_by(negotiate(&back, &[Codec::Pcmu]).unwrap().srtp).unwrap();
        assert_eq!((got.remote, got.local), (k.local, k.remote));
        assert!(!format!("{k:?}").contains("remote"), "keys stay out of Debug output");
    }

    #[test]
    fn savp_without_a_usable_key_is_refused_and_avp_with_keys_is_best_effort() {
        let mki = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4\r\n";
        assert_eq!(negotiate(&SessionDescription::parse(mki).unwrap(), &[Codec::Pcmu]), Err(SdpError::NoCommonCrypto));
        let short = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n";
        // A 30-byte key on a GCM line (which takes 28): refused, not truncated.
        let wrong = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AEAD_AES_128_GCM inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n";
        assert_eq!(negotiate(&SessionDescription::parse(wrong).unwrap(), &[Codec::Pcmu]), Err(SdpError::NoCommonCrypto));
        assert_eq!(negotiate(&SessionDescription::parse(short).unwrap(), &[Codec::Pcmu]), Err(SdpError::NoCommonCrypto));
        let avp = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n";
        let k = negotiate(&SessionDescription::parse(avp).unwrap(), &[Codec::Pcmu]).unwrap().srtp.unwrap();
        assert!(!k.savp);
    }
}

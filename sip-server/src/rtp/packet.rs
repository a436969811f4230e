//! RTP fixed header (RFC 3550 §5.1), parsed in place and written into a caller's buffer.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// A received packet: the header and a slice of the datagram holding the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than an RTP header")]
    TooShort,
    #[error("not RTP version 2")]
    BadVersion,
    #[error("header extension or CSRC list runs past the packet")]
    Truncated,
    #[error("bad padding")]
    BadPadding,
}

impl<'a> RtpPacket<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if buf.len() < 12 {
            return Err(RtpError::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let padding = buf[0] & 0x20 != 0;
        let extension = buf[0] & 0x10 != 0;
        let csrc_count = (buf[0] & 0x0f) as usize;
        let mut offset = 12 + 4 * csrc_count;
        if extension {
            if buf.len() < offset + 4 {
                return Err(RtpError::Truncated);
            }
            let words = u16::from_be_bytes([buf[offset + 2], buf[offset + 3]]) as usize;
            offset += 4 + 4 * words;
        }
        if buf.len() < offset {
            return Err(RtpError::Truncated);
        }
        let mut end = buf.len();
        if padding {
            let pad = buf[end - 1] as usize;
            if pad == 0 || offset + pad > end {
                return Err(RtpError::BadPadding);
            }
            end -= pad;
        }
        Ok(RtpPacket {
            header: RtpHeader {
                marker: buf[1] & 0x80 != 0,
                payload_type: buf[1] & 0x7f,
                sequence: u16::from_be_bytes([buf[2], buf[3]]),
                timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
                ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            },
            payload: &buf[offset..end],
        })
    }
}

impl RtpHeader {
    /// Writes the 12-byte header into `out[..12]`; returns 12.
    pub fn write(&self, out: &mut [u8]) -> usize {
        out[0] = 0x80;
        out[1] = (self.payload_type & 0x7f) | if self.marker { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        12
    }
}

/// RTCP packet types 200-204 share the RTP port space when muxed; this tells them apart (RFC 5761 §4).
pub fn looks_like_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (200..=204).contains(&buf[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        let h = RtpHeader { marker: true, payload_type: 8, sequence: 65535, timestamp: 0xdead_beef, ssrc: 42 };
        let mut buf = [0u8; 172];
        h.write(&mut buf);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.header, h);
        assert_eq!(p.payload.len(), 160);
        assert_eq!(RtpPacket::parse(&buf[..5]), Err(RtpError::TooShort));
        buf[0] = 0x8f; // 15 CSRCs claimed
        assert_eq!(RtpPacket::parse(&buf[..20]), Err(RtpError::Truncated));
        buf[0] = 0xa0; // padding with a zero count
        buf[171] = 0;
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::BadPadding));
    }
}

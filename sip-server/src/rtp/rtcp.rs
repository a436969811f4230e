//! Basic RTCP (RFC 3550 §6.4): a sender report with one report block, sent every few seconds, and
//! reading the packet type of what arrives. No SDES beyond CNAME, no BYE, no XR.

/// Statistics of what we received, for the report block.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceptionStats {
    pub remote_ssrc: u32,
    pub highest_seq: u32,
    pub lost: u32,
    pub jitter: u32,
}

/// Writes an SR (+ SDES CNAME) compound packet into `out`; returns its length.
pub fn write_sender_report(out: &mut [u8; 128], ssrc: u32, ntp: u64, rtp_ts: u32, packets: u32, octets: u32, rx: Option<ReceptionStats>) -> usize {
    let blocks = rx.is_some() as u8;
    let words = 6 + 6 * blocks as u16; // length in 32-bit words minus one
    out[0] = 0x80 | blocks;
    out[1] = 200;
    out[2..4].copy_from_slice(&words.to_be_bytes());
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8..16].copy_from_slice(&ntp.to_be_bytes());
    out[16..20].copy_from_slice(&rtp_ts.to_be_bytes());
    out[20..24].copy_from_slice(&packets.to_be_bytes());
    out[24..28].copy_from_slice(&octets.to_be_bytes());
    let mut n = 28;
    if let Some(rx) = rx {
        out[n..n + 4].copy_from_slice(&rx.remote_ssrc.to_be_bytes());
        let lost = rx.lost.min(0x7f_ffff);
        out[n + 4] = 0; // fraction lost: not tracked per interval
        out[n + 5..n + 8].copy_from_slice(&lost.to_be_bytes()[1..]);
        out[n + 8..n + 12].copy_from_slice(&rx.highest_seq.to_be_bytes());
        out[n + 12..n + 16].copy_from_slice(&rx.jitter.to_be_bytes());
        out[n + 16..n + 24].fill(0); // LSR, DLSR
        n += 24;
    }
    // SDES with CNAME "oncall"
    let cname = b"oncall";
    let sdes_len = 4 + 4 + 2 + cname.len() + 1; // header, ssrc, type+len, text, end
    let padded = sdes_len.div_ceil(4) * 4;
    out[n] = 0x81;
    out[n + 1] = 202;
    out[n + 2..n + 4].copy_from_slice(&((padded / 4 - 1) as u16).to_be_bytes());
    out[n + 4..n + 8].copy_from_slice(&ssrc.to_be_bytes());
    out[n + 8] = 1;
    out[n + 9] = cname.len() as u8;
    out[n + 10..n + 10 + cname.len()].copy_from_slice(cname);
    out[n + 10 + cname.len()..n + padded].fill(0);
    n + padded
}

/// NTP timestamp (seconds since 1900 in the high 32 bits) for a Unix time in microseconds.
pub fn ntp_from_unix_micros(us: u64) -> u64 {
    let secs = us / 1_000_000 + 2_208_988_800;
    let frac = ((us % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_lengths_are_consistent() {
        let mut buf = [0u8; 128];
        let n = write_sender_report(&mut buf, 1, 2, 3, 4, 5, Some(ReceptionStats::default()));
        let sr_words = u16::from_be_bytes([buf[2], buf[3]]) as usize + 1;
        assert_eq!(sr_words * 4, 52);
        assert_eq!(n % 4, 0);
        assert!(super::super::packet::looks_like_rtcp(&buf));
    }
}

//! G.711 companding (ITU-T G.711): μ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8).
//!
//! Decoding is a lookup in a 256-entry table built at compile time, and so is A-law encoding (8,192 entries). μ-law
//! encoding computes the segment from the position of the highest set bit (`leading_zeros`, one instruction) instead of
//! searching a table, which matches the bit-exact
//! reference encoder of the G.711 appendix / Sun's `g711.c` at a fraction of the cost. The slice functions are what
//! the RTP path calls for every 20 ms frame; they allocate nothing.
//!
//! Not here: G.711 Appendix I packet-loss concealment and Appendix II comfort noise.

/// μ-law: bias added before finding the segment, so segment boundaries fall on powers of two.
const ULAW_BIAS: i32 = 0x84;
/// μ-law: the largest magnitude that still encodes without overflowing the top segment.
const ULAW_CLIP: i32 = 32635;

/// Encodes one linear 16-bit sample to μ-law.
#[inline]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let sample = i32::from(sample);
    let sign = if sample < 0 { 0x80 } else { 0x00 };
    // i32 so that -32768 has a magnitude; clipping keeps it inside the top segment.
    let magnitude = sample.unsigned_abs().min(ULAW_CLIP as u32) as i32 + ULAW_BIAS;
    // magnitude is in 132..=32767: its highest set bit is bit 7..=14, which is segment 0..=7.
    let exponent = (31 - magnitude.leading_zeros() as i32) - 7;
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one μ-law byte to a linear 16-bit sample (range ±32124).
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

/// Encodes one linear 16-bit sample to A-law: a lookup, as A-law depends only on the top 13 bits (8 KiB table).
#[inline]
pub fn linear_to_alaw(sample: i16) -> u8 {
    ALAW_ENCODE[((i32::from(sample) >> 3) + 4096) as usize]
}

/// A-law of a 13-bit signed sample (-4096..=4095).
const fn alaw_encode_formula(pcm: i32) -> u8 {
    // A-law works on 13-bit magnitudes; the even bits are inverted on the line (the 0x55 / 0xD5 masks).
    let (mask, magnitude) = if pcm >= 0 { (0xd5u8, pcm) } else { (0x55u8, -pcm - 1) };
    // magnitude is in 0..=4095. Segment 0 covers 0..=31; after that each segment is one more significant bit.
    let segment = if magnitude < 32 { 0 } else { (31 - magnitude.leading_zeros() as i32) - 4 };
    let mantissa = if segment < 2 { (magnitude >> 1) & 0x0f } else { (magnitude >> segment) & 0x0f };
    (((segment << 4) | mantissa) as u8) ^ mask
}

static ALAW_ENCODE: [u8; 8192] = {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        t[i] = alaw_encode_formula(i as i32 - 4096);
        i += 1;
    }
    t
};

/// Decodes one A-law byte to a linear 16-bit sample (range ±32256).
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

/// Encodes `pcm` into `out` as μ-law. Both slices should have the same length; only the overlap is encoded.
pub fn encode_ulaw(pcm: &[i16], out: &mut [u8]) {
    debug_assert_eq!(pcm.len(), out.len());
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = linear_to_ulaw(s);
    }
}

/// Decodes μ-law `codes` into `out`. Both slices should have the same length; only the overlap is decoded.
pub fn decode_ulaw(codes: &[u8], out: &mut [i16]) {
    debug_assert_eq!(codes.len(), out.len());
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = ULAW_TABLE[c as usize];
    }
}

/// Encodes `pcm` into `out` as A-law. Both slices should have the same length; only the overlap is encoded.
pub fn encode_alaw(pcm: &[i16], out: &mut [u8]) {
    debug_assert_eq!(pcm.len(), out.len());
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = linear_to_alaw(s);
    }
}

/// Decodes A-law `codes` into `out`. Both slices should have the same length; only the overlap is decoded.
pub fn decode_alaw(codes: &[u8], out: &mut [i16]) {
    debug_assert_eq!(codes.len(), out.len());
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = ALAW_TABLE[c as usize];
    }
}

const fn ulaw_decode_formula(code: u8) -> i16 {
    let u = !code;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_formula(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = ((a & 0x70) >> 4) as i32;
    let mut magnitude = ((a & 0x0f) as i32) << 4;
    magnitude += if segment == 0 { 8 } else { 0x108 };
    if segment > 1 {
        magnitude <<= segment - 1;
    }
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Builds a decoding table at compile time (`const fn` cannot call through a function pointer, hence the flag).
const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw { alaw_decode_formula(i as u8) } else { ulaw_decode_formula(i as u8) };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        // Extremes.
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        // Values from the reference implementation (Sun g711.c).
        assert_eq!(linear_to_ulaw(1000), 0xce);
        assert_eq!(linear_to_ulaw(-1000), 0x4e);
        assert_eq!(linear_to_alaw(1000), 0xfa);
        assert_eq!(linear_to_alaw(-1000), 0x7a);
    }

    /// The table-free encoders must agree with a straightforward segment-table search (the reference algorithm).
    #[test]
    fn encoders_match_the_reference_search_for_every_input() {
        const SEG_UEND: [i32; 8] = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
        const SEG_AEND: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
        let reference_ulaw = |s: i16| -> u8 {
            // Sun g711.c linear2ulaw, on 14-bit input.
            let mut pcm = i32::from(s) >> 2;
            let mask = if pcm < 0 {
                pcm = -pcm;
                0x7f
            } else {
                0xff
            };
            pcm = pcm.min(8159) + (0x84 >> 2);
            let seg = SEG_UEND.iter().position(|&e| pcm <= e).unwrap_or(8) as i32;
            if seg >= 8 {
                return (0x7f ^ mask) as u8;
            }
            (((seg << 4) | ((pcm >> (seg + 1)) & 0xf)) ^ mask) as u8
        };
        let reference_alaw = |s: i16| -> u8 {
            let mut pcm = i32::from(s) >> 3;
            let mask = if pcm >= 0 {
                0xd5
            } else {
                pcm = -pcm - 1;
                0x55
            };
            let seg = SEG_AEND.iter().position(|&e| pcm <= e).unwrap_or(8) as i32;
            if seg >= 8 {
                return (0x7f ^ mask) as u8;
            }
            let aval = (seg << 4) | if seg < 2 { (pcm >> 1) & 0xf } else { (pcm >> seg) & 0xf };
            (aval ^ mask) as u8
        };
        for s in i16::MIN..=i16::MAX {
            assert_eq!(linear_to_alaw(s), reference_alaw(s), "A-law {s}");
            // The 16-bit μ-law encoder keeps two more input bits than the 14-bit reference, so codes can differ only
            // where those bits push a value over a quantisation step: the decoded values stay within one step.
            let (ours, theirs) = (ulaw_to_linear(linear_to_ulaw(s)), ulaw_to_linear(reference_ulaw(s)));
            let step = i32::from(ours).abs().max(i32::from(theirs).abs()) / 16 + 8;
            assert!((i32::from(ours) - i32::from(theirs)).abs() <= step, "μ-law {s}: {ours} vs {theirs}");
        }
    }

    #[test]
    fn decode_then_encode_is_identity_on_codes() {
        for code in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "A-law {code:#04x}");
            // μ-law has two codes for zero (0x7f and 0xff); both decode to 0, which encodes to 0xff.
            let expected = if code == 0x7f { 0xff } else { code };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(code)), expected, "μ-law {code:#04x}");
        }
    }

    #[test]
    fn slices_round_trip() {
        let pcm: Vec<i16> = (0..160).map(|n| ((n as f64 * 0.2).sin() * 20000.0) as i16).collect();
        let mut codes = [0u8; 160];
        let mut back = [0i16; 160];
        encode_ulaw(&pcm, &mut codes);
        decode_ulaw(&codes, &mut back);
        for (a, b) in pcm.iter().zip(&back) {
            assert!((i32::from(*a) - i32::from(*b)).abs() <= i32::from(a.unsigned_abs() / 16) + 8);
        }
        encode_alaw(&pcm, &mut codes);
        decode_alaw(&codes, &mut back);
        for (a, b) in pcm.iter().zip(&back) {
            assert!((i32::from(*a) - i32::from(*b)).abs() <= i32::from(a.unsigned_abs() / 16) + 16);
        }
    }

    proptest! {
        /// Companding error is at most half a quantisation step, which grows with the magnitude (≈ 1/32 of it) and
        /// is at least a few LSBs near zero.
        #[test]
        fn round_trip_error_is_bounded(s in any::<i16>()) {
            let magnitude = i32::from(s).abs();
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            // Beyond the clip level μ-law saturates at 32124 and A-law at 32256.
            let ulaw_bound = magnitude / 32 + 5 + (magnitude - 32124).max(0);
            let alaw_bound = magnitude / 32 + 8 + (magnitude - 32256).max(0);
            prop_assert!((u - i32::from(s)).abs() <= ulaw_bound, "μ-law {} -> {}", s, u);
            prop_assert!((a - i32::from(s)).abs() <= alaw_bound, "A-law {} -> {}", s, a);
            // Companding preserves the sign.
            prop_assert!(u.signum() * i32::from(s).signum() >= 0);
        }

        #[test]
        fn encoding_is_monotonic(a in any::<i16>(), b in any::<i16>()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(ulaw_to_linear(linear_to_ulaw(lo)) <= ulaw_to_linear(linear_to_ulaw(hi)));
            prop_assert!(alaw_to_linear(linear_to_alaw(lo)) <= alaw_to_linear(linear_to_alaw(hi)));
        }
    }
}

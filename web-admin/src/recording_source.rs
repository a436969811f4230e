//! HTTP Range (RFC 9110 §14) over stored recordings.
//!
//! Where recordings are read from is `oncall_recordings::access` ([`RecordingSource`]: the local
//! folder, or the server's spool-then-archive source, which reads S3 once the spool copy is gone).
//! The handler does the HTTP part: one `bytes=a-b` / `a-` / `-n` range answers 206 with
//! `Content-Range`, an unsatisfiable one 416, none 200. Multi-range requests get the whole
//! file (allowed by the RFC), since browsers' audio elements never send them.

use std::ops::Range;

pub use oncall_recordings::access::{LocalRecordings, RecordingSource};

/// What a `Range` header asks of a resource of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: send everything with 200.
    Full,
    /// One satisfiable range: 206.
    Partial(Range<u64>),
    /// A range beyond the end: 416.
    Unsatisfiable,
}

/// Parses a `Range` header value against `size`.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(h) = header else { return RangeRequest::Full };
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return RangeRequest::Full };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeRequest::Full };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // Suffix: the last n bytes.
        let Ok(n) = b.parse::<u64>() else { return RangeRequest::Full };
        if n == 0 {
            return RangeRequest::Unsatisfiable;
        }
        size.saturating_sub(n)..size
    } else {
        let Ok(start) = a.parse::<u64>() else { return RangeRequest::Full };
        let end = if b.is_empty() {
            size
        } else {
            match b.parse::<u64>() {
                Ok(last) if last >= start => last.saturating_add(1).min(size),
                _ => return RangeRequest::Full,
            }
        };
        if start >= size {
            return RangeRequest::Unsatisfiable;
        }
        start..end
    };
    if range.start >= range.end {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=0-"), 100), RangeRequest::Partial(0..100));
        assert_eq!(parse_range(Some("bytes=10-19"), 100), RangeRequest::Partial(10..20));
        assert_eq!(parse_range(Some("bytes=90-200"), 100), RangeRequest::Partial(90..100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), RangeRequest::Partial(90..100));
        assert_eq!(parse_range(Some("bytes=-500"), 100), RangeRequest::Partial(0..100));
        assert_eq!(parse_range(Some("bytes=100-"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=5-2"), 100), RangeRequest::Full);
    }
}

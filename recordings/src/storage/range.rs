//! HTTP `Range` requests for one resource of known length (RFC 9110 §14): parsing the header into one byte range,
//! and the status, `Content-Length` and `Content-Range` of the answer. No HTTP types: the web admin maps these onto
//! its framework.
//!
//! Deliberately not supported: multiple ranges (`multipart/byteranges`; RFC 9110 lets a server ignore such a
//! request and send the whole resource, which players handle), `If-Range`, and units other than `bytes`.

use std::fmt;

/// An inclusive range of byte positions, `first..=last`, within a resource of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    /// Number of bytes in the range (never 0: an empty range is unrepresentable).
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Always false; present because `len` is.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value of a 206 answer: `bytes 0-99/1000`.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.first, self.last)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes={}-{}", self.first, self.last)
    }
}

/// What to send for a request, given its `Range` header and the resource length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// 200 with the whole resource: no header, one we ignore (bad syntax, other unit, several ranges).
    Full,
    /// 206 Partial Content with this range.
    Partial(ByteRange),
    /// 416 Range Not Satisfiable with `Content-Range: bytes */total`.
    Unsatisfiable,
}

impl RangeRequest {
    /// Interprets `header` (the `Range` value, if any) for a resource of `total` bytes.
    pub fn parse(header: Option<&str>, total: u64) -> RangeRequest {
        let Some(header) = header else { return RangeRequest::Full };
        let Some((unit, set)) = header.trim().split_once('=') else { return RangeRequest::Full };
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return RangeRequest::Full;
        }
        let set = set.trim();
        if set.contains(',') {
            return RangeRequest::Full;
        }
        let Some((first, last)) = set.split_once('-') else { return RangeRequest::Full };
        let (first, last) = (first.trim(), last.trim());
        match (first.is_empty(), last.is_empty()) {
            // `-N`: the last N bytes.
            (true, false) => {
                let Some(n) = digits(last) else { return RangeRequest::Full };
                if n == 0 || total == 0 {
                    return RangeRequest::Unsatisfiable;
                }
                RangeRequest::Partial(ByteRange { first: total.saturating_sub(n), last: total - 1 })
            }
            // `A-` or `A-B`.
            (false, _) => {
                let Some(a) = digits(first) else { return RangeRequest::Full };
                let b = if last.is_empty() {
                    None
                } else {
                    match digits(last) {
                        Some(b) if b >= a => Some(b),
                        // `last < first` or garbage: syntactically invalid, so ignored (RFC 9110 §14.1.1).
                        _ => return RangeRequest::Full,
                    }
                };
                if a >= total {
                    return RangeRequest::Unsatisfiable;
                }
                RangeRequest::Partial(ByteRange { first: a, last: b.map_or(total - 1, |b| b.min(total - 1)) })
            }
            (true, true) => RangeRequest::Full,
        }
    }

    /// The answer's head: status code, `Content-Length` and `Content-Range` (if any).
    pub fn head(&self, total: u64) -> ResponseHead {
        match *self {
            RangeRequest::Full => ResponseHead { status: 200, content_length: total, content_range: None },
            RangeRequest::Partial(r) => {
                ResponseHead { status: 206, content_length: r.len(), content_range: Some(r.content_range(total)) }
            }
            RangeRequest::Unsatisfiable => {
                ResponseHead { status: 416, content_length: 0, content_range: Some(format!("bytes */{total}")) }
            }
        }
    }
}

/// Status and length headers of an answer to a (possibly ranged) GET. Always also send `Accept-Ranges: bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub content_length: u64,
    pub content_range: Option<String>,
}

/// A non-empty run of ASCII digits as a number; `None` for anything else, including overflow.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(h: &str, total: u64) -> RangeRequest {
        RangeRequest::parse(Some(h), total)
    }

    fn part(first: u64, last: u64) -> RangeRequest {
        RangeRequest::Partial(ByteRange { first, last })
    }

    #[test]
    fn the_rfc_9110_examples() {
        // RFC 9110 §14.1.2, for a 10000-byte representation.
        assert_eq!(p("bytes=0-499", 10000), part(0, 499));
        assert_eq!(p("bytes=500-999", 10000), part(500, 999));
        assert_eq!(p("bytes=-500", 10000), part(9500, 9999));
        assert_eq!(p("bytes=9500-", 10000), part(9500, 9999));
        assert_eq!(p("bytes=0-0", 10000), part(0, 0));
        assert_eq!(p("bytes=-1", 10000), part(9999, 9999));
    }

    #[test]
    fn clamps_and_rejects() {
        assert_eq!(p("bytes=0-99999", 100), part(0, 99));
        assert_eq!(p("bytes=-500", 100), part(0, 99), "suffix longer than the file is the whole file");
        assert_eq!(p("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(p("bytes=100-200", 100), RangeRequest::Unsatisfiable);
        assert_eq!(p("bytes=-0", 100), RangeRequest::Unsatisfiable);
        assert_eq!(p("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(p("bytes=-5", 0), RangeRequest::Unsatisfiable);
    }

    #[test]
    fn ignores_what_it_does_not_serve() {
        assert_eq!(RangeRequest::parse(None, 100), RangeRequest::Full);
        for h in ["", "bytes", "bytes=", "bytes=-", "bytes=5-2", "bytes=a-b", "bytes=1-2,4-5", "items=0-1", "bytes=+1-2",
            "bytes=99999999999999999999999-"]
        {
            assert_eq!(p(h, 100), RangeRequest::Full, "{h:?}");
        }
        assert_eq!(p(" Bytes = 1 - 2 ", 100), part(1, 2), "whitespace and case are tolerated");
    }

    #[test]
    fn response_heads() {
        assert_eq!(RangeRequest::Full.head(10), ResponseHead { status: 200, content_length: 10, content_range: None });
        assert_eq!(
            part(2, 5).head(10),
            ResponseHead { status: 206, content_length: 4, content_range: Some("bytes 2-5/10".into()) }
        );
        assert_eq!(
            RangeRequest::Unsatisfiable.head(10),
            ResponseHead { status: 416, content_length: 0, content_range: Some("bytes */10".into()) }
        );
    }

    proptest::proptest! {
        #[test]
        fn partial_ranges_lie_inside_the_resource(a in 0u64..2000, b in 0u64..2000, total in 0u64..1500) {
            for h in [format!("bytes={a}-{b}"), format!("bytes={a}-"), format!("bytes=-{b}")] {
                if let RangeRequest::Partial(r) = RangeRequest::parse(Some(&h), total) {
                    proptest::prop_assert!(r.first <= r.last && r.last < total);
                }
            }
        }
    }
}

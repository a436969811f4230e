//! Splitting a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3), sans-IO.
//!
//! Leading CRLFs (keepalives, RFC 5626 §3.5.1) are skipped. A header section longer than the
//! message limit, or a Content-Length that cannot be read, is a framing error: the stream cannot be
//! resynchronised, so the connection is closed.

use crate::message::parse::{canonical_name, find_header_end, MAX_MESSAGE_SIZE};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("header section exceeds {MAX_MESSAGE_SIZE} bytes")]
    TooLarge,
    #[error("Content-Length missing or unreadable in a stream message")]
    BadContentLength,
}

#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// How far the search for the end of the header section has looked without finding it, so a
    /// message trickling in byte by byte is scanned once, not once per byte.
    scanned: usize,
}

impl StreamFramer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not yet form a whole message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, if one is buffered.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let skip = self.buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        if skip > 0 {
            self.buf.drain(..skip);
            self.scanned = 0;
        }
        // Back off 3 bytes: the CRLFCRLF may straddle what was scanned and what just arrived.
        let from = self.scanned.saturating_sub(3);
        let Some(head_end) = find_header_end(&self.buf[from..]).map(|e| e + from) else {
            self.scanned = self.buf.len();
            return if self.buf.len() > MAX_MESSAGE_SIZE { Err(FramingError::TooLarge) } else { Ok(None) };
        };
        let body_len = content_length(&self.buf[..head_end])?;
        if head_end + body_len > MAX_MESSAGE_SIZE {
            return Err(FramingError::TooLarge);
        }
        if self.buf.len() < head_end + body_len {
            return Ok(None);
        }
        let rest = self.buf.split_off(head_end + body_len);
        self.scanned = 0;
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let text = String::from_utf8_lossy(head);
    for line in text.split('\n') {
        let Some((name, value)) = line.split_once(':') else { continue };
        if canonical_name(name.trim()) == "Content-Length" {
            return value.trim().parse().map_err(|_| FramingError::BadContentLength);
        }
    }
    // RFC 3261 §20.14: mandatory on streams; a missing one is read as 0 to stay lenient with keepalive-ish peers.
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pipelined_and_partial_messages() {
        let m1 = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";
        let m2 = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        let mut f = StreamFramer::new();
        f.push(b"\r\n\r\n");
        f.push(m1);
        f.push(&m2[..10]);
        assert_eq!(f.next_message().unwrap().unwrap(), m1.to_vec());
        assert_eq!(f.next_message().unwrap(), None);
        f.push(&m2[10..]);
        assert_eq!(f.next_message().unwrap().unwrap(), m2.to_vec());
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn byte_by_byte_arrival_frames_the_same() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nhi";
        let mut f = StreamFramer::new();
        for (i, b) in m.iter().enumerate() {
            f.push(std::slice::from_ref(b));
            let got = f.next_message().unwrap();
            assert_eq!(got.is_some(), i == m.len() - 1, "at byte {i}");
            if let Some(msg) = got {
                assert_eq!(msg, m.to_vec());
            }
        }
    }

    #[test]
    fn errors() {
        let mut f = StreamFramer::new();
        f.push(b"INVITE x SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(f.next_message(), Err(FramingError::BadContentLength));
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; MAX_MESSAGE_SIZE + 1]);
        assert_eq!(f.next_message(), Err(FramingError::TooLarge));
    }
}

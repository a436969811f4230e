//! The CSeq header (RFC 3261 §20.16): a 32-bit sequence number below 2^31 and the method.

use super::method::Method;
use super::scanner::Scanner;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, &'static str> {
        let mut sc = Scanner::new(s);
        sc.skip_ws();
        let digits = sc.take_while(|b| b.is_ascii_digit()).ok_or("CSeq number missing")?;
        // §8.1.1.5: the sequence number MUST be expressible as a 32-bit integer below 2^31.
        let seq: u32 = digits.parse().map_err(|_| "CSeq number too large")?;
        if seq >= 1 << 31 {
            return Err("CSeq number too large");
        }
        let before = sc.pos();
        sc.skip_ws();
        if sc.pos() == before {
            return Err("CSeq needs a space before the method");
        }
        let method = sc.token().ok_or("CSeq method missing")?;
        sc.skip_ws();
        if !sc.is_empty() {
            return Err("junk after CSeq method");
        }
        Ok(CSeq { seq, method: Method::from_token(method) })
    }
}

impl std::fmt::Display for CSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

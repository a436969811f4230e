//! A byte cursor over one (already unfolded) header value, with the RFC 3261 §25.1 building blocks:
//! linear white space around separators, `token`, `quoted-string`, and generic parameters.
//!
//! The parser's validators are written on top of this so that the same whitespace rules
//! (SWS may surround `;`, `=`, `/`, `,`, `:`; LWS after a folded line is already one space)
//! apply to every header. It does not know any header's meaning.

/// RFC 3261 `token` characters: alphanum and `-.!%*_+` + "`'~".
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// RFC 3261 `word` characters (Call-ID): token chars plus `()<>:\"/[]?{}`.
pub fn is_word_char(b: u8) -> bool {
    is_token_char(b) || b"()<>:\\\"/[]?{}".contains(&b)
}

/// A token is non-empty and made only of token characters.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(s: &'a str) -> Self {
        Scanner { bytes: s.as_bytes(), pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn rest(&self) -> &'a str {
        // pos only ever advances over ASCII bytes or whole quoted-strings, so it is on a char boundary.
        std::str::from_utf8(&self.bytes[self.pos..]).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.bytes.len());
    }

    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Consumes `SWS c SWS` if the next non-blank byte is `c`.
    pub fn eat_sep(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Consumes exactly byte `c` with no surrounding space.
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn token(&mut self) -> Option<&'a str> {
        self.take_while(is_token_char)
    }

    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        if self.pos == start {
            None
        } else {
            std::str::from_utf8(&self.bytes[start..self.pos]).ok()
        }
    }

    /// `quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE`; returns the raw text including quotes.
    pub fn quoted_string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.eat(b'"') {
            return None;
        }
        loop {
            match self.peek() {
                None => {
                    self.pos = start;
                    return None;
                }
                Some(b'"') => {
                    self.pos += 1;
                    return std::str::from_utf8(&self.bytes[start..self.pos]).ok();
                }
                Some(b'\\') => {
                    // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                    match self.bytes.get(self.pos + 1) {
                        Some(&c) if c <= 0x7f && c != b'\n' && c != b'\r' => self.pos += 2,
                        _ => {
                            self.pos = start;
                            return None;
                        }
                    }
                }
                Some(c) if c == b'\r' || c == b'\n' => {
                    self.pos = start;
                    return None;
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Generic parameters `*( SEMI token [ EQUAL ( token / host / quoted-string ) ] )`.
    /// Stops at the first byte that is not `;` (after optional space). Fails on an empty name.
    pub fn params(&mut self) -> Result<Vec<(String, Option<String>)>, &'static str> {
        let mut out = Vec::new();
        while self.eat_sep(b';') {
            let name = self.token().ok_or("empty or invalid parameter name")?;
            let value = if self.eat_sep(b'=') {
                if self.peek() == Some(b'"') {
                    Some(self.quoted_string().ok_or("unterminated quoted parameter value")?.to_string())
                } else {
                    // host values may hold ':' and '[' ']' (IPv6)
                    Some(
                        self.take_while(|b| is_token_char(b) || b == b':' || b == b'[' || b == b']')
                            .ok_or("empty parameter value")?
                            .to_string(),
                    )
                }
            } else {
                None
            };
            out.push((name.to_ascii_lowercase(), value));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_with_spaces_around_separators() {
        let mut s = Scanner::new(" ;   tag    = 1918181833n;lr");
        let p = s.params().unwrap();
        assert_eq!(p, vec![("tag".into(), Some("1918181833n".into())), ("lr".into(), None)]);
        assert!(s.is_empty());
    }

    #[test]
    fn empty_param_name_is_an_error() {
        assert!(Scanner::new(";;").params().is_err());
    }

    #[test]
    fn quoted_string_with_escapes() {
        let mut s = Scanner::new(r#""J Rosenberg \\\"" <"#);
        assert_eq!(s.quoted_string(), Some(r#""J Rosenberg \\\"""#));
        assert!(Scanner::new("\"open").quoted_string().is_none());
    }
}

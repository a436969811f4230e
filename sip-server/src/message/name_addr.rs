//! `name-addr / addr-spec` with header parameters (RFC 3261 §20.10, §25.1): From, To, Contact,
//! Route and Record-Route values.
//!
//! In the bare addr-spec form the URI ends at the first `;` (what follows are header parameters)
//! and may not contain `,`, `?` or `;` (RFC 4475 REGBADCT). Inside `<...>` no white space is allowed
//! (RFC 4475 BADASPEC); an unquoted display name is tokens only (BADDN).

use super::scanner::Scanner;
use super::uri::Uri;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as written (quoted-string with its quotes, or the tokens).
    pub display: Option<String>,
    pub uri: Uri,
    /// Whether the URI was written inside `<...>` (must be kept when echoing a route).
    pub bracketed: bool,
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub fn parse(s: &str) -> Result<NameAddr, &'static str> {
        let mut sc = Scanner::new(s);
        sc.skip_ws();
        let mut display = None;
        let bracketed;
        let uri_text;
        if sc.peek() == Some(b'"') {
            display = Some(sc.quoted_string().ok_or("unbalanced quote in display name")?.to_string());
            sc.skip_ws();
            if !sc.eat(b'<') {
                return Err("display name not followed by <");
            }
            uri_text = take_bracketed(&mut sc)?;
            bracketed = true;
        } else {
            // Try "*(token LWS) <": tokens then a '<'.
            let save = sc.clone();
            let mut words = Vec::new();
            loop {
                sc.skip_ws();
                match sc.token() {
                    Some(t) => words.push(t),
                    None => break,
                }
            }
            sc.skip_ws();
            if sc.eat(b'<') {
                if !words.is_empty() {
                    display = Some(words.join(" "));
                }
                uri_text = take_bracketed(&mut sc)?;
                bracketed = true;
            } else {
                sc = save;
                let rest = sc.rest();
                let end = rest.find(';').unwrap_or(rest.len());
                let text = rest[..end].trim();
                if text.contains(['?', ',', ' ', '\t', '"']) {
                    return Err("a bare URI may not hold , ? or spaces (quote the display name or use <>)");
                }
                sc.advance(end);
                uri_text = text.to_string();
                bracketed = false;
            }
        }
        let uri = Uri::parse(&uri_text).map_err(|e| e.0)?;
        let params = sc.params()?;
        sc.skip_ws();
        if !sc.is_empty() {
            return Err("junk after address");
        }
        Ok(NameAddr { display, uri, bracketed, params })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }
}

/// Reads the addr-spec after `<` up to `>`; white space right inside the brackets is an error.
fn take_bracketed(sc: &mut Scanner<'_>) -> Result<String, &'static str> {
    let rest = sc.rest();
    let end = rest.find('>').ok_or("missing >")?;
    let inner = &rest[..end];
    sc.advance(end + 1);
    Ok(inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = NameAddr::parse(" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(a.tag(), Some("1918181833n"));
        assert!(!a.bracketed);
        let a = NameAddr::parse(r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#).unwrap();
        assert_eq!(a.tag(), Some("98asjd8"));
        let a = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display.as_deref(), Some("caller"));
        let a = NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=x").unwrap();
        assert_eq!(a.display.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
        assert!(NameAddr::parse("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").is_ok());
    }

    #[test]
    fn rejects_torture_cases() {
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        assert!(NameAddr::parse("\"Joe\" <sip:joe@example.org>;;;;").is_err());
    }
}

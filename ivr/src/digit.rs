//! The sixteen DTMF keys as a type.
//!
//! A `Digit` is what a caller pressed, whichever way it reached us (RFC 4733 telephone-events, SIP INFO, or in-band
//! tones). It converts to and from the keypad character and the RFC 4733 §3.2 event code (0-9 → 0-9, `*` → 10,
//! `#` → 11, `A`-`D` → 12-15). It serialises as its one-character string (`"5"`, `"*"`) so configuration files and the
//! database read naturally. It deliberately knows nothing about how long a key was held: that belongs to the detectors.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One key of the 4×4 DTMF keypad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Digit {
    D0,
    D1,
    D2,
    D3,
    D4,
    D5,
    D6,
    D7,
    D8,
    D9,
    /// `*`
    Star,
    /// `#`
    Pound,
    A,
    B,
    C,
    D,
}

impl Digit {
    /// Every digit, in RFC 4733 event-code order (so `ALL[n].event_code() == n`).
    pub const ALL: [Digit; 16] = [
        Digit::D0,
        Digit::D1,
        Digit::D2,
        Digit::D3,
        Digit::D4,
        Digit::D5,
        Digit::D6,
        Digit::D7,
        Digit::D8,
        Digit::D9,
        Digit::Star,
        Digit::Pound,
        Digit::A,
        Digit::B,
        Digit::C,
        Digit::D,
    ];

    /// The digit for a keypad character. Letters are accepted in either case because some PBXs send `a`-`d`.
    pub fn from_char(c: char) -> Option<Digit> {
        Some(match c {
            '0'..='9' => Digit::ALL[(c as u8 - b'0') as usize],
            '*' => Digit::Star,
            '#' => Digit::Pound,
            'A' | 'a' => Digit::A,
            'B' | 'b' => Digit::B,
            'C' | 'c' => Digit::C,
            'D' | 'd' => Digit::D,
            _ => return None,
        })
    }

    /// The keypad character (`'0'`-`'9'`, `'*'`, `'#'`, `'A'`-`'D'`).
    pub fn to_char(self) -> char {
        b"0123456789*#ABCD"[self.event_code() as usize] as char
    }

    /// The digit for an RFC 4733 §3.2 event code; `None` for codes ≥ 16, which are not DTMF (e.g. 32+ are modem
    /// and fax tones).
    pub fn from_event_code(code: u8) -> Option<Digit> {
        Digit::ALL.get(code as usize).copied()
    }

    /// The RFC 4733 §3.2 event code.
    pub fn event_code(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_char())
    }
}

impl Serialize for Digit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 4];
        serializer.serialize_str(self.to_char().encode_utf8(&mut buf))
    }
}

impl<'de> Deserialize<'de> for Digit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DigitVisitor;

        impl serde::de::Visitor<'_> for DigitVisitor {
            type Value = Digit;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a DTMF key: one of 0-9, *, #, A-D")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digit, E> {
                let mut chars = v.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        Digit::from_char(c).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
                    }
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }

            fn visit_char<E: serde::de::Error>(self, v: char) -> Result<Digit, E> {
                Digit::from_char(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Char(v), &self))
            }
        }

        deserializer.deserialize_str(DigitVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_codes_follow_rfc4733() {
        for (code, digit) in Digit::ALL.iter().enumerate() {
            assert_eq!(digit.event_code() as usize, code);
            assert_eq!(Digit::from_event_code(code as u8), Some(*digit));
        }
        assert_eq!(Digit::Star.event_code(), 10);
        assert_eq!(Digit::Pound.event_code(), 11);
        assert_eq!(Digit::D.event_code(), 15);
        assert_eq!(Digit::from_event_code(16), None);
        assert_eq!(Digit::from_event_code(255), None);
    }

    #[test]
    fn chars_round_trip() {
        for digit in Digit::ALL {
            assert_eq!(Digit::from_char(digit.to_char()), Some(digit));
            assert_eq!(digit.to_string(), digit.to_char().to_string());
        }
        assert_eq!(Digit::from_char('7'), Some(Digit::D7));
        assert_eq!(Digit::from_char('b'), Some(Digit::B));
        assert_eq!(Digit::from_char('E'), None);
        assert_eq!(Digit::from_char(' '), None);
        assert_eq!(Digit::Pound.to_string(), "#");
    }

    #[test]
    fn serde_uses_the_key_character() {
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer;

        let de: StrDeserializer<'_, Error> = "#".into_deserializer();
        assert_eq!(Digit::deserialize(de), Ok(Digit::Pound));
        let de: StrDeserializer<'_, Error> = "12".into_deserializer();
        assert!(Digit::deserialize(de).is_err());
        let de: StrDeserializer<'_, Error> = "x".into_deserializer();
        assert!(Digit::deserialize(de).is_err());
    }
}

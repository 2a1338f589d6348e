//! How `kv` reads keys and values from text and prints them back.
//!
//! Two modes, chosen by `kv --hex`:
//!
//! * **Text** (the default). Input is taken byte for byte as typed: `put a\x00 1` stores the
//!   five-byte key `a\x00`. Output prints valid UTF-8 as is, except control characters (tab,
//!   newline, `0x00`..`0x1f`, `0x7f`), which print as `\xNN`, and any byte that is not part of
//!   valid UTF-8, which also prints as `\xNN`. So every reply stays on one line, and binary
//!   data shows up visibly rather than garbling the terminal. The escaping is for reading,
//!   not round trips: use `--hex` for binary data.
//! * **Hex** (`--hex`). Input and output are both lowercase hex, two digits a byte (input
//!   accepts either case), so any bytes round-trip exactly: `put 00ff 6869`.

use std::fmt::Write;

use kv_shared::{Error, Result};

/// How keys and values are written in commands and replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextMode {
    /// As typed in, escaped on output (see the module doc).
    #[default]
    Text,
    /// Hex digits, in and out.
    Hex,
}

impl TextMode {
    /// The bytes a command argument stands for.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for malformed hex in hex mode.
    pub fn decode(self, token: &[u8]) -> Result<Vec<u8>> {
        match self {
            TextMode::Text => Ok(token.to_vec()),
            TextMode::Hex => decode_hex(token),
        }
    }

    /// How `bytes` are printed in a reply.
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            TextMode::Text => escape(bytes),
            TextMode::Hex => encode_hex(bytes),
        }
    }
}

/// Lowercase hex, two digits a byte.
pub fn encode_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Parses hex digits (either case), two a byte.
///
/// # Errors
/// [`Error::InvalidArgument`] for an odd number of digits or a non-hex character.
pub fn decode_hex(text: &[u8]) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::InvalidArgument(format!("bad hex `{}`: {why}", escape(text)));
    if !text.len().is_multiple_of(2) {
        return Err(bad("odd number of digits"));
    }
    text.chunks(2)
        .map(|pair| {
            let digit = |c: u8| {
                (c as char)
                    .to_digit(16)
                    .ok_or_else(|| bad("not a hex digit"))
            };
            Ok((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

/// Valid UTF-8 as is, control characters and invalid bytes as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && (c as u32) < 0x80 {
                let _ = write!(out, "\\x{:02x}", c as u32);
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode_hex(&all);
        assert_eq!(&text[..6], "000102");
        assert_eq!(decode_hex(text.as_bytes()).unwrap(), all);
        assert_eq!(decode_hex(b"00FFab").unwrap(), vec![0, 0xff, 0xab]);
        assert_eq!(decode_hex(b"").unwrap(), Vec::<u8>::new());
        assert!(decode_hex(b"abc").is_err());
        assert!(decode_hex(b"zz").is_err());
        assert!(decode_hex("é1".as_bytes()).is_err());
    }

    #[test]
    fn text_escapes_controls_and_invalid_utf8_only() {
        assert_eq!(escape(b"plain text"), "plain text");
        assert_eq!(escape("café".as_bytes()), "café");
        assert_eq!(escape(b"a\x00b\n\x7f"), "a\\x00b\\x0a\\x7f");
        assert_eq!(escape(b"\xff\xfeok"), "\\xff\\xfeok");
        assert_eq!(TextMode::Text.decode(b"a\\x00").unwrap(), b"a\\x00");
        assert_eq!(TextMode::Hex.encode(b"hi"), "6869");
    }
}

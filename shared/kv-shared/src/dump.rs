//! The annotated hex dump: how `kv inspect` shows a file, and what the format snapshots pin.
//!
//! Each line is one field: its offset in the file, its bytes in hex (the first 16, then a
//! count of the rest), and what it means. Reading a dump next to a module's format comment
//! is the quickest way to learn a format, and a snapshot of a dump turns any change to the
//! bytes into a reviewable diff.
//!
//! A dump quotes what it reads: keys, values, names, error messages. None of it may drive
//! the terminal showing the dump. [`quoted`] shows every byte outside printable ASCII as
//! `\xNN`, and every line of text a dump holds passes through [`shown`], which escapes
//! control characters and bidirectional overrides as `\u{..}`.
//!
//! ```text
//! 00000000  4b 56 48 41 53 48 4c 47                          magic "KVHASHLG"
//! 00000008  01 00 00 00                                      format version 1
//! ```

use std::fmt::{Display, Write};

/// Builds an annotated dump field by field.
#[derive(Debug, Default)]
pub struct Dump {
    out: String,
    pos: u64,
}

/// Bytes shown in full on a line; longer fields show this many and a count of the rest.
const SHOWN: usize = 16;

impl Dump {
    /// A dump whose first line is `title`.
    pub fn new(title: impl Display) -> Self {
        let mut dump = Dump::default();
        dump.line(title);
        dump
    }

    /// The offset the next field will be shown at.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Moves to `pos` (for formats read out of order, such as a footer first).
    pub fn seek(&mut self, pos: u64) {
        self.pos = pos;
    }

    /// One field: its bytes and what they mean. Advances the offset past them.
    pub fn field(&mut self, bytes: &[u8], meaning: impl Display) {
        let mut hex = String::new();
        for b in bytes.iter().take(SHOWN) {
            let _ = write!(hex, "{b:02x} ");
        }
        if bytes.len() > SHOWN {
            let _ = write!(hex, "..(+{})", bytes.len() - SHOWN);
        }
        let _ = write!(self.out, "{:08x}  {:<56} ", self.pos, hex.trim_end());
        self.line(meaning);
        self.pos += bytes.len() as u64;
    }

    /// The header [`crate::framing::put_magic_version`] writes, at the start of `bytes`, as
    /// two fields: the magic, quoted, and the version, called `version_name` ("format
    /// version 1"). A note says so when `bytes` are too short for it.
    pub fn magic_version(&mut self, bytes: &[u8], version_name: &str) {
        let Some((magic, rest)) = bytes.split_first_chunk::<8>() else {
            return self.note("too short for a magic and a version");
        };
        let Some(version) = rest.first_chunk::<4>() else {
            return self.note("too short for a magic and a version");
        };
        self.field(magic, format!("magic {}", quoted(magic, 8)));
        let number = u32::from_le_bytes(*version);
        self.field(version, format!("{version_name} {number}"));
    }

    /// A heading line before a group of fields (a record, a block).
    pub fn section(&mut self, heading: impl Display) {
        self.out.push_str("-- ");
        self.line(heading);
    }

    /// A line of commentary with no bytes (a summary, a verdict).
    pub fn note(&mut self, text: impl Display) {
        self.out.push_str("   ");
        self.line(text);
    }

    /// Ends the current line with `text`, made safe to show by [`shown`].
    fn line(&mut self, text: impl Display) {
        shown(&mut self.out, &text.to_string());
        self.out.push('\n');
    }

    /// The finished dump.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Shows bytes as a quoted string: printable ASCII as is, anything else as `\xNN`, and at most
/// `max` bytes followed by a count of the rest. Every byte of a control character or a
/// bidirectional override (C1 controls, U+202E and the like are all non-ASCII in UTF-8) is
/// escaped, so quoted bytes never act on a terminal.
pub fn quoted(bytes: &[u8], max: usize) -> String {
    let mut out = String::from("\"");
    for &b in bytes.iter().take(max) {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if bytes.len() > max {
        let _ = write!(out, "..(+{} bytes)", bytes.len() - max);
    }
    out
}

/// Appends `text` to `out`, escaping as `\u{..}` each character a terminal would act on
/// rather than show: C0 controls other than tab and newline, DEL, the C1 controls
/// U+0080..U+009F, and the bidirectional marks, embeddings, overrides and isolates (U+200E,
/// U+200F, U+202A..U+202E, U+2066..U+2069), which would reorder the text around them.
pub fn shown(out: &mut String, text: &str) {
    for c in text.chars() {
        if acts_on_terminal(c) {
            let _ = write!(out, "{}", c.escape_unicode());
        } else {
            out.push(c);
        }
    }
}

/// Whether [`shown`] escapes `c`.
fn acts_on_terminal(c: char) -> bool {
    matches!(c,
        '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}'
        | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_offset_bytes_and_meaning() {
        let mut d = Dump::new("test file");
        d.field(b"KV", "magic");
        d.section("record 0");
        d.field(&[0u8; 20], "twenty zeros");
        d.note("end");
        let text = d.finish();
        assert!(text.starts_with("test file\n00000000  4b 56 "));
        assert!(text.contains("00000002  00 00"));
        assert!(text.contains("..(+4)"));
        let mut d = Dump::new("header");
        d.magic_version(b"KVHASHLG\x02\x00\x00\x00rest", "format version");
        d.magic_version(b"KVHASHLG\x02", "format version");
        let lines: Vec<String> = d.finish().lines().map(str::to_string).collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[1].starts_with("00000000  4b 56 48 41 53 48 4c 47 "));
        assert!(lines[1].ends_with(" magic \"KVHASHLG\""));
        assert!(lines[2].starts_with("00000008  02 00 00 00 "));
        assert!(lines[2].ends_with(" format version 2"));
        assert_eq!(lines[3], "   too short for a magic and a version");
        assert_eq!(quoted(b"a\"\x00b", 10), "\"a\\\"\\x00b\"");
        assert_eq!(quoted(b"abcdef", 2), "\"ab\"..(+4 bytes)");
    }

    #[test]
    fn controls_and_bidi_overrides_never_reach_the_terminal() {
        let hostile = "a\u{202e}b\u{2066}c\u{200f}d\u{85}e\u{9b}f\x1b[2Jg\rh\x7fi\u{2069}";
        let escaped =
            "a\\u{202e}b\\u{2066}c\\u{200f}d\\u{85}e\\u{9b}f\\u{1b}[2Jg\\u{d}h\\u{7f}i\\u{2069}";
        let mut out = String::new();
        shown(&mut out, hostile);
        assert_eq!(out, escaped);
        let mut plain = String::new();
        shown(&mut plain, "tab\tand newline\n, é → ok");
        assert_eq!(plain, "tab\tand newline\n, é → ok");
        let mut d = Dump::new(format!("title {hostile}"));
        d.section(hostile);
        d.field(b"x", hostile);
        d.note(hostile);
        let text = d.finish();
        assert_eq!(text.lines().count(), 4, "{text}");
        for line in text.lines() {
            assert!(line.ends_with(escaped), "{line}");
        }
        assert!(!text.chars().any(|c| c != '\n' && acts_on_terminal(c)));
        assert_eq!(
            quoted("\u{202e}\u{85}\u{2066}".as_bytes(), 16),
            "\"\\xe2\\x80\\xae\\xc2\\x85\\xe2\\x81\\xa6\""
        );
        assert_eq!(quoted(b"\x85\x9b", 16), "\"\\x85\\x9b\"");
    }
}

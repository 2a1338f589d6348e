//! Inline commands: a request typed as one line of words, `SET greeting "hello world"\r\n`,
//! the way one talks to a server through `telnet` or `nc`.
//!
//! Words are separated by spaces or tabs. A word may be quoted, as Redis accepts it:
//!
//! * `"..."` takes the escapes `\n`, `\r`, `\t`, `\b`, `\a`, `\\`, `\"` and `\xHH` (one
//!   byte, two hex digits); any other `\c` is `c`.
//! * `'...'` is taken as it is, except `\'` for a quote.
//! * A closing quote must end the word (be followed by a space or the end of the line);
//!   otherwise, or when the line ends inside quotes, the request is refused.
//!
//! The parser has taken the line's `\r\n` (or lone `\n`) off before it calls [`split`].

use super::protocol::{ProtocolError, Request};

/// The words of one inline line.
///
/// # Errors
/// [`ProtocolError`] for unbalanced quotes.
pub fn split(line: &[u8]) -> Result<Request, ProtocolError> {
    let mut words = Vec::new();
    let mut rest = line;
    loop {
        rest = trim_start(rest);
        if rest.is_empty() {
            return Ok(words);
        }
        let (word, after) = word(rest)?;
        words.push(word);
        rest = after;
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c')
}

fn trim_start(mut bytes: &[u8]) -> &[u8] {
    while let Some((&first, rest)) = bytes.split_first() {
        if !is_space(first) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// Reads one word from the start of `line` (which starts with no space); returns it and
/// what follows it.
fn word(line: &[u8]) -> Result<(Vec<u8>, &[u8]), ProtocolError> {
    let unbalanced = || ProtocolError("unbalanced quotes in request".to_string());
    let mut word = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if is_space(b) {
            break;
        }
        i = match b {
            b'"' => double_quoted(line, i + 1, &mut word).ok_or_else(unbalanced)?,
            b'\'' => single_quoted(line, i + 1, &mut word).ok_or_else(unbalanced)?,
            _ => {
                word.push(b);
                i + 1
            }
        };
        // A closing quote ends the word.
        if matches!(b, b'"' | b'\'') {
            if line.get(i).is_some_and(|&next| !is_space(next)) {
                return Err(unbalanced());
            }
            break;
        }
    }
    Ok((word, &line[i..]))
}

/// Reads the inside of `"..."` from `i` into `word`; the index after the closing quote, or
/// `None` when the line ends first.
fn double_quoted(line: &[u8], mut i: usize, word: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                let escaped = *line.get(i + 1)?;
                if escaped == b'x'
                    && let Some(byte) = hex_byte(line.get(i + 2..i + 4))
                {
                    word.push(byte);
                    i += 4;
                    continue;
                }
                word.push(match escaped {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => b'\x08',
                    b'a' => b'\x07',
                    other => other,
                });
                i += 2;
            }
            other => {
                word.push(other);
                i += 1;
            }
        }
    }
}

/// Reads the inside of `'...'` from `i` into `word`, as [`double_quoted`].
fn single_quoted(line: &[u8], mut i: usize, word: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'\'' => return Some(i + 1),
            b'\\' if line.get(i + 1) == Some(&b'\'') => {
                word.push(b'\'');
                i += 2;
            }
            other => {
                word.push(other);
                i += 1;
            }
        }
    }
}

/// Two hex digits as a byte.
fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let text = std::str::from_utf8(digits?).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split(line.as_bytes())
            .expect("balanced")
            .into_iter()
            .map(|w| String::from_utf8_lossy(&w).into_owned())
            .collect()
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(words("  SET  k\tv  "), ["SET", "k", "v"]);
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words(r#"SET "a b" 'c d'"#), ["SET", "a b", "c d"]);
        assert_eq!(
            words(r#""\x41\x4a\n\t\"\\\q" '\'x\n'"#),
            ["AJ\n\t\"\\q", "'x\\n"]
        );
        assert_eq!(words(r#""\xZZ""#), ["xZZ"]);
        assert_eq!(words(r#"a"b c" d"#), ["ab c", "d"]);
        assert_eq!(words(r#""""#), [""]);
    }

    #[test]
    fn unbalanced_quotes_are_refused() {
        for line in [
            r#"GET "abc"#,
            "GET 'abc",
            r#"GET "a"b"#,
            "GET 'a'b",
            r#"GET "a\"#,
        ] {
            assert_eq!(
                split(line.as_bytes()).map_err(|e| e.0),
                Err("unbalanced quotes in request".to_string()),
                "{line}"
            );
        }
    }
}

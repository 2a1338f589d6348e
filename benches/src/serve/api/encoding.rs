//! Bytes in and out of HTTP: percent-decoding of the path and the query string, the query's
//! parameters, and bytes as JSON (see the rules in [the API's documentation](super)).
//!
//! Nothing here trusts its input: a malformed escape, an unknown parameter or a number out
//! of range is an [`ApiError`] (400) naming what was wrong, and every buffer is at most as
//! long as the text it decodes (which hyper caps at 65,534 bytes).

use std::ops::Bound;

use axum::http::{StatusCode, Uri};
use kv_shared::KeyRange;
use serde::Serialize;

use super::ApiError;

/// Decodes percent-encoded `text` into bytes: `%` and two hex digits is that byte, `+` is a
/// space when `plus_is_space` (the query string's rule), any other character is its own
/// UTF-8 bytes. `what` names the text in the error.
///
/// # Errors
/// 400 for a `%` not followed by two hex digits.
pub fn percent_decode(text: &str, plus_is_space: bool, what: &str) -> Result<Vec<u8>, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'%' => {
                let pair = bytes.get(at + 1..at + 3);
                let high_low = pair.and_then(|p| Some((hex_digit(p[0])?, hex_digit(p[1])?)));
                let Some((high, low)) = high_low else {
                    return Err(ApiError::bad_request(format!(
                        "malformed percent-encoding in {what}: the '%' at byte {at} is not followed by two hex digits"
                    )));
                };
                out.push(high << 4 | low);
                at += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                at += 1;
            }
            _ => {
                out.push(byte);
                at += 1;
            }
        }
    }
    Ok(out)
}

/// The value of one hex digit, either case.
fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The key named by the last segment of `uri`'s path (`/api/keys/{key}`), decoded from the
/// raw path, so it may be any bytes.
///
/// # Errors
/// 400 for malformed percent-encoding or an empty key; 414 for a key over `max_key` bytes.
pub fn key_from_path(uri: &Uri, max_key: usize) -> Result<Vec<u8>, ApiError> {
    let segment = uri.path().rsplit('/').next().unwrap_or_default();
    let key = percent_decode(segment, false, "the key")?;
    if key.is_empty() {
        return Err(ApiError::bad_request("empty key"));
    }
    if key.len() > max_key {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "key of {} bytes is over the limit of {max_key} bytes (max_key)",
                key.len()
            ),
        ));
    }
    Ok(key)
}

/// A request's query parameters, each name once, values decoded to bytes.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, Vec<u8>)>,
}

impl Params {
    /// Parses `query` (`a=1&b=%FF`), accepting only the names in `known`.
    ///
    /// # Errors
    /// 400 for malformed percent-encoding, a name not in `known`, or a name given twice.
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        let fields = query.unwrap_or_default().split('&');
        for field in fields.filter(|field| !field.is_empty()) {
            let (name, value) = field.split_once('=').unwrap_or((field, ""));
            let name = percent_decode(name, true, "a parameter's name")?;
            let name = String::from_utf8_lossy(&name).into_owned();
            if !known.contains(&name.as_str()) {
                let expected = match known {
                    [] => "none".to_string(),
                    _ => known.join(", "),
                };
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {name:?}; this endpoint takes: {expected}"
                )));
            }
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(ApiError::bad_request(format!(
                    "parameter {name:?} is given twice"
                )));
            }
            let value = percent_decode(value, true, &format!("parameter {name:?}"))?;
            pairs.push((name, value));
        }
        Ok(Params { pairs })
    }

    /// The decoded bytes of `name`, if given.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        let pair = self.pairs.iter().find(|(n, _)| n == name);
        pair.map(|(_, value)| value.as_slice())
    }

    /// `name` as a whole number at most `max` (`max_name` names that limit in the error),
    /// or `default` when absent.
    ///
    /// # Errors
    /// 400 when it is not a decimal whole number or is over `max`.
    pub fn number(
        &self,
        name: &str,
        default: Option<u64>,
        max: u64,
        max_name: &str,
    ) -> Result<Option<u64>, ApiError> {
        let Some(text) = self.bytes(name) else {
            return Ok(default);
        };
        let text = String::from_utf8_lossy(text);
        let Ok(number) = text.parse::<u64>() else {
            return Err(ApiError::bad_request(format!(
                "{name}={text:?} is not a whole number"
            )));
        };
        if number > max {
            return Err(ApiError::bad_request(format!(
                "{name}={number} is over the limit of {max} ({max_name})"
            )));
        }
        Ok(Some(number))
    }

    /// `name` as a boolean (`true`/`1` or `false`/`0`); `false` when absent.
    ///
    /// # Errors
    /// 400 for any other value.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.bytes(name) {
            None | Some(b"false" | b"0") => Ok(false),
            Some(b"true" | b"1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "{name}={:?} is not a boolean (true or false)",
                String::from_utf8_lossy(other)
            ))),
        }
    }

    /// The keys `from <= key < to`, each bound open when absent or empty.
    pub fn range(&self) -> KeyRange {
        let bound = |name: &str| match self.bytes(name) {
            Some(key) if !key.is_empty() => Some(key.to_vec()),
            _ => None,
        };
        KeyRange::new(
            bound("from").map_or(Bound::Unbounded, Bound::Included),
            bound("to").map_or(Bound::Unbounded, Bound::Excluded),
        )
    }
}

/// Bytes as JSON: a string when they are UTF-8 text, else `{"hex": "..."}`; or always a
/// hex string (see the API's rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum JsonBytes {
    /// UTF-8 text, or the hex of any bytes when hex was asked for.
    Text(String),
    /// The hex of bytes that are not UTF-8.
    Hex {
        /// Two lowercase hex digits a byte.
        hex: String,
    },
}

impl JsonBytes {
    /// `bytes` under the rule: text when UTF-8, `{"hex"}` otherwise; a hex string for all
    /// when `all_hex`.
    pub fn new(bytes: Vec<u8>, all_hex: bool) -> JsonBytes {
        if all_hex {
            return JsonBytes::Text(hex(&bytes));
        }
        match String::from_utf8(bytes) {
            Ok(text) => JsonBytes::Text(text),
            Err(not_text) => JsonBytes::Hex {
                hex: hex(not_text.as_bytes()),
            },
        }
    }
}

/// `bytes` as lowercase hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Vec<u8>, ApiError> {
        percent_decode(text, false, "the key")
    }

    #[test]
    fn percent_decoding_gives_any_byte() {
        assert_eq!(decode("a%2Fb").unwrap(), b"a/b");
        assert_eq!(decode("%00%ff%FF").unwrap(), [0, 255, 255]);
        assert_eq!(decode("a+b").unwrap(), b"a+b");
        assert_eq!(percent_decode("a+b", true, "q").unwrap(), b"a b");
        assert_eq!(decode("").unwrap(), b"");
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for bad in ["%", "%4", "a%G1", "%%41", "%4z"] {
            let error = decode(bad).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(error.message.contains("percent-encoding"), "{bad}");
        }
    }

    #[test]
    fn the_key_is_the_last_segment_decoded() {
        let uri: Uri = "/api/keys/k%00%FF?x=1".parse().unwrap();
        assert_eq!(key_from_path(&uri, 10).unwrap(), b"k\x00\xff");
        let long: Uri = "/api/keys/abcde".parse().unwrap();
        let error = key_from_path(&long, 4).unwrap_err();
        assert_eq!(error.status, StatusCode::URI_TOO_LONG);
        assert!(
            error.message.contains("limit of 4 bytes"),
            "{}",
            error.message
        );
        let empty: Uri = "/api/keys/".parse().unwrap();
        assert_eq!(key_from_path(&empty, 4).unwrap_err().status, 400);
    }

    #[test]
    fn parameters_are_checked() {
        let known = &["from", "limit", "reverse"];
        let params = Params::parse(Some("from=a%00+b&limit=5&reverse=true"), known).unwrap();
        assert_eq!(params.bytes("from"), Some(&b"a\x00 b"[..]));
        assert_eq!(params.number("limit", Some(9), 10, "max").unwrap(), Some(5));
        assert!(params.flag("reverse").unwrap());
        assert_eq!(params.number("none", Some(9), 10, "max").unwrap(), Some(9));
        let over = params.number("limit", None, 4, "max_scan").unwrap_err();
        assert!(over.message.contains("max_scan"), "{}", over.message);
        for bad in ["limt=5", "from=a&from=b", "from=%Z0"] {
            assert_eq!(
                Params::parse(Some(bad), known).unwrap_err().status,
                400,
                "{bad}"
            );
        }
        let words = Params::parse(Some("limit=abc&reverse=yes"), known).unwrap();
        assert_eq!(
            words.number("limit", None, 10, "m").unwrap_err().status,
            400
        );
        assert_eq!(words.flag("reverse").unwrap_err().status, 400);
    }

    #[test]
    fn empty_bounds_are_open() {
        let params = Params::parse(Some("from=&to=b"), &["from", "to"]).unwrap();
        let range = params.range();
        assert_eq!(range.start, Bound::Unbounded);
        assert_eq!(range.end, Bound::Excluded(b"b".to_vec()));
    }

    #[test]
    fn bytes_in_json_are_lossless() {
        let json = |bytes: &[u8], all_hex| {
            serde_json::to_string(&JsonBytes::new(bytes.to_vec(), all_hex)).unwrap()
        };
        assert_eq!(json(b"key", false), r#""key""#);
        assert_eq!(json(b"a\x00b", false), r#""a\u0000b""#);
        assert_eq!(json(b"\xff\x00", false), r#"{"hex":"ff00"}"#);
        assert_eq!(json(b"key", true), r#""6b6579""#);
        assert_eq!(json("é".as_bytes(), false), r#""é""#);
    }
}

//! The payload this stage puts in each [`crate::wal`] record: one put or one delete.
//!
//! ## Format (version 1)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | kind: `1` put, `2` delete |
//! | 1 | 2 | `k`, key length, `u16` LE |
//! | 3 | k | key |
//! | 3 + k | rest | value (put only; its length is what the record's payload has left) |
//!
//! A delete payload ends after its key; anything after it is corruption.

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError};
use kv_shared::{MAX_KEY_LEN, MAX_VALUE_LEN};

use crate::entry::Entry;

/// Kind byte of a put.
pub const KIND_PUT: u8 = 1;
/// Kind byte of a delete.
pub const KIND_DELETE: u8 = 2;

fn encode(kind: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    debug_assert!(key.len() <= MAX_KEY_LEN, "keys are checked before encoding");
    let mut out = Vec::with_capacity(3 + key.len() + value.len());
    out.push(kind);
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// The payload of a put. The caller has checked the key and value against the limits.
pub fn encode_put(key: &[u8], value: &[u8]) -> Vec<u8> {
    encode(KIND_PUT, key, value)
}

/// The payload of a delete. The caller has checked the key against the limit.
pub fn encode_delete(key: &[u8]) -> Vec<u8> {
    encode(KIND_DELETE, key, &[])
}

/// Decodes a payload into its key and [`Entry`].
///
/// # Errors
/// [`DecodeError`] for an unknown kind, a length over the limits, or trailing bytes after a
/// delete.
pub fn decode(payload: &[u8]) -> Result<(Vec<u8>, Entry), DecodeError> {
    let mut r = ByteReader::new(payload);
    let kind = r.u8("kind")?;
    let key_len = r.u16("key length")? as usize;
    let key = r.bytes(key_len, "key")?.to_vec();
    let rest = r.bytes(r.remaining(), "value")?;
    match kind {
        KIND_PUT if rest.len() <= MAX_VALUE_LEN => Ok((key, Entry::Value(rest.to_vec()))),
        KIND_PUT => Err(DecodeError::new(3 + key_len, "value over the size limit")),
        KIND_DELETE if rest.is_empty() => Ok((key, Entry::Tombstone)),
        KIND_DELETE => Err(DecodeError::new(3 + key_len, "bytes after a delete's key")),
        other => Err(DecodeError::new(0, format!("unknown kind {other}"))),
    }
}

/// Adds the fields of one payload to a dump (used by [`crate::inspect`] for WAL files).
pub fn dump(d: &mut Dump, payload: &[u8]) {
    let start = d.pos();
    match decode(payload) {
        Ok((key, entry)) => {
            let kind = if entry == Entry::Tombstone {
                "delete"
            } else {
                "put"
            };
            d.field(&payload[..1], format!("kind {} ({kind})", payload[0]));
            d.field(&payload[1..3], format!("key length {}", key.len()));
            d.field(&key, format!("key {}", quoted(&key, 40)));
            if let Entry::Value(v) = &entry {
                d.field(v, format!("value {} ({} bytes)", quoted(v, 40), v.len()));
            }
        }
        Err(e) => d.field(payload, format!("undecodable payload: {e}")),
    }
    debug_assert_eq!(d.pos(), start + payload.len() as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let put = encode_put(b"key", b"value");
        assert_eq!(put, b"\x01\x03\x00keyvalue");
        assert_eq!(
            decode(&put).unwrap(),
            (b"key".to_vec(), Entry::Value(b"value".to_vec()))
        );
        assert_eq!(
            decode(&encode_put(b"", b"")).unwrap(),
            (Vec::new(), Entry::Value(Vec::new()))
        );
        let del = encode_delete(b"k");
        assert_eq!(decode(&del).unwrap(), (b"k".to_vec(), Entry::Tombstone));
        let mut extra = del.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        assert!(decode(b"\x03\x00\x00").is_err());
        assert!(decode(b"\x01\x09\x00ab").is_err());
        assert!(decode(b"").is_err());
    }
}

//! The payload of one WAL record: one write, with its sequence number.
//!
//! ## Format
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | trailer: `seq << 8 \| kind`, `u64` LE (kind 1 = put, 0 = delete), see [`crate::key`] |
//! | 8 | 1-3 | key length `k`, varint, at most [`kv_shared::MAX_KEY_LEN`] |
//! | 8 + | k | key |
//! | .. | rest | value: every remaining byte (none for a delete) |
//!
//! The value needs no length field: the record framing around the payload already has one.

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, put_varint, varint_len};
use kv_shared::{MAX_KEY_LEN, MAX_VALUE_LEN};

use crate::key::{Entry, Kind, split_trailer, trailer};

/// Encodes one write.
pub fn encode(seq: u64, key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let kind = if value.is_some() {
        Kind::Put
    } else {
        Kind::Delete
    };
    let mut out = Vec::with_capacity(11 + key.len() + value.map_or(0, <[u8]>::len));
    out.extend_from_slice(&trailer(seq, kind).to_le_bytes());
    put_varint(&mut out, key.len() as u64);
    out.extend_from_slice(key);
    if let Some(value) = value {
        out.extend_from_slice(value);
    }
    out
}

/// Decodes one write.
///
/// # Errors
/// [`DecodeError`] for an unknown kind, a length over its limit, or a delete with a value.
pub fn decode(payload: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = ByteReader::new(payload);
    let (seq, kind) = split_trailer(r.u64("trailer")?);
    let kind = kind.ok_or_else(|| DecodeError::new(0, "unknown entry kind"))?;
    let key_len = r.varint("key length")?;
    let key_len = r.check_len(key_len, MAX_KEY_LEN, "key length")?;
    let key = r.bytes(key_len, "key")?.to_vec();
    let rest = r.bytes(r.remaining(), "value")?;
    let value = match kind {
        Kind::Put if rest.len() > MAX_VALUE_LEN => {
            return Err(DecodeError::new(r.pos(), "value over the limit"));
        }
        Kind::Put => Some(rest.to_vec()),
        Kind::Delete if !rest.is_empty() => {
            return Err(DecodeError::new(
                r.pos() - rest.len(),
                "a delete carries a value",
            ));
        }
        Kind::Delete => None,
    };
    Ok(Entry { key, seq, value })
}

/// Adds a payload's fields to a dump, one line each (trailer, key length, key, value), or
/// one line for a payload that does not decode. Advances the dump by exactly the payload.
pub fn dump_fields(d: &mut Dump, payload: &[u8]) {
    let Ok(entry) = decode(payload) else {
        d.field(payload, describe(payload));
        return;
    };
    let kind = if entry.value.is_some() {
        "put"
    } else {
        "delete"
    };
    d.field(&payload[..8], format!("trailer: seq {} {kind}", entry.seq));
    let key_len_len = varint_len(entry.key.len() as u64);
    let key_end = 8 + key_len_len + entry.key.len();
    d.field(
        &payload[8..8 + key_len_len],
        format!("key length {}", entry.key.len()),
    );
    d.field(
        &payload[8 + key_len_len..key_end],
        format!("key {}", quoted(&entry.key, 40)),
    );
    if let Some(value) = &entry.value
        && !value.is_empty()
    {
        d.field(&payload[key_end..], format!("value {}", quoted(value, 40)));
    }
}

/// One line describing a payload, for dumps.
pub fn describe(payload: &[u8]) -> String {
    match decode(payload) {
        Ok(Entry {
            key,
            seq,
            value: Some(value),
        }) => format!(
            "put seq {seq} key {} value {}",
            quoted(&key, 24),
            quoted(&value, 24)
        ),
        Ok(Entry {
            key,
            seq,
            value: None,
        }) => format!("delete seq {seq} key {}", quoted(&key, 24)),
        Err(e) => format!("undecodable write: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_payloads() {
        let put = encode(7, b"key", Some(b"value"));
        assert_eq!(
            decode(&put).unwrap(),
            Entry {
                key: b"key".to_vec(),
                seq: 7,
                value: Some(b"value".to_vec())
            }
        );
        let del = encode(8, b"", None);
        assert_eq!(decode(&del).unwrap().value, None);
        assert!(decode(&put[..5]).is_err());
        let mut bad_kind = put.clone();
        bad_kind[0] = 9;
        assert!(decode(&bad_kind).is_err());
        let mut del_with_value = del;
        del_with_value.push(1);
        assert!(decode(&del_with_value).is_err());
    }
}

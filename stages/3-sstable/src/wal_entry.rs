//! The payload this stage puts in each [`crate::wal`] record: one put, one delete, or a
//! whole write batch.
//!
//! ## Format (version 1)
//!
//! The first byte says which:
//!
//! | kind | meaning |
//! |---|---|
//! | 1 | put |
//! | 2 | delete |
//! | 3 | write batch |
//!
//! A put or a delete:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | kind: `1` put, `2` delete |
//! | 1 | 2 | `k`, key length, `u16` LE |
//! | 3 | k | key |
//! | 3 + k | rest | value (put only; its length is what the record's payload has left) |
//!
//! A delete payload ends after its key; anything after it is corruption.
//!
//! A write batch ([`kv_shared::WriteBatch`]):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | kind: `3` |
//! | 1 | 4 | `n`, the number of ops, `u32` LE, at least 1 |
//! | 5 | rest | the `n` ops, back to back, in the ops format of [`kv_shared::batch`] |
//!
//! The whole batch is one record, so the record's one CRC covers every op: a crash that
//! tears the record loses the whole batch, never part of it, and [`decode`] checks every op
//! before the caller applies any. The ops format is self-delimiting and must end exactly
//! at the end of the payload.
//!
//! A reader that does not know a kind refuses the record as corruption; it never guesses.

use kv_shared::batch::{self, BatchOp, BatchOps};
use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError};
use kv_shared::{Error, MAX_KEY_LEN, MAX_VALUE_LEN, Result, WriteBatch};

use crate::wal::MAX_PAYLOAD;

/// Kind byte of a put.
pub const KIND_PUT: u8 = 1;
/// Kind byte of a delete.
pub const KIND_DELETE: u8 = 2;
/// Kind byte of a write batch.
pub const KIND_BATCH: u8 = 3;

/// Bytes of a put or delete payload before its key.
pub const PUT_HEADER_LEN: usize = 3;
/// Bytes of a batch payload before its ops.
pub const BATCH_HEADER_LEN: usize = 5;

/// One decoded payload, borrowing the record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalEntry<'a> {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// A write batch, its ops checked by [`decode`].
    Batch {
        /// The number of ops.
        count: u32,
        /// The ops, in the ops format of [`kv_shared::batch`].
        ops: &'a [u8],
    },
}

impl<'a> WalEntry<'a> {
    /// The changes the entry makes, in order: one op for a put or a delete, every op of a
    /// batch.
    pub fn ops(&self) -> impl Iterator<Item = BatchOp<'a>> + 'a {
        let (single, many) = match *self {
            WalEntry::Put { key, value } => (Some((key, Some(value))), BatchOps::new(&[], 0)),
            WalEntry::Delete { key } => (Some((key, None)), BatchOps::new(&[], 0)),
            WalEntry::Batch { count, ops } => (None, BatchOps::new(ops, count)),
        };
        let single = single.map(|(key, value)| BatchOp { key, value });
        single.into_iter().chain(many)
    }
}

/// The bytes of a put or delete payload before its key (the value, for a put, follows the
/// key). The caller has checked the key against the limit.
pub fn single_header(kind: u8, key: &[u8]) -> [u8; PUT_HEADER_LEN] {
    debug_assert!(key.len() <= MAX_KEY_LEN, "keys are checked before encoding");
    let len = (key.len() as u16).to_le_bytes();
    [kind, len[0], len[1]]
}

/// The payload of a put. The caller has checked the key and value against the limits.
pub fn encode_put(key: &[u8], value: &[u8]) -> Vec<u8> {
    [&single_header(KIND_PUT, key)[..], key, value].concat()
}

/// The payload of a delete. The caller has checked the key against the limit.
pub fn encode_delete(key: &[u8]) -> Vec<u8> {
    [&single_header(KIND_DELETE, key)[..], key].concat()
}

/// The bytes of a batch payload before its ops (which are `batch.encoded_ops()`).
///
/// # Errors
/// [`Error::InvalidArgument`] when the payload would be over [`MAX_PAYLOAD`], the longest a
/// WAL record holds.
pub fn batch_header(batch: &WriteBatch) -> Result<[u8; BATCH_HEADER_LEN]> {
    let len = BATCH_HEADER_LEN + batch.encoded_ops().len();
    if len > MAX_PAYLOAD {
        return Err(Error::InvalidArgument(format!(
            "a write batch of {} ops takes {len} bytes, over the limit of one WAL record \
             ({MAX_PAYLOAD} bytes)",
            batch.len()
        )));
    }
    let count = batch.count().to_le_bytes();
    Ok([KIND_BATCH, count[0], count[1], count[2], count[3]])
}

/// The payload of a batch: [`batch_header`] then the ops.
///
/// # Errors
/// As [`batch_header`].
pub fn encode_batch(batch: &WriteBatch) -> Result<Vec<u8>> {
    Ok([&batch_header(batch)?[..], batch.encoded_ops()].concat())
}

/// Decodes a payload, checking every field (every op of a batch) before returning.
///
/// # Errors
/// [`DecodeError`] for an unknown kind, a length over the limits, trailing bytes after a
/// delete, a batch of no ops, or a batch whose ops do not decode to exactly its count.
pub fn decode(payload: &[u8]) -> std::result::Result<WalEntry<'_>, DecodeError> {
    let mut r = ByteReader::new(payload);
    let kind = r.u8("kind")?;
    if kind == KIND_BATCH {
        let count = r.u32("op count")?;
        if count == 0 {
            return Err(DecodeError::new(1, "a batch of no ops"));
        }
        let ops = r.bytes(r.remaining(), "ops")?;
        batch::check_ops(ops, count)
            .map_err(|e| DecodeError::new(BATCH_HEADER_LEN + e.offset, e.detail))?;
        return Ok(WalEntry::Batch { count, ops });
    }
    let key_len = r.u16("key length")? as usize;
    let key = r.bytes(key_len, "key")?;
    let rest = r.bytes(r.remaining(), "value")?;
    let at = PUT_HEADER_LEN + key_len;
    match kind {
        KIND_PUT if rest.len() <= MAX_VALUE_LEN => Ok(WalEntry::Put { key, value: rest }),
        KIND_PUT => Err(DecodeError::new(at, "value over the size limit")),
        KIND_DELETE if rest.is_empty() => Ok(WalEntry::Delete { key }),
        KIND_DELETE => Err(DecodeError::new(at, "bytes after a delete's key")),
        other => Err(DecodeError::new(0, format!("unknown kind {other}"))),
    }
}

/// Adds the fields of one payload to a dump (used by [`crate::inspect_wal`] for WAL files).
pub fn dump(d: &mut Dump, payload: &[u8]) {
    let start = d.pos();
    match decode(payload) {
        Ok(WalEntry::Batch { count, ops }) => {
            d.field(&payload[..1], format!("kind {KIND_BATCH} (write batch)"));
            d.field(&payload[1..BATCH_HEADER_LEN], format!("op count {count}"));
            batch::dump_ops(d, ops, count);
        }
        Ok(WalEntry::Put { key, value }) => {
            dump_key(d, payload, "put", key);
            d.field(
                value,
                format!("value {} ({} bytes)", quoted(value, 40), value.len()),
            );
        }
        Ok(WalEntry::Delete { key }) => dump_key(d, payload, "delete", key),
        Err(e) => d.field(payload, format!("undecodable payload: {e}")),
    }
    debug_assert_eq!(d.pos(), start + payload.len() as u64);
}

/// The kind, key length and key of a put or delete.
fn dump_key(d: &mut Dump, payload: &[u8], kind: &str, key: &[u8]) {
    d.field(&payload[..1], format!("kind {} ({kind})", payload[0]));
    d.field(&payload[1..3], format!("key length {}", key.len()));
    d.field(key, format!("key {}", quoted(key, 40)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op<'a>(key: &'a [u8], value: Option<&'a [u8]>) -> BatchOp<'a> {
        BatchOp { key, value }
    }

    #[test]
    fn round_trip_and_rejects() {
        let put = encode_put(b"key", b"value");
        assert_eq!(put, b"\x01\x03\x00keyvalue");
        assert_eq!(
            decode(&put).unwrap().ops().collect::<Vec<_>>(),
            [op(b"key", Some(b"value"))]
        );
        assert_eq!(
            decode(&encode_put(b"", b"")).unwrap(),
            WalEntry::Put {
                key: b"",
                value: b""
            }
        );
        let del = encode_delete(b"k");
        assert_eq!(decode(&del).unwrap(), WalEntry::Delete { key: b"k" });
        let mut extra = del.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        assert!(decode(b"\x04\x00\x00").is_err());
        assert!(decode(b"\x01\x09\x00ab").is_err());
        assert!(decode(b"").is_err());
    }

    #[test]
    fn a_batch_decodes_whole_or_not_at_all() {
        let mut b = WriteBatch::new();
        b.put(b"apple", b"red").unwrap();
        b.delete(b"pear").unwrap();
        b.put(b"apple", b"green").unwrap();
        let payload = encode_batch(&b).unwrap();
        assert_eq!(payload[..5], [3, 3, 0, 0, 0]);
        let entry = decode(&payload).unwrap();
        assert_eq!(
            entry.ops().collect::<Vec<_>>(),
            [
                op(b"apple", Some(b"red")),
                op(b"pear", None),
                op(b"apple", Some(b"green"))
            ]
        );
        // Every cut, a count too high or too low, and an empty batch are refused.
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut]).is_err(), "cut at {cut}");
        }
        for count in [0u32, 2, 4] {
            let mut bad = payload.clone();
            bad[1..5].copy_from_slice(&count.to_le_bytes());
            assert!(decode(&bad).is_err(), "count {count}");
        }
        let mut bad_kind = payload.clone();
        bad_kind[5] = 9;
        assert_eq!(decode(&bad_kind).unwrap_err().offset, 5);
    }

    #[test]
    fn a_batch_over_one_record_is_refused() {
        let mut b = WriteBatch::new();
        let value = vec![7; MAX_VALUE_LEN];
        b.put(&[1; MAX_KEY_LEN], &value).unwrap();
        assert!(batch_header(&b).is_ok(), "one op at the limits fits");
        b.put(b"more", &value).unwrap();
        assert!(matches!(batch_header(&b), Err(Error::InvalidArgument(_))));
    }
}

//! The payload of one WAL record: a **write batch**, several puts and deletes with
//! consecutive sequence numbers, applied whole or not at all.
//!
//! Every record is a batch. A single `put` or `delete` is a batch of one; a
//! [`crate::WriteBatch`] is a batch of its ops; and a write group (see
//! [`crate::group_commit`]) is the batches of all its writers, one after the other, in
//! one record. The record's CRC (in the framing around the payload, [`sstable::wal`])
//! covers the whole batch, so a record torn by a crash is dropped whole by recovery: a
//! batch survives entirely or not at all.
//!
//! ## Format (store format version 2; version 1 held one write per record)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | first sequence number `s`, `u64` LE, at least 1 |
//! | 8 | 4 | op count `n`, `u32` LE, at least 1; op `i` has sequence number `s + i` |
//! | 12 | .. | `n` ops back to back, and nothing after the last |
//!
//! Each op:
//!
//! | size | field |
//! |---|---|
//! | 1 | kind: 1 = put, 0 = delete (the kind byte of a [`crate::key`] trailer) |
//! | 1-3 | key length `k`, varint, at most [`kv_shared::MAX_KEY_LEN`] |
//! | k | key |
//! | 1-4 | put only: value length `v`, varint, at most [`kv_shared::MAX_VALUE_LEN`] |
//! | v | put only: value |
//!
//! The last sequence number, `s + n - 1`, is at most [`crate::key::MAX_SEQ`].

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, put_varint, varint_len};
use kv_shared::{MAX_KEY_LEN, MAX_VALUE_LEN};

use crate::key::{Kind, MAX_SEQ};

/// Length of the batch header: first sequence number and op count.
pub const HEADER_LEN: usize = 12;

/// One op of a decoded batch, borrowing the payload's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value of a put; `None` for a delete.
    pub value: Option<&'a [u8]>,
}

/// A decoded batch record: its header, and its ops, checked whole by [`decode`] and read
/// one by one by [`Batch::ops`] (so decoding allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch<'a> {
    /// The sequence number of the first op; the others follow one by one.
    pub first_seq: u64,
    /// The number of ops (at least one).
    pub count: u32,
    /// The ops' bytes, already checked.
    body: &'a [u8],
}

impl<'a> Batch<'a> {
    /// The sequence number of the last op.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count) - 1
    }

    /// The ops, in order.
    pub fn ops(&self) -> impl Iterator<Item = Op<'a>> + 'a {
        let mut r = ByteReader::new(self.body);
        // `decode` checked every op, so reading them again cannot fail.
        (0..self.count).map_while(move |_| read_op(&mut r).ok())
    }
}

/// Reads one op.
fn read_op<'a>(r: &mut ByteReader<'a>) -> Result<Op<'a>, DecodeError> {
    let at = r.pos();
    let kind =
        Kind::from_byte(r.u8("op kind")?).ok_or_else(|| DecodeError::new(at, "unknown op kind"))?;
    let key_len = r.varint("key length")?;
    let key_len = r.check_len(key_len, MAX_KEY_LEN, "key length")?;
    let key = r.bytes(key_len, "key")?;
    let value = match kind {
        Kind::Put => {
            let value_len = r.varint("value length")?;
            let value_len = r.check_len(value_len, MAX_VALUE_LEN, "value length")?;
            Some(r.bytes(value_len, "value")?)
        }
        Kind::Delete => None,
    };
    Ok(Op { key, value })
}

/// Appends one op (without header) to `out`: the body format above.
pub fn encode_op(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    let kind = if value.is_some() {
        Kind::Put
    } else {
        Kind::Delete
    };
    out.push(kind as u8);
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    if let Some(value) = value {
        put_varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }
}

/// Fills in the header of a record whose first [`HEADER_LEN`] bytes were reserved for it.
pub fn write_header(record: &mut [u8], first_seq: u64, count: u32) {
    record[..8].copy_from_slice(&first_seq.to_le_bytes());
    record[8..HEADER_LEN].copy_from_slice(&count.to_le_bytes());
}

/// Encodes a batch of one write (a put, or a delete when `value` is `None`).
pub fn encode(seq: u64, key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let mut out = vec![0; HEADER_LEN];
    write_header(&mut out, seq, 1);
    encode_op(&mut out, key, value);
    out
}

/// Decodes a batch record, checking every field: either the whole batch, or an error.
///
/// # Errors
/// [`DecodeError`] for a cut or overlong payload, an op count of 0 or one that does not
/// match the ops, an unknown kind, a length over its limit, or sequence numbers past
/// [`MAX_SEQ`].
pub fn decode(payload: &[u8]) -> Result<Batch<'_>, DecodeError> {
    let mut r = ByteReader::new(payload);
    let first_seq = r.u64("first sequence number")?;
    let count = r.u32("op count")?;
    if first_seq == 0 || count == 0 {
        return Err(DecodeError::new(
            0,
            "a batch starts at sequence number 1 or later and holds at least one op",
        ));
    }
    if first_seq > MAX_SEQ - (u64::from(count) - 1) {
        return Err(DecodeError::new(
            0,
            format!("sequence numbers {first_seq} + {count} ops run past the largest, {MAX_SEQ}"),
        ));
    }
    let body = &payload[HEADER_LEN..];
    for _ in 0..count {
        read_op(&mut r)?;
    }
    if r.remaining() > 0 {
        return Err(DecodeError::new(
            r.pos(),
            format!("{} bytes after the batch's {count} ops", r.remaining()),
        ));
    }
    Ok(Batch {
        first_seq,
        count,
        body,
    })
}

/// Adds a payload's fields to a dump, one line each (header fields, then each op's kind,
/// key length, key, value length and value), or one line for a payload that does not
/// decode. Advances the dump by exactly the payload.
pub fn dump_fields(d: &mut Dump, payload: &[u8]) {
    let Ok(batch) = decode(payload) else {
        d.field(payload, describe(payload));
        return;
    };
    d.field(
        &payload[..8],
        format!("first sequence number {}", batch.first_seq),
    );
    d.field(&payload[8..HEADER_LEN], format!("op count {}", batch.count));
    let mut pos = HEADER_LEN;
    for (i, op) in batch.ops().enumerate() {
        let seq = batch.first_seq + i as u64;
        let kind = if op.value.is_some() { "put" } else { "delete" };
        d.field(&payload[pos..pos + 1], format!("op {i}: {kind}, seq {seq}"));
        pos += 1;
        let key_len_len = varint_len(op.key.len() as u64);
        d.field(
            &payload[pos..pos + key_len_len],
            format!("key length {}", op.key.len()),
        );
        pos += key_len_len;
        if !op.key.is_empty() {
            d.field(
                &payload[pos..pos + op.key.len()],
                format!("key {}", quoted(op.key, 40)),
            );
            pos += op.key.len();
        }
        if let Some(value) = op.value {
            let value_len_len = varint_len(value.len() as u64);
            d.field(
                &payload[pos..pos + value_len_len],
                format!("value length {}", value.len()),
            );
            pos += value_len_len;
            if !value.is_empty() {
                d.field(
                    &payload[pos..pos + value.len()],
                    format!("value {}", quoted(value, 40)),
                );
                pos += value.len();
            }
        }
    }
}

/// One line describing a payload, for dumps.
pub fn describe(payload: &[u8]) -> String {
    match decode(payload) {
        Ok(batch) => {
            let Some(first) = batch.ops().next() else {
                return format!("empty write batch, seq {}", batch.first_seq);
            };
            let one = match first.value {
                Some(value) => format!(
                    "put key {} value {}",
                    quoted(first.key, 24),
                    quoted(value, 24)
                ),
                None => format!("delete key {}", quoted(first.key, 24)),
            };
            match batch.count {
                1 => format!("seq {} {one}", batch.first_seq),
                n => format!(
                    "batch of {n} ops, seq {} to {}, first: {one}",
                    batch.first_seq,
                    batch.last_seq()
                ),
            }
        }
        Err(e) => format!("undecodable write batch: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_payloads() {
        let put = encode(7, b"key", Some(b"value"));
        let batch = decode(&put).unwrap();
        assert_eq!(batch.first_seq, 7);
        assert_eq!(
            batch.ops().collect::<Vec<_>>(),
            vec![Op {
                key: b"key",
                value: Some(b"value")
            }]
        );
        let mut two = encode(8, b"", None);
        encode_op(&mut two, b"k", Some(b""));
        write_header(&mut two, 8, 2);
        let batch = decode(&two).unwrap();
        assert_eq!(batch.last_seq(), 9);
        let ops: Vec<Op> = batch.ops().collect();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].value, None);
        assert_eq!(ops[1].value, Some(&b""[..]));
        // Every cut is refused: a batch is whole or nothing.
        for cut in 0..two.len() {
            assert!(decode(&two[..cut]).is_err(), "cut {cut}");
        }
        let mut bad_kind = put.clone();
        bad_kind[HEADER_LEN] = 9;
        assert!(decode(&bad_kind).is_err());
        let mut trailing = put.clone();
        trailing.push(1);
        assert!(decode(&trailing).is_err());
        let mut count_too_high = put.clone();
        write_header(&mut count_too_high, 7, 2);
        assert!(decode(&count_too_high).is_err());
        let mut zero = put.clone();
        write_header(&mut zero, 7, 0);
        assert!(decode(&zero).is_err());
        let mut past_max = two.clone();
        write_header(&mut past_max, MAX_SEQ, 2);
        assert!(decode(&past_max).is_err());
        let mut huge_count = put;
        write_header(&mut huge_count, 7, u32::MAX);
        assert!(decode(&huge_count).is_err());
    }
}

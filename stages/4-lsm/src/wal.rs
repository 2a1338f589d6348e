//! The write-ahead log: stage 3's log, whose records here are write batches.
//!
//! Every write is appended to the WAL before it enters the memtable. Stage 3's
//! [`sstable::wal::Wal`] carries opaque payloads, so this stage reuses it as it is (a crate
//! dependency, not a copy) and brings only its own payload, below. The file's format (a
//! 12-byte header with magic `KVSSTWAL`, then CRC-framed records) is documented in
//! [`sstable::wal`].
//!
//! Stage 4 keeps one WAL file per memtable, named `NNNNNN.wal` after a file number. When the
//! memtable freezes, its WAL is synced and a new one started; the old file is deleted only
//! after the memtable's flush is recorded in the manifest.
//!
//! ## A record: a write batch
//!
//! Every record is a **write batch**: several puts and deletes with consecutive sequence
//! numbers, applied whole or not at all. A single `put` or `delete` is a batch of one; a
//! [`kv_shared::WriteBatch`] is a batch of its ops; and a write group (see
//! [`crate::group_commit`]) is the batches of all its writers, one after the other, in one
//! record. The record's CRC (in the framing around the payload) covers the whole batch, so
//! a record torn by a crash is dropped whole by recovery: a batch survives entirely or not
//! at all.
//!
//! ## Payload format (store format version 2; version 1 held one write per record)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | first sequence number `s`, `u64` LE, at least 1 |
//! | 8 | 4 | op count `n`, `u32` LE, at least 1; op `i` has sequence number `s + i` |
//! | 12 | .. | `n` ops back to back, and nothing after the last |
//!
//! The ops are in the shared batch ops format ([`kv_shared::batch`], the bytes a
//! [`kv_shared::WriteBatch`] holds), so a batch is copied into a record as it is. Each op:
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

use kv_shared::batch::{self, BatchOps};
use kv_shared::framing::{ByteReader, DecodeError};
use sstable::wal::LogKind;

use crate::key::MAX_SEQ;

pub use sstable::wal::{Wal, WalReplay};

/// The WAL's kind of record log: stage 3's ([`sstable::wal::WAL_KIND`]), unchanged.
pub const KIND: LogKind = sstable::wal::WAL_KIND;

/// Length of the batch header: first sequence number and op count.
pub const HEADER_LEN: usize = 12;

/// Bytes at the front of a record built in place: the log's frame header
/// ([`sstable::wal::FRAME_RESERVE`]), then the batch header. The group commit reserves
/// them, appends ops after them, and the leader fills both in ([`seal_group`]).
pub const RECORD_RESERVE: usize = sstable::wal::FRAME_RESERVE + HEADER_LEN;

/// Fills in the batch header of a record built in place (see [`RECORD_RESERVE`]). Its ops
/// were checked as each batch was built ([`kv_shared::WriteBatch::put`]) and the group only
/// put them back to back, so they are not checked again (debug builds check the whole
/// record as recovery will). The frame header is left for
/// [`sstable::wal::Wal::append_framed`]; [`group_ops`] reads the ops back.
pub fn seal_group(record: &mut [u8], first_seq: u64, count: u32) {
    let payload = &mut record[sstable::wal::FRAME_RESERVE..];
    write_header(payload, first_seq, count);
    debug_assert!(
        decode(payload).is_ok(),
        "a write group that does not decode"
    );
}

/// The `count` ops of a record built in place (see [`seal_group`]).
pub fn group_ops(record: &[u8], count: u32) -> BatchOps<'_> {
    BatchOps::new(&record[RECORD_RESERVE..], count)
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
    pub fn ops(&self) -> BatchOps<'a> {
        BatchOps::new(self.body, self.count)
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
    batch::encode_op(&mut out, key, value);
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
    batch::check_ops(body, count).map_err(|e| DecodeError::new(HEADER_LEN + e.offset, e.detail))?;
    Ok(Batch {
        first_seq,
        count,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_shared::batch::BatchOp;

    #[test]
    fn round_trip_and_bad_payloads() {
        let put = encode(7, b"key", Some(b"value"));
        let batch = decode(&put).unwrap();
        assert_eq!(batch.first_seq, 7);
        assert_eq!(
            batch.ops().collect::<Vec<_>>(),
            vec![BatchOp {
                key: b"key",
                value: Some(b"value")
            }]
        );
        let mut two = encode(8, b"", None);
        batch::encode_op(&mut two, b"k", Some(b""));
        write_header(&mut two, 8, 2);
        let batch = decode(&two).unwrap();
        assert_eq!(batch.last_seq(), 9);
        let ops: Vec<BatchOp<'_>> = batch.ops().collect();
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

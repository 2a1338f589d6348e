//! Segment files and the records in them: what Bitcask actually writes for every change.
//!
//! A store's data lives in numbered **segment files** (`00000007.seg`). Each starts with a
//! 16-byte header, then holds records appended one after another. One segment, the
//! *active* one, takes the appends; when it passes `segment_bytes` it is **sealed** (a
//! final seal record is appended and the file is fsynced) and never changes again.
//!
//! ## Segment header
//!
//! All integers are little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `BITCASKS` ([`SEGMENT_MAGIC`]) |
//! | 8 | 4 | format version, `u32` ([`SEGMENT_VERSION`], 1) |
//! | 12 | 4 | segment id, `u32`: must match the number in the file name |
//!
//! ## Record
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 27 + k + v` (everything after this field) |
//! | 4 | 8 | sequence number, `u64`: a store-wide counter, +1 per put or delete (+c for a batch of c ops) |
//! | 12 | 8 | expiry, `u64`: milliseconds since the Unix epoch, 0 for "never" |
//! | 20 | 1 | kind: 0 put, 1 tombstone (a delete), 2 seal, 3 batch (below) |
//! | 21 | 2 | `k`: key length, 0 to [`MAX_KEY_LEN`], `u16` |
//! | 23 | 4 | `v`: value length, 0 to [`MAX_VALUE_LEN`], `u32` (0 for a tombstone or seal) |
//! | 27 | k | key (empty for a seal) |
//! | 27 + k | v | value |
//!
//! So `put("fruit", "apple")` with sequence number 1 is 37 bytes:
//! `crc(4) 01 00.. (8) 00.. (8) 00 05 00 05 00 00 00 f r u i t a p p l e`.
//!
//! ## Batch record
//!
//! [`kv_shared::Engine::write`] writes a whole [`WriteBatch`] as **one** record, whatever
//! its number of ops: it has one checksum, so a crash that tears it loses all of it, and
//! recovery never applies half a batch. It has the same 27-byte header as every record (so
//! the log reader finds its length the same way), no key, and a *body* where a put has its
//! value:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 27 + n` |
//! | 4 | 8 | sequence number of the first op, `u64`; op `i` has sequence number `first + i` |
//! | 12 | 8 | expiry, `u64`: always 0 (the puts of a batch never expire) |
//! | 20 | 1 | kind: 3 batch |
//! | 21 | 2 | key length, `u16`: always 0 |
//! | 23 | 4 | `n`: body length, `u32`, 5 to 4 + [`MAX_BATCH_OPS_LEN`] |
//! | 27 | 4 | `c`: number of ops, `u32`, at least 1 |
//! | 31 | n - 4 | the `c` ops back to back, in [`kv_shared::batch`]'s ops format |
//!
//! So the batch `put("a", "1")`, `delete("b")` is 39 bytes: the header, the count `02 00 00
//! 00`, the put `01 01 a 01 1` and the delete `00 01 b`. An empty batch writes nothing.
//! A batch whose ops take more than [`MAX_BATCH_OPS_LEN`] bytes is refused with
//! [`kv_shared::Error::InvalidArgument`] before anything is written: the bound keeps every
//! length a reader allocates for checked, and still holds an op of the largest key and
//! value. A batch is never split: one that would take the active segment past
//! `segment_bytes` seals it first, so a batch larger than a segment works, and fills a
//! fresh segment alone.
//!
//! Each put of a batch gets its own keydir entry, pointing at the batch record (see
//! [`crate::keydir::Entry`]); a `get` of it reads the whole batch record (two positioned
//! reads: the header, then the rest) and checks its one checksum. The batch's header and
//! its deletes are dead bytes from the moment it is written ([`crate::engine`]). A merge
//! copies the live values out as plain put records (and the tombstones it must keep as
//! plain tombstones), so batch records only ever live in the segments the writer filled.
//!
//! **Versions.** A build from before batch records takes kind 3 for damage: at the end of
//! the active segment it would cut the batch off as a torn tail, losing acknowledged
//! writes. So the store's format version (its `ENGINE` marker) is 2, and such a build
//! refuses the store whole. The segment header keeps version 1: every byte a version-1
//! segment holds means the same here.
//!
//! ## Why each field is there
//!
//! * The **sequence number** orders every change in the store. Merges copy records between
//!   files and hint files load in any order, so "later in the file" no longer means
//!   "newer"; on recovery the record with the highest sequence number wins. (Basho's Bitcask
//!   uses a wall-clock timestamp here; a counter cannot go backwards.)
//! * The **expiry** is the optional time to live of [`crate::Bitcask::put_with_ttl`].
//! * The **seal** record is the last record of every immutable segment. A log cut exactly at
//!   a record boundary looks complete to a reader; the seal is how recovery tells a whole
//!   immutable segment from one that lost its end. Only the active segment has no seal.
//!
//! The checksum covers every field, lengths included. A length over its limit is rejected
//! before anything is allocated.

use std::marker::PhantomData;
use std::ops::Range;

use kv_shared::batch::{BatchOps, check_ops, read_op};
use kv_shared::framing::{ByteReader, DecodeError, crc32, put_magic_version, varint_len};
use kv_shared::log_reader::LogFormat;
use kv_shared::{Error, MAX_KEY_LEN, MAX_VALUE_LEN, Result, WriteBatch};

use crate::expiry::NEVER;

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"BITCASKS";
/// The segment format this build writes and reads.
pub const SEGMENT_VERSION: u32 = 1;
/// Length of the segment header: magic, version, segment id.
pub const SEGMENT_HEADER_LEN: u64 = 16;
/// Bytes of a record before its key: CRC, sequence, expiry, kind, key and value lengths.
pub const RECORD_HEADER_LEN: usize = 27;
/// Bytes of a batch record before its first op: the record header and the op count.
pub const BATCH_HEADER_LEN: usize = RECORD_HEADER_LEN + 4;
/// Most bytes the ops of one batch record may take (64 MiB).
pub const MAX_BATCH_OPS_LEN: usize = 64 << 20;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `key` now has `value`.
    Put,
    /// `key` was deleted (a tombstone).
    Tombstone,
    /// The end of an immutable segment.
    Seal,
    /// The ops of a write batch, applied together.
    Batch,
}

impl Kind {
    /// The kind's byte on disk.
    pub fn byte(self) -> u8 {
        match self {
            Kind::Put => 0,
            Kind::Tombstone => 1,
            Kind::Seal => 2,
            Kind::Batch => 3,
        }
    }

    /// The kind a byte on disk names, if any.
    pub fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Put),
            1 => Some(Kind::Tombstone),
            2 => Some(Kind::Seal),
            3 => Some(Kind::Batch),
            _ => None,
        }
    }

    /// The kind's name, as dumps show it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Put => "put",
            Kind::Tombstone => "tombstone",
            Kind::Seal => "seal",
            Kind::Batch => "batch",
        }
    }
}

/// A record, borrowing its key and value from the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Sequence number (of a batch: its first op's).
    pub seq: u64,
    /// Expiry in milliseconds since the Unix epoch; 0 for never.
    pub expiry: u64,
    /// Put, tombstone, seal or batch.
    pub kind: Kind,
    /// The key (empty for a seal or a batch).
    pub key: &'a [u8],
    /// The value (empty for a tombstone or seal; a batch's body: op count, then ops).
    pub value: &'a [u8],
}

/// An owned record, as the log reader hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence number (of a batch: its first op's).
    pub seq: u64,
    /// Expiry in milliseconds since the Unix epoch; 0 for never.
    pub expiry: u64,
    /// Put, tombstone, seal or batch.
    pub kind: Kind,
    /// The key.
    pub key: Vec<u8>,
    /// The value (a batch's body).
    pub value: Vec<u8>,
}

impl Record {
    /// Borrows this record.
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            seq: self.seq,
            expiry: self.expiry,
            kind: self.kind,
            key: &self.key,
            value: &self.value,
        }
    }
}

impl<'a> RecordRef<'a> {
    /// The record's length on disk.
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_LEN + self.key.len() + self.value.len()
    }

    /// The record's bytes. The caller has checked key and value against the limits.
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.key.len() <= MAX_KEY_LEN && self.value.len() <= MAX_VALUE_LEN);
        encode_parts(self.seq, self.expiry, self.kind, self.key, &[self.value])
    }

    /// The number of ops of a batch record (0 for any other kind).
    pub fn batch_count(&self) -> u32 {
        match (self.kind, self.value.first_chunk::<4>()) {
            (Kind::Batch, Some(count)) => u32::from_le_bytes(*count),
            _ => 0,
        }
    }

    /// The ops of a batch record (none for any other kind), each as the plain put or
    /// tombstone a merge writes for it: op `i` has sequence number `seq + i` and never
    /// expires. The record must come from [`decode_record`], which checked its ops.
    pub fn batch_records(&self) -> impl Iterator<Item = RecordRef<'a>> + use<'a> {
        let first = self.seq;
        batch_ops(self).enumerate().map(move |(i, op)| RecordRef {
            seq: first + i as u64,
            expiry: NEVER,
            kind: if op.value.is_some() {
                Kind::Put
            } else {
                Kind::Tombstone
            },
            key: op.key,
            value: op.value.unwrap_or_default(),
        })
    }

    /// The value of op `index` of a batch record if that op is a put of `key`, as a range
    /// of the record's bytes.
    pub fn batch_value(&self, index: u64, key: &[u8]) -> Option<Range<usize>> {
        let mut r = ByteReader::new(self.value.get(4..)?);
        let mut op = None;
        for _ in 0..=index {
            op = Some(read_op(&mut r).ok()?);
        }
        let op = op?;
        let value = op.value.filter(|_| op.key == key)?;
        let end = BATCH_HEADER_LEN + r.pos();
        Some(end - value.len()..end)
    }
}

/// The ops of a decoded batch record (none for any other kind).
fn batch_ops<'a>(record: &RecordRef<'a>) -> BatchOps<'a> {
    BatchOps::new(
        record.value.get(4..).unwrap_or_default(),
        record.batch_count(),
    )
}

/// Bytes of one op of a batch body: kind, key length, key, and for a put (`value_len` is
/// `Some`) value length and value.
pub fn op_len(key_len: usize, value_len: Option<usize>) -> u64 {
    let value = value_len.map_or(0, |v| varint_len(v as u64) + v);
    (1 + varint_len(key_len as u64) + key_len + value) as u64
}

/// The batch record of `batch`, whose first op takes sequence number `first_seq`.
///
/// # Errors
/// [`Error::InvalidArgument`] when the ops take more than [`MAX_BATCH_OPS_LEN`] bytes.
pub fn encode_batch(first_seq: u64, batch: &WriteBatch) -> Result<Vec<u8>> {
    let ops = batch.encoded_ops();
    if ops.len() > MAX_BATCH_OPS_LEN {
        return Err(Error::InvalidArgument(format!(
            "a write batch of {} bytes of ops is over bitcask's limit of {MAX_BATCH_OPS_LEN} \
             bytes per batch; split it",
            ops.len()
        )));
    }
    let count = batch.count().to_le_bytes();
    Ok(encode_parts(
        first_seq,
        NEVER,
        Kind::Batch,
        b"",
        &[&count, ops],
    ))
}

/// A record's bytes, its value given in parts (a batch's count, then its ops).
fn encode_parts(seq: u64, expiry: u64, kind: Kind, key: &[u8], value: &[&[u8]]) -> Vec<u8> {
    let value_len: usize = value.iter().map(|part| part.len()).sum();
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + key.len() + value_len);
    out.extend_from_slice(&[0; 4]); // the CRC, filled in last
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&expiry.to_le_bytes());
    out.push(kind.byte());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&(value_len as u32).to_le_bytes());
    out.extend_from_slice(key);
    for part in value {
        out.extend_from_slice(part);
    }
    let crc = crc32(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The seal record that ends an immutable segment.
pub fn seal_record() -> Vec<u8> {
    encode_parts(0, NEVER, Kind::Seal, b"", &[])
}

/// The 16-byte header of segment `id`.
pub fn encode_segment_header(id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    put_magic_version(&mut out, SEGMENT_MAGIC, SEGMENT_VERSION);
    out.extend_from_slice(&id.to_le_bytes());
    out
}

/// Checks a segment header; returns the segment id it records.
///
/// # Errors
/// [`DecodeError`] for a short header, a bad magic or an unknown version.
pub fn decode_segment_header(bytes: &[u8]) -> Result<u32, DecodeError> {
    ByteReader::past_magic_version(bytes, SEGMENT_MAGIC, SEGMENT_VERSION, "bitcask segment")?
        .u32("segment id")
}

/// The length of the whole record whose header starts `header`, its key and value lengths
/// checked against their limits (a batch's body against [`MAX_BATCH_OPS_LEN`]).
///
/// # Errors
/// [`DecodeError`] for a header cut short or a length over its limit.
pub fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
    let mut r = ByteReader::new(header);
    r.bytes(20, "record header")?;
    let kind = r.u8("kind")?;
    let key_len = r.u16("key length")? as usize;
    let value_len = r.u32("value length")? as usize;
    let max = if kind == Kind::Batch.byte() {
        4 + MAX_BATCH_OPS_LEN
    } else {
        MAX_VALUE_LEN
    };
    if value_len > max {
        return Err(DecodeError::new(
            23,
            format!("value length {value_len} is over the limit of {max}"),
        ));
    }
    Ok(RECORD_HEADER_LEN + key_len + value_len)
}

/// Decodes one whole record (exactly `bytes`), verifying its checksum and fields (for a
/// batch, every op).
///
/// # Errors
/// [`DecodeError`] on a checksum mismatch, a bad kind, a length that does not match, a
/// tombstone or seal carrying bytes it must not have, or a batch whose ops do not decode.
pub fn decode_record(bytes: &[u8]) -> Result<RecordRef<'_>, DecodeError> {
    let len = record_len(bytes)?;
    if bytes.len() != len {
        return Err(DecodeError::new(
            0,
            format!("record is {} bytes, its header says {len}", bytes.len()),
        ));
    }
    let mut r = ByteReader::new(bytes);
    let crc = r.u32("crc")?;
    if crc != crc32(&bytes[4..]) {
        return Err(DecodeError::new(0, "record checksum mismatch"));
    }
    let seq = r.u64("sequence number")?;
    let expiry = r.u64("expiry")?;
    let kind = Kind::from_byte(r.u8("kind")?)
        .ok_or_else(|| DecodeError::new(20, "unknown record kind"))?;
    let key_len = r.u16("key length")? as usize;
    let value_len = r.u32("value length")? as usize;
    let record = RecordRef {
        seq,
        expiry,
        kind,
        key: r.bytes(key_len, "key")?,
        value: r.bytes(value_len, "value")?,
    };
    check_fields(&record)?;
    Ok(record)
}

/// What each kind may carry: a tombstone or seal no value, a seal no key, a batch no key,
/// no expiry and at least one op, every op whole, and sequence numbers for all its ops.
fn check_fields(record: &RecordRef<'_>) -> Result<(), DecodeError> {
    let refuse = |at: usize, why: &str| Err(DecodeError::new(at, why));
    match record.kind {
        Kind::Put => Ok(()),
        Kind::Tombstone | Kind::Seal if !record.value.is_empty() => {
            refuse(23, "a tombstone or seal carries a value")
        }
        Kind::Seal if !record.key.is_empty() => refuse(21, "a seal record carries a key"),
        Kind::Tombstone | Kind::Seal => Ok(()),
        Kind::Batch if !record.key.is_empty() => refuse(21, "a batch record carries a key"),
        Kind::Batch if record.expiry != NEVER => refuse(12, "a batch record carries an expiry"),
        Kind::Batch => {
            let Some(ops) = record.value.get(4..) else {
                return refuse(RECORD_HEADER_LEN, "a batch record without its op count");
            };
            let count = record.batch_count();
            if count == 0 {
                return refuse(RECORD_HEADER_LEN, "a batch record with no op");
            }
            // Op `i` is numbered `seq + i`: the last number must exist.
            if record.seq.checked_add(u64::from(count) - 1).is_none() {
                return refuse(4, "a batch record whose ops' sequence numbers overflow");
            }
            check_ops(ops, count)
                .map_err(|e| DecodeError::new(BATCH_HEADER_LEN + e.offset, e.detail))
        }
    }
}

/// A put, tombstone or seal without its value: what recovery keeps of each record it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    /// Sequence number.
    pub seq: u64,
    /// Expiry in milliseconds since the Unix epoch; 0 for never.
    pub expiry: u64,
    /// Put, tombstone or seal.
    pub kind: Kind,
    /// The key.
    pub key: Vec<u8>,
    /// Length of the value (0 for a tombstone or seal).
    pub value_len: u32,
}

/// A record as recovery keeps it: keys and lengths, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKeys {
    /// A put, a tombstone or a seal.
    One(RecordKey),
    /// A batch: each op as the put or tombstone it stands for (see
    /// [`RecordRef::batch_records`]).
    Batch(Vec<RecordKey>),
}

impl From<RecordRef<'_>> for Record {
    fn from(r: RecordRef<'_>) -> Record {
        Record {
            seq: r.seq,
            expiry: r.expiry,
            kind: r.kind,
            key: r.key.to_vec(),
            value: r.value.to_vec(),
        }
    }
}

impl From<RecordRef<'_>> for RecordKey {
    fn from(r: RecordRef<'_>) -> RecordKey {
        RecordKey {
            seq: r.seq,
            expiry: r.expiry,
            kind: r.kind,
            key: r.key.to_vec(),
            value_len: r.value.len() as u32,
        }
    }
}

impl From<RecordRef<'_>> for RecordKeys {
    fn from(r: RecordRef<'_>) -> RecordKeys {
        match r.kind {
            Kind::Batch => RecordKeys::Batch(r.batch_records().map(RecordKey::from).collect()),
            _ => RecordKeys::One(r.into()),
        }
    }
}

/// The record log of a segment, for [`kv_shared::log_reader::read_log`] (start it at
/// [`SEGMENT_HEADER_LEN`]): every record is checked whole, checksum included, then kept as
/// `R`: an owned [`Record`], or only its keys ([`SegmentKeyLog`]).
#[derive(Debug)]
pub struct SegmentLog<R = Record>(PhantomData<R>);

/// The record log of a segment as recovery reads it: every record checked whole (checksum
/// included), but only its keys kept, so values are never copied.
pub type SegmentKeyLog = SegmentLog<RecordKeys>;

impl<R: for<'a> From<RecordRef<'a>>> LogFormat for SegmentLog<R> {
    type Record = R;
    const HEADER_LEN: usize = RECORD_HEADER_LEN;

    fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
        record_len(header)
    }

    fn decode(record: &[u8]) -> Result<R, DecodeError> {
        decode_record(record).map(R::from)
    }
}

#[cfg(test)]
mod tests {
    use kv_testkit::fixtures::batch_of;

    use super::*;

    fn put<'a>(seq: u64, key: &'a [u8], value: &'a [u8]) -> RecordRef<'a> {
        RecordRef {
            seq,
            expiry: 0,
            kind: Kind::Put,
            key,
            value,
        }
    }

    #[test]
    fn round_trip_and_documented_size() {
        let r = put(1, b"fruit", b"apple");
        let bytes = r.encode();
        assert_eq!(bytes.len(), 37);
        assert_eq!(decode_record(&bytes).unwrap(), r);
        let seal = seal_record();
        assert_eq!(decode_record(&seal).unwrap().kind, Kind::Seal);
        assert_eq!(decode_segment_header(&encode_segment_header(9)).unwrap(), 9);
    }

    /// The batch the module documentation spells out byte by byte.
    fn small_batch() -> WriteBatch {
        batch_of(&[(b"a", Some(b"1")), (b"b", None)])
    }

    #[test]
    fn batch_round_trip_and_documented_size() {
        let bytes = encode_batch(7, &small_batch()).unwrap();
        assert_eq!(bytes.len(), 39);
        let r = decode_record(&bytes).unwrap();
        assert_eq!((r.kind, r.seq, r.key), (Kind::Batch, 7, &b""[..]));
        let ops: Vec<RecordRef<'_>> = r.batch_records().collect();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0], put(7, b"a", b"1"));
        assert_eq!(
            (ops[1].seq, ops[1].kind, ops[1].key),
            (8, Kind::Tombstone, &b"b"[..])
        );
        assert_eq!(op_len(1, Some(1)) + op_len(1, None), 8);
        let value = r.batch_value(0, b"a").unwrap();
        assert_eq!(&bytes[value], b"1");
        assert_eq!(r.batch_value(0, b"b"), None, "another key");
        assert_eq!(r.batch_value(1, b"b"), None, "a delete has no value");
        assert_eq!(r.batch_value(2, b"a"), None, "past the last op");
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        for bytes in [
            put(7, b"key", b"value").encode(),
            encode_batch(3, &small_batch()).unwrap(),
        ] {
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut bad = bytes.clone();
                    bad[i] ^= 1 << bit;
                    assert!(decode_record(&bad).is_err(), "flip at {i}.{bit}");
                }
            }
        }
    }

    #[test]
    fn a_batch_must_hold_whole_ops() {
        // Right checksum, wrong contents: no ops, a count the ops do not match, a key.
        let refused = [
            encode_parts(1, 0, Kind::Batch, b"", &[&0u32.to_le_bytes()]),
            encode_parts(
                1,
                0,
                Kind::Batch,
                b"",
                &[&2u32.to_le_bytes(), &[1, 1, b'a', 0]],
            ),
            encode_parts(
                1,
                0,
                Kind::Batch,
                b"k",
                &[&1u32.to_le_bytes(), &[0, 1, b'a']],
            ),
            encode_parts(
                1,
                9,
                Kind::Batch,
                b"",
                &[&1u32.to_le_bytes(), &[0, 1, b'a']],
            ),
            encode_parts(1, 0, Kind::Batch, b"", &[&[1, 0]]),
        ];
        for (i, bytes) in refused.iter().enumerate() {
            assert!(decode_record(bytes).is_err(), "case {i}");
        }
    }

    #[test]
    fn impossible_lengths_are_refused_before_allocating() {
        let mut header = vec![0u8; RECORD_HEADER_LEN];
        header[23..27].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(<SegmentLog>::record_len(&header).is_err());
        header[20] = Kind::Batch.byte();
        assert!(<SegmentLog>::record_len(&header).is_err());
        let too_big = (4 + MAX_BATCH_OPS_LEN) as u32;
        header[23..27].copy_from_slice(&too_big.to_le_bytes());
        assert!(<SegmentLog>::record_len(&header).is_ok());
        header[23..27].copy_from_slice(&(too_big + 1).to_le_bytes());
        assert!(<SegmentLog>::record_len(&header).is_err());
    }
}

//! One record of the log: a put, a delete or a write batch, framed so that damage is always
//! noticed.
//!
//! Every change to the store is appended to the data file as one record. A record carries
//! its own length and its own checksum, so the file can be read back record by record
//! without any other structure, and a record that was torn by a crash or changed on disk
//! fails its check instead of being misread.
//!
//! ## Format
//!
//! All integers are little-endian. Every record starts with the same ten bytes, and its
//! length follows from them alone:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of everything after this field, to the end of the record |
//! | 4 | 2 | `k`: key length, 0 to [`MAX_KEY_LEN`] (65,535), `u16` |
//! | 6 | 4 | the value length field, `u32`, which also says what kind of record this is |
//!
//! | value length field | the record is |
//! |---|---|
//! | `v`, 0 to [`MAX_VALUE_LEN`] (16 MiB) | a put of a value of `v` bytes |
//! | [`TOMBSTONE`], `ff ff ff ff` | a delete |
//! | [`BATCH`] + `b`, `0x8000_0000` plus 0 to [`MAX_BATCH_LEN`] (256 MiB) | a write batch whose ops take `b` bytes; `k` is 0 |
//! | anything else | not a record: damage |
//!
//! ### Put and delete
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 10 + k + v` (everything after this field) |
//! | 4 | 2 | `k`: key length, `u16` |
//! | 6 | 4 | `v`: value length, `u32`; or [`TOMBSTONE`] (`ff ff ff ff`) for a delete |
//! | 10 | k | key |
//! | 10 + k | v | value (absent for a delete) |
//!
//! So `put("fruit", "apple")` is 20 bytes: `crc(4) 05 00 05 00 00 00 f r u i t a p p l e`,
//! and `delete("fruit")` is 15: `crc(4) 05 00 ff ff ff ff f r u i t`.
//!
//! ### Write batch
//!
//! A [`WriteBatch`] is one record, whatever its number of ops:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 14 + b` (everything after this field) |
//! | 4 | 2 | key length: always 0, a batch has no key of its own |
//! | 6 | 4 | [`BATCH`] + `b`: `0x8000_0000` plus `b`, the length of the ops, `u32` |
//! | 10 | 4 | `n`: the number of ops, at least 1, `u32` |
//! | 14 | b | the `n` ops in the [`kv_shared::batch`] ops format, and nothing after the last |
//!
//! Each op there is a kind byte (1 = put, 0 = delete), the key length as a varint, the key,
//! and for a put the value length as a varint and the value. So a batch that puts `"a"` =
//! `"1"` and deletes `"b"` is 22 bytes:
//! `crc(4) 00 00 08 00 00 80 02 00 00 00 01 01 a 01 1 00 01 b`.
//!
//! One checksum covers the whole batch. A batch torn by a crash fails it and is dropped
//! whole, so a batch is replayed entirely or not at all. The price is paid by reads: the
//! checksum can only vouch for a value that a batch wrote once the whole batch has been
//! read, so a `get` of such a value reads its whole batch record.
//!
//! The checksum covers the lengths as well as the bytes, so a flipped length is caught too.
//! A length over its limit is rejected before anything is allocated or read: a corrupt
//! length can never make a reader allocate gigabytes.

use kv_shared::batch::{BatchOps, check_ops};
use kv_shared::framing::{ByteReader, DecodeError, crc32, varint_len};
use kv_shared::log_reader::LogFormat;
use kv_shared::{Error, MAX_KEY_LEN, MAX_VALUE_LEN, Result, WriteBatch};

/// Bytes before the key: CRC32 (4), key length (2), value length (4).
pub const RECORD_HEADER_LEN: usize = 10;

/// The value length that marks a delete (a tombstone): no value bytes follow.
pub const TOMBSTONE: u32 = u32::MAX;

/// The value length field of a batch record is `BATCH` plus the length of its ops.
pub const BATCH: u32 = 0x8000_0000;

/// The longest ops of one batch record, in bytes (256 MiB).
pub const MAX_BATCH_LEN: usize = 256 << 20;

/// Bytes of a batch record before its ops: CRC32 (4), key length (2), value length field
/// (4), op count (4).
pub const BATCH_HEADER_LEN: usize = 14;

/// A put or delete record, borrowing its key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value of a put; `None` for a delete.
    pub value: Option<&'a [u8]>,
}

impl<'a> Record<'a> {
    /// A put of `key` = `value`.
    pub fn put(key: &'a [u8], value: &'a [u8]) -> Self {
        Record {
            key,
            value: Some(value),
        }
    }

    /// A delete of `key`.
    pub fn delete(key: &'a [u8]) -> Self {
        Record { key, value: None }
    }

    /// The record's length on disk.
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_LEN + self.key.len() + self.value.map_or(0, <[u8]>::len)
    }

    // Exercise 1.1: encode a put or a delete. Read: chapter 1, "On disk".
    // Tests: lib::record::tests::the_documented_example_bytes
    /// The record's bytes. The caller has checked the key and value against the limits
    /// (`kv_shared::check_key_value`), so the lengths fit their fields.
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.key.len() <= MAX_KEY_LEN);
        debug_assert!(self.value.is_none_or(|v| v.len() <= MAX_VALUE_LEN));
        let value_len = self.value.map_or(TOMBSTONE, |v| v.len() as u32);
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&[0; 4]); // the CRC, filled in last
        out.extend_from_slice(&(self.key.len() as u16).to_le_bytes());
        out.extend_from_slice(&value_len.to_le_bytes());
        out.extend_from_slice(self.key);
        out.extend_from_slice(self.value.unwrap_or_default());
        fill_crc(&mut out);
        out
    }
}

/// A write batch record, borrowing its ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRecord<'a> {
    /// The number of ops.
    pub count: u32,
    /// The ops, in the [`kv_shared::batch`] ops format.
    pub ops: &'a [u8],
}

impl<'a> BatchRecord<'a> {
    /// The record of `batch`, which must hold at least one op.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when its ops are longer than [`MAX_BATCH_LEN`].
    pub fn of(batch: &'a WriteBatch) -> Result<Self> {
        debug_assert!(!batch.is_empty());
        check_batch_len(batch.encoded_ops().len())?;
        Ok(BatchRecord {
            count: batch.count(),
            ops: batch.encoded_ops(),
        })
    }

    /// The record's length on disk.
    pub fn encoded_len(&self) -> usize {
        BATCH_HEADER_LEN + self.ops.len()
    }

    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&[0; 4]); // the CRC, filled in last
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(BATCH + self.ops.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(self.ops);
        fill_crc(&mut out);
        out
    }

    /// The ops, in order.
    pub fn ops(&self) -> BatchOps<'a> {
        BatchOps::new(self.ops, self.count)
    }
}

/// Checks the length of a batch's ops against [`MAX_BATCH_LEN`].
///
/// # Errors
/// [`Error::InvalidArgument`] when it is over.
fn check_batch_len(ops_len: usize) -> Result<()> {
    if ops_len > MAX_BATCH_LEN {
        return Err(Error::InvalidArgument(format!(
            "a write batch of {ops_len} bytes is over the limit of {MAX_BATCH_LEN} bytes"
        )));
    }
    Ok(())
}

/// The length of a put op inside a batch record: kind, key length, key, value length and
/// value.
pub fn put_op_len(key_len: usize, value_len: usize) -> usize {
    1 + varint_len(key_len as u64) + key_len + varint_len(value_len as u64) + value_len
}

/// Writes the CRC32 of `record[4..]` into its first four bytes.
fn fill_crc(record: &mut [u8]) {
    let crc = crc32(&record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded record of any kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A put or a delete.
    Single(Record<'a>),
    /// A write batch.
    Batch(BatchRecord<'a>),
}

/// What a record's value length field says it is.
enum Kind {
    Put { value_len: usize },
    Delete,
    Batch { ops_len: usize },
}

/// Reads the value length field `field` (at offset 6 of a record).
fn kind(field: u32) -> Result<Kind, DecodeError> {
    let over = |what: String| Err(DecodeError::new(6, what));
    match field {
        TOMBSTONE => Ok(Kind::Delete),
        v if v as usize <= MAX_VALUE_LEN => Ok(Kind::Put {
            value_len: v as usize,
        }),
        v if v < BATCH => over(format!(
            "value length {v} is over the limit of {MAX_VALUE_LEN} bytes"
        )),
        v if (v - BATCH) as usize <= MAX_BATCH_LEN => Ok(Kind::Batch {
            ops_len: (v - BATCH) as usize,
        }),
        v => over(format!(
            "batch of {} bytes is over the limit of {MAX_BATCH_LEN} bytes",
            v - BATCH
        )),
    }
}

/// The length of the record that starts with `header` (at least [`RECORD_HEADER_LEN`] bytes),
/// read from its key length and value length fields.
///
/// # Errors
/// [`DecodeError`] when `header` is too short, the value length field is none of the
/// values the [format](self) allows, or a batch record has a key length. (A `u16` key
/// length cannot be over [`MAX_KEY_LEN`].)
pub fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
    let mut r = ByteReader::new(header);
    r.u32("crc")?;
    let key_len = usize::from(r.u16("key length")?);
    match kind(r.u32("value length")?)? {
        Kind::Put { value_len } => Ok(RECORD_HEADER_LEN + key_len + value_len),
        Kind::Delete => Ok(RECORD_HEADER_LEN + key_len),
        Kind::Batch { .. } if key_len != 0 => Err(DecodeError::new(
            4,
            format!("a batch record has key length {key_len}, not 0"),
        )),
        Kind::Batch { ops_len } => Ok(BATCH_HEADER_LEN + ops_len),
    }
}

// Exercise 1.2: decode and check one record. Read: chapter 1, "On disk".
// Tests: lib::record::tests::round_trips, lib::record::tests::every_single_flip_is_rejected
// Tests: lib::record::tests::bad_lengths_are_rejected_before_reading
/// Decodes exactly one whole record of any kind, verifying its lengths, its checksum and,
/// for a batch, every op.
///
/// # Errors
/// [`DecodeError`] (offset relative to the record's first byte) when a length is over its
/// limit, `bytes` is not exactly one record long, the checksum does not match, or a batch's
/// ops are not exactly its count of well-formed ops.
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let len = record_len(bytes)?;
    if len != bytes.len() {
        return Err(DecodeError::new(
            0,
            format!(
                "record is {len} bytes by its lengths, {} were given",
                bytes.len()
            ),
        ));
    }
    let mut r = ByteReader::new(bytes);
    let stored_crc = r.u32("crc")?;
    let actual_crc = crc32(&bytes[4..]);
    if actual_crc != stored_crc {
        return Err(DecodeError::new(
            0,
            format!("checksum mismatch: stored {stored_crc:#010x}, computed {actual_crc:#010x}"),
        ));
    }
    let key_len = usize::from(r.u16("key length")?);
    match kind(r.u32("value length")?)? {
        Kind::Put { value_len } => Ok(Decoded::Single(Record::put(
            r.bytes(key_len, "key")?,
            r.bytes(value_len, "value")?,
        ))),
        Kind::Delete => Ok(Decoded::Single(Record::delete(r.bytes(key_len, "key")?))),
        Kind::Batch { ops_len } => decode_batch(&mut r, ops_len).map(Decoded::Batch),
    }
}

/// Decodes a batch record's count and ops, `r` being just past its value length field.
fn decode_batch<'a>(
    r: &mut ByteReader<'a>,
    ops_len: usize,
) -> Result<BatchRecord<'a>, DecodeError> {
    let count = r.u32("op count")?;
    if count == 0 {
        return Err(DecodeError::new(10, "a batch record holds no op"));
    }
    let ops = r.bytes(ops_len, "ops")?;
    check_ops(ops, count).map_err(|e| DecodeError::new(BATCH_HEADER_LEN + e.offset, e.detail))?;
    Ok(BatchRecord { count, ops })
}

/// What recovery keeps of each record it replays. Values are checksummed but not copied
/// (the index only needs to know where they are), except those inside a batch, whose ops
/// are kept whole until they are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// A put: its key and the length of its value.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value's length.
        value_len: u32,
    },
    /// A delete (a tombstone) of `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// A write batch: its op count and its ops, already checked.
    Batch {
        /// The number of ops.
        count: u32,
        /// The ops, in the [`kv_shared::batch`] ops format.
        ops: Vec<u8>,
    },
}

/// The data file's records as [`kv_shared::log_reader::read_log`] reads them.
#[derive(Debug, Clone, Copy)]
pub struct RecordFormat;

impl LogFormat for RecordFormat {
    type Record = Replayed;
    const HEADER_LEN: usize = RECORD_HEADER_LEN;

    fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
        record_len(header)
    }

    fn decode(bytes: &[u8]) -> Result<Replayed, DecodeError> {
        Ok(match decode(bytes)? {
            Decoded::Single(Record {
                key,
                value: Some(value),
            }) => Replayed::Put {
                key: key.to_vec(),
                value_len: value.len() as u32,
            },
            Decoded::Single(Record { key, value: None }) => Replayed::Delete { key: key.to_vec() },
            Decoded::Batch(batch) => Replayed::Batch {
                count: batch.count,
                ops: batch.ops.to_vec(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use kv_testkit::fixtures::batch_of;

    use super::*;

    /// The batch the module documentation spells out byte by byte.
    fn small_batch() -> WriteBatch {
        batch_of(&[(b"a", Some(b"1")), (b"b", None)])
    }

    #[test]
    fn the_documented_example_bytes() {
        let put = Record::put(b"fruit", b"apple").encode();
        assert_eq!(put.len(), 20);
        assert_eq!(&put[4..], b"\x05\x00\x05\x00\x00\x00fruitapple");
        assert_eq!(put[..4], crc32(&put[4..]).to_le_bytes());
        let delete = Record::delete(b"fruit").encode();
        assert_eq!(delete.len(), 15);
        assert_eq!(&delete[4..], b"\x05\x00\xff\xff\xff\xfffruit");
        let batch = small_batch();
        let record = BatchRecord::of(&batch).unwrap().encode();
        assert_eq!(record.len(), 22);
        assert_eq!(
            &record[4..],
            b"\x00\x00\x08\x00\x00\x80\x02\x00\x00\x00\x01\x01a\x011\x00\x01b"
        );
        assert_eq!(record[..4], crc32(&record[4..]).to_le_bytes());
    }

    #[test]
    fn round_trips() {
        for record in [
            Record::put(b"k", b"v"),
            Record::put(b"", b""),
            Record::put(b"\x00\xff", b"empty key next"),
            Record::delete(b"gone"),
            Record::delete(b""),
        ] {
            let bytes = record.encode();
            assert_eq!(bytes.len(), record.encoded_len());
            assert_eq!(record_len(&bytes[..RECORD_HEADER_LEN]), Ok(bytes.len()));
            assert_eq!(decode(&bytes), Ok(Decoded::Single(record)));
        }
        let batch = small_batch();
        let record = BatchRecord::of(&batch).unwrap();
        let bytes = record.encode();
        assert_eq!(bytes.len(), record.encoded_len());
        assert_eq!(record_len(&bytes[..RECORD_HEADER_LEN]), Ok(bytes.len()));
        assert_eq!(decode(&bytes), Ok(Decoded::Batch(record)));
        assert!(record.ops().eq(batch.iter()));
        assert_eq!(put_op_len(1, 1), 5, "the put op of the batch above");
    }

    #[test]
    fn every_single_flip_is_rejected() {
        let batch = small_batch();
        for bytes in [
            Record::put(b"key", b"value").encode(),
            BatchRecord::of(&batch).unwrap().encode(),
        ] {
            for i in 0..bytes.len() {
                for mask in [0x01, 0x80, 0xff] {
                    let mut bad = bytes.clone();
                    bad[i] ^= mask;
                    assert!(decode(&bad).is_err(), "flip {mask:#x} at {i}");
                }
            }
        }
    }

    #[test]
    fn bad_lengths_are_rejected_before_reading() {
        let mut header = Record::put(b"k", b"v").encode();
        header[6..10].copy_from_slice(&(MAX_VALUE_LEN as u32 + 1).to_le_bytes());
        assert!(record_len(&header).is_err());
        assert!(record_len(&header[..9]).is_err());
        header[6..10].copy_from_slice(&(BATCH + MAX_BATCH_LEN as u32 + 1).to_le_bytes());
        assert!(record_len(&header).is_err(), "a batch over its limit");
        header[6..10].copy_from_slice(&BATCH.to_le_bytes());
        assert!(record_len(&header).is_err(), "a batch with a key length");
        let bytes = Record::put(b"k", b"v").encode();
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[bytes.clone(), vec![0]].concat()).is_err());
    }

    /// A batch record whose checksum is right but whose count or ops are not: what a
    /// buggy writer could leave, refused all the same.
    #[test]
    fn a_batch_must_hold_exactly_its_count_of_ops() {
        let batch = small_batch();
        for (count, ops) in [
            (0, &b""[..]),
            (3, batch.encoded_ops()),
            (1, batch.encoded_ops()),
            (1, b"\x07\x00"),
        ] {
            let bytes = BatchRecord { count, ops }.encode();
            assert!(decode(&bytes).is_err(), "count {count}, ops {ops:?}");
        }
    }

    #[test]
    fn an_oversized_batch_is_refused() {
        check_batch_len(MAX_BATCH_LEN).unwrap();
        assert!(matches!(
            check_batch_len(MAX_BATCH_LEN + 1),
            Err(Error::InvalidArgument(_))
        ));
    }
}

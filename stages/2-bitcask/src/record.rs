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
//! | 4 | 8 | sequence number, `u64`: a store-wide counter, +1 per put or delete |
//! | 12 | 8 | expiry, `u64`: milliseconds since the Unix epoch, 0 for "never" |
//! | 20 | 1 | kind: 0 put, 1 tombstone (a delete), 2 seal |
//! | 21 | 2 | `k`: key length, 0 to [`MAX_KEY_LEN`], `u16` |
//! | 23 | 4 | `v`: value length, 0 to [`MAX_VALUE_LEN`], `u32` (0 for a tombstone or seal) |
//! | 27 | k | key (empty for a seal) |
//! | 27 + k | v | value |
//!
//! So `put("fruit", "apple")` with sequence number 1 is 37 bytes:
//! `crc(4) 01 00.. (8) 00.. (8) 00 05 00 05 00 00 00 f r u i t a p p l e`.
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

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32};
use kv_shared::log_reader::LogFormat;
use kv_shared::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"BITCASKS";
/// The segment format this build writes and reads.
pub const SEGMENT_VERSION: u32 = 1;
/// Length of the segment header: magic, version, segment id.
pub const SEGMENT_HEADER_LEN: u64 = 16;
/// Bytes of a record before its key: CRC, sequence, expiry, kind, key and value lengths.
pub const RECORD_HEADER_LEN: usize = 27;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `key` now has `value`.
    Put,
    /// `key` was deleted (a tombstone).
    Tombstone,
    /// The end of an immutable segment.
    Seal,
}

impl Kind {
    /// The kind's byte on disk.
    pub fn byte(self) -> u8 {
        match self {
            Kind::Put => 0,
            Kind::Tombstone => 1,
            Kind::Seal => 2,
        }
    }

    /// The kind a byte on disk names, if any.
    pub fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Put),
            1 => Some(Kind::Tombstone),
            2 => Some(Kind::Seal),
            _ => None,
        }
    }

    /// The kind's name, as dumps show it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Put => "put",
            Kind::Tombstone => "tombstone",
            Kind::Seal => "seal",
        }
    }
}

/// A record, borrowing its key and value from the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Expiry in milliseconds since the Unix epoch; 0 for never.
    pub expiry: u64,
    /// Put, tombstone or seal.
    pub kind: Kind,
    /// The key.
    pub key: &'a [u8],
    /// The value (empty for a tombstone or seal).
    pub value: &'a [u8],
}

/// An owned record, as the log reader hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence number.
    pub seq: u64,
    /// Expiry in milliseconds since the Unix epoch; 0 for never.
    pub expiry: u64,
    /// Put, tombstone or seal.
    pub kind: Kind,
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty for a tombstone or seal).
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

impl RecordRef<'_> {
    /// The record's length on disk.
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_LEN + self.key.len() + self.value.len()
    }

    /// The record's bytes. The caller has checked key and value against the limits.
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.key.len() <= MAX_KEY_LEN && self.value.len() <= MAX_VALUE_LEN);
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&[0; 4]); // the CRC, filled in last
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.expiry.to_le_bytes());
        out.push(self.kind.byte());
        out.extend_from_slice(&(self.key.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.value.len() as u32).to_le_bytes());
        out.extend_from_slice(self.key);
        out.extend_from_slice(self.value);
        let crc = crc32(&out[4..]);
        out[..4].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

/// The seal record that ends an immutable segment.
pub fn seal_record() -> Vec<u8> {
    RecordRef {
        seq: 0,
        expiry: 0,
        kind: Kind::Seal,
        key: b"",
        value: b"",
    }
    .encode()
}

/// The 16-byte header of segment `id`.
pub fn encode_segment_header(id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    out.extend_from_slice(SEGMENT_MAGIC);
    out.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out
}

/// Checks a segment header; returns the segment id it records.
///
/// # Errors
/// [`DecodeError`] for a short header, a bad magic or an unknown version.
pub fn decode_segment_header(bytes: &[u8]) -> Result<u32, DecodeError> {
    let mut r = ByteReader::new(bytes);
    if r.bytes(8, "segment magic")? != SEGMENT_MAGIC {
        return Err(DecodeError::new(0, "not a bitcask segment (bad magic)"));
    }
    let version = r.u32("segment version")?;
    if version != SEGMENT_VERSION {
        return Err(DecodeError::new(
            8,
            format!("segment format version {version}, this build reads {SEGMENT_VERSION}"),
        ));
    }
    r.u32("segment id")
}

/// The lengths a record header announces: `(key_len, value_len)`, checked against the limits.
fn lengths(header: &[u8]) -> Result<(usize, usize), DecodeError> {
    let mut r = ByteReader::new(header);
    r.bytes(21, "record header")?;
    let key_len = r.u16("key length")? as usize;
    let value_len = r.u32("value length")? as usize;
    if value_len > MAX_VALUE_LEN {
        return Err(DecodeError::new(
            23,
            format!("value length {value_len} is over the limit of {MAX_VALUE_LEN}"),
        ));
    }
    Ok((key_len, value_len))
}

/// Decodes one whole record (exactly `bytes`), verifying its checksum and fields.
///
/// # Errors
/// [`DecodeError`] on a checksum mismatch, a bad kind, a length that does not match, or a
/// tombstone or seal carrying bytes it must not have.
pub fn decode_record(bytes: &[u8]) -> Result<RecordRef<'_>, DecodeError> {
    let (key_len, value_len) = lengths(bytes)?;
    if bytes.len() != RECORD_HEADER_LEN + key_len + value_len {
        return Err(DecodeError::new(
            0,
            format!(
                "record is {} bytes, its header says {}",
                bytes.len(),
                RECORD_HEADER_LEN + key_len + value_len
            ),
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
    r.bytes(6, "lengths")?;
    let key = r.bytes(key_len, "key")?;
    let value = r.bytes(value_len, "value")?;
    if kind != Kind::Put && !value.is_empty() {
        return Err(DecodeError::new(23, "a tombstone or seal carries a value"));
    }
    if kind == Kind::Seal && !key.is_empty() {
        return Err(DecodeError::new(21, "a seal record carries a key"));
    }
    Ok(RecordRef {
        seq,
        expiry,
        kind,
        key,
        value,
    })
}

/// The record log of a segment, for [`kv_shared::log_reader::read_log`] (start it at
/// [`SEGMENT_HEADER_LEN`]).
#[derive(Debug)]
pub struct SegmentLog;

impl LogFormat for SegmentLog {
    type Record = Record;
    const HEADER_LEN: usize = RECORD_HEADER_LEN;

    fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
        let (key_len, value_len) = lengths(header)?;
        Ok(RECORD_HEADER_LEN + key_len + value_len)
    }

    fn decode(record: &[u8]) -> Result<Record, DecodeError> {
        let r = decode_record(record)?;
        Ok(Record {
            seq: r.seq,
            expiry: r.expiry,
            kind: r.kind,
            key: r.key.to_vec(),
            value: r.value.to_vec(),
        })
    }
}

/// A record without its value: what recovery keeps of each record it reads.
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
}

/// The record log of a segment as recovery reads it: every record checked whole (checksum
/// included), but only its key kept, so values are never copied.
#[derive(Debug)]
pub struct SegmentKeyLog;

impl LogFormat for SegmentKeyLog {
    type Record = RecordKey;
    const HEADER_LEN: usize = RECORD_HEADER_LEN;

    fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
        SegmentLog::record_len(header)
    }

    fn decode(record: &[u8]) -> Result<RecordKey, DecodeError> {
        let r = decode_record(record)?;
        Ok(RecordKey {
            seq: r.seq,
            expiry: r.expiry,
            kind: r.kind,
            key: r.key.to_vec(),
        })
    }
}

/// The annotated dump of a segment file: the header, then every record field by field.
/// Stops with a note at the first byte that does not decode. Never panics.
pub fn dump_segment(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("bitcask segment ({} bytes)", bytes.len()));
    if bytes.len() < SEGMENT_HEADER_LEN as usize {
        d.note("too short for a segment header");
        return d.finish();
    }
    d.field(&bytes[..8], format!("magic {}", quoted(SEGMENT_MAGIC, 8)));
    match decode_segment_header(bytes) {
        Ok(id) => {
            d.field(&bytes[8..12], format!("format version {SEGMENT_VERSION}"));
            d.field(&bytes[12..16], format!("segment id {id}"));
        }
        Err(e) => {
            d.note(format!("bad header: {e}"));
            return d.finish();
        }
    }
    let mut pos = SEGMENT_HEADER_LEN as usize;
    let mut n = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let len = match lengths(rest) {
            Ok((k, v)) => RECORD_HEADER_LEN + k + v,
            Err(e) => {
                d.note(format!("offset {pos}: no whole record header ({e})"));
                break;
            }
        };
        if len > rest.len() {
            d.note(format!(
                "offset {pos}: record of {len} bytes cut short at {} (torn tail)",
                rest.len()
            ));
            break;
        }
        let raw = &rest[..len];
        let record = match decode_record(raw) {
            Ok(r) => r,
            Err(e) => {
                d.note(format!("offset {pos}: bad record ({e})"));
                break;
            }
        };
        let k = record.key.len();
        d.section(format!("record {n}: {}", record.kind.name()));
        d.field(&raw[..4], "crc32 (ok)");
        d.field(&raw[4..12], format!("sequence number {}", record.seq));
        d.field(
            &raw[12..20],
            if record.expiry == 0 {
                "expiry: never".to_string()
            } else {
                format!("expiry {} ms since the Unix epoch", record.expiry)
            },
        );
        d.field(&raw[20..21], format!("kind {}", record.kind.name()));
        d.field(&raw[21..23], format!("key length {k}"));
        d.field(&raw[23..27], format!("value length {}", record.value.len()));
        if k > 0 {
            d.field(&raw[27..27 + k], format!("key {}", quoted(record.key, 40)));
        }
        if !record.value.is_empty() {
            d.field(
                &raw[27 + k..],
                format!("value {}", quoted(record.value, 40)),
            );
        }
        pos += len;
        n += 1;
    }
    d.finish()
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn every_flipped_bit_is_caught() {
        let bytes = put(7, b"key", b"value").encode();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(decode_record(&bad).is_err(), "flip at {i}.{bit}");
            }
        }
    }

    #[test]
    fn impossible_lengths_are_refused_before_allocating() {
        let mut header = vec![0u8; RECORD_HEADER_LEN];
        header[23..27].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(SegmentLog::record_len(&header).is_err());
    }
}

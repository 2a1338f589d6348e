//! One record of the log: a put or a delete, framed so that damage is always noticed.
//!
//! Every change to the store is appended to the data file as one record. A record carries
//! its own length and its own checksum, so the file can be read back record by record
//! without any other structure, and a record that was torn by a crash or changed on disk
//! fails its check instead of being misread.
//!
//! ## Format
//!
//! All integers are little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 10 + k + v` (everything after this field) |
//! | 4 | 2 | `k`: key length, 0 to [`MAX_KEY_LEN`] (65,535), `u16` |
//! | 6 | 4 | `v`: value length, 0 to [`MAX_VALUE_LEN`] (16 MiB), `u32`; or [`TOMBSTONE`] (`ff ff ff ff`) for a delete |
//! | 10 | k | key |
//! | 10 + k | v | value (absent for a delete) |
//!
//! So `put("fruit", "apple")` is 20 bytes: `crc(4) 05 00 05 00 00 00 f r u i t a p p l e`,
//! and `delete("fruit")` is 15: `crc(4) 05 00 ff ff ff ff f r u i t`.
//!
//! The checksum covers the lengths as well as the bytes, so a flipped length is caught too.
//! A length over its limit is rejected before anything is allocated or read: a corrupt
//! length can never make a reader allocate gigabytes.

use kv_shared::framing::{ByteReader, DecodeError, crc32};
use kv_shared::log_reader::LogFormat;
use kv_shared::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// Bytes before the key: CRC32 (4), key length (2), value length (4).
pub const RECORD_HEADER_LEN: usize = 10;

/// The value length that marks a delete (a tombstone): no value bytes follow.
pub const TOMBSTONE: u32 = u32::MAX;

/// A record, borrowing its key and value.
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
        let crc = crc32(&out[4..]);
        out[..4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes exactly one whole record, verifying its lengths and its checksum.
    ///
    /// # Errors
    /// [`DecodeError`] (offset relative to the record's first byte) when a length is over its
    /// limit, `bytes` is not exactly one record long, or the checksum does not match.
    pub fn decode(bytes: &'a [u8]) -> Result<Record<'a>, DecodeError> {
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
        let key_len = r.u16("key length")?;
        let value_len = r.u32("value length")?;
        let key = r.bytes(usize::from(key_len), "key")?;
        let value = match value_len {
            TOMBSTONE => None,
            n => Some(r.bytes(n as usize, "value")?),
        };
        let actual_crc = crc32(&bytes[4..]);
        if actual_crc != stored_crc {
            return Err(DecodeError::new(
                0,
                format!(
                    "checksum mismatch: stored {stored_crc:#010x}, computed {actual_crc:#010x}"
                ),
            ));
        }
        Ok(Record { key, value })
    }
}

/// The length of the record that starts with `header` (at least [`RECORD_HEADER_LEN`] bytes),
/// read from its two length fields.
///
/// # Errors
/// [`DecodeError`] when `header` is too short or the value length is over
/// [`MAX_VALUE_LEN`] without being [`TOMBSTONE`]. (A `u16` key length cannot be over
/// [`MAX_KEY_LEN`].)
pub fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
    let mut r = ByteReader::new(header);
    r.u32("crc")?;
    let key_len = usize::from(r.u16("key length")?);
    let value_len = match r.u32("value length")? {
        TOMBSTONE => 0,
        n if n as usize <= MAX_VALUE_LEN => n as usize,
        n => {
            return Err(DecodeError::new(
                6,
                format!("value length {n} is over the limit of {MAX_VALUE_LEN} bytes"),
            ));
        }
    };
    Ok(RECORD_HEADER_LEN + key_len + value_len)
}

/// What recovery keeps of each record it replays: the key and whether it was a delete.
/// The value is checksummed but not copied; the index only needs to know where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The record's key.
    pub key: Vec<u8>,
    /// True for a delete (a tombstone).
    pub is_delete: bool,
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
        let record = Record::decode(bytes)?;
        Ok(Replayed {
            key: record.key.to_vec(),
            is_delete: record.value.is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_bytes() {
        let put = Record::put(b"fruit", b"apple").encode();
        assert_eq!(put.len(), 20);
        assert_eq!(&put[4..], b"\x05\x00\x05\x00\x00\x00fruitapple");
        assert_eq!(put[..4], crc32(&put[4..]).to_le_bytes());
        let delete = Record::delete(b"fruit").encode();
        assert_eq!(delete.len(), 15);
        assert_eq!(&delete[4..], b"\x05\x00\xff\xff\xff\xfffruit");
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
            assert_eq!(Record::decode(&bytes), Ok(record));
        }
    }

    #[test]
    fn every_single_flip_is_rejected() {
        let bytes = Record::put(b"key", b"value").encode();
        for i in 0..bytes.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                assert!(Record::decode(&bad).is_err(), "flip {mask:#x} at {i}");
            }
        }
    }

    #[test]
    fn bad_lengths_are_rejected_before_reading() {
        let mut header = Record::put(b"k", b"v").encode();
        header[6..10].copy_from_slice(&(MAX_VALUE_LEN as u32 + 1).to_le_bytes());
        assert!(record_len(&header).is_err());
        assert!(record_len(&header[..9]).is_err());
        let bytes = Record::put(b"k", b"v").encode();
        assert!(Record::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Record::decode(&[bytes.clone(), vec![0]].concat()).is_err());
    }
}

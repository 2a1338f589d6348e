//! What the LSM tree stores for each key: the value itself when it is small, or a
//! **value pointer** to the record in the value log that holds it.
//!
//! The tree (stage 4's [`lsm::LsmTree`], unchanged) maps each key to opaque bytes. WiscKey
//! puts one of two things there, told apart by a first **tag** byte:
//!
//! ## Inline value (tag 0)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | tag `0x00` ([`INLINE`]) |
//! | 1 | n | the value, all of it (`n` may be 0) |
//!
//! A value shorter than the `value_threshold` option lives here: reading it costs no
//! value-log read, and the garbage collector never has to move it. The tree's entry is
//! one byte longer than the value.
//!
//! ## Value pointer (tag 1)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | tag `0x01` ([`POINTER`]) |
//! | 1 | 4 | segment id, `u32` LE: the value-log segment `vlog/SSSSSSSS.seg` |
//! | 5 | 8 | offset, `u64` LE: where the record starts in that segment (at least 16, past the segment header) |
//! | 13 | 4 | length, `u32` LE: the whole record's length, header, key and value (27 + key + value bytes) |
//!
//! So a pointer is always [`POINTER_LEN`] (17) bytes, whatever the size of the value: a
//! 1 MiB value costs the tree 17 bytes plus its key. For example the pointer to a record of
//! 60 bytes at offset 16 of segment 3 is `01 03 00 00 00 10 00 00 00 00 00 00 00 3c 00 00
//! 00`.
//!
//! The length lets a read fetch the record in **one** positioned read (no header first),
//! and bounds what it allocates: a length under 27 or over the largest record
//! ([`MAX_RECORD_LEN`]) is refused before anything is read. The record it names is a
//! bitcask record ([`bitcask::record`]) and carries its own CRC32 and its key, so a read
//! checks both: a pointer that names the wrong bytes, or bytes that changed, is reported as
//! corruption, never returned as a value ([`crate::value_log`]).
//!
//! No other tag exists; a tree value with another first byte, or the wrong length for a
//! pointer, is corruption.

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::DecodeError;
use kv_shared::{MAX_KEY_LEN, MAX_VALUE_LEN};

use bitcask::record::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};

/// The tag of an inline value.
pub const INLINE: u8 = 0;
/// The tag of a value pointer.
pub const POINTER: u8 = 1;
/// Bytes of an encoded value pointer, its tag included.
pub const POINTER_LEN: usize = 17;
/// The longest record a pointer may name: a bitcask record of the largest key and value.
pub const MAX_RECORD_LEN: u64 = (RECORD_HEADER_LEN + MAX_KEY_LEN + MAX_VALUE_LEN) as u64;

/// Where a value lives in the value log: one whole record of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValuePointer {
    /// The segment's id.
    pub segment: u32,
    /// The offset of the record's first byte in the segment.
    pub offset: u64,
    /// The record's length: header, key and value.
    pub len: u32,
}

impl ValuePointer {
    /// The pointer's 17 bytes, tag first.
    pub fn encode(&self) -> [u8; POINTER_LEN] {
        let mut out = [0; POINTER_LEN];
        out[0] = POINTER;
        out[1..5].copy_from_slice(&self.segment.to_le_bytes());
        out[5..13].copy_from_slice(&self.offset.to_le_bytes());
        out[13..17].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// The offset just past the record.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }

    /// The length of the value in the record, for a record of a `key_len`-byte key (0 when
    /// the length cannot hold that key: such a pointer fails its read anyway).
    pub fn value_len(&self, key_len: usize) -> u64 {
        u64::from(self.len).saturating_sub((RECORD_HEADER_LEN + key_len) as u64)
    }
}

/// A decoded tree value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeValue<'a> {
    /// The value itself.
    Inline(&'a [u8]),
    /// Where the value is in the value log.
    Pointer(ValuePointer),
}

/// The tree value of an inline `value`: the tag, then the value.
pub fn encode_inline(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + value.len());
    out.push(INLINE);
    out.extend_from_slice(value);
    out
}

/// Decodes a tree value, checking its tag and, for a pointer, its length and fields.
///
/// # Errors
/// [`DecodeError`] for an empty value, an unknown tag, a pointer of the wrong length, an
/// offset inside the segment header, or a record length no record can have.
pub fn decode(bytes: &[u8]) -> Result<TreeValue<'_>, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::new(0, "an empty tree value has no tag")),
        Some((&INLINE, value)) => Ok(TreeValue::Inline(value)),
        Some((&POINTER, _)) => decode_pointer(bytes).map(TreeValue::Pointer),
        Some((tag, _)) => Err(DecodeError::new(0, format!("unknown value tag {tag}"))),
    }
}

// Exercise 5.2: decode a value pointer. Read: chapter 5, "On disk".
// Tests: lib::value_pointer::tests::the_documented_pointer
// Tests: lib::value_pointer::tests::bad_values_are_refused
// Tests: conformance::conformance::put_get_overwrite, snapshots::tree_wal_dump
/// Decodes the 17 bytes of a pointer (tag included).
fn decode_pointer(bytes: &[u8]) -> Result<ValuePointer, DecodeError> {
    let Ok(bytes) = <&[u8; POINTER_LEN]>::try_from(bytes) else {
        return Err(DecodeError::new(
            0,
            format!(
                "a value pointer is {POINTER_LEN} bytes, not {}",
                bytes.len()
            ),
        ));
    };
    let segment = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let mut offset = [0; 8];
    offset.copy_from_slice(&bytes[5..13]);
    let offset = u64::from_le_bytes(offset);
    let len = u32::from_le_bytes([bytes[13], bytes[14], bytes[15], bytes[16]]);
    if offset < SEGMENT_HEADER_LEN {
        return Err(DecodeError::new(5, "offset inside the segment header"));
    }
    if u64::from(len) < RECORD_HEADER_LEN as u64 || u64::from(len) > MAX_RECORD_LEN {
        return Err(DecodeError::new(
            13,
            format!("record length {len} is not 27 to {MAX_RECORD_LEN}"),
        ));
    }
    Ok(ValuePointer {
        segment,
        offset,
        len,
    })
}

/// Adds a tree value's fields to `d`, one line each, advancing it by exactly `bytes`; one
/// line for a value that does not decode.
pub fn dump(d: &mut Dump, bytes: &[u8]) {
    match decode(bytes) {
        Ok(TreeValue::Inline(value)) => {
            d.field(&bytes[..1], "tag 0: inline value");
            if !value.is_empty() {
                d.field(value, format!("value {}", quoted(value, 40)));
            }
        }
        Ok(TreeValue::Pointer(p)) => {
            d.field(&bytes[..1], "tag 1: value pointer");
            d.field(&bytes[1..5], format!("segment {}", p.segment));
            d.field(&bytes[5..13], format!("offset {}", p.offset));
            d.field(&bytes[13..17], format!("record length {}", p.len));
        }
        Err(e) if !bytes.is_empty() => {
            d.field(bytes, format!("undecodable tree value: {e}"));
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_pointer() {
        let p = ValuePointer {
            segment: 3,
            offset: 16,
            len: 60,
        };
        let bytes = p.encode();
        assert_eq!(
            bytes,
            [1, 3, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x3c, 0, 0, 0]
        );
        assert_eq!(decode(&bytes), Ok(TreeValue::Pointer(p)));
        assert_eq!((p.end(), p.value_len(5)), (76, 28));
    }

    #[test]
    fn inline_values_round_trip() {
        for value in [&b""[..], b"v", &[0xff; 300]] {
            assert_eq!(decode(&encode_inline(value)), Ok(TreeValue::Inline(value)));
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let good = ValuePointer {
            segment: 1,
            offset: 16,
            len: 30,
        }
        .encode();
        assert!(decode(b"").is_err());
        assert!(decode(&[2, 0]).is_err(), "unknown tag");
        for cut in 1..POINTER_LEN {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.to_vec();
        long.push(0);
        assert!(decode(&long).is_err());
        let mut in_header = good;
        in_header[5] = 15;
        assert!(decode(&in_header).is_err());
        let mut short = good;
        short[13] = 26;
        assert!(decode(&short).is_err());
        let mut huge = good;
        huge[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
    }
}

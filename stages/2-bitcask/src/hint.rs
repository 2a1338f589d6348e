//! Hint files: a merged segment's keydir entries, so start-up need not read its values.
//!
//! Every segment a merge writes gets a hint file beside it (`00000012.hint` for
//! `00000012.seg`) listing, for each record of the segment, the key and where the record is,
//! but not the value. Start-up reads the hint instead of the segment: a few dozen bytes per
//! key instead of the whole record. Segments written by the active writer have no hint and
//! are read whole.
//!
//! A hint is only a shortcut: the segment is the truth. A hint that is damaged in any way
//! (bad checksum, cut short, missing its end entry, disagreeing with the segment's length)
//! is **ignored**, and start-up reads the segment instead, counting it in the
//! `hint_files_rejected` statistic. A hint can therefore never lose or invent data.
//!
//! ## Format
//!
//! Header, all integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `BITCASKH` ([`HINT_MAGIC`]) |
//! | 8 | 4 | format version, `u32` ([`HINT_VERSION`], 1) |
//! | 12 | 4 | id of the segment it describes, `u32` |
//!
//! Then one entry per record of the segment, in file order, and a final *end* entry:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 35 + k` |
//! | 4 | 8 | sequence number, `u64` (end entry: the number of entries before it) |
//! | 12 | 8 | expiry, `u64`, ms since the Unix epoch, 0 for never (end entry: 0) |
//! | 20 | 8 | offset of the record in the segment, `u64` (end entry: the segment's length) |
//! | 28 | 4 | length of the whole record, `u32` (end entry: 0) |
//! | 32 | 1 | kind: 0 put, 1 tombstone, 2 end |
//! | 33 | 2 | `k`: key length, `u16` |
//! | 35 | k | key |
//!
//! The end entry is what tells a whole hint from one cut at an entry boundary, and its
//! length field ties the hint to the exact segment it was written for.

use kv_shared::framing::{ByteReader, DecodeError, crc32, put_magic_version};
use kv_shared::log_reader::{LogFormat, LogTail, read_log};
use kv_shared::{FileRef, MAX_VALUE_LEN, Result};

use crate::record::{Kind, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};

/// The first eight bytes of every hint file.
pub const HINT_MAGIC: &[u8; 8] = b"BITCASKH";
/// The hint format this build writes and reads.
pub const HINT_VERSION: u32 = 1;
/// Length of the hint header.
pub const HINT_HEADER_LEN: u64 = 16;
/// Bytes of an entry before its key.
pub const ENTRY_HEADER_LEN: usize = 35;

const END: u8 = 2;

/// One entry of a hint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintEntry {
    /// Sequence number of the record (for the end entry, the count of entries).
    pub seq: u64,
    /// Expiry of the record.
    pub expiry: u64,
    /// Offset of the record in its segment (for the end entry, the segment's length).
    pub offset: u64,
    /// Length of the record.
    pub len: u32,
    /// Put or tombstone; `None` for the end entry.
    pub kind: Option<Kind>,
    /// The key.
    pub key: Vec<u8>,
}

/// The header of the hint file of segment `id`.
pub fn encode_header(id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(HINT_HEADER_LEN as usize);
    put_magic_version(&mut out, HINT_MAGIC, HINT_VERSION);
    out.extend_from_slice(&id.to_le_bytes());
    out
}

/// Appends one entry to `out`.
pub fn encode_entry(
    out: &mut Vec<u8>,
    seq: u64,
    expiry: u64,
    offset: u64,
    len: u32,
    kind: Kind,
    key: &[u8],
) {
    push_entry(out, seq, expiry, offset, len, kind.byte(), key);
}

/// Appends the end entry: `count` entries came before it, the segment is `segment_len` bytes.
pub fn encode_end(out: &mut Vec<u8>, count: u64, segment_len: u64) {
    push_entry(out, count, 0, segment_len, 0, END, b"");
}

// Exercise 2.5: write a hint entry. Read: chapter 2, "Hint file (`NNNNNNNN.hint`)".
// Tests: snapshots::dumps_of_a_segment_a_hint_file_and_a_commit_record
// Tests: merge::a_restart_after_merges_reads_hints_and_loses_nothing
fn push_entry(
    out: &mut Vec<u8>,
    seq: u64,
    expiry: u64,
    offset: u64,
    len: u32,
    kind: u8,
    key: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&expiry.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    let crc = crc32(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

// Exercise 2.6: read and check a hint entry. Read: chapter 2, "Hint file (`NNNNNNNN.hint`)".
// Tests: lib::hint::tests::entries_round_trip_and_flips_are_caught
// Tests: damage::a_damaged_hint_file_is_ignored_and_its_segment_read_instead
// Tests: merge::a_restart_after_merges_reads_hints_and_loses_nothing
/// Decodes one whole entry.
///
/// # Errors
/// [`DecodeError`] for a bad checksum, kind or length.
pub fn decode_entry(bytes: &[u8]) -> Result<HintEntry, DecodeError> {
    let mut r = ByteReader::new(bytes);
    let crc = r.u32("crc")?;
    if bytes.len() < ENTRY_HEADER_LEN || crc != crc32(&bytes[4..]) {
        return Err(DecodeError::new(0, "hint entry checksum mismatch"));
    }
    let seq = r.u64("sequence number")?;
    let expiry = r.u64("expiry")?;
    let offset = r.u64("offset")?;
    let len = r.u32("record length")?;
    let kind_byte = r.u8("kind")?;
    let key_len = r.u16("key length")? as usize;
    let key = r.bytes(key_len, "key")?.to_vec();
    if !r.is_empty() {
        return Err(DecodeError::new(r.pos(), "trailing bytes in hint entry"));
    }
    let kind = match kind_byte {
        END => None,
        b => match Kind::from_byte(b) {
            Some(k @ (Kind::Put | Kind::Tombstone)) => Some(k),
            _ => return Err(DecodeError::new(32, "unknown hint entry kind")),
        },
    };
    Ok(HintEntry {
        seq,
        expiry,
        offset,
        len,
        kind,
        key,
    })
}

/// The entries of a hint file, for [`read_log`] (start at [`HINT_HEADER_LEN`]).
#[derive(Debug)]
pub struct HintLog;

impl LogFormat for HintLog {
    type Record = HintEntry;
    const HEADER_LEN: usize = ENTRY_HEADER_LEN;

    fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
        let mut r = ByteReader::new(header);
        r.bytes(33, "entry header")?;
        Ok(ENTRY_HEADER_LEN + r.u16("key length")? as usize)
    }

    fn decode(record: &[u8]) -> Result<HintEntry, DecodeError> {
        decode_entry(record)
    }
}

/// Reads the hint of segment `segment_id`, whose data file is `segment_len` bytes, calling
/// `each` for every put or tombstone entry. Returns `Ok(Err(why))` when the hint is
/// damaged or does not match the segment: the caller then reads the segment instead (the
/// entries already passed to `each` are genuine, checksummed, and will be seen again).
///
/// # Errors
/// [`kv_shared::Error::Io`] only.
pub fn read_hint(
    file: &FileRef,
    segment_id: u32,
    segment_len: u64,
    mut each: impl FnMut(HintEntry),
) -> Result<std::result::Result<u64, String>> {
    let len = file.len()?;
    if len < HINT_HEADER_LEN {
        return Ok(Err("hint file shorter than its header".into()));
    }
    let header = file.read_vec_at(0, HINT_HEADER_LEN as usize)?;
    if header != encode_header(segment_id) {
        return Ok(Err(
            "hint header does not match (magic, version or segment id)".into(),
        ));
    }
    let mut count = 0u64;
    let mut end: Option<HintEntry> = None;
    let mut bad: Option<String> = None;
    let read = read_log::<HintLog>(file, HINT_HEADER_LEN, |r| {
        if end.is_some() {
            bad.get_or_insert_with(|| format!("entry after the end entry at {}", r.offset));
            return Ok(());
        }
        let e = r.record;
        match e.kind {
            None => end = Some(e),
            Some(_) => {
                let past = e.offset.checked_add(e.len as u64);
                if e.offset < SEGMENT_HEADER_LEN
                    || past.is_none_or(|p| p > segment_len)
                    || (e.len as usize) < RECORD_HEADER_LEN + e.key.len()
                    || (e.len as usize) > RECORD_HEADER_LEN + e.key.len() + MAX_VALUE_LEN
                {
                    bad.get_or_insert_with(|| {
                        format!("entry at {} points outside the segment", r.offset)
                    });
                    return Ok(());
                }
                count += 1;
                each(e);
            }
        }
        Ok(())
    });
    let log_end = match read {
        Ok(log_end) => log_end,
        Err(e) if e.is_corruption() => return Ok(Err(e.to_string())),
        Err(e) => return Err(e),
    };
    if let Some(why) = bad {
        return Ok(Err(why));
    }
    if let LogTail::Torn { offset, detail, .. } = log_end.tail {
        return Ok(Err(format!("hint torn at {offset}: {detail}")));
    }
    match end {
        None => Ok(Err("hint has no end entry (cut short)".into())),
        Some(e) if e.seq != count => Ok(Err(format!(
            "hint end entry counts {} entries, found {count}",
            e.seq
        ))),
        Some(e) if e.offset != segment_len => Ok(Err(format!(
            "hint was written for a segment of {} bytes, the segment has {segment_len}",
            e.offset
        ))),
        Some(_) => Ok(Ok(count)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_flips_are_caught() {
        let mut out = Vec::new();
        encode_entry(&mut out, 5, 0, 16, 40, Kind::Put, b"key");
        let e = decode_entry(&out).unwrap();
        assert_eq!(
            (e.seq, e.offset, e.len, e.kind),
            (5, 16, 40, Some(Kind::Put))
        );
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x10;
            assert!(decode_entry(&bad).is_err(), "flip at {i}");
        }
        let mut end = Vec::new();
        encode_end(&mut end, 1, 99);
        assert_eq!(decode_entry(&end).unwrap().kind, None);
    }
}

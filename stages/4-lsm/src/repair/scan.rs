//! Reading every table and WAL of a store for repair: what is whole, and what can be
//! salvaged from what is not.
//!
//! ## Tables
//!
//! A table is **whole** when its footer, filter, index and every data block check out and
//! its blocks hold as many entries as its footer says. Otherwise its entries are salvaged:
//!
//! * with a readable footer and index, the index gives every data block's place: each
//!   block that passes its checksum and decodes gives its entries; the others are lost;
//! * without them, the blocks are found from the start of the file up to where the filter
//!   begins (or, with the footer gone, up to the end of the file, which may have been cut
//!   short anywhere): a block ends with a compression byte and a CRC32 of everything before
//!   it back to its start, so from the start of one block the scan looks for the first
//!   position where the four bytes that follow are the checksum of the bytes so far. That
//!   is the block's end, and the next one starts there. The walk stops at the first block that does not decode (or whose
//!   keys do not continue in order): with no index, nothing says where the next block
//!   begins. (The filter and index blocks that follow the data blocks end the walk the
//!   same way: they do not decode as data, or their keys go back.)
//!
//! ## WALs
//!
//! Their records are [`sstable::frame`]s, scanned with [`sstable::repair::scan_frames`],
//! which resynchronises past damage ([`kv_shared::repair::scan_records`]). Each record is a write batch with its sequence
//! numbers; a batch whose first sequence number does not follow the one before is still
//! kept (it passed its checksum), and the gap is reported as damage.

use kv_shared::Fs;
use kv_shared::Result;
use kv_shared::framing::ByteReader;
use sstable::repair::scan_frames;
use std::path::Path;

use crate::file_names;
use crate::key::{Kind, compare};
use crate::table::block::{self, Block};
use crate::table::filter;
use crate::table::footer::{FOOTER_LEN, Footer};
use crate::table::index::Index;
use crate::wal;

/// One version of a key, as salvaged: user key, sequence number, value (`None` for a
/// tombstone).
pub type Version = (Vec<u8>, u64, Option<Vec<u8>>);

/// One table as the scan found it.
#[derive(Debug)]
pub struct ScannedTable {
    /// Its file number.
    pub number: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The entries of every intact block, in order.
    pub entries: Vec<Version>,
    /// What was wrong, `None` for a whole table.
    pub damage: Option<String>,
}

/// Reads table `number` of `dir` whole and checks or salvages it.
///
/// # Errors
/// [`kv_shared::Error::Io`].
pub fn scan_table(fs: &Fs, dir: &Path, number: u64) -> Result<ScannedTable> {
    let bytes = fs.read_all(&dir.join(file_names::table(number)))?;
    let mut entries = Vec::new();
    let damage = match read_layout(&bytes) {
        Ok((footer, index)) => {
            let damage = salvage_indexed(&bytes, &index, &mut entries);
            damage.or_else(|| {
                (entries.len() as u64 != footer.entries).then(|| {
                    format!(
                        "the blocks hold {} entries, the footer says {}",
                        entries.len(),
                        footer.entries
                    )
                })
            })
        }
        Err((data_end, detail)) => {
            salvage_unindexed(&bytes, data_end, &mut entries);
            Some(detail)
        }
    };
    Ok(ScannedTable {
        number,
        size: bytes.len() as u64,
        entries,
        damage,
    })
}

/// The footer and index of the table `bytes`, or where its data blocks end at most and
/// what is wrong.
fn read_layout(bytes: &[u8]) -> std::result::Result<(Footer, Index), (usize, String)> {
    let Some(footer_at) = bytes.len().checked_sub(FOOTER_LEN) else {
        return Err((bytes.len(), "shorter than a footer".to_string()));
    };
    let footer = Footer::decode(&bytes[footer_at..], bytes.len() as u64)
        .map_err(|e| (bytes.len(), format!("footer: {}", e.detail)))?;
    // The footer checked that filter and index tile the file up to itself.
    let filter_at = footer.filter_offset as usize;
    let index_at = footer.index_offset as usize;
    filter::decode(&bytes[filter_at..index_at])
        .map_err(|e| (filter_at, format!("filter: {}", e.detail)))?;
    let index = Index::decode(&bytes[index_at..footer_at], footer.filter_offset)
        .map_err(|e| (filter_at, format!("index: {}", e.detail)))?;
    Ok((footer, index))
}

/// Salvages the data blocks `index` names into `entries`; the first damage found, if any.
fn salvage_indexed(bytes: &[u8], index: &Index, entries: &mut Vec<Version>) -> Option<String> {
    let mut damage = None;
    let mut lost = 0;
    for handle in index.entries() {
        let (at, size) = (handle.offset as usize, handle.size as usize);
        match block_entries(&bytes[at..at + size], entries.last()) {
            Ok(found) => entries.extend(found),
            Err(detail) => {
                lost += 1;
                damage.get_or_insert(format!("data block at offset {at}: {detail}"));
            }
        }
    }
    damage.map(|d| format!("{d} ({lost} of {} blocks lost)", index.len()))
}

/// Salvages data blocks from the start of `bytes` (before `data_end`), each found by its
/// checksum, until one does not decode.
fn salvage_unindexed(bytes: &[u8], data_end: usize, entries: &mut Vec<Version>) {
    let mut start = 0;
    while let Some((end, found)) = block_from(bytes, start, data_end, entries.last()) {
        entries.extend(found);
        start = end;
    }
}

/// The data block starting at `start`: where it ends and its entries, found as the first
/// end whose trailer holds the checksum of the bytes before it and whose entries decode in
/// order after `before`. `None` when no such end comes before `data_end`.
fn block_from(
    bytes: &[u8],
    start: usize,
    data_end: usize,
    before: Option<&Version>,
) -> Option<(usize, Vec<Version>)> {
    let mut crc = crc32fast::Hasher::new();
    // Bytes `start ..= at` would be the stored bytes and the compression byte, and the four
    // after them the checksum.
    for at in start..data_end.saturating_sub(block::TRAILER_LEN - 1) {
        crc.update(&bytes[at..=at]);
        let end = at + block::TRAILER_LEN;
        if crc.clone().finalize().to_le_bytes() != bytes[at + 1..end] {
            continue;
        }
        if let Ok(found) = block_entries(&bytes[start..end], before) {
            return Some((end, found));
        }
    }
    None
}

/// The entries of the data block `raw` (its trailer included), if it decodes whole and its
/// keys come in order, after `before` (the last entry of the block before it).
fn block_entries(
    raw: &[u8],
    before: Option<&Version>,
) -> std::result::Result<Vec<Version>, String> {
    let contents = block::decode(raw).map_err(|e| e.detail)?;
    let block = Block::new(&contents).map_err(|e| e.detail)?;
    let mut iter = block.iter();
    let mut found: Vec<Version> = Vec::new();
    while let Some(entry) = iter.next_entry() {
        let e = entry.map_err(|e| e.detail)?;
        let last = found.last().or(before);
        if last.is_some_and(|(k, s, _)| compare(k, *s, e.key, e.seq).is_ge()) {
            return Err("keys out of order".to_string());
        }
        let value = (e.kind == Kind::Put).then(|| e.value.to_vec());
        found.push((e.key.to_vec(), e.seq, value));
    }
    if found.is_empty() {
        return Err("a block without entries".to_string());
    }
    Ok(found)
}

/// One WAL as the scan found it.
#[derive(Debug)]
pub struct ScannedWal {
    /// Its file number.
    pub number: u64,
    /// Every op of every intact record, in order.
    pub versions: Vec<Version>,
    /// Intact records.
    pub records: u64,
    /// True when its first record (right after the header) is intact.
    pub starts_whole: bool,
    /// What was wrong, `None` for a whole WAL.
    pub damage: Option<String>,
}

/// Reads WAL `number` of `dir` whole and salvages its records. `next_seq` is the sequence
/// number its first record should have (`None` when unknown); it is moved past its last.
///
/// # Errors
/// [`kv_shared::Error::Io`].
pub fn scan_wal(
    fs: &Fs,
    dir: &Path,
    number: u64,
    next_seq: &mut Option<u64>,
) -> Result<ScannedWal> {
    let bytes = fs.read_all(&dir.join(file_names::wal(number)))?;
    let header_len = wal::KIND.header_len() as usize;
    let mut r = ByteReader::new(&bytes);
    let header_ok = r.bytes(8, "magic").is_ok_and(|m| m == wal::KIND.magic)
        && r.u32("version").is_ok_and(|v| v == wal::KIND.version);
    let mut versions = Vec::new();
    let mut gap = None;
    let mut first_at = None;
    let scan = scan_frames(
        &bytes,
        header_len,
        bytes.len(),
        wal::KIND.max_payload,
        |at, body| {
            let batch = wal::decode(body).map_err(|e| e.detail)?;
            first_at.get_or_insert(at);
            if next_seq.is_some_and(|due| due != batch.first_seq) && gap.is_none() {
                gap = Some(format!(
                    "sequence number {} at offset {at} where {} was due",
                    batch.first_seq,
                    next_seq.unwrap_or_default()
                ));
            }
            *next_seq = Some(batch.last_seq() + 1);
            for (seq, op) in (batch.first_seq..).zip(batch.ops()) {
                versions.push((op.key.to_vec(), seq, op.value.map(<[u8]>::to_vec)));
            }
            Ok(())
        },
    );
    let damage = if header_ok {
        scan.damage_note().or(gap)
    } else {
        Some("missing or damaged header".to_string())
    };
    Ok(ScannedWal {
        number,
        versions,
        records: scan.records.len() as u64,
        starts_whole: header_ok && first_at == Some(header_len),
        damage,
    })
}

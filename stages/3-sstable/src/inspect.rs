//! The annotated dumps `kv inspect` prints: every field of a file at its offset, with its
//! meaning. [`inspect`] recognises this stage's two kinds of file by their magic:
//!
//! * a WAL ([`inspect_wal`]): `KVSSTWAL` at the start; its records (format in
//!   [`crate::wal`]) with each payload decoded as a put, a delete or a write batch (format
//!   in [`crate::wal_entry`]);
//! * a table ([`inspect_table`]): `KVSSTABL` at the end; its data blocks entry by entry,
//!   its index, its footer (formats in [`crate::block`], [`crate::index`] and
//!   [`crate::footer`]).
//!
//! The dumps work on any bytes: a damaged record, block or footer is reported in a note
//! and the dump goes on with what it can still show; they never panic.
//!
//! [`structure`] describes a whole store directory as data ([`kv_shared::structure`]), for
//! `kv draw`: each table's key range and its blocks, index and footer ([`table_file`], which
//! also describes a standalone table), each WAL's records, and the memtable they replay to.

use std::ops::RangeInclusive;
use std::path::Path;

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::ByteReader;
use kv_shared::structure::{
    FileKind, KeySpan, MergeInProgress, Part, PartKind, StoreFile, key_span, read_only_fs,
};
use kv_shared::{Engine, Fs, Options, Result, Structure};

use crate::SstableStore;
use crate::block::{Block, TOMBSTONE};
use crate::file_names::{self, table_path, wal_path};
use crate::footer::{FOOTER_LEN, Footer, FooterError, TABLE_MAGIC};
use crate::frame::{self, FRAME_HEADER_LEN};
use crate::index;
use crate::memtable::Memtable;
use crate::options::SstableOptions;
use crate::table::Table;
use crate::wal::{self, LogKind, Record, WAL_KIND, WAL_MAGIC, Wal};
use crate::wal_entry::{self, WalEntry};

/// The annotated dump of one of this stage's files, recognised by its magic: a WAL or a
/// table. `None` for any other bytes; never panics.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(WAL_MAGIC) {
        return inspect_wal(bytes);
    }
    inspect_table(bytes)
}

/// The annotated dump of a WAL, each payload decoded ([`wal_entry::dump`]), or `None` when
/// `bytes` do not start with [`WAL_MAGIC`].
pub fn inspect_wal(bytes: &[u8]) -> Option<String> {
    wal::inspect_wal_with(bytes, wal_entry::dump)
}

/// Entries shown field by field; after that, block bodies are shown as one line each.
const DUMP_ENTRIES: usize = 200;

/// A frame that starts `bytes` and fits in it, with a valid checksum: its length and body.
fn whole_frame(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let len = frame::frame_len(bytes, bytes.len().saturating_sub(FRAME_HEADER_LEN)).ok()?;
    let body = frame::open(bytes.get(..len)?).ok()?;
    Some((len, body))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Dumps the entries of a data block body; returns how many were shown.
fn dump_entries(d: &mut Dump, body: &[u8], budget: usize) -> usize {
    let mut r = ByteReader::new(body);
    let mut shown = 0;
    while !r.is_empty() {
        let start = r.pos();
        if shown == budget {
            d.field(&body[start..], "more entries, not shown");
            return shown;
        }
        let fields = (|| {
            let k = r.u16("key length")? as usize;
            let word = r.u32("value word")?;
            let key = r.bytes(k, "key")?;
            let v = if word == TOMBSTONE { 0 } else { word as usize };
            let value = r.bytes(v, "value")?;
            Ok::<_, kv_shared::DecodeError>((k, word, key, value))
        })();
        let Ok((k, word, key, value)) = fields else {
            d.field(&body[start..], "undecodable entry");
            return shown;
        };
        d.field(&body[start..start + 2], format!("key length {k}"));
        if word == TOMBSTONE {
            d.field(&body[start + 2..start + 6], "value word: tombstone");
        } else {
            d.field(&body[start + 2..start + 6], format!("value length {word}"));
        }
        d.field(key, format!("key {}", quoted(key, 40)));
        if word != TOMBSTONE {
            d.field(value, format!("value {}", quoted(value, 40)));
        }
        shown += 1;
    }
    shown
}

/// Dumps an index body: the table's last key, then one entry per block.
fn dump_index(d: &mut Dump, body: &[u8]) {
    let mut r = ByteReader::new(body);
    let last = r
        .u16("last key length")
        .and_then(|k| r.bytes(k as usize, "last key"));
    let Ok(last) = last else {
        d.field(body, "undecodable index");
        return;
    };
    d.field(
        &body[..2],
        format!("table's last key: length {}", last.len()),
    );
    d.field(last, format!("last key {}", quoted(last, 40)));
    let mut i = 0;
    while !r.is_empty() {
        let start = r.pos();
        let Ok(e) = index::decode_entry(&mut r) else {
            d.field(&body[start..], "undecodable index entry");
            break;
        };
        let k = e.first_key.len();
        d.field(
            &body[start..start + 2],
            format!("block {i}: key length {k}"),
        );
        d.field(
            &e.first_key,
            format!("first key {}", quoted(&e.first_key, 40)),
        );
        d.field(
            &body[start + 2 + k..start + 10 + k],
            format!("offset {}", e.offset),
        );
        d.field(
            &body[start + 10 + k..start + 14 + k],
            format!("length {}", e.len),
        );
        i += 1;
    }
}

/// The annotated dump of a table, or `None` when `bytes` do not end with [`TABLE_MAGIC`].
pub fn inspect_table(bytes: &[u8]) -> Option<String> {
    if bytes.len() < FOOTER_LEN || !bytes.ends_with(TABLE_MAGIC) {
        return None;
    }
    let footer_at = bytes.len() - FOOTER_LEN;
    let footer = Footer::decode(&bytes[footer_at..]);
    let mut d = Dump::new(format!("sstable, {} bytes", bytes.len()));
    let index_offset = match &footer {
        Ok(f) if f.index_offset <= footer_at as u64 => f.index_offset as usize,
        _ => {
            d.note("footer damaged: data blocks and index not shown");
            footer_at
        }
    };

    let mut pos = 0;
    let mut shown = 0;
    let mut n = 0;
    while pos < index_offset {
        let Some((len, body)) = whole_frame(&bytes[pos..index_offset]) else {
            d.note(format!(
                "damaged block at offset {pos}: the rest of the data region is not shown"
            ));
            break;
        };
        d.section(format!("data block {n}"));
        d.field(&bytes[pos..pos + 4], "crc32 (ok)");
        d.field(
            &bytes[pos + 4..pos + 8],
            format!("body length {}", body.len()),
        );
        shown += dump_entries(&mut d, body, DUMP_ENTRIES - shown);
        pos += len;
        n += 1;
    }

    if footer.is_ok() && index_offset < footer_at {
        d.seek(index_offset as u64);
        d.section("index block");
        match whole_frame(&bytes[index_offset..footer_at]) {
            Some((_, body)) => {
                d.field(&bytes[index_offset..index_offset + 4], "crc32 (ok)");
                d.field(
                    &bytes[index_offset + 4..index_offset + 8],
                    format!("body length {}", body.len()),
                );
                dump_index(&mut d, body);
            }
            None => d.note("index block damaged"),
        }
    }

    d.seek(footer_at as u64);
    d.section("footer");
    let f = &bytes[footer_at..];
    d.field(&f[0..8], format!("index offset {}", u64_at(f, 0)));
    d.field(&f[8..12], format!("index length {}", u32_at(f, 8)));
    d.field(&f[12..20], format!("entries {}", u64_at(f, 12)));
    d.field(&f[20..28], format!("tombstones {}", u64_at(f, 20)));
    d.field(&f[28..36], format!("first WAL {}", u64_at(f, 28)));
    d.field(&f[36..44], format!("last WAL {}", u64_at(f, 36)));
    d.field(&f[44..48], format!("format version {}", u32_at(f, 44)));
    d.field(&f[48..52], "crc32 of the footer's first 48 bytes");
    d.field(&f[52..60], "magic \"KVSSTABL\"");
    match footer {
        Ok(_) => d.note("footer ok"),
        Err(FooterError::Decode(e)) => d.note(format!("footer damaged: {e}")),
        Err(FooterError::Version(v)) => d.note(format!("unsupported format version {v}")),
    }
    Some(d.finish())
}

/// The structure of the store in `dir` ([`kv_shared::structure`]) under the default
/// options: see [`structure_with`].
///
/// # Errors
/// As [`structure_with`].
pub fn structure(dir: &Path) -> Result<Structure> {
    structure_with(dir, &Options::new())
}

/// The structure of the store in `dir` ([`kv_shared::structure`]), the memtable's capacity
/// taken from `options` (the `memtable_bytes` it runs with; the directory does not record
/// it): every table with its key range, blocks, index and footer; every WAL with its
/// records; the memtable that the WALs no table holds would replay to. A table that a
/// finished compaction replaced (its WAL range inside a newer table's) is all dead bytes,
/// and a WAL a table holds is marked flushed, as [`crate::recovery`] tells them apart. Reads
/// only and takes no lock, so it works on a closed store and on one open elsewhere.
///
/// # Errors
/// [`kv_shared::Error::InvalidArgument`] for a bad option; as [`Structure::read_dir`] for a
/// directory that is not an sstable store; [`kv_shared::Error::Corruption`] for a damaged
/// table or WAL; [`kv_shared::Error::FormatVersion`]; [`kv_shared::Error::Io`].
pub fn structure_with(dir: &Path, options: &Options) -> Result<Structure> {
    let capacity = SstableOptions::parse(options)?.memtable_bytes;
    let mut s = Structure::read_dir(dir, SstableStore::NAME, SstableStore::FORMAT_VERSION)?;
    let fs = read_only_fs();
    let mut ranges = Vec::new();
    s.describe_each(|file| match file_names::parse(&file.name) {
        file_names::FileKind::Table(n) => {
            let table = Table::open(&fs, &table_path(dir, n), n)?;
            let footer = table.footer();
            ranges.push(TableWals {
                name: file.name.clone(),
                number: n,
                wals: footer.first_wal..=footer.last_wal,
            });
            describe_table(&fs, &table, file)
        }
        file_names::FileKind::Wal(_) => {
            file.kind = FileKind::Wal;
            Ok(())
        }
        file_names::FileKind::Temp => {
            file.kind = FileKind::Temp;
            file.note = Some("a table being written, or a crash's leftover".to_string());
            Ok(())
        }
        file_names::FileKind::Other => Ok(()),
    })?;
    s.merge = mark_replaced_tables(&mut s, &ranges);
    let memtable = Memtable::new(0);
    let mut wals = Vec::new();
    s.describe_each(|file| match file_names::parse(&file.name) {
        file_names::FileKind::Wal(n) => {
            let flushed = ranges.iter().any(|t| t.wals.contains(&n));
            let replayed = (!flushed).then_some(&memtable);
            if replayed.is_some() {
                wals.push(file.name.clone());
            } else {
                file.note = Some("flushed to a table: the next open deletes it".to_string());
            }
            describe_wal(&fs, &wal_path(dir, n), file, replayed)
        }
        _ => Ok(()),
    })?;
    s.memtable = Some(memtable_of(&memtable, wals, capacity));
    Ok(s)
}

/// The description of one table file at `path`, a store's or a standalone one (`kv sstable
/// build`): its key range, entries, and its data blocks, index and footer in file order.
///
/// # Errors
/// [`kv_shared::Error::Corruption`] for a file that is not a whole table;
/// [`kv_shared::Error::FormatVersion`]; [`kv_shared::Error::Io`].
pub fn table_file(path: &Path) -> Result<StoreFile> {
    let fs = read_only_fs();
    let table = Table::open(&fs, path, 0)?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut file = StoreFile::new(name, table.file_bytes());
    describe_table(&fs, &table, &mut file)?;
    Ok(file)
}

/// Fills in `file` from the open `table`: every byte live until a compaction replaces it.
fn describe_table(fs: &Fs, table: &Table, file: &mut StoreFile) -> Result<()> {
    let (footer, index) = (table.footer(), table.index());
    file.kind = FileKind::Table;
    file.bytes = table.file_bytes();
    file.entries = Some(footer.entries);
    file.set_live(file.bytes, file.bytes);
    file.keys = index
        .blocks
        .first()
        .map(|first| key_span(&first.first_key, &index.last_key));
    let data = fs.open(table.path())?;
    for entry in &index.blocks {
        let block = Block::read(&data, entry.offset, entry.len as usize)?;
        let (mut pos, mut entries, mut last) = (0, 0, &entry.first_key[..]);
        while let Some((key, _, next)) = block.entry_at(&data, pos)? {
            (pos, entries, last) = (next, entries + 1, key);
        }
        let mut part = Part::new(PartKind::DataBlock, entry.offset, u64::from(entry.len));
        part.key_span = Some(key_span(&entry.first_key, last));
        part.entries = Some(entries);
        file.push_part(part);
    }
    let index_len = u64::from(footer.index_len);
    file.push_part(Part::new(PartKind::Index, footer.index_offset, index_len));
    let footer_at = file.bytes - FOOTER_LEN as u64;
    file.push_part(Part::new(PartKind::Footer, footer_at, FOOTER_LEN as u64));
    Ok(())
}

/// A table's name, number and the WALs whose data it holds.
struct TableWals {
    name: String,
    number: u64,
    wals: RangeInclusive<u64>,
}

/// Marks the tables a finished compaction replaced (their WAL range inside a newer table's),
/// and returns that compaction, when its inputs are still on disk.
fn mark_replaced_tables(s: &mut Structure, tables: &[TableWals]) -> Option<MergeInProgress> {
    let mut merge: Option<MergeInProgress> = None;
    for table in tables {
        let inside = |newer: &&TableWals| {
            newer.number > table.number
                && newer.wals.start() <= table.wals.start()
                && table.wals.end() <= newer.wals.end()
        };
        let Some(output) = tables.iter().find(inside) else {
            continue;
        };
        if let Some(file) = s.files.iter_mut().find(|f| f.name == table.name) {
            file.set_live(0, file.bytes);
            file.note = Some("replaced by a finished compaction: the next open deletes it".into());
        }
        let merge = merge.get_or_insert_with(|| MergeInProgress {
            inputs: Vec::new(),
            outputs: vec![output.name.clone()],
            committed: true,
        });
        merge.inputs.push(table.name.clone());
    }
    merge
}

/// Reads a WAL's records into `file`'s parts, and into `memtable` when it is replayed.
fn describe_wal(
    fs: &Fs,
    path: &Path,
    file: &mut StoreFile,
    memtable: Option<&Memtable>,
) -> Result<()> {
    describe_log(fs, path, WAL_KIND, file, |record, mut part| {
        let entry = wal_entry::decode(record.payload)
            .map_err(|e| e.into_corruption(path, record.payload_offset()))?;
        part.kind = wal_part_kind(&entry);
        if let WalEntry::Batch { count, .. } = entry {
            part.entries = Some(u64::from(count));
        }
        if let Some(memtable) = memtable {
            memtable.apply(entry.ops());
        }
        Ok(part.with_keys(entry.ops().map(|op| op.key)))
    })
}

/// Reads the record log of `kind` at `path` ([`crate::wal`]) into `file`'s parts: its
/// header, one part per record, and a torn tail if there is one. `part_of` turns a record's
/// bare part (its place and size, of kind [`PartKind::Body`]) into what the record holds.
/// Stage 4 reads its WALs and its manifest with it too.
///
/// # Errors
/// As [`Wal::read_records`], and any error `part_of` returns.
pub fn describe_log(
    fs: &Fs,
    path: &Path,
    kind: LogKind,
    file: &mut StoreFile,
    mut part_of: impl FnMut(Record<'_>, Part) -> Result<Part>,
) -> Result<()> {
    let header_len = kind.header_len();
    file.bytes = fs.open(path)?.len()?;
    if file.bytes >= header_len {
        file.push_part(Part::new(PartKind::Header, 0, header_len));
    }
    let read = Wal::read_records(fs, path, kind, |record| {
        let bytes = (FRAME_HEADER_LEN + record.payload.len()) as u64;
        let part = part_of(record, Part::new(PartKind::Body, record.offset, bytes))?;
        file.push_part(part);
        Ok(())
    })?;
    if read.torn_tail_bytes > 0 {
        let at = file.bytes - read.torn_tail_bytes;
        file.push_part(Part::new(PartKind::Unreadable, at, read.torn_tail_bytes));
    }
    file.entries = Some(read.records);
    Ok(())
}

/// The part kind of a WAL record holding `entry`.
fn wal_part_kind(entry: &WalEntry<'_>) -> PartKind {
    match entry {
        WalEntry::Put { .. } => PartKind::Put,
        WalEntry::Delete { .. } => PartKind::Delete,
        WalEntry::Batch { .. } => PartKind::Batch,
    }
}

/// The memtable's description: the WALs replayed into it, its fill, its key range.
fn memtable_of(
    memtable: &Memtable,
    wals: Vec<String>,
    capacity: u64,
) -> kv_shared::structure::Memtable {
    let map = memtable.snapshot();
    let keys: Option<KeySpan> = map
        .first_key_value()
        .zip(map.last_key_value())
        .map(|((first, _), (last, _))| key_span(first, last));
    kv_shared::structure::Memtable {
        wals,
        entries: map.len() as u64,
        bytes: memtable.bytes(),
        capacity_bytes: Some(capacity),
        keys,
    }
}

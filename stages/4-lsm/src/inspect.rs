//! The annotated dumps `kv inspect` prints: every file this engine writes, byte by byte.
//!
//! [`inspect`] recognises the file by its magic and hands it to its dump: a table
//! ([`crate::table::dump`]), a manifest, `CURRENT`, or a WAL. Each dump shows every field
//! with its offset, its bytes and what they mean; a file cut short or damaged is shown as
//! far as it reads, with a note where it stops, and never makes a dump panic. The
//! snapshots in `tests/snapshots.rs` pin every format through these dumps.
//!
//! [`structure`] describes a whole store directory as data ([`kv_shared::structure`]), for
//! `kv draw`: from the manifest, the levels and the tables on each with their key ranges and
//! parts; the WALs and the memtable they replay to.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{DecodeError, varint_len};
use kv_shared::structure::{
    self, KeySpan, Level, Part, PartKind, StoreFile, key_span, key_text, read_only_fs,
};
use kv_shared::{Engine, FileRef, Fs, Options, Result, Structure};

use crate::LsmTree;
use crate::block_cache::BlockCache;
use crate::compaction;
use crate::file_names::{self, FileKind};
use crate::manifest::{self, CURRENT_MAGIC, ManifestState, decode_current};
use crate::memtable::Memtable;
use crate::options::{CompactionStyle, LsmOptions, OPTIONS};
use crate::table::Table;
use crate::table::block::{self, Block};
use crate::table::dump::dump_table;
use crate::table::footer::FOOTER_LEN;
use crate::table::index::IndexEntry;
use crate::version::NUM_LEVELS;
use crate::version_edit::{TableMeta, VersionEdit};
use crate::wal;
use sstable::inspect::describe_log;
use sstable::wal::Record;

/// The annotated dump of any file this engine writes (a table with its filter, a manifest,
/// `CURRENT`, a WAL), or `None` when `bytes` is none of them. Never panics.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    dump_table(bytes)
        .or_else(|| dump_manifest(bytes))
        .or_else(|| dump_current(bytes))
        .or_else(|| dump_wal(bytes))
}

/// The annotated dump of a manifest, or `None` when `bytes` is not one.
pub fn dump_manifest(bytes: &[u8]) -> Option<String> {
    let title = format!("lsm manifest ({} bytes)", bytes.len());
    sstable::wal::dump(bytes, manifest::KIND, title, |d, edit| {
        d.field(edit, describe_edit(edit));
    })
}

/// One line describing a version edit.
fn describe_edit(payload: &[u8]) -> String {
    let edit: VersionEdit = match postcard::from_bytes(payload) {
        Ok(edit) => edit,
        Err(e) => return format!("undecodable version edit: {e}"),
    };
    let counters = [
        ("log_number", edit.log_number),
        ("next_file", edit.next_file),
        ("last_seq", edit.last_seq),
    ];
    let mut parts: Vec<String> = counters
        .iter()
        .filter_map(|(name, n)| n.map(|n| format!("{name} {n}")))
        .collect();
    for (level, number) in &edit.removed {
        parts.push(format!("remove L{level} #{number}"));
    }
    for (level, t) in &edit.added {
        parts.push(format!(
            "add L{level} #{} {} bytes {} entries [{}@{} .. {}@{}]",
            t.number,
            t.size,
            t.entries,
            quoted(&t.smallest, 16),
            t.smallest_seq,
            quoted(&t.largest, 16),
            t.largest_seq
        ));
    }
    format!("version edit (postcard): {}", parts.join("; "))
}

/// The annotated dump of a `CURRENT` file, or `None` when `bytes` is not one.
pub fn dump_current(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(CURRENT_MAGIC) {
        return None;
    }
    let mut d = Dump::new(format!("lsm CURRENT pointer ({} bytes)", bytes.len()));
    match decode_current(bytes) {
        Ok(number) => {
            let manifest = file_names::manifest(number);
            d.magic_version(bytes, "format version");
            d.field(&bytes[12..20], format!("live manifest: {manifest}"));
            d.field(&bytes[20..24], "crc32 (ok)");
        }
        Err(e) => d.note(format!("invalid CURRENT: {e}")),
    }
    Some(d.finish())
}

/// The annotated dump of a WAL, each record's write batch shown field by field, or `None`
/// when `bytes` is not a WAL.
pub fn dump_wal(bytes: &[u8]) -> Option<String> {
    let title = format!("write-ahead log, {} bytes", bytes.len());
    sstable::wal::dump(bytes, wal::KIND, title, dump_batch)
}

/// Adds a WAL payload's fields to a dump, one line each (header fields, then each op's
/// kind, key length, key, value length and value), or one line for a payload that does not
/// decode. Advances the dump by exactly the payload.
fn dump_batch(d: &mut Dump, payload: &[u8]) {
    let batch = match wal::decode(payload) {
        Ok(batch) => batch,
        Err(e) => {
            d.field(payload, format!("undecodable write batch: {e}"));
            return;
        }
    };
    let mut at = 0;
    let mut field = |len: usize, text: String| {
        d.field(&payload[at..at + len], text);
        at += len;
    };
    field(8, format!("first sequence number {}", batch.first_seq));
    field(4, format!("op count {}", batch.count));
    for (seq, (i, op)) in (batch.first_seq..).zip(batch.ops().enumerate()) {
        let kind = if op.value.is_some() { "put" } else { "delete" };
        field(1, format!("op {i}: {kind}, seq {seq}"));
        let key_len = op.key.len();
        field(varint_len(key_len as u64), format!("key length {key_len}"));
        if key_len > 0 {
            field(key_len, format!("key {}", quoted(op.key, 40)));
        }
        if let Some(value) = op.value {
            let value_len = value.len();
            field(
                varint_len(value_len as u64),
                format!("value length {value_len}"),
            );
            if value_len > 0 {
                field(value_len, format!("value {}", quoted(value, 40)));
            }
        }
    }
}

/// The structure of the store in `dir` ([`kv_shared::structure`]) under the default
/// options: see [`structure_with`].
///
/// # Errors
/// As [`structure_with`].
pub fn structure(dir: &Path) -> Result<Structure> {
    structure_with(dir, &Options::new())
}

/// The structure of the store in `dir` ([`kv_shared::structure`]), from its manifest: the
/// levels and the tables on each, with their key ranges, their data blocks, filter, index
/// and footer; the WALs with their records, and the memtable the unflushed ones replay to;
/// the manifest's edits and `CURRENT`. The levels' targets and the memtable's capacity come
/// from `options` (what the store runs with; the directory does not record them). A table
/// the manifest does not name (a flush or compaction output not recorded yet, or a
/// replaced input not deleted yet) is in no level and all dead bytes. Reads only and takes
/// no lock, so it works on a closed store and on one open elsewhere.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad option; as [`Structure::read_dir`] for a directory
/// that is not an lsm store; [`Error::Corruption`] for a damaged `CURRENT`, manifest, table
/// or WAL; [`Error::Io`].
pub fn structure_with(dir: &Path, options: &Options) -> Result<Structure> {
    options.check_known(LsmTree::NAME, OPTIONS)?;
    let options = LsmOptions::parse(options)?;
    let mut s = Structure::read_dir(dir, LsmTree::NAME, LsmTree::FORMAT_VERSION)?;
    let fs = read_only_fs();
    let (live_manifest, state) = manifest::recover(&fs, dir)?.unwrap_or((0, ManifestState::new()));
    let level_of: HashMap<u64, u32> = (0..)
        .zip(&state.levels)
        .flat_map(|(level, tables)| tables.keys().map(move |&n| (n, level)))
        .collect();
    let memtable = Memtable::new(0, options.memtable_bytes);
    let mut wals = Vec::new();
    s.describe_each(|file| {
        let path = dir.join(&file.name);
        match file_names::parse(&file.name) {
            FileKind::Table(n) => describe_table(&fs, &path, n, level_of.get(&n).copied(), file),
            FileKind::Wal(n) => {
                let replayed = (n >= state.log_number).then_some(&memtable);
                if replayed.is_some() {
                    wals.push(file.name.clone());
                } else {
                    file.note = Some("flushed: the next open deletes it".to_string());
                }
                file.kind = structure::FileKind::Wal;
                describe_log(&fs, &path, wal::KIND, file, batch_part(&path, replayed))
            }
            FileKind::Manifest(n) => describe_manifest(&fs, &path, n == live_manifest, file),
            FileKind::Temp => {
                file.kind = structure::FileKind::Temp;
                Ok(())
            }
            FileKind::Other if file.name == file_names::CURRENT => {
                file.kind = structure::FileKind::Current;
                file.note = Some(format!("names {}", file_names::manifest(live_manifest)));
                file.push_part(Part::new(PartKind::Body, 0, file.bytes));
                Ok(())
            }
            FileKind::Other => Ok(()),
        }
    })?;
    s.levels = levels(&state, &options);
    s.memtable = Some(memtable_of(&memtable, wals, &options));
    Ok(s)
}

/// Each level's tables, bytes and target (leveled only; L0's trigger is a count, the last
/// level has no target, and tiered compaction sizes runs, not levels).
fn levels(state: &ManifestState, options: &LsmOptions) -> Vec<Level> {
    let leveled = options.compaction == CompactionStyle::Leveled;
    let bytes = |tables: &BTreeMap<u64, TableMeta>| tables.values().map(|t| t.size).sum();
    let last_bytes = state.levels.get(NUM_LEVELS - 1).map_or(0, bytes);
    let targets = compaction::leveled::targets_for(last_bytes, options);
    (0..)
        .zip(&state.levels)
        .map(|(level, tables)| Level {
            level,
            tables: tables.len() as u32,
            bytes: bytes(tables),
            target_bytes: (leveled && level > 0 && (level as usize) < NUM_LEVELS - 1)
                .then(|| targets.bytes[level as usize]),
        })
        .collect()
}

/// Fills in `file` from the table at `path`, number `number`, on `level` (`None`: not in
/// the manifest): its key range and entries, its data blocks (each read for its first key
/// and its entries), filter, index and footer in file order.
fn describe_table(
    fs: &Fs,
    path: &Path,
    number: u64,
    level: Option<u32>,
    file: &mut StoreFile,
) -> Result<()> {
    let table = Table::open(fs, path, number, Arc::new(BlockCache::new(0)))?;
    let data = fs.open(path)?;
    file.kind = structure::FileKind::Table;
    file.bytes = data.len()?;
    file.level = level;
    file.entries = Some(table.footer().entries);
    match level {
        Some(_) => file.set_live(file.bytes, file.bytes),
        None => {
            file.set_live(0, file.bytes);
            file.note = Some("in no level: the manifest does not name it".to_string());
        }
    }
    let index = table.index();
    for (i, entry) in index.entries().iter().enumerate() {
        file.push_part(block_part(&data, entry, index.last_key(i))?);
    }
    let first = file.parts.first().and_then(|p| p.key_span.as_ref());
    let last = index
        .len()
        .checked_sub(1)
        .map(|i| key_text(index.last_key(i)));
    file.keys = first.zip(last).map(|(first, last)| KeySpan {
        first: first.first.clone(),
        last,
    });
    let footer = table.footer();
    let parts = [
        (PartKind::Filter, footer.filter_offset, footer.filter_size),
        (PartKind::Index, footer.index_offset, footer.index_size),
        (
            PartKind::Footer,
            file.bytes - FOOTER_LEN as u64,
            FOOTER_LEN as u32,
        ),
    ];
    for (kind, offset, size) in parts {
        file.push_part(Part::new(kind, offset, u64::from(size)));
    }
    Ok(())
}

/// The part a data block makes: its place, size, entries and first and last keys (the
/// block is read and checked for the first key and the count; the index has the last,
/// `last_key`).
fn block_part(data: &FileRef, entry: &IndexEntry, last_key: &[u8]) -> Result<Part> {
    let corrupt = |e: DecodeError| e.into_corruption(data.path(), entry.offset);
    let raw = data.read_vec_at(entry.offset, entry.size as usize)?;
    let contents = block::decode_owned(raw).map_err(corrupt)?;
    let mut entries = Block::new(&contents).map_err(corrupt)?.iter();
    let first = match entries.next_entry() {
        Some(first) => first.map_err(corrupt)?.key.to_vec(),
        None => last_key.to_vec(),
    };
    let mut count = 1;
    while let Some(next) = entries.next_entry() {
        next.map_err(corrupt)?;
        count += 1;
    }
    let mut part = Part::new(PartKind::DataBlock, entry.offset, u64::from(entry.size));
    part.key_span = Some(key_span(&first, last_key));
    part.entries = Some(count);
    Ok(part)
}

/// What makes a WAL record's part, for [`describe_log`]: its batch's kind and keys. The
/// batch also goes into `memtable` when the WAL at `path` is replayed.
fn batch_part<'a>(
    path: &'a Path,
    memtable: Option<&'a Memtable>,
) -> impl FnMut(Record<'_>, Part) -> Result<Part> + 'a {
    move |record, mut part| {
        let batch = wal::decode(record.payload)
            .map_err(|e| e.into_corruption(path, record.payload_offset()))?;
        part.kind = match batch.ops().next() {
            Some(op) if batch.count == 1 && op.value.is_some() => PartKind::Put,
            Some(_) if batch.count == 1 => PartKind::Delete,
            _ => PartKind::Batch,
        };
        part.entries = Some(u64::from(batch.count));
        if let Some(memtable) = memtable {
            for (seq, op) in (batch.first_seq..).zip(batch.ops()) {
                memtable.insert(op.key, seq, op.value);
            }
        }
        Ok(part.with_keys(batch.ops().map(|op| op.key)))
    }
}

/// Reads a manifest's version edits into `file`'s parts.
fn describe_manifest(fs: &Fs, path: &Path, live: bool, file: &mut StoreFile) -> Result<()> {
    file.kind = structure::FileKind::Manifest;
    file.note = Some(
        if live {
            "the live manifest"
        } else {
            "an older manifest: the next open deletes it"
        }
        .to_string(),
    );
    describe_log(fs, path, manifest::KIND, file, |_, mut part| {
        part.kind = PartKind::Edit;
        Ok(part)
    })
}

/// The memtable's description: the WALs replayed into it, its fill, its key range.
fn memtable_of(
    memtable: &Memtable,
    wals: Vec<String>,
    options: &LsmOptions,
) -> structure::Memtable {
    let keys = memtable
        .key_range()
        .map(|(first, last)| key_span(&first, &last));
    structure::Memtable {
        wals,
        entries: memtable.len() as u64,
        bytes: memtable.approximate_bytes() as u64,
        capacity_bytes: Some(options.memtable_bytes as u64),
        keys,
    }
}

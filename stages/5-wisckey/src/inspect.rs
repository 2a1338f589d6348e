//! The annotated dumps `kv inspect` prints for the files of a wisckey store.
//!
//! A wisckey store holds no file of a new kind: its value log is bitcask segments and its
//! tree an lsm store. What is new is what the tree's values mean ([`crate::value_pointer`]).
//! So [`inspect`] recognises each file by its magic and shows it:
//!
//! * a **value-log segment** (`BITCASKS`): every record field by field, as bitcask's dump
//!   shows them, but grouped into one section per **write batch** (the records sharing a
//!   batch number in their sequence-number field, [`crate::value_log`]): recovery keeps
//!   or drops a batch whole, so damage to any of its records can cost all of its keys
//!   ([`dump_segment`]);
//! * a **tree WAL** (`KVSSTWAL`): stage 4's WAL framing and write batches, each put's value
//!   decoded as a tree value, an inline value or a pointer's segment, offset and length
//!   ([`dump_wal`]);
//! * any other file of the tree (tables, manifests, `CURRENT`): stage 4's dumps
//!   ([`lsm::inspect()`]), which show a tree value as its raw bytes (a pointer is the 17
//!   bytes starting `\x01`, an inline value the value after a `\x00`).
//!
//! The snapshots in `tests/snapshots.rs` pin the value-log segment and the WAL dumps of a
//! small store, and [`dump_tree_value`]'s view of a pointer and of an inline value.
//!
//! ## The structure of a store (`kv draw`, `kv serve`)
//!
//! [`structure_with`] describes a whole store as a [`Structure`], read only and without a
//! lock, so it works on a closed store and on one the engine has open. A wisckey store is
//! two stores in one directory, and the description holds both in one list of files,
//! named by their path in the store directory:
//!
//! * `ENGINE` and `LOCK` of the store itself;
//! * the **tree**, `tree/...`: stage 4's description of `tree/` ([`lsm::inspect::structure_with`]),
//!   its files renamed `tree/000005.sst`, `tree/000003.wal` and so on, with its `levels`
//!   and its `memtable` (whose `wals` name `tree/...` files too);
//! * the **value log**, `vlog/00000001.seg`...: each segment as bitcask's description shows
//!   one (kind `segment`, its records as parts in file order, a put's `live` telling
//!   whether the tree points at it, tombstones dead), the active one noted.
//!
//! `vlog/lost/` and `tree/lost/`, where recovery keeps damaged copies, are not listed.
//!
//! **Which values are live.** A record is live when the tree's newest entry for its key is
//! a pointer to exactly that record ([`crate::gc`]'s rule). The engine does not record it
//! (it counts in memory the dead bytes it knows, which a reader of the directory cannot
//! see), so the description computes it: one pass over the whole tree, a merge of its
//! tables and the memtable its WALs replay to (stage 4's own [`MergingCursor`]), keeps the
//! newest version of each key and collects the pointers among them, sorted; each record of
//! each segment is then looked up among them. That pass costs a read of every table, which
//! stage 4's description already pays (it decodes every block), so it is done while the
//! tree's tables and WALs hold at most [`LIVENESS_MAX_TREE_BYTES`]. Past that, a segment's
//! `live_bytes` and `dead_bytes` are `null`, its puts' `live` too, and its note says why.
//!
//! **Reading while the engine writes.** The segments are read first, the tree after: a
//! value is appended to the log before the tree points at it, so every record read is
//! judged by a tree at least as new as the record. Within the tree, the WALs are read
//! before the manifest and its tables, so an entry a flush moves from a WAL to a table in
//! the meantime is seen in one or the other (or both: the same version twice is harmless).
//! A reading remains a moment's view: a value overwritten after the tree was read shows
//! live until the next reading. A file deleted in the middle (a segment the garbage
//! collector freed, a table a compaction replaced) fails the reading with
//! [`kv_shared::Error::Io`], as it fails stage 4's, and `kv serve` tries again.

use std::io;
use std::path::Path;
use std::sync::Arc;

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::varint_len;
use kv_shared::log_reader::{LogRecord, LogTail, read_log};
use kv_shared::structure::{FileKind, Part, PartKind, StoreFile, read_only_fs};
use kv_shared::{Engine, Error, Fs, Options, Result, Structure};

use bitcask::file_names::FileName;
use bitcask::record::{
    self, Kind, RECORD_HEADER_LEN, RecordKeys, RecordRef, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
    SegmentKeyLog,
};
use lsm::block_cache::BlockCache;
use lsm::cursor::merging::MergingCursor;
use lsm::cursor::{EntryCursor, Source};
use lsm::memtable::Memtable;
use lsm::table::Table;

use crate::value_pointer::{self, TreeValue, ValuePointer};
use crate::{Wisckey, WisckeyOptions, file_names};

/// The annotated dump of any file a wisckey store holds (a value-log segment, a tree WAL,
/// table, manifest or `CURRENT`), or `None` when `bytes` is none of them. Never panics.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(SEGMENT_MAGIC) {
        return Some(dump_segment(bytes));
    }
    dump_wal(bytes).or_else(|| lsm::inspect(bytes))
}

/// Bytes of a key or value shown in a dump line.
const SHOWN: usize = 40;

/// The annotated dump of a value-log segment: the header, then the records field by field,
/// one section per write batch (the records that share a batch number, which stand or fall
/// together), and one for the seal. Stops with a note at the first bytes that are not a
/// whole, valid record.
pub fn dump_segment(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("wisckey value-log segment ({} bytes)", bytes.len()));
    if !bitcask::inspect::dump_segment_header(&mut d, bytes) {
        return d.finish();
    }
    let (mut pos, mut n, mut batch) = (SEGMENT_HEADER_LEN as usize, 0, None);
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let decoded = record::record_len(rest)
            .map_err(|e| format!("no whole record header ({e})"))
            .and_then(|len| {
                rest.get(..len)
                    .ok_or(format!("record of {len} bytes cut short"))
            })
            .and_then(|raw| {
                let r = record::decode_record(raw).map_err(|e| format!("bad record ({e})"))?;
                Ok((raw, r))
            });
        let (raw, r) = match decoded {
            Ok(found) => found,
            Err(why) => {
                d.note(format!("offset {pos}: {why}"));
                break;
            }
        };
        if r.kind == Kind::Seal {
            d.section("seal");
        } else if batch != Some(r.seq) {
            d.section(format!("write batch {}", r.seq));
        }
        batch = Some(r.seq);
        dump_record(&mut d, n, raw, &r);
        pos += raw.len();
        n += 1;
    }
    d.finish()
}

/// Record `n` of a segment, field by field; `raw` is its bytes, decoded as `r`.
fn dump_record(d: &mut Dump, n: usize, raw: &[u8], r: &RecordRef<'_>) {
    let k = r.key.len();
    d.note(format!("record {n}: {}", r.kind.name()));
    d.field(&raw[..4], "crc32 (ok)");
    d.field(&raw[4..12], format!("write batch {}", r.seq));
    d.field(&raw[12..20], format!("expiry {} (unused)", r.expiry));
    d.field(&raw[20..21], format!("kind {}", r.kind.name()));
    d.field(&raw[21..23], format!("key length {k}"));
    d.field(&raw[23..27], format!("value length {}", r.value.len()));
    let header = RECORD_HEADER_LEN;
    if k > 0 {
        d.field(
            &raw[header..header + k],
            format!("key {}", quoted(r.key, SHOWN)),
        );
    }
    if !r.value.is_empty() {
        let value = &raw[header + k..];
        d.field(value, format!("value {}", quoted(r.value, SHOWN)));
    }
}

/// The annotated dump of the tree's WAL, each put's value decoded as a tree value, or
/// `None` when `bytes` is not a WAL.
pub fn dump_wal(bytes: &[u8]) -> Option<String> {
    let title = format!("wisckey tree write-ahead log, {} bytes", bytes.len());
    sstable::wal::dump(bytes, lsm::wal::KIND, title, dump_batch)
}

/// The annotated dump of one tree value (what the tree holds for a key).
pub fn dump_tree_value(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("wisckey tree value ({} bytes)", bytes.len()));
    value_pointer::dump(&mut d, bytes);
    d.finish()
}

/// Adds a WAL payload's fields to a dump: the batch header, then each op's kind, key
/// length, key, value length and tree value; one line for a payload that does not decode.
/// Advances the dump by exactly the payload.
fn dump_batch(d: &mut Dump, payload: &[u8]) {
    let batch = match lsm::wal::decode(payload) {
        Ok(batch) => batch,
        Err(e) => return d.field(payload, format!("undecodable write batch: {e}")),
    };
    let mut at = 0;
    let mut take = |len: usize| {
        let bytes = &payload[at..at + len];
        at += len;
        bytes
    };
    d.field(
        take(8),
        format!("first sequence number {}", batch.first_seq),
    );
    d.field(take(4), format!("op count {}", batch.count));
    for (seq, (i, op)) in (batch.first_seq..).zip(batch.ops().enumerate()) {
        let kind = if op.value.is_some() { "put" } else { "delete" };
        d.field(take(1), format!("op {i}: {kind}, seq {seq}"));
        let key_len = op.key.len();
        d.field(
            take(varint_len(key_len as u64)),
            format!("key length {key_len}"),
        );
        if key_len > 0 {
            d.field(take(key_len), format!("key {}", quoted(op.key, 40)));
        }
        if let Some(value) = op.value {
            let len = value.len();
            d.field(
                take(varint_len(len as u64)),
                format!("tree value length {len}"),
            );
            value_pointer::dump(d, take(len));
        }
    }
}

/// The largest tree (its tables and WALs, in bytes) for which [`structure_with`] computes
/// which values are live (see the module documentation).
pub const LIVENESS_MAX_TREE_BYTES: u64 = 32 << 20;

/// The structure of the store in `dir` under the default options: see [`structure_with`].
///
/// # Errors
/// As [`structure_with`].
pub fn structure(dir: &Path) -> Result<Structure> {
    structure_with(dir, &Options::new())
}

/// The structure of the store in `dir` ([`kv_shared::structure`]): its own files, the
/// tree's (`tree/...`, with the levels and the memtable) and the value log's segments
/// (`vlog/...`, with their records, live or dead), as the module documentation describes.
/// `options` are the ones the store runs with: the tree's give the levels' targets and the
/// memtable's capacity. Reads only and takes no lock.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad option; as [`Structure::read_dir`] for a directory
/// that is not a wisckey store (or a `tree/` that is not an lsm store);
/// [`Error::Corruption`] for a damaged segment header, record followed by a valid one, tree
/// file, or tree value; [`Error::Io`], a file deleted in the middle of the reading included.
pub fn structure_with(dir: &Path, options: &Options) -> Result<Structure> {
    read_structure(dir, options, LIVENESS_MAX_TREE_BYTES)
}

/// [`structure_with`], computing liveness for a tree of at most `max_tree_bytes`.
fn read_structure(dir: &Path, options: &Options, max_tree_bytes: u64) -> Result<Structure> {
    let options = WisckeyOptions::parse(options)?;
    let mut s = Structure::read_dir(dir, Wisckey::NAME, Wisckey::FORMAT_VERSION)?;
    let fs = read_only_fs();
    let mut segments = read_segments(&fs, &file_names::vlog_dir(dir))?;
    let tree_dir = file_names::tree_dir(dir);
    // A store whose first open stopped before making its tree points at nothing.
    let mut live = Some(Vec::new());
    if tree_dir.is_dir() {
        let tree = lsm::inspect::structure_with(&tree_dir, &options.tree)?;
        let bytes_of = |kind: FileKind| -> u64 {
            let files = tree.files.iter().filter(|f| f.kind == kind);
            files.map(|f| f.bytes).sum()
        };
        let wal_bytes = bytes_of(FileKind::Wal);
        live = (bytes_of(FileKind::Table) + wal_bytes <= max_tree_bytes)
            .then(|| live_pointers(&fs, &tree_dir, wal_bytes))
            .transpose()?;
        add_tree(&mut s, tree);
    }
    for mut segment in segments.drain(..) {
        mark_liveness(&mut segment, live.as_deref(), max_tree_bytes);
        s.files.push(segment.file);
    }
    s.files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(s)
}

/// Prefix of the tree's file names in the description.
const TREE_PREFIX: &str = "tree/";
/// Prefix of the value log's file names in the description.
const VLOG_PREFIX: &str = "vlog/";

/// Adds the tree's description to the store's: its files and the WALs its memtable replays
/// from renamed `tree/...`, its levels, its memtable, a compaction caught in it.
fn add_tree(s: &mut Structure, tree: Structure) {
    let prefixed = |name: &str| format!("{TREE_PREFIX}{name}");
    s.files.extend(tree.files.into_iter().map(|mut file| {
        file.name = prefixed(&file.name);
        file
    }));
    s.memtable = tree.memtable.map(|mut memtable| {
        memtable.wals = memtable.wals.iter().map(|w| prefixed(w)).collect();
        memtable
    });
    s.levels = tree.levels;
    s.merge = tree.merge;
}

/// A segment as read: its description, its id, and the bytes its records take (header,
/// seal and torn tail excluded).
struct ReadSegment {
    file: StoreFile,
    id: u32,
    used: u64,
}

/// Every file of the value log directory `vlog`, in no particular order: each segment read
/// ([`read_segment`]), any other file listed as it is. A file gone before it is read is
/// left out (the garbage collector freed it); no directory, no files.
fn read_segments(fs: &Fs, vlog: &Path) -> Result<Vec<ReadSegment>> {
    let entries = match std::fs::read_dir(vlog) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(vlog, e)),
    };
    let newest = file_names::segment_ids(fs, vlog)?.last().copied();
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(vlog, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.metadata().is_ok_and(|m| m.is_file());
        let read = match FileName::parse(&name) {
            _ if !is_file => continue,
            Some(FileName::Segment(id)) => read_segment(fs, vlog, id, Some(id) == newest),
            _ => {
                let bytes = entry.metadata().map_or(0, |m| m.len());
                let file = StoreFile::new(format!("{VLOG_PREFIX}{name}"), bytes);
                Ok(ReadSegment {
                    file,
                    id: 0,
                    used: 0,
                })
            }
        };
        match read {
            Ok(segment) => segments.push(segment),
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(segments)
}

/// Reads segment `id` of `vlog`: its header and records as parts (a put's liveness left to
/// [`mark_liveness`], a tombstone dead), a torn tail as an unreadable part; `newest` when
/// it has the highest id (it is the active segment unless it holds a seal).
fn read_segment(fs: &Fs, vlog: &Path, id: u32, newest: bool) -> Result<ReadSegment> {
    let path = file_names::segment(vlog, id);
    let name = FileName::Segment(id).name();
    let mut file = StoreFile::new(format!("{VLOG_PREFIX}{name}"), 0);
    file.kind = FileKind::Segment;
    let segment = fs.open(&path)?;
    file.bytes = segment.len()?;
    if file.bytes < SEGMENT_HEADER_LEN {
        file.push_part(Part::new(PartKind::Unreadable, 0, file.bytes));
        return Ok(ReadSegment { file, id, used: 0 });
    }
    let header = segment.read_vec_at(0, SEGMENT_HEADER_LEN as usize)?;
    record::decode_segment_header(&header).map_err(|e| e.into_corruption(&path, 0))?;
    file.push_part(Part::new(PartKind::Header, 0, SEGMENT_HEADER_LEN));
    let (mut records, mut seal) = (0, 0);
    let end = read_log::<SegmentKeyLog>(&segment, SEGMENT_HEADER_LEN, |r| {
        records += 1;
        let part = record_part(&r);
        if part.kind == PartKind::Seal {
            seal = r.len;
        }
        file.push_part(part);
        Ok(())
    })?;
    if let LogTail::Torn { offset, bytes, .. } = end.tail {
        file.push_part(Part::new(PartKind::Unreadable, offset, bytes));
    }
    file.entries = Some(records);
    if newest && seal == 0 {
        file.note = Some("active: takes the appends".to_string());
    }
    let used = end.valid_len - SEGMENT_HEADER_LEN - seal;
    Ok(ReadSegment { file, id, used })
}

/// The part a value-log record makes: a put (liveness not known yet), a tombstone (dead:
/// nothing points at it), the seal. Wisckey writes no batch record; one found is dead.
fn record_part(r: &LogRecord<RecordKeys>) -> Part {
    let at = |kind| Part::new(kind, r.offset, r.len);
    match &r.record {
        RecordKeys::One(k) => match k.kind {
            Kind::Put => at(PartKind::Put).with_keys([k.key.as_slice()]),
            Kind::Tombstone => {
                let mut part = at(PartKind::Delete).with_keys([k.key.as_slice()]);
                part.live = Some(false);
                part
            }
            Kind::Seal | Kind::Batch => at(PartKind::Seal),
        },
        RecordKeys::Batch(ops) => {
            let mut part = at(PartKind::Batch).with_keys(ops.iter().map(|op| op.key.as_slice()));
            part.entries = Some(ops.len() as u64);
            part.live = Some(false);
            part
        }
    }
}

/// Marks each put of `segment` live or dead by `live`, the tree's pointers sorted, and
/// sets the segment's live and dead bytes; with `None` (liveness not computed for a tree
/// over `max_tree_bytes`), says so.
fn mark_liveness(segment: &mut ReadSegment, live: Option<&[ValuePointer]>, max_tree_bytes: u64) {
    if segment.file.kind != FileKind::Segment {
        return;
    }
    let Some(live) = live else {
        let note = format!("liveness not computed: the tree is over {max_tree_bytes} bytes");
        let file = &mut segment.file;
        file.note = Some(
            file.note
                .take()
                .map_or(note.clone(), |n| format!("{n}; {note}")),
        );
        return;
    };
    let mut live_bytes = 0;
    for part in &mut segment.file.parts {
        if part.kind != PartKind::Put {
            continue;
        }
        let pointer = ValuePointer {
            segment: segment.id,
            offset: part.offset,
            len: u32::try_from(part.bytes).unwrap_or(u32::MAX),
        };
        let is_live = live.binary_search(&pointer).is_ok();
        live_bytes += if is_live { part.bytes } else { 0 };
        part.live = Some(is_live);
    }
    segment.file.set_live(live_bytes, segment.used);
}

/// Every value pointer the tree in `tree` holds as the newest version of its key, sorted:
/// the memtable its WALs replay to (every WAL there, `wal_bytes` of them in all) merged with
/// the tables of its manifest, each key's newest version kept.
///
/// # Errors
/// [`Error::Corruption`] for a damaged WAL, manifest or table, or a tree value that does
/// not decode; [`Error::Io`].
fn live_pointers(fs: &Fs, tree: &Path, wal_bytes: u64) -> Result<Vec<ValuePointer>> {
    let memtable = Arc::new(Memtable::new(0, wal_bytes.clamp(4096, 64 << 20) as usize));
    for name in fs.list(tree)? {
        if let lsm::file_names::FileKind::Wal(_) = lsm::file_names::parse(&name) {
            replay_wal(fs, &tree.join(&name), &memtable)?;
        }
    }
    let state = lsm::manifest::recover(fs, tree)?.map(|(_, state)| state);
    let mut sources = vec![Source::Memtable(memtable.cursor())];
    let cache = Arc::new(BlockCache::new(0));
    for number in state
        .iter()
        .flat_map(|s| s.levels.iter().flat_map(|l| l.keys()))
    {
        let path = tree.join(lsm::file_names::table(*number));
        let table = Arc::new(Table::open(fs, &path, *number, cache.clone())?);
        sources.push(Source::Table(table.cursor(false)));
    }
    let mut merged = MergingCursor::new(sources);
    merged.seek_to_first()?;
    let (mut pointers, mut last_key) = (Vec::new(), None::<Vec<u8>>);
    while merged.valid() {
        let entry = merged.entry();
        if last_key.as_deref() != Some(entry.key) {
            last_key = Some(entry.key.to_vec());
            let decoded = entry.value.map(value_pointer::decode).transpose();
            match decoded {
                Ok(Some(TreeValue::Pointer(p))) => pointers.push(p),
                Ok(_) => {}
                Err(e) => {
                    let detail = format!("the tree value of key {}: {e}", quoted(entry.key, 40));
                    return Err(Error::corruption(tree, 0, detail));
                }
            }
        }
        merged.next()?;
    }
    pointers.sort_unstable();
    Ok(pointers)
}

/// Replays the tree WAL at `path` into `memtable`; a WAL gone (flushed and deleted since the
/// listing) adds nothing, its entries being in a table by then.
fn replay_wal(fs: &Fs, path: &Path, memtable: &Memtable) -> Result<()> {
    let replay = lsm::wal::Wal::read_records(fs, path, lsm::wal::KIND, |record| {
        let batch = lsm::wal::decode(record.payload)
            .map_err(|e| e.into_corruption(path, record.payload_offset()))?;
        for (seq, op) in (batch.first_seq..).zip(batch.ops()) {
            memtable.insert(op.key, seq, op.value);
        }
        Ok(())
    });
    match replay {
        Ok(_) => Ok(()),
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A value over the default `value_threshold` (128), kept in the log.
    fn large(tag: u8) -> Vec<u8> {
        vec![tag; 200]
    }

    /// Every file under `dir`, with its bytes.
    fn contents(dir: &Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(contents(&path));
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
        out
    }

    /// Writes a large value, a small one, overwrites the first, deletes a third, flushes.
    fn small_store(dir: &Path) -> Wisckey {
        let options = Options::new()
            .set("vlog_segment_bytes", "600")
            .set("gc_dead_ratio", "0");
        let store = Wisckey::open(dir, &options).unwrap();
        store.put(b"apple", &large(b'a')).unwrap();
        store.put(b"banana", b"small").unwrap();
        store.put(b"cherry", &large(b'c')).unwrap();
        store.put(b"apple", &large(b'A')).unwrap();
        store.delete(b"cherry").unwrap();
        store.put(b"date", &large(b'd')).unwrap();
        assert!(store.flush().unwrap());
        store
    }

    /// The puts of every segment, as (key, live).
    fn puts(s: &Structure) -> Vec<(String, Option<bool>)> {
        let segments = s.files.iter().filter(|f| f.kind == FileKind::Segment);
        let parts = segments.flat_map(|f| &f.parts);
        let puts = parts.filter(|p| p.kind == PartKind::Put);
        puts.map(|p| (p.keys.join(","), p.live)).collect()
    }

    #[test]
    fn the_tree_and_the_log_are_described_with_the_live_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(dir.path());
        let before = contents(dir.path());
        let s = structure(dir.path()).unwrap();
        assert_eq!(
            contents(dir.path()),
            before,
            "nothing changed, the store open"
        );
        store.close().unwrap();
        assert_eq!(s.engine, "wisckey");
        let names: Vec<&str> = s.files.iter().map(|f| f.name.as_str()).collect();
        assert!(names.is_sorted(), "{names:?}");
        assert_eq!(names[..2], ["ENGINE", "LOCK"]);
        assert!(names.contains(&"tree/ENGINE") && names.contains(&"vlog/00000001.seg"));
        let live = [
            ("apple", Some(false)),
            ("banana", Some(false)),
            ("cherry", Some(false)),
            ("apple", Some(true)),
            ("date", Some(true)),
        ];
        let live = live.map(|(key, live)| (key.to_string(), live));
        assert_eq!(puts(&s), live);
        let segments: Vec<&StoreFile> = (s.files.iter())
            .filter(|f| f.kind == FileKind::Segment)
            .collect();
        assert!(segments.len() > 1, "segments of 600 bytes: {names:?}");
        for segment in &segments {
            let live: u64 = (segment.parts.iter())
                .filter(|p| p.live == Some(true))
                .map(|p| p.bytes)
                .sum();
            assert_eq!(segment.live_bytes, Some(live), "{}", segment.name);
        }
        let active = segments.last().unwrap();
        assert_eq!(active.note.as_deref(), Some("active: takes the appends"));
        let tables = s.files.iter().filter(|f| f.kind == FileKind::Table);
        assert_eq!(tables.filter(|t| t.name.starts_with("tree/")).count(), 1);
        assert_eq!(s.levels[0].tables, 1);
        let memtable = s.memtable.as_ref().unwrap();
        assert_eq!(memtable.entries, 0, "flushed");
        assert!(
            memtable.wals.iter().all(|w| s.file(w).is_some()),
            "{memtable:?}"
        );
    }

    #[test]
    fn unflushed_writes_count_and_a_large_tree_leaves_liveness_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(dir.path());
        store.put(b"date", b"small now").unwrap();
        store.put(b"elder", &large(b'e')).unwrap();
        let s = structure(dir.path()).unwrap();
        let live: Vec<_> = puts(&s)
            .into_iter()
            .filter(|(_, l)| *l == Some(true))
            .collect();
        let keys: Vec<&str> = live.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["apple", "elder"], "the memtable's writes decide");
        assert_eq!(s.memtable.as_ref().unwrap().entries, 2);

        let s = read_structure(dir.path(), &Options::new(), 0).unwrap();
        store.close().unwrap();
        assert!(puts(&s).iter().all(|(_, live)| live.is_none()));
        for segment in s.files.iter().filter(|f| f.kind == FileKind::Segment) {
            assert_eq!((segment.live_bytes, segment.dead_bytes), (None, None));
            assert!(
                segment
                    .note
                    .as_ref()
                    .unwrap()
                    .contains("liveness not computed")
            );
        }
    }

    #[test]
    fn another_engine_s_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        lsm::LsmTree::open(dir.path(), &Options::new())
            .unwrap()
            .close()
            .unwrap();
        let err = structure(dir.path()).unwrap_err();
        assert!(matches!(err, Error::WrongEngine { .. }), "{err}");
        let err = structure_with(dir.path(), &Options::new().set("nonsense", 1)).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
}

//! The annotated dumps `kv inspect` prints for the files of a bitcask store, each recognised
//! by its magic: a segment ([`crate::record`]), a hint file ([`crate::hint`]) and a merge
//! commit record ([`crate::merge_commit`]). Every line is one field of the format those
//! modules document byte by byte: its offset, its bytes and what they mean. A dump stops
//! with a note at the first bytes that do not decode, and never panics, whatever the bytes.
//!
//! [`structure`] describes a whole store directory as data ([`kv_shared::structure`]), for
//! `kv draw`: every segment's records with the keydir's pointers into them, live and dead
//! bytes per segment, the hint files beside their segments, and a merge caught in the act.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use kv_shared::batch::dump_ops;
use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::ByteReader;
use kv_shared::log_reader::{LogFormat, LogRecord, LogTail, read_log};
use kv_shared::structure::{
    FileKind, MergeInProgress, Part, PartKind, Pointer, StoreFile, key_text, read_only_fs,
};
use kv_shared::{Engine, Error, Fs, Result, Structure};

use crate::Bitcask;
use crate::file_names::FileName;
use crate::hint::{self, HINT_HEADER_LEN, HINT_MAGIC, HINT_VERSION, HintEntry, HintLog};
use crate::keydir::Entry;
use crate::merge_commit::{COMMIT_MAGIC, MergeCommit};
use crate::record::{
    self, BATCH_HEADER_LEN, Kind, RECORD_HEADER_LEN, RecordKeys, RecordRef, SEGMENT_HEADER_LEN,
    SEGMENT_MAGIC, SEGMENT_VERSION, SegmentKeyLog,
};

/// Bytes of a key or value shown in a dump line.
const SHOWN: usize = 40;

/// The annotated dump of a bitcask file, or `None` when `bytes` does not start with one of
/// the three magics (`BITCASKS`, `BITCASKH`, `BITCASKM`).
pub fn dump(bytes: &[u8]) -> Option<String> {
    let magic = bytes.get(..8)?;
    if magic == SEGMENT_MAGIC {
        Some(dump_segment(bytes))
    } else if magic == HINT_MAGIC {
        Some(dump_hint(bytes))
    } else if magic == COMMIT_MAGIC {
        Some(dump_commit(bytes))
    } else {
        None
    }
}

/// How a dump shows an expiry field.
fn expiry_text(expiry: u64) -> String {
    if expiry == 0 {
        "expiry: never".to_string()
    } else {
        format!("expiry {expiry} ms since the Unix epoch")
    }
}

/// Dumps a segment's 16-byte header into `d` (stage 5's value log dumps its segments
/// with it too). Returns `false`, with a note saying why, when `bytes` are too short for a
/// header or the header is bad: the records after it cannot be read.
pub fn dump_segment_header(d: &mut Dump, bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..SEGMENT_HEADER_LEN as usize) else {
        d.note("too short for a segment header");
        return false;
    };
    d.field(&header[..8], format!("magic {}", quoted(SEGMENT_MAGIC, 8)));
    match record::decode_segment_header(header) {
        Ok(id) => {
            d.field(&header[8..12], format!("format version {SEGMENT_VERSION}"));
            d.field(&header[12..16], format!("segment id {id}"));
            true
        }
        Err(e) => {
            d.note(format!("bad header: {e}"));
            false
        }
    }
}

/// The annotated dump of a segment file: the header, then every record field by field.
pub fn dump_segment(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("bitcask segment ({} bytes)", bytes.len()));
    if !dump_segment_header(&mut d, bytes) {
        return d.finish();
    }
    walk_records(&mut d, bytes, SEGMENT_HEADER_LEN, |d, n, rest| {
        let len = record::record_len(rest).map_err(|e| format!("no whole record header ({e})"))?;
        let raw = rest.get(..len).ok_or_else(|| {
            format!(
                "record of {len} bytes cut short at {} (torn tail)",
                rest.len()
            )
        })?;
        let r = record::decode_record(raw).map_err(|e| format!("bad record ({e})"))?;
        dump_record(d, n, raw, &r);
        Ok(len)
    });
    d.finish()
}

/// Shows the records of a log that fills `bytes` from `start` on: `record` shows record
/// `n`, the first of the bytes it is given, and returns its length, or why it cannot, which
/// ends the dump with a note at the record's offset.
fn walk_records(
    d: &mut Dump,
    bytes: &[u8],
    start: u64,
    mut record: impl FnMut(&mut Dump, usize, &[u8]) -> std::result::Result<usize, String>,
) {
    let (mut pos, mut n) = (start as usize, 0);
    while pos < bytes.len() {
        match record(d, n, &bytes[pos..]) {
            Ok(len) => pos += len,
            Err(why) => return d.note(format!("offset {pos}: {why}")),
        }
        n += 1;
    }
}

/// Record `n` of a segment, field by field; `raw` is its bytes, already decoded as `r`.
fn dump_record(d: &mut Dump, n: usize, raw: &[u8], r: &RecordRef<'_>) {
    let k = r.key.len();
    let batch = r.kind == Kind::Batch;
    let count = r.batch_count();
    if batch {
        d.section(format!("record {n}: batch of {count} ops"));
    } else {
        d.section(format!("record {n}: {}", r.kind.name()));
    }
    d.field(&raw[..4], "crc32 (ok)");
    if batch {
        let seq = r.seq;
        d.field(
            &raw[4..12],
            format!("sequence number {seq} of op 0 (op i has {seq} + i)"),
        );
    } else {
        d.field(&raw[4..12], format!("sequence number {}", r.seq));
    }
    d.field(&raw[12..20], expiry_text(r.expiry));
    d.field(&raw[20..21], format!("kind {}", r.kind.name()));
    d.field(&raw[21..23], format!("key length {k}"));
    let what = if batch { "body length" } else { "value length" };
    d.field(&raw[23..27], format!("{what} {}", r.value.len()));
    if k > 0 {
        d.field(&raw[27..27 + k], format!("key {}", quoted(r.key, SHOWN)));
    }
    if batch {
        d.field(
            &raw[RECORD_HEADER_LEN..BATCH_HEADER_LEN],
            format!("op count {count}"),
        );
        dump_ops(d, &raw[BATCH_HEADER_LEN..], count);
    } else if !r.value.is_empty() {
        d.field(&raw[27 + k..], format!("value {}", quoted(r.value, SHOWN)));
    }
}

/// The annotated dump of a hint file: the header, then every entry field by field.
pub fn dump_hint(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("bitcask hint file ({} bytes)", bytes.len()));
    let mut r = ByteReader::new(bytes);
    let (Ok(magic), Ok(version), Ok(id)) = (r.bytes(8, "magic"), r.u32("version"), r.u32("id"))
    else {
        d.note("too short for a hint header");
        return d.finish();
    };
    d.magic_version(bytes, "format version");
    if magic != HINT_MAGIC || version != HINT_VERSION {
        d.note("not a hint file this build reads");
        return d.finish();
    }
    d.field(&bytes[12..16], format!("segment id {id}"));
    walk_records(&mut d, bytes, HINT_HEADER_LEN, |d, n, rest| {
        let raw = HintLog::record_len(rest)
            .ok()
            .and_then(|len| rest.get(..len))
            .ok_or("entry cut short (torn tail)")?;
        let e = hint::decode_entry(raw).map_err(|err| format!("bad entry ({err})"))?;
        dump_hint_entry(d, n, raw, &e);
        Ok(raw.len())
    });
    d.finish()
}

/// Entry `n` of a hint file, field by field; `raw` is its bytes, already decoded as `e`.
fn dump_hint_entry(d: &mut Dump, n: usize, raw: &[u8], e: &HintEntry) {
    match e.kind {
        Some(kind) => {
            d.section(format!("entry {n}: {}", kind.name()));
            d.field(&raw[..4], "crc32 (ok)");
            d.field(&raw[4..12], format!("sequence number {}", e.seq));
            d.field(&raw[12..20], expiry_text(e.expiry));
            d.field(&raw[20..28], format!("record offset {}", e.offset));
            d.field(&raw[28..32], format!("record length {}", e.len));
            d.field(&raw[32..33], format!("kind {}", kind.name()));
        }
        None => {
            d.section("end entry");
            d.field(&raw[..4], "crc32 (ok)");
            d.field(&raw[4..12], format!("{} entries before this one", e.seq));
            d.field(&raw[12..20], "(unused)");
            d.field(&raw[20..28], format!("segment length {}", e.offset));
            d.field(&raw[28..32], "(unused)");
            d.field(&raw[32..33], "kind end");
        }
    }
    d.field(&raw[33..35], format!("key length {}", e.key.len()));
    if !e.key.is_empty() {
        d.field(&raw[35..], format!("key {}", quoted(&e.key, SHOWN)));
    }
}

/// The annotated dump of a merge commit record.
pub fn dump_commit(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!(
        "bitcask merge commit record ({} bytes)",
        bytes.len()
    ));
    match MergeCommit::decode(bytes) {
        Ok(c) => {
            d.magic_version(bytes, "format version");
            let mut pos = 12;
            for (what, ids) in [("input", &c.inputs), ("output", &c.outputs)] {
                d.field(
                    &bytes[pos..pos + 4],
                    format!("{what} segments: {}", ids.len()),
                );
                pos += 4;
                for id in ids {
                    d.field(&bytes[pos..pos + 4], format!("{what} segment {id}"));
                    pos += 4;
                }
            }
            d.field(&bytes[pos..], "crc32 (ok)");
        }
        Err(e) => d.note(format!("invalid commit record: {e}")),
    }
    d.finish()
}

/// Longest commit record read (as recovery bounds it).
const MAX_COMMIT_LEN: u64 = 8 << 20;

/// The structure of the store in `dir` ([`kv_shared::structure`]): each segment's records in
/// file order, marked live where the keydir points; its live and dead bytes; the hint files
/// beside their segments; the keydir that opening the store would rebuild; and a merge
/// whose files are in the directory. Reads only and takes no lock, so it works on a closed
/// store and on one open elsewhere.
///
/// The keydir is rebuilt from the segments (the truth; hints are shortcuts) by the rule of
/// [`crate::recovery`]: for each key the change with the highest sequence number wins. A
/// committed merge counts as finished (its inputs are obsolete, its outputs live), an
/// uncommitted one as not there, as the next open would settle them.
///
/// # Errors
/// As [`Structure::read_dir`] for a directory that is not a bitcask store;
/// [`Error::Corruption`] for a damaged segment header or record followed by a valid one, or a
/// damaged commit record; [`Error::Io`].
pub fn structure(dir: &Path) -> Result<Structure> {
    let mut s = Structure::read_dir(dir, Bitcask::NAME, Bitcask::FORMAT_VERSION)?;
    let fs = read_only_fs();
    let commit = read_commit(&fs, dir, &s)?;
    let mut reader = StoreReader {
        fs,
        dir,
        commit: commit.as_ref(),
        newest: HashMap::new(),
        segments: HashMap::new(),
    };
    s.describe_each(|file| match FileName::parse(&file.name) {
        Some(name) => reader.describe(file, name),
        None => Ok(()),
    })?;
    let StoreReader {
        newest, segments, ..
    } = reader;
    index_and_liveness(&mut s, newest, &segments);
    s.merge = merge_in_progress(&s, commit);
    Ok(s)
}

/// The merge a commit record in the directory names, if there is one.
fn read_commit(fs: &Fs, dir: &Path, s: &Structure) -> Result<Option<MergeCommit>> {
    let Some(name) = s
        .files
        .iter()
        .find(|f| matches!(FileName::parse(&f.name), Some(FileName::Commit(_))))
    else {
        return Ok(None);
    };
    let path = dir.join(&name.name);
    let file = fs.open(&path)?;
    let len = file.len()?;
    if len > MAX_COMMIT_LEN {
        return Err(Error::corruption(&path, 0, "commit record too long"));
    }
    let bytes = file.read_vec_at(0, len as usize)?;
    MergeCommit::decode(&bytes)
        .map(Some)
        .map_err(|e| e.into_corruption(&path, 0))
}

/// What reading the files collects: each key's newest change, and the segments that count.
struct StoreReader<'a> {
    fs: Fs,
    dir: &'a Path,
    commit: Option<&'a MergeCommit>,
    /// Each key's newest change: its sequence number, and its entry if it is a put.
    newest: HashMap<Vec<u8>, (u64, Option<Entry>)>,
    /// Every segment read, by file name: its id, the bytes its records use (header and
    /// seal excluded), and whether its records count (false for a merge's obsolete input or
    /// uncommitted output).
    segments: HashMap<String, Segment>,
}

impl StoreReader<'_> {
    /// Describes one file of the store.
    fn describe(&mut self, file: &mut StoreFile, name: FileName) -> Result<()> {
        let committed = |id: u32| self.commit.is_some_and(|c| c.outputs.contains(&id));
        let replaced = |id: u32| self.commit.is_some_and(|c| c.inputs.contains(&id));
        match name {
            FileName::Segment(id) | FileName::MergeSegment(id) => {
                let counts = match name {
                    FileName::Segment(_) => !replaced(id),
                    _ => committed(id),
                };
                self.segment(file, name, counts)
            }
            FileName::Hint(id) | FileName::MergeHint(id) => {
                file.describes = Some(FileName::Segment(id).name());
                self.hint(file, name)
            }
            FileName::Commit(_) => {
                file.kind = FileKind::MergeCommit;
                file.push_part(Part::new(PartKind::Body, 0, file.bytes));
                Ok(())
            }
            FileName::CommitTmp(_) => {
                file.kind = FileKind::Temp;
                Ok(())
            }
        }
    }

    /// Reads a segment's records into `file`'s parts and, when it `counts`, into the keydir.
    fn segment(&mut self, file: &mut StoreFile, name: FileName, counts: bool) -> Result<()> {
        let (id, path) = (name.id(), name.path(self.dir));
        file.kind = match name {
            FileName::Segment(_) => FileKind::Segment,
            _ => FileKind::MergeOutput,
        };
        let segment = self.fs.open(&path)?;
        file.bytes = segment.len()?;
        if file.bytes < SEGMENT_HEADER_LEN {
            file.push_part(Part::new(PartKind::Unreadable, 0, file.bytes));
            return Ok(());
        }
        let header = segment.read_vec_at(0, SEGMENT_HEADER_LEN as usize)?;
        record::decode_segment_header(&header).map_err(|e| e.into_corruption(&path, 0))?;
        file.push_part(Part::new(PartKind::Header, 0, SEGMENT_HEADER_LEN));
        let (mut records, mut seal) = (0, 0);
        let end = read_log::<SegmentKeyLog>(&segment, SEGMENT_HEADER_LEN, |r| {
            records += 1;
            file.push_part(segment_part(&r));
            if matches!(&r.record, RecordKeys::One(k) if k.kind == Kind::Seal) {
                seal = r.len;
            }
            if counts {
                self.apply(id, r);
            }
            Ok(())
        })?;
        if let LogTail::Torn { offset, bytes, .. } = end.tail {
            file.push_part(Part::new(PartKind::Unreadable, offset, bytes));
        }
        file.entries = Some(records);
        file.note = segment_note(name, seal > 0, counts).map(String::from);
        let used = end.valid_len - SEGMENT_HEADER_LEN - seal;
        let read = Segment { id, used, counts };
        self.segments.insert(file.name.clone(), read);
        Ok(())
    }

    /// Applies one record's changes to the keydir: the newest change of a key wins.
    fn apply(&mut self, id: u32, r: LogRecord<RecordKeys>) {
        let mut change = |key: Vec<u8>, seq: u64, put: Option<Entry>| {
            if self
                .newest
                .get(&key)
                .is_none_or(|(newest, _)| *newest < seq)
            {
                self.newest.insert(key, (seq, put));
            }
        };
        match r.record {
            RecordKeys::One(k) => match k.kind {
                Kind::Put => {
                    let entry = Entry::record(id, r.offset, r.len as u32, k.seq, k.expiry);
                    change(k.key, k.seq, Some(entry));
                }
                Kind::Tombstone => change(k.key, k.seq, None),
                Kind::Seal | Kind::Batch => {}
            },
            RecordKeys::Batch(ops) => {
                for op in ops {
                    let put = (op.kind == Kind::Put)
                        .then(|| Entry::batch_put(id, r.offset, op.value_len, op.seq));
                    change(op.key, op.seq, put);
                }
            }
        }
    }

    /// Reads a hint file's entries into `file`'s parts.
    fn hint(&mut self, file: &mut StoreFile, name: FileName) -> Result<()> {
        file.kind = match name {
            FileName::Hint(_) => FileKind::Hint,
            _ => FileKind::MergeOutput,
        };
        let hint = self.fs.open(&name.path(self.dir))?;
        file.bytes = hint.len()?;
        if file.bytes < HINT_HEADER_LEN {
            file.push_part(Part::new(PartKind::Unreadable, 0, file.bytes));
            return Ok(());
        }
        file.push_part(Part::new(PartKind::Header, 0, HINT_HEADER_LEN));
        let mut entries = 0;
        let end = read_log::<HintLog>(&hint, HINT_HEADER_LEN, |r| {
            let kind = match r.record.kind {
                Some(_) => PartKind::HintEntry,
                None => PartKind::HintEnd,
            };
            entries += u64::from(kind == PartKind::HintEntry);
            let part = Part::new(kind, r.offset, r.len).with_keys([r.record.key.as_slice()]);
            file.push_part(part);
            Ok(())
        })?;
        if let LogTail::Torn { offset, bytes, .. } = end.tail {
            file.push_part(Part::new(PartKind::Unreadable, offset, bytes));
        }
        file.entries = Some(entries);
        Ok(())
    }
}

/// The part a segment record makes: its kind, place and keys (liveness filled in later).
fn segment_part(r: &LogRecord<RecordKeys>) -> Part {
    let at = |kind| Part::new(kind, r.offset, r.len);
    let mut part = match &r.record {
        RecordKeys::One(k) => match k.kind {
            Kind::Put => at(PartKind::Put).with_keys([k.key.as_slice()]),
            Kind::Tombstone => at(PartKind::Delete).with_keys([k.key.as_slice()]),
            Kind::Seal | Kind::Batch => at(PartKind::Seal),
        },
        RecordKeys::Batch(ops) => {
            let mut part = at(PartKind::Batch).with_keys(ops.iter().map(|op| op.key.as_slice()));
            part.entries = Some(ops.len() as u64);
            part
        }
    };
    if part.kind != PartKind::Seal {
        part.live = Some(false);
    }
    part
}

/// What to say of a segment: the active one, a merge's obsolete input, an output not yet
/// committed.
fn segment_note(name: FileName, sealed: bool, counts: bool) -> Option<&'static str> {
    match (name, counts) {
        (FileName::Segment(_), false) => Some("obsolete: a committed merge's input"),
        (FileName::Segment(_), true) if !sealed => Some("active: takes the appends"),
        (FileName::MergeSegment(_), false) => Some("merge output, not committed"),
        (FileName::MergeSegment(_), true) => Some("merge output, committed"),
        _ => None,
    }
}

/// A segment as [`StoreReader`] read it.
struct Segment {
    id: u32,
    used: u64,
    counts: bool,
}

/// Fills in the keydir's pointers, each segment's live and dead bytes, and which records
/// are live. A merge's obsolete input is all dead; an uncommitted output is left unknown.
fn index_and_liveness(
    s: &mut Structure,
    newest: HashMap<Vec<u8>, (u64, Option<Entry>)>,
    segments: &HashMap<String, Segment>,
) {
    let names: HashMap<u32, &String> = segments
        .iter()
        .filter(|(_, segment)| segment.counts)
        .map(|(name, segment)| (segment.id, name))
        .collect();
    let mut live: Vec<(Vec<u8>, Entry)> = newest
        .into_iter()
        .filter_map(|(key, (_, put))| put.map(|entry| (key, entry)))
        .collect();
    live.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut live_bytes: HashMap<u32, u64> = HashMap::new();
    let mut pointed = HashSet::new();
    for (key, entry) in &live {
        let bytes = entry.live_bytes(key.len());
        *live_bytes.entry(entry.segment).or_default() += bytes;
        pointed.insert((entry.segment, entry.offset));
        s.push_pointer(Pointer {
            key: key_text(key),
            file: names[&entry.segment].clone(),
            offset: entry.offset,
            bytes,
        });
    }
    for file in &mut s.files {
        let Some(segment) = segments.get(&file.name) else {
            continue;
        };
        let obsolete_input = file.kind == FileKind::Segment && !segment.counts;
        if segment.counts || obsolete_input {
            let live = live_bytes.get(&segment.id).copied().unwrap_or(0);
            file.set_live(if segment.counts { live } else { 0 }, segment.used);
        }
        for part in file.parts.iter_mut().filter(|p| p.live.is_some()) {
            part.live = Some(segment.counts && pointed.contains(&(segment.id, part.offset)));
        }
    }
}

/// The merge whose files are in the directory: the one a commit record names, or one still
/// writing its outputs (whose inputs are not on disk yet).
fn merge_in_progress(s: &Structure, commit: Option<MergeCommit>) -> Option<MergeInProgress> {
    let names = |ids: &[u32]| ids.iter().map(|&id| FileName::Segment(id).name()).collect();
    if let Some(c) = commit {
        return Some(MergeInProgress {
            inputs: names(&c.inputs),
            outputs: names(&c.outputs),
            committed: true,
        });
    }
    let outputs: Vec<String> = s
        .files
        .iter()
        .filter(|f| matches!(FileName::parse(&f.name), Some(FileName::MergeSegment(_))))
        .map(|f| f.name.clone())
        .collect();
    (!outputs.is_empty()).then_some(MergeInProgress {
        inputs: Vec::new(),
        outputs,
        committed: false,
    })
}

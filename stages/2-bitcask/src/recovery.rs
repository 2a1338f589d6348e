//! Opening a store: finishing or undoing an interrupted merge, then rebuilding the keydir.
//!
//! [`recover`] is these steps, in order, each a function below:
//!
//! 1. **Settle interrupted merges** (`settle_merges`). Every commit record
//!    (`merge-*.commit`) is a merge that committed: its outputs still under temporary names
//!    are renamed, its inputs still present are deleted, and the record is removed. Then
//!    every `*.merge` and `*.commit.tmp` file left is debris of a merge that never
//!    committed, and is deleted. See [`crate::merge_commit`] for why this is safe at every
//!    point of a crash.
//! 2. **Load the keydir** (`load_segments`). Each segment is loaded from its hint file
//!    when it has one (and the `hint_files` option is on), otherwise its records are
//!    replayed one by one. For each key the record with the highest sequence number wins,
//!    whatever file it is in; a tombstone removes older puts and is remembered (in a side
//!    map) so that an older put read later cannot bring the key back. A batch record is
//!    applied op by op, as the puts and tombstones it stands for; it is one record under
//!    one checksum, so it is applied whole or, torn, dropped whole.
//! 3. **Check the seals** (`find_active`). Every segment but one must end with a seal
//!    record. The one without is the segment that was active. A missing seal in any other
//!    segment is `Error::Corruption`.
//! 4. **Repair the active segment** (`repair_active`). Its unsynced tail is cut off, and
//!    appends continue after it. Its header may be torn too (a power loss just after it was
//!    created): if no valid record follows, it is rewritten. With no segment left open, a
//!    new active segment is created.
//! 5. **Count dead bytes** (`count_dead_bytes`): everything in a segment but its header,
//!    its seal and what its live keydir entries keep alive.
//!
//! ## Damage: the newest segment's unsynced tail, and corruption
//!
//! The active segment is the store's newest log: the segment without a hint file with the
//! highest id (merge outputs, which always have hint files, may have higher ids, but they
//! were synced whole before their merge committed). After a power loss its unsynced writes
//! may come back with holes, since a disk writes a file's pages back in any order: a page
//! of zeros (or of old bytes) and then valid records. So the newest segment is read with
//! [`kv_shared::log_reader::read_newest_log`]: **everything from its first bad record on is
//! its unsynced tail**, whether or not valid records follow (RocksDB's point-in-time
//! recovery). Recovery keeps the valid prefix and cuts the rest off; when valid records did
//! follow, it first copies the whole segment into the store's `lost/` directory, so that if
//! the damage was not a power loss after all nothing once written is destroyed.
//!
//! The rule covers the newest segment's header too: the header is its first bytes, so if
//! it is damaged, nothing after it was synced, and the whole segment is its unsynced tail
//! (copied into `lost/` when valid records follow, then cut back to a fresh header).
//!
//! This is only sound because the prefix rule holds across segments too: a segment is
//! sealed and fsynced before the next one is created, and both directory entries are
//! synced before the new one takes a record, so no record of an older segment can be
//! lost while a newer segment keeps its own. Hence damage followed by valid records in any
//! other segment is `Error::Corruption`, and no file is changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use kv_shared::log_reader::{LogEnd, LogRecord, LogTail, read_log, read_newest_log};
use kv_shared::repair::copy_to_lost;
use kv_shared::{Error, Fs, Result};

use crate::file_names::FileName;
use crate::hint::{self, HintEntry};
use crate::keydir::{Entry, KeyDir};
use crate::merge_commit::MergeCommit;
use crate::record::{self, Kind, RecordKeys, SEGMENT_HEADER_LEN, SegmentKeyLog};
use crate::segment::Segment;

/// Largest commit record recovery reads (a merge of a million segments fits).
const MAX_COMMIT_LEN: u64 = 8 << 20;

/// What opening a store found.
#[derive(Debug)]
pub struct Recovered {
    /// The rebuilt keydir.
    pub keydir: KeyDir,
    /// Every segment, by id, the active one included.
    pub segments: BTreeMap<u32, Arc<Segment>>,
    /// The segment that takes appends.
    pub active: Arc<Segment>,
    /// The next sequence number to give out.
    pub next_seq: u64,
    /// The next file id to give out.
    pub next_id: u32,
    /// Segments loaded from their hint files.
    pub hint_files_read: u64,
    /// Hint files found damaged or stale, whose segments were read instead.
    pub hint_files_rejected: u64,
    /// Bytes cut off the active segment's torn tail.
    pub torn_bytes: u64,
}

/// Opens the store's files in `dir` (already locked), recovering from any crash.
///
/// # Errors
/// [`Error::Corruption`] for damage that is not a torn tail of the active segment (no file
/// is changed then); [`Error::Io`].
pub fn recover(fs: &Fs, dir: &Path, use_hints: bool) -> Result<Recovered> {
    let found = list_files(fs, dir)?;
    let newest_id = found.iter().map(|f| f.id()).max().unwrap_or(0);
    settle_merges(fs, dir, &found)?;
    let mut loader = Loader::new(use_hints);
    let loaded = load_segments(fs, dir, &list_files(fs, dir)?, &mut loader)?;
    // Checked before anything is repaired: a damaged store is refused with no file changed.
    let next_seq = loader.max_seq.checked_add(1).ok_or_else(|| {
        Error::corruption(
            dir,
            0,
            "a sequence number of u64::MAX leaves none for the next write",
        )
    })?;
    let (active, torn_bytes) = match find_active(&loaded)? {
        Some(i) => {
            let (segment, ending) = &loaded[i];
            (segment.clone(), repair_active(fs, dir, segment, ending)?)
        }
        None => {
            let segment = Segment::create(fs, dir.to_path_buf(), newest_id + 1)?;
            (Arc::new(segment), 0)
        }
    };
    let mut segments = count_dead_bytes(&loader.keydir, loaded);
    segments.insert(active.id(), active.clone());
    let newest_id = newest_id.max(segments.keys().copied().max().unwrap_or(0));
    Ok(Recovered {
        keydir: loader.keydir,
        segments,
        active,
        next_seq,
        next_id: newest_id + 1,
        hint_files_read: loader.hint_files_read,
        hint_files_rejected: loader.hint_files_rejected,
        torn_bytes,
    })
}

/// The files of `dir` this engine owns.
fn list_files(fs: &Fs, dir: &Path) -> Result<Vec<FileName>> {
    let names = fs.list(dir)?;
    Ok(names.iter().filter_map(|n| FileName::parse(n)).collect())
}

/// Step 1: finishes committed merges and removes the debris of uncommitted ones.
fn settle_merges(fs: &Fs, dir: &Path, files: &[FileName]) -> Result<()> {
    let mut changed = false;
    for &file in files {
        if let FileName::Commit(_) = file {
            finish_merge(fs, dir, file)?;
            changed = true;
        }
    }
    for file in files {
        if matches!(
            file,
            FileName::MergeSegment(_) | FileName::MergeHint(_) | FileName::CommitTmp(_)
        ) {
            fs.remove_if_exists(&file.path(dir))?;
            changed = true;
        }
    }
    if changed {
        fs.sync_dir(dir)?;
    }
    Ok(())
}

/// Finishes the merge whose commit record is `commit`: renames its outputs, deletes its
/// inputs, then the record.
fn finish_merge(fs: &Fs, dir: &Path, commit: FileName) -> Result<()> {
    let path = commit.path(dir);
    let handle = fs.open(&path)?;
    let len = handle.len()?;
    if len > MAX_COMMIT_LEN {
        return Err(Error::corruption(&path, 0, "commit record too long"));
    }
    let bytes = handle.read_vec_at(0, len as usize)?;
    let commit = MergeCommit::decode(&bytes).map_err(|e| e.into_corruption(&path, 0))?;
    for &out in &commit.outputs {
        for (from, to) in [
            (FileName::MergeSegment(out), FileName::Segment(out)),
            (FileName::MergeHint(out), FileName::Hint(out)),
        ] {
            if fs.open_if_exists(&from.path(dir))?.is_some() {
                fs.rename(&from.path(dir), &to.path(dir))?;
            }
        }
    }
    fs.sync_dir(dir)?;
    for &input in &commit.inputs {
        fs.remove_if_exists(&FileName::Hint(input).path(dir))?;
        fs.remove_if_exists(&FileName::Segment(input).path(dir))?;
    }
    fs.sync_dir(dir)?;
    fs.remove(&path)
}

/// Builds the keydir from records in any order: the highest sequence number wins.
#[derive(Debug)]
struct Loader {
    use_hints: bool,
    keydir: KeyDir,
    /// Newest tombstone sequence number of each deleted key seen so far.
    tombstones: HashMap<Box<[u8]>, u64>,
    max_seq: u64,
    hint_files_read: u64,
    hint_files_rejected: u64,
}

impl Loader {
    fn new(use_hints: bool) -> Loader {
        Loader {
            use_hints,
            keydir: KeyDir::new(),
            tombstones: HashMap::new(),
            max_seq: 0,
            hint_files_read: 0,
            hint_files_rejected: 0,
        }
    }

    // Exercise 2.3: let the newest record of a key win. Read: chapter 2, "Recovery".
    // Tests: conformance::conformance::reopen_keeps_everything
    // Tests: damage::every_torn_tail_of_the_active_segment_keeps_a_prefix
    /// Applies one put or tombstone of `segment`, whose keydir entry would be `entry`.
    fn apply(&mut self, segment: &Segment, key: Vec<u8>, kind: Kind, entry: Entry) {
        if !matches!(kind, Kind::Put | Kind::Tombstone) {
            return;
        }
        self.max_seq = self.max_seq.max(entry.seq);
        segment.saw_seq(entry.seq);
        if kind == Kind::Put {
            let deleted_later = !self.tombstones.is_empty()
                && self
                    .tombstones
                    .get(&key[..])
                    .is_some_and(|&t| t > entry.seq);
            if !deleted_later {
                self.keydir.insert_if_newer(key, entry);
            }
        } else {
            if self.keydir.get(&key).is_some_and(|e| e.seq < entry.seq) {
                self.keydir.remove(&key);
            }
            let t = self
                .tombstones
                .entry(key.into_boxed_slice())
                .or_insert(entry.seq);
            *t = (*t).max(entry.seq);
        }
    }

    /// Applies the record of `len` bytes at `offset` of `segment`: every op of a batch.
    fn apply_record(&mut self, segment: &Segment, offset: u64, len: u64, record: RecordKeys) {
        let id = segment.id();
        match record {
            RecordKeys::One(r) => {
                let entry = Entry::record(id, offset, len as u32, r.seq, r.expiry);
                self.apply(segment, r.key, r.kind, entry);
            }
            RecordKeys::Batch(ops) => {
                for op in ops {
                    let entry = Entry::batch_put(id, offset, op.value_len, op.seq);
                    self.apply(segment, op.key, op.kind, entry);
                }
            }
        }
    }

    /// Applies one entry of the hint file of `segment`.
    fn apply_hint(&mut self, segment: &Segment, e: HintEntry) {
        let kind = e.kind.unwrap_or(Kind::Seal);
        let entry = Entry::record(segment.id(), e.offset, e.len, e.seq, e.expiry);
        self.apply(segment, e.key, kind, entry);
    }
}

/// How a segment's data file ended.
#[derive(Debug)]
enum Ending {
    /// Its last record is a seal (or a valid hint vouched for it).
    Sealed,
    /// No seal: the bytes up to `valid_len` are whole records; anything after is torn.
    Open {
        valid_len: u64,
        torn: Option<String>,
        /// Valid records followed the damage (only in the newest segment): the segment is
        /// copied into `lost/` before its tail is cut.
        hole: bool,
    },
    /// Shorter than a header: created, then the crash came before its header was written.
    /// Or, in the newest segment, a damaged header: the header is written first, so when it
    /// did not reach the disk nothing after it was synced either.
    NoHeader {
        /// Valid records followed the header: the segment is copied into `lost/` before it
        /// is cut.
        hole: bool,
    },
}

/// Step 2: opens every segment of `files` and loads it into `loader`, from its hint file
/// when it has a good one.
fn load_segments(
    fs: &Fs,
    dir: &Path,
    files: &[FileName],
    loader: &mut Loader,
) -> Result<Vec<(Arc<Segment>, Ending)>> {
    let hints: BTreeSet<u32> = files
        .iter()
        .filter(|f| matches!(f, FileName::Hint(_)))
        .map(|f| f.id())
        .collect();
    // The active segment, the newest log: the newest segment that is no merge output.
    let newest = files
        .iter()
        .filter(|f| matches!(f, FileName::Segment(id) if !hints.contains(id)))
        .map(|f| f.id())
        .max();
    let mut loaded = Vec::new();
    for file in files {
        let FileName::Segment(id) = *file else {
            continue;
        };
        let handle = fs.open(&file.path(dir))?;
        let segment = Arc::new(Segment::new(fs, dir.to_path_buf(), id, handle));
        segment.set_file_len(segment.file().len()?);
        if hints.contains(&id) {
            segment.set_has_hint();
        }
        let from_hint = segment.has_hint() && loader.use_hints;
        let ending = if from_hint && load_hint(fs, dir, &segment, loader)? {
            Ending::Sealed
        } else {
            replay_segment(loader, &segment, newest == Some(id))?
        };
        loaded.push((segment, ending));
    }
    Ok(loaded)
}

/// Loads `segment` from its hint file; false when the hint is damaged or stale (the
/// segment must then be replayed: the entries already applied are genuine and will be
/// seen again).
fn load_hint(fs: &Fs, dir: &Path, segment: &Segment, loader: &mut Loader) -> Result<bool> {
    let hint_file = fs.open(&FileName::Hint(segment.id()).path(dir))?;
    let read = hint::read_hint(&hint_file, segment.id(), segment.file_len(), |e| {
        loader.apply_hint(segment, e);
    })?;
    if read.is_ok() {
        loader.hint_files_read += 1;
    } else {
        loader.hint_files_rejected += 1;
    }
    Ok(read.is_ok())
}

/// Replays one segment's records into `loader`; says how the segment ended. The `newest`
/// segment is read up to its first bad record; in any other, a bad record followed by a
/// valid one is corruption.
fn replay_segment(loader: &mut Loader, segment: &Segment, newest: bool) -> Result<Ending> {
    if let Some(ending) = check_header(segment, newest)? {
        return Ok(ending);
    }
    let file = segment.file();
    let mut sealed = false;
    let mut each = |r: LogRecord<RecordKeys>| {
        if sealed {
            return Err(Error::corruption(
                file.path(),
                r.offset,
                "a record follows the seal record",
            ));
        }
        sealed = matches!(&r.record, RecordKeys::One(k) if k.kind == Kind::Seal);
        loader.apply_record(segment, r.offset, r.len, r.record);
        Ok(())
    };
    let end = if newest {
        read_newest_log::<SegmentKeyLog>(file, SEGMENT_HEADER_LEN, &mut each)?
    } else {
        read_log::<SegmentKeyLog>(file, SEGMENT_HEADER_LEN, &mut each)?
    };
    ending(segment, sealed, end)
}

/// How a replayed segment ended: sealed, or open with or without a torn tail (bytes after
/// a seal are corruption).
fn ending(segment: &Segment, sealed: bool, end: LogEnd) -> Result<Ending> {
    let valid_len = end.valid_len;
    Ok(match (sealed, end.tail) {
        (true, LogTail::Clean) => Ending::Sealed,
        (true, LogTail::Torn { offset, detail, .. }) => {
            return Err(Error::corruption(
                segment.file().path(),
                offset,
                format!("bytes after the seal record: {detail}"),
            ));
        }
        (false, LogTail::Clean) => Ending::Open {
            valid_len,
            torn: None,
            hole: false,
        },
        (
            false,
            LogTail::Torn {
                detail,
                valid_after,
                ..
            },
        ) => Ending::Open {
            valid_len,
            torn: Some(detail),
            hole: valid_after.is_some(),
        },
    })
}

/// Checks a segment's header: `None` when it is good, [`Ending::NoHeader`] when it is torn
/// (a power loss right after the segment was created, or any damage in the `newest`
/// segment: all of it is then its unsynced tail), corruption when it is damaged.
fn check_header(segment: &Segment, newest: bool) -> Result<Option<Ending>> {
    let file = segment.file();
    if segment.file_len() < SEGMENT_HEADER_LEN {
        return Ok(Some(Ending::NoHeader { hole: false }));
    }
    let header = file.read_vec_at(0, SEGMENT_HEADER_LEN as usize)?;
    let error = match record::decode_segment_header(&header) {
        Ok(id) if id == segment.id() => return Ok(None),
        Ok(id) => Error::corruption(
            file.path(),
            12,
            format!(
                "header names segment {id}, the file name segment {}",
                segment.id()
            ),
        ),
        Err(e) => e.into_corruption(file.path(), 0),
    };
    // A power loss right after a segment was created can leave its size on disk but not its
    // bytes. That is a torn header if nothing valid follows; if a valid record does, the
    // header was damaged after it was written.
    let mut follows = false;
    let scan = read_log::<SegmentKeyLog>(file, SEGMENT_HEADER_LEN, |_| {
        follows = true;
        Err(Error::InvalidArgument(
            "stop at the first valid record".into(),
        ))
    });
    let hole = follows || matches!(scan, Err(Error::Corruption { .. }));
    if hole && !newest {
        return Err(error);
    }
    Ok(Some(Ending::NoHeader { hole }))
}

/// Step 3: the index of the segment that was active (the one without a seal), if any.
///
/// Exactly one segment may lack its seal. Merge outputs (the segments with hint files) are
/// always sealed; the others were started in id order, so the active one is the newest.
///
/// # Errors
/// [`Error::Corruption`] naming an immutable segment that lost its end.
fn find_active(loaded: &[(Arc<Segment>, Ending)]) -> Result<Option<usize>> {
    let open: Vec<usize> = (0..loaded.len())
        .filter(|&i| !matches!(loaded[i].1, Ending::Sealed))
        .collect();
    let lost_end = open
        .iter()
        .find(|&&i| loaded[i].0.has_hint())
        .or(open.split_last().and_then(|(_, older)| older.first()));
    if let Some(&i) = lost_end {
        let (segment, ending) = &loaded[i];
        let offset = match ending {
            Ending::Open { valid_len, .. } => *valid_len,
            _ => 0,
        };
        return Err(Error::corruption(
            segment.file().path(),
            offset,
            "an immutable segment has no seal record: it lost its end",
        ));
    }
    Ok(open.first().copied())
}

/// Step 4: cuts the active segment's torn tail, or rewrites its torn header; returns the
/// bytes cut off.
fn repair_active(fs: &Fs, dir: &Path, segment: &Segment, ending: &Ending) -> Result<u64> {
    let file = segment.file();
    match ending {
        Ending::NoHeader { hole } => {
            if *hole {
                copy_segment_to_lost(fs, dir, segment)?;
            }
            let torn_bytes = file.len()?;
            file.truncate(0)?;
            file.append(&record::encode_segment_header(segment.id()))?;
            file.sync()?;
            segment.set_file_len(SEGMENT_HEADER_LEN);
            Ok(torn_bytes)
        }
        Ending::Open {
            valid_len,
            torn,
            hole,
        } => {
            let mut torn_bytes = 0;
            if *hole {
                copy_segment_to_lost(fs, dir, segment)?;
            }
            if torn.is_some() {
                torn_bytes = file.len()? - valid_len;
                file.truncate(*valid_len)?;
                file.sync()?;
            }
            segment.set_file_len(*valid_len);
            Ok(torn_bytes)
        }
        Ending::Sealed => Ok(0),
    }
}

/// Copies the whole of `segment` into the store's `lost/` directory.
fn copy_segment_to_lost(fs: &Fs, dir: &Path, segment: &Segment) -> Result<()> {
    let path = FileName::Segment(segment.id()).path(dir);
    let name = path.file_name().expect("a segment path names a file");
    copy_to_lost(fs, dir, &name.to_string_lossy())?;
    Ok(())
}

/// Step 5: sets each segment's dead bytes (everything but its header, its seal and what its
/// live entries keep alive) and returns the segment table.
fn count_dead_bytes(
    keydir: &KeyDir,
    loaded: Vec<(Arc<Segment>, Ending)>,
) -> BTreeMap<u32, Arc<Segment>> {
    let mut live: HashMap<u32, u64> = HashMap::new();
    for (key, entry) in keydir.iter() {
        *live.entry(entry.segment).or_default() += entry.live_bytes(key.len());
    }
    let seal_len = record::seal_record().len() as u64;
    let mut segments = BTreeMap::new();
    for (segment, ending) in loaded {
        let seal = if matches!(ending, Ending::Sealed) {
            seal_len
        } else {
            0
        };
        let used = segment.file_len().saturating_sub(SEGMENT_HEADER_LEN + seal);
        let live = live.get(&segment.id()).copied().unwrap_or(0);
        segment.add_dead(used.saturating_sub(live));
        segments.insert(segment.id(), segment);
    }
    segments
}

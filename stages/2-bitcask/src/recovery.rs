//! Opening a store: finishing or undoing an interrupted merge, then rebuilding the keydir.
//!
//! 1. **Interrupted merges.** Every commit record (`merge-*.commit`) is a merge that
//!    committed: its outputs still under temporary names are renamed, its inputs still
//!    present are deleted, and the record is removed. Then every `*.merge` and
//!    `*.commit.tmp` file left is debris of a merge that never committed, and is deleted.
//!    See [`crate::merge_commit`] for why this is safe at every point of a crash.
//! 2. **The keydir.** Each segment is loaded from its hint file when it has one (and the
//!    `hint_files` option is on), otherwise read record by record. For each key the record
//!    with the highest sequence number wins, whatever file it is in; a tombstone removes
//!    older puts and is remembered (in a side map) so that an older put read later cannot
//!    bring the key back.
//! 3. **The active segment.** Every segment but one must end with a seal record. The one
//!    without is the segment that was active: a torn tail there (a write cut short by a
//!    crash) is cut off, and appends continue after it. Its header may be torn too (a power
//!    loss just after it was created): if no valid record follows, it is rewritten. A torn tail or a missing seal in
//!    any other segment, or damage followed by valid records anywhere, is
//!    `Error::Corruption`, and no file is changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use kv_shared::log_reader::{LogTail, read_log};
use kv_shared::{Error, Fs, Result};

use crate::files::FileName;
use crate::hint;
use crate::keydir::{Entry, KeyDir};
use crate::merge_commit::MergeCommit;
use crate::record::{self, Kind, SEGMENT_HEADER_LEN, SegmentKeyLog};
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

/// Builds the keydir from records in any order: the highest sequence number wins.
#[derive(Debug, Default)]
struct Loader {
    keydir: KeyDir,
    /// Newest tombstone sequence number of each deleted key seen so far.
    tombstones: HashMap<Box<[u8]>, u64>,
    max_seq: u64,
}

impl Loader {
    fn apply(&mut self, segment: &Segment, key: Vec<u8>, kind: Kind, entry: Entry) {
        if kind == Kind::Seal {
            return;
        }
        self.max_seq = self.max_seq.max(entry.seq);
        segment.saw_seq(entry.seq);
        match kind {
            Kind::Put => {
                let deleted_later = !self.tombstones.is_empty()
                    && self
                        .tombstones
                        .get(&key[..])
                        .is_some_and(|&t| t > entry.seq);
                if !deleted_later {
                    self.keydir.insert_if_newer(key, entry);
                }
            }
            Kind::Tombstone => {
                if self.keydir.get(&key).is_some_and(|e| e.seq < entry.seq) {
                    self.keydir.remove(&key);
                }
                let t = self
                    .tombstones
                    .entry(key.into_boxed_slice())
                    .or_insert(entry.seq);
                *t = (*t).max(entry.seq);
            }
            Kind::Seal => {}
        }
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
    },
    /// Shorter than a header: created, then the crash came before its header was written.
    NoHeader,
}

/// Finishes committed merges and removes the debris of uncommitted ones.
fn settle_merges(fs: &Fs, dir: &Path, files: &[FileName]) -> Result<()> {
    let mut changed = false;
    for file in files {
        let FileName::Commit(_) = *file else { continue };
        let path = file.path(dir);
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
        fs.remove(&path)?;
        changed = true;
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

/// Loads one segment's data file into `loader`; says how it ended.
fn read_segment(loader: &mut Loader, segment: &Segment) -> Result<Ending> {
    let file = segment.file();
    let len = file.len()?;
    if len < SEGMENT_HEADER_LEN {
        return Ok(Ending::NoHeader);
    }
    let header = file.read_vec_at(0, SEGMENT_HEADER_LEN as usize)?;
    let header_error = match record::decode_segment_header(&header) {
        Ok(id) if id == segment.id() => None,
        Ok(id) => Some(Error::corruption(
            file.path(),
            12,
            format!(
                "header names segment {id}, the file name segment {}",
                segment.id()
            ),
        )),
        Err(e) => Some(e.into_corruption(file.path(), 0)),
    };
    if let Some(error) = header_error {
        // A power loss right after a segment was created can leave its size on disk but not
        // its bytes. That is a torn header if nothing valid follows; if a valid record does,
        // the header was damaged after it was written.
        let mut follows = false;
        let scan = read_log::<SegmentKeyLog>(file, SEGMENT_HEADER_LEN, |_| {
            follows = true;
            Err(Error::InvalidArgument(
                "stop at the first valid record".into(),
            ))
        });
        if follows || matches!(scan, Err(Error::Corruption { .. })) {
            return Err(error);
        }
        return Ok(Ending::NoHeader);
    }
    let mut sealed = false;
    let end = read_log::<SegmentKeyLog>(file, SEGMENT_HEADER_LEN, |r| {
        if sealed {
            return Err(Error::corruption(
                file.path(),
                r.offset,
                "a record follows the seal record",
            ));
        }
        let rec = r.record;
        sealed = rec.kind == Kind::Seal;
        let entry = Entry {
            seq: rec.seq,
            expiry: rec.expiry,
            offset: r.offset,
            len: r.len as u32,
            segment: segment.id(),
        };
        loader.apply(segment, rec.key, rec.kind, entry);
        Ok(())
    })?;
    Ok(match (sealed, end.tail) {
        (true, LogTail::Clean) => Ending::Sealed,
        (true, LogTail::Torn { offset, detail, .. }) => {
            return Err(Error::corruption(
                file.path(),
                offset,
                format!("bytes after the seal record: {detail}"),
            ));
        }
        (false, LogTail::Clean) => Ending::Open {
            valid_len: end.valid_len,
            torn: None,
        },
        (false, LogTail::Torn { detail, .. }) => Ending::Open {
            valid_len: end.valid_len,
            torn: Some(detail),
        },
    })
}

/// Opens the store's files in `dir` (already locked), recovering from any crash.
///
/// # Errors
/// [`Error::Corruption`] for damage that is not a torn tail of the active segment (no file
/// is changed then); [`Error::Io`].
pub fn recover(fs: &Fs, dir: &Path, use_hints: bool) -> Result<Recovered> {
    let files: Vec<FileName> = fs
        .list(dir)?
        .iter()
        .filter_map(|n| FileName::parse(n))
        .collect();
    let mut max_id = files.iter().map(|f| f.id()).max().unwrap_or(0);
    settle_merges(fs, dir, &files)?;

    let files: Vec<FileName> = fs
        .list(dir)?
        .iter()
        .filter_map(|n| FileName::parse(n))
        .collect();
    let hints: BTreeSet<u32> = files
        .iter()
        .filter_map(|f| {
            if let FileName::Hint(id) = f {
                Some(*id)
            } else {
                None
            }
        })
        .collect();
    let mut loader = Loader::default();
    let (mut hint_files_read, mut hint_files_rejected) = (0, 0);
    let mut loaded: Vec<(Arc<Segment>, Ending)> = Vec::new();
    for file in &files {
        let FileName::Segment(id) = *file else {
            continue;
        };
        let handle = fs.open(&file.path(dir))?;
        let len = handle.len()?;
        let segment = Arc::new(Segment::new(fs, dir.to_path_buf(), id, handle));
        segment.set_file_len(len);
        let has_hint = hints.contains(&id);
        let mut ending = None;
        if has_hint {
            segment.set_has_hint();
        }
        if has_hint && use_hints {
            let hint_file = fs.open(&FileName::Hint(id).path(dir))?;
            let seg = &segment;
            let read = hint::read_hint(&hint_file, id, len, |e| {
                let kind = e.kind.unwrap_or(Kind::Seal);
                let entry = Entry {
                    seq: e.seq,
                    expiry: e.expiry,
                    offset: e.offset,
                    len: e.len,
                    segment: id,
                };
                loader.apply(seg, e.key, kind, entry);
            })?;
            match read {
                Ok(_) => {
                    hint_files_read += 1;
                    ending = Some(Ending::Sealed);
                }
                Err(_why) => hint_files_rejected += 1,
            }
        }
        let ending = match ending {
            Some(e) => e,
            None => read_segment(&mut loader, &segment)?,
        };
        loaded.push((segment, ending));
    }

    // Exactly one segment may lack its seal: the one that was active. Merge outputs (the
    // segments with hint files) are always sealed; the others were started in id order, so
    // the active one is the newest.
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
    let mut torn_bytes = 0;
    let active = match open.first() {
        Some(&i) => {
            let (segment, ending) = &loaded[i];
            let file = segment.file();
            match ending {
                Ending::NoHeader => {
                    torn_bytes = file.len()?;
                    file.truncate(0)?;
                    file.append(&record::encode_segment_header(segment.id()))?;
                    file.sync()?;
                    segment.set_file_len(SEGMENT_HEADER_LEN);
                }
                Ending::Open { valid_len, torn } => {
                    if torn.is_some() {
                        torn_bytes = file.len()? - valid_len;
                        file.truncate(*valid_len)?;
                        file.sync()?;
                    }
                    segment.set_file_len(*valid_len);
                }
                Ending::Sealed => {}
            }
            segment.clone()
        }
        None => {
            max_id += 1;
            Arc::new(Segment::create(fs, dir.to_path_buf(), max_id)?)
        }
    };

    // Dead bytes: everything in a segment but its header, its seal and its live records.
    let mut live: HashMap<u32, u64> = HashMap::new();
    for (_, entry) in loader.keydir.iter() {
        *live.entry(entry.segment).or_default() += entry.len as u64;
    }
    let seal_len = record::seal_record().len() as u64;
    let mut segments = BTreeMap::new();
    for (segment, ending) in loaded {
        let overhead = SEGMENT_HEADER_LEN
            + if matches!(ending, Ending::Sealed) {
                seal_len
            } else {
                0
            };
        let used = segment.file_len().saturating_sub(overhead);
        segment.add_dead(used.saturating_sub(live.get(&segment.id()).copied().unwrap_or(0)));
        segments.insert(segment.id(), segment);
    }
    segments.insert(active.id(), active.clone());
    max_id = max_id.max(segments.keys().copied().max().unwrap_or(0));
    Ok(Recovered {
        keydir: loader.keydir,
        segments,
        active,
        next_seq: loader.max_seq + 1,
        next_id: max_id + 1,
        hint_files_read,
        hint_files_rejected,
        torn_bytes,
    })
}

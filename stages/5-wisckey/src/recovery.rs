//! Opening a store: the value log first, then the tree, then making the two agree.
//!
//! A wisckey store is two logs that a crash can cut at different places: the value log
//! (every write's records, [`crate::value_log`]) and the tree's write-ahead log (every
//! write's keys and pointers, [`lsm::wal`]). A write appends to the value log, then to the
//! tree, so the tree is never *ahead* of the value log while the machine runs. But the
//! operating system writes each file's unsynced pages back when it likes: after a **power
//! loss** the tree's WAL may have kept a record whose value the value log lost. (After a
//! mere kill of the process both files keep everything they were handed.)
//!
//! [`crate::Wisckey`]'s `open` runs these steps, in order:
//!
//! 1. **Read the value log** ([`recover_vlog`]). Every segment but the newest was sealed
//!    and synced before the next one was created, so it must start with its header and end
//!    with its seal record; one that does not lost its end, which no crash explains:
//!    [`kv_shared::Error::Corruption`]. (Their records are not read: their checksums are
//!    checked by every read of a value and by the garbage collector.) The newest segment
//!    is read to its end with [`kv_shared::log_reader::read_newest_log`]: everything from
//!    its first bad record on is its **unsynced tail** (a power loss may leave a hole
//!    before valid records; then the whole file is first copied into `vlog/lost/`). The
//!    tail is only noted here, not cut yet (step 5). The newest segment is then fsynced:
//!    after a kill its bytes are all there, but only in the OS's cache, and the tree is
//!    about to make entries pointing at them durable.
//! 2. **Trim the tree's newest WAL** ([`trim_tree_wal`]). Its records are read in order; the
//!    first one holding a pointer the value log cannot serve (into the unsynced tail of the
//!    newest segment, past the end of another, or into a segment newer than all) is a write
//!    whose value the power loss took, and every record after it is a later write: the WAL
//!    is cut there, so the tree keeps a **prefix** of the writes, as the value log does.
//!    Only the newest WAL needs this: every older one was synced by a freeze, and the
//!    tree's barrier synced the value log first ([`lsm::barrier`]).
//! 3. **Open the tree** ([`lsm::LsmTree::open_with_barrier`]): stage 4's recovery replays
//!    the (trimmed) WAL into tables.
//! 4. **Forget lost values** ([`forget_lost_values`]), only when step 1 found an unsynced
//!    tail: after a power loss, step 2 left no pointer into it, but damage to the value
//!    log (a cut or a flipped byte in its newest segment) can have taken values whose
//!    pointers are in tables. Those keys are deleted from the tree, and counted
//!    (`recovery_lost_values`): their values are gone, and a key that reads as absent is
//!    better than one that points where new records will be written. The tree is synced.
//! 5. **Cut the tail and start a new segment** ([`crate::value_log::ValueLog::finish_recovery`]):
//!    the newest segment is cut to its valid end and sealed, and a new segment takes the
//!    appends, so that no new record is ever written at an offset an old pointer named.
//!    A newest segment that was sealed already (a crash between a seal and the next
//!    segment's creation) gets a new segment too.
//!
//! A crash at any step leaves what the next open handles the same way: steps 2 and 4 are
//! done (and synced) before step 5 cuts anything, so a second open still finds the tail.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bitcask::record::{self, Kind, RecordKeys, SEGMENT_HEADER_LEN, SegmentKeyLog};
use kv_shared::framing::DecodeError;
use kv_shared::log_reader::{LogFormat, LogTail, read_newest_log};
use kv_shared::repair::copy_to_lost;
use kv_shared::{Engine, Error, FileRef, Fs, Result, WriteBatch};
use lsm::LsmTree;
use sstable::frame::{self, FRAME_HEADER_LEN};
use sstable::wal::Wal;

use crate::file_names;
use crate::value_log::{Opened, Segment, seal_len};
use crate::value_pointer::{self, TreeValue, ValuePointer};

/// Where each segment's records end, as recovery found them: what a pointer may name.
#[derive(Debug, Clone, Default)]
pub struct Ends {
    /// The newest segment's id.
    pub newest: u32,
    /// Per segment, the offset just past its last record (its seal excluded).
    pub ends: BTreeMap<u32, u64>,
}

impl Ends {
    /// True when `p` names bytes the value log does not have: past the end of its
    /// segment's records, or in a segment newer than every one there is. (A pointer into
    /// an older segment that is gone names a segment the garbage collector deleted after
    /// newer pointers replaced it: not a loss.)
    pub fn is_lost(&self, p: &ValuePointer) -> bool {
        p.segment > self.newest || self.ends.get(&p.segment).is_some_and(|&end| p.end() > end)
    }

    /// True when the value log holds the bytes `p` names: its segment is there, and the
    /// record ends before the segment's records do.
    pub fn holds(&self, p: &ValuePointer) -> bool {
        self.ends.get(&p.segment).is_some_and(|&end| p.end() <= end)
    }
}

/// What reading the value log found (step 1).
#[derive(Debug)]
pub struct VlogFound {
    /// The segments, for [`crate::value_log::ValueLog::new`].
    pub opened: Opened,
    /// Where each segment's records end.
    pub ends: Ends,
    /// The newest segment has an unsynced tail (or a damaged header) to cut at step 5.
    pub torn: bool,
    /// Bytes of that tail.
    pub torn_bytes: u64,
}

/// How the newest segment ended.
#[derive(Debug)]
struct Newest {
    /// The offset just past its last valid record (0 for a damaged header).
    valid_len: u64,
    /// Its last valid record is a seal.
    sealed: bool,
    /// It has an unsynced tail (or a damaged header) to cut.
    torn: bool,
    /// The highest write batch number among its valid records (0 for none).
    last_batch: u64,
}

/// Step 1: opens every segment of the value log in `vlog`, checking the sealed ones' ends
/// and reading the newest to its valid end; creates the first segment of a new store.
///
/// # Errors
/// [`Error::Corruption`] naming a sealed segment that lost its header or its seal;
/// [`Error::Io`].
pub fn recover_vlog(fs: &Fs, vlog: &Path) -> Result<VlogFound> {
    let ids = file_names::segment_ids(fs, vlog)?;
    let Some((&newest, sealed)) = ids.split_last() else {
        return first_segment(fs, vlog);
    };
    let mut segments = BTreeMap::new();
    let mut ends = Ends {
        newest,
        ends: BTreeMap::new(),
    };
    for &id in sealed {
        let file = fs.open(&file_names::segment(vlog, id))?;
        let len = check_sealed(&file, id)?;
        ends.ends.insert(id, len - seal_len());
        segments.insert(id, Arc::new(Segment::new(fs, id, file, len)));
    }
    let file = fs.open(&file_names::segment(vlog, newest))?;
    let found = read_newest(fs, vlog, &file, newest)?;
    // Only the newest segment can hold bytes handed to the OS but not synced.
    file.sync()?;
    let end = found.valid_len - if found.sealed { seal_len() } else { 0 };
    ends.ends.insert(newest, end.max(SEGMENT_HEADER_LEN));
    let len = found.valid_len.max(SEGMENT_HEADER_LEN);
    let torn_bytes = if found.torn {
        file.len()? - found.valid_len
    } else {
        0
    };
    let active = Arc::new(Segment::new(fs, newest, file, len));
    segments.insert(newest, active.clone());
    let opened = Opened {
        segments,
        active,
        sealed: found.sealed,
        cut: found.torn.then_some(found.valid_len),
        next_batch: found.last_batch + 1,
    };
    Ok(VlogFound {
        opened,
        ends,
        torn: found.torn,
        torn_bytes,
    })
}

/// The value log of a new store: segment 1, synced, its entry too.
fn first_segment(fs: &Fs, vlog: &Path) -> Result<VlogFound> {
    let segment = Segment::create(fs, vlog, 1)?;
    segment.file().sync()?;
    fs.sync_dir(vlog)?;
    let active = Arc::new(segment);
    let ends = Ends {
        newest: 1,
        ends: BTreeMap::from([(1, SEGMENT_HEADER_LEN)]),
    };
    let opened = Opened {
        segments: BTreeMap::from([(1, active.clone())]),
        active,
        sealed: false,
        cut: None,
        next_batch: 1,
    };
    Ok(VlogFound {
        opened,
        ends,
        torn: false,
        torn_bytes: 0,
    })
}

/// Checks that the sealed segment `id` in `file` has its header and ends with its seal;
/// returns its length.
fn check_sealed(file: &FileRef, id: u32) -> Result<u64> {
    let len = file.len()?;
    let path = file.path();
    let seal = record::seal_record();
    if len < SEGMENT_HEADER_LEN + seal.len() as u64 {
        return Err(Error::corruption(
            path,
            len,
            "a sealed segment shorter than a header and a seal: it lost its end",
        ));
    }
    let header = file.read_vec_at(0, SEGMENT_HEADER_LEN as usize)?;
    match record::decode_segment_header(&header) {
        Ok(found) if found == id => {}
        Ok(found) => {
            return Err(Error::corruption(
                path,
                12,
                format!("the header names segment {found}, the file name segment {id}"),
            ));
        }
        Err(e) => return Err(e.into_corruption(path, 0)),
    }
    let at = len - seal.len() as u64;
    if file.read_vec_at(at, seal.len())? != seal {
        return Err(Error::corruption(
            path,
            at,
            "a segment older than the newest must end with a seal record: it lost its end",
        ));
    }
    Ok(len)
}

/// Reads the newest segment `id` (in `file`, in `vlog`) to its valid end: see step 1. A
/// damaged header makes the whole segment its unsynced tail (the header is written before
/// any record, so a header that did not reach the disk means no record did either).
fn read_newest(fs: &Fs, vlog: &Path, file: &FileRef, id: u32) -> Result<Newest> {
    let len = file.len()?;
    let header_ok = len >= SEGMENT_HEADER_LEN
        && record::decode_segment_header(&file.read_vec_at(0, SEGMENT_HEADER_LEN as usize)?)
            .is_ok_and(|found| found == id);
    if !header_ok {
        if len > SEGMENT_HEADER_LEN && holds_a_record_after_header(file) {
            copy_segment_to_lost(fs, vlog, id)?;
        }
        // Even an empty file is cut: its header is rewritten before anything is appended.
        return Ok(Newest {
            valid_len: 0,
            sealed: false,
            torn: true,
            last_batch: 0,
        });
    }
    let (mut sealed, mut last_batch) = (false, 0);
    let end = read_newest_log::<SegmentKeyLog>(file, SEGMENT_HEADER_LEN, |r| {
        if sealed {
            return Err(Error::corruption(
                file.path(),
                r.offset,
                "a record follows the seal record",
            ));
        }
        if let RecordKeys::One(k) = &r.record {
            sealed = k.kind == Kind::Seal;
            last_batch = last_batch.max(k.seq);
        }
        Ok(())
    })?;
    if let LogTail::Torn {
        valid_after: Some(_),
        ..
    } = end.tail
    {
        copy_segment_to_lost(fs, vlog, id)?;
    }
    Ok(Newest {
        valid_len: end.valid_len,
        sealed,
        torn: end.tail != LogTail::Clean,
        last_batch,
    })
}

/// True when a valid record follows where the header should end.
fn holds_a_record_after_header(file: &FileRef) -> bool {
    let mut found = false;
    let _ = read_newest_log::<SegmentKeyLog>(file, SEGMENT_HEADER_LEN, |_| {
        found = true;
        Err(Error::InvalidArgument("stop at the first record".into()))
    });
    found
}

/// Copies segment `id` of `vlog` whole into `vlog/lost/`.
fn copy_segment_to_lost(fs: &Fs, vlog: &Path, id: u32) -> Result<()> {
    let name = bitcask::file_names::FileName::Segment(id).name();
    copy_to_lost(fs, vlog, &name)?;
    Ok(())
}

/// The framing of the tree's WAL records ([`sstable::frame`]), for the log reader.
struct Frames;

impl LogFormat for Frames {
    type Record = Vec<u8>;
    const HEADER_LEN: usize = FRAME_HEADER_LEN;

    fn record_len(header: &[u8]) -> std::result::Result<usize, DecodeError> {
        frame::frame_len(header, sstable::wal::MAX_RECORD_LEN)
    }

    fn decode(record: &[u8]) -> std::result::Result<Vec<u8>, DecodeError> {
        frame::open(record).map(<[u8]>::to_vec)
    }
}

/// Step 2: cuts the tree's newest WAL (in `tree`) before its first record holding a
/// pointer that `ends` says is lost ([`find_cut`]); returns how many records it cut off. A
/// WAL with a damaged header, or damage before any such record, is left for the tree's
/// recovery.
///
/// # Errors
/// [`Error::Io`].
pub fn trim_tree_wal(fs: &Fs, tree: &Path, ends: &Ends) -> Result<u64> {
    let Some(name) = newest_wal(fs, tree)? else {
        return Ok(0);
    };
    let path = tree.join(&name);
    if !Wal::has_whole_header(fs, &path, lsm::wal::KIND)? {
        return Ok(0);
    }
    let file = fs.open(&path)?;
    let Some(cut) = find_cut(&file, ends)? else {
        return Ok(0);
    };
    if cut.valid_after_damage {
        copy_to_lost(fs, tree, &name)?;
    }
    file.truncate(cut.offset)?;
    file.sync()?;
    Ok(cut.records)
}

/// Where step 2 cuts the tree's newest WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCut {
    /// The offset of the first record holding a lost pointer: the WAL's new length.
    pub offset: u64,
    /// The records cut off: that one and every valid record after it.
    pub records: u64,
    /// The WAL has damage followed by valid records (a hole a power loss can leave): it is
    /// copied whole into `tree/lost/` before the cut, as the tree's recovery would copy it.
    pub valid_after_damage: bool,
}

// Exercise 5.3: find where the tree's WAL must be cut. Read: chapter 5, "Invariants and recovery".
// Tests: recovery::a_tree_wal_ahead_of_the_value_log_is_cut_back_to_a_prefix
// Tests: lib::recovery::tests::a_wal_is_cut_at_its_first_lost_pointer
// Tests: conformance::conformance::delete_and_recreate
/// Reads the tree WAL in `file` record by record ([`read_newest_log`] with the WAL's
/// framing, from the end of its header) and finds its first record whose write batch puts
/// a pointer `ends` says is lost ([`Ends::is_lost`]); `None` when no record does. A record
/// that does not decode as a batch is left for the tree's recovery to judge: it is not a
/// reason to cut.
///
/// # Errors
/// [`Error::Io`].
pub fn find_cut(file: &FileRef, ends: &Ends) -> Result<Option<WalCut>> {
    let points_at_lost = |payload: &[u8]| {
        let Ok(batch) = lsm::wal::decode(payload) else {
            return false;
        };
        batch.ops().any(|op| {
            let value = op.value.map(value_pointer::decode);
            matches!(value, Some(Ok(TreeValue::Pointer(p))) if ends.is_lost(&p))
        })
    };
    let (mut cut, mut records) = (None, 0);
    let end = read_newest_log::<Frames>(file, lsm::wal::KIND.header_len(), |r| {
        if cut.is_none() && points_at_lost(&r.record) {
            cut = Some(r.offset);
        }
        records += u64::from(cut.is_some());
        Ok(())
    })?;
    let valid_after_damage = matches!(
        end.tail,
        LogTail::Torn {
            valid_after: Some(_),
            ..
        }
    );
    Ok(cut.map(|offset| WalCut {
        offset,
        records,
        valid_after_damage,
    }))
}

/// The name of the newest WAL in `tree` with any byte past its header (the last one
/// written, the one a power loss may have torn); `None` for a tree with none.
fn newest_wal(fs: &Fs, tree: &Path) -> Result<Option<String>> {
    let names = match fs.file_system().list(tree) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(tree, e)),
    };
    let mut wals: Vec<(u64, String)> = names
        .into_iter()
        .filter_map(|name| match lsm::file_names::parse(&name) {
            lsm::file_names::FileKind::Wal(n) => Some((n, name)),
            _ => None,
        })
        .collect();
    wals.sort_unstable();
    for (_, name) in wals.into_iter().rev() {
        if Wal::written_past_header(fs, &tree.join(&name), lsm::wal::KIND)? {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Deletes at most this many keys per write batch in [`forget_lost_values`].
const FORGET_BATCH: usize = 1000;

/// Step 4: deletes from `tree` every key whose pointer names bytes the value log does not
/// hold ([`Ends::holds`]), then syncs the tree; returns how many. Besides the pointers into
/// the cut tail, that takes pointers into a segment that is gone: a damaged tail taken for
/// an unsynced one can make step 2 cut a tree batch that was durable, one that had moved a
/// value out of a segment the garbage collector then deleted.
///
/// # Errors
/// [`Error::Corruption`] from reading the tree; [`Error::Io`].
pub fn forget_lost_values(tree: &LsmTree, ends: &Ends) -> Result<u64> {
    let mut lost = Vec::new();
    {
        let mut cursor = tree.cursor()?;
        cursor.seek_to_first()?;
        while cursor.valid() {
            if let Ok(TreeValue::Pointer(p)) = value_pointer::decode(cursor.value())
                && !ends.holds(&p)
            {
                lost.push(cursor.key().to_vec());
            }
            cursor.next()?;
        }
    }
    for chunk in lost.chunks(FORGET_BATCH) {
        let mut batch = WriteBatch::new();
        for key in chunk {
            batch.delete(key)?;
        }
        tree.write(&batch)?;
    }
    if !lost.is_empty() {
        tree.sync()?;
    }
    Ok(lost.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_pointers() {
        let ends = Ends {
            newest: 5,
            ends: BTreeMap::from([(3, 1000), (5, 200)]),
        };
        let p = |segment, offset, len| ValuePointer {
            segment,
            offset,
            len,
        };
        assert!(!ends.is_lost(&p(3, 900, 100)));
        assert!(ends.is_lost(&p(3, 901, 100)), "past a sealed segment's end");
        assert!(!ends.is_lost(&p(5, 100, 100)));
        assert!(ends.is_lost(&p(5, 150, 60)), "in the newest segment's tail");
        assert!(ends.is_lost(&p(6, 16, 30)), "a segment newer than all");
        assert!(!ends.is_lost(&p(2, 16, 30)), "a collected segment");
    }

    #[test]
    fn a_wal_is_cut_at_its_first_lost_pointer() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let path = tmp.path().join("000003.wal");
        let wal = Wal::create(&fs, &path, lsm::wal::KIND).unwrap();
        let ends = Ends {
            newest: 2,
            ends: BTreeMap::from([(1, 5000), (2, 300)]),
        };
        let pointer = |segment, offset| {
            let p = ValuePointer {
                segment,
                offset,
                len: 40,
            };
            p.encode().to_vec()
        };
        let records: [(&[u8], Vec<u8>); 5] = [
            (b"a", value_pointer::encode_inline(b"small")),
            (b"b", pointer(1, 4000)),
            (b"c", pointer(2, 280)), // ends at 320, past the newest segment's 300
            (b"d", pointer(1, 16)),
            (b"e", pointer(3, 16)), // a segment newer than all
        ];
        let mut offsets = Vec::new();
        for (seq, (key, value)) in (1..).zip(&records) {
            offsets.push(wal.size());
            wal.append(&lsm::wal::encode(seq, key, Some(value)))
                .unwrap();
        }
        let file = fs.open(&path).unwrap();
        let cut = find_cut(&file, &ends).unwrap();
        let expected = WalCut {
            offset: offsets[2],
            records: 3,
            valid_after_damage: false,
        };
        assert_eq!(cut, Some(expected));
        // A WAL whose every pointer the value log holds, or whose bad record is no batch,
        // is not cut.
        let path = tmp.path().join("000004.wal");
        let wal = Wal::create(&fs, &path, lsm::wal::KIND).unwrap();
        wal.append(&lsm::wal::encode(1, b"b", Some(&pointer(1, 4000))))
            .unwrap();
        wal.append(b"not a write batch").unwrap();
        wal.append(&lsm::wal::encode(3, b"d", Some(&pointer(1, 16))))
            .unwrap();
        assert_eq!(find_cut(&fs.open(&path).unwrap(), &ends).unwrap(), None);
        // Damage after the lost pointer's record, valid records after it: a hole, so the
        // cut says to keep a copy first. Damage before it: the tree's recovery cuts there.
        let original = fs.read_all(&tmp.path().join("000003.wal")).unwrap();
        for (damaged, expected) in [(3, Some((offsets[2], 1, true))), (1, None)] {
            let mut bytes = original.clone();
            bytes[offsets[damaged] as usize + 6] ^= 0x01;
            let holed = tmp.path().join("000005.wal");
            std::fs::write(&holed, &bytes).unwrap();
            let cut = find_cut(&fs.open(&holed).unwrap(), &ends).unwrap();
            let expected = expected.map(|(offset, records, valid_after_damage)| WalCut {
                offset,
                records,
                valid_after_damage,
            });
            assert_eq!(cut, expected, "damage in record {damaged}");
        }
    }
}

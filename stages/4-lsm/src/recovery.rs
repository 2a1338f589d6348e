//! Opening a store: from whatever a crash left on disk to a consistent tree.
//!
//! 1. Read `CURRENT` and replay its manifest ([`crate::manifest::recover`]): the tables of
//!    each level, the log number, the last sequence number, the next file number.
//! 2. Open every table the manifest names. One that is missing, or whose size or checksums
//!    are wrong, is [`kv_shared::Error::Corruption`]: the manifest promised it was durable.
//! 3. Replay, oldest first, every WAL numbered at or above the log number (WALs whose
//!    memtable was not flushed, or whose flush did not reach the manifest) into a memtable,
//!    and flush it to L0 tables. The WAL the log number names must be there, its header
//!    whole (it was synced before any edit named it). Only the **last WAL written** (the
//!    newest holding a record, [`Wal::holds_records`]) can end in a torn write, a write
//!    never acknowledged, which is cut off: every older one was synced before the next took
//!    a write, so it must be whole and hold records ([`Wal::replay_sealed`]), and damage at
//!    its end is [`kv_shared::Error::Corruption`], not a torn tail. (Taking it for one
//!    would lose writes from the middle of history: a read would return an overwritten
//!    value.) Each record is a write batch ([`crate::wal_payload`]), replayed whole: a torn
//!    one fails its CRC and is dropped whole, so a batch is never half applied. Sequence
//!    numbers must run on without a gap from the manifest's last one through every WAL,
//!    which catches an older WAL cut exactly between two records.
//! 4. Start a fresh WAL and a fresh manifest holding a snapshot of the new state, and point
//!    `CURRENT` at it.
//! 5. Only then delete what is no longer referenced: older manifests, replayed WALs, tables
//!    the manifest does not name (*orphans*: outputs of a flush or compaction that crashed
//!    before its edit was recorded), and leftover temporary files.
//!
//! A crash at any point of this leaves the old `CURRENT` (and everything it names) or the
//! new one: the next open simply does the same again.

use std::path::Path;
use std::sync::Arc;

use kv_shared::{Error, Fs, Result};

use crate::block_cache::BlockCache;
use crate::file_names::{self, FileKind};
use crate::flush::flush;
use crate::manifest::{self, Manifest, ManifestState};
use crate::memtable::Memtable;
use crate::options::LsmOptions;
use crate::table::table::Table;
use crate::version::{TableFile, Version};
use crate::wal::Wal;
use crate::wal_payload;
use sstable::frame::FRAME_HEADER_LEN;
use sstable::wal::{WAL_HEADER_LEN, WAL_MAGIC, WAL_VERSION};

/// What recovery hands to the engine.
#[derive(Debug)]
pub struct Recovered {
    /// The tree, tables open.
    pub version: Version,
    /// The new live manifest.
    pub manifest: Manifest,
    /// The fresh WAL for the first memtable.
    pub wal: Wal,
    /// Its number.
    pub wal_number: u64,
    /// The next unused file number.
    pub next_file: u64,
    /// The last sequence number used.
    pub last_seq: u64,
    /// WAL records replayed.
    pub replayed: u64,
    /// Orphan tables deleted.
    pub orphans_deleted: u64,
    /// WALs deleted that were already flushed (a crash came between the manifest edit and
    /// the WAL's deletion).
    pub stale_wals_deleted: u64,
}

/// Recovers the store in `dir` (see the module documentation). The tables it opens read
/// their blocks through `cache`.
///
/// # Errors
/// [`Error::Corruption`] for a damaged or missing file the manifest relies on, or a damaged
/// WAL; [`Error::Io`].
pub fn recover(
    fs: &Fs,
    dir: &Path,
    options: &LsmOptions,
    cache: &Arc<BlockCache>,
) -> Result<Recovered> {
    let names = fs.list(dir)?;
    let kinds: Vec<(String, FileKind)> = names
        .iter()
        .map(|n| (n.clone(), file_names::parse(n)))
        .collect();
    let recovered = manifest::recover(fs, dir)?;
    let has_manifest = recovered.is_some();
    if !has_manifest {
        // `CURRENT` is written before the first write is accepted, so tables without it are
        // damage. Starting empty here would delete every one of them as an orphan.
        if let Some((name, _)) = kinds.iter().find(|(_, k)| matches!(k, FileKind::Table(_))) {
            return Err(Error::corruption(
                dir.join(file_names::CURRENT),
                0,
                format!(
                    "CURRENT is missing, but table {name} exists: refusing to start an empty tree over it"
                ),
            ));
        }
    }
    let (manifest_number, mut state) = recovered.unwrap_or((0, ManifestState::new()));
    let highest = kinds
        .iter()
        .filter_map(|(_, k)| match *k {
            FileKind::Table(n) | FileKind::Wal(n) | FileKind::Manifest(n) => Some(n),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut next_file = state.next_file.max(highest + 1);
    let mut last_seq = state.last_seq;

    // 2. Open the tables the manifest names.
    let mut levels: Vec<Vec<Arc<TableFile>>> = vec![Vec::new(); state.levels.len()];
    for (level, tables) in state.levels.iter().enumerate() {
        for meta in tables.values() {
            let path = dir.join(file_names::table(meta.number));
            let table =
                Table::open(fs, &path, meta.number, cache.clone()).map_err(|e| match e {
                    Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                        Error::corruption(
                            dir.join(file_names::manifest(manifest_number)),
                            0,
                            format!(
                                "the manifest names table {} on L{level}, but {} is missing",
                                meta.number,
                                path.display()
                            ),
                        )
                    }
                    other => other,
                })?;
            let size = fs.open(&path)?.len()?;
            if size != meta.size || table.footer().entries != meta.entries {
                return Err(Error::corruption(
                    &path,
                    0,
                    format!(
                        "table has {size} bytes and {} entries; the manifest says {} and {}",
                        table.footer().entries,
                        meta.size,
                        meta.entries
                    ),
                ));
            }
            levels[level].push(Arc::new(TableFile::new(meta.clone(), table, fs.clone())));
        }
    }

    // 3. Replay the WALs that are not yet flushed, flushing as memtables fill.
    let mut wals: Vec<u64> = kinds
        .iter()
        .filter_map(|(_, k)| match *k {
            FileKind::Wal(n) if n >= state.log_number => Some(n),
            _ => None,
        })
        .collect();
    wals.sort_unstable();
    if has_manifest {
        check_log_wal(fs, dir, manifest_number, state.log_number)?;
    }
    // Only the last WAL written can end in a torn write: each older one was synced before
    // the next took its first write (`freeze`). Find it, newest first, one record each.
    let mut last_written = None;
    for (i, &number) in wals.iter().enumerate().rev() {
        if Wal::holds_records(fs, &dir.join(file_names::wal(number)))? {
            last_written = Some(i);
            break;
        }
    }
    let mut mem = Arc::new(Memtable::new(0, options.memtable_bytes));
    let mut new_tables = Vec::new();
    let mut replayed = 0;
    let mut flush_mem = |mem: &Arc<Memtable>, next_file: &mut u64| -> Result<()> {
        if let Some((meta, _)) = flush(fs, dir, mem, *next_file, options)? {
            *next_file += 1;
            let path = dir.join(file_names::table(meta.number));
            let table = Table::open(fs, &path, meta.number, cache.clone())?;
            new_tables.push(Arc::new(TableFile::new(meta, table, fs.clone())));
        }
        Ok(())
    };
    for (i, &number) in wals.iter().enumerate() {
        let path = dir.join(file_names::wal(number));
        let mut offset = WAL_HEADER_LEN;
        let mut apply = |payload: &[u8]| {
            let at = offset + FRAME_HEADER_LEN as u64;
            offset = at + payload.len() as u64;
            // A record is a whole batch: decoded entirely before any op reaches the memtable.
            let batch = wal_payload::decode(payload).map_err(|e| e.into_corruption(&path, at))?;
            // Sequence numbers run on, one by one, from the manifest's last one through every
            // WAL: a gap is records lost, such as the end of an older WAL cut exactly between
            // two records, which no checksum can see.
            if batch.first_seq != last_seq + 1 {
                return Err(Error::corruption(
                    &path,
                    at,
                    format!(
                        "sequence number {} where {} was due: the records between are missing",
                        batch.first_seq,
                        last_seq + 1
                    ),
                ));
            }
            for (seq, op) in (batch.first_seq..).zip(batch.ops()) {
                mem.insert(op.key, seq, op.value);
            }
            last_seq = batch.last_seq();
            Ok(())
        };
        if last_written.is_some_and(|last| i < last) {
            // Sealed: any damage, even at its end, is corruption, and the file stays as is.
            let records = Wal::replay_sealed(fs, &path, &mut apply)?;
            if records == 0 {
                return Err(Error::corruption(
                    &path,
                    WAL_HEADER_LEN,
                    "holds no record, yet a newer WAL does (a WAL is replaced only once its \
                     memtable holds a write): its records were cut off",
                ));
            }
            replayed += records;
        } else {
            // The last WAL written (a torn tail is cut off), or one after it that holds no
            // record (a torn header, from a crash inside `Wal::create`, is emptied).
            replayed += Wal::replay(fs, &path, &mut apply)?.records;
        }
        if mem.approximate_bytes() >= options.memtable_bytes {
            flush_mem(&mem, &mut next_file)?;
            mem = Arc::new(Memtable::new(0, options.memtable_bytes));
        }
    }
    flush_mem(&mem, &mut next_file)?;
    for t in &new_tables {
        state.levels[0].insert(t.meta.number, t.meta.clone());
        levels[0].push(t.clone());
    }

    // 4. A fresh WAL and a fresh manifest.
    let state_log_number_before = state.log_number;
    let wal_number = next_file;
    let new_manifest = next_file + 1;
    next_file += 2;
    let wal = Wal::create(fs, &dir.join(file_names::wal(wal_number)))?;
    state.log_number = wal_number;
    state.last_seq = last_seq;
    state.next_file = next_file;
    let manifest = Manifest::create(fs, dir, new_manifest, &state)?;

    // 5. Delete what nothing references any more.
    let mut orphans_deleted = 0;
    let mut stale_wals_deleted = 0;
    for (name, kind) in &kinds {
        let obsolete = match *kind {
            FileKind::Table(n) => {
                let orphan = !state.levels.iter().any(|l| l.contains_key(&n));
                orphans_deleted += u64::from(orphan);
                orphan
            }
            FileKind::Wal(n) => {
                stale_wals_deleted += u64::from(n < state_log_number_before);
                n != wal_number
            }
            FileKind::Manifest(n) => n != new_manifest,
            FileKind::Temp => true,
            FileKind::Other => false,
        };
        if obsolete {
            fs.remove_if_exists(&dir.join(name))?;
        }
    }
    fs.sync_dir(dir)?;
    Ok(Recovered {
        version: Version::from_levels(levels),
        manifest,
        wal,
        wal_number,
        next_file,
        last_seq,
        replayed,
        orphans_deleted,
        stale_wals_deleted,
    })
}

/// Checks that the WAL the manifest's log number names (the first one not flushed) is
/// there with a whole header: it was created, synced and its directory entry synced before
/// any manifest edit named it, and it is deleted only after an edit with a higher log number.
/// Missing, it means the manifest lost its last edits (a flush's edit cut off after its WAL
/// was deleted): the flushed writes would be gone while later ones stay.
fn check_log_wal(fs: &Fs, dir: &Path, manifest_number: u64, log_number: u64) -> Result<()> {
    let path = dir.join(file_names::wal(log_number));
    let Some(file) = fs.open_if_exists(&path)? else {
        return Err(Error::corruption(
            dir.join(file_names::manifest(manifest_number)),
            0,
            format!(
                "the manifest's log number names {}, which is missing (edits lost from the \
                 manifest's end?)",
                path.display()
            ),
        ));
    };
    let len = file.len()?.min(WAL_HEADER_LEN);
    let head = file.read_vec_at(0, len as usize)?;
    if len < WAL_HEADER_LEN
        || head[..8] != WAL_MAGIC[..]
        || head[8..12] != WAL_VERSION.to_le_bytes()
    {
        return Err(Error::corruption(
            &path,
            0,
            "the manifest names this WAL, so its header was synced, yet it is not whole",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A store as a run leaves it with two WALs not yet flushed: manifest 3 (log number 1,
    /// no table), WAL 1 with sequence numbers 1 to 5, WAL 2 with 6 and 7. Returns the paths
    /// of the manifest and the two WALs.
    fn build(fs: &Fs, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        fs.create_dir_all(dir).unwrap();
        let wals = [dir.join(file_names::wal(1)), dir.join(file_names::wal(2))];
        let first = Wal::create(fs, &wals[0]).unwrap();
        for seq in 1..=5u64 {
            let key = format!("k{seq}");
            first
                .append(&wal_payload::encode(seq, key.as_bytes(), Some(b"old")))
                .unwrap();
        }
        let second = Wal::create(fs, &wals[1]).unwrap();
        second
            .append(&wal_payload::encode(6, b"k1", Some(b"new")))
            .unwrap();
        second.append(&wal_payload::encode(7, b"k6", None)).unwrap();
        let mut state = ManifestState::new();
        state.log_number = 1;
        state.next_file = 4;
        Manifest::create(fs, dir, 3, &state).unwrap();
        let [w1, w2] = wals;
        (dir.join(file_names::manifest(3)), w1, w2)
    }

    fn options() -> LsmOptions {
        LsmOptions::parse(&kv_shared::Options::new()).unwrap()
    }

    fn no_cache() -> Arc<BlockCache> {
        Arc::new(BlockCache::new(0))
    }

    fn cut(fs: &Fs, path: &Path, len: u64) {
        fs.open(path).unwrap().truncate(len).unwrap();
    }

    /// Opens a store damaged by `damage`; it must be refused as corruption of `blamed`, and
    /// the damaged files left as they were.
    fn refused(damage: impl Fn(&Fs, &Path, &Path, &Path), blamed: usize, what: &str) {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let (manifest, w1, w2) = build(&fs, tmp.path());
        damage(&fs, &manifest, &w1, &w2);
        let files = [&manifest, &w1, &w2];
        let before: Vec<Option<Vec<u8>>> = files.iter().map(|p| std::fs::read(p).ok()).collect();
        match recover(&fs, tmp.path(), &options(), &no_cache()) {
            Err(Error::Corruption { file, .. }) => assert_eq!(&file, files[blamed], "{what}"),
            other => panic!("{what}: expected corruption, got {other:?}"),
        }
        let after: Vec<Option<Vec<u8>>> = files.iter().map(|p| std::fs::read(p).ok()).collect();
        assert_eq!(before, after, "{what}: files changed by a refused open");
    }

    #[test]
    fn only_the_last_wal_written_may_end_torn() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        build(&fs, tmp.path());
        assert_eq!(
            recover(&fs, tmp.path(), &options(), &no_cache())
                .unwrap()
                .replayed,
            7
        );

        // The end of the last WAL written, cut anywhere inside its last record: a torn write.
        let tmp = tempfile::tempdir().unwrap();
        let (_, _, w2) = build(&fs, tmp.path());
        let len = fs.open(&w2).unwrap().len().unwrap();
        cut(&fs, &w2, len - 3);
        let r = recover(&fs, tmp.path(), &options(), &no_cache()).unwrap();
        assert_eq!((r.replayed, r.last_seq), (6, 6));

        // The older WAL was synced before the newer took a write: damage at its end is
        // corruption, whether it cuts a record, falls between two (a sequence gap, blamed
        // on the record after it), or leaves a header alone or nothing at all.
        let last_record =
            (FRAME_HEADER_LEN + wal_payload::encode(5, b"k5", Some(b"old")).len()) as u64;
        for back in 1..last_record {
            refused(
                |fs, _, w1, _| {
                    let len = fs.open(w1).unwrap().len().unwrap();
                    cut(fs, w1, len - back);
                },
                1,
                &format!("older WAL cut {back} bytes short"),
            );
        }
        refused(
            |fs, _, w1, _| {
                let len = fs.open(w1).unwrap().len().unwrap();
                cut(fs, w1, len - last_record);
            },
            2,
            "older WAL cut between two records",
        );
        for len in [0, 5, WAL_HEADER_LEN] {
            refused(
                |fs, _, w1, _| cut(fs, w1, len),
                1,
                &format!("older WAL cut to {len}"),
            );
        }
        refused(
            |fs, _, w1, _| fs.remove(w1).unwrap(),
            0,
            "the WAL the log number names, missing",
        );
    }

    #[test]
    fn a_manifest_without_its_whole_snapshot_is_corruption() {
        let snapshot_end = {
            let tmp = tempfile::tempdir().unwrap();
            let (manifest, _, _) = build(&Fs::default(), tmp.path());
            std::fs::metadata(manifest).unwrap().len()
        };
        for len in [0, 7, crate::record_log::HEADER_LEN, snapshot_end - 1] {
            refused(
                |fs, manifest, _, _| cut(fs, manifest, len),
                0,
                &format!("manifest cut to {len} of {snapshot_end}"),
            );
        }
    }
}

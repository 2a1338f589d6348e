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
//!    newest with any byte past its header, [`Wal::written_past_header`]) can have an
//!    unsynced tail: everything from its first damaged record on, **even with valid
//!    records after it** (a disk writes a file's unsynced pages back in any order, so a
//!    power loss can leave a hole before good records), is cut off by [`Wal::replay`],
//!    which first copies the whole WAL into the store's `lost/` directory when valid
//!    records follow the damage. Every older WAL was synced before the next took a write,
//!    so it must be whole and hold records ([`Wal::replay_sealed`]), and damage anywhere
//!    in it, its end included, is [`kv_shared::Error::Corruption`]. (Taking it for an
//!    unsynced tail would lose writes from the middle of history: a read would return an
//!    overwritten value.) Each record is a write batch ([`crate::wal`]), replayed whole: a
//!    torn one fails its CRC and is dropped whole, so a batch is never half applied. Sequence
//!    numbers must run on without a gap from the manifest's last one through every WAL,
//!    which catches an older WAL cut exactly between two records (the gap shows at the
//!    newer WAL's first record; the error names the end of the older one, which lost them).
//! 4. Start a fresh WAL and a fresh manifest holding a snapshot of the new state, and point
//!    `CURRENT` at it.
//! 5. Only then delete what is no longer referenced: older manifests, replayed WALs, tables
//!    the manifest does not name (*orphans*: outputs of a flush, a compaction or a bulk
//!    load that crashed before its edit was recorded), leftover temporary files, and
//!    whatever a bulk load that crashed left in its scratch directory
//!    ([`crate::ingest`]).
//!
//! A crash at any point of this leaves the old `CURRENT` (and everything it names) or the
//! new one: the next open simply does the same again.
//!
//! [`recover`] is these five steps, each a method of `Recovery` below. Reading the logs
//! (their headers, framing, checksums and torn tails) is [`sstable::wal`]'s: recovery only
//! decides which WAL may end torn and what each record means.

use std::path::Path;
use std::sync::Arc;

use kv_shared::{Error, Fs, Result};
use sstable::wal::Record;

use crate::block_cache::BlockCache;
use crate::file_names::{self, FileKind};
use crate::flush::flush;
use crate::ingest;
use crate::manifest::{self, Manifest, ManifestState};
use crate::memtable::Memtable;
use crate::options::LsmOptions;
use crate::table::Table;
use crate::version::{TableFile, Version};
use crate::version_edit::TableMeta;
use crate::wal::{self, Wal};

/// How the error of a gap in the sequence numbers starts.
const GAP: &str = "sequence gap";

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
    let r = Recovery {
        fs,
        dir,
        options,
        cache,
        files: list_files(fs, dir)?,
    };
    // 1 and 2: the manifest, and the tables it names.
    let (manifest_number, mut state) = r.read_manifest()?;
    let mut levels = r.open_tables(&state, manifest_number.unwrap_or(0))?;
    // 3: the WALs not yet flushed, into new L0 tables.
    let wals = r.wals_to_replay(manifest_number, state.log_number)?;
    let mut next_file = state.next_file.max(r.highest_number() + 1);
    let replayed = r.replay_wals(&wals, state.last_seq, &mut next_file)?;
    for t in &replayed.tables {
        state.levels[0].insert(t.meta.number, t.meta.clone());
        levels[0].push(t.clone());
    }
    // 4: a fresh WAL and manifest; 5: what nothing references any more goes.
    let stale_log_number = state.log_number;
    state.last_seq = replayed.last_seq;
    let fresh = r.start_fresh(&mut state, &mut next_file)?;
    let (orphans_deleted, stale_wals_deleted) =
        r.delete_obsolete(&state, &fresh, stale_log_number)?;
    Ok(Recovered {
        version: Version::from_levels(levels),
        manifest: fresh.manifest,
        wal: fresh.wal,
        wal_number: fresh.wal_number,
        next_file,
        last_seq: replayed.last_seq,
        replayed: replayed.records,
        orphans_deleted,
        stale_wals_deleted,
    })
}

/// Every file of `dir`, with what it is.
fn list_files(fs: &Fs, dir: &Path) -> Result<Vec<(String, FileKind)>> {
    let names = fs.list(dir)?;
    Ok(names
        .into_iter()
        .map(|name| {
            let kind = file_names::parse(&name);
            (name, kind)
        })
        .collect())
}

/// One open's recovery: where, with what, and the files it found.
struct Recovery<'a> {
    fs: &'a Fs,
    dir: &'a Path,
    options: &'a LsmOptions,
    cache: &'a Arc<BlockCache>,
    files: Vec<(String, FileKind)>,
}

/// What replaying the WALs gave.
struct Replayed {
    /// The L0 tables their writes were flushed to.
    tables: Vec<Arc<TableFile>>,
    /// The last sequence number replayed (the manifest's, when there was nothing).
    last_seq: u64,
    /// Records replayed.
    records: u64,
}

/// The fresh WAL and manifest the store goes on with.
struct Fresh {
    wal: Wal,
    wal_number: u64,
    manifest: Manifest,
    manifest_number: u64,
}

impl Recovery<'_> {
    /// Step 1: the manifest `CURRENT` names, replayed, and its number; an empty tree (and no
    /// number) for a store that never had one.
    fn read_manifest(&self) -> Result<(Option<u64>, ManifestState)> {
        if let Some((number, state)) = manifest::recover(self.fs, self.dir)? {
            return Ok((Some(number), state));
        }
        // `CURRENT` is written before the first write is accepted, so tables without it are
        // damage. Starting empty here would delete every one of them as an orphan.
        let table = self
            .files
            .iter()
            .find(|(_, kind)| matches!(kind, FileKind::Table(_)));
        if let Some((name, _)) = table {
            return Err(Error::corruption(
                self.dir.join(file_names::CURRENT),
                0,
                format!(
                    "CURRENT is missing, but table {name} exists: refusing to start an empty \
                     tree over it"
                ),
            ));
        }
        Ok((None, ManifestState::new()))
    }

    /// The highest file number in use.
    fn highest_number(&self) -> u64 {
        let numbers = self.files.iter().filter_map(|(_, kind)| match *kind {
            FileKind::Table(n) | FileKind::Wal(n) | FileKind::Manifest(n) => Some(n),
            FileKind::Temp | FileKind::Other => None,
        });
        numbers.max().unwrap_or(0)
    }

    /// Step 2: every table the manifest (number `manifest_number`) names, open, per level.
    fn open_tables(
        &self,
        state: &ManifestState,
        manifest_number: u64,
    ) -> Result<Vec<Vec<Arc<TableFile>>>> {
        let mut levels = vec![Vec::new(); state.levels.len()];
        for (level, tables) in state.levels.iter().enumerate() {
            for meta in tables.values() {
                let table = self.open_named_table(meta, level, manifest_number)?;
                levels[level].push(table);
            }
        }
        Ok(levels)
    }

    /// The table `meta` describes on `level`, open; a missing table, or one whose size or
    /// entry count is not the manifest's, is corruption.
    fn open_named_table(
        &self,
        meta: &TableMeta,
        level: usize,
        manifest_number: u64,
    ) -> Result<Arc<TableFile>> {
        let path = self.dir.join(file_names::table(meta.number));
        let table =
            Table::open(self.fs, &path, meta.number, self.cache.clone()).map_err(|e| match e {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    Error::corruption(
                        self.dir.join(file_names::manifest(manifest_number)),
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
        let size = self.fs.open(&path)?.len()?;
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
        Ok(Arc::new(TableFile::new(
            meta.clone(),
            table,
            self.fs.clone(),
        )))
    }

    /// The WALs to replay, oldest first: every one numbered at or above the log number.
    /// With a manifest, the one the log number names must be there, its header whole.
    fn wals_to_replay(&self, manifest_number: Option<u64>, log_number: u64) -> Result<Vec<u64>> {
        let mut wals: Vec<u64> = self
            .files
            .iter()
            .filter_map(|(_, kind)| match *kind {
                FileKind::Wal(n) if n >= log_number => Some(n),
                _ => None,
            })
            .collect();
        wals.sort_unstable();
        if let Some(manifest_number) = manifest_number {
            self.check_log_wal(manifest_number, log_number)?;
        }
        Ok(wals)
    }

    /// Checks that the WAL the manifest's log number names (the first one not flushed) is
    /// there with a whole header: it was created, synced and its directory entry synced
    /// before any manifest edit named it, and it is deleted only after an edit with a higher
    /// log number. Missing, it means the manifest lost its last edits (a flush's edit cut off
    /// after its WAL was deleted): the flushed writes would be gone while later ones stay.
    fn check_log_wal(&self, manifest_number: u64, log_number: u64) -> Result<()> {
        let path = self.dir.join(file_names::wal(log_number));
        if self.fs.open_if_exists(&path)?.is_none() {
            return Err(Error::corruption(
                self.dir.join(file_names::manifest(manifest_number)),
                0,
                format!(
                    "the manifest's log number names {}, which is missing (edits lost from \
                     the manifest's end?)",
                    path.display()
                ),
            ));
        }
        if !Wal::has_whole_header(self.fs, &path, wal::KIND)? {
            return Err(Error::corruption(
                &path,
                0,
                "the manifest names this WAL, so its header was synced, yet it is not whole",
            ));
        }
        Ok(())
    }

    /// Of `wals`, the index of the last one written: the newest with any byte past its
    /// header (its first record may be the one a power loss lost), the only one a crash can
    /// have left with an unsynced tail (each older one was synced before the next took its
    /// first write). Newest first, by length.
    fn last_written(&self, wals: &[u64]) -> Result<Option<usize>> {
        for (i, &number) in wals.iter().enumerate().rev() {
            let path = self.dir.join(file_names::wal(number));
            if Wal::written_past_header(self.fs, &path, wal::KIND)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// Step 3: replays `wals` in order into memtables, starting after sequence number
    /// `last_seq`, and flushes each memtable that fills, and the last, to an L0 table
    /// (numbered from `next_file` on).
    fn replay_wals(&self, wals: &[u64], last_seq: u64, next_file: &mut u64) -> Result<Replayed> {
        let last_written = self.last_written(wals)?;
        let mut replayed = Replayed {
            tables: Vec::new(),
            last_seq,
            records: 0,
        };
        let mut mem = self.new_memtable();
        for (i, &number) in wals.iter().enumerate() {
            let sealed = last_written.is_some_and(|last| i < last);
            let previous = i.checked_sub(1).map(|p| wals[p]);
            replayed.records += self
                .replay_wal(number, sealed, &mem, &mut replayed.last_seq)
                .map_err(|e| self.blame_gap_on(previous, e))?;
            if mem.approximate_bytes() >= self.options.memtable_bytes {
                replayed
                    .tables
                    .extend(self.flush_replayed(&mem, next_file)?);
                mem = self.new_memtable();
            }
        }
        replayed
            .tables
            .extend(self.flush_replayed(&mem, next_file)?);
        Ok(replayed)
    }

    /// A sequence gap at the first record of a WAL means the WAL before it, `previous`,
    /// lost its last records (a file loses its end, not its start): the error `e` of
    /// replaying the WAL is rewritten to name the end of `previous`, where the missing
    /// records were, so that whoever repairs the store looks at the damaged file.
    fn blame_gap_on(&self, previous: Option<u64>, e: Error) -> Error {
        let Some(previous) = previous else {
            return e;
        };
        let Error::Corruption { offset, detail, .. } = &e else {
            return e;
        };
        let first_record = wal::KIND.header_len() + sstable::frame::FRAME_HEADER_LEN as u64;
        if *offset != first_record || !detail.starts_with(GAP) {
            return e;
        }
        let path = self.dir.join(file_names::wal(previous));
        match self.fs.open(&path).and_then(|f| f.len()) {
            Ok(len) => Error::corruption(
                &path,
                len,
                format!("cut short: the next WAL starts with a {detail}"),
            ),
            Err(_) => e,
        }
    }

    fn new_memtable(&self) -> Arc<Memtable> {
        Arc::new(Memtable::new(0, self.options.memtable_bytes))
    }

    /// Replays WAL `number` into `mem`; its records must continue the sequence numbers from
    /// `last_seq`, which follows them. A `sealed` WAL (one before the last written) must be
    /// whole and hold records; the last written may end torn, and is cut there. Returns the
    /// records replayed.
    fn replay_wal(
        &self,
        number: u64,
        sealed: bool,
        mem: &Memtable,
        last_seq: &mut u64,
    ) -> Result<u64> {
        let path = self.dir.join(file_names::wal(number));
        let apply = |record: Record<'_>| {
            apply_record(
                &path,
                record.payload_offset(),
                record.payload,
                mem,
                last_seq,
            )
        };
        if !sealed {
            // The last WAL written (a torn tail is cut off), or one after it that holds no
            // record (a torn header, from a crash inside `Wal::create`, is emptied).
            return Ok(Wal::replay(self.fs, &path, wal::KIND, apply)?.records);
        }
        // Sealed: any damage, even at its end, is corruption, and the file stays as is.
        let records = Wal::replay_sealed(self.fs, &path, wal::KIND, apply)?;
        if records == 0 {
            return Err(Error::corruption(
                &path,
                wal::KIND.header_len(),
                "holds no record, yet a newer WAL does (a WAL is replaced only once its \
                 memtable holds a write): its records were cut off",
            ));
        }
        Ok(records)
    }

    /// Writes a memtable of replayed writes as an L0 table (none for an empty memtable).
    fn flush_replayed(
        &self,
        mem: &Arc<Memtable>,
        next_file: &mut u64,
    ) -> Result<Option<Arc<TableFile>>> {
        let Some((meta, _)) = flush(self.fs, self.dir, mem, *next_file, self.options)? else {
            return Ok(None);
        };
        *next_file += 1;
        let path = self.dir.join(file_names::table(meta.number));
        let table = Table::open(self.fs, &path, meta.number, self.cache.clone())?;
        Ok(Some(Arc::new(TableFile::new(meta, table, self.fs.clone()))))
    }

    /// Step 4: a fresh WAL, and a fresh manifest holding `state` (which learns the WAL's
    /// number as its log number), named by `CURRENT`.
    fn start_fresh(&self, state: &mut ManifestState, next_file: &mut u64) -> Result<Fresh> {
        let wal_number = *next_file;
        let manifest_number = wal_number + 1;
        *next_file += 2;
        let wal = Wal::create(
            self.fs,
            &self.dir.join(file_names::wal(wal_number)),
            wal::KIND,
        )?;
        state.log_number = wal_number;
        state.next_file = *next_file;
        let manifest = Manifest::create(self.fs, self.dir, manifest_number, state)?;
        Ok(Fresh {
            wal,
            wal_number,
            manifest,
            manifest_number,
        })
    }

    /// Step 5: deletes what nothing references any more: older manifests, replayed WALs
    /// (counting those already flushed before this open, numbered below
    /// `stale_log_number`), tables `state` does not name, leftover temporary files, the
    /// files in a bulk load's scratch directory.
    /// Returns the orphan tables and stale WALs deleted.
    fn delete_obsolete(
        &self,
        state: &ManifestState,
        fresh: &Fresh,
        stale_log_number: u64,
    ) -> Result<(u64, u64)> {
        let (mut orphans, mut stale_wals) = (0, 0);
        for (name, kind) in &self.files {
            let obsolete = match *kind {
                FileKind::Table(n) => {
                    let orphan = !state.levels.iter().any(|l| l.contains_key(&n));
                    orphans += u64::from(orphan);
                    orphan
                }
                FileKind::Wal(n) => {
                    stale_wals += u64::from(n < stale_log_number);
                    n != fresh.wal_number
                }
                FileKind::Manifest(n) => n != fresh.manifest_number,
                FileKind::Temp => true,
                FileKind::Other => false,
            };
            if obsolete {
                self.fs.remove_if_exists(&self.dir.join(name))?;
            }
        }
        ingest::clear_scratch(self.fs, self.dir)?;
        self.fs.sync_dir(self.dir)?;
        Ok((orphans, stale_wals))
    }
}

// Exercise 4.2: replay a WAL record. Read: chapter 4, "Invariants and recovery".
// Tests: lib::recovery::tests::only_the_last_wal_written_may_end_torn
// Tests: write_batch::a_torn_batch_record_is_dropped_whole
// Tests: conformance::conformance::batches_survive_reopen
/// Applies one WAL record (its payload at offset `at` of the WAL at `path`) to `mem`: a whole batch,
/// decoded entirely before any op reaches the memtable, whose first sequence number must
/// follow `last_seq`.
fn apply_record(
    path: &Path,
    at: u64,
    payload: &[u8],
    mem: &Memtable,
    last_seq: &mut u64,
) -> Result<()> {
    let batch = wal::decode(payload).map_err(|e| e.into_corruption(path, at))?;
    // Sequence numbers run on, one by one, from the manifest's last one through every WAL:
    // a gap is records lost, such as the end of an older WAL cut exactly between two
    // records, which no checksum can see.
    if batch.first_seq != *last_seq + 1 {
        return Err(Error::corruption(
            path,
            at,
            format!(
                "{GAP}: sequence number {} where {} was due: the records between are missing",
                batch.first_seq,
                *last_seq + 1
            ),
        ));
    }
    for (seq, op) in (batch.first_seq..).zip(batch.ops()) {
        mem.insert(op.key, seq, op.value);
    }
    *last_seq = batch.last_seq();
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
        let first = Wal::create(fs, &wals[0], wal::KIND).unwrap();
        for seq in 1..=5u64 {
            let key = format!("k{seq}");
            first
                .append(&wal::encode(seq, key.as_bytes(), Some(b"old")))
                .unwrap();
        }
        let second = Wal::create(fs, &wals[1], wal::KIND).unwrap();
        second.append(&wal::encode(6, b"k1", Some(b"new"))).unwrap();
        second.append(&wal::encode(7, b"k6", None)).unwrap();
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
        // corruption, whether it cuts a record, falls between two (a sequence gap at the
        // newer WAL's first record, blamed on the end of the older one), or leaves a header
        // alone or nothing at all.
        let last_record =
            (sstable::frame::FRAME_HEADER_LEN + wal::encode(5, b"k5", Some(b"old")).len()) as u64;
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
            1,
            "older WAL cut between two records",
        );
        for len in [0, 5, wal::KIND.header_len()] {
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

    /// A hole in the last WAL written, valid records after it: the prefix before it is
    /// replayed, the whole WAL copied into `lost/` first. The same hole in the older WAL,
    /// synced before the newer one took a write, is corruption.
    #[test]
    fn a_hole_in_the_last_wal_is_its_unsynced_tail_but_in_an_older_one_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let (_, _, w2) = build(&fs, tmp.path());
        let original = std::fs::read(&w2).unwrap();
        let mut damaged = original.clone();
        damaged[wal::KIND.header_len() as usize + 9] ^= 0x40; // inside the first record
        std::fs::write(&w2, &damaged).unwrap();
        let r = recover(&fs, tmp.path(), &options(), &no_cache()).unwrap();
        assert_eq!((r.replayed, r.last_seq), (5, 5), "WAL 2's records dropped");
        let lost = tmp.path().join(kv_shared::repair::LOST_DIR);
        assert_eq!(
            std::fs::read(lost.join(file_names::wal(2))).unwrap(),
            damaged
        );

        refused(
            |_, _, w1, _| {
                let mut bytes = std::fs::read(w1).unwrap();
                bytes[wal::KIND.header_len() as usize + 9] ^= 0x40;
                std::fs::write(w1, bytes).unwrap();
            },
            1,
            "a hole in the older WAL",
        );
    }

    #[test]
    fn a_manifest_without_its_whole_snapshot_is_corruption() {
        let snapshot_end = {
            let tmp = tempfile::tempdir().unwrap();
            let (manifest, _, _) = build(&Fs::default(), tmp.path());
            std::fs::metadata(manifest).unwrap().len()
        };
        for len in [0, 7, manifest::KIND.header_len(), snapshot_end - 1] {
            refused(
                |fs, manifest, _, _| cut(fs, manifest, len),
                0,
                &format!("manifest cut to {len} of {snapshot_end}"),
            );
        }
    }
}

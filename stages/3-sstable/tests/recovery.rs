//! Crashes in the middle of a flush or a compaction lose nothing and show nothing twice.
//!
//! Each test stops a flush or compaction at one step by making one file operation fail
//! (through a wrapper around the real file system), drops the engine without closing it,
//! as a crash would, and reopens the directory on the real file system. The directory then
//! holds exactly what a crash at that step leaves:
//!
//! | failed operation | on disk after the "crash" |
//! |---|---|
//! | create of `NNNNNN.sst.tmp` | the full WAL and the new, empty WAL; no table |
//! | rename of the `.tmp` | the same plus a complete table under its temporary name |
//! | remove of the flushed WAL | the table **and** the WAL it was written from |
//! | remove of compaction inputs | the compaction output **and** all its inputs |
//! | rename of the compaction output | the inputs and a complete output under its temporary name |
//!
//! and one more state, made by a failure that is no crash: a new WAL whose creation failed
//! after its file appeared, left empty between the WALs that were used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kv_shared::{Engine, KeyRange, Options};
use kv_testkit::conformance::scan_vec;
use kv_testkit::hook_fs::{Action, HookFs, Op, on_path};
use sstable::SstableStore;

fn names(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// Puts `{name}-{i}` in every `put_every`-th of keys 0 to 99, then deletes every
/// `delete_every`-th, in the store and in the model.
fn generation(
    e: &SstableStore,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    name: &str,
    put_every: usize,
    delete_every: usize,
) {
    for i in (0..100).step_by(put_every) {
        let v = format!("{name}-{i}").into_bytes();
        e.put(&key(i), &v).unwrap();
        model.insert(key(i), v);
    }
    for i in (0..100).step_by(delete_every) {
        e.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
}

/// Writes a first generation of keys and deletes every fifth.
fn first_generation(e: &SstableStore, model: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    generation(e, model, "first", 1, 5);
}

/// Overwrites every third key and deletes every seventh.
fn second_generation(e: &SstableStore, model: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    generation(e, model, "second", 3, 7);
}

/// A store on a [`HookFs`] with a 1 MiB memtable (plus `settings`), holding the first
/// generation of writes, and the model of what it holds.
struct Failing {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    fs: HookFs,
    e: SstableStore,
    model: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Failing {
    /// Puts `key` = `value` in the store and in the model.
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.e.put(key, value).unwrap();
        self.model.insert(key.to_vec(), value.to_vec());
    }
}

fn failing_store(settings: &[(&str, &str)]) -> Failing {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let fs = HookFs::new();
    let mut options = Options::new()
        .set("memtable_bytes", "1M")
        .with_file_system(Arc::new(fs.clone()));
    for (name, value) in settings {
        options.insert(*name, *value);
    }
    let e = SstableStore::open(&dir, &options).unwrap();
    let mut model = BTreeMap::new();
    first_generation(&e, &mut model);
    Failing {
        tmp,
        dir,
        fs,
        e,
        model,
    }
}

/// A [`failing_store`] whose first generation is flushed into one table and the second
/// into another.
fn two_tables() -> Failing {
    let mut s = failing_store(&[]);
    s.e.flush().unwrap();
    second_generation(&s.e, &mut s.model);
    s.e.flush().unwrap();
    assert_eq!(names(&s.dir, ".sst").len(), 2);
    s
}

/// Reopens on the real file system and compares every answer with the model.
fn check_reopened(dir: &Path, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> SstableStore {
    let e = SstableStore::open(dir, &Options::new().set("memtable_bytes", "1M")).unwrap();
    for i in 0..110 {
        assert_eq!(
            e.get(&key(i)).unwrap().as_ref(),
            model.get(&key(i)),
            "key {i}"
        );
    }
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
    assert_eq!(
        scan_vec(&e, KeyRange::all()),
        want,
        "scan shows each key once, newest"
    );
    assert_eq!(e.stats().unwrap().live_keys, model.len() as u64);
    e
}

fn crash_during_flush(
    op: Op,
    suffix: &'static str,
) -> (tempfile::TempDir, BTreeMap<Vec<u8>, Vec<u8>>) {
    let mut s = failing_store(&[("block_bytes", "256")]);
    s.e.flush().unwrap();
    second_generation(&s.e, &mut s.model);
    s.fs.set_hook(on_path(op, suffix, Action::Fail));
    assert!(s.e.flush().is_err(), "the injected failure stops the flush");
    // Readers still see everything while the flush is stuck.
    for i in 0..100 {
        assert_eq!(s.e.get(&key(i)).unwrap().as_ref(), s.model.get(&key(i)));
    }
    drop(s.e); // the crash: no close, no retry
    (s.tmp, s.model)
}

#[test]
fn crash_before_the_table_is_created() {
    let (tmp, model) = crash_during_flush(Op::Create, ".sst.tmp");
    let dir = tmp.path().join("db");
    assert_eq!(names(&dir, ".sst").len(), 1);
    assert_eq!(names(&dir, ".wal").len(), 2, "the full WAL and the new one");
    let e = check_reopened(&dir, &model);
    e.close().unwrap();
}

#[test]
fn crash_before_the_table_is_renamed() {
    let (tmp, model) = crash_during_flush(Op::Rename, ".sst.tmp");
    let dir = tmp.path().join("db");
    assert_eq!(
        names(&dir, ".tmp").len(),
        1,
        "a complete table under its temporary name"
    );
    let e = check_reopened(&dir, &model);
    assert!(
        names(&dir, ".tmp").is_empty(),
        "the leftover is removed on open"
    );
    e.close().unwrap();
}

#[test]
fn crash_between_table_rename_and_wal_deletion() {
    let (tmp, model) = crash_during_flush(Op::Remove, ".wal");
    let dir = tmp.path().join("db");
    assert_eq!(names(&dir, ".sst").len(), 2, "the new table is in place");
    let wals_before = names(&dir, ".wal");
    assert_eq!(
        wals_before.len(),
        2,
        "and the WAL it came from is still there"
    );
    let e = check_reopened(&dir, &model);
    let wals_after = names(&dir, ".wal");
    assert!(
        !wals_after.contains(&wals_before[0]),
        "the flushed WAL is removed, not replayed: {wals_after:?}"
    );
    assert_eq!(
        e.stats().unwrap().extra["wal_records_replayed"],
        0,
        "nothing was replayed: the table holds it all"
    );
    // Flushing and compacting afterwards still shows every key once.
    e.flush().unwrap();
    e.compact().unwrap();
    assert_eq!(e.table_count(), 1);
    e.close().unwrap();
    check_reopened(&dir, &model).close().unwrap();
}

#[test]
fn crash_after_compaction_before_its_inputs_are_removed() {
    let s = two_tables();
    s.fs.set_hook(on_path(Op::Remove, ".sst", Action::Fail));
    s.e.compact().unwrap(); // the inputs' removal fails silently (best effort, in Drop)
    drop(s.e);
    assert_eq!(
        names(&s.dir, ".sst").len(),
        3,
        "output and both inputs on disk"
    );
    // The output has no tombstones; a deleted key must not come back from an old input.
    let e = check_reopened(&s.dir, &s.model);
    assert_eq!(
        names(&s.dir, ".sst").len(),
        1,
        "the replaced inputs are removed on open"
    );
    assert_eq!(e.stats().unwrap().extra["table_tombstones"], 0);
    e.close().unwrap();
}

#[test]
fn crash_before_the_compaction_output_is_renamed() {
    let s = two_tables();
    s.fs.set_hook(on_path(Op::Rename, ".sst.tmp", Action::Fail));
    assert!(s.e.compact().is_err());
    assert_eq!(s.e.table_count(), 2, "a failed compaction changes nothing");
    drop(s.e);
    let e = check_reopened(&s.dir, &s.model);
    assert_eq!(e.table_count(), 2);
    assert!(names(&s.dir, ".tmp").is_empty());
    e.close().unwrap();
}

#[test]
fn a_failed_flush_is_retried_by_the_next_write() {
    let mut s = failing_store(&[]);
    s.fs.set_hook(on_path(Op::Create, ".sst.tmp", Action::Fail));
    assert!(s.e.flush().is_err());
    s.fs.clear_hook();
    s.put(b"after", b"retry");
    assert_eq!(s.e.table_count(), 1, "the write finished the stuck flush");
    assert_eq!(s.e.stats().unwrap().extra["flushes"], 1);
    s.e.close().unwrap();
    check_reopened(&s.dir, &s.model).close().unwrap();
}

/// A [`failing_store`] whose flush could not create its new WAL (the failed create left a
/// file behind), then more writes, which went on into the old WAL; and the leftover file's
/// name.
fn store_after_a_failed_wal_create() -> (Failing, String) {
    let mut s = failing_store(&[]);
    // A create that leaves its file behind and still fails (as one whose directory sync
    // fails does).
    s.fs.set_hook(on_path(Op::Create, ".wal", Action::FailAfter));
    assert!(s.e.flush().is_err(), "the new WAL could not be created");
    s.fs.clear_hook();
    let left = names(&s.dir, ".wal").pop().unwrap();
    second_generation(&s.e, &mut s.model); // into the old WAL
    (s, left)
}

/// A failed `Wal::create` leaves a file, and writes go on in the old WAL. The next flush
/// creates the new WAL under the same number, replacing the leftover, so a record-less WAL
/// never sits before one that holds writes (recovery would take it for a sealed WAL cut
/// short, and refuse the store).
#[test]
fn a_wal_left_by_a_failed_create_is_replaced_by_the_next_flush() {
    let (mut s, left) = store_after_a_failed_wal_create();
    s.e.flush().unwrap();
    assert_eq!(
        names(&s.dir, ".wal"),
        vec![left.clone()],
        "the new WAL took the leftover's number; the flushed WAL is gone"
    );
    s.put(b"after", b"flush");
    drop(s.e);
    check_reopened(&s.dir, &s.model).close().unwrap();
}

/// The same failed create, then a crash before any flush replaced the leftover (here with a
/// torn header): the old WAL is the last one written, the leftover after it holds no record
/// and is removed, and nothing is lost.
#[test]
fn a_wal_left_by_a_failed_create_does_not_block_the_next_open() {
    let (s, left) = store_after_a_failed_wal_create();
    drop(s.e);
    std::fs::write(s.dir.join(&left), b"KVSSTWAL\x01\x00").unwrap();
    let e = check_reopened(&s.dir, &s.model);
    assert!(!names(&s.dir, ".wal").contains(&left));
    e.close().unwrap();
}

/// What a reopened store serves is durable once `sync` returns, even if the process that
/// wrote it was killed before it synced: the replayed WAL is synced, not only the new one.
#[test]
fn sync_after_reopen_makes_the_replayed_writes_durable() {
    use kv_testkit::fault_fs::FaultFs;
    for seed in 0..20 {
        let disk = FaultFs::new(seed);
        let options = Options::new()
            .set("memtable_bytes", "1M")
            .with_file_system(Arc::new(disk.clone()));
        let dir = Path::new("/store");
        let e = SstableStore::open(dir, &options).unwrap();
        for i in 0..50 {
            e.put(&key(i), b"unsynced").unwrap();
        }
        drop(e); // killed: the records are written, not synced
        let e = SstableStore::open(dir, &options).unwrap();
        assert_eq!(e.get(&key(49)).unwrap().as_deref(), Some(&b"unsynced"[..]));
        e.sync().unwrap();
        drop(e);
        disk.crash();
        disk.restart();
        let e = SstableStore::open(dir, &options).unwrap();
        for i in 0..50 {
            assert_eq!(
                e.get(&key(i)).unwrap().as_deref(),
                Some(&b"unsynced"[..]),
                "seed {seed}: key {i} lost after a sync"
            );
        }
        e.close().unwrap();
    }
}

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

/// Writes a first generation of keys, deletes every fifth, and flushes it as one table.
fn first_generation(e: &SstableStore, model: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for i in 0..100 {
        let v = format!("first-{i}").into_bytes();
        e.put(&key(i), &v).unwrap();
        model.insert(key(i), v);
    }
    for i in (0..100).step_by(5) {
        e.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
}

/// Overwrites every third key and deletes every seventh, in the memtable.
fn second_generation(e: &SstableStore, model: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for i in (0..100).step_by(3) {
        let v = format!("second-{i}").into_bytes();
        e.put(&key(i), &v).unwrap();
        model.insert(key(i), v);
    }
    for i in (0..100).step_by(7) {
        e.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
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
    let Failing {
        tmp,
        dir: _,
        fs,
        e,
        mut model,
    } = failing_store(&[("block_bytes", "256")]);
    e.flush().unwrap();
    second_generation(&e, &mut model);
    fs.set_hook(on_path(op, suffix, Action::Fail));
    assert!(e.flush().is_err(), "the injected failure stops the flush");
    // Readers still see everything while the flush is stuck.
    for i in 0..100 {
        assert_eq!(e.get(&key(i)).unwrap().as_ref(), model.get(&key(i)));
    }
    drop(e); // the crash: no close, no retry
    (tmp, model)
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
    let Failing {
        tmp: _tmp,
        dir,
        fs,
        e,
        mut model,
    } = failing_store(&[]);
    e.flush().unwrap();
    second_generation(&e, &mut model);
    e.flush().unwrap();
    assert_eq!(names(&dir, ".sst").len(), 2);
    fs.set_hook(on_path(Op::Remove, ".sst", Action::Fail));
    e.compact().unwrap(); // the inputs' removal fails silently (best effort, in Drop)
    drop(e);
    assert_eq!(
        names(&dir, ".sst").len(),
        3,
        "output and both inputs on disk"
    );
    // The output has no tombstones; a deleted key must not come back from an old input.
    let e = check_reopened(&dir, &model);
    assert_eq!(
        names(&dir, ".sst").len(),
        1,
        "the replaced inputs are removed on open"
    );
    assert_eq!(e.stats().unwrap().extra["table_tombstones"], 0);
    e.close().unwrap();
}

#[test]
fn crash_before_the_compaction_output_is_renamed() {
    let Failing {
        tmp: _tmp,
        dir,
        fs,
        e,
        mut model,
    } = failing_store(&[]);
    e.flush().unwrap();
    second_generation(&e, &mut model);
    e.flush().unwrap();
    fs.set_hook(on_path(Op::Rename, ".sst.tmp", Action::Fail));
    assert!(e.compact().is_err());
    assert_eq!(e.table_count(), 2, "a failed compaction changes nothing");
    drop(e);
    let e = check_reopened(&dir, &model);
    assert_eq!(e.table_count(), 2);
    assert!(names(&dir, ".tmp").is_empty());
    e.close().unwrap();
}

#[test]
fn a_failed_flush_is_retried_by_the_next_write() {
    let Failing {
        tmp: _tmp,
        dir,
        fs,
        e,
        mut model,
    } = failing_store(&[]);
    fs.set_hook(on_path(Op::Create, ".sst.tmp", Action::Fail));
    assert!(e.flush().is_err());
    fs.clear_hook();
    e.put(b"after", b"retry").unwrap();
    model.insert(b"after".to_vec(), b"retry".to_vec());
    assert_eq!(e.table_count(), 1, "the write finished the stuck flush");
    assert_eq!(e.stats().unwrap().extra["flushes"], 1);
    e.close().unwrap();
    check_reopened(&dir, &model).close().unwrap();
}

/// A flush whose new WAL cannot be created (the failed create leaves a file behind), then
/// more writes, which go on into the old WAL. Returns the leftover file's name.
fn fail_a_wal_create_then_write(
    fs: &HookFs,
    e: &SstableStore,
    dir: &Path,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
) -> String {
    // A create that leaves its file behind and still fails (as one whose directory sync
    // fails does).
    fs.set_hook(on_path(Op::Create, ".wal", Action::FailAfter));
    assert!(e.flush().is_err(), "the new WAL could not be created");
    fs.clear_hook();
    let left = names(dir, ".wal").pop().unwrap();
    second_generation(e, model); // into the old WAL
    left
}

/// A failed `Wal::create` leaves a file, and writes go on in the old WAL. The next flush
/// creates the new WAL under the same number, replacing the leftover, so a record-less WAL
/// never sits before one that holds writes (recovery would take it for a sealed WAL cut
/// short, and refuse the store).
#[test]
fn a_wal_left_by_a_failed_create_is_replaced_by_the_next_flush() {
    let Failing {
        tmp: _tmp,
        dir,
        fs,
        e,
        mut model,
    } = failing_store(&[]);
    let left = fail_a_wal_create_then_write(&fs, &e, &dir, &mut model);
    e.flush().unwrap();
    assert_eq!(
        names(&dir, ".wal"),
        vec![left.clone()],
        "the new WAL took the leftover's number; the flushed WAL is gone"
    );
    e.put(b"after", b"flush").unwrap();
    model.insert(b"after".to_vec(), b"flush".to_vec());
    drop(e);
    check_reopened(&dir, &model).close().unwrap();
}

/// The same failed create, then a crash before any flush replaced the leftover (here with a
/// torn header): the old WAL is the last one written, the leftover after it holds no record
/// and is removed, and nothing is lost.
#[test]
fn a_wal_left_by_a_failed_create_does_not_block_the_next_open() {
    let Failing {
        tmp: _tmp,
        dir,
        fs,
        e,
        mut model,
    } = failing_store(&[]);
    let left = fail_a_wal_create_then_write(&fs, &e, &dir, &mut model);
    drop(e);
    std::fs::write(dir.join(&left), b"KVSSTWAL\x01\x00").unwrap();
    let e = check_reopened(&dir, &model);
    assert!(!names(&dir, ".wal").contains(&left));
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

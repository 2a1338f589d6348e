//! The background WAL syncer ([`lsm::wal_syncer`]): with `wal_bytes_per_sync` set, the
//! thread `lsm-wal-sync` syncs the active WAL while writes go on, and a sync of its that
//! fails stops writes with [`Error::Background`] until the store is reopened, losing
//! nothing acknowledged.
//!
//! The same thread makes the next WAL ahead of the freeze that takes it; a clean close
//! removes one no freeze took, and a failed attempt is made again by the freeze.
//!
//! All of it is seen through [`HookFs`]: the hook watches (or fails) the `Sync` calls that
//! thread makes on a WAL file (`*.wal`), and the WAL files it creates.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use kv_shared::{Engine, Error, Fs};
use kv_testkit::hook_fs::{Action, Call, HookFs, Op};
use lsm::LsmTree;
use lsm::wal::Wal;

/// A 256 KiB memtable, so a few hundred kilobytes of writes make one WAL of many slices.
const SETTINGS: &str = "memtable_bytes=256K wal_bytes_per_sync=4K";

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value {i} {}", "v".repeat(100)).into_bytes()
}

/// True when `call` is a sync of a WAL made by the background syncer thread.
fn background_wal_sync(call: &Call<'_>) -> bool {
    call.op == Op::Sync
        && call.path_ends_with(".wal")
        && std::thread::current().name() == Some("lsm-wal-sync")
}

/// A tree in `dir` whose file system runs `hook` on every call.
fn open_with_hook(
    dir: &std::path::Path,
    hook: impl Fn(&Call<'_>) -> Action + Send + Sync + 'static,
) -> LsmTree {
    let fs = HookFs::new();
    fs.set_hook(hook);
    let options = common::options(SETTINGS).with_file_system(Arc::new(fs));
    LsmTree::open(dir, &options).unwrap()
}

/// A tree in `dir` that counts the file-system calls `counted` picks (passing them all).
fn open_counting(
    dir: &std::path::Path,
    counted: fn(&Call<'_>) -> bool,
) -> (LsmTree, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let tree = open_with_hook(dir, move |call| {
        if counted(call) {
            seen.fetch_add(1, SeqCst);
        }
        Action::Pass
    });
    (tree, count)
}

/// Waits up to 10 s for `count` to leave 0 (a background thread's work), and returns it.
fn wait_for_any(count: &AtomicU64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count.load(SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    count.load(SeqCst)
}

#[test]
fn the_wal_is_synced_in_the_background_as_it_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let (tree, syncs) = open_counting(tmp.path(), background_wal_sync);
    for i in 0..1000 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    // About 110 KB went to the WAL: some 27 slices of 4 KiB, each a request. Requests made
    // while a sync runs are merged, so fewer syncs than requests, but at least one.
    assert!(wait_for_any(&syncs) >= 1, "no background sync of the WAL");
    tree.close().unwrap();
}

#[test]
fn a_failed_background_sync_stops_writes_until_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = open_with_hook(tmp.path(), |call| {
        if background_wal_sync(call) {
            Action::Fail
        } else {
            Action::Pass
        }
    });
    let mut model = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    let error = loop {
        assert!(Instant::now() < deadline, "writes never stopped");
        match tree.put(&key(i), &value(i)) {
            Ok(()) => drop(model.insert(key(i), value(i))),
            Err(e) => break e,
        }
        i += 1;
    };
    // The writer meets the failed WAL (an I/O error) or the recorded background failure.
    assert!(
        matches!(error, Error::Io { .. } | Error::Background { .. }),
        "{error:?}"
    );
    assert!(tree.put(b"after", b"v").is_err(), "a failed fsync is final");
    drop(tree);
    let tree = LsmTree::open(tmp.path(), &common::options(SETTINGS)).unwrap();
    for (k, v) in &model {
        assert_eq!(tree.get(k).unwrap().as_ref(), Some(v));
    }
    assert_eq!(tree.get(b"after").unwrap(), None);
    tree.put(b"after", b"reopened").unwrap();
    tree.close().unwrap();
}

/// True when `call` creates a WAL from the background syncer thread: the next WAL, made
/// ahead of the freeze that will take it.
fn wal_made_ahead(call: &Call<'_>) -> bool {
    call.op == Op::Create
        && call.path_ends_with(".wal")
        && std::thread::current().name() == Some("lsm-wal-sync")
}

/// Puts keys `0..n` and returns them with their values.
fn put_keys(tree: &LsmTree, n: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    (0..n)
        .map(|i| {
            tree.put(&key(i), &value(i)).unwrap();
            (key(i), value(i))
        })
        .collect()
}

/// Reopens the store in `dir` and checks that it holds exactly `model`.
fn reopen_and_check(dir: &std::path::Path, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let tree = LsmTree::open(dir, &common::options(SETTINGS)).unwrap();
    for (k, v) in model {
        assert_eq!(tree.get(k).unwrap().as_ref(), Some(v));
    }
    assert_eq!(tree.stats().unwrap().live_keys, model.len() as u64);
    tree.close().unwrap();
}

#[test]
fn the_next_wal_is_made_ahead_and_a_clean_close_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (tree, made) = open_counting(tmp.path(), wal_made_ahead);
    // Some 600 KB of puts: a few freezes of the 256 KiB memtable.
    let model = put_keys(&tree, 5000);
    // The last freeze's request is answered even if the thread is told to stop meanwhile.
    assert!(wait_for_any(&made) >= 1, "no WAL was made ahead");
    tree.close().unwrap();
    // The WAL made ahead and never taken is gone: every WAL left holds records.
    let plain = Fs::default();
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wal") {
            let written = Wal::written_past_header(&plain, &path, lsm::wal::KIND).unwrap();
            assert!(written, "{} holds no record", path.display());
        }
    }
    reopen_and_check(tmp.path(), &model);
}

#[test]
fn a_wal_that_could_not_be_made_ahead_is_made_by_the_freeze() {
    let tmp = tempfile::tempdir().unwrap();
    let refused = Arc::new(AtomicU64::new(0));
    let seen = refused.clone();
    // The syncer thread syncs a directory only to make a WAL ahead: failing that sync
    // leaves a WAL with a whole header and no record, which must never end up before a
    // WAL that holds records (recovery would call it damage).
    let tree = open_with_hook(tmp.path(), move |call| {
        if call.op == Op::SyncDir && std::thread::current().name() == Some("lsm-wal-sync") {
            seen.fetch_add(1, SeqCst);
            Action::Fail
        } else {
            Action::Pass
        }
    });
    // Every freeze after the first finds a failed attempt and creates the WAL itself under
    // the same number, replacing what the attempt left: no write fails.
    let model = put_keys(&tree, 5000);
    assert!(refused.load(SeqCst) >= 1, "no WAL was made ahead");
    assert_no_empty_wal_before_a_written_one(tmp.path());
    tree.close().unwrap();
    reopen_and_check(tmp.path(), &model);
}

/// Checks the WALs in `dir`, by number: once one holds no record, none after it does.
fn assert_no_empty_wal_before_a_written_one(dir: &std::path::Path) {
    let plain = Fs::default();
    let mut wals: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "wal"))
        .collect();
    wals.sort();
    let mut empty = None;
    for path in wals {
        let written = Wal::written_past_header(&plain, &path, lsm::wal::KIND).unwrap();
        if written && let Some(empty) = &empty {
            panic!("{} holds records after the empty {}", path.display(), empty);
        }
        if !written {
            empty = Some(path.display().to_string());
        }
    }
}

/// The number of every file named `NNNNNN.EXT` in `dir`, for extension `ext`.
fn numbers(dir: &std::path::Path, ext: &str) -> Vec<u64> {
    let mut found: Vec<u64> = Fs::default()
        .list(dir)
        .unwrap()
        .iter()
        .filter_map(|name| name.strip_suffix(ext)?.parse().ok())
        .collect();
    found.sort_unstable();
    found
}

#[test]
fn file_numbers_follow_the_writes_not_the_threads() {
    // A freeze takes the next WAL's number before the flush it starts numbers its table,
    // whenever the syncer thread gets to create that WAL: the new WAL is n, the one made
    // ahead n + 1, the table n + 2, every time.
    for round in 0..20 {
        let (tmp, e) = common::new_tree(&common::options(""));
        e.put(&key(round), &value(round)).unwrap();
        e.flush().unwrap();
        e.close().unwrap();
        let (wals, tables) = (numbers(tmp.path(), ".wal"), numbers(tmp.path(), ".sst"));
        let newest_wal = *wals.last().unwrap();
        assert_eq!(tables, [newest_wal + 2], "round {round}: WALs {wals:?}");
    }
}

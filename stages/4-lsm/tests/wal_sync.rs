//! The background WAL syncer ([`lsm::wal_syncer`]): with `wal_bytes_per_sync` set, the
//! thread `lsm-wal-sync` syncs the active WAL while writes go on, and a sync of its that
//! fails stops writes with [`Error::Background`] until the store is reopened, losing
//! nothing acknowledged.
//!
//! Both are seen through [`HookFs`]: the hook watches (or fails) the `Sync` calls that
//! thread makes on a WAL file (`*.wal`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use kv_shared::{Engine, Error};
use kv_testkit::hook_fs::{Action, Call, HookFs, Op};
use lsm::LsmTree;

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

#[test]
fn the_wal_is_synced_in_the_background_as_it_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = HookFs::new();
    let syncs = Arc::new(AtomicU64::new(0));
    let seen = syncs.clone();
    fs.set_hook(move |call| {
        if background_wal_sync(call) {
            seen.fetch_add(1, SeqCst);
        }
        Action::Pass
    });
    let options = common::options(SETTINGS).with_file_system(Arc::new(fs.clone()));
    let tree = LsmTree::open(tmp.path(), &options).unwrap();
    for i in 0..1000 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    // About 110 KB went to the WAL: some 27 slices of 4 KiB, each a request. Requests made
    // while a sync runs are merged, so fewer syncs than requests, but at least one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while syncs.load(SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(syncs.load(SeqCst) >= 1, "no background sync of the WAL");
    tree.close().unwrap();
}

#[test]
fn a_failed_background_sync_stops_writes_until_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = HookFs::new();
    fs.set_hook(|call| {
        if background_wal_sync(call) {
            Action::Fail
        } else {
            Action::Pass
        }
    });
    let options = common::options(SETTINGS).with_file_system(Arc::new(fs.clone()));
    let tree = LsmTree::open(tmp.path(), &options).unwrap();
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

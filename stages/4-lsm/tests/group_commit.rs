//! Group commit: concurrent writers share WAL records, lose nothing, and when a group's
//! write fails every writer of the group hears of it.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kv_shared::{Engine, Options};
use kv_testkit::fault_fs::{FaultFs, FaultKind};
use kv_testkit::knobs::seed;
use kv_testkit::power_loss::store_path;
use lsm::LsmTree;

const THREADS: usize = 4;

fn key(thread: usize, i: usize) -> Vec<u8> {
    format!("t{thread}-{i:05}").into_bytes()
}

/// Four threads put at once, with every group synced (the fsync each leader waits for is
/// when the others queue up behind it): every write is readable, also after a reopen,
/// every write is counted in exactly one group, and some groups held several writers.
#[test]
fn concurrent_writers_share_write_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let options = common::options("sync_writes=true memtable_bytes=64K");
    let e = LsmTree::open(tmp.path(), &options).unwrap();
    let per_thread = 250;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let e = &e;
            s.spawn(move || {
                for i in 0..per_thread {
                    e.put(&key(t, i), format!("{t}/{i}").as_bytes()).unwrap();
                }
            });
        }
    });
    let stats = e.stats().unwrap();
    let (groups, grouped) = (stats.extra["write_groups"], stats.extra["grouped_writes"]);
    let writes = (THREADS * per_thread) as u64;
    assert_eq!(grouped, writes, "every write counted in one group");
    assert!(
        groups < grouped,
        "{groups} groups for {grouped} writes: no group held two"
    );
    assert_eq!(stats.live_keys, writes);
    assert_eq!(stats.extra["last_sequence"], writes);
    e.close().unwrap();
    let e = LsmTree::open(tmp.path(), &options).unwrap();
    for t in 0..THREADS {
        for i in 0..per_thread {
            assert_eq!(
                e.get(&key(t, i)).unwrap(),
                Some(format!("{t}/{i}").into_bytes())
            );
        }
    }
}

/// The disk fills up while four threads write. Every write whose group's WAL append
/// failed must report the failure, the followers of that group too: after a reopen, each
/// write that returned `Ok` is there and each that returned an error is not.
#[test]
fn a_failed_group_fails_every_writer_in_it() {
    let fs = FaultFs::new(seed("group_commit_disk_full", 17));
    let options = Options::new().with_file_system(Arc::new(fs.clone()));
    let e = LsmTree::open(&store_path(), &options).unwrap();
    // Each thread writes until its first error; the disk fills after about 150 calls.
    fs.fail_at(150, FaultKind::DiskFull);
    let outcomes: Mutex<BTreeMap<Vec<u8>, bool>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (e, outcomes) = (&e, &outcomes);
            s.spawn(move || {
                for i in 0.. {
                    let ok = e.put(&key(t, i), b"value").is_ok();
                    outcomes.lock().unwrap().insert(key(t, i), ok);
                    if !ok {
                        break;
                    }
                }
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();
    let failed = outcomes.values().filter(|ok| !**ok).count();
    assert_eq!(failed, THREADS, "each thread stopped at its first error");
    assert!(outcomes.len() > THREADS, "some writes went through first");
    drop(e);
    fs.clear_faults();
    let e = LsmTree::open(&store_path(), &options).unwrap();
    for (k, ok) in &outcomes {
        let found = e.get(k).unwrap().is_some();
        assert_eq!(
            found,
            *ok,
            "{}: returned {}, found after reopen {found}",
            String::from_utf8_lossy(k),
            if *ok { "Ok" } else { "an error" }
        );
    }
}

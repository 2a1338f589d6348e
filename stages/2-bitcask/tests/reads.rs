//! A `get` is one positioned read of one record, counted by the file system itself (not by
//! the engine's own counter); a miss, a deleted key and an expired key read nothing.

mod common;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use kv_shared::Engine;
use kv_testkit::hook_fs::{HookFs, Op};

#[test]
fn a_get_is_one_read_and_a_miss_is_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let counter = HookFs::new();
    let options = quiet("1K").with_file_system(Arc::new(counter.clone()));
    let e = open(&dir, &options);
    // Keys in merged segments (with hints), in sealed segments and in the active one.
    let mut model = churn(&e, 40, 3);
    e.compact().unwrap();
    for i in 0..30u32 {
        let (k, v) = (
            format!("late{i:02}").into_bytes(),
            vec![b'x'; i as usize * 40],
        );
        e.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    e.put_expiring_at(b"expired", b"v", UNIX_EPOCH + Duration::from_secs(1))
        .unwrap();
    let before = counter.calls(Op::ReadAt);
    for (k, v) in &model {
        assert_eq!(e.get(k).unwrap().as_ref(), Some(v));
    }
    assert_eq!(counter.calls(Op::ReadAt) - before, model.len() as u64);

    let before = counter.calls(Op::ReadAt);
    assert_eq!(e.get(b"never written").unwrap(), None);
    assert!(
        !model.contains_key(&b"key0003"[..]),
        "deleted in the last round"
    );
    assert_eq!(e.get(b"key0003").unwrap(), None);
    assert_eq!(e.get(b"expired").unwrap(), None);
    assert_eq!(counter.calls(Op::ReadAt), before, "a miss read the disk");
    let s = e.stats().unwrap();
    assert_eq!(s.gets, model.len() as u64 + 3);
    assert_eq!(s.get_disk_reads, model.len() as u64);
    e.close().unwrap();
}

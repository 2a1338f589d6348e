//! Regression (found by the shared `power_loss_random` suite): a merge drops a record because
//! a newer one replaced it, so the newer one must be durable before the merge's drop is.
//! Before the fix, a background merge could drop old, synced values replaced by newer values
//! that were still only in the active segment's unsynced tail; a power loss then lost the
//! newer values, and the keys vanished although their old values had been synced.

use std::path::Path;
use std::sync::Arc;

use bitcask::Bitcask;
use kv_shared::Engine;
use kv_testkit::fault_fs::FaultFs;

#[test]
fn a_merge_never_drops_a_synced_value_for_an_unsynced_one() {
    let dir = Path::new("/disk/store");
    let key = |i: u32| format!("key{i:02}").into_bytes();
    for seed in 0..40 {
        let fs = FaultFs::new(seed);
        let options = |segment: &str, background: bool| {
            kv_shared::Options::new()
                .set("segment_bytes", segment)
                .set("background_merge", background)
                .with_file_system(Arc::new(fs.clone()))
        };
        // Old values in several sealed segments, synced.
        let e = Bitcask::open(dir, &options("1K", false)).unwrap();
        for i in 0..40 {
            e.put(&key(i), b"synced value").unwrap();
        }
        e.close().unwrap();
        // Newer values for every key, all in the active segment (large segments: no
        // rotation seals them), acknowledged but never synced.
        let e = Bitcask::open(dir, &options("1M", false)).unwrap();
        for i in 0..40 {
            e.put(&key(i), b"newer value").unwrap();
        }
        drop(e);
        // Opening finds the sealed segments mostly dead and starts a background merge.
        let e = Bitcask::open(dir, &options("1M", true)).unwrap();
        let mut polls = 0;
        while e.stats().unwrap().extra["merges"] == 0 {
            polls += 1;
            assert!(
                polls < 10_000,
                "seed {seed}: the background merge never ran"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        fs.crash();
        drop(e);
        fs.restart();
        let e = Bitcask::open(dir, &options("1M", false)).unwrap();
        for i in 0..40 {
            let got = e.get(&key(i)).unwrap();
            assert!(
                matches!(got.as_deref(), Some(b"synced value" | b"newer value")),
                "seed {seed}: key{i:02} is {got:?}"
            );
        }
        e.close().unwrap();
    }
}

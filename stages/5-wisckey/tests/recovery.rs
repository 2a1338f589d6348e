//! Recovery making the tree and the value log agree (see `wisckey::recovery`): the tree's
//! WAL, when a power loss left it ahead of the value log, is cut back to a prefix of the
//! writes; values that damage took from the value log's newest segment are forgotten,
//! every other key reads as before.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kv_shared::{Engine, Options};
use kv_testkit::fault_fs::{FaultFs, FsImage, store_path};
use wisckey::Wisckey;

/// Values of 8 bytes or more in the log; the tree's memtable large enough never to flush
/// on its own here.
fn options() -> Options {
    common::options("value_threshold=8 vlog_segment_bytes=64K gc_dead_ratio=0")
}

/// The store on a simulated disk.
fn open(fs: &FaultFs) -> Wisckey {
    let opts = options().with_file_system(Arc::new(fs.clone()));
    Wisckey::open(&store_path(), &opts).unwrap()
}

/// The path of the newest value-log segment in `image`.
fn newest_segment(image: &FsImage) -> PathBuf {
    let vlog = wisckey::file_names::vlog_dir(&store_path());
    image
        .keys()
        .filter(|p| p.starts_with(&vlog) && p.extension().is_some_and(|e| e == "seg"))
        .max()
        .unwrap()
        .clone()
}

/// What the store holds, by gets of `keys`.
fn read(store: &Wisckey, keys: &[&[u8]]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    keys.iter()
        .map(|k| (k.to_vec(), store.get(k).unwrap()))
        .collect()
}

#[test]
fn a_tree_wal_ahead_of_the_value_log_is_cut_back_to_a_prefix() {
    let fs = FaultFs::new(1);
    let store = open(&fs);
    store.put(b"a", b"the first value of a").unwrap();
    store.put(b"b", b"small").unwrap();
    store.sync().unwrap();
    let synced = fs.image();
    // After the sync: a value in the log, then a small value and a delete, which the tree
    // holds whole. Their WAL records reach the disk; the value log's tail does not.
    store.put(b"c", b"a value in the log").unwrap();
    store.put(b"b", b"tiny").unwrap();
    store.delete(b"a").unwrap();
    drop(store);
    let mut image = fs.image();
    let segment = newest_segment(&image);
    assert_eq!(segment, newest_segment(&synced), "no segment was started");
    image.insert(segment.clone(), synced[&segment].clone());
    let store = open(&FaultFs::from_image(2, &image));
    let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
    let expected: BTreeMap<Vec<u8>, Option<Vec<u8>>> = [
        (b"a".to_vec(), Some(b"the first value of a".to_vec())),
        (b"b".to_vec(), Some(b"small".to_vec())),
        (b"c".to_vec(), None),
    ]
    .into();
    assert_eq!(
        read(&store, &keys),
        expected,
        "the writes after the sync, all of them gone"
    );
    let extra = store.stats().unwrap().extra;
    assert_eq!(extra["recovery_wal_records_trimmed"], 3);
    store.put(b"d", b"a write after recovery").unwrap();
    assert_eq!(store.get(b"d").unwrap().unwrap(), b"a write after recovery");
}

#[test]
fn values_a_damaged_tail_took_are_forgotten_and_the_rest_kept() {
    let fs = FaultFs::new(3);
    let store = open(&fs);
    let value = |i: u32| format!("value number {i} of the log").into_bytes();
    for i in 0..20u32 {
        store.put(format!("k{i:02}").as_bytes(), &value(i)).unwrap();
    }
    // In tables, out of the WAL: no trimming can take them, only the damage.
    assert!(store.flush().unwrap());
    store.close().unwrap();
    let mut image = fs.image();
    let segment = newest_segment(&image);
    let bytes = image.get_mut(&segment).unwrap();
    let cut = bytes.len() - 50; // inside the last record, the value of k19
    bytes.truncate(cut);
    let damaged = FaultFs::from_image(4, &image);
    let store = open(&damaged);
    let check = |store: &Wisckey| {
        for i in 0..19u32 {
            assert_eq!(
                store.get(format!("k{i:02}").as_bytes()).unwrap(),
                Some(value(i))
            );
        }
    };
    check(&store);
    assert_eq!(
        store.get(b"k19").unwrap(),
        None,
        "its value is gone: forgotten"
    );
    assert_eq!(store.stats().unwrap().extra["recovery_lost_values"], 1);
    store.put(b"k19", b"written again").unwrap();
    store.close().unwrap();
    let store = open(&damaged);
    check(&store);
    assert_eq!(store.get(b"k19").unwrap().unwrap(), b"written again");
    assert_eq!(store.stats().unwrap().extra["recovery_lost_values"], 0);
}

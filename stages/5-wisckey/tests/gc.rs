//! Garbage collection of the value log: it frees space, loses no write that races it, is
//! safe against a power loss at every file operation it makes, leaves a cursor opened
//! before it reading the segments it deleted, and never turns damage into a wrong value.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use kv_shared::{Engine, Error, Fs, KeyRange, Options};
use kv_testkit::conformance::scan_vec;
use kv_testkit::fault_fs::{FaultFs, FsImage, store_path};
use wisckey::Wisckey;
use wisckey::value_pointer::{self, TreeValue, ValuePointer};

/// Values in the log, 2 KiB segments, no background collection (each test runs its own),
/// a small tree.
fn options() -> Options {
    common::options(
        "value_threshold=8 vlog_segment_bytes=2K gc_dead_ratio=0 memtable_bytes=4K \
         table_bytes=4K level1_bytes=16K level_ratio=4 l0_trigger=2 block_bytes=512",
    )
}

/// The value of `key` written in round `round`: 100 bytes or so, different each round.
fn value(key: usize, round: usize) -> Vec<u8> {
    let mut v = format!("key{key}-round{round}:").into_bytes();
    v.resize(100 + key % 17, b'a' + (round % 26) as u8);
    v
}

/// The key of number `i`.
fn key(i: usize) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

/// Writes `keys` keys `rounds` times over (the last round's values live), deletes every
/// fifth key at the end, and returns what the store must hold.
fn overwrite(store: &Wisckey, keys: usize, rounds: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    for round in 0..rounds {
        for i in 0..keys {
            store.put(&key(i), &value(i, round)).unwrap();
            model.insert(key(i), value(i, round));
        }
    }
    for i in (0..keys).step_by(5) {
        store.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
    model
}

/// Checks that `store` holds exactly `model`, by gets and by a scan.
fn assert_holds(store: &Wisckey, model: &BTreeMap<Vec<u8>, Vec<u8>>, keys: usize) {
    for i in 0..keys {
        assert_eq!(
            store.get(&key(i)).unwrap().as_ref(),
            model.get(&key(i)),
            "key {i}"
        );
    }
    let scanned: BTreeMap<Vec<u8>, Vec<u8>> =
        scan_vec(store, KeyRange::all()).into_iter().collect();
    assert_eq!(&scanned, model);
}

/// One of the store's extra counters.
fn extra(store: &Wisckey, name: &str) -> u64 {
    store.stats().unwrap().extra[name]
}

#[test]
fn collection_reclaims_the_space_of_overwrites_and_deletes() {
    let (_tmp, store) = common::new_store(&options());
    let model = overwrite(&store, 200, 5);
    let before = extra(&store, "vlog_bytes");
    let live = store.stats().unwrap().live_data_bytes;
    store.compact().unwrap();
    let after = extra(&store, "vlog_bytes");
    assert_holds(&store, &model, 200);
    assert!(extra(&store, "gc_segments_deleted") > 0);
    assert!(extra(&store, "gc_values_relocated") > 0);
    // Five rounds of values, less a fifth of the keys: the log shrinks to the live values,
    // their record headers and the segments' headers and seals.
    assert!(before > 4 * live, "{before} bytes before, {live} live");
    assert!(after < 2 * live, "{after} bytes after, {live} live");
    let dir = store.dir().to_path_buf();
    store.close().unwrap();
    let store = Wisckey::open(&dir, &options()).unwrap();
    assert_holds(&store, &model, 200);
    // Collecting again finds nothing dead to free.
    let sealed_before = extra(&store, "vlog_segments");
    assert_eq!(store.collect_garbage(0.01).unwrap(), 0);
    assert_eq!(extra(&store, "vlog_segments"), sealed_before);
}

#[test]
fn the_background_collector_frees_segments_without_compact() {
    let settings = "value_threshold=8 vlog_segment_bytes=2K gc_dead_ratio=0.5 \
                    memtable_bytes=4K table_bytes=4K block_bytes=512";
    let (_tmp, store) = common::new_store(&common::options(settings));
    let model = overwrite(&store, 50, 20);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while extra(&store, "gc_segments_deleted") == 0 && std::time::Instant::now() < deadline {
        store.put(b"tick", &[b't'; 64]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        extra(&store, "gc_segments_deleted") > 0,
        "nothing was collected"
    );
    assert_eq!(extra(&store, "gc_errors"), 0);
    store.delete(b"tick").unwrap();
    assert_holds(&store, &model, 50);
}

#[test]
fn a_write_racing_a_collection_is_never_lost() {
    let (_tmp, store) = common::new_store(&options());
    overwrite(&store, 100, 2);
    let store = Arc::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Relaxed) || runs < 3 {
                store.collect_garbage(0.01).unwrap();
                runs += 1;
            }
            runs
        })
    };
    // Four writers, each with its own keys: overwrites and deletes, each one checked at
    // once and remembered.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut last = BTreeMap::new();
                for round in 0..40 {
                    for i in (w..100).step_by(4) {
                        if (i + round) % 7 == 0 {
                            store.delete(&key(i)).unwrap();
                            last.insert(key(i), None);
                        } else {
                            store.put(&key(i), &value(i, round + 10)).unwrap();
                            last.insert(key(i), Some(value(i, round + 10)));
                        }
                    }
                }
                last
            })
        })
        .collect();
    let mut model = BTreeMap::new();
    for writer in writers {
        for (k, v) in writer.join().unwrap() {
            if let Some(v) = v {
                model.insert(k, v);
            }
        }
    }
    stop.store(true, Relaxed);
    assert!(collector.join().unwrap() >= 3);
    store.collect_garbage(0.01).unwrap();
    assert_holds(&store, &model, 100);
    assert!(extra(&store, "gc_segments_deleted") > 0);
    let store = Arc::into_inner(store).unwrap();
    let dir = store.dir().to_path_buf();
    drop(store);
    let store = Wisckey::open(&dir, &options()).unwrap();
    assert_holds(&store, &model, 100);
}

/// The store every crash of [`a_power_loss_at_every_step_of_a_collection_loses_nothing`]
/// starts from: overwrites and deletes, synced, on a simulated disk. Returns its files and
/// what it holds.
fn store_to_collect() -> (FsImage, BTreeMap<Vec<u8>, Vec<u8>>) {
    let fs = FaultFs::new(7);
    let opts = options().with_file_system(Arc::new(fs.clone()));
    let store = Wisckey::open(&store_path(), &opts).unwrap();
    let model = overwrite(&store, 40, 4);
    store.close().unwrap();
    (fs.image(), model)
}

/// Opens `image` on a fresh disk, crashes it at the `k`-th file operation of a `compact`
/// (`None`: no crash), powers back on and checks that the store holds `model`, then
/// compacts it again and checks once more. Returns the operations the `compact` made.
fn collect_with_crash(image: &FsImage, model: &BTreeMap<Vec<u8>, Vec<u8>>, k: Option<u64>) -> u64 {
    let fs = FaultFs::from_image(k.unwrap_or(0), image);
    let opts = options().with_file_system(Arc::new(fs.clone()));
    let store = Wisckey::open(&store_path(), &opts).unwrap();
    let before = fs.mutations();
    if let Some(k) = k {
        fs.crash_at_mutation(k);
    }
    if let Err(e) = store.compact() {
        assert!(fs.is_down(), "compact failed with the disk up: {e}");
    }
    let made = fs.mutations() - before;
    fs.crash();
    drop(store);
    fs.restart();
    let store = Wisckey::open(&store_path(), &opts)
        .unwrap_or_else(|e| panic!("crash at operation {k:?}: reopen: {e}"));
    assert_holds(&store, model, 40);
    store.compact().unwrap();
    assert_holds(&store, model, 40);
    made
}

#[test]
fn a_power_loss_at_every_step_of_a_collection_loses_nothing() {
    let (image, model) = store_to_collect();
    let total = collect_with_crash(&image, &model, None);
    assert!(total > 20, "a collection of {total} file operations");
    let points = total.min(150);
    for i in 0..points {
        collect_with_crash(&image, &model, Some(1 + i * total / points));
    }
    eprintln!("wisckey: a power loss at {points} of the {total} file operations of a collection");
}

/// The path of segment `id` of the store in `dir`.
fn segment_path(dir: &Path, id: u32) -> PathBuf {
    wisckey::file_names::segment(&wisckey::file_names::vlog_dir(dir), id)
}

#[test]
fn a_cursor_opened_before_a_collection_reads_the_segments_it_deleted() {
    let (_tmp, store) = common::new_store(&options());
    let model = overwrite(&store, 100, 3);
    store.value_log().seal_active().unwrap();
    let oldest = *store.value_log().segments().keys().next().unwrap();
    let mut cursor = store.cursor().unwrap();
    cursor.seek_to_first().unwrap();
    assert!(store.collect_garbage(0.01).unwrap() > 0);
    assert!(!store.value_log().segments().contains_key(&oldest));
    assert!(
        segment_path(store.dir(), oldest).exists(),
        "the cursor still holds the collected segment"
    );
    let mut seen = BTreeMap::new();
    while cursor.valid() {
        seen.insert(cursor.key().to_vec(), cursor.value().to_vec());
        cursor.next().unwrap();
    }
    assert_eq!(seen, model);
    drop(cursor);
    assert!(
        !segment_path(store.dir(), oldest).exists(),
        "gone with the cursor"
    );
    assert_holds(&store, &model, 100);
}

/// The pointer the tree holds for `key`.
fn pointer_of(store: &Wisckey, key: &[u8]) -> ValuePointer {
    let value = store.tree().get(key).unwrap().unwrap();
    match value_pointer::decode(&value).unwrap() {
        TreeValue::Pointer(p) => p,
        TreeValue::Inline(_) => panic!("an inline value"),
    }
}

/// Writes some values, closes the store, changes the bytes of `key(3)`'s record with
/// `damage` (given the record's bytes), reopens and returns what a `get` of it says.
fn get_after_damage(damage: impl Fn(&mut Vec<u8>)) -> Result<Option<Vec<u8>>, Error> {
    let tmp = tempfile::tempdir().unwrap();
    let store = Wisckey::open(tmp.path(), &options()).unwrap();
    for i in 0..40 {
        store.put(&key(i), &value(i, 0)).unwrap();
    }
    let p = pointer_of(&store, &key(3));
    assert!(
        p.segment < store.value_log().active_id(),
        "in a sealed segment"
    );
    store.close().unwrap();
    let path = segment_path(tmp.path(), p.segment);
    let mut bytes = Fs::default().read_all(&path).unwrap();
    let range = p.offset as usize..p.end() as usize;
    let mut record = bytes[range.clone()].to_vec();
    damage(&mut record);
    bytes[range].copy_from_slice(&record);
    std::fs::write(&path, &bytes).unwrap();
    let store = Wisckey::open(tmp.path(), &options()).unwrap();
    let got = store.get(&key(3));
    match &got {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!((file, *offset), (&path, p.offset), "names the record");
        }
        other => assert!(other.is_ok(), "{other:?}"),
    }
    got
}

#[test]
fn a_damaged_value_record_is_corruption_never_a_wrong_value() {
    for at in [0, 5, 21, 30, 40, 90] {
        let got = get_after_damage(|record| record[at] ^= 0x20);
        assert!(
            matches!(got, Err(Error::Corruption { .. })),
            "flip at {at}: {got:?}"
        );
    }
    // A whole, valid record of another key, where the pointer expects key 3's: its
    // checksum holds, its key does not.
    let got = get_after_damage(|record| {
        let key_at = bitcask::record::RECORD_HEADER_LEN;
        record[key_at + 6] = b'9';
        let crc = kv_shared::framing::crc32(&record[4..]);
        record[..4].copy_from_slice(&crc.to_le_bytes());
    });
    match got {
        Err(Error::Corruption { detail, .. }) => assert!(detail.contains("key"), "{detail}"),
        other => panic!("another key's record read as {other:?}"),
    }
}

#[test]
fn segments_of_small_values_and_deletes_go_without_a_flush_of_the_tree() {
    let settings = "value_threshold=1K vlog_segment_bytes=2K gc_dead_ratio=0";
    let (_tmp, store) = common::new_store(&common::options(settings));
    let model = overwrite(&store, 50, 3);
    store.value_log().seal_active().unwrap();
    let (flushes, moved) = (
        extra(&store, "tree_flushes"),
        extra(&store, "gc_values_relocated"),
    );
    assert!(store.collect_garbage(0.5).unwrap() >= 3);
    assert_eq!(
        extra(&store, "tree_flushes"),
        flushes,
        "no flush of the tree"
    );
    assert_eq!(extra(&store, "gc_values_relocated"), moved, "nothing moved");
    assert_eq!(
        extra(&store, "vlog_segments"),
        1,
        "only the active segment is left"
    );
    assert_holds(&store, &model, 50);
}

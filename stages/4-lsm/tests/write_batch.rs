//! Write batches (`Engine::write`) are atomic: readers see all of a batch or none of it, a crash that tears
//! the batch's WAL record loses all of it, a later op on a key wins over an earlier one,
//! and a batch over the limits is refused before anything is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kv_shared::{Engine, Error, KeyRange, MAX_VALUE_LEN, Options, WriteBatch};
use kv_testkit::conformance::scan_vec;
use kv_testkit::fault_fs::FaultFs;
use kv_testkit::knobs::seed;
use kv_testkit::power_loss::store_path;
use lsm::LsmTree;

const KEYS: usize = 16;

fn key(i: usize) -> Vec<u8> {
    format!("k{i:02}").into_bytes()
}

fn marker(generation: u64) -> Vec<u8> {
    format!("z{generation:06}").into_bytes()
}

/// The batch that moves the store from `generation - 1` to `generation`: every key set to
/// the generation, the old marker deleted, the new one put.
fn generation_batch(generation: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    let value = generation.to_string().into_bytes();
    for i in 0..KEYS {
        b.put(&key(i), &value).unwrap();
    }
    if generation > 0 {
        b.delete(&marker(generation - 1)).unwrap();
    }
    b.put(&marker(generation), &value).unwrap();
    b
}

/// The generation a scan of the whole store shows, panicking on a mix of two.
fn scanned_generation(e: &LsmTree) -> u64 {
    let all = scan_vec(e, KeyRange::all());
    assert_eq!(all.len(), KEYS + 1, "keys and one marker: {all:?}");
    let generation: u64 = String::from_utf8(all[0].1.clone())
        .unwrap()
        .parse()
        .unwrap();
    for (k, v) in &all[..KEYS] {
        assert_eq!(
            v,
            generation.to_string().as_bytes(),
            "key {} from another batch than key 0",
            String::from_utf8_lossy(k)
        );
    }
    assert_eq!(
        all[KEYS].0,
        marker(generation),
        "the marker of the same batch"
    );
    generation
}

/// A reader scanning and getting while a writer applies batches (with flushes going on:
/// a small memtable) never sees part of a batch: a scan shows one generation everywhere,
/// and gets in the batch's own key order never see a later key older than an earlier one.
#[test]
fn readers_see_all_of_a_batch_or_none_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let options = Options::new()
        .set("memtable_bytes", "8K")
        .set("table_bytes", "4K")
        .set("block_bytes", "512");
    let e = LsmTree::open(tmp.path(), &options).unwrap();
    e.write(&generation_batch(0)).unwrap();
    let generations = 300;
    let done = AtomicBool::new(false);
    let (scans, gets) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let (mut scans, mut gets, mut last) = (0, 0, 0);
            while !done.load(Ordering::Relaxed) {
                let seen = scanned_generation(&e);
                assert!(seen >= last, "generations go forward: {seen} after {last}");
                last = seen;
                scans += 1;
                let mut previous = 0;
                for i in 0..KEYS {
                    let v = e.get(&key(i)).unwrap().expect("every key is always set");
                    let g: u64 = String::from_utf8(v).unwrap().parse().unwrap();
                    assert!(
                        g >= previous,
                        "key {i} at generation {g} after an earlier key at {previous}"
                    );
                    previous = g;
                    gets += 1;
                }
            }
            (scans, gets)
        });
        for generation in 1..=generations {
            e.write(&generation_batch(generation)).unwrap();
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(scans > 0 && gets > 0);
    assert_eq!(scanned_generation(&e), generations);
    assert!(
        e.stats().unwrap().extra["flushes"] > 0,
        "batches crossed flushes"
    );
    e.close().unwrap();
    let e = LsmTree::open(tmp.path(), &options).unwrap();
    assert_eq!(scanned_generation(&e), generations);
}

/// A crash that cuts the WAL anywhere inside a batch's record loses the whole batch, and
/// only it: the store reopens at the generation before, never between the two.
#[test]
fn a_torn_batch_record_is_dropped_whole() {
    let fs = FaultFs::new(seed("write_batch_torn", 61));
    let options = Options::new().with_file_system(Arc::new(fs.clone()));
    let e = LsmTree::open(&store_path(), &options).unwrap();
    e.write(&generation_batch(0)).unwrap();
    e.write(&generation_batch(1)).unwrap();
    let wal = |image: &kv_testkit::fault_fs::FsImage| {
        let mut wals: Vec<_> = image
            .keys()
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .cloned()
            .collect();
        wals.sort();
        wals.pop().expect("a WAL")
    };
    let before = fs.image();
    let path = wal(&before);
    let start = before[&path].len();
    e.write(&generation_batch(2)).unwrap();
    let after = fs.image();
    assert_eq!(wal(&after), path, "one WAL holds all three batches");
    let end = after[&path].len();
    drop(e);
    assert!(
        end - start > 100,
        "the batch record is {} bytes",
        end - start
    );
    for cut in start..=end {
        let mut image = after.clone();
        image.get_mut(&path).unwrap().truncate(cut);
        let disk = FaultFs::from_image(cut as u64, &image);
        let options = Options::new().with_file_system(Arc::new(disk));
        let e = LsmTree::open(&store_path(), &options).unwrap();
        let expected = if cut == end { 2 } else { 1 };
        assert_eq!(scanned_generation(&e), expected, "WAL cut at {cut}");
    }
}

/// Ops apply in order, so a later op on a key wins over an earlier one in the same batch,
/// before and after a restart (which replays the batch from the WAL).
#[test]
fn a_later_op_on_a_key_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let e = LsmTree::open(tmp.path(), &Options::new()).unwrap();
    let mut b = WriteBatch::new();
    b.put(b"a", b"1").unwrap();
    b.delete(b"a").unwrap();
    b.put(b"a", b"2").unwrap();
    b.put(b"b", b"1").unwrap();
    b.delete(b"b").unwrap();
    assert_eq!(b.len(), 5);
    e.write(&b).unwrap();
    let expected = vec![(b"a".to_vec(), b"2".to_vec())];
    assert_eq!(scan_vec(&e, KeyRange::all()), expected);
    drop(e);
    let e = LsmTree::open(tmp.path(), &Options::new()).unwrap();
    assert_eq!(scan_vec(&e, KeyRange::all()), expected);
    assert_eq!(e.stats().unwrap().extra["recovery_wal_records"], 1);
}

/// A batch too large for one WAL record is refused with `InvalidArgument` and writes
/// nothing; an empty batch writes nothing and succeeds; a batch can be cleared and reused.
#[test]
fn a_batch_over_the_record_limit_is_refused_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let e = LsmTree::open(tmp.path(), &Options::new()).unwrap();
    let big: Vec<u8> = (0..MAX_VALUE_LEN).map(|i| (i % 251) as u8).collect();
    let mut b = WriteBatch::new();
    b.put(b"first", b"small").unwrap();
    b.put(b"big1", &big).unwrap();
    b.put(b"big2", &big).unwrap();
    match e.write(&b) {
        Err(Error::InvalidArgument(message)) => {
            assert!(message.contains("WAL record limit"), "{message}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert_eq!(e.get(b"first").unwrap(), None, "nothing of it was written");
    let last = |e: &LsmTree| e.stats().unwrap().extra["last_sequence"];
    assert_eq!(last(&e), 0);
    e.write(&WriteBatch::new()).unwrap();
    assert_eq!(last(&e), 0, "an empty batch takes no sequence number");
    b.clear();
    b.put(b"big1", &big).unwrap();
    e.write(&b).unwrap();
    assert_eq!(e.get(b"big1").unwrap().as_deref(), Some(&big[..]));
    assert_eq!(last(&e), 1);
}

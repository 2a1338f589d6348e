//! Write batches (`Engine::write`) in this engine's WAL: a crash that tears a batch's
//! record loses all of the batch, a batch is one WAL record (in which a later op on a key
//! wins, also when it is replayed), and a batch over the record limit is refused before
//! anything is written. That readers see all of a batch or none of it, while flushes and
//! compactions run, the conformance suite checks (`tests/conformance.rs`).

use std::sync::Arc;

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

/// Batch `n` (below [`KEYS`]): every key set to `n`, then key `n` deleted.
fn numbered_batch(n: usize) -> WriteBatch {
    let mut b = WriteBatch::new();
    let value = n.to_string().into_bytes();
    for i in 0..KEYS {
        b.put(&key(i), &value).unwrap();
    }
    b.delete(&key(n)).unwrap();
    b
}

/// A crash that cuts the WAL anywhere inside a batch's record loses the whole batch, and
/// only it: the store reopens as it was before the batch, never with part of it.
#[test]
fn a_torn_batch_record_is_dropped_whole() {
    let fs = FaultFs::new(seed("write_batch_torn", 61));
    let options = Options::new().with_file_system(Arc::new(fs.clone()));
    let e = LsmTree::open(&store_path(), &options).unwrap();
    e.write(&numbered_batch(0)).unwrap();
    e.write(&numbered_batch(1)).unwrap();
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
    let without = scan_vec(&e, KeyRange::all());
    e.write(&numbered_batch(2)).unwrap();
    let with = scan_vec(&e, KeyRange::all());
    assert_ne!(with, without);
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
        let expected = if cut == end { &with } else { &without };
        assert_eq!(&scan_vec(&e, KeyRange::all()), expected, "WAL cut at {cut}");
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

//! Write batches in this stage: one WAL record each, applied to one memtable whole, kept
//! whole by flushes, compactions and reopens, and replayed whole or dropped whole when a
//! crash cut the record. (The shared suite checks the contract itself: ops in order, the
//! limits, readers seeing all or nothing.)

mod common;

use std::path::Path;

use common::{Model, open_with, pairs, random_batch, seeded};
use kv_shared::{Engine, Error, KeyRange, MAX_KEY_LEN, MAX_VALUE_LEN, WriteBatch};
use kv_testkit::conformance::scan_vec;
use kv_testkit::damaged_record::RecordInStore;
use kv_testkit::fixtures::{AFTER, BATCH, BEFORE, Op, apply, batch_of, model_of};
use sstable::SstableStore;

/// The pairs after `ops`, in key order.
fn expected(ops: &[&[Op]]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs(&model_of(ops))
}

fn open(dir: &Path) -> SstableStore {
    open_with(dir, &[])
}

/// A store in `tmp` holding `BEFORE`, `BATCH` as one batch, then `after`, all in its first
/// WAL; dropped without closing, so that no flush moves them into a table.
fn batch_in_store(tmp: &Path, after: &[Op]) -> RecordInStore {
    let (dir, options) = (tmp.join("db"), common::options(&[]));
    RecordInStore::batch::<SstableStore>(&dir, &options, "000001.wal", after, "wal_torn_tail_bytes")
}

#[test]
fn a_batch_is_one_wal_record_replayed_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let record = batch_in_store(tmp.path(), AFTER);
    let dump = sstable::inspect(&record.bytes()).unwrap();
    assert_eq!(
        dump.matches("-- record").count(),
        BEFORE.len() + 1 + AFTER.len()
    );
    assert!(dump.contains("kind 3 (write batch)") && dump.contains("op count 5"));
    let e = open(&record.dir);
    let replayed = e.stats().unwrap().extra["wal_records_replayed"];
    assert_eq!(replayed, (BEFORE.len() + 1 + AFTER.len()) as u64);
    assert_eq!(
        scan_vec(&e, KeyRange::all()),
        expected(&[BEFORE, BATCH, AFTER])
    );
}

/// Cutting the WAL at every offset inside the batch record replays none of the batch (a
/// torn tail), and at its end all of it; gets agree, and writes go on.
#[test]
fn a_cut_anywhere_inside_the_batch_record_recovers_none_or_all() {
    let tmp = tempfile::tempdir().unwrap();
    let record = batch_in_store(tmp.path(), &[]);
    record.cut_at_every_byte::<SstableStore>(&common::options(&[]), |_, _| {});
}

/// Damage anywhere in a batch record with a record after it is no torn write: open refuses
/// the store with `Corruption` at the batch's offset and leaves the WAL as it was.
#[test]
fn a_damaged_batch_before_another_record_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let record = batch_in_store(tmp.path(), AFTER);
    record.flip_every_byte::<SstableStore>(&common::options(&[]), |_, _| {});
}

#[test]
fn batches_stay_whole_through_flushes_compactions_and_reopens() {
    let (_tmp, dir, seed, mut rng) = seeded("sstable batches", 41);
    let settings = [("memtable_bytes", "150"), ("block_bytes", "128")];
    let mut e = open_with(&dir, &settings);
    let mut model = Model::new();
    let mut flushes = 0;
    for round in 0..200 {
        e.write(&random_batch(&mut rng, &mut model, 40, round))
            .unwrap();
        if round % 50 == 25 {
            e.compact().unwrap();
        }
        if round % 60 == 59 {
            flushes += e.stats().unwrap().extra["flushes"];
            drop(e);
            e = open_with(&dir, &settings);
        }
    }
    flushes += e.stats().unwrap().extra["flushes"];
    assert!(flushes > 10, "the memtable filled many times: {flushes}");
    assert_eq!(scan_vec(&e, KeyRange::all()), pairs(&model), "seed {seed}");
    e.close().unwrap();
    let e = open_with(&dir, &settings);
    let reopened = scan_vec(&e, KeyRange::all());
    assert_eq!(reopened, pairs(&model), "reopened, seed {seed}");
}

#[test]
fn an_empty_batch_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let e = open(tmp.path());
    apply(&e, BEFORE);
    let before = e.stats().unwrap();
    e.write(&WriteBatch::new()).unwrap();
    let after = e.stats().unwrap();
    assert_eq!(after.extra["wal_bytes"], before.extra["wal_bytes"]);
    assert_eq!(after.user_bytes_written, before.user_bytes_written);
    assert_eq!(after.disk_bytes_written, before.disk_bytes_written);
}

#[test]
fn a_batch_over_one_wal_record_is_refused_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let e = open(tmp.path());
    apply(&e, BEFORE);
    let wal_bytes = e.stats().unwrap().extra["wal_bytes"];
    let mut batch = WriteBatch::new();
    batch.put(b"apple", b"in the batch").unwrap();
    let value = vec![7; MAX_VALUE_LEN];
    batch.put(&[b'k'; MAX_KEY_LEN], &value).unwrap();
    batch.put(b"second", &value).unwrap();
    assert!(matches!(e.write(&batch), Err(Error::InvalidArgument(_))));
    assert_eq!(e.stats().unwrap().extra["wal_bytes"], wal_bytes);
    assert_eq!(scan_vec(&e, KeyRange::all()), expected(&[BEFORE]));
    e.write(&batch_of(BATCH)).unwrap();
    assert_eq!(scan_vec(&e, KeyRange::all()), expected(&[BEFORE, BATCH]));
}

//! Write batches in this stage: one WAL record each, applied to one memtable whole, kept
//! whole by flushes, compactions and reopens, and replayed whole or dropped whole when a
//! crash cut the record. (The shared suite checks the contract itself: ops in order, the
//! limits, readers seeing all or nothing.)

mod common;

use std::path::{Path, PathBuf};

use common::{Model, open_with, pairs, random_batch, seeded};
use kv_shared::{Engine, Error, KeyRange, MAX_KEY_LEN, MAX_VALUE_LEN, Options, WriteBatch};
use kv_testkit::conformance::scan_vec;
use sstable::SstableStore;

/// A put (`Some(value)`) or a delete (`None`) of a key.
type Op = (&'static [u8], Option<&'static [u8]>);

/// Three puts, one at a time.
const BEFORE: &[Op] = &[
    (b"apple", Some(b"red")),
    (b"banana", Some(b"yellow")),
    (b"cherry", Some(b"dark red")),
];

/// An overwrite, a delete of a live key, a new key, a second overwrite of the same key (the
/// later op wins), and a delete of a key that is not there.
const BATCH: &[Op] = &[
    (b"apple", Some(b"green")),
    (b"banana", None),
    (b"date", Some(b"brown")),
    (b"apple", Some(b"pink")),
    (b"empty", None),
];

/// A put after the batch, so that the batch is not the last record.
const AFTER: &[Op] = &[(b"empty", Some(b""))];

fn batch_of(ops: &[Op]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for (key, value) in ops {
        match value {
            Some(value) => batch.put(key, value).unwrap(),
            None => batch.delete(key).unwrap(),
        }
    }
    batch
}

/// Applies `ops` one call at a time.
fn apply(e: &SstableStore, ops: &[Op]) {
    for (key, value) in ops {
        match value {
            Some(value) => e.put(key, value).unwrap(),
            None => e.delete(key).unwrap(),
        }
    }
}

/// The pairs after `ops`, in key order.
fn expected(ops: &[&[Op]]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut model = Model::new();
    for (key, value) in ops.concat() {
        match value {
            Some(value) => model.insert(key.to_vec(), value.to_vec()),
            None => model.remove(key),
        };
    }
    pairs(&model)
}

fn open(dir: &Path) -> SstableStore {
    open_with(dir, &[])
}

/// A store holding `BEFORE`, `BATCH` as one batch, then `after`; dropped without closing.
/// Returns the directory, the path of its WAL and the offset where the batch's record
/// starts in it.
fn store_with_batch(tmp: &Path, after: &[Op]) -> (PathBuf, PathBuf, u64) {
    let dir = tmp.join("db");
    let e = open(&dir);
    apply(&e, BEFORE);
    let batch_at = e.stats().unwrap().extra["wal_bytes"];
    e.write(&batch_of(BATCH)).unwrap();
    apply(&e, after);
    drop(e);
    let wal = only_wal(&dir);
    (dir, wal, batch_at)
}

fn only_wal(dir: &Path) -> PathBuf {
    let wals: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    assert_eq!(wals.len(), 1, "{wals:?}");
    wals[0].clone()
}

/// A copy of the store in `dir`, with its WAL replaced by `wal_bytes`.
fn copy_with_wal(dir: &Path, wal: &Path, wal_bytes: &[u8], to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for file in std::fs::read_dir(dir).unwrap() {
        let from = file.unwrap().path();
        std::fs::copy(&from, to.join(from.file_name().unwrap())).unwrap();
    }
    std::fs::write(to.join(wal.file_name().unwrap()), wal_bytes).unwrap();
}

#[test]
fn a_batch_is_one_wal_record_replayed_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, wal, _) = store_with_batch(tmp.path(), AFTER);
    let dump = sstable::inspect(&std::fs::read(&wal).unwrap()).unwrap();
    assert_eq!(
        dump.matches("-- record").count(),
        BEFORE.len() + 1 + AFTER.len()
    );
    assert!(dump.contains("kind 3 (write batch)") && dump.contains("op count 5"));
    let e = open(&dir);
    let replayed = e.stats().unwrap().extra["wal_records_replayed"];
    assert_eq!(replayed, (BEFORE.len() + 1 + AFTER.len()) as u64);
    assert_eq!(
        scan_vec(&e, KeyRange::all()),
        expected(&[BEFORE, BATCH, AFTER])
    );
}

#[test]
fn a_cut_anywhere_inside_the_batch_record_recovers_none_or_all() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, wal, batch_at) = store_with_batch(tmp.path(), &[]);
    let whole = std::fs::read(&wal).unwrap();
    for cut in batch_at as usize..=whole.len() {
        let copy = tmp.path().join(format!("cut{cut}"));
        copy_with_wal(&dir, &wal, &whole[..cut], &copy);
        let e = open(&copy);
        let batch_survived = cut == whole.len();
        let want = if batch_survived {
            expected(&[BEFORE, BATCH])
        } else {
            expected(&[BEFORE])
        };
        assert_eq!(scan_vec(&e, KeyRange::all()), want, "cut at {cut}");
        let torn = e.stats().unwrap().extra["wal_torn_tail_bytes"];
        assert_eq!(
            torn,
            (cut - batch_at as usize) as u64 * u64::from(!batch_survived)
        );
        // The batch is either wholly there or wholly gone, for gets too, and writes go on.
        assert_eq!(e.get(b"date").unwrap().is_some(), batch_survived);
        e.put(b"fig", b"purple").unwrap();
        e.close().unwrap();
    }
}

#[test]
fn a_damaged_batch_before_another_record_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, wal, batch_at) = store_with_batch(tmp.path(), AFTER);
    let whole = std::fs::read(&wal).unwrap();
    let mut damaged = whole.clone();
    damaged[batch_at as usize + 12] ^= 0x40;
    let copy = tmp.path().join("damaged");
    copy_with_wal(&dir, &wal, &damaged, &copy);
    match SstableStore::open(&copy, &Options::new()) {
        Err(Error::Corruption { offset, .. }) => assert_eq!(offset, batch_at),
        other => panic!("expected corruption at {batch_at}, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(copy.join(wal.file_name().unwrap())).unwrap(),
        damaged
    );
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

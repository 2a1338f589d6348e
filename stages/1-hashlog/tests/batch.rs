//! Write batches: one record each, which readers see whole or not at all, and which a
//! reopen keeps whole or drops whole.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use common::{BatchLog, Op, apply, assert_holds, batch_of, data_path, model, store_with};
use hashlog::HashLog;
use hashlog::record::{BATCH_HEADER_LEN, BatchRecord, Record, put_op_len};
use kv_shared::{Engine, Error, KeyRange, MAX_KEY_LEN, MAX_VALUE_LEN, Options, WriteBatch};
use kv_testkit::hook_fs::{Action, HookFs, Op as FsOp};

/// Three puts, one at a time.
const BEFORE: &[Op] = &[
    (b"apple", Some(b"red")),
    (b"banana", Some(b"yellow")),
    (b"cherry", Some(b"dark red")),
];

/// A batch: an overwrite, a delete of a live key, a new key, a second overwrite of the same
/// key (the later op wins), and a delete of a key that is not there.
const BATCH: &[Op] = &[
    (b"apple", Some(b"green")),
    (b"banana", None),
    (b"date", Some(b"brown")),
    (b"apple", Some(b"pink")),
    (b"empty", None),
];

/// A put after the batch, so that the batch is not the last record.
const AFTER: &[Op] = &[(b"empty", Some(b""))];

/// The state after `before`, then all of `BATCH` or none of it.
fn expected(before: &[Op], with_batch: bool) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let ops = if with_batch {
        [before, BATCH].concat()
    } else {
        before.to_vec()
    };
    model(&ops, ops.len())
}

/// A fresh store in a new temporary directory, holding `BEFORE`.
fn store_with_before(options: &Options) -> (tempfile::TempDir, HashLog) {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), options).unwrap();
    apply(&engine, BEFORE);
    (tmp, engine)
}

fn file_len(dir: &std::path::Path) -> u64 {
    std::fs::metadata(data_path(dir)).unwrap().len()
}

#[test]
fn a_batch_applies_its_ops_in_order_as_one_record() {
    let (tmp, engine) = store_with_before(&Options::new());
    let before = file_len(tmp.path());
    let written = engine.stats().unwrap().user_bytes_written;
    let batch = batch_of(BATCH);
    engine.write(&batch).unwrap();

    let record = BatchRecord::of(&batch).unwrap().encoded_len() as u64;
    assert_eq!(file_len(tmp.path()), before + record, "one record");
    assert_holds(&engine, &expected(BEFORE, true), "after the batch");
    let stats = engine.stats().unwrap();
    let batch_bytes: usize = BATCH
        .iter()
        .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
        .sum();
    assert_eq!(stats.user_bytes_written, written + batch_bytes as u64);
    // Alive: cherry's put record, and the ops of apple's last put and of date's put.
    let alive =
        Record::put(b"cherry", b"dark red").encoded_len() + put_op_len(5, 4) + put_op_len(4, 5);
    assert_eq!(
        stats.extra["dead_bytes"],
        file_len(tmp.path()) - 16 - alive as u64
    );
    // A value the batch wrote is one read, like any other.
    let reads = stats.get_disk_reads;
    assert_eq!(engine.get(b"date").unwrap().as_deref(), Some(&b"brown"[..]));
    assert_eq!(engine.stats().unwrap().get_disk_reads, reads + 1);
    engine.close().unwrap();

    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    assert_holds(&engine, &expected(BEFORE, true), "after reopening");
    let stats = engine.stats().unwrap();
    assert_eq!(stats.extra["replayed_records"], BEFORE.len() as u64 + 1);
    assert_eq!(
        stats.extra["dead_bytes"],
        file_len(tmp.path()) - 16 - alive as u64
    );
    engine.close().unwrap();
}

#[test]
fn an_empty_batch_is_a_no_op() {
    let (tmp, engine) = store_with_before(&Options::new());
    let len = file_len(tmp.path());
    let stats = engine.stats().unwrap();
    engine.write(&WriteBatch::new()).unwrap();
    assert_eq!(file_len(tmp.path()), len);
    let after = engine.stats().unwrap();
    assert_eq!(after.disk_bytes_written, stats.disk_bytes_written);
    assert_eq!(after.user_bytes_written, stats.user_bytes_written);
    engine.close().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    assert_eq!(
        engine.stats().unwrap().extra["replayed_records"],
        BEFORE.len() as u64
    );
    engine.close().unwrap();
}

/// An op over a limit is refused when it is added to the batch, so nothing of it can
/// reach the file; the rest of the batch is written as it was.
#[test]
fn an_op_over_a_limit_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    let len = file_len(tmp.path());
    let mut batch = batch_of(&BATCH[..1]);
    let long_key = vec![b'k'; MAX_KEY_LEN + 1];
    assert!(matches!(
        batch.put(&long_key, b"v"),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        batch.delete(&long_key),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        batch.put(b"k", &vec![0; MAX_VALUE_LEN + 1]),
        Err(Error::ValueTooLarge { .. })
    ));
    assert_eq!(batch, batch_of(&BATCH[..1]), "the batch is unchanged");
    assert_eq!(file_len(tmp.path()), len, "nothing written");
    engine.write(&batch).unwrap();
    let one = BatchRecord::of(&batch).unwrap().encoded_len() as u64;
    assert_eq!(file_len(tmp.path()), len + one);
    assert_eq!(engine.get(&long_key).unwrap(), None);
    assert_eq!(
        engine.get(b"apple").unwrap().as_deref(),
        Some(&b"green"[..])
    );
    engine.close().unwrap();
}

/// An append of a batch that fails halfway is cut back off the file: no op of the batch is
/// seen, then or after a reopen, and the store goes on.
#[test]
fn a_failed_batch_append_is_undone() {
    let fs = HookFs::new();
    let options = Options::new().with_file_system(Arc::new(fs.clone()));
    let (tmp, engine) = store_with_before(&options);
    let len = file_len(tmp.path());
    fs.set_hook(|call| match call.op {
        FsOp::Append => Action::Cut(call.bytes / 2),
        _ => Action::Pass,
    });
    assert!(matches!(
        engine.write(&batch_of(BATCH)),
        Err(Error::Io { .. })
    ));
    fs.clear_hook();
    assert_eq!(file_len(tmp.path()), len, "the half batch was cut off");
    assert_holds(&engine, &expected(BEFORE, false), "after the failed batch");
    engine.write(&batch_of(BATCH)).unwrap();
    engine.close().unwrap();

    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    assert_holds(&engine, &expected(BEFORE, true), "after reopening");
    assert_eq!(engine.stats().unwrap().extra["torn_tail_bytes"], 0);
    engine.close().unwrap();
}

/// Batches that set every key to the same value, while readers check that each snapshot
/// they take (a cursor, a scan) shows every key at one value.
#[test]
fn readers_see_a_batch_whole_or_not_at_all() {
    const KEYS: usize = 20;
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    let key = |i: usize| format!("key{i:02}").into_bytes();
    let batch_setting_all_to = |round: u32| {
        let mut batch = WriteBatch::new();
        for i in 0..KEYS {
            batch.put(&key(i), &round.to_le_bytes()).unwrap();
        }
        batch
    };
    engine.write(&batch_setting_all_to(0)).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for reader in 0..2 {
            let (engine, done) = (&engine, &done);
            s.spawn(move || {
                let mut snapshots = 0;
                while !done.load(SeqCst) || snapshots < 10 {
                    let values: Vec<Vec<u8>> = if reader == 0 {
                        let mut cursor = engine.cursor().unwrap();
                        cursor.seek_to_first().unwrap();
                        let mut values = Vec::new();
                        while cursor.valid() {
                            values.push(cursor.value().to_vec());
                            cursor.next().unwrap();
                        }
                        values
                    } else {
                        let scan = engine.scan(KeyRange::all()).unwrap();
                        scan.map(|pair| pair.unwrap().1).collect()
                    };
                    assert_eq!(values.len(), KEYS);
                    assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
                    snapshots += 1;
                }
            });
        }
        for round in 1..300 {
            engine.write(&batch_setting_all_to(round)).unwrap();
        }
        done.store(true, SeqCst);
    });
    engine.close().unwrap();
}

/// Cutting the file at every offset inside the batch record reopens to none of the batch
/// (a torn tail, cut off), and at its end to all of it.
#[test]
fn a_log_cut_inside_a_batch_recovers_none_or_all_of_it() {
    let log = BatchLog::write(BEFORE, BATCH, &[]);
    assert_eq!(log.end, log.bytes.len() as u64);
    assert!(log.end - log.start > BATCH_HEADER_LEN as u64);
    for cut in log.start..=log.end {
        let (_tmp, dir) = store_with(&log.bytes[..cut as usize]);
        let whole = cut == log.end;
        let context = format!("cut at {cut}");
        let engine = HashLog::open(&dir, &Options::new()).unwrap();
        assert_holds(&engine, &expected(BEFORE, whole), &context);
        let torn = if whole { 0 } else { cut - log.start };
        assert_eq!(engine.stats().unwrap().extra["torn_tail_bytes"], torn);
        assert_eq!(file_len(&dir), if whole { log.end } else { log.start });
        engine.close().unwrap();
    }
}

/// Flipping bits of any byte of the batch record: as the last record it is dropped whole as
/// a torn tail; with a valid record after it, open refuses the store with `Corruption` at
/// the batch's offset and changes nothing. Never a part of the batch.
#[test]
fn a_damaged_batch_is_dropped_whole_or_refused() {
    for after in [&[][..], AFTER] {
        let log = BatchLog::write(BEFORE, BATCH, after);
        for offset in log.start..log.end {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut damaged = log.bytes.clone();
                damaged[offset as usize] ^= mask;
                let (_tmp, dir) = store_with(&damaged);
                let context = format!("flip {mask:#04x} at {offset}, {} after", after.len());
                let result = HashLog::open(&dir, &Options::new());
                if after.is_empty() {
                    let engine = result.unwrap_or_else(|e| panic!("{context}: {e}"));
                    assert_holds(&engine, &expected(BEFORE, false), &context);
                    let torn = engine.stats().unwrap().extra["torn_tail_bytes"];
                    assert_eq!(torn, log.end - log.start, "{context}");
                    engine.close().unwrap();
                } else {
                    match result {
                        Err(Error::Corruption { offset, .. }) => {
                            assert_eq!(offset, log.start, "{context}");
                        }
                        other => panic!("{context}: expected corruption, got {other:?}"),
                    }
                    assert!(std::fs::read(data_path(&dir)).unwrap() == damaged);
                }
            }
        }
    }
}

/// The batch's checksum covers all of it, so damage anywhere in the record fails a `get` of
/// any value the batch wrote, even one whose own bytes are intact.
#[test]
fn damage_anywhere_in_a_batch_fails_a_get_of_its_values() {
    let log = BatchLog::write(BEFORE, BATCH, AFTER);
    let (_tmp, dir) = store_with(&log.bytes);
    let engine = HashLog::open(&dir, &Options::new()).unwrap();
    // The first op: apple = green, which the batch itself overwrote.
    let first_op = log.start as usize + BATCH_HEADER_LEN;
    let mut damaged = log.bytes.clone();
    damaged[first_op + 3] ^= 0x01;
    std::fs::write(data_path(&dir), &damaged).unwrap();
    for key in [&b"apple"[..], b"date"] {
        match engine.get(key) {
            Err(Error::Corruption { offset, .. }) => assert_eq!(offset, log.start),
            other => panic!("get {key:?}: expected corruption, got {other:?}"),
        }
    }
    assert_eq!(
        engine.get(b"cherry").unwrap().as_deref(),
        Some(&b"dark red"[..])
    );
    engine.close().unwrap();
}

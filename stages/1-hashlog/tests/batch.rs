//! Write batches: one record each, which readers see whole or not at all, and which a
//! reopen keeps whole or drops whole.

mod common;

use std::sync::Arc;

use common::{apply, assert_holds, batch_of, data_path, file_len};
use hashlog::HashLog;
use hashlog::file_names::DATA_FILE;
use hashlog::record::{BATCH_HEADER_LEN, BatchRecord, Record, put_op_len};
use kv_shared::{Engine, Error, MAX_KEY_LEN, Options, WriteBatch};
use kv_testkit::conformance::{assert_refuses_one_byte_over, readers_see_whole_batches};
use kv_testkit::damaged_record::{RecordInStore, Reopened};
use kv_testkit::fixtures::{AFTER, BATCH, BEFORE, Op, model_of, user_bytes};
use kv_testkit::hook_fs::{Action, HookFs, Op as FsOp};

/// A fresh store in a new temporary directory, holding `BEFORE`.
fn store_with_before(options: &Options) -> (tempfile::TempDir, HashLog) {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), options).unwrap();
    apply(&engine, BEFORE);
    (tmp, engine)
}

/// A store in `dir` written with `BEFORE`, `BATCH` as one batch, then `after`.
fn batch_in_store(dir: &std::path::Path, after: &[Op]) -> RecordInStore {
    RecordInStore::batch::<HashLog>(dir, &Options::new(), DATA_FILE, after, "torn_tail_bytes")
}

/// Stage 1's own check of a store reopened after a cut or a flip: its statistics count what
/// it holds.
fn stats_agree(engine: &HashLog, reopened: &Reopened) {
    assert_holds(engine, reopened.model, reopened.context);
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
    assert_holds(&engine, &model_of(&[BEFORE, BATCH]), "after the batch");
    let stats = engine.stats().unwrap();
    assert_eq!(stats.user_bytes_written, written + user_bytes(BATCH));
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
    assert_holds(&engine, &model_of(&[BEFORE, BATCH]), "after reopening");
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
    assert_refuses_one_byte_over(|key, value| match value {
        Some(value) => batch.put(key, value),
        None => batch.delete(key),
    });
    assert_eq!(batch, batch_of(&BATCH[..1]), "the batch is unchanged");
    assert_eq!(file_len(tmp.path()), len, "nothing written");
    engine.write(&batch).unwrap();
    let one = BatchRecord::of(&batch).unwrap().encoded_len() as u64;
    assert_eq!(file_len(tmp.path()), len + one);
    assert_eq!(engine.get(&[b'k'; MAX_KEY_LEN + 1]).unwrap(), None);
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
    assert_holds(&engine, &model_of(&[BEFORE]), "after the failed batch");
    engine.write(&batch_of(BATCH)).unwrap();
    engine.close().unwrap();

    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    assert_holds(&engine, &model_of(&[BEFORE, BATCH]), "after reopening");
    assert_eq!(engine.stats().unwrap().extra["torn_tail_bytes"], 0);
    engine.close().unwrap();
}

/// Batches that set every key to a new generation, while readers check that each snapshot
/// they take (scans, cursors, gets in order) shows every key at one generation.
#[test]
fn readers_see_a_batch_whole_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    readers_see_whole_batches(&engine, 300);
    engine.close().unwrap();
}

/// Cutting the file at every offset inside the batch record reopens to none of the batch
/// (a torn tail, cut off), and at its end to all of it.
#[test]
fn a_log_cut_inside_a_batch_recovers_none_or_all_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let record = batch_in_store(tmp.path(), &[]);
    assert!(record.at.end - record.at.start > BATCH_HEADER_LEN as u64);
    record.cut_at_every_byte(&Options::new(), stats_agree);
}

/// Flipping bits of any byte of the batch record: as the last record it is dropped whole as
/// a torn tail; with a valid record after it, open keeps the records before the batch, cuts
/// the file at the batch's offset and keeps the whole damaged file in `lost/`. Never a part
/// of the batch.
#[test]
fn a_damaged_batch_is_dropped_whole_or_refused() {
    for after in [&[][..], AFTER] {
        let tmp = tempfile::tempdir().unwrap();
        let record = batch_in_store(tmp.path(), after);
        record.flip_every_byte(&Options::new(), stats_agree);
    }
}

/// The batch's checksum covers all of it, so damage anywhere in the record fails a `get` of
/// any value the batch wrote, even one whose own bytes are intact.
#[test]
fn damage_anywhere_in_a_batch_fails_a_get_of_its_values() {
    let tmp = tempfile::tempdir().unwrap();
    let record = batch_in_store(tmp.path(), AFTER);
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    // The first op: apple = green, which the batch itself overwrote.
    let first_op = record.at.start as usize + BATCH_HEADER_LEN;
    let mut damaged = record.bytes();
    damaged[first_op + 3] ^= 0x01;
    std::fs::write(data_path(tmp.path()), &damaged).unwrap();
    for key in [&b"apple"[..], b"date"] {
        match engine.get(key) {
            Err(Error::Corruption { offset, .. }) => assert_eq!(offset, record.at.start),
            other => panic!("get {key:?}: expected corruption, got {other:?}"),
        }
    }
    assert_eq!(
        engine.get(b"cherry").unwrap().as_deref(),
        Some(&b"dark red"[..])
    );
    engine.close().unwrap();
}

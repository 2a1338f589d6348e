//! Write batches: one record each, which readers see whole or not at all, which a reopen
//! keeps whole or drops whole, and which a merge rewrites as plain records.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bitcask::Bitcask;
use bitcask::record::{self, BATCH_HEADER_LEN, MAX_BATCH_OPS_LEN, RECORD_HEADER_LEN};
use common::*;
use kv_shared::{Engine, Error, MAX_VALUE_LEN, Options, WriteBatch};
use kv_testkit::conformance::readers_see_whole_batches;
use kv_testkit::damaged_record::RecordInStore;
use kv_testkit::fixtures::{AFTER, BATCH, BEFORE, Op, apply, batch_of, model_of, user_bytes};
use kv_testkit::hook_fs::{Action, HookFs, Op as FsOp};

/// A new store opened with `options`, holding `BEFORE` written one op at a time.
fn store_before(options: &Options) -> (tempfile::TempDir, PathBuf, Bitcask) {
    let (tmp, dir, e) = new_store(options);
    apply(&e, BEFORE);
    (tmp, dir, e)
}

/// The one segment of a store opened with `quiet("1M")`.
fn segment(dir: &Path) -> PathBuf {
    dir.join(SEGMENT)
}

/// The name of the first segment.
const SEGMENT: &str = "00000001.seg";

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// A store of one segment in `dir`: `BEFORE` one op at a time, `BATCH` as one batch, then
/// `after`.
fn batch_in_store(dir: &Path, after: &[Op]) -> RecordInStore {
    let torn_stat = "torn_bytes_truncated";
    RecordInStore::batch::<Bitcask>(dir, &quiet("1M"), SEGMENT, after, torn_stat)
}

#[test]
fn a_batch_applies_its_ops_in_order_as_one_record() {
    let (_tmp, dir, e) = store_before(&quiet("1M"));
    let before = file_len(&segment(&dir));
    let written = e.stats().unwrap().user_bytes_written;
    let batch = batch_of(BATCH);
    e.write(&batch).unwrap();

    let record_len = (BATCH_HEADER_LEN + batch.encoded_ops().len()) as u64;
    assert_eq!(file_len(&segment(&dir)), before + record_len, "one record");
    assert_holds(&e, &model_of(&[BEFORE, BATCH]), "after the batch");
    let stats = e.stats().unwrap();
    assert_eq!(stats.user_bytes_written, written + user_bytes(BATCH));
    // Alive: cherry's put record, and the ops of apple's last put and of date's put.
    let cherry = RECORD_HEADER_LEN + b"cherry".len() + b"dark red".len();
    let alive = cherry as u64 + record::op_len(5, Some(4)) + record::op_len(4, Some(5));
    let dead = file_len(&segment(&dir)) - 16 - alive;
    assert_eq!(stats.extra["dead_bytes"], dead);
    e.close().unwrap();

    let e = open(&dir, &quiet("1M"));
    assert_holds(&e, &model_of(&[BEFORE, BATCH]), "after reopening");
    assert_eq!(e.stats().unwrap().extra["dead_bytes"], dead, "same count");
    let dump = bitcask::inspect(&std::fs::read(segment(&dir)).unwrap()).unwrap();
    assert!(dump.contains("-- record 3: batch of 5 ops"), "{dump}");
    e.close().unwrap();
}

#[test]
fn an_empty_batch_is_a_no_op() {
    let (_tmp, dir, e) = store_before(&quiet("1M"));
    let len = file_len(&segment(&dir));
    let stats = e.stats().unwrap();
    e.write(&WriteBatch::new()).unwrap();
    assert_eq!(file_len(&segment(&dir)), len);
    let after = e.stats().unwrap();
    assert_eq!(after.disk_bytes_written, stats.disk_bytes_written);
    assert_eq!(after.user_bytes_written, stats.user_bytes_written);
    assert_holds(&e, &model_of(&[BEFORE]), "after an empty batch");
    e.close().unwrap();
}

/// A batch whose ops are over `MAX_BATCH_OPS_LEN` is refused whole with a typed error and
/// writes nothing; one just under it is written.
#[test]
fn a_batch_over_the_limit_is_refused_before_anything_is_written() {
    let (_tmp, dir, e) = store_before(&quiet("1M"));
    let len = file_len(&segment(&dir));
    let value = vec![b'v'; MAX_VALUE_LEN];
    let mut batch = WriteBatch::new();
    while batch.encoded_ops().len() <= MAX_BATCH_OPS_LEN {
        let key = format!("big{}", batch.len());
        batch.put(key.as_bytes(), &value).unwrap();
    }
    match e.write(&batch) {
        Err(Error::InvalidArgument(why)) => assert!(why.contains("split it"), "{why}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert_eq!(file_len(&segment(&dir)), len, "nothing written");
    assert_holds(&e, &model_of(&[BEFORE]), "after the refused batch");

    let mut just_under = WriteBatch::new();
    for op in batch.iter().take(batch.len() - 1) {
        just_under.put(op.key, op.value.unwrap()).unwrap();
    }
    assert!(just_under.encoded_ops().len() <= MAX_BATCH_OPS_LEN);
    e.write(&just_under).unwrap();
    assert_eq!(
        e.get(b"big0").unwrap().map(|v| v.len()),
        Some(MAX_VALUE_LEN)
    );
    e.close().unwrap();
    let e = open(&dir, &quiet("1M"));
    assert_eq!(e.get(b"big2").unwrap().as_deref(), Some(&value[..]));
    e.close().unwrap();
}

/// The active segment is sealed before a batch that would take it past `segment_bytes`,
/// and a batch larger than a whole segment goes alone into a fresh one.
#[test]
fn a_batch_never_straddles_segments_and_may_outgrow_one() {
    let (_tmp, dir, e) = new_store(&quiet("1K"));
    e.put(b"first", b"in segment 1").unwrap();
    let mut big = WriteBatch::new();
    for i in 0..30 {
        big.put(format!("big{i:02}").as_bytes(), &[b'x'; 100])
            .unwrap();
    }
    e.write(&big).unwrap();
    e.put(b"last", b"after the big batch").unwrap();
    let segments = files_ending(&dir, ".seg");
    assert_eq!(segments.len(), 3, "{:?}", files(&dir));
    let second = std::fs::read(&segments[1]).unwrap();
    assert!(second.len() > 1024, "the batch outgrew its segment");
    let dump = bitcask::inspect(&second).unwrap();
    assert!(dump.contains("-- record 0: batch of 30 ops"), "{dump}");
    assert!(dump.contains("-- record 1: seal"), "{dump}");

    // A small batch that would not fit in what is left of a segment seals it first.
    let mut small = WriteBatch::new();
    small.put(b"small", &[b's'; 200]).unwrap();
    for _ in 0..3 {
        e.write(&small).unwrap();
    }
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = big
        .iter()
        .map(|op| (op.key.to_vec(), op.value.unwrap().to_vec()))
        .collect();
    model.insert(b"first".to_vec(), b"in segment 1".to_vec());
    model.insert(b"last".to_vec(), b"after the big batch".to_vec());
    model.insert(b"small".to_vec(), vec![b's'; 200]);
    assert_holds(&e, &model, "before reopening");
    e.close().unwrap();
    for segment in files_ending(&dir, ".seg") {
        let len = file_len(&segment);
        assert!(
            len <= 1024 || len == second.len() as u64,
            "{segment:?}: {len}"
        );
    }
    let e = open(&dir, &quiet("1K"));
    assert_holds(&e, &model, "after reopening");
    e.close().unwrap();
}

/// An append of a batch that fails halfway is cut back off the segment: no op of the batch
/// is seen, then or after a reopen, and the store goes on.
#[test]
fn a_failed_batch_append_is_undone() {
    let fs = HookFs::new();
    let (_tmp, dir, e) = store_before(&quiet("1M").with_file_system(Arc::new(fs.clone())));
    let len = file_len(&segment(&dir));
    fs.set_hook(|call| match call.op {
        FsOp::Append => Action::Cut(call.bytes / 2),
        _ => Action::Pass,
    });
    assert!(matches!(e.write(&batch_of(BATCH)), Err(Error::Io { .. })));
    fs.clear_hook();
    assert_eq!(file_len(&segment(&dir)), len, "the half batch was cut off");
    assert_holds(&e, &model_of(&[BEFORE]), "after the failed batch");
    e.write(&batch_of(BATCH)).unwrap();
    e.close().unwrap();

    let e = open(&dir, &quiet("1M"));
    assert_holds(&e, &model_of(&[BEFORE, BATCH]), "after reopening");
    assert_eq!(e.stats().unwrap().extra["torn_bytes_truncated"], 0);
    e.close().unwrap();
}

/// Batches that set every key to a new generation, in small segments merged in the
/// background and by `compact`, while readers check that each snapshot they take (scans,
/// cursors, gets in order) shows every key at one generation.
#[test]
fn readers_see_a_batch_whole_or_not_at_all() {
    let (_tmp, _, e) = new_store(&merging("2K", "0.3"));
    readers_see_whole_batches(&e, 300);
    assert!(e.stats().unwrap().extra["merges"] > 0, "no merge ran");
    e.close().unwrap();
}

/// Cutting the segment at every offset inside the batch record reopens to none of the
/// batch (a torn tail, cut off), and at its end to all of it.
#[test]
fn a_log_cut_inside_a_batch_recovers_none_or_all_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let record = batch_in_store(&tmp.path().join("db"), &[]);
    record.cut_at_every_byte::<Bitcask>(&quiet("1M"), |_, _| {});
}

/// Flipping bits of any byte of the batch record: as the last record it is dropped whole as
/// a torn tail; with a valid record after it, open refuses the store with `Corruption` at
/// the batch's offset and changes nothing. Never a part of the batch.
#[test]
fn a_damaged_batch_is_dropped_whole_or_refused() {
    for after in [&[][..], AFTER] {
        let tmp = tempfile::tempdir().unwrap();
        let record = batch_in_store(&tmp.path().join("db"), after);
        record.flip_every_byte::<Bitcask>(&quiet("1M"), |_, _| {});
    }
}

/// The batch's checksum covers all of it, so damage anywhere in the record fails a `get` of
/// any value the batch wrote, even one whose own bytes are intact.
#[test]
fn damage_anywhere_in_a_batch_fails_a_get_of_its_values() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let record = batch_in_store(&dir, AFTER);
    let e = open(&dir, &quiet("1M"));
    // The first op: apple = green, which the batch itself overwrote.
    let mut damaged = record.bytes();
    damaged[record.at.start as usize + BATCH_HEADER_LEN + 3] ^= 0x01;
    std::fs::write(segment(&dir), &damaged).unwrap();
    for key in [&b"apple"[..], b"date"] {
        match e.get(key) {
            Err(Error::Corruption { offset, .. }) => assert_eq!(offset, record.at.start),
            other => panic!("get {key:?}: expected corruption, got {other:?}"),
        }
    }
    assert_eq!(e.get(b"cherry").unwrap().as_deref(), Some(&b"dark red"[..]));
    drop(e);
}

/// A merge copies a batch's live puts out as records of their own and keeps its deletes'
/// effect; afterwards no segment holds a batch record, and each of those values is one read.
#[test]
fn a_merge_rewrites_a_batch_as_plain_records() {
    let fs = HookFs::new();
    let (_tmp, dir, e) = store_before(&quiet("1M").with_file_system(Arc::new(fs.clone())));
    e.write(&batch_of(BATCH)).unwrap();
    apply(&e, AFTER);
    let model = model_of(&[BEFORE, BATCH, AFTER]);
    e.compact().unwrap();
    assert_holds(&e, &model, "after the merge");
    for path in files_ending(&dir, ".seg") {
        let dump = bitcask::inspect(&std::fs::read(&path).unwrap()).unwrap();
        assert!(
            !dump.contains("batch"),
            "{path:?} still holds a batch:\n{dump}"
        );
    }
    let reads = fs.calls(FsOp::ReadAt);
    for (key, value) in &model {
        assert_eq!(e.get(key).unwrap().as_ref(), Some(value));
    }
    assert_eq!(fs.calls(FsOp::ReadAt) - reads, model.len() as u64);
    assert_eq!(e.stats().unwrap().extra["dead_bytes"], 0);
    e.close().unwrap();

    reopen_with_and_without_hints(&dir, &quiet("1M"), |e, context| {
        assert_holds(e, &model, context);
    });
}

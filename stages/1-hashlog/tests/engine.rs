//! What stage 1 promises beyond the shared conformance suite: one read per `get`, scans that
//! are snapshots, a file that only grows, and a failed append that is never acknowledged.

mod common;

use std::sync::Arc;

use common::file_len;
use hashlog::HashLog;
use hashlog::record::Record;
use kv_shared::{Engine, Error, KeyRange, Options};
use kv_testkit::hook_fs::{Action, HookFs, Op};

/// The real file system, with a count of every call and a hook to fail chosen ones.
fn faulty() -> (HookFs, Options) {
    let fs = HookFs::new();
    let options = Options::new().with_file_system(Arc::new(fs.clone()));
    (fs, options)
}

/// Appends write half their bytes and fail; with `truncates`, truncations fail too.
fn fail_appends(fs: &HookFs, truncates: bool) {
    fs.set_hook(move |call| match call.op {
        Op::Append => Action::Cut(call.bytes / 2),
        Op::Truncate if truncates => Action::Fail,
        _ => Action::Pass,
    });
}

/// A store in a new temporary directory on [`faulty`] file system, holding `a` = `1`: the
/// file system, the options that put a store on it, the guard and the store.
fn faulty_store_holding_a() -> (HookFs, Options, tempfile::TempDir, HashLog) {
    let (faults, options) = faulty();
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &options).unwrap();
    engine.put(b"a", b"1").unwrap();
    (faults, options, tmp, engine)
}

/// Checks that a full scan of `engine` returns exactly `pairs`.
fn assert_scan(engine: &HashLog, pairs: &[(&[u8], &[u8])]) {
    let want: Vec<(Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    assert_eq!(
        kv_testkit::conformance::scan_vec(engine, KeyRange::all()),
        want
    );
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

#[test]
fn a_get_is_one_positioned_read_and_a_miss_is_none() {
    let (faults, options) = faulty();
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &options).unwrap();
    for i in 0..200 {
        engine
            .put(&key(i), format!("value {i}").as_bytes())
            .unwrap();
    }
    for i in (0..200).step_by(2) {
        engine.delete(&key(i)).unwrap();
    }
    let before = faults.calls(Op::ReadAt);
    for i in 0..300 {
        let want = (i % 2 == 1 && i < 200).then(|| format!("value {i}").into_bytes());
        assert_eq!(engine.get(&key(i)).unwrap(), want, "key {i}");
    }
    // 100 live keys read, 200 deleted or never written: no read at all for those.
    assert_eq!(faults.calls(Op::ReadAt) - before, 100);
    let stats = engine.stats().unwrap();
    assert_eq!((stats.gets, stats.get_disk_reads), (300, 100));
    engine.close().unwrap();
}

#[test]
fn a_scan_shows_the_store_as_it_was_when_it_began() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    for k in ["a", "b", "c", "d", "e"] {
        engine
            .put(k.as_bytes(), format!("{k}1").as_bytes())
            .unwrap();
    }
    let mut scan = engine.scan(KeyRange::all()).unwrap();
    assert_eq!(
        scan.next().unwrap().unwrap(),
        (b"a".to_vec(), b"a1".to_vec())
    );
    engine.put(b"c", b"c2").unwrap();
    engine.delete(b"d").unwrap();
    engine.put(b"bb", b"new").unwrap();
    let rest: Vec<(Vec<u8>, Vec<u8>)> = scan.map(Result::unwrap).collect();
    let old = |k: &str| (k.as_bytes().to_vec(), format!("{k}1").into_bytes());
    assert_eq!(rest, vec![old("b"), old("c"), old("d"), old("e")]);
    let now: Vec<Vec<u8>> = engine
        .scan(KeyRange::all())
        .unwrap()
        .map(|item| item.unwrap().1)
        .collect();
    assert_eq!(now, [&b"a1"[..], b"b1", b"new", b"c2", b"e1"]);
    engine.close().unwrap();
}

#[test]
fn deleting_a_missing_key_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    engine.put(b"here", b"1").unwrap();
    let len = file_len(tmp.path());
    let written = engine.stats().unwrap().disk_bytes_written;
    engine.delete(b"never there").unwrap();
    assert_eq!(file_len(tmp.path()), len);
    assert_eq!(engine.stats().unwrap().disk_bytes_written, written);
    engine.delete(b"here").unwrap();
    let tombstone = Record::delete(b"here").encoded_len() as u64;
    assert_eq!(file_len(tmp.path()), len + tombstone);
    engine.close().unwrap();
}

/// Stage 1's cost: every overwrite and delete leaves its old record in the file, forever.
#[test]
fn overwrites_and_deletes_grow_the_file_and_compact_does_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    let value = [7u8; 100];
    for _ in 0..100 {
        engine.put(b"counter", &value).unwrap();
    }
    engine.put(b"gone", &value).unwrap();
    engine.delete(b"gone").unwrap();
    let put = Record::put(b"counter", &value).encoded_len() as u64;
    let dead = 99 * put
        + Record::put(b"gone", &value).encoded_len() as u64
        + Record::delete(b"gone").encoded_len() as u64;
    let stats = engine.stats().unwrap();
    assert_eq!(stats.extra["dead_bytes"], dead);
    assert_eq!(stats.live_data_bytes, 7 + 100);
    let len = file_len(tmp.path());
    assert_eq!(len, hashlog::data_file::FILE_HEADER_LEN + put + dead);

    engine.compact().unwrap();
    assert_eq!(file_len(tmp.path()), len);
    engine.close().unwrap();
    // Start-up reads them all again: 100 puts of one key, a put and a delete.
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    let stats = engine.stats().unwrap();
    assert_eq!(stats.extra["dead_bytes"], dead);
    assert_eq!(stats.extra["replayed_records"], 102);
    engine.close().unwrap();
}

/// An append that fails after writing part of its record is reported, its bytes are cut
/// back off, and the store goes on as if it had never been tried.
#[test]
fn a_failed_append_is_undone() {
    let (faults, options, tmp, engine) = faulty_store_holding_a();
    fail_appends(&faults, false);
    assert!(matches!(engine.put(b"b", b"2"), Err(Error::Io { .. })));
    assert!(matches!(engine.delete(b"a"), Err(Error::Io { .. })));
    faults.clear_hook();
    assert_eq!(engine.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(engine.get(b"b").unwrap(), None);
    engine.put(b"c", b"3").unwrap();
    assert_eq!(engine.get(b"c").unwrap().as_deref(), Some(&b"3"[..]));
    engine.close().unwrap();

    let engine = HashLog::open(tmp.path(), &options).unwrap();
    assert_eq!(engine.stats().unwrap().extra["torn_tail_bytes"], 0);
    assert_scan(&engine, &[(b"a", b"1"), (b"c", b"3")]);
    engine.close().unwrap();
}

/// When the partial record cannot be cut off either, the engine refuses further writes
/// (reads go on), and the next open cuts the partial record off as a torn tail.
#[test]
fn a_failed_append_that_cannot_be_undone_stops_writes_until_reopen() {
    let (faults, options, tmp, engine) = faulty_store_holding_a();
    fail_appends(&faults, true);
    assert!(engine.put(b"b", b"22").is_err());
    faults.clear_hook();
    assert!(matches!(engine.put(b"c", b"3"), Err(Error::Io { .. })));
    assert_eq!(engine.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    drop(engine);

    let engine = HashLog::open(tmp.path(), &options).unwrap();
    let half = Record::put(b"b", b"22").encoded_len() as u64 / 2;
    assert_eq!(engine.stats().unwrap().extra["torn_tail_bytes"], half);
    assert_scan(&engine, &[(b"a", b"1")]);
    engine.put(b"c", b"3").unwrap();
    assert_eq!(engine.get(b"c").unwrap().as_deref(), Some(&b"3"[..]));
    engine.close().unwrap();
}

/// After a failed fsync, a later one proves nothing about what the failed one covered, so
/// the engine refuses syncs and writes until it is reopened. Reads go on.
#[test]
fn a_failed_sync_stops_writes_and_syncs_until_reopen() {
    let (faults, options, tmp, engine) = faulty_store_holding_a();
    faults.set_hook(|call| match call.op {
        Op::Sync => Action::Fail,
        _ => Action::Pass,
    });
    assert!(matches!(engine.sync(), Err(Error::Io { .. })));
    faults.clear_hook();
    assert!(matches!(engine.sync(), Err(Error::Io { .. })));
    assert!(matches!(engine.put(b"b", b"2"), Err(Error::Io { .. })));
    assert_eq!(engine.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert!(engine.close().is_err());

    let engine = HashLog::open(tmp.path(), &options).unwrap();
    assert_scan(&engine, &[(b"a", b"1")]);
    engine.put(b"b", b"2").unwrap();
    engine.sync().unwrap();
    engine.close().unwrap();
}

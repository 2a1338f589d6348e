//! The background merge thread's failures surface: a merge that fails (an I/O error on
//! its output) is counted and reported while writes go on, and a merge thread that panics
//! stops writes with [`Error::Background`] until the store is reopened, which loses
//! nothing acknowledged.
//!
//! The failures are injected through [`HookFs`], the real disk with a hook on every call:
//! the hook picks the creation of a merge's output segment (`*.seg.merge`) and fails it,
//! or, on the thread named `bitcask-merge`, panics in it (standing for a bug anywhere in a
//! merge). Writers run under a watchdog, so a hang fails the test instead of stalling it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, atomic::AtomicU64, atomic::Ordering::SeqCst};
use std::time::{Duration, Instant};

use bitcask::Bitcask;
use common::{contents, merging, open};
use kv_shared::{Engine, Error, Options, Result, WriteBatch};
use kv_testkit::hook_fs::{Action, HookFs, Op};

/// How long anything in these tests may take before it counts as hung.
const WAIT: Duration = Duration::from_secs(30);
/// Keys the writers overwrite again and again, making dead bytes for merges to reclaim.
const KEYS: u64 = 50;
/// A bound on the writes of a writer waiting for a failure: it comes long before.
const MAX_WRITES: u64 = 50_000;

/// Acknowledged writes: key to value.
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Small segments, merged in the background once 30% of them is dead, on `fs`.
fn on(fs: &HookFs) -> Options {
    merging("2K", "0.3").with_file_system(Arc::new(fs.clone()))
}

/// Runs `f` on a thread of its own and returns what it returns; fails the test if it takes
/// longer than [`WAIT`] (the thread is left behind: the test is over anyway).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WAIT) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still blocked after {WAIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the thread panicked"),
    }
}

/// Asserts that `result` is the background error of the merge.
fn assert_background(result: Result<()>, what: &str) {
    match result {
        Err(Error::Background { task, ref detail }) if task == "merge" && !detail.is_empty() => {}
        other => panic!("{what}: expected a background merge error, got {other:?}"),
    }
}

/// The `i`th write: key `i % KEYS`, a value naming `i`.
fn put(e: &Bitcask, i: u64) -> Result<(Vec<u8>, Vec<u8>)> {
    let key = format!("key{:03}", i % KEYS).into_bytes();
    let value = format!("value {i} {}", "x".repeat(60)).into_bytes();
    e.put(&key, &value)?;
    Ok((key, value))
}

/// Writes `count` overwrites from `first` on; every one must succeed.
fn churn(e: &Bitcask, first: u64, count: u64, model: &mut Model) {
    for i in first..first + count {
        let (key, value) = put(e, i).unwrap();
        model.insert(key, value);
    }
}

/// Waits until `e`'s stats show `name` above 0.
fn wait_for_stat(e: &Bitcask, name: &str) {
    let began = Instant::now();
    while e.stats().unwrap().extra[name] == 0 {
        assert!(began.elapsed() < WAIT, "{name} stayed 0");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reopens `dir` on the plain disk: it holds exactly `model`, counts no failure, and takes
/// writes and merges again.
fn assert_reopen_recovers(dir: &Path, model: &Model) {
    let e = open(dir, &merging("2K", "0.3"));
    assert_eq!(&contents(&e), model, "after reopening");
    let stats = e.stats().unwrap();
    assert_eq!(stats.extra["background_failures"], 0);
    assert_eq!(stats.extra["merge_errors"], 0);
    e.put(b"after", b"reopened").unwrap();
    e.compact().unwrap();
    assert_eq!(e.get(b"after").unwrap().as_deref(), Some(&b"reopened"[..]));
    e.close().unwrap();
}

/// A merge whose output cannot be created fails, in the background and in `compact`; the
/// segments are intact, so writes go on. Once the disk works again, `compact` merges, and
/// a reopen holds every write.
#[test]
fn a_failed_merge_is_reported_and_writes_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let fs = HookFs::new();
    fs.set_hook(|call| {
        if call.op == Op::Create && call.path_ends_with(".seg.merge") {
            Action::Fail
        } else {
            Action::Pass
        }
    });
    let e = open(&dir, &on(&fs));
    let mut model = Model::new();
    churn(&e, 0, 40 * KEYS, &mut model);
    wait_for_stat(&e, "merge_errors");
    let last = e.last_merge_error().expect("the failed merge's error");
    assert!(last.contains("injected failure of Create"), "{last}");
    assert!(e.background_error().is_none());
    churn(&e, 40 * KEYS, 10 * KEYS, &mut model);
    e.sync().unwrap();
    let stats = e.stats().unwrap();
    assert_eq!(stats.extra["background_failures"], 0, "{stats:?}");
    match e.compact() {
        Err(Error::Io { path, .. }) => {
            assert!(path.to_string_lossy().ends_with(".seg.merge"), "{path:?}")
        }
        other => panic!("compact with merges failing: {other:?}"),
    }
    assert_eq!(contents(&e), model, "after the failed merges");

    fs.clear_hook();
    e.compact().unwrap();
    assert!(e.stats().unwrap().extra["merges"] > stats.extra["merges"]);
    assert_eq!(contents(&e), model, "after the merge");
    e.close().unwrap();
    assert_reopen_recovers(&dir, &model);
}

/// The merge thread panics (the hook panics in its output's creation). The panic does not
/// vanish with the thread: the next writes are refused with the merge's error, `stats`
/// counts it, reads go on, and a reopen holds every acknowledged write.
#[test]
fn a_panicking_merge_thread_stops_writes_until_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let fs = HookFs::new();
    fs.set_hook(|call| {
        let thread = std::thread::current();
        if call.op == Op::Create
            && call.path_ends_with(".seg.merge")
            && thread.name() == Some("bitcask-merge")
        {
            panic!("injected panic in a merge");
        }
        Action::Pass
    });
    let e = Arc::new(open(&dir, &on(&fs)));
    let writer = e.clone();
    let written = Arc::new(AtomicU64::new(0));
    let counted = written.clone();
    let (model, error) = within("the writer", move || {
        let mut model = Model::new();
        for i in 0..MAX_WRITES {
            match put(&writer, i) {
                Ok((key, value)) => drop(model.insert(key, value)),
                Err(error) => return (model, error),
            }
            counted.fetch_add(1, SeqCst);
        }
        panic!("{MAX_WRITES} writes and the merge never ran");
    });
    assert!(written.load(SeqCst) > 0);
    assert_background(Err(error), "the first refused put");
    let detail = e.background_error().unwrap().to_string();
    assert!(detail.contains("injected panic in a merge"), "{detail}");

    assert_background(e.put(b"after", b"v"), "put");
    assert_background(e.delete(b"key000"), "delete");
    let mut batch = WriteBatch::new();
    batch.put(b"after", b"v").unwrap();
    assert_background(e.write(&batch), "write");
    assert_background(e.sync(), "sync");
    assert_background(e.compact(), "compact");
    let stats = e.stats().unwrap();
    assert_eq!(stats.extra["background_failures"], 1, "{stats:?}");
    assert_eq!(contents(&e), model, "reads after the panic");

    within("dropping the store", move || drop(e));
    assert_reopen_recovers(&dir, &model);
}

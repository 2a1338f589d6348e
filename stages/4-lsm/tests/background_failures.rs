//! A flush or compaction that fails or panics on its background thread stops writes with
//! [`Error::Background`] naming it, wakes every writer waiting for it, shows in `stats`,
//! and costs nothing acknowledged: reopening the store brings back every write.
//!
//! The failures are injected through [`HookFs`], the real disk with a hook on every call:
//! the hook picks the calls on table files (`*.sst`) that the thread named `lsm-flush` or
//! `lsm-compaction` makes, and fails them (an I/O error, as a full disk gives) or panics in
//! them (standing for a bug anywhere in the job). Writers run on threads of their own under
//! a watchdog, so a writer that never wakes fails the test instead of hanging it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use kv_shared::{Engine, Error, Options, Result, WriteBatch};
use kv_testkit::hook_fs::{Action, Call, HookFs, Op};
use lsm::LsmTree;

/// How long anything in these tests may take before it counts as hung.
const WAIT: Duration = Duration::from_secs(30);
/// A bound on the writes of one writer: the failure comes long before.
const MAX_WRITES: u64 = 20_000;

/// Acknowledged writes: key to value.
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The `i`th key of writer `writer`. Consecutive keys are spread over 16 ranges, so every
/// flushed table overlaps the others and compactions rewrite tables (a table that overlaps
/// nothing would merely be moved, writing no file).
fn key(writer: u64, i: u64) -> Vec<u8> {
    format!("w{writer}-{:02}-key{i:06}", i % 16).into_bytes()
}

fn value(writer: u64, i: u64) -> Vec<u8> {
    format!("value {i} of writer {writer} {}", "x".repeat(80)).into_bytes()
}

/// `settings` on `fs`.
fn on(fs: &HookFs, settings: &str) -> Options {
    common::options(settings).with_file_system(Arc::new(fs.clone()))
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

/// Asserts that `result` is the background error of `task`.
fn assert_background(result: Result<()>, task: &str, what: &str) {
    match result {
        Err(Error::Background {
            task: t,
            ref detail,
        }) if t == task && !detail.is_empty() => {}
        other => panic!("{what}: expected a background {task} error, got {other:?}"),
    }
}

/// True when `call` is made by the background thread of `task` on a table file.
fn on_table_from(call: &Call<'_>, task: &str) -> bool {
    let thread = std::thread::current();
    thread.name() == Some(&format!("lsm-{task}")) && call.path_ends_with(".sst")
}

/// Writer `writer` puts its keys in order until a put fails; returns the writes that were
/// acknowledged and the error. `done` counts the acknowledged puts as they return.
fn write_until_error(tree: &LsmTree, writer: u64, done: &AtomicU64) -> (Model, Error) {
    let mut model = Model::new();
    for i in 0..MAX_WRITES {
        let (k, v) = (key(writer, i), value(writer, i));
        match tree.put(&k, &v) {
            Ok(()) => drop(model.insert(k, v)),
            Err(e) => return (model, e),
        }
        done.fetch_add(1, SeqCst);
    }
    panic!("writer {writer}: {MAX_WRITES} puts and no background failure");
}

/// After a background failure of `task`: every kind of write returns it (`sync` too, after
/// syncing), `stats` counts it, reads still work.
fn assert_writes_refused(tree: &LsmTree, task: &str, model: &Model) {
    assert_background(tree.put(b"after", b"v"), task, "put");
    assert_background(tree.delete(b"after"), task, "delete");
    let mut batch = WriteBatch::new();
    batch.put(b"after", b"v").unwrap();
    assert_background(tree.write(&batch), task, "write");
    assert_background(tree.sync(), task, "sync");
    assert_background(tree.flush(), task, "flush");
    assert_background(tree.compact(), task, "compact");
    assert_background(tree.full_compaction(), task, "full_compaction");
    let error = tree.background_error().map(Err);
    assert_background(error.unwrap_or(Ok(())), task, "background_error");
    let stats = tree.stats().unwrap();
    assert!(stats.extra["background_failures"] >= 1, "{stats:?}");
    for (k, v) in model.iter().step_by(97) {
        assert_eq!(
            tree.get(k).unwrap().as_ref(),
            Some(v),
            "a read after the failure"
        );
    }
    assert_eq!(tree.get(b"after").unwrap(), None);
}

/// Reopens `dir` on the plain disk: every acknowledged write is there, no failure is
/// counted, and the store takes writes again.
fn assert_reopen_recovers(dir: &Path, model: &Model) {
    let settings = "memtable_bytes=4K table_bytes=4K l0_trigger=2 block_bytes=512";
    let tree = LsmTree::open(dir, &common::options(settings)).unwrap();
    for (k, v) in model {
        let got = tree.get(k).unwrap();
        assert_eq!(
            got.as_ref(),
            Some(v),
            "{} after reopening",
            String::from_utf8_lossy(k)
        );
    }
    let stats = tree.stats().unwrap();
    assert_eq!(stats.live_keys, model.len() as u64);
    assert_eq!(stats.extra["background_failures"], 0);
    tree.put(b"after", b"reopened").unwrap();
    tree.compact().unwrap();
    assert_eq!(
        tree.get(b"after").unwrap().as_deref(),
        Some(&b"reopened"[..])
    );
    tree.close().unwrap();
}

/// Appends to a compaction's output tables fail, as on a full disk. The writes that come
/// after are refused with the compaction's error, and a reopen loses nothing.
#[test]
fn a_failed_compaction_stops_writes_until_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = HookFs::new();
    fs.set_hook(|call| {
        if call.op == Op::Append && on_table_from(call, "compaction") {
            Action::Fail
        } else {
            Action::Pass
        }
    });
    let settings = "memtable_bytes=4K table_bytes=4K l0_trigger=2 block_bytes=512";
    let tree = Arc::new(LsmTree::open(tmp.path(), &on(&fs, settings)).unwrap());
    let writer = tree.clone();
    let (model, error) = within("the writer", move || {
        write_until_error(&writer, 0, &AtomicU64::new(0))
    });
    assert_background(Err(error), "compaction", "the first refused put");
    let detail = tree.background_error().unwrap().to_string();
    assert!(detail.contains("injected failure of Append"), "{detail}");
    let checked = tree.clone();
    let model = within("the refused writes", move || {
        assert_writes_refused(&checked, "compaction", &model);
        model
    });
    within("dropping the tree", move || drop(tree));
    assert_reopen_recovers(tmp.path(), &model);
}

/// A gate in a hook: the first call it catches waits until the test opens it.
#[derive(Default)]
struct Gate {
    entered: AtomicBool,
    open: AtomicBool,
}

impl Gate {
    /// Called by the hook: waits (at most [`WAIT`]) until the gate opens.
    fn pass(&self) {
        self.entered.store(true, SeqCst);
        let began = Instant::now();
        while !self.open.load(SeqCst) && began.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Waits until the writers have stopped making progress for a while (they are stalled),
/// the gate has caught its call, and `stalled` holds of the tree.
fn wait_for_stall(tree: &LsmTree, done: &[Arc<AtomicU64>], gate: &Gate) {
    let began = Instant::now();
    let total = || done.iter().map(|d| d.load(SeqCst)).sum::<u64>();
    loop {
        assert!(began.elapsed() < WAIT, "the writers never stalled");
        let before = total();
        std::thread::sleep(Duration::from_millis(300));
        if gate.entered.load(SeqCst) && total() == before && before > 0 {
            let stats = tree.stats().unwrap();
            eprintln!("stalled after {before} puts: {}", stats.one_line());
            return;
        }
    }
}

/// Starts `writers` threads writing until a put fails, stalls them behind the gated
/// background call, then opens the gate (the hook fails or panics right after). Every
/// writer must wake with the error of `task`. Returns every acknowledged write.
fn stall_then_fail(tree: &Arc<LsmTree>, gate: &Gate, writers: u64, task: &str) -> Model {
    let done: Vec<Arc<AtomicU64>> = (0..writers).map(|_| Arc::default()).collect();
    let results = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (tree, done, results) = (tree.clone(), done[w as usize].clone(), results.clone());
            std::thread::spawn(move || {
                let outcome = write_until_error(&tree, w, &done);
                results.lock().unwrap().push(outcome);
            })
        })
        .collect();
    wait_for_stall(tree, &done, gate);
    gate.open.store(true, SeqCst);
    within("the stalled writers", move || {
        for h in handles {
            h.join().unwrap();
        }
    });
    let mut model = Model::new();
    for (acknowledged, error) in std::mem::take(&mut *results.lock().unwrap()) {
        assert_background(Err(error), task, "a stalled writer");
        model.extend(acknowledged);
    }
    model
}

/// The flush thread's table creation waits, then fails: a writer meanwhile fills the
/// memtable behind the one waiting for that flush and stalls. The failure wakes it with
/// the flush's error.
#[test]
fn a_failed_flush_wakes_the_writer_waiting_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = HookFs::new();
    let gate = Arc::new(Gate::default());
    let hook_gate = gate.clone();
    fs.set_hook(move |call| {
        if call.op == Op::Create && on_table_from(call, "flush") {
            hook_gate.pass();
            Action::Fail
        } else {
            Action::Pass
        }
    });
    let settings = "memtable_bytes=4K table_bytes=4K l0_trigger=2 block_bytes=512";
    let tree = Arc::new(LsmTree::open(tmp.path(), &on(&fs, settings)).unwrap());
    let model = stall_then_fail(&tree, &gate, 1, "flush");
    let stats = tree.stats().unwrap();
    assert_eq!(
        stats.extra["immutable_memtables"], 1,
        "the unflushed memtable stays"
    );
    assert_eq!(stats.extra["background_failures"], 1);
    let checked = tree.clone();
    let model = within("the refused writes", move || {
        assert_writes_refused(&checked, "flush", &model);
        model
    });
    within("dropping the tree", move || drop(tree));
    assert_reopen_recovers(tmp.path(), &model);
}

/// The compaction thread panics (the hook panics in its first table creation, after
/// waiting) while L0 reaches `l0_stop` and two writers stop behind it: the one waiting for
/// room and the one queued behind it in the write group. The panic does not vanish with its
/// thread: both writers wake with the compaction's error, and a reopen loses nothing.
#[test]
fn a_panicking_compaction_wakes_writers_stopped_at_l0_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = HookFs::new();
    let gate = Arc::new(Gate::default());
    let hook_gate = gate.clone();
    fs.set_hook(move |call| {
        if call.op == Op::Create && on_table_from(call, "compaction") {
            hook_gate.pass();
            panic!("injected panic in a compaction");
        }
        Action::Pass
    });
    let settings = "memtable_bytes=4K table_bytes=4K l0_trigger=2 l0_slowdown=3 l0_stop=3 \
                    block_bytes=512";
    let tree = Arc::new(LsmTree::open(tmp.path(), &on(&fs, settings)).unwrap());
    let model = stall_then_fail(&tree, &gate, 2, "compaction");
    let stats = tree.stats().unwrap();
    assert_eq!(stats.extra["l0_files"], 3, "writers stopped at l0_stop");
    let detail = tree.background_error().unwrap().to_string();
    assert!(detail.contains("panicked: injected panic"), "{detail}");
    let checked = tree.clone();
    let model = within("the refused writes", move || {
        assert_writes_refused(&checked, "compaction", &model);
        model
    });
    within("dropping the tree", move || drop(tree));
    assert_reopen_recovers(tmp.path(), &model);
}

/// A manual `full_compaction` that fails writing its table returns the I/O error, and
/// stops writes as a background compaction does: it may have failed anywhere, the manifest
/// append included. A reopen loses nothing.
#[test]
fn a_failed_full_compaction_stops_writes_until_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = HookFs::new();
    let tree = LsmTree::open(tmp.path(), &on(&fs, "block_bytes=512")).unwrap();
    let mut model = Model::new();
    // Two flushed tables holding the same keys: the full compaction must merge them.
    for round in 0..2 {
        for i in 0..200 {
            let (k, v) = (key(0, i), value(round, i));
            tree.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        tree.flush().unwrap();
    }
    let caller = std::thread::current().id();
    fs.set_hook(move |call| {
        let here = std::thread::current().id() == caller;
        if here && call.op == Op::Append && call.path_ends_with(".sst") {
            Action::Fail
        } else {
            Action::Pass
        }
    });
    match tree.full_compaction() {
        Err(Error::Io { path, .. }) => assert!(path.to_string_lossy().ends_with(".sst")),
        other => panic!("a full compaction whose table write fails: {other:?}"),
    }
    fs.clear_hook();
    let tree = Arc::new(tree);
    let checked = tree.clone();
    let model = within("the refused writes", move || {
        assert_writes_refused(&checked, "compaction", &model);
        model
    });
    within("dropping the tree", move || drop(tree));
    assert_reopen_recovers(tmp.path(), &model);
}

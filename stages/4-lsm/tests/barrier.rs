//! The WAL barrier ([`lsm::barrier`]): the owner's call that the tree runs before every
//! sync of its WAL, so that stage 5 can make its value log durable before the tree's
//! pointers into it are.
//!
//! The tests watch both sides at once: the barrier records each call (its thread, and the
//! length of every WAL file as it saw them), and a [`HookFs`] hook records each fsync of a
//! WAL file. Every fsync of a WAL holding records must then follow a barrier on the same
//! thread, and, for the syncs made under the writer lock, that barrier saw the WAL exactly
//! as the fsync makes it durable. Then: a failing barrier fails what needed it, and every
//! later write; and, with an external "log" written before each put, every barrier finds
//! everything the tree took in the log, and every WAL fsync makes durable only entries that
//! a barrier before it covered (the ordering stage 5 relies on).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use kv_shared::{Engine, Error, Fs, LoadOrder};
use kv_testkit::hook_fs::{Action, HookFs, Op};
use lsm::wal::{self, Wal};
use lsm::{LsmTree, WalBarrier};

/// The background syncer's thread name (see `lsm::wal_syncer`).
const SYNCER: &str = "lsm-wal-sync";

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value {i} {}", "v".repeat(100)).into_bytes()
}

/// The calling thread: its id, and its name for messages.
fn this_thread() -> (ThreadId, String) {
    let t = std::thread::current();
    (t.id(), t.name().unwrap_or("unnamed").to_string())
}

/// The length of every WAL file (`*.wal`) in `dir`.
fn wal_lengths(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "wal") {
            // A WAL the flush thread deletes meanwhile is simply not there.
            if let Ok(meta) = entry.metadata() {
                out.insert(path, meta.len());
            }
        }
    }
    out
}

/// What happened, in order.
#[derive(Debug, Clone)]
enum Event {
    /// The barrier ran on `thread` and saw the WAL files at these lengths.
    Barrier {
        thread: (ThreadId, String),
        wals: BTreeMap<PathBuf, u64>,
    },
    /// The WAL file `path`, `len` bytes long, was about to be synced on `thread`.
    WalSync {
        thread: (ThreadId, String),
        path: PathBuf,
        len: u64,
    },
}

/// The events of one tree, and the switch that makes its barrier fail.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
    /// While set, the barrier fails (on any thread, or only on `fail_only_on`).
    fail: AtomicBool,
    fail_only_on: Mutex<Option<&'static str>>,
}

impl Recorder {
    fn barriers(&self) -> usize {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| matches!(e, Event::Barrier { .. }))
            .count()
    }

    /// The barrier for a tree in `dir`: records the call, then fails if told to.
    fn barrier(self: &Arc<Self>, dir: &Path) -> WalBarrier {
        let (rec, dir) = (self.clone(), dir.to_path_buf());
        Arc::new(move || {
            let thread = this_thread();
            let on_this_thread = rec
                .fail_only_on
                .lock()
                .unwrap()
                .is_none_or(|name| name == thread.1);
            let wals = wal_lengths(&dir);
            rec.events
                .lock()
                .unwrap()
                .push(Event::Barrier { thread, wals });
            if rec.fail.load(SeqCst) && on_this_thread {
                return Err(Error::io(
                    &dir,
                    std::io::Error::other("the value log's fsync failed"),
                ));
            }
            Ok(())
        })
    }

    /// A file system that records every fsync of a WAL file.
    fn file_system(self: &Arc<Self>) -> HookFs {
        let fs = HookFs::new();
        let rec = self.clone();
        fs.set_hook(move |call| {
            if call.op == Op::Sync && call.path_ends_with(".wal") {
                let len = std::fs::metadata(call.path).map_or(0, |m| m.len());
                rec.events.lock().unwrap().push(Event::WalSync {
                    thread: this_thread(),
                    path: call.path.to_path_buf(),
                    len,
                });
            }
            Action::Pass
        });
        fs
    }

    /// Opens the tree in `dir` with `settings`, this recorder's barrier and file system.
    fn open(self: &Arc<Self>, dir: &Path, settings: &str) -> kv_shared::Result<LsmTree> {
        let options = common::options(settings).with_file_system(Arc::new(self.file_system()));
        LsmTree::open_with_barrier(dir, &options, self.barrier(dir))
    }

    /// Checks that every fsync of a WAL holding records follows a barrier on its thread
    /// (one barrier per fsync), and that the barrier saw the WAL as the fsync makes it
    /// durable: at exactly that length under the writer lock, at most that length in the
    /// syncer thread (which holds no lock). Returns the fsyncs checked.
    fn check_each_wal_sync_follows_a_barrier(&self) -> usize {
        let header = wal::KIND.header_len();
        let mut pending: HashMap<ThreadId, BTreeMap<PathBuf, u64>> = HashMap::new();
        let mut checked = 0;
        for event in self.events.lock().unwrap().iter() {
            match event {
                Event::Barrier { thread, wals } => {
                    pending.insert(thread.0, wals.clone());
                }
                Event::WalSync { len, .. } if *len <= header => {}
                Event::WalSync { thread, path, len } => {
                    let Some(seen) = pending.remove(&thread.0) else {
                        panic!(
                            "{path:?} ({len} bytes) synced on {} with no barrier",
                            thread.1
                        );
                    };
                    let seen_len = seen.get(path).copied().unwrap_or(0);
                    if thread.1 == SYNCER {
                        assert!(seen_len <= *len, "{path:?}: {seen_len} > {len}");
                    } else {
                        assert_eq!(
                            seen_len, *len,
                            "{path:?} synced on {} at another length than its barrier saw",
                            thread.1
                        );
                    }
                    checked += 1;
                }
            }
        }
        checked
    }
}

/// A new directory and a recorder.
fn setup() -> (tempfile::TempDir, Arc<Recorder>) {
    (tempfile::tempdir().unwrap(), Arc::new(Recorder::default()))
}

#[test]
fn it_runs_once_at_open_and_before_every_sync_writes_fsync() {
    let (tmp, rec) = setup();
    let tree = rec
        .open(tmp.path(), "sync_writes=true wal_bytes_per_sync=0")
        .unwrap();
    assert_eq!(rec.barriers(), 1, "once before recovery");
    for i in 0..20 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    assert_eq!(rec.barriers(), 21, "one per write, each synced");
    assert_eq!(rec.check_each_wal_sync_follows_a_barrier(), 20);
    tree.close().unwrap();
    assert_eq!(rec.barriers(), 22, "close ends with a sync");
}

#[test]
fn it_runs_before_sync_and_before_recovery_syncs_a_replayed_wal() {
    let (tmp, rec) = setup();
    let tree = rec.open(tmp.path(), "wal_bytes_per_sync=0").unwrap();
    for i in 0..10 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    assert_eq!(rec.barriers(), 1, "no sync yet, no barrier");
    tree.sync().unwrap();
    assert_eq!(rec.barriers(), 2);
    assert_eq!(rec.check_each_wal_sync_follows_a_barrier(), 1);
    // Dropped, not closed: the WAL is replayed (and synced) by the next open.
    tree.put(&key(10), &value(10)).unwrap();
    drop(tree);
    let rec = Arc::new(Recorder::default());
    let tree = rec.open(tmp.path(), "wal_bytes_per_sync=0").unwrap();
    assert_eq!(rec.barriers(), 1);
    assert_eq!(
        rec.check_each_wal_sync_follows_a_barrier(),
        1,
        "the replayed WAL's sync, after the barrier at open"
    );
    for i in 0..=10 {
        assert_eq!(tree.get(&key(i)).unwrap(), Some(value(i)));
    }
    tree.close().unwrap();
}

#[test]
fn it_runs_before_the_sync_that_freezes_a_memtable() {
    let (tmp, rec) = setup();
    let tree = rec
        .open(tmp.path(), "memtable_bytes=16K wal_bytes_per_sync=0")
        .unwrap();
    for i in 0..10 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    tree.flush().unwrap();
    assert_eq!(rec.barriers(), 2, "open, then the freeze");
    assert_eq!(rec.check_each_wal_sync_follows_a_barrier(), 1);
    // About 90 KB of writes: full memtables freeze on their own, five or more times.
    for i in 10..800 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    let syncs = rec.check_each_wal_sync_follows_a_barrier();
    assert!(syncs >= 4, "{syncs} freezes");
    assert_eq!(rec.barriers(), 1 + syncs);
    assert!(!common::table_files(tmp.path()).is_empty());
    tree.close().unwrap();
}

#[test]
fn it_runs_in_the_syncer_thread_before_each_background_sync() {
    let (tmp, rec) = setup();
    let tree = rec
        .open(tmp.path(), "memtable_bytes=256K wal_bytes_per_sync=4K")
        .unwrap();
    let on_syncer = |rec: &Recorder| {
        let events = rec.events.lock().unwrap();
        let syncs = events.iter().filter(|e| {
            matches!(e, Event::WalSync { thread, len, .. }
                if thread.1 == SYNCER && *len > wal::KIND.header_len())
        });
        syncs.count()
    };
    for i in 0..1000 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while on_syncer(&rec) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    tree.close().unwrap();
    assert!(on_syncer(&rec) >= 1, "no background sync of the WAL");
    rec.check_each_wal_sync_follows_a_barrier();
}

#[test]
fn it_runs_before_a_bulk_loads_commit() {
    let (tmp, rec) = setup();
    let tree = rec.open(tmp.path(), "wal_bytes_per_sync=0").unwrap();
    let pairs: Vec<_> = (0..100).map(|i| (key(i), value(i))).collect();
    let mut input = pairs.iter().cloned().map(Ok);
    tree.load(&mut input, LoadOrder::Sorted).unwrap();
    assert_eq!(
        rec.barriers(),
        2,
        "open, then the commit (no memtable to freeze)"
    );
    assert_eq!(tree.get(&key(7)).unwrap(), Some(value(7)));
    // A failing barrier fails the load before its commit: nothing of it is in the tree.
    rec.fail.store(true, SeqCst);
    let more: Vec<_> = (100..200).map(|i| (key(i), value(i))).collect();
    let mut input = more.iter().cloned().map(Ok);
    assert!(tree.load(&mut input, LoadOrder::Sorted).is_err());
    assert_eq!(tree.get(&key(150)).unwrap(), None);
    assert!(tree.put(b"after", b"v").unwrap_err().is_background());
}

/// Reopens `dir` with `Engine::open` (no barrier) and checks that keys `0..n` are there.
fn reopen_and_check(dir: &Path, n: u32) {
    let tree = LsmTree::open(dir, &common::options("")).unwrap();
    for i in 0..n {
        assert_eq!(tree.get(&key(i)).unwrap(), Some(value(i)), "key {i}");
    }
    tree.put(b"after", b"reopened").unwrap();
    tree.close().unwrap();
}

/// The error a failed barrier fails a write with first, and the one later writes report.
fn assert_failed_then_stopped(first: Error, tree: &LsmTree) {
    assert!(
        first.to_string().contains("the value log's fsync failed"),
        "{first}"
    );
    match tree.put(b"after", b"v").unwrap_err() {
        Error::Background { task, .. } => assert_eq!(task, lsm::barrier::TASK),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failing_barrier_fails_sync_and_every_later_write() {
    let (tmp, rec) = setup();
    let tree = rec.open(tmp.path(), "wal_bytes_per_sync=0").unwrap();
    for i in 0..10 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    rec.fail.store(true, SeqCst);
    let error = tree.sync().unwrap_err();
    assert_failed_then_stopped(error, &tree);
    // Final, even once the owner's log would sync again; reads go on.
    rec.fail.store(false, SeqCst);
    assert!(tree.put(b"after", b"v").is_err());
    assert_eq!(tree.get(&key(3)).unwrap(), Some(value(3)));
    drop(tree);
    reopen_and_check(tmp.path(), 10);
}

#[test]
fn a_failing_barrier_fails_the_sync_writes_write_that_needs_it() {
    let (tmp, rec) = setup();
    let tree = rec
        .open(tmp.path(), "sync_writes=true wal_bytes_per_sync=0")
        .unwrap();
    for i in 0..5 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    rec.fail.store(true, SeqCst);
    let error = tree.put(&key(5), &value(5)).unwrap_err();
    assert_failed_then_stopped(error, &tree);
    drop(tree);
    reopen_and_check(tmp.path(), 5);
}

#[test]
fn a_failing_barrier_fails_the_freeze() {
    let (tmp, rec) = setup();
    let tree = rec
        .open(tmp.path(), "memtable_bytes=16K wal_bytes_per_sync=0")
        .unwrap();
    for i in 0..10 {
        tree.put(&key(i), &value(i)).unwrap();
    }
    rec.fail.store(true, SeqCst);
    let error = tree.flush().unwrap_err();
    assert_failed_then_stopped(error, &tree);
    assert!(
        common::table_files(tmp.path()).is_empty(),
        "nothing flushed"
    );
    drop(tree);
    reopen_and_check(tmp.path(), 10);
}

#[test]
fn a_failing_barrier_in_the_syncer_thread_stops_writes() {
    let (tmp, rec) = setup();
    *rec.fail_only_on.lock().unwrap() = Some(SYNCER);
    rec.fail.store(true, SeqCst);
    let tree = rec
        .open(tmp.path(), "memtable_bytes=256K wal_bytes_per_sync=4K")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    let error = loop {
        assert!(Instant::now() < deadline, "writes never stopped");
        match tree.put(&key(i), &value(i)) {
            Ok(()) => i += 1,
            Err(e) => break e,
        }
    };
    match error {
        Error::Background { task, detail } => {
            assert_eq!(task, "wal-sync");
            assert!(detail.contains("the value log's fsync failed"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(tree.put(b"after", b"v").is_err());
    drop(tree);
    reopen_and_check(tmp.path(), i);
}

#[test]
fn a_failing_barrier_fails_open() {
    let (tmp, rec) = setup();
    LsmTree::open(tmp.path(), &common::options(""))
        .unwrap()
        .close()
        .unwrap();
    rec.fail.store(true, SeqCst);
    assert!(rec.open(tmp.path(), "").is_err());
    reopen_and_check(tmp.path(), 0);
}

/// Stage 5's side, simulated: a value log the test appends each entry to before it puts
/// the entry in the tree, with how much of it the last barrier made durable.
#[derive(Default)]
struct ValueLog {
    /// Each key's place in the log.
    place: HashMap<Vec<u8>, usize>,
    len: usize,
    /// Entries before this place are durable (the barrier's "fsync").
    durable: usize,
    barriers: u64,
    checked_syncs: u64,
    /// What went wrong, kept to be reported at the end (a panic inside the tree's locks
    /// would say less).
    violations: Vec<String>,
}

impl ValueLog {
    fn append(&mut self, key: &[u8]) {
        self.place.insert(key.to_vec(), self.len);
        self.len += 1;
    }
}

/// The keys of every record in the WAL at `path` (none when it was deleted meanwhile).
fn wal_keys(path: &Path) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let read = Wal::read_records(&Fs::default(), path, wal::KIND, |record| {
        let batch = wal::decode(record.payload)
            .map_err(|e| e.into_corruption(path, record.payload_offset()))?;
        keys.extend(batch.ops().map(|op| op.key.to_vec()));
        Ok(())
    });
    match read {
        Ok(_) => keys,
        Err(_) if !path.exists() => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

/// Opens the tree in `dir` whose barrier checks `log`: every key in every WAL (everything
/// the tree took) is in the log; then it makes the whole log durable. And each WAL fsync
/// must find every key in its WAL within the durable part of the log.
fn open_checked(dir: &Path, log: &Arc<Mutex<ValueLog>>, settings: &str) -> LsmTree {
    let (at_barrier, at_sync) = (log.clone(), log.clone());
    let wal_dir = dir.to_path_buf();
    let barrier: WalBarrier = Arc::new(move || {
        let mut log = at_barrier.lock().unwrap();
        for path in wal_lengths(&wal_dir).keys() {
            for key in wal_keys(path) {
                if !log.place.contains_key(&key) {
                    let v = format!("barrier: {key:?} in {path:?} is not in the log");
                    log.violations.push(v);
                }
            }
        }
        log.durable = log.len;
        log.barriers += 1;
        Ok(())
    });
    let fs = HookFs::new();
    fs.set_hook(move |call| {
        if call.op == Op::Sync && call.path_ends_with(".wal") {
            let keys = wal_keys(call.path);
            let mut log = at_sync.lock().unwrap();
            for key in keys {
                let place = log.place.get(&key).copied().unwrap_or(usize::MAX);
                if place >= log.durable {
                    let v = format!("fsync: {key:?} of {:?} is past the durable log", call.path);
                    log.violations.push(v);
                }
            }
            log.checked_syncs += 1;
        }
        Action::Pass
    });
    let options = common::options(settings).with_file_system(Arc::new(fs));
    LsmTree::open_with_barrier(dir, &options, barrier).unwrap()
}

/// Two writers put `range` (each its half), logging each key first; every 50th put of the
/// first writer is followed by a `sync`.
fn write_logged(tree: &LsmTree, log: &Mutex<ValueLog>, range: std::ops::Range<u32>) {
    std::thread::scope(|s| {
        for writer in 0..2 {
            let range = range.clone();
            s.spawn(move || {
                for i in range.filter(|i| i % 2 == writer) {
                    log.lock().unwrap().append(&key(i));
                    tree.put(&key(i), &value(i)).unwrap();
                    if writer == 0 && i % 100 == 0 {
                        tree.sync().unwrap();
                    }
                }
            });
        }
    });
}

#[test]
fn at_every_barrier_the_log_holds_everything_the_tree_took() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(ValueLog::default()));
    // Small memtables (freezes), explicit syncs, then every write synced.
    let tree = open_checked(tmp.path(), &log, "memtable_bytes=16K wal_bytes_per_sync=0");
    write_logged(&tree, &log, 0..1200);
    tree.flush().unwrap();
    drop(tree);
    let settings = "memtable_bytes=16K wal_bytes_per_sync=0 sync_writes=true";
    let tree = open_checked(tmp.path(), &log, settings);
    write_logged(&tree, &log, 1200..1400);
    drop(tree);
    let log = log.lock().unwrap();
    assert_eq!(log.violations, Vec::<String>::new());
    // At least: 12 `sync` calls, 2 opens, and 100 synced write groups (two writers, so at
    // most two writes per group).
    assert!(log.barriers >= 114, "{} barriers", log.barriers);
    assert!(log.checked_syncs >= 112, "{} syncs", log.checked_syncs);
    let tree = LsmTree::open(tmp.path(), &common::options("")).unwrap();
    for i in (0..1400).step_by(37) {
        assert_eq!(tree.get(&key(i)).unwrap(), Some(value(i)));
    }
}

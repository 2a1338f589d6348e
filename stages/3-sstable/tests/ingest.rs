//! Bulk loads by table ingestion ([`sstable::ingest`]): the loaded pairs are newer than
//! everything before them, a load is all or nothing across crashes and failures, and a
//! refused input leaves the store as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kv_shared::bulk::{LoadOrder, LoadReport};
use kv_shared::{Engine, Error, KeyRange, Options, Result};
use kv_testkit::conformance::scan_vec;
use kv_testkit::fault_fs::{FaultFs, store_path};
use kv_testkit::hook_fs::{Action, HookFs, Op};
use sstable::SstableStore;

/// What a store should hold: key to value.
type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

/// Small tables and blocks, so that a load of a few hundred pairs makes several tables.
fn small(options: Options) -> Options {
    options
        .set("memtable_bytes", "1K")
        .set("block_bytes", "256")
}

fn load(e: &SstableStore, pairs: &Pairs, order: LoadOrder) -> Result<LoadReport> {
    let mut input = pairs.clone().into_iter().map(Ok);
    e.load(&mut input, order)
}

/// The names in `dir` ending in `suffix`.
fn names(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Writes the data a load will go over, in the store and in `model`: keys 0 to 199 put as
/// `old-i`, every fifth deleted; the first half flushed into a table, the rest left in the
/// memtable (and its WAL), then synced.
fn old_data(e: &SstableStore, model: &mut Model) {
    for i in 0..200 {
        let value = format!("old-{i}").into_bytes();
        e.put(&key(i), &value).unwrap();
        model.insert(key(i), value);
        if i == 100 {
            e.flush().unwrap();
        }
    }
    for i in (0..200).step_by(5) {
        e.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
    e.sync().unwrap();
}

/// The load that goes over [`old_data`]: every other key from 0 to 298, as `new-i`, so it
/// overwrites some keys, brings back some deleted ones, and adds new ones.
fn new_pairs() -> Pairs {
    (0..300)
        .step_by(2)
        .map(|i| (key(i), format!("new-{i}").into_bytes()))
        .collect()
}

fn with_pairs(model: &Model, pairs: &Pairs) -> Model {
    let mut after = model.clone();
    after.extend(pairs.iter().cloned());
    after
}

fn scan(e: &SstableStore) -> Model {
    scan_vec(e, KeyRange::all()).into_iter().collect()
}

fn assert_holds(e: &SstableStore, model: &Model) {
    assert_eq!(scan(e), *model);
    for i in 0..320 {
        assert_eq!(
            e.get(&key(i)).unwrap().as_ref(),
            model.get(&key(i)),
            "key {i}"
        );
    }
}

#[test]
fn a_load_into_an_empty_store_makes_tables_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let e = SstableStore::open(&dir, &small(Options::new())).unwrap();
    let pairs = new_pairs();
    let report = load(&e, &pairs, LoadOrder::Sorted).unwrap();
    let bytes: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!((report.pairs, report.bytes), (150, bytes as u64));
    assert!(report.files_added >= 2, "{report:?}");
    assert_eq!(report.sort_runs, 0);
    assert_eq!(
        report.method,
        format!(
            "{} tables ingested (memtable was empty)",
            report.files_added
        )
    );
    let model: Model = pairs.into_iter().collect();
    assert_holds(&e, &model);
    assert_eq!(e.table_count() as u64, report.files_added);
    assert_eq!(names(&dir, ".sst").len() as u64, report.files_added);
    assert!(names(&dir, ".tmp").is_empty() && names(&dir, ".load").is_empty());
    let stats = e.stats().unwrap();
    assert_eq!(stats.user_bytes_written, bytes as u64);
    assert_eq!(stats.extra["loads"], 1);
    let on_disk: u64 = names(&dir, ".sst")
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).unwrap().len())
        .sum();
    assert_eq!(stats.extra["load_bytes_written"], on_disk);
    assert!(stats.disk_bytes_written >= on_disk);
    drop(e);
    let e = SstableStore::open(&dir, &small(Options::new())).unwrap();
    assert_holds(&e, &model);
}

#[test]
fn loaded_pairs_are_newer_than_everything_before_and_older_than_everything_after() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let options = small(Options::new());
    let e = SstableStore::open(&dir, &options).unwrap();
    let mut model = Model::new();
    old_data(&e, &mut model);
    let pairs = new_pairs();
    let report = load(&e, &pairs, LoadOrder::Sorted).unwrap();
    assert!(
        report.method.ends_with("(memtable flushed first)"),
        "{report:?}"
    );
    let mut model = with_pairs(&model, &pairs);
    // key 0 and key 10 were deleted, then loaded; key 5 was deleted and is not in the load.
    assert_eq!(e.get(&key(10)).unwrap(), Some(b"new-10".to_vec()));
    assert_eq!(e.get(&key(5)).unwrap(), None);
    assert_eq!(e.get(&key(7)).unwrap(), Some(b"old-7".to_vec()));
    assert_holds(&e, &model);
    // Writes after the load are newer than it, through a flush and a reopen.
    for i in (0..40).step_by(4) {
        let value = format!("after-{i}").into_bytes();
        e.put(&key(i), &value).unwrap();
        model.insert(key(i), value);
    }
    e.delete(&key(2)).unwrap();
    model.remove(&key(2));
    assert_holds(&e, &model);
    drop(e);
    let e = SstableStore::open(&dir, &options).unwrap();
    assert_holds(&e, &model);
    e.flush().unwrap();
    e.compact().unwrap();
    assert_eq!(e.table_count(), 1);
    assert_holds(&e, &model);
    drop(e);
    let e = SstableStore::open(&dir, &options).unwrap();
    assert_holds(&e, &model);
}

#[test]
fn sorted_input_keeps_the_last_of_equal_keys_and_unsorted_input_is_sorted_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    // A memtable of 1 KiB is the external sort's budget too: the unsorted load writes runs.
    let options = small(Options::new());
    let e = SstableStore::open(&dir, &options).unwrap();
    let sorted: Pairs = vec![
        (key(1), b"a".to_vec()),
        (key(1), b"b".to_vec()),
        (key(2), b"c".to_vec()),
    ];
    let report = load(&e, &sorted, LoadOrder::Sorted).unwrap();
    assert_eq!((report.pairs, report.files_added), (3, 1));
    assert_eq!(e.get(&key(1)).unwrap(), Some(b"b".to_vec()));
    // Keys in a scrambled order, each given twice: the second value wins.
    let mut unsorted = Pairs::new();
    for round in 0..2 {
        for i in 0..200 {
            let i = (i * 73) % 200;
            unsorted.push((key(i), format!("r{round}-{i}").into_bytes()));
        }
    }
    let report = load(&e, &unsorted, LoadOrder::Unsorted).unwrap();
    assert_eq!(report.pairs, 400);
    assert!(report.sort_runs > 1, "{report:?}");
    let model: Model = (0..200)
        .map(|i| (key(i), format!("r1-{i}").into_bytes()))
        .collect();
    assert_holds(&e, &model);
    let scratch = dir.join("sort");
    assert!(std::fs::read_dir(&scratch).unwrap().next().is_none());
    // A run a crash left behind is removed by the next open.
    std::fs::write(scratch.join("run-000000"), b"left over").unwrap();
    drop(e);
    let e = SstableStore::open(&dir, &options).unwrap();
    assert!(std::fs::read_dir(&scratch).unwrap().next().is_none());
    assert_holds(&e, &model);
}

#[test]
fn an_input_out_of_order_is_refused_and_the_store_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let options = small(Options::new());
    let e = SstableStore::open(&dir, &options).unwrap();
    let mut model = Model::new();
    old_data(&e, &mut model);
    // Far enough in that whole tables were written before the step back.
    let mut pairs = new_pairs();
    pairs.swap(120, 121);
    let err = load(&e, &pairs, LoadOrder::Sorted).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(ref m) if m.contains("pair 122")),
        "{err}"
    );
    assert_holds(&e, &model);
    assert!(names(&dir, ".tmp").is_empty() && names(&dir, ".load").is_empty());
    // An input that fails part-way is refused the same way.
    let mut failing = new_pairs()
        .into_iter()
        .take(100)
        .map(Ok)
        .chain([Err(Error::InvalidArgument("the input broke".into()))]);
    let err = e.load(&mut failing, LoadOrder::Sorted).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(ref m) if m == "the input broke"));
    assert_holds(&e, &model);
    assert_eq!(e.stats().unwrap().extra["loads"], 0);
    drop(e);
    let e = SstableStore::open(&dir, &options).unwrap();
    assert_holds(&e, &model);
}

#[test]
fn a_cursor_opened_before_the_load_does_not_see_it() {
    let tmp = tempfile::tempdir().unwrap();
    let e = SstableStore::open(&tmp.path().join("db"), &small(Options::new())).unwrap();
    let mut model = Model::new();
    old_data(&e, &mut model);
    let mut before = e.cursor().unwrap();
    load(&e, &new_pairs(), LoadOrder::Sorted).unwrap();
    before.seek_to_first().unwrap();
    let mut seen = Model::new();
    while before.valid() {
        seen.insert(before.key().to_vec(), before.value().to_vec());
        before.next().unwrap();
    }
    assert_eq!(seen, model);
    assert_eq!(scan(&e), with_pairs(&model, &new_pairs()));
}

/// A store on `fs` at `dir` with [`old_data`] in it, and its model.
fn store_on(fs: Arc<dyn kv_shared::file_system::FileSystem>, dir: &Path) -> (SstableStore, Model) {
    let e = SstableStore::open(dir, &small(Options::new()).with_file_system(fs)).unwrap();
    let mut model = Model::new();
    old_data(&e, &mut model);
    (e, model)
}

/// Asserts that `e` holds `before` or `after`; true for `after`.
fn before_or_after(e: &SstableStore, before: &Model, after: &Model, context: &str) -> bool {
    let found = scan(e);
    assert!(
        found == *before || found == *after,
        "{context}: the store holds part of the load ({} keys; {} before, {} after)",
        found.len(),
        before.len(),
        after.len()
    );
    found == *after
}

#[test]
fn a_power_loss_at_any_step_of_a_load_leaves_all_of_it_or_none() {
    let pairs = new_pairs();
    // The reference run: count the load's file operations, and check that a power loss
    // right after `load` returns keeps all of it.
    let fs = FaultFs::new(1);
    let (e, before) = store_on(Arc::new(fs.clone()), &store_path());
    let after = with_pairs(&before, &pairs);
    let start = fs.mutations();
    load(&e, &pairs, LoadOrder::Sorted).unwrap();
    let total = fs.mutations() - start;
    fs.crash();
    drop(e);
    fs.restart();
    let reopen = |fs: &FaultFs| {
        SstableStore::open(
            &store_path(),
            &small(Options::new()).with_file_system(Arc::new(fs.clone())),
        )
        .unwrap()
    };
    assert!(before_or_after(
        &reopen(&fs),
        &before,
        &after,
        "after load returned"
    ));
    let e = reopen(&fs);
    assert_holds(&e, &after);
    drop(e);
    let mut outcomes = [0, 0];
    for k in 1..=total {
        let fs = FaultFs::new(k);
        let (e, _) = store_on(Arc::new(fs.clone()), &store_path());
        fs.crash_at_mutation(k);
        // A crash in the best-effort cleanup after the commit still returns `Ok`.
        let _ = load(&e, &pairs, LoadOrder::Sorted);
        drop(e);
        fs.restart();
        let context = format!("power loss before operation {k} of the load's {total}");
        let e = reopen(&fs);
        let whole = before_or_after(&e, &before, &after, &context);
        outcomes[usize::from(whole)] += 1;
        // The recovered store takes writes and opens again.
        e.put(b"zz", b"later").unwrap();
        e.sync().unwrap();
        drop(e);
        let e = reopen(&fs);
        assert_eq!(e.get(b"zz").unwrap(), Some(b"later".to_vec()), "{context}");
    }
    eprintln!("power loss at each of {total} steps: {outcomes:?} (before, whole load)");
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "{outcomes:?} of {total}"
    );
}

/// Copies the files of the store `from` into a new directory `to`.
fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_process_killed_at_any_step_of_a_load_leaves_all_of_it_or_none() {
    let pairs = new_pairs();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let (e, before) = store_on(Arc::new(kv_shared::file_system::RealFs), &base);
    drop(e);
    let after = with_pairs(&before, &pairs);
    // Each run opens a copy of `base` on a `HookFs`, which dies after `k` more
    // disk-changing calls (`None`: the reference run, counting them).
    let run = |k: Option<u64>| {
        let dir = tmp.path().join(format!("{k:?}"));
        copy_store(&base, &dir);
        let fs = HookFs::new();
        let options = small(Options::new()).with_file_system(Arc::new(fs.clone()));
        let e = SstableStore::open(&dir, &options).unwrap();
        let start = fs.mutations();
        if let Some(k) = k {
            fs.crash_after(k);
        }
        let result = load(&e, &pairs, LoadOrder::Sorted);
        assert_eq!(fs.crashed(), k.is_some());
        (dir, result.is_ok(), fs.mutations() - start)
    };
    let (_, ok, total) = run(None);
    assert!(ok);
    let mut outcomes = [0, 0];
    for k in 0..total {
        let (dir, _, _) = run(Some(k));
        let context = format!("killed at operation {} of the load's {total}", k + 1);
        let e = SstableStore::open(&dir, &small(Options::new())).unwrap();
        outcomes[usize::from(before_or_after(&e, &before, &after, &context))] += 1;
        assert!(names(&dir, ".tmp").is_empty() && names(&dir, ".load").is_empty());
    }
    eprintln!("process killed at each of {total} steps: {outcomes:?} (before, whole load)");
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "{outcomes:?} of {total}"
    );
}

/// A store on a [`HookFs`] with [`old_data`], its directory and its model.
fn hooked() -> (tempfile::TempDir, PathBuf, HookFs, SstableStore, Model) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let fs = HookFs::new();
    let (e, model) = store_on(Arc::new(fs.clone()), &dir);
    (tmp, dir, fs, e, model)
}

#[test]
fn a_commit_that_fails_is_undone() {
    let (_tmp, dir, fs, e, before) = hooked();
    // The record's rename is done, then reports an error (as when its directory sync fails).
    fs.set_hook(|call| match call.op {
        Op::Rename if call.path_ends_with(".load.tmp") => Action::FailAfter,
        _ => Action::Pass,
    });
    assert!(load(&e, &new_pairs(), LoadOrder::Sorted).is_err());
    fs.clear_hook();
    assert_holds(&e, &before);
    assert!(names(&dir, ".tmp").is_empty() && names(&dir, ".load").is_empty());
    e.put(&key(0), b"later").unwrap();
    drop(e);
    let e = SstableStore::open(&dir, &small(Options::new())).unwrap();
    let mut model = before;
    model.insert(key(0), b"later".to_vec());
    assert_holds(&e, &model);
}

/// Runs a load whose commit `fail` makes fail in a way the load cannot undo, writes one
/// key after it, flushes when `flush` says, and reopens: the store holds the load (before
/// any flush) or not (after one), never part of it, and the later write wins either way.
fn unknown_outcome(
    fail: impl Fn(&kv_testkit::hook_fs::Call<'_>) -> Action + Send + Sync + 'static,
    flush: bool,
) {
    let (_tmp, dir, fs, e, before) = hooked();
    e.flush().unwrap();
    fs.set_hook(fail);
    assert!(load(&e, &new_pairs(), LoadOrder::Sorted).is_err());
    fs.clear_hook();
    // The failed load shows nothing, and the store goes on taking writes.
    assert_holds(&e, &before);
    e.put(&key(2), b"later").unwrap();
    if flush {
        e.flush().unwrap();
    }
    drop(e);
    let e = SstableStore::open(&dir, &small(Options::new())).unwrap();
    let mut model = if flush {
        before
    } else {
        with_pairs(&before, &new_pairs())
    };
    model.insert(key(2), b"later".to_vec());
    assert_holds(&e, &model);
    drop(e);
    let e = SstableStore::open(&dir, &small(Options::new())).unwrap();
    assert_holds(&e, &model);
}

fn undo_fails(call: &kv_testkit::hook_fs::Call<'_>) -> Action {
    match call.op {
        Op::Rename if call.path_ends_with(".load.tmp") => Action::FailAfter,
        Op::Remove if call.path_ends_with(".load") => Action::Fail,
        _ => Action::Pass,
    }
}

fn move_fails(call: &kv_testkit::hook_fs::Call<'_>) -> Action {
    match call.op {
        Op::Rename if call.path_ends_with(".sst.tmp") => Action::Fail,
        _ => Action::Pass,
    }
}

#[test]
fn a_commit_that_cannot_be_undone_is_whole_until_the_next_flush() {
    unknown_outcome(undo_fails, false);
}

#[test]
fn a_commit_that_cannot_be_undone_is_replaced_by_the_next_flush() {
    unknown_outcome(undo_fails, true);
}

#[test]
fn a_failure_after_the_commit_point_is_whole_until_the_next_flush() {
    unknown_outcome(move_fails, false);
}

#[test]
fn a_failure_after_the_commit_point_is_replaced_by_the_next_flush() {
    unknown_outcome(move_fails, true);
}

#[test]
fn an_empty_load_changes_nothing() {
    let (_tmp, dir, fs, e, before) = hooked();
    let tables = names(&dir, ".sst");
    let start = fs.mutations();
    let report = load(&e, &Pairs::new(), LoadOrder::Sorted).unwrap();
    assert_eq!(report.files_added, 0);
    assert_eq!(report.method, "no pairs: nothing ingested");
    // One sync of the WAL, nothing else.
    assert_eq!(fs.mutations() - start, 1);
    assert_holds(&e, &before);
    assert_eq!(names(&dir, ".sst"), tables);
}

#[test]
fn repair_finishes_a_committed_load_first() {
    let (_tmp, dir, fs, e, before) = hooked();
    // With the memtable flushed, the only tables renamed are the load's: the process dies
    // at the first of those renames, after the commit point.
    e.flush().unwrap();
    fs.set_hook(|call| match call.op {
        Op::Rename if call.path_ends_with(".sst.tmp") => Action::Crash,
        _ => Action::Pass,
    });
    assert!(load(&e, &new_pairs(), LoadOrder::Sorted).is_err());
    drop(e);
    assert_eq!(names(&dir, ".load").len(), 1);
    assert!(!names(&dir, ".sst.tmp").is_empty());
    sstable::repair(&dir, &small(Options::new()), true).unwrap();
    assert_eq!(names(&dir, ".load").len(), 1, "a dry run changes nothing");
    sstable::repair(&dir, &small(Options::new()), false).unwrap();
    assert!(names(&dir, ".load").is_empty() && names(&dir, ".tmp").is_empty());
    let e = SstableStore::open(&dir, &small(Options::new())).unwrap();
    assert_holds(&e, &with_pairs(&before, &new_pairs()));
}

#[test]
fn loads_and_compactions_running_together_keep_every_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let e = SstableStore::open(&dir, &small(Options::new())).unwrap();
    let mut model = Model::new();
    old_data(&e, &mut model);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..20 {
                e.compact().unwrap();
            }
        });
        for round in 0..5u32 {
            let pairs: Pairs = (round..300)
                .step_by(5)
                .map(|i| (key(i), format!("load{round}-{i}").into_bytes()))
                .collect();
            load(&e, &pairs, LoadOrder::Sorted).unwrap();
            model.extend(pairs);
            let value = format!("put{round}").into_bytes();
            e.put(&key(round), &value).unwrap();
            model.insert(key(round), value);
        }
    });
    assert_holds(&e, &model);
    drop(e);
    let e = SstableStore::open(&dir, &small(Options::new())).unwrap();
    assert_holds(&e, &model);
    e.compact().unwrap();
    assert_holds(&e, &model);
}

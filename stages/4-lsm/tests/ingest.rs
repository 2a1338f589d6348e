//! Bulk loads by table ingestion ([`lsm::ingest`]): where the tables go, that the loaded
//! pairs win over everything older and lose to everything newer, everywhere a read can look
//! (a `get`, a cursor, after compaction, after reopening), and that a load is all or
//! nothing: after an input error, a key out of order, an I/O error, or a power loss at any
//! step of it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use kv_shared::{Engine, Error, Fs, KeyRange, LoadOrder, LoadReport, Result};
use kv_testkit::conformance::scan_vec;
use kv_testkit::fault_fs::{FaultFs, store_path};
use kv_testkit::hook_fs::{Action, Call, HookFs, Op};
use lsm::LsmTree;
use lsm::file_names::INGEST_DIR;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// Which file system calls a hook picks.
type Matches = fn(&Call<'_>) -> bool;

/// Small tables, so that a load of a few thousand pairs makes several.
const SMALL: &str = "memtable_bytes=16K table_bytes=8K block_bytes=1K level1_bytes=32K";

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

/// Keys `range`, ascending, each with a value naming `tag`.
fn pairs(range: std::ops::Range<u32>, tag: &str) -> Pairs {
    range
        .map(|i| (key(i), format!("{tag}-{i}-{}", "x".repeat(40)).into_bytes()))
        .collect()
}

fn load(tree: &LsmTree, pairs: &Pairs, order: LoadOrder) -> Result<LoadReport> {
    let mut input = pairs.iter().cloned().map(Ok);
    tree.load(&mut input, order)
}

/// The whole store, by a cursor.
fn contents(tree: &LsmTree) -> Model {
    scan_vec(tree, KeyRange::all()).into_iter().collect()
}

/// Every key of `model` by `get`, and the whole store by a cursor, agree with `model`.
fn assert_holds(tree: &LsmTree, model: &Model, what: &str) {
    for (k, v) in model {
        let got = tree.get(k).unwrap();
        assert_eq!(got.as_ref(), Some(v), "{what}: get {}", show(k));
    }
    assert!(contents(tree) == *model, "{what}: the scan differs");
    tree.debug_check_invariants().unwrap();
}

fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Files per level.
fn files_per_level(tree: &LsmTree) -> Vec<usize> {
    tree.levels_summary().iter().map(|l| l.files).collect()
}

/// The files left in the store's scratch directory (none, or no directory at all).
fn scratch_files(fs: &Fs, dir: &Path) -> Vec<String> {
    fs.list(&dir.join(INGEST_DIR)).unwrap_or_default()
}

#[test]
fn an_empty_store_takes_a_load_on_the_last_level() {
    let (tmp, tree) = common::new_tree(&common::options(SMALL));
    let loaded = pairs(0..2000, "loaded");
    let report = load(&tree, &loaded, LoadOrder::Sorted).unwrap();
    assert!(report.files_added > 1, "{report:?}");
    assert_eq!(report.pairs, 2000);
    assert_eq!(
        report.method,
        format!("{} tables ingested into L6", report.files_added)
    );
    let files = files_per_level(&tree);
    assert_eq!(files[6] as u64, report.files_added, "{files:?}");
    assert_eq!(files[..6].iter().sum::<usize>(), 0, "{files:?}");
    assert_holds(&tree, &loaded.iter().cloned().collect(), "after the load");
    assert!(scratch_files(&Fs::default(), tmp.path()).is_empty());

    let stats = tree.stats().unwrap();
    assert_eq!(stats.user_bytes_written, report.bytes);
    assert!(stats.disk_bytes_written >= stats.extra["level_6_bytes"]);
    assert_eq!(stats.live_keys, 2000);
    // Nothing to compact: the load is where compaction would have put it.
    tree.compact().unwrap();
    assert_eq!(files_per_level(&tree), files);
    assert_eq!(tree.stats().unwrap().extra["compactions"], 0);
}

/// Over older data on every level, with deletes among it: in the load's range the loaded
/// values win (deleted keys come back with them), outside it nothing changes; the same
/// after a full compaction, which merges the load with what it covered, and after a reopen.
#[test]
fn a_load_over_existing_data_wins_in_its_range_only() {
    for style in ["leveled", "tiered"] {
        let settings = format!("{SMALL} compaction={style}");
        let (tmp, tree) = common::new_tree(&common::options(&settings));
        let mut model = Model::new();
        for (k, v) in pairs(0..1500, "old") {
            tree.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        for i in (400..700).step_by(7).chain(1200..1210) {
            tree.delete(&key(i)).unwrap();
            model.remove(&key(i));
        }
        tree.compact().unwrap();
        let loaded = pairs(400..700, "new");
        let report = load(&tree, &loaded, LoadOrder::Sorted).unwrap();
        model.extend(loaded.iter().cloned());
        assert_holds(
            &tree,
            &model,
            &format!("{style}: after the load ({report:?})"),
        );
        tree.full_compaction().unwrap();
        assert_holds(&tree, &model, &format!("{style}: after a full compaction"));
        tree.close().unwrap();
        let tree = LsmTree::open(tmp.path(), &common::options(&settings)).unwrap();
        assert_holds(&tree, &model, &format!("{style}: after reopening"));
    }
}

/// Keys written just before the load are still in the memtable: it is flushed first, and
/// the load wins over them; a write after the load wins over the load.
#[test]
fn a_load_over_the_memtable_flushes_it_first() {
    let (_tmp, tree) = common::new_tree(&common::options(SMALL));
    let mut model = Model::new();
    for (k, v) in pairs(0..40, "in-memtable") {
        tree.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    let loaded = pairs(20..60, "loaded");
    let report = load(&tree, &loaded, LoadOrder::Sorted).unwrap();
    assert!(
        report.method.ends_with("(memtable flushed first)"),
        "{report:?}"
    );
    // The flushed memtable is an L0 table overlapping the load: the load goes above it.
    assert!(report.method.contains("into L0"), "{report:?}");
    model.extend(loaded);
    assert_holds(&tree, &model, "after the load");
    tree.put(&key(30), b"after the load").unwrap();
    tree.delete(&key(31)).unwrap();
    model.insert(key(30), b"after the load".to_vec());
    model.remove(&key(31));
    assert_holds(&tree, &model, "writes after the load");
    tree.full_compaction().unwrap();
    assert_holds(&tree, &model, "after a full compaction");
}

/// A load is durable when it returns: a power loss right after keeps it, and the writes
/// after it (numbered past the load's sequence number jump) replay on reopen.
#[test]
fn a_load_survives_a_power_loss_once_it_returns() {
    let fs = FaultFs::new(7);
    let options = || common::options(SMALL).with_file_system(Arc::new(fs.clone()));
    let tree = LsmTree::open(&store_path(), &options()).unwrap();
    let mut model = Model::new();
    for (k, v) in pairs(0..30, "before") {
        tree.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    tree.sync().unwrap();
    let loaded = pairs(100..1100, "loaded");
    load(&tree, &loaded, LoadOrder::Unsorted).unwrap();
    model.extend(loaded);
    fs.crash();
    drop(tree);
    fs.restart();
    let tree = LsmTree::open(&store_path(), &options()).unwrap();
    assert_holds(&tree, &model, "after a power loss after the load");
    for (k, v) in pairs(500..520, "after") {
        tree.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    tree.sync().unwrap();
    fs.crash();
    drop(tree);
    fs.restart();
    let tree = LsmTree::open(&store_path(), &options()).unwrap();
    assert_holds(&tree, &model, "writes after the load, after a power loss");
}

/// The power goes out before each disk-changing call of a load in turn (the flush of a
/// memtable of synced writes first, then the tables, the renames, the manifest edit): the
/// store that comes back holds either nothing of the load or all of it, and no leftover.
#[test]
fn a_power_loss_anywhere_in_a_load_leaves_the_store_before_or_after_it() {
    let seed = 11;
    let image = {
        let fs = FaultFs::new(seed);
        let options = common::options(SMALL).with_file_system(Arc::new(fs.clone()));
        let tree = LsmTree::open(&store_path(), &options).unwrap();
        for (k, v) in pairs(0..600, "old") {
            tree.put(&k, &v).unwrap();
        }
        tree.compact().unwrap();
        for (k, v) in pairs(250..260, "memtable") {
            tree.put(&k, &v).unwrap();
        }
        tree.sync().unwrap();
        drop(tree);
        fs.image()
    };
    let before = {
        let fs = FaultFs::from_image(seed, &image);
        let options = common::options(SMALL).with_file_system(Arc::new(fs));
        contents(&LsmTree::open(&store_path(), &options).unwrap())
    };
    let loaded = pairs(200..500, "loaded");
    let mut after = before.clone();
    after.extend(loaded.iter().cloned());
    let (mut old, mut all) = (0, 0);
    for k in 1..1000 {
        let fs = FaultFs::from_image(seed, &image);
        let options = common::options(SMALL).with_file_system(Arc::new(fs.clone()));
        let tree = LsmTree::open(&store_path(), &options).unwrap();
        fs.crash_at_mutation(k);
        let result = load(&tree, &loaded, LoadOrder::Sorted);
        let finished = result.is_ok() && !fs.is_down();
        fs.crash();
        drop(tree);
        fs.restart();
        // No compaction in the reopened tree: its tables must be exactly the files.
        let quiet = format!(
            "{SMALL} l0_trigger=99 l0_slowdown=99 l0_stop=99 level1_bytes=1G dynamic_levels=false"
        );
        let options = common::options(&quiet).with_file_system(Arc::new(fs.clone()));
        let tree = LsmTree::open(&store_path(), &options).unwrap();
        let got = contents(&tree);
        assert!(
            got == before || got == after,
            "crash at mutation {k} of the load: neither before nor after it ({result:?})"
        );
        if got == after {
            all += 1
        } else {
            old += 1
        }
        let stats = tree.stats().unwrap();
        let listed: usize = tree.levels_summary().iter().map(|l| l.files).sum();
        let tables = fs
            .image()
            .keys()
            .filter(|p| p.extension().is_some_and(|e| e == "sst"))
            .count();
        assert_eq!(tables, listed, "crash at {k}: a table no version names");
        assert!(stats.extra["background_failures"] == 0);
        if finished {
            assert_eq!(got, after);
            eprintln!("{k} crash points: {old} left the store before the load, {all} after");
            assert!(old > 0 && all > 0);
            return;
        }
    }
    panic!("the load never finished");
}

/// A sorted input with a key out of order is refused, and so is an input that fails: the
/// store and its files are as before, and it takes writes and loads again.
#[test]
fn a_refused_load_changes_nothing() {
    let (tmp, tree) = common::new_tree(&common::options(SMALL));
    for (k, v) in pairs(0..500, "old") {
        tree.put(&k, &v).unwrap();
    }
    tree.compact().unwrap();
    tree.put(&key(3), b"in the memtable").unwrap();
    let before = contents(&tree);
    let files = common::table_files(tmp.path());

    let mut out_of_order = pairs(100..400, "loaded");
    out_of_order.swap(250, 251);
    match load(&tree, &out_of_order, LoadOrder::Sorted) {
        Err(Error::InvalidArgument(detail)) => assert!(detail.contains("pair 252"), "{detail}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let failing = pairs(100..400, "loaded");
    let mut input = failing.into_iter().enumerate().map(|(i, pair)| {
        if i == 280 {
            Err(Error::InvalidArgument("the input broke".into()))
        } else {
            Ok(pair)
        }
    });
    let result = tree.load(&mut input, LoadOrder::Sorted);
    assert!(matches!(result, Err(Error::InvalidArgument(ref d)) if d == "the input broke"));

    assert!(contents(&tree) == before, "the store changed");
    assert_eq!(common::table_files(tmp.path()), files);
    assert!(scratch_files(&Fs::default(), tmp.path()).is_empty());
    let loaded = pairs(100..400, "loaded");
    load(&tree, &loaded, LoadOrder::Sorted).unwrap();
    let mut model = before;
    model.extend(loaded);
    assert_holds(&tree, &model, "a load after the refused ones");
}

/// I/O errors while a load writes its tables, or while it renames them into the store:
/// the load fails, the store is as before (no table left behind), and it goes on.
#[test]
fn an_io_error_before_the_commit_changes_nothing() {
    let in_scratch = |call: &Call<'_>| call.path.to_string_lossy().contains(INGEST_DIR);
    let hooks: [(&str, Matches); 3] = [
        ("a table append", |c| {
            c.op == Op::Append && c.path_ends_with(".sst")
        }),
        ("a table sync", |c| {
            c.op == Op::Sync && c.path_ends_with(".sst")
        }),
        ("a rename", |c| c.op == Op::Rename),
    ];
    for (what, fails) in hooks {
        let tmp = tempfile::tempdir().unwrap();
        let fs = HookFs::new();
        let options = common::options(SMALL).with_file_system(Arc::new(fs.clone()));
        let tree = LsmTree::open(tmp.path(), &options).unwrap();
        for (k, v) in pairs(0..300, "old") {
            tree.put(&k, &v).unwrap();
        }
        tree.compact().unwrap();
        let before = contents(&tree);
        let files = common::table_files(tmp.path());
        // The second matching call fails (a rename: the second table's).
        let seen = AtomicBool::new(false);
        fs.set_hook(move |call| {
            if in_scratch(call) && fails(call) && seen.swap(true, SeqCst) {
                Action::Fail
            } else {
                Action::Pass
            }
        });
        let result = load(&tree, &pairs(100..1000, "loaded"), LoadOrder::Sorted);
        fs.clear_hook();
        assert!(
            matches!(result, Err(Error::Io { .. })),
            "{what}: {result:?}"
        );
        assert!(contents(&tree) == before, "{what}: the store changed");
        assert_eq!(common::table_files(tmp.path()), files, "{what}");
        assert!(
            scratch_files(&Fs::default(), tmp.path()).is_empty(),
            "{what}"
        );
        tree.put(b"after", b"v").unwrap();
        assert_eq!(tree.background_error().map(|e| e.to_string()), None);
    }
}

/// The manifest append of the commit fails: the edit may or may not be on disk, so the
/// tree stops taking writes (a background error of the load), and reopening decides, here
/// for "not on disk": the store as before.
#[test]
fn a_failed_manifest_append_stops_writes_until_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = HookFs::new();
    let options = common::options(SMALL).with_file_system(Arc::new(fs.clone()));
    let tree = LsmTree::open(tmp.path(), &options).unwrap();
    for (k, v) in pairs(0..300, "old") {
        tree.put(&k, &v).unwrap();
    }
    tree.compact().unwrap();
    let before = contents(&tree);
    // Only the load's own append fails, not a background thread's (`lsm-flush`, ...).
    fs.set_hook(|call| {
        let manifest = call.path.to_string_lossy().contains("MANIFEST-");
        let background = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with("lsm-"));
        if call.op == Op::Append && manifest && !background {
            Action::Fail
        } else {
            Action::Pass
        }
    });
    let result = load(&tree, &pairs(1000..1500, "loaded"), LoadOrder::Sorted);
    assert!(matches!(result, Err(Error::Io { .. })), "{result:?}");
    assert!(matches!(
        tree.put(b"k", b"v"),
        Err(Error::Background { task: "load", .. })
    ));
    assert!(contents(&tree) == before, "a reader saw the failed load");
    drop(tree);
    fs.clear_hook();
    let tree = LsmTree::open(tmp.path(), &common::options(SMALL)).unwrap();
    assert!(contents(&tree) == before);
    assert!(tree.stats().unwrap().extra["recovery_orphan_tables"] > 0);
}

#[test]
fn a_cursor_opened_before_a_load_does_not_see_it() {
    let (_tmp, tree) = common::new_tree(&common::options(SMALL));
    let old = pairs(0..100, "old");
    for (k, v) in &old {
        tree.put(k, v).unwrap();
    }
    let mut cursor = tree.cursor().unwrap();
    let loaded = pairs(50..150, "loaded");
    load(&tree, &loaded, LoadOrder::Sorted).unwrap();
    cursor.seek_to_first().unwrap();
    let mut seen = Pairs::new();
    while cursor.valid() {
        seen.push((cursor.key().to_vec(), cursor.value().to_vec()));
        cursor.next().unwrap();
    }
    assert!(seen == old, "the cursor opened before the load saw it");
    drop(cursor);
    let mut model: Model = old.into_iter().collect();
    model.extend(loaded);
    assert_holds(&tree, &model, "a cursor opened after");
}

/// An unsorted input with repeated keys, larger than `memtable_bytes`: sorted through runs
/// on disk, the last pair of each key wins.
#[test]
fn an_unsorted_load_is_sorted_and_the_last_pair_wins() {
    let (tmp, tree) = common::new_tree(&common::options(SMALL));
    let mut input = Pairs::new();
    let mut model = Model::new();
    for round in 0..3 {
        for i in (0..1500u32).rev().step_by(round + 1) {
            let value = format!("round {round} {}", "y".repeat(30)).into_bytes();
            input.push((key(i * 7 % 1500), value.clone()));
            model.insert(key(i * 7 % 1500), value);
        }
    }
    let report = load(&tree, &input, LoadOrder::Unsorted).unwrap();
    assert!(report.sort_runs > 1, "{report:?}");
    assert_eq!(report.pairs, input.len() as u64);
    assert_holds(&tree, &model, "after an unsorted load");
    assert!(scratch_files(&Fs::default(), tmp.path()).is_empty());
}

/// A writer puts keys of the load's range while it runs, and once more after it returned.
/// Every way of reading agrees on which value won, and goes on agreeing after compaction
/// and reopening: nothing older ever sits above something newer.
#[test]
fn writes_during_a_load_agree_everywhere() {
    let (tmp, tree) = common::new_tree(&common::options(SMALL));
    let tree = Arc::new(tree);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (tree, done) = (tree.clone(), done.clone());
        std::thread::spawn(move || {
            let mut round = 0;
            while !done.load(SeqCst) {
                for i in (0..3000).step_by(5) {
                    tree.put(&key(i), format!("write {round}").as_bytes())
                        .unwrap();
                }
                round += 1;
            }
            for i in (0..3000).step_by(5) {
                tree.put(&key(i), b"write after").unwrap();
            }
        })
    };
    let loaded = pairs(0..3000, "loaded");
    load(&tree, &loaded, LoadOrder::Sorted).unwrap();
    done.store(true, SeqCst);
    writer.join().unwrap();
    let mut model: Model = loaded.into_iter().collect();
    for i in (0..3000).step_by(5) {
        model.insert(key(i), b"write after".to_vec());
    }
    assert_holds(&tree, &model, "after the load");
    tree.full_compaction().unwrap();
    assert_holds(&tree, &model, "after a full compaction");
    drop(tree);
    let tree = LsmTree::open(tmp.path(), &common::options(SMALL)).unwrap();
    assert_holds(&tree, &model, "after reopening");
}

//! A merge cut off at any point, and the recovery of such a merge cut off at any point,
//! lose nothing: the store reopens to exactly what was written.
//!
//! [`HookFs::crash_after`]`(n)` lets the first `n` changing file-system calls through and
//! fails every later one without effect, which leaves the directory exactly as a process killed
//! after its `n`-th call would. The tests try every `n` over a whole `compact` (rotation,
//! copying, hint files, the commit record, the renames, the deletions), and over the
//! recovery that finishes a committed merge.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bitcask::Bitcask;
use common::*;
use kv_shared::{Engine, Options};
use kv_testkit::hook_fs::HookFs;

/// What a store holds: key to value.
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const SEGMENT: &str = "2K";

/// A closed store of [`churn`]`(keys, rounds)` in `base` under a new temporary directory:
/// the guard, the store's directory and what it holds.
fn churned_base(keys: u32, rounds: u32) -> (tempfile::TempDir, PathBuf, Model) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let e = open(&base, &quiet(SEGMENT));
    let model = churn(&e, keys, rounds);
    e.close().unwrap();
    (tmp, base, model)
}

/// Copies the store in `from` to `to`, and gives the [`HookFs`] to open the copy on (to count
/// its calls, or cut them off) with the options that put the store on it.
fn copy_on_hook_fs(from: &Path, to: &Path) -> (HookFs, Options) {
    copy_dir(from, to);
    let crash = HookFs::new();
    let options = quiet(SEGMENT).with_file_system(Arc::new(crash.clone()));
    (crash, options)
}

/// Opens the store in `dir` on the real disk, after a crash: nothing of a merge is left
/// lying around, and it holds `model`.
fn open_recovered(dir: &Path, model: &Model, context: &str) -> Bitcask {
    let e = open(dir, &quiet(SEGMENT));
    for name in files(dir) {
        assert!(
            !name.ends_with(".merge") && !name.ends_with(".tmp") && !name.ends_with(".commit"),
            "{context}: {name} left behind"
        );
    }
    assert_holds(&e, model, context);
    e
}

#[test]
fn a_merge_cut_off_at_any_point_loses_nothing() {
    let (tmp, base, model) = churned_base(60, 6);

    // How many changing calls a whole compaction makes (its deletions included).
    let total = {
        let dir = tmp.path().join("count");
        let (crash, options) = copy_on_hook_fs(&base, &dir);
        let e = open(&dir, &options);
        let before = crash.mutations();
        e.compact().unwrap();
        drop(e);
        crash.mutations() - before
    };
    assert!(total > 25, "a compaction of this store makes {total} calls");

    let mut committed_cuts = 0;
    for cut in 0..=total {
        let context = format!("merge cut after {cut} of {total} calls");
        let dir = tmp.path().join(format!("cut{cut}"));
        let (crash, options) = copy_on_hook_fs(&base, &dir);
        let e = open(&dir, &options);
        crash.crash_after(cut);
        let result = e.compact();
        // Failing to delete an input after the switch is not an error of the merge: the
        // commit record stays, and the next open finishes the deletion.
        assert!(result.is_ok() || crash.crashed(), "{context}: {result:?}");
        drop(e);
        committed_cuts += usize::from(files(&dir).iter().any(|n| n.ends_with(".commit")));

        let e = open_recovered(&dir, &model, &context);
        e.compact().unwrap();
        assert_holds(&e, &model, &format!("{context}, merged again"));
        e.close().unwrap();
        let e = open(&dir, &quiet(SEGMENT));
        assert_holds(&e, &model, &format!("{context}, merged again and reopened"));
        e.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert!(
        committed_cuts > 5,
        "only {committed_cuts} cuts left a committed merge"
    );
}

#[test]
fn finishing_a_committed_merge_can_itself_be_cut_off() {
    let (tmp, base, model) = churned_base(40, 5);

    // Find the first cut that leaves a committed but unfinished merge.
    let mut cut = 0;
    let committed = loop {
        let dir = tmp.path().join(format!("find{cut}"));
        let (crash, options) = copy_on_hook_fs(&base, &dir);
        let e = open(&dir, &options);
        crash.crash_after(cut);
        let _ = e.compact();
        drop(e);
        if files(&dir).iter().any(|n| n.ends_with(".commit")) {
            break dir;
        }
        assert!(
            !crash.crashed() || cut < 10_000,
            "no cut leaves a commit record"
        );
        cut += 1;
    };
    assert!(
        files(&committed).iter().any(|n| n.ends_with(".seg.merge")),
        "the first committed state still has its outputs under temporary names"
    );

    let total = {
        let dir = tmp.path().join("count");
        let (crash, options) = copy_on_hook_fs(&committed, &dir);
        drop(open(&dir, &options));
        crash.mutations()
    };
    assert!(total > 3, "recovery made {total} calls");
    for recovery_cut in 0..=total {
        let context = format!("recovery cut after {recovery_cut} of {total} calls");
        let dir = tmp.path().join(format!("recover{recovery_cut}"));
        let (crash, options) = copy_on_hook_fs(&committed, &dir);
        crash.crash_after(recovery_cut);
        let opened = Bitcask::open(&dir, &options);
        assert_eq!(opened.is_err(), crash.crashed(), "{context}");
        drop(opened);
        open_recovered(&dir, &model, &context).close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

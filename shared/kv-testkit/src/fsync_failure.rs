//! The fsync-failure suite: a failed `sync` is final.
//!
//! When `fsync` fails on Linux, the kernel reports the error once and marks the unwritten
//! pages clean: they stay readable until the machine goes down, but they will never reach
//! the disk, and a later `fsync` of the same file returns success without writing them.
//! PostgreSQL learned this in 2018 ("fsyncgate") after years of retrying failed fsyncs,
//! believing the retry had saved the data. An engine that retries, or ignores the error,
//! reports writes durable that are gone at the next power loss.
//!
//! [`FaultKind::SyncLosesData`] puts that behaviour in [`FaultFs`]: the first `sync` at or
//! after a chosen call fails, and the writes it was to make durable are lost at the next
//! crash. The suite fails **every sync of a workload in turn** (each run finds the next one:
//! it starts just after the call the previous run failed), keeps the workload going (more
//! writes, gets, compactions, and a last `sync`), then cuts the power, powers back on and
//! reopens. It runs the workload twice: with explicit `sync` calls only, and, when the
//! engine has the option, with `sync_writes=true` (every acknowledged write fsynced).
//!
//! ## The rules
//!
//! * **Final, or proven.** After a failed fsync the engine cannot know what of the file
//!   will reach the disk. So it must either **refuse** every later write and `sync` until
//!   the store is reopened (what the course's engines do when a log's sync fails), or make
//!   the data durable **another way**: a file whose sync failed is abandoned or rewritten
//!   whole and synced again (the output of a compaction or merge, a log just created with
//!   nothing in it yet). The suite cannot see which the engine chose; it checks the
//!   consequence: whatever the engine acknowledges afterwards is held to the full promise
//!   below, and the workload ends with a `sync`, so an engine that keeps going must make
//!   every write it acknowledged survive the power loss.
//! * **Nothing promised is lost.** After the power loss the store reopens, and holds exactly
//!   the result of some prefix of the writes issued ([`crate::history::assert_some_prefix`])
//!   that includes every write made before a `sync` that returned `Ok` and, with
//!   `sync_writes=true`, every acknowledged write (a write that failed may be missing even
//!   when later ones are there: it may never have happened). A swallowed or retried failure
//!   of a log's sync shows up here: a later `sync` returns `Ok`, and the writes the failed
//!   one was to save are not there (or the log has a hole, and the store refuses to open).
//!
//! What a write acknowledged after the failure may lose is what any acknowledged write may
//! lose at a power loss: without `sync_writes`, an acknowledgement promises survival of a
//! process kill only, and a power loss may take the writes since the last successful
//! `sync`, from the end.
//!
//! Each run is counted as **refused** (the failure was reported, by a write, a `sync`, a
//! `compact` or the open, and every later write and sync failed), **kept going** (reported,
//! then later writes or syncs succeeded), or **absorbed** (no call reported it: the sync of
//! a background job's output, which the job abandons, or one no later call asked about);
//! the last two are printed by the kind of file whose sync failed, to show which files an
//! engine treats as replaceable.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fault_fs::{FaultFs, FaultKind, store_path};
use crate::history::{
    Observed, State, Step, WriteOp, assert_some_prefix, fixed_workload, matching_prefixes,
    read_store,
};
use kv_shared::{Engine, Options};

/// Writes in the workload of [`fsync_failures`].
const WRITES: usize = 150;

/// True when `E` takes the option `sync_writes` (fsync every write before it returns).
pub fn has_sync_writes<E: Engine>() -> bool {
    E::OPTIONS.iter().any(|o| o.name == "sync_writes")
}

/// What one run of [`fsync_failure_at`] saw.
#[derive(Debug, Default, Clone)]
pub struct FsyncRun {
    /// The call number of the sync that failed (counted from the disk's creation), or
    /// `None` when the workload made no sync at or after the chosen call.
    pub failed_call: Option<u64>,
    /// The failed sync, described (`sync of /disk/store/000003.wal (call 57)`).
    pub failed_sync: Option<String>,
    /// True when a write, a `sync`, a `compact` or the open reported the failure.
    pub reported: bool,
    /// True when a write or `sync` succeeded after the failure was reported.
    pub kept_going: bool,
    /// Writes the power loss had to spare, all found there.
    pub checked: usize,
}

/// The call number in a [`FaultFs::first_fault`] description: `... (call N)`.
fn call_number(described: &str) -> Option<u64> {
    let tail = described.rsplit_once("(call ")?.1;
    tail.strip_suffix(')')?.parse().ok()
}

/// What a workload did while the sync failed: the writes issued, how many had to survive,
/// and whether the engine reported the failure and then went on.
#[derive(Debug, Default)]
struct Track {
    issued: Vec<WriteOp>,
    /// Whether each of `issued` returned `Ok`.
    acked: Vec<bool>,
    /// How many of `issued` must survive a power loss.
    must: usize,
    /// The first write, sync or compaction (or the open) that reported an error.
    reported: Option<String>,
    /// A write or sync succeeded after `reported`.
    kept_going: bool,
}

impl Track {
    /// Runs `step` on `engine`, checking that nothing fails before the fault fired, and
    /// keeping count of what must survive.
    fn step<E: Engine>(
        &mut self,
        engine: &E,
        fs: &FaultFs,
        (step, sync_writes): (&Step, bool),
        context: &str,
    ) {
        let result = match step {
            Step::Write(op) => {
                self.issued.push(op.clone());
                let result = op.issue(engine);
                self.acked.push(result.is_ok());
                result
            }
            other => other.run(engine),
        };
        let counts = matches!(step, Step::Write(_) | Step::Sync);
        match result {
            Err(e) if fs.injected_faults() == 0 => {
                panic!("{context}: {step:?} failed before any sync did: {e}")
            }
            // A compaction may report it too (its freeze syncs the log, its output is synced).
            Err(e) if counts || matches!(step, Step::Compact) => {
                self.reported
                    .get_or_insert_with(|| format!("{step:?} failed: {e}"));
            }
            Ok(()) if counts => {
                self.kept_going |= self.reported.is_some();
                if sync_writes || matches!(step, Step::Sync) {
                    // Everything up to the last acknowledged write; a failed write after
                    // it was refused, and a later `sync` does not promise it.
                    self.must = self.acked.iter().rposition(|&ok| ok).map_or(0, |i| i + 1);
                }
            }
            _ => {}
        }
    }
}

/// One run: the workload of [`fsync_failures`] (then one last `sync`) on a fresh store, the
/// first `sync` at or after call `k` failing and losing its data; then a power loss, a
/// reboot and a reopen, checked against the rules of the module documentation.
///
/// # Panics
/// When the engine breaks one of them.
pub fn fsync_failure_at<E: Engine>(
    options: &Options,
    seed: u64,
    k: u64,
    sync_writes: bool,
) -> FsyncRun {
    let fs = FaultFs::new(seed ^ k);
    let mut opts = options.clone();
    if sync_writes {
        opts.insert("sync_writes", "true");
    }
    let opts = opts.with_file_system(Arc::new(fs.clone()));
    let context = format!(
        "{}: fsync failure at the first sync from call {k}, sync_writes={sync_writes} \
         (replay with KV_TEST_SEED={seed})",
        E::NAME
    );
    fs.fail_at(k, FaultKind::SyncLosesData);
    let mut track = Track::default();
    match E::open(&store_path(), &opts) {
        Ok(engine) => {
            let mut steps = fixed_workload(seed, WRITES);
            steps.push(Step::Sync);
            for step in &steps {
                track.step(&engine, &fs, (step, sync_writes), &context);
            }
            fs.crash();
            drop(engine);
        }
        Err(e) => {
            assert!(
                fs.injected_faults() > 0,
                "{context}: open failed before any sync did: {e}"
            );
            track.reported = Some(format!("open failed: {e}"));
        }
    }
    fs.clear_faults(); // a fault the workload did not reach must not hit the checks
    let run = FsyncRun {
        failed_sync: fs.first_fault(),
        failed_call: fs.first_fault().as_deref().and_then(call_number),
        reported: track.reported.is_some(),
        kept_going: track.kept_going,
        checked: track.must,
    };
    let context = format!(
        "{context}; failed: {}; first reported by: {}",
        run.failed_sync.as_deref().unwrap_or("nothing"),
        track.reported.as_deref().unwrap_or("nothing")
    );
    check_after_power_loss::<E>(&fs, &opts, &track, &context);
    run
}

/// The power loss, the reboot, the reopen: the store holds some prefix of the writes issued
/// with every write that had to survive, and takes a new write.
fn check_after_power_loss<E: Engine>(fs: &FaultFs, opts: &Options, track: &Track, context: &str) {
    fs.crash();
    fs.restart();
    let engine = E::open(&store_path(), opts)
        .unwrap_or_else(|e| panic!("{context}: reopening after the power loss: {e}"));
    let state = read_store(&engine).unwrap_or_else(|e| panic!("{context}: reading back: {e}"));
    assert_some_prefix_skipping_failed(track, &Observed::complete(&state), context);
    engine
        .put(b"after-reopen", b"ok")
        .unwrap_or_else(|e| panic!("{context}: a put after the reopen: {e}"));
    engine
        .close()
        .unwrap_or_else(|e| panic!("{context}: close after the reopen: {e}"));
}

/// Failed writes followed by an acknowledged one whose every happened/did-not-happen
/// combination [`assert_some_prefix_skipping_failed`] tries: 2^12 at most.
const MAX_SKIPPABLE: usize = 12;

/// The prefix rule when some writes failed: a failed write may not have happened even
/// though later ones did (an engine that kept going after a failure it reported), so each
/// failed write followed by an acknowledged one is tried both ways. Passes when, for some
/// choice, the store equals a prefix of the writes kept that holds every write before
/// `track.must`.
///
/// # Panics
/// When no choice matches (the message compares the store with every failed write kept),
/// or when more than [`MAX_SKIPPABLE`] writes would have to be tried.
fn assert_some_prefix_skipping_failed(track: &Track, observed: &Observed, context: &str) {
    let last_acked = track.acked.iter().rposition(|&ok| ok).unwrap_or(0);
    let skippable: Vec<usize> = (0..last_acked).filter(|&i| !track.acked[i]).collect();
    assert!(
        skippable.len() <= MAX_SKIPPABLE,
        "{context}: {} failed writes were followed by acknowledged ones, more than this \
         check tries ({MAX_SKIPPABLE})",
        skippable.len()
    );
    for choice in 1..1u32 << skippable.len() {
        let skipped = |i: usize| {
            skippable
                .iter()
                .position(|&s| s == i)
                .is_some_and(|bit| choice & (1 << bit) != 0)
        };
        let kept: Vec<WriteOp> = (0..track.issued.len())
            .filter(|&i| !skipped(i))
            .map(|i| track.issued[i].clone())
            .collect();
        let must = (0..track.must).filter(|&i| !skipped(i)).count();
        if !matching_prefixes(&State::new(), &kept, observed, must, kept.len()).is_empty() {
            return;
        }
    }
    // Every failed write kept (choice 0): the one the message describes.
    assert_some_prefix(
        &State::new(),
        &track.issued,
        observed,
        track.must,
        track.issued.len(),
        &format!(
            "{context} (writes 0..{} were synced, or acknowledged with sync_writes; failed \
             writes at {skippable:?} were tried both ways)",
            track.must
        ),
    );
}

/// What [`fsync_failures`] counted.
#[derive(Debug, Default)]
struct Tally {
    runs: [u64; 2],
    refused: u64,
    checked: u64,
    /// Runs that kept going after reporting the failure, by the kind of file whose sync
    /// failed (its name with digits as `#`).
    kept_going: BTreeMap<String, u64>,
    /// Runs where no write, sync or open reported the failure, by the kind of file.
    absorbed: BTreeMap<String, u64>,
}

/// The kind of file a [`FaultFs::first_fault`] description names: its name, digits as `#`.
fn file_kind(described: &str) -> String {
    let path = described.split(' ').nth(2).unwrap_or(described);
    let name = path.rsplit('/').next().unwrap_or(path);
    name.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

impl Tally {
    fn add(&mut self, run: &FsyncRun, sync_writes: bool) {
        self.runs[usize::from(sync_writes)] += 1;
        self.checked += run.checked as u64;
        let kind = file_kind(run.failed_sync.as_deref().unwrap_or("?"));
        match (run.reported, run.kept_going) {
            (true, false) => self.refused += 1,
            (true, true) => *self.kept_going.entry(kind).or_default() += 1,
            (false, _) => *self.absorbed.entry(kind).or_default() += 1,
        }
    }
}

/// For each of `workloads` workloads (seeds `seed`, `seed + 1`...), and each of the two
/// settings of `sync_writes` the engine has: fails every sync of the workload in turn (see
/// [`fsync_failure_at`]).
///
/// # Panics
/// On the first run that breaks a rule of the module documentation, naming the call, the
/// setting and the seed.
pub fn fsync_failures<E: Engine>(options: &Options, seed: u64, workloads: u64) {
    let mut tally = Tally::default();
    let modes: &[bool] = if has_sync_writes::<E>() {
        &[false, true]
    } else {
        &[false]
    };
    for &sync_writes in modes {
        for w in 0..workloads {
            let seed = seed.wrapping_add(w);
            let mut k = 1;
            loop {
                let run = fsync_failure_at::<E>(options, seed, k, sync_writes);
                let Some(call) = run.failed_call else {
                    assert!(k > 1, "{}: the workload made no sync at all", E::NAME);
                    break;
                };
                tally.add(&run, sync_writes);
                k = call + 1;
            }
        }
    }
    report(E::NAME, &tally, workloads, modes.len() > 1);
}

fn report(name: &str, tally: &Tally, workloads: u64, both: bool) {
    let by_kind = |counts: &BTreeMap<String, u64>| {
        let n: u64 = counts.values().sum();
        let kinds: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        if kinds.is_empty() {
            "0".to_string()
        } else {
            format!("{n} ({})", kinds.join(", "))
        }
    };
    eprintln!(
        "{name}: fsync failure: every sync of {workloads} workload(s) failed in turn, its data \
         lost: {} runs with explicit syncs, {}; {} refused every later write and sync, {} \
         kept going after reporting it, {} absorbed it; then a power loss: {} writes that \
         had to survive checked, none lost",
        tally.runs[0],
        if both {
            format!("{} with sync_writes=true", tally.runs[1])
        } else {
            "no sync_writes option".to_string()
        },
        tally.refused,
        by_kind(&tally.kept_going),
        by_kind(&tally.absorbed),
        tally.checked
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_number_is_read_from_a_fault_description() {
        assert_eq!(
            call_number("sync of /disk/store/000003.wal (call 57)"),
            Some(57)
        );
        assert_eq!(call_number("sync of /disk/a (call x)"), None);
        assert_eq!(call_number("nothing"), None);
        assert_eq!(
            file_kind("sync of /disk/store/000003.wal (call 57)"),
            "######.wal"
        );
    }

    #[test]
    fn a_failed_write_followed_by_acknowledged_ones_may_be_missing() {
        let put = |k: &str| WriteOp::Put {
            key: k.into(),
            value: format!("{k}1").into_bytes(),
        };
        let track = Track {
            issued: vec![put("a"), put("b"), put("c")],
            acked: vec![true, false, true],
            must: 3,
            ..Track::default()
        };
        let seen = |keys: &[&str]| {
            let state: State = keys
                .iter()
                .map(|k| (k.as_bytes().to_vec(), format!("{k}1").into_bytes()))
                .collect();
            Observed::complete(&state)
        };
        assert_some_prefix_skipping_failed(&track, &seen(&["a", "b", "c"]), "");
        assert_some_prefix_skipping_failed(&track, &seen(&["a", "c"]), "");
        for lost in [&["a", "b"][..], &["b", "c"], &["a"]] {
            let result = std::panic::catch_unwind(|| {
                assert_some_prefix_skipping_failed(&track, &seen(lost), "");
            });
            assert!(result.is_err(), "{lost:?} lost a synced write");
        }
    }

    /// Found by the long run (lsm, `KV_LONG=1 KV_TEST_SEED=2478542044`): the last write
    /// failed with the fsync error, the engine kept going, and the workload's last `sync`
    /// returned `Ok`: that sync does not promise the refused write.
    #[test]
    fn a_sync_after_a_failed_write_promises_only_the_acknowledged_ones() {
        let fs = FaultFs::new(1);
        let options = Options::new().with_file_system(Arc::new(fs.clone()));
        let engine = crate::example_engine::ExampleEngine::open(&store_path(), &options).unwrap();
        let put = |k: &str| {
            Step::Write(WriteOp::Put {
                key: k.into(),
                value: format!("{k}1").into_bytes(),
            })
        };
        let mut track = Track::default();
        track.step(&engine, &fs, (&put("a"), false), "");
        track.issued.push(WriteOp::Put {
            key: b"b".to_vec(),
            value: b"b1".to_vec(),
        });
        track.acked.push(false); // as if `b` had failed
        track.step(&engine, &fs, (&Step::Sync, false), "");
        assert_eq!(track.must, 1, "the sync promises `a`, not the refused `b`");
    }
}

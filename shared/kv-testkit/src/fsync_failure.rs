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
//! * **Final.** Once a write or a `sync` has reported an error, every later write and
//!   `sync` reports one too, until the store is reopened: the engine cannot know what of
//!   its files reached the disk, so it must not build on them. (A `compact` may fail and the
//!   engine keep going: a compaction's output that failed to sync is abandoned, the data it
//!   copied is still where it was.)
//! * **Nothing promised is lost.** After the power loss the store reopens, and holds exactly
//!   the result of some prefix of the writes issued ([`crate::history::assert_some_prefix`])
//!   that includes every write made before a `sync` that returned `Ok` and, with
//!   `sync_writes=true`, every acknowledged write. So an engine may absorb a failed sync
//!   without reporting it only if the data is durable another way (the output of a
//!   background job, abandoned and redone); a swallowed failure of a log's sync shows up as
//!   a later successful `sync` whose writes are not there.
//!
//! What a write acknowledged after the failure may lose is what any acknowledged write may
//! lose at a power loss: without `sync_writes`, an acknowledgement promises survival of a
//! process kill only, and a power loss may take the writes since the last successful
//! `sync`, from the end.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fault_fs::{FaultFs, FaultKind, store_path};
use crate::history::{
    Observed, State, Step, WriteOp, assert_some_prefix, fixed_workload, read_store,
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
    /// True when a write, a `sync` or the open reported the failure (and every later write
    /// and sync was refused).
    pub refused: bool,
    /// Writes the power loss had to spare, all found there.
    pub checked: usize,
}

/// The call number in a [`FaultFs::first_fault`] description: `... (call N)`.
fn call_number(described: &str) -> Option<u64> {
    let tail = described.rsplit_once("(call ")?.1;
    tail.strip_suffix(')')?.parse().ok()
}

/// What a workload did while the sync failed: the writes issued, how many had to survive,
/// and the first write or sync that reported an error.
#[derive(Debug, Default)]
struct Track {
    issued: Vec<WriteOp>,
    /// How many of `issued` must survive a power loss.
    must: usize,
    /// The first write or sync that reported an error, described.
    refused: Option<String>,
}

impl Track {
    /// Runs `step` on `engine`, checking that nothing fails before the fault fired and that
    /// nothing is acknowledged after a write or sync reported an error.
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
                op.issue(engine)
            }
            other => other.run(engine),
        };
        let fired = fs.injected_faults() > 0;
        let counts = matches!(step, Step::Write(_) | Step::Sync);
        match result {
            Err(e) if !fired => {
                panic!("{context}: {step:?} failed before any sync did: {e}")
            }
            Err(e) if counts => {
                self.refused
                    .get_or_insert_with(|| format!("{step:?} failed: {e}"));
            }
            Err(_) => {}
            Ok(()) if counts => {
                if let Some(first) = &self.refused {
                    panic!(
                        "{context}: {step:?} returned Ok after an earlier call reported the \
                         failure ({first}); a failed fsync is final until the store is reopened"
                    );
                }
                if sync_writes || matches!(step, Step::Sync) {
                    self.must = self.issued.len();
                }
            }
            Ok(()) => {}
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
            track.refused = Some(format!("open failed: {e}"));
        }
    }
    fs.clear_faults(); // a fault the workload did not reach must not hit the checks
    let run = FsyncRun {
        failed_sync: fs.first_fault(),
        failed_call: fs.first_fault().as_deref().and_then(call_number),
        refused: track.refused.is_some(),
        checked: track.must,
    };
    let context = format!(
        "{context}; failed: {}",
        run.failed_sync.as_deref().unwrap_or("nothing")
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
    assert_some_prefix(
        &State::new(),
        &track.issued,
        &Observed::complete(&state),
        track.must,
        track.issued.len(),
        &format!(
            "{context} (writes 0..{} were synced, or acknowledged with sync_writes)",
            track.must
        ),
    );
    engine
        .put(b"after-reopen", b"ok")
        .unwrap_or_else(|e| panic!("{context}: a put after the reopen: {e}"));
    engine
        .close()
        .unwrap_or_else(|e| panic!("{context}: close after the reopen: {e}"));
}

/// What [`fsync_failures`] counted.
#[derive(Debug, Default)]
struct Tally {
    runs: [u64; 2],
    refused: u64,
    checked: u64,
    /// Runs where no write or sync reported the failure, by the kind of file whose sync
    /// failed (its name with digits as `#`).
    absorbed: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, run: &FsyncRun, sync_writes: bool) {
        self.runs[usize::from(sync_writes)] += 1;
        self.checked += run.checked as u64;
        if run.refused {
            self.refused += 1;
        } else {
            let file = run.failed_sync.as_deref().unwrap_or("?");
            let name = file.split(' ').nth(2).unwrap_or(file);
            let name = name.rsplit('/').next().unwrap_or(name);
            let kind: String = name
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect();
            *self.absorbed.entry(kind).or_default() += 1;
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
    let absorbed: Vec<String> = tally
        .absorbed
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    eprintln!(
        "{name}: fsync failure: every sync of {workloads} workload(s) failed in turn, its data \
         lost: {} runs with explicit syncs, {}; {} refused every later write and sync, {} \
         kept going (the failed sync's file: {}); then a power loss: {} writes that had to \
         survive checked, none lost",
        tally.runs[0],
        if both {
            format!("{} with sync_writes=true", tally.runs[1])
        } else {
            "no sync_writes option".to_string()
        },
        tally.refused,
        tally.absorbed.values().sum::<u64>(),
        if absorbed.is_empty() {
            "none".to_string()
        } else {
            absorbed.join(", ")
        },
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
    }
}

//! The power-loss suite: pull the plug on an engine running on [`FaultFs`], power back on,
//! reopen, and check that nothing synced was lost and nothing impossible appeared.
//!
//! A power loss is harsher than a process crash: what the engine handed to the operating
//! system but did not `sync` may be lost, torn at a sector boundary or left as garbage,
//! file by file, and page by page within a file, so that a log's unsynced tail can come
//! back with a hole before valid records; and directory entries (new files, renames,
//! removals, new directories) not covered by a `sync_dir` may revert (see
//! [`crate::fault_fs`] for the exact model). After the reboot the store must hold:
//!
//! * every write made before the last `sync` that returned `Ok`, with its exact value;
//! * exactly the result of **some prefix** of the writes issued, so a later write never
//!   survives without the earlier ones, a deleted key never comes back, and a batch is there
//!   whole or not at all ([`crate::history::assert_some_prefix`]).
//!
//! Two drivers:
//!
//! * [`random_power_losses`]: random workloads (with syncs and compactions), cut either
//!   between two calls or in the middle of one (at a random file operation, which may be a
//!   background merge's); one run in four also cuts the power again *during the recovery*
//!   that follows, so recovery itself must be crash-safe.
//! * [`crash_at_every_mutation`]: one fixed workload that writes enough to rotate, flush,
//!   compact and rewrite metadata, crashed before its 1st, 2nd, ... `k`-th file operation,
//!   as LevelDB's and RocksDB's fault-injection tests do: every step of every code path
//!   that changes the disk gets its turn to be the last.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fault_fs::FaultFs;
pub use crate::fault_fs::store_path;
use crate::history::{
    Observed, State, Step, StepGen, WriteOp, assert_some_prefix, fixed_workload, read_store,
};
use kv_shared::{Engine, Options};

/// What a workload achieved before the power went out.
#[derive(Debug, Default)]
pub struct Progress {
    /// Every write issued (the last may have failed, or be in flight when the power went).
    pub issued: Vec<WriteOp>,
    /// How many of `issued` returned `Ok`.
    pub acked: usize,
    /// How many of `issued` came before the last `sync` that returned `Ok`.
    pub synced: usize,
}

/// Runs `steps` against `engine` until one fails. Gets are checked against the model as they
/// go. A failure is expected only once the disk is down; any other error panics.
fn run_steps<E: Engine>(engine: &E, fs: &FaultFs, steps: &[Step], progress: &mut Progress) {
    let mut model = State::new();
    for op in &progress.issued {
        op.apply(&mut model);
    }
    for step in steps {
        let result = match step {
            Step::Write(op) => {
                progress.issued.push(op.clone());
                let r = op.issue(engine);
                if r.is_ok() {
                    progress.acked = progress.issued.len();
                    op.apply(&mut model);
                }
                r
            }
            Step::Get(key) => engine.get(key).map(|got| {
                assert_eq!(
                    got.as_ref(),
                    model.get(key),
                    "get of an acknowledged write before any crash"
                );
            }),
            Step::Sync => engine
                .sync()
                .map(|()| progress.synced = progress.issued.len()),
            Step::Compact => engine.compact(),
        };
        if let Err(e) = result {
            assert!(
                fs.is_down(),
                "{step:?} failed while the disk was healthy: {e}"
            );
            return;
        }
    }
}

/// Opens the store after a reboot, retrying once if `fs` is scheduled to crash during it.
fn recover<E: Engine>(fs: &FaultFs, options: &Options, context: &str) -> E {
    match E::open(&store_path(), options) {
        Ok(engine) => engine,
        Err(e) if fs.is_down() => {
            fs.restart();
            E::open(&store_path(), options).unwrap_or_else(|e2| {
                panic!(
                    "{context}: open after a crash during recovery ({e}) failed: {e2}{}",
                    describe_files(fs)
                )
            })
        }
        Err(e) => panic!(
            "{context}: open after the power loss failed: {e}{}",
            describe_files(fs)
        ),
    }
}

/// The files a crash left, with their sizes and first bytes, for failure messages.
pub fn describe_files(fs: &FaultFs) -> String {
    let mut out = String::from("\nfiles after the crash:");
    for (path, bytes) in fs.image() {
        let head: String = bytes.iter().take(24).map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!(
            "\n  {} ({} bytes): {head}{}",
            path.display(),
            bytes.len(),
            if bytes.len() > 24 { ".." } else { "" }
        ));
    }
    out
}

/// After the crash: reboot, maybe crash during recovery, reopen, check the prefix property.
/// Returns whether recovery kept a copy of a log in `lost/` (it found valid records after
/// a bad one in the newest log: an unsynced tail with a hole).
fn check_after_crash<E: Engine>(
    fs: &FaultFs,
    options: &Options,
    progress: &Progress,
    crash_in_recovery: Option<u64>,
    context: &str,
) -> bool {
    fs.crash();
    fs.restart();
    if let Some(k) = crash_in_recovery {
        fs.crash_at_mutation(k);
        match E::open(&store_path(), options) {
            Ok(engine) => {
                fs.crash();
                drop(engine);
            }
            Err(e) => assert!(
                fs.is_down(),
                "{context}: open failed with the disk healthy: {e}"
            ),
        }
        fs.crash();
        fs.restart();
    }
    let engine = recover::<E>(fs, options, context);
    let state = read_store(&engine).unwrap_or_else(|e| panic!("{context}: reading back: {e}"));
    assert_some_prefix(
        &State::new(),
        &progress.issued,
        &Observed::complete(&state),
        progress.synced,
        progress.issued.len(),
        context,
    );
    write_after_recovery(engine, context);
    let lost = store_path().join(kv_shared::repair::LOST_DIR);
    fs.image().keys().any(|path| path.starts_with(&lost))
}

/// Checks that a recovered store takes new writes: a put, then a clean close.
///
/// # Panics
/// When either fails, naming `context`.
pub(crate) fn write_after_recovery<E: Engine>(engine: E, context: &str) {
    engine
        .put(b"after-recovery", b"ok")
        .unwrap_or_else(|e| panic!("{context}: put after recovery: {e}"));
    engine
        .close()
        .unwrap_or_else(|e| panic!("{context}: close after recovery: {e}"));
}

fn options_on(options: &Options, fs: &FaultFs) -> Options {
    options.clone().with_file_system(Arc::new(fs.clone()))
}

/// `runs` random workloads, each cut by a power loss at a random moment.
///
/// # Panics
/// On the first run that loses synced data, resurrects a deleted key, does not match any
/// prefix of its writes, or fails to reopen; the message names the seed and run.
pub fn random_power_losses<E: Engine>(options: &Options, seed: u64, runs: u64) {
    let (mut twice, mut synced, mut holes) = (0u64, 0usize, 0u64);
    for run in 0..runs {
        let outcome = power_loss_run::<E>(options, seed, run);
        twice += u64::from(outcome.crashed_in_recovery);
        synced += outcome.synced;
        holes += u64::from(outcome.kept_a_copy);
    }
    eprintln!(
        "{}: {runs} random power losses ({twice} with a second one during recovery, {holes} \
         leaving a hole before valid records in the newest log), {synced} synced writes \
         checked, none lost",
        E::NAME
    );
}

/// What one run of [`power_loss_run`] did.
#[derive(Debug, Clone, Copy)]
pub struct RunOutcome {
    /// The power went out a second time, during recovery.
    pub crashed_in_recovery: bool,
    /// Synced writes checked.
    pub synced: usize,
    /// Recovery kept a copy of a log in `lost/`: it found an unsynced tail with a hole.
    pub kept_a_copy: bool,
}

/// Run number `run` of [`random_power_losses`] alone (a failure found by a long run becomes
/// a regression test with this; an engine with background threads may need several tries
/// to hit the same interleaving).
///
/// # Panics
/// As [`random_power_losses`].
pub fn power_loss_run<E: Engine>(options: &Options, seed: u64, run: u64) -> RunOutcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ run.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let context = format!(
        "{}: power loss run {run} (replay with KV_TEST_SEED={seed})",
        E::NAME
    );
    let fs = FaultFs::new(rng.random());
    let opts = options_on(options, &fs);
    let steps = StepGen::new(rng.random(), run).steps(rng.random_range(20..600));
    let engine =
        E::open(&store_path(), &opts).unwrap_or_else(|e| panic!("{context}: first open: {e}"));
    let mut progress = Progress::default();
    if rng.random_bool(0.5) {
        // Mid-operation: before a random file operation (maybe a background merge's).
        fs.crash_at_mutation(rng.random_range(1..=steps.len() as u64 + 10));
        run_steps(&engine, &fs, &steps, &mut progress);
    } else {
        let cut = rng.random_range(0..=steps.len());
        run_steps(&engine, &fs, &steps[..cut], &mut progress);
    }
    fs.crash();
    drop(engine);
    let crash_in_recovery = rng.random_ratio(1, 4).then(|| rng.random_range(1..40));
    let kept_a_copy = check_after_crash::<E>(&fs, &opts, &progress, crash_in_recovery, &context);
    RunOutcome {
        crashed_in_recovery: crash_in_recovery.is_some(),
        synced: progress.synced,
        kept_a_copy,
    }
}

/// Runs `steps` on a fresh store of `fs`, then closes it; stops at the first failure.
fn run_and_close<E: Engine>(fs: &FaultFs, options: &Options, steps: &[Step]) -> Progress {
    let mut progress = Progress::default();
    let engine = match E::open(&store_path(), options) {
        Ok(engine) => engine,
        Err(e) => {
            assert!(fs.is_down(), "first open failed with the disk healthy: {e}");
            return progress;
        }
    };
    run_steps(&engine, fs, steps, &mut progress);
    if !fs.is_down() {
        match engine.close() {
            Ok(()) => progress.synced = progress.issued.len(),
            Err(e) => assert!(fs.is_down(), "close failed with the disk healthy: {e}"),
        }
    }
    progress
}

/// Runs one fixed workload (about 400 writes, syncs, compactions, a close) once to count its
/// file operations, then once more for each `k` up to `max_points` of them (evenly spread
/// when there are more), with the power cut before the `k`-th.
///
/// # Panics
/// As [`random_power_losses`], naming `k`.
pub fn crash_at_every_mutation<E: Engine>(options: &Options, seed: u64, max_points: u64) {
    let steps = fixed_workload(seed, 400);
    let reference = FaultFs::new(seed);
    let progress = run_and_close::<E>(&reference, &options_on(options, &reference), &steps);
    assert_eq!(
        progress.acked,
        progress.issued.len(),
        "the reference run failed"
    );
    let total = reference.mutations();
    let points: Vec<u64> = if total <= max_points {
        (1..=total).collect()
    } else {
        (0..max_points)
            .map(|i| 1 + i * total / max_points)
            .collect()
    };
    let tried = points.len();
    let mut holes = 0;
    for k in points {
        let context = format!(
            "{}: power loss before file operation {k} of {total} (replay with KV_TEST_SEED={seed})",
            E::NAME
        );
        let fs = FaultFs::new(seed ^ k);
        let opts = options_on(options, &fs);
        fs.crash_at_mutation(k);
        let progress = run_and_close::<E>(&fs, &opts, &steps);
        holes += usize::from(check_after_crash::<E>(
            &fs, &opts, &progress, None, &context,
        ));
    }
    eprintln!(
        "{}: crash at every file operation: {tried} of {total} crash points ({holes} leaving a \
         hole before valid records in the newest log), none lost",
        E::NAME
    );
}

//! The I/O-error suite: every call of a workload fails once, the disk fills up at every
//! point, and the engine must tell the truth about it.
//!
//! SQLite's I/O-error tests and RocksDB's fault-injection tests make the same point: errors
//! are where code is least tested. So this suite does what SQLite's does: it runs a small
//! workload once on a healthy [`FaultFs`] to **count its file calls** `C`, then runs it again
//! once for **every** `k` in `1..=C` with the `k`-th call failing, in each of two ways
//! ([`FaultKind`]):
//!
//! * **once**: that one call fails (any call: a read, an append, a sync, a rename...), the
//!   disk is healthy again right after;
//! * **disk full**: from that call on, everything that needs space fails with `StorageFull`,
//!   and a failing append may leave a short write behind.
//!
//! Two phases get that treatment: the **workload** (about 300 writes with gets, syncs,
//! compactions and a close, on a fresh store), and the **recovery** of a store that already
//! holds data in several files (its open and close), once as a process kill left it and once
//! as a clean close left it. The default run walks the call range with a stride (every
//! third `k`, starting at an offset the seed picks, so fresh seeds cover the others);
//! `KV_LONG=1` or `KV_IOERROR_STRIDE=1` walks every `k`.
//!
//! ## The checks
//!
//! * A failing call reports [`Error::Io`], never success, never another kind of error, never
//!   a panic.
//! * A write that returned `Ok` is there, even if a later call failed: **the engine never
//!   reports success for a write it did not make**. A write that failed may or may not have
//!   happened, so for each key the suite knows the set of values it may hold
//!   ([`PossibleValues`]); every get, during the fault and after, returns one of them.
//! * A failed batch happened whole or not at all: of the keys it put and nothing later
//!   touched, either all hold its values or none do.
//! * After the fault clears, the store **reopens** (no corruption error: nothing but a torn
//!   tail can result from a failed write), holds what the rules above allow, and takes new
//!   writes. After a failed recovery, the reopened store holds exactly what it held before.
//!
//! ## A failure must surface, or be shown harmless
//!
//! An engine may legitimately absorb a failed call: a read it retries, the removal of an
//! obsolete file it retries later (or leaves for the next open to clean up), the output of a
//! background merge it abandons and redoes. What it may not do is swallow a failed append,
//! sync or rename that an acknowledged write needed: that write would be reported durable
//! while it is not. The rule is:
//!
//! > every failed call the engine needed for an acknowledged write either surfaces as an
//! > error to some caller (a write, a sync, a close, or the next open), or was redone.
//!
//! The suite checks it without knowing the engine's insides. When an injected fault
//! surfaced nowhere (every call of the run returned `Ok`, close included), the run ends
//! with a **power loss** ([`FaultFs::crash`]) instead of a clean reopen: since close
//! returned `Ok`, every acknowledged write must survive it, so a swallowed failure whose
//! work was not redone shows up as a lost write. The calls absorbed that way are counted by
//! kind and printed. In the course's engines they are removals of obsolete files (left for
//! a later removal or the next open), and the calls of a background merge (bitcask's): the
//! opens, lengths and reads of its inputs, and the creates, appends, syncs, renames and
//! directory syncs of its output, which it abandons before its commit point and tries again
//! later.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fault_fs::{FaultFs, FaultKind, FsImage, store_path};
use crate::history::{
    Observed, State, Step, WriteOp, assert_some_prefix, fixed_workload, key_space, read_store,
};
use kv_shared::{Engine, Error, Options};

/// For each key, the values it may hold when some writes failed: the last acknowledged
/// write's value, or that of any failed write issued after it.
#[derive(Debug, Default)]
pub struct PossibleValues {
    keys: BTreeMap<Vec<u8>, KeyValues>,
}

/// One key's possible values: the last acknowledged one, and those of failed writes since.
type KeyValues = (Option<Vec<u8>>, Vec<Option<Vec<u8>>>);

impl PossibleValues {
    /// A write that returned `Ok`: each key it touched now holds what the write left
    /// there, whatever failed before.
    pub fn acked(&mut self, op: &WriteOp) {
        for (key, value) in op.effect() {
            let entry = self.keys.entry(key.to_vec()).or_default();
            *entry = (value.map(<[u8]>::to_vec), Vec::new());
        }
    }

    /// A write that failed: it may have happened (a batch whole, so each key may hold what
    /// the whole batch left there, never a value the batch overwrote itself).
    pub fn failed(&mut self, op: &WriteOp) {
        for (key, value) in op.effect() {
            let entry = self.keys.entry(key.to_vec()).or_default();
            entry.1.push(value.map(<[u8]>::to_vec));
        }
    }

    /// True when `key` may hold `value`.
    pub fn allows(&self, key: &[u8], value: Option<&[u8]>) -> bool {
        match self.keys.get(key) {
            None => value.is_none(),
            Some((sure, maybe)) => {
                sure.as_deref() == value || maybe.iter().any(|m| m.as_deref() == value)
            }
        }
    }
}

/// Every write a run issued, in order, with whether it returned `Ok`.
type Issued = Vec<(WriteOp, bool)>;

/// Checks that each failed batch of `issued` is in `state` whole or not at all: of the keys
/// it put a value in and no later write touched, all hold its value or none does (values are
/// unique, so holding it means the batch happened).
///
/// # Panics
/// When a failed batch is there in part.
pub fn assert_failed_batches_whole(issued: &[(WriteOp, bool)], state: &State, context: &str) {
    for (i, (op, acked)) in issued.iter().enumerate() {
        if *acked || !matches!(op, WriteOp::Batch(_)) {
            continue;
        }
        let later: Vec<_> = issued[i + 1..].iter().map(|(w, _)| w.effect()).collect();
        let (mut there, mut missing) = (0, 0);
        for (key, value) in op.effect() {
            let Some(value) = value else { continue };
            if later.iter().any(|effect| effect.contains_key(key)) {
                continue;
            }
            if state.get(key).map(Vec::as_slice) == Some(value) {
                there += 1;
            } else {
                missing += 1;
            }
        }
        assert!(
            there == 0 || missing == 0,
            "{context}: failed write {i} (a batch) is there in part: {there} of its keys hold \
             its values, {missing} do not"
        );
    }
}

fn expect_io<T>(result: kv_shared::Result<T>, what: &str, context: &str) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        // An I/O error a background job met stops writes with `Background`.
        Err(Error::Io { .. } | Error::Background { .. }) => None,
        Err(e) => panic!("{context}: {what} failed with a non-I/O error: {e}"),
    }
}

/// What the loops of [`io_errors`] counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Runs made, each with one scheduled fault.
    pub runs: u64,
    /// File calls the faults failed.
    pub injected: u64,
    /// Engine calls (writes, gets, syncs, compactions, opens, closes) that reported an error.
    pub reported: u64,
    /// Values read back and checked against what the writes allow.
    pub values_checked: u64,
    /// Runs whose failed call surfaced nowhere, by the kind of call (`read_at`, `remove`...):
    /// each was followed by a power loss that lost nothing acknowledged.
    pub absorbed: BTreeMap<String, u64>,
}

/// What one run of a phase did.
#[derive(Debug, Default)]
struct RunOutcome {
    /// Engine calls that reported an error.
    reported: u64,
    /// File calls the fault failed.
    injected: u64,
    /// The first of them, described.
    first: Option<String>,
    /// Values checked.
    checked: u64,
}

impl Tally {
    fn add(&mut self, run: RunOutcome) {
        self.runs += 1;
        self.injected += run.injected;
        self.reported += run.reported;
        self.values_checked += run.checked;
        if run.injected > 0 && run.reported == 0 {
            let kind = run.first.as_deref().unwrap_or("?");
            let kind = kind.split(' ').next().unwrap_or(kind).to_string();
            *self.absorbed.entry(kind).or_default() += 1;
        }
    }
}

/// One run of the workload phase of [`io_errors`]: its workload with the `k`-th call failing
/// as `kind` says (a failure found by a long run becomes a regression test with this).
/// Returns how many engine calls reported an error, how many file calls the fault failed,
/// and the first of them.
///
/// # Panics
/// When the engine breaks a rule of this suite.
pub fn io_error_at<E: Engine>(
    options: &Options,
    seed: u64,
    k: u64,
    kind: FaultKind,
) -> (usize, u64, Option<String>) {
    let run = workload_run::<E>(options, &fixed_workload(seed, WRITES), seed, k, kind);
    (run.reported as usize, run.injected, run.first)
}

/// Writes in the workload phase of [`io_errors`].
const WRITES: usize = 300;

/// Writes that fill the store of the recovery phase.
const RECOVERY_WRITES: usize = 250;

/// The context of a failure message: engine, phase, fault, seed, and the call that failed.
fn describe(fs: &FaultFs, name: &str, phase: &str, k: u64, kind: FaultKind, seed: u64) -> String {
    format!(
        "{name}: {phase}: I/O error {kind:?} at call {k} (replay with KV_TEST_SEED={seed}; \
         failed: {})",
        fs.first_fault()
            .unwrap_or_else(|| "nothing yet".to_string())
    )
}

fn workload_run<E: Engine>(
    options: &Options,
    steps: &[Step],
    seed: u64,
    k: u64,
    kind: FaultKind,
) -> RunOutcome {
    let fs = FaultFs::new(seed ^ k);
    let context = || describe(&fs, E::NAME, "workload", k, kind, seed);
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    fs.fail_at(k, kind);
    let mut possible = PossibleValues::default();
    let mut issued = Issued::new();
    let mut checked = 0;
    let reported = match expect_io(E::open(&store_path(), &opts), "open", &context()) {
        Some(engine) => {
            let mut run = FaultyRun {
                possible: &mut possible,
                issued: &mut issued,
                checked: &mut checked,
                context: &context,
            };
            run.steps(engine, steps)
        }
        None => 1,
    };
    let mut run = RunOutcome {
        reported,
        injected: fs.injected_faults(),
        first: fs.first_fault(),
        checked,
    };
    fs.clear_faults();
    if run.injected > 0 && run.reported == 0 {
        // Surfaced nowhere: a power loss must not lose anything acknowledged.
        fs.crash();
        fs.restart();
    }
    run.checked += check_after_the_fault::<E>(&opts, &possible, &issued, &context);
    run
}

/// A workload running while the fault is on: what the writes allow, what was issued, how
/// many values were checked.
struct FaultyRun<'a> {
    possible: &'a mut PossibleValues,
    issued: &'a mut Issued,
    checked: &'a mut u64,
    context: &'a dyn Fn() -> String,
}

impl FaultyRun<'_> {
    /// Runs `steps` and a close on `engine`, checking every get against what the writes
    /// allow; returns how many calls reported an error.
    fn steps<E: Engine>(&mut self, engine: E, steps: &[Step]) -> u64 {
        let context = self.context;
        let mut failures = 0;
        for step in steps {
            let ok = match step {
                Step::Write(op) => self.write(&engine, op),
                Step::Get(key) => self.get(&engine, key),
                Step::Sync => expect_io(engine.sync(), "sync", &context()).is_some(),
                Step::Compact => expect_io(engine.compact(), "compact", &context()).is_some(),
            };
            failures += u64::from(!ok);
        }
        failures + u64::from(expect_io(engine.close(), "close", &context()).is_none())
    }

    fn write<E: Engine>(&mut self, engine: &E, op: &WriteOp) -> bool {
        let ok = expect_io(op.issue(engine), "a write", &(self.context)()).is_some();
        if ok {
            self.possible.acked(op);
        } else {
            self.possible.failed(op);
        }
        self.issued.push((op.clone(), ok));
        ok
    }

    fn get<E: Engine>(&mut self, engine: &E, key: &[u8]) -> bool {
        let Some(got) = expect_io(engine.get(key), "a get", &(self.context)()) else {
            return false;
        };
        *self.checked += 1;
        assert!(
            self.possible.allows(key, got.as_deref()),
            "{}: get of {} returned a value it cannot hold",
            (self.context)(),
            kv_shared::dump::quoted(key, 24)
        );
        true
    }
}

/// Once the fault cleared: the store reopens, every key holds a value `possible` allows,
/// each failed batch is there whole or not at all, and the store takes a new write. Returns
/// how many values were checked.
fn check_after_the_fault<E: Engine>(
    opts: &Options,
    possible: &PossibleValues,
    issued: &[(WriteOp, bool)],
    context: &dyn Fn() -> String,
) -> u64 {
    let engine = E::open(&store_path(), opts)
        .unwrap_or_else(|e| panic!("{}: reopening after the fault cleared: {e}", context()));
    let state = read_store(&engine).unwrap_or_else(|e| panic!("{}: reading back: {e}", context()));
    for key in key_space() {
        let got = state.get(&key);
        assert!(
            possible.allows(&key, got.map(Vec::as_slice)),
            "{}: after reopening, key {} holds {}, which no acknowledged or failed write \
             left there (an acknowledged write was lost, or a value came back)",
            context(),
            kv_shared::dump::quoted(&key, 24),
            got.map_or("nothing".to_string(), |v| kv_shared::dump::quoted(v, 24))
        );
    }
    assert_failed_batches_whole(issued, &state, &context());
    takes_a_write(engine, context);
    key_space().len() as u64
}

/// A put and its read back, then a close: the store works again.
fn takes_a_write<E: Engine>(engine: E, context: &dyn Fn() -> String) {
    engine
        .put(b"after-fault", b"ok")
        .unwrap_or_else(|e| panic!("{}: put after the fault cleared: {e}", context()));
    assert_eq!(
        engine.get(b"after-fault").unwrap().as_deref(),
        Some(&b"ok"[..]),
        "{}: the write after the fault cleared",
        context()
    );
    engine
        .close()
        .unwrap_or_else(|e| panic!("{}: close after the fault cleared: {e}", context()));
}

/// A store holding data in several files, as two moments left it: a process kill right
/// after a `sync`, and a clean close. Both hold `state`.
struct Populated {
    images: [(&'static str, FsImage); 2],
    state: State,
}

/// Fills a store with a workload of [`RECOVERY_WRITES`] writes on a healthy disk.
fn populated<E: Engine>(options: &Options, seed: u64) -> Populated {
    let fs = FaultFs::new(seed);
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    let engine = E::open(&store_path(), &opts).expect("populating a store: open");
    let mut state = State::new();
    for step in fixed_workload(seed ^ 0x5EED, RECOVERY_WRITES) {
        step.run(&engine)
            .unwrap_or_else(|e| panic!("populating a store: {step:?} failed: {e}"));
        if let Step::Write(op) = step {
            op.apply(&mut state);
        }
    }
    engine.sync().expect("populating a store: sync");
    let killed = fs.image();
    engine.close().expect("populating a store: close");
    Populated {
        images: [
            ("recovery after a kill", killed),
            ("recovery after a close", fs.image()),
        ],
        state,
    }
}

/// Opens and closes the store of `image` on a healthy disk; returns how many calls that took.
fn count_recovery_calls<E: Engine>(options: &Options, image: &FsImage, seed: u64) -> u64 {
    let fs = FaultFs::from_image(seed, image);
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    let engine = E::open(&store_path(), &opts).expect("reference recovery: open");
    engine.close().expect("reference recovery: close");
    fs.calls()
}

/// One run of the recovery phase: opens and closes the store of `image` with the `k`-th
/// call failing; then, the fault cleared, the store must reopen holding exactly `expected`.
fn recovery_run<E: Engine>(
    options: &Options,
    (phase, image): (&str, &FsImage),
    expected: &State,
    seed: u64,
    (k, kind): (u64, FaultKind),
) -> RunOutcome {
    let fs = FaultFs::from_image(seed ^ k, image);
    let context = || describe(&fs, E::NAME, phase, k, kind, seed);
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    fs.fail_at(k, kind);
    let reported = match expect_io(E::open(&store_path(), &opts), "open", &context()) {
        Some(engine) => u64::from(expect_io(engine.close(), "close", &context()).is_none()),
        None => 1,
    };
    let run = RunOutcome {
        reported,
        injected: fs.injected_faults(),
        first: fs.first_fault(),
        checked: expected.len() as u64,
    };
    fs.clear_faults();
    if run.injected > 0 && run.reported == 0 {
        fs.crash();
        fs.restart();
    }
    let engine = E::open(&store_path(), &opts)
        .unwrap_or_else(|e| panic!("{}: reopening after the fault cleared: {e}", context()));
    let state = read_store(&engine).unwrap_or_else(|e| panic!("{}: reading back: {e}", context()));
    assert_some_prefix(
        expected,
        &[],
        &Observed::complete(&state),
        0,
        0,
        &format!("{} (the store must hold what it held before)", context()),
    );
    takes_a_write(engine, &context);
    run
}

/// Runs `steps` and a close on a healthy disk; returns how many calls that took.
fn count_workload_calls<E: Engine>(options: &Options, steps: &[Step], seed: u64) -> u64 {
    let reference = FaultFs::new(seed);
    let opts = options
        .clone()
        .with_file_system(Arc::new(reference.clone()));
    let engine = E::open(&store_path(), &opts).expect("reference open");
    for step in steps {
        step.run(&engine)
            .unwrap_or_else(|e| panic!("reference run: {step:?} failed: {e}"));
    }
    engine.close().expect("reference close");
    reference.calls()
}

/// The calls of a range of `calls` a loop fails: every `stride`-th, from an offset below
/// `stride` that `seed` picks (all of them when `stride` is 1).
pub fn fault_points(calls: u64, stride: u64, seed: u64) -> impl Iterator<Item = u64> {
    let stride = stride.max(1);
    (1 + seed % stride..=calls).step_by(stride as usize)
}

const KINDS: [FaultKind; 2] = [FaultKind::Once, FaultKind::DiskFull];

/// The loops of the suite: for each of `workloads` workloads (seeds `seed`, `seed + 1`...),
/// counts the calls of the workload phase and of the two recoveries, then runs each with
/// every `stride`-th call failing once, then with the disk filling up at it.
///
/// # Panics
/// On the first run that breaks a rule of the module documentation, naming the phase, `k`,
/// the kind of fault, the failed call and the seed to replay it with.
pub fn io_errors<E: Engine>(options: &Options, seed: u64, workloads: u64, stride: u64) {
    let mut tally = Tally::default();
    let mut calls = [0; 3];
    for w in 0..workloads {
        let seed = seed.wrapping_add(w);
        let steps = fixed_workload(seed, WRITES);
        calls[0] = count_workload_calls::<E>(options, &steps, seed);
        for kind in KINDS {
            for k in fault_points(calls[0], stride, seed) {
                tally.add(workload_run::<E>(options, &steps, seed, k, kind));
            }
        }
        let store = populated::<E>(options, seed);
        for (i, (phase, image)) in store.images.iter().enumerate() {
            calls[i + 1] = count_recovery_calls::<E>(options, image, seed);
            for kind in KINDS {
                for k in fault_points(calls[i + 1], stride, seed) {
                    let run = (*phase, image);
                    tally.add(recovery_run::<E>(
                        options,
                        run,
                        &store.state,
                        seed,
                        (k, kind),
                    ));
                }
            }
        }
    }
    report(E::NAME, &tally, calls, workloads, stride);
}

fn report(name: &str, tally: &Tally, calls: [u64; 3], workloads: u64, stride: u64) {
    let absorbed: Vec<String> = tally
        .absorbed
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    eprintln!(
        "{name}: I/O errors: a workload of {} calls, recoveries of {} (after a kill) and {} \
         (after a close) calls{}; {} runs ({} failing once, then the disk full \
         from it); {} file calls failed, {} engine calls reported an error, {} values \
         checked, 0 wrong; {} runs where the failure surfaced nowhere, each followed by a \
         power loss that lost nothing ({})",
        calls[0],
        calls[1],
        calls[2],
        if workloads > 1 {
            format!(" (the last of {workloads} workloads)")
        } else {
            String::new()
        },
        tally.runs,
        if stride == 1 {
            "every call".to_string()
        } else {
            format!("one call in {stride}")
        },
        tally.injected,
        tally.reported,
        tally.values_checked,
        tally.absorbed.values().sum::<u64>(),
        if absorbed.is_empty() {
            "none".to_string()
        } else {
            absorbed.join(", ")
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn possible_values_follow_acks_and_failures() {
        let put = |v: &str| WriteOp::Put {
            key: b"k".to_vec(),
            value: v.as_bytes().to_vec(),
        };
        let mut p = PossibleValues::default();
        assert!(p.allows(b"k", None) && !p.allows(b"k", Some(b"1")));
        p.acked(&put("1"));
        p.failed(&put("2"));
        p.failed(&WriteOp::Delete { key: b"k".to_vec() });
        assert!(p.allows(b"k", Some(b"1")) && p.allows(b"k", Some(b"2")) && p.allows(b"k", None));
        p.acked(&put("3"));
        assert!(p.allows(b"k", Some(b"3")) && !p.allows(b"k", Some(b"2")));
        // A failed batch may have happened whole: what it left, never what it overwrote.
        p.failed(&WriteOp::Batch(vec![put("4"), put("5")]));
        assert!(p.allows(b"k", Some(b"3")) && p.allows(b"k", Some(b"5")));
        assert!(!p.allows(b"k", Some(b"4")));
    }

    #[test]
    fn fault_points_cover_the_range_with_a_stride() {
        assert_eq!(
            fault_points(5, 1, 7).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(fault_points(10, 3, 7).collect::<Vec<_>>(), vec![2, 5, 8]);
        assert_eq!(
            fault_points(10, 3, 9).collect::<Vec<_>>(),
            vec![1, 4, 7, 10]
        );
        assert_eq!(fault_points(0, 1, 0).count(), 0);
    }

    #[test]
    fn a_failed_batch_in_part_is_caught() {
        let put = |k: &str, v: &str| WriteOp::Put {
            key: k.into(),
            value: v.into(),
        };
        let batch = WriteOp::Batch(vec![put("a", "1"), put("b", "1"), put("c", "1")]);
        let issued = vec![(batch, false), (put("c", "2"), true)];
        let state = |pairs: &[(&str, &str)]| -> State {
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect()
        };
        // Whole, or not at all (c was overwritten later: it says nothing).
        assert_failed_batches_whole(&issued, &state(&[("a", "1"), ("b", "1"), ("c", "2")]), "");
        assert_failed_batches_whole(&issued, &state(&[("c", "2")]), "");
        let torn = std::panic::catch_unwind(|| {
            assert_failed_batches_whole(&issued, &state(&[("a", "1"), ("c", "2")]), "");
        });
        assert!(torn.is_err(), "a batch with a but not b is torn");
    }
}

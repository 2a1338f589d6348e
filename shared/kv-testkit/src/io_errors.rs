//! The I/O-error suite: the disk fails a call, once or for good, and the engine must tell the
//! truth about it.
//!
//! SQLite's I/O-error tests and RocksDB's fault-injection tests make the same point: errors
//! are where code is least tested. Here one fixed workload runs on [`FaultFs`] with its
//! `k`-th file call failing, for `k` spread over the whole run, alternating two kinds
//! ([`FaultKind`]):
//!
//! * **once**: that one call fails (any call: a read, an append, a sync, a rename...), the
//!   disk is healthy again right after;
//! * **disk full**: from that call on, everything that needs space fails with `StorageFull`,
//!   and a failing append may leave a short write behind.
//!
//! The checks:
//!
//! * a failing call reports [`Error::Io`], never success, never another kind of error, never
//!   a panic;
//! * a write that returned `Ok` is there, even if a later call failed: **the engine never
//!   reports success for a write it did not make**; a write that failed may or may not have
//!   happened (a batch whole or not at all), so for each key the suite knows the set of
//!   values it may hold ([`PossibleValues`]);
//! * a get, during the faults and after, returns one of those values or an error;
//! * after the fault clears, the store **reopens** (no corruption error: nothing but a torn
//!   tail can result from a failed write) and takes new writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fault_fs::{FaultFs, FaultKind, store_path};
use crate::history::{Step, WriteOp, fixed_workload, key_space, read_store};
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

fn expect_io<T>(result: kv_shared::Result<T>, what: &str, context: &str) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(Error::Io { .. }) => None,
        Err(e) => panic!("{context}: {what} failed with a non-I/O error: {e}"),
    }
}

/// One run of [`io_errors`]: its workload with the `k`-th call failing as `kind` says (a
/// failure found by a long run becomes a regression test with this). Returns how many
/// engine calls reported an error, and how many file calls the fault failed.
///
/// # Panics
/// When the engine breaks a rule of this suite.
pub fn io_error_at<E: Engine>(
    options: &Options,
    seed: u64,
    k: u64,
    kind: FaultKind,
) -> (usize, u64, Option<String>) {
    one_run::<E>(options, &fixed_workload(seed, WRITES), seed, k, kind)
}

/// Writes in the workload of [`io_errors`].
const WRITES: usize = 300;

fn one_run<E: Engine>(
    options: &Options,
    steps: &[Step],
    seed: u64,
    k: u64,
    kind: FaultKind,
) -> (usize, u64, Option<String>) {
    let fs = FaultFs::new(seed ^ k);
    let context = || {
        format!(
            "{}: I/O error {kind:?} at call {k} (replay with KV_TEST_SEED={seed}; failed: {})",
            E::NAME,
            fs.first_fault()
                .unwrap_or_else(|| "nothing yet".to_string())
        )
    };
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    fs.fail_at(k, kind);
    let mut possible = PossibleValues::default();
    let failures = match expect_io(E::open(&store_path(), &opts), "open", &context()) {
        Some(engine) => run_through_faults(engine, steps, &mut possible, &context),
        None => 1,
    };
    let (injected, first) = (fs.injected_faults(), fs.first_fault());
    fs.clear_faults();
    check_after_the_fault::<E>(&opts, &possible, &context);
    (failures, injected, first)
}

/// Runs `steps` and a close on `engine` while the fault is on, checking every get against
/// `possible` and keeping it up to date; returns how many calls reported an error.
fn run_through_faults<E: Engine>(
    engine: E,
    steps: &[Step],
    possible: &mut PossibleValues,
    context: &dyn Fn() -> String,
) -> usize {
    let mut failures = 0;
    for step in steps {
        let ok = match step {
            Step::Write(op) => {
                let ok = expect_io(op.issue(&engine), "a write", &context()).is_some();
                if ok {
                    possible.acked(op);
                } else {
                    possible.failed(op);
                }
                ok
            }
            Step::Get(key) => match expect_io(engine.get(key), "a get", &context()) {
                Some(got) => {
                    assert!(
                        possible.allows(key, got.as_deref()),
                        "{}: get of {} returned a value it cannot hold",
                        context(),
                        kv_shared::dump::quoted(key, 24)
                    );
                    true
                }
                None => false,
            },
            Step::Sync => expect_io(engine.sync(), "sync", &context()).is_some(),
            Step::Compact => expect_io(engine.compact(), "compact", &context()).is_some(),
        };
        failures += usize::from(!ok);
    }
    failures + usize::from(expect_io(engine.close(), "close", &context()).is_none())
}

/// Once the fault cleared: the store reopens, every key holds a value `possible` allows,
/// and it takes a new write.
fn check_after_the_fault<E: Engine>(
    opts: &Options,
    possible: &PossibleValues,
    context: &dyn Fn() -> String,
) {
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
    engine
        .put(b"after-fault", b"ok")
        .unwrap_or_else(|e| panic!("{}: put after the fault cleared: {e}", context()));
    assert_eq!(
        engine.get(b"after-fault").unwrap().as_deref(),
        Some(&b"ok"[..])
    );
    engine
        .close()
        .unwrap_or_else(|e| panic!("{}: close after the fault cleared: {e}", context()));
}

/// Counts the calls of the fixed workload (about 300 writes with syncs, compactions and a
/// close), then runs it `runs` times, failing call `k` for `k` spread over all of them,
/// alternating "once" and "disk full".
///
/// # Panics
/// On the first run that breaks a rule above, naming `k` and the kind of fault.
pub fn io_errors<E: Engine>(options: &Options, seed: u64, runs: u64) {
    let steps = fixed_workload(seed, WRITES);
    let reference = FaultFs::new(seed);
    let opts = options
        .clone()
        .with_file_system(Arc::new(reference.clone()));
    let engine = E::open(&store_path(), &opts).expect("reference open");
    for step in &steps {
        step.run(&engine)
            .unwrap_or_else(|e| panic!("reference run: {step:?} failed: {e}"));
    }
    engine.close().expect("reference close");
    let total = reference.calls();
    let (mut failures, mut injected, mut unnoticed) = (0, 0, Vec::new());
    for run in 0..runs {
        let k = 1 + run * total / runs.max(1);
        let kind = if run % 2 == 0 {
            FaultKind::Once
        } else {
            FaultKind::DiskFull
        };
        let (reported, failed, first) = one_run::<E>(options, &steps, seed, k, kind);
        failures += reported;
        injected += failed;
        if failed > 0 && reported == 0 {
            unnoticed.extend(first);
        }
    }
    eprintln!(
        "{}: I/O errors: {runs} runs over {total} calls; {injected} file calls failed, {failures} \
         engine calls reported an error; {} runs where a failed file call surfaced nowhere \
         (a fallback, or a swallowed error){}",
        E::NAME,
        unnoticed.len(),
        if unnoticed.is_empty() {
            String::new()
        } else {
            format!(
                ", such as: {}",
                unnoticed[..unnoticed.len().min(4)].join("; ")
            )
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
}

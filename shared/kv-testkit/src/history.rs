//! Operation histories: the random writes the reliability suites issue, and the check that a
//! recovered store equals the result of **some prefix** of them.
//!
//! After a crash, a store may legitimately have lost the writes that were not yet durable,
//! but only from the end: if write 17 survived, writes 1 to 16 must have survived too, and
//! nothing deleted may come back. A batch ([`WriteOp::Batch`]) is one write: a store that
//! holds part of one matches no prefix. So the check is: the store's contents equal
//! `base + ops[..p]` for some `p` between the writes that had to survive (acknowledged, or
//! synced, depending on the failure) and the writes that had been issued.
//!
//! Every value written is unique (it starts with the write's id, `r<run>w<index>:`), so an
//! old value can never pass for a new one, and a failure message can say which write a
//! value came from.
//!
//! [`matching_prefixes`] finds every such `p` in one pass: it replays the writes on a model
//! while keeping a count of the keys where model and store differ, updated per write, so the
//! check costs one pass over the writes rather than one comparison per candidate prefix.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_shared::{Engine, KeyRange, Result, WriteBatch};

/// A store's contents: key to value.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// One write: what the history counts as one step, applied whole or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// `put(key, value)`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value, unique to this write.
        value: Vec<u8>,
    },
    /// `delete(key)`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// `write(batch)` of these puts and deletes, in order: one atomic step, so a store
    /// recovered after a crash holds all of it or none of it, never a part.
    Batch(Vec<WriteOp>),
}

/// What a write leaves in each key it touches: the value, or `None` for absent.
pub type Effect<'a> = BTreeMap<&'a [u8], Option<&'a [u8]>>;

impl WriteOp {
    /// The puts (`Some(value)`) and deletes (`None`) the write makes, in order.
    pub fn changes(&self) -> Vec<(&[u8], Option<&[u8]>)> {
        match self {
            WriteOp::Put { key, value } => vec![(key, Some(value))],
            WriteOp::Delete { key } => vec![(key, None)],
            WriteOp::Batch(ops) => ops.iter().flat_map(WriteOp::changes).collect(),
        }
    }

    /// What the write leaves in each key it touches (for a batch, the last op on a key
    /// wins): the only values a reader can see of it.
    pub fn effect(&self) -> Effect<'_> {
        self.changes().into_iter().collect()
    }

    /// Applies the write to a model.
    pub fn apply(&self, state: &mut State) {
        for (key, value) in self.changes() {
            match value {
                Some(value) => state.insert(key.to_vec(), value.to_vec()),
                None => state.remove(key),
            };
        }
    }

    /// Issues the write to an engine: `put`, `delete`, or one `write` for a batch.
    ///
    /// # Errors
    /// Whatever the engine returns.
    pub fn issue<E: Engine>(&self, engine: &E) -> Result<()> {
        match self {
            WriteOp::Put { key, value } => engine.put(key, value),
            WriteOp::Delete { key } => engine.delete(key),
            WriteOp::Batch(_) => {
                let mut batch = WriteBatch::new();
                for (key, value) in self.changes() {
                    match value {
                        Some(value) => batch.put(key, value)?,
                        None => batch.delete(key)?,
                    }
                }
                engine.write(&batch)
            }
        }
    }
}

/// One step of a random workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A put, a delete or a batch.
    Write(WriteOp),
    /// A read of one key.
    Get(Vec<u8>),
    /// `sync`: every write before it must survive a power loss.
    Sync,
    /// `compact`: the engine's merge or compaction, run now.
    Compact,
}

impl Step {
    /// Runs the step on `engine`, checking nothing (a get's answer is dropped).
    ///
    /// # Errors
    /// Whatever the engine returns.
    pub fn run<E: Engine>(&self, engine: &E) -> Result<()> {
        match self {
            Step::Write(op) => op.issue(engine),
            Step::Get(key) => engine.get(key).map(drop),
            Step::Sync => engine.sync(),
            Step::Compact => engine.compact(),
        }
    }
}

/// The random workload of the reliability suites, deterministic from its seed: puts (new
/// keys and overwrites, small values and the odd large one), deletes, batches of both (now
/// and then two ops on one key), gets, and now and then a `sync` or a `compact`, over a
/// small key space so that overwrites and deletes are common.
#[derive(Debug)]
pub struct StepGen {
    rng: ChaCha8Rng,
    run: u64,
    writes: u64,
    keys: Vec<Vec<u8>>,
}

/// How many distinct keys the workloads use.
pub const KEY_SPACE: usize = 160;

/// The key space of the workloads: mostly `key000`-style keys, plus some with `0x00` and
/// `0xFF` bytes and the empty key.
pub fn key_space() -> Vec<Vec<u8>> {
    (0..KEY_SPACE)
        .map(|i| match i % 16 {
            0 if i == 0 => Vec::new(),
            0 => vec![0x00, i as u8],
            1 => vec![0xff, i as u8, 0x00],
            _ => format!("key{i:03}").into_bytes(),
        })
        .collect()
}

impl StepGen {
    /// A workload; `run` goes into every value so that runs on one store never repeat one.
    pub fn new(seed: u64, run: u64) -> Self {
        StepGen {
            rng: ChaCha8Rng::seed_from_u64(seed ^ run.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            run,
            writes: 0,
            keys: key_space(),
        }
    }

    fn key(&mut self) -> Vec<u8> {
        self.keys[self.rng.random_range(0..self.keys.len())].clone()
    }

    /// A value that starts with `id` (unique to the write), mostly short, now and then
    /// a few kilobytes.
    fn value(&mut self, id: String) -> Vec<u8> {
        let len = if self.rng.random_bool(0.03) {
            self.rng.random_range(1000..6000)
        } else {
            self.rng.random_range(0..160)
        };
        let mut value = id.into_bytes();
        let fill = self.rng.random::<u8>();
        value.extend((0..len).map(|i| fill.wrapping_add(i as u8)));
        value
    }

    /// A batch of 2 to 6 puts and deletes; one op in four reuses the key of the op before.
    fn batch(&mut self) -> WriteOp {
        let mut ops = Vec::new();
        let mut key = self.key();
        for i in 0..self.rng.random_range(2..=6) {
            if i > 0 && !self.rng.random_ratio(1, 4) {
                key = self.key();
            }
            let key = key.clone();
            ops.push(if self.rng.random_ratio(3, 4) {
                let value = self.value(format!("r{}w{}.{i}:", self.run, self.writes));
                WriteOp::Put { key, value }
            } else {
                WriteOp::Delete { key }
            });
        }
        WriteOp::Batch(ops)
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        let step = match self.rng.random_range(0..1000) {
            0..560 => {
                let key = self.key();
                let value = self.value(format!("r{}w{}:", self.run, self.writes));
                Step::Write(WriteOp::Put { key, value })
            }
            560..700 => Step::Write(WriteOp::Delete { key: self.key() }),
            700..750 => Step::Write(self.batch()),
            750..960 => Step::Get(self.key()),
            960..993 => Step::Sync,
            _ => Step::Compact,
        };
        self.writes += u64::from(matches!(step, Step::Write(_)));
        step
    }

    /// The next `n` steps.
    pub fn steps(&mut self, n: usize) -> Vec<Step> {
        (0..n).map(|_| self.next_step()).collect()
    }

    /// The first `n` writes this generator makes (skipping the other steps): what a crashed
    /// child process issued, regenerated by the parent from the child's seed.
    pub fn writes(&mut self, n: usize) -> Vec<WriteOp> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if let Step::Write(op) = self.next_step() {
                out.push(op);
            }
        }
        out
    }
}

/// A fixed workload for the suites that replay one workload many times: `writes` writes
/// (and the gets the generator mixes in), a `sync` every 16 steps and a `compact` every 150.
pub fn fixed_workload(seed: u64, writes: usize) -> Vec<Step> {
    let mut generator = StepGen::new(seed, 0);
    let mut steps = Vec::new();
    let mut n = 0;
    while n < writes {
        let step = generator.next_step();
        match step {
            Step::Sync | Step::Compact => continue,
            Step::Write(_) => n += 1,
            Step::Get(_) => {}
        }
        steps.push(step);
        if steps.len() % 16 == 0 {
            steps.push(Step::Sync);
        }
        if steps.len() % 150 == 0 {
            steps.push(Step::Compact);
        }
    }
    steps
}

/// What was read back from a store: a full scan (`complete`: a key missing from it is
/// absent), or individual reads (`complete == false`: only the keys listed are known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Key to the value read (`None`: the read said absent).
    pub values: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// True when every key not listed is known to be absent.
    pub complete: bool,
}

impl Observed {
    /// A full scan's result.
    pub fn complete(state: &State) -> Self {
        Observed {
            values: state
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            complete: true,
        }
    }

    fn differs(&self, model: &State, key: &[u8]) -> bool {
        match self.values.get(key) {
            Some(seen) => model.get(key) != seen.as_ref(),
            None => self.complete && model.contains_key(key),
        }
    }

    /// How many of `keys` differ between `model` and what was observed.
    fn count_differing<'a>(
        &self,
        model: &State,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> usize {
        keys.into_iter().filter(|k| self.differs(model, k)).count()
    }
}

/// Every `p` in `lo..=hi` such that `base` with `ops[..p]` applied agrees with `observed`.
/// A batch is one op of `ops`: a store holding part of one matches no prefix.
pub fn matching_prefixes(
    base: &State,
    ops: &[WriteOp],
    observed: &Observed,
    lo: usize,
    hi: usize,
) -> Vec<usize> {
    let mut model = base.clone();
    let mut keys: Vec<&[u8]> = model.keys().map(Vec::as_slice).collect();
    keys.extend(observed.values.keys().map(Vec::as_slice));
    keys.sort();
    keys.dedup();
    let mut differing = observed.count_differing(&model, keys);
    let hi = hi.min(ops.len());
    let mut found = Vec::new();
    if lo == 0 && differing == 0 {
        found.push(0);
    }
    for (i, op) in ops[..hi].iter().enumerate() {
        let touched = op.effect();
        let before = observed.count_differing(&model, touched.keys().copied());
        op.apply(&mut model);
        let after = observed.count_differing(&model, touched.keys().copied());
        differing = differing + after - before;
        if i + 1 >= lo && differing == 0 {
            found.push(i + 1);
        }
    }
    found
}

/// Describes how `observed` differs from `base + ops[..p]`, for failure messages.
pub fn describe_difference(base: &State, ops: &[WriteOp], observed: &Observed, p: usize) -> String {
    let mut model = base.clone();
    for op in &ops[..p.min(ops.len())] {
        op.apply(&mut model);
    }
    let mut keys: Vec<&Vec<u8>> = model.keys().chain(observed.values.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&Vec<u8>>| match v {
        None => "absent".to_string(),
        Some(v) => kv_shared::dump::quoted(v, 24),
    };
    let mut out = Vec::new();
    for key in keys {
        if observed.differs(&model, key) {
            let seen = observed.values.get(key).cloned().flatten();
            out.push(format!(
                "key {}: store has {}, prefix {p} has {}",
                kv_shared::dump::quoted(key, 24),
                show(seen.as_ref()),
                show(model.get(key))
            ));
        }
    }
    let n = out.len();
    out.truncate(8);
    if n > 8 {
        out.push(format!("... and {} more keys", n - 8));
    }
    out.join("; ")
}

/// Asserts that the store read back as `observed` equals `base + ops[..p]` for some `p` in
/// `lo..=hi`, and returns the largest such `p`.
///
/// # Panics
/// When there is none, describing the difference with the closest prefixes (`context` says
/// which run and seed).
pub fn assert_some_prefix(
    base: &State,
    ops: &[WriteOp],
    observed: &Observed,
    lo: usize,
    hi: usize,
    context: &str,
) -> usize {
    match matching_prefixes(base, ops, observed, lo, hi).last() {
        Some(&p) => p,
        None => {
            let anywhere = matching_prefixes(base, ops, observed, 0, ops.len());
            panic!(
                "{context}: the recovered store is not the result of any prefix of writes \
                 {lo}..={hi} (of {} issued). {}. Against prefix {lo}: {}. Against prefix {hi}: {}",
                ops.len(),
                if anywhere.is_empty() {
                    "It matches no prefix at all".to_string()
                } else {
                    format!(
                        "It matches prefix {anywhere:?} only: acknowledged or synced writes were lost"
                    )
                },
                describe_difference(base, ops, observed, lo),
                describe_difference(base, ops, observed, hi),
            )
        }
    }
}

/// Reads a whole store with a scan, and checks that a `get` of every key of
/// [`key_space`] agrees with it.
///
/// # Errors
/// Whatever the engine returns.
///
/// # Panics
/// When a get and the scan disagree.
pub fn read_store<E: Engine>(engine: &E) -> Result<State> {
    let state: State = engine
        .scan(KeyRange::all())?
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .collect();
    for key in key_space() {
        let got = engine.get(&key)?;
        assert!(
            got.as_ref() == state.get(&key),
            "get and scan disagree on key {}: get {:?}, scan {:?}",
            kv_shared::dump::quoted(&key, 24),
            got.map(|v| kv_shared::dump::quoted(&v, 24)),
            state.get(&key).map(|v| kv_shared::dump::quoted(v, 24))
        );
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> WriteOp {
        WriteOp::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    fn state(pairs: &[(&str, &str)]) -> State {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn prefixes_are_found_and_others_refused() {
        let base = state(&[("a", "0")]);
        let ops = vec![
            put("b", "1"),
            put("a", "2"),
            WriteOp::Delete { key: "b".into() },
            put("c", "3"),
        ];
        let seen = |s: &[(&str, &str)]| Observed::complete(&state(s));
        assert_eq!(
            matching_prefixes(&base, &ops, &seen(&[("a", "0")]), 0, 4),
            vec![0]
        );
        assert_eq!(
            matching_prefixes(&base, &ops, &seen(&[("a", "2")]), 0, 4),
            vec![3]
        );
        assert_eq!(
            matching_prefixes(&base, &ops, &seen(&[("a", "2"), ("c", "3")]), 0, 4),
            vec![4]
        );
        // Write 3 without write 2: no prefix.
        assert!(matching_prefixes(&base, &ops, &seen(&[("a", "0"), ("c", "3")]), 0, 4).is_empty());
        // A deleted key coming back: no prefix past the delete.
        assert!(
            matching_prefixes(
                &base,
                &ops,
                &seen(&[("a", "2"), ("b", "1"), ("c", "3")]),
                3,
                4
            )
            .is_empty()
        );
        // A partial observation matches every prefix it cannot tell apart.
        let partial = Observed {
            values: [(b"a".to_vec(), Some(b"2".to_vec()))].into(),
            complete: false,
        };
        assert_eq!(
            matching_prefixes(&base, &ops, &partial, 0, 4),
            vec![2, 3, 4]
        );
        let msg = describe_difference(&base, &ops, &seen(&[("a", "0"), ("c", "3")]), 4);
        assert!(
            msg.contains("key \"a\"") && msg.contains("prefix 4"),
            "{msg}"
        );
    }

    #[test]
    fn the_workload_is_deterministic_and_values_unique() {
        let a = StepGen::new(7, 1).steps(500);
        assert_eq!(a, StepGen::new(7, 1).steps(500));
        let writes = StepGen::new(7, 1).writes(300);
        let mut values: Vec<&[u8]> = writes
            .iter()
            .flat_map(WriteOp::changes)
            .filter_map(|(_, value)| value)
            .collect();
        let n = values.len();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), n);
        assert!(a.contains(&Step::Sync) && a.contains(&Step::Compact));
        let batches: Vec<&WriteOp> = writes
            .iter()
            .filter(|op| matches!(op, WriteOp::Batch(_)))
            .collect();
        assert!(batches.len() > 5, "{} batches", batches.len());
        assert!(
            batches.iter().any(|b| b.effect().len() < b.changes().len()),
            "some batch writes one key twice"
        );
    }

    #[test]
    fn a_batch_is_one_step_never_split() {
        let base = state(&[("a", "0")]);
        let batch = WriteOp::Batch(vec![
            put("a", "1"),
            put("b", "1"),
            WriteOp::Delete { key: "a".into() },
            put("c", "1"),
            put("c", "2"),
        ]);
        assert_eq!(
            batch.effect(),
            [
                (&b"a"[..], None),
                (&b"b"[..], Some(&b"1"[..])),
                (&b"c"[..], Some(&b"2"[..]))
            ]
            .into()
        );
        let ops = vec![put("d", "1"), batch, put("a", "3")];
        let seen = |s: &[(&str, &str)]| Observed::complete(&state(s));
        let whole = seen(&[("b", "1"), ("c", "2"), ("d", "1")]);
        assert_eq!(matching_prefixes(&base, &ops, &whole, 0, 3), vec![2]);
        // Part of the batch: its first op without the rest, or all but its last.
        let first_op_only = seen(&[("a", "1"), ("d", "1")]);
        assert!(matching_prefixes(&base, &ops, &first_op_only, 0, 3).is_empty());
        let all_but_last = seen(&[("b", "1"), ("c", "1"), ("d", "1")]);
        assert!(matching_prefixes(&base, &ops, &all_but_last, 0, 3).is_empty());
        let mut model = base.clone();
        ops[1].apply(&mut model);
        assert_eq!(model, state(&[("b", "1"), ("c", "2")]));
    }
}

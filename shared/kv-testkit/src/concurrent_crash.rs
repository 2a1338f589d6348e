//! The concurrent crash suite: several threads write at once, and the process is killed or
//! the power cut in the middle; the store must hold, for every thread, exactly what some
//! prefix of that thread's writes left, and every write that had to survive.
//!
//! The process-crash and power-loss suites ([`crate::process_crash`], [`crate::power_loss`])
//! crash one writer. Real stores are crashed while many threads write: a group commit with
//! several writers' records in flight, a segment rotation or a memtable switch racing with
//! another thread's append, a `sync` running beside writes. Those are the paths this suite
//! reaches.
//!
//! ## The writers
//!
//! [`WRITERS`] threads write at once, each in **its own key space** (thread `t` writes only
//! keys starting `w<t>/`), with puts, deletes and batches ([`WriterGen`]). Every value is
//! unique (it starts `r<run>t<thread>w<index>`), so a value names the write it came from.
//! Threads share nothing but the engine, so the engine may order two threads' writes either
//! way; within one thread, write `n + 1` is issued only after write `n` returned. So after a
//! crash, the keys of each thread must hold what **some prefix** of that thread's writes
//! left ([`crate::history::assert_some_prefix`], one thread at a time): never a later write
//! without an earlier one of the same thread, never a deleted key come back, never part of
//! a batch, never a value that was not written to that key.
//!
//! What had to survive:
//!
//! * after a **process kill**: every write that returned `Ok` (the durability contract:
//!   once `put` returns, the change is the operating system's), with `sync_writes` or not;
//! * after a **power loss**: with `sync_writes=true`, every write that returned `Ok`; with
//!   `false`, every write that returned before a `sync` began that then returned `Ok`. A
//!   syncing thread notes, before each `sync`, how far every writer had got.
//!
//! ## The two crashes
//!
//! * [`concurrent_kills`]: a child process (this same test, re-run with [`CHILD_ENV`] set)
//!   runs the writers and a thread that calls `sync` and now and then `compact`, on a real
//!   directory. Each writer appends `ack N` to its own report file after write `N` returns.
//!   The parent kills the child with `SIGKILL` a random few milliseconds after every writer
//!   has begun, copies the store, opens the copy and checks it. The next child recovers the
//!   same store; every [`RUNS_PER_STORE`] runs the store starts afresh, so that it stays
//!   small.
//! * [`concurrent_power_losses`]: the writers and the syncing thread run in this process on
//!   a [`FaultFs`]; the main thread pulls the plug once the writers have acknowledged a
//!   random number of writes, or the disk does so at a random file operation. The writers
//!   then get errors, which is fine (only once the disk is down). The disk restarts, the
//!   store is reopened and checked.
//!
//! Every other run uses `sync_writes=true`, the others `false`. `KV_CONCURRENT_CRASH_RUNS` and
//! `KV_CONCURRENT_POWERLOSS_RUNS` set the number of runs (default 25 each); the seed prints
//! and replays with `KV_TEST_SEED`.
//!
//! Two short checks of the option itself go with the suite:
//! [`sync_writes_survive_power_loss`] and [`failed_sync_write_is_final`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fault_fs::{FaultFs, store_path};
use crate::history::{Observed, State, WriteOp, assert_some_prefix, read_store};
use crate::hook_fs::{Action, HookFs, Op};
use crate::power_loss::{describe_files, write_after_recovery};
use crate::process_crash::{copy_dir, died, kill_child, spawn_child};
use kv_shared::{Engine, Options};

/// The environment variable that makes a test run as the writing child:
/// `<store dir>|<report file prefix>|<seed>|<run>|<sync_writes>`.
pub const CHILD_ENV: &str = "KV_CONCURRENT_CRASH_CHILD";
/// How many threads write at once.
pub const WRITERS: usize = 4;
/// How many keys each writer owns.
pub const KEYS_PER_WRITER: usize = 24;
/// How many kill runs share one store before it starts afresh.
pub const RUNS_PER_STORE: u64 = 8;
/// The most writes one writer issues in a power-loss run.
const POWER_LOSS_WRITES: usize = 150;

/// Key `i` of writer `t`: `w<t>/k<i>`, every eighth one with a `0x00` and a `0xFF` byte.
pub fn writer_key(t: usize, i: usize) -> Vec<u8> {
    let mut key = format!("w{t}/k{i:02}").into_bytes();
    if i % 8 == 7 {
        key.extend_from_slice(&[0x00, 0xff]);
    }
    key
}

/// The writer that owns `key`, if any.
pub fn owner(key: &[u8]) -> Option<usize> {
    let rest = key.strip_prefix(b"w")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    std::str::from_utf8(&rest[..slash]).ok()?.parse().ok()
}

/// The writes of one writer thread, deterministic from the seed, the run and the thread:
/// puts (now and then of a few kilobytes), deletes, and batches of 2 to 5 ops, all on the
/// writer's own keys.
#[derive(Debug)]
pub struct WriterGen {
    rng: ChaCha8Rng,
    run: u64,
    writer: usize,
    writes: u64,
}

impl WriterGen {
    /// Writer `writer`'s writes in run `run`.
    pub fn new(seed: u64, run: u64, writer: usize) -> Self {
        let mix = run.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (writer as u64 + 1) << 56;
        WriterGen {
            rng: ChaCha8Rng::seed_from_u64(seed ^ mix),
            run,
            writer,
            writes: 0,
        }
    }

    fn key(&mut self) -> Vec<u8> {
        writer_key(self.writer, self.rng.random_range(0..KEYS_PER_WRITER))
    }

    fn value(&mut self, id: String) -> Vec<u8> {
        let len = if self.rng.random_ratio(3, 100) {
            self.rng.random_range(800..3000)
        } else {
            self.rng.random_range(0..120)
        };
        let fill = self.rng.random::<u8>();
        let mut value = id.into_bytes();
        value.extend((0..len).map(|i| fill.wrapping_add(i as u8)));
        value
    }

    /// The next write.
    pub fn next_op(&mut self) -> WriteOp {
        let id = format!("r{}t{}w{}", self.run, self.writer, self.writes);
        self.writes += 1;
        match self.rng.random_range(0..100) {
            0..60 => {
                let key = self.key();
                let value = self.value(format!("{id}:"));
                WriteOp::Put { key, value }
            }
            60..80 => WriteOp::Delete { key: self.key() },
            _ => {
                let n = self.rng.random_range(2..=5);
                let ops = (0..n)
                    .map(|i| {
                        let key = self.key();
                        if self.rng.random_ratio(3, 4) {
                            let value = self.value(format!("{id}.{i}:"));
                            WriteOp::Put { key, value }
                        } else {
                            WriteOp::Delete { key }
                        }
                    })
                    .collect();
                WriteOp::Batch(ops)
            }
        }
    }

    /// The first `n` writes.
    pub fn ops(mut self, n: usize) -> Vec<WriteOp> {
        (0..n).map(|_| self.next_op()).collect()
    }
}

/// What one writer did before the crash.
#[derive(Debug, Clone)]
pub struct WriterLog {
    /// Every write it may have issued, in order (the last ones may never have reached the
    /// engine).
    pub ops: Vec<WriteOp>,
    /// How many of the first `ops` had to survive.
    pub required: usize,
}

/// What the checks of a suite covered.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Runs, each ended by a crash.
    pub runs: u64,
    /// Runs with `sync_writes=true`.
    pub sync_writes_runs: u64,
    /// Writes that had to survive, and did.
    pub required_writes: u64,
    /// Batches issued, each found whole or absent.
    pub batches: u64,
    /// Writes found in the recovered stores (the prefixes that matched).
    pub recovered_writes: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.runs += other.runs;
        self.sync_writes_runs += other.sync_writes_runs;
        self.required_writes += other.required_writes;
        self.batches += other.batches;
        self.recovered_writes += other.recovered_writes;
    }

    /// Prints the summary of a suite on `engine`: `crashes` says what the runs were
    /// ("SIGKILLs of" the writers), `required` which writes had to survive.
    fn print(&self, engine: &str, crashes: &str, required: &str) {
        eprintln!(
            "{engine}: concurrent crash: {} {crashes} {WRITERS} writers ({} with sync_writes), \
             {} {required} writes checked, 0 lost; {} batches checked, 0 torn; {} writes \
             recovered",
            self.runs,
            self.sync_writes_runs,
            self.required_writes,
            self.batches,
            self.recovered_writes
        );
    }
}

/// The keys of `state` that writer `t` owns (`None`: the keys no writer owns).
fn keys_of(state: &State, t: Option<usize>) -> State {
    state
        .iter()
        .filter(|(k, _)| owner(k).filter(|&o| o < WRITERS) == t)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Checks a recovered store against `base` (the store before the run) and each writer's
/// log: each writer's keys hold `base` plus some prefix of its writes that keeps at least
/// its required ones, and the keys no writer owns are as in `base`.
///
/// # Panics
/// When a writer lost a write that had to survive, or its keys match no prefix (a torn
/// batch, a resurrected key, a value from nowhere).
pub fn check_writers(base: &State, recovered: &State, logs: &[WriterLog], context: &str) -> Tally {
    assert!(
        keys_of(recovered, None) == keys_of(base, None),
        "{context}: keys no writer owns changed"
    );
    let mut tally = Tally::default();
    for (t, log) in logs.iter().enumerate() {
        let observed = Observed::complete(&keys_of(recovered, Some(t)));
        let context = format!("{context}, writer {t}");
        let p = assert_some_prefix(
            &keys_of(base, Some(t)),
            &log.ops,
            &observed,
            log.required,
            log.ops.len(),
            &context,
        );
        tally.required_writes += log.required as u64;
        tally.recovered_writes += p as u64;
        tally.batches += log
            .ops
            .iter()
            .filter(|op| matches!(op, WriteOp::Batch(_)))
            .count() as u64;
    }
    tally
}

/// `options` with `sync_writes` set.
fn with_sync_writes(options: &Options, sync_writes: bool) -> Options {
    options.clone().set("sync_writes", sync_writes)
}

// ---------------------------------------------------------------------------------------
// Process kills

struct ChildSpec {
    dir: PathBuf,
    report: PathBuf,
    seed: u64,
    run: u64,
    sync_writes: bool,
}

impl ChildSpec {
    fn encode(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.dir.display(),
            self.report.display(),
            self.seed,
            self.run,
            self.sync_writes
        )
    }

    fn decode(s: &str) -> Option<ChildSpec> {
        let mut parts = s.split('|');
        Some(ChildSpec {
            dir: parts.next()?.into(),
            report: parts.next()?.into(),
            seed: parts.next()?.parse().ok()?,
            run: parts.next()?.parse().ok()?,
            sync_writes: parts.next()?.parse().ok()?,
        })
    }

    fn report_of(&self, t: usize) -> PathBuf {
        let mut name = self.report.clone().into_os_string();
        name.push(format!(".{t}"));
        name.into()
    }
}

/// The child's side: the writers, and a thread that syncs and compacts, until killed (or
/// for at most a minute).
fn child<E: Engine>(options: &Options, spec: &ChildSpec) {
    let options = with_sync_writes(options, spec.sync_writes);
    let engine = E::open(&spec.dir, &options).expect("child: open");
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let engine = &engine;
                s.spawn(move || child_writer(engine, spec, t, deadline))
            })
            .collect();
        let mut i = 0u64;
        while Instant::now() < deadline {
            // A writer only returns at the deadline: one that stopped before it panicked
            // (its message is on stderr). The child dies at once, and the parent reports
            // a child that died on its own, rather than waiting for writers that are gone.
            // (Checked before the clock: a writer that stopped at the deadline leaves the
            // clock past it.)
            if writers.iter().any(|w| w.is_finished()) && Instant::now() < deadline {
                std::process::exit(101);
            }
            std::thread::sleep(Duration::from_millis(1));
            i += 1;
            if i.is_multiple_of(16) {
                engine.compact().expect("child: compact");
            } else {
                engine.sync().expect("child: sync");
            }
        }
    });
}

/// One writer of the child: writes, and after each write returns, appends `ack N` to its
/// report file with one write call.
fn child_writer<E: Engine>(engine: &E, spec: &ChildSpec, t: usize, deadline: Instant) {
    let mut report = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(spec.report_of(t))
        .expect("open the report file");
    let mut generator = WriterGen::new(spec.seed, spec.run, t);
    let mut n = 0u64;
    while Instant::now() < deadline {
        let op = generator.next_op();
        op.issue(engine)
            .unwrap_or_else(|e| panic!("child: writer {t}: {op:?} failed: {e}"));
        report
            .write_all(format!("ack {n}\n").as_bytes())
            .expect("write the report file");
        n += 1;
    }
}

/// How many writes each writer of a killed child saw acknowledged.
fn read_acks(spec: &ChildSpec) -> Vec<usize> {
    (0..WRITERS)
        .map(|t| {
            let text = std::fs::read_to_string(spec.report_of(t)).unwrap_or_default();
            // Only whole lines count: the kill may land in the middle of a line's write.
            text.split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .filter_map(|l| l.strip_prefix("ack ")?.trim().parse::<usize>().ok())
                .map(|n| n + 1)
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Runs the kill half of the suite: `runs` children killed while [`WRITERS`] threads write.
/// `test_name` is the calling test's name as libtest knows it
/// ([`crate::child_process::test_name`]). Inside the child this function becomes the
/// child's body.
///
/// # Panics
/// When a child dies on its own, or a recovered store lost an acknowledged write or holds
/// for some writer what no prefix of its writes left.
pub fn concurrent_kills<E: Engine>(options: &Options, test_name: &str, seed: u64, runs: u64) {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let spec = ChildSpec::decode(&spec).expect("a well-formed child spec");
        child::<E>(options, &spec);
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, copy) = (tmp.path().join("store"), tmp.path().join("copy"));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut base = State::new();
    let mut tally = Tally::default();
    for run in 0..runs {
        if run % RUNS_PER_STORE == 0 && dir.exists() {
            std::fs::remove_dir_all(&dir).expect("start a fresh store");
            base = State::new();
        }
        let spec = ChildSpec {
            dir: dir.clone(),
            report: tmp.path().join(format!("report-{run}")),
            seed,
            run,
            sync_writes: run % 2 == 1,
        };
        let context = format!(
            "{}: concurrent kill run {run} (sync_writes={}) (replay with KV_TEST_SEED={seed})",
            E::NAME,
            spec.sync_writes
        );
        let stderr = tmp.path().join(format!("stderr-{run}"));
        kill_a_child(test_name, &spec, &stderr, &mut rng, &context);
        let logs: Vec<WriterLog> = read_acks(&spec)
            .into_iter()
            .enumerate()
            .map(|(t, acked)| WriterLog {
                ops: WriterGen::new(seed, run, t).ops(acked + 1),
                required: acked,
            })
            .collect();
        copy_dir(&dir, &copy);
        let engine = E::open(&copy, options)
            .unwrap_or_else(|e| panic!("{context}: reopening after the kill: {e}"));
        let state = read_store(&engine).unwrap_or_else(|e| panic!("{context}: reading: {e}"));
        let mut checked = check_writers(&base, &state, &logs, &context);
        engine
            .close()
            .unwrap_or_else(|e| panic!("{context}: close: {e}"));
        base = state;
        checked.runs = 1;
        checked.sync_writes_runs = u64::from(spec.sync_writes);
        tally.add(checked);
    }
    tally.print(E::NAME, "SIGKILLs of", "acknowledged");
}

/// Starts a child as `spec` says, waits until every writer has had a write acknowledged,
/// lets it run a random few milliseconds more, and kills it.
fn kill_a_child(
    test_name: &str,
    spec: &ChildSpec,
    stderr: &Path,
    rng: &mut ChaCha8Rng,
    context: &str,
) {
    let mut child = spawn_child(test_name, (CHILD_ENV, spec.encode()), stderr);
    let started = Instant::now();
    while read_acks(spec).contains(&0) {
        if let Some(status) = child.try_wait().expect("poll the child") {
            panic!("{context}: the child exited early {}", died(status, stderr));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{context}: the child's writers did not all start within a minute"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
    kill_child(child, stderr, context);
}

// ---------------------------------------------------------------------------------------
// Power losses

/// How far the writers of a power-loss run got, shared by the threads.
struct Progress {
    /// Per writer: writes issued (the last may be in flight).
    issued: Vec<AtomicUsize>,
    /// Per writer: writes that returned `Ok`.
    acked: Vec<AtomicUsize>,
    /// Per writer: writes acknowledged before a `sync` began that returned `Ok`.
    synced: Mutex<Vec<usize>>,
    /// Writers that have stopped.
    finished: AtomicUsize,
    /// Set once the power is off: everyone stops.
    stop: AtomicBool,
}

impl Progress {
    fn new() -> Self {
        Progress {
            issued: (0..WRITERS).map(|_| AtomicUsize::new(0)).collect(),
            acked: (0..WRITERS).map(|_| AtomicUsize::new(0)).collect(),
            synced: Mutex::new(vec![0; WRITERS]),
            finished: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        }
    }

    fn acked_now(&self) -> Vec<usize> {
        self.acked.iter().map(|a| a.load(SeqCst)).collect()
    }

    fn running(&self) -> bool {
        !self.stop.load(SeqCst) && self.finished.load(SeqCst) < WRITERS
    }
}

/// One in-process writer: issues its writes until it has issued `max`, or one fails (only
/// allowed once the disk is down).
fn power_loss_writer<E: Engine>(
    engine: &E,
    fs: &FaultFs,
    progress: &Progress,
    mut generator: WriterGen,
    t: usize,
    context: &str,
) {
    // Counted as stopped even when a write panics (an engine bug, or a workshop exercise
    // left open): the other threads wait for every writer to stop, and the scope then
    // reports the panic.
    let _stopped = Stopped(&progress.finished);
    for n in 1..=POWER_LOSS_WRITES {
        if progress.stop.load(SeqCst) {
            break;
        }
        let op = generator.next_op();
        progress.issued[t].store(n, SeqCst);
        match op.issue(engine) {
            Ok(()) => progress.acked[t].store(n, SeqCst),
            Err(e) => {
                assert!(
                    fs.is_down(),
                    "{context}: writer {t}: {op:?} failed while the disk was healthy: {e}"
                );
                break;
            }
        }
    }
}

/// Adds one to its counter when dropped, by a return or by a panic.
struct Stopped<'a>(&'a AtomicUsize);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// The syncing thread: `sync` (noting first how far each writer had got), now and then
/// `compact`, until the power goes or the writers are done.
fn power_loss_syncer<E: Engine>(
    engine: &E,
    fs: &FaultFs,
    progress: &Progress,
    seed: u64,
    context: &str,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    while progress.running() {
        std::thread::sleep(Duration::from_micros(rng.random_range(0..800)));
        let result = if rng.random_ratio(1, 12) {
            engine.compact()
        } else {
            let before = progress.acked_now();
            engine.sync().map(|()| {
                let mut synced = progress
                    .synced
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for (s, b) in synced.iter_mut().zip(before) {
                    *s = (*s).max(b);
                }
            })
        };
        if let Err(e) = result {
            assert!(
                fs.is_down(),
                "{context}: sync or compact failed while the disk was healthy: {e}"
            );
            break;
        }
    }
}

/// Runs the power-loss half of the suite: `runs` stores on a [`FaultFs`] whose power is
/// cut while [`WRITERS`] threads write.
///
/// # Panics
/// When a recovered store lost a write that had to survive, holds for some writer what no
/// prefix of its writes left, or does not reopen.
pub fn concurrent_power_losses<E: Engine>(options: &Options, seed: u64, runs: u64) {
    let mut tally = Tally::default();
    for run in 0..runs {
        tally.add(concurrent_power_loss_run::<E>(options, seed, run));
    }
    tally.print(E::NAME, "power losses under", "acknowledged-and-required");
}

/// Run number `run` of [`concurrent_power_losses`] alone. Thread timing varies, so a
/// failure may need several tries to come back.
///
/// # Panics
/// As [`concurrent_power_losses`].
pub fn concurrent_power_loss_run<E: Engine>(options: &Options, seed: u64, run: u64) -> Tally {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ run.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let sync_writes = run % 2 == 1;
    let context = format!(
        "{}: concurrent power loss run {run} (sync_writes={sync_writes}) (replay with \
         KV_TEST_SEED={seed})",
        E::NAME
    );
    let fs = FaultFs::new(rng.random());
    let opts = with_sync_writes(options, sync_writes).with_file_system(Arc::new(fs.clone()));
    let engine =
        E::open(&store_path(), &opts).unwrap_or_else(|e| panic!("{context}: first open: {e}"));
    let progress = Progress::new();
    // The plug is pulled at a random file operation, or once this many writes were acked.
    let ack_target = if rng.random_bool(0.5) {
        fs.crash_at_mutation(rng.random_range(1..=1500));
        usize::MAX
    } else {
        rng.random_range(0..=WRITERS * POWER_LOSS_WRITES)
    };
    let syncer_seed = rng.random();
    std::thread::scope(|s| {
        for t in 0..WRITERS {
            let generator = WriterGen::new(seed, run, t);
            let (engine, fs, progress, context) = (&engine, &fs, &progress, &context);
            s.spawn(move || power_loss_writer(engine, fs, progress, generator, t, context));
        }
        s.spawn(|| power_loss_syncer(&engine, &fs, &progress, syncer_seed, &context));
        while progress.running() && !fs.is_down() {
            if progress.acked_now().iter().sum::<usize>() >= ack_target {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        fs.crash();
        progress.stop.store(true, SeqCst);
    });
    drop(engine);
    fs.restart();
    let synced = progress
        .synced
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let acked = progress.acked_now();
    let logs: Vec<WriterLog> = (0..WRITERS)
        .map(|t| WriterLog {
            ops: WriterGen::new(seed, run, t).ops(progress.issued[t].load(SeqCst)),
            required: if sync_writes { acked[t] } else { synced[t] },
        })
        .collect();
    let mut tally = check_after_power_loss::<E>(&fs, &opts, &logs, &context);
    tally.sync_writes_runs = u64::from(sync_writes);
    tally
}

/// Reopens the store after a power loss and checks every writer against its log.
fn check_after_power_loss<E: Engine>(
    fs: &FaultFs,
    options: &Options,
    logs: &[WriterLog],
    context: &str,
) -> Tally {
    let engine = E::open(&store_path(), options).unwrap_or_else(|e| {
        panic!(
            "{context}: open after the power loss failed: {e}{}",
            describe_files(fs)
        )
    });
    let state = read_store(&engine).unwrap_or_else(|e| panic!("{context}: reading back: {e}"));
    let mut tally = check_writers(&State::new(), &state, logs, context);
    write_after_recovery(engine, context);
    tally.runs = 1;
    tally
}

// ---------------------------------------------------------------------------------------
// The option itself

/// `sync_writes=true` is accepted, and every acknowledged write survives a power loss,
/// without a single `sync`: on three fresh disks, one writer issues rounds of writes with a
/// power loss after each, rounds of 1 to 5 writes (right after an open, before any
/// rotation) alternating with rounds of 50 to 150 (enough to rotate segments, switch WALs
/// and flush with the suites' small options).
///
/// # Panics
/// When the option is refused, or a write acknowledged before a power loss is missing.
pub fn sync_writes_survive_power_loss<E: Engine>(options: &Options, seed: u64) {
    for disk in 0..3 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ disk);
        let fs = FaultFs::new(rng.random());
        let opts = with_sync_writes(options, true).with_file_system(Arc::new(fs.clone()));
        let mut generator = WriterGen::new(seed, disk, 0);
        let mut ops = Vec::new();
        for round in 0..=8 {
            let context = format!(
                "{}: sync_writes, disk {disk}, power loss {round} (replay with \
                 KV_TEST_SEED={seed})",
                E::NAME
            );
            let engine = E::open(&store_path(), &opts)
                .unwrap_or_else(|e| panic!("{context}: open with sync_writes=true: {e}"));
            let state = read_store(&engine).unwrap_or_else(|e| panic!("{context}: reading: {e}"));
            let observed = Observed::complete(&state);
            assert_some_prefix(
                &State::new(),
                &ops,
                &observed,
                ops.len(),
                ops.len(),
                &context,
            );
            let writes = match round {
                8 => 0,
                r if r % 2 == 0 => rng.random_range(1..=5),
                _ => rng.random_range(50..=150),
            };
            for _ in 0..writes {
                let op = generator.next_op();
                op.issue(&engine)
                    .unwrap_or_else(|e| panic!("{context}: {op:?} failed: {e}"));
                ops.push(op);
            }
            fs.crash();
            drop(engine);
            fs.restart();
        }
    }
}

/// With `sync_writes=true`, a write whose fsync fails returns an error, and so does every
/// later write and `sync`, even once the disk works again, until the store is reopened:
/// the data the failed fsync covered may be gone, and a later fsync could not say so.
///
/// # Panics
/// When a write or sync is accepted after the failed fsync, or the store does not reopen
/// with the writes acknowledged before it.
pub fn failed_sync_write_is_final<E: Engine>(options: &Options) {
    let name = E::NAME;
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = HookFs::new();
    let opts = with_sync_writes(options, true).with_file_system(Arc::new(fs.clone()));
    let engine = E::open(tmp.path(), &opts).expect("open with sync_writes=true");
    engine.put(b"before", b"1").expect("put before the failure");
    fs.set_hook(|call| {
        if call.op == Op::Sync {
            Action::Fail
        } else {
            Action::Pass
        }
    });
    assert!(
        engine.put(b"failing", b"2").is_err(),
        "{name}: a put whose fsync failed returned Ok"
    );
    fs.clear_hook();
    assert!(
        engine.put(b"after", b"3").is_err(),
        "{name}: a put after a failed fsync was accepted"
    );
    assert!(
        engine.sync().is_err(),
        "{name}: a sync after a failed fsync returned Ok"
    );
    assert_eq!(
        engine.get(b"before").expect("reads go on"),
        Some(b"1".to_vec())
    );
    drop(engine);
    let engine = E::open(tmp.path(), options).expect("reopen after the failed fsync");
    assert_eq!(engine.get(b"before").expect("get"), Some(b"1".to_vec()));
    assert_eq!(engine.get(b"after").expect("get"), None);
    engine.put(b"after", b"3").expect("a put after the reopen");
    engine.close().expect("close");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_belong_to_their_writer_only() {
        for t in 0..WRITERS {
            for i in 0..KEYS_PER_WRITER {
                assert_eq!(owner(&writer_key(t, i)), Some(t));
            }
        }
        assert_eq!(owner(b"key001"), None);
        assert_eq!(owner(b"w/x"), None);
        let ops = WriterGen::new(5, 2, 1).ops(400);
        assert_eq!(ops, WriterGen::new(5, 2, 1).ops(400));
        let changes: Vec<_> = ops.iter().flat_map(WriteOp::changes).collect();
        assert!(changes.iter().all(|(key, _)| owner(key) == Some(1)));
        let mut values: Vec<&[u8]> = changes.iter().filter_map(|(_, v)| *v).collect();
        let n = values.len();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), n, "every value is unique");
    }

    /// A writer's writes up to its first batch of two ops or more, and the state after the
    /// first `p` of them.
    fn history() -> (Vec<WriteOp>, impl Fn(usize) -> State) {
        let mut generator = WriterGen::new(11, 0, 0);
        let mut ops: Vec<WriteOp> = Vec::new();
        while !ops
            .iter()
            .any(|op| matches!(op, WriteOp::Batch(b) if b.len() >= 2))
        {
            ops.push(generator.next_op());
        }
        let all = ops.clone();
        let after = move |p: usize| {
            let mut state = State::new();
            all[..p].iter().for_each(|op| op.apply(&mut state));
            state
        };
        (ops, after)
    }

    #[test]
    fn a_lost_acknowledged_write_or_a_torn_batch_is_caught() {
        let (ops, after) = history();
        let n = ops.len();
        let log = |required| {
            let mut logs = vec![
                WriterLog {
                    ops: Vec::new(),
                    required: 0
                };
                WRITERS
            ];
            logs[0] = WriterLog {
                ops: ops.clone(),
                required,
            };
            logs
        };
        let base = State::new();
        let tally = check_writers(&base, &after(n), &log(n), "whole");
        assert_eq!(tally.recovered_writes, n as u64);
        check_writers(&base, &after(n - 1), &log(n - 1), "last one unacknowledged");
        let lost = std::panic::catch_unwind(|| {
            check_writers(&base, &after(n - 1), &log(n), "lost");
        });
        assert!(lost.is_err(), "a lost acknowledged write went unnoticed");
        // The batch (the last op) with only its first op applied.
        let WriteOp::Batch(batch) = &ops[n - 1] else {
            panic!("the last op is a batch")
        };
        let mut torn = after(n - 1);
        batch[0].apply(&mut torn);
        let caught = std::panic::catch_unwind(|| {
            check_writers(&base, &torn, &log(0), "torn");
        });
        assert!(caught.is_err(), "a torn batch went unnoticed");
    }
}

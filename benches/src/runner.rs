//! Running workloads on engines and measuring them.
//!
//! For each engine, [`run`] takes the workloads in the order given, on one store that is
//! carried from one workload to the next:
//!
//! * `fillseq`, `fillrandom` and `fillthreads` start from an **empty store**: when the store holds anything,
//!   it is closed, its directory removed, and a new one created.
//! * Every other workload needs a **filled store** (keys `0..num` present). It runs on the
//!   store the previous workload left when that store is known to be filled; otherwise (no
//!   store yet, a `deleterandom` emptied it, or the time limit cut a fill or delete short) a
//!   new store is created and filled by an **untimed** `fillseq` first.
//! * Only the workload itself is timed, and figures are changes in the engine's
//!   [`kv_shared::Stats`] over that part, so the untimed fills never count.
//!
//! So a default run measures `overwrite` on the store `fillrandom` built, reads on a store
//! that has been overwritten once (as in db_bench), and `compact` after all of them.
//!
//! **Time limit.** Each workload stops at [`BenchConfig::time_limit`], and its ops/s is taken
//! over the operations done; the row says it was cut short. This keeps a full run short even
//! where an engine is slow by design (stage 1 sorts every key for each scan).
//!
//! **Correctness checks.** The benchmark also checks the answers it gets: every `get` of an
//! existing key finds a value of the right size, no missing key is found, scans return the
//! number of keys the range holds, in order, and a reopened store holds `num` live keys. A
//! wrong answer is reported as the row's error, beside its figures. One exception: a peer
//! that is not durable against a kill as configured (sled, redb; see
//! [`crate::peers::Peer::survives_kill`]) may lose its latest keys to the `recovery`
//! workload's kill, which the row notes ([`Measurement::live_keys_after_kill`]) rather than
//! reports as an error.
//!
//! Engine failures do not stop the run: the failing row records the error, the engine's
//! remaining workloads are skipped, and the next engine runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::workload::{Op, Workload, WorkloadConfig, key};
use kv_shared::{DynEngine, Error, KeyRange, Result, Stats};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bench_workload::{BenchWorkload, FILL_CHUNK, SCAN_KEYS};
use crate::engine_spec::ResolvedEngine;
use crate::latency::Latency;
use crate::measurement::Measurement;
use crate::memory;
use crate::progress::Progress;

/// How a benchmark run is sized and where its stores live.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Key-space size, key and value sizes, seed.
    pub workload: WorkloadConfig,
    /// Each workload stops after this long; `None` for no limit.
    pub time_limit: Option<Duration>,
    /// Directory under which stores are created (in a fresh subdirectory removed at the
    /// end); the system's temporary directory when `None`.
    pub dir: Option<PathBuf>,
    /// The `kvbench` executable, run as a child process for the "after a kill" half of the
    /// `recovery` workload (see [`fill_then_wait`]); that half is skipped when `None`.
    pub kill_helper: Option<PathBuf>,
    /// Writer threads of `fillthreads` (at least 1).
    pub threads: u64,
}

/// Default [`BenchConfig::threads`].
pub const DEFAULT_THREADS: u64 = 4;

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            workload: WorkloadConfig::default(),
            time_limit: Some(Duration::from_secs(10)),
            dir: None,
            kill_helper: None,
            threads: DEFAULT_THREADS,
        }
    }
}

/// Runs every workload on every engine, in order, and returns one [`Measurement`] per pair
/// that ran (an engine that fails a workload gets a row with the error and skips the rest).
///
/// # Errors
/// [`Error::InvalidArgument`] for a workload configuration that does not fit (see
/// [`WorkloadConfig::validate`]); [`Error::Io`] when the directory for the stores cannot be
/// created. Engine failures are rows, not errors.
pub fn run(
    engines: &[ResolvedEngine],
    workloads: &[BenchWorkload],
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Vec<Measurement>> {
    config.workload.validate()?;
    let base = config.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).map_err(|e| Error::io(&base, e))?;
    let root = tempfile::Builder::new()
        .prefix("kvbench-")
        .tempdir_in(&base)
        .map_err(|e| Error::io(&base, e))?;
    let mut rows = Vec::new();
    let total = engines.len() * workloads.len();
    for (e, engine) in engines.iter().enumerate() {
        let mut store = Store::new(engine, root.path().join(dir_name(&engine.label)));
        for (w, &workload) in workloads.iter().enumerate() {
            let label = format!(
                "[{}/{total}] {} {}",
                e * workloads.len() + w + 1,
                engine.label,
                workload.name()
            );
            let row = run_one(&mut store, workload, config, &label, progress);
            let failed = row.error.is_some() && store.fill == Fill::Broken;
            rows.push(row);
            if failed {
                break;
            }
        }
        // A failure to close is the last row's problem; the directory goes away regardless.
        if let Err(e) = store.close()
            && let Some(last) = rows.last_mut()
            && last.error.is_none()
        {
            last.error = Some(format!("close: {e}"));
        }
    }
    progress.finish();
    Ok(rows)
}

/// What the runner knows about the store's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// No store yet, or one with no keys.
    Empty,
    /// Keys `0..num` are present (values may have been overwritten).
    Filled,
    /// Anything else: a fill or delete cut short by the time limit.
    Partial,
    /// The engine failed; the remaining workloads are skipped.
    Broken,
}

/// One engine's store, carried from workload to workload.
struct Store<'a> {
    engine: &'a ResolvedEngine,
    root: PathBuf,
    generation: u32,
    dir: PathBuf,
    db: Option<Box<dyn DynEngine>>,
    fill: Fill,
}

impl<'a> Store<'a> {
    fn new(engine: &'a ResolvedEngine, root: PathBuf) -> Self {
        Store {
            engine,
            dir: root.join("0"),
            root,
            generation: 0,
            db: None,
            fill: Fill::Empty,
        }
    }

    fn db(&self) -> Result<&dyn DynEngine> {
        self.db
            .as_deref()
            .ok_or_else(|| Error::InvalidArgument("the store is not open".into()))
    }

    fn open(&self, dir: &Path) -> Result<Box<dyn DynEngine>> {
        (self.engine.info.open)(dir, &self.engine.options)
    }

    /// Closes and removes the current store, then opens an empty one in a new directory.
    fn recreate(&mut self) -> Result<()> {
        self.close()?;
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        }
        self.generation += 1;
        self.dir = self.root.join(self.generation.to_string());
        self.db = Some(self.open(&self.dir)?);
        self.fill = Fill::Empty;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        match self.db.take() {
            Some(db) => db.close(),
            None => Ok(()),
        }
    }

    /// Makes sure the store is in the state `workload` starts from.
    fn prepare(
        &mut self,
        workload: BenchWorkload,
        config: &WorkloadConfig,
        progress: &dyn Progress,
    ) -> Result<()> {
        if !workload.needs_filled_store() {
            if self.fill != Fill::Empty || self.db.is_none() {
                self.recreate()?;
            }
            return Ok(());
        }
        if self.fill == Fill::Filled && self.db.is_some() {
            return Ok(());
        }
        progress.note("filling the store (untimed)");
        self.recreate()?;
        fill_seq(self.db()?, config)?;
        self.fill = Fill::Filled;
        progress.note("");
        Ok(())
    }
}

/// A directory name for an engine label (`sstable[search=linear]` → `sstable_search_linear_`).
fn dir_name(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Puts keys `0..num` in order, untimed.
fn fill_seq(db: &dyn DynEngine, config: &WorkloadConfig) -> Result<()> {
    for op in Workload::FillSeq.ops(config) {
        if let Op::Put { key, value } = op {
            db.put(&key, &value)?;
        }
    }
    Ok(())
}

/// Applies one workload operation to `db`, without checking its answer; returns the number
/// of entries it handled (1 for a put, get or delete; the entries read for a seek or scan).
/// The criterion benches use it; [`run`] times and checks each kind itself.
///
/// # Errors
/// Whatever the engine reports.
pub fn apply(db: &dyn DynEngine, op: &Op) -> Result<u64> {
    Ok(match op {
        Op::Put { key, value } => {
            db.put(key, value)?;
            1
        }
        Op::Get { key } => {
            db.get(key)?;
            1
        }
        Op::Delete { key } => {
            db.delete(key)?;
            1
        }
        Op::Seek { start, count } => {
            let mut n = 0;
            for item in db.scan(KeyRange::from(start.clone()))?.take(*count) {
                item?;
                n += 1;
            }
            n
        }
        Op::ScanAll => {
            let mut n = 0;
            for item in db.scan(KeyRange::all())? {
                item?;
                n += 1;
            }
            n
        }
    })
}

/// What the timed part of a workload produced, before the stats are added.
#[derive(Debug, Default)]
struct Outcome {
    /// Entries handled (what ops/s counts), when a rate makes sense.
    entries: Option<u64>,
    latency: Option<Latency>,
    elapsed: Duration,
    limited: bool,
    write_ops_per_sec: Option<f64>,
    open_ms: Option<f64>,
    open_after_kill_ms: Option<f64>,
    /// `recovery`: live keys in the store opened after the kill.
    live_keys_after_kill: Option<u64>,
    /// The store was reopened: its counters restarted, so deltas do not apply.
    reopened: bool,
    /// A wrong answer, found by the checks.
    wrong: Option<String>,
}

fn run_one(
    store: &mut Store<'_>,
    workload: BenchWorkload,
    config: &BenchConfig,
    label: &str,
    progress: &dyn Progress,
) -> Measurement {
    let engine = store.engine;
    let c = &config.workload;
    let mut row = Measurement {
        engine: engine.label.clone(),
        engine_name: engine.info.name.to_string(),
        settings: engine.settings_line(),
        workload: workload.name().to_string(),
        num: c.num,
        key_size: c.key_size,
        value_size: c.value_size,
        ..Measurement::default()
    };
    progress.start(label, planned_ops(workload, c));
    let result = (|| -> Result<Measured> {
        store.prepare(workload, c, progress)?;
        // The OS's count is read right before each `stats` call, because `stats` describes
        // the moment it is called: an engine reads its byte counter first, and background
        // work may go on writing while the rest of the call (a full scan, for `lsm`) runs.
        let os_before = memory::os_bytes_written();
        let before = store.db()?.stats()?;
        memory::reset_peak();
        let outcome = match workload {
            BenchWorkload::Standard(w) => standard(store.db()?, w, config, progress)?,
            BenchWorkload::FillThreads => fill_threads(store.db()?, config, progress)?,
            BenchWorkload::Scan => scan(store.db()?, config, progress)?,
            BenchWorkload::ReadWhileWriting => read_while_writing(store.db()?, config, progress)?,
            BenchWorkload::Recovery => recovery(store, config, progress)?,
            BenchWorkload::Compact => compact(store.db()?)?,
        };
        let peak = memory::peak_rss_bytes();
        let os_after = memory::os_bytes_written();
        let after = store.db()?.stats()?;
        Ok(Measured {
            outcome,
            before,
            after,
            os_written: os_before.zip(os_after).map(|(b, a)| a.saturating_sub(b)),
            peak,
        })
    })();
    match result {
        Err(e) => {
            store.fill = Fill::Broken;
            row.error = Some(e.to_string());
        }
        Ok(measured) => {
            store.fill = fill_after(workload, store.fill, measured.outcome.limited);
            fill_row(&mut row, measured);
        }
    }
    row.rss_bytes = memory::rss_bytes();
    row
}

/// The store's state after `workload` ran on a store in state `before`.
fn fill_after(workload: BenchWorkload, before: Fill, limited: bool) -> Fill {
    match workload {
        BenchWorkload::Standard(Workload::FillSeq | Workload::FillRandom)
        | BenchWorkload::FillThreads
            if limited =>
        {
            Fill::Partial
        }
        BenchWorkload::Standard(Workload::FillSeq | Workload::FillRandom)
        | BenchWorkload::FillThreads => Fill::Filled,
        BenchWorkload::Standard(Workload::DeleteRandom) if limited => Fill::Partial,
        BenchWorkload::Standard(Workload::DeleteRandom) => Fill::Empty,
        _ => before,
    }
}

/// A workload's outcome with what was read around it.
struct Measured {
    outcome: Outcome,
    /// The engine's stats before and after the timed part.
    before: Stats,
    after: Stats,
    /// Bytes the OS counted the process writing during it.
    os_written: Option<u64>,
    /// Peak resident memory during it.
    peak: Option<u64>,
}

fn fill_row(row: &mut Measurement, measured: Measured) {
    let Measured {
        outcome,
        before,
        after,
        os_written,
        peak,
    } = measured;
    let (before, after) = (&before, &after);
    let secs = outcome.elapsed.as_secs_f64();
    row.ops = outcome.entries.unwrap_or(0);
    row.elapsed_secs = secs;
    row.time_limited = outcome.limited;
    row.ops_per_sec = outcome
        .entries
        .filter(|_| secs > 0.0)
        .map(|n| n as f64 / secs);
    if let Some(latency) = &outcome.latency {
        row.p50_us = latency.quantile_us(0.5);
        row.p99_us = latency.quantile_us(0.99);
        row.p999_us = latency.quantile_us(0.999);
    }
    let delta = |f: fn(&Stats) -> u64| f(after).saturating_sub(f(before));
    if outcome.reopened {
        // The counters restarted at the reopen: report what the open itself wrote.
        row.disk_bytes_written = after.disk_bytes_written;
    } else {
        row.disk_bytes_written = delta(|s| s.disk_bytes_written);
        row.write_amp = ratio(row.disk_bytes_written, delta(|s| s.user_bytes_written));
        row.read_amp = ratio(delta(|s| s.get_disk_reads), delta(|s| s.gets));
        if row.read_amp.is_some() && flag(after, "read_amp_unknown") {
            // The engine cannot count its disk reads: its 0 would read as "no reads".
            row.read_amp = None;
            row.read_amp_unknown = true;
        }
        row.os_bytes_written = os_written;
        // An engine whose figure is the OS's own count has nothing to be checked against.
        row.io_mismatch = !flag(after, "disk_bytes_written_from_os")
            && os_written.is_some_and(|os| memory::io_mismatch(row.disk_bytes_written, os));
    }
    row.space_amp = after.space_amp();
    row.peak_rss_bytes = peak;
    row.disk_bytes = after.disk_bytes;
    row.file_count = after.file_count;
    row.live_keys = after.live_keys;
    row.write_ops_per_sec = outcome.write_ops_per_sec;
    row.open_ms = outcome.open_ms;
    row.open_after_kill_ms = outcome.open_after_kill_ms;
    row.live_keys_after_kill = outcome.live_keys_after_kill;
    row.extra = after.extra.clone();
    row.error = outcome.wrong;
}

/// True when the engine sets `extra[name]` to 1 (see [`kv_shared::Stats::extra`]).
fn flag(stats: &Stats, name: &str) -> bool {
    stats.extra.get(name) == Some(&1)
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The number of operations the progress bar counts for `workload`.
fn planned_ops(workload: BenchWorkload, c: &WorkloadConfig) -> u64 {
    match workload {
        BenchWorkload::Standard(Workload::ReadSeq) => c.num,
        BenchWorkload::Standard(w) => w.ops(c).total(),
        BenchWorkload::Scan => scans(c.num),
        BenchWorkload::FillThreads | BenchWorkload::ReadWhileWriting => c.num,
        BenchWorkload::Recovery => 2,
        BenchWorkload::Compact => 1,
    }
}

fn scans(num: u64) -> u64 {
    (num / SCAN_KEYS).max(1)
}

/// Counts operations against the time limit and reports progress every so often.
struct Clock<'a> {
    start: Instant,
    deadline: Option<Instant>,
    progress: &'a dyn Progress,
    done: u64,
    reported: Instant,
}

/// How often the progress bar is told about slow operations (fast ones report every 1024).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

impl<'a> Clock<'a> {
    fn start(config: &BenchConfig, progress: &'a dyn Progress) -> Self {
        let start = Instant::now();
        Clock {
            start,
            deadline: config.time_limit.map(|limit| start + limit),
            progress,
            done: 0,
            reported: start,
        }
    }

    /// Counts one operation that ended at `now`; true when the time limit has passed.
    fn tick(&mut self, now: Instant) -> bool {
        self.done += 1;
        if self.done.is_multiple_of(1024) || now - self.reported >= PROGRESS_EVERY {
            self.progress.set(self.done);
            self.reported = now;
        }
        self.deadline.is_some_and(|d| now >= d)
    }
}

/// The eight db_bench workloads.
fn standard(
    db: &dyn DynEngine,
    workload: Workload,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let c = &config.workload;
    let mut latency = Latency::new();
    let mut clock = Clock::start(config, progress);
    let (mut entries, mut found, mut wrong_size, mut limited) = (0u64, 0u64, 0u64, false);
    let mut wrong = None;
    for op in workload.ops(c) {
        let t = Instant::now();
        let handled = match op {
            Op::Put { key, value } => {
                db.put(&key, &value)?;
                1
            }
            Op::Delete { key } => {
                db.delete(&key)?;
                1
            }
            Op::Get { key } => {
                if let Some(value) = db.get(&key)? {
                    found += 1;
                    wrong_size += u64::from(value.len() != c.value_size);
                }
                1
            }
            Op::Seek { start, count } => {
                let mut first = None;
                let mut n = 0;
                for item in db.scan(KeyRange::from(start.clone()))?.take(count) {
                    let (key, _) = item?;
                    first.get_or_insert(key);
                    n += 1;
                }
                if first.as_deref() != Some(start.as_slice()) && wrong.is_none() {
                    wrong = Some(format!(
                        "seekrandom: a seek to existing key {} did not return it first",
                        kv_shared::dump::quoted(&start, 32)
                    ));
                }
                n
            }
            Op::ScanAll => {
                let outcome = scan_all(db, c, &mut latency, &mut clock)?;
                return Ok(Outcome {
                    elapsed: clock.start.elapsed(),
                    latency: Some(latency),
                    ..outcome
                });
            }
        };
        let now = Instant::now();
        latency.record(now - t);
        entries += handled;
        if clock.tick(now) {
            limited = true;
            break;
        }
    }
    let elapsed = clock.start.elapsed();
    let gets = latency.count();
    if wrong.is_none() {
        wrong = match workload {
            Workload::ReadRandom if found < gets => Some(format!(
                "readrandom: {} of {gets} gets of existing keys found nothing",
                gets - found
            )),
            Workload::ReadMissing if found > 0 => Some(format!(
                "readmissing: {found} of {gets} gets of never-written keys found a value"
            )),
            _ if wrong_size > 0 => Some(format!(
                "{}: {wrong_size} values read back with a size other than {}",
                workload.name(),
                c.value_size
            )),
            _ => None,
        };
    }
    Ok(Outcome {
        entries: Some(entries),
        latency: Some(latency),
        elapsed,
        limited,
        wrong,
        ..Outcome::default()
    })
}

/// `readseq`: one full scan, each step timed as one operation.
fn scan_all(
    db: &dyn DynEngine,
    c: &WorkloadConfig,
    latency: &mut Latency,
    clock: &mut Clock<'_>,
) -> Result<Outcome> {
    let mut iter = db.scan(KeyRange::all())?;
    let (mut entries, mut limited, mut wrong) = (0u64, false, None);
    let mut previous: Option<Vec<u8>> = None;
    loop {
        let t = Instant::now();
        let Some(item) = iter.next() else { break };
        let (key, _) = item?;
        let now = Instant::now();
        latency.record(now - t);
        entries += 1;
        if wrong.is_none() && previous.as_ref().is_some_and(|p| *p >= key) {
            wrong = Some("readseq: keys came out of order".to_string());
        }
        previous = Some(key);
        if clock.tick(now) {
            limited = true;
            break;
        }
    }
    if wrong.is_none() && !limited && entries != c.num {
        wrong = Some(format!(
            "readseq: the scan returned {entries} entries, the store holds {}",
            c.num
        ));
    }
    Ok(Outcome {
        entries: Some(entries),
        limited,
        wrong,
        ..Outcome::default()
    })
}

/// `scan`: bounded range scans of [`SCAN_KEYS`] keys from random starts.
fn scan(db: &dyn DynEngine, config: &BenchConfig, progress: &dyn Progress) -> Result<Outcome> {
    let c = &config.workload;
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x5CA7_5CA7);
    let mut latency = Latency::new();
    let mut clock = Clock::start(config, progress);
    let (mut entries, mut limited, mut wrong) = (0u64, false, None);
    for _ in 0..scans(c.num) {
        let i = rng.random_range(0..c.num.max(1));
        let end = if i + SCAN_KEYS < c.num {
            Bound::Excluded(key(i + SCAN_KEYS, c.key_size))
        } else {
            Bound::Unbounded
        };
        let t = Instant::now();
        let range = KeyRange::new(Bound::Included(key(i, c.key_size)), end);
        let mut n = 0u64;
        for item in db.scan(range)? {
            item?;
            n += 1;
        }
        let now = Instant::now();
        latency.record(now - t);
        entries += n;
        let expected = SCAN_KEYS.min(c.num - i);
        if n != expected && wrong.is_none() {
            wrong = Some(format!(
                "scan: the range from key {i} returned {n} entries, it holds {expected}"
            ));
        }
        if clock.tick(now) {
            limited = true;
            break;
        }
    }
    Ok(Outcome {
        entries: Some(entries),
        latency: Some(latency),
        elapsed: clock.start.elapsed(),
        limited,
        wrong,
        ..Outcome::default()
    })
}

/// `fillthreads`: `fillrandom`'s puts, made by [`BenchConfig::threads`] writer threads that
/// take them from one shared sequence, [`FILL_CHUNK`] at a time (so the keys are generated
/// once, as in `fillrandom`, and the threads finish together). This thread reports progress.
fn fill_threads(
    db: &dyn DynEngine,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let c = &config.workload;
    let start = Instant::now();
    let deadline = config.time_limit.map(|limit| start + limit);
    let ops = Mutex::new(Workload::FillRandom.ops(c));
    let (done, limited) = (AtomicU64::new(0), AtomicBool::new(false));
    let writer = || -> Result<Latency> {
        let mut latency = Latency::new();
        while !limited.load(Ordering::Relaxed) {
            let chunk: Vec<Op> = ops
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .by_ref()
                .take(FILL_CHUNK)
                .collect();
            if chunk.is_empty() {
                break;
            }
            for op in chunk {
                if let Op::Put { key, value } = op {
                    let t = Instant::now();
                    db.put(&key, &value)?;
                    let now = Instant::now();
                    latency.record(now - t);
                    done.fetch_add(1, Ordering::Relaxed);
                    if deadline.is_some_and(|d| now >= d) {
                        limited.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        Ok(latency)
    };
    let results: Vec<Result<Latency>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..config.threads.max(1))
            .map(|_| s.spawn(writer))
            .collect();
        while !threads.iter().all(|t| t.is_finished()) {
            progress.set(done.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(20));
        }
        threads
            .into_iter()
            .map(|t| {
                t.join().unwrap_or_else(|_| {
                    Err(Error::InvalidArgument("a writer thread panicked".into()))
                })
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut latency = Latency::new();
    for result in results {
        latency.merge(&result?);
    }
    Ok(Outcome {
        entries: Some(done.into_inner()),
        latency: Some(latency),
        elapsed,
        limited: limited.into_inner(),
        ..Outcome::default()
    })
}

/// `readwhilewriting`: `num` random gets on this thread while a second thread overwrites
/// random keys until the reads are done.
fn read_while_writing(
    db: &dyn DynEngine,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let c = &config.workload;
    let stop = AtomicBool::new(false);
    let writing = AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| -> Result<(u64, Duration)> {
            let start = Instant::now();
            let mut writes = 0u64;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let round_config = WorkloadConfig {
                    seed: c.seed.wrapping_add(round),
                    ..c.clone()
                };
                for op in Workload::Overwrite.ops(&round_config) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Op::Put { key, value } = op {
                        db.put(&key, &value)?;
                        writes += 1;
                        writing.store(true, Ordering::Relaxed);
                    }
                }
                round += 1;
            }
            Ok((writes, start.elapsed()))
        });
        // The reads start once the writer is writing, so that they all overlap it.
        while !writing.load(Ordering::Relaxed) && !writer.is_finished() {
            std::thread::yield_now();
        }
        let reads = standard(db, Workload::ReadRandom, config, progress);
        stop.store(true, Ordering::Relaxed);
        let written = writer
            .join()
            .map_err(|_| Error::InvalidArgument("the writer thread panicked".into()))?;
        let mut outcome = reads?;
        let (writes, took) = written?;
        outcome.write_ops_per_sec =
            (took.as_secs_f64() > 0.0).then(|| writes as f64 / took.as_secs_f64());
        if let Some(wrong) = &mut outcome.wrong {
            *wrong = wrong.replace("readrandom", "readwhilewriting");
        }
        Ok(outcome)
    })
}

/// `recovery`: close the filled store, time its reopening; then time the opening of a store
/// whose writer was killed, when a helper process is available.
fn recovery(
    store: &mut Store<'_>,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let c = &config.workload;
    store.close()?;
    let t = Instant::now();
    let db = store.open(&store.dir)?;
    let open = t.elapsed();
    store.db = Some(db);
    progress.set(1);
    let mut wrong = check_live_keys(store.db()?, c.num, "after a clean close")?;
    let (mut open_after_kill_ms, mut live_keys_after_kill) = (None, None);
    if let Some(helper) = &config.kill_helper {
        progress.note("a child process fills a store and is killed (untimed)");
        let dir = store.root.join("killed");
        let spec = spec_with_settings(store.engine);
        kill_while_open(helper, &spec, &dir, c)?;
        let t = Instant::now();
        let db = store.open(&dir)?;
        open_after_kill_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
        let live = db.stats().map(|s| s.live_keys);
        let closed = db.close();
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let live = live?;
        live_keys_after_kill = Some(live);
        wrong = wrong.or(after_kill_error(store.engine.info.name, live, c.num));
        closed?;
        progress.note("");
    }
    Ok(Outcome {
        entries: Some(c.num),
        elapsed: open,
        open_ms: Some(open.as_secs_f64() * 1000.0),
        open_after_kill_ms,
        live_keys_after_kill,
        reopened: true,
        wrong,
        ..Outcome::default()
    })
}

fn check_live_keys(db: &dyn DynEngine, num: u64, when: &str) -> Result<Option<String>> {
    let live = db.stats()?.live_keys;
    Ok((live != num).then(|| {
        format!("recovery: the store opened {when} holds {live} live keys, expected {num}")
    }))
}

/// The error, if any, of a store of engine `name` that holds `live` keys when opened after
/// its writer put `num` and was killed. Missing keys are an error unless the engine is a
/// peer that does not survive a kill as configured ([`crate::peers::Peer::survives_kill`]
/// false: sled, redb), for which the report notes them instead; extra keys are always an
/// error.
pub fn after_kill_error(name: &str, live: u64, num: u64) -> Option<String> {
    let durable = crate::peers::find(name).is_none_or(|peer| peer.survives_kill);
    let excused = live < num && !durable;
    (live != num && !excused).then(|| {
        format!("recovery: the store opened after a kill holds {live} live keys, expected {num}")
    })
}

/// The engine's spec with every effective setting spelled out, for a child process.
fn spec_with_settings(engine: &ResolvedEngine) -> String {
    let spec = crate::engine_spec::EngineSpec {
        name: engine.info.name.to_string(),
        settings: engine.settings.clone(),
    };
    spec.label()
}

/// Runs `helper --fill-then-wait` on `dir`, waits until it says the store is filled, and
/// kills it (SIGKILL on Unix): the store is left exactly as a crashed process leaves it.
fn kill_while_open(helper: &Path, spec: &str, dir: &Path, c: &WorkloadConfig) -> Result<()> {
    let io = |e: std::io::Error| Error::io(helper, e);
    let mut child = Command::new(helper)
        .arg("--fill-then-wait")
        .args(["--engines", spec])
        .arg("--dir")
        .arg(dir)
        .args(["--num", &c.num.to_string()])
        .args(["--key-size", &c.key_size.to_string()])
        .args(["--value-size", &c.value_size.to_string()])
        .args(["--seed", &c.seed.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io)?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line).map_err(io)?;
    }
    child.kill().map_err(io)?;
    child.wait().map_err(io)?;
    if line.trim() != "READY" {
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        return Err(Error::InvalidArgument(format!(
            "the fill-and-kill helper did not fill its store: {}",
            stderr.trim()
        )));
    }
    Ok(())
}

/// The child's half of the `recovery` workload: opens `dir`, puts keys `0..num` in order,
/// prints `READY` on `out`, then waits for `input` to end without closing the store. The
/// parent kills the process while it waits.
///
/// # Errors
/// Whatever the engine reports, and an output failure.
pub fn fill_then_wait(
    engine: &ResolvedEngine,
    dir: &Path,
    config: &WorkloadConfig,
    mut input: impl Read,
    mut out: impl Write,
) -> Result<()> {
    let db = (engine.info.open)(dir, &engine.options)?;
    fill_seq(db.as_ref(), config)?;
    let io = |e: std::io::Error| Error::io("<standard output>", e);
    writeln!(out, "READY").map_err(io)?;
    out.flush().map_err(io)?;
    let mut sink = Vec::new();
    let _ = input.read_to_end(&mut sink);
    db.close()
}

/// The measurement of `compact`: one call, timed.
fn compact(db: &dyn DynEngine) -> Result<Outcome> {
    let t = Instant::now();
    db.compact()?;
    Ok(Outcome {
        elapsed: t.elapsed(),
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lost_to_a_kill_are_an_error_only_for_engines_that_survive_kills() {
        assert_eq!(after_kill_error("hashlog", 100, 100), None);
        assert_eq!(
            after_kill_error("hashlog", 99, 100).as_deref(),
            Some("recovery: the store opened after a kill holds 99 live keys, expected 100")
        );
        assert!(after_kill_error("fjall", 99, 100).is_some());
        assert!(after_kill_error("rocksdb", 99, 100).is_some());
        assert_eq!(after_kill_error("sled", 99, 100), None);
        assert_eq!(after_kill_error("redb", 0, 100), None);
        // More keys than were written is wrong for every engine.
        assert!(after_kill_error("sled", 101, 100).is_some());
    }

    #[test]
    fn store_state_follows_the_workloads() {
        let fill = BenchWorkload::Standard(Workload::FillRandom);
        let delete = BenchWorkload::Standard(Workload::DeleteRandom);
        let read = BenchWorkload::Standard(Workload::ReadRandom);
        assert_eq!(fill_after(fill, Fill::Empty, false), Fill::Filled);
        assert_eq!(fill_after(fill, Fill::Empty, true), Fill::Partial);
        assert_eq!(fill_after(read, Fill::Filled, true), Fill::Filled);
        assert_eq!(fill_after(delete, Fill::Filled, false), Fill::Empty);
        assert_eq!(fill_after(delete, Fill::Filled, true), Fill::Partial);
        assert_eq!(dir_name("sstable[search=linear]"), "sstable_search_linear_");
    }
}

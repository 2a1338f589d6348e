//! Running workloads on engines and measuring them.
//!
//! For each engine, [`run`] takes the workloads in the order given, on one store that is
//! carried from one workload to the next:
//!
//! * The fills (`fillseq`, `fillrandom`, `fillbatch`, `bulkload` and `fillthreads`) start
//!   from an **empty store**: when the store holds anything, it is closed, its directory
//!   removed, and a new one created.
//! * Every other workload needs a **filled store** (keys `0..num` present). It runs on the
//!   store the previous workload left when that store is known to be filled; otherwise (no
//!   store yet, a `deleterandom` emptied it, or the time limit cut a fill or delete short) a
//!   new store is created and filled first, untimed, with `fillseq`'s pairs in write batches
//!   of 1,000.
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
//! number of keys the range holds, in order, and a reopened store holds `num` live keys.
//! The two fills that hand the engine many pairs per call, `fillbatch` and `bulkload`, read
//! a sample of about 1,000 of their pairs back afterwards (untimed), and `bulkload` checks
//! that the engine's load report counts the pairs it was given. A wrong answer is reported as the row's error, beside its figures. One exception: a peer
//! that is not durable against a kill as configured (sled, redb; see
//! [`crate::peers::Peer::survives_kill`]) may lose its latest keys to the `recovery`
//! workload's kill, which the row notes ([`Measurement::live_keys_after_kill`]) rather than
//! reports as an error.
//!
//! Engine failures do not stop the run: the failing row records the error, the engine's
//! remaining workloads are skipped, and the next engine runs.
//!
//! **Disk.** An engine's stores are removed as soon as its last workload is done, so one
//! engine's data is on disk at a time: a run of five engines on 1 GiB of values needs the
//! room of one store (with its space amplification), not five.

//! ## Files
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`run`]: the engines and workloads in order, one row each; the time limit (`Clock`) |
//! | `store.rs` | the store carried from workload to workload: recreated, filled, and what each workload leaves in it |
//! | `row.rs` | a workload's outcome and the engine's stats around it, turned into a [`Measurement`] |
//! | `standard.rs` | the eight db_bench workloads (and [`apply`], their unchecked form) |
//! | `scan.rs` | `scan` |
//! | `fill_threads.rs` | `fillthreads` |
//! | `fill_batch.rs` | `fillbatch` |
//! | `bulk_load.rs` | `bulkload`, and the disk bandwidth it is held against, measured once per run |
//! | `sample.rs` | the pairs `fillbatch` and `bulkload` read back after their timed part |
//! | `read_while_writing.rs` | `readwhilewriting` |
//! | `recovery.rs` | `recovery`, and [`fill_then_wait`], the killed child's half of it |
//! | `compact.rs` | `compact` |

mod bulk_load;
mod compact;
mod fill_batch;
mod fill_threads;
mod read_while_writing;
mod recovery;
mod row;
mod sample;
mod scan;
mod standard;
mod store;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kv_shared::{Error, Result};

use crate::bench_workload::BenchWorkload;
use crate::engine_spec::ResolvedEngine;
use crate::latency::Latency;
use crate::measurement::Measurement;
use crate::memory;
use crate::progress::Progress;
use crate::workload::{Workload, WorkloadConfig};
use bulk_load::DiskYardstick;
use row::{Measured, fill_row};
use store::{Fill, Store, dir_name, fill_after};

pub use recovery::{after_kill_error, fill_then_wait};
pub use standard::apply;

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
    let mut disk = DiskYardstick::new(root.path().to_path_buf());
    // Each engine starts on a quiet disk: what was written before the run is on the disk
    // now, and each engine's stores are settled as they are removed (`remove_stores`).
    crate::disk_bandwidth::settle(root.path())?;
    for (e, engine) in engines.iter().enumerate() {
        let mut store = Store::new(engine, root.path().join(dir_name(&engine.label)));
        for (w, &workload) in workloads.iter().enumerate() {
            let label = format!(
                "[{}/{total}] {} {}",
                e * workloads.len() + w + 1,
                engine.label,
                workload.name()
            );
            let row = run_one(&mut store, workload, config, &mut disk, &label, progress);
            let failed = row.error.is_some() && store.fill == Fill::Broken;
            rows.push(row);
            if failed {
                break;
            }
        }
        // A failure to close or remove is the last row's problem. The engine's stores go
        // now, not with the run's directory: only one engine's data is on disk at a time.
        let closed = store.close().map_err(|e| format!("close: {e}"));
        let removed = remove_stores(&store.root).map_err(|e| format!("removing the store: {e}"));
        if let Err(e) = closed.and(removed)
            && let Some(last) = rows.last_mut()
            && last.error.is_none()
        {
            last.error = Some(e);
        }
    }
    progress.finish();
    Ok(rows)
}

/// Removes the directory `root` holding one engine's stores, if it exists, and waits until
/// the removal is on the disk ([`crate::disk_bandwidth::settle`]), so that the next engine
/// does not pay for it.
fn remove_stores(root: &std::path::Path) -> Result<()> {
    match std::fs::remove_dir_all(root) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(root, e)),
        _ => {}
    }
    match root.parent() {
        Some(parent) if parent.exists() => crate::disk_bandwidth::settle(parent),
        _ => Ok(()),
    }
}

/// What the timed part of a workload produced, before the stats are added.
#[derive(Debug, Default)]
struct Outcome {
    /// Entries handled (what ops/s counts), when a rate makes sense.
    entries: Option<u64>,
    /// Per-operation latencies, for the workloads that time each operation.
    latency: Option<Latency>,
    /// The timed part's duration.
    elapsed: Duration,
    /// The time limit cut the workload short.
    limited: bool,
    /// `readwhilewriting`: the writer thread's rate.
    write_ops_per_sec: Option<f64>,
    /// `bulkload`: the load's key and value megabytes per second.
    mb_per_sec: Option<f64>,
    /// `bulkload`: the disk's sequential write bandwidth, in megabytes per second.
    disk_mb_per_sec: Option<f64>,
    /// `recovery`: the clean open's time.
    open_ms: Option<f64>,
    /// `recovery`: the time to open the store whose writer was killed.
    open_after_kill_ms: Option<f64>,
    /// `recovery`: live keys in the store opened after the kill.
    live_keys_after_kill: Option<u64>,
    /// The store was reopened: its counters restarted, so deltas do not apply.
    reopened: bool,
    /// A wrong answer, found by the checks.
    wrong: Option<String>,
}

impl Outcome {
    /// The outcome of a workload timed operation by operation: `entries` handled in
    /// `elapsed`, each operation's latency, whether the time limit cut it short, and its
    /// wrong answer if any.
    fn timed(
        entries: u64,
        latency: Latency,
        elapsed: Duration,
        limited: bool,
        wrong: Option<String>,
    ) -> Outcome {
        Outcome {
            entries: Some(entries),
            latency: Some(latency),
            elapsed,
            limited,
            wrong,
            ..Outcome::default()
        }
    }
}

/// Runs `workload` on `store` and returns its row (with the error, if it failed); `disk` is
/// the run's disk bandwidth, for `bulkload`.
fn run_one(
    store: &mut Store<'_>,
    workload: BenchWorkload,
    config: &BenchConfig,
    disk: &mut DiskYardstick,
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
    match measure(store, workload, config, disk, progress) {
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

/// Prepares the store for `workload` (and, for `bulkload`, the disk's bandwidth), runs it,
/// and reads the engine's stats, the OS's count of bytes written and the peak memory around
/// the timed part.
fn measure(
    store: &mut Store<'_>,
    workload: BenchWorkload,
    config: &BenchConfig,
    disk: &mut DiskYardstick,
    progress: &dyn Progress,
) -> Result<Measured> {
    store.prepare(workload, &config.workload, progress)?;
    let bandwidth = match workload {
        BenchWorkload::BulkLoad => Some(disk.get(&config.workload, progress)?),
        _ => None,
    };
    // The OS's count is read right before each `stats` call, because `stats` describes
    // the moment it is called: an engine reads its byte counter first, and background
    // work may go on writing while the rest of the call (a full scan, for `lsm`) runs.
    let os_before = memory::os_bytes_written();
    let before = store.db()?.stats()?;
    memory::reset_peak();
    let outcome = match workload {
        BenchWorkload::Standard(w) => standard::standard(store.db()?, w, config, progress)?,
        BenchWorkload::FillBatch => fill_batch::fill_batch(store.db()?, config, progress)?,
        BenchWorkload::BulkLoad => bulk_load::bulk_load(store.db()?, config, progress, bandwidth)?,
        BenchWorkload::FillThreads => fill_threads::fill_threads(store.db()?, config, progress)?,
        BenchWorkload::Scan => scan::scan(store.db()?, config, progress)?,
        BenchWorkload::ReadWhileWriting => {
            read_while_writing::read_while_writing(store.db()?, config, progress)?
        }
        BenchWorkload::Recovery => recovery::recovery(store, config, progress)?,
        BenchWorkload::Compact => compact::compact(store.db()?)?,
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
}

/// The number of operations the progress bar counts for `workload`.
fn planned_ops(workload: BenchWorkload, c: &WorkloadConfig) -> u64 {
    match workload {
        BenchWorkload::Standard(Workload::ReadSeq) => c.num,
        BenchWorkload::Standard(w) => w.ops(c).total(),
        BenchWorkload::Scan => scan::scans(c.num),
        BenchWorkload::FillBatch
        | BenchWorkload::BulkLoad
        | BenchWorkload::FillThreads
        | BenchWorkload::ReadWhileWriting => c.num,
        BenchWorkload::Recovery => 2,
        BenchWorkload::Compact => 1,
    }
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
    /// A clock started now, with the run's time limit.
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
        self.tick_by(1, now)
    }

    /// Counts `n` operations (a batch's pairs) that ended at `now`; true when the time limit
    /// has passed.
    fn tick_by(&mut self, n: u64, now: Instant) -> bool {
        let before = self.done;
        self.done += n;
        if before / 1024 != self.done / 1024 || now - self.reported >= PROGRESS_EVERY {
            self.progress.set(self.done);
            self.reported = now;
        }
        self.deadline.is_some_and(|d| now >= d)
    }

    /// The time since the clock started.
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

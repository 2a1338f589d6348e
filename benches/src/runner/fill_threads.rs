//! `fillthreads`: `fillrandom`'s puts into an empty store, made by
//! [`BenchConfig::threads`] writer threads that take them from one shared sequence,
//! [`FILL_CHUNK`] at a time (so the keys are generated once, as in `fillrandom`, and the
//! threads finish together). Every put is timed; the calling thread reports progress.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kv_shared::{DynEngine, Error, Result};

use super::{BenchConfig, Outcome};
use crate::bench_workload::FILL_CHUNK;
use crate::latency::Latency;
use crate::progress::Progress;
use crate::workload::{Op, Ops, Workload};

/// Runs `fillthreads`; see the module doc.
pub(super) fn fill_threads(
    db: &dyn DynEngine,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let start = Instant::now();
    let shared = SharedFill {
        ops: Mutex::new(Workload::FillRandom.ops(&config.workload)),
        deadline: config.time_limit.map(|limit| start + limit),
        done: AtomicU64::new(0),
        limited: AtomicBool::new(false),
    };
    let results: Vec<Result<Latency>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..config.threads.max(1))
            .map(|_| s.spawn(|| shared.write(db)))
            .collect();
        while !threads.iter().all(|t| t.is_finished()) {
            progress.set(shared.done.load(Ordering::Relaxed));
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
        entries: Some(shared.done.into_inner()),
        latency: Some(latency),
        elapsed,
        limited: shared.limited.into_inner(),
        ..Outcome::default()
    })
}

/// What the writer threads share: the one sequence of puts, the deadline, and the count of
/// puts done.
struct SharedFill {
    ops: Mutex<Ops>,
    deadline: Option<Instant>,
    done: AtomicU64,
    /// Set by the first writer to pass the deadline; every writer then stops.
    limited: AtomicBool,
}

impl SharedFill {
    /// One writer thread: takes chunks of puts until none are left or the time is up, and
    /// returns the latency of each.
    fn write(&self, db: &dyn DynEngine) -> Result<Latency> {
        let mut latency = Latency::new();
        while !self.limited.load(Ordering::Relaxed) {
            let chunk: Vec<Op> = self
                .ops
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
                    self.done.fetch_add(1, Ordering::Relaxed);
                    if self.deadline.is_some_and(|d| now >= d) {
                        self.limited.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        Ok(latency)
    }
}

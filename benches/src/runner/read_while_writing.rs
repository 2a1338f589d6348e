//! `readwhilewriting`: `num` random gets on this thread while a second thread overwrites
//! random keys until the reads are done. The gets are timed and checked as `readrandom`'s
//! are; the writes' rate is reported beside them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kv_shared::{DynEngine, Error, Result};

use super::standard::standard;
use super::{BenchConfig, Outcome};
use crate::progress::Progress;
use crate::workload::{Op, Workload, WorkloadConfig};

/// Runs the reads of `readwhilewriting` against a writer thread; see the module doc.
pub(super) fn read_while_writing(
    db: &dyn DynEngine,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let stop = AtomicBool::new(false);
    let writing = AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| overwrite_until(db, &config.workload, &stop, &writing));
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

/// The writer thread: rounds of `overwrite` (a new seed each round) until `stop`; sets
/// `writing` after its first put. Returns the puts made and the time they took.
fn overwrite_until(
    db: &dyn DynEngine,
    c: &WorkloadConfig,
    stop: &AtomicBool,
    writing: &AtomicBool,
) -> Result<(u64, Duration)> {
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
}

//! `fillbatch`, as db_bench's: `fillseq`'s puts (keys `0..num` in order, the same values)
//! into an empty store, grouped into [`WriteBatch`]es of [`BATCH_PAIRS`] and handed to the
//! engine's `write`, one atomic batch at a time.
//!
//! Against `fillseq`, it shows what an engine saves when it gets many puts in one call: one
//! log record (and, for an engine that syncs, one sync) for a thousand pairs, one lock taken
//! once. Keys are sequential, as in db_bench (whose `fillbatch` writes sequential keys), so
//! the difference from `fillseq` is the batching alone.
//!
//! Each `write` call is timed as one operation (the latency columns are per batch of
//! [`BATCH_PAIRS`]); ops/s counts pairs. No sync at the end, as for the other fills. After
//! the timed part a [`Sample`] of the pairs is read back.

use std::time::Instant;

use kv_shared::{DynEngine, Result, WriteBatch};

use super::sample::Sample;
use super::{BenchConfig, Clock, Outcome};
use crate::bench_workload::BATCH_PAIRS;
use crate::latency::Latency;
use crate::progress::Progress;
use crate::workload::{Op, Workload};

/// Runs `fillbatch`; see the module doc.
///
/// # Errors
/// Whatever the engine's `write` and `get` report.
pub(super) fn fill_batch(
    db: &dyn DynEngine,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let c = &config.workload;
    let mut latency = Latency::new();
    let mut sample = Sample::new(c.num);
    let mut ops = Workload::FillSeq.ops(c);
    let mut batch = WriteBatch::new();
    let (mut written, mut limited) = (0u64, false);
    let mut clock = Clock::start(config, progress);
    loop {
        batch.clear();
        for op in ops.by_ref().take(BATCH_PAIRS) {
            if let Op::Put { key, value } = op {
                sample.note(written + batch.len() as u64, &key, &value);
                batch.put(&key, &value)?;
            }
        }
        if batch.is_empty() {
            break;
        }
        let t = Instant::now();
        db.write(&batch)?;
        let now = Instant::now();
        latency.record(now - t);
        written += batch.len() as u64;
        if clock.tick_by(batch.len() as u64, now) {
            limited = true;
            break;
        }
    }
    let elapsed = clock.elapsed();
    let wrong = sample.check(db, "fillbatch")?;
    Ok(Outcome::timed(written, latency, elapsed, limited, wrong))
}

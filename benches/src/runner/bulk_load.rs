//! `bulkload`: one [`DynEngine::load`] of keys `0..num` into an empty store, in order
//! ([`LoadOrder::Sorted`]), with `fillseq`'s values.
//!
//! The pairs are made as the engine asks for them ([`Input`], an iterator over
//! `fillseq`'s operations), never gathered into one vector first: the load's memory is the
//! engine's own. The timed part is the whole `load` call, which ends with the data durable
//! (see [`kv_shared::bulk`]); making the pairs is inside it, as it is inside every other
//! workload's time. The time limit is checked as each pair is made: past it, the input ends
//! early, the engine finishes loading what it got, and the row is marked cut short.
//!
//! Besides pairs per second, the row gives the load's key and value megabytes per second
//! and holds them against the disk's sequential write bandwidth ([`DiskYardstick`],
//! measured once per run before the first `bulkload`, untimed): `disk_fraction` is the
//! share of the disk's speed the load reached.
//!
//! Checks, after the timed part: the engine's [`kv_shared::LoadReport`] counts exactly the
//! pairs the input gave, and a [`Sample`] of the pairs reads back right.

use std::path::PathBuf;
use std::time::Instant;

use kv_shared::{DynEngine, LoadOrder, Result};

use super::sample::Sample;
use super::{BenchConfig, Clock, Outcome};
use crate::disk_bandwidth::{self, DiskBandwidth};
use crate::progress::Progress;
use crate::workload::{Op, Ops, Workload, WorkloadConfig};

/// The disk's sequential write bandwidth for a run: measured the first time a `bulkload`
/// asks for it, in the directory the run's stores live in, then kept.
#[derive(Debug)]
pub(super) struct DiskYardstick {
    dir: PathBuf,
    measured: Option<DiskBandwidth>,
}

impl DiskYardstick {
    /// A yardstick for stores under `dir`, not measured yet.
    pub(super) fn new(dir: PathBuf) -> Self {
        DiskYardstick {
            dir,
            measured: None,
        }
    }

    /// The bandwidth, measured now (untimed) if it has not been yet, with a probe the size
    /// of the load of `c` ([`disk_bandwidth::probe_bytes`]).
    ///
    /// # Errors
    /// [`kv_shared::Error::Io`] from the measurement; a failed measurement is tried again
    /// by the next `bulkload`.
    pub(super) fn get(
        &mut self,
        c: &WorkloadConfig,
        progress: &dyn Progress,
    ) -> Result<DiskBandwidth> {
        if let Some(measured) = self.measured {
            return Ok(measured);
        }
        progress.note("measuring the disk's sequential write bandwidth (untimed)");
        let load_bytes = c.num.saturating_mul((c.key_size + c.value_size) as u64);
        let measured = disk_bandwidth::measure(&self.dir, disk_bandwidth::probe_bytes(load_bytes))?;
        progress.note("");
        self.measured = Some(measured);
        Ok(measured)
    }
}

/// Runs `bulkload`, held against the disk's bandwidth `disk` (always measured by the
/// runner; `None` leaves the row's disk figures empty); see the module doc.
///
/// # Errors
/// Whatever the engine's `load` and `get` report.
pub(super) fn bulk_load(
    db: &dyn DynEngine,
    config: &BenchConfig,
    progress: &dyn Progress,
    disk: Option<DiskBandwidth>,
) -> Result<Outcome> {
    let c = &config.workload;
    let mut input = Input {
        ops: Workload::FillSeq.ops(c),
        sample: Sample::new(c.num),
        made: 0,
        bytes: 0,
        limited: false,
        clock: Clock::start(config, progress),
    };
    let report = db.load(&mut input, LoadOrder::Sorted)?;
    let elapsed = input.clock.elapsed();
    let secs = elapsed.as_secs_f64();
    let made = input.made;
    let counted = (report.pairs != made).then(|| {
        format!(
            "bulkload: the engine's load report counts {} pairs, the input gave {made}",
            report.pairs
        )
    });
    let wrong = match counted {
        Some(wrong) => Some(wrong),
        None => input.sample.check(db, "bulkload")?,
    };
    Ok(Outcome {
        entries: Some(made),
        elapsed,
        limited: input.limited,
        mb_per_sec: (secs > 0.0).then(|| input.bytes as f64 / 1e6 / secs),
        disk_mb_per_sec: disk.and_then(|d| d.mb_per_sec()),
        wrong,
        ..Outcome::default()
    })
}

/// The load's input: `fillseq`'s pairs, made one at a time as the engine takes them,
/// counted, sampled, and cut off at the time limit.
struct Input<'a> {
    ops: Ops,
    sample: Sample,
    /// Pairs made so far.
    made: u64,
    /// Their key and value bytes.
    bytes: u64,
    /// The time limit ended the input early.
    limited: bool,
    clock: Clock<'a>,
}

impl Iterator for Input<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.limited {
            return None;
        }
        let Some(Op::Put { key, value }) = self.ops.next() else {
            return None;
        };
        self.sample.note(self.made, &key, &value);
        self.made += 1;
        self.bytes += (key.len() + value.len()) as u64;
        if self.clock.tick(Instant::now()) {
            self.limited = true;
        }
        Some(Ok((key, value)))
    }
}

//! The eight db_bench workloads of [`crate::workload`], each operation timed, and every
//! answer checked: a `get` of an existing key finds a value of the right size, a `get` of a
//! missing key finds nothing, a seek starts at the existing key it seeks, and `readseq`
//! returns every key once, in order. Also [`apply`], the unchecked form the criterion
//! benches time.
//!
//! Seeks and `readseq` read their pairs borrowed from the engine's
//! [`range_cursor`](kv_shared::DynEngine::range_cursor), through [`walk`], as db_bench
//! reads an iterator: nothing is copied out, so what is timed is the engine's step, not
//! two allocations and copies of the harness's per pair (which, measured with callgrind
//! on `lsm`'s `scan`, were a seventh of the instructions).

use std::time::Instant;

use kv_shared::{CursorIter, Direction, DynEngine, KeyRange, Result};

use super::{BenchConfig, Clock, Outcome};
use crate::latency::Latency;
use crate::progress::Progress;
use crate::workload::{Op, Workload, WorkloadConfig};

/// Applies one workload operation to `db`, without checking its answer; returns the number
/// of entries it handled (1 for a put, get or delete; the entries read for a seek or scan).
/// The criterion benches use it; [`super::run`] times and checks each kind itself.
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
            let mut walk = walk(db, KeyRange::from(start.clone()))?;
            let mut n = 0;
            while n < *count as u64
                && let Some(pair) = walk.next_borrowed()
            {
                pair?;
                n += 1;
            }
            n
        }
        Op::ScanAll => {
            let mut walk = walk(db, KeyRange::all())?;
            let mut n = 0;
            while let Some(pair) = walk.next_borrowed() {
                pair?;
                n += 1;
            }
            n
        }
    })
}

/// The pairs of `range` in key order, to be read borrowed ([`CursorIter::next_borrowed`])
/// from the engine's [`range_cursor`](kv_shared::DynEngine::range_cursor).
///
/// # Errors
/// Whatever the engine reports.
pub fn walk(db: &dyn DynEngine, range: KeyRange) -> Result<CursorIter<'_>> {
    let cursor = db.range_cursor(&range)?;
    Ok(CursorIter::new(cursor, range, Direction::Forward))
}

/// Runs one of the eight db_bench workloads; see the module doc.
pub(super) fn standard(
    db: &dyn DynEngine,
    workload: Workload,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let c = &config.workload;
    let mut latency = Latency::new();
    let mut clock = Clock::start(config, progress);
    let mut answers = Answers::default();
    let (mut entries, mut limited) = (0u64, false);
    for op in workload.ops(c) {
        if let Op::ScanAll = op {
            return read_seq(db, c, latency, clock);
        }
        let t = Instant::now();
        let handled = answers.apply(db, &op, c.value_size)?;
        let now = Instant::now();
        latency.record(now - t);
        entries += handled;
        if clock.tick(now) {
            limited = true;
            break;
        }
    }
    let elapsed = clock.elapsed();
    let wrong = answers.verdict(workload, latency.count(), c.value_size);
    Ok(Outcome::timed(entries, latency, elapsed, limited, wrong))
}

/// What the reads of a workload found, for the checks at its end.
#[derive(Debug, Default)]
struct Answers {
    /// Gets that found a value.
    found: u64,
    /// Values found with a size other than the workload's.
    wrong_size: u64,
    /// The first seek that did not start at the key it sought.
    bad_seek: Option<String>,
}

impl Answers {
    /// Applies `op` and notes what its answer says; returns the entries it handled.
    fn apply(&mut self, db: &dyn DynEngine, op: &Op, value_size: usize) -> Result<u64> {
        match op {
            Op::Get { key } => {
                if let Some(value) = db.get(key)? {
                    self.found += 1;
                    self.wrong_size += u64::from(value.len() != value_size);
                }
                Ok(1)
            }
            Op::Seek { start, count } => {
                let mut walk = walk(db, KeyRange::from(start.clone()))?;
                let (mut first_is_start, mut n) = (false, 0);
                while n < *count as u64
                    && let Some(pair) = walk.next_borrowed()
                {
                    let (key, value) = pair?;
                    first_is_start |= n == 0 && key == start.as_slice();
                    self.wrong_size += u64::from(value.len() != value_size);
                    n += 1;
                }
                if !first_is_start && self.bad_seek.is_none() {
                    self.bad_seek = Some(format!(
                        "seekrandom: a seek to existing key {} did not return it first",
                        kv_shared::dump::quoted(start, 32)
                    ));
                }
                Ok(n)
            }
            Op::Put { .. } | Op::Delete { .. } | Op::ScanAll => apply(db, op),
        }
    }

    /// The wrong answer of `workload`, if any, after `gets` reads: the first bad seek, gets
    /// of existing keys that found nothing, gets of missing keys that found something, or
    /// values of the wrong size.
    fn verdict(self, workload: Workload, gets: u64, value_size: usize) -> Option<String> {
        let Answers {
            found,
            wrong_size,
            bad_seek,
        } = self;
        bad_seek.or_else(|| match workload {
            Workload::ReadRandom if found < gets => Some(format!(
                "readrandom: {} of {gets} gets of existing keys found nothing",
                gets - found
            )),
            Workload::ReadMissing if found > 0 => Some(format!(
                "readmissing: {found} of {gets} gets of never-written keys found a value"
            )),
            _ if wrong_size > 0 => Some(format!(
                "{}: {wrong_size} values read back with a size other than {value_size}",
                workload.name(),
            )),
            _ => None,
        })
    }
}

/// `readseq`: one full scan, each step timed as one operation; the keys must come in order,
/// `num` of them.
fn read_seq(
    db: &dyn DynEngine,
    c: &WorkloadConfig,
    mut latency: Latency,
    mut clock: Clock<'_>,
) -> Result<Outcome> {
    let mut walk = walk(db, KeyRange::all())?;
    let (mut entries, mut limited, mut wrong) = (0u64, false, None);
    // The previous key, in a buffer reused from pair to pair.
    let mut previous = Vec::new();
    loop {
        let t = Instant::now();
        let Some(pair) = walk.next_borrowed() else {
            break;
        };
        let (key, _) = pair?;
        let now = Instant::now();
        latency.record(now - t);
        if wrong.is_none() && entries > 0 && previous.as_slice() >= key {
            wrong = Some("readseq: keys came out of order".to_string());
        }
        entries += 1;
        previous.clear();
        previous.extend_from_slice(key);
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
    let elapsed = clock.elapsed();
    Ok(Outcome::timed(entries, latency, elapsed, limited, wrong))
}

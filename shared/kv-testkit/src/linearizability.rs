//! The concurrency suite: many threads at once, and a linearizability check of what each key
//! went through.
//!
//! An engine is shared by threads (`&self` methods). Whatever it does inside (locks,
//! background merges, memtable switches), each key must behave like a single register that
//! changes instantly at some moment between a call's start and its return: the call is
//! **linearizable**. Writer threads put unique values on a few shared keys; reader threads
//! get and scan them; one more thread runs `compact` and `sync` in a loop. Every call is
//! stamped with a global counter when it starts and when it returns, giving each key a
//! [`History`] of [`Event`]s.
//!
//! [`check_register`] then checks each key's history:
//!
//! 1. every value read was written (or is the initial "absent");
//! 2. a read never returns a write that started after the read returned (a value from the
//!    future);
//! 3. a read never returns a value older than the latest write that **finished before the
//!    read began** (a stale value);
//! 4. the whole history is linearizable. Since every value is unique, each read names the
//!    write it saw, and Gibbons and Korach's test applies ("Testing shared memories", SIAM J.
//!    Comput. 1997): group each write with the reads of it into a *cluster*; a cluster whose
//!    earliest return comes before its latest start must own the interval between them
//!    (a *forward zone*); otherwise it has a *backward zone* from its latest start to its
//!    earliest return. The history is linearizable exactly when no two forward zones
//!    overlap and no backward zone lies inside another cluster's forward zone.
//!
//! Deletes are left out of this suite (a read of "absent" must name one write); the model
//! test of [`crate::conformance`] covers them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_shared::{Engine, KeyRange, Options};

/// One call on one key: when it started and returned (on one global counter), and what it
/// wrote or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Counter value when the call started.
    pub start: u64,
    /// Counter value when the call returned.
    pub end: u64,
    /// What the call did.
    pub kind: EventKind,
}

/// A write or a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A put of this (unique) value.
    Write(Vec<u8>),
    /// A get, or a scan covering the key, that returned this (`None`: absent).
    Read(Option<Vec<u8>>),
}

/// The events of one key.
pub type History = Vec<Event>;

/// One cluster: a write (or the initial absent value) with the reads of it, reduced to the
/// earliest return and the latest start among them.
struct Cluster {
    earliest_end: u64,
    latest_start: u64,
}

/// Checks that one key's history is linearizable (see the module documentation).
///
/// # Errors
/// A description of the first rule broken.
pub fn check_register(history: &[Event]) -> Result<(), String> {
    let writes: HashMap<&[u8], &Event> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Write(v) => Some((v.as_slice(), e)),
            EventKind::Read(_) => None,
        })
        .collect();
    // Cluster `None` is the initial value, written "at time 0".
    let mut clusters: HashMap<Option<&[u8]>, Cluster> = HashMap::new();
    clusters.insert(
        None,
        Cluster {
            earliest_end: 0,
            latest_start: 0,
        },
    );
    for (value, w) in &writes {
        clusters.insert(
            Some(*value),
            Cluster {
                earliest_end: w.end,
                latest_start: w.start,
            },
        );
    }
    let latest_start_before = latest_write_starts(&writes);
    for read in history {
        let EventKind::Read(value) = &read.kind else {
            continue;
        };
        check_read(read, value.as_deref(), &writes, &latest_start_before)?;
        let cluster = clusters
            .get_mut(&value.as_deref())
            .expect("every read value has a cluster");
        cluster.earliest_end = cluster.earliest_end.min(read.end);
        cluster.latest_start = cluster.latest_start.max(read.start);
    }
    check_zones(clusters.values())
}

/// For rule 3: `(end, s)` for each write in order of its end, where `s` is the latest start
/// among the writes that ended by then.
fn latest_write_starts(writes: &HashMap<&[u8], &Event>) -> Vec<(u64, u64)> {
    let mut finished: Vec<(u64, u64)> = writes.values().map(|w| (w.end, w.start)).collect();
    finished.sort_unstable();
    let mut latest = 0;
    finished
        .into_iter()
        .map(|(end, start)| {
            latest = latest.max(start);
            (end, latest)
        })
        .collect()
}

/// Rules 1 to 3 for one read that returned `value`.
fn check_read(
    read: &Event,
    value: Option<&[u8]>,
    writes: &HashMap<&[u8], &Event>,
    latest_start_before: &[(u64, u64)],
) -> Result<(), String> {
    let (write_start, write_end) = match value {
        None => (0, 0),
        Some(v) => match writes.get(v) {
            Some(w) => (w.start, w.end),
            None => {
                return Err(format!(
                    "read [{}, {}] returned a value never written: {}",
                    read.start,
                    read.end,
                    kv_shared::dump::quoted(v, 32)
                ));
            }
        },
    };
    if write_start > read.end {
        return Err(format!(
            "read [{}, {}] returned the value of a write that started later, at {write_start}",
            read.start, read.end
        ));
    }
    let done = latest_start_before.partition_point(|&(end, _)| end < read.start);
    if done > 0 {
        let newest_start = latest_start_before[done - 1].1;
        if newest_start > write_end {
            return Err(format!(
                "read [{}, {}] returned a stale value (its write ended at {write_end}), but a \
                 write that started at {newest_start} had finished before the read began",
                read.start, read.end
            ));
        }
    }
    Ok(())
}

/// Rule 4: no two forward zones overlap, and no backward zone lies inside a forward zone.
fn check_zones<'a>(clusters: impl Iterator<Item = &'a Cluster>) -> Result<(), String> {
    let (mut forward, mut backward) = (Vec::new(), Vec::new());
    for c in clusters {
        if c.earliest_end < c.latest_start {
            forward.push((c.earliest_end, c.latest_start));
        } else {
            backward.push((c.latest_start, c.earliest_end));
        }
    }
    forward.sort_unstable();
    for pair in forward.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(format!(
                "not linearizable: two values were each read across overlapping intervals \
                 {:?} and {:?}",
                pair[0], pair[1]
            ));
        }
    }
    for &(s, e) in &backward {
        if forward.iter().any(|&(fs, fe)| fs < s && e < fe) {
            return Err(format!(
                "not linearizable: a write whose interval [{s}, {e}] lies inside another value's \
                 reads was never seen"
            ));
        }
    }
    Ok(())
}

const KEYS: usize = 6;

fn key(k: usize) -> Vec<u8> {
    format!("lin-key-{k}").into_bytes()
}

/// Runs `threads` worker threads of `ops` calls each (puts of unique values, gets, scans)
/// and a background thread of `compact` and `sync`, then checks every key's history.
///
/// # Panics
/// When a call fails or a key's history is not linearizable.
pub fn concurrent_histories<E: Engine>(options: &Options, seed: u64, threads: u64, ops: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = E::open(&tmp.path().join("store"), options).expect("open");
    let clock = Clock(AtomicU64::new(1));
    let done = AtomicBool::new(false);
    let mut histories: Vec<History> = vec![Vec::new(); KEYS];
    std::thread::scope(|s| {
        let _stop = crate::conformance::StopOnDrop(&done);
        let background = s.spawn(|| compact_until(&engine, &done));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (engine, clock) = (&engine, &clock);
                let rng = ChaCha8Rng::seed_from_u64(seed ^ (t + 1).wrapping_mul(0x9E37));
                s.spawn(move || worker(engine, clock, rng, t, ops))
            })
            .collect();
        for worker in workers {
            for (k, event) in worker.join().expect("worker thread") {
                histories[k].push(event);
            }
        }
        done.store(true, SeqCst);
        let rounds = background.join().expect("background thread");
        eprintln!(
            "{}: linearizability: {threads} threads x {ops} calls, {rounds} background \
             compactions",
            E::NAME
        );
    });
    for (k, history) in histories.iter().enumerate() {
        if let Err(e) = check_register(history) {
            panic!(
                "{}: key {k} (seed {seed}, replay with KV_TEST_SEED={seed}): {e}",
                E::NAME
            );
        }
    }
    engine.close().expect("close");
}

/// The global counter every call is stamped with when it starts and when it returns.
struct Clock(AtomicU64);

impl Clock {
    /// Runs `call`, returning its result with its start and end stamps.
    fn time<T>(&self, call: impl FnOnce() -> T) -> (u64, T, u64) {
        let start = self.0.fetch_add(1, SeqCst);
        let result = call();
        (start, result, self.0.fetch_add(1, SeqCst))
    }
}

/// The background thread: `compact` and `sync` until `done`; returns how many rounds.
fn compact_until<E: Engine>(engine: &E, done: &AtomicBool) -> u64 {
    let mut rounds = 0u64;
    while !done.load(SeqCst) {
        engine.compact().expect("background compact");
        engine.sync().expect("background sync");
        rounds += 1;
    }
    rounds
}

/// One worker thread: `ops` random calls, four in ten a put of a unique value, five a get,
/// one a scan (a read of every key); returns each key's events.
fn worker<E: Engine>(
    engine: &E,
    clock: &Clock,
    mut rng: ChaCha8Rng,
    t: u64,
    ops: u64,
) -> Vec<(usize, Event)> {
    let mut mine = Vec::new();
    let event = |(start, kind, end)| Event { start, end, kind };
    for n in 0..ops {
        let k = rng.random_range(0..KEYS);
        match rng.random_range(0..10) {
            0..4 => {
                let mut value = format!("t{t}n{n}:").into_bytes();
                value.resize(value.len() + rng.random_range(0..200), b'.');
                let timed = clock.time(|| {
                    engine.put(&key(k), &value).expect("put");
                    EventKind::Write(value)
                });
                mine.push((k, event(timed)));
            }
            4..9 => {
                let timed = clock.time(|| EventKind::Read(engine.get(&key(k)).expect("get")));
                mine.push((k, event(timed)));
            }
            _ => {
                let (start, pairs, end) = clock.time(|| {
                    engine
                        .scan(KeyRange::all())
                        .and_then(|it| it.collect::<kv_shared::Result<Vec<_>>>())
                        .expect("scan")
                });
                for k in 0..KEYS {
                    let got = pairs.iter().find(|(pk, _)| *pk == key(k));
                    let kind = EventKind::Read(got.map(|(_, v)| v.clone()));
                    mine.push((k, event((start, kind, end))));
                }
            }
        }
    }
    mine
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(start: u64, end: u64, v: &str) -> Event {
        Event {
            start,
            end,
            kind: EventKind::Write(v.as_bytes().to_vec()),
        }
    }

    fn r(start: u64, end: u64, v: Option<&str>) -> Event {
        Event {
            start,
            end,
            kind: EventKind::Read(v.map(|v| v.as_bytes().to_vec())),
        }
    }

    #[test]
    fn linearizable_histories_pass() {
        // Sequential.
        check_register(&[r(1, 2, None), w(3, 4, "a"), r(5, 6, Some("a"))]).unwrap();
        // A read overlapping a write may see either value.
        check_register(&[w(1, 2, "a"), w(3, 6, "b"), r(4, 5, Some("a"))]).unwrap();
        check_register(&[w(1, 2, "a"), w(3, 6, "b"), r(4, 5, Some("b"))]).unwrap();
        // Concurrent writes may land in either order.
        check_register(&[w(1, 4, "a"), w(2, 3, "b"), r(5, 6, Some("a"))]).unwrap();
        check_register(&[w(1, 4, "a"), w(2, 3, "b"), r(5, 6, Some("b"))]).unwrap();
    }

    #[test]
    fn broken_histories_fail() {
        // A value never written.
        assert!(check_register(&[w(1, 2, "a"), r(3, 4, Some("z"))]).is_err());
        // From the future.
        assert!(check_register(&[r(1, 2, Some("a")), w(3, 4, "a")]).is_err());
        // Stale: "b" finished before the read began.
        assert!(check_register(&[w(1, 2, "a"), w(3, 4, "b"), r(5, 6, Some("a"))]).is_err());
        // Stale absent value.
        assert!(check_register(&[w(1, 2, "a"), r(3, 4, None)]).is_err());
        // New-old inversion: two reads in sequence during a long write, the first sees the
        // new value and the second the old one. Rules 1 to 3 allow it; linearizability not.
        let history = [
            w(1, 2, "a"),
            w(3, 10, "b"),
            r(4, 5, Some("b")),
            r(6, 7, Some("a")),
        ];
        let err = check_register(&history).unwrap_err();
        assert!(err.contains("not linearizable"), "{err}");
    }
}

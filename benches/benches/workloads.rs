//! Criterion benches: one group per workload, the engine as the parameter, so criterion's
//! HTML report (`target/criterion/report/index.html`) shows the engines side by side.
//!
//! Run with `cargo bench -p kvbench` (every group) or `cargo bench -p kvbench -- readrandom`
//! (one). The groups are `kvbench`'s workloads: the eight standard ones, then `fillthreads`
//! (the `fillrandom` puts shared by four writer threads), `fillbatch` (`fillseq`'s puts in
//! write batches of 1,000), `bulkload` (the same pairs through the engine's `load`), `scan`, `readwhilewriting` (the
//! time of `num` gets while a second thread overwrites), `compact` (the time of `compact`
//! on a store filled and overwritten once) and `recovery`. Sizes are small (`KV_BENCH_NUM`, default 2,000 keys) so that every engine and
//! workload finishes in a few minutes; `kvbench` is the tool for large runs. Each sample is
//! a whole workload; its setup (a fresh store, or one filled by an untimed `fillseq`) is not
//! timed. Workloads that leave the store as they found it, or still filled (reads,
//! overwrite), share one filled store across samples.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use kv_shared::{DynEngine, KeyRange, LoadOrder, WriteBatch};
use kvbench::bench_workload::BATCH_PAIRS;
use kvbench::engines::{ENGINES, EngineInfo};
use kvbench::runner::apply;
use kvbench::workload::{Op, Workload, WorkloadConfig};

fn config() -> WorkloadConfig {
    let num = std::env::var("KV_BENCH_NUM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    WorkloadConfig {
        num,
        ..WorkloadConfig::default()
    }
}

fn open(engine: &EngineInfo, dir: &Path) -> Box<dyn DynEngine> {
    (engine.open)(dir, &kv_shared::Options::new())
        .unwrap_or_else(|e| panic!("open {}: {e}", engine.name))
}

fn run(db: &dyn DynEngine, workload: Workload, config: &WorkloadConfig) {
    for op in workload.ops(config) {
        apply(db, &op).unwrap_or_else(|e| panic!("{}: {e}", workload.name()));
    }
}

/// A fresh store in a new temporary directory, filled with keys `0..num` when `filled`.
fn store(
    engine: &EngineInfo,
    config: &WorkloadConfig,
    filled: bool,
) -> (tempfile::TempDir, Box<dyn DynEngine>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = open(engine, &tmp.path().join("db"));
    if filled {
        run(db.as_ref(), Workload::FillSeq, config);
    }
    (tmp, db)
}

/// The time `timed` takes on a fresh store, summed over `iters` stores: each store is made
/// by [`store`] (filled when `filled`) and `prepare`d untimed, and closed untimed after.
fn on_fresh_stores(
    iters: u64,
    engine: &EngineInfo,
    config: &WorkloadConfig,
    filled: bool,
    prepare: impl Fn(&dyn DynEngine),
    timed: impl Fn(&dyn DynEngine),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (_tmp, db) = store(engine, config, filled);
        prepare(db.as_ref());
        let t = Instant::now();
        timed(db.as_ref());
        total += t.elapsed();
        db.close().expect("close");
    }
    total
}

/// A group timing `timed` on a fresh store for every engine (see [`on_fresh_stores`]),
/// counting `elements` per sample when given.
fn fresh_store_group(
    c: &mut Criterion,
    config: &WorkloadConfig,
    name: &str,
    elements: Option<u64>,
    filled: bool,
    prepare: impl Fn(&dyn DynEngine),
    timed: impl Fn(&dyn DynEngine),
) {
    let mut group = c.benchmark_group(name);
    small(&mut group);
    if let Some(n) = elements {
        group.throughput(Throughput::Elements(n));
    }
    for engine in ENGINES {
        group.bench_with_input(
            BenchmarkId::from_parameter(engine.name),
            engine,
            |b, engine| {
                b.iter_custom(|iters| {
                    on_fresh_stores(iters, engine, config, filled, &prepare, &timed)
                })
            },
        );
    }
    group.finish();
}

/// Few, short samples: each sample is a whole workload, and there are 40 benchmarks.
fn small<'a, 'b>(
    group: &'a mut BenchmarkGroup<'b, WallTime>,
) -> &'a mut BenchmarkGroup<'b, WallTime> {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

fn standard(c: &mut Criterion, config: &WorkloadConfig) {
    for workload in Workload::ALL {
        let mut group = c.benchmark_group(workload.name());
        small(&mut group).throughput(Throughput::Elements(workload.entries(config.num)));
        for engine in ENGINES {
            group.bench_with_input(
                BenchmarkId::from_parameter(engine.name),
                engine,
                |b, engine| {
                    // Fills and deletes change the store's state: each sample gets its own store.
                    let fresh_each_time = matches!(
                        workload,
                        Workload::FillSeq | Workload::FillRandom | Workload::DeleteRandom
                    );
                    let shared = (!fresh_each_time).then(|| store(engine, config, true));
                    b.iter_custom(|iters| match &shared {
                        Some((_, db)) => {
                            let t = Instant::now();
                            for _ in 0..iters {
                                run(db.as_ref(), workload, config);
                            }
                            t.elapsed()
                        }
                        None => on_fresh_stores(
                            iters,
                            engine,
                            config,
                            workload.needs_filled_store(),
                            |_| {},
                            |db| run(db, workload, config),
                        ),
                    });
                    if let Some((_tmp, db)) = shared {
                        db.close().expect("close");
                    }
                },
            );
        }
        group.finish();
    }
}

/// `scan`: bounded range scans of 100 keys, and `recovery`: reopening a filled store.
fn extra(c: &mut Criterion, config: &WorkloadConfig) {
    let mut group = c.benchmark_group("scan");
    let scans = (config.num / 100).max(1);
    small(&mut group).throughput(Throughput::Elements(scans * 100));
    for engine in ENGINES {
        group.bench_with_input(
            BenchmarkId::from_parameter(engine.name),
            engine,
            |b, engine| {
                let (_tmp, db) = store(engine, config, true);
                b.iter(|| {
                    let mut entries = 0;
                    for s in 0..scans {
                        let i = (s * 7919) % config.num;
                        let range = KeyRange::half_open(config.key(i), config.key(i + 100));
                        entries += db.scan(range).expect("scan").count();
                    }
                    entries
                });
                db.close().expect("close");
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("recovery");
    small(&mut group).throughput(Throughput::Elements(config.num));
    for engine in ENGINES {
        group.bench_with_input(
            BenchmarkId::from_parameter(engine.name),
            engine,
            |b, engine| {
                let (tmp, db) = store(engine, config, true);
                db.close().expect("close");
                let dir = tmp.path().join("db");
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        let db = open(engine, &dir);
                        total += t.elapsed();
                        db.close().expect("close");
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

/// Writer threads of the `fillthreads` group (as `kvbench`'s default).
const THREADS: usize = 4;

/// `fillthreads`, `readwhilewriting` and `compact`: the workloads with a second thread or a
/// store-wide operation.
fn concurrent(c: &mut Criterion, config: &WorkloadConfig) {
    let ops: Vec<_> = Workload::FillRandom.ops(config).collect();
    fresh_store_group(
        c,
        config,
        "fillthreads",
        Some(config.num),
        false,
        |_| {},
        |db| {
            std::thread::scope(|s| {
                for part in ops.chunks(ops.len().div_ceil(THREADS).max(1)) {
                    s.spawn(move || {
                        for op in part {
                            apply(db, op).expect("fillthreads");
                        }
                    });
                }
            });
        },
    );

    let mut group = c.benchmark_group("readwhilewriting");
    small(&mut group).throughput(Throughput::Elements(config.num));
    for engine in ENGINES {
        group.bench_with_input(
            BenchmarkId::from_parameter(engine.name),
            engine,
            |b, engine| {
                let (_tmp, db) = store(engine, config, true);
                let db = db.as_ref();
                let stop = AtomicBool::new(false);
                std::thread::scope(|s| {
                    s.spawn(|| {
                        // Overwrites, round after round, until the reads are measured.
                        while !stop.load(Ordering::Relaxed) {
                            for op in Workload::Overwrite.ops(config) {
                                if stop.load(Ordering::Relaxed) {
                                    break;
                                }
                                apply(db, &op).expect("overwrite");
                            }
                        }
                    });
                    b.iter(|| run(db, Workload::ReadRandom, config));
                    stop.store(true, Ordering::Relaxed);
                });
            },
        );
    }
    group.finish();

    fresh_store_group(
        c,
        config,
        "compact",
        None,
        true,
        |db| run(db, Workload::Overwrite, config),
        |db| db.compact().expect("compact"),
    );
}

/// `fillseq`'s pairs, made before the timed part.
fn fillseq_pairs(config: &WorkloadConfig) -> Vec<(Vec<u8>, Vec<u8>)> {
    Workload::FillSeq
        .ops(config)
        .filter_map(|op| match op {
            Op::Put { key, value } => Some((key, value)),
            _ => None,
        })
        .collect()
}

/// `fillbatch` and `bulkload`: `fillseq`'s pairs into a fresh store, in write batches of
/// [`BATCH_PAIRS`] and through the engine's `load` (sorted input).
fn many_at_once(c: &mut Criterion, config: &WorkloadConfig) {
    let pairs = fillseq_pairs(config);
    let batches: Vec<WriteBatch> = pairs
        .chunks(BATCH_PAIRS)
        .map(|chunk| {
            let mut batch = WriteBatch::new();
            for (key, value) in chunk {
                batch.put(key, value).expect("a pair within the limits");
            }
            batch
        })
        .collect();
    let elements = Some(pairs.len() as u64);
    fresh_store_group(
        c,
        config,
        "fillbatch",
        elements,
        false,
        |_| {},
        |db| {
            for batch in &batches {
                db.write(batch).expect("fillbatch");
            }
        },
    );
    fresh_store_group(
        c,
        config,
        "bulkload",
        elements,
        false,
        |_| {},
        |db| {
            let mut input = pairs.iter().cloned().map(Ok);
            db.load(&mut input, LoadOrder::Sorted).expect("bulkload");
        },
    );
}

fn benches(c: &mut Criterion) {
    let config = config();
    config.validate().expect("KV_BENCH_NUM fits 16-byte keys");
    standard(c, &config);
    concurrent(c, &config);
    many_at_once(c, &config);
    extra(c, &config);
}

criterion_group!(workloads, benches);
criterion_main!(workloads);

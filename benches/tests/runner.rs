//! The benchmark runner and report, on the test engine: every workload runs and is
//! measured, the JSON has the documented fields, the store lifecycle holds, and the
//! correctness checks and error rows catch a misbehaving engine.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use clap::Parser;
use kvbench::bench_cli::{self, BenchArgs};
use kvbench::bench_workload::BenchWorkload;
use kvbench::engine_spec::EngineSpec;
use kvbench::measurement::Measurement;
use kvbench::progress::NoProgress;
use kvbench::report::{self, RunInfo};
use kvbench::runner::{self, BenchConfig};
use kvbench::workload::WorkloadConfig;

use common::REGISTRY;

/// Held by every test while it runs workloads: the runs take turns. The I/O check sets an
/// engine's own count of bytes written against the process's (`wchar` in
/// `/proc/self/io`), which counts the writes of every test thread of this binary, so a run
/// made beside another test's run would be flagged for bytes that were not its engine's.
static RUNS: Mutex<()> = Mutex::new(());

/// This test's turn to run workloads (see [`RUNS`]); a test that failed holding it does
/// not stop the others.
fn turn() -> MutexGuard<'static, ()> {
    RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn config(num: u64) -> (tempfile::TempDir, BenchConfig) {
    let tmp = tempfile::tempdir().unwrap();
    let config = BenchConfig {
        workload: WorkloadConfig {
            num,
            key_size: 16,
            value_size: 20,
            seed: 7,
        },
        time_limit: Some(Duration::from_secs(60)),
        dir: Some(tmp.path().to_path_buf()),
        kill_helper: None,
        threads: 3,
    };
    (tmp, config)
}

fn run(specs: &str, workloads: &str, config: &BenchConfig) -> Vec<Measurement> {
    let engines: Vec<_> = EngineSpec::parse_list(specs)
        .unwrap()
        .iter()
        .map(|s| s.resolve(REGISTRY, &[]).unwrap())
        .collect();
    let workloads = BenchWorkload::parse_list(workloads).unwrap();
    let _turn = turn();
    runner::run(&engines, &workloads, config, &NoProgress).unwrap()
}

fn row<'a>(rows: &'a [Measurement], workload: &str) -> &'a Measurement {
    rows.iter()
        .find(|r| r.workload == workload)
        .unwrap_or_else(|| panic!("no {workload} row"))
}

#[test]
fn every_workload_runs_and_is_measured() {
    let (tmp, config) = config(500);
    let all: Vec<&str> = BenchWorkload::ALL.iter().map(|w| w.name()).collect();
    let rows = run("memtest", &all.join(","), &config);
    assert_eq!(rows.len(), BenchWorkload::ALL.len());
    for r in &rows {
        assert_eq!(r.error, None, "{}: {:?}", r.workload, r.error);
        assert_eq!((r.engine.as_str(), r.num), ("memtest", 500));
        assert!(!r.time_limited, "{}", r.workload);
        assert!(r.elapsed_secs > 0.0, "{}", r.workload);
    }
    for w in [
        "fillseq",
        "fillrandom",
        "fillthreads",
        "overwrite",
        "readrandom",
        "readmissing",
        "deleterandom",
    ] {
        let r = row(&rows, w);
        assert_eq!(r.ops, 500, "{w}");
        assert!(r.ops_per_sec.unwrap() > 0.0, "{w}");
        assert!(r.p50_us.unwrap() <= r.p99_us.unwrap(), "{w}");
    }
    // Each put appends a 9-byte header beside its 16 + 20 user bytes: write amp 45/36.
    let fill = row(&rows, "fillseq");
    assert!(
        (fill.write_amp.unwrap() - 45.0 / 36.0).abs() < 1e-9,
        "{fill:?}"
    );
    assert_eq!(fill.read_amp, None);
    assert_eq!((fill.live_keys, fill.extra["puts"]), (500, 500));
    assert!(fill.space_amp.unwrap() > 1.0 && fill.disk_bytes > 500 * 36);
    assert_eq!(row(&rows, "readrandom").read_amp, Some(0.0));
    assert_eq!(row(&rows, "readrandom").write_amp, None);
    assert_eq!(row(&rows, "readseq").ops, 500);
    // 5 seeks of 100 entries; 5 range scans of 100 keys or up to the end of the key space.
    assert!(row(&rows, "seekrandom").ops > 100 && row(&rows, "seekrandom").ops <= 500);
    assert!(row(&rows, "scan").ops > 100 && row(&rows, "scan").ops <= 500);
    let rww = row(&rows, "readwhilewriting");
    assert_eq!(rww.ops, 500);
    assert!(rww.write_ops_per_sec.unwrap() > 0.0 && rww.write_amp.is_some());
    let recovery = row(&rows, "recovery");
    assert!(recovery.open_ms.unwrap() > 0.0 && recovery.ops_per_sec.is_some());
    assert_eq!(
        (recovery.open_after_kill_ms, recovery.live_keys),
        (None, 500)
    );
    let compact = row(&rows, "compact");
    assert_eq!((compact.ops_per_sec, compact.p50_us), (None, None));
    assert_eq!(row(&rows, "deleterandom").live_keys, 0);
    if cfg!(target_os = "linux") {
        assert!(rows.iter().all(|r| r.peak_rss_bytes.unwrap() > 0));
        assert!(fill.os_bytes_written.unwrap() >= fill.disk_bytes_written);
    }
    // The stores were created in a subdirectory of --dir and removed at the end.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn json_has_the_documented_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("out.json");
    let markdown = tmp.path().join("out.md");
    let args = BenchArgs::try_parse_from([
        "kvbench",
        "--engines",
        "memtest,memtest[lose_every=1000]",
        "--workloads",
        "fillrandom,readrandom,compact",
        "--num",
        "200",
        "--dir",
        tmp.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--markdown",
        markdown.to_str().unwrap(),
        "--quiet",
        "--no-charts",
    ])
    .unwrap();
    let mut table = Vec::new();
    let rows = {
        let _turn = turn();
        bench_cli::run(REGISTRY, &args, None, &mut table).unwrap()
    };
    assert_eq!(rows.len(), 6);
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let array = value.as_array().unwrap();
    assert_eq!(array.len(), 6);
    for object in array {
        for field in [
            "engine",
            "workload",
            "num",
            "ops_per_sec",
            "p50_us",
            "p99_us",
            "write_amp",
            "read_amp",
            "space_amp",
            "peak_rss_bytes",
        ] {
            assert!(object.get(field).is_some(), "missing {field} in {object}");
        }
        assert_eq!(object["num"], 200);
    }
    assert_eq!(array[0]["engine"], "memtest");
    assert_eq!(array[0]["workload"], "fillrandom");
    assert!(array[0]["ops_per_sec"].as_f64().unwrap() > 0.0);
    assert!(array[2]["ops_per_sec"].is_null() && array[2]["p99_us"].is_null());
    assert_eq!(array[3]["engine"], "memtest[lose_every=1000]");
    assert_eq!(
        array[3]["settings"],
        "fail_after=0 lose_every=1000 count_twice=false read_amp_unknown=false written_from_os=false"
    );
    let table = String::from_utf8(table).unwrap();
    assert!(table.starts_with("num=200 key_size=16 value_size=100 seed=42 time_limit=5s\n"));
    assert!(
        table.contains("memtest[lose_every=1000]  fillrandom"),
        "{table}"
    );
    let markdown = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        markdown.contains("| engine | workload | ops/s |"),
        "{markdown}"
    );
    assert!(markdown.contains("| memtest | readrandom |"), "{markdown}");
}

#[test]
fn filled_workloads_get_a_filled_store_whatever_ran_before() {
    let (_tmp, config) = config(300);
    // No fill first; a delete empties the store; a fill after a fill starts again empty.
    let rows = run(
        "memtest",
        "readrandom,deleterandom,readseq,fillseq,fillrandom,readmissing",
        &config,
    );
    assert!(rows.iter().all(|r| r.error.is_none()), "{rows:#?}");
    assert_eq!(row(&rows, "readrandom").ops, 300);
    assert_eq!(row(&rows, "deleterandom").live_keys, 0);
    assert_eq!(row(&rows, "readseq").ops, 300);
    // fillrandom started from an empty store: exactly its own 300 puts went to it.
    assert_eq!(row(&rows, "fillrandom").extra["puts"], 300);
    assert_eq!(row(&rows, "fillrandom").live_keys, 300);
}

#[test]
fn the_time_limit_stops_a_workload_and_is_reported() {
    let (_tmp, mut config) = config(2000);
    config.time_limit = Some(Duration::ZERO);
    let rows = run(
        "memtest",
        "fillseq,readrandom,readseq,deleterandom",
        &config,
    );
    for r in &rows {
        assert!(r.time_limited && r.ops == 1, "{r:?}");
        assert_eq!(r.error, None);
    }
    // The fill was cut short, so readrandom ran on a store refilled (untimed) first.
    assert_eq!(row(&rows, "readrandom").live_keys, 2000);
    let table = report::table(
        &RunInfo {
            num: 2000,
            key_size: 16,
            value_size: 20,
            seed: 7,
            time_limit_secs: Some(0),
        },
        &rows,
    );
    assert!(table.contains("time limit: 1 ops"), "{table}");
    assert!(table.contains("* stopped by the time limit"), "{table}");
}

#[test]
fn wrong_answers_and_failures_become_error_rows() {
    let (_tmp, config) = config(300);
    let rows = run(
        "memtest[lose_every=7],memtest[fail_after=100],memtest",
        "fillseq,readrandom,readseq",
        &config,
    );
    let losing: Vec<_> = rows
        .iter()
        .filter(|r| r.engine == "memtest[lose_every=7]")
        .collect();
    assert_eq!(losing.len(), 3);
    let err = losing[1].error.as_deref().unwrap();
    assert!(
        err.contains("readrandom") && err.contains("found nothing"),
        "{err}"
    );
    let err = losing[2].error.as_deref().unwrap();
    assert!(
        err.contains("readseq: the scan returned 258 entries"),
        "{err}"
    );
    // A failing engine gets one error row and its remaining workloads are skipped.
    let failing: Vec<_> = rows
        .iter()
        .filter(|r| r.engine == "memtest[fail_after=100]")
        .collect();
    assert_eq!(failing.len(), 1);
    assert!(
        failing[0]
            .error
            .as_deref()
            .unwrap()
            .contains("injected failure")
    );
    // The next engine is unaffected.
    let fine: Vec<_> = rows.iter().filter(|r| r.engine == "memtest").collect();
    assert_eq!(fine.len(), 3);
    assert!(fine.iter().all(|r| r.error.is_none()));
    let table = report::table(
        &RunInfo {
            num: 300,
            key_size: 16,
            value_size: 20,
            seed: 7,
            time_limit_secs: None,
        },
        &rows,
    );
    assert!(table.contains("ERROR: readrandom:"), "{table}");
}

#[test]
fn bad_arguments_are_errors() {
    let parse = |args: &[&str]| {
        let mut all = vec!["kvbench", "--quiet", "--no-charts"];
        all.extend_from_slice(args);
        BenchArgs::try_parse_from(all).unwrap()
    };
    let err = |args: &[&str]| {
        bench_cli::run(REGISTRY, &parse(args), None, Vec::new())
            .unwrap_err()
            .to_string()
    };
    assert!(err(&["--engines", "nosuch"]).contains("unknown engine `nosuch`"));
    assert!(err(&["--engines", "memtest[nosuch=1]"]).contains("no option `nosuch`"));
    assert!(err(&["--set", "nosuch=1"]).contains("--set nosuch"));
    assert!(err(&["--set", "novalue"]).contains("NAME=VALUE"));
    assert!(err(&["--workloads", "fillseq,nosuch"]).contains("unknown workload `nosuch`"));
    assert!(err(&["--key-size", "4"]).contains("key size"));
    assert!(bench_cli::run(&[], &parse(&[]), None, Vec::new()).is_err());
    // A documented --set reaches the engine: every put fails after the first 10.
    let args = parse(&[
        "--set",
        "fail_after=10",
        "--workloads",
        "fillseq",
        "--num",
        "50",
    ]);
    let rows = {
        let _turn = turn();
        bench_cli::run(REGISTRY, &args, None, Vec::new()).unwrap()
    };
    assert!(
        rows[0]
            .error
            .as_deref()
            .unwrap()
            .contains("injected failure")
    );
    assert_eq!(
        rows[0].settings,
        "fail_after=10 lose_every=0 count_twice=false read_amp_unknown=false written_from_os=false"
    );
}

fn info(num: u64) -> RunInfo {
    RunInfo {
        num,
        key_size: 16,
        value_size: 20,
        seed: 7,
        time_limit_secs: None,
    }
}

#[test]
fn an_engine_that_cannot_count_disk_reads_gets_no_read_amplification() {
    let (_tmp, config) = config(200);
    let rows = run(
        "memtest,memtest[read_amp_unknown=true]",
        "fillseq,readrandom",
        &config,
    );
    let [fill, counted, fill_unknown, unknown] = &rows[..] else {
        panic!("{rows:#?}")
    };
    assert_eq!(
        (counted.read_amp, counted.read_amp_unknown),
        (Some(0.0), false)
    );
    assert_eq!((unknown.read_amp, unknown.read_amp_unknown), (None, true));
    // Without gets there is no read amplification to know or not to know.
    assert!(!fill.read_amp_unknown && !fill_unknown.read_amp_unknown);
    assert_eq!(fill_unknown.read_amp, None);
    let json: serde_json::Value = serde_json::from_str(&report::json(&rows).unwrap()).unwrap();
    assert!(json[3]["read_amp"].is_null() && json[3]["read_amp_unknown"] == true);
    assert_eq!(json[1]["read_amp"], 0.0);
    let table = report::table(&info(200), &rows);
    let line = |engine: &str, workload: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{engine} ")) && l.contains(workload))
            .unwrap_or_else(|| panic!("no {engine} {workload} line in {table}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // engine, workload, ops/s, p50, p99, W-amp, R-amp: the seventh cell.
    assert_eq!(line("memtest", "readrandom")[6], "0.00", "{table}");
    assert_eq!(
        line("memtest[read_amp_unknown=true]", "readrandom")[6],
        "n/a",
        "{table}"
    );
    assert_eq!(line("memtest[read_amp_unknown=true]", "fillseq")[6], "-");
}

#[test]
fn the_io_check_flags_a_miscount_but_not_an_engine_counted_by_the_os() {
    if !cfg!(target_os = "linux") {
        return;
    }
    // 5000 puts of 45 bytes: over the check's 256 KiB floor once counted twice.
    let (_tmp, config) = config(5000);
    let rows = run(
        "memtest,memtest[count_twice=true],memtest[count_twice=true,written_from_os=true]",
        "fillseq",
        &config,
    );
    assert!(rows.iter().all(|r| r.error.is_none()), "{rows:#?}");
    let mismatch: Vec<bool> = rows.iter().map(|r| r.io_mismatch).collect();
    assert_eq!(mismatch, [false, true, false], "{rows:#?}");
    // The OS's figure is still recorded for the engine it is not checked against.
    assert!(rows[2].os_bytes_written.unwrap() > 0);
    let table = report::table(&info(5000), &rows);
    assert_eq!(table.matches("I/O MISMATCH").count(), 1, "{table}");
}

#[test]
fn the_report_names_missing_peers_and_prints_each_peers_settings() {
    let (_tmp, config) = config(100);
    let mut rows = run("memtest", "fillseq", &config);
    // A row as a sled run makes one (sled need not be built to print its report).
    let mut sled = rows[0].clone();
    sled.engine = "sled".to_string();
    sled.engine_name = "sled".to_string();
    sled.settings = "cache_bytes=0".to_string();
    rows.push(sled);
    let table = report::table(&info(100), &rows);
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some(info(100).line().as_str()));
    for peer in kvbench::peers::not_built() {
        assert_eq!(
            lines.next(),
            Some(peer.not_built_line().as_str()),
            "{table}"
        );
    }
    assert!(lines.next().unwrap().starts_with("engine "), "{table}");
    assert_eq!(
        kvbench::peers::not_built().count(),
        usize::from(!cfg!(feature = "peers")) * 3 + usize::from(!cfg!(feature = "rocksdb"))
    );
    let settings = table.split("settings:\n").nth(1).unwrap();
    let sled_settings = kvbench::peers::SLED.settings;
    assert_eq!(
        settings,
        format!(
            "  memtest: fail_after=0 lose_every=0 count_twice=false read_amp_unknown=false written_from_os=false\n  \
             sled: cache_bytes=0\n    {sled_settings}\n"
        )
    );
    let markdown = report::markdown(&info(100), &rows);
    assert!(
        markdown.ends_with(&format!("- sled: cache_bytes=0\n  - {sled_settings}\n")),
        "{markdown}"
    );
    for peer in kvbench::peers::not_built() {
        assert!(
            markdown.contains(&format!("- {}\n", peer.not_built_line())),
            "{markdown}"
        );
    }
}

#[test]
fn keys_a_non_durable_peer_loses_to_a_kill_are_a_note_not_an_error() {
    let recovery = |engine: &str, live: u64| {
        let live_keys_after_kill = Some(live);
        Measurement {
            engine: engine.to_string(),
            engine_name: engine.to_string(),
            workload: "recovery".to_string(),
            num: 100_000,
            live_keys: 100_000,
            open_after_kill_ms: Some(1.0),
            live_keys_after_kill,
            error: runner::after_kill_error(engine, live, 100_000),
            ..Measurement::default()
        }
    };
    let expected = "after kill: 99,939 of 100,000 keys \
                    (expected: not durable against a kill in this configuration)";
    let sled = report::notes(&recovery("sled", 99_939));
    assert!(sled.contains(expected) && !sled.contains("ERROR"), "{sled}");
    let redb = report::notes(&recovery("redb", 99_939));
    assert!(redb.contains(expected), "{redb}");
    // A peer that survives kills, and the course's own engines, must keep every key.
    for engine in ["fjall", "hashlog", "memtest"] {
        let notes = report::notes(&recovery(engine, 99_939));
        assert!(
            notes.contains("ERROR: recovery: the store opened after a kill holds 99939 live keys")
                && !notes.contains("not durable"),
            "{engine}: {notes}"
        );
    }
    // Nothing lost, nothing to say.
    assert!(!report::notes(&recovery("sled", 100_000)).contains("after kill:"));
}

/// Runs `workloads` on `specs` resolved against `registry`.
fn run_in(
    registry: &[kvbench::engines::EngineInfo],
    specs: &str,
    workloads: &str,
    config: &BenchConfig,
) -> Vec<Measurement> {
    let engines: Vec<_> = EngineSpec::parse_list(specs)
        .unwrap()
        .iter()
        .map(|s| s.resolve(registry, &[]).unwrap())
        .collect();
    let workloads = BenchWorkload::parse_list(workloads).unwrap();
    let _turn = turn();
    runner::run(&engines, &workloads, config, &NoProgress).unwrap()
}

#[test]
fn fillbatch_and_bulkload_fill_course_engines_and_hold_the_load_against_the_disk() {
    let (_tmp, config) = config(3000);
    let rows = run_in(
        kvbench::engines::ENGINES,
        "hashlog,lsm[memtable_bytes=16K]",
        "fillbatch,bulkload,readrandom",
        &config,
    );
    assert_eq!(rows.len(), 6, "{rows:#?}");
    for r in &rows {
        assert_eq!(r.error, None, "{} {}: {:?}", r.engine, r.workload, r.error);
        assert_eq!((r.ops, r.live_keys), (3000, 3000), "{r:?}");
        assert!(r.ops_per_sec.unwrap() > 0.0 && !r.time_limited, "{r:?}");
    }
    let rows_of = |workload: &str| -> Vec<&Measurement> {
        rows.iter().filter(|r| r.workload == workload).collect()
    };
    for batch in rows_of("fillbatch") {
        // Three batches of 1,000, each one operation of the latency columns.
        assert!(batch.p50_us.unwrap() <= batch.p99_us.unwrap(), "{batch:?}");
        assert!(batch.write_amp.unwrap() >= 1.0, "{batch:?}");
        assert_eq!((batch.mb_per_sec, batch.disk_mb_per_sec), (None, None));
    }
    let loads = rows_of("bulkload");
    for load in &loads {
        assert_eq!(load.p50_us, None, "one call, no latency: {load:?}");
        let (mb, disk) = (load.mb_per_sec.unwrap(), load.disk_mb_per_sec.unwrap());
        assert!(mb > 0.0 && disk > 0.0, "{load:?}");
        // 3000 pairs of 16 + 20 bytes: the load's MB/s is its bytes over its time.
        let expected = 3000.0 * 36.0 / 1e6 / load.elapsed_secs;
        assert!((mb - expected).abs() < expected * 1e-9, "{mb} {expected}");
        assert!((load.disk_fraction.unwrap() - mb / disk).abs() < 1e-12);
        assert!(load.disk_bytes > 3000 * 36, "{load:?}");
    }
    // The disk was measured once for the run: both engines are held against one figure.
    assert_eq!(loads[0].disk_mb_per_sec, loads[1].disk_mb_per_sec);
    let table = report::table(&info(3000), &rows);
    let note = loads[0].disk_note().unwrap();
    assert!(
        note.contains("% of disk ") && note.ends_with(" MB/s"),
        "{note}"
    );
    assert!(table.contains(&note), "{table}");
    let json: serde_json::Value = serde_json::from_str(&report::json(&rows).unwrap()).unwrap();
    for (i, r) in rows.iter().enumerate() {
        let load = r.workload == "bulkload";
        for field in ["disk_mb_per_sec", "mb_per_sec", "disk_fraction"] {
            assert_eq!(json[i][field].is_f64(), load, "{field} of {}", json[i]);
            assert_eq!(json[i][field].is_null(), !load, "{field} of {}", json[i]);
        }
    }
}

#[test]
fn a_time_limit_ends_the_load_input_early_and_the_next_workload_refills() {
    let (_tmp, mut config) = config(2500);
    config.time_limit = Some(Duration::ZERO);
    let rows = run_in(
        kvbench::engines::ENGINES,
        "hashlog",
        "bulkload,fillbatch,readseq",
        &config,
    );
    let [load, batch, read] = &rows[..] else {
        panic!("{rows:#?}")
    };
    // The input stopped after its first pair; the engine loaded what it got.
    assert!(
        load.time_limited && load.ops == 1 && load.live_keys == 1,
        "{load:?}"
    );
    assert_eq!(load.error, None);
    // fillbatch writes whole batches: the first one, then the time was up.
    assert!(batch.time_limited && batch.ops == 1000, "{batch:?}");
    assert_eq!((batch.live_keys, batch.error.as_deref()), (1000, None));
    // Both fills were cut short: readseq ran on a store filled first, untimed.
    assert_eq!((read.live_keys, read.error.as_deref()), (2500, None));
}

/// The test engine with a bulk load and batches that go wrong on purpose: `write` drops each
/// batch's last op, and `load` drops every tenth pair (`OVERCOUNT` false) or loads every
/// pair but reports one more (`OVERCOUNT` true).
struct BadLoad<const OVERCOUNT: bool>(common::MemEngine);

impl<const OVERCOUNT: bool> kv_shared::Engine for BadLoad<OVERCOUNT> {
    const NAME: &'static str = if OVERCOUNT { "overcount" } else { "droppairs" };
    const FORMAT_VERSION: u32 = 1;
    const OPTIONS: &'static [kv_shared::OptionDoc] = &[];

    fn open(dir: &std::path::Path, options: &kv_shared::Options) -> kv_shared::Result<Self> {
        common::MemEngine::open(dir, options).map(BadLoad)
    }
    fn put(&self, key: &[u8], value: &[u8]) -> kv_shared::Result<()> {
        self.0.put(key, value)
    }
    fn get(&self, key: &[u8]) -> kv_shared::Result<Option<Vec<u8>>> {
        self.0.get(key)
    }
    fn delete(&self, key: &[u8]) -> kv_shared::Result<()> {
        self.0.delete(key)
    }
    fn write(&self, batch: &kv_shared::WriteBatch) -> kv_shared::Result<()> {
        let mut short = kv_shared::WriteBatch::new();
        for op in batch.iter().take(batch.len() - 1) {
            short.put(op.key, op.value.unwrap_or_default())?;
        }
        self.0.write(&short)
    }
    fn cursor(&self) -> kv_shared::Result<kv_shared::BoxCursor<'_>> {
        self.0.cursor()
    }
    fn sync(&self) -> kv_shared::Result<()> {
        self.0.sync()
    }
    fn compact(&self) -> kv_shared::Result<()> {
        self.0.compact()
    }
    fn stats(&self) -> kv_shared::Result<kv_shared::Stats> {
        self.0.stats()
    }
    fn close(self) -> kv_shared::Result<()> {
        self.0.close()
    }
    fn load(
        &self,
        input: kv_shared::LoadInput<'_>,
        _order: kv_shared::LoadOrder,
    ) -> kv_shared::Result<kv_shared::LoadReport> {
        let mut pairs = 0;
        for pair in input {
            let (key, value) = pair?;
            pairs += 1;
            if OVERCOUNT || pairs % 10 != 0 {
                self.0.put(&key, &value)?;
            }
        }
        Ok(kv_shared::LoadReport {
            pairs: pairs + u64::from(OVERCOUNT),
            ..kv_shared::LoadReport::default()
        })
    }
}

const BAD_LOADS: &[kvbench::engines::EngineInfo] = &[
    kvbench::engines::EngineInfo::of::<BadLoad<false>>("drops pairs", common::inspect),
    kvbench::engines::EngineInfo::of::<BadLoad<true>>("overcounts", common::inspect),
];

#[test]
fn pairs_a_batch_or_a_load_lost_or_miscounted_are_wrong_answers() {
    let (_tmp, config) = config(500);
    let rows = run_in(
        BAD_LOADS,
        "droppairs,overcount",
        "fillbatch,bulkload",
        &config,
    );
    let errors: Vec<&str> = rows.iter().map(|r| r.error.as_deref().unwrap()).collect();
    // Key 499, the last of the one batch of 500, was dropped.
    assert_eq!(
        errors[0],
        "fillbatch: 1 of 500 sampled keys read back wrong (first: \"0000000000004990\" found nothing)"
    );
    assert_eq!(
        errors[1],
        "bulkload: 50 of 500 sampled keys read back wrong (first: \"0000000000000090\" found nothing)"
    );
    assert!(
        errors[2].starts_with("fillbatch: 1 of 500"),
        "{}",
        errors[2]
    );
    assert_eq!(
        errors[3],
        "bulkload: the engine's load report counts 501 pairs, the input gave 500"
    );
    // A wrong answer is a row's error, not the engine's failure: every row ran.
    assert_eq!(rows.len(), 4);
}

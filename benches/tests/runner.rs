//! The benchmark runner and report, on the test engine: every workload runs and is
//! measured, the JSON has the documented fields, the store lifecycle holds, and the
//! correctness checks and error rows catch a misbehaving engine.

mod common;

use std::time::Duration;

use clap::Parser;
use kv_shared::workload::WorkloadConfig;
use kvbench::bench_cli::{self, BenchArgs};
use kvbench::bench_workload::BenchWorkload;
use kvbench::engine_spec::EngineSpec;
use kvbench::measurement::Measurement;
use kvbench::progress::NoProgress;
use kvbench::report::{self, RunInfo};
use kvbench::runner::{self, BenchConfig};

use common::REGISTRY;

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
    let rows = bench_cli::run(REGISTRY, &args, None, &mut table).unwrap();
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
    assert_eq!(array[3]["settings"], "fail_after=0 lose_every=1000");
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
    let rows = bench_cli::run(REGISTRY, &args, None, Vec::new()).unwrap();
    assert!(
        rows[0]
            .error
            .as_deref()
            .unwrap()
            .contains("injected failure")
    );
    assert_eq!(rows[0].settings, "fail_after=10 lose_every=0");
}

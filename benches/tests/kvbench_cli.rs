//! Black-box tests of the `kvbench` binary on the real engines: a tiny run prints the table,
//! writes the JSON and Markdown files, and measures recovery after a real kill.

use std::process::Command;

#[test]
fn a_tiny_run_reports_every_engine_and_recovers_after_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("run.json");
    let markdown = tmp.path().join("run.md");
    let output = Command::new(env!("CARGO_BIN_EXE_kvbench"))
        .args([
            "--engines",
            "hashlog,bitcask[hint_files=false],sstable[search=linear],lsm",
            "--workloads",
            "fillrandom,readrandom,scan,recovery",
            "--num",
            "1500",
            "--set",
            "memtable_bytes=16K",
            "--quiet",
            "--dir",
        ])
        .arg(tmp.path())
        .arg("--json")
        .arg(&json)
        .arg("--markdown")
        .arg(&markdown)
        .arg("--charts")
        .arg(tmp.path().join("charts"))
        .output()
        .unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(table.starts_with("num=1500 "), "{table}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 16);
    for row in &rows {
        assert!(row["error"].is_null(), "{row}");
        assert_eq!(row["num"], 1500);
        if row["workload"] == "recovery" {
            // The child process filled a store and was killed; the store opened whole.
            assert!(row["open_after_kill_ms"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["open_ms"].as_f64().unwrap() > 0.0, "{row}");
        } else {
            assert!(row["ops_per_sec"].as_f64().unwrap() > 0.0, "{row}");
        }
    }
    let labels: Vec<&str> = rows.iter().map(|r| r["engine"].as_str().unwrap()).collect();
    assert_eq!(labels[4], "bitcask[hint_files=false]");
    assert_eq!(labels[8], "sstable[search=linear]");
    // --set reached the engines that document it, and only those.
    let settings = rows[8]["settings"].as_str().unwrap();
    assert!(
        settings.contains("memtable_bytes=16K ") && settings.contains(" search=linear"),
        "{settings}"
    );
    assert!(
        !rows[0]["settings"]
            .as_str()
            .unwrap()
            .contains("memtable_bytes")
    );
    assert!(
        rows[8]["extra"]["flushes"].as_u64().unwrap() > 0,
        "{}",
        rows[8]
    );
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        md.contains("| sstable[search=linear] | readrandom |"),
        "{md}"
    );
    // The stores were removed.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    let ops = std::fs::read_to_string(tmp.path().join("charts/ops.svg")).unwrap();
    assert!(ops.contains("sstable[search=linear]") && ops.ends_with("</svg>\n"));
    let amp = std::fs::read_to_string(tmp.path().join("charts/amplification.svg")).unwrap();
    assert!(amp.contains("read amplification"));
    assert!(table.contains("charts: "), "{table}");
}

#[test]
fn bad_arguments_exit_non_zero() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kvbench"))
            .args(args)
            .output()
            .unwrap()
    };
    let output = run(&["--engines", "hashlog[segment_bytes=1K]", "--quiet"]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.starts_with("kvbench: error: ") && err.contains("no option `segment_bytes`"),
        "{err}"
    );
    assert_eq!(run(&["--num", "many"]).status.code(), Some(2));
}

/// Runs `kvbench` with `args` on the course's engines in a fresh directory; returns the
/// directory, the JSON rows and the table.
fn kvbench(args: &[&str]) -> (tempfile::TempDir, Vec<serde_json::Value>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("run.json");
    let output = Command::new(env!("CARGO_BIN_EXE_kvbench"))
        .args(args)
        .args(["--quiet", "--time-limit", "20", "--dir"])
        .arg(tmp.path())
        .arg("--json")
        .arg(&json)
        .arg("--charts")
        .arg(tmp.path().join("charts"))
        .output()
        .unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (tmp, rows, table)
}

/// The settings `engine` ran with, from the table's `settings:` lines, and what the budget
/// line under them says, if there is one.
fn settings_of<'t>(table: &'t str, engine: &str) -> (&'t str, Option<&'t str>) {
    let settings = table.split("settings:\n").nth(1).unwrap();
    let mut lines = settings.lines();
    let prefix = format!("  {engine}: ");
    let line = lines
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no settings for {engine}: {table}"));
    let budget = lines.next().and_then(|l| l.strip_prefix("    budget: "));
    (line, budget)
}

#[test]
fn a_list_of_key_counts_runs_each_and_draws_the_scaling_charts() {
    let (tmp, rows, table) = kvbench(&[
        "--engines",
        "hashlog,lsm",
        "--workloads",
        "fillrandom,readrandom,compact",
        "--num",
        "2000,4K",
    ]);
    assert!(table.starts_with("num=2000,4096 "), "{table}");
    assert_eq!(rows.len(), 12);
    for (i, row) in rows.iter().enumerate() {
        assert!(row["error"].is_null(), "{row}");
        assert_eq!(row["num"], if i < 6 { 2000 } else { 4096 }, "{row}");
        assert_eq!(row["budget_mode"], "matched", "{row}");
        assert_eq!(row["budget_cache_bytes"], 64 << 20, "{row}");
        assert_eq!(row["budget_write_buffer_bytes"], 64 << 20, "{row}");
    }
    // The table is grouped by count, in the order run.
    let first = table.find("\nnum=2000\n").expect(&table);
    let second = table.find("\nnum=4096\n").expect(&table);
    assert!(first < second, "{table}");
    assert_eq!(table.matches("\nengine ").count(), 2, "{table}");
    let charts = tmp.path().join("charts");
    for workload in ["fillrandom", "readrandom"] {
        let svg = std::fs::read_to_string(charts.join(format!("scaling-{workload}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg ") && svg.ends_with("</svg>\n"),
            "{svg}"
        );
        assert_eq!(svg.matches("<polyline ").count(), 2, "{workload}: {svg}");
        assert!(
            svg.contains(">2,000</text>") && svg.contains(">4,096</text>"),
            "{svg}"
        );
        assert!(
            table.contains(&format!("scaling-{workload}.svg")),
            "{table}"
        );
    }
    // `compact` has no rate: no scaling chart. ops.svg shows the largest count.
    assert!(!charts.join("scaling-compact.svg").exists());
    let ops = std::fs::read_to_string(charts.join("ops.svg")).unwrap();
    assert!(ops.contains("kvbench: num=4096 "), "{ops}");
}

#[test]
fn the_budget_sets_the_engines_memory_and_own_leaves_their_defaults() {
    let args = |budget: &'static str| {
        [
            "--engines",
            "lsm,hashlog",
            "--workloads",
            "fillrandom",
            "--num",
            "1000",
            "--budget",
            budget,
        ]
    };
    let (_tmp, rows, matched) = kvbench(&args("matched"));
    let (lsm, budget) = settings_of(&matched, "lsm");
    assert!(
        lsm.starts_with("memtable_bytes=32M ") && lsm.ends_with(" block_cache_bytes=64M"),
        "{matched}"
    );
    assert_eq!(
        budget,
        Some("memtable_bytes=32M (×2: active + 1 immutable) block_cache_bytes=64M")
    );
    assert!(matched.contains("\nbudget: matched, cache_bytes=64M write_buffer_bytes=64M"));
    let (_, hashlog_budget) = settings_of(&matched, "hashlog");
    assert!(
        hashlog_budget.unwrap().starts_with("does not apply"),
        "{matched}"
    );
    assert_eq!(rows[0]["budget_settings"], budget.unwrap());

    let (_tmp, rows, own) = kvbench(&args("own"));
    let (lsm_own, budget) = settings_of(&own, "lsm");
    assert_ne!(lsm, lsm_own);
    assert!(lsm_own.starts_with("memtable_bytes=4M "), "{own}");
    assert_eq!(budget, None, "{own}");
    assert!(
        own.contains("\nbudget: own (each engine's own defaults)\n"),
        "{own}"
    );
    assert_eq!(rows[0]["budget_mode"], "own");
    assert!(rows[0]["budget_cache_bytes"].is_null());

    // Other figures change what each engine gets.
    let (_tmp, _, small) = kvbench(&[
        "--engines",
        "lsm",
        "--workloads",
        "fillrandom",
        "--num",
        "1000",
        "--cache-bytes",
        "8M",
        "--write-buffer-bytes",
        "1M",
    ]);
    let (_, budget) = settings_of(&small, "lsm");
    assert_eq!(
        budget,
        Some("memtable_bytes=512K (×2: active + 1 immutable) block_cache_bytes=8M")
    );
}

#[test]
fn a_spec_or_set_setting_wins_over_the_budget_and_the_report_says_so() {
    let (_tmp, rows, table) = kvbench(&[
        "--engines",
        "lsm[memtable_bytes=16K],sstable",
        "--workloads",
        "fillrandom",
        "--num",
        "1500",
        "--set",
        "block_cache_bytes=1M",
    ]);
    let (lsm, budget) = settings_of(&table, "lsm[memtable_bytes=16K]");
    assert!(
        lsm.starts_with("memtable_bytes=16K ") && lsm.ends_with(" block_cache_bytes=1M"),
        "{table}"
    );
    assert_eq!(
        budget,
        Some(
            "memtable_bytes=16K (the spec wins over the budget's 32M) \
             block_cache_bytes=1M (--set wins over the budget's 64M)"
        )
    );
    // The spec's 16K memtable really ran: 1,500 keys flushed several tables.
    assert!(
        rows[0]["extra"]["flushes"].as_u64().unwrap() > 1,
        "{}",
        rows[0]
    );
    let (sstable, budget) = settings_of(&table, "sstable");
    assert!(sstable.starts_with("memtable_bytes=64M "), "{table}");
    assert_eq!(
        budget,
        Some(
            "memtable_bytes=64M (×1: the flush runs in the writer's thread); cache unused: stage 3 has no block cache"
        )
    );
}

#[test]
fn bad_counts_and_sizes_are_refused() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kvbench"))
            .args(args)
            .args(["--quiet", "--no-charts", "--workloads", "fillseq"])
            .output()
            .unwrap()
    };
    let twice = run(&["--num", "2000,2000", "--engines", "hashlog"]);
    assert_eq!(twice.status.code(), Some(1));
    let err = String::from_utf8(twice.stderr).unwrap();
    assert!(err.contains("--num lists 2000 twice"), "{err}");
    for bad in [
        ["--num", "1.5M"],
        ["--num", "2000,"],
        ["--cache-bytes", "lots"],
        ["--budget", "some"],
    ] {
        assert_eq!(run(&bad).status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn a_list_of_value_sizes_runs_each_and_draws_the_value_size_charts() {
    let (tmp, rows, table) = kvbench(&[
        "--engines",
        "hashlog,lsm[memtable_bytes=64K]",
        "--workloads",
        "fillrandom,overwrite,readrandom",
        "--num",
        "1500",
        "--value-size",
        "100,1K",
    ]);
    assert!(
        table.starts_with("num=1500 key_size=16 value_size=100,1024 "),
        "{table}"
    );
    assert_eq!(rows.len(), 12);
    for (i, row) in rows.iter().enumerate() {
        assert!(row["error"].is_null(), "{row}");
        assert_eq!(row["num"], 1500, "{row}");
        assert_eq!(row["value_size"], if i < 6 { 100 } else { 1024 }, "{row}");
        assert!(row["ops_per_sec"].as_f64().unwrap() > 0.0, "{row}");
    }
    // The user bytes of a fill grow with the value size, and so do the bytes on disk.
    let fill = |i: usize| rows[i]["disk_bytes"].as_u64().unwrap();
    assert_eq!(rows[6]["workload"], "fillrandom");
    assert!(fill(6) > 5 * fill(0), "{} vs {}", fill(6), fill(0));
    // One table per value size, in the order run.
    let first = table.find("\nvalue_size=100\n").expect(&table);
    let second = table.find("\nvalue_size=1024\n").expect(&table);
    assert!(first < second, "{table}");
    assert_eq!(table.matches("\nengine ").count(), 2, "{table}");
    let charts = tmp.path().join("charts");
    for workload in ["fillrandom", "overwrite"] {
        let name = format!("value-size-{workload}.svg");
        let svg = std::fs::read_to_string(charts.join(&name)).unwrap();
        assert!(svg.ends_with("</svg>\n"), "{svg}");
        // Two plots (ops/s, W-amp), each a line per engine.
        assert_eq!(svg.matches("<polyline ").count(), 4, "{workload}: {svg}");
        assert!(svg.contains("write amplification against the value size"));
        assert!(
            svg.contains(">100</text>") && svg.contains(">1K</text>"),
            "{svg}"
        );
        assert!(table.contains(&name), "{table}");
    }
    // readrandom writes nothing: its chart has the rates only.
    let reads = std::fs::read_to_string(charts.join("value-size-readrandom.svg")).unwrap();
    assert_eq!(reads.matches("<polyline ").count(), 2, "{reads}");
    assert!(!charts.join("scaling-fillrandom.svg").exists());
    // ops.svg and amplification.svg show the largest value size.
    let ops = std::fs::read_to_string(charts.join("ops.svg")).unwrap();
    assert!(
        ops.contains("kvbench: num=1500 key_size=16 value_size=1024 "),
        "{ops}"
    );
}

#[test]
fn value_sizes_are_a_list_but_not_beside_a_list_of_counts() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kvbench"))
            .args(args)
            .args(["--quiet", "--no-charts", "--workloads", "fillseq"])
            .args(["--engines", "hashlog"])
            .output()
            .unwrap()
    };
    let both = run(&["--num", "1000,2000", "--value-size", "100,1K"]);
    assert_eq!(both.status.code(), Some(1));
    let err = String::from_utf8(both.stderr).unwrap();
    assert!(
        err.contains("--num and --value-size cannot both be lists"),
        "{err}"
    );
    let twice = run(&["--num", "100", "--value-size", "1K,1024"]);
    assert_eq!(twice.status.code(), Some(1));
    let err = String::from_utf8(twice.stderr).unwrap();
    assert!(err.contains("--value-size lists 1024 twice"), "{err}");
    let too_big = run(&["--num", "100", "--value-size", "100,1G"]);
    assert_eq!(too_big.status.code(), Some(1));
    let err = String::from_utf8(too_big.stderr).unwrap();
    assert!(err.contains("value size 1073741824 is over"), "{err}");
    for bad in ["1.5K", "100,", "lots"] {
        assert_eq!(run(&["--value-size", bad]).status.code(), Some(2), "{bad}");
    }
    // The help says what large values cost on disk.
    let help = Command::new(env!("CARGO_BIN_EXE_kvbench"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("large values need a smaller --num"), "{help}");
}

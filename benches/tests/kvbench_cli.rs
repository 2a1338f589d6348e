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

//! Black-box tests of the `kv` binary: its output and exit codes, driven as a user or a
//! script would, on the real engines.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const ENGINES: [&str; 4] = ["hashlog", "bitcask", "sstable", "lsm"];

fn kv(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kv");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Runs `kv` and expects success; returns standard output.
fn ok(args: &[&str], stdin: &str) -> String {
    let output = kv(args, stdin);
    assert!(
        output.status.success(),
        "kv {args:?} failed: {}",
        stderr(&output)
    );
    stdout(&output)
}

/// Runs `kv` and expects exit status 1 with a message; returns standard error.
fn fails(args: &[&str], stdin: &str) -> String {
    let output = kv(args, stdin);
    assert_eq!(output.status.code(), Some(1), "kv {args:?}: {output:?}");
    let err = stderr(&output);
    assert!(err.starts_with("kv: error: "), "{err}");
    err
}

fn store<'a>(engine: &'a str, dir: &'a Path) -> Vec<&'a str> {
    vec!["--engine", engine, "--dir", dir.to_str().unwrap()]
}

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

#[test]
fn the_documented_shell_session_on_every_engine() {
    let tmp = tempfile::tempdir().unwrap();
    for engine in ENGINES {
        let dir = tmp.path().join(engine);
        let out = ok(
            &with(&store(engine, &dir), &["shell"]),
            "put a 1\nget a\ndel a\nget a\nquit\n",
        );
        assert_eq!(out, "OK\n1\nOK\n(nil)\n", "{engine}");
    }
}

#[test]
fn every_shell_command_on_every_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let script = "put b 2\nput a 1\nput c 3\nscan - -\nscan b c\nscan b -\ndel b\nscan - -\nsync\n\
                  compact\nget a\nbogus\nput x\nstats\nquit\nput never 1\n";
    for engine in ENGINES {
        let dir = tmp.path().join(engine);
        let out = ok(&with(&store(engine, &dir), &["shell"]), script);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            &lines[..18],
            [
                "OK", "OK", "OK", "a 1", "b 2", "c 3", "END", "b 2", "END", "b 2", "c 3", "END",
                "OK", "a 1", "c 3", "END", "OK", "OK"
            ],
            "{engine}"
        );
        assert_eq!(lines[18], "1", "{engine}");
        assert!(
            lines[19].starts_with("ERR unknown command `bogus`"),
            "{engine}"
        );
        assert!(
            lines[20].starts_with("ERR `put` takes 2 arguments"),
            "{engine}"
        );
        assert!(
            lines[21].starts_with("user_bytes_written=7 ") && lines[21].contains(" live_keys=2 "),
            "{engine}: {}",
            lines[21]
        );
        assert_eq!(lines.len(), 22, "{engine}: nothing after quit");
        // The store was closed cleanly and reopens with the same contents.
        assert_eq!(ok(&with(&store(engine, &dir), &["scan"]), ""), "a 1\nc 3\n");
        assert_eq!(
            ok(&with(&store(engine, &dir), &["get", "never"]), ""),
            "(nil)\n"
        );
    }
}

#[test]
fn one_shot_commands_and_hex() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let s = store("hashlog", &dir);
    assert_eq!(ok(&with(&s, &["put", "k1", "v1"]), ""), "OK\n");
    assert_eq!(ok(&with(&s, &["put", "k2", "-v2"]), ""), "OK\n");
    assert_eq!(ok(&with(&s, &["get", "k1"]), ""), "v1\n");
    assert_eq!(ok(&with(&s, &["get", "missing"]), ""), "(nil)\n");
    assert_eq!(ok(&with(&s, &["scan", "--from", "k2"]), ""), "k2 -v2\n");
    assert_eq!(ok(&with(&s, &["scan", "--to", "k2"]), ""), "k1 v1\n");
    assert_eq!(ok(&with(&s, &["delete", "k1"]), ""), "OK\n");
    assert_eq!(ok(&with(&s, &["compact"]), ""), "OK\n");
    assert!(ok(&with(&s, &["stats"]), "").contains(" live_keys=1 "));
    // Binary keys and values through --hex; text mode escapes what it cannot print.
    assert_eq!(ok(&with(&s, &["--hex", "put", "00ff", "0a00"]), ""), "OK\n");
    assert_eq!(ok(&with(&s, &["--hex", "get", "00FF"]), ""), "0a00\n");
    assert_eq!(
        ok(&with(&s, &["scan", "--to", "k"]), ""),
        "\\x00\\xff \\x0a\\x00\n"
    );
    let out = ok(
        &with(&s, &["--hex", "shell"]),
        "get 00ff\nscan - 01\nget 0\n",
    );
    assert!(
        out.starts_with("0a00\n00ff 0a00\nEND\nERR bad hex `0`"),
        "{out}"
    );
    assert!(fails(&with(&s, &["--hex", "get", "xyz"]), "").contains("bad hex"));
}

#[test]
fn errors_exit_non_zero_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let d = dir.to_str().unwrap();
    ok(&["--engine", "hashlog", "--dir", d, "put", "a", "1"], "");
    let err = fails(&["--engine", "bitcask", "--dir", d, "get", "a"], "");
    assert!(
        err.contains("holds a `hashlog` store, not a `bitcask` store"),
        "{err}"
    );
    let err = fails(&["--engine", "nosuch", "--dir", d, "get", "a"], "");
    assert!(
        err.contains("unknown engine `nosuch`") && err.contains("hashlog, bitcask, sstable, lsm"),
        "{err}"
    );
    let err = fails(
        &[
            "--engine",
            "bitcask",
            "--dir",
            tmp.path().join("b").to_str().unwrap(),
            "--set",
            "segmnet_bytes=4K",
            "get",
            "a",
        ],
        "",
    );
    assert!(
        err.contains("unknown option `segmnet_bytes`") && err.contains("segment_bytes"),
        "{err}"
    );
    let err = fails(
        &[
            "--engine",
            "bitcask",
            "--dir",
            tmp.path().join("b").to_str().unwrap(),
            "--set",
            "segment_bytes=lots",
            "get",
            "a",
        ],
        "",
    );
    assert!(err.contains("segment_bytes"), "{err}");
    assert!(fails(&["--dir", d, "get", "a"], "").contains("needs --engine"));
    assert!(fails(&["--engine", "hashlog", "get", "a"], "").contains("needs --dir"));
    let big = "k".repeat(70_000);
    assert!(
        fails(&["--engine", "hashlog", "--dir", d, "put", &big, "v"], "")
            .contains("over the limit")
    );
    // Malformed command lines are clap's usage errors: status 2.
    assert_eq!(
        kv(&["--engine", "hashlog", "--dir", d, "put", "a"], "")
            .status
            .code(),
        Some(2)
    );
    assert_eq!(kv(&["frobnicate"], "").status.code(), Some(2));
    // Nothing was lost along the way.
    assert_eq!(
        ok(&["--engine", "hashlog", "--dir", d, "scan"], ""),
        "a 1\n"
    );
}

#[test]
fn a_locked_store_is_refused_while_a_shell_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let d = dir.to_str().unwrap();
    let mut shell = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["--engine", "hashlog", "--dir", d, "shell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = shell.stdin.take().unwrap();
    let mut output = std::io::BufReader::new(shell.stdout.take().unwrap());
    // Wait for the shell's first reply: by then it holds the lock.
    input.write_all(b"put held 1\n").unwrap();
    input.flush().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut output, &mut line).unwrap();
    assert_eq!(line, "OK\n");
    let err = fails(&["--engine", "hashlog", "--dir", d, "get", "held"], "");
    assert!(err.contains("already open"), "{err}");
    drop(input);
    assert!(shell.wait().unwrap().success());
    assert_eq!(
        ok(&["--engine", "hashlog", "--dir", d, "get", "held"], ""),
        "1\n"
    );
}

#[test]
fn engines_lists_every_engine_and_its_options() {
    let out = ok(&["engines"], "");
    for engine in ENGINES {
        assert!(out.contains(&format!("{engine}: stage ")), "{out}");
    }
    assert!(out.contains("--set segment_bytes="), "{out}");
    assert!(out.contains("--set memtable_bytes="), "{out}");
}

#[test]
fn inspect_dumps_every_file_of_every_engine() {
    let tmp = tempfile::tempdir().unwrap();
    for engine in ENGINES {
        let dir = tmp.path().join(engine);
        let s = store(engine, &dir);
        let mut script = String::new();
        for i in 0..50 {
            script.push_str(&format!("put key{i:03} value{i}\n"));
        }
        script.push_str("del key007\ncompact\n");
        // Small thresholds, so that every kind of file exists (segments and hints, tables).
        let small = match engine {
            "bitcask" => vec!["--set", "segment_bytes=1K"],
            "sstable" | "lsm" => vec!["--set", "memtable_bytes=1K"],
            _ => vec![],
        };
        ok(&with(&with(&s, &small), &["shell"]), &script);
        let mut dumped = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let output = kv(&["inspect", path.to_str().unwrap()], "");
            if name == "LOCK" {
                assert!(stderr(&output).contains("empty"), "{engine}");
                continue;
            }
            assert!(
                output.status.success(),
                "{engine} {name}: {}",
                stderr(&output)
            );
            let text = stdout(&output);
            assert!(
                text.lines().count() > 2 && text.contains("magic"),
                "{engine} {name}: {text}"
            );
            if name == "ENGINE" {
                assert!(
                    text.contains(&format!("engine name \"{engine}\"")),
                    "{text}"
                );
            }
            dumped += 1;
        }
        assert!(dumped >= 2, "{engine}: only {dumped} files dumped");
    }
    let other = tmp.path().join("notes.txt");
    std::fs::write(&other, "just text").unwrap();
    assert!(fails(&["inspect", other.to_str().unwrap()], "").contains("unknown file format"));
    assert!(
        fails(&["inspect", tmp.path().join("none").to_str().unwrap()], "").contains("I/O error")
    );
}

/// Runs `kv inspect path` and expects it to be refused within ten seconds; returns standard
/// error. A `kv` still running then is killed, and the test fails.
fn inspect_refused_promptly(path: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["inspect", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kv");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "kv inspect {} did not finish in ten seconds",
                path.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(&output);
    assert!(err.starts_with("kv: error: "), "{err}");
    err
}

#[test]
fn inspect_refuses_devices_fifos_and_huge_files() {
    let err = inspect_refused_promptly(Path::new("/dev/zero"));
    assert!(err.contains("not a regular file"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let err = inspect_refused_promptly(&fifo);
    assert!(err.contains("not a regular file"), "{err}");
    let err = inspect_refused_promptly(tmp.path());
    assert!(err.contains("not a regular file"), "{err}");
    // A sparse file one byte past the limit: refused before a byte of it is read.
    let huge = tmp.path().join("huge");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(kvbench::inspect::MAX_FILE_BYTES + 1).unwrap();
    let err = inspect_refused_promptly(&huge);
    assert!(err.contains("larger than 256 MiB"), "{err}");
}

#[test]
fn sstable_build_get_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("pairs.csv");
    std::fs::write(
        &input,
        "banana,yellow\napple,red\ncherry,dark,red\napple,green\n",
    )
    .unwrap();
    let table = tmp.path().join("fruit.sst");
    let t = table.to_str().unwrap();
    assert_eq!(
        ok(&["sstable", "build", input.to_str().unwrap(), t], ""),
        format!("wrote 3 entries to {t}\n")
    );
    assert_eq!(ok(&["sstable", "get", t, "apple"], ""), "green\n");
    assert_eq!(ok(&["sstable", "get", t, "durian"], ""), "(nil)\n");
    assert_eq!(
        ok(&["sstable", "scan", t], ""),
        "apple\tgreen\nbanana\tyellow\ncherry\tdark,red\n"
    );
    assert!(ok(&["inspect", t], "").contains("footer"));
    // Another delimiter, from standard input.
    let piped = tmp.path().join("piped.sst");
    let p = piped.to_str().unwrap();
    assert_eq!(
        ok(&["sstable", "build", "--delimiter", "=>", "-", p], "k=>v\n"),
        format!("wrote 1 entry to {p}\n")
    );
    assert_eq!(ok(&["--hex", "sstable", "scan", p], ""), "6b\t76\n");
    // A bad line names its number, and nothing is written.
    let bad = tmp.path().join("bad.sst");
    let err = fails(
        &["sstable", "build", "-", bad.to_str().unwrap()],
        "a,1\nno delimiter\n",
    );
    assert!(err.contains("line 2"), "{err}");
    assert!(!bad.exists());
    assert!(fails(&["sstable", "get", input.to_str().unwrap(), "a"], "").contains("corrupt"));
}

#[test]
fn rscan_and_seek_on_every_engine() {
    let tmp = tempfile::tempdir().unwrap();
    for (engine, dir) in ENGINES.map(|engine| (engine, tmp.path().join(engine))) {
        let s = store(engine, &dir);
        ok(
            &with(&s, &["shell"]),
            "put b 2\nput a 1\nput d 4\nput c 3\nput e 5\ndel c\n",
        );
        assert_eq!(
            ok(&with(&s, &["rscan"]), ""),
            "e 5\nd 4\nb 2\na 1\n",
            "{engine}"
        );
        assert_eq!(
            ok(&with(&s, &["rscan", "--from", "b", "--to", "e"]), ""),
            "d 4\nb 2\n",
            "{engine}"
        );
        assert_eq!(
            ok(&with(&s, &["rscan", "--from", "b"]), ""),
            "e 5\nd 4\nb 2\n"
        );
        assert_eq!(ok(&with(&s, &["rscan", "--to", "b"]), ""), "a 1\n");
        assert_eq!(
            ok(&with(&s, &["rscan", "--from", "e", "--to", "b"]), ""),
            ""
        );
        assert_eq!(
            ok(&with(&s, &["seek", "b"]), ""),
            "b 2\nd 4\ne 5\n",
            "{engine}"
        );
        assert_eq!(ok(&with(&s, &["seek", "c", "--limit", "1"]), ""), "d 4\n");
        assert_eq!(ok(&with(&s, &["seek", "a", "--limit", "0"]), ""), "");
        assert_eq!(ok(&with(&s, &["seek", "z"]), ""), "");
        assert_eq!(
            ok(&with(&s, &["--hex", "seek", "64"]), ""),
            "64 34\n65 35\n"
        );
        let out = ok(
            &with(&s, &["shell"]),
            "rscan - -\nrscan b e\nrscan c -\nseek b 2\nseek c 0\nseek 0 9\nseek a x\nrscan a\n",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            &lines[..19],
            [
                "e 5", "d 4", "b 2", "a 1", "END", "d 4", "b 2", "END", "e 5", "d 4", "END", "b 2",
                "d 4", "END", "END", "a 1", "b 2", "d 4", "e 5"
            ],
            "{engine}"
        );
        assert_eq!(lines[19], "END", "{engine}");
        assert!(lines[20].starts_with("ERR `seek` takes a number"), "{out}");
        assert!(
            lines[21].starts_with("ERR `rscan` takes 2 arguments"),
            "{out}"
        );
        assert_eq!(lines.len(), 22, "{engine}: {out}");
    }
}

#[test]
fn rscan_and_seek_walk_keys_across_flushed_tables_and_compactions() {
    // Small thresholds, so the keys lie in several segments or tables and a memtable.
    const SMALL: [(&str, &[&str]); 4] = [
        ("hashlog", &[]),
        ("bitcask", &["--set", "segment_bytes=1K"]),
        ("sstable", &["--set", "memtable_bytes=1K"]),
        ("lsm", &["--set", "memtable_bytes=1K"]),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (engine, settings) in SMALL {
        let dir = tmp.path().join(engine);
        let s = with(&store(engine, &dir), settings);
        let mut script = String::new();
        for i in (0..120).rev() {
            script.push_str(&format!("put key{i:03} value{i}\n"));
            if i % 40 == 0 {
                script.push_str("compact\n");
            }
        }
        for i in (0..120).step_by(3) {
            script.push_str(&format!("del key{i:03}\n"));
        }
        ok(&with(&s, &["shell"]), &script);
        let live: Vec<String> = (0..120)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("key{i:03} value{i}\n"))
            .collect();
        let forward = ok(&with(&s, &["scan"]), "");
        assert_eq!(forward, live.concat(), "{engine}");
        let backward = ok(&with(&s, &["rscan"]), "");
        assert_eq!(
            backward,
            live.iter().rev().cloned().collect::<String>(),
            "{engine}"
        );
        let from_40 = ok(&with(&s, &["seek", "key040", "--limit", "3"]), "");
        assert_eq!(
            from_40, "key040 value40\nkey041 value41\nkey043 value43\n",
            "{engine}"
        );
        let below_60 = ok(
            &with(&s, &["rscan", "--from", "key055", "--to", "key060"]),
            "",
        );
        assert_eq!(
            below_60, "key059 value59\nkey058 value58\nkey056 value56\nkey055 value55\n",
            "{engine}"
        );
    }
}

/// Every file under `dir` (recursively) and its bytes.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(snapshot(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            files.insert(path, bytes);
        }
    }
    files
}

/// Fills a store with `value-NNN` under `key-NNN` (200 keys), flips one byte of `file` at
/// `offset`, checks that the store refuses to open (when `refused`: opening must not be
/// tried where it would cut the damaged file short), then repairs it with `kv repair`: a
/// dry run changes nothing, the repair keeps the damaged file in `lost/`, and the store
/// opens with every key holding its value or (for the one in the damaged record) nothing.
fn damage_and_repair(engine: &str, settings: &[&str], file: &str, offset: usize, refused: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(engine);
    let base = with(&store(engine, &dir), settings);
    let script: String = (0..200)
        .map(|i| format!("put key-{i:03} value-{i:03}-{}\n", "v".repeat(40)))
        .collect();
    ok(&with(&base, &["shell"]), &script);
    let path = dir.join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    if refused {
        let err = fails(&with(&base, &["get", "key-000"]), "");
        assert!(
            err.contains(&format!("corruption in {}", path.display())),
            "{err}"
        );
    }

    let before = snapshot(&dir);
    let dry = ok(&with(&base, &["repair", "--dry-run"]), "");
    assert!(dry.contains(&format!("damaged  {file}: ")), "{dry}");
    assert!(dry.contains("would move to lost/"), "{dry}");
    assert_eq!(snapshot(&dir), before, "a dry run changes nothing:\n{dry}");

    let done = ok(&with(&base, &["repair"]), "");
    assert!(done.contains(&format!("moved to lost/{file}")), "{done}");
    assert_eq!(std::fs::read(dir.join("lost").join(file)).unwrap(), bytes);
    let mut missing = 0;
    for i in 0..200 {
        let got = ok(&with(&base, &["get", &format!("key-{i:03}")]), "");
        if got == "(nil)\n" {
            missing += 1;
        } else {
            assert_eq!(got, format!("value-{i:03}-{}\n", "v".repeat(40)));
        }
    }
    assert!(
        missing <= 1,
        "{missing} keys lost to one flipped byte:\n{done}"
    );
    let again = ok(&with(&base, &["repair", "--dry-run"]), "");
    assert!(again.contains("nothing to repair"), "{again}");
}

#[test]
fn repair_brings_back_a_damaged_bitcask_segment() {
    // 4 KiB segments: the first is sealed long before the last put.
    damage_and_repair(
        "bitcask",
        &["--set", "segment_bytes=4K"],
        "00000001.seg",
        300,
        true,
    );
}

/// Opening a hashlog store with a damaged record keeps only the records before it (its one
/// log may hold an unsynced tail); repair, run first, keeps the records after it too.
#[test]
fn repair_brings_back_a_damaged_hashlog_data_file() {
    damage_and_repair("hashlog", &[], "data.log", 3000, false);
}

#[test]
fn repair_refuses_a_foreign_or_missing_directory_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    let missing = tmp.path().join("missing");
    for engine in ["hashlog", "bitcask"] {
        for dry_run in [true, false] {
            let mut args = vec!["repair"];
            if dry_run {
                args.push("--dry-run");
            }
            let err = fails(&with(&store(engine, &foreign), &args), "");
            assert!(err.contains("not a store"), "{err}");
            let err = fails(&with(&store(engine, &missing), &args), "");
            assert!(err.contains("not a store"), "{err}");
        }
    }
    let names: Vec<_> = std::fs::read_dir(&foreign).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing added to the foreign directory");
    assert_eq!(std::fs::read(foreign.join("notes.txt")).unwrap(), b"mine");
    assert!(!missing.exists(), "repair never creates a store");
    let dir = tmp.path().join("store");
    ok(&with(&store("bitcask", &dir), &["put", "a", "1"]), "");
    let err = fails(&with(&store("hashlog", &dir), &["repair"]), "");
    assert!(
        err.contains("bitcask"),
        "another engine's store is refused: {err}"
    );
}

#[test]
fn repair_of_a_clean_store_of_every_engine_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for engine in ENGINES {
        let dir = tmp.path().join(engine);
        ok(&with(&store(engine, &dir), &["put", "a", "1"]), "");
        let before = snapshot(&dir);
        for args in [&["repair", "--dry-run"][..], &["repair"][..]] {
            let out = ok(&with(&store(engine, &dir), args), "");
            assert!(out.contains("nothing to repair"), "{engine}: {out}");
        }
        assert_eq!(snapshot(&dir), before, "{engine}");
        assert_eq!(ok(&with(&store(engine, &dir), &["get", "a"]), ""), "1\n");
    }
}

/// The lines of `kv load`'s report, as `(pairs, sort runs, files added, method)`.
fn load_report(out: &str) -> (u64, u64, u64, String) {
    let line = |name: &str| -> String {
        let found = out.lines().find_map(|l| l.strip_prefix(name));
        found
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .trim()
            .to_string()
    };
    let loaded = line("loaded ");
    let pairs = loaded.split(' ').next().unwrap().parse().unwrap();
    assert!(
        loaded.contains(" bytes in ") && loaded.ends_with(" MB/s"),
        "{out}"
    );
    let runs = line("sort runs:").parse().unwrap();
    let files = line("files added:").parse().unwrap();
    (pairs, runs, files, line("method:"))
}

#[test]
fn load_streams_an_unsorted_file_into_hashlog_and_bitcask() {
    // lsm and sstable ingest tables and are tested where that lands; these two load by
    // batches of 1,000, the default.
    for engine in ["hashlog", "bitcask"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let s = store(engine, &dir);
        // 2,500 keys in a scrambled order, key 7 twice (the last wins), an empty line.
        let mut text = String::from("k00007,first\n\n");
        for i in 0..2500u32 {
            let k = (i * 7919) % 2500;
            text.push_str(&format!("k{k:05},value {k},with its comma\n"));
        }
        text.push_str("k00007,last\n");
        let input = tmp.path().join("pairs.csv");
        std::fs::write(&input, &text).unwrap();
        let out = ok(&with(&s, &["load", input.to_str().unwrap()]), "");
        let (pairs, runs, files, method) = load_report(&out);
        assert_eq!((pairs, runs, files), (2502, 0, 0), "{engine}: {out}");
        assert!(
            method.starts_with("3 batches of up to 1000"),
            "{engine}: {method}"
        );
        let get = |key: &str| ok(&with(&s, &["get", key]), "");
        assert_eq!(get("k00007"), "last\n", "{engine}");
        assert_eq!(get("k02499"), "value 2499,with its comma\n", "{engine}");
        assert_eq!(get("k02500"), "(nil)\n", "{engine}");
        let scan = ok(&with(&s, &["scan"]), "");
        assert_eq!(scan.lines().count(), 2500, "{engine}");
        assert!(
            scan.starts_with("k00000 value 0,with its comma\n"),
            "{engine}"
        );
        // Standard input, another delimiter, --sorted, and --hex keys and values.
        let out = ok(
            &with(&s, &["--hex", "load", "-", "--delimiter", "=>", "--sorted"]),
            "00ff=>0a00\n6b30=>6869\n",
        );
        assert_eq!(load_report(&out).0, 2, "{engine}: {out}");
        assert_eq!(ok(&with(&s, &["--hex", "get", "00ff"]), ""), "0a00\n");
        assert_eq!(ok(&with(&s, &["get", "k0"]), ""), "hi\n");
    }
}

#[test]
fn load_refuses_a_bad_line_naming_its_number() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let s = store("bitcask", &dir);
    let err = fails(
        &with(&s, &["load", "-"]),
        "a,1\n\nb,2\nno delimiter here\nc,3\n",
    );
    assert!(
        err.contains("line 4") && err.contains("no delimiter"),
        "{err}"
    );
    let err = fails(&with(&s, &["load", "-"]), "a,1\n,empty key\n");
    assert!(err.contains("line 2: empty key"), "{err}");
    let err = fails(&with(&s, &["--hex", "load", "-"]), "00,01\n0g,01\n");
    assert!(err.contains("line 2") && err.contains("bad hex"), "{err}");
    let missing = tmp.path().join("missing.csv");
    let err = fails(&with(&s, &["load", missing.to_str().unwrap()]), "");
    assert!(err.contains("missing.csv"), "{err}");
    // Nothing after the bad line went in (the default load keeps the batches before it).
    assert_eq!(ok(&with(&s, &["get", "c"]), ""), "(nil)\n");
}

#[test]
fn load_into_the_table_engines_sorts_through_runs_and_refuses_a_broken_promise() {
    for engine in ["sstable", "lsm"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        // A small memtable: the load's sort may hold 4 KiB, so 1,000 pairs spill runs.
        let s = with(&store(engine, &dir), &["--set", "memtable_bytes=4K"]);
        let mut text = String::new();
        for i in 0..1000u32 {
            let k = (i * 7919) % 1000;
            text.push_str(&format!("k{k:04},v{k}\n"));
        }
        text.push_str("k0500,last\n");
        let out = ok(&with(&s, &["load", "-"]), &text);
        let (pairs, runs, files, method) = load_report(&out);
        assert_eq!(pairs, 1001, "{engine}: {out}");
        assert!(runs > 1 && files >= 1, "{engine}: {out}");
        assert!(method.contains("ingested"), "{engine}: {method}");
        assert_eq!(ok(&with(&s, &["get", "k0500"]), ""), "last\n", "{engine}");
        assert_eq!(ok(&with(&s, &["get", "k0999"]), ""), "v999\n", "{engine}");
        assert_eq!(
            ok(&with(&s, &["scan"]), "").lines().count(),
            1000,
            "{engine}"
        );
        // No run file of the sort is left anywhere in the store.
        let runs_left = files_under(&dir)
            .into_iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("run-"))
            .collect::<Vec<_>>();
        assert!(runs_left.is_empty(), "{engine}: {runs_left:?}");
        // --sorted promises order: a key out of order is refused, naming its pair.
        let err = fails(&with(&s, &["load", "-", "--sorted"]), "x1,1\nx3,3\nx2,2\n");
        assert!(err.contains("pair 3"), "{engine}: {err}");
        assert_eq!(ok(&with(&s, &["get", "x1"]), ""), "(nil)\n", "{engine}");
    }
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// `--dir` may be a relative name of a directory that does not exist yet: it is created in
/// the working directory (whose entry is then synced), for every engine.
#[test]
fn a_relative_store_directory_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    for engine in ["hashlog", "lsm"] {
        let dir = format!("rel-{engine}");
        let run = |args: &[&str]| {
            let output = Command::new(env!("CARGO_BIN_EXE_kv"))
                .current_dir(tmp.path())
                .args(["--engine", engine, "--dir", &dir])
                .args(args)
                .output()
                .unwrap();
            assert!(output.status.success(), "{engine} {args:?}: {output:?}");
            String::from_utf8(output.stdout).unwrap()
        };
        run(&["put", "k", "v"]);
        assert_eq!(run(&["get", "k"]).trim(), "v");
        assert!(tmp.path().join(&dir).join("ENGINE").exists());
    }
}

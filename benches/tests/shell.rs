//! The `kv` command logic and the shell protocol, on the test engine (the binary's own
//! black-box tests, on the real engines, are in `kv_cli.rs`).

mod common;

use clap::Parser;
use kv_shared::{Engine, Error, Options};
use kvbench::cli::{self, KvArgs};
use kvbench::shell;
use kvbench::text::TextMode;

use common::{MemEngine, REGISTRY};

fn shell_on(engine: &MemEngine, mode: TextMode, input: &str) -> String {
    let mut out = Vec::new();
    shell::run(engine, mode, input.as_bytes(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn open() -> (tempfile::TempDir, MemEngine) {
    let tmp = tempfile::tempdir().unwrap();
    let engine = MemEngine::open(&tmp.path().join("db"), &Options::new()).unwrap();
    (tmp, engine)
}

#[test]
fn the_documented_session() {
    let (_tmp, e) = open();
    let out = shell_on(&e, TextMode::Text, "put a 1\nget a\ndel a\nget a\nquit\n");
    assert_eq!(out, "OK\n1\nOK\n(nil)\n");
}

#[test]
fn every_command() {
    let (_tmp, e) = open();
    let script = "put b 2\nput a 1\n\nput c 3\n  put   d   4  \nscan - -\nscan b d\nscan b -\nscan - b\nscan z a\n\
                  sync\ncompact\ndelete c\nget c\nstats\nexit\nget a\n";
    let out = shell_on(&e, TextMode::Text, script);
    let stats = e.stats().unwrap().one_line();
    let expected = format!(
        "OK\nOK\nOK\nOK\n\
         a 1\nb 2\nc 3\nd 4\nEND\n\
         b 2\nc 3\nEND\n\
         b 2\nc 3\nd 4\nEND\n\
         a 1\nEND\n\
         END\n\
         OK\nOK\nOK\n(nil)\n{stats}\n"
    );
    assert_eq!(out, expected);
    assert!(
        stats.starts_with("user_bytes_written=9 ") && stats.contains(" live_keys=3 "),
        "{stats}"
    );
}

#[test]
fn errors_reply_err_and_the_shell_goes_on() {
    let (_tmp, e) = open();
    let big = "k".repeat(kv_shared::MAX_KEY_LEN + 1);
    let script = format!(
        "frobnicate\nput a\nget\nget a b\nscan a\nsync now\nquit now\nput {big} v\nget {big}\nput a 1\nget a\n"
    );
    let out = shell_on(&e, TextMode::Text, &script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 11, "{out}");
    assert!(
        lines[0].starts_with("ERR unknown command `frobnicate`"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("ERR `put` takes 2 arguments"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("ERR `get` takes 1 argument"),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with("ERR `get` takes 1 argument"));
    assert!(lines[4].starts_with("ERR `scan` takes 2 arguments"));
    assert!(lines[5].starts_with("ERR `sync` takes 0 arguments"));
    assert!(lines[6].starts_with("ERR `quit` takes no arguments"));
    assert!(
        lines[7].starts_with("ERR key of 65536 bytes is over the limit"),
        "{}",
        lines[7]
    );
    // The contract lets `get` of an over-long key answer "absent" (nothing can be stored there).
    assert_eq!(lines[8], "(nil)");
    assert_eq!(&lines[9..], ["OK", "1"]);
    // Nothing of the rejected put was written.
    assert_eq!(e.stats().unwrap().live_keys, 1);
}

#[test]
fn hex_mode_round_trips_binary_and_text_mode_escapes_it() {
    let (_tmp, e) = open();
    let out = shell_on(
        &e,
        TextMode::Hex,
        "put 00ff 0a0b\nput 41 \nget 00FF\nscan - -\nput 0 1\nget zz\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    // `put 41 ` has one token: an argument-count error (a value cannot be empty in the shell).
    assert_eq!(
        &lines[..5],
        [
            "OK",
            "ERR `put` takes 2 arguments: put KEY VALUE",
            "0a0b",
            "00ff 0a0b",
            "END"
        ]
    );
    assert!(lines[5].starts_with("ERR bad hex `0`"), "{}", lines[5]);
    assert!(lines[6].starts_with("ERR bad hex `zz`"), "{}", lines[6]);
    e.put(b"tab\there", b"\xc3\xa9\x00\xff").unwrap();
    e.put(b"bin", b"\xff\xfe").unwrap();
    let out = shell_on(&e, TextMode::Text, "get tab\\x09here\nscan b c\n");
    assert_eq!(out, "(nil)\nbin \\xff\\xfe\nEND\n");
    // Input need not be UTF-8: a token is any bytes but ASCII whitespace.
    let mut out = Vec::new();
    let script = b"put \xff\xfeK v\r\nget \xff\xfeK\n\xff\n";
    shell::run(&e, TextMode::Text, &script[..], &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "OK\nv\nERR unknown command `\\xff` (commands: put get del scan rscan seek sync compact stats quit)\n"
    );
    let out = shell_on(&e, TextMode::Hex, "get 7461620968657265\n");
    assert_eq!(out, "c3a900ff\n");
}

fn kv(args: &[&str], input: &str) -> Result<String, Error> {
    let mut all = vec!["kv"];
    all.extend_from_slice(args);
    let args = KvArgs::try_parse_from(all).unwrap();
    let mut out = Vec::new();
    cli::run(REGISTRY, args, input.as_bytes(), &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn one_shot_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("db");
    let d = d.to_str().unwrap();
    let store = ["--engine", "memtest", "--dir", d];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        store.iter().copied().chain(extra.iter().copied()).collect()
    };
    assert_eq!(kv(&with(&["put", "b", "2"]), "").unwrap(), "OK\n");
    assert_eq!(kv(&with(&["put", "a", "-1"]), "").unwrap(), "OK\n");
    assert_eq!(kv(&with(&["put", "c", "3"]), "").unwrap(), "OK\n");
    assert_eq!(kv(&with(&["get", "a"]), "").unwrap(), "-1\n");
    assert_eq!(kv(&with(&["get", "zz"]), "").unwrap(), "(nil)\n");
    assert_eq!(kv(&with(&["scan"]), "").unwrap(), "a -1\nb 2\nc 3\n");
    assert_eq!(
        kv(&with(&["scan", "--from", "b"]), "").unwrap(),
        "b 2\nc 3\n"
    );
    assert_eq!(
        kv(&with(&["scan", "--from", "a", "--to", "c"]), "").unwrap(),
        "a -1\nb 2\n"
    );
    assert_eq!(kv(&with(&["delete", "b"]), "").unwrap(), "OK\n");
    assert_eq!(kv(&with(&["--hex", "get", "61"]), "").unwrap(), "2d31\n");
    assert_eq!(kv(&with(&["compact"]), "").unwrap(), "OK\n");
    assert!(kv(&with(&["stats"]), "").unwrap().contains(" live_keys=2 "));
    assert_eq!(
        kv(&with(&["shell"]), "get c\nscan - -\n").unwrap(),
        "3\na -1\nc 3\nEND\n"
    );
    // Global flags may also follow the subcommand.
    assert_eq!(
        kv(&["get", "c", "--engine", "memtest", "--dir", d], "").unwrap(),
        "3\n"
    );
}

#[test]
fn store_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("db");
    let ds = d.to_str().unwrap();
    let err = |args: &[&str]| kv(args, "").unwrap_err().to_string();
    assert!(err(&["get", "a"]).contains("needs --engine"));
    assert!(err(&["--engine", "memtest", "get", "a"]).contains("needs --dir"));
    assert!(
        err(&["--engine", "nosuch", "--dir", ds, "get", "a"])
            .contains("unknown engine `nosuch` (known: memtest)")
    );
    let unknown = err(&[
        "--engine",
        "memtest",
        "--dir",
        ds,
        "--set",
        "segment_bytes=1K",
        "get",
        "a",
    ]);
    assert!(
        unknown.contains("unknown option `segment_bytes`") && unknown.contains("fail_after"),
        "{unknown}"
    );
    assert!(
        err(&[
            "--engine", "memtest", "--dir", ds, "--set", "oops", "get", "a"
        ])
        .contains("NAME=VALUE")
    );
    assert!(err(&["--engine", "memtest", "--dir", ds, "--hex", "get", "xyz"]).contains("bad hex"));
    // Locked: the store is open elsewhere.
    let held = MemEngine::open(&d, &Options::new()).unwrap();
    assert!(matches!(
        kv(&["--engine", "memtest", "--dir", ds, "get", "a"], ""),
        Err(Error::Locked { .. })
    ));
    held.put(b"k", b"v").unwrap();
    held.close().unwrap();
    assert_eq!(
        kv(&["--engine", "memtest", "--dir", ds, "get", "k"], "").unwrap(),
        "v\n"
    );
}

#[test]
fn engines_and_inspect() {
    let text = kv(&["engines"], "").unwrap();
    // The registry's engines, then the peers this build lacks, each with its feature.
    let mut expected = String::from(
        "memtest: a BTreeMap with a log, for tests\n    \
         --set fail_after=0            fail every put after this many (0: never)\n    \
         --set lose_every=0            silently drop every N-th put (0: never)\n    \
         --set count_twice=false       report twice the bytes written\n    \
         --set read_amp_unknown=false  say that disk reads are not counted\n    \
         --set written_from_os=false   say that the bytes written are the OS's count\n",
    );
    let lacking: Vec<&str> = kvbench::peers::not_built().map(|p| p.name).collect();
    for peer in kvbench::peers::not_built() {
        expected.push_str(&format!(
            "{}: not built, enable with --features {}\n",
            peer.name, peer.feature
        ));
    }
    assert_eq!(text, expected);
    // RocksDB is never in a build without its feature; fjall, sled and redb need `peers`.
    assert!(
        text.contains("rocksdb: not built, enable with --features rocksdb\n")
            || cfg!(feature = "rocksdb")
    );
    assert_eq!(lacking.contains(&"sled"), !cfg!(feature = "peers"));
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("db");
    kv(
        &[
            "--engine",
            "memtest",
            "--dir",
            d.to_str().unwrap(),
            "put",
            "a",
            "1",
        ],
        "",
    )
    .unwrap();
    let marker = kv(&["inspect", d.join("ENGINE").to_str().unwrap()], "").unwrap();
    assert!(
        marker.starts_with("marker file (") && marker.contains("engine name \"memtest\""),
        "{marker}"
    );
    let log = kv(&["inspect", d.join("memtest.log").to_str().unwrap()], "").unwrap();
    assert_eq!(log, "memtest log (19 bytes)\n");
    let other = tmp.path().join("other");
    std::fs::write(&other, b"something else").unwrap();
    let err = kv(&["inspect", other.to_str().unwrap()], "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown file format"), "{err}");
    assert!(
        kv(&["inspect", d.join("LOCK").to_str().unwrap()], "")
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    assert!(matches!(
        kv(&["inspect", "/nonexistent/file"], ""),
        Err(Error::Io { .. })
    ));
}

#[test]
fn rscan_and_seek() {
    let (_tmp, e) = open();
    // Each command beside its reply.
    let session = [
        ("put b 2", "OK"),
        ("put a 1", "OK"),
        ("put d 4", "OK"),
        ("put c 3", "OK"),
        ("rscan - -", "d 4\nc 3\nb 2\na 1\nEND"),
        ("rscan b d", "c 3\nb 2\nEND"),
        ("rscan b -", "d 4\nc 3\nb 2\nEND"),
        ("rscan - b", "a 1\nEND"),
        ("rscan z a", "END"),
        ("seek b 2", "b 2\nc 3\nEND"),
        ("seek bb 10", "c 3\nd 4\nEND"),
        ("seek a 0", "END"),
        ("seek z 1", "END"),
    ];
    let script: String = session.iter().map(|(c, _)| format!("{c}\n")).collect();
    let replies: String = session.iter().map(|(_, r)| format!("{r}\n")).collect();
    assert_eq!(shell_on(&e, TextMode::Text, &script), replies);
    let out = shell_on(&e, TextMode::Hex, "seek 63 1\nrscan 62 63\n");
    assert_eq!(out, "63 33\nEND\n62 32\nEND\n");
}

#[test]
fn rscan_and_seek_errors_reply_err() {
    let (_tmp, e) = open();
    let script =
        "rscan a\nrscan a b c\nseek a\nseek a -1\nseek a ten\nseek é 1\nput a 1\nseek a 1\n";
    let rscan_usage = "ERR `rscan` takes 2 arguments: rscan FROM TO (`-` for an open bound)\n";
    let expected = [
        rscan_usage,
        rscan_usage,
        "ERR `seek` takes 2 arguments: seek KEY N\n",
        "ERR `seek` takes a number of pairs N, got `-1`\n",
        "ERR `seek` takes a number of pairs N, got `ten`\n",
        "END\n",
        "OK\n",
        "a 1\nEND\n",
    ];
    assert_eq!(shell_on(&e, TextMode::Text, script), expected.concat());
    let hex = shell_on(&e, TextMode::Hex, "seek zz 1\nrscan - 0\n");
    assert!(
        hex.starts_with("ERR bad hex `zz`") && hex.contains("\nERR bad hex `0`"),
        "{hex}"
    );
}

#[test]
fn one_shot_rscan_and_seek() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let store = ["--engine", "memtest", "--dir", dir.to_str().unwrap()];
    let run = |command: &[&str]| kv(&[&store[..], command].concat(), "");
    run(&["shell"]).unwrap();
    kv(
        &[&store[..], &["shell"]].concat(),
        "put a -1\nput b 2\nput c 3\n",
    )
    .unwrap();
    let expected: [(&[&str], &str); 7] = [
        (&["rscan"], "c 3\nb 2\na -1\n"),
        (&["rscan", "--from", "b"], "c 3\nb 2\n"),
        (&["rscan", "--from", "a", "--to", "c"], "b 2\na -1\n"),
        (&["rscan", "--to", "a"], ""),
        (&["seek", "b"], "b 2\nc 3\n"),
        (&["seek", "-", "--limit", "1"], "a -1\n"),
        (&["--hex", "seek", "62", "--limit", "1"], "62 32\n"),
    ];
    for (command, out) in expected {
        assert_eq!(run(command).unwrap(), out, "{command:?}");
    }
    let bad_hex = run(&["--hex", "rscan", "--to", "x"]).unwrap_err();
    assert!(bad_hex.to_string().contains("bad hex"), "{bad_hex}");
    assert!(KvArgs::try_parse_from(["kv", "seek", "a", "--limit", "many"]).is_err());
}

#[test]
fn the_test_engine_writes_batches_as_one_record_and_hands_out_snapshots() {
    let (tmp, e) = open();
    e.put(b"a", b"1").unwrap();
    let mut batch = kv_shared::WriteBatch::new();
    batch.put(b"b", b"2").unwrap();
    batch.delete(b"a").unwrap();
    batch.put(b"c", b"3").unwrap();
    let mut cursor = e.cursor().unwrap();
    e.write(&batch).unwrap();
    cursor.seek_to_first().unwrap();
    assert_eq!((cursor.key(), cursor.value()), (&b"a"[..], &b"1"[..]));
    cursor.next().unwrap();
    assert!(
        !cursor.valid(),
        "the cursor is a snapshot from before the batch"
    );
    drop(cursor);
    assert_eq!(
        shell_on(&e, TextMode::Text, "scan - -\n"),
        "b 2\nc 3\nEND\n"
    );
    e.close().unwrap();
    let e = MemEngine::open(&tmp.path().join("db"), &Options::new()).unwrap();
    assert_eq!(
        shell_on(&e, TextMode::Text, "rscan - -\n"),
        "c 3\nb 2\nEND\n"
    );
}

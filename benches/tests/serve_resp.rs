//! `kv serve --resp`: a real server, driven by the real `redis-cli` and `redis-benchmark`
//! (Debian's `redis-tools`) for every course engine, and by raw bytes over a `TcpStream`
//! for pipelining, the limits and stopping.
//!
//! Without `redis-cli` the tests that need it say they are skipped and pass, unless the
//! environment variable `CI` is set (CI installs it): then they fail.

mod serve_common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serve_common::Server;

/// True when `tool` runs; false (after saying the test is skipped) when it is missing
/// outside CI. Panics when it is missing in CI.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing; CI installs it (Debian package redis-tools)"
        );
        println!("skipped: {tool} is not installed (Debian package redis-tools)");
    }
    found
}

/// The port of `server`'s RESP address.
fn port(server: &Server) -> String {
    let address = server.resp.as_deref().expect("started with --resp");
    address.rsplit(':').next().expect("a port").to_string()
}

/// Runs `tool -h 127.0.0.1 -p PORT args...` with `stdin`, and checks it succeeded.
fn run(tool: &str, server: &Server, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(tool)
        .args(["-h", "127.0.0.1", "-p", &port(server)])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {tool}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `redis-cli ... args`: what it printed, without the line ends at the end (it prints an
/// empty line after an error).
fn cli(server: &Server, args: &[&str]) -> String {
    let output = run("redis-cli", server, args, b"");
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim_end_matches(['\r', '\n']).to_string()
}

/// A RESP request, as a client library writes it.
fn request(words: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        out.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
        out.extend_from_slice(word);
        out.extend_from_slice(b"\r\n");
    }
    out
}

const KEYS: usize = 250;

fn key(i: usize) -> String {
    format!("key:{i:03}")
}

/// Every command of the module's table through `redis-cli`, `--pipe`, `--scan` and a
/// short `redis-benchmark`, against `engine`.
fn redis_tools_against(engine: &str) {
    if !have("redis-cli") || !have("redis-benchmark") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(engine, &dir.path().join("store"), &[], true);
    assert_eq!(cli(&server, &["PING"]), "PONG");
    assert_eq!(cli(&server, &["ping", "hello there"]), "hello there");
    assert_eq!(cli(&server, &["ECHO", "x y"]), "x y");
    assert_eq!(cli(&server, &["SET", "k", "v"]), "OK");
    assert_eq!(cli(&server, &["GET", "k"]), "v");
    assert_eq!(cli(&server, &["GET", "missing"]), "");
    assert_eq!(cli(&server, &["EXISTS", "k", "missing", "k"]), "2");
    assert_eq!(cli(&server, &["DEL", "k", "missing", "k"]), "1");
    assert_eq!(cli(&server, &["EXISTS", "k"]), "0");
    assert_eq!(cli(&server, &["SELECT", "0"]), "OK");
    commands_refused(&server);
    fill_with_pipe(&server);
    assert_eq!(cli(&server, &["DBSIZE"]), KEYS.to_string());
    scan_lists_every_key_once(&server);
    let info = cli(&server, &["INFO"]);
    for line in [
        format!("engine:{engine}"),
        "# Stats".to_string(),
        format!("live_keys:{KEYS}"),
        "# Amplification".to_string(),
        format!("db0:keys={KEYS},expires=0,avg_ttl=0"),
    ] {
        assert!(info.lines().any(|l| l == line), "no {line:?} in {info}");
    }
    assert!(info.lines().any(|l| l.starts_with("write_amp:")), "{info}");
    let server_only = cli(&server, &["INFO", "server"]);
    assert!(server_only.starts_with("# Server") && !server_only.contains("# Stats"));
    benchmark(&server);
    server.stop();
}

/// Unknown commands, wrong arities and unsupported options, in Redis's words.
fn commands_refused(server: &Server) {
    assert_eq!(
        cli(server, &["NOSUCH", "a", "b"]),
        "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        cli(server, &["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        cli(server, &["SET", "k"]),
        "ERR wrong number of arguments for 'set' command"
    );
    let expiry = cli(server, &["SET", "k", "v", "EX", "10"]);
    assert!(
        expiry.starts_with("ERR SET option 'EX' is not supported"),
        "{expiry}"
    );
    let nx = cli(server, &["set", "k", "v", "nx"]);
    assert!(
        nx.starts_with("ERR SET option 'NX' is not supported"),
        "{nx}"
    );
    assert_eq!(
        cli(server, &["GET", "k"]),
        "",
        "a refused SET writes nothing"
    );
    assert!(cli(server, &["FLUSHALL"]).contains("not supported"));
    assert_eq!(
        cli(server, &["SELECT", "1"]),
        "ERR DB index is out of range"
    );
    assert_eq!(cli(server, &["SCAN", "99999"]), "ERR invalid cursor");
}

/// Writes `KEYS` keys with `redis-cli --pipe` (raw RESP on its standard input).
fn fill_with_pipe(server: &Server) {
    let mut input = Vec::new();
    for i in 0..KEYS {
        let value = format!("value-{i}");
        input.extend_from_slice(&request(&[b"SET", key(i).as_bytes(), value.as_bytes()]));
    }
    let output = run("redis-cli", server, &["--pipe"], &input);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("errors: 0, replies: {KEYS}")),
        "{text}"
    );
    assert_eq!(
        cli(server, &["GET", &key(KEYS - 1)]),
        format!("value-{}", KEYS - 1)
    );
}

/// `redis-cli --scan` walks the store with `SCAN` (10 keys a call, 25 cursors here).
fn scan_lists_every_key_once(server: &Server) {
    let listed = cli(server, &["--scan"]);
    let listed: Vec<&str> = listed.lines().collect();
    let expected: Vec<String> = (0..KEYS).map(key).collect();
    assert_eq!(listed, expected, "every key once, in key order");
    let matched = cli(server, &["--scan", "--pattern", "key:1?[05]"]);
    let matched: BTreeSet<&str> = matched.lines().collect();
    let expected: BTreeSet<String> = (100..200).filter(|i| i % 5 == 0).map(key).collect();
    assert_eq!(matched, expected.iter().map(String::as_str).collect());
}

/// A short `redis-benchmark` run: 50 clients, SET then GET, no errors.
fn benchmark(server: &Server) {
    let args = ["-q", "-t", "set,get", "-n", "2000"];
    let output = run("redis-benchmark", server, &args, b"");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    for test in ["SET: ", "GET: "] {
        // Its progress lines (`SET: rps=...`) end in `\r`; the result ends in `\n`.
        let result = text
            .split(['\r', '\n'])
            .any(|l| l.trim_start().starts_with(test) && l.contains(" requests per second"));
        assert!(result, "no {test}... requests per second line in {text}");
    }
    assert!(
        !text.contains("rror") && !text.contains("WARNING"),
        "{text}"
    );
    // Its SETs landed: `key:__rand_int__` (no -r) holds 3 bytes (the default -d).
    assert_eq!(cli(server, &["GET", "key:__rand_int__"]).len(), 3);
}

#[test]
fn redis_tools_against_hashlog() {
    redis_tools_against("hashlog");
}

#[test]
fn redis_tools_against_bitcask() {
    redis_tools_against("bitcask");
}

#[test]
fn redis_tools_against_sstable() {
    redis_tools_against("sstable");
}

#[test]
fn redis_tools_against_lsm() {
    redis_tools_against("lsm");
}

#[test]
fn redis_tools_against_wisckey() {
    redis_tools_against("wisckey");
}

/// A client over a plain `TcpStream`.
fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.resp.as_deref().expect("resp")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// Reads until `expected.len()` bytes arrived (or the stream ends) and returns them.
fn read_exactly(stream: &mut TcpStream, expected: usize) -> Vec<u8> {
    let mut got = vec![0; expected];
    let mut filled = 0;
    while filled < expected {
        match stream.read(&mut got[filled..]).expect("read") {
            0 => break,
            n => filled += n,
        }
    }
    got.truncate(filled);
    got
}

/// Reads until the server closes the connection.
fn read_to_end(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("read to the end");
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_pipeline_in_one_write_is_answered_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start("lsm", &dir.path().join("store"), &[], true);
    let mut stream = connect(&server);
    let mut pipeline = Vec::new();
    pipeline.extend_from_slice(&request(&[b"SET", b"a", b"1\r\n2"]));
    pipeline.extend_from_slice(b"SET b \"two words\"\r\n");
    pipeline.extend_from_slice(&request(&[b"GET", b"a"]));
    pipeline.extend_from_slice(b"get b\n\r\n");
    pipeline.extend_from_slice(&request(&[b"SCAN", b"0", b"COUNT", b"1"]));
    pipeline.extend_from_slice(&request(&[b"DEL", b"a", b"b", b"c"]));
    pipeline.extend_from_slice(b"GET a\r\nnope\r\nQUIT\r\nPING\r\n");
    stream.write_all(&pipeline).expect("write");
    let expected: &[u8] = b"+OK\r\n+OK\r\n$4\r\n1\r\n2\r\n$9\r\ntwo words\r\n\
        *2\r\n$1\r\n1\r\n*1\r\n$1\r\na\r\n:2\r\n$-1\r\n\
        -ERR unknown command 'nope', with args beginning with: \r\n+OK\r\n";
    // QUIT closes the connection: the PING after it is never answered.
    assert_eq!(read_to_end(&mut stream).as_bytes(), expected);
    // The cursor SCAN gave resumes after `a`: it finds `b`... which DEL removed.
    let mut next = connect(&server);
    next.write_all(&request(&[b"SCAN", b"1"])).expect("write");
    assert_eq!(read_exactly(&mut next, 15), b"*2\r\n$1\r\n0\r\n*0\r\n");
    server.stop();
}

/// Sends `bytes` on a new connection and reads what the server says before it closes.
fn refused(server: &Server, bytes: &[u8]) -> String {
    let mut stream = connect(server);
    stream.write_all(bytes).expect("write");
    read_to_end(&mut stream)
}

#[test]
fn over_a_limit_the_server_answers_closes_and_serves_the_next_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start("hashlog", &dir.path().join("store"), &[], true);
    let too_big = refused(
        &server,
        b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999\r\nabc",
    );
    assert_eq!(
        too_big,
        "+PONG\r\n-ERR Protocol error: bulk string of 99999999 bytes is over the limit of \
         16777216 bytes (the largest value)\r\n"
    );
    let array = refused(&server, b"*2000000\r\n");
    assert!(
        array.starts_with(
            "-ERR Protocol error: array of 2000000 elements is over the limit of 1048576"
        ),
        "{array}"
    );
    let line = refused(&server, &vec![b'a'; 70 << 10]);
    assert!(
        line.starts_with(
            "-ERR Protocol error: too big inline request line (over the limit of 65536 bytes)"
        ),
        "{line}"
    );
    let malformed = refused(&server, b"*1\r\n:1\r\n");
    assert_eq!(malformed, "-ERR Protocol error: expected '$', got ':'\r\n");
    // A key over its limit was read whole: that request is refused, the connection stays.
    let mut stream = connect(&server);
    let long_key = vec![b'k'; 65536];
    stream
        .write_all(&request(&[b"SET", &long_key, b"v"]))
        .expect("write");
    stream.write_all(b"PING\r\n").expect("write");
    let expected = "-ERR key of 65536 bytes is over the limit of 65535 bytes\r\n+PONG\r\n";
    let got = read_exactly(&mut stream, expected.len());
    assert_eq!(String::from_utf8_lossy(&got), expected);
    assert_eq!(refused(&server, b"DBSIZE\r\nQUIT\r\n"), ":0\r\n+OK\r\n");
    server.stop();
}

#[test]
fn stopping_closes_idle_and_half_sent_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start("bitcask", &dir.path().join("store"), &[], true);
    let mut idle = connect(&server);
    idle.write_all(b"SET k v\r\n").expect("write");
    assert_eq!(read_exactly(&mut idle, 5), b"+OK\r\n");
    let mut half = connect(&server);
    half.write_all(b"*2\r\n$3\r\nGET\r\n$1").expect("write");
    let rest = server.stop();
    assert!(rest.contains("closed"), "{rest}");
    assert_eq!(read_to_end(&mut idle), "");
    assert_eq!(read_to_end(&mut half), "");
    // The acknowledged write is in the store.
    let server = Server::start("bitcask", &dir.path().join("store"), &[], true);
    let mut stream = connect(&server);
    stream.write_all(b"GET k\r\n").expect("write");
    assert_eq!(read_exactly(&mut stream, 7), b"$1\r\nv\r\n");
    server.stop();
}

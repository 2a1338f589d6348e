//! The JSON API of `kv serve`, checked from outside: a real server process per engine, a
//! plain HTTP client (`ureq`), and after Ctrl-C the store reopened by `kv` itself, which
//! must hold every write the server acknowledged.

mod serve_common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use serve_common::Server;
use ureq::http::Request;

/// The longest key and value the server takes (`kv_shared::MAX_KEY_LEN`, `MAX_VALUE_LEN`).
const MAX_KEY: usize = 65_535;
const MAX_VALUE: usize = 16 << 20;

/// An HTTP client that hands back every status instead of failing on 4xx and 5xx.
struct Api {
    agent: ureq::Agent,
    base: String,
}

/// A status and the body's bytes.
struct Answer {
    status: u16,
    body: Vec<u8>,
    headers: ureq::http::HeaderMap,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The message of a JSON error, checking the status first.
    fn error(&self, status: u16) -> String {
        assert_eq!(
            self.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
        let json = self.json();
        json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {json}"))
            .to_string()
    }
}

impl Api {
    fn new(server: &Server) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Api {
            agent,
            base: server.http.clone(),
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<&[u8]>) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        let response = match body {
            Some(body) => self.agent.run(request.body(body).unwrap()),
            None => self.agent.run(request.body(()).unwrap()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .expect("read the body");
        Answer {
            status,
            body,
            headers,
        }
    }

    fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None)
    }

    fn post(&self, path: &str) -> Answer {
        self.send("POST", path, None)
    }

    /// `PUT /api/keys/{key}`, checking the 204.
    fn put(&self, key: &str, value: &[u8]) {
        let answer = self.send("PUT", &format!("/api/keys/{key}"), Some(value));
        assert_eq!(answer.status, 204, "PUT {key}: {}", answer.json());
    }

    /// `DELETE /api/keys/{key}`, checking the 204.
    fn delete(&self, key: &str) {
        let answer = self.send("DELETE", &format!("/api/keys/{key}"), None);
        assert_eq!(answer.status, 204, "DELETE {key}: {}", answer.json());
    }

    /// `GET /api/keys/{key}`: the value, or `None` for a 404.
    fn value(&self, key: &str) -> Option<Vec<u8>> {
        let answer = self.get(&format!("/api/keys/{key}"));
        match answer.status {
            200 => {
                assert_eq!(answer.headers["content-type"], "application/octet-stream");
                Some(answer.body)
            }
            404 => {
                answer.error(404);
                None
            }
            other => panic!("GET {key}: {other} {}", answer.json()),
        }
    }

    /// `GET /api/scan?QUERY`, the pairs as (key, value) JSON values.
    fn scan(&self, query: &str) -> Vec<(Value, Value)> {
        let answer = self.get(&format!("/api/scan?{query}"));
        assert_eq!(answer.status, 200, "scan?{query}: {}", answer.json());
        let pairs = answer.json();
        let pairs = pairs.as_array().expect("an array").clone();
        pairs
            .into_iter()
            .map(|pair| (pair["key"].clone(), pair["value"].clone()))
            .collect()
    }

    /// The keys of `scan?QUERY`, as text.
    fn scan_keys(&self, query: &str) -> Vec<String> {
        let keys = self.scan(query).into_iter().map(|(key, _)| key);
        keys.map(|key| key.as_str().expect("a text key").to_string())
            .collect()
    }

    /// `POST PATH`, checking the 200, as JSON.
    fn control(&self, path: &str) -> Value {
        let answer = self.post(path);
        assert_eq!(answer.status, 200, "POST {path}: {}", answer.json());
        answer.json()
    }

    fn stats(&self) -> Value {
        let answer = self.get("/api/stats");
        assert_eq!(answer.status, 200, "{}", answer.json());
        answer.json()
    }
}

/// The `--set` options a test store of `engine` gets: a small memtable where there is one.
fn sets(engine: &str) -> &'static [&'static str] {
    match engine {
        "sstable" | "lsm" | "wisckey" | "fjall" | "rocksdb" => &["memtable_bytes=64K"],
        _ => &[],
    }
}

/// Whether `engine` has a memtable for `POST /api/flush` to write out.
fn has_memtable(engine: &str) -> bool {
    matches!(engine, "sstable" | "lsm" | "wisckey" | "fjall" | "rocksdb")
}

/// Every pair of the store in `dir`, read by `kv --hex scan` after the server is gone.
fn reopened(engine: &str, dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let output = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["--engine", engine, "--dir"])
        .arg(dir)
        .args(sets(engine).iter().flat_map(|set| ["--set", set]))
        .args(["--hex", "scan"])
        .output()
        .expect("run kv scan");
    let stdout = String::from_utf8(output.stdout).expect("hex is text");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            (unhex(key), unhex(value))
        })
        .collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Percent-encodes every byte of `key`, so any bytes can be a path segment.
fn encode(key: &[u8]) -> String {
    key.iter().map(|byte| format!("%{byte:02X}")).collect()
}

/// Puts, gets, deletes and 404s; keys with any bytes; an empty value.
fn keys_and_values(api: &Api, model: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    api.put("a", b"first");
    api.put("a", b"second");
    assert_eq!(api.value("a").as_deref(), Some(&b"second"[..]));
    api.put("gone", b"x");
    api.delete("gone");
    assert_eq!(api.value("gone"), None);
    api.delete("never-there");
    assert_eq!(api.value("never-there"), None);
    api.put("empty", b"");
    assert_eq!(api.value("empty").as_deref(), Some(&b""[..]));
    // Bytes that are not UTF-8, in the key and in the value; a '/' and a space, encoded.
    api.put("%00%FF", &[0, 1, 255]);
    assert_eq!(api.value("%00%ff").as_deref(), Some(&[0, 1, 255][..]));
    api.put("user%2F1%20x", b"slash");
    assert_eq!(
        api.value(&encode(b"user/1 x")).as_deref(),
        Some(&b"slash"[..])
    );
    let binary = [0u8, 37, 47, 128, 255, 10];
    api.put(&encode(&binary), b"every byte");
    assert_eq!(
        api.value(&encode(&binary)).as_deref(),
        Some(&b"every byte"[..])
    );
    for (key, value) in [
        (&b"a"[..], &b"second"[..]),
        (b"empty", b""),
        (b"\x00\xff", b"\x00\x01\xff"),
        (b"user/1 x", b"slash"),
        (&binary, b"every byte"),
    ] {
        model.insert(key.to_vec(), value.to_vec());
    }
}

/// The bytes-in-JSON rule: text when UTF-8, `{"hex"}` otherwise, all hex with `hex=true`.
fn scan_json_rule(api: &Api) {
    let pairs = api.scan("to=%01");
    assert_eq!(
        pairs,
        [
            (json!({"hex": "00252f80ff0a"}), json!("every byte")),
            (json!({"hex": "00ff"}), json!({"hex": "0001ff"})),
        ]
    );
    let pairs = api.scan("from=%00%FF&to=%01&hex=true");
    assert_eq!(pairs, [(json!("00ff"), json!("0001ff"))]);
    let pairs = api.scan("from=user%2F&to=user0");
    assert_eq!(pairs, [(json!("user/1 x"), json!("slash"))]);
    let pairs = api.scan("from=user/1+x&limit=1");
    assert_eq!(
        pairs[0].0,
        json!("user/1 x"),
        "a '+' in the query is a space"
    );
}

/// Scans forward and back with bounds and limits.
fn scans(api: &Api, model: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for i in 0..20 {
        let key = format!("k{i:02}");
        api.put(&key, format!("v{i}").as_bytes());
        model.insert(key.into_bytes(), format!("v{i}").into_bytes());
    }
    let keys = |range: std::ops::Range<i32>| -> Vec<String> {
        range.map(|i| format!("k{i:02}")).collect()
    };
    assert_eq!(api.scan_keys("from=k05&to=k10"), keys(5..10));
    assert_eq!(api.scan_keys("from=k05&to=k10&limit=3"), keys(5..8));
    let down: Vec<String> = keys(8..10).into_iter().rev().collect();
    assert_eq!(api.scan_keys("from=k05&to=k10&limit=2&reverse=true"), down);
    let down: Vec<String> = keys(0..20).into_iter().rev().collect();
    assert_eq!(api.scan_keys("from=k&to=l&reverse=1&limit=100"), down);
    assert_eq!(api.scan_keys("from=k18&to=l"), keys(18..20));
    assert_eq!(api.scan_keys("from=k10&to=k05"), Vec::<String>::new());
    assert_eq!(api.scan_keys("from=k05&limit=0"), Vec::<String>::new());
    let pairs = api.scan("from=k07&limit=1");
    assert_eq!(pairs, [(json!("k07"), json!("v7"))]);
    // The default limit is 100 pairs.
    assert_eq!(api.scan("").len(), model.len().min(100));
}

/// `compact`, `flush`, `sync` and `stats` answer JSON.
fn controls(api: &Api, engine: &str, live: usize) {
    for path in ["/api/compact", "/api/sync"] {
        let answer = api.control(path);
        assert!(
            answer["ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{answer}"
        );
    }
    let flushed = api.control("/api/flush");
    assert_eq!(flushed["flushed"], json!(has_memtable(engine)), "{flushed}");
    assert!(flushed["ms"].is_number(), "{flushed}");
    let stats = api.stats();
    assert_eq!(stats["engine"], json!(engine));
    assert_eq!(stats["live_keys"], json!(live), "{stats}");
    assert!(stats["user_bytes_written"].as_u64().unwrap() > 0, "{stats}");
    assert!(
        stats["write_amp"].as_f64().is_some_and(|amp| amp > 0.0),
        "{stats}"
    );
    assert!(
        stats["space_amp"].as_f64().is_some_and(|amp| amp > 0.0),
        "{stats}"
    );
    assert!(stats["extra"].is_object(), "{stats}");
}

/// `fill` writes random readable keys; `delete_range` removes a range through the cursor.
fn fill_and_delete_range(api: &Api, live: usize) {
    let filled = api.control("/api/fill?n=2500&value_bytes=30&seed=7");
    assert_eq!(filled["written"], json!(2500), "{filled}");
    assert!(filled["ms"].is_number(), "{filled}");
    let pairs = api.scan("from=key&to=kez&limit=10000");
    // Seed 7 draws 2,500 different numbers out of 10^10 (fixed by the seed).
    assert_eq!(pairs.len(), 2500);
    for (key, value) in &pairs {
        let key = key.as_str().unwrap();
        let digits = key.strip_prefix("key").unwrap();
        assert!(
            digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()),
            "{key}"
        );
        assert_eq!(value.as_str().unwrap(), format!("{digits}{digits}{digits}"));
    }
    assert_eq!(api.stats()["live_keys"], json!(live + 2500));
    // The same seed again overwrites the same keys.
    api.control("/api/fill?n=2500&value_bytes=30&seed=7");
    assert_eq!(api.stats()["live_keys"], json!(live + 2500));
    let below_5: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| k.as_str() < Some("key5"))
        .collect();
    let deleted = api.control("/api/delete_range?from=key&to=key5");
    assert_eq!(deleted["deleted"], json!(below_5.len()), "{deleted}");
    assert_eq!(api.scan("from=key&to=key5").len(), 0);
    let deleted = api.control("/api/delete_range?from=key5&to=kez");
    assert_eq!(deleted["deleted"], json!(2500 - below_5.len()), "{deleted}");
    assert_eq!(api.scan("from=key&to=kez").len(), 0);
    assert_eq!(api.stats()["live_keys"], json!(live));
}

/// Four clients writing at once: every write is acknowledged and readable.
fn concurrent_writers(api: &Api, model: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    std::thread::scope(|scope| {
        for writer in 0..4 {
            scope.spawn(move || {
                for i in 0..40 {
                    api.put(
                        &format!("w{writer}-{i:03}"),
                        format!("{writer}:{i}").as_bytes(),
                    );
                }
            });
        }
    });
    for writer in 0..4 {
        let keys = api.scan_keys(&format!("from=w{writer}-&to=w{writer}.&limit=1000"));
        assert_eq!(keys.len(), 40, "writer {writer}");
        for i in 0..40 {
            let key = format!("w{writer}-{i:03}");
            let value = format!("{writer}:{i}").into_bytes();
            assert_eq!(api.value(&key).as_ref(), Some(&value));
            model.insert(key.into_bytes(), value);
        }
    }
}

/// Everything the API does, on one engine, then the store reopened after Ctrl-C.
fn exercise(engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(engine, dir.path(), sets(engine), false);
    let api = Api::new(&server);
    let mut model = BTreeMap::new();
    keys_and_values(&api, &mut model);
    scan_json_rule(&api);
    scans(&api, &mut model);
    controls(&api, engine, model.len());
    fill_and_delete_range(&api, model.len());
    concurrent_writers(&api, &mut model);
    assert_eq!(api.stats()["live_keys"], json!(model.len()));
    server.stop();
    assert_eq!(
        reopened(engine, dir.path()),
        model,
        "the store after a restart"
    );
}

#[test]
fn hashlog_serves_the_api() {
    exercise("hashlog");
}

#[test]
fn bitcask_serves_the_api() {
    exercise("bitcask");
}

#[test]
fn sstable_serves_the_api() {
    exercise("sstable");
}

#[test]
fn lsm_serves_the_api() {
    exercise("lsm");
}

#[test]
fn wisckey_serves_the_api() {
    exercise("wisckey");
}

#[cfg(feature = "peers")]
#[test]
fn fjall_serves_the_api() {
    exercise("fjall");
}

#[cfg(feature = "peers")]
#[test]
fn sled_serves_the_api() {
    exercise("sled");
}

#[cfg(feature = "peers")]
#[test]
fn redb_serves_the_api() {
    exercise("redb");
}

/// Sends `head` (a request line and headers) on a raw connection, then `body` from another
/// thread (ignoring a server that stops reading), and reads the answer: its status and body.
fn raw_exchange(server: &Server, head: &str, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
    let address = server.http.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        if let Some(body) = body {
            let _ = writer.write_all(&body);
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let answer = loop {
        let n = stream.read(&mut buf).expect("read the answer");
        assert!(n > 0, "connection closed before an answer");
        answer.extend_from_slice(&buf[..n]);
        if let Some(answer) = parse_answer(&answer) {
            break answer;
        }
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sending.join();
    answer
}

/// The status and body of a whole HTTP/1.1 answer with a `content-length`, or `None`
/// while bytes are missing.
fn parse_answer(bytes: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .and_then(|length| length.parse::<usize>().ok())
        .expect("a content-length");
    let body = bytes.get(end + 4..end + 4 + length)?;
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, body.to_vec()))
}

/// The JSON error message of a raw answer with `status`.
fn raw_error(answer: (u16, Vec<u8>), status: u16) -> String {
    let text = String::from_utf8_lossy(&answer.1).into_owned();
    assert_eq!(answer.0, status, "{text}");
    let json: Value = serde_json::from_str(&text).expect("a JSON error");
    json["error"]
        .as_str()
        .expect("an error message")
        .to_string()
}

/// A body over the value limit is refused with 413 before it is read whole, declared or
/// chunked, and the server goes on serving.
fn bodies_over_the_limit(server: &Server, api: &Api) {
    let head = format!(
        "PUT /api/keys/big HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        MAX_VALUE + 1
    );
    // No byte of the body is sent: the declared length is enough.
    let message = raw_error(raw_exchange(server, &head, None), 413);
    assert!(message.contains("16777216 bytes (max_value)"), "{message}");
    let head = "PUT /api/keys/big HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    let chunk = vec![b'v'; 1 << 20];
    let mut body = Vec::new();
    for _ in 0..(MAX_VALUE >> 20) + 1 {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let message = raw_error(raw_exchange(server, head, Some(body)), 413);
    assert!(message.contains("max_value"), "{message}");
    assert_eq!(api.value("big"), None, "nothing was written");
    // A value of exactly the limit is taken.
    api.put("big", &vec![b'v'; MAX_VALUE]);
    assert_eq!(api.value("big").map(|v| v.len()), Some(MAX_VALUE));
    // A scan answer stops after the pair that passes 16 MiB, and says so.
    let answer = api.get("/api/scan?from=big&limit=5");
    assert_eq!(answer.json().as_array().map(Vec::len), Some(1));
    assert_eq!(answer.headers["x-kv-truncated"], "true");
    let answer = api.get("/api/scan?from=big%00&limit=5");
    assert_eq!(
        answer.json().as_array().map(Vec::len),
        Some(1),
        "the long key"
    );
    assert!(answer.headers.get("x-kv-truncated").is_none());
}

/// Keys at and over the limits, malformed requests, unknown paths and methods.
fn malformed_requests(server: &Server, api: &Api) {
    // One byte over max_key: the request target passes hyper's 65,534 bytes, so hyper
    // answers 414 itself (with no JSON); the server goes on. (ureq refuses to send it.)
    let over = "k".repeat(MAX_KEY + 1);
    let head = format!("GET /api/keys/{over} HTTP/1.1\r\nhost: x\r\n\r\n");
    assert_eq!(raw_exchange(server, &head, None).0, 414);
    let long = "k".repeat(60_000);
    api.put(&long, b"long key");
    assert_eq!(api.value(&long).as_deref(), Some(&b"long key"[..]));
    let message = api.get("/api/keys/a%ZZ").error(400);
    assert!(message.contains("percent-encoding"), "{message}");
    api.get("/api/keys/a%4").error(400);
    api.get("/api/scan?from=%G0").error(400);
    api.get("/api/keys/").error(400);
    api.get("/api/keys/a/b").error(400);
    let message = api.get("/api/scan?limit=abc").error(400);
    assert!(message.contains("abc"), "{message}");
    let message = api.get("/api/scan?limit=10001").error(400);
    assert!(
        message.contains("10000") && message.contains("max_scan"),
        "{message}"
    );
    assert_eq!(api.get("/api/scan?limit=10000").status, 200);
    api.get("/api/scan?reverse=maybe").error(400);
    let message = api.get("/api/scan?limt=5").error(400);
    assert!(message.contains("limt"), "{message}");
    api.post("/api/fill").error(400);
    api.post("/api/fill?n=1000001").error(400);
    api.post("/api/fill?n=1000&value_bytes=16777217").error(400);
    let message = api.post("/api/fill?n=1000&value_bytes=16777216").error(400);
    assert!(message.contains("a fill"), "{message}");
    api.get("/api/nothing-here").error(404);
    let wrong = api.get("/api/compact");
    wrong.error(405);
    assert_eq!(wrong.headers["allow"], "POST");
    api.send("POST", "/api/keys/a", Some(&b"x"[..])).error(405);
    api.send("DELETE", "/api/stats", None).error(405);
}

#[test]
fn limits_and_malformed_requests_are_refused_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start("hashlog", dir.path(), &[], false);
    let api = Api::new(&server);
    api.put("before", b"1");
    malformed_requests(&server, &api);
    bodies_over_the_limit(&server, &api);
    api.put("after", b"2");
    assert_eq!(api.value("before").as_deref(), Some(&b"1"[..]));
    server.stop();
    let stored = reopened("hashlog", dir.path());
    assert_eq!(
        stored.get(&b"after"[..]).map(Vec::as_slice),
        Some(&b"2"[..])
    );
    assert_eq!(stored.get(&b"big"[..]).map(Vec::len), Some(MAX_VALUE));
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_serves_the_api() {
    exercise("rocksdb");
}

//! `kv serve`'s page, structure and picture, from outside.
//!
//! * `the_page_structure_and_picture_answer_for_every_course_engine` (fast, no browser):
//!   for hashlog, bitcask, sstable, lsm and wisckey, `/` is the page with its controls,
//!   `/api/structure` the documented JSON (version 1) describing what was written, and
//!   `/api/draw.svg` an SVG.
//! * `the_page_shows_writes_and_compaction_in_a_browser`: a real headless Chromium driven
//!   over WebDriver (W3C, JSON over HTTP, spoken with `ureq`) loads the page of an lsm
//!   store, clicks "write 10,000 keys", waits until the summary shows tables on the
//!   levels, clicks "compact", and waits until the memtable is empty, L0 too, and every
//!   entry is on a deeper level; the picture's markup must have changed at each step. It
//!   then deletes the keys from `key0` to `key5` with the page's range control.
//!   Without `/usr/bin/chromium` or `/usr/bin/chromedriver` it is skipped (it fails when
//!   `CI` is set: CI installs both). `KV_SERVE_SCREENSHOT=FILE.png` saves a screenshot of
//!   the page after the compaction.

mod serve_common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serve_common::Server;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key WebDriver names an element by in its answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An HTTP client that hands back 4xx and 5xx answers instead of failing on them.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GETs `url`: its status, content type and body.
fn get(agent: &ureq::Agent, url: &str) -> (u16, String, String) {
    let mut response = agent.get(url).call().expect("GET");
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let body = response.body_mut().read_to_string().expect("body");
    (response.status().as_u16(), kind, body)
}

/// POSTs to `url` (an empty body), expecting success.
fn post(agent: &ureq::Agent, url: &str) -> String {
    let mut response = agent.post(url).send_empty().expect("POST");
    let body = response.body_mut().read_to_string().expect("body");
    assert_eq!(response.status().as_u16(), 200, "POST {url}: {body}");
    body
}

/// The structure answer of `server`, parsed.
fn structure(agent: &ureq::Agent, server: &Server, query: &str) -> Value {
    let (status, kind, body) = get(agent, &server.url(&format!("/api/structure{query}")));
    assert_eq!(status, 200, "{body}");
    assert!(kind.starts_with("application/json"), "{kind}");
    serde_json::from_str(&body).expect("structure JSON")
}

#[test]
fn the_page_structure_and_picture_answer_for_every_course_engine() {
    let agent = agent();
    for engine in ["hashlog", "bitcask", "sstable", "lsm", "wisckey"] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(engine, dir.path(), &[], false);
        let (status, kind, page) = get(&agent, &server.url("/"));
        assert_eq!(status, 200);
        assert!(kind.starts_with("text/html"), "{kind}");
        for id in [
            "fill-n",
            "fill",
            "delete-from",
            "delete-to",
            "delete-range",
            "compact",
            "flush",
            "sync",
            "picture",
            "summary",
            "chart-amp",
            "status",
        ] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{engine}: no #{id}");
        }
        assert!(page.contains(&format!("<span id=\"engine\">{engine}</span>")));
        assert!(!page.contains("{{"), "a placeholder left in the page");
        assert!(only_svg_namespace(&page), "the page names another address");

        for (i, key) in ["apple", "banana", "cherry"].iter().enumerate() {
            let url = server.url(&format!("/api/keys/{key}"));
            // banana's value is over wisckey's value_threshold (128): it goes to the log.
            let value = format!("value {i}").repeat(if i == 1 { 30 } else { 1 });
            let response = agent.put(&url).send(value).expect("PUT");
            assert_eq!(response.status().as_u16(), 204, "{engine} PUT {key}");
        }
        let response = agent
            .put(server.url("/api/keys/apple"))
            .send("again")
            .unwrap();
        assert_eq!(response.status().as_u16(), 204);
        post(&agent, &server.url("/api/flush"));

        let answer = structure(&agent, &server, "");
        check_answer(engine, dir.path(), &answer);
        let files = answer["structure"]["files"].as_array().unwrap();
        assert!(
            files
                .iter()
                .any(|f| !f["parts"].as_array().unwrap().is_empty())
        );
        let brief = structure(&agent, &server, "?brief=true");
        let files = brief["structure"]["files"].as_array().unwrap();
        assert!(
            files
                .iter()
                .all(|f| f["parts"].as_array().unwrap().is_empty())
        );
        assert!(
            files
                .iter()
                .any(|f| f["parts_omitted"].as_u64().unwrap() > 0)
        );
        let files_of = |answer: &Value| {
            let summary = &answer["summary"];
            ["levels", "tables", "segments", "log", "value_log"].map(|part| summary[part].clone())
        };
        assert_eq!(
            files_of(&brief),
            files_of(&answer),
            "brief summarizes the same"
        );

        let (status, _, body) = get(&agent, &server.url("/api/structure?detail=1"));
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("\"error\""), "{body}");

        let (status, kind, svg) = get(&agent, &server.url("/api/draw.svg"));
        assert_eq!(status, 200);
        assert_eq!(kind, "image/svg+xml");
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        server.stop();
    }
}

/// Whether the only addresses the page names are the SVG namespace (nothing fetched).
fn only_svg_namespace(page: &str) -> bool {
    page.matches("http").count() == page.matches("http://www.w3.org/2000/svg").count()
}

/// Checks the structure answer after three keys were written, one twice, and a flush.
fn check_answer(engine: &str, dir: &Path, answer: &Value) {
    assert_eq!(answer["version"], 1, "{engine}");
    assert_eq!(answer["engine"], engine);
    assert_eq!(answer["dir"], dir.to_str().unwrap());
    assert_eq!(answer["note"], Value::Null);
    assert_eq!(answer["stats"]["live_keys"], 3, "{engine}");
    assert!(answer["stats"]["write_amp"].as_f64().unwrap() > 0.0);
    assert_eq!(answer["structure"]["version"], 1);
    assert_eq!(answer["structure"]["engine"], engine);
    let summary = &answer["summary"];
    assert_eq!(summary["stage"], engine);
    match engine {
        "hashlog" => {
            assert_eq!(summary["log"]["entries"], 4, "{summary}");
            assert!(
                summary["log"]["dead_bytes"].as_u64().unwrap() > 0,
                "{summary}"
            );
            assert_eq!(summary["index"]["keys"], 3);
        }
        "bitcask" => {
            let segments = summary["segments"].as_array().unwrap();
            assert!(!segments.is_empty(), "{summary}");
            let dead: u64 = segments
                .iter()
                .map(|s| s["dead_bytes"].as_u64().unwrap())
                .sum();
            assert!(dead > 0, "the overwritten value is dead: {summary}");
            assert!(summary["index"]["memory_bytes"].as_u64().unwrap() > 0);
        }
        "sstable" => {
            let tables = summary["tables"].as_array().unwrap();
            assert_eq!(tables.len(), 1, "{summary}");
            assert_eq!(
                tables[0]["keys"],
                json!({"first": "apple", "last": "cherry"})
            );
            assert_eq!(summary["memtable"]["entries"], 0);
            assert_eq!(summary["flushes"], 1);
        }
        "wisckey" => {
            check_tree(summary);
            check_value_log(summary);
        }
        _ => check_tree(summary),
    }
}

/// Checks an LSM tree's summary (lsm, or wisckey's tree) after one flush of the three keys.
fn check_tree(summary: &Value) {
    let l0 = &summary["levels"][0];
    assert_eq!(l0["level"], 0);
    let tables = l0["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 1, "{summary}");
    assert_eq!(
        tables[0]["keys"],
        json!({"first": "apple", "last": "cherry"})
    );
    assert!(tables[0]["filter_bytes"].as_u64().unwrap() > 0);
    assert_eq!(summary["memtable"]["entries"], 0);
    assert_eq!(summary["compaction"]["flushes"], 1);
    assert!(summary["block_cache"]["capacity_bytes"].as_u64().unwrap() > 0);
}

/// Checks a wisckey value log's summary: banana's value is live in the log, the small
/// values and apple's overwritten one are dead there, and the collector has not run.
fn check_value_log(summary: &Value) {
    let log = &summary["value_log"];
    let segments = log["segments"].as_array().unwrap();
    assert!(!segments.is_empty(), "{log}");
    assert!(segments[0]["name"].as_str().unwrap().starts_with("vlog/"));
    let total = |field: &str| -> u64 { segments.iter().map(|s| s[field].as_u64().unwrap()).sum() };
    assert_eq!(log["live_bytes"].as_u64(), Some(total("live_bytes")));
    // A record: a 27-byte header, the key, the value.
    assert_eq!(
        total("live_bytes"),
        27 + 6 + 210,
        "banana's record alone: {log}"
    );
    assert!(total("dead_bytes") > 0, "{log}");
    assert_eq!(
        (log["values_inline"].as_u64(), log["values_in_log"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(summary["gc"]["runs"], 0, "{summary}");
}

#[cfg(feature = "peers")]
#[test]
fn a_peer_answers_its_stats_without_a_structure() {
    let agent = agent();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start("fjall", dir.path(), &[], false);
    let answer = structure(&agent, &server, "");
    assert_eq!(answer["version"], 1);
    assert_eq!(answer["structure"], Value::Null);
    assert_eq!(answer["summary"], Value::Null);
    assert!(answer["note"].as_str().unwrap().contains("fjall"));
    assert!(answer["stats"]["disk_bytes"].is_u64());
    let (status, _, body) = get(&agent, &server.url("/api/draw.svg"));
    assert_eq!(status, 404, "{body}");
    server.stop();
}

// ------------------------------------------------------------------ the browser test

/// A running chromedriver with one browser session. Dropping it ends the session and the
/// driver, whatever happened.
struct Browser {
    driver: Child,
    agent: ureq::Agent,
    base: String,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session; `None` (test
    /// skipped) when either is not installed, unless `CI` is set.
    fn start() -> Option<Browser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install {missing:?} (chromium, chromium-driver)"
            );
            eprintln!("skipped: {missing:?} not installed (apt install chromium chromium-driver)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            agent: agent(),
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            _profile: profile,
        };
        browser.wait_ready();
        browser.new_session();
        Some(browser)
    }

    /// Waits until chromedriver answers `/status` ready.
    fn wait_ready(&mut self) {
        let url = format!("{}/status", self.base);
        wait("chromedriver to start", Duration::from_secs(15), || {
            if let Ok(Some(status)) = self.driver.try_wait() {
                let mut err = String::new();
                let _ = self
                    .driver
                    .stderr
                    .take()
                    .map(|mut e| e.read_to_string(&mut err));
                panic!("chromedriver exited with {status}: {err}");
            }
            let mut response = self.agent.get(&url).call().ok()?;
            let body: Value =
                serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()?;
            (body["value"]["ready"] == true).then_some(())
        });
    }

    fn new_session(&mut self) {
        let profile = self._profile.path().display();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1000", format!("--user-data-dir={profile}"),
                ],
            },
        }}});
        let answer = self.send("POST", "/session", Some(capabilities));
        let id = answer["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        self.session = Some(id);
    }

    /// One WebDriver command: `method` on `path` (under the session when it starts with
    /// `/session/-`), its `value`. Panics with the driver's error.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = match &self.session {
            Some(id) => path.replacen("/session/-", &format!("/session/{id}"), 1),
            None => path.to_string(),
        };
        let url = format!("{}{path}", self.base);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(
            response.status().is_success(),
            "{method} {path}: {} {text}",
            response.status()
        );
        answer.get("value").cloned().unwrap_or(answer)
    }

    fn navigate(&self, url: &str) {
        self.send("POST", "/session/-/url", Some(json!({"url": url})));
    }

    /// The WebDriver id of the element `selector` finds.
    fn find(&self, selector: &str) -> String {
        let found = json!({"using": "css selector", "value": selector});
        let element = self.send("POST", "/session/-/element", Some(found));
        element[ELEMENT].as_str().expect("an element").to_string()
    }

    /// Clicks the element `selector` finds, as a user would.
    fn click(&self, selector: &str) {
        let id = self.find(selector);
        self.send("POST", &format!("/session/-/element/{id}/click"), None);
    }

    /// Types `text` into the field `selector` finds.
    fn type_into(&self, selector: &str, text: &str) {
        let id = self.find(selector);
        let keys = json!({"text": text});
        self.send(
            "POST",
            &format!("/session/-/element/{id}/value"),
            Some(keys),
        );
    }

    /// What `script` (a function body) returns in the page.
    fn run(&self, script: &str) -> Value {
        let body = json!({"script": script, "args": []});
        self.send("POST", "/session/-/execute/sync", Some(body))
    }

    /// The page's state as the test reads it.
    fn state(&self) -> PageState {
        let value = self.run(
            "const s = document.getElementById('summary').dataset;
             const status = document.getElementById('status');
             return {levels: s.levels, entries: s.entries, memtable: s.memtable,
                     status: status.dataset.state, said: status.textContent,
                     filling: document.getElementById('fill').dataset.step !== undefined,
                     polls: Number(document.getElementById('live').dataset.polls),
                     svg: document.getElementById('picture').innerHTML};",
        );
        serde_json::from_value(value).expect("the page's state")
    }

    /// Saves a PNG of the page to `path`.
    fn screenshot(&self, path: &Path) {
        let encoded = self.send("GET", "/session/-/screenshot", None);
        let png = base64_decode(encoded.as_str().expect("base64"));
        std::fs::write(path, png).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            let _ = self
                .agent
                .delete(format!("{}/session/{id}", self.base))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// What the test reads off the page.
#[derive(Debug, Clone, serde::Deserialize)]
struct PageState {
    /// `L0:3 L1:2 ...`: tables per level.
    levels: String,
    /// `L0:3000 L1:4000 ...`: entries per level.
    entries: String,
    /// Entries the memtable's WALs hold.
    memtable: String,
    /// `#status`'s `data-state` and text: the last control's answer.
    status: String,
    said: String,
    /// The page is writing a fill in steps (`#fill` has a `data-step`).
    filling: bool,
    /// Polls answered so far.
    polls: u64,
    /// The picture's markup.
    svg: String,
}

impl PageState {
    /// `(level, n)` for each `Ln:n` of `list`.
    fn per_level(list: &str) -> Vec<(u32, u64)> {
        list.split_whitespace()
            .filter_map(|item| {
                let (level, n) = item.strip_prefix('L')?.split_once(':')?;
                Some((level.parse().ok()?, n.parse().ok()?))
            })
            .collect()
    }

    fn tables(&self) -> Vec<(u32, u64)> {
        PageState::per_level(&self.levels)
    }

    /// Entries on L0, and on every deeper level together.
    fn entries_split(&self) -> (u64, u64) {
        let levels = PageState::per_level(&self.entries);
        let l0 = levels.iter().filter(|(l, _)| *l == 0).map(|(_, n)| n).sum();
        let deeper = levels.iter().filter(|(l, _)| *l > 0).map(|(_, n)| n).sum();
        (l0, deeper)
    }

    fn memtable(&self) -> u64 {
        self.memtable.parse().unwrap_or(u64::MAX)
    }
}

#[test]
fn the_page_shows_writes_and_compaction_in_a_browser() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // Small memtables and tables, fixed level targets, and compaction of L0 at one table:
    // 10,000 keys (~1.2 MB) make ten flushes and spread over L1 and L2, and `compact`
    // (flush, then compact until no level is over its target) leaves L0 empty.
    let sets = [
        "memtable_bytes=64K",
        "table_bytes=64K",
        "level1_bytes=256K",
        "dynamic_levels=false",
        "l0_trigger=1",
    ];
    let server = Server::start("lsm", dir.path(), &sets, false);
    let Some(browser) = Browser::start() else {
        server.stop();
        return;
    };
    browser.navigate(&server.url("/"));
    let first = wait("the first poll", Duration::from_secs(10), || {
        let state = browser.state();
        (state.polls > 0 && !state.svg.is_empty()).then_some(state)
    });
    assert_eq!(first.tables().len(), 7, "seven levels: {first:?}");
    assert!(first.tables().iter().all(|&(_, n)| n == 0), "{first:?}");
    let engine = browser.run("return document.getElementById('engine').textContent;");
    assert_eq!(engine, "lsm");
    let label = browser.run("return document.getElementById('fill').textContent;");
    assert_eq!(label, "write 10,000 keys");

    browser.click("#fill");
    // The page writes the keys in ten requests of 1,000, redrawing after each.
    let mut pictures = std::collections::BTreeSet::new();
    let filled = wait(
        "the ten steps written: tables on the levels, entries in the memtable",
        Duration::from_secs(30),
        || {
            let state = browser.state();
            assert_ne!(state.status, "error", "{}", state.said);
            pictures.insert(state.svg.clone());
            let tables: u64 = state.tables().iter().map(|(_, n)| n).sum();
            let done = state.status == "ok" && !state.filling;
            (done && tables > 0 && state.memtable() > 0).then_some(state)
        },
    );
    assert!(filled.said.contains("\"written\":1000,"), "{}", filled.said);
    assert!(
        pictures.len() > 2,
        "the picture changed during the fill only {} times",
        pictures.len() - 1
    );
    assert_ne!(
        filled.svg, first.svg,
        "the picture did not change after the writes"
    );

    browser.click("#compact");
    let compacted = wait("compaction to empty L0", Duration::from_secs(20), || {
        let state = browser.state();
        assert_ne!(state.status, "error", "{}", state.said);
        let (l0, deeper) = state.entries_split();
        let done = state.status == "ok" && state.memtable() == 0 && l0 == 0;
        (done && deeper > filled.entries_split().1).then_some(state)
    });
    let (_, deeper) = compacted.entries_split();
    assert!(
        deeper >= 9_900,
        "the 10,000 keys (a few may collide): {compacted:?}"
    );
    let deep_tables: u64 = compacted
        .tables()
        .iter()
        .filter(|(l, _)| *l > 0)
        .map(|(_, n)| n)
        .sum();
    assert!(deep_tables > 1, "{compacted:?}");
    assert_ne!(
        compacted.svg, filled.svg,
        "the picture did not change after compaction"
    );

    if let Some(path) = std::env::var_os("KV_SERVE_SCREENSHOT") {
        browser.screenshot(Path::new(&path));
    }

    // Keys are `key` and ten digits drawn uniformly: about half are below `key5`.
    browser.type_into("#delete-from", "key0");
    browser.type_into("#delete-to", "key5");
    browser.click("#delete-range");
    let deleted = wait("the range deleted", Duration::from_secs(20), || {
        let state = browser.state();
        assert_ne!(state.status, "error", "{}", state.said);
        (state.status == "ok" && state.said.contains("delete_range")).then_some(state)
    });
    assert!(
        deleted.said.contains("from=key0&to=key5"),
        "{}",
        deleted.said
    );
    let count = deleted.said.split("\"deleted\":").nth(1).and_then(|rest| {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<u64>()
            .ok()
    });
    assert!(matches!(count, Some(3_000..=7_000)), "{}", deleted.said);
    drop(browser);
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// Calls `check` every 50 ms until it gives a value, at most `limit`; panics naming `what`.
fn wait<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Standard base64 (with `=` padding) to bytes: WebDriver's screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut held) = (0u32, 0);
    for c in text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
    {
        bits = (bits << 6) | u32::from(value(c));
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
        }
    }
    out
}

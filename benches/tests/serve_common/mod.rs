//! Starting and stopping a real `kv serve` process for the serve tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running `kv ... serve` on free loopback ports.
pub struct Server {
    child: Option<Child>,
    stdout: BufReader<ChildStdout>,
    /// `http://127.0.0.1:PORT`.
    pub http: String,
    /// `127.0.0.1:PORT` of the Redis protocol, when started with it.
    pub resp: Option<String>,
}

impl Server {
    /// Starts `kv --engine ENGINE --dir DIR [--set S]... serve --listen 127.0.0.1:0` (and
    /// `--resp 127.0.0.1:0` when `resp`), and reads the addresses it prints.
    pub fn start(engine: &str, dir: &Path, sets: &[&str], resp: bool) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kv"));
        command.args(["--engine", engine, "--dir"]).arg(dir);
        for set in sets {
            command.args(["--set", set]);
        }
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if resp {
            command.args(["--resp", "127.0.0.1:0"]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kv serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = |child: &mut Child| {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read kv serve's output");
            if line.is_empty() {
                let mut err = String::new();
                let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("kv serve ended before printing its addresses: {err}");
            }
            line.trim_end().to_string()
        };
        let http = line(&mut child);
        assert!(http.starts_with("http://127.0.0.1:"), "{http}");
        let resp = resp.then(|| {
            let line = line(&mut child);
            line.strip_prefix("redis://")
                .unwrap_or_else(|| panic!("expected redis://..., got {line}"))
                .to_string()
        });
        Server {
            child: Some(child),
            stdout,
            http,
            resp,
        }
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    /// Sends Ctrl-C (`SIGINT`), waits for the process, and checks it closed the store and
    /// exited with success. Returns what it printed after the addresses.
    pub fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        interrupt(&child);
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).expect("read");
        let status = child.wait().expect("wait");
        let mut err = String::new();
        let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
        assert!(status.success(), "kv serve exited with {status}: {err}");
        assert!(rest.contains("closed "), "{rest}");
        rest
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `SIGINT` to `child`, as Ctrl-C in its terminal would.
fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT failed");
}

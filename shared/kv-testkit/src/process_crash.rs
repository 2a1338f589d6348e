//! The process-crash suite: a child process writes, the parent kills it with `SIGKILL`, and
//! the store must hold every write the child saw acknowledged.
//!
//! This is the failure of `kill -9`, an out-of-memory kill or a segfault: the process stops
//! between two instructions, but what it handed to the operating system stays (the
//! durability contract: when `put` returns, the bytes were written with a write call). It is
//! what RocksDB's `db_crashtest.py` and sled's crash tests do, on the real file system.
//!
//! ## How a run goes
//!
//! 1. The test re-runs its own binary ([`crate::child_process::rerun_self`]) with
//!    [`CHILD_ENV`] set: the child opens the store and writes random puts, deletes,
//!    overwrites and batches, with a `sync` or a `compact` now and then
//!    ([`crate::history::StepGen`]),
//!    appending to a **report file** a line `issue N` before each write and `ack N` after it
//!    returns, each with one write call. The parent regenerates the same writes from the
//!    seed, so the report needs only numbers.
//! 2. The parent waits until the child is writing, lets it run a random few milliseconds and
//!    kills it. One run in ten kills it **during open** instead: that child closes and
//!    reopens the store after every few writes, so the kill most likely lands in recovery.
//! 3. The parent copies the store and opens the copy (so the next child recovers the very
//!    state this crash left, and a kill during recovery is tested too), reads it back, and
//!    checks: every acknowledged write is there, and the contents equal the state before
//!    the run plus some prefix of the writes issued, a batch counting as one write that is
//!    there whole or not at all ([`crate::history::assert_some_prefix`]).
//!    That state is the base of the next run, on the same directory.
//!
//! `KV_CRASH_RUNS` sets the number of crashes (default 50); the seed prints and replays
//! with `KV_TEST_SEED`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::child_process::rerun_self;
use crate::history::{Observed, State, Step, StepGen, WriteOp, assert_some_prefix, read_store};
use kv_shared::{Engine, Options};

/// The environment variable that makes a test run as the writing child:
/// `<store dir>|<report file>|<seed>|<run>|<mode>`, mode `write` or `reopen`.
pub const CHILD_ENV: &str = "KV_CRASH_CHILD";

/// How the child process spends its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Open once, then write until killed.
    Write,
    /// Open, write a few, close, again and again: most kills land in open or close.
    Reopen,
}

struct ChildSpec {
    dir: PathBuf,
    report: PathBuf,
    seed: u64,
    run: u64,
    mode: Mode,
}

impl ChildSpec {
    fn encode(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.dir.display(),
            self.report.display(),
            self.seed,
            self.run,
            if self.mode == Mode::Write {
                "write"
            } else {
                "reopen"
            }
        )
    }

    fn decode(s: &str) -> Option<ChildSpec> {
        let mut parts = s.split('|');
        Some(ChildSpec {
            dir: parts.next()?.into(),
            report: parts.next()?.into(),
            seed: parts.next()?.parse().ok()?,
            run: parts.next()?.parse().ok()?,
            mode: if parts.next()? == "write" {
                Mode::Write
            } else {
                Mode::Reopen
            },
        })
    }
}

/// The child's side: writes until killed (or for at most a minute).
fn child<E: Engine>(options: &Options, spec: &ChildSpec) {
    let mut report = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&spec.report)
        .expect("open the report file");
    let mut line = |text: String| {
        report
            .write_all(text.as_bytes())
            .expect("write the report file")
    };
    let mut generator = StepGen::new(spec.seed, spec.run);
    let mut write = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        line("open\n".to_string());
        let engine = E::open(&spec.dir, options).expect("child: open");
        line("ready\n".to_string());
        let burst = if spec.mode == Mode::Write {
            u64::MAX
        } else {
            1
        };
        let mut steps = 0;
        while steps < burst && Instant::now() < deadline {
            steps += 1;
            let step = generator.next_step();
            let is_write = matches!(step, Step::Write(_));
            if is_write {
                line(format!("issue {write}\n"));
            }
            step.run(&engine)
                .unwrap_or_else(|e| panic!("child: {step:?} failed: {e}"));
            if is_write {
                line(format!("ack {write}\n"));
                write += 1;
            }
        }
        if spec.mode == Mode::Write {
            engine.close().expect("child: close");
        }
        // In reopen mode the engine is dropped unclosed, so the next open recovers.
    }
}

/// What a killed child's report says: how many writes it issued and how many were acked,
/// and how many opens it began.
fn read_report(path: &Path) -> (usize, usize, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut issued, mut acked, mut opens) = (0, 0, 0);
    // Only whole lines count: the kill may land in the middle of a line's write.
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|n| n.parse::<usize>().ok()),
        ) {
            (Some("issue"), Some(n)) => issued = issued.max(n + 1),
            (Some("ack"), Some(n)) => acked = acked.max(n + 1),
            (Some("open"), _) => opens += 1,
            _ => {}
        }
    }
    (issued, acked, opens)
}

/// Copies the files of the store `from`, and of its subdirectories (stage 5 keeps its tree
/// and its value log in two), into `to`, emptied or created first: a snapshot of a killed
/// child's store to open, leaving the store itself as the crash left it.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_dir_all(to).expect("clear the copy");
    }
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("list the store") {
        let entry = entry.expect("list the store");
        let kind = entry.file_type().expect("file type");
        if kind.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a file");
        } else if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        }
    }
}

/// Runs the suite: `runs` crashes of child processes on one store. `test_name` is the full
/// name of the calling test as libtest knows it (see [`crate::child_process::test_name`]).
/// Inside the child this function becomes the child's body.
///
/// # Panics
/// When a child dies on its own, or a recovered store lost an acknowledged write or is not
/// the result of any prefix of the writes.
pub fn process_crash<E: Engine>(options: &Options, test_name: &str, seed: u64, runs: u64) {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let spec = ChildSpec::decode(&spec).expect("a well-formed child spec");
        child::<E>(options, &spec);
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let copy = tmp.path().join("copy");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut base = State::new();
    let (mut total_acked, mut open_kills) = (0usize, 0u64);
    for run in 0..runs {
        let mode = if rng.random_ratio(1, 10) {
            Mode::Reopen
        } else {
            Mode::Write
        };
        let spec = ChildSpec {
            dir: dir.clone(),
            report: tmp.path().join(format!("report-{run}")),
            seed,
            run,
            mode,
        };
        let context = format!(
            "{}: process crash run {run} ({mode:?}) (replay with KV_TEST_SEED={seed})",
            E::NAME
        );
        let stderr = tmp.path().join(format!("stderr-{run}"));
        kill_a_child(test_name, &spec, &stderr, &mut rng, &context);
        let (issued, acked, _) = read_report(&spec.report);
        if mode == Mode::Reopen {
            let text = std::fs::read_to_string(&spec.report).unwrap_or_default();
            open_kills += u64::from(text.trim_end().ends_with("open"));
        }
        let ops = StepGen::new(seed, run).writes(issued);
        copy_dir(&dir, &copy);
        check_recovered::<E>(options, &copy, &mut base, &ops, acked, &context);
        total_acked += acked;
    }
    eprintln!(
        "{}: {runs} process crashes ({open_kills} while opening), {total_acked} acknowledged \
         writes, none lost",
        E::NAME
    );
}

/// Starts a child as `spec` says, waits until it is under way, and kills it: in write mode
/// a random few milliseconds after its first write, in reopen mode as it begins its
/// second to fourth open.
fn kill_a_child(
    test_name: &str,
    spec: &ChildSpec,
    stderr: &Path,
    rng: &mut ChaCha8Rng,
    context: &str,
) {
    let mut child = spawn_child(test_name, (CHILD_ENV, spec.encode()), stderr);
    let started = Instant::now();
    let target_opens = rng.random_range(2..=4);
    loop {
        let (issued, _, opens) = read_report(&spec.report);
        if (spec.mode == Mode::Write && issued > 0)
            || (spec.mode == Mode::Reopen && opens >= target_opens)
        {
            break;
        }
        if let Some(status) = child.try_wait().expect("poll the child") {
            panic!(
                "{context}: the child exited before writing {}",
                died(status, stderr)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{context}: the child did not start writing within a minute"
        );
        std::thread::sleep(Duration::from_micros(50));
    }
    if spec.mode == Mode::Write {
        std::thread::sleep(Duration::from_micros(rng.random_range(0..30_000)));
    }
    kill_child(child, stderr, context);
}

/// Starts the running test binary again as a child that runs `test_name` with the
/// environment variable `env` set (its spec), its stderr going to the file `stderr`.
///
/// # Panics
/// When the child cannot be started.
pub(crate) fn spawn_child(test_name: &str, env: (&str, String), stderr: &Path) -> Child {
    rerun_self(test_name)
        .env(env.0, env.1)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).expect("stderr file"))
        .spawn()
        .expect("spawn the child")
}

/// How a child that ended on its own ended: its exit status and what it wrote to the file
/// `stderr`.
pub(crate) fn died(status: ExitStatus, stderr: &Path) -> String {
    format!(
        "({status}): {}",
        std::fs::read_to_string(stderr).unwrap_or_default()
    )
}

/// Kills `child` with SIGKILL and reaps it.
///
/// # Panics
/// When it has already died on its own, quoting its stderr file `stderr`.
pub(crate) fn kill_child(mut child: Child, stderr: &Path, context: &str) {
    if let Some(status) = child.try_wait().expect("poll the child") {
        panic!(
            "{context}: the child died on its own {}",
            died(status, stderr)
        );
    }
    child.kill().expect("kill the child");
    child.wait().expect("reap the child");
}

/// Opens the copy of a killed child's store and checks that it holds `base` plus some
/// prefix of `ops` keeping at least the `acked` first; that state becomes the next `base`.
fn check_recovered<E: Engine>(
    options: &Options,
    copy: &Path,
    base: &mut State,
    ops: &[WriteOp],
    acked: usize,
    context: &str,
) {
    let engine = E::open(copy, options)
        .unwrap_or_else(|e| panic!("{context}: reopening after the kill: {e}"));
    let state = read_store(&engine).unwrap_or_else(|e| panic!("{context}: reading back: {e}"));
    let observed = Observed::complete(&state);
    let p = assert_some_prefix(base, ops, &observed, acked, ops.len(), context);
    engine
        .close()
        .unwrap_or_else(|e| panic!("{context}: close: {e}"));
    for op in &ops[..p] {
        op.apply(base);
    }
}

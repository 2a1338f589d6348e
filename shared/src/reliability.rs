//! The reliability suites, and the one macro that runs them all for an engine.
//!
//! The conformance suite ([`crate::conformance`]) checks what an engine does when all goes
//! well. These suites check what it does when things go wrong, the way RocksDB, LevelDB,
//! SQLite and sled test themselves:
//!
//! | suite | module | the failure |
//! |---|---|---|
//! | process crash | [`crate::process_crash`] | `SIGKILL` of a writing child process |
//! | power loss | [`crate::power_loss`] | unsynced writes and directory entries lost or torn ([`crate::fault_fs`]) |
//! | I/O errors | [`crate::io_errors`] | one call fails, or the disk fills up |
//! | corruption | [`crate::corruption_suite`] | flipped bytes, files cut short |
//! | hostile input | [`crate::hostile_input`] | decoders fed random and mutated bytes |
//! | concurrency | [`crate::linearizability`] | many threads at once, checked for linearizability |
//!
//! An engine crate runs them all from `tests/reliability.rs`:
//!
//! ```ignore
//! kv_shared::reliability_tests!(hashlog::HashLog, small_options(), hashlog::inspect);
//! ```
//!
//! where the options shrink the engine's thresholds (segment, memtable, level sizes) to a
//! few kilobytes, so that rotations, flushes, merges and compactions happen many times in
//! the small workloads the suites run.
//!
//! ## Sizes and seeds
//!
//! Defaults keep one engine's whole suite well under a minute in `cargo test`. Long runs
//! set these environment variables:
//!
//! | variable | default | what |
//! |---|---|---|
//! | `KV_TEST_SEED` | per suite | replays a run: every suite prints the seed it used |
//! | `KV_CRASH_RUNS` | 50 | child processes killed |
//! | `KV_POWERLOSS_RUNS` | 40 | random workloads cut by a power loss |
//! | `KV_POWERLOSS_POINTS` | 250 | crash points of the every-file-operation run (all, if fewer) |
//! | `KV_IOERROR_RUNS` | 200 | workloads with a failing call |
//! | `KV_CORRUPTION_FLIPS` | 30 | random byte-flip cases per file |
//! | `KV_CORRUPTION_TAIL` | 48 | tail bytes truncated at every offset, per file |
//! | `KV_HOSTILE_CASES` | 500 | hostile inputs for `inspect` |
//! | `KV_HOSTILE_OPEN_CASES` | 150 | stores opened with one hostile file |
//! | `KV_LINEARIZABILITY_OPS` | 1500 | calls per thread of the concurrency check |
//! | `KV_NO_CHILD` | unset | runs the hostile-input suite in-process (no memory limit, no watchdog) |

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::conformance::{env_u64, seed};
use crate::{Engine, Options};

/// Set in a child started by [`run_bounded`].
pub const BOUNDED_CHILD_ENV: &str = "KV_BOUNDED_CHILD";
/// Where a bounded child writes down the case it is about to run.
pub const CASE_FILE_ENV: &str = "KV_CASE_FILE";
/// The address-space limit of a bounded child, in KiB (2 GiB): far above what any case
/// needs, far below what an allocation sized by a corrupt 32-bit length asks for.
pub const CHILD_MEMORY_KIB: u64 = 2 << 20;
/// How long one case of a bounded child may run before the parent calls it a hang.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The name libtest knows a test by, from `concat!(module_path!(), "::name")`: the path
/// without its first segment (the crate's name).
pub fn test_name(full_path: &str) -> &str {
    full_path
        .split_once("::")
        .map_or(full_path, |(_, rest)| rest)
}

/// A command that runs exactly the test `test_name` of the current test binary, alone.
pub fn rerun_self(test_name: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args(["--exact", test_name, "--nocapture", "--test-threads", "1"]);
    command
}

/// Runs `body` in a child process (the same test, re-run) whose address space is limited to
/// [`CHILD_MEMORY_KIB`] and whose every case (as written down through [`CASE_FILE_ENV`])
/// must finish within [`CASE_TIMEOUT`]. In the child, or with `KV_NO_CHILD` set, or
/// without `/bin/sh`, runs `body` directly.
///
/// # Panics
/// When the child fails, aborts or hangs, with its output and the case it was running.
pub fn run_bounded(test_name: &str, body: impl FnOnce()) {
    if std::env::var_os(BOUNDED_CHILD_ENV).is_some()
        || std::env::var_os("KV_NO_CHILD").is_some()
        || !Path::new("/bin/sh").exists()
    {
        body();
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (case_file, out_file) = (tmp.path().join("case"), tmp.path().join("output"));
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {CHILD_MEMORY_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
        .env(BOUNDED_CHILD_ENV, "1")
        .env(CASE_FILE_ENV, &case_file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&out_file).expect("output file"))
        .spawn()
        .expect("spawn the bounded child");
    let mut last_case = String::new();
    let mut since = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        let case = std::fs::read_to_string(&case_file).unwrap_or_default();
        if case != last_case {
            last_case = case;
            since = Instant::now();
        } else if since.elapsed() > CASE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "one case ran for over {CASE_TIMEOUT:?} (an endless loop?): {}",
                last_case
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&out_file).unwrap_or_default();
    if status.success() {
        for line in output.lines().filter(|l| !l.trim().is_empty()) {
            eprintln!("  (child) {line}");
        }
    } else {
        let tail: String = output
            .chars()
            .skip(output.chars().count().saturating_sub(6000))
            .collect();
        panic!(
            "the bounded child failed ({status}); the last case it began was: {}\n--- child \
             output (end) ---\n{tail}",
            std::fs::read_to_string(&case_file).unwrap_or_default()
        );
    }
}

/// The process-crash suite at its default size.
pub fn run_process_crash<E: Engine>(options: &Options, full_test_path: &str) {
    let seed = if std::env::var_os(crate::process_crash::CHILD_ENV).is_some() {
        0 // the child reads its seed from its spec
    } else {
        seed("process_crash", 0xC7A5)
    };
    let runs = env_u64("KV_CRASH_RUNS", 50);
    crate::process_crash::process_crash::<E>(options, test_name(full_test_path), seed, runs);
}

/// The random power-loss suite at its default size.
pub fn run_power_loss_random<E: Engine>(options: &Options) {
    let seed = seed("power_loss_random", 0x9A55);
    crate::power_loss::random_power_losses::<E>(options, seed, env_u64("KV_POWERLOSS_RUNS", 40));
}

/// The crash-at-every-file-operation suite at its default size.
pub fn run_power_loss_every_operation<E: Engine>(options: &Options) {
    let seed = seed("power_loss_every_operation", 0xE7E7);
    crate::power_loss::crash_at_every_mutation::<E>(
        options,
        seed,
        env_u64("KV_POWERLOSS_POINTS", 250),
    );
}

/// The I/O-error suite at its default size.
pub fn run_io_errors<E: Engine>(options: &Options) {
    let seed = seed("io_errors", 0x10E5);
    crate::io_errors::io_errors::<E>(options, seed, env_u64("KV_IOERROR_RUNS", 200));
}

/// The corruption suite at its default size.
pub fn run_corruption<E: Engine>(options: &Options) {
    let seed = seed("corruption", 0xC0DE);
    crate::corruption_suite::corruption::<E>(
        options,
        seed,
        env_u64("KV_CORRUPTION_FLIPS", 30),
        env_u64("KV_CORRUPTION_TAIL", 48),
    );
}

/// The hostile-input suite at its default size, in a bounded child process.
pub fn run_hostile_input<E: Engine>(
    options: &Options,
    inspect: fn(&[u8]) -> Option<String>,
    full_test_path: &str,
) {
    run_bounded(test_name(full_test_path), || {
        let seed = seed("hostile_input", 0xBAD);
        let (image, _) = crate::corruption_suite::build_store::<E>(options, seed, 300);
        let samples: Vec<Vec<u8>> = image.values().cloned().collect();
        for sample in &samples {
            assert!(
                inspect(sample).is_some() || sample.starts_with(crate::marker::MAGIC),
                "inspect does not recognise a file the engine wrote ({} bytes, starting {})",
                sample.len(),
                crate::dump::quoted(&sample[..sample.len().min(12)], 12)
            );
        }
        let cases = env_u64("KV_HOSTILE_CASES", 500) as u32;
        crate::hostile_input::hostile_inspect(inspect, samples, seed, cases);
        let cases = env_u64("KV_HOSTILE_OPEN_CASES", 150) as u32;
        crate::hostile_input::hostile_open::<E>(options, &image, seed, cases);
    });
}

/// The concurrency suite at its default size.
pub fn run_linearizability<E: Engine>(options: &Options) {
    let seed = seed("linearizability", 0x11AE);
    crate::linearizability::concurrent_histories::<E>(
        options,
        seed,
        4,
        env_u64("KV_LINEARIZABILITY_OPS", 1500),
    );
}

/// Runs every reliability suite as `#[test]` functions in a module named `reliability`.
///
/// The arguments: the engine type, an expression for its [`crate::Options`] (thresholds
/// shrunk so that rotations, flushes and compactions happen often; the file system is
/// replaced by the suites that need to), and the crate's `inspect` function.
///
/// ```ignore
/// kv_shared::reliability_tests!(
///     hashlog::HashLog,
///     kv_shared::Options::new().set("compact_min_bytes", "4K"),
///     hashlog::inspect
/// );
/// ```
#[macro_export]
macro_rules! reliability_tests {
    ($engine:ty, $options:expr, $inspect:path) => {
        mod reliability {
            #[allow(unused_imports)]
            use super::*;

            fn options() -> $crate::Options {
                $options
            }

            #[test]
            fn process_crash() {
                $crate::reliability::run_process_crash::<$engine>(
                    &options(),
                    concat!(module_path!(), "::process_crash"),
                );
            }
            #[test]
            fn power_loss_random() {
                $crate::reliability::run_power_loss_random::<$engine>(&options());
            }
            #[test]
            fn power_loss_at_every_file_operation() {
                $crate::reliability::run_power_loss_every_operation::<$engine>(&options());
            }
            #[test]
            fn io_errors() {
                $crate::reliability::run_io_errors::<$engine>(&options());
            }
            #[test]
            fn corruption() {
                $crate::reliability::run_corruption::<$engine>(&options());
            }
            #[test]
            fn hostile_input() {
                $crate::reliability::run_hostile_input::<$engine>(
                    &options(),
                    $inspect,
                    concat!(module_path!(), "::hostile_input"),
                );
            }
            #[test]
            fn linearizability() {
                $crate::reliability::run_linearizability::<$engine>(&options());
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_names_drop_the_crate() {
        assert_eq!(
            super::test_name("reliability::reliability::process_crash"),
            "reliability::process_crash"
        );
        assert_eq!(super::test_name("alone"), "alone");
    }
}

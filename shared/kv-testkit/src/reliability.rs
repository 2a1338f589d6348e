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
//! | fsync failure | [`crate::fsync_failure`] | a `sync` fails and its data is lost (Linux's "fsyncgate") |
//! | corruption | [`crate::corruption_suite`] | flipped bytes, files cut short |
//! | hostile input | [`crate::hostile_input`] | decoders fed random and mutated bytes |
//! | concurrency | [`crate::linearizability`] | many threads at once, checked for linearizability |
//! | concurrent crash | [`crate::concurrent_crash`] | `SIGKILL` or power loss while several threads write |
//! | repair | [`crate::repair_suite`] | a damaged store, brought back by the engine's `repair` |
//!
//! An engine crate runs them all from `tests/reliability.rs`:
//!
//! ```ignore
//! kv_testkit::reliability_tests!(hashlog::HashLog, small_options(), hashlog::inspect);
//! ```
//!
//! where the options shrink the engine's thresholds (segment, memtable, level sizes) to a
//! few kilobytes, so that rotations, flushes, merges and compactions happen many times in
//! the small workloads the suites run.
//!
//! ## Sizes and seeds
//!
//! Defaults keep one engine's whole suite well under a minute in `cargo test`. A long run
//! sets `KV_LONG=1`, which multiplies every default below by 20 ([`crate::knobs`]); one
//! suite's variable, when set, wins:
//!
//! | variable | default | what |
//! |---|---|---|
//! | `KV_TEST_SEED` | per suite | replays a run: every suite prints the seed it used |
//! | `KV_CRASH_RUNS` | 50 | child processes killed |
//! | `KV_POWERLOSS_RUNS` | 40 | random workloads cut by a power loss |
//! | `KV_POWERLOSS_POINTS` | 250 | crash points of the every-file-operation run (all, if fewer) |
//! | `KV_IOERROR_WORKLOADS` | 1 | workloads whose every call fails once, and fills the disk |
//! | `KV_IOERROR_STRIDE` | 3 (1 under `KV_LONG`) | fail one call in this many (1: every call) |
//! | `KV_FSYNC_WORKLOADS` | 2 | workloads whose every sync fails in turn, losing its data |
//! | `KV_CORRUPTION_FLIPS` | 200 | byte-flip cases per file type, each in a file drawn from that type |
//! | `KV_CORRUPTION_CUTS` | 100 | truncation cases per file type, each in a file drawn from that type |
//! | `KV_CORRUPTION_WRITES` | 400 | writes of the store the corruption suite damages (more files, levels) |
//! | `KV_HOSTILE_CASES` | 500 | hostile inputs for `inspect` |
//! | `KV_HOSTILE_OPEN_CASES` | 150 | stores opened with one hostile file |
//! | `KV_LINEARIZABILITY_OPS` | 1500 | calls per thread of the concurrency check |
//! | `KV_CONCURRENT_CRASH_RUNS` | 25 | child processes killed while 4 threads write |
//! | `KV_CONCURRENT_POWERLOSS_RUNS` | 25 | power losses while 4 threads write |
//! | `KV_REPAIR_FLIPS` | 60 | byte-flip cases per file type brought back by `repair` |
//! | `KV_REPAIR_CUTS` | 20 | truncation cases per file type brought back by `repair` |
//! | `KV_NO_CHILD` | unset | runs the hostile-input suite in-process (no memory limit, no watchdog) |

use kv_shared::{Engine, Options};

use crate::child_process::test_name;
use crate::knobs::{env_u64, seed};

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

/// The I/O-error suite at its default size: one workload, one call in three failing (a
/// stride the seed offsets); every call under `KV_LONG` or with `KV_IOERROR_STRIDE=1`.
pub fn run_io_errors<E: Engine>(options: &Options) {
    let seed = seed("io_errors", 0x10E5);
    let stride = std::env::var("KV_IOERROR_STRIDE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if crate::knobs::long_factor() > 1 {
            1
        } else {
            3
        });
    let workloads = env_u64("KV_IOERROR_WORKLOADS", 1);
    crate::io_errors::io_errors::<E>(options, seed, workloads, stride);
}

/// The fsync-failure suite at its default size.
pub fn run_fsync_failure<E: Engine>(options: &Options) {
    let seed = seed("fsync_failure", 0xF5C);
    let workloads = env_u64("KV_FSYNC_WORKLOADS", 2);
    crate::fsync_failure::fsync_failures::<E>(options, seed, workloads);
}

/// The corruption suite at its default size; `inspect` tells it which keys a damage can
/// destroy.
pub fn run_corruption<E: Engine>(options: &Options, inspect: fn(&[u8]) -> Option<String>) {
    let seed = seed("corruption", 0xC0DE);
    crate::corruption_suite::corruption::<E>(
        options,
        inspect,
        seed,
        (
            env_u64("KV_CORRUPTION_WRITES", 400),
            env_u64("KV_CORRUPTION_FLIPS", 200),
            env_u64("KV_CORRUPTION_CUTS", 100),
        ),
    );
}

/// The hostile-input suite at its default size, in a bounded child process.
pub fn run_hostile_input<E: Engine>(
    options: &Options,
    inspect: fn(&[u8]) -> Option<String>,
    full_test_path: &str,
) {
    crate::child_process::run_bounded(test_name(full_test_path), || {
        let seed = seed("hostile_input", 0xBAD);
        let (image, _) = crate::corruption_suite::build_store::<E>(options, seed, 300);
        let samples: Vec<Vec<u8>> = image.values().cloned().collect();
        for sample in &samples {
            assert!(
                inspect(sample).is_some() || sample.starts_with(kv_shared::marker::MAGIC),
                "inspect does not recognise a file the engine wrote ({} bytes, starting {})",
                sample.len(),
                kv_shared::dump::quoted(&sample[..sample.len().min(12)], 12)
            );
        }
        let cases = env_u64("KV_HOSTILE_CASES", 500) as u32;
        crate::hostile_input::hostile_inspect(inspect, samples, seed, cases);
        let cases = env_u64("KV_HOSTILE_OPEN_CASES", 150) as u32;
        crate::hostile_input::hostile_open::<E>(options, &image, seed, cases);
    });
}

/// The repair suite at its default size.
pub fn run_repair<E: Engine>(
    options: &Options,
    inspect: crate::repair_suite::InspectFn,
    repair: crate::repair_suite::RepairFn,
) {
    let seed = seed("repair", 0x4E9A);
    crate::repair_suite::repair_suite::<E>(
        options,
        inspect,
        repair,
        seed,
        (
            env_u64("KV_REPAIR_FLIPS", 60),
            env_u64("KV_REPAIR_CUTS", 20),
        ),
    );
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

/// The kill half of the concurrent crash suite at its default size.
pub fn run_concurrent_crash_kill<E: Engine>(options: &Options, full_test_path: &str) {
    let seed = if std::env::var_os(crate::concurrent_crash::CHILD_ENV).is_some() {
        0 // the child reads its seed from its spec
    } else {
        seed("concurrent_crash_kill", 0xC0C7)
    };
    let runs = env_u64("KV_CONCURRENT_CRASH_RUNS", 25);
    crate::concurrent_crash::concurrent_kills::<E>(options, test_name(full_test_path), seed, runs);
}

/// The power-loss half of the concurrent crash suite at its default size.
pub fn run_concurrent_crash_power_loss<E: Engine>(options: &Options) {
    let seed = seed("concurrent_crash_power_loss", 0xC09A);
    let runs = env_u64("KV_CONCURRENT_POWERLOSS_RUNS", 25);
    crate::concurrent_crash::concurrent_power_losses::<E>(options, seed, runs);
}

/// The checks of the `sync_writes` option: acknowledged writes survive a power loss, and a
/// failed fsync is final.
pub fn run_sync_writes<E: Engine>(options: &Options) {
    let seed = seed("sync_writes", 0x5C3D);
    crate::concurrent_crash::sync_writes_survive_power_loss::<E>(options, seed);
    crate::concurrent_crash::failed_sync_write_is_final::<E>(options);
}

/// Runs every reliability suite as `#[test]` functions in a module named `reliability`.
///
/// The arguments: the engine type, an expression for its [`kv_shared::Options`] (thresholds
/// shrunk so that rotations, flushes and compactions happen often; the file system is
/// replaced by the suites that need to), and the crate's `inspect` function.
///
/// ```
/// // tests/reliability.rs of an engine crate
/// kv_testkit::reliability_tests!(
///     kv_testkit::example_engine::ExampleEngine,
///     kv_shared::Options::new(),
///     kv_testkit::example_engine::inspect
/// );
/// # fn main() {}
/// ```
///
/// A stage passes options that shrink its thresholds, such as
/// `kv_shared::Options::new().set("segment_bytes", "4K")` for bitcask.
///
/// A fourth argument, the crate's `repair` function (see [`kv_shared::repair`]), adds the
/// repair suite ([`crate::repair_suite`]) as `#[test] fn repair()`:
///
/// ```ignore
/// kv_testkit::reliability_tests!(hashlog::HashLog, options(), hashlog::inspect, hashlog::repair);
/// ```
#[macro_export]
macro_rules! reliability_tests {
    (@suites $engine:ty, $options:expr, $inspect:path, { $($extra:tt)* }) => {
        mod reliability {
            #[allow(unused_imports)]
            use super::*;

            fn options() -> $crate::kv_shared::Options {
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
            fn fsync_failure_is_final() {
                $crate::reliability::run_fsync_failure::<$engine>(&options());
            }
            #[test]
            fn corruption() {
                $crate::reliability::run_corruption::<$engine>(&options(), $inspect);
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
            #[test]
            fn concurrent_crash_kill() {
                $crate::reliability::run_concurrent_crash_kill::<$engine>(
                    &options(),
                    concat!(module_path!(), "::concurrent_crash_kill"),
                );
            }
            #[test]
            fn concurrent_crash_power_loss() {
                $crate::reliability::run_concurrent_crash_power_loss::<$engine>(&options());
            }
            #[test]
            fn sync_writes() {
                $crate::reliability::run_sync_writes::<$engine>(&options());
            }
            $($extra)*
        }
    };
    ($engine:ty, $options:expr, $inspect:path) => {
        $crate::reliability_tests!(@suites $engine, $options, $inspect, {});
    };
    ($engine:ty, $options:expr, $inspect:path, $repair:path) => {
        $crate::reliability_tests!(@suites $engine, $options, $inspect, {
            #[test]
            fn repair() {
                $crate::reliability::run_repair::<$engine>(&options(), $inspect, $repair);
            }
        });
    };
}

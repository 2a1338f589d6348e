//! # kv-testkit: the laboratory every engine is tested in
//!
//! [`kv_shared`] says what an engine must do; this crate checks that it does, with suites
//! any engine can run from its own tests, the course's stages and a learner's own engine
//! alike. Engines take it as a dev-dependency only.
//!
//! ```ignore
//! // tests/conformance.rs of an engine crate
//! kv_testkit::conformance_tests!(my_engine::MyEngine, kv_shared::Options::new());
//! // tests/reliability.rs
//! kv_testkit::reliability_tests!(my_engine::MyEngine, small_options(), my_engine::inspect);
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`conformance`] | the conformance suite: what an engine does when all goes well, and [`conformance_tests!`] |
//! | [`reliability`] | the reliability suites at their default sizes, and [`reliability_tests!`] |
//! | [`process_crash`] | the process-crash suite: `SIGKILL` a writing child |
//! | [`concurrent_crash`] | the concurrent crash suite: several writers, killed or cut by a power loss |
//! | [`power_loss`] | the power-loss suite, on [`FaultFs`] |
//! | [`io_errors`] | the I/O-error suite, on [`FaultFs`] |
//! | [`fsync_failure`] | the fsync-failure suite: a failed `sync` loses its data, and must be final |
//! | [`corruption_suite`] | the corruption suite: flipped bytes and truncated files |
//! | [`hostile_input`] | the hostile-input suite: proptest against every decoder |
//! | [`resealed`] | structure-aware fuzzing: one checksummed unit of a real file mutated and resealed, fed to `inspect` and `open` |
//! | [`repair_suite`] | the repair suite: damaged stores brought back by the engine's `repair`, nothing lost that the damage spared |
//! | [`linearizability`] | the concurrency suite and its linearizability checker |
//! | [`fault_fs`] | [`FaultFs`]: a simulated disk, in memory, that loses what was not synced at a power loss, and fails chosen calls |
//! | [`hook_fs`] | [`HookFs`]: the real disk with a hook on every call, to count calls and fail, cut short or crash chosen ones |
//! | [`fixtures`] | the small fixed writes (puts, a batch, a put after it) and random batches the engines' own tests share, with their models |
//! | [`damaged_record`] | a batch's record cut and damaged at every byte: the store reopens with all of it or none of it |
//! | [`history`] | the suites' random writes (puts, deletes, batches) and the check that a store equals some prefix of them |
//! | [`child_process`] | re-running a test in a child process: killed, or memory- and time-bounded |
//! | [`knobs`] | suite sizes from environment variables, and the printed, replayable seed |
//! | [`example_engine`] | the smallest engine that passes every suite: the model for bringing your own |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use kv_shared;

pub mod child_process;
pub mod concurrent_crash;
pub mod conformance;
pub mod corruption_suite;
pub mod damaged_record;
pub mod example_engine;
pub mod fault_fs;
pub mod fixtures;
pub mod fsync_failure;
pub mod history;
pub mod hook_fs;
pub mod hostile_input;
pub mod io_errors;
pub mod knobs;
pub mod linearizability;
pub mod power_loss;
pub mod process_crash;
pub mod reliability;
pub mod repair_suite;
pub mod resealed;

pub use fault_fs::{FaultFs, FaultKind};
pub use hook_fs::HookFs;

//! The shared reliability suites (process crash, power loss, I/O errors, corruption, hostile
//! input, linearizability, repair), run against [`hashlog::HashLog`]. Stage 1 has no
//! thresholds to shrink: every write already goes to the one data file.

kv_testkit::reliability_tests!(
    hashlog::HashLog,
    kv_shared::Options::new(),
    hashlog::inspect,
    hashlog::repair
);

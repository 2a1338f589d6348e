//! The shared conformance suite, run against [`hashlog::HashLog`]. Stage 1 has no thresholds
//! to shrink: every operation already touches the one data file.

kv_testkit::conformance_tests!(hashlog::HashLog, kv_shared::Options::new());

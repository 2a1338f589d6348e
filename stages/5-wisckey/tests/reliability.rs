//! The shared reliability suites (process crash, power loss, I/O errors, fsync failure,
//! corruption, hostile input, linearizability, concurrent crashes, `sync_writes`, repair),
//! with sizes small enough that in their short workloads most values go to the value log,
//! segments are sealed and collected, and the tree flushes and compacts.

mod common;

kv_testkit::reliability_tests!(
    wisckey::Wisckey,
    common::small(),
    wisckey::inspect,
    wisckey::repair
);

//! The shared conformance suite, with sizes small enough that most values go to the value
//! log, segments are sealed and collected, and the tree flushes and compacts, many times
//! within it.

mod common;

use wisckey::Wisckey;

kv_testkit::conformance_tests!(Wisckey, common::small());

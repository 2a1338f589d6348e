//! The shared conformance suite, with 4 KiB segments so that rotations and merges happen
//! many times inside every test.
use bitcask::Bitcask;

kv_testkit::conformance_tests!(
    Bitcask,
    kv_shared::Options::new().set("segment_bytes", "4K")
);

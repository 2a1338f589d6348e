//! The shared reliability suites (process crash, power loss, I/O errors, corruption, hostile
//! input, linearizability), with 4 KiB segments and an eager merge so that rotations, hint
//! files and background merges happen many times in their short workloads.

kv_shared::reliability_tests!(
    bitcask::Bitcask,
    kv_shared::Options::new()
        .set("segment_bytes", "4K")
        .set("merge_dead_ratio", "0.3"),
    bitcask::inspect
);

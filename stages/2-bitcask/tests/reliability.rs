//! The shared reliability suites (process crash, power loss, I/O errors, corruption, hostile
//! input, linearizability, repair), with 4 KiB segments and an eager merge so that rotations, hint
//! files and background merges happen many times in their short workloads.

kv_testkit::reliability_tests!(
    bitcask::Bitcask,
    kv_shared::Options::new()
        .set("segment_bytes", "4K")
        .set("merge_dead_ratio", "0.3"),
    bitcask::inspect,
    bitcask::repair
);

/// Regression (found by `power_loss_at_every_file_operation`): a power loss just after a
/// rotation can leave the new active segment with its directory entry durable but its
/// header not (the file holds zeros: its size reached the disk, its data did not). Nothing
/// synced can be in that segment, so open must treat it as a torn tail rather than refuse
/// the store with "not a bitcask segment (bad magic)". Background merges are off so that
/// every run makes the same file operations.
#[test]
fn power_loss_right_after_a_rotation() {
    let options = kv_shared::Options::new()
        .set("segment_bytes", "4K")
        .set("background_merge", "false");
    kv_testkit::power_loss::crash_at_every_mutation::<bitcask::Bitcask>(&options, 59367, 5000);
}

//! Exactly what survives damage to the data file, as LevelDB's `corruption_test` pins it:
//! a store of numbered writes, one record each, damaged in record `n` (a flipped byte, or the
//! file cut inside the record) opens holding exactly the first `n` writes: every record
//! before the damage survives, none after it does. The corruption suite checks the looser
//! bound on random damage; this pins the count.

use hashlog::HashLog;
use hashlog::file_names::DATA_FILE;
use kv_shared::Options;
use kv_testkit::corruption_suite::{
    Outcome, Section, check_bounded, dump_sections, keys_at_risk, numbered_writes, open_and_read,
    state_after, store_of,
};
use kv_testkit::fault_fs::{FsImage, store_path};
use kv_testkit::history::WriteOp;

const WRITES: usize = 60;

/// The store, its writes, and the sections of its data file's dump that are records.
fn store() -> (FsImage, Vec<WriteOp>, Vec<Section>) {
    let ops = numbered_writes(WRITES, 20);
    let image = store_of::<HashLog>(&Options::new(), &ops);
    let dump = hashlog::inspect(&image[&store_path().join(DATA_FILE)]).expect("a data file");
    let records: Vec<Section> = dump_sections(&dump)
        .into_iter()
        .filter(|s| s.heading.starts_with("record "))
        .collect();
    assert_eq!(records.len(), WRITES, "one record per write");
    (image, ops, records)
}

/// Opens `damaged` (the store `original` with its data file damaged from `first_damaged`
/// on, in record `n`) and checks that it holds exactly the first `n` writes, then runs the
/// corruption suite's checks on it (bound, compaction, new writes, reopen).
fn holds_exactly_the_first(
    n: usize,
    original: &FsImage,
    damaged: &FsImage,
    ops: &[WriteOp],
    first_damaged: u64,
) {
    let context = format!("hashlog: damage at byte {first_damaged}, in record {n}");
    let reads = open_and_read::<HashLog>(&Options::new(), damaged)
        .unwrap_or_else(|e| panic!("{context}: the store must open: {e}"));
    let expected = state_after(&ops[..n]);
    for (key, read) in &reads {
        let read = read
            .as_ref()
            .unwrap_or_else(|e| panic!("{context}: get: {e}"));
        assert_eq!(read.as_ref(), expected.get(key), "{context}: key {key:?}");
    }
    // The keys whose latest value the lost writes hold.
    let latest = state_after(ops);
    let lost = reads
        .iter()
        .filter(|(key, read)| read.as_ref().ok() != Some(&latest.get(*key).cloned()))
        .count();
    let at_risk = keys_at_risk(
        hashlog::inspect,
        &original[&store_path().join(DATA_FILE)],
        first_damaged,
    );
    let outcome = check_bounded::<HashLog>(&Options::new(), damaged, ops, 0, &context, &at_risk);
    assert_eq!(
        outcome,
        Outcome::Opened {
            lost,
            read_errors: 0,
            compacted: true,
            wrote: true
        },
        "{context}"
    );
}

#[test]
fn a_flipped_byte_in_record_n_keeps_exactly_the_records_before_it() {
    let (image, ops, records) = store();
    let path = store_path().join(DATA_FILE);
    for n in [0, 1, 17, 30, WRITES - 2, WRITES - 1] {
        let start = records[n].start.expect("a record has bytes");
        let end = records[n].end.unwrap_or(image[&path].len() as u64);
        // The checksum, the key length, and the record's last byte.
        for at in [start, start + 4, end - 1] {
            let mut damaged = image.clone();
            damaged.get_mut(&path).expect("the data file")[at as usize] ^= 0x10;
            holds_exactly_the_first(n, &image, &damaged, &ops, at);
        }
    }
}

#[test]
fn a_file_cut_inside_record_n_keeps_exactly_the_records_before_it() {
    let (image, ops, records) = store();
    let path = store_path().join(DATA_FILE);
    for n in [0, 9, 33, WRITES - 1] {
        let start = records[n].start.expect("a record has bytes");
        for cut in [start, start + 1, start + 7] {
            let mut damaged = image.clone();
            damaged
                .get_mut(&path)
                .expect("the data file")
                .truncate(cut as usize);
            holds_exactly_the_first(n, &image, &damaged, &ops, cut);
        }
    }
}

//! The shared reliability suites (process crash, power loss, I/O errors, corruption, hostile
//! input, linearizability), with sizes small enough that memtables flush, the manifest is
//! rewritten and tables compact down several levels in their short workloads.

mod common;

/// Tiny thresholds: a 4 KiB memtable, 4 KiB tables, L1 of 12 KiB growing 4x per level.
fn small() -> kv_shared::Options {
    common::options(
        "memtable_bytes=4K table_bytes=4K level1_bytes=12K level_ratio=4 l0_trigger=2 \
         l0_slowdown=4 l0_stop=6 block_bytes=512",
    )
}

kv_testkit::reliability_tests!(lsm::LsmTree, small(), lsm::inspect, lsm::repair);

/// Builds the corruption suite's store (seed `seed`), damages the file `pick` chooses (or
/// `None`: this build lacks the file) with `damage`, and checks the corruption suite's rules
/// on it.
///
/// The store is built by the engine's threads: whether the last frozen memtable's flush
/// finished before the engine was dropped (and its WAL was deleted) depends on timing. So
/// the store is built again, up to 20 times, until it holds the file the regression needs.
fn damaged(seed: u64, pick: impl Fn(&[String]) -> Option<String>, damage: impl Fn(&mut Vec<u8>)) {
    for _ in 0..20 {
        let (mut image, ops) =
            kv_testkit::corruption_suite::build_store::<lsm::LsmTree>(&small(), seed, 400);
        let names: Vec<String> = image
            .keys()
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_string()))
            .collect();
        let Some(name) = pick(&names) else {
            continue;
        };
        let path = kv_testkit::power_loss::store_path().join(&name);
        damage(image.get_mut(&path).expect("the picked file"));
        kv_testkit::corruption_suite::check_damaged_store::<lsm::LsmTree>(
            &small(),
            &image,
            &ops,
            seed,
            &format!("lsm: damaged {name}"),
        );
        return;
    }
    panic!("20 builds of the store never held the file this regression damages");
}

/// Regression (found by `corruption`, seed 49374): a MANIFEST that `CURRENT` names, cut to
/// zero bytes, opened as an empty tree: every write already flushed to a table was gone.
/// A manifest is synced before `CURRENT` names it, so an empty one is damage, not a torn
/// write: open must refuse it with a corruption error.
#[test]
fn an_empty_manifest_named_by_current_is_corruption() {
    damaged(
        49374,
        |names| names.iter().find(|n| n.starts_with("MANIFEST")).cloned(),
        |bytes| bytes.clear(),
    );
}

/// Regression (found by `corruption` with `KV_TEST_SEED=777`): the last bytes of a WAL that
/// is *not* the newest were cut, and open took it for a torn tail: the write at its end was
/// lost while the later WAL's writes were kept, so a read returned an overwritten value. Only
/// the newest WAL can end in a torn write; damage at the end of an older one is corruption.
#[test]
fn damage_at_the_end_of_a_wal_that_is_not_the_newest_is_corruption() {
    damaged(
        777,
        |names| {
            // The state the suite found: two WALs, the older one damaged.
            let wals: Vec<&String> = names.iter().filter(|n| n.ends_with(".wal")).collect();
            (wals.len() >= 2).then(|| wals[0].clone())
        },
        |bytes| bytes.truncate(bytes.len() - 10),
    );
}

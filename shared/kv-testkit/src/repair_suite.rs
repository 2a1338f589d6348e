//! The repair suite: damage a store the way the corruption suite does, then check that the
//! engine's `repair` brings it back, keeping what the damage left.
//!
//! The corruption suite ([`crate::corruption_suite`]) checks that an engine *notices*
//! damage: a store with a flipped byte in an old file refuses to open. This suite checks
//! the way back. A store is built on [`FaultFs`] by the corruption suite's fixed workload
//! ([`build_store`]) and damaged as that suite damages it ([`damage_cases`]: in every file
//! type, a few flipped bytes or a cut, in the first, the last or a random file of the type).
//! For each damaged copy:
//!
//! 1. **A dry run changes nothing.** `repair(dir, options, true)` reads the damaged store
//!    and reports; every file is then byte for byte as it was.
//! 2. **Repair reports the damage.** When the damaged store refused to open, the repair
//!    must find something to repair.
//! 3. **Repair is durable.** After `repair(dir, options, false)` the power is cut
//!    ([`FaultFs::crash`]): what the repair wrote must already be synced.
//! 4. **The damaged file is kept.** Every file the report calls damaged is in `lost/`,
//!    byte-identical to the damaged copy.
//! 5. **The store opens, and answers right.** Every value a `get` or a scan returns was
//!    once written for that key. A key with no record in the damaged file has its latest
//!    value: the damage cannot have touched it. The keys that do have records there are
//!    found in the engine's `inspect` dump of the file before the damage ([`keys_at_risk`]
//!    from its first byte); they may have lost writes, gone back to an older value, or be
//!    absent. Which of their records a damage spares depends on the format (a log checks
//!    each record, a table each block, so a cut loses the whole block it falls in): each
//!    engine's own repair tests check that the records around the damage are salvaged.
//! 6. **Nothing is left to repair.** A dry run on the reopened store finds every file
//!    clean.
//!
//! A damaged marker file (`ENGINE`) is held to the same rules. Repair must never write into
//! a directory it cannot prove is a store, so each engine proves it from its own files (a
//! data file's header, a table's footer magic: [`kv_shared::repair::file_has_magic`]) and
//! then rewrites the marker. The stores this suite damages always hold such files, so a
//! refusal here is a store repair failed to bring back.
//!
//! The summary line counts stores damaged, stores that refused to open before repair, stores
//! repaired, keys checked, and how many of those were held to their latest value.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use crate::corruption_suite::{DamageCase, build_store, damage_cases, keys_at_risk, state_after};
use crate::fault_fs::{FaultFs, FsImage, store_path};
use crate::history::{State, WriteOp, key_space, read_store};
use kv_shared::dump::quoted;
use kv_shared::repair::{LOST_DIR, RepairReport};
use kv_shared::store_dir::LOCK_FILE;
use kv_shared::{Engine, Options};

/// An engine crate's `repair` function.
pub type RepairFn = fn(&Path, &Options, bool) -> kv_shared::Result<RepairReport>;

/// An engine crate's `inspect` function.
pub type InspectFn = fn(&[u8]) -> Option<String>;

/// Running counts for the summary line.
#[derive(Debug, Default)]
struct Counts {
    damaged: usize,
    refused: usize,
    repaired: usize,
    keys_checked: usize,
    keys_latest: usize,
}

/// Damages copies of a store built by [`build_store`] (`flips` flip cases and `cuts` cut
/// cases per file type, see [`damage_cases`]) and checks that `repair` brings each one back
/// (the rules above).
///
/// # Panics
/// On the first case that breaks a rule, naming the file, the damage and the seed.
pub fn repair_suite<E: Engine>(
    options: &Options,
    inspect: InspectFn,
    repair: RepairFn,
    seed: u64,
    (flips, cuts): (u64, u64),
) {
    let (image, ops) = build_store::<E>(options, seed, 400);
    let final_state = state_after(&ops);
    let mut counts = Counts::default();
    for case in damage_cases(&image, seed, flips, cuts) {
        let context = format!(
            "{}: repair after {} of {} (replay with KV_TEST_SEED={seed})",
            E::NAME,
            case.what,
            display(&case.file)
        );
        let touched = keys_at_risk(inspect, &image[&case.file], 0);
        counts.damaged += 1;
        check_repair::<E>(
            options,
            repair,
            &case,
            (&ops, &final_state, &touched),
            seed,
            &context,
            &mut counts,
        );
        counts.keys_checked += key_space().len();
        counts.keys_latest += key_space().len() - touched.len();
    }
    eprintln!(
        "{}: repair: {} stores damaged, {} of them refused to open; {} repaired, the others \
         found clean (a cut at a record boundary); {} keys checked, {} of them for their \
         latest value",
        E::NAME,
        counts.damaged,
        counts.refused,
        counts.repaired,
        counts.keys_checked,
        counts.keys_latest
    );
}

/// Runs the dry run, the repair and the checks on one damaged store.
fn check_repair<E: Engine>(
    options: &Options,
    repair: RepairFn,
    case: &DamageCase,
    (ops, final_state, touched): (&[WriteOp], &State, &BTreeSet<Vec<u8>>),
    seed: u64,
    context: &str,
    counts: &mut Counts,
) {
    let dir = store_path();
    // Opening may change files (cut a torn tail): try it on a copy of the disk.
    let probe = options
        .clone()
        .with_file_system(Arc::new(FaultFs::from_image(seed, &case.image)));
    let refused = E::open(&dir, &probe).is_err();
    let fs = FaultFs::from_image(seed, &case.image);
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    counts.refused += usize::from(refused);
    let dry = repair(&dir, &opts, true).unwrap_or_else(|e| panic!("{context}: dry run: {e}"));
    assert_eq!(
        without_lock(&fs.image()),
        case.image,
        "{context}: the dry run changed the files. It reported:\n{dry}"
    );
    assert!(
        !(refused && dry.is_clean()),
        "{context}: the store refused to open, yet the dry run found nothing to repair"
    );
    let report = repair(&dir, &opts, false).unwrap_or_else(|e| panic!("{context}: repair: {e}"));
    assert_eq!(
        report.damaged, dry.damaged,
        "{context}: dry run and repair differ"
    );
    fs.crash();
    fs.restart();
    check_lost(&fs, case, &report, context);
    let engine = E::open(&dir, &opts)
        .unwrap_or_else(|e| panic!("{context}: the repaired store does not open: {e}\n{report}"));
    let state = read_store(&engine)
        .unwrap_or_else(|e| panic!("{context}: reading the repaired store: {e}\n{report}"));
    drop(engine);
    check_values(ops, final_state, touched, &state, context, &report);
    let again = repair(&dir, &opts, true).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert!(
        again.is_clean(),
        "{context}: after repair and open, a dry run still finds damage:\n{again}"
    );
    counts.repaired += usize::from(!report.is_clean());
}

/// Rule 4: every file the report calls damaged is in `lost/`, byte-identical.
fn check_lost(fs: &FaultFs, case: &DamageCase, report: &RepairReport, context: &str) {
    let dir = store_path();
    for damaged in &report.damaged {
        let kept = fs.read_file(&dir.join(LOST_DIR).join(&damaged.file));
        let original = case.image.get(&dir.join(&damaged.file));
        assert!(
            kept.is_some() && kept.as_ref() == original,
            "{context}: {} is not in {LOST_DIR}/ as it was ({} bytes there, {} before)\n{report}",
            damaged.file,
            kept.map_or(0, |k| k.len()),
            original.map_or(0, Vec::len)
        );
    }
}

/// Rule 5: values written for their keys, the latest one for every key the damage could not
/// touch.
fn check_values(
    ops: &[WriteOp],
    final_state: &State,
    touched: &BTreeSet<Vec<u8>>,
    state: &State,
    context: &str,
    report: &RepairReport,
) {
    let written: BTreeSet<(&[u8], &[u8])> = ops
        .iter()
        .flat_map(WriteOp::effect)
        .filter_map(|(key, value)| Some((key, value?)))
        .collect();
    for (key, value) in state {
        assert!(
            written.contains(&(key.as_slice(), value.as_slice())),
            "{context}: key {} read as {}, a value never written to it\n{report}",
            quoted(key, 24),
            quoted(value, 24)
        );
    }
    for key in key_space().iter().filter(|key| !touched.contains(*key)) {
        assert_eq!(
            state.get(key),
            final_state.get(key),
            "{context}: key {} has no record in the damaged file, but lost its latest value\n\
             {report}",
            quoted(key, 24)
        );
    }
}

/// `image` without its `LOCK` file, which taking the lock may create.
fn without_lock(image: &FsImage) -> FsImage {
    image
        .iter()
        .filter(|(path, _)| path.file_name().is_none_or(|n| n != LOCK_FILE))
        .map(|(path, bytes)| (path.clone(), bytes.clone()))
        .collect()
}

fn display(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

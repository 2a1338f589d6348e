//! Bulk loads: many pairs into a store at once, [`crate::Engine::load`].
//!
//! Putting a million pairs one `put` at a time pays, a million times, for what a load needs
//! only once: a log record, a memtable insert, later a flush and compactions that rewrite
//! the same bytes again. A store that keeps sorted tables can do better: sort the input,
//! write it straight into tables, and add the tables to the store in one step, as RocksDB's
//! `SstFileWriter` plus `IngestExternalFile` and fjall's ingestion do.
//!
//! The contract, the same for every engine:
//!
//! * The input is an iterator of `(key, value)` pairs ([`LoadInput`]); each pair is checked
//!   against [`crate::limits`]. When one key comes more than once, the **last** pair wins,
//!   as if the pairs were `put` in input order.
//! * [`LoadOrder::Sorted`] promises keys in ascending byte order (equal neighbours
//!   allowed); an engine that relies on it refuses a key out of order with
//!   [`crate::Error::InvalidArgument`]. [`LoadOrder::Unsorted`] makes no promise; an engine
//!   that needs order sorts the input itself (in bounded memory: an external merge sort).
//! * When `load` returns `Ok`, every pair is durable against power loss (the load ends
//!   with what [`crate::Engine::sync`] does).
//! * The default, [`load_in_batches`], writes [`WriteBatch`]es of [`LOAD_BATCH`] pairs and
//!   then syncs: each batch is atomic, the load as a whole is not (a failure part-way leaves
//!   the batches before it). An engine that ingests tables documents its own atomicity.
//!
//! [`LoadReport`] says what a load did, for `kv load` and for the `bulkload` workload.

use crate::batch::WriteBatch;
use crate::{DynEngine, Error, Result, check_key_value};

/// The pairs of a bulk load: `(key, value)`, or the error that stopped the input.
pub type LoadInput<'a> = &'a mut dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>;

/// Pairs per [`WriteBatch`] in [`load_in_batches`] (db_bench's `fillbatch` size).
pub const LOAD_BATCH: usize = 1000;

/// What a bulk load's input promises about its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOrder {
    /// Keys ascend (equal neighbours allowed); a key out of order is an error.
    Sorted,
    /// Keys come in any order.
    Unsorted,
}

/// What a bulk load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Pairs read from the input (duplicates included).
    pub pairs: u64,
    /// Key and value bytes read from the input.
    pub bytes: u64,
    /// Sorted runs an external sort wrote to disk before merging (0 when the input was
    /// sorted, or fit in memory).
    pub sort_runs: u64,
    /// Files the load added to the store (tables ingested; 0 for a load by batches).
    pub files_added: u64,
    /// One line on how the pairs went in: `"1,000 batches of 1,000 pairs, then sync"`,
    /// `"3 tables ingested into L6"`.
    pub method: String,
}

/// The default [`crate::Engine::load`]: [`WriteBatch`]es of [`LOAD_BATCH`] pairs through
/// `db.write`, then `db.sync`. The order is not checked: batches give the same store either
/// way.
///
/// # Errors
/// [`Error::KeyTooLarge`] or [`Error::ValueTooLarge`] for a pair over a limit (the batches
/// before it stay written), an error of the input, or whatever `write` and `sync` report.
pub fn load_in_batches(db: &dyn DynEngine, input: LoadInput<'_>) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let mut batch = WriteBatch::new();
    let mut batches = 0u64;
    for pair in input {
        let (key, value) = pair?;
        count_pair(&mut report, &key, &value)?;
        batch.put(&key, &value)?;
        if batch.len() == LOAD_BATCH {
            db.write(&batch)?;
            batch.clear();
            batches += 1;
        }
    }
    if !batch.is_empty() {
        db.write(&batch)?;
        batches += 1;
    }
    db.sync()?;
    report.method = format!("{batches} batches of up to {LOAD_BATCH} pairs, then sync");
    Ok(report)
}

/// Checks one input pair against the limits and counts it in `report`.
///
/// # Errors
/// [`Error::KeyTooLarge`], [`Error::ValueTooLarge`].
pub fn count_pair(report: &mut LoadReport, key: &[u8], value: &[u8]) -> Result<()> {
    check_key_value(key, value)?;
    report.pairs += 1;
    report.bytes += (key.len() + value.len()) as u64;
    Ok(())
}

/// Checks that `key` does not come before `previous` in an input promised
/// [`LoadOrder::Sorted`].
///
/// # Errors
/// [`Error::InvalidArgument`] naming the pair's position (`pairs`, counted from 1).
pub fn check_sorted(previous: Option<&[u8]>, key: &[u8], pairs: u64) -> Result<()> {
    match previous {
        Some(p) if key < p => Err(Error::InvalidArgument(format!(
            "bulk load: pair {pairs} has a key smaller than the pair before it, in an input \
             promised sorted"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_check_allows_equal_neighbours_and_refuses_a_step_back() {
        assert!(check_sorted(None, b"a", 1).is_ok());
        assert!(check_sorted(Some(b"a"), b"a", 2).is_ok());
        assert!(check_sorted(Some(b"a"), b"b", 2).is_ok());
        let err = check_sorted(Some(b"b"), b"a", 7).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("pair 7")));
    }

    #[test]
    fn a_pair_over_the_limit_is_refused() {
        let mut report = LoadReport::default();
        let key = vec![0u8; crate::MAX_KEY_LEN + 1];
        assert!(matches!(
            count_pair(&mut report, &key, b"v"),
            Err(Error::KeyTooLarge { .. })
        ));
        count_pair(&mut report, b"k", b"vv").unwrap();
        assert_eq!((report.pairs, report.bytes), (1, 3));
    }
}

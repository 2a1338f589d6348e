//! The conformance suite: what every engine must do, checked the same way for each.
//!
//! Each engine crate runs the whole suite from its own tests with one line,
//! [`crate::conformance_tests!`]`(MyEngine, options)`, where `options` usually shrinks the
//! engine's thresholds (segment, memtable, level sizes) so that rotations, flushes, merges
//! and compactions happen many times inside the suite.
//!
//! | module | the checks |
//! |---|---|
//! | [`basics`] | overwrite, delete, missing keys, empty keys and values, binary keys with `0x00` and `0xFF` bytes, keys and values at the limits and one byte over, every kind of scan bound forwards and backwards, scans across deletes, persistence across close and reopen, the directory lock and marker, statistics |
//! | [`cursors`] | seeks at every boundary, walks that change direction, cursors as snapshots (of writes, deletes, compactions and other threads), cursors during concurrent writes and compactions |
//! | [`batches`] | ops in order, a later op on a key winning, all or nothing to concurrent readers, surviving reopen, empty batches, the limits |
//! | [`bulk`] | bulk loads, sorted and not, over existing data, as puts in order would; a failed input; `flush` changing nothing seen |
//! | [`model`] | the **model test**: random puts, deletes, batches, gets, scans both ways, cursor walks with writes in between, syncs, compactions, reopens, every answer compared with a `BTreeMap` |
//! | [`concurrency`] | readers never see a value older than the last acknowledged write nor one that was never written |
//!
//! Every check is a public function generic over the engine, re-exported here, so a test
//! can also run one alone: `kv_testkit::conformance::batch_limits::<MyEngine>(&options)`.
//! An engine's own tests can also check a store they built against a model of it:
//! [`check_sorted_map`] (cursors and scans), [`check_cursor`] (every move of a cursor),
//! [`walk_both_ways`] (a cursor made earlier), [`check_scans`] (scans both ways),
//! [`assert_holds`] (gets and whole scans), [`readers_see_whole_batches`]; and
//! [`assert_corruption_in`] checks the error a damaged file must give.
//!
//! Randomized checks print their seed; set `KV_TEST_SEED` to replay one and `KV_MODEL_OPS`
//! (default 2000) or `KV_CONCURRENCY_ROUNDS` (default 200) to run longer.

pub mod basics;
pub mod batches;
pub mod bulk;
pub mod concurrency;
pub mod cursors;
pub mod model;
pub mod support;

pub use basics::*;
pub use batches::*;
pub use bulk::*;
pub use concurrency::*;
pub use cursors::*;
pub use model::*;
pub use support::{
    Model, StopOnDrop, assert_corruption_in, assert_holds, assert_refuses_one_byte_over,
    check_scans, model_range, random_range, scan_rev_vec, scan_vec,
};

/// Runs the whole conformance suite as `#[test]` functions in a module named `conformance`.
///
/// ```
/// // tests/conformance.rs of an engine crate
/// kv_testkit::conformance_tests!(
///     kv_testkit::example_engine::ExampleEngine,
///     kv_shared::Options::new()
/// );
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($engine:ty, $options:expr) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            fn options() -> $crate::kv_shared::Options {
                $options
            }

            $crate::conformance_tests!(@tests $engine;
                put_get_overwrite,
                delete_and_recreate,
                empty_key_and_value,
                binary_keys,
                size_limits,
                scan_bounds,
                scan_rev_bounds,
                scan_across_deletes,
                reopen_keeps_everything,
                second_open_is_locked,
                foreign_directories_are_refused,
                unknown_option_is_refused,
                stats_account_for_writes,
                cursor_seeks_at_every_boundary,
                cursor_direction_changes,
                cursor_is_a_snapshot,
                cursors_during_concurrent_writes,
                batch_ops_apply_in_order,
                empty_batch_changes_nothing,
                batch_limits,
                batches_survive_reopen,
                readers_see_all_of_a_batch_or_none,
                unsorted_load_is_put_in_order,
                sorted_loads_are_put_in_order,
                a_failed_input_stops_the_load,
                flush_changes_nothing_seen,
                model,
                concurrent_readers_and_writer,
            );
        }
    };
    (@tests $engine:ty; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::conformance::$check::<$engine>(&options());
            }
        )*
    };
}

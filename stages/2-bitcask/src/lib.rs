//! # Stage 2: Bitcask
//!
//! Stage 1 (`hashlog`) kept one log file and an in-memory hash index. Two things went wrong
//! with it: the log grows forever, because an overwrite or a delete only appends, and
//! opening the store reads every byte ever written. This stage is Bitcask as Basho's paper
//! describes it (Sheehy and Smith, 2010), which fixes both:
//!
//! * the log is cut into **segments** ([`record`], [`segment`]); only the active one takes
//!   appends, the others never change;
//! * the in-memory **keydir** ([`keydir`]) maps each key to its latest record, so a `get`
//!   is one positioned read;
//! * a **merge** ([`merge`]) rewrites immutable segments keeping only live records, in the
//!   background, while reads and writes go on, and makes the switch crash-safe with a
//!   commit record ([`merge_commit`]);
//! * each merged segment gets a **hint file** ([`hint`]) so start-up reads keys and
//!   locations, not values ([`recovery`]);
//! * deletes are **tombstones** that a merge drops only when nothing older can resurface;
//! * keys may carry an **expiry** ([`expiry`], [`Bitcask::put_with_ttl`]);
//! * a **write batch** is one record ([`record`]), so readers and recovery see all of it or
//!   none; a **cursor** ([`cursor`]) walks a sorted copy of the keydir.
//!
//! | file | concept |
//! |---|---|
//! | [`engine`] | [`Bitcask`] itself: write path (puts, deletes, batches), read path, locks, the merge thread |
//! | [`options`] | the options (`kv --set` names), documented once, parsed into [`BitcaskOptions`] |
//! | [`record`] | segment header and record bytes: puts, tombstones, seals, batches |
//! | [`segment`] | one open segment, shared by `Arc`, deleted when the last reader lets go |
//! | [`keydir`] | the in-memory hash map from key to record location |
//! | [`cursor`] | a cursor over a sorted snapshot of the keydir; scans walk one |
//! | [`hint`] | hint file bytes, reading them (and refusing damaged ones) |
//! | [`merge`] | choosing inputs, copying live records, the atomic keydir switch |
//! | [`merge_commit`] | the commit record that makes a merge atomic on disk |
//! | [`recovery`] | open, step by step: finishing or undoing a merge, rebuilding the keydir |
//! | [`mod@repair`] | [`repair()`]: salvaging a damaged store's intact records, damaged files kept in `lost/` (`kv repair`) |
//! | [`file_names`] | the names of the files in a store directory |
//! | [`expiry`] | per-key time to live |
//! | [`mod@inspect`] | the annotated dumps `kv inspect` prints ([`inspect()`]); the store's structure `kv draw` pictures |
//!
//! Simplifications against Basho's Bitcask: one process, one writer lock; sequence numbers
//! instead of timestamps; segments sealed with a seal record; a merge takes every dirty
//! immutable segment rather than a choice by fragmentation thresholds.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cursor;
pub mod engine;
pub mod expiry;
pub mod file_names;
pub mod hint;
pub mod inspect;
pub mod keydir;
pub mod merge;
pub mod merge_commit;
pub mod options;
pub mod record;
pub mod recovery;
pub mod repair;
pub mod segment;

pub use cursor::BitcaskCursor;
pub use engine::Bitcask;
pub use options::BitcaskOptions;
pub use repair::repair;

/// The annotated dump of a bitcask file, recognised by its magic: a segment
/// (`BITCASKS`), a hint file (`BITCASKH`) or a merge commit record (`BITCASKM`). `None` for
/// anything else. Never panics, whatever the bytes.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    inspect::dump(bytes)
}

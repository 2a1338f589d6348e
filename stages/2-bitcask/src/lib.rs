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
//! * keys may carry an **expiry** ([`expiry`], [`Bitcask::put_with_ttl`]).
//!
//! | file | concept |
//! |---|---|
//! | [`record`] | segment header and record bytes, the seal record, the segment dump |
//! | [`segment`] | one open segment, shared by `Arc`, deleted when the last reader lets go |
//! | [`keydir`] | the in-memory hash map from key to record location |
//! | [`hint`] | hint file bytes, reading them (and refusing damaged ones), the hint dump |
//! | [`merge`] | choosing inputs, copying live records, the atomic keydir switch |
//! | [`merge_commit`] | the commit record that makes a merge atomic on disk |
//! | [`recovery`] | open: finishing or undoing a merge, rebuilding the keydir |
//! | [`files`] | the names of the files in a store directory |
//! | [`expiry`] | per-key time to live |
//! | [`config`] | the options (`kv --set` names) |
//! | [`engine`] | [`Bitcask`] itself: write path, read path, locks, the merge thread |
//!
//! Simplifications against Basho's Bitcask: one process, one writer lock; sequence numbers
//! instead of timestamps; segments sealed with a seal record; a merge takes every dirty
//! immutable segment rather than a choice by fragmentation thresholds.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod engine;
pub mod expiry;
pub mod files;
pub mod hint;
pub mod keydir;
pub mod merge;
pub mod merge_commit;
pub mod record;
pub mod recovery;
pub mod segment;

pub use engine::Bitcask;

/// The annotated dump of a bitcask file, recognised by its magic: a segment
/// (`BITCASKS`), a hint file (`BITCASKH`) or a merge commit record (`BITCASKM`). `None` for
/// anything else. Never panics, whatever the bytes.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    let magic = bytes.get(..8)?;
    if magic == record::SEGMENT_MAGIC {
        Some(record::dump_segment(bytes))
    } else if magic == hint::HINT_MAGIC {
        Some(hint::dump(bytes))
    } else if magic == merge_commit::COMMIT_MAGIC {
        Some(merge_commit::dump(bytes))
    } else {
        None
    }
}

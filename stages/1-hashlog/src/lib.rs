//! # Stage 1: `hashlog`, one append-only log with an in-memory hash index
//!
//! The simplest storage engine that keeps its data safe and finds a key without reading
//! the whole file:
//!
//! * **Writes append.** Every `put` and `delete` appends one checksummed
//!   [record] to a single data file, `data.log`. Nothing written is ever changed,
//!   so a crash can only ever damage the end of the file.
//! * **A write batch is one record too**, under one checksum, so a crash keeps all of it or
//!   none of it, and readers see it appear all at once.
//! * **An index in memory says where each key is.** A hash map from each live key to the
//!   offset and length of its latest record ([`index`]), so a `get` is one positioned read.
//! * **Opening rebuilds the index** by reading the file from start to end ([`recovery`]):
//!   a torn last record is cut off, a damaged record with valid ones after it is reported,
//!   never skipped.
//!
//! What it costs: the file only grows (an overwrite or a delete leaves the old record in
//! place, dead), opening reads every byte ever written, every key lives in memory, and a
//! [`cursor`] or a range scan must sort the keys it wants because a hash map has no order.
//! Stage 2 (`bitcask`) fixes the first two.
//!
//! | file | what it holds |
//! |---|---|
//! | [`record`] | one record's bytes (put, delete, write batch): encode, decode, checksum |
//! | [`data_file`] | the data file's format: its header, then records |
//! | [`file_names`] | the names of the files in a store directory; creating the data file |
//! | [`index`] | the in-memory hash index and its running totals |
//! | [`recovery`] | rebuilding the index on open, cutting a torn tail |
//! | [`cursor`] | the cursor: a sorted copy of the index, values read as it moves |
//! | [`engine`] | [`HashLog`], the [`kv_shared::Engine`] |
//! | [`mod@repair`] | [`repair()`]: salvaging the intact records of a damaged data file (`kv repair`) |
//! | [`mod@inspect`] | the annotated dump `kv inspect` prints ([`inspect()`]); the store's structure `kv draw` pictures |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cursor;
pub mod data_file;
pub mod engine;
pub mod file_names;
pub mod index;
pub mod inspect;
pub mod record;
pub mod recovery;
pub mod repair;

pub use engine::HashLog;
pub use repair::repair;

/// The annotated dump of a hashlog data file (`kv inspect`), or `None` when `bytes` does not
/// start with its magic (`KVHASHLG`). Never panics, whatever the bytes.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    inspect::dump(bytes)
}

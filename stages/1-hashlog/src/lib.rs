//! # Stage 1: `hashlog`, one append-only log with an in-memory hash index
//!
//! The simplest storage engine that keeps its data safe and finds a key without reading
//! the whole file:
//!
//! * **Writes append.** Every `put` and `delete` appends one checksummed
//!   [record] to a single data file, `data.log`. Nothing written is ever changed,
//!   so a crash can only ever damage the end of the file.
//! * **An index in memory says where each key is.** A hash map from each live key to the
//!   offset and length of its latest record ([`index`]), so a `get` is one positioned read.
//! * **Opening rebuilds the index** by reading the file from start to end ([`recovery`]):
//!   a torn last record is cut off, a damaged record with valid ones after it is reported,
//!   never skipped.
//!
//! What it costs: the file only grows (an overwrite or a delete leaves the old record in
//! place, dead), opening reads every byte ever written, every key lives in memory, and a
//! range scan must sort the keys it wants because a hash map has no order. Stage 2
//! (`bitcask`) fixes the first two.
//!
//! | file | what it holds |
//! |---|---|
//! | [`record`] | one record's bytes: encode, decode, checksum |
//! | [`data_file`] | the data file: its header, creating and opening it |
//! | [`index`] | the in-memory hash index and its running totals |
//! | [`recovery`] | rebuilding the index on open, cutting a torn tail |
//! | [`hashlog`] | [`HashLog`], the [`kv_shared::Engine`] |
//! | [`mod@inspect`] | the annotated dump `kv inspect` prints ([`inspect()`]) |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod data_file;
pub mod hashlog;
pub mod index;
pub mod inspect;
pub mod record;
pub mod recovery;

pub use hashlog::HashLog;

/// The annotated dump of a hashlog data file (`kv inspect`), or `None` when `bytes` does not
/// start with its magic (`KVHASHLG`). Never panics, whatever the bytes.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    inspect::dump(bytes)
}

//! # kv-shared: the contract every stage of the course implements
//!
//! Each engine in this repository (stage 1 `hashlog` to stage 4 `lsm`) implements one
//! contract, [`Engine`], reports the same [`Stats`], fails with the same [`Error`], and does all
//! of its file I/O through the same small file layer ([`FileSystem`], used through [`Fs`]).
//! That is what lets one conformance suite, one set of crash suites and one benchmark run
//! against every stage and compare them fairly.
//!
//! | module | what it holds |
//! |---|---|
//! | [`engine`] | the [`Engine`] trait, its object-safe twin [`DynEngine`], [`KeyRange`] |
//! | [`cursor`] | [`Cursor`]: seek, next, prev over a snapshot; [`CursorIter`], the owned-pair adapter |
//! | [`batch`] | [`WriteBatch`]: puts and deletes applied atomically, and the byte format of its ops |
//! | [`bulk`] | bulk loads: [`LoadInput`], [`LoadOrder`], [`LoadReport`], the default load by batches |
//! | [`external_sort`] | [`ExternalSorter`](external_sort::ExternalSorter): a load's pairs in key order in bounded memory (sorted runs on disk, merged); its run file format |
//! | [`error`] | [`Error`] and the [`Result`] alias |
//! | [`limits`] | the documented key and value size limits, checked by [`check_key_value`] |
//! | [`options`] | [`Options`]: named settings (the `kv --set` names) plus the file layer to use |
//! | [`stats`] | [`Stats`]: write, read and space amplification, reported the same way by all |
//! | [`file_system`] | the [`FileSystem`] and [`File`] traits and the real implementation [`RealFs`] |
//! | [`fs`] | [`Fs`]: the handle engines use, which counts every byte written and read |
//! | [`store_dir`] | opening a store directory: the exclusive lock and the engine marker file |
//! | [`marker`] | the byte format of the marker file that names a directory's engine |
//! | [`framing`] | CRC32 helpers, a bounds-checked [`ByteReader`], varints |
//! | [`log_reader`] | reading an append-only record log, telling a torn tail from corruption |
//! | [`dump`] | the annotated hex dump that `kv inspect` prints and snapshots pin |
//! | [`structure`] | [`Structure`]: a store's files and their parts, as data (what `kv draw` pictures) |
//! | [`repair`] | [`RepairReport`]: what an engine's `repair` kept, salvaged and wrote; damaged files moved into `lost/` |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
pub mod bulk;
pub mod cursor;
pub mod dump;
pub mod engine;
pub mod error;
pub mod external_sort;
pub mod file_system;
pub mod framing;
pub mod fs;
pub mod limits;
pub mod log_reader;
pub mod marker;
pub mod options;
pub mod repair;
pub mod stats;
pub mod store_dir;
pub mod structure;

pub use batch::{BatchOp, WriteBatch};
pub use bulk::{LoadInput, LoadOrder, LoadReport};
pub use cursor::{BoxCursor, Cursor, CursorIter, Direction, VecCursor};
pub use engine::{DynEngine, Engine, KeyRange, ScanIter, open_dyn};
pub use error::{Error, Result};
pub use file_system::{File, FileLock, FileSystem, RealFs};
pub use framing::{ByteReader, DecodeError};
pub use fs::{FileRef, Fs, IoCounters, RemoveWhenObsolete};
pub use limits::{MAX_KEY_LEN, MAX_VALUE_LEN, check_key, check_key_value};
pub use options::{OptionDoc, Options};
pub use repair::RepairReport;
pub use stats::Stats;
pub use store_dir::StoreDir;
pub use structure::Structure;

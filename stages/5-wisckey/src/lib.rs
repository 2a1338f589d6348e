//! # Stage 5: `wisckey`, keys in the tree, values in a log
//!
//! Stage 4's LSM tree rewrites every value each time compaction moves it down a level: with
//! ten levels' worth of ratio, a value is written ten or more times over its life, and a
//! large value costs as much to compact as it took to write. WiscKey (Lu et al., "WiscKey:
//! Separating Keys from Values in SSD-Conscious Storage", FAST 2016) keeps the tree and
//! takes the values out of it:
//!
//! * the **tree** (stage 4's [`lsm::LsmTree`], unchanged, in `tree/`) maps each key to a
//!   17-byte **value pointer**, or to the value itself when it is small
//!   ([`value_pointer`]). Compactions move keys and pointers only: the tree is small, and
//!   its write amplification is paid on small entries;
//! * the **value log** ([`value_log`], in `vlog/`) holds the values, appended once, in
//!   stage 2's segments and records ([`bitcask::record`]), never rewritten by compaction;
//! * a **garbage collector** ([`gc`]) frees the log's segments of values nothing points at
//!   any more, moving the live ones to the log's head;
//! * **recovery** ([`recovery`]) makes the two logs agree after a crash, since a power loss
//!   may cut them at different places.
//!
//! The price: a `get` of a value in the log is one tree lookup plus one log read, and a
//! scan reads its values at random places of the log, which the cursor eases by reading
//! ahead in file order ([`cursor`]); the log must be collected, reading segments and asking
//! the tree about each record; and space is used by dead values until a collection.
//!
//! | file | concept |
//! |---|---|
//! | [`engine`] | [`Wisckey`], the engine: the write path (log, then tree, under one mutex), `get`, `sync`, `stats` |
//! | [`options`] | the options (`kv --set` names): wisckey's own, and the tree's passed through |
//! | [`recovery`] | open, step by step: the value log, trimming the tree's WAL to it, the tree, values lost to damage |
//! | [`file_names`] | the store's directories and the names in them |
//! | [`mod@repair`] | [`repair()`]: the tree's repair, the value log's salvage, and the tree's pointers checked against the log (`kv repair`) |
//! | [`mod@inspect`] | the annotated dumps `kv inspect` prints ([`inspect()`]) |
//! | [`cursor`] | the tree's cursor with values fetched from the log, read ahead in offset order |
//! | [`value_pointer`] | what the tree holds for a key: an inline value or a pointer, byte by byte |
//! | [`value_log`] | the value log: appending, sealing, syncing to its end, reading by pointer with checks |
//! | [`gc`] | garbage collection: which records are live, moving them, deleting segments crash-safely |
//!
//! ## A put and a get, step by step
//!
//! `put("apple", v)` with a 1 KiB `v`, under the writer mutex ([`engine`]): the value log
//! appends one record (`crc, batch number, kind put, key "apple", v`) to its active segment,
//! say segment 3 at offset 4096, 1056 bytes long ([`value_log`]); the tree then takes the
//! key `apple` with the 17-byte tree value `01 | 3 | 4096 | 1056` ([`value_pointer`]), in
//! its WAL and its memtable, as stage 4 takes any write. A `get("apple")` asks the tree,
//! finds the pointer, reads 1056 bytes at offset 4096 of segment 3 in one read, checks the
//! record's CRC and that its key is `apple`, and returns `v`. A value under
//! `value_threshold` (128 bytes by default) is kept in the tree itself (`00 | v`), so its
//! `get` is the tree's alone; its record in the log is dead from the start.
//!
//! ## What it still gets wrong
//!
//! * A scan reads its values at random places of the log, one read each unless they were
//!   written in key order ([`cursor`] reads ahead in file order, on one thread).
//! * The garbage collector reads whole segments and asks the tree about every record;
//!   the background one reads about one segment per segment written. Dead bytes are not
//!   counted on the write path, which would need a tree read per write.
//! * Every write holds one mutex from its log append to its tree write, so that the two
//!   logs keep one order: stage 4's group commit never groups two writers.
//! * Small values are written twice (the log and the tree); every value once more per
//!   collection that moves it.
//! * Recovery after a power loss may cut the tree's newest WAL back to what the log kept,
//!   and after damage to the log forgets the values it lost ([`recovery`]).
//!
//! What it reuses: the tree is stage 4 as a dependency, opened with a WAL barrier
//! ([`lsm::barrier`]) that syncs the value log before every sync of the tree's WAL; the
//! value log's segment format, records, checksums and seal are stage 2's, read with the
//! shared log reader ([`kv_shared::log_reader`]); the file layer, errors and the engine
//! contract are [`kv_shared`]'s.
//!
//! Simplifications against the paper and its descendants (Badger, Titan, RocksDB's
//! BlobDB): the tree keeps its own WAL (the paper uses the value log as the tree's log);
//! the log is collected a whole segment at a time (the paper frees a range at the tail);
//! liveness is computed by asking the tree about each record, with no dead-byte counts
//! kept on the write path; and a scan's read-ahead reads in file order on one thread
//! (the paper reads in parallel).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cursor;
pub mod engine;
pub mod file_names;
pub mod gc;
pub mod inspect;
pub mod options;
pub mod recovery;
pub mod repair;
pub mod value_log;
pub mod value_pointer;

pub use engine::Wisckey;
pub use inspect::inspect;
pub use options::WisckeyOptions;
pub use repair::repair;

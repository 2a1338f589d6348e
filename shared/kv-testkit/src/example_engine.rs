//! [`ExampleEngine`]: the smallest engine that passes every suite of this crate, and the
//! model to start from when you bring your own.
//!
//! ## Bring your own engine
//!
//! Any type that implements [`kv_shared::Engine`] runs the same suites as the course's
//! stages. To start one from this file:
//!
//! 1. `cargo new --lib my-engine`, with `kv-shared` under `[dependencies]` and
//!    `kv-testkit` under `[dev-dependencies]` (path dependencies to `shared/kv-shared` and
//!    `shared/kv-testkit`, or `.workspace = true` inside this workspace).
//! 2. Copy this file to the new crate's `src/lib.rs` (it uses nothing of `kv-testkit`
//!    outside its tests), and rename the type, its [`Engine::NAME`] and [`LOG_FILE`].
//! 3. Replace the `tests` module at the bottom by two test files, which run every suite:
//!
//!    ```ignore
//!    // tests/conformance.rs: what an engine does when all goes well
//!    kv_testkit::conformance_tests!(my_engine::MyEngine, kv_shared::Options::new());
//!    // tests/reliability.rs: process kills, power loss, I/O errors, damaged files
//!    kv_testkit::reliability_tests!(
//!        my_engine::MyEngine,
//!        kv_shared::Options::new(),
//!        my_engine::inspect
//!    );
//!    ```
//!
//! 4. `cargo test`. Every randomized failure prints its seed; `KV_TEST_SEED` replays it.
//!
//! Then change one thing at a time (values on disk instead of in memory, segments instead
//! of one log, a background merge...) and run the suites after each step: the course's
//! four stages are such steps.
//!
//! ## Design
//!
//! * **One log file**, [`LOG_FILE`], appended to by every write. Every write is **one
//!   record** written with one `append`: a put or a delete is a batch of one op, and a
//!   [`WriteBatch`] of any size is one record too. One record under one checksum is what
//!   makes a batch atomic across a crash: a record torn by the crash fails its checksum on
//!   open and is dropped whole.
//! * **Every value in memory**, in a `BTreeMap`, rebuilt on open by replaying the log. Being
//!   sorted, the map gives cursors and range scans for free; a `get` reads no disk.
//! * **One mutex** over the log and the map. A write appends its record and applies its
//!   ops to the map before it lets go, so no reader ever sees part of a batch.
//! * **Durability.** `write` returns once its record is handed to the operating system (it
//!   survives a process kill); `sync` syncs the log and the directory (it survives a power
//!   loss). With the option `sync_writes`, every write syncs the log before it returns (it
//!   survives a power loss too); a log `open` creates is synced with its directory at once,
//!   so that is all a write needs. A failed append may have written part of its record: it
//!   is cut off again, so the next record never follows garbage. A failed sync is final:
//!   the kernel may have dropped what it could not write, so every later write and sync
//!   fails until the store is reopened.
//! * **Cursors are snapshots by copy-on-write.** The map sits behind an `Arc`. A cursor
//!   takes a clone of the `Arc`, which costs nothing, and keeps reading that map whatever
//!   happens next. A writer changes the map through [`Arc::make_mut`], which copies it
//!   first only if a cursor still holds it: the first write while a cursor lives pays one
//!   copy of the whole map, later writes none. Fine for a store that fits in memory; an
//!   engine with millions of keys wants a snapshot that costs no copy, such as the sequence
//!   numbers the stages' memtables and tables carry.
//! * **`compact`** writes the live pairs to a new log, [`COMPACT_FILE`], syncs it, renames it
//!   over the log and syncs the directory. A crash anywhere in between leaves the old log or
//!   the new one, whole. The `buggy_rotation` option leaves out the sync before the rename:
//!   a planted bug the power-loss suite must catch (this module's tests check it does).
//!
//! ## The log file
//!
//! All integers are little-endian. The file starts with a 20-byte header:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `KVEXAMPL` |
//! | 8 | 4 | format version, `u32`: 1 |
//! | 12 | 8 | `w`, `u64`: the length of the file when it was last written whole |
//!
//! then records, back to back:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 12 + n` (everything after this field) |
//! | 4 | 4 | `c`: the number of ops, at least 1, `u32` |
//! | 8 | 4 | `n`: the length of the ops, `u32`, at most [`MAX_OPS_LEN`] |
//! | 12 | n | the `c` ops in the [`kv_shared::batch`] ops format, nothing after the last |
//!
//! An op is a kind byte (1 = put, 0 = delete), the key length as a varint, the key, and
//! for a put the value length as a varint and the value. So `put("a", "1")` is the 17-byte
//! record `crc(4) 01 00 00 00 05 00 00 00 01 01 61 01 31`, and a batch that puts `"a"` =
//! `"1"` and deletes `"b"` is `crc(4) 02 00 00 00 08 00 00 00 01 01 61 01 31 00 01 62`.
//! [`inspect`] prints a log field by field; its snapshot in this module's tests pins the
//! format.
//!
//! `open` writes a new log as the header alone (`w` = 20); `compact` writes the new log
//! whole, with `w` its length. On open the log, the store's newest (and only) log, is
//! replayed with [`kv_shared::log_reader::read_newest_log`]: everything from the first bad
//! record on is the log's unsynced tail, cut off, even when valid records follow it (a disk
//! writes unsynced pages back in any order, so a power loss can leave a hole before good
//! records); when they do, the whole log is first copied into the store's `lost/`
//! directory, so nothing once written is destroyed. A bad record before `w` (bytes that
//! were written whole and synced) is corruption, and the store is refused. Each record's
//! ops are checked ([`check_ops`]) before any of them is applied, so a record is applied
//! whole or refused whole.

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kv_shared::batch::{BatchOps, check_ops, dump_ops, encode_op};
use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32};
use kv_shared::log_reader::{LogFormat, LogTail, read_newest_log};
use kv_shared::{
    BatchOp, BoxCursor, Cursor, Engine, Error, FileRef, Fs, OptionDoc, Options, Result, Stats,
    StoreDir, WriteBatch,
};

/// The log's file name.
pub const LOG_FILE: &str = "example.log";
/// The new log `compact` writes, renamed over [`LOG_FILE`] once it is whole and synced.
pub const COMPACT_FILE: &str = "example.log.tmp";
/// The longest ops a record may carry: 32 MiB, room for one op at both size limits. A
/// larger batch is refused with [`Error::InvalidArgument`], nothing written.
pub const MAX_OPS_LEN: usize = 32 << 20;

const MAGIC: &[u8; 8] = b"KVEXAMPL";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 20;
const RECORD_HEADER_LEN: usize = 12;

/// The engine's contents: key to value.
type Pairs = BTreeMap<Vec<u8>, Vec<u8>>;

/// The example engine: one log, every value in memory. See the [module
/// documentation](self).
#[derive(Debug)]
pub struct ExampleEngine {
    fs: Fs,
    dir: StoreDir,
    buggy_rotation: bool,
    sync_writes: bool,
    state: Mutex<State>,
    gets: AtomicU64,
    user_bytes: AtomicU64,
}

/// What the mutex guards: the log being appended to, and the map.
#[derive(Debug)]
struct State {
    log: FileRef,
    pairs: Arc<Pairs>,
    /// A sync failed: writes and syncs are refused until the store is reopened.
    sync_failed: bool,
}

impl ExampleEngine {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails once a sync has failed (see [`State::sync_failed`]).
    fn check_sync_ok(state: &State) -> Result<()> {
        if state.sync_failed {
            return Err(Error::io(
                state.log.path(),
                std::io::Error::other("an earlier sync failed; reopen the store"),
            ));
        }
        Ok(())
    }

    /// Syncs the log (and the directory, if `dir` is set); a failure is final.
    fn sync_locked(&self, state: &mut State, dir: bool) -> Result<()> {
        Self::check_sync_ok(state)?;
        let mut synced = state.log.sync();
        if dir && synced.is_ok() {
            synced = self.fs.sync_dir(self.dir.path());
        }
        state.sync_failed = synced.is_err();
        synced
    }

    /// Appends `record` to the log, cutting off whatever a failed append left.
    fn append(log: &FileRef, record: &[u8]) -> Result<()> {
        let len = log.len()?;
        if let Err(e) = log.append(record) {
            log.truncate(len)?;
            return Err(e);
        }
        Ok(())
    }
}

impl Engine for ExampleEngine {
    const NAME: &'static str = "example";
    const FORMAT_VERSION: u32 = VERSION;
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc {
            name: "buggy_rotation",
            default: "false",
            doc: "skip the sync before the compaction's rename (a planted bug)",
        },
        OptionDoc {
            name: "sync_writes",
            default: "false",
            doc: "sync the log before each write returns",
        },
    ];

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let buggy_rotation = options.get_or("buggy_rotation", false)?;
        let sync_writes = options.get_or("sync_writes", false)?;
        let fs = Fs::new(options.file_system());
        let dir = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        fs.remove_if_exists(&dir.join(COMPACT_FILE))?;
        let (log, pairs) = match fs.open_if_exists(&dir.join(LOG_FILE))? {
            Some(log) if log.len()? >= HEADER_LEN as u64 => {
                let pairs = replay(&fs, dir.path(), &log)?;
                (log, pairs)
            }
            _ => {
                let log = fs.create(&dir.join(LOG_FILE))?;
                log.append(&header(HEADER_LEN as u64))?;
                log.sync()?;
                fs.sync_dir(dir.path())?;
                (log, Pairs::new())
            }
        };
        Ok(ExampleEngine {
            fs,
            dir,
            buggy_rotation,
            sync_writes,
            state: Mutex::new(State {
                log,
                pairs: Arc::new(pairs),
                sync_failed: false,
            }),
            gets: AtomicU64::new(0),
            user_bytes: AtomicU64::new(0),
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(key, value)?;
        self.write(&batch)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.gets.fetch_add(1, Relaxed);
        Ok(self.state().pairs.get(key).cloned())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key)?;
        self.write(&batch)
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ops = batch.encoded_ops();
        if ops.len() > MAX_OPS_LEN {
            return Err(Error::InvalidArgument(format!(
                "a batch of {} ops and {} bytes is over the record limit of {MAX_OPS_LEN} \
                 bytes: split it",
                batch.len(),
                ops.len()
            )));
        }
        let record = encode_record(batch.count(), ops);
        let mut state = self.state();
        Self::check_sync_ok(&state)?;
        Self::append(&state.log, &record)?;
        if self.sync_writes {
            self.sync_locked(&mut state, false)?;
        }
        // Copies the map first if a cursor still holds it (see the module documentation).
        let pairs = Arc::make_mut(&mut state.pairs);
        let mut user_bytes = 0;
        for op in batch.iter() {
            user_bytes += (op.key.len() + op.value.map_or(0, <[u8]>::len)) as u64;
            apply(pairs, op);
        }
        self.user_bytes.fetch_add(user_bytes, Relaxed);
        Ok(())
    }

    fn cursor(&self) -> Result<BoxCursor<'_>> {
        Ok(Box::new(ExampleCursor {
            pairs: self.state().pairs.clone(),
            at: None,
        }))
    }

    fn sync(&self) -> Result<()> {
        self.sync_locked(&mut self.state(), true)
    }

    fn compact(&self) -> Result<()> {
        let mut state = self.state();
        let mut records = Vec::new();
        let mut op = Vec::new();
        for (key, value) in state.pairs.iter() {
            op.clear();
            encode_op(&mut op, key, Some(value));
            records.extend_from_slice(&encode_record(1, &op));
        }
        let mut bytes = header((HEADER_LEN + records.len()) as u64);
        bytes.extend_from_slice(&records);
        let new_log = self.fs.create(&self.dir.join(COMPACT_FILE))?;
        new_log.append(&bytes)?;
        if !self.buggy_rotation {
            new_log.sync()?;
        }
        self.fs
            .rename(&self.dir.join(COMPACT_FILE), &self.dir.join(LOG_FILE))?;
        // From the rename on, the new file is the log, whatever fails next: keep appending
        // to the handle in hand (opening the log again could fail, and leave later writes
        // going to the old, unlinked file).
        state.log = new_log;
        self.fs.sync_dir(self.dir.path())
    }

    fn stats(&self) -> Result<Stats> {
        let (disk_bytes, file_count) = self.fs.dir_usage(self.dir.path())?;
        let state = self.state();
        Ok(Stats {
            user_bytes_written: self.user_bytes.load(Relaxed),
            disk_bytes_written: self.fs.counters().bytes_written(),
            live_keys: state.pairs.len() as u64,
            live_data_bytes: state
                .pairs
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum(),
            disk_bytes,
            file_count,
            gets: self.gets.load(Relaxed),
            get_disk_reads: 0,
            extra: BTreeMap::new(),
        })
    }

    fn close(self) -> Result<()> {
        self.sync()
    }
}

/// Applies one op to the map.
fn apply(pairs: &mut Pairs, op: BatchOp<'_>) {
    match op.value {
        Some(value) => pairs.insert(op.key.to_vec(), value.to_vec()),
        None => pairs.remove(op.key),
    };
}

/// The file header, with `w` = `whole_len`.
fn header(whole_len: u64) -> Vec<u8> {
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&whole_len.to_le_bytes());
    header
}

/// One record of `count` ops, `ops` in the [`kv_shared::batch`] ops format.
fn encode_record(count: u32, ops: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(RECORD_HEADER_LEN + ops.len());
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&count.to_le_bytes());
    record.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    record.extend_from_slice(ops);
    let crc = crc32(&record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    record
}

/// Reads the header and replays every record of `log`, the log of the store in `dir`, into
/// a map; cuts its unsynced tail off (copying the whole log into `lost/` first when valid
/// records follow the damage).
fn replay(fs: &Fs, dir: &Path, log: &FileRef) -> Result<Pairs> {
    let path = log.path();
    let head = log.read_vec_at(0, HEADER_LEN)?;
    if head[..12] != header(0)[..12] {
        return Err(Error::corruption(path, 0, "not an example log header"));
    }
    let whole_len = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
    let mut pairs = Pairs::new();
    let end = read_newest_log::<Record>(log, HEADER_LEN as u64, |r| {
        let (count, ops) = r.record;
        BatchOps::new(&ops, count).for_each(|op| apply(&mut pairs, op));
        Ok(())
    })?;
    if end.valid_len < whole_len {
        return Err(Error::corruption(
            path,
            end.valid_len,
            "damage inside the part of the log written whole",
        ));
    }
    if let LogTail::Torn {
        valid_after: Some(_),
        ..
    } = end.tail
    {
        kv_shared::repair::copy_to_lost(fs, dir, LOG_FILE)?;
    }
    log.truncate(end.valid_len)?;
    Ok(pairs)
}

/// A record of the log, as [`read_newest_log`] reads it: its op count and its checked ops.
struct Record;

impl LogFormat for Record {
    type Record = (u32, Vec<u8>);
    const HEADER_LEN: usize = RECORD_HEADER_LEN;

    fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
        let mut r = ByteReader::new(header);
        r.u32("crc")?;
        r.u32("op count")?;
        let ops_len = r.u32("ops length")? as usize;
        if ops_len > MAX_OPS_LEN {
            return Err(DecodeError::new(8, "ops length over the limit"));
        }
        Ok(RECORD_HEADER_LEN + ops_len)
    }

    fn decode(record: &[u8]) -> Result<Self::Record, DecodeError> {
        let mut r = ByteReader::new(record);
        let crc = r.u32("crc")?;
        if crc32(&record[4..]) != crc {
            return Err(DecodeError::new(0, "checksum mismatch"));
        }
        let count = r.u32("op count")?;
        if count == 0 {
            return Err(DecodeError::new(4, "a record holds at least one op"));
        }
        let ops = &record[RECORD_HEADER_LEN..];
        check_ops(ops, count)
            .map_err(|e| DecodeError::new(RECORD_HEADER_LEN + e.offset, e.detail))?;
        Ok((count, ops.to_vec()))
    }
}

/// A cursor of [`ExampleEngine`]: the map as it was when the cursor was made (its own
/// clone of the `Arc`), and the key it is at.
#[derive(Debug)]
pub struct ExampleCursor {
    pairs: Arc<Pairs>,
    /// The key the cursor is at, `None` when not valid. A copy: the cursor cannot hold a
    /// borrow of the map it owns.
    at: Option<Vec<u8>>,
}

/// A range of keys, as `BTreeMap::range` takes it.
type Bounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

impl ExampleCursor {
    /// The smallest key in `bounds`.
    fn first_in(&self, bounds: Bounds<'_>) -> Option<Vec<u8>> {
        let mut range = self.pairs.range::<[u8], _>(bounds);
        range.next().map(|(key, _)| key.clone())
    }

    /// The largest key in `bounds`.
    fn last_in(&self, bounds: Bounds<'_>) -> Option<Vec<u8>> {
        let mut range = self.pairs.range::<[u8], _>(bounds);
        range.next_back().map(|(key, _)| key.clone())
    }
}

impl Cursor for ExampleCursor {
    fn valid(&self) -> bool {
        self.at.is_some()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.at = self.first_in((Unbounded, Unbounded));
        Ok(())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.at = self.last_in((Unbounded, Unbounded));
        Ok(())
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.at = self.first_in((Included(target), Unbounded));
        Ok(())
    }
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.at = self.last_in((Unbounded, Included(target)));
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        if let Some(key) = &self.at {
            self.at = self.first_in((Excluded(key), Unbounded));
        }
        Ok(())
    }
    fn prev(&mut self) -> Result<()> {
        if let Some(key) = &self.at {
            self.at = self.last_in((Unbounded, Excluded(key)));
        }
        Ok(())
    }
    fn key(&self) -> &[u8] {
        self.at
            .as_deref()
            .expect("key() of a cursor that is not valid")
    }
    fn value(&self) -> &[u8] {
        &self.pairs[self.key()]
    }
}

/// The annotated dump of an example log, field by field, or `None` when `bytes` does not
/// start with its magic. Never panics, whatever the bytes.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(MAGIC) {
        return None;
    }
    let mut d = Dump::new(format!("example log, {} bytes", bytes.len()));
    d.section("file header");
    d.field(&bytes[..8], format!("magic {}", quoted(MAGIC, 8)));
    let mut r = ByteReader::new(&bytes[8..]);
    if let Ok(version) = r.u32("version") {
        d.field(&bytes[8..12], format!("format version {version}"));
    }
    if let Ok(whole) = r.u64("whole length") {
        d.field(
            &bytes[12..20],
            format!("length when last written whole: {whole}"),
        );
    }
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let len = rest
            .get(..RECORD_HEADER_LEN)
            .and_then(|h| Record::record_len(h).ok())
            .filter(|&len| len <= rest.len());
        let Some(len) = len else {
            d.section(format!("offset {pos}: bytes that are not a whole record"));
            d.field(rest, "torn or damaged");
            break;
        };
        dump_record(&mut d, pos, &rest[..len]);
        pos += len;
    }
    Some(d.finish())
}

/// One whole record, field by field (`record` holds all the length field promises).
fn dump_record(d: &mut Dump, pos: usize, record: &[u8]) {
    let crc_ok = Record::decode(record).is_ok();
    let count = u32::from_le_bytes(record[4..8].try_into().expect("4 bytes"));
    d.section(format!("record at offset {pos}"));
    let verdict = if crc_ok { "ok" } else { "BAD" };
    d.field(&record[..4], format!("crc32 ({verdict})"));
    d.field(&record[4..8], format!("op count {count}"));
    d.field(
        &record[8..12],
        format!("ops length {}", record.len() - RECORD_HEADER_LEN),
    );
    dump_ops(d, &record[RECORD_HEADER_LEN..], count);
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::conformance_tests!(ExampleEngine, kv_shared::Options::new());

    crate::reliability_tests!(
        ExampleEngine,
        kv_shared::Options::new(),
        crate::example_engine::inspect
    );

    /// The suites must catch a planted bug: a compaction that renames an unsynced file over
    /// the log loses synced data at a power loss.
    #[test]
    fn power_loss_catches_a_rename_before_sync() {
        let options = kv_shared::Options::new().set("buggy_rotation", "true");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::power_loss::crash_at_every_mutation::<ExampleEngine>(&options, 3, 400);
        }));
        assert!(caught.is_err(), "the planted bug went unnoticed");
    }

    /// A hole in the log's unsynced part, valid records after it: the store opens with the
    /// records before it, the whole log copied into `lost/` first. The same damage in the
    /// part written whole by a compaction (before `w`) is corruption.
    #[test]
    fn a_hole_in_the_unsynced_tail_is_cut_after_a_copy_but_the_synced_part_refuses() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let options = kv_shared::Options::new();
        let engine = ExampleEngine::open(&dir, &options).unwrap();
        for key in [b"a", b"b", b"c"] {
            engine.put(key, b"1").unwrap();
        }
        drop(engine);
        let path = dir.join(LOG_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let second = HEADER_LEN + 17; // each put of a one-byte key and value is 17 bytes
        bytes[second + 12] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let engine = ExampleEngine::open(&dir, &options).unwrap();
        assert_eq!(engine.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            (engine.get(b"b").unwrap(), engine.get(b"c").unwrap()),
            (None, None)
        );
        let copy = std::fs::read(dir.join(kv_shared::repair::LOST_DIR).join(LOG_FILE));
        assert_eq!(copy.unwrap(), bytes);
        engine.put(b"b", b"2").unwrap();
        engine.compact().unwrap(); // the log is now written whole and synced
        drop(engine);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_LEN + 12] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            ExampleEngine::open(&dir, &options),
            Err(Error::Corruption { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as found");
    }

    /// The log's format, pinned by its dump: a put, a delete, a batch, and a torn record.
    #[test]
    fn log_dump() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = ExampleEngine::open(tmp.path(), &Options::new()).unwrap();
        engine.put(b"a", b"1").unwrap();
        engine.delete(b"b").unwrap();
        let mut batch = WriteBatch::new();
        batch.put(b"apple", b"red").unwrap();
        batch.delete(b"pear").unwrap();
        engine.write(&batch).unwrap();
        engine.close().unwrap();
        let mut bytes = std::fs::read(tmp.path().join(LOG_FILE)).unwrap();
        bytes.extend_from_slice(&encode_record(1, b"\x01\x01z")[..9]);
        insta::assert_snapshot!(inspect(&bytes).unwrap());
    }
}

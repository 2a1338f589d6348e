//! A small engine for testing the tools before (and independently of) the real ones: a
//! `BTreeMap` in memory, persisted as an append-only log through `kv_shared::Fs` so that
//! stores survive close and reopen and the byte counters are real.
//!
//! The log is the magic, then records: a put or delete is `op` (1 put, 2 delete), key
//! length and value length (u32 LE each), key, value; a batch is `op` 3, the op count and
//! the body length (u32 LE each), then the body in `kv_shared::batch`'s ops format, so a
//! batch is one record and a torn one is dropped whole. A cursor is a copy of the map.
//!
//! Options that make it misbehave on purpose, so the tests can check that the tools notice:
//! `fail_after=N` fails every put after the first N; `lose_every=N` silently drops every
//! N-th put; `count_twice=1` reports twice the bytes it wrote. Options that make it report
//! like a production peer, through `Stats::extra`: `read_amp_unknown=1` (it cannot count
//! its disk reads, as sled and redb) and `written_from_os=1` (sets
//! `disk_bytes_written_from_os`: its byte count is the OS's, as for fjall, sled and redb).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use kv_shared::batch::{BatchOps, check_ops};
use kv_shared::{
    BoxCursor, Engine, Error, FileRef, Fs, KeyRange, OptionDoc, Options, Result, ScanIter, Stats,
    StoreDir, VecCursor, WriteBatch,
};
use kvbench::engines::EngineInfo;

/// The magic at the start of the test engine's log.
pub const MAGIC: &[u8; 8] = b"MEMTEST1";

/// The test engine.
pub struct MemEngine {
    fs: Fs,
    dir: StoreDir,
    log: FileRef,
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    user_bytes: AtomicU64,
    gets: AtomicU64,
    puts: AtomicU64,
    fail_after: u64,
    lose_every: u64,
    count_twice: bool,
    read_amp_unknown: bool,
    written_from_os: bool,
}

const PUT: u8 = 1;
const DELETE: u8 = 2;
const BATCH: u8 = 3;

impl MemEngine {
    fn append(&self, op: u8, key: &[u8], value: &[u8]) -> Result<()> {
        let mut record = vec![op];
        record.extend_from_slice(&(key.len() as u32).to_le_bytes());
        record.extend_from_slice(&(value.len() as u32).to_le_bytes());
        record.extend_from_slice(key);
        record.extend_from_slice(value);
        self.log.append(&record)
    }
}

fn replay(bytes: &[u8]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut map = BTreeMap::new();
    let mut pos = MAGIC.len();
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    while pos + 9 <= bytes.len() {
        let (op, first, second) = (bytes[pos], u32_at(pos + 1), u32_at(pos + 5));
        let body_len = if op == BATCH { second } else { first + second };
        let end = pos + 9 + body_len;
        if end > bytes.len() {
            break;
        }
        let body = &bytes[pos + 9..end];
        match op {
            PUT => {
                map.insert(body[..first].to_vec(), body[first..].to_vec());
            }
            DELETE => {
                map.remove(&body[..first]);
            }
            _ => {
                if check_ops(body, first as u32).is_err() {
                    break;
                }
                for op in BatchOps::new(body, first as u32) {
                    apply(&mut map, op.key, op.value);
                }
            }
        }
        pos = end;
    }
    map
}

/// Sets `key` to `value`, or removes it for `None`.
fn apply(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, key: &[u8], value: Option<&[u8]>) {
    match value {
        Some(value) => map.insert(key.to_vec(), value.to_vec()),
        None => map.remove(key),
    };
}

impl Engine for MemEngine {
    const NAME: &'static str = "memtest";
    const FORMAT_VERSION: u32 = 1;
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc {
            name: "fail_after",
            default: "0",
            doc: "fail every put after this many (0: never)",
        },
        OptionDoc {
            name: "lose_every",
            default: "0",
            doc: "silently drop every N-th put (0: never)",
        },
        OptionDoc {
            name: "count_twice",
            default: "false",
            doc: "report twice the bytes written",
        },
        OptionDoc {
            name: "read_amp_unknown",
            default: "false",
            doc: "say that disk reads are not counted",
        },
        OptionDoc {
            name: "written_from_os",
            default: "false",
            doc: "say that the bytes written are the OS's count",
        },
    ];

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let fail_after = options.get_or("fail_after", 0u64)?;
        let lose_every = options.get_or("lose_every", 0u64)?;
        let count_twice = options.get_or("count_twice", false)?;
        let read_amp_unknown = options.get_or("read_amp_unknown", false)?;
        let written_from_os = options.get_or("written_from_os", false)?;
        let fs = Fs::new(options.file_system());
        let store = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        let path = store.join("memtest.log");
        let (log, map) = match fs.open_if_exists(&path)? {
            Some(log) => {
                let bytes = fs.read_all(&path)?;
                (log, replay(&bytes))
            }
            None => {
                let log = fs.create(&path)?;
                log.append(MAGIC)?;
                (log, BTreeMap::new())
            }
        };
        Ok(MemEngine {
            fs,
            dir: store,
            log,
            map: RwLock::new(map),
            user_bytes: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            fail_after,
            lose_every,
            count_twice,
            read_amp_unknown,
            written_from_os,
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        kv_shared::check_key_value(key, value)?;
        let n = self.puts.fetch_add(1, Relaxed) + 1;
        if self.fail_after > 0 && n > self.fail_after {
            return Err(Error::io(
                self.log.path(),
                std::io::Error::other("injected failure (fail_after)"),
            ));
        }
        self.user_bytes
            .fetch_add((key.len() + value.len()) as u64, Relaxed);
        if self.lose_every > 0 && n.is_multiple_of(self.lose_every) {
            return Ok(());
        }
        let mut map = self.map.write().unwrap();
        self.append(PUT, key, value)?;
        map.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.gets.fetch_add(1, Relaxed);
        Ok(self.map.read().unwrap().get(key).cloned())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        kv_shared::check_key(key)?;
        self.user_bytes.fetch_add(key.len() as u64, Relaxed);
        let mut map = self.map.write().unwrap();
        self.append(DELETE, key, b"")?;
        map.remove(key);
        Ok(())
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        let mut record = vec![BATCH];
        record.extend_from_slice(&batch.count().to_le_bytes());
        record.extend_from_slice(&(batch.encoded_ops().len() as u32).to_le_bytes());
        record.extend_from_slice(batch.encoded_ops());
        let mut map = self.map.write().unwrap();
        self.log.append(&record)?;
        for op in batch.iter() {
            let bytes = op.key.len() + op.value.map_or(0, <[u8]>::len);
            self.user_bytes.fetch_add(bytes as u64, Relaxed);
            apply(&mut map, op.key, op.value);
        }
        Ok(())
    }

    fn cursor(&self) -> Result<BoxCursor<'_>> {
        let map = self.map.read().unwrap();
        let pairs = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(Box::new(VecCursor::new(pairs)))
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        if range.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        let pairs: Vec<_> = self
            .map
            .read()
            .unwrap()
            .range::<[u8], _>(range)
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Ok(Box::new(pairs.into_iter()))
    }

    fn sync(&self) -> Result<()> {
        self.log.sync()
    }

    fn compact(&self) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> Result<Stats> {
        let map = self.map.read().unwrap();
        let (disk_bytes, file_count) = self.fs.dir_usage(self.dir.path())?;
        let written = self.fs.counters().bytes_written();
        let mut extra = BTreeMap::from([("puts".to_string(), self.puts.load(Relaxed))]);
        if self.read_amp_unknown {
            extra.insert("read_amp_unknown".to_string(), 1);
        }
        if self.written_from_os {
            extra.insert("disk_bytes_written_from_os".to_string(), 1);
        }
        Ok(Stats {
            user_bytes_written: self.user_bytes.load(Relaxed),
            disk_bytes_written: if self.count_twice {
                2 * written
            } else {
                written
            },
            live_keys: map.len() as u64,
            live_data_bytes: map.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum(),
            disk_bytes,
            file_count,
            gets: self.gets.load(Relaxed),
            get_disk_reads: 0,
            extra,
        })
    }

    fn close(self) -> Result<()> {
        self.log.sync()
    }
}

/// Recognises the test engine's log by its magic.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    bytes
        .starts_with(MAGIC)
        .then(|| format!("memtest log ({} bytes)\n", bytes.len()))
}

/// A registry holding only the test engine.
pub const REGISTRY: &[EngineInfo] = &[EngineInfo::of::<MemEngine>(
    "a BTreeMap with a log, for tests",
    inspect,
)];

//! Helpers shared by the integration tests: a file system that "crashes", a model of the
//! expected contents, and small store helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use bitcask::Bitcask;
use kv_shared::{Engine, File, FileLock, FileSystem, KeyRange, Options, RealFs};

/// The real file system, until a chosen number of changing calls (create, append, rename,
/// remove, sync, truncate) have gone through. From then on every changing call fails
/// and does nothing, exactly as if the process had died at that point: whatever the engine
/// then does to clean up cannot reach the disk.
#[derive(Debug)]
pub struct CrashFs {
    ops: AtomicU64,
    reads: AtomicU64,
    crash_after: AtomicU64,
    crashed: AtomicBool,
}

impl CrashFs {
    /// Crashes after `n` changing calls (`u64::MAX`: never).
    pub fn new(n: u64) -> Arc<CrashFs> {
        Arc::new(CrashFs {
            ops: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            crash_after: AtomicU64::new(n),
            crashed: AtomicBool::new(false),
        })
    }

    /// Changing calls made so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(SeqCst)
    }

    /// Positioned reads made so far (they never crash).
    pub fn reads(&self) -> u64 {
        self.reads.load(SeqCst)
    }

    /// Starts counting again from zero, crashing after `n` more calls.
    pub fn arm(&self, n: u64) {
        self.ops.store(0, SeqCst);
        self.crash_after.store(n, SeqCst);
    }

    /// True once the crash happened.
    pub fn crashed(&self) -> bool {
        self.crashed.load(SeqCst)
    }

    fn step(&self) -> io::Result<()> {
        if self.crashed.load(SeqCst) {
            return Err(io::Error::other("simulated crash"));
        }
        let n = self.ops.fetch_add(1, SeqCst);
        if n >= self.crash_after.load(SeqCst) {
            self.crashed.store(true, SeqCst);
            return Err(io::Error::other("simulated crash"));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct CrashFile {
    fs: Arc<CrashFs>,
    inner: Arc<dyn File>,
}

/// The file system handle given to the engine (`Arc<CrashFs>` behind the trait).
#[derive(Debug, Clone)]
pub struct CrashFsHandle(pub Arc<CrashFs>);

impl FileSystem for CrashFsHandle {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        self.0.step()?;
        let inner = RealFs.create(path)?;
        Ok(Arc::new(CrashFile {
            fs: self.0.clone(),
            inner,
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let inner = RealFs.open(path)?;
        Ok(Arc::new(CrashFile {
            fs: self.0.clone(),
            inner,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.step()?;
        RealFs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.step()?;
        RealFs.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealFs.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.step()?;
        RealFs.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        RealFs.lock(path)
    }
}

impl File for CrashFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        self.fs.step()?;
        self.inner.append(buf)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.fs.reads.fetch_add(1, SeqCst);
        self.inner.read_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn sync(&self) -> io::Result<()> {
        self.fs.step()?;
        self.inner.sync()
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.fs.step()?;
        self.inner.truncate(len)
    }
}

/// Options for deterministic tests: small segments, no background merge.
pub fn quiet(segment_bytes: &str) -> Options {
    Options::new()
        .set("segment_bytes", segment_bytes)
        .set("background_merge", "false")
}

/// Opens `dir` or panics with the error.
pub fn open(dir: &Path, options: &Options) -> Bitcask {
    Bitcask::open(dir, options).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// The whole store, by a full scan.
pub fn contents(e: &Bitcask) -> BTreeMap<Vec<u8>, Vec<u8>> {
    e.scan(KeyRange::all())
        .unwrap()
        .collect::<Result<BTreeMap<_, _>, _>>()
        .unwrap()
}

/// Checks that `e` holds exactly `model`, by `get` of every key and by a full scan.
pub fn assert_holds(e: &Bitcask, model: &BTreeMap<Vec<u8>, Vec<u8>>, context: &str) {
    for (k, v) in model {
        assert_eq!(e.get(k).unwrap().as_ref(), Some(v), "{context}: key {k:?}");
    }
    assert!(
        contents(e) == *model,
        "{context}: scan differs from the model"
    );
}

/// A deterministic workload with overwrites and deletes spread over many segments; returns
/// what the store must hold.
pub fn churn(e: &Bitcask, keys: u32, rounds: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    for round in 0..rounds {
        for i in 0..keys {
            let key = format!("key{i:04}").into_bytes();
            if (i + round) % 5 == 0 {
                e.delete(&key).unwrap();
                model.remove(&key);
            } else {
                let value = format!("value {i} round {round} {}", "x".repeat((i % 13) as usize))
                    .into_bytes();
                e.put(&key, &value).unwrap();
                model.insert(key, value);
            }
        }
    }
    model
}

/// Files in `dir` by name.
pub fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Paths of the files in `dir` whose name ends with `suffix`.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| dir.join(n))
        .collect()
}

/// Copies the files of `from` into a new directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in files(from) {
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}

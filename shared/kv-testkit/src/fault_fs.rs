//! [`FaultFs`]: an in-memory [`FileSystem`] that remembers what was synced, so the tests can
//! pull the plug at any moment or make any operation fail.
//!
//! Every engine does all of its file I/O through [`FileSystem`], so handing it a `FaultFs`
//! (with [`kv_shared::Options::with_file_system`]) puts the test in charge of the disk. This is
//! the role LevelDB's `FaultInjectionTestEnv` and RocksDB's `FaultInjectionTestFS` play.
//!
//! `FaultFs` is a **simulated disk with power loss**: nothing of it is on the real disk, and
//! it can lose what was not synced. To test an engine on the **real disk** with a failure
//! injected at a chosen call (or a process killed there, everything written staying
//! written), use [`crate::hook_fs::HookFs`] instead.
//!
//! ## What survives a power loss
//!
//! The model is what POSIX promises, and no more, at the grain of a real disk. Each
//! `FaultFs` draws from its seed a **page size** (the unit the page cache writes back: 512 B
//! half the time, else 4 KiB) and a **sector size** (the unit the disk writes atomically:
//! 512 B, or 4 KiB with 4 KiB pages). At a crash:
//!
//! * **File data** is durable up to the last `sync` of that file. The writes after it
//!   (appends and truncations) are *pending*, and each file independently keeps some of
//!   them, in one of two ways, half the time each:
//!   * **In order**: a prefix of its pending writes (all of them, none, or some, a third of
//!     the time each). The first write not kept may be **torn** at a sector boundary inside
//!     it (its bytes up to a multiple of the sector size, counted from the file's start, are
//!     kept; never a part of a sector). A quarter of the time the file's length reached the
//!     disk without its data: the file then extends, up to at most its length before the
//!     crash, with zeros or with stale bytes (noise).
//!   * **Page by page**, as a disk really writes back a page cache: truncations, and the
//!     writes before the last one, still count in order as above (if not all of them are
//!     kept, nothing after them is). Each page that the writes after the last truncation
//!     dirtied then independently reaches the disk or not, so **a later page may survive an
//!     earlier one**; a page that does may still be torn at a sector boundary inside it (when
//!     sectors are smaller than pages). The file's length on disk is anything between its
//!     length at the last `sync` (after the kept truncations) and its length at the crash;
//!     a page within that length that did not reach the disk reads as its old content, or
//!     zeros past the old end.
//!
//!   So a log's synced prefix is always intact, but its unsynced tail may come back with a
//!   hole (a bad record) followed by good records. Across files nothing is ordered either:
//!   a later file can keep its data while an earlier file loses its own.
//! * **Directory entries** (a create, a rename, a remove) are durable after a `sync_dir` of
//!   their directory. At a crash, each directory independently keeps a random prefix of its
//!   pending entry changes; a rename is one change, never half done. A file whose creation
//!   reverts is gone, whatever its data.
//! * **Directories** are entries of their parent too: one made by `create_dir_all` is
//!   durable once its parent is synced. Until then a crash may lose it (a random prefix of
//!   each parent's new directories is kept), and with it every file inside, synced or not.
//!   `/` (and the start of a relative path) is always there.
//! * A `sync` failed by [`FaultKind::Once`] or [`FaultKind::DiskFull`] changes nothing: the
//!   data stays pending. One failed by [`FaultKind::SyncLosesData`] is what Linux really does
//!   (PostgreSQL's "fsyncgate"): the kernel marks the unwritten pages clean, so reads still
//!   see the data until the crash, but it never reaches the disk, even when a later `sync`
//!   of the file succeeds. That later `sync` writes only what was written after the failed
//!   one; the lost bytes read after the crash as what the disk held before (zeros past its
//!   old end). This is why a failed fsync must be final for an engine.
//!
//! [`FaultFs::crash`] applies that model, then every call fails (the machine is off) until
//! [`FaultFs::restart`]; files and locks opened before the crash stay dead forever, as if
//! their process died with the machine.
//!
//! ## Scheduled faults
//!
//! * [`FaultFs::crash_at_mutation`]`(k)`: the power goes out just before the `k`-th
//!   operation that changes something (create, append, truncate, sync, rename, remove,
//!   `sync_dir`, `create_dir_all`, lock), which fails. Running a workload once to count its
//!   mutations, then once per `k`, crashes it at every step.
//! * [`FaultFs::fail_at`]`(k, kind)`: the `k`-th call of any kind (reads included) fails with
//!   an I/O error, [`FaultKind::Once`]; or, [`FaultKind::DiskFull`], every call from the
//!   `k`-th on that needs space (create, append, rename, sync, `sync_dir`, lock) fails with
//!   `StorageFull`, an append first writing a random part of its bytes (a short write) while
//!   reads, truncations and removals keep working. [`FaultFs::clear_faults`] ends it. Or,
//!   [`FaultKind::SyncLosesData`], the first `sync` call (of whichever file) at or after
//!   the `k`-th call fails and loses that file's pending writes (see above); every other
//!   call works.
//!   [`FaultFs::first_fault`] and [`FaultFs::lost_syncs`] name the file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_shared::file_system::{File, FileLock, FileSystem};

/// How a scheduled I/O fault behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Only the chosen call fails, with nothing done.
    Once,
    /// The chosen call and every later call that needs space fail (`StorageFull`); a failing
    /// append writes a random prefix of its bytes first.
    DiskFull,
    /// The first `sync` call (of any file) at or after the chosen call fails, and the writes
    /// it was to make durable are lost at the next crash, even if a later `sync` of that
    /// file succeeds (what Linux does: it marks the pages clean after a failed fsync). Reads
    /// keep seeing the data until the crash.
    SyncLosesData,
}

/// The directory the suites keep their store in, on a [`FaultFs`].
pub fn store_path() -> PathBuf {
    PathBuf::from("/disk/store")
}

/// The files of a store, by path: a picture of a [`FaultFs`] to copy, damage and restore.
pub type FsImage = BTreeMap<PathBuf, Vec<u8>>;

/// The in-memory, fault-injecting file system. Cheap to clone; clones share the same disk.
#[derive(Debug, Clone)]
pub struct FaultFs {
    inner: Arc<Mutex<State>>,
}

/// A write to a file's data not yet made durable by `sync`.
#[derive(Debug, Clone)]
enum DataOp {
    /// Bytes written at offset `at` (an append writes at the end of the file).
    Write {
        at: u64,
        bytes: Vec<u8>,
    },
    Truncate(u64),
}

#[derive(Debug, Default)]
struct Inode {
    /// What reads see now.
    current: Vec<u8>,
    /// What was there at the last `sync`.
    durable: Vec<u8>,
    /// The writes since, in order.
    pending: Vec<DataOp>,
}

/// One atomic change to directory entries: each path now names an inode, or nothing.
type EntryChange = Vec<(PathBuf, Option<u64>)>;

#[derive(Debug)]
struct State {
    rng: ChaCha8Rng,
    /// Bumped by every crash; handles of an older epoch are dead.
    epoch: u64,
    /// True between a crash and [`FaultFs::restart`].
    down: bool,
    /// The page size of the simulated page cache: the unit that reaches the disk or not.
    page: usize,
    /// The sector size of the simulated disk: the unit a write is never torn within.
    sector: usize,
    /// The directories as reads see them.
    dirs: BTreeSet<PathBuf>,
    /// The directories whose entry in their parent is durable.
    durable_dirs: BTreeSet<PathBuf>,
    /// Directories created since their parent's last `sync_dir`, by parent.
    pending_dirs: BTreeMap<PathBuf, Vec<PathBuf>>,
    /// The directory entries as reads see them.
    names: BTreeMap<PathBuf, u64>,
    /// The directory entries as of each directory's last `sync_dir`.
    durable_names: BTreeMap<PathBuf, u64>,
    /// Entry changes since the last `sync_dir`, by directory.
    pending_names: BTreeMap<PathBuf, Vec<EntryChange>>,
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    locks: BTreeSet<PathBuf>,
    calls: u64,
    mutations: u64,
    crash_at: Option<u64>,
    fault: Option<(u64, FaultKind)>,
    /// Calls failed by a scheduled fault so far.
    injected: u64,
    /// The first of them, described.
    first_fault: Option<String>,
    /// Set by a [`FaultKind::SyncLosesData`] fault, for the `sync` that fired it.
    sync_lost: bool,
    /// The files whose pending writes a failed `sync` lost, in order.
    lost_syncs: Vec<PathBuf>,
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss: the machine is off")
}

fn stale() -> io::Error {
    io::Error::other("handle opened before a simulated power loss")
}

fn parent(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("")).to_path_buf()
}

impl State {
    /// Every call starts here: counts it, fires a scheduled crash or fault.
    fn begin(
        &mut self,
        op: &str,
        path: &Path,
        mutating: bool,
        needs_space: bool,
    ) -> io::Result<()> {
        if self.down {
            return Err(power_lost());
        }
        self.calls += 1;
        if mutating {
            self.mutations += 1;
            if self.crash_at == Some(self.mutations) {
                self.crash();
                return Err(power_lost());
            }
        }
        match self.fault {
            Some((at, FaultKind::Once)) if self.calls == at => {
                self.fault = None;
                self.note_fault(op, path);
                Err(io::Error::other(format!("injected I/O error at call {at}")))
            }
            Some((at, FaultKind::SyncLosesData)) if op == "sync" && self.calls >= at => {
                self.fault = None;
                self.note_fault(op, path);
                self.sync_lost = true;
                self.lost_syncs.push(path.to_path_buf());
                Err(io::Error::other(format!(
                    "injected: fsync of {} failed, its pending writes are lost",
                    path.display()
                )))
            }
            Some((at, FaultKind::DiskFull)) if needs_space && self.calls >= at => {
                self.note_fault(op, path);
                Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "injected: no space left on device",
                ))
            }
            _ => Ok(()),
        }
    }

    fn note_fault(&mut self, op: &str, path: &Path) {
        self.injected += 1;
        if self.first_fault.is_none() {
            self.first_fault = Some(format!("{op} of {} (call {})", path.display(), self.calls));
        }
    }

    fn check_handle(&self, epoch: u64) -> io::Result<()> {
        if self.down {
            Err(power_lost())
        } else if epoch != self.epoch {
            Err(stale())
        } else {
            Ok(())
        }
    }

    fn change_entries(&mut self, dir: &Path, change: EntryChange) {
        for (path, inode) in &change {
            match inode {
                Some(id) => self.names.insert(path.clone(), *id),
                None => self.names.remove(path),
            };
        }
        self.pending_names
            .entry(dir.to_path_buf())
            .or_default()
            .push(change);
    }

    fn new_inode(&mut self) -> u64 {
        self.next_inode += 1;
        self.inodes.insert(self.next_inode, Inode::default());
        self.next_inode
    }

    /// How many of `n` pending changes survive: all, none, or a random number, a third of
    /// the time each.
    fn kept(&mut self, n: usize) -> usize {
        match self.rng.random_range(0..3) {
            0 => n,
            1 => 0,
            _ => self.rng.random_range(0..=n),
        }
    }

    /// The power loss: decides what reached the disk, throws the rest away.
    fn crash(&mut self) {
        let dirs = self.surviving_dirs();
        let mut names = self.durable_names.clone();
        for changes in std::mem::take(&mut self.pending_names).into_values() {
            let kept = self.kept(changes.len());
            for change in &changes[..kept] {
                for (path, inode) in change {
                    match inode {
                        Some(id) => names.insert(path.clone(), *id),
                        None => names.remove(path),
                    };
                }
            }
        }
        // A file in a directory whose own entry was lost is gone with it.
        names.retain(|path, _| dirs.contains(&parent(path)));
        let live: BTreeSet<u64> = names.values().copied().collect();
        let mut inodes = HashMap::new();
        for id in live {
            let inode = self.inodes.remove(&id).unwrap_or_default();
            let data = self.surviving_data(inode);
            inodes.insert(
                id,
                Inode {
                    current: data.clone(),
                    durable: data,
                    pending: Vec::new(),
                },
            );
        }
        self.inodes = inodes;
        self.names = names.clone();
        self.durable_names = names;
        self.dirs = dirs.clone();
        self.durable_dirs = dirs;
        self.locks.clear();
        self.epoch += 1;
        self.down = true;
    }

    /// The directories after a power loss: the durable ones, plus a random prefix of the
    /// creations pending in each parent, minus any whose parent (or its parent...) is gone.
    fn surviving_dirs(&mut self) -> BTreeSet<PathBuf> {
        let mut dirs = self.durable_dirs.clone();
        for created in std::mem::take(&mut self.pending_dirs).into_values() {
            let kept = self.kept(created.len());
            dirs.extend(created[..kept].iter().cloned());
        }
        let reachable = |dir: &PathBuf| {
            dir.ancestors()
                .skip(1)
                .take_while(|up| !is_top(up))
                .all(|up| dirs.contains(up))
        };
        dirs.iter().filter(|dir| reachable(dir)).cloned().collect()
    }

    /// The bytes of a file after a power loss: its synced bytes and some of its later writes,
    /// half the time in order, half the time page by page (see the module documentation).
    fn surviving_data(&mut self, inode: Inode) -> Vec<u8> {
        if inode.pending.is_empty() {
            inode.durable
        } else if self.rng.random_bool(0.5) {
            self.in_order(inode)
        } else {
            self.page_by_page(inode)
        }
    }

    /// In order: a prefix of the pending writes, the first one not kept maybe torn at a
    /// sector boundary, then maybe a length that reached the disk without its data.
    fn in_order(&mut self, inode: Inode) -> Vec<u8> {
        let mut target = inode.durable.clone();
        for op in &inode.pending {
            apply(&mut target, op);
        }
        let mut data = inode.durable;
        let kept = self.kept(inode.pending.len());
        for op in &inode.pending[..kept] {
            apply(&mut data, op);
        }
        if let Some(DataOp::Write { at, bytes }) = inode.pending.get(kept)
            && self.rng.random_bool(0.5)
            && let Some(cut) = self.sector_cut(*at, bytes.len())
        {
            let bytes = bytes[..cut].to_vec();
            apply(&mut data, &DataOp::Write { at: *at, bytes });
        }
        if kept < inode.pending.len() && data.len() < target.len() && self.rng.random_bool(0.25) {
            let len = self.rng.random_range(data.len() + 1..=target.len());
            self.stale_extension(&mut data, len);
        }
        data
    }

    /// Grows `data` to `len` with what the sectors held before: zeros, or (half the time)
    /// stale bytes of an earlier use of the sectors.
    fn stale_extension(&mut self, data: &mut Vec<u8>, len: usize) {
        if self.rng.random_bool(0.5) {
            data.resize(len, 0);
        } else {
            let n = len - data.len();
            data.extend((0..n).map(|_| self.rng.random::<u8>()));
        }
    }

    /// Where a write of `len` bytes at `at` may be torn: a random sector boundary strictly
    /// inside it, as a count of its bytes kept; `None` when it crosses no boundary.
    fn sector_cut(&mut self, at: u64, len: usize) -> Option<usize> {
        let sector = self.sector as u64;
        let first = at / sector + 1;
        let last = (at + len as u64).div_ceil(sector) - 1;
        (len > 0 && first <= last).then(|| {
            let boundary = self.rng.random_range(first..=last) * sector;
            (boundary - at) as usize
        })
    }

    /// Page by page: truncations and the writes before them in order (a prefix, as
    /// [`State::in_order`]); the writes after the last truncation dirty pages, each of which
    /// independently reaches the disk or not, maybe torn at a sector boundary; the length is
    /// anywhere between the old one and the new one.
    fn page_by_page(&mut self, inode: Inode) -> Vec<u8> {
        let split = inode
            .pending
            .iter()
            .rposition(|op| matches!(op, DataOp::Truncate(_)))
            .map_or(0, |i| i + 1);
        let (ordered, writes) = inode.pending.split_at(split);
        let mut base = inode.durable;
        let kept = self.kept(ordered.len());
        for op in &ordered[..kept] {
            apply(&mut base, op);
        }
        if kept < ordered.len() {
            return base;
        }
        let mut target = base.clone();
        let mut pages = BTreeSet::new();
        for op in writes {
            apply(&mut target, op);
            if let DataOp::Write { at, bytes } = op
                && !bytes.is_empty()
            {
                let at = *at as usize;
                pages.extend(at / self.page..=(at + bytes.len() - 1) / self.page);
            }
        }
        let len = if self.rng.random_bool(0.5) {
            target.len()
        } else {
            self.rng.random_range(base.len()..=target.len())
        };
        let keep = self.rng.random::<f64>();
        let mut data = base;
        data.resize(len, 0);
        for page in pages {
            let start = page * self.page;
            let mut end = ((page + 1) * self.page).min(len);
            if start >= end || !self.rng.random_bool(keep) {
                continue;
            }
            if self.sector < self.page && self.rng.random_ratio(1, 4) {
                let sectors = (end - start).div_ceil(self.sector);
                end = end.min(start + self.rng.random_range(0..sectors) * self.sector);
            }
            data[start..end].copy_from_slice(&target[start..end]);
        }
        data
    }
}

/// True for a path with no parent to hold its entry (`/`, or the empty path a relative path
/// starts from): such a directory is always there.
fn is_top(dir: &Path) -> bool {
    dir.parent().is_none_or(|up| up.as_os_str().is_empty())
}

/// Applies `op` to `data`; a write past the end first fills the gap with zeros.
fn apply(data: &mut Vec<u8>, op: &DataOp) {
    match op {
        DataOp::Write { at, bytes } => {
            let at = *at as usize;
            if data.len() < at + bytes.len() {
                data.resize(at + bytes.len(), 0);
            }
            data[at..at + bytes.len()].copy_from_slice(bytes);
        }
        DataOp::Truncate(len) => data.resize(*len as usize, 0),
    }
}

impl FaultFs {
    /// An empty disk. `seed` drives every random choice a crash or a short write makes.
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Small pages half the time: a short unsynced tail then spans several pages, so
        // the out-of-order case (a hole before surviving pages) comes up often.
        let (page, sector) = match rng.random_range(0..4) {
            0 | 1 => (512, 512),
            2 => (4096, 512),
            _ => (4096, 4096),
        };
        FaultFs {
            inner: Arc::new(Mutex::new(State {
                rng,
                epoch: 0,
                down: false,
                page,
                sector,
                dirs: BTreeSet::new(),
                durable_dirs: BTreeSet::new(),
                pending_dirs: BTreeMap::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                pending_names: BTreeMap::new(),
                inodes: HashMap::new(),
                next_inode: 0,
                locks: BTreeSet::new(),
                calls: 0,
                mutations: 0,
                crash_at: None,
                fault: None,
                injected: 0,
                first_fault: None,
                sync_lost: false,
                lost_syncs: Vec::new(),
            })),
        }
    }

    /// A disk holding exactly `image`, all of it durable.
    pub fn from_image(seed: u64, image: &FsImage) -> Self {
        let fs = FaultFs::new(seed);
        for (path, bytes) in image {
            fs.write_file(path, bytes);
        }
        fs
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in a test thread must not hide the disk from the checks that follow.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pulls the plug now: decides what survives (see the module documentation), and fails
    /// every call until [`FaultFs::restart`].
    pub fn crash(&self) {
        let mut st = self.state();
        if !st.down {
            st.crash();
        }
    }

    /// Powers the machine back on after a crash: calls work again, on what survived.
    /// Handles opened before the crash stay dead.
    pub fn restart(&self) {
        let mut st = self.state();
        st.down = false;
        st.crash_at = None;
    }

    /// True between a crash and [`FaultFs::restart`].
    pub fn is_down(&self) -> bool {
        self.state().down
    }

    /// Crashes just before the `k`-th mutating call from now (`k` starts at 1).
    pub fn crash_at_mutation(&self, k: u64) {
        let mut st = self.state();
        st.crash_at = Some(st.mutations + k);
    }

    /// Fails the `k`-th call from now (`k` starts at 1), as `kind` says.
    pub fn fail_at(&self, k: u64, kind: FaultKind) {
        let mut st = self.state();
        st.fault = Some((st.calls + k, kind));
    }

    /// Ends any scheduled or ongoing fault (the disk has room again).
    pub fn clear_faults(&self) {
        let mut st = self.state();
        st.fault = None;
        st.crash_at = None;
    }

    /// Calls of any kind made so far.
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// Calls failed by [`FaultFs::fail_at`] so far.
    pub fn injected_faults(&self) -> u64 {
        self.state().injected
    }

    /// The first call [`FaultFs::fail_at`] failed: which operation, on which path.
    pub fn first_fault(&self) -> Option<String> {
        self.state().first_fault.clone()
    }

    /// The files whose pending writes a [`FaultKind::SyncLosesData`] fault lost, in the
    /// order of the failed syncs.
    pub fn lost_syncs(&self) -> Vec<PathBuf> {
        self.state().lost_syncs.clone()
    }

    /// The page size this disk was given by its seed (512 or 4096 bytes): each page of
    /// unsynced data reaches the disk or not on its own.
    pub fn page_size(&self) -> usize {
        self.state().page
    }

    /// The sector size this disk was given by its seed (512 or 4096 bytes, at most the page
    /// size): a write is torn only at a multiple of it.
    pub fn sector_size(&self) -> usize {
        self.state().sector
    }

    /// Mutating calls made so far.
    pub fn mutations(&self) -> u64 {
        self.state().mutations
    }

    /// Every file's current bytes, by path.
    pub fn image(&self) -> FsImage {
        let st = self.state();
        st.names
            .iter()
            .map(|(path, id)| (path.clone(), st.inodes[id].current.clone()))
            .collect()
    }

    /// The current bytes of `path`, if it exists.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state();
        st.names.get(path).map(|id| st.inodes[id].current.clone())
    }

    /// Replaces (or creates) `path` with `bytes`, durably, as a test's hand on the disk
    /// would; creates its directory if needed. Not counted as a call.
    pub fn write_file(&self, path: &Path, bytes: &[u8]) {
        let mut st = self.state();
        let mut dir = parent(path);
        loop {
            st.dirs.insert(dir.clone());
            st.durable_dirs.insert(dir.clone());
            match dir.parent() {
                Some(up) if !up.as_os_str().is_empty() => dir = up.to_path_buf(),
                _ => break,
            }
        }
        let id = match st.names.get(path) {
            Some(&id) => id,
            None => st.new_inode(),
        };
        st.names.insert(path.to_path_buf(), id);
        st.durable_names.insert(path.to_path_buf(), id);
        st.inodes.insert(
            id,
            Inode {
                current: bytes.to_vec(),
                durable: bytes.to_vec(),
                pending: Vec::new(),
            },
        );
    }
}

/// An open file of a [`FaultFs`].
#[derive(Debug)]
struct FaultFile {
    fs: FaultFs,
    path: PathBuf,
    inode: u64,
    epoch: u64,
}

/// A lock held on a [`FaultFs`]; released on drop unless a crash released it first.
#[derive(Debug)]
struct FaultLock {
    fs: FaultFs,
    path: PathBuf,
    epoch: u64,
}

impl FileLock for FaultLock {}

impl Drop for FaultLock {
    fn drop(&mut self) {
        let mut st = self.fs.state();
        if st.epoch == self.epoch {
            st.locks.remove(&self.path);
        }
    }
}

impl FaultFs {
    fn handle(&self, path: &Path, inode: u64, epoch: u64) -> Arc<dyn File> {
        Arc::new(FaultFile {
            fs: self.clone(),
            path: path.to_path_buf(),
            inode,
            epoch,
        })
    }

    fn check_dir(st: &State, path: &Path) -> io::Result<()> {
        if st.dirs.contains(&parent(path)) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory {}", parent(path).display()),
            ))
        }
    }
}

impl FileSystem for FaultFs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let mut st = self.state();
        st.begin("create", path, true, true)?;
        Self::check_dir(&st, path)?;
        let id = match st.names.get(path) {
            // Creating over an existing file truncates that same file: a data change.
            Some(&id) => {
                let inode = st.inodes.get_mut(&id).expect("named inode exists");
                inode.current.clear();
                inode.pending.push(DataOp::Truncate(0));
                id
            }
            None => {
                let id = st.new_inode();
                st.change_entries(&parent(path), vec![(path.to_path_buf(), Some(id))]);
                id
            }
        };
        Ok(self.handle(path, id, st.epoch))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let mut st = self.state();
        st.begin("open", path, false, false)?;
        match st.names.get(path) {
            Some(&id) => Ok(self.handle(path, id, st.epoch)),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file {}", path.display()),
            )),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state();
        st.begin("rename", from, true, true)?;
        Self::check_dir(&st, to)?;
        let Some(&id) = st.names.get(from) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file {}", from.display()),
            ));
        };
        let (from_dir, to_dir) = (parent(from), parent(to));
        if from_dir == to_dir {
            st.change_entries(
                &from_dir,
                vec![(from.to_path_buf(), None), (to.to_path_buf(), Some(id))],
            );
        } else {
            st.change_entries(&to_dir, vec![(to.to_path_buf(), Some(id))]);
            st.change_entries(&from_dir, vec![(from.to_path_buf(), None)]);
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state();
        st.begin("remove", path, true, false)?;
        if !st.names.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file {}", path.display()),
            ));
        }
        st.change_entries(&parent(path), vec![(path.to_path_buf(), None)]);
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut st = self.state();
        st.begin("list", dir, false, false)?;
        if !st.dirs.contains(dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory {}", dir.display()),
            ));
        }
        Ok(st
            .names
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state();
        st.begin("create_dir_all", dir, true, true)?;
        let mut missing: Vec<&Path> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !st.dirs.contains(*d))
            .collect();
        missing.reverse();
        for created in missing {
            st.dirs.insert(created.to_path_buf());
            if is_top(created) {
                st.durable_dirs.insert(created.to_path_buf());
            } else {
                // Its entry in its parent is pending until the parent is synced.
                st.pending_dirs
                    .entry(parent(created))
                    .or_default()
                    .push(created.to_path_buf());
            }
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state();
        st.begin("sync_dir", dir, true, true)?;
        if !st.dirs.contains(dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory {}", dir.display()),
            ));
        }
        let created = st.pending_dirs.remove(dir).unwrap_or_default();
        st.durable_dirs.extend(created);
        for change in st.pending_names.remove(dir).unwrap_or_default() {
            for (path, inode) in change {
                match inode {
                    Some(id) => st.durable_names.insert(path, id),
                    None => st.durable_names.remove(&path),
                };
            }
        }
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.state();
        st.begin("lock", path, true, true)?;
        Self::check_dir(&st, path)?;
        if !st.locks.insert(path.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !st.names.contains_key(path) {
            let id = st.new_inode();
            st.change_entries(&parent(path), vec![(path.to_path_buf(), Some(id))]);
        }
        Ok(Box::new(FaultLock {
            fs: self.clone(),
            path: path.to_path_buf(),
            epoch: st.epoch,
        }))
    }
}

impl File for FaultFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.fs.state();
        st.check_handle(self.epoch)?;
        let short = match st.begin("append", &self.path, true, true) {
            Ok(()) => None,
            Err(e) if e.kind() == io::ErrorKind::StorageFull && !buf.is_empty() => {
                let n = st.rng.random_range(0..buf.len());
                Some((n, e))
            }
            Err(e) => return Err(e),
        };
        let written = short.as_ref().map_or(buf.len(), |(n, _)| *n);
        let inode = st.inodes.get_mut(&self.inode).expect("open inode exists");
        let at = inode.current.len() as u64;
        inode.current.extend_from_slice(&buf[..written]);
        inode.pending.push(DataOp::Write {
            at,
            bytes: buf[..written].to_vec(),
        });
        match short {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut st = self.fs.state();
        st.check_handle(self.epoch)?;
        st.begin("read_at", &self.path, false, false)?;
        let data = &st.inodes[&self.inode].current;
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= data.len() as u64 => {
                buf.copy_from_slice(&data[offset as usize..end as usize]);
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {offset} past the end ({})",
                    buf.len(),
                    data.len()
                ),
            )),
        }
    }

    fn len(&self) -> io::Result<u64> {
        let mut st = self.fs.state();
        st.check_handle(self.epoch)?;
        st.begin("len", &self.path, false, false)?;
        Ok(st.inodes[&self.inode].current.len() as u64)
    }

    fn sync(&self) -> io::Result<()> {
        let mut st = self.fs.state();
        st.check_handle(self.epoch)?;
        let begun = st.begin("sync", &self.path, true, true);
        if std::mem::take(&mut st.sync_lost) {
            // The kernel marked the pages clean without writing them: they are gone from
            // the disk's future, though reads still see them.
            let inode = st.inodes.get_mut(&self.inode).expect("open inode exists");
            inode.pending.clear();
        }
        begun?;
        let inode = st.inodes.get_mut(&self.inode).expect("open inode exists");
        // Only the writes since the last sync reach the disk: after a lost sync the disk
        // differs from what reads see, so the pending writes are replayed on the disk's bytes.
        let mut durable = std::mem::take(&mut inode.durable);
        for op in std::mem::take(&mut inode.pending) {
            apply(&mut durable, &op);
        }
        inode.durable = durable;
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let mut st = self.fs.state();
        st.check_handle(self.epoch)?;
        st.begin("truncate", &self.path, true, false)?;
        let inode = st.inodes.get_mut(&self.inode).expect("open inode exists");
        let op = DataOp::Truncate(len);
        apply(&mut inode.current, &op);
        inode.pending.push(op);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/disk/db")
    }

    /// A disk with the directory `/disk/db`, its entry and its parent's durable.
    fn setup(seed: u64) -> FaultFs {
        let fs = FaultFs::new(seed);
        fs.create_dir_all(&dir()).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.sync_dir(Path::new("/disk")).unwrap();
        fs
    }

    /// 24 KiB of bytes that are never zero and differ from page to page.
    fn pattern() -> Vec<u8> {
        (0..24 * 1024).map(|i| 1 + (i / 512 % 250) as u8).collect()
    }

    #[test]
    fn unsynced_pages_survive_out_of_order() {
        let (mut holes, mut in_order, mut sizes) = (0, 0, BTreeSet::new());
        for seed in 0..300 {
            let fs = setup(seed);
            sizes.insert((fs.page_size(), fs.sector_size()));
            let f = fs.create(&dir().join("log")).unwrap();
            fs.sync_dir(&dir()).unwrap();
            f.append(b"head").unwrap();
            f.sync().unwrap();
            let new = pattern();
            for chunk in new.chunks(1000) {
                f.append(chunk).unwrap();
            }
            fs.crash();
            fs.restart();
            let got = fs.read_file(&dir().join("log")).unwrap();
            assert!(got.starts_with(b"head") && got.len() <= 4 + new.len());
            let got = &got[4..];
            // A hole: a byte that did not reach the disk before one that did.
            let first_lost = got.iter().zip(&new).position(|(a, b)| a != b);
            match first_lost {
                Some(i) if got[i..].iter().zip(&new[i..]).any(|(a, b)| a == b) => holes += 1,
                _ => in_order += 1,
            }
        }
        assert!(
            holes > 60 && in_order > 60,
            "{holes} with holes, {in_order} in order"
        );
        assert_eq!(
            sizes.len(),
            3,
            "every page and sector size occurs: {sizes:?}"
        );
    }

    #[test]
    fn a_write_is_torn_only_at_a_sector_boundary() {
        let mut torn = 0;
        for seed in 0..300 {
            let fs = setup(seed);
            let sector = fs.sector_size();
            let f = fs.create(&dir().join("log")).unwrap();
            fs.sync_dir(&dir()).unwrap();
            f.append(&[0xab; 20_000]).unwrap();
            fs.crash();
            fs.restart();
            let got = fs.read_file(&dir().join("log")).unwrap();
            for (n, chunk) in got.chunks(sector).enumerate() {
                let new = chunk.iter().take_while(|&&b| b == 0xab).count();
                // Whole, or not at all (stale bytes may match by chance, not eight in a row).
                assert!(
                    new == chunk.len() || new < 8,
                    "seed {seed}: sector {n} of {sector} bytes holds {new} new bytes"
                );
                torn += usize::from(new == chunk.len() && got.len() < 20_000);
            }
        }
        assert!(torn > 0);
    }

    #[test]
    fn a_directory_entry_needs_its_parent_synced() {
        let (mut lost, mut kept) = (0, 0);
        for seed in 0..100 {
            let fs = FaultFs::new(seed);
            fs.create_dir_all(&dir()).unwrap();
            fs.sync_dir(Path::new("/")).unwrap();
            let f = fs.create(&dir().join("log")).unwrap();
            f.append(b"synced").unwrap();
            f.sync().unwrap();
            fs.sync_dir(&dir()).unwrap();
            fs.crash();
            fs.restart();
            match fs.list(&dir()) {
                Ok(names) => {
                    assert_eq!(names, ["log"]);
                    kept += 1;
                }
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::NotFound);
                    assert!(fs.read_file(&dir().join("log")).is_none());
                    lost += 1;
                }
            }
            // Once the parent is synced, the directory stays.
            fs.create_dir_all(&dir()).unwrap();
            fs.sync_dir(Path::new("/disk")).unwrap();
            fs.crash();
            fs.restart();
            assert!(fs.list(&dir()).is_ok(), "seed {seed}");
        }
        assert!(lost > 0 && kept > 0);
    }

    #[test]
    fn synced_data_and_entries_survive_every_crash() {
        for seed in 0..200 {
            let fs = setup(seed);
            let f = fs.create(&dir().join("log")).unwrap();
            f.append(b"durable").unwrap();
            f.sync().unwrap();
            fs.sync_dir(&dir()).unwrap();
            f.append(b"-pending").unwrap();
            fs.create(&dir().join("new")).unwrap();
            fs.crash();
            assert!(f.len().is_err(), "dead while down");
            fs.restart();
            assert!(f.len().is_err(), "old handles stay dead");
            let data = fs.read_file(&dir().join("log")).unwrap();
            assert!(data.starts_with(b"durable"), "seed {seed}: {data:?}");
            // What survives of the pending append is a prefix of it, then maybe garbage.
            let tail = &data[7..];
            let kept = tail
                .iter()
                .zip(b"-pending")
                .take_while(|(a, b)| a == b)
                .count();
            assert!(kept == 8 || tail.len() < 8 + 64, "seed {seed}: {data:?}");
        }
    }

    #[test]
    fn a_store_directory_survives_once_open_returns() {
        use kv_shared::fs::Fs;
        use kv_shared::store_dir::{MARKER_FILE, StoreDir};
        for seed in 0..100 {
            let disk = FaultFs::new(seed);
            let fs = Fs::new(Arc::new(disk.clone()));
            let store = StoreDir::open(&fs, &store_path(), "test", 1).unwrap();
            assert!(store.is_new());
            disk.crash();
            disk.restart();
            assert!(
                disk.read_file(&store_path().join(MARKER_FILE)).is_some(),
                "seed {seed}: {:?}",
                disk.image()
            );
        }
    }

    #[test]
    fn crashes_lose_pending_data_and_entries_sometimes() {
        let (mut lost_data, mut kept_data, mut torn, mut lost_file) = (0, 0, 0, 0);
        for seed in 0..300 {
            let fs = setup(seed);
            let f = fs.create(&dir().join("log")).unwrap();
            fs.sync_dir(&dir()).unwrap();
            f.append(b"0123456789").unwrap();
            let g = fs.create(&dir().join("other")).unwrap();
            g.append(b"x").unwrap();
            g.sync().unwrap();
            fs.crash();
            fs.restart();
            match fs.read_file(&dir().join("log")).unwrap().as_slice() {
                b"" => lost_data += 1,
                b"0123456789" => kept_data += 1,
                _ => torn += 1,
            }
            lost_file += usize::from(fs.read_file(&dir().join("other")).is_none());
        }
        assert!(lost_data > 0 && kept_data > 0 && torn > 0 && lost_file > 0);
    }

    #[test]
    fn a_rename_is_all_or_nothing() {
        for seed in 0..200 {
            let fs = setup(seed);
            let old = fs.create(&dir().join("MANIFEST")).unwrap();
            old.append(b"old").unwrap();
            old.sync().unwrap();
            fs.sync_dir(&dir()).unwrap();
            let tmp = fs.create(&dir().join("MANIFEST.tmp")).unwrap();
            tmp.append(b"new").unwrap();
            tmp.sync().unwrap();
            fs.rename(&dir().join("MANIFEST.tmp"), &dir().join("MANIFEST"))
                .unwrap();
            fs.crash();
            fs.restart();
            let got = fs.read_file(&dir().join("MANIFEST")).unwrap();
            assert!(got == b"old" || got == b"new", "seed {seed}: {got:?}");
        }
    }

    #[test]
    fn scheduled_crash_and_faults() {
        let fs = setup(1);
        fs.crash_at_mutation(3);
        let f = fs.create(&dir().join("a")).unwrap(); // 1
        f.append(b"one").unwrap(); // 2
        assert!(f.sync().is_err()); // 3: the power goes out
        assert!(fs.is_down() && fs.list(&dir()).is_err());
        fs.restart();
        assert!(fs.list(&dir()).is_ok());

        let fs = setup(2);
        let f = fs.create(&dir().join("a")).unwrap();
        fs.fail_at(2, FaultKind::Once);
        f.append(b"x").unwrap();
        assert!(f.append(b"y").is_err());
        f.append(b"z").unwrap();
        assert_eq!(fs.read_file(&dir().join("a")).unwrap(), b"xz");

        fs.fail_at(1, FaultKind::DiskFull);
        assert_eq!(
            f.append(b"0123456789").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert!(fs.create(&dir().join("b")).is_err());
        let mut buf = [0u8; 2];
        f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"xz");
        fs.clear_faults();
        f.append(b"!").unwrap();
        let data = fs.read_file(&dir().join("a")).unwrap();
        assert!(data.starts_with(b"xz") && data.ends_with(b"!") && data.len() < 13);
    }

    #[test]
    fn a_failed_sync_loses_its_writes_for_good() {
        for seed in 0..100 {
            let fs = setup(seed);
            let path = dir().join("log");
            let f = fs.create(&path).unwrap();
            fs.sync_dir(&dir()).unwrap();
            f.append(b"old-").unwrap();
            f.sync().unwrap();
            f.append(b"lost").unwrap();
            fs.fail_at(1, FaultKind::SyncLosesData);
            f.append(b"!").unwrap(); // not a sync: unaffected
            assert!(f.sync().is_err(), "the first sync fails");
            assert_eq!(fs.lost_syncs(), std::slice::from_ref(&path));
            assert!(
                fs.first_fault()
                    .unwrap()
                    .starts_with("sync of /disk/db/log")
            );
            let mut buf = [0u8; 9];
            f.read_at(&mut buf, 0).unwrap();
            assert_eq!(&buf, b"old-lost!", "reads still see the data");
            f.append(b"-new").unwrap();
            f.sync().unwrap(); // succeeds, but writes only "-new"
            fs.crash();
            fs.restart();
            let got = fs.read_file(&path).unwrap();
            assert_eq!(got, b"old-\0\0\0\0\0-new", "seed {seed}");
            assert_eq!(fs.injected_faults(), 1);
        }
    }

    #[test]
    fn locks_are_exclusive_and_die_with_the_machine() {
        let fs = setup(3);
        let lock = fs.lock(&dir().join("LOCK")).unwrap();
        assert_eq!(
            fs.lock(&dir().join("LOCK")).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        fs.crash();
        fs.restart();
        let again = fs.lock(&dir().join("LOCK")).unwrap();
        drop(lock); // an old lock's drop must not release the new one
        assert!(fs.lock(&dir().join("LOCK")).is_err());
        drop(again);
        assert!(fs.lock(&dir().join("LOCK")).is_ok());
    }
}

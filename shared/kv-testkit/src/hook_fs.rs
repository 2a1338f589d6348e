//! [`HookFs`]: the **real disk** (or any [`FileSystem`]) with a test's hand on every call.
//!
//! Each call an engine makes goes past a *hook*, a closure the test installs, which sees the
//! call ([`Call`]: which operation, on which path, how many bytes) and answers what happens
//! to it ([`Action`]): it goes through, it fails with nothing done, it fails after being
//! done, an append writes only its first bytes and fails, or the process "crashes" there.
//! Every call is also counted by kind, so a test can assert that a `get` makes exactly one
//! positioned read, or count the disk-changing calls of a compaction and then crash one run
//! after each of them.
//!
//! ```
//! use kv_testkit::hook_fs::{Action, HookFs, Op, on_path};
//!
//! let fs = HookFs::new();
//! // Every rename of a file ending in `.tmp` fails, nothing renamed.
//! fs.set_hook(on_path(Op::Rename, ".tmp", Action::Fail));
//! // Appends write half of their bytes and fail: a disk filling up.
//! fs.set_hook(|call| match call.op {
//!     Op::Append => Action::Cut(call.bytes / 2),
//!     _ => Action::Pass,
//! });
//! // The next 10 disk-changing calls go through; the process dies at the 11th.
//! fs.crash_after(10);
//! # assert_eq!(fs.mutations(), 0);
//! ```
//!
//! ## `HookFs` or `FaultFs`?
//!
//! Two tools, for two questions:
//!
//! * [`crate::FaultFs`] is a **simulated disk** in memory that remembers what was synced, so
//!   it can pull the plug: unsynced data and directory entries are lost, torn or turned to
//!   garbage, as a power loss leaves them. The power-loss, I/O-error, corruption and
//!   hostile-input suites run on it.
//! * `HookFs` is the **real disk**, where every byte written stays written, with failures
//!   injected at chosen calls. It answers "what does the engine do when *this* call fails"
//!   and "what does the directory look like if the process dies right *here*": a crash
//!   ([`Action::Crash`]) is a process kill, not a power loss. What was written before it
//!   stays on disk, and from then on every call that would change the disk fails without
//!   effect, so whatever the engine does to clean up never reaches it. The test then drops
//!   the engine and reopens the directory on the plain real file system.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, RwLock};

use kv_shared::file_system::{File, FileLock, FileSystem, RealFs};

/// The operations of [`FileSystem`] and [`File`], as a hook sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`FileSystem::create`].
    Create,
    /// [`FileSystem::open`].
    Open,
    /// [`FileSystem::rename`]: [`Call::path`] is the source, [`Call::to`] the target.
    Rename,
    /// [`FileSystem::remove`].
    Remove,
    /// [`FileSystem::list`].
    List,
    /// [`FileSystem::create_dir_all`].
    CreateDirAll,
    /// [`FileSystem::sync_dir`].
    SyncDir,
    /// [`FileSystem::lock`].
    Lock,
    /// [`File::append`]: [`Call::bytes`] is the length of the buffer.
    Append,
    /// [`File::read_at`]: [`Call::bytes`] is the length asked for.
    ReadAt,
    /// [`File::len`].
    Len,
    /// [`File::sync`].
    Sync,
    /// [`File::truncate`].
    Truncate,
}

impl Op {
    /// Every operation, in declaration order.
    pub const ALL: [Op; 13] = [
        Op::Create,
        Op::Open,
        Op::Rename,
        Op::Remove,
        Op::List,
        Op::CreateDirAll,
        Op::SyncDir,
        Op::Lock,
        Op::Append,
        Op::ReadAt,
        Op::Len,
        Op::Sync,
        Op::Truncate,
    ];

    /// True for the calls that change the disk (the same set [`crate::FaultFs`] counts as
    /// mutations): create, rename, remove, `create_dir_all`, `sync_dir`, lock, append, sync
    /// and truncate. After a crash these fail; the others go on.
    pub fn changes_disk(self) -> bool {
        !matches!(self, Op::Open | Op::List | Op::ReadAt | Op::Len)
    }
}

/// One call, shown to the hook before it happens.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Which operation.
    pub op: Op,
    /// The file or directory it is on (a rename's source).
    pub path: &'a Path,
    /// A rename's target; `None` for every other operation.
    pub to: Option<&'a Path>,
    /// The bytes an append writes or a read asks for; 0 for the others.
    pub bytes: usize,
}

impl Call<'_> {
    /// True when the call's path ends with `suffix` (compared as text).
    pub fn path_ends_with(&self, suffix: &str) -> bool {
        self.path.to_string_lossy().ends_with(suffix)
    }
}

/// What happens to a call: the hook's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The call goes through to the file system below.
    Pass,
    /// The call fails with an I/O error, and nothing is done.
    Fail,
    /// The call is done, then reports an I/O error anyway (a create that leaves its file
    /// behind, as one whose directory sync fails does).
    FailAfter,
    /// An append writes only its first `n` bytes (at most all of them), then fails: a short
    /// write, as on a full disk. Any other call fails with nothing done, as [`Action::Fail`].
    Cut(usize),
    /// The process dies here: this call and every later call that changes the disk fail
    /// with nothing done ([`HookFs::crashed`] turns true); calls that only read go on.
    Crash,
}

/// A hook: sees each call, says what happens to it.
pub type Hook = Arc<dyn Fn(&Call<'_>) -> Action + Send + Sync>;

/// The hook that answers `action` to every `op` call on a path ending in `suffix`, and lets
/// every other call through.
pub fn on_path(
    op: Op,
    suffix: impl Into<String>,
    action: Action,
) -> impl Fn(&Call<'_>) -> Action + Send + Sync + 'static {
    let suffix = suffix.into();
    move |call| {
        if call.op == op && call.path_ends_with(&suffix) {
            action
        } else {
            Action::Pass
        }
    }
}

/// A file system that shows every call to a hook before passing it to the file system below.
/// Cheap to clone; clones share the hook, the counts and the crash.
#[derive(Clone)]
pub struct HookFs {
    below: Arc<dyn FileSystem>,
    shared: Arc<Shared>,
}

struct Shared {
    hook: RwLock<Option<Hook>>,
    /// Calls by kind, indexed like [`Op::ALL`]; failed and crashed calls count too.
    counts: [AtomicU64; Op::ALL.len()],
    crashed: AtomicBool,
}

impl Default for HookFs {
    fn default() -> Self {
        HookFs::new()
    }
}

impl fmt::Debug for HookFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookFs")
            .field("below", &self.below)
            .field("mutations", &self.mutations())
            .field("crashed", &self.crashed())
            .finish_non_exhaustive()
    }
}

impl HookFs {
    /// The real file system ([`RealFs`]), with no hook yet: every call goes through.
    pub fn new() -> Self {
        HookFs::over(Arc::new(RealFs))
    }

    /// `below`, with no hook yet.
    pub fn over(below: Arc<dyn FileSystem>) -> Self {
        HookFs {
            below,
            shared: Arc::new(Shared {
                hook: RwLock::new(None),
                counts: std::array::from_fn(|_| AtomicU64::new(0)),
                crashed: AtomicBool::new(false),
            }),
        }
    }

    /// Installs `hook` in place of the one before.
    pub fn set_hook(&self, hook: impl Fn(&Call<'_>) -> Action + Send + Sync + 'static) {
        *self.shared.hook.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(hook));
    }

    /// Removes the hook: every call goes through again (unless the process crashed).
    pub fn clear_hook(&self) {
        *self.shared.hook.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Installs the hook of a process that dies after `n` more disk-changing calls: those go
    /// through, the next one is an [`Action::Crash`].
    pub fn crash_after(&self, n: u64) {
        let left = AtomicU64::new(n);
        self.set_hook(move |call| {
            if !call.op.changes_disk() {
                return Action::Pass;
            }
            match left.fetch_update(SeqCst, SeqCst, |l| l.checked_sub(1)) {
                Ok(_) => Action::Pass,
                Err(_) => Action::Crash,
            }
        });
    }

    /// True once a hook answered [`Action::Crash`].
    pub fn crashed(&self) -> bool {
        self.shared.crashed.load(SeqCst)
    }

    /// How many `op` calls were made so far (those that failed included).
    pub fn calls(&self, op: Op) -> u64 {
        self.shared.counts[op as usize].load(SeqCst)
    }

    /// How many disk-changing calls ([`Op::changes_disk`]) were made so far.
    pub fn mutations(&self) -> u64 {
        Op::ALL
            .iter()
            .filter(|op| op.changes_disk())
            .map(|&op| self.calls(op))
            .sum()
    }

    /// Counts `call`, asks the hook, and says whether to go on: `Ok(action)` with
    /// [`Action::Pass`], [`Action::FailAfter`] or [`Action::Cut`] for the caller to carry out,
    /// `Err` for a call that fails here with nothing done.
    fn before(&self, call: Call<'_>) -> io::Result<Action> {
        self.shared.counts[call.op as usize].fetch_add(1, SeqCst);
        if call.op.changes_disk() && self.crashed() {
            return Err(crashed());
        }
        let hook = self
            .shared
            .hook
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match hook.map_or(Action::Pass, |hook| hook(&call)) {
            Action::Fail => Err(injected(&call)),
            Action::Cut(_) if call.op != Op::Append => Err(injected(&call)),
            Action::Crash => {
                self.shared.crashed.store(true, SeqCst);
                Err(crashed())
            }
            action => Ok(action),
        }
    }

    /// Runs a call that has no bytes to cut: through the hook, then `run` on the file
    /// system below, then the failure of an [`Action::FailAfter`].
    fn run<T>(&self, call: Call<'_>, run: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let action = self.before(call)?;
        let result = run()?;
        match action {
            Action::FailAfter => Err(injected(&call)),
            _ => Ok(result),
        }
    }

    fn wrap(&self, path: &Path, file: Arc<dyn File>) -> Arc<dyn File> {
        Arc::new(HookFile {
            fs: self.clone(),
            path: path.to_path_buf(),
            below: file,
        })
    }
}

fn call(op: Op, path: &Path) -> Call<'_> {
    Call {
        op,
        path,
        to: None,
        bytes: 0,
    }
}

fn injected(call: &Call<'_>) -> io::Error {
    io::Error::other(format!(
        "injected failure of {:?} on {}",
        call.op,
        call.path.display()
    ))
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash: the process is gone")
}

impl FileSystem for HookFs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let file = self.run(call(Op::Create, path), || self.below.create(path))?;
        Ok(self.wrap(path, file))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let file = self.run(call(Op::Open, path), || self.below.open(path))?;
        Ok(self.wrap(path, file))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let call = Call {
            to: Some(to),
            ..call(Op::Rename, from)
        };
        self.run(call, || self.below.rename(from, to))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.run(call(Op::Remove, path), || self.below.remove(path))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.run(call(Op::List, dir), || self.below.list(dir))
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.run(call(Op::CreateDirAll, dir), || {
            self.below.create_dir_all(dir)
        })
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.run(call(Op::SyncDir, dir), || self.below.sync_dir(dir))
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.run(call(Op::Lock, path), || self.below.lock(path))
    }
}

/// A file opened through a [`HookFs`].
#[derive(Debug)]
struct HookFile {
    fs: HookFs,
    path: PathBuf,
    below: Arc<dyn File>,
}

impl File for HookFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        let call = Call {
            bytes: buf.len(),
            ..call(Op::Append, &self.path)
        };
        match self.fs.before(call)? {
            Action::Cut(n) => {
                self.below.append(&buf[..n.min(buf.len())])?;
                Err(injected(&call))
            }
            Action::FailAfter => {
                self.below.append(buf)?;
                Err(injected(&call))
            }
            _ => self.below.append(buf),
        }
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let call = Call {
            bytes: buf.len(),
            ..call(Op::ReadAt, &self.path)
        };
        self.fs.run(call, || self.below.read_at(buf, offset))
    }
    fn len(&self) -> io::Result<u64> {
        self.fs.run(call(Op::Len, &self.path), || self.below.len())
    }
    fn sync(&self) -> io::Result<()> {
        self.fs
            .run(call(Op::Sync, &self.path), || self.below.sync())
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.fs
            .run(call(Op::Truncate, &self.path), || self.below.truncate(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary directory, and a `HookFs` over the real disk.
    fn setup() -> (tempfile::TempDir, HookFs) {
        (tempfile::tempdir().unwrap(), HookFs::new())
    }

    #[test]
    fn calls_are_counted_failed_and_cut() {
        let (tmp, fs) = setup();
        let f = fs.create(&tmp.path().join("log")).unwrap();
        f.append(b"0123").unwrap();
        fs.set_hook(|call| match call.op {
            Op::Append => Action::Cut(call.bytes / 2),
            Op::Sync => Action::Fail,
            _ => Action::Pass,
        });
        assert!(f.append(b"abcdef").is_err());
        assert!(f.sync().is_err());
        let mut buf = [0u8; 7];
        f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"0123abc", "half of the cut append was written");
        fs.clear_hook();
        f.sync().unwrap();
        assert_eq!(
            (
                fs.calls(Op::Append),
                fs.calls(Op::Sync),
                fs.calls(Op::ReadAt)
            ),
            (2, 2, 1)
        );
        assert_eq!(fs.mutations(), 5, "a create, two appends, two syncs");
    }

    #[test]
    fn a_failure_after_the_call_leaves_its_effect() {
        let (tmp, fs) = setup();
        fs.set_hook(on_path(Op::Create, ".wal", Action::FailAfter));
        assert!(fs.create(&tmp.path().join("1.wal")).is_err());
        assert!(tmp.path().join("1.wal").exists(), "the file was created");
        fs.set_hook(on_path(Op::Create, ".wal", Action::Fail));
        assert!(fs.create(&tmp.path().join("2.wal")).is_err());
        assert!(!tmp.path().join("2.wal").exists());
        fs.create(&tmp.path().join("3.sst")).unwrap();
    }

    #[test]
    fn a_crash_stops_every_later_change_but_not_reads() {
        let (tmp, fs) = setup();
        fs.crash_after(2);
        let f = fs.create(&tmp.path().join("a")).unwrap(); // 1
        f.append(b"kept").unwrap(); // 2
        assert!(!fs.crashed());
        assert!(f.append(b"lost").is_err()); // 3: the crash
        assert!(fs.crashed());
        fs.clear_hook();
        assert!(f.sync().is_err() && fs.remove(&tmp.path().join("a")).is_err());
        assert_eq!(f.len().unwrap(), 4, "reads go on");
        assert_eq!(std::fs::read(tmp.path().join("a")).unwrap(), b"kept");
    }
}

//! Syncing the WAL in the background, a slice at a time (RocksDB's `wal_bytes_per_sync`).
//!
//! When the active memtable is full, the writer freezes it, and the freeze first syncs the
//! memtable's WAL: that is what lets recovery treat damage in any WAL but the newest as
//! corruption rather than a torn write (see `LsmTree::freeze` in [`crate::engine`]). But a
//! WAL of a 32 MiB memtable holds some 30 MB that the process handed to the OS and never
//! synced, and the one `fdatasync` that writes them all out takes tens of milliseconds,
//! during which every writer waits. Measured on this course's machine (`kvbench
//! --workloads fillbatch,fillseq,fillrandom --num 1000000`, two runs each): with no sync
//! at the switch at all (an experiment, not a safe engine) `fillbatch` ran at 1.66M pairs
//! per second instead of 1.19M, `fillseq` at 620k puts per second instead of 530k and
//! `fillrandom` at 430k instead of 333k; with the syncer below, which keeps the sync,
//! about 1.4M, 600k and 420k.
//!
//! So a background thread (`lsm-wal-sync`) keeps the active WAL nearly synced: each time
//! the writer has appended another `wal_bytes_per_sync` bytes (1 MiB by default), it asks
//! the thread to sync the WAL, and goes on writing while the disk works. When the freeze
//! comes, at most about `wal_bytes_per_sync` bytes are left to sync, and the freeze's own
//! sync is short. Nothing about durability changes: an acknowledged write still survives a
//! kill of the process (it was handed to the OS before the write returned), `sync` and
//! `sync_writes` still sync in the writer's path, and a background sync only makes writes
//! durable earlier than promised. A failed background sync is final, as every failed
//! fsync is: the WAL refuses later appends and the engine stops taking writes until it is
//! reopened.
//!
//! A tree opened with a WAL barrier ([`crate::barrier`]) runs it before each of these
//! syncs, in this thread, as it does before every other WAL sync. The thread holds no lock
//! meanwhile, so the fsync can also cover records appended after the barrier returned:
//! [`crate::barrier`] says why that asks nothing more of the owner than the operating
//! system's own write-back already does.
//!
//! ## The next WAL, made ahead
//!
//! A freeze also starts a new WAL, and creating one is two more syncs (the file with its
//! header, then the directory, so that the file survives a power loss before any record
//! goes in): some 3 to 6 ms on this course's machine, paid by the writer with every other
//! writer queued behind it, six times in a million 116-byte puts. So after each freeze the
//! writer asks this thread to **prepare the next WAL**: create it, header synced and
//! directory synced, and leave it in the engine's slot for the next freeze to take
//! (`NextWal` in [`crate::engine`]). Its file number is taken by the freeze itself, before
//! the flush it starts numbers a table, so that a store's file numbers follow the writes,
//! not the threads' timing. Until a freeze takes it, it is an
//! empty WAL with the highest number, which recovery already accepts: only the last WAL
//! *written* (the newest with a record) may end torn, and an empty one after it holds
//! nothing to replay. If the creation fails, the number is kept and the freeze creates the
//! WAL itself under that same number, reporting the error if it fails again.
//!
//! The writer asks without waiting: the request names the WAL (an `Arc`, so the thread can
//! sync it while the writer moves on to a new one after a freeze), and a request made while
//! the thread is busy replaces the one before it (one sync covers every byte appended
//! before it starts).

use std::sync::{Arc, Condvar, Mutex};

use kv_shared::Result;

use crate::lock::{lock, wait};
use crate::wal::Wal;

/// The background WAL syncer's mailbox (see the module documentation).
#[derive(Debug, Default)]
pub struct WalSyncer {
    state: Mutex<Request>,
    wake: Condvar,
}

/// What the syncer thread is asked to do next.
#[derive(Debug, Default)]
struct Request {
    /// The WAL to sync, when a sync is wanted.
    wal: Option<Arc<Wal>>,
    /// Set when the writer wants the next WAL made ahead of its next freeze.
    prepare: bool,
    /// Set once, when the engine shuts down.
    stop: bool,
}

impl WalSyncer {
    /// Asks the syncer thread to sync `wal` (replacing any request not yet taken). Returns
    /// at once.
    pub fn request(&self, wal: &Arc<Wal>) {
        lock(&self.state).wal = Some(wal.clone());
        self.wake.notify_one();
    }

    /// Asks the syncer thread to prepare the next WAL (see the module documentation).
    /// Returns at once.
    pub fn request_next_wal(&self) {
        lock(&self.state).prepare = true;
        self.wake.notify_one();
    }

    /// Tells the syncer thread to finish: it returns once it has no request left.
    pub fn stop(&self) {
        lock(&self.state).stop = true;
        self.wake.notify_one();
    }

    /// The syncer thread's body: syncs each requested WAL with `sync` (the engine's runs the
    /// owner's WAL barrier, then the fsync) and answers each request for the next WAL with
    /// `prepare`, until [`WalSyncer::stop`].
    ///
    /// # Errors
    /// The first failed sync (the WAL has then failed, or the barrier did: the engine stops
    /// taking writes).
    pub fn run(&self, sync: impl Fn(&Wal) -> Result<()>, prepare: impl Fn()) -> Result<()> {
        loop {
            let (wal, next) = {
                let mut st = lock(&self.state);
                loop {
                    if st.wal.is_some() || st.prepare {
                        break (st.wal.take(), std::mem::take(&mut st.prepare));
                    }
                    if st.stop {
                        return Ok(());
                    }
                    st = wait(&self.wake, st);
                }
            };
            if let Some(wal) = wal {
                sync(&wal)?;
            }
            if next {
                prepare();
            }
        }
    }
}

/// When the writer asks for the next background sync: the WAL size at which the next
/// request is due, moved on by `bytes_per_sync` at each request (0: never).
#[derive(Debug, Clone, Copy)]
pub struct SyncMark {
    next_at: u64,
    bytes_per_sync: u64,
}

impl SyncMark {
    /// The mark for a new WAL of `size` bytes (its header).
    pub fn new(size: u64, bytes_per_sync: u64) -> SyncMark {
        SyncMark {
            next_at: size.saturating_add(bytes_per_sync),
            bytes_per_sync,
        }
    }

    /// True (and the mark moved on) when a WAL now `size` bytes long is due for a
    /// background sync.
    pub fn due(&mut self, size: u64) -> bool {
        if self.bytes_per_sync == 0 || size < self.next_at {
            return false;
        }
        self.next_at = size.saturating_add(self.bytes_per_sync);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_fires_once_per_slice_and_never_when_off() {
        let mut m = SyncMark::new(20, 100);
        assert!(!m.due(50));
        assert!(m.due(120));
        assert!(!m.due(150), "the next slice starts at 120");
        assert!(m.due(400));
        assert!(!m.due(450));
        let mut off = SyncMark::new(20, 0);
        assert!(!off.due(u64::MAX));
    }
}

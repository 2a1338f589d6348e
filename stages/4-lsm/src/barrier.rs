//! The WAL barrier: a call the tree's owner hands it, run before every sync of the WAL.
//!
//! ## Why
//!
//! Stage 5 (key-value separation, as in WiscKey) keeps the values in a log of its own and
//! stores in this tree only each key and a pointer into that log. A pointer is useful only
//! if the bytes it points at are on the disk. Should a tree entry reach the disk before
//! them, a power loss could leave the tree pointing at bytes that were never written. So
//! the owner of the tree opens it with [`LsmTree::open_with_barrier`](crate::LsmTree) and a
//! [`WalBarrier`]: a closure that makes the owner's own log durable (its `fsync`), which
//! the tree calls **before each sync of its WAL**. When the WAL sync returns, every entry
//! it made durable points at bytes that were made durable before it.
//!
//! ## Where it runs
//!
//! * a write group with `sync_writes=true` ([`crate::group_commit`]), before its fsync;
//! * `sync` (and `close`, which ends with one), before the WAL's fsync;
//! * a memtable freeze (a full memtable, `flush`, a bulk load's flushes), before the fsync
//!   that seals the old WAL;
//! * the background syncer ([`crate::wal_syncer`]), before each of its fsyncs;
//! * at open, once, before recovery (see below);
//! * before a bulk load's commit ([`crate::ingest`]), whose tables join the tree without
//!   going through the WAL.
//!
//! The other syncs need none: a new WAL's sync in `Wal::create` covers a header and no
//! entry; a flushed or compacted table's sync, and the manifest's, cover entries that a
//! WAL sync covered first; a bulk load's tables are synced before its barrier, but they
//! are not part of the tree until the manifest edit after it.
//!
//! ## Why tables are covered too
//!
//! An entry reaches a table in one of three ways. A **flush** writes a frozen memtable,
//! and a memtable is frozen only after its WAL, which holds every one of its entries, was
//! synced, the barrier first: by the time the table is written, the barrier has run after
//! every entry in it was accepted. A **compaction** only rewrites entries already in
//! tables. A **bulk load** commits its tables with one manifest edit, and the barrier runs
//! just before that edit. So no table ever holds an entry whose bytes the owner has not
//! made durable.
//!
//! ## At open
//!
//! Recovery replays the WALs the last process left and writes their entries into new L0
//! tables (syncing the last WAL too): entries become durable at open. The owner wrote their
//! values before the tree took them, so they are in its log, but perhaps only in the
//! operating system's cache (the process was killed, the machine was not). The tree
//! therefore calls the barrier once before recovery. The owner must open its log before the
//! tree, which it does anyway, since the barrier needs the log.
//!
//! ## What the barrier cannot promise
//!
//! A WAL record is handed to the operating system when it is appended, and the operating
//! system may write it to the disk at any moment, before any sync. The background syncer
//! also runs without the writer lock (so that writers need not wait for its fsync): a
//! record appended after its barrier returned and before its fsync ran is made durable by
//! that fsync. Both cases concern only the newest WAL, past its last sync made under the
//! writer lock. After a power loss, records there may have survived while the value bytes
//! they point at did not: the owner's recovery must expect that of the newest writes. The
//! syncs under the writer lock (`sync_writes`, `sync`, the freeze) have no such gap: no
//! write can be appended between their barrier and their fsync.
//!
//! ## The barrier's rules
//!
//! * It runs on a writer's thread **with the tree's writer lock held** (except in the
//!   syncer thread and at open). It must not call into the tree, nor wait for anything a
//!   thread blocked on a tree write may hold: either would deadlock.
//! * The syncer thread and a writer may call it at the same time.
//! * It may be called until `close` returns or the tree is dropped.
//!
//! ## When it fails
//!
//! A barrier that returns an error fails that WAL sync, as a failed fsync would: the write,
//! `sync` or `flush` that needed it returns the error, the WAL is not synced, and the
//! failure is final. It becomes the tree's background error (the job named [`TASK`], or
//! `"wal-sync"` in the syncer thread), so every later write fails with
//! [`kv_shared::Error::Background`] until the store is reopened; reads keep working (see
//! [`crate::engine`]).
//!
//! ## Cost
//!
//! A tree opened without a barrier (`Engine::open`) pays one test of an `Option` per WAL
//! sync, and nothing per write.

use std::sync::Arc;

/// A call run before every sync of the tree's WAL (see the module documentation): the
/// owner makes its own log durable there, and an error fails the sync.
pub type WalBarrier = Arc<dyn Fn() -> kv_shared::Result<()> + Send + Sync>;

/// The job a failed barrier is recorded as, in [`kv_shared::Error::Background`].
pub const TASK: &str = "wal-barrier";

/// Runs `barrier`, if there is one.
///
/// # Errors
/// Whatever the barrier returns.
pub fn run(barrier: Option<&WalBarrier>) -> kv_shared::Result<()> {
    barrier.map_or(Ok(()), |barrier| barrier())
}

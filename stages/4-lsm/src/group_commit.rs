//! Group commit: concurrent writers share one WAL record, one `write` call and, with
//! `sync_writes`, one fsync.
//!
//! With one lock around "append to the WAL, insert into the memtable", writers take turns,
//! and each pays for its own system call (and its own fsync, when writes are synced) while
//! the others wait. LevelDB's writer queue (`DBImpl::Write`) turns the waiting into
//! sharing, and [`WriteQueue`] does the same:
//!
//! 1. A writer **joins the open group**: under a short lock it copies its batch's encoded
//!    ops onto the end of the group's record. (Once the record holds [`GROUP_BYTES`], later
//!    writers wait for the next group, so a group, and the latency of its first writer,
//!    stays bounded.)
//! 2. If no **leader** is writing, it becomes the leader: it takes the open group, leaving
//!    a new, empty one for the writers that arrive meanwhile, and, without the lock, writes
//!    the whole group with the caller's `write` function: one record, so one `write` call.
//! 3. Otherwise it waits: it yields to the leader for up to `SPIN` (an unsynced write
//!    takes microseconds, less than falling asleep and being woken), then sleeps. A leader
//!    that finishes sets its group's outcome, which wakes the group's writers with that
//!    result (an error reaches every one of them), and gives up the lead; one of the
//!    writers that gathered in the open group meanwhile leads next.
//!
//! A writer returns only once its group's `write` returned, so the durability contract
//! holds for every writer of the group as it does for a single one. The slower the write
//! (an fsync), the more writers gather behind it and the more of them share the next one.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use kv_shared::{Error, Result, WriteBatch};

use crate::lock::{lock, wait};
use crate::wal;

/// Once the open group's record holds this many bytes, new writers wait for the next group
/// (a writer alone in a group may exceed it with its own batch).
pub const GROUP_BYTES: usize = 1 << 20;

/// How long a writer waiting for its group yields to the leader before it sleeps.
const SPIN: Duration = Duration::from_micros(20);

/// What a group's writers learn when it is written: nothing, or a copy of the error.
type Outcome = Arc<OnceLock<Option<Error>>>;

/// The queue of writers (see the module documentation).
#[derive(Debug)]
pub struct WriteQueue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

#[derive(Debug)]
struct QueueState {
    /// The group new writers join.
    open: Group,
    /// True while a leader writes a group.
    leading: bool,
    /// Threads asleep on `wake` (no need to wake anyone when it is 0).
    sleeping: usize,
    /// Of them, writers waiting for room in the open group (the byte cap).
    held_back: usize,
    /// The record buffer of an earlier group, reused.
    spare: Vec<u8>,
}

/// The writes gathered for one record.
#[derive(Debug, Default)]
pub struct Group {
    /// The record: [`wal::RECORD_RESERVE`] bytes reserved for the frame and batch headers
    /// (filled in by the leader), then every writer's ops, so the leader hands the buffer
    /// to the WAL as it is ([`sstable::wal::Wal::append_framed`]), without a copy.
    pub record: Vec<u8>,
    /// Ops in the record.
    pub ops: u64,
    /// Writers whose batches are in the record.
    pub writers: u64,
    outcome: Outcome,
}

impl Group {
    fn new(mut buffer: Vec<u8>) -> Group {
        buffer.clear();
        buffer.resize(wal::RECORD_RESERVE, 0);
        Group {
            record: buffer,
            ..Group::default()
        }
    }
}

impl Default for WriteQueue {
    fn default() -> WriteQueue {
        WriteQueue::new()
    }
}

impl WriteQueue {
    /// An empty queue.
    pub fn new() -> WriteQueue {
        WriteQueue {
            state: Mutex::new(QueueState {
                open: Group::new(Vec::new()),
                leading: false,
                sleeping: 0,
                held_back: 0,
                spare: Vec::new(),
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        lock(&self.state)
    }

    fn sleep<'a>(&self, mut q: MutexGuard<'a, QueueState>) -> MutexGuard<'a, QueueState> {
        q.sleeping += 1;
        let mut q = wait(&self.wake, q);
        q.sleeping -= 1;
        q
    }

    fn wake_all(&self, q: MutexGuard<'_, QueueState>) {
        let anyone = q.sleeping > 0;
        drop(q);
        if anyone {
            self.wake.notify_all();
        }
    }

    /// Commits `batch` (not empty) as part of a group, and returns once its group is
    /// written. The writer that leads the group calls `write` with it.
    ///
    /// # Errors
    /// Whatever `write` returned for the group.
    pub fn commit(
        &self,
        batch: &WriteBatch,
        write: impl FnOnce(&mut Group) -> Result<()>,
    ) -> Result<()> {
        let mut q = self.lock();
        while q.open.writers > 0 && q.open.record.len() + batch.encoded_ops().len() > GROUP_BYTES {
            q = self.sleep(q);
        }
        q.open.record.extend_from_slice(batch.encoded_ops());
        q.open.ops += u64::from(batch.count());
        q.open.writers += 1;
        let outcome = q.open.outcome.clone();
        // A group is taken only by a leader, which sets its outcome before it gives up the
        // lead: with no leader and no outcome, this writer's group is still the open one.
        // An unsynced write takes microseconds, less than a sleep and a wake-up cost: first
        // yield to the leader for a moment, and sleep only if it takes longer (an fsync).
        // Read the clock only when there is a leader to wait for: a lone writer never does.
        let mut spin_until = None;
        loop {
            if let Some(result) = outcome.get() {
                return result.as_ref().map_or(Ok(()), |e| Err(copy_error(e)));
            }
            if !q.leading {
                break;
            }
            let now = Instant::now();
            if now < *spin_until.get_or_insert(now + SPIN) {
                drop(q);
                std::thread::yield_now();
                q = self.lock();
            } else {
                q = self.sleep(q);
            }
        }
        q.leading = true;
        let spare = std::mem::take(&mut q.spare);
        let mut group = std::mem::replace(&mut q.open, Group::new(spare));
        // Writers held back by the byte cap may join the new open group now. (The writers
        // already in it have nothing to do until this group is written: not woken.)
        if q.held_back > 0 {
            self.wake_all(q);
        } else {
            drop(q);
        }

        let result = write(&mut group);
        let _ = group.outcome.set(result.as_ref().err().map(copy_error));

        let mut q = self.lock();
        q.leading = false;
        if group.record.capacity() <= 2 * GROUP_BYTES {
            q.spare = group.record;
        }
        self.wake_all(q);
        result
    }
}

/// A copy of `e` for another writer of the group (errors are not `Clone`: an I/O error's
/// source is rebuilt from its kind and message).
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Io { path, source } => Error::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::Corruption {
            file,
            offset,
            detail,
        } => Error::Corruption {
            file: file.clone(),
            offset: *offset,
            detail: detail.clone(),
        },
        Error::InvalidArgument(message) => Error::InvalidArgument(message.clone()),
        Error::Background { task, detail } => Error::background(task, detail.clone()),
        other => Error::InvalidArgument(format!("the write group failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn a_lone_writer_leads_its_own_group() {
        let q = WriteQueue::new();
        let mut b = WriteBatch::new();
        b.put(b"k", b"v").unwrap();
        let mut seen = None;
        q.commit(&b, |g| {
            seen = Some((g.record.len(), g.ops, g.writers));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            Some((wal::RECORD_RESERVE + b.encoded_ops().len(), 1, 1))
        );
        let failed = q.commit(&b, |_| Err(Error::InvalidArgument("no".into())));
        assert!(matches!(failed, Err(Error::InvalidArgument(m)) if m == "no"));
    }

    /// Writers that arrive while a leader writes gather in the next group, all of them
    /// get its result, and every op is written exactly once.
    #[test]
    fn writers_behind_a_leader_share_the_next_group() {
        let q = WriteQueue::new();
        let writers = 4;
        let started = Barrier::new(2);
        let groups = Mutex::new(Vec::new());
        let mut first = WriteBatch::new();
        first.put(b"first", b"").unwrap();
        std::thread::scope(|s| {
            // The first leader holds its group until every other writer has joined the
            // open one (it sees them in the queue), then releases them.
            let leader = s.spawn(|| {
                q.commit(&first, |g| {
                    started.wait();
                    while q.lock().open.writers < writers as u64 {
                        std::thread::yield_now();
                    }
                    groups.lock().unwrap().push(g.writers);
                    Ok(())
                })
            });
            started.wait();
            let followers: Vec<_> = (0..writers)
                .map(|i| {
                    let (q, groups) = (&q, &groups);
                    s.spawn(move || {
                        let mut b = WriteBatch::new();
                        b.put(format!("k{i}").as_bytes(), b"v").unwrap();
                        q.commit(&b, |g| {
                            groups.lock().unwrap().push(g.writers);
                            Err(Error::InvalidArgument("disk on fire".into()))
                        })
                    })
                })
                .collect();
            leader.join().unwrap().unwrap();
            for f in followers {
                let result = f.join().unwrap();
                assert!(
                    matches!(&result, Err(Error::InvalidArgument(m)) if m == "disk on fire"),
                    "{result:?}"
                );
            }
        });
        assert_eq!(groups.into_inner().unwrap(), vec![1, writers as u64]);
    }
}

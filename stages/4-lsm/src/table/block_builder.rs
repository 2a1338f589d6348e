//! Building one block entry by entry: prefix compression and restart points (the format is
//! in [`crate::table::block`]).
//!
//! Each key is stored as the number of bytes it shares with the previous key and the bytes
//! that differ. Every `restart_interval` entries the builder starts a **restart point**: an
//! entry that shares nothing, whose offset goes into the restart array, so a reader can
//! binary-search the restart points and decode at most one interval. A larger interval
//! shares more (smaller blocks), a smaller one scans less (faster lookups); 1 turns prefix
//! compression off, which the index block uses.

use kv_shared::framing::put_varint;

use crate::table::block;
use crate::table::compression::Compression;

/// Builds one block (in internal-key order).
#[derive(Debug)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    /// Entries since the last restart point.
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    /// An empty block with a restart point every `restart_interval` entries (at least 1).
    pub fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            restart_interval: restart_interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry: a user key, its trailer (`seq << 8 | kind`) and its value. Entries
    /// must come in internal-key order ([`crate::table::table_builder::TableBuilder`] checks that).
    pub fn add(&mut self, key: &[u8], trailer: u64, value: &[u8]) {
        let shared = if self.since_restart == self.restart_interval {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(&trailer.to_le_bytes());
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(&key[shared..]);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// The block's size on disk if finished now without compression.
    pub fn size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4 + block::TRAILER_LEN
    }

    /// True when no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Entries added so far.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The block's contents (entries, restart array and its length), without a trailer.
    /// The builder is empty again afterwards.
    pub fn finish_contents(&mut self) -> Vec<u8> {
        // The next block starts with this one's capacity: it grows to about the same size,
        // and growing a buffer from nothing reallocates it about ten times per block.
        let capacity = self.buf.capacity();
        let mut out = std::mem::replace(&mut self.buf, Vec::with_capacity(capacity));
        for restart in &self.restarts {
            out.extend_from_slice(&restart.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts.clear();
        self.restarts.push(0);
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
        out
    }

    /// The finished block as stored on disk: contents, compressed with `compression` when
    /// that saves enough, and the block trailer ([`block::encode`]). The builder is empty
    /// again afterwards.
    pub fn finish(&mut self, compression: Compression) -> Vec<u8> {
        block::encode(self.finish_contents(), compression)
    }
}

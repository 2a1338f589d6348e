//! Building one data block (its format is in [`crate::block`]).
//!
//! The builder appends entries to a buffer that already holds room for the frame header;
//! [`BlockBuilder::finish`] fills the header in and hands back the framed bytes, ready for
//! one append to the table file, together with the block's first key for the index.

use crate::block::{ENTRY_HEADER_LEN, encode_entry};
use crate::frame;

/// Accumulates the entries of one data block.
#[derive(Debug, Default)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    first_key: Option<Vec<u8>>,
    entries: u64,
}

impl BlockBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    // Exercise 3.2: add an entry to a block. Read: chapter 3, "The table (`NNNNNN.sst`)".
    // Tests: snapshots::table_dump, standalone::lines_in_any_order_sorted_last_value_wins
    /// Adds an entry (`None` is a tombstone). Keys must come in strictly increasing order;
    /// [`crate::table_builder::TableBuilder`] checks that.
    pub fn add(&mut self, key: &[u8], value: Option<&[u8]>) {
        if self.first_key.is_none() {
            self.buf.clear();
            frame::begin(&mut self.buf);
            self.first_key = Some(key.to_vec());
        }
        encode_entry(&mut self.buf, key, value);
        self.entries += 1;
    }

    /// Bytes the block's body holds so far.
    pub fn body_len(&self) -> usize {
        self.buf.len().saturating_sub(frame::FRAME_HEADER_LEN)
    }

    /// Body bytes one more entry would add.
    pub fn entry_len(key: &[u8], value: Option<&[u8]>) -> usize {
        ENTRY_HEADER_LEN + key.len() + value.map_or(0, <[u8]>::len)
    }

    /// True when no entry has been added since the last [`BlockBuilder::finish`].
    pub fn is_empty(&self) -> bool {
        self.first_key.is_none()
    }

    /// Entries added since the last [`BlockBuilder::finish`].
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The framed block and its first key, or `None` when empty. The builder is then empty
    /// again, ready for the next block.
    pub fn finish(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let first_key = self.first_key.take()?;
        frame::seal(&mut self.buf, 0);
        self.entries = 0;
        Some((std::mem::take(&mut self.buf), first_key))
    }
}

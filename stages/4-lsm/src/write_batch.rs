//! [`WriteBatch`]: several puts and deletes applied atomically by
//! [`crate::LsmTree::write_batch`].
//!
//! A batch becomes **one** WAL record ([`crate::wal_payload`]) whose ops take consecutive
//! sequence numbers, and readers are shown its last sequence number only once every op is
//! in the memtable. So a reader sees all of a batch or none of it, and so does a restart
//! after a crash: the record's CRC covers the whole batch, and a torn record is dropped
//! whole.
//!
//! The batch keeps its ops already encoded in the WAL's op format, one buffer for all of
//! them, as LevelDB's `WriteBatch` does: committing it copies the bytes into the write
//! group's record, with no per-op work.

use kv_shared::{Result, check_key, check_key_value};

use crate::wal_payload;

/// Puts and deletes to apply together, in order (a later op on a key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The ops, in [`crate::wal_payload`]'s op format, back to back.
    ops: Vec<u8>,
    /// How many ops `ops` holds.
    count: u64,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds "set `key` to `value`".
    ///
    /// # Errors
    /// [`kv_shared::Error::KeyTooLarge`] or [`kv_shared::Error::ValueTooLarge`]; the batch
    /// is left unchanged.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        // One growth for the whole op: kind, two varints of at most 10 bytes, key, value.
        self.ops.reserve(21 + key.len() + value.len());
        wal_payload::encode_op(&mut self.ops, key, Some(value));
        self.count += 1;
        Ok(())
    }

    /// Adds "delete `key`".
    ///
    /// # Errors
    /// [`kv_shared::Error::KeyTooLarge`]; the batch is left unchanged.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.ops.reserve(11 + key.len());
        wal_payload::encode_op(&mut self.ops, key, None);
        self.count += 1;
        Ok(())
    }

    /// The number of ops.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when the batch holds no op.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every op, keeping the buffer for reuse.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.count = 0;
    }

    /// The size of the WAL record payload this batch alone makes: header and ops.
    pub fn payload_len(&self) -> usize {
        wal_payload::HEADER_LEN + self.ops.len()
    }

    /// The encoded ops, without header (what a write group copies into its record).
    pub(crate) fn encoded_ops(&self) -> &[u8] {
        &self.ops
    }

    /// The number of ops, as counted in a record header.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_shared::{Error, MAX_KEY_LEN};

    #[test]
    fn ops_encode_as_one_batch_record() {
        let mut b = WriteBatch::new();
        assert!(b.is_empty());
        b.put(b"a", b"1").unwrap();
        b.delete(b"b").unwrap();
        assert_eq!(b.len(), 2);
        let mut record = vec![0; wal_payload::HEADER_LEN];
        record.extend_from_slice(b.encoded_ops());
        wal_payload::write_header(&mut record, 5, b.count() as u32);
        assert_eq!(record.len(), b.payload_len());
        let decoded = wal_payload::decode(&record).unwrap();
        assert_eq!(decoded.first_seq, 5);
        let ops: Vec<wal_payload::Op> = decoded.ops().collect();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].key, b"a");
        assert_eq!(ops[0].value, Some(&b"1"[..]));
        assert_eq!((ops[1].key, ops[1].value), (&b"b"[..], None));

        let too_long = vec![0; MAX_KEY_LEN + 1];
        assert!(matches!(
            b.put(&too_long, b""),
            Err(Error::KeyTooLarge { .. })
        ));
        assert!(matches!(
            b.delete(&too_long),
            Err(Error::KeyTooLarge { .. })
        ));
        assert_eq!(b.len(), 2, "a refused op leaves the batch as it was");
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.payload_len(), wal_payload::HEADER_LEN);
    }
}

//! [`WriteBatch`]: puts and deletes that [`crate::Engine::write`] applies atomically, and the
//! byte format of its ops, which every stage writes inside one log record of its own.
//!
//! Atomic means: a reader sees all of a batch or none of it, and so does a restart after a
//! crash. Every stage gets this the same way: the whole batch goes into **one** record of
//! its log, under one checksum, so a record torn by a crash is dropped whole. What differs
//! from stage to stage is only the record around the ops (see each stage's log module).
//!
//! The batch keeps its ops already encoded, back to back in one buffer, as LevelDB's
//! `WriteBatch` does: committing it copies bytes, with no per-op work.
//!
//! ## Ops format
//!
//! A batch body is `n` ops back to back (the count `n` is kept by the record around them),
//! and nothing after the last. Each op:
//!
//! | size | field |
//! |---|---|
//! | 1 | kind: 1 = put, 0 = delete |
//! | 1-3 | key length `k`, varint, at most [`crate::MAX_KEY_LEN`] |
//! | k | key |
//! | 1-4 | put only: value length `v`, varint, at most [`crate::MAX_VALUE_LEN`] |
//! | v | put only: value |
//!
//! Both lengths are varints in their shortest form ([`ByteReader::varint`]); a longer
//! encoding of the same value is refused, so one batch has one byte string.
//!
//! [`dump_ops`] prints a body field by field; its snapshot in this crate's tests pins the
//! format.

use crate::dump::{Dump, quoted};
use crate::framing::{ByteReader, DecodeError, put_varint};
use crate::{MAX_KEY_LEN, MAX_VALUE_LEN, Result, check_key, check_key_value};

/// The kind byte of a put.
pub const PUT: u8 = 1;
/// The kind byte of a delete.
pub const DELETE: u8 = 0;

/// One op of a batch, borrowing the batch's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOp<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value of a put; `None` for a delete.
    pub value: Option<&'a [u8]>,
}

/// Puts and deletes to apply together, in order (a later op on a key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The ops in the [ops format](self), back to back.
    ops: Vec<u8>,
    /// How many ops `ops` holds.
    count: u32,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds "set `key` to `value`".
    ///
    /// # Errors
    /// [`crate::Error::KeyTooLarge`] or [`crate::Error::ValueTooLarge`]; the batch is left
    /// unchanged.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        // One growth for the whole op: kind, two varints of at most 10 bytes, key, value.
        self.ops.reserve(21 + key.len() + value.len());
        encode_op(&mut self.ops, key, Some(value));
        self.count += 1;
        Ok(())
    }

    /// Adds "delete `key`".
    ///
    /// # Errors
    /// [`crate::Error::KeyTooLarge`]; the batch is left unchanged.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.ops.reserve(11 + key.len());
        encode_op(&mut self.ops, key, None);
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

    /// The encoded ops (the body a stage's batch record carries).
    pub fn encoded_ops(&self) -> &[u8] {
        &self.ops
    }

    /// The number of ops, as a batch record counts them.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The ops, in order.
    pub fn iter(&self) -> impl Iterator<Item = BatchOp<'_>> + '_ {
        // The ops were encoded here from checked keys and values, so they decode.
        BatchOps::new(&self.ops, self.count)
    }
}

/// Appends one op to `out`, in the [ops format](self).
pub fn encode_op(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    out.push(if value.is_some() { PUT } else { DELETE });
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    if let Some(value) = value {
        put_varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }
}

/// Reads one op at `r`'s position.
///
/// # Errors
/// An unknown kind, a length over its limit, or bytes missing.
pub fn read_op<'a>(r: &mut ByteReader<'a>) -> std::result::Result<BatchOp<'a>, DecodeError> {
    let at = r.pos();
    let kind = r.u8("op kind")?;
    if kind != PUT && kind != DELETE {
        return Err(DecodeError::new(at, "unknown op kind"));
    }
    let key_len = r.varint("key length")?;
    let key_len = r.check_len(key_len, MAX_KEY_LEN, "key length")?;
    let key = r.bytes(key_len, "key")?;
    let value = if kind == PUT {
        let value_len = r.varint("value length")?;
        let value_len = r.check_len(value_len, MAX_VALUE_LEN, "value length")?;
        Some(r.bytes(value_len, "value")?)
    } else {
        None
    };
    Ok(BatchOp { key, value })
}

/// Checks that `body` holds exactly `count` well-formed ops and nothing after them: what a
/// stage's recovery calls before it applies a batch record, so that a batch is applied
/// whole or refused whole.
///
/// # Errors
/// The first op that does not decode, or bytes left over after the last.
pub fn check_ops(body: &[u8], count: u32) -> std::result::Result<(), DecodeError> {
    let mut r = ByteReader::new(body);
    for _ in 0..count {
        read_op(&mut r)?;
    }
    if !r.is_empty() {
        return Err(DecodeError::new(r.pos(), "bytes after the last op"));
    }
    Ok(())
}

/// The ops of a body already checked by [`check_ops`] (or encoded by a [`WriteBatch`]).
#[derive(Debug, Clone)]
pub struct BatchOps<'a> {
    reader: ByteReader<'a>,
    left: u32,
}

impl<'a> BatchOps<'a> {
    /// The `count` ops of `body`. A body that was not checked ends early at the first op
    /// that does not decode.
    pub fn new(body: &'a [u8], count: u32) -> BatchOps<'a> {
        BatchOps {
            reader: ByteReader::new(body),
            left: count,
        }
    }
}

impl<'a> Iterator for BatchOps<'a> {
    type Item = BatchOp<'a>;

    fn next(&mut self) -> Option<BatchOp<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let op = read_op(&mut self.reader).ok();
        if op.is_none() {
            self.left = 0;
        }
        op
    }
}

/// Adds the annotated fields of a batch body (`count` ops) to `dump`, stopping at the first
/// op that does not decode.
pub fn dump_ops(dump: &mut Dump, body: &[u8], count: u32) {
    let mut r = ByteReader::new(body);
    for i in 0..count {
        let start = r.pos();
        match read_op(&mut r) {
            Ok(op) => dump_op(dump, &body[start..r.pos()], i, op),
            Err(e) => {
                dump.field(&body[start..], format!("op {i}: does not decode ({e})"));
                return;
            }
        }
    }
    if !r.is_empty() {
        dump.field(&body[r.pos()..], "bytes after the last op");
    }
}

/// One op's fields: kind, key length and key, then value length and value for a put.
fn dump_op(dump: &mut Dump, bytes: &[u8], i: u32, op: BatchOp<'_>) {
    let kind = if op.value.is_some() { "put" } else { "delete" };
    let key_at = 1 + varint_size(op.key.len());
    dump.field(&bytes[..1], format!("op {i}: kind {} ({kind})", bytes[0]));
    dump.field(&bytes[1..key_at], format!("key length {}", op.key.len()));
    dump.field(op.key, format!("key {}", quoted(op.key, 32)));
    if let Some(value) = op.value {
        let value_len_at = key_at + op.key.len();
        let value_len = &bytes[value_len_at..value_len_at + varint_size(value.len())];
        dump.field(value_len, format!("value length {}", value.len()));
        dump.field(value, format!("value {}", quoted(value, 32)));
    }
}

/// The length of `len` as a varint.
fn varint_size(len: usize) -> usize {
    crate::framing::varint_len(len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    /// Found by the resealed fuzzer (sstable, `KV_TEST_SEED=3868710719`): a key length
    /// written as a longer varint than its value needs decoded, and the dump, which sizes
    /// the field from the value, came out a byte short of the op. Such an op is refused.
    #[test]
    fn an_op_whose_length_is_not_its_shortest_varint_is_refused() {
        let mut batch = WriteBatch::new();
        batch.put(b"key", b"value").unwrap();
        let ops = batch.encoded_ops().to_vec();
        let mut longer = vec![ops[0], ops[1] | 0x80, 0x00];
        longer.extend_from_slice(&ops[2..]);
        assert!(check_ops(&ops, 1).is_ok());
        let e = check_ops(&longer, 1).unwrap_err();
        assert!(e.detail.contains("shortest form"), "{e:?}");
    }
    #[test]
    fn ops_round_trip_and_refuse_bad_input() {
        let mut b = WriteBatch::new();
        assert!(b.is_empty());
        b.put(b"a", b"1").unwrap();
        b.delete(b"b").unwrap();
        assert_eq!(b.len(), 2);
        check_ops(b.encoded_ops(), 2).unwrap();
        let ops: Vec<BatchOp<'_>> = b.iter().collect();
        assert_eq!(
            ops[0],
            BatchOp {
                key: b"a",
                value: Some(b"1")
            }
        );
        assert_eq!(
            ops[1],
            BatchOp {
                key: b"b",
                value: None
            }
        );

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

        assert!(check_ops(b.encoded_ops(), 3).is_err(), "an op missing");
        assert!(
            check_ops(b.encoded_ops(), 1).is_err(),
            "bytes after the last op"
        );
        let mut bad_kind = b.encoded_ops().to_vec();
        bad_kind[0] = 7;
        assert!(check_ops(&bad_kind, 2).is_err());
        b.clear();
        assert!(b.is_empty() && b.encoded_ops().is_empty());
    }

    #[test]
    fn ops_dump() {
        let mut b = WriteBatch::new();
        b.put(b"apple", b"red").unwrap();
        b.delete(b"pear").unwrap();
        let mut dump = Dump::new("write batch ops");
        dump_ops(&mut dump, b.encoded_ops(), b.count());
        insta::assert_snapshot!(dump.finish());
    }
}

//! The commit record of a merge: the one file whose appearance makes a merge happen.
//!
//! A merge replaces a set of input segments by a set of output segments. That touches many
//! files, and a crash can stop it anywhere; the commit record makes the switch atomic on
//! disk. The protocol (see [`crate::merge`] for the whole merge):
//!
//! 1. The outputs are written under temporary names (`00000012.seg.merge`,
//!    `00000012.hint.merge`), each fsynced, then the directory is fsynced.
//! 2. **Commit point:** the commit record `merge-00000014.commit` is written atomically
//!    (to `.tmp`, fsynced, renamed, directory fsynced). It lists the inputs and outputs.
//! 3. The outputs are renamed to their final names; the directory is fsynced.
//! 4. The keydir switches to the outputs; the inputs are deleted once no reader holds them.
//! 5. When the last input is gone, the commit record is removed.
//!
//! On open ([`crate::recovery`]): a commit record means the merge happened, so recovery
//! finishes steps 3 to 5 (renaming any output still under its temporary name, deleting any
//! input still present, then the record). Without a commit record, every `*.merge` and
//! `*.commit.tmp` file is the debris of a merge that did not commit: it is deleted, and the
//! store is exactly as it was before that merge. Every step is idempotent, so a crash
//! during recovery is handled the same way on the next open.
//!
//! Why the inputs must not outlive the record: a merge drops tombstones and the dead values
//! they shadow. If a crash left some inputs (holding an old value) but not others (holding
//! its tombstone), without the record to say they are obsolete, a deleted key would come
//! back to life.
//!
//! ## Format
//!
//! All integers little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `BITCASKM` ([`COMMIT_MAGIC`]) |
//! | 8 | 4 | format version, `u32` ([`COMMIT_VERSION`], 1) |
//! | 12 | 4 | `n`: number of input segments, `u32` |
//! | 16 | 4n | input segment ids, `u32` each |
//! | 16 + 4n | 4 | `m`: number of output segments, `u32` |
//! | 20 + 4n | 4m | output segment ids, `u32` each |
//! | 20 + 4n + 4m | 4 | CRC32 of every byte before it |

use kv_shared::framing::{ByteReader, DecodeError, put_crc, put_magic_version};

/// The first eight bytes of a commit record.
pub const COMMIT_MAGIC: &[u8; 8] = b"BITCASKM";
/// The commit record format this build writes and reads.
pub const COMMIT_VERSION: u32 = 1;

/// What a merge replaced with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeCommit {
    /// Segments the merge replaced.
    pub inputs: Vec<u32>,
    /// Segments the merge wrote.
    pub outputs: Vec<u32>,
}

impl MergeCommit {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + 4 * (self.inputs.len() + self.outputs.len()));
        put_magic_version(&mut out, COMMIT_MAGIC, COMMIT_VERSION);
        for ids in [&self.inputs, &self.outputs] {
            out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for id in ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        put_crc(&mut out);
        out
    }

    /// Decodes a whole record.
    ///
    /// # Errors
    /// [`DecodeError`] for a bad magic, version, count, checksum or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<MergeCommit, DecodeError> {
        let mut r = ByteReader::past_magic_version(
            bytes,
            COMMIT_MAGIC,
            COMMIT_VERSION,
            "merge commit record",
        )?;
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let n = r.u32("segment count")? as u64;
            let n = r.check_len(n, r.remaining() / 4, "segment count")?;
            for _ in 0..n {
                list.push(r.u32("segment id")?);
            }
        }
        r.crc_at_end("commit record")?;
        let [inputs, outputs] = lists;
        Ok(MergeCommit { inputs, outputs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_caught() {
        let c = MergeCommit {
            inputs: vec![1, 2, 5],
            outputs: vec![7],
        };
        let bytes = c.encode();
        assert_eq!(MergeCommit::decode(&bytes).unwrap(), c);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(MergeCommit::decode(&bad).is_err(), "flip at {i}");
            assert!(MergeCommit::decode(&bytes[..i]).is_err(), "cut at {i}");
        }
    }
}

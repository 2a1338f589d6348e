//! The names of the files in a bitcask store directory.
//!
//! | name | what |
//! |---|---|
//! | `ENGINE`, `LOCK` | the marker and lock every store has (`kv_shared::StoreDir`) |
//! | `00000007.seg` | segment 7 (see [`crate::record`]) |
//! | `00000007.hint` | the hint file of segment 7, for merged segments (see [`crate::hint`]) |
//! | `00000007.seg.merge`, `00000007.hint.merge` | a merge's output, not yet committed |
//! | `merge-00000009.commit` | the commit record of merge 9 (see [`crate::merge_commit`]) |
//! | `merge-00000009.commit.tmp` | a commit record being written |
//! | `lost/` | damaged files that [`mod@crate::repair`] kept whole; the engine never reads them |
//!
//! Segment ids are 32-bit, allocated from one counter for rotations, merge outputs and
//! merges, and never reused; names are zero-padded so they sort by id.

use std::path::{Path, PathBuf};

/// One file of a store directory, recognised by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileName {
    /// A segment.
    Segment(u32),
    /// A segment's hint file.
    Hint(u32),
    /// A merge output segment, not yet committed.
    MergeSegment(u32),
    /// A merge output hint file, not yet committed.
    MergeHint(u32),
    /// A merge's commit record.
    Commit(u32),
    /// A commit record that was being written.
    CommitTmp(u32),
}

impl FileName {
    /// Parses a file name; `None` for a name this engine does not own.
    pub fn parse(name: &str) -> Option<FileName> {
        let id = |digits: &str| -> Option<u32> {
            (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())
                .flatten()
        };
        if let Some(rest) = name.strip_prefix("merge-") {
            if let Some(d) = rest.strip_suffix(".commit.tmp") {
                return id(d).map(FileName::CommitTmp);
            }
            return rest
                .strip_suffix(".commit")
                .and_then(id)
                .map(FileName::Commit);
        }
        let (digits, suffix) = name.split_at_checked(8)?;
        let n = id(digits)?;
        match suffix {
            ".seg" => Some(FileName::Segment(n)),
            ".hint" => Some(FileName::Hint(n)),
            ".seg.merge" => Some(FileName::MergeSegment(n)),
            ".hint.merge" => Some(FileName::MergeHint(n)),
            _ => None,
        }
    }

    /// The id in the name.
    pub fn id(self) -> u32 {
        match self {
            FileName::Segment(n)
            | FileName::Hint(n)
            | FileName::MergeSegment(n)
            | FileName::MergeHint(n)
            | FileName::Commit(n)
            | FileName::CommitTmp(n) => n,
        }
    }

    /// The name as a string.
    pub fn name(self) -> String {
        match self {
            FileName::Segment(n) => format!("{n:08}.seg"),
            FileName::Hint(n) => format!("{n:08}.hint"),
            FileName::MergeSegment(n) => format!("{n:08}.seg.merge"),
            FileName::MergeHint(n) => format!("{n:08}.hint.merge"),
            FileName::Commit(n) => format!("merge-{n:08}.commit"),
            FileName::CommitTmp(n) => format!("merge-{n:08}.commit.tmp"),
        }
    }

    /// The file's path in `dir`.
    pub fn path(self, dir: &Path) -> PathBuf {
        dir.join(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in [
            FileName::Segment(7),
            FileName::Hint(12345678),
            FileName::MergeSegment(0),
            FileName::MergeHint(99),
            FileName::Commit(3),
            FileName::CommitTmp(4),
        ] {
            assert_eq!(FileName::parse(&f.name()), Some(f));
        }
        for other in [
            "ENGINE",
            "LOCK",
            "7.seg",
            "0000000a.seg",
            "00000001.sst",
            "merge-1.commit",
        ] {
            assert_eq!(FileName::parse(other), None, "{other}");
        }
    }
}

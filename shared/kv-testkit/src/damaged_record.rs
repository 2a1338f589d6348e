//! A record cut short or damaged at every one of its bytes: the store reopens with all of it
//! or none of it, never a part. What makes a write batch atomic on disk, checked the same way
//! for every stage's log.
//!
//! A stage's test writes a store whose log holds one batch record ([`RecordInStore::batch`])
//! and then damages it. Each case works on a fresh copy of the store, so the store stays as
//! it was written:
//!
//! | check | the damage | what the store must do |
//! |---|---|---|
//! | [`RecordInStore::cut_at_every_byte`] | the file ends at each offset inside the record, as after a crash in the middle of its append | open without the record, cutting what is left of it off the file and counting those bytes as a torn tail; at the record's end, open with all of it |
//! | [`RecordInStore::flip_every_byte`], the record last | bits flipped in one byte of it | open without it: a damaged last record is a torn tail, cut off |
//! | [`RecordInStore::flip_every_byte`], a record after it | the same | the log is the store's newest, so everything from the damage on counts as its unsynced tail ([`kv_shared::log_reader`]): open with what the store held before the record, the file cut at the record's start, after a copy of the whole damaged file was put in `lost/` |
//!
//! Every store that opens must hold exactly what it held with the record or without it
//! (gets, scans both ways), take a new write, and pass the stage's own checks (a closure:
//! a stage's statistics, say).

use std::ops::Range;
use std::path::{Path, PathBuf};

use kv_shared::{Engine, Options};

use crate::conformance::{Model, assert_holds};
use crate::fixtures::{BATCH, BEFORE, Op, apply, batch_of, model_of};

/// One record in a file of a closed store, and what the store holds with it and without it.
#[derive(Debug, Clone)]
pub struct RecordInStore {
    /// The store's directory.
    pub dir: PathBuf,
    /// The name of the file in `dir` that holds the record.
    pub file: String,
    /// Where the record lies in the file.
    pub at: Range<u64>,
    /// What the store holds without the record and everything written after it.
    pub before: Model,
    /// What the store holds without the record.
    pub without: Model,
    /// What it holds with it.
    pub with: Model,
    /// The name of the `Stats::extra` counter of the bytes an open cut off as a torn tail.
    pub torn_stat: &'static str,
}

/// A damaged copy of the store, opened: what a stage's own check is given.
#[derive(Debug)]
pub struct Reopened<'a> {
    /// The copy's directory.
    pub dir: &'a Path,
    /// True when the store kept the record.
    pub kept: bool,
    /// What the store holds: [`RecordInStore::with`] or [`RecordInStore::without`].
    pub model: &'a Model,
    /// The case, for assertion messages: `cut at 57`, `flip 0x80 at 60, the last record`.
    pub context: &'a str,
}

impl RecordInStore {
    /// Writes [`BEFORE`] one call at a time, [`BATCH`] as one batch and `after` one call at a
    /// time through a new `E` in `dir`, then drops it without closing, as a crash would (so
    /// nothing is flushed or merged away). The batch's record is where `file` grew.
    pub fn batch<E: Engine>(
        dir: &Path,
        options: &Options,
        file: &str,
        after: &[Op],
        torn_stat: &'static str,
    ) -> RecordInStore {
        let engine = E::open(dir, options).unwrap_or_else(|e| panic!("open {}: {e}", E::NAME));
        let len = || {
            std::fs::metadata(dir.join(file))
                .expect("the record's file")
                .len()
        };
        apply(&engine, BEFORE);
        let start = len();
        engine.write(&batch_of(BATCH)).expect("write");
        let end = len();
        apply(&engine, after);
        drop(engine);
        RecordInStore {
            dir: dir.to_path_buf(),
            file: file.to_string(),
            at: start..end,
            before: model_of(&[BEFORE]),
            without: model_of(&[BEFORE, after]),
            with: model_of(&[BEFORE, BATCH, after]),
            torn_stat,
        }
    }

    /// The bytes of the file that holds the record, as the store holds them.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir.join(&self.file)).expect("the record's file")
    }

    /// Cuts the file at every offset from the record's start to its end (the record must be
    /// the last in its file) and reopens each cut: none of the record, the bytes of it that
    /// were there counted in [`RecordInStore::torn_stat`], until the cut at its end keeps all
    /// of it. `check` adds the stage's own checks (`|_, _| {}` when it has none).
    pub fn cut_at_every_byte<E: Engine>(&self, options: &Options, check: impl Fn(&E, &Reopened)) {
        let bytes = self.bytes();
        assert!(!self.at.is_empty(), "a record to cut");
        assert_eq!(bytes.len() as u64, self.at.end, "the record ends its file");
        let copies = tempfile::tempdir().expect("tempdir");
        for cut in self.at.start..=self.at.end {
            let dir = self.copy_with(copies.path(), &bytes[..cut as usize]);
            let kept = cut == self.at.end;
            let torn = if kept { 0 } else { cut - self.at.start };
            self.check_reopened(&dir, options, kept, torn, &format!("cut at {cut}"), &check);
        }
    }

    /// Flips bits of every byte of the record (masks `0x01`, `0x80`, `0xff`) and opens each
    /// damaged store. A damaged last record is a torn tail: the store opens without it, all
    /// of it counted in [`RecordInStore::torn_stat`] (and `check` adds the stage's checks).
    /// Damage before another record, in the store's newest log, is an unsynced tail with a
    /// hole: the store opens with [`RecordInStore::before`], the file cut at the record's
    /// start, the damaged file copied whole into `lost/` first.
    pub fn flip_every_byte<E: Engine>(&self, options: &Options, check: impl Fn(&E, &Reopened)) {
        let bytes = self.bytes();
        assert!(!self.at.is_empty(), "a record to damage");
        let last = bytes.len() as u64 == self.at.end;
        let copies = tempfile::tempdir().expect("tempdir");
        for offset in self.at.clone() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[offset as usize] ^= mask;
                let dir = self.copy_with(copies.path(), &damaged);
                let context = format!("flip {mask:#04x} at {offset}");
                if last {
                    let context = format!("{context}, the last record");
                    let torn = self.at.end - self.at.start;
                    self.check_reopened(&dir, options, false, torn, &context, &check);
                } else {
                    self.check_cut_to_lost::<E>(&dir, options, &damaged, &context, &check);
                }
            }
        }
    }

    /// A fresh copy of the store in `copies`, its record's file holding `bytes`.
    fn copy_with(&self, copies: &Path, bytes: &[u8]) -> PathBuf {
        let dir = copies.join("db");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove the last copy");
        }
        std::fs::create_dir(&dir).expect("create the copy");
        for entry in std::fs::read_dir(&self.dir).expect("list the store") {
            let name = entry.expect("a directory entry").file_name();
            std::fs::copy(self.dir.join(&name), dir.join(&name)).expect("copy a file");
        }
        std::fs::write(dir.join(&self.file), bytes).expect("write the damaged file");
        dir
    }

    /// Opens the damaged copy in `dir` and checks that it holds the record whole (`kept`) or
    /// not at all, having cut `torn` bytes off (the file ends where the record did, or where
    /// it started), and takes a new write.
    fn check_reopened<E: Engine>(
        &self,
        dir: &Path,
        options: &Options,
        kept: bool,
        torn: u64,
        context: &str,
        check: &impl Fn(&E, &Reopened),
    ) {
        let engine = E::open(dir, options).unwrap_or_else(|e| panic!("{context}: {e}"));
        let model = if kept { &self.with } else { &self.without };
        let keys: Vec<&[u8]> = self
            .with
            .keys()
            .chain(self.without.keys())
            .map(Vec::as_slice)
            .collect();
        assert_holds(&engine, model, &keys, context);
        let stats = engine.stats().expect("stats");
        assert_eq!(
            stats.extra[self.torn_stat], torn,
            "{} ({context})",
            self.torn_stat
        );
        let len = std::fs::metadata(dir.join(&self.file))
            .expect("the file")
            .len();
        let whole_or_cut = if kept { self.at.end } else { self.at.start };
        assert_eq!(len, whole_or_cut, "the file's length ({context})");
        let reopened = Reopened {
            dir,
            kept,
            model,
            context,
        };
        check(&engine, &reopened);
        engine
            .put(b"written after", b"the reopen")
            .expect("a write after the reopen");
        let got = engine.get(b"written after").expect("get");
        assert_eq!(got.as_deref(), Some(&b"the reopen"[..]), "{context}");
        engine.close().expect("close");
    }

    /// Checks that opening the damaged copy in `dir` keeps what the store held before the
    /// record, cuts the file at the record's start, and first copied `damaged` into `lost/`.
    fn check_cut_to_lost<E: Engine>(
        &self,
        dir: &Path,
        options: &Options,
        damaged: &[u8],
        context: &str,
        check: &impl Fn(&E, &Reopened),
    ) {
        let engine = E::open(dir, options).unwrap_or_else(|e| panic!("{context}: {e}"));
        let keys: Vec<&[u8]> = self.with.keys().map(Vec::as_slice).collect();
        assert_holds(&engine, &self.before, &keys, context);
        let torn = damaged.len() as u64 - self.at.start;
        let stats = engine.stats().expect("stats");
        assert_eq!(stats.extra[self.torn_stat], torn, "{context}");
        let len = std::fs::metadata(dir.join(&self.file))
            .expect("the file")
            .len();
        assert_eq!(len, self.at.start, "the file's length ({context})");
        let lost = dir.join(kv_shared::repair::LOST_DIR).join(&self.file);
        let copy = std::fs::read(&lost).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert!(copy == damaged, "{context}: lost/ holds the damaged file");
        let reopened = Reopened {
            dir,
            kept: false,
            model: &self.before,
            context,
        };
        check(&engine, &reopened);
        engine.close().expect("close");
    }
}

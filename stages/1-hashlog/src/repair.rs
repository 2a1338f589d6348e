//! Repair: bringing back a store whose data file is damaged, keeping every intact record.
//!
//! When a record in the middle of `data.log` is damaged (a valid record follows it),
//! [`crate::recovery`] cannot tell the damage from the hole an ordinary power loss leaves
//! in an unsynced tail, so it keeps the records before the damage, copies the whole file
//! into `lost/` and cuts it there. The records after the damage then live only in that
//! copy. [`repair`] is the tool to run *before* opening a store suspected of damage
//! (`kv --engine hashlog --dir DIR repair`): it keeps every intact record on both sides of
//! the bad bytes. It follows the rules of [`kv_shared::repair`]: nothing is deleted, every
//! intact record is kept, and a dry run changes nothing.
//!
//! ## The algorithm, step by step
//!
//! 1. **Check that the directory is a hashlog store**
//!    ([`kv_shared::repair::lock_store_or_damaged_marker`]). Its `ENGINE` marker must exist
//!    and name this engine at this format version. A directory without one is refused
//!    before anything is written into it: repair never creates a store, and never touches a
//!    directory that is not one. A marker that is there but damaged is accepted only when
//!    the directory's `data.log` has a valid hashlog header (`data_file_is_ours`); it is
//!    then kept in `lost/` and written anew ([`kv_shared::repair::rewrite_marker`]). Then
//!    the `LOCK` is taken, so a store that is open elsewhere is refused with
//!    [`kv_shared::Error::Locked`].
//! 2. **Read the data file and scan it** ([`kv_shared::repair::scan_log`]). From the first
//!    byte after the header, try to decode a record. A valid one (lengths within their
//!    limits, checksum right) is kept and the scan moves past it. At a bad byte the scan
//!    **resynchronises**: it tries every following offset as the start of a record until
//!    one decodes with a valid checksum, the way LevelDB's log reader skips a damaged block
//!    and `RepairDB` salvages what follows. The bytes skipped are counted and the first bad
//!    offset remembered. A damaged header is damage too, and records are still looked for
//!    after it.
//! 3. **Decide.** A file that scanned cleanly from end to end is kept as it is. Any bad
//!    byte, even a torn tail that opening would quietly cut off, makes it damaged: repair
//!    keeps every byte, where opening would drop the tail.
//! 4. **Keep the damaged file**: a copy goes to `lost/data.log`
//!    ([`kv_shared::repair::copy_to_lost`]), synced, before anything else changes.
//! 5. **Put the salvaged log in place**: a fresh header followed by the kept records, in
//!    their original order (so the last record of each key still wins), written with
//!    [`Fs::write_atomic`]. A crash at any point leaves either the damaged file or the
//!    salvaged one as `data.log`, and the copy in `lost/` from step 4 either way.
//!
//! Why copy, then replace, rather than move the damaged file away first: between the move
//! and the new file's arrival the store would have no `data.log`, and an open in that
//! window would start an empty store. The end state is the same as a move.
//!
//! What a repair can cost: the writes whose records were in the damaged bytes are gone,
//! and where a key's newest record was damaged but an older one survived, the key goes
//! back to that older value (or a deleted key comes back). A write batch is one record, so
//! it is salvaged whole or not at all. The data file is read into memory whole, which is
//! fine for the stores of this course; a very large store would be scanned in windows, as
//! [`kv_shared::log_reader`] does.

use std::path::Path;

use kv_shared::repair::{
    FileReport, RepairReport, copy_to_lost, lock_store_or_damaged_marker, rewrite_marker, scan_log,
};
use kv_shared::{Engine, Fs, Options, Result};

use crate::HashLog;
use crate::data_file::{FILE_HEADER_LEN, check_header, encode_header};
use crate::file_names::{DATA_FILE, data_path};
use crate::record::RecordFormat;

/// Repairs the hashlog store in `dir` (see the [module documentation](self)): salvages the
/// intact records of a damaged data file into a new one and keeps the damaged file in
/// `lost/`. With `dry_run`, only reads and reports.
///
/// # Errors
/// [`kv_shared::Error::InvalidArgument`] when `dir` is not a store (no marker);
/// [`kv_shared::Error::WrongEngine`] or [`kv_shared::Error::FormatVersion`] when it is
/// another engine's or version's; [`kv_shared::Error::Locked`] when the store is open;
/// [`kv_shared::Error::Io`].
pub fn repair(dir: &Path, options: &Options, dry_run: bool) -> Result<RepairReport> {
    let fs = Fs::new(options.file_system());
    let (engine, version) = (HashLog::NAME, HashLog::FORMAT_VERSION);
    let (_lock, marker_damage) =
        lock_store_or_damaged_marker(&fs, dir, engine, version, || data_file_is_ours(&fs, dir))?;
    let mut report = RepairReport {
        dry_run,
        ..RepairReport::default()
    };
    if let Some(damage) = marker_damage {
        rewrite_marker(&fs, dir, engine, version, damage, &mut report)?;
    }
    let Some(file) = fs.open_if_exists(&data_path(dir))? else {
        return Ok(report); // a store whose first open stopped early: nothing to repair
    };
    let bytes = file.read_vec_at(0, file.len()? as usize)?;
    drop(file);
    let scanned = scan_log::<RecordFormat>(&bytes, FILE_HEADER_LEN as usize);
    let records = scanned.records.len() as u64;
    let Some(damage) = header_damage(&bytes).or_else(|| scanned.damage_note()) else {
        report
            .kept
            .push(FileReport::new(DATA_FILE, records, "clean"));
        return Ok(report);
    };
    report
        .damaged
        .push(FileReport::new(DATA_FILE, records, damage));
    report.written.push(FileReport::new(
        DATA_FILE,
        records,
        "salvaged records, in their original order",
    ));
    if !dry_run {
        copy_to_lost(&fs, dir, DATA_FILE)?;
        let mut salvaged = encode_header().to_vec();
        for range in &scanned.records {
            salvaged.extend_from_slice(&bytes[range.clone()]);
        }
        fs.write_atomic(&data_path(dir), &salvaged)?;
    }
    Ok(report)
}

/// True when `dir` holds a data file whose header checks out: a hashlog store, whatever
/// its marker says.
fn data_file_is_ours(fs: &Fs, dir: &Path) -> Result<bool> {
    let Some(file) = fs.open_if_exists(&data_path(dir))? else {
        return Ok(false);
    };
    let len = file.len()?.min(FILE_HEADER_LEN);
    Ok(check_header(&data_path(dir), &file.read_vec_at(0, len as usize)?).is_ok())
}

/// What is wrong with the data file's header, if anything.
fn header_damage(bytes: &[u8]) -> Option<String> {
    let header = &bytes[..bytes.len().min(FILE_HEADER_LEN as usize)];
    check_header(Path::new(DATA_FILE), header)
        .err()
        .map(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use kv_shared::Error;
    use kv_shared::repair::LOST_DIR;
    use kv_shared::store_dir::MARKER_FILE;

    use super::*;

    #[test]
    fn a_damaged_record_is_skipped_and_the_rest_salvaged() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let options = Options::new();
        {
            let store = HashLog::open(&dir, &options).unwrap();
            for i in 0..20u32 {
                store.put(&i.to_le_bytes(), b"value").unwrap();
            }
        }
        let path = data_path(&dir);
        let mut bytes = std::fs::read(&path).unwrap();
        let damaged_at = FILE_HEADER_LEN as usize + 5 * 19 + 12; // inside the sixth record
        bytes[damaged_at] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        // (Opening would now keep only the five records before the damage, taking the rest
        // for an unsynced tail; repair salvages the records after it too.)

        let dry = repair(&dir, &options, true).unwrap();
        assert_eq!(dry.damaged[0].records, 19, "{dry}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "a dry run changes nothing"
        );
        assert!(!dir.join(LOST_DIR).exists());

        let done = repair(&dir, &options, false).unwrap();
        assert_eq!(done.written[0].records, 19, "{done}");
        assert_eq!(
            std::fs::read(dir.join(LOST_DIR).join(DATA_FILE)).unwrap(),
            bytes
        );
        let store = HashLog::open(&dir, &options).unwrap();
        for i in 0..20u32 {
            let expected = (i != 5).then(|| b"value".to_vec());
            assert_eq!(store.get(&i.to_le_bytes()).unwrap(), expected, "key {i}");
        }
        drop(store);
        assert!(repair(&dir, &options, false).unwrap().is_clean());
    }

    #[test]
    fn a_damaged_marker_is_rewritten_only_beside_a_hashlog_data_file() {
        let tmp = tempfile::tempdir().unwrap();
        let options = Options::new();
        let dir = tmp.path().join("store");
        HashLog::open(&dir, &options)
            .unwrap()
            .put(b"k", b"v")
            .unwrap();
        let marker = dir.join(MARKER_FILE);
        let mut bytes = std::fs::read(&marker).unwrap();
        bytes[9] ^= 0x01;
        std::fs::write(&marker, &bytes).unwrap();
        let report = repair(&dir, &options, false).unwrap();
        assert_eq!(report.damaged[0].file, MARKER_FILE, "{report}");
        assert_eq!(
            std::fs::read(dir.join(LOST_DIR).join(MARKER_FILE)).unwrap(),
            bytes
        );
        let store = HashLog::open(&dir, &options).unwrap();
        assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
        drop(store);

        // Without a data file that checks out, a damaged marker proves nothing.
        let foreign = tmp.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join(MARKER_FILE), &bytes).unwrap();
        std::fs::write(foreign.join(DATA_FILE), b"not a hashlog file").unwrap();
        assert!(matches!(
            repair(&foreign, &options, false),
            Err(Error::Corruption { .. })
        ));
        assert_eq!(
            Fs::default().list(&foreign).unwrap().len(),
            2,
            "nothing added"
        );
    }

    #[test]
    fn a_foreign_or_open_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
        let options = Options::new();
        assert!(matches!(
            repair(tmp.path(), &options, false),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(Fs::default().list(tmp.path()).unwrap(), ["notes.txt"]);
        assert!(repair(&tmp.path().join("missing"), &options, true).is_err());
        assert!(!tmp.path().join("missing").exists());
        let dir = tmp.path().join("store");
        let store = HashLog::open(&dir, &options).unwrap();
        assert!(matches!(
            repair(&dir, &options, true),
            Err(Error::Locked { .. })
        ));
        drop(store);
        assert!(repair(&dir, &options, true).unwrap().is_clean());
    }
}

//! A tiny engine, for testing the reliability suites themselves before any real stage exists
//! (compiled only in this crate's tests).
//!
//! One log file, `toy.log`: a 20-byte header (magic `KVTOYLOG`, version `u32` LE, and the
//! `u64` LE length the file had when it was written whole: a compacted log must be at least
//! that long, so damage there is corruption, not a torn tail), then records `crc32 u32 | tag u8 (1 put, 0 delete) | key len u16 | value len u32 | key | value`,
//! the CRC covering everything after itself. All values live in memory. `compact` rewrites
//! the live pairs into `toy.log.new`, syncs it, renames it over the log and syncs the
//! directory. A torn tail is cut on open. `buggy_rotation` makes a deliberately wrong variant
//! (the compacted file is not synced before the rename) that the power-loss suite must catch.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use kv_shared::dump::Dump;
use kv_shared::framing::{ByteReader, DecodeError, crc32};
use kv_shared::log_reader::{LogFormat, read_log};
use kv_shared::{
    Engine, Error, FileRef, Fs, KeyRange, OptionDoc, Options, Result, ScanIter, Stats, StoreDir,
    check_key, check_key_value,
};

const MAGIC: &[u8; 8] = b"KVTOYLOG";
const HEADER: usize = 20;
const LOG: &str = "toy.log";

/// The example engine's log record, read by [`read_log`].
struct Record;

impl LogFormat for Record {
    type Record = (Vec<u8>, Option<Vec<u8>>);
    const HEADER_LEN: usize = 11;
    fn record_len(h: &[u8]) -> Result<usize, DecodeError> {
        let mut r = ByteReader::new(h);
        r.u32("crc")?;
        let tag = r.u8("tag")?;
        if tag > 1 {
            return Err(DecodeError::new(4, "bad tag"));
        }
        let klen = r.u16("key len")? as usize;
        let vlen = r.u32("value len")? as usize;
        if vlen > 1 << 24 {
            return Err(DecodeError::new(7, "value len over the limit"));
        }
        Ok(11 + klen + vlen)
    }
    fn decode(rec: &[u8]) -> Result<Self::Record, DecodeError> {
        let mut r = ByteReader::new(rec);
        let crc = r.u32("crc")?;
        if crc32(&rec[4..]) != crc {
            return Err(DecodeError::new(0, "checksum mismatch"));
        }
        let tag = r.u8("tag")?;
        let klen = r.u16("key len")? as usize;
        let vlen = r.u32("value len")? as usize;
        let key = r.bytes(klen, "key")?.to_vec();
        let value = r.bytes(vlen, "value")?.to_vec();
        Ok((key, (tag == 1).then_some(value)))
    }
}

fn encode(key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let v = value.unwrap_or_default();
    let mut out = vec![0; 4];
    out.push(u8::from(value.is_some()));
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(v);
    let crc = crc32(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out
}

fn header(whole_len: u64) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&whole_len.to_le_bytes());
    h
}

type Pairs = BTreeMap<Vec<u8>, Vec<u8>>;

/// The toy engine.
pub struct Toy {
    fs: Fs,
    dir: StoreDir,
    buggy: bool,
    inner: Mutex<(FileRef, Pairs)>,
}

impl Toy {
    fn append(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        let len = inner.0.len()?;
        if let Err(e) = inner.0.append(&encode(key, value)) {
            // A failed append may have written part of the record: cut it off, or the next
            // record would follow garbage (and a later open would call that corruption).
            inner.0.truncate(len)?;
            return Err(e);
        }
        match value {
            Some(v) => inner.1.insert(key.to_vec(), v.to_vec()),
            None => inner.1.remove(key),
        };
        Ok(())
    }
}

impl Engine for Toy {
    const NAME: &'static str = "toy";
    const FORMAT_VERSION: u32 = 1;
    const OPTIONS: &'static [OptionDoc] = &[OptionDoc {
        name: "buggy_rotation",
        default: "false",
        doc: "skip the sync before the compaction's rename (a planted bug)",
    }];

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let buggy = options.get_or("buggy_rotation", false)?;
        let fs = Fs::new(options.file_system());
        let store = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        let path = store.join(LOG);
        let mut map = BTreeMap::new();
        let file = match fs.open_if_exists(&path)? {
            Some(file) if file.len()? >= HEADER as u64 => {
                let h = file.read_vec_at(0, HEADER)?;
                let whole_len = u64::from_le_bytes(h[12..20].try_into().expect("8 bytes"));
                if h[..12] != header(0)[..12] {
                    return Err(Error::corruption(&path, 0, "bad header"));
                }
                let end = read_log::<Record>(&file, HEADER as u64, |r| {
                    match r.record {
                        (k, Some(v)) => map.insert(k, v),
                        (k, None) => map.remove(&k),
                    };
                    Ok(())
                })?;
                if end.valid_len < whole_len {
                    return Err(Error::corruption(
                        &path,
                        end.valid_len,
                        "damage inside the part of the log written whole",
                    ));
                }
                file.truncate(end.valid_len)?;
                file
            }
            _ => {
                let file = fs.create(&path)?;
                file.append(&header(HEADER as u64))?;
                file
            }
        };
        Ok(Toy {
            fs,
            dir: store,
            buggy,
            inner: Mutex::new((file, map)),
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        self.append(key, Some(value))
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.lock().unwrap().1.get(key).cloned())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.append(key, None)
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        let inner = self.inner.lock().unwrap();
        let pairs: Vec<_> = if range.is_empty() {
            Vec::new()
        } else {
            inner
                .1
                .range::<[u8], _>(range)
                .map(|(k, v)| Ok((k.clone(), v.clone())))
                .collect()
        };
        Ok(Box::new(pairs.into_iter()))
    }

    fn sync(&self) -> Result<()> {
        self.inner.lock().unwrap().0.sync()?;
        self.fs.sync_dir(self.dir.path())
    }

    fn compact(&self) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        let tmp = self.dir.join("toy.log.new");
        let file = self.fs.create(&tmp)?;
        let mut records = Vec::new();
        for (k, v) in &inner.1 {
            records.extend_from_slice(&encode(k, Some(v)));
        }
        let mut bytes = header((HEADER + records.len()) as u64);
        bytes.extend_from_slice(&records);
        file.append(&bytes)?;
        if !self.buggy {
            file.sync()?;
        }
        self.fs.rename(&tmp, &self.dir.join(LOG))?;
        // From the rename on, the new file is the log, whatever fails next: keep writing to
        // the handle we hold (a fresh open could fail and leave us appending to the old,
        // unlinked file, losing every later write).
        inner.0 = file;
        self.fs.sync_dir(self.dir.path())
    }

    fn stats(&self) -> Result<Stats> {
        Ok(Stats::default())
    }

    fn close(self) -> Result<()> {
        self.sync()
    }
}

/// The annotated dump of a toy log.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(MAGIC) {
        return None;
    }
    let mut d = Dump::new("toy log");
    d.field(&bytes[..8], "magic");
    let mut pos = 8;
    if let Some(v) = bytes.get(8..12) {
        d.field(v, "version");
        pos = 12;
    }
    if let Some(v) = bytes.get(12..20) {
        d.field(v, "length written whole");
        pos = 20;
    }
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let len = rest
            .get(..Record::HEADER_LEN)
            .and_then(|h| Record::record_len(h).ok())
            .filter(|&n| n <= rest.len());
        match len.map(|n| (n, Record::decode(&rest[..n]))) {
            Some((n, Ok((k, v)))) => {
                d.field(
                    &rest[..n],
                    format!(
                        "record {} = {:?}",
                        kv_shared::dump::quoted(&k, 16),
                        v.map(|v| v.len())
                    ),
                );
                pos += n;
            }
            _ => {
                d.field(rest, "torn or bad record");
                break;
            }
        }
    }
    Some(d.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::reliability_tests!(
        Toy,
        kv_shared::Options::new(),
        crate::example_engine::inspect
    );

    /// The suites must catch a planted bug: a compaction that renames an unsynced file over
    /// the log loses synced data at a power loss.
    #[test]
    fn power_loss_catches_a_rename_before_sync() {
        let options = kv_shared::Options::new().set("buggy_rotation", "true");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::power_loss::crash_at_every_mutation::<Toy>(&options, 3, 400);
        }));
        assert!(caught.is_err(), "the planted bug went unnoticed");
    }
}

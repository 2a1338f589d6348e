//! External merge sort: the pairs of a bulk load in key order, in bounded memory.
//!
//! An engine that writes sorted tables ([`crate::bulk`]) needs its input in key order. The
//! input of a load may be far larger than memory, so it cannot simply be collected and
//! sorted. The classic answer, older than databases, is the **external merge sort**:
//!
//! 1. **Run generation.** [`ExternalSorter::push`] buffers pairs until `memory_bytes` is
//!    reached, then sorts the buffer and writes it to disk as a **run**: a file of pairs in
//!    ascending key order. The buffer is emptied and filling starts again.
//! 2. **Merging.** [`ExternalSorter::finish`] opens every run and merges them: a binary heap
//!    holds the smallest unread pair of each run, so each pair out costs `O(log runs)`
//!    comparisons, and only one buffer per run is in memory, never a whole run.
//!
//! When everything pushed fits in memory, no run is written: `finish` sorts the buffer and
//! hands it out ([`SortedPairs::runs`] is 0). When the last buffer is not empty and runs were
//! written, it is written as one more run, so that the merge holds only the run buffers.
//!
//! ## Duplicates: the last pushed wins
//!
//! A load behaves as if its pairs were `put` in input order, so of the pairs with one key,
//! the one pushed **last** survives, and the sorted output has each key once. Two rules keep
//! that true:
//!
//! * Inside a run, the buffer is sorted with a **stable** sort after being reversed: the
//!   last pushed pair of a key then comes first among its equals, and the duplicates after
//!   it are dropped before the run is written. A run holds each key at most once.
//! * Across runs, a later run holds later pushes. The heap orders equal keys by run number,
//!   highest first: the merge hands out the newest pair and skips the older ones.
//!
//! ## Memory
//!
//! A buffered pair counts `key.len() + value.len() + PAIR_OVERHEAD` bytes, the overhead
//! being its slot in the buffer: two `Vec` headers, 48 bytes on a 64-bit machine (what the
//! allocator rounds up, and the buffer's spare capacity, are not counted). A push that would take
//! the buffer over `memory_bytes` writes the buffer first, so the buffer never holds more
//! than `memory_bytes`, unless one pair is larger than that on its own (then it is alone).
//!
//! The merge reads each run in chunks of `memory_bytes / fan_in`, kept between 1 KiB and
//! [`RUN_CHUNK`] (64 KiB); a record longer than a chunk is read whole, which the key and
//! value limits ([`crate::limits`]) bound. The **fan-in**, how many runs one merge opens at
//! once, is `memory_bytes / RUN_CHUNK` kept between [`MIN_FAN_IN`] and [`MAX_FAN_IN`] (open
//! files are a limited resource too). With more runs than that, `finish` first merges
//! groups of up to `fan_in` neighbouring runs into longer runs, in passes
//! ([`SortedPairs::merge_passes`]), until the runs fit one merge. Neighbours, so that a
//! merged run is still newer than every run before it and older than every run after it.
//! A pass stops merging as soon as the runs it leaves fit one merge, so no byte is
//! rewritten more than it must be: with 25 runs and a fan-in of 16, the pass merges the 10
//! oldest into one, and the final merge reads that one and the 15 others.
//!
//! ## The run file, byte by byte
//!
//! A run is named `run-NNNNNN` (a six-digit counter from `000000`, one per run file the
//! sorter writes, merged runs included) in the scratch directory. Integers are
//! little-endian; varints are LEB128 ([`crate::framing`]).
//!
//! ```text
//! offset 0   magic     8 bytes  "KVSRTRUN"
//!        8   version   u32      1
//!       12   records, one per key, keys strictly ascending:
//!              key_len    varint   at most MAX_KEY_LEN
//!              key        key_len bytes
//!              value_len  varint   at most MAX_VALUE_LEN
//!              value      value_len bytes
//!              crc        u32      CRC32 of the four fields above
//!   len - 12 footer:
//!              pairs      u64      the number of records
//!              crc        u32      CRC32 of the 8 bytes of `pairs`
//! ```
//!
//! The footer is what tells a complete run from a cut one: a run cut short has lost its
//! footer, and the bytes in its place fail the footer's checksum. Reading checks everything
//! against what the file can hold: a length over its limit or past the records, a record's
//! checksum, a key not after the one before it, a count that differs from the footer's.
//! Each is [`Error::Corruption`] naming the run file and the offset, never a panic.
//!
//! A run file is closed once written and opened again by the merge that reads it, so the
//! files open at once are one merge's fan-in (plus the run a merge pass writes), however
//! many runs there are. Runs are not
//! synced: they are only read by the sort that wrote them, and a crash ends
//! the load anyway.
//!
//! ## Who removes the files
//!
//! A run file is removed as soon as no one needs it: when a merge has read it to its end,
//! and, best effort, when the [`ExternalSorter`] or [`SortedPairs`] holding it is dropped
//! (after an error, or a load given up part-way). The scratch directory itself belongs to
//! the caller, who creates it inside its store and removes it after the load, along with
//! anything a crash left in it.
//!
//! [`sorted_input`] puts the two kinds of load input behind one iterator: a sorted input is
//! checked as it streams by, an unsorted one goes through a sorter.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use crate::bulk::{LoadInput, LoadOrder, LoadReport, check_sorted, count_pair};
use crate::framing::{ByteReader, crc32, crc32_parts, put_magic_version, put_varint};
use crate::{Error, FileRef, Fs, MAX_KEY_LEN, MAX_VALUE_LEN, Result, check_key_value};

/// The first 8 bytes of a run file.
pub const RUN_MAGIC: &[u8; 8] = b"KVSRTRUN";

/// The run file format version this build writes and reads.
pub const RUN_VERSION: u32 = 1;

/// The bytes a buffered pair counts beyond its key and value (two `Vec` headers).
pub const PAIR_OVERHEAD: usize = 2 * size_of::<Vec<u8>>();

/// The most bytes a run reader reads at once, and a run writer gathers before appending.
pub const RUN_CHUNK: usize = 64 << 10;

/// The fewest runs one merge opens, however small `memory_bytes` is.
pub const MIN_FAN_IN: usize = 4;

/// The most runs one merge opens, however large `memory_bytes` is.
pub const MAX_FAN_IN: usize = 128;

/// The smallest chunk a run reader reads.
const MIN_CHUNK: usize = 1 << 10;

const HEADER_LEN: u64 = 12;
const FOOTER_LEN: u64 = 12;

/// A pair as the sorter holds it.
type Pair = (Vec<u8>, Vec<u8>);

/// Sorts pairs in bounded memory: buffers up to `memory_bytes` of pairs, sorts each full
/// buffer and writes it as a run file in `scratch` (a directory the caller created inside its
/// store and removes after), then merges the runs. See the module documentation.
#[derive(Debug)]
pub struct ExternalSorter {
    scratch: Scratch,
    memory_bytes: usize,
    fan_in: usize,
    pairs: Vec<Pair>,
    /// Bytes the buffered pairs count (see [`PAIR_OVERHEAD`]).
    used: usize,
    runs: Vec<RunFile>,
}

impl ExternalSorter {
    /// A sorter that writes its runs into `scratch` through `fs` and buffers at most
    /// `memory_bytes` of pairs.
    pub fn new(fs: &Fs, scratch: &Path, memory_bytes: usize) -> ExternalSorter {
        let fan_in = (memory_bytes / RUN_CHUNK).clamp(MIN_FAN_IN, MAX_FAN_IN);
        let chunk = (memory_bytes / fan_in).clamp(MIN_CHUNK, RUN_CHUNK);
        let scratch = Scratch {
            fs: fs.clone(),
            dir: scratch.to_path_buf(),
            next: 0,
            chunk,
        };
        ExternalSorter {
            scratch,
            memory_bytes,
            fan_in,
            pairs: Vec::new(),
            used: 0,
            runs: Vec::new(),
        }
    }

    /// Adds one pair (call order = input order: for equal keys the LAST pushed wins). Writes
    /// the buffer as a run first when the pair would take it over `memory_bytes`.
    ///
    /// # Errors
    /// [`Error::KeyTooLarge`], [`Error::ValueTooLarge`] (the pair is not added);
    /// [`Error::Io`] writing a run.
    pub fn push(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        check_key_value(&key, &value)?;
        let cost = key.len() + value.len() + PAIR_OVERHEAD;
        if !self.pairs.is_empty() && self.used + cost > self.memory_bytes {
            self.spill()?;
        }
        self.used += cost;
        self.pairs.push((key, value));
        Ok(())
    }

    /// Runs written so far.
    pub fn runs(&self) -> u64 {
        self.runs.len() as u64
    }

    /// Sorts the buffer and writes it as the newest run.
    fn spill(&mut self) -> Result<()> {
        sort_last_wins(&mut self.pairs);
        let run = self.scratch.write_run(self.pairs.drain(..).map(Ok))?;
        self.runs.push(run);
        self.used = 0;
        Ok(())
    }

    /// The pairs in ascending key order, one per key (the last pushed), as an iterator.
    ///
    /// # Errors
    /// [`Error::Io`] writing or opening a run, [`Error::Corruption`] for a run that does not
    /// read back as written (naming the run file).
    pub fn finish(mut self) -> Result<SortedPairs> {
        if self.runs.is_empty() {
            sort_last_wins(&mut self.pairs);
            let pairs = std::mem::take(&mut self.pairs).into_iter();
            return Ok(SortedPairs::new(Source::Memory(pairs), 0, 0));
        }
        if !self.pairs.is_empty() {
            self.spill()?;
        }
        let written = self.runs();
        let mut runs = std::mem::take(&mut self.runs);
        let mut passes = 0;
        while runs.len() > self.fan_in {
            runs = self.merge_pass(runs)?;
            passes += 1;
        }
        let merger = Merger::new(runs, self.scratch.chunk)?;
        Ok(SortedPairs::new(Source::Runs(merger), written, passes))
    }

    /// One pass: merges groups of up to `fan_in` neighbouring runs, oldest first, each into
    /// one run, and stops as soon as the runs it leaves (merged or not) fit one merge.
    fn merge_pass(&mut self, runs: Vec<RunFile>) -> Result<Vec<RunFile>> {
        let mut out = Vec::with_capacity(runs.len());
        let mut runs = runs.into_iter();
        loop {
            // Runs the pass would leave if it stopped here. A pass that has merged every run
            // ends too, with more runs than fan_in: the next pass merges those.
            let leaving = out.len() + runs.len();
            if leaving <= self.fan_in || runs.len() == 0 {
                out.extend(runs);
                return Ok(out);
            }
            // A group of g runs makes one: merge no more than it takes to get down to fan_in.
            let size = self.fan_in.min(leaving - self.fan_in + 1);
            let group: Vec<RunFile> = runs.by_ref().take(size).collect();
            if group.len() == 1 {
                out.extend(group);
            } else {
                let merger = Merger::new(group, self.scratch.chunk)?;
                out.push(self.scratch.write_run(merger)?);
            }
        }
    }
}

/// Sorts `pairs` by key and keeps, of each key, the pair pushed last.
fn sort_last_wins(pairs: &mut Vec<Pair>) {
    // Reversed, the last pushed pair of a key is the first of its key; the stable sort keeps
    // it first among its equals; `dedup_by` keeps the first of each group of equals.
    pairs.reverse();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.dedup_by(|later, earlier| later.0 == earlier.0);
}

/// The pairs of an [`ExternalSorter`], in ascending key order, one per key.
///
/// An iterator of `Result`s: a run that fails to read back ends it with that error (and
/// nothing after). Dropping it removes the run files it has not finished reading.
#[derive(Debug)]
pub struct SortedPairs {
    source: Source,
    runs: u64,
    merge_passes: u64,
}

#[derive(Debug)]
enum Source {
    /// Everything fit in memory: the sorted buffer.
    Memory(std::vec::IntoIter<Pair>),
    /// The final merge of the runs.
    Runs(Merger),
}

impl SortedPairs {
    fn new(source: Source, runs: u64, merge_passes: u64) -> SortedPairs {
        SortedPairs {
            source,
            runs,
            merge_passes,
        }
    }

    /// The runs the sorter wrote from its buffer (0 when everything fit in memory).
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// The passes that merged groups of runs into longer runs before the final merge, when
    /// there were more runs than one merge opens (0 otherwise).
    pub fn merge_passes(&self) -> u64 {
        self.merge_passes
    }
}

impl Iterator for SortedPairs {
    type Item = Result<Pair>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Memory(pairs) => pairs.next().map(Ok),
            Source::Runs(merger) => merger.next(),
        }
    }
}

/// The input of a load as ascending unique keys: for `LoadOrder::Sorted`, the input checked
/// ([`check_sorted`]) and with equal neighbours collapsed to the last; for Unsorted,
/// everything through an [`ExternalSorter`] in `scratch` with `memory_bytes`. Counts every
/// input pair into `report` ([`count_pair`]: limits checked) and sets `report.sort_runs`.
///
/// For `Sorted`, the input is read as the returned iterator is, and its errors (an input
/// error, a pair over a limit, a key out of order: [`Error::InvalidArgument`] naming the
/// pair) come out of the iterator, which ends after one; `report` is complete once the
/// iterator has returned `None` (and can be read once the iterator is dropped). For
/// `Unsorted`, the whole input is read and sorted before this returns, so those errors come
/// from this call, and `report` is complete when it returns.
///
/// # Errors
/// For `Unsorted`: an error of the input, [`Error::KeyTooLarge`], [`Error::ValueTooLarge`],
/// [`Error::Io`] on a run, [`Error::Corruption`] opening a run.
pub fn sorted_input<'a>(
    input: LoadInput<'a>,
    order: LoadOrder,
    fs: &Fs,
    scratch: &Path,
    memory_bytes: usize,
    report: &'a mut LoadReport,
) -> Result<Box<dyn Iterator<Item = Result<Pair>> + 'a>> {
    match order {
        LoadOrder::Sorted => {
            report.sort_runs = 0;
            Ok(Box::new(CheckedSorted {
                input,
                report,
                pending: None,
                done: false,
            }))
        }
        LoadOrder::Unsorted => {
            let mut sorter = ExternalSorter::new(fs, scratch, memory_bytes);
            for pair in input {
                let (key, value) = pair?;
                count_pair(report, &key, &value)?;
                sorter.push(key, value)?;
            }
            let sorted = sorter.finish()?;
            report.sort_runs = sorted.runs();
            Ok(Box::new(sorted))
        }
    }
}

/// A sorted input, checked and counted as it streams, equal neighbours collapsed to the
/// last.
struct CheckedSorted<'a> {
    input: LoadInput<'a>,
    report: &'a mut LoadReport,
    /// The last pair read, handed out once a pair with another key (or the end) comes.
    pending: Option<Pair>,
    done: bool,
}

impl CheckedSorted<'_> {
    fn step(&mut self) -> Result<Option<Pair>> {
        for pair in &mut *self.input {
            let (key, value) = pair?;
            count_pair(self.report, &key, &value)?;
            let previous = self.pending.as_ref().map(|(k, _)| k.as_slice());
            check_sorted(previous, &key, self.report.pairs)?;
            let same = previous == Some(key.as_slice());
            let before = self.pending.replace((key, value));
            if !same && let Some(pair) = before {
                return Ok(Some(pair));
            }
        }
        Ok(self.pending.take())
    }
}

impl Iterator for CheckedSorted<'_> {
    type Item = Result<Pair>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(pair)) => Some(Ok(pair)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The scratch directory and the names of the runs written into it.
#[derive(Debug)]
struct Scratch {
    fs: Fs,
    dir: PathBuf,
    /// The number in the next run's name.
    next: u64,
    /// Bytes a run writer gathers before appending, and a run reader reads at once.
    chunk: usize,
}

impl Scratch {
    /// Writes `pairs` (ascending, unique keys) as the next run file.
    fn write_run(&mut self, pairs: impl Iterator<Item = Result<Pair>>) -> Result<RunFile> {
        let path = self.dir.join(format!("run-{:06}", self.next));
        self.next += 1;
        let file = self.fs.create(&path)?;
        // Made before the first byte is written, so that an error removes the partial file.
        let run = RunFile {
            fs: self.fs.clone(),
            path,
        };
        let mut out = Vec::with_capacity(self.chunk);
        put_magic_version(&mut out, RUN_MAGIC, RUN_VERSION);
        let mut count = 0u64;
        for pair in pairs {
            let (key, value) = pair?;
            encode_record(&mut out, &key, &value);
            count += 1;
            if out.len() >= self.chunk {
                file.append(&out)?;
                out.clear();
            }
        }
        let count = count.to_le_bytes();
        out.extend_from_slice(&count);
        out.extend_from_slice(&crc32(&count).to_le_bytes());
        file.append(&out)?;
        Ok(run)
    }
}

/// Appends one record: key length, key, value length, value, CRC32 of those four.
fn encode_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let start = out.len();
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// A run file, removed (best effort) when dropped: its owner is done with it.
#[derive(Debug)]
struct RunFile {
    fs: Fs,
    path: PathBuf,
}

impl Drop for RunFile {
    fn drop(&mut self) {
        // Best effort: the caller removes the scratch directory after the load.
        let _ = self.fs.remove_if_exists(&self.path);
    }
}

/// Reads one run's records in order, a chunk at a time.
#[derive(Debug)]
struct RunReader {
    /// Owned, so that the file goes when the reader does.
    run: RunFile,
    file: FileRef,
    /// Bytes read from the file and not yet decoded start at `buf[at]`.
    buf: Vec<u8>,
    at: usize,
    /// The file offset just past the last byte in `buf`.
    buf_end: u64,
    /// The file offset where the records end and the footer starts.
    end: u64,
    /// Records the footer promises that have not been read yet.
    left: u64,
    chunk: usize,
}

impl RunReader {
    /// Opens `run` and checks its header and footer.
    fn open(run: RunFile, chunk: usize) -> Result<RunReader> {
        let file = run.fs.open(&run.path)?;
        let len = file.len()?;
        if len < HEADER_LEN + FOOTER_LEN {
            let detail = format!("a sort run of {len} bytes is shorter than a header and footer");
            return Err(Error::corruption(&run.path, 0, detail));
        }
        let mut header = [0; HEADER_LEN as usize];
        file.read_at(&mut header, 0)?;
        ByteReader::past_magic_version(&header, RUN_MAGIC, RUN_VERSION, "sort run")
            .map_err(|e| e.into_corruption(&run.path, 0))?;
        let end = len - FOOTER_LEN;
        let mut footer = [0; FOOTER_LEN as usize];
        file.read_at(&mut footer, end)?;
        let (count, crc) = footer.split_at(8);
        if crc != crc32(count).to_le_bytes() {
            let detail = "sort run footer checksum mismatch (the run is cut short or damaged)";
            return Err(Error::corruption(&run.path, end, detail));
        }
        let mut left = [0; 8];
        left.copy_from_slice(count);
        Ok(RunReader {
            run,
            file,
            buf: Vec::new(),
            at: 0,
            buf_end: HEADER_LEN,
            end,
            left: u64::from_le_bytes(left),
            chunk,
        })
    }

    /// The file offset of the next byte to decode.
    fn offset(&self) -> u64 {
        self.buf_end - (self.buf.len() - self.at) as u64
    }

    fn corruption(&self, offset: u64, detail: impl Into<String>) -> Error {
        Error::corruption(&self.run.path, offset, detail)
    }

    /// Makes at least `n` undecoded bytes (of the records) available in `buf`, reading a
    /// chunk or, for a longer field, the field's bytes.
    fn fill(&mut self, n: usize, what: &str) -> Result<()> {
        let have = self.buf.len() - self.at;
        if have >= n {
            return Ok(());
        }
        let offset = self.offset();
        if n as u64 > self.end - offset {
            let left = self.end - offset;
            let detail = format!("{what} of {n} bytes runs past the records ({left} bytes left)");
            return Err(self.corruption(offset, detail));
        }
        self.buf.drain(..self.at);
        self.at = 0;
        // At least the bytes missing (possible: they are before `end`), at most the rest.
        let want = ((n - have).max(self.chunk) as u64).min(self.end - self.buf_end) as usize;
        self.buf.resize(have + want, 0);
        self.file.read_at(&mut self.buf[have..], self.buf_end)?;
        self.buf_end += want as u64;
        Ok(())
    }

    /// Reads a varint length and checks it against `max`.
    fn length(&mut self, max: usize, what: &str) -> Result<usize> {
        let offset = self.offset();
        self.fill((self.end - offset).min(10) as usize, what)?;
        let mut r = ByteReader::new(&self.buf[self.at..]);
        let len = r
            .varint(what)
            .map_err(|e| e.into_corruption(&self.run.path, offset))?;
        if len > max as u64 {
            let detail = format!("{what} {len} is over the limit of {max}");
            return Err(self.corruption(offset, detail));
        }
        self.at += r.pos();
        Ok(len as usize)
    }

    /// The next `n` bytes (`n` already bounded by a limit).
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        self.fill(n, what)?;
        let bytes = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(bytes)
    }

    /// The next record, checked against its checksum and against `previous`, the key of the
    /// record before it; `None` at the end of the records.
    fn next_pair(&mut self, previous: Option<&[u8]>) -> Result<Option<Pair>> {
        let start = self.offset();
        if start == self.end {
            if self.left != 0 {
                let detail = format!("the footer counts {} more pairs", self.left);
                return Err(self.corruption(start, detail));
            }
            return Ok(None);
        }
        if self.left == 0 {
            return Err(self.corruption(start, "more pairs than the footer counts"));
        }
        let key_len = self.length(MAX_KEY_LEN, "key length")?;
        let key = self.take(key_len, "key")?.to_vec();
        let value_len = self.length(MAX_VALUE_LEN, "value length")?;
        let value = self.take(value_len, "value")?.to_vec();
        let stored = self.take(4, "checksum")?;
        let (mut key_varint, mut value_varint) = (Vec::new(), Vec::new());
        put_varint(&mut key_varint, key_len as u64);
        put_varint(&mut value_varint, value_len as u64);
        let crc = crc32_parts(&[&key_varint, &key, &value_varint, &value]);
        if stored != crc.to_le_bytes() {
            return Err(self.corruption(start, "sort run record checksum mismatch"));
        }
        if previous.is_some_and(|p| key.as_slice() <= p) {
            let detail = "sort run key not after the key before it";
            return Err(self.corruption(start, detail));
        }
        self.left -= 1;
        Ok(Some((key, value)))
    }
}

/// A pair in the merge heap, from run number `source`.
#[derive(Debug)]
struct HeapEntry {
    key: Vec<u8>,
    value: Vec<u8>,
    source: usize,
}

impl Ord for HeapEntry {
    /// `BinaryHeap` pops the greatest: the smallest key, and of equal keys the newest run.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then(self.source.cmp(&other.source))
    }
}

impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for HeapEntry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for HeapEntry {}

/// The k-way merge of runs, oldest first: one pair per key, the newest run's.
#[derive(Debug)]
struct Merger {
    /// A reader per run, `None` (and its file removed) once read to its end.
    readers: Vec<Option<RunReader>>,
    heap: BinaryHeap<HeapEntry>,
    failed: bool,
}

impl Merger {
    /// Opens `runs` (oldest first) and reads the first pair of each.
    fn new(runs: Vec<RunFile>, chunk: usize) -> Result<Merger> {
        let mut readers = Vec::with_capacity(runs.len());
        for run in runs {
            readers.push(Some(RunReader::open(run, chunk)?));
        }
        let heap = BinaryHeap::with_capacity(readers.len());
        let mut merger = Merger {
            readers,
            heap,
            failed: false,
        };
        for source in 0..merger.readers.len() {
            merger.advance(source, None)?;
        }
        Ok(merger)
    }

    /// Puts the next pair of run `source` in the heap; at its end, drops its reader.
    fn advance(&mut self, source: usize, previous: Option<&[u8]>) -> Result<()> {
        let Some(reader) = self.readers[source].as_mut() else {
            return Ok(());
        };
        match reader.next_pair(previous)? {
            Some((key, value)) => self.heap.push(HeapEntry { key, value, source }),
            None => self.readers[source] = None,
        }
        Ok(())
    }

    /// The smallest key left, with the value of the newest run that has it.
    fn next_pair(&mut self) -> Result<Option<Pair>> {
        let Some(top) = self.heap.pop() else {
            return Ok(None);
        };
        self.advance(top.source, Some(&top.key))?;
        // Older runs with the same key: skip their pairs.
        while self.heap.peek().is_some_and(|e| e.key == top.key) {
            if let Some(older) = self.heap.pop() {
                self.advance(older.source, Some(&older.key))?;
            }
        }
        Ok(Some((top.key, top.value)))
    }
}

impl Iterator for Merger {
    type Item = Result<Pair>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_pair();
        self.failed = next.is_err();
        next.transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A small deterministic generator (SplitMix64), so the random tests need no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn sort_all(dir: &Path, memory: usize, pairs: &[Pair]) -> Result<(Vec<Pair>, u64, u64)> {
        let mut sorter = ExternalSorter::new(&Fs::default(), dir, memory);
        for (k, v) in pairs {
            sorter.push(k.clone(), v.clone())?;
        }
        let sorted = sorter.finish()?;
        let (runs, passes) = (sorted.runs(), sorted.merge_passes());
        Ok((sorted.collect::<Result<_>>()?, runs, passes))
    }

    fn model(pairs: &[Pair]) -> Vec<Pair> {
        let map: BTreeMap<_, _> = pairs.iter().cloned().collect();
        map.into_iter().collect()
    }

    fn files(dir: &Path) -> Vec<String> {
        Fs::default().list(dir).unwrap()
    }

    fn pair(k: &str, v: &str) -> Pair {
        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    #[test]
    fn small_memory_spills_many_runs_merged_in_several_passes() {
        let tmp = tempfile::tempdir().unwrap();
        let pairs: Vec<Pair> = (0..600u32)
            .map(|i| pair(&format!("k{:05}", (i * 7919) % 600), &format!("v{i}")))
            .collect();
        let (sorted, runs, passes) = sort_all(tmp.path(), 1024, &pairs).unwrap();
        assert_eq!(sorted, model(&pairs));
        // More runs than fan-in squared: the first pass merges them all in groups and still
        // leaves more than fan-in runs, so a second pass follows.
        let fan_in = MIN_FAN_IN as u64;
        assert!(runs > fan_in * fan_in, "{runs} runs");
        assert!(passes >= 2, "{runs} runs, fan-in {fan_in}: {passes} passes");
        assert!(files(tmp.path()).is_empty(), "every run removed once read");
    }

    #[test]
    fn a_merge_pass_merges_only_the_oldest_runs_it_must() {
        let tmp = tempfile::tempdir().unwrap();
        // 152 bytes a pair, six to a buffer of 1,000 bytes: 36 pairs make 6 runs, and a
        // fan-in of 4 (memory under 256 KiB) calls for one pass merging the 3 oldest.
        let mut sorter = ExternalSorter::new(&Fs::default(), tmp.path(), 1000);
        for i in 0..36u32 {
            sorter.push(i.to_le_bytes().to_vec(), vec![1; 100]).unwrap();
        }
        assert_eq!((sorter.fan_in, sorter.runs()), (MIN_FAN_IN, 5));
        let sorted = sorter.finish().unwrap();
        assert_eq!((sorted.runs(), sorted.merge_passes()), (6, 1));
        let left = ["run-000003", "run-000004", "run-000005", "run-000006"];
        assert_eq!(files(tmp.path()), left);
        assert_eq!(sorted.count(), 36);
    }

    #[test]
    fn input_that_fits_in_memory_writes_no_run() {
        let tmp = tempfile::tempdir().unwrap();
        let pairs = vec![pair("b", "1"), pair("a", "2"), pair("b", "3")];
        let (sorted, runs, _) = sort_all(tmp.path(), 1 << 20, &pairs).unwrap();
        assert_eq!(sorted, vec![pair("a", "2"), pair("b", "3")]);
        assert_eq!(runs, 0);
        assert!(files(tmp.path()).is_empty());
    }

    #[test]
    fn duplicates_across_runs_and_within_a_run_keep_the_last_pushed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut pairs = Vec::new();
        for round in 0..40 {
            pairs.push(pair("dup", &format!("round {round}")));
            pairs.push(pair(&format!("other{round:03}"), "x"));
            // Twice in a row: both land in one buffer, the second must win there too.
            pairs.push(pair("twice", &format!("first {round}")));
            pairs.push(pair("twice", &format!("second {round}")));
        }
        let (sorted, runs, _) = sort_all(tmp.path(), 300, &pairs).unwrap();
        assert!(runs > 10, "{runs} runs");
        let map: BTreeMap<_, _> = sorted.into_iter().collect();
        assert_eq!(map[&b"dup"[..]], b"round 39");
        assert_eq!(map[&b"twice"[..]], b"second 39");
        assert_eq!(map.len(), 42);
    }

    #[test]
    fn the_buffer_never_holds_more_than_its_memory_but_one_large_pair() {
        let tmp = tempfile::tempdir().unwrap();
        let memory = 500;
        let mut sorter = ExternalSorter::new(&Fs::default(), tmp.path(), memory);
        let mut rng = Rng(7);
        for i in 0..300 {
            let value = vec![b'v'; rng.below(if i % 50 == 0 { 2000 } else { 100 }) as usize];
            let cost = 8 + value.len() + PAIR_OVERHEAD;
            sorter
                .push(format!("key{i:05}").into_bytes(), value)
                .unwrap();
            assert!(
                sorter.used <= memory.max(cost),
                "{} after pair {i}",
                sorter.used
            );
        }
        assert!(sorter.runs() > 30);
    }

    #[test]
    fn records_larger_than_a_read_chunk_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let big = vec![0xabu8; 3 * RUN_CHUNK + 17];
        let pairs = vec![
            (b"c".to_vec(), big.clone()),
            (vec![b'k'; MAX_KEY_LEN], b"long key".to_vec()),
            (b"a".to_vec(), big.clone()),
            (b"b".to_vec(), Vec::new()),
        ];
        let (sorted, runs, _) = sort_all(tmp.path(), 1000, &pairs).unwrap();
        assert_eq!(sorted, model(&pairs));
        assert!(runs >= 3);
    }

    #[test]
    fn empty_input_gives_no_pairs() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(sort_all(tmp.path(), 0, &[]).unwrap(), (vec![], 0, 0));
        for order in [LoadOrder::Sorted, LoadOrder::Unsorted] {
            let mut report = LoadReport::default();
            let mut input = std::iter::empty();
            let fs = Fs::default();
            let pairs = sorted_input(&mut input, order, &fs, tmp.path(), 0, &mut report)
                .unwrap()
                .count();
            assert_eq!((pairs, report.pairs, report.sort_runs), (0, 0, 0));
        }
    }

    #[test]
    fn random_inputs_match_a_btreemap() {
        for seed in 0..16u64 {
            let tmp = tempfile::tempdir().unwrap();
            let mut rng = Rng(seed);
            let n = rng.below(250) as usize;
            let key_space = 1 + rng.below(300);
            let pairs: Vec<Pair> = (0..n)
                .map(|i| {
                    let key = format!("{:x}", rng.below(key_space)).into_bytes();
                    let value = vec![i as u8; rng.below(40) as usize];
                    (key, value)
                })
                .collect();
            let memory = [400, 1500, 5000, 1 << 20][seed as usize % 4];
            let (sorted, runs, _) = sort_all(tmp.path(), memory, &pairs).unwrap();
            assert_eq!(
                sorted,
                model(&pairs),
                "seed {seed}, memory {memory}, {runs} runs"
            );
            assert!(files(tmp.path()).is_empty(), "seed {seed}");
        }
    }

    #[test]
    fn dropping_the_sorted_pairs_part_way_removes_the_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sorter = ExternalSorter::new(&Fs::default(), tmp.path(), 200);
        for i in 0..100u32 {
            sorter
                .push(i.to_be_bytes().to_vec(), b"value".to_vec())
                .unwrap();
        }
        let mut sorted = sorter.finish().unwrap();
        assert!(sorted.next().is_some());
        assert!(!files(tmp.path()).is_empty());
        drop(sorted);
        assert!(files(tmp.path()).is_empty());
    }

    #[test]
    fn an_oversized_pair_is_refused_before_it_is_buffered() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sorter = ExternalSorter::new(&Fs::default(), tmp.path(), 100);
        let key = vec![0; MAX_KEY_LEN + 1];
        assert!(matches!(
            sorter.push(key, Vec::new()),
            Err(Error::KeyTooLarge { .. })
        ));
        assert_eq!(sorter.pairs.len(), 0);
    }

    /// Writes one run of `pairs` through a sorter whose memory holds them all and returns its
    /// bytes (the sorter is kept, unfinished, with the run on disk).
    fn one_run(dir: &Path) -> (ExternalSorter, Vec<u8>) {
        let mut sorter = ExternalSorter::new(&Fs::default(), dir, 1 << 20);
        for i in 0..6u8 {
            sorter.push(vec![b'a' + i; 3], vec![i; 5]).unwrap();
        }
        sorter.spill().unwrap();
        let bytes = std::fs::read(dir.join("run-000000")).unwrap();
        (sorter, bytes)
    }

    /// Finishes a sorter whose first run has been replaced by `damaged`.
    fn read_damaged(dir: &Path, damaged: &[u8]) -> Result<Vec<Pair>> {
        let (mut sorter, _) = one_run(dir);
        sorter.push(b"zz".to_vec(), b"last".to_vec()).unwrap();
        std::fs::write(dir.join("run-000000"), damaged).unwrap();
        sorter.finish()?.collect()
    }

    fn assert_corruption_of_run(result: Result<Vec<Pair>>, dir: &Path, what: &str) {
        match result {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, dir.join("run-000000")),
            other => panic!("{what}: expected corruption of run-000000, got {other:?}"),
        }
    }

    #[test]
    fn a_run_reads_back_and_its_layout_is_as_documented() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, bytes) = one_run(tmp.path());
        assert_eq!(&bytes[..8], RUN_MAGIC);
        assert_eq!(bytes[8..12], 1u32.to_le_bytes());
        // First record: key_len 3, "aaa", value_len 5, five zero bytes, crc.
        assert_eq!(bytes[12..22], [3, b'a', b'a', b'a', 5, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[22..26], crc32(&bytes[12..22]).to_le_bytes());
        assert_eq!(bytes.len(), 12 + 6 * 14 + 12);
        let footer = &bytes[bytes.len() - 12..];
        assert_eq!(footer[..8], 6u64.to_le_bytes());
        let sorted = read_damaged(tmp.path(), &bytes).unwrap();
        assert_eq!(sorted.len(), 7);
    }

    #[test]
    fn every_flipped_byte_of_a_run_is_corruption_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, bytes) = one_run(tmp.path());
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x41;
            let result = read_damaged(tmp.path(), &damaged);
            assert_corruption_of_run(result, tmp.path(), &format!("byte {at} flipped"));
        }
    }

    #[test]
    fn every_cut_of_a_run_is_corruption_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, bytes) = one_run(tmp.path());
        for len in 0..bytes.len() {
            let result = read_damaged(tmp.path(), &bytes[..len]);
            assert_corruption_of_run(result, tmp.path(), &format!("cut to {len} bytes"));
        }
    }

    #[test]
    fn the_pairs_end_after_a_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut sorter, mut bytes) = one_run(tmp.path());
        sorter.push(b"zz".to_vec(), b"last".to_vec()).unwrap();
        // The fourth record's checksum. The merge reads a run one pair ahead of what it
        // hands out: two pairs come out, then the error where the third would.
        bytes[12 + 3 * 14 + 10] ^= 1;
        std::fs::write(tmp.path().join("run-000000"), &bytes).unwrap();
        let mut sorted = sorter.finish().unwrap();
        assert_eq!(sorted.next().unwrap().unwrap().0, b"aaa");
        assert_eq!(sorted.next().unwrap().unwrap().0, b"bbb");
        let err = sorted.next().unwrap().unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(sorted.next().is_none());
    }

    #[test]
    fn a_huge_length_is_corruption_not_an_allocation() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, bytes) = one_run(tmp.path());
        // The first record's key length becomes 2^35, with a valid record checksum after
        // it would not matter: the length is refused before anything is read.
        let mut damaged = bytes[..12].to_vec();
        put_varint(&mut damaged, 1 << 35);
        damaged.extend_from_slice(&bytes[13..]);
        let result = read_damaged(tmp.path(), &damaged);
        assert_corruption_of_run(result, tmp.path(), "huge key length");
    }

    #[test]
    fn sorted_input_collapses_equal_neighbours_to_the_last_and_counts_every_pair() {
        let tmp = tempfile::tempdir().unwrap();
        let mut input = vec![
            pair("a", "1"),
            pair("a", "2"),
            pair("b", "3"),
            pair("c", "4"),
        ]
        .into_iter()
        .map(Ok);
        let mut report = LoadReport::default();
        let fs = Fs::default();
        let out: Vec<Pair> = sorted_input(
            &mut input,
            LoadOrder::Sorted,
            &fs,
            tmp.path(),
            0,
            &mut report,
        )
        .unwrap()
        .collect::<Result<_>>()
        .unwrap();
        assert_eq!(out, vec![pair("a", "2"), pair("b", "3"), pair("c", "4")]);
        assert_eq!((report.pairs, report.bytes, report.sort_runs), (4, 8, 0));
    }

    #[test]
    fn sorted_input_refuses_a_key_out_of_order() {
        let tmp = tempfile::tempdir().unwrap();
        let mut input = vec![
            pair("a", "1"),
            pair("c", "2"),
            pair("b", "3"),
            pair("d", "4"),
        ]
        .into_iter()
        .map(Ok);
        let mut report = LoadReport::default();
        let fs = Fs::default();
        let mut out = sorted_input(
            &mut input,
            LoadOrder::Sorted,
            &fs,
            tmp.path(),
            0,
            &mut report,
        )
        .unwrap();
        assert_eq!(out.next().unwrap().unwrap(), pair("a", "1"));
        let err = out.next().unwrap().unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(ref m) if m.contains("pair 3")),
            "{err}"
        );
        assert!(out.next().is_none(), "nothing after the error");
    }

    #[test]
    fn unsorted_input_is_sorted_through_runs_and_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let pairs: Vec<Pair> = (0..200u32)
            .rev()
            .map(|i| pair(&format!("{i:04}"), "v"))
            .collect();
        let mut input = pairs.clone().into_iter().map(Ok);
        let mut report = LoadReport::default();
        let fs = Fs::default();
        let out: Vec<Pair> = sorted_input(
            &mut input,
            LoadOrder::Unsorted,
            &fs,
            tmp.path(),
            512,
            &mut report,
        )
        .unwrap()
        .collect::<Result<_>>()
        .unwrap();
        assert_eq!(out, model(&pairs));
        assert_eq!((report.pairs, report.bytes), (200, 1000));
        assert!(report.sort_runs > 5, "{report:?}");
    }

    #[test]
    fn an_input_error_or_oversized_pair_stops_an_unsorted_load() {
        let tmp = tempfile::tempdir().unwrap();
        let load = |input: Vec<Result<Pair>>| {
            let mut input = input.into_iter();
            let mut report = LoadReport::default();
            let (fs, order) = (Fs::default(), LoadOrder::Unsorted);
            sorted_input(&mut input, order, &fs, tmp.path(), 0, &mut report).map(|_| ())
        };
        // Memory 0: every pair after the first spills a run before the error comes.
        let mut input: Vec<Result<Pair>> = (0..5).map(|i| Ok(pair(&i.to_string(), "v"))).collect();
        input.push(Err(Error::InvalidArgument("line 6: no delimiter".into())));
        let result = load(input);
        assert!(matches!(result, Err(Error::InvalidArgument(ref m)) if m.contains("line 6")));
        assert!(files(tmp.path()).is_empty(), "the runs go with the sorter");
        let result = load(vec![Ok((vec![0; MAX_KEY_LEN + 1], Vec::new()))]);
        assert!(matches!(result, Err(Error::KeyTooLarge { .. })));
    }

    /// An engine's `load` calls `sorted_input` in this shape: its input borrowed for the
    /// call, its report a local that it reads (and completes) once the pairs are used.
    fn load_like_an_engine(
        input: LoadInput<'_>,
        order: LoadOrder,
        dir: &Path,
    ) -> Result<LoadReport> {
        let mut report = LoadReport::default();
        let mut written = 0u64;
        let fs = Fs::default();
        for pair in sorted_input(input, order, &fs, dir, 256, &mut report)? {
            pair?;
            written += 1;
        }
        report.files_added = 1;
        report.method = format!("{written} unique keys");
        Ok(report)
    }

    #[test]
    fn an_engine_shaped_caller_gets_its_report_back() {
        let tmp = tempfile::tempdir().unwrap();
        for order in [LoadOrder::Sorted, LoadOrder::Unsorted] {
            let mut input = (0..50u32).map(|i| Ok(pair(&format!("{:03}", i / 2), "v")));
            let report = load_like_an_engine(&mut input, order, tmp.path()).unwrap();
            assert_eq!(
                (report.pairs, report.method.as_str()),
                (50, "25 unique keys")
            );
            assert_eq!(
                report.sort_runs > 0,
                order == LoadOrder::Unsorted,
                "{report:?}"
            );
        }
    }
}

//! A standalone SSTable, built from a list of pairs: what `kv sstable build|get|scan` runs.
//!
//! This is the seed notes' first exercise, an SSTable on its own: stream key-value pairs
//! in, in any order, and get one sorted, indexed, immutable file out. The pairs are sorted
//! in memory (a `BTreeMap`, so a key given twice keeps its last value), then written with
//! the same [`crate::table_builder`] the engine uses, so the file has the engine's format
//! (its WAL range is `0 ..= 0`) and `kv inspect` shows it.
//!
//! ## The text input of [`build_from_lines`]
//!
//! One pair per line, `key<delimiter>value`, split at the **first** delimiter (so a value
//! may contain the delimiter; a key cannot). Lines end with `\n` or `\r\n`. Keys and
//! values are bytes: the input need not be UTF-8.
//!
//! * An empty line is skipped.
//! * A line without the delimiter, or with an empty key (`,value`), is an error naming the
//!   line number (counting from 1): an empty key is legal in the engine, but in a text file
//!   it is almost always a mistake, such as a stray delimiter.
//! * A key or value over the limits of [`kv_shared::limits`] is an error naming the line.
//!
//! Nothing is written when the input has an error.
//!
//! [`LinePairs`] is the parser on its own, streaming: `kv load` reads its input with it.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use kv_shared::{Error, Fs, Result, check_key_value};

use crate::cursor::EntryCursor;
use crate::entry::Entry;
use crate::options::DEFAULT_BLOCK_BYTES;
use crate::table::{Search, Table};
use crate::table_builder::write_table;

fn write_sorted(pairs: BTreeMap<Vec<u8>, Vec<u8>>, output: &Path) -> Result<u64> {
    let entries = pairs.into_iter().map(|(k, v)| Ok((k, Entry::Value(v))));
    let summary = write_table(&Fs::default(), output, DEFAULT_BLOCK_BYTES, 0, 0, entries)?;
    Ok(summary.entries)
}

/// Builds the table `output` from `key<delimiter>value` lines in any order (the rules
/// are in the module documentation). Returns the number of entries written.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the line for a bad line, or for an empty delimiter;
/// [`Error::Io`] when reading the input (path `<input>`) or writing `output` fails.
pub fn build_from_lines(input: impl BufRead, delimiter: &str, output: &Path) -> Result<u64> {
    let mut pairs = BTreeMap::new();
    for pair in LinePairs::new(input, delimiter)? {
        let (key, value) = pair?;
        pairs.insert(key, value);
    }
    write_sorted(pairs, output)
}

/// The pairs of `key<delimiter>value` lines, parsed one line at a time as they are read
/// (the rules are in the module documentation), in input order: what `kv sstable build`
/// and `kv load` read. It holds one line in memory, never the whole input.
///
/// An iterator of `Result`s: after an error (a bad line, a failed read) it ends.
#[derive(Debug)]
pub struct LinePairs<R> {
    input: R,
    delimiter: Vec<u8>,
    line: Vec<u8>,
    number: u64,
    done: bool,
}

impl<R: BufRead> LinePairs<R> {
    /// The pairs of the lines of `input`, each split at the first `delimiter`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty delimiter.
    pub fn new(input: R, delimiter: &str) -> Result<Self> {
        if delimiter.is_empty() {
            return Err(Error::InvalidArgument(
                "the delimiter must not be empty".to_string(),
            ));
        }
        Ok(LinePairs {
            input,
            delimiter: delimiter.as_bytes().to_vec(),
            line: Vec::new(),
            number: 0,
            done: false,
        })
    }

    /// The number of the line read last, counting from 1 (0 before the first): the line
    /// of the pair just returned.
    pub fn line_number(&self) -> u64 {
        self.number
    }

    /// The next pair; `None` at the end of the input.
    fn read_pair(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        loop {
            self.line.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.line)
                .map_err(|e| Error::io("<input>", e))?;
            if n == 0 {
                return Ok(None);
            }
            self.number += 1;
            let mut text = self.line.as_slice();
            text = text.strip_suffix(b"\n").unwrap_or(text);
            text = text.strip_suffix(b"\r").unwrap_or(text);
            if !text.is_empty() {
                return split_line(text, &self.delimiter, self.number).map(Some);
            }
        }
    }
}

/// Splits one line (without its line end) at the first `delimiter`.
fn split_line(text: &[u8], delimiter: &[u8], number: u64) -> Result<(Vec<u8>, Vec<u8>)> {
    let bad = |what: String| Error::InvalidArgument(format!("line {number}: {what}"));
    let Some(at) = text.windows(delimiter.len()).position(|w| w == delimiter) else {
        return Err(bad(format!(
            "no delimiter {:?} in the line",
            String::from_utf8_lossy(delimiter)
        )));
    };
    let (key, value) = (&text[..at], &text[at + delimiter.len()..]);
    if key.is_empty() {
        return Err(bad("empty key".to_string()));
    }
    check_key_value(key, value).map_err(|e| bad(e.to_string()))?;
    Ok((key.to_vec(), value.to_vec()))
}

impl<R: BufRead> Iterator for LinePairs<R> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.read_pair();
        self.done = !matches!(next, Ok(Some(_)));
        next.transpose()
    }
}

/// Builds the table `output` from `pairs` in any order; a key given twice keeps its last
/// value. Returns the number of entries written.
///
/// # Errors
/// [`Error::KeyTooLarge`] or [`Error::ValueTooLarge`] (nothing written), [`Error::Io`].
pub fn build_from_pairs(
    pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    output: &Path,
) -> Result<u64> {
    let mut sorted = BTreeMap::new();
    for (key, value) in pairs {
        check_key_value(&key, &value)?;
        sorted.insert(key, value);
    }
    write_sorted(sorted, output)
}

/// The value of `key` in the table at `path`, or `None`. (A tombstone, found in a table an
/// engine wrote, is `None` too.)
///
/// # Errors
/// [`Error::Corruption`] for a damaged or foreign file, [`Error::FormatVersion`],
/// [`Error::Io`].
pub fn get(path: &Path, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let table = Table::open(&Fs::default(), path, 0)?;
    let mut reads = 0;
    Ok(table
        .get(key, Search::Binary, &mut reads)?
        .and_then(Entry::into_value))
}

/// Calls `each` with every key and value of the table at `path`, in key order (tombstones,
/// which only engine-written tables hold, are skipped).
///
/// # Errors
/// As [`get`], and any error `each` returns.
pub fn scan(path: &Path, mut each: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
    let table = Arc::new(Table::open(&Fs::default(), path, 0)?);
    let mut cursor = table.cursor();
    cursor.seek_to_first()?;
    while cursor.valid() {
        if let Some(value) = cursor.value() {
            each(cursor.key(), value)?;
        }
        cursor.next()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_pairs_stream_in_input_order_with_their_line_numbers() {
        let input: &[u8] = b"b=1\r\n\na=2=x\nb=3\n";
        let mut lines = LinePairs::new(input, "=").unwrap();
        let mut seen = Vec::new();
        while let Some(pair) = lines.next() {
            let (key, value) = pair.unwrap();
            seen.push((key, value, lines.line_number()));
        }
        let expected: Vec<(Vec<u8>, Vec<u8>, u64)> = vec![
            (b"b".to_vec(), b"1".to_vec(), 1),
            (b"a".to_vec(), b"2=x".to_vec(), 3),
            (b"b".to_vec(), b"3".to_vec(), 4),
        ];
        assert_eq!(seen, expected);
    }

    #[test]
    fn line_pairs_end_after_a_bad_line() {
        let input: &[u8] = b"a,1\nno delimiter\nb,2\n";
        let mut lines = LinePairs::new(input, ",").unwrap();
        assert!(lines.next().unwrap().is_ok());
        let err = lines.next().unwrap().unwrap_err();
        assert!(err.to_string().contains("line 2: no delimiter"), "{err}");
        assert!(lines.next().is_none());
        assert!(LinePairs::new(input, "").is_err());
    }
}

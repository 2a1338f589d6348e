//! `kv shell`: drive one open store with commands on standard input.
//!
//! The shell is a line protocol, meant for people and for scripts alike: one command a line
//! in, one reply a line out (a scan replies with several), the output flushed after every
//! reply so a program on the other end of a pipe can wait for each answer.
//!
//! | command | reply |
//! |---|---|
//! | `put K V` | `OK`, written only after the engine's `put` returned |
//! | `get K` | the value, or `(nil)` when the key is absent |
//! | `del K` (or `delete K`) | `OK` |
//! | `scan FROM TO` | one `K V` line per pair with `FROM <= K < TO`, then `END`; `-` for an open bound |
//! | `rscan FROM TO` | the same pairs as `scan FROM TO`, in descending key order, then `END` |
//! | `seek KEY N` | one `K V` line for each of the first `N` pairs with `K >= KEY`, then `END` |
//! | `sync` | `OK` once everything before it is durable against power loss |
//! | `compact` | `OK` once the engine's compaction has run |
//! | `stats` | one line of `name=value` pairs ([`kv_shared::Stats::one_line`]) |
//! | `quit` (or `exit`, or the end of input) | nothing: the store is closed and the shell ends |
//!
//! Keys and values are single tokens (any bytes but ASCII whitespace; the input need not
//! be UTF-8), read and printed as
//! [`crate::text`] describes (as typed, or hex with `--hex`). A blank line is skipped without
//! a reply. Anything that goes wrong (an unknown command, a wrong number of arguments, a key
//! over the size limit, a count that is not a number, an I/O error) replies `ERR <message>`
//! and the shell reads on; a scan or seek that fails part way ends with an `ERR` line
//! instead of `END`.

use std::io::{BufRead, Write};
use std::ops::Bound;

use kv_shared::{DynEngine, Error, KeyRange, ScanIter};

use crate::text::{TextMode, escape};

/// Runs the shell over `input` until `quit` or its end, writing replies to `output`.
/// The caller closes the engine afterwards.
///
/// # Errors
/// Only a failure to read the input or write the output (a closed pipe); engine errors are
/// replies.
pub fn run(
    engine: &dyn DynEngine,
    mode: TextMode,
    mut input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        // Tokens are bytes: in text mode a key may hold any byte but ASCII whitespace.
        let words: Vec<&[u8]> = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            continue;
        }
        if matches!(words[0], b"quit" | b"exit") {
            if words.len() == 1 {
                break;
            }
            writeln!(output, "ERR `{}` takes no arguments", escape(words[0]))?;
        } else if let Err(e) = execute(engine, mode, &words, &mut output)? {
            writeln!(output, "ERR {e}")?;
        }
        output.flush()?;
    }
    output.flush()
}

/// Why a command failed: the text after `ERR`.
struct Failure(String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            // The shell's own usage errors read better without the "invalid argument" prefix.
            Error::InvalidArgument(message) => Failure(message),
            other => Failure(other.to_string()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// Runs one command. The outer result is an output failure; the inner one is the command's
/// own error, which the caller turns into an `ERR` reply.
fn execute(
    engine: &dyn DynEngine,
    mode: TextMode,
    words: &[&[u8]],
    out: &mut impl Write,
) -> std::io::Result<Result<()>> {
    match run_command(engine, mode, words) {
        Err(e) => Ok(Err(e)),
        Ok(Reply::Line(line)) => {
            writeln!(out, "{line}")?;
            Ok(Ok(()))
        }
        Ok(Reply::Pairs(query)) => print_pairs(engine, mode, query, out),
    }
}

/// What a command replies.
enum Reply {
    /// One line.
    Line(String),
    /// A `K V` line for each pair, then `END`.
    Pairs(PairQuery),
}

/// Runs one command (`words[0]`, with the rest as its arguments) up to its reply.
fn run_command(engine: &dyn DynEngine, mode: TextMode, words: &[&[u8]]) -> Result<Reply> {
    let (command, args) = (escape(words[0]), &words[1..]);
    let expect = |n: usize, usage: &str| -> Result<()> {
        if args.len() == n {
            Ok(())
        } else {
            Err(Failure(format!(
                "`{command}` takes {n} argument{}: {usage}",
                if n == 1 { "" } else { "s" }
            )))
        }
    };
    let ok = || Ok(Reply::Line("OK".into()));
    let arg = |i: usize| mode.decode(args[i]);
    match command.as_str() {
        "put" => {
            expect(2, "put KEY VALUE")?;
            engine.put(&arg(0)?, &arg(1)?)?;
            ok()
        }
        "get" => {
            expect(1, "get KEY")?;
            Ok(Reply::Line(match engine.get(&arg(0)?)? {
                Some(value) => mode.encode(&value),
                None => "(nil)".into(),
            }))
        }
        "del" | "delete" => {
            expect(1, "del KEY")?;
            engine.delete(&arg(0)?)?;
            ok()
        }
        "scan" => {
            expect(2, "scan FROM TO (`-` for an open bound)")?;
            Ok(Reply::Pairs(PairQuery::Scan(range(
                mode, args[0], args[1],
            )?)))
        }
        "rscan" => {
            expect(2, "rscan FROM TO (`-` for an open bound)")?;
            Ok(Reply::Pairs(PairQuery::ReverseScan(range(
                mode, args[0], args[1],
            )?)))
        }
        "seek" => {
            expect(2, "seek KEY N")?;
            let limit = count(args[1])?;
            Ok(Reply::Pairs(PairQuery::Seek(arg(0)?, limit)))
        }
        "sync" => {
            expect(0, "sync")?;
            engine.sync()?;
            ok()
        }
        "compact" => {
            expect(0, "compact")?;
            engine.compact()?;
            ok()
        }
        "stats" => {
            expect(0, "stats")?;
            Ok(Reply::Line(engine.stats()?.one_line()))
        }
        _ => Err(Failure(format!(
            "unknown command `{command}` (commands: put get del scan rscan seek sync compact stats quit)"
        ))),
    }
}

/// The range `FROM <= K < TO` of a `scan` or `rscan`, `-` standing for an open bound.
fn range(mode: TextMode, from: &[u8], to: &[u8]) -> Result<KeyRange> {
    let bound = |token: &[u8], inclusive: bool| -> Result<Bound<Vec<u8>>> {
        Ok(match token {
            b"-" => Bound::Unbounded,
            _ if inclusive => Bound::Included(mode.decode(token)?),
            _ => Bound::Excluded(mode.decode(token)?),
        })
    };
    Ok(KeyRange::new(bound(from, true)?, bound(to, false)?))
}

/// The count `N` of a `seek`: a decimal number, 0 or more.
fn count(token: &[u8]) -> Result<usize> {
    std::str::from_utf8(token)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| {
            Failure(format!(
                "`seek` takes a number of pairs N, got `{}`",
                escape(token)
            ))
        })
}

/// The pairs a listing command prints, in the order it prints them: what `scan`, `rscan`
/// and `seek` ask for, in the shell and as `kv` commands alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairQuery {
    /// The pairs of a range, in ascending key order.
    Scan(KeyRange),
    /// The pairs of a range, in descending key order.
    ReverseScan(KeyRange),
    /// The first pairs at or after a key, at most so many.
    Seek(Vec<u8>, usize),
}

impl PairQuery {
    /// The pairs, read lazily from `engine`: a seek reads no further than its last pair.
    ///
    /// # Errors
    /// As [`kv_shared::Engine::scan`].
    pub fn pairs(self, engine: &dyn DynEngine) -> kv_shared::Result<ScanIter<'_>> {
        match self {
            PairQuery::Scan(range) => engine.scan(range),
            PairQuery::ReverseScan(range) => engine.scan_rev(range),
            PairQuery::Seek(from, limit) => {
                Ok(Box::new(engine.scan(KeyRange::from(from))?.take(limit)))
            }
        }
    }
}

/// Prints every pair `query` asks for, then `END`. A failure part way is the command's
/// error (the pairs printed so far stay printed; the `ERR` line replaces `END`).
fn print_pairs(
    engine: &dyn DynEngine,
    mode: TextMode,
    query: PairQuery,
    out: &mut impl Write,
) -> std::io::Result<Result<()>> {
    let iter = match query.pairs(engine) {
        Ok(iter) => iter,
        Err(e) => return Ok(Err(e.into())),
    };
    for item in iter {
        match item {
            Ok((key, value)) => writeln!(out, "{} {}", mode.encode(&key), mode.encode(&value))?,
            Err(e) => return Ok(Err(e.into())),
        }
    }
    writeln!(out, "END")?;
    Ok(Ok(()))
}

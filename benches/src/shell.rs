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
//! | `sync` | `OK` once everything before it is durable against power loss |
//! | `compact` | `OK` once the engine's compaction has run |
//! | `stats` | one line of `name=value` pairs ([`kv_shared::Stats::one_line`]) |
//! | `quit` (or `exit`, or the end of input) | nothing: the store is closed and the shell ends |
//!
//! Keys and values are single tokens (any bytes but ASCII whitespace; the input need not
//! be UTF-8), read and printed as
//! [`crate::text`] describes (as typed, or hex with `--hex`). A blank line is skipped without
//! a reply. Anything that goes wrong (an unknown command, a wrong number of arguments, a key
//! over the size limit, an I/O error) replies `ERR <message>` and the shell reads on; a scan
//! that fails part way ends with an `ERR` line instead of `END`.

use std::io::{BufRead, Write};
use std::ops::Bound;

use kv_shared::{DynEngine, Error, KeyRange};

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
    let result = (|| -> Result<Reply> {
        match command.as_str() {
            "put" => {
                expect(2, "put KEY VALUE")?;
                engine.put(&mode.decode(args[0])?, &mode.decode(args[1])?)?;
                Ok(Reply::Line("OK".into()))
            }
            "get" => {
                expect(1, "get KEY")?;
                Ok(Reply::Line(match engine.get(&mode.decode(args[0])?)? {
                    Some(value) => mode.encode(&value),
                    None => "(nil)".into(),
                }))
            }
            "del" | "delete" => {
                expect(1, "del KEY")?;
                engine.delete(&mode.decode(args[0])?)?;
                Ok(Reply::Line("OK".into()))
            }
            "scan" => {
                expect(2, "scan FROM TO (`-` for an open bound)")?;
                let bound = |token: &[u8], inclusive: bool| -> Result<Bound<Vec<u8>>> {
                    Ok(match token {
                        b"-" => Bound::Unbounded,
                        _ if inclusive => Bound::Included(mode.decode(token)?),
                        _ => Bound::Excluded(mode.decode(token)?),
                    })
                };
                Ok(Reply::Scan(KeyRange::new(
                    bound(args[0], true)?,
                    bound(args[1], false)?,
                )))
            }
            "sync" => {
                expect(0, "sync")?;
                engine.sync()?;
                Ok(Reply::Line("OK".into()))
            }
            "compact" => {
                expect(0, "compact")?;
                engine.compact()?;
                Ok(Reply::Line("OK".into()))
            }
            "stats" => {
                expect(0, "stats")?;
                Ok(Reply::Line(engine.stats()?.one_line()))
            }
            _ => Err(Failure(format!(
                "unknown command `{command}` (commands: put get del scan sync compact stats quit)"
            ))),
        }
    })();
    match result {
        Err(e) => Ok(Err(e)),
        Ok(Reply::Line(line)) => {
            writeln!(out, "{line}")?;
            Ok(Ok(()))
        }
        Ok(Reply::Scan(range)) => print_scan(engine, mode, range, out),
    }
}

enum Reply {
    Line(String),
    Scan(KeyRange),
}

/// Prints every pair of `range`, then `END`. A failure part way is the command's error (the
/// pairs printed so far stay printed; the `ERR` line replaces `END`).
fn print_scan(
    engine: &dyn DynEngine,
    mode: TextMode,
    range: KeyRange,
    out: &mut impl Write,
) -> std::io::Result<Result<()>> {
    let iter = match engine.scan(range) {
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

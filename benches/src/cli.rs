//! The `kv` command-line tool: open a store and run one command on it, or a shell.
//!
//! ```text
//! kv --engine NAME --dir DIR [--set NAME=VALUE]... [--hex] COMMAND
//!     put KEY VALUE | get KEY | delete KEY | scan [--from K] [--to K]
//!     | rscan [--from K] [--to K] | seek KEY [--limit N] | compact | stats | shell
//!     | repair [--dry-run] | load FILE [--delimiter D] [--sorted]
//!     | serve [--listen 127.0.0.1:PORT] [--resp 127.0.0.1:PORT2]
//! kv inspect FILE      annotated dump of any engine file
//! kv draw --dir DIR [--engine NAME] [--file F] -o OUT.svg   a picture of a store or a file
//! kv engines           the engines and their options
//! kv sstable build [--delimiter ,] INPUT OUTPUT | get FILE KEY | scan FILE
//! kv workshop new STAGE DIR [--from PREVIOUS_DIR] | check DIR   (see kv_workshop)
//! ```
//!
//! `scan` prints `KEY VALUE` lines in ascending key order, `--from` inclusive, `--to`
//! exclusive; `rscan` prints the same pairs in descending order; `seek KEY` prints the first
//! `--limit` pairs (10 by default) whose key is `KEY` or after it.
//!
//! `repair` brings back a store that refuses to open because a file is damaged (see
//! [`kv_shared::repair`]): it does not open the store but calls the engine's own `repair`
//! function, which moves every damaged file into `DIR/lost/`, salvages its intact records
//! into new files, and prints what it kept and what it could not. `--dry-run` only reads and
//! prints what a repair would do. It refuses a directory that is not a store of that engine,
//! and a store that is open.
//!
//! `load` bulk-loads the `key<delimiter>value` lines of FILE (`-` for standard input) with
//! the engine's `load` ([`kv_shared::bulk`]), in the line format `kv sstable build` reads
//! (`sstable::standalone::LinePairs`: split at the first delimiter, `,` by default; empty
//! lines skipped; with `--hex`, key and value are hex). The file is streamed, never held
//! whole in memory. A key given twice keeps its last value. `--sorted` promises keys in
//! ascending byte order ([`kv_shared::LoadOrder::Sorted`]); without it the input may come
//! in any order, and an engine that needs order sorts it itself. It prints what the load
//! did: pairs, bytes, MB/s (10^6 bytes a second, over the whole command's load), the sort
//! runs written, the files added and how the pairs went in. A malformed line stops the load
//! with an error naming its line number; what was loaded before it stays or not as the
//! engine's `load` documents (the default, batches of 1,000, keeps the batches before it).
//!
//! `serve` serves the store over HTTP (a JSON API and a live page at `/`) and, with
//! `--resp`, the Redis protocol, until Ctrl-C; it prints the addresses it bound, one a line
//! (see [`crate::serve`]).
//!
//! `kv draw` pictures a store's structure as SVG ([`crate::draw`]), reading it without a
//! lock or a change: the whole store, or with `--file F` one of its files (or, without
//! `--dir`, a standalone SSTable); `-o -` writes the SVG to standard output.
//!
//! `kv sstable` works on one standalone SSTable file (stage 3's format, see
//! `sstable::standalone`), no store needed: `build` reads `key<delimiter>value` lines from
//! INPUT (`-` for standard input) and writes them sorted to OUTPUT, `get` prints a value or
//! `(nil)`, `scan` prints `key<TAB>value` lines in key order.
//!
//! Exit status: 0 on success (a `get` of a missing key prints `(nil)` and succeeds), 1 with
//! `kv: error: ...` on standard error when the command fails (the directory is locked by
//! another process, holds another engine's store, an option is unknown, a file is corrupt),
//! 2 for a malformed command line. Keys and values are printed as [`crate::text`] describes.

use std::io::{BufRead, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, Subcommand};
use kv_shared::{DynEngine, Error, KeyRange, LoadOrder, LoadReport, Options, Result};

use crate::engines::{EngineInfo, find};
use crate::shell::PairQuery;
use crate::text::TextMode;

/// `kv`: a command-line client for every engine of the course.
#[derive(Debug, Parser)]
#[command(
    name = "kv",
    version,
    about = "Opens a store with any engine of the course and runs one command on it, or a shell; dumps engine files; builds standalone SSTables."
)]
pub struct KvArgs {
    /// Engine to open the store with (see `kv engines`).
    #[arg(long, global = true)]
    pub engine: Option<String>,
    /// The store directory (created if missing).
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// Sets an engine option, e.g. `--set segment_bytes=4K` (repeatable; see `kv engines`).
    #[arg(long = "set", value_name = "NAME=VALUE", global = true)]
    pub set: Vec<String>,
    /// Keys and values are hex, in and out, for binary data.
    #[arg(long, global = true)]
    pub hex: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: KvCommand,
}

/// The `kv` subcommands.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Sets KEY to VALUE; prints OK.
    Put {
        /// The key.
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Prints the value of KEY, or (nil).
    Get {
        /// The key.
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
    /// Deletes KEY; prints OK.
    Delete {
        /// The key.
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
    /// Prints `KEY VALUE` lines in key order, FROM inclusive, TO exclusive.
    Scan {
        /// First key (inclusive); from the start when absent.
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// End key (exclusive); to the end when absent.
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
    },
    /// Prints `KEY VALUE` lines in descending key order, FROM inclusive, TO exclusive (the
    /// pairs of `scan`, last first).
    Rscan {
        /// Lowest key (inclusive), printed last; down to the first key when absent.
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// End key (exclusive): the pairs start below it; from the last key when absent.
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
    },
    /// Prints the first pairs at or after KEY as `KEY VALUE` lines, in key order.
    Seek {
        /// Where to start: the first pair printed is this key's, or the next one after it.
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// How many pairs to print at most.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Runs the engine's compaction to completion; prints OK.
    Compact,
    /// Prints the engine's statistics on one line.
    Stats,
    /// Repairs a store that refuses to open because a file is damaged: moves each damaged
    /// file into DIR/lost/ and salvages its intact records; prints what it kept and lost.
    Repair {
        /// Only read the store and print what a repair would do, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Bulk-loads the `key<DELIMITER>value` lines of FILE into the store (a key given twice
    /// keeps its last value); prints pairs, bytes, MB/s, sort runs, files added and method.
    Load {
        /// The text file to read (`-` for standard input).
        file: PathBuf,
        /// What separates a key from its value on each line (the first occurrence counts).
        #[arg(long, default_value = ",", allow_hyphen_values = true)]
        delimiter: String,
        /// Promises the keys ascend (equal neighbours allowed): an engine that writes tables
        /// skips its sort, and refuses a key out of order.
        #[arg(long)]
        sorted: bool,
    },
    /// Serves the store over HTTP (JSON API and a live page at /) and, with --resp, the
    /// Redis protocol, until Ctrl-C; prints the bound addresses, one a line.
    Serve {
        /// The HTTP address (port 0: any free port).
        #[arg(long, default_value = crate::serve::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// The Redis protocol's address (RESP2; port 0: any free port); off when absent.
        #[arg(long)]
        resp: Option<std::net::SocketAddr>,
    },
    /// Reads commands from standard input, one a line (put, get, del, scan, rscan, seek, sync, compact, stats, quit).
    Shell,
    /// Prints the annotated dump of any file an engine wrote.
    Inspect {
        /// The file.
        file: PathBuf,
    },
    /// Lists the engines and the options each documents.
    Engines,
    /// Draws the store in --dir (or one of its files, --file) as an SVG picture, reading it
    /// without a lock and changing nothing.
    Draw {
        /// One file to draw: a file of the store, or without --dir a standalone SSTable.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The SVG file to write (`-` for standard output).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Builds, reads and scans one standalone SSTable file (stage 3's format).
    #[command(subcommand)]
    Sstable(SstableCommand),
    /// The workshop: `new STAGE DIR` writes a stage's crate with exercises for you to
    /// finish, `check DIR` runs its tests and scores each exercise (see kv_workshop).
    #[command(subcommand)]
    Workshop(kv_workshop::cli::WorkshopCommand),
}

/// The `kv sstable` subcommands.
#[derive(Debug, Subcommand)]
pub enum SstableCommand {
    /// Writes the `key<DELIMITER>value` lines of INPUT, sorted, as one SSTable (a key given
    /// twice keeps its last value).
    Build {
        /// What separates a key from its value on each line (the first occurrence counts).
        #[arg(long, default_value = ",", allow_hyphen_values = true)]
        delimiter: String,
        /// The text file to read (`-` for standard input).
        input: PathBuf,
        /// The SSTable file to write.
        output: PathBuf,
    },
    /// Prints the value of KEY in FILE, or (nil).
    Get {
        /// The SSTable file.
        file: PathBuf,
        /// The key.
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
    /// Prints every entry of FILE as `key<TAB>value`, in key order.
    Scan {
        /// The SSTable file.
        file: PathBuf,
    },
}

/// Runs a parsed `kv` command against `registry`, reading the shell's commands from `input`.
///
/// # Errors
/// Whatever the engine or the file system reports, and [`Error::InvalidArgument`] for a
/// missing `--engine`/`--dir`, an unknown engine or option, malformed hex, or an unknown file
/// format.
pub fn run(
    registry: &[EngineInfo],
    args: KvArgs,
    input: impl BufRead,
    mut out: impl Write,
) -> Result<()> {
    let mode = if args.hex {
        TextMode::Hex
    } else {
        TextMode::Text
    };
    let stdout_err = |e: std::io::Error| Error::io("<standard output>", e);
    match &args.command {
        KvCommand::Inspect { file } => {
            let text = crate::inspect::dump_file(registry, file)?;
            out.write_all(text.as_bytes()).map_err(stdout_err)?;
            return Ok(());
        }
        KvCommand::Engines => {
            out.write_all(engines_text(registry).as_bytes())
                .map_err(stdout_err)?;
            return Ok(());
        }
        KvCommand::Sstable(command) => return sstable_command(command, mode, input, &mut out),
        KvCommand::Draw { file, output } => return draw(registry, &args, file, output, out),
        KvCommand::Repair { dry_run } => return repair(registry, &args, *dry_run, out),
        KvCommand::Workshop(command) => return Ok(kv_workshop::cli::run(command, &mut out)?),
        KvCommand::Serve { listen, resp } => {
            let (info, dir, options) = store_args(registry, &args)?;
            let addresses = crate::serve::Addresses {
                http: *listen,
                resp: *resp,
            };
            return crate::serve::run(*info, dir, options, addresses, out);
        }
        _ => {}
    }
    let engine = open_store(registry, &args)?;
    let result = run_on_store(engine.as_ref(), mode, &args.command, input, &mut out);
    let closed = engine.close();
    result?;
    closed?;
    out.flush().map_err(stdout_err)
}

fn open_store(registry: &[EngineInfo], args: &KvArgs) -> Result<Box<dyn DynEngine>> {
    let (info, dir, options) = store_args(registry, args)?;
    (info.open)(dir, &options)
}

/// The engine, directory and options of a command on a store.
fn store_args<'a>(
    registry: &'a [EngineInfo],
    args: &'a KvArgs,
) -> Result<(&'a EngineInfo, &'a Path, Options)> {
    let missing =
        |flag: &str| Error::InvalidArgument(format!("this command needs {flag} (see `kv --help`)"));
    let name = args
        .engine
        .as_deref()
        .ok_or_else(|| missing("--engine NAME"))?;
    let dir = args.dir.as_deref().ok_or_else(|| missing("--dir DIR"))?;
    let info = find(registry, name)?;
    let mut options = Options::new();
    for pair in &args.set {
        options.set_pair(pair)?;
    }
    Ok((info, dir, options))
}

/// `kv repair`: runs the engine's repair on the store (never opening it) and prints the
/// report.
fn repair(
    registry: &[EngineInfo],
    args: &KvArgs,
    dry_run: bool,
    mut out: impl Write,
) -> Result<()> {
    let (info, dir, options) = store_args(registry, args)?;
    let report = (info.repair)(dir, &options, dry_run)?;
    let io = |e: std::io::Error| Error::io("<standard output>", e);
    write!(out, "{report}").map_err(io)?;
    out.flush().map_err(io)
}

fn run_on_store(
    engine: &dyn DynEngine,
    mode: TextMode,
    command: &KvCommand,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<()> {
    let io = |e: std::io::Error| Error::io("<standard output>", e);
    match command {
        KvCommand::Put { key, value } => {
            engine.put(
                &mode.decode(key.as_bytes())?,
                &mode.decode(value.as_bytes())?,
            )?;
            writeln!(out, "OK").map_err(io)
        }
        KvCommand::Get { key } => match engine.get(&mode.decode(key.as_bytes())?)? {
            Some(value) => writeln!(out, "{}", mode.encode(&value)).map_err(io),
            None => writeln!(out, "(nil)").map_err(io),
        },
        KvCommand::Delete { key } => {
            engine.delete(&mode.decode(key.as_bytes())?)?;
            writeln!(out, "OK").map_err(io)
        }
        KvCommand::Scan { from, to } => {
            let query = PairQuery::Scan(range(mode, from, to)?);
            print_pairs(engine, mode, query, out)
        }
        KvCommand::Rscan { from, to } => {
            let query = PairQuery::ReverseScan(range(mode, from, to)?);
            print_pairs(engine, mode, query, out)
        }
        KvCommand::Seek { key, limit } => {
            let query = PairQuery::Seek(mode.decode(key.as_bytes())?, *limit);
            print_pairs(engine, mode, query, out)
        }
        KvCommand::Compact => {
            engine.compact()?;
            writeln!(out, "OK").map_err(io)
        }
        KvCommand::Stats => writeln!(out, "{}", engine.stats()?.one_line()).map_err(io),
        KvCommand::Shell => crate::shell::run(engine, mode, input, out).map_err(io),
        KvCommand::Load {
            file,
            delimiter,
            sorted,
        } => {
            let order = if *sorted {
                LoadOrder::Sorted
            } else {
                LoadOrder::Unsorted
            };
            load(engine, mode, file, delimiter, order, input, out)
        }
        KvCommand::Inspect { .. }
        | KvCommand::Repair { .. }
        | KvCommand::Engines
        | KvCommand::Draw { .. }
        | KvCommand::Sstable(_)
        | KvCommand::Serve { .. }
        | KvCommand::Workshop(_) => Ok(()),
    }
}

/// `kv load`: streams the lines of `file` (`-`: `stdin`) into the engine's `load` and
/// prints its report.
fn load(
    engine: &dyn DynEngine,
    mode: TextMode,
    file: &Path,
    delimiter: &str,
    order: LoadOrder,
    stdin: impl BufRead,
    out: &mut impl Write,
) -> Result<()> {
    let started = Instant::now();
    let report = if file.as_os_str() == "-" {
        load_lines(engine, mode, stdin, delimiter, order)?
    } else {
        let opened = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        let reader = std::io::BufReader::with_capacity(64 << 10, opened);
        load_lines(engine, mode, reader, delimiter, order)?
    };
    let seconds = started.elapsed().as_secs_f64();
    out.write_all(load_report_text(&report, seconds).as_bytes())
        .map_err(|e| Error::io("<standard output>", e))
}

fn load_lines(
    engine: &dyn DynEngine,
    mode: TextMode,
    input: impl BufRead,
    delimiter: &str,
    order: LoadOrder,
) -> Result<LoadReport> {
    let lines = sstable::standalone::LinePairs::new(input, delimiter)?;
    let mut pairs = TextPairs { lines, mode };
    engine.load(&mut pairs, order)
}

/// The pairs of a `kv load` input, their key and value decoded as `--hex` says.
struct TextPairs<R> {
    lines: sstable::standalone::LinePairs<R>,
    mode: TextMode,
}

impl<R: BufRead> Iterator for TextPairs<R> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.lines.next()?;
        if self.mode == TextMode::Text {
            return Some(pair);
        }
        let line = self.lines.line_number();
        let decoded = pair.and_then(|(key, value)| {
            let key = self.mode.decode(&key)?;
            let value = self.mode.decode(&value)?;
            kv_shared::check_key_value(&key, &value)?;
            Ok((key, value))
        });
        Some(decoded.map_err(|e| Error::InvalidArgument(format!("line {line}: {e}"))))
    }
}

/// What `kv load` prints: the report of the load, and its speed over `seconds`.
pub fn load_report_text(report: &LoadReport, seconds: f64) -> String {
    let megabytes = report.bytes as f64 / 1e6;
    let rate = megabytes / seconds.max(1e-9);
    format!(
        "loaded {} pairs, {} bytes in {seconds:.3} s: {rate:.1} MB/s\n\
         sort runs:   {}\n\
         files added: {}\n\
         method:      {}\n",
        report.pairs, report.bytes, report.sort_runs, report.files_added, report.method
    )
}

/// `kv draw`: draws the request's picture to `output` (`-`: to `out`).
fn draw(
    registry: &[EngineInfo],
    args: &KvArgs,
    file: &Option<PathBuf>,
    output: &PathBuf,
    mut out: impl Write,
) -> Result<()> {
    let mut options = Options::new();
    for pair in &args.set {
        options.set_pair(pair)?;
    }
    let request = crate::draw::Request {
        dir: args.dir.as_deref(),
        engine: args.engine.as_deref(),
        file: file.as_deref(),
    };
    let svg = crate::draw::draw(registry, request, &options)?;
    if output.as_os_str() == "-" {
        out.write_all(svg.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("<standard output>", e))
    } else {
        std::fs::write(output, svg).map_err(|e| Error::io(output, e))
    }
}

/// The range of `scan --from FROM --to TO` (and `rscan`'s): FROM inclusive, TO exclusive,
/// each open when absent.
fn range(mode: TextMode, from: &Option<String>, to: &Option<String>) -> Result<KeyRange> {
    let bound = |key: &Option<String>, inclusive: bool| -> Result<Bound<Vec<u8>>> {
        Ok(match key {
            None => Bound::Unbounded,
            Some(k) if inclusive => Bound::Included(mode.decode(k.as_bytes())?),
            Some(k) => Bound::Excluded(mode.decode(k.as_bytes())?),
        })
    };
    Ok(KeyRange::new(bound(from, true)?, bound(to, false)?))
}

/// Prints the pairs of `query` as `KEY VALUE` lines.
fn print_pairs(
    engine: &dyn DynEngine,
    mode: TextMode,
    query: PairQuery,
    out: &mut impl Write,
) -> Result<()> {
    let io = |e: std::io::Error| Error::io("<standard output>", e);
    for item in query.pairs(engine)? {
        let (key, value) = item?;
        writeln!(out, "{} {}", mode.encode(&key), mode.encode(&value)).map_err(io)?;
    }
    Ok(())
}

fn sstable_command(
    command: &SstableCommand,
    mode: TextMode,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<()> {
    let io = |e: std::io::Error| Error::io("<standard output>", e);
    match command {
        SstableCommand::Build {
            delimiter,
            input: path,
            output,
        } => {
            let entries = if path.as_os_str() == "-" {
                sstable::standalone::build_from_lines(input, delimiter, output)?
            } else {
                let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
                sstable::standalone::build_from_lines(
                    std::io::BufReader::new(file),
                    delimiter,
                    output,
                )?
            };
            let noun = if entries == 1 { "entry" } else { "entries" };
            writeln!(out, "wrote {entries} {noun} to {}", output.display()).map_err(io)
        }
        SstableCommand::Get { file, key } => {
            match sstable::standalone::get(file, &mode.decode(key.as_bytes())?)? {
                Some(value) => writeln!(out, "{}", mode.encode(&value)).map_err(io),
                None => writeln!(out, "(nil)").map_err(io),
            }
        }
        SstableCommand::Scan { file } => sstable::standalone::scan(file, |key, value| {
            writeln!(out, "{}\t{}", mode.encode(key), mode.encode(value)).map_err(io)
        }),
    }
}

/// What `kv engines` prints: each engine, its summary, and its options with their defaults;
/// then one line for each peer this build lacks ([`crate::peers::not_built`]), saying which
/// cargo feature builds it.
pub fn engines_text(registry: &[EngineInfo]) -> String {
    let mut text = String::new();
    if registry.is_empty() {
        text.push_str("no engines are registered in this build\n");
    }
    for engine in registry {
        text.push_str(&format!("{}: {}\n", engine.name, engine.summary));
        if engine.options.is_empty() {
            text.push_str("    (no options)\n");
        }
        let width = engine
            .options
            .iter()
            .map(|o| o.name.len() + o.default.len() + 1)
            .max()
            .unwrap_or(0);
        for option in engine.options {
            let setting = format!("{}={}", option.name, option.default);
            text.push_str(&format!("    --set {setting:<width$}  {}\n", option.doc));
        }
    }
    for peer in crate::peers::not_built() {
        text.push_str(&peer.not_built_line());
        text.push('\n');
    }
    text
}

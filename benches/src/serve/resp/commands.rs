//! The commands: each request is checked ([`plan`]) into an [`Action`], and the actions of
//! one read are run together ([`Action::run`]) on a blocking thread.
//!
//! Checking is done on the connection's task and never touches the engine: the name (any
//! case), the number of arguments, each key against [`Limits::max_key`], the options. A
//! request that fails answers with the error Redis gives for it (`-ERR unknown command
//! ...`, `-ERR wrong number of arguments for '...' command`, `-ERR syntax error`) and the
//! connection goes on. What the commands map to in the [`kv_shared::Engine`] contract is
//! in the table of the [parent module](super).

use std::sync::{Arc, Mutex};

use kv_shared::{DynEngine, KeyRange, Result, WriteBatch};

use super::cursors::CursorTable;
use super::glob;
use super::info;
use super::protocol::{Reply, Request};
use crate::serve::{Limits, Served};

/// What every connection shares: the store and `SCAN`'s cursor table.
#[derive(Debug)]
pub struct Context {
    /// The store being served.
    pub served: Arc<Served>,
    /// `SCAN`'s cursors ([`super::cursors`]).
    pub cursors: Mutex<CursorTable>,
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answered without the engine (`PING`, `ECHO`, `SELECT 0`, `COMMAND`, `CONFIG GET`, an
    /// error found while checking).
    Reply(Reply),
    /// `QUIT`: answer `+OK`, then close the connection.
    Quit,
    /// A call into the engine.
    Engine(EngineOp),
}

/// The commands that call the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineOp {
    /// `GET key`.
    Get(Vec<u8>),
    /// `SET key value`.
    Set(Vec<u8>, Vec<u8>),
    /// `DEL key [key ...]`.
    Del(Vec<Vec<u8>>),
    /// `EXISTS key [key ...]`.
    Exists(Vec<Vec<u8>>),
    /// `DBSIZE`.
    DbSize,
    /// `SCAN cursor [MATCH pattern] [COUNT n]`.
    Scan {
        /// 0 to start, else a number from the cursor table.
        cursor: u64,
        /// The glob keys must match ([`glob`]).
        pattern: Option<Vec<u8>>,
        /// How many keys to examine (clamped to [`Limits::max_scan`]).
        count: usize,
    },
    /// `INFO [section ...]`, the names in lower case.
    Info(Vec<String>),
}

/// One command: its name, its arity, and how its arguments are checked.
struct Spec {
    name: &'static str,
    min_args: usize,
    max_args: usize,
    check: Check,
}

/// Checks a command's arguments (their number already checked) into an action, or the
/// error reply.
type Check = fn(Vec<Vec<u8>>, &Limits) -> Result<Action, Reply>;

/// No upper bound on the arguments.
const MANY: usize = usize::MAX;

/// Every command the server knows (`COMMAND COUNT` answers how many).
const COMMANDS: &[Spec] = &[
    // name, fewest arguments, most arguments, check
    spec("PING", 0, 1, ping),
    spec("ECHO", 1, 1, echo),
    spec("GET", 1, 1, get),
    spec("SET", 2, MANY, set),
    spec("DEL", 1, MANY, del),
    spec("EXISTS", 1, MANY, exists),
    spec("DBSIZE", 0, 0, |_, _| Ok(Action::Engine(EngineOp::DbSize))),
    spec("SCAN", 1, MANY, scan),
    spec("INFO", 0, MANY, info_sections),
    spec("QUIT", 0, MANY, |_, _| Ok(Action::Quit)),
    spec("SELECT", 1, 1, select),
    spec("COMMAND", 0, MANY, command),
    spec("CONFIG", 1, MANY, config),
    spec("FLUSHALL", 0, MANY, flush),
    spec("FLUSHDB", 0, MANY, flush),
];

const fn spec(name: &'static str, min_args: usize, max_args: usize, check: Check) -> Spec {
    Spec {
        name,
        min_args,
        max_args,
        check,
    }
}

/// Checks one request (see the module documentation).
pub fn plan(request: Request, limits: &Limits) -> Action {
    let mut words = request.into_iter();
    let Some(name) = words.next() else {
        return Action::Reply(Reply::err("empty request"));
    };
    let args: Vec<Vec<u8>> = words.collect();
    let upper = String::from_utf8_lossy(&name).to_ascii_uppercase();
    let Some(spec) = COMMANDS.iter().find(|spec| spec.name == upper) else {
        return Action::Reply(unknown_command(&name, &args));
    };
    if args.len() < spec.min_args || args.len() > spec.max_args {
        return Action::Reply(wrong_arity(&spec.name.to_ascii_lowercase()));
    }
    (spec.check)(args, limits).unwrap_or_else(Action::Reply)
}

/// Redis's answer to an unknown command: its name and up to 128 bytes of its arguments.
fn unknown_command(name: &[u8], args: &[Vec<u8>]) -> Reply {
    let shown = |bytes: &[u8], max: usize| {
        String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
    };
    let mut listed = String::new();
    for arg in args {
        if listed.len() >= 128 {
            break;
        }
        listed.push_str(&format!("'{}' ", shown(arg, 128 - listed.len())));
    }
    Reply::err(format!(
        "unknown command '{}', with args beginning with: {listed}",
        shown(name, 128)
    ))
}

/// `-ERR wrong number of arguments for 'get' command`.
fn wrong_arity(name: &str) -> Reply {
    Reply::err(format!("wrong number of arguments for '{name}' command"))
}

fn syntax_error() -> Reply {
    Reply::err("syntax error")
}

/// Refuses a key over [`Limits::max_key`], with the engine's own words for it.
fn check_key(key: &[u8], limits: &Limits) -> Result<(), Reply> {
    if key.len() > limits.max_key {
        let error = kv_shared::Error::KeyTooLarge {
            len: key.len(),
            max: limits.max_key,
        };
        return Err(Reply::err(error));
    }
    Ok(())
}

fn check_keys(keys: Vec<Vec<u8>>, limits: &Limits) -> Result<Vec<Vec<u8>>, Reply> {
    keys.iter().try_for_each(|key| check_key(key, limits))?;
    Ok(keys)
}

/// The one argument a spec of exactly one argument was given.
fn only(args: Vec<Vec<u8>>) -> Vec<u8> {
    args.into_iter().next().unwrap_or_default()
}

fn ping(args: Vec<Vec<u8>>, _: &Limits) -> Result<Action, Reply> {
    Ok(Action::Reply(match args.into_iter().next() {
        None => Reply::Simple("PONG"),
        Some(message) => Reply::Bulk(message),
    }))
}

fn echo(args: Vec<Vec<u8>>, _: &Limits) -> Result<Action, Reply> {
    Ok(Action::Reply(Reply::Bulk(only(args))))
}

fn get(args: Vec<Vec<u8>>, limits: &Limits) -> Result<Action, Reply> {
    let key = only(args);
    check_key(&key, limits)?;
    Ok(Action::Engine(EngineOp::Get(key)))
}

/// `SET key value`; Redis's options (expiry, conditions) are refused by name.
fn set(args: Vec<Vec<u8>>, limits: &Limits) -> Result<Action, Reply> {
    const OPTIONS: [&str; 8] = ["EX", "PX", "EXAT", "PXAT", "KEEPTTL", "NX", "XX", "GET"];
    let mut args = args.into_iter();
    let (key, value) = (
        args.next().unwrap_or_default(),
        args.next().unwrap_or_default(),
    );
    if let Some(option) = args.next() {
        let option = String::from_utf8_lossy(&option).to_ascii_uppercase();
        return Err(if OPTIONS.contains(&option.as_str()) {
            Reply::err(format!(
                "SET option '{option}' is not supported here: this server only sets a key to a value (no expiry, no conditions)"
            ))
        } else {
            syntax_error()
        });
    }
    check_key(&key, limits)?;
    if value.len() > limits.max_value {
        let error = kv_shared::Error::ValueTooLarge {
            len: value.len(),
            max: limits.max_value,
        };
        return Err(Reply::err(error));
    }
    Ok(Action::Engine(EngineOp::Set(key, value)))
}

fn del(args: Vec<Vec<u8>>, limits: &Limits) -> Result<Action, Reply> {
    Ok(Action::Engine(EngineOp::Del(check_keys(args, limits)?)))
}

fn exists(args: Vec<Vec<u8>>, limits: &Limits) -> Result<Action, Reply> {
    Ok(Action::Engine(EngineOp::Exists(check_keys(args, limits)?)))
}

/// `SCAN cursor [MATCH pattern] [COUNT n]`, the options in any order.
fn scan(args: Vec<Vec<u8>>, limits: &Limits) -> Result<Action, Reply> {
    let mut args = args.into_iter();
    let cursor = args.next().unwrap_or_default();
    let cursor = std::str::from_utf8(&cursor)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| Reply::err("invalid cursor"))?;
    let (mut pattern, mut count) = (None, 10);
    while let Some(option) = args.next() {
        let value = args.next().ok_or_else(syntax_error)?;
        match option.to_ascii_uppercase().as_slice() {
            b"MATCH" => {
                if value.len() > limits.max_key {
                    return Err(Reply::err(format!(
                        "MATCH pattern of {} bytes is over the limit of {} bytes (the longest key)",
                        value.len(),
                        limits.max_key
                    )));
                }
                // `*` matches every key: no need to test each.
                pattern = (value != b"*").then_some(value);
            }
            b"COUNT" => {
                count = super::protocol::parse_integer(&value)
                    .ok_or_else(|| Reply::err("value is not an integer or out of range"))?;
                if count < 1 {
                    return Err(syntax_error());
                }
            }
            _ => return Err(syntax_error()),
        }
    }
    let count = usize::try_from(count).map_or(limits.max_scan, |c| c.min(limits.max_scan));
    Ok(Action::Engine(EngineOp::Scan {
        cursor,
        pattern,
        count,
    }))
}

fn info_sections(args: Vec<Vec<u8>>, _: &Limits) -> Result<Action, Reply> {
    let sections = args
        .iter()
        .map(|name| String::from_utf8_lossy(name).to_ascii_lowercase())
        .collect();
    Ok(Action::Engine(EngineOp::Info(sections)))
}

/// `SELECT 0`: the store is one keyspace, database 0.
fn select(args: Vec<Vec<u8>>, _: &Limits) -> Result<Action, Reply> {
    match super::protocol::parse_integer(&only(args)) {
        Some(0) => Ok(Action::Reply(Reply::Simple("OK"))),
        Some(_) => Err(Reply::err("DB index is out of range")),
        None => Err(Reply::err("value is not an integer or out of range")),
    }
}

/// `COMMAND`, `COMMAND DOCS` and `COMMAND INFO` answer an empty array (clients ask at
/// start, for hints they can do without); `COMMAND COUNT` the number of commands.
fn command(args: Vec<Vec<u8>>, _: &Limits) -> Result<Action, Reply> {
    let Some(sub) = args.first() else {
        return Ok(Action::Reply(Reply::Array(Vec::new())));
    };
    let sub = String::from_utf8_lossy(sub).to_ascii_uppercase();
    match sub.as_str() {
        "DOCS" | "INFO" | "LIST" => Ok(Action::Reply(Reply::Array(Vec::new()))),
        "COUNT" => Ok(Action::Reply(Reply::Integer(COMMANDS.len() as i64))),
        _ => Err(Reply::err(format!(
            "unknown subcommand '{sub}'. Try COMMAND HELP."
        ))),
    }
}

/// The settings `CONFIG GET` reports: what a Redis client may ask about persistence, with
/// the answers that describe these engines.
const SETTINGS: &[(&str, &str)] = &[
    // No snapshots: the store's files are its persistence.
    ("save", ""),
    // Every write goes to a log before it is acknowledged, as with Redis's append-only file.
    ("appendonly", "yes"),
    // Acknowledged writes are handed to the operating system, not synced: like `no`.
    ("appendfsync", "no"),
    // One keyspace.
    ("databases", "1"),
];

/// `CONFIG GET parameter [parameter ...]` (globs allowed): name, value, name, value...
fn config(args: Vec<Vec<u8>>, _: &Limits) -> Result<Action, Reply> {
    let mut args = args.into_iter();
    let sub = String::from_utf8_lossy(&args.next().unwrap_or_default()).to_ascii_uppercase();
    if sub != "GET" {
        return Err(Reply::err(format!("CONFIG {sub} is not supported here")));
    }
    let patterns: Vec<Vec<u8>> = args.map(|p| p.to_ascii_lowercase()).collect();
    if patterns.is_empty() {
        return Err(wrong_arity("config|get"));
    }
    let mut pairs = Vec::new();
    for (name, value) in SETTINGS {
        if patterns.iter().any(|p| glob::matches(p, name.as_bytes())) {
            pairs.push(Reply::text(*name));
            pairs.push(Reply::text(*value));
        }
    }
    Ok(Action::Reply(Reply::Array(pairs)))
}

fn flush(_: Vec<Vec<u8>>, _: &Limits) -> Result<Action, Reply> {
    Err(Reply::err(
        "FLUSHALL and FLUSHDB are not supported here: delete keys with DEL, or stop the server and remove the store's directory",
    ))
}

impl Action {
    /// The reply: from the engine for [`Action::Engine`], on the calling (blocking) thread.
    /// An engine error is the reply `-ERR <message>`.
    pub fn run(self, engine: &dyn DynEngine, context: &Context) -> Reply {
        match self {
            Action::Reply(reply) => reply,
            Action::Quit => Reply::Simple("OK"),
            Action::Engine(op) => op.run(engine, context).unwrap_or_else(Reply::err),
        }
    }
}

impl EngineOp {
    fn run(self, engine: &dyn DynEngine, context: &Context) -> Result<Reply> {
        Ok(match self {
            EngineOp::Get(key) => engine.get(&key)?.map_or(Reply::Null, Reply::Bulk),
            EngineOp::Set(key, value) => {
                engine.put(&key, &value)?;
                Reply::Simple("OK")
            }
            EngineOp::Del(keys) => Reply::Integer(delete(engine, keys)?),
            EngineOp::Exists(keys) => {
                let mut found = 0;
                for key in &keys {
                    found += i64::from(engine.get(key)?.is_some());
                }
                Reply::Integer(found)
            }
            EngineOp::DbSize => {
                Reply::Integer(i64::try_from(engine.stats()?.live_keys).unwrap_or(i64::MAX))
            }
            EngineOp::Scan {
                cursor,
                pattern,
                count,
            } => scan_step(engine, &context.cursors, cursor, pattern.as_deref(), count)?,
            EngineOp::Info(sections) => {
                Reply::text(info::render(&context.served, engine, &sections)?)
            }
        })
    }
}

/// `DEL`: reads which keys exist, then deletes those in one atomic batch; the count is of
/// distinct keys that existed when read.
fn delete(engine: &dyn DynEngine, keys: Vec<Vec<u8>>) -> Result<i64> {
    let mut batch = WriteBatch::new();
    let mut deleted: Vec<&[u8]> = Vec::new();
    for key in &keys {
        if !deleted.contains(&key.as_slice()) && engine.get(key)?.is_some() {
            batch.delete(key)?;
            deleted.push(key);
        }
    }
    if !batch.is_empty() {
        engine.write(&batch)?;
    }
    Ok(deleted.len() as i64)
}

/// One `SCAN` call: examines up to `count` keys after the cursor's resume key, returns
/// those matching `pattern` and the next cursor (0 when the walk reached the end).
fn scan_step(
    engine: &dyn DynEngine,
    cursors: &Mutex<CursorTable>,
    cursor: u64,
    pattern: Option<&[u8]>,
    count: usize,
) -> Result<Reply> {
    let lock = || {
        cursors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    let start = match cursor {
        0 => std::ops::Bound::Unbounded,
        id => match lock().get(id) {
            Some(key) => std::ops::Bound::Excluded(key.to_vec()),
            None => return Ok(Reply::err("invalid cursor")),
        },
    };
    let mut pairs = engine.scan(KeyRange::new(start, std::ops::Bound::Unbounded))?;
    let (mut keys, mut last) = (Vec::new(), None);
    for _ in 0..count {
        let Some(pair) = pairs.next() else { break };
        let (key, _value) = pair?;
        if pattern.is_none_or(|p| glob::matches(p, &key)) {
            keys.push(Reply::Bulk(key.clone()));
        }
        last = Some(key);
    }
    let next = match last {
        Some(last) if pairs.next().transpose()?.is_some() => lock().insert(last),
        _ => 0,
    };
    Ok(Reply::Array(vec![
        Reply::text(next.to_string()),
        Reply::Array(keys),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(words: &[&str]) -> Action {
        let request = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        plan(request, &Limits::default())
    }

    fn error(words: &[&str]) -> String {
        match planned(words) {
            Action::Reply(Reply::Error(text)) => text,
            other => panic!("{words:?}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn names_in_any_case_and_checked_arguments() {
        assert_eq!(planned(&["ping"]), Action::Reply(Reply::Simple("PONG")));
        assert_eq!(planned(&["PiNg", "hi"]), Action::Reply(Reply::text("hi")));
        assert_eq!(
            planned(&["set", "k", "v"]),
            Action::Engine(EngineOp::Set(b"k".to_vec(), b"v".to_vec()))
        );
        assert_eq!(planned(&["quit"]), Action::Quit);
        assert_eq!(
            planned(&["select", "0"]),
            Action::Reply(Reply::Simple("OK"))
        );
        assert_eq!(
            planned(&["scan", "7", "count", "50000", "match", "a*"]),
            Action::Engine(EngineOp::Scan {
                cursor: 7,
                pattern: Some(b"a*".to_vec()),
                count: Limits::default().max_scan,
            })
        );
    }

    #[test]
    fn errors_in_redis_words() {
        assert_eq!(
            error(&["FOO", "a", "b"]),
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            error(&["get"]),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            error(&["GET", "a", "b"]),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            error(&["config", "get"]),
            "ERR wrong number of arguments for 'config|get' command"
        );
        assert_eq!(error(&["set", "k", "v", "bogus"]), "ERR syntax error");
        assert!(error(&["set", "k", "v", "ex", "10"]).contains("SET option 'EX' is not supported"));
        assert_eq!(error(&["select", "1"]), "ERR DB index is out of range");
        assert_eq!(error(&["scan", "-1"]), "ERR invalid cursor");
        assert_eq!(error(&["scan", "0", "count", "0"]), "ERR syntax error");
        assert_eq!(error(&["scan", "0", "match"]), "ERR syntax error");
        assert!(error(&["flushall"]).contains("not supported"));
        let long = "k".repeat(Limits::default().max_key + 1);
        assert!(error(&["get", &long]).contains("over the limit of 65535 bytes"));
        assert!(error(&["del", "a", &long]).contains("key of 65536 bytes"));
    }

    #[test]
    fn an_unknown_command_shows_128_bytes_of_arguments() {
        let long = "x".repeat(300);
        let text = error(&["nope", &long, "more"]);
        assert_eq!(
            text.len(),
            "ERR unknown command 'nope', with args beginning with: ".len() + 131
        );
    }

    #[test]
    fn config_get_answers_pairs_by_glob() {
        let pairs = |words: &[&str]| match planned(words) {
            Action::Reply(Reply::Array(items)) => items.len() / 2,
            other => panic!("{other:?}"),
        };
        assert_eq!(pairs(&["CONFIG", "GET", "save"]), 1);
        assert_eq!(pairs(&["config", "get", "APPEND*"]), 2);
        assert_eq!(pairs(&["config", "get", "*"]), SETTINGS.len());
        assert_eq!(pairs(&["config", "get", "nothing"]), 0);
        assert!(error(&["config", "set", "save", ""]).contains("CONFIG SET is not supported"));
    }
}

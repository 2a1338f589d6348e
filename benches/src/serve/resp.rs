//! The Redis protocol (RESP2): the store served to `redis-cli`, `redis-benchmark` and any
//! Redis client library, as a Redis server with one keyspace of strings.
//!
//! # What RESP is
//!
//! RESP (REdis Serialization Protocol) is how a Redis client and server talk over TCP. The
//! client sends a request, the command and its arguments; the server sends one reply per
//! request, in order. Every piece of it is either a line ending in `\r\n` whose first byte
//! says what it is, or a run of bytes whose length came first. Lengths make it binary-safe
//! (a value may hold `\r\n` or any byte) and let a reader know how much to wait for before
//! it reads; the leading byte and the line ends keep it readable in `nc` or `telnet`.
//!
//! | first byte | kind | bytes on the wire | example |
//! |---|---|---|---|
//! | `+` | simple string | `+`, text without `\r` or `\n`, `\r\n` | `+OK\r\n` |
//! | `-` | error | `-`, a kind (`ERR`), a space, the message, `\r\n` | `-ERR syntax error\r\n` |
//! | `:` | integer | `:`, a signed decimal, `\r\n` | `:2\r\n` |
//! | `$` | bulk string | `$`, the length in decimal, `\r\n`, that many bytes, `\r\n` | `$5\r\nhello\r\n` |
//! | `$` | null | `$-1\r\n`: no string at all (a missing key) | `$-1\r\n` |
//! | `*` | array | `*`, the element count in decimal, `\r\n`, then each element | `*2\r\n:1\r\n:2\r\n` |
//!
//! A request is an array of bulk strings, the first one the command's name. A client
//! typing by hand may also send an *inline* command, one line of words separated by spaces
//! (`SET greeting "hello world"\r\n`, quoting as in [`inline`]); the server tells them apart
//! by the first byte, `*` or anything else. RESP3 (`HELLO 3`, maps, doubles) is not spoken.
//!
//! # An exchange, byte by byte
//!
//! ```text
//! client: *3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n
//! server: +OK\r\n
//! client: *2\r\n$3\r\nGET\r\n$5\r\nhello\r\n
//! server: $5\r\nworld\r\n
//! client: *2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n
//! server: $-1\r\n
//! client: *3\r\n$3\r\nDEL\r\n$5\r\nhello\r\n$7\r\nmissing\r\n
//! server: :1\r\n
//! ```
//!
//! The first request, 35 bytes:
//!
//! ```text
//! offset  bytes           meaning
//!      0  2a              '*'  an array ...
//!      1  33              '3'  ... of 3 elements (the count in decimal digits)
//!      2  0d 0a           '\r\n' ends the header line
//!      4  24              '$'  a bulk string ...
//!      5  33              '3'  ... of 3 bytes
//!      6  0d 0a           '\r\n'
//!      8  53 45 54        'SET' the 3 bytes: the command (any case)
//!     11  0d 0a           '\r\n' after the bytes (not counted in the length)
//!     13  24 35 0d 0a     '$5\r\n'
//!     17  68 65 6c 6c 6f  'hello' the key
//!     22  0d 0a
//!     24  24 35 0d 0a     '$5\r\n'
//!     28  77 6f 72 6c 64  'world' the value
//!     33  0d 0a
//! ```
//!
//! and the reply, 5 bytes: `2b 4f 4b 0d 0a`, `+OK\r\n`. The same request typed inline is
//! `SET hello world\r\n`.
//!
//! # The commands and the [`kv_shared::Engine`] calls behind them
//!
//! | command | reply | engine |
//! |---|---|---|
//! | `PING [message]` | `+PONG`, or the message as a bulk string | none |
//! | `ECHO message` | the message | none |
//! | `GET key` | the value, or null | [`get`](kv_shared::Engine::get) |
//! | `SET key value` | `+OK` | [`put`](kv_shared::Engine::put); Redis's options (`EX`, `PX`, `NX`, `XX`, `KEEPTTL`, `GET`, ...) are refused with an error naming them: keys here never expire and writes are unconditional |
//! | `DEL key [key ...]` | how many of the (distinct) keys existed | a [`get`](kv_shared::Engine::get) per key, then one [`write`](kv_shared::Engine::write) of a batch deleting those that existed |
//! | `EXISTS key [key ...]` | how many of the keys exist (a key named twice counts twice) | a [`get`](kv_shared::Engine::get) per key (the contract has no "contains", so the value is read too) |
//! | `DBSIZE` | the number of live keys | [`stats`](kv_shared::Engine::stats)`().live_keys`: a counter in hashlog and bitcask (their index knows it), a scan of the whole store in sstable and lsm |
//! | `SCAN cursor [MATCH pattern] [COUNT n]` | the next cursor and a page of keys | [`scan`](kv_shared::Engine::scan) from just after the cursor's key; cursors in [`cursors`], patterns in [`glob`] |
//! | `INFO [section ...]` | the engine, its stats and amplification as text | [`stats`](kv_shared::Engine::stats) ([`info`]) |
//! | `QUIT` | `+OK`, then the server closes the connection | none |
//! | `SELECT 0` | `+OK` (there is only database 0) | none |
//! | `COMMAND`, `COMMAND DOCS` | an empty array (`redis-cli` asks at start, for hints) | none |
//! | `CONFIG GET parameter ...` | name and value pairs, for `save`, `appendonly`, `appendfsync`, `databases` (`redis-benchmark` asks at start) | none |
//! | `FLUSHALL`, `FLUSHDB` | an error: not supported | none |
//!
//! `SCAN`'s `COUNT` (default 10) is how many keys one call examines, as in Redis; the server
//! examines at most [`Limits::max_scan`](super::Limits::max_scan) whatever it asks. Other
//! commands get `-ERR unknown command '...'`, and a wrong number of arguments `-ERR wrong
//! number of arguments for '...' command`, Redis's words ([`commands`]). When the engine
//! fails, the reply is `-ERR` and its message, and the connection carries on.
//!
//! # Pipelining and the engine's threads
//!
//! A client need not wait for a reply before sending its next request (`redis-cli --pipe`,
//! `redis-benchmark -P 16`). The engines are synchronous, so each engine call runs on one of
//! tokio's blocking threads; a trip there costs a few microseconds, more than a `get` from
//! memory. So a connection runs every request that one read brought in one trip, in order,
//! and sends their replies in one write ([`connection`]).
//!
//! # Limits
//!
//! Lengths are checked when their header arrives, before anything is kept ([`protocol`]):
//!
//! | what | limit | then |
//! |---|---|---|
//! | a bulk string | [`Limits::max_value`](super::Limits::max_value) bytes (16 MiB) | `-ERR Protocol error: ...` naming the limit, and the connection is closed |
//! | an array | [`protocol::MAX_ARRAY`] elements (1024 * 1024) | the same |
//! | a line (inline command, or a `*`/`$` header) | [`protocol::MAX_LINE`] bytes (64 KiB) | the same |
//! | a request's bulk strings in total | [`protocol::MAX_REQUEST`] bytes (64 MiB) | the same |
//! | a key | [`Limits::max_key`](super::Limits::max_key) bytes (64 KiB - 1) | `-ERR key of N bytes is over the limit of M bytes`; the connection carries on |
//!
//! After a refused length the server cannot know where the next request starts, so it
//! answers the requests before it, then the error, then closes. A key over its limit comes
//! in a request that was read whole, so only that request is refused. A bulk string's
//! buffer grows as its bytes arrive, so a client announcing 16 MiB and sending 5 bytes
//! holds 5 bytes. The number of connections is not limited.
//!
//! # Stopping
//!
//! Each connection is a task. When the server stops, [`serve`] stops accepting; each
//! connection finishes the batch it is running (its replies are sent), then closes; `serve`
//! returns once they all have, and the engine can be closed.

pub mod commands;
pub mod connection;
pub mod cursors;
pub mod glob;
pub mod info;
pub mod inline;
pub mod protocol;

use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use self::commands::Context;
use self::cursors::CursorTable;
use super::Served;

/// Serves RESP2 on `listener` until `stop` turns true, then waits for every connection to
/// finish the batch it is running and close.
///
/// # Errors
/// An accept error other than those that concern one client (which are skipped) or a lack
/// of file descriptors or memory (which are waited out, 100 ms at a time).
pub async fn serve(
    listener: TcpListener,
    served: Arc<Served>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let context = Arc::new(Context {
        served,
        cursors: Mutex::new(CursorTable::default()),
    });
    let mut connections = JoinSet::new();
    let mut stopping = stop.clone();
    let result = loop {
        tokio::select! {
            () = stopped(&mut stopping) => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Replies are small and the client waits for them: send each at once.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection::serve(stream, context.clone(), stop.clone()));
                }
                Err(e) if concerns_one_client(&e) => {}
                Err(e) if out_of_resources(&e) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => break Err(e),
            },
            // Reaps finished connections, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    drop(listener);
    while connections.join_next().await.is_some() {}
    result
}

/// Returns once `stop` is true (at once if it is already).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: nobody can ask to stop any more, so wait forever.
    if stop.wait_for(|&stopping| stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// An accept error about the connection being accepted, not the listener.
fn concerns_one_client(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionReset
            | ErrorKind::Interrupted
            | ErrorKind::WouldBlock
    )
}

/// `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`: the process or the system is short of file
/// descriptors or memory for now; accepting again later may work.
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}

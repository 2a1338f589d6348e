//! `kv serve`: one store, opened with any engine, served over HTTP (a JSON API and a live
//! page) and, optionally, the Redis protocol.
//!
//! ```text
//! kv --engine E --dir D [--set NAME=VALUE]... serve [--listen 127.0.0.1:PORT] [--resp 127.0.0.1:PORT2]
//! ```
//!
//! The server binds both addresses (port 0 picks a free port), then prints what it bound,
//! one address a line, `http://127.0.0.1:PORT` first and `redis://127.0.0.1:PORT2` second
//! when `--resp` is given, and serves until Ctrl-C (or `SIGTERM`). It then stops accepting,
//! lets the requests in flight finish, and closes the engine: every write it acknowledged
//! is in the store, as after [`kv_shared::Engine::close`]. Both addresses default to
//! loopback; serving beyond this machine takes an explicit `--listen 0.0.0.0:PORT`.
//!
//! | module | what it serves |
//! |---|---|
//! | [`api`] | the JSON API under `/api/`: keys, scans, `compact`, `flush`, `sync`, `stats`, the page's controls |
//! | [`page`] | the page at `/`, the store's `structure` and its picture (drawn by [`crate::draw`], as `kv draw` draws it) |
//! | [`resp`] | the Redis protocol (RESP2): `PING`, `ECHO`, `GET`, `SET`, `DEL`, `EXISTS`, `DBSIZE`, `SCAN`, `INFO`, and what `redis-cli` and `redis-benchmark` ask at start (`COMMAND`, `CONFIG GET`, `SELECT 0`, `QUIT`) |
//!
//! The engines are synchronous: every call into one runs on tokio's blocking threads
//! ([`Served::call`]), never on the threads that drive the sockets, so a slow compaction
//! delays its own request and no other. Many clients may be connected at once; the engine
//! orders their writes as it orders any threads' writes.
//!
//! Every request is checked before it reaches the engine, against [`Limits`]: a key over
//! [`kv_shared::MAX_KEY_LEN`] bytes, a value (a body) over [`kv_shared::MAX_VALUE_LEN`], a
//! scan asking for more than [`Limits::max_scan`] pairs, a malformed request: each gets a
//! clear 4xx answer (or a RESP error) naming the limit, and the server keeps serving. (The
//! HTTP layer itself refuses a request line over 65,534 bytes with a bare 414, so over HTTP
//! a key's percent-encoded form must fit in that; [`api`] says more.)

pub mod api;
pub mod page;
pub mod resp;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kv_shared::{DynEngine, Error, Options, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engines::EngineInfo;

/// The default `--listen` address: loopback, so a store is not served beyond this machine
/// unless asked.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// What the server accepts. Requests over a limit are refused, never truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest key, in bytes (after percent-decoding): [`kv_shared::MAX_KEY_LEN`].
    pub max_key: usize,
    /// The longest value, in bytes: [`kv_shared::MAX_VALUE_LEN`]. A request body over it is
    /// refused with 413 before it is read whole.
    pub max_value: usize,
    /// The most pairs one scan answers (`limit` above it is refused); 10,000.
    pub max_scan: usize,
    /// The default `limit` of a scan that gives none: 100.
    pub default_scan: usize,
    /// The most keys one "write N random keys" control writes: 1,000,000.
    pub max_fill: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key: kv_shared::MAX_KEY_LEN,
            max_value: kv_shared::MAX_VALUE_LEN,
            max_scan: 10_000,
            default_scan: 100,
            max_fill: 1_000_000,
        }
    }
}

/// The store being served, shared by every connection.
pub struct Served {
    engine: Box<dyn DynEngine>,
    /// The engine's registry entry (its name, options, inspect function).
    pub info: EngineInfo,
    /// The store directory.
    pub dir: PathBuf,
    /// The options it was opened with (`--set`).
    pub options: Options,
    /// What requests may ask.
    pub limits: Limits,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("engine", &self.info.name)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Served {
    /// Opens the store in `dir` with `info`'s engine.
    ///
    /// # Errors
    /// What the engine's `open` reports.
    pub fn open(info: EngineInfo, dir: &Path, options: Options) -> Result<Self> {
        let engine = (info.open)(dir, &options)?;
        Ok(Served {
            engine,
            info,
            dir: dir.to_path_buf(),
            options,
            limits: Limits::default(),
        })
    }

    /// The engine, for calls made on a blocking thread already.
    pub fn engine(&self) -> &dyn DynEngine {
        self.engine.as_ref()
    }

    /// Runs `f` on the engine on one of tokio's blocking threads and waits for it without
    /// holding an async thread.
    ///
    /// # Errors
    /// What `f` returns; [`Error::Background`] if it panicked.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn DynEngine) -> Result<T> + Send + 'static,
    {
        let served = self.clone();
        tokio::task::spawn_blocking(move || f(served.engine()))
            .await
            .unwrap_or_else(|e| Err(Error::background("serve", e.to_string())))
    }

    /// Closes the engine (syncs and releases the directory).
    ///
    /// # Errors
    /// What the engine's `close` reports.
    pub fn close(self) -> Result<()> {
        self.engine.close()
    }
}

/// Where `kv serve` listens.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// The HTTP address (`--listen`).
    pub http: SocketAddr,
    /// The Redis protocol's address (`--resp`), if any.
    pub resp: Option<SocketAddr>,
}

/// `kv serve`: opens the store, binds, prints the bound addresses to `out`, serves until
/// Ctrl-C or `SIGTERM`, then closes the store.
///
/// # Errors
/// What the engine's `open` and `close` report; [`Error::Io`] when an address cannot be
/// bound or the runtime cannot start.
pub fn run(
    info: EngineInfo,
    dir: &Path,
    options: Options,
    addresses: Addresses,
    mut out: impl Write,
) -> Result<()> {
    let served = Arc::new(Served::open(info, dir, options)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kv-serve")
        .build()
        .map_err(|e| Error::io("<tokio runtime>", e))?;
    let served_result = runtime.block_on(serve(served.clone(), addresses, &mut out));
    // Waits for the engine calls still running on blocking threads.
    drop(runtime);
    let closed = match Arc::try_unwrap(served) {
        Ok(served) => served.close(),
        Err(_) => Err(Error::background(
            "serve",
            "a request still holds the store",
        )),
    };
    served_result?;
    closed?;
    writeln!(out, "closed {}", dir.display()).map_err(|e| Error::io("<standard output>", e))?;
    out.flush().map_err(|e| Error::io("<standard output>", e))
}

/// Binds, prints the addresses, serves HTTP (and RESP) until a shutdown signal, then waits
/// for both servers to finish their connections.
async fn serve(served: Arc<Served>, addresses: Addresses, out: &mut impl Write) -> Result<()> {
    let bind = |address: SocketAddr| async move {
        TcpListener::bind(address)
            .await
            .map_err(|e| Error::io(format!("<listen {address}>"), e))
    };
    let http = bind(addresses.http).await?;
    let resp = match addresses.resp {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    print_addresses(&http, resp.as_ref(), out)?;
    let (stop, stopped) = watch::channel(false);
    let router = api::router(served.clone()).merge(page::router(served.clone()));
    let http_server = {
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        };
        tokio::spawn(async move {
            axum::serve(http, router)
                .with_graceful_shutdown(shutdown)
                .await
        })
    };
    let resp_server = resp.map(|listener| tokio::spawn(resp::serve(listener, served, stopped)));
    shutdown_signal().await?;
    let _ = stop.send(true);
    let joined = |e: tokio::task::JoinError| Error::background("serve", e.to_string());
    http_server
        .await
        .map_err(joined)?
        .map_err(|e| Error::io("<http server>", e))?;
    if let Some(server) = resp_server {
        server
            .await
            .map_err(joined)?
            .map_err(|e| Error::io("<resp server>", e))?;
    }
    Ok(())
}

/// Prints `http://ADDRESS` and, with RESP, `redis://ADDRESS`, one a line, and flushes.
fn print_addresses(
    http: &TcpListener,
    resp: Option<&TcpListener>,
    out: &mut impl Write,
) -> Result<()> {
    let io = |e: std::io::Error| Error::io("<standard output>", e);
    let local = |l: &TcpListener| l.local_addr().map_err(|e| Error::io("<socket>", e));
    writeln!(out, "http://{}", local(http)?).map_err(io)?;
    if let Some(resp) = resp {
        writeln!(out, "redis://{}", local(resp)?).map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Waits for Ctrl-C (`SIGINT`) or `SIGTERM`.
async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| Error::io("<signal SIGTERM>", e))?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.map_err(|e| Error::io("<signal SIGINT>", e)),
        _ = terminate.recv() => Ok(()),
    }
}

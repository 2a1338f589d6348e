//! One client's connection: read, check, run, answer, until the client leaves, sends
//! `QUIT`, breaks the protocol, or the server stops.
//!
//! Each turn of the loop takes what one read returned (up to [`READ_CHUNK`] bytes, any
//! number of pipelined requests), checks every complete request in it, runs them all in
//! one trip to a blocking thread ([`crate::serve::Served::call`]), in order, and writes all
//! their replies in one write. A client that sends one request and waits costs one trip per
//! request; a client that pipelines a hundred costs one trip for the hundred.
//!
//! After `QUIT`, or bytes that are not RESP, the connection answers what came before, then
//! closes (lingering for [`LINGER`] while the client closes its side).
//!
//! The server's stop is watched only while the loop waits for bytes: a batch being run is
//! finished and answered, then the connection closes. A request half received when the
//! stop comes is dropped unanswered, as if the connection had broken.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::commands::{self, Action, Context};
use super::protocol::{ParseLimits, Parser, ProtocolError, Reply};

/// The most bytes read from the socket at a time: 64 KiB.
pub const READ_CHUNK: usize = 64 << 10;

/// How long a closing connection waits for the client to close its side.
pub const LINGER: Duration = Duration::from_secs(1);

/// Why a connection ends after the current batch.
#[derive(Debug)]
enum End {
    /// `QUIT` was among the requests (the ones after it are ignored).
    Quit,
    /// The bytes after the good requests are not RESP.
    Broken(ProtocolError),
}

/// Serves one connection until it ends (see the module documentation). Errors reading or
/// writing the socket (a client that went away) end it quietly.
pub async fn serve(stream: TcpStream, context: Arc<Context>, stop: watch::Receiver<bool>) {
    let _ = run(stream, context, stop).await;
}

async fn run(
    mut stream: TcpStream,
    context: Arc<Context>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = context.served.limits;
    let mut parser = Parser::new(ParseLimits::new(limits.max_value));
    let mut chunk = vec![0; READ_CHUNK];
    loop {
        let read = tokio::select! {
            read = stream.read(&mut chunk) => read?,
            () = super::stopped(&mut stop) => 0,
        };
        if read == 0 {
            return Ok(());
        }
        parser.feed(&chunk[..read]);
        let (actions, end) = take_requests(&mut parser, &limits);
        let mut out = Vec::new();
        for reply in run_batch(&context, actions).await {
            reply.encode(&mut out);
        }
        if let Some(End::Broken(error)) = &end {
            Reply::err(error).encode(&mut out);
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
        if end.is_some() {
            return close(stream, &mut chunk).await;
        }
    }
}

/// Closes the connection after its last reply: ends the server's side (the client reads
/// the reply, then the end of the stream), then reads and drops whatever the client still
/// sends until it closes too, for at most [`LINGER`]. Closing a socket with unread bytes
/// makes the kernel answer with a reset, which may destroy the reply before the client has
/// read it; a client that broke the protocol is the one most likely to have sent more.
async fn close(mut stream: TcpStream, chunk: &mut [u8]) -> std::io::Result<()> {
    stream.shutdown().await?;
    let drain = async { while let Ok(1..) = stream.read(chunk).await {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
    Ok(())
}

/// Every complete request the parser holds, checked; stops at `QUIT` or at bytes that are
/// not RESP.
fn take_requests(parser: &mut Parser, limits: &crate::serve::Limits) -> (Vec<Action>, Option<End>) {
    let mut actions = Vec::new();
    loop {
        match parser.next() {
            Ok(Some(request)) => {
                let action = commands::plan(request, limits);
                let quit = action == Action::Quit;
                actions.push(action);
                if quit {
                    return (actions, Some(End::Quit));
                }
            }
            Ok(None) => return (actions, None),
            Err(error) => return (actions, Some(End::Broken(error))),
        }
    }
}

/// The replies to `actions`, in order: one trip to a blocking thread if any of them calls
/// the engine, none otherwise.
async fn run_batch(context: &Arc<Context>, actions: Vec<Action>) -> Vec<Reply> {
    let calls_engine = actions.iter().any(|a| matches!(a, Action::Engine(_)));
    if !calls_engine {
        // Answered here, on the connection's task: `run` does not touch the engine.
        let engine = context.served.engine();
        return actions
            .into_iter()
            .map(|a| a.run(engine, context))
            .collect();
    }
    let count = actions.len();
    let shared = context.clone();
    let replies = context
        .served
        .call(move |engine| {
            Ok(actions
                .into_iter()
                .map(|action| action.run(engine, &shared))
                .collect())
        })
        .await;
    // Only a panic in the engine gets here: every request of the batch hears of it.
    replies.unwrap_or_else(|error| vec![Reply::err(error); count])
}

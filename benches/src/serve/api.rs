//! The JSON API under `/api/`: what a script, `curl` or the page asks of the store.
//!
//! ## Endpoints
//!
//! | method | path | parameters | answer | errors |
//! |---|---|---|---|---|
//! | `GET` | `/api/keys/{key}` | | the value's raw bytes, `application/octet-stream` | 400, 404 absent, 414 |
//! | `PUT` | `/api/keys/{key}` | the body is the value | 204, empty | 400, 413, 414, 503 |
//! | `DELETE` | `/api/keys/{key}` | | 204, empty (also when the key was absent) | 400, 414, 503 |
//! | `GET` | `/api/scan` | `from`, `to`, `limit`, `reverse`, `hex` | `[{"key": K, "value": V}, ...]` | 400 |
//! | `POST` | `/api/compact` | | `{"ms": 1.5}` | 500, 503 |
//! | `POST` | `/api/flush` | | `{"flushed": true, "ms": 0.8}` (`false`: the engine has no memtable) | 500, 503 |
//! | `POST` | `/api/sync` | | `{"ms": 3.2}` | 500, 503 |
//! | `GET` | `/api/stats` | | `{"engine": "lsm", "user_bytes_written": ..., "extra": {...}, "write_amp": 1.9, "space_amp": 1.1, "read_amp": 0.5}` | 500 |
//! | `POST` | `/api/fill` | `n`, `value_bytes` (100), `seed` | `{"written": N, "value_bytes": B, "ms": 120.0}` | 400, 503 |
//! | `POST` | `/api/delete_range` | `from`, `to` | `{"deleted": n, "ms": 4.0}` | 400, 503 |
//!
//! `/api/structure` and `/api/draw.svg` belong to the page ([`super::page`]).
//!
//! * `scan` answers the live pairs with `from <= key < to` (each bound optional), at most
//!   `limit` of them (default [`Limits::default_scan`], at most [`Limits::max_scan`]), in
//!   ascending key order, or descending with `reverse=true` (the engine's `scan_rev`: the
//!   largest keys below `to` first). To page through a range, ask again with `from` set
//!   just past the last key received (the key with a `0x00` byte appended).
//! * `stats` is [`kv_shared::Stats`] field by field, plus the engine's name and the three
//!   amplifications of [`kv_shared::Stats`] (`null` while undefined, e.g. before any write).
//! * `fill` writes `n` pairs (at most [`Limits::max_fill`]) through write batches of 1,000:
//!   keys `key` + 10 decimal digits (`key0000001234`), the number drawn uniformly below
//!   10^10, so a fill's keys are spread over the whole key space and two fills rarely
//!   collide; each value is `value_bytes` bytes, the key's digits repeated. `seed=S` (a
//!   whole number) draws the same keys every time, so the same fill twice overwrites.
//! * `delete_range` deletes every live key with `from <= key < to` (both optional: none
//!   deletes every key), walking one cursor (a snapshot) and writing batches of 1,000 deletes.
//! * `compact`, `flush` and `sync` run to completion before answering; `ms` is how long the
//!   engine took. A stage without compaction answers at once.
//! * Booleans are `true` or `false` (also `1` or `0`); numbers are decimal whole numbers.
//!   A parameter the endpoint does not know, or given twice, is refused (400): a typo is
//!   reported, not ignored.
//!
//! ## Keys and bounds: percent-encoded bytes
//!
//! Keys are arbitrary bytes, so the key in the path, and `from` and `to`, are the bytes
//! themselves, percent-encoded: `%` and two hex digits is one byte, any other character is
//! its own byte. `user%2F1` is the key `user/1`, `%00%FF` the two bytes `0x00 0xFF`. The
//! path is decoded from the raw request line, not as UTF-8, so any byte string can be
//! addressed; a `/` inside a key must be written `%2F`. In the query string a `+` is a space
//! (as HTML forms and `URLSearchParams` encode one), so a plus sign there is `%2B`; in the
//! path `+` is itself. A `%` not followed by two hex digits is refused (400), as is an empty
//! key.
//!
//! ## Bytes in JSON
//!
//! JSON strings hold Unicode text, not bytes, so a scan's keys and values follow one rule:
//!
//! * bytes that are valid UTF-8 are a JSON string of that text (control characters escaped
//!   by JSON, so `"a\u0000b"` is the three bytes `61 00 62`);
//! * any other bytes are an object with their hex: `{"hex": "00ff"}`.
//!
//! Each field is decided alone: a readable key may have a binary value. With `hex=true`
//! every key and every value is a string of lowercase hex instead (`"6b6579"`), for a
//! client that wants one type. Either way the bytes come back exactly.
//!
//! ## Errors and limits
//!
//! Every error is JSON, `{"error": "what went wrong"}`, with its status: 400 a malformed
//! request (bad percent-encoding, a bad number, an unknown parameter, an argument the engine
//! refuses), 404 an absent key or an unknown path under `/api/`, 405 a method the path does
//! not take (with an `Allow` header), 413 a body over [`Limits::max_value`] bytes, 414 a
//! key over [`Limits::max_key`] bytes, 500 the engine's I/O error or corruption, 503 the
//! engine's background work failed earlier (reopen the store). One failed request changes
//! nothing else: the server keeps serving.
//!
//! * Keys: at most [`Limits::max_key`] bytes once decoded. The whole request target is
//!   also limited, by hyper, to 65,534 bytes: past that hyper itself answers 414 with an
//!   empty body, before this module sees the request. So the longest key the path can
//!   carry is about 65,520 bytes written plainly, a third of that percent-encoded.
//! * Values: a body over [`Limits::max_value`] bytes is refused with 413 before it is read
//!   whole (a `Content-Length` over it at once, a chunked body once it passes it, through
//!   axum's [`DefaultBodyLimit`]).
//! * Scans: at most [`Limits::max_scan`] pairs, and one answer stops after the pair that
//!   brings its keys and values past [`SCAN_ANSWER_BYTES`]; such a short answer carries the
//!   header `x-kv-truncated: true` (scan on from its last key).
//! * Fills: at most [`Limits::max_fill`] pairs and [`FILL_MAX_BYTES`] of values in all.
//!
//! Every engine call runs through [`Served::call`], on a blocking thread.
//!
//! | module | what it holds |
//! |---|---|
//! | [`error`] | [`ApiError`]: the JSON error and the status of each [`kv_shared::Error`] |
//! | [`encoding`] | percent-decoding, the query string, bytes as JSON |
//! | [`keys`] | `keys/{key}` and `scan` |
//! | [`controls`] | `compact`, `flush`, `sync`, `stats`, `fill`, `delete_range` |

pub mod controls;
pub mod encoding;
pub mod error;
pub mod keys;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{MethodRouter, any, get, post};

pub use controls::{FILL_BATCH, FILL_MAX_BYTES};
pub use error::ApiError;
pub use keys::SCAN_ANSWER_BYTES;

use super::{Limits, Served};

/// The API's routes, with `served` as their state. Merge it with the page's router; it has
/// no fallback of its own (unknown paths under `/api/` get a JSON 404 from a catch-all route).
pub fn router(served: Arc<Served>) -> Router {
    let Limits { max_value, .. } = served.limits;
    Router::new()
        .route(
            "/api/keys/{key}",
            get(keys::get_key)
                .put(keys::put_key)
                .delete(keys::delete_key)
                .fallback(wrong_method("GET, HEAD, PUT, DELETE")),
        )
        .route("/api/scan", only_get(get(keys::scan)))
        .route("/api/stats", only_get(get(controls::stats)))
        .route("/api/compact", only_post(post(controls::compact)))
        .route("/api/flush", only_post(post(controls::flush)))
        .route("/api/sync", only_post(post(controls::sync)))
        .route("/api/fill", only_post(post(controls::fill)))
        .route("/api/delete_range", only_post(post(controls::delete_range)))
        .route("/api/{*rest}", any(unknown))
        .layer(DefaultBodyLimit::max(max_value))
        .with_state(served)
}

type Route = MethodRouter<Arc<Served>>;

/// `route` answering 405 to any method but `GET` (and `HEAD`).
fn only_get(route: Route) -> Route {
    route.fallback(wrong_method("GET, HEAD"))
}

/// `route` answering 405 to any method but `POST`.
fn only_post(route: Route) -> Route {
    route.fallback(wrong_method("POST"))
}

/// The handler of a method a path does not take: 405 naming the ones it does.
fn wrong_method(
    allowed: &'static str,
) -> impl Fn() -> std::future::Ready<ApiError> + Clone + Send + Sync + 'static {
    move || std::future::ready(ApiError::method_not_allowed(allowed))
}

/// Any other path under `/api/`: 404, or 400 for a key path that cannot name a key (empty,
/// or with an unencoded `/`).
async fn unknown(uri: Uri) -> ApiError {
    let rest = uri.path().strip_prefix("/api/").unwrap_or_default();
    match rest.strip_prefix("keys") {
        Some("" | "/") => ApiError::bad_request("empty key: the path is /api/keys/{key}"),
        Some(key) if key.starts_with('/') => {
            ApiError::bad_request("a key is one path segment: write a '/' inside a key as %2F")
        }
        _ => ApiError::not_found(format!("no such endpoint: {}", uri.path())),
    }
}

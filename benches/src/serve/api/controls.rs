//! The store's controls: `compact`, `flush`, `sync`, `stats`, and the page's buttons `fill`
//! and `delete_range`.
//!
//! Each runs in one engine call ([`Served::call`]) and answers how long the engine took.
//! A fill or a range delete writes batches (of [`FILL_BATCH`] ops), as a bulk writer
//! should: one log record and one lock hold a batch instead of one a key.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use kv_shared::{DynEngine, KeyRange, Result, Stats, WriteBatch};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::ApiError;
use super::encoding::Params;
use crate::serve::Served;

/// Ops in one write batch of `fill` and `delete_range`.
pub const FILL_BATCH: usize = 1_000;

/// The most value bytes one fill writes in all, `n` times `value_bytes` (1 GiB).
pub const FILL_MAX_BYTES: u64 = 1 << 30;

/// A fill's batch is also written once its ops pass this many bytes (4 MiB), so a batch of
/// large values stays small in memory.
const FILL_BATCH_BYTES: usize = 4 << 20;

/// A fill's key numbers are drawn below this: ten decimal digits.
const KEY_SPACE: u64 = 10_000_000_000;

/// How long an engine call took, and what it answered.
#[derive(Serialize)]
pub struct Timed<T: Serialize> {
    /// What the call answered.
    #[serde(flatten)]
    pub answer: T,
    /// Milliseconds the engine took, to the microsecond.
    pub ms: f64,
}

/// Runs `f` on the engine, timing it there (not the wait for a blocking thread).
async fn timed<T, F>(served: &Arc<Served>, f: F) -> Result<Json<Timed<T>>, ApiError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&dyn DynEngine) -> Result<T> + Send + 'static,
{
    let timed = served
        .call(move |engine| {
            let start = Instant::now();
            let answer = f(engine)?;
            let ms = start.elapsed().as_micros() as f64 / 1000.0;
            Ok(Timed { answer, ms })
        })
        .await?;
    Ok(Json(timed))
}

/// The answer of a call that answers nothing but its time.
#[derive(Serialize)]
pub struct Done {}

/// `POST /api/compact`: runs the engine's compaction to completion.
///
/// # Errors
/// The engine's, mapped by [`ApiError`].
pub async fn compact(
    State(served): State<Arc<Served>>,
    uri: Uri,
) -> Result<Json<Timed<Done>>, ApiError> {
    Params::parse(uri.query(), &[])?;
    timed(&served, |engine| engine.compact().map(|()| Done {})).await
}

/// `POST /api/sync`: makes every write so far durable against power loss.
///
/// # Errors
/// The engine's, mapped by [`ApiError`].
pub async fn sync(
    State(served): State<Arc<Served>>,
    uri: Uri,
) -> Result<Json<Timed<Done>>, ApiError> {
    Params::parse(uri.query(), &[])?;
    timed(&served, |engine| engine.sync().map(|()| Done {})).await
}

/// What `flush` answers.
#[derive(Serialize)]
pub struct Flushed {
    /// Whether the engine wrote its memtable out (`false`: it has none).
    pub flushed: bool,
}

/// `POST /api/flush`: writes the engine's memtable out now, if it has one.
///
/// # Errors
/// The engine's, mapped by [`ApiError`].
pub async fn flush(
    State(served): State<Arc<Served>>,
    uri: Uri,
) -> Result<Json<Timed<Flushed>>, ApiError> {
    Params::parse(uri.query(), &[])?;
    timed(&served, |engine| {
        engine.flush().map(|flushed| Flushed { flushed })
    })
    .await
}

/// What `stats` answers: the engine's [`Stats`], its name and the amplifications.
#[derive(Serialize)]
pub struct StatsAnswer {
    /// The engine's name.
    pub engine: &'static str,
    /// Its counters and sizes, field by field.
    #[serde(flatten)]
    pub stats: Stats,
    /// [`Stats::write_amp`].
    pub write_amp: Option<f64>,
    /// [`Stats::space_amp`].
    pub space_amp: Option<f64>,
    /// [`Stats::read_amp`].
    pub read_amp: Option<f64>,
}

/// `GET /api/stats`.
///
/// # Errors
/// The engine's, mapped by [`ApiError`].
pub async fn stats(
    State(served): State<Arc<Served>>,
    uri: Uri,
) -> Result<Json<StatsAnswer>, ApiError> {
    Params::parse(uri.query(), &[])?;
    let engine = served.info.name;
    let stats = served.call(|engine| engine.stats()).await?;
    Ok(Json(StatsAnswer {
        engine,
        write_amp: stats.write_amp(),
        space_amp: stats.space_amp(),
        read_amp: stats.read_amp(),
        stats,
    }))
}

/// What `fill` answers.
#[derive(Serialize)]
pub struct Filled {
    /// Pairs written (`n`).
    pub written: u64,
    /// Bytes of each value.
    pub value_bytes: u64,
}

/// `POST /api/fill?n=N[&value_bytes=B][&seed=S]`: writes `n` pairs with random keys.
///
/// # Errors
/// 400 for a bad parameter or one over its limit; the engine's, mapped by [`ApiError`].
pub async fn fill(
    State(served): State<Arc<Served>>,
    uri: Uri,
) -> Result<Json<Timed<Filled>>, ApiError> {
    let params = Params::parse(uri.query(), &["n", "value_bytes", "seed"])?;
    let limits = served.limits;
    let n = params.number("n", None, limits.max_fill as u64, "max_fill")?;
    let n = n.ok_or_else(|| ApiError::bad_request("fill needs n, the number of pairs"))?;
    let value_bytes = params.number(
        "value_bytes",
        Some(100),
        limits.max_value as u64,
        "max_value",
    )?;
    let value_bytes = value_bytes.unwrap_or_default();
    if n.saturating_mul(value_bytes) > FILL_MAX_BYTES {
        return Err(ApiError::bad_request(format!(
            "n * value_bytes = {} is over the limit of {FILL_MAX_BYTES} bytes a fill",
            n.saturating_mul(value_bytes)
        )));
    }
    let seed = match params.number("seed", None, u64::MAX, "u64")? {
        Some(seed) => seed,
        None => rand::random(),
    };
    timed(&served, move |engine| {
        fill_random(engine, n, value_bytes as usize, seed)?;
        Ok(Filled {
            written: n,
            value_bytes,
        })
    })
    .await
}

/// Writes `n` pairs, keys `key` + ten digits drawn from `seed`, values `value_bytes` long
/// (the key's digits repeated), in batches.
fn fill_random(engine: &dyn DynEngine, n: u64, value_bytes: usize, seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut batch = WriteBatch::new();
    let mut value = Vec::with_capacity(value_bytes);
    for _ in 0..n {
        let key = format!("key{:010}", rng.random_range(0..KEY_SPACE));
        value.clear();
        let digits = &key.as_bytes()[3..];
        value.extend(digits.iter().cycle().take(value_bytes));
        batch.put(key.as_bytes(), &value)?;
        if batch.len() >= FILL_BATCH || batch.encoded_ops().len() >= FILL_BATCH_BYTES {
            engine.write(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        engine.write(&batch)?;
    }
    Ok(())
}

/// What `delete_range` answers.
#[derive(Serialize)]
pub struct Deleted {
    /// Keys deleted.
    pub deleted: u64,
}

/// `POST /api/delete_range?from=&to=`: deletes every live key `from <= key < to`.
///
/// # Errors
/// 400 for a bad parameter; the engine's, mapped by [`ApiError`].
pub async fn delete_range(
    State(served): State<Arc<Served>>,
    uri: Uri,
) -> Result<Json<Timed<Deleted>>, ApiError> {
    let params = Params::parse(uri.query(), &["from", "to"])?;
    let range = params.range();
    timed(&served, move |engine| {
        let deleted = delete_keys_in(engine, &range)?;
        Ok(Deleted { deleted })
    })
    .await
}

/// Deletes the live keys of `range`: walks one cursor over a snapshot, so the deletes it
/// writes as it goes do not move it, and writes them in batches.
fn delete_keys_in(engine: &dyn DynEngine, range: &KeyRange) -> Result<u64> {
    if range.is_empty() {
        return Ok(0);
    }
    let mut cursor = engine.cursor()?;
    match &range.start {
        Bound::Unbounded => cursor.seek_to_first()?,
        Bound::Included(start) => cursor.seek(start)?,
        Bound::Excluded(start) => {
            cursor.seek(start)?;
            if cursor.valid() && cursor.key() == start.as_slice() {
                cursor.next()?;
            }
        }
    }
    let mut batch = WriteBatch::new();
    let mut deleted = 0u64;
    while cursor.valid() && !range.is_past_end(cursor.key()) {
        batch.delete(cursor.key())?;
        if batch.len() >= FILL_BATCH {
            engine.write(&batch)?;
            deleted += batch.len() as u64;
            batch.clear();
        }
        cursor.next()?;
    }
    if !batch.is_empty() {
        engine.write(&batch)?;
        deleted += batch.len() as u64;
    }
    Ok(deleted)
}

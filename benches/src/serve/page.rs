//! The live page of `kv serve`, the store's structure as JSON, and its picture.
//!
//! | method | path | answer |
//! |---|---|---|
//! | `GET` | `/` | the page: one HTML document, its style and script inline |
//! | `GET` | `/api/structure` | the store now, on disk and in memory: JSON, described below |
//! | `GET` | `/api/draw.svg` | the picture of the store now, `image/svg+xml`, drawn as `kv draw` draws it |
//!
//! ## The page
//!
//! One HTML document with its style and script written into it ([`PAGE`], from
//! `page/page.html`, `page/page.css`, `page/page.js`): it fetches nothing from anywhere but
//! this server, so it works offline and a reader can read it whole. It shows:
//!
//! * the engine and the store directory (`#engine`, `#dir`);
//! * the picture of the store (`#picture`), the same SVG `kv draw --dir` writes;
//! * the summary of the structure as text (`<pre id="summary">`), level by level or file by
//!   file, with attributes for scripts and tests: `data-levels="L0:3 L1:2 ..."` (an LSM
//!   tree's tables per level, stages 4 and 5), `data-entries="L0:3000 L1:2000 ..."` (their
//!   entries), `data-memtable` (entries the WALs hold, stages 3 to 5), `data-segments`
//!   (value-log segments, stage 5), `data-files` (files in the directory, its
//!   subdirectories' included);
//! * the counters (`#stats`) and two charts over the last two minutes (`#chart-amp`: write
//!   and space amplification; `#chart-disk`: bytes on disk and live bytes);
//! * the controls, each calling the JSON API ([`super::api`]): write N random keys
//!   (`#fill-n`, `#fill`: `POST /api/fill?n=N`), delete a range (`#delete-from`,
//!   `#delete-to`, `#delete-range`: `POST /api/delete_range?from=&to=`), `#compact`,
//!   `#flush`, `#sync` (`POST /api/compact`, `/api/flush`, `/api/sync`); the answer of the
//!   last one shows in `#status`, its `data-state` `busy`, `ok` or `error`.
//!
//! **How it stays live.** The script polls: it asks for `/api/structure?brief=true` and
//! `/api/draw.svg` together, and half a second after both answered asks again (so a slow
//! answer delays the next poll rather than piling requests up). The structure answer
//! carries the engine's [`kv_shared::Stats`] as `GET /api/stats` does, so one request feeds
//! the summary and the charts. The picture replaces the one shown only when its markup
//! changed. Reading a store decodes every block of its tables, so the server keeps its last
//! reading with the directory's fingerprint (each file's name, size, change time, inode;
//! [`snapshot`]): a store that did not change is answered from memory, and an idle page
//! costs the engine one `stats` call per poll (an lsm store counts its live keys by a
//! scan there, so on a large store that scan is what the page costs). After a control's
//! answer the page polls at once. The charts' history lives in the page: a reload starts
//! it again.
//!
//! ## `GET /api/structure`, version 1
//!
//! The store as it is now. The on-disk part is [`crate::draw::structure`]'s reading, taken
//! without a lock while the engine runs; a file a compaction deletes in the middle of it,
//! or a table caught before its footer, fails one attempt, and the reading is tried again
//! (up to [`snapshot::ATTEMPTS`] times). The in-memory part is the engine's
//! [`kv_shared::DynEngine::stats`]. The two are taken at nearly the same moment, not
//! atomically: a flush between them can show a memtable's entries both in memory and in a
//! table. `?brief=true` leaves out the longest lists (every file's `parts`, the hash
//! index's pointers), counting them in `parts_omitted` and `index_omitted` instead; any
//! other parameter is refused (400). Errors are `{"error": "..."}` with a status, as
//! everywhere under `/api/`.
//!
//! ```text
//! {
//!   version      1 (structure_json::VERSION): changed when a field changes meaning or goes
//!                away; new fields may be added within a version
//!   engine       the engine serving the store ("lsm", or a peer: "fjall", ...)
//!   dir          the store directory
//!   note         null; for a peer, why summary and structure are null
//!   stats        kv_shared::Stats field by field (user_bytes_written, disk_bytes_written,
//!                live_keys, live_data_bytes, disk_bytes, file_count, gets, get_disk_reads,
//!                extra: {counter: n}), plus write_amp, space_amp, read_amp (null while
//!                undefined): what GET /api/stats answers, without its engine
//!   summary      null for a peer; else the store stage by stage, "stage" naming the shape:
//!     stage "hashlog"  log: File | null, index: Index
//!     stage "bitcask"  segments: [File + hint], hint_files: [name], merge: Merge | null,
//!                      index: Index, merges
//!     stage "sstable"  memtable: Memtable, tables: [Table], compaction: Merge | null,
//!                      flushes, compactions
//!     stage "lsm"      memtable: Memtable, levels: [Level], compaction: Compaction,
//!                      block_cache: Cache
//!     stage "wisckey"  the tree as stage "lsm" has it (memtable, levels, compaction,
//!                      block_cache: from the engine's tree_* counters), value_log:
//!                      ValueLog, gc: Gc
//!   structure    null for a peer; else kv_shared::Structure as kv draw reads it (its own
//!                version in structure.version; every field documented in
//!                kv_shared::structure)
//! }
//! ```
//!
//! The objects of `summary` (sizes in bytes; `?` marks a field that may be `null`):
//!
//! | object | field | meaning |
//! |---|---|---|
//! | File | `name` | the file's name in the directory |
//! | | `bytes` | its size |
//! | | `live_bytes?` | bytes still needed: records the index points at |
//! | | `dead_bytes?` | bytes a merge could reclaim: overwritten and deleted records |
//! | | `entries?` | records in a log or segment |
//! | | `note?` | the stage's remark: `"active segment"`, `"flushed: the next open deletes it"` |
//! | | `hint?` | (bitcask segments) the segment's hint file |
//! | Index | `keys` | keys in the in-memory index (live keys) |
//! | | `data_bytes` | their key and value bytes |
//! | | `memory_bytes?` | the index's estimated memory (bitcask's keydir) |
//! | Merge | `inputs`, `outputs` | a merge's or compaction's files, found in the directory |
//! | | `committed` | its commit point passed: the next open finishes it |
//! | Memtable | `bytes?` | memory the memtables hold now, frozen ones waiting for their flush included |
//! | | `immutable?` | frozen memtables waiting for their flush (lsm) |
//! | | `capacity_bytes?` | the flush threshold (`memtable_bytes`) |
//! | | `entries` | entries the WALs on disk replay to (every version of a key on lsm) |
//! | | `keys?` | `{first, last}`: their smallest and largest key |
//! | | `wals` | a list of File: every write-ahead log, oldest first |
//! | Table | `name`, `bytes` | the table file and its size |
//! | | `entries?` | entries, tombstones included |
//! | | `keys?` | `{first, last}`: its key range |
//! | | `filter_bytes?` | its Bloom filter's bytes (null without one) |
//! | | `note?` | the stage's remark (`"in no level: the manifest does not name it"`) |
//! | Level | `level` | 0 for L0 |
//! | | `bytes` | its tables' bytes |
//! | | `target_bytes?` | the size compaction keeps it under (null: L0, the last level, tiered) |
//! | | `tables` | a list of Table: on L0 oldest first, below it by key |
//! | Compaction | `unplaced_tables` | tables no level holds: outputs being written or inputs not deleted yet (not empty while a flush or compaction runs) |
//! | | `temp_files` | files being written under a temporary name |
//! | | `flushes`, `compactions`, `trivial_moves` | counts since open |
//! | | `bytes_read`, `bytes_written` | compaction's bytes since open |
//! | Cache | `hits`, `misses` | block lookups since open |
//! | | `hit_rate?` | `hits / (hits + misses)`, null before any lookup |
//! | | `bytes`, `capacity_bytes` | held, and allowed |
//! | ValueLog | `bytes` | its segments' bytes |
//! | | `live_bytes?`, `dead_bytes?` | values the tree points at, and records nothing points at; null when the reading did not compute it (a tree over `wisckey::inspect::LIVENESS_MAX_TREE_BYTES`) |
//! | | `dead_bytes_known` | the dead bytes the engine counts in memory: small values and deletes, dead when written, and what its collections measured |
//! | | `values_inline`, `values_in_log` | live keys whose value the tree keeps, and those in the log |
//! | | `segments` | a list of File (`vlog/00000001.seg`...), oldest first, the active one noted |
//! | Gc | `runs`, `segments_deleted` | garbage collections since open, and the segments they freed |
//! | | `values_relocated`, `bytes_relocated` | live values copied to the log's head |
//! | | `errors` | background collections that failed |
//!
//! A wisckey store's files are named by their path in the store directory: `tree/000005.sst`,
//! `vlog/00000001.seg` ([`mod@wisckey::inspect`]).
//!
//! Keys are text as in [`kv_shared::structure::key_text`]: printable ASCII as is, any
//! other byte `\xNN`.
//!
//! **Peers** (fjall, sled, redb, rocksdb) keep files in their own formats, which
//! [`crate::draw`] does not read: their answer has `stats`, `"summary": null`,
//! `"structure": null` and a `note` saying so; `/api/draw.svg` answers 404.
//!
//! ## `GET /api/draw.svg`
//!
//! [`crate::draw::store_picture`] of the same reading (kept with it, so polling an idle
//! store draws nothing), `Cache-Control: no-store`.

pub mod snapshot;
pub mod structure_json;

use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use kv_shared::{Error, Result, Structure};
use serde::Deserialize;

use super::Served;
use super::api::ApiError;
use crate::draw::svg::escape;
use snapshot::{Snapshot, Snapshots};
use structure_json::{StructureAnswer, VERSION, summary};

/// The engines whose files [`crate::draw`] reads: the course's.
pub const DRAWN_ENGINES: [&str; 5] = ["hashlog", "bitcask", "sstable", "lsm", "wisckey"];

/// The page as served, before the engine's name and the directory are written into it:
/// `page/page.html` with `page/page.css` and `page/page.js` in place of its `{{style}}` and
/// `{{script}}`.
pub static PAGE: LazyLock<String> = LazyLock::new(|| {
    include_str!("page/page.html")
        .replace("{{style}}", include_str!("page/page.css"))
        .replace("{{script}}", include_str!("page/page.js"))
});

/// What every route of the page needs: the store, and its last reading.
#[derive(Debug, Clone)]
struct PageState {
    served: Arc<Served>,
    snapshots: Arc<Snapshots>,
}

/// The page's routes: `/`, `/api/structure`, `/api/draw.svg`.
pub fn router(served: Arc<Served>) -> Router {
    let state = PageState {
        served,
        snapshots: Arc::default(),
    };
    Router::new()
        .route("/", get(page))
        .route("/api/structure", get(structure))
        .route("/api/draw.svg", get(picture))
        .with_state(state)
}

/// The page, the engine's name and the directory written in.
async fn page(State(state): State<PageState>) -> Response {
    let served = &state.served;
    let html = PAGE
        .replace("{{engine}}", &escape(served.info.name))
        .replace("{{dir}}", &escape(&served.dir.to_string_lossy()));
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// The parameters `/api/structure` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StructureQuery {
    /// Leave out every file's parts and the index's pointers.
    #[serde(default)]
    brief: bool,
}

/// `GET /api/structure`: the stats, and for a course engine the structure and summary.
async fn structure(
    State(state): State<PageState>,
    query: std::result::Result<Query<StructureQuery>, QueryRejection>,
) -> std::result::Result<Json<StructureAnswer>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let served = &state.served;
    let stats = served.call(|engine| engine.stats());
    let copy = move |snapshot: &Snapshot| {
        let mut structure = Structure::clone(&snapshot.structure);
        if query.brief {
            brief(&mut structure);
        }
        (snapshot.structure.clone(), structure)
    };
    let (stats, structure) = tokio::join!(stats, read(&state, copy));
    let stats = stats?;
    let (summary, structure, note) = match structure? {
        // The summary reads the whole structure (a table's filter is one of its parts).
        Some((whole, answered)) => (summary(&whole, &stats), Some(answered), None),
        None => (None, None, Some(not_drawn(served.info.name))),
    };
    Ok(Json(StructureAnswer {
        version: VERSION,
        engine: served.info.name.to_string(),
        dir: served.dir.to_string_lossy().into_owned(),
        note,
        stats: stats.into(),
        summary,
        structure,
    }))
}

/// `GET /api/draw.svg`: the picture of the store now.
async fn picture(State(state): State<PageState>) -> std::result::Result<Response, ApiError> {
    match read(&state, |snapshot| snapshot.picture().to_string()).await? {
        Some(svg) => Ok((
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            svg,
        )
            .into_response()),
        None => Err(ApiError::not_found(not_drawn(state.served.info.name))),
    }
}

/// `then` of the store's reading, both on a blocking thread; `None` for an engine `kv draw`
/// does not read.
async fn read<T, F>(state: &PageState, then: F) -> Result<Option<T>>
where
    T: Send + 'static,
    F: FnOnce(&Snapshot) -> T + Send + 'static,
{
    if !DRAWN_ENGINES.contains(&state.served.info.name) {
        return Ok(None);
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let snapshot = state.snapshots.read(&state.served)?;
        Ok(Some(then(&snapshot)))
    })
    .await
    .unwrap_or_else(|e| Err(Error::background("serve", e.to_string())))
}

/// Why a peer has no structure.
fn not_drawn(engine: &str) -> String {
    format!(
        "{engine} keeps its files in its own formats, which kv draw does not read (it reads {}): \
         only its stats are shown",
        DRAWN_ENGINES.join(", ")
    )
}

/// Leaves out the longest lists of `structure`, counting what was left out.
fn brief(structure: &mut Structure) {
    for file in &mut structure.files {
        file.parts_omitted += file.parts.len() as u64;
        file.parts = Vec::new();
    }
    structure.index_omitted += structure.index.len() as u64;
    structure.index = Vec::new();
}

//! The answer of `GET /api/structure`, as Rust types: [`StructureAnswer`] and the
//! per-stage [`Summary`] built from a [`Structure`] read on disk and the engine's [`Stats`]
//! read in memory. The parent module's doc describes every field of the JSON.

use kv_shared::structure::{FileKind, KeySpan, MergeInProgress, PartKind, StoreFile};
use kv_shared::{Stats, Structure};
use serde::Serialize;

/// The version of the JSON [`StructureAnswer`] makes: changed when a field changes meaning
/// or goes away (new fields may be added within a version).
pub const VERSION: u32 = 1;

/// The whole answer of `GET /api/structure`.
#[derive(Debug, Clone, Serialize)]
pub struct StructureAnswer {
    /// [`VERSION`].
    pub version: u32,
    /// The engine serving the store.
    pub engine: String,
    /// The store directory.
    pub dir: String,
    /// Why `structure` and `summary` are `null`, when they are (a peer engine).
    pub note: Option<String>,
    /// The engine's counters and sizes, with the amplifications they give.
    pub stats: StatsAnswer,
    /// What the engine holds, stage by stage: the disk's files with the memory's figures.
    pub summary: Option<Summary>,
    /// The directory as `kv draw` reads it ([`kv_shared::Structure`]).
    pub structure: Option<Structure>,
}

/// [`Stats`] with the three amplifications it gives (`null` while undefined).
#[derive(Debug, Clone, Serialize)]
pub struct StatsAnswer {
    /// The counters and sizes, field for field.
    #[serde(flatten)]
    pub stats: Stats,
    /// [`Stats::write_amp`].
    pub write_amp: Option<f64>,
    /// [`Stats::space_amp`].
    pub space_amp: Option<f64>,
    /// [`Stats::read_amp`].
    pub read_amp: Option<f64>,
}

impl From<Stats> for StatsAnswer {
    fn from(stats: Stats) -> Self {
        StatsAnswer {
            write_amp: stats.write_amp(),
            space_amp: stats.space_amp(),
            read_amp: stats.read_amp(),
            stats,
        }
    }
}

/// What one stage's store holds, on disk and in memory. In JSON, `stage` names the variant.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Summary {
    /// Stage 1: one log and the index over it.
    Hashlog {
        /// The log (`null` before the file exists).
        log: Option<FileSummary>,
        /// The in-memory index.
        index: IndexSummary,
    },
    /// Stage 2: segments, their hint files, a merge.
    Bitcask {
        /// Every segment, oldest first.
        segments: Vec<SegmentSummary>,
        /// The hint files.
        hint_files: Vec<String>,
        /// A merge whose files are in the directory.
        merge: Option<MergeInProgress>,
        /// The in-memory index (the keydir).
        index: IndexSummary,
        /// Merges finished since the store was opened.
        merges: u64,
    },
    /// Stage 3: a memtable with its WALs, one level of tables.
    Sstable {
        /// The memtable and its write-ahead logs.
        memtable: MemtableSummary,
        /// The tables, oldest first.
        tables: Vec<TableSummary>,
        /// A compaction whose files are in the directory.
        compaction: Option<MergeInProgress>,
        /// Flushes since open.
        flushes: u64,
        /// Compactions since open.
        compactions: u64,
    },
    /// Stage 4: memtables with their WALs, levels of tables, compaction, the block cache.
    Lsm {
        /// The memtables and their write-ahead logs.
        memtable: MemtableSummary,
        /// Each level from L0 down, with its tables.
        levels: Vec<LevelSummary>,
        /// Compaction's work.
        compaction: CompactionSummary,
        /// The block cache.
        block_cache: CacheSummary,
    },
    /// Stage 5: the tree of keys, as stage 4's (its figures are the engine's `tree_*`
    /// counters), and the value log of values with its garbage collection.
    Wisckey {
        /// The tree's memtables and their write-ahead logs.
        memtable: MemtableSummary,
        /// The tree's levels from L0 down, with their tables.
        levels: Vec<LevelSummary>,
        /// The tree's compaction work.
        compaction: CompactionSummary,
        /// The tree's block cache.
        block_cache: CacheSummary,
        /// The value log.
        value_log: ValueLogSummary,
        /// The value log's garbage collection since open.
        gc: GcSummary,
    },
}

/// A wisckey store's value log.
#[derive(Debug, Clone, Serialize)]
pub struct ValueLogSummary {
    /// Bytes of its segments.
    pub bytes: u64,
    /// Bytes of the values the tree points at (`null` when the reading did not compute
    /// liveness: a large tree).
    pub live_bytes: Option<u64>,
    /// Bytes of the records nothing points at (`null` likewise).
    pub dead_bytes: Option<u64>,
    /// The dead bytes the engine knows of in memory: small values and deletes (dead when
    /// written) and what its collections measured.
    pub dead_bytes_known: u64,
    /// Live keys whose value is kept in the tree.
    pub values_inline: u64,
    /// Live keys whose value is in the log.
    pub values_in_log: u64,
    /// Every segment, oldest first, with its live and dead bytes where known.
    pub segments: Vec<FileSummary>,
}

/// The garbage collector's work since open.
#[derive(Debug, Clone, Serialize)]
pub struct GcSummary {
    /// Collections run (by `compact` and in the background).
    pub runs: u64,
    /// Segments deleted.
    pub segments_deleted: u64,
    /// Live values copied to the log's head.
    pub values_relocated: u64,
    /// Their bytes.
    pub bytes_relocated: u64,
    /// Background collections that failed.
    pub errors: u64,
}

/// A file with its size and what the stage says of it.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Bytes still needed (`null` where the stage cannot tell).
    pub live_bytes: Option<u64>,
    /// Bytes a merge or compaction could reclaim (`null` where unknown).
    pub dead_bytes: Option<u64>,
    /// Records (a log) or entries (a table).
    pub entries: Option<u64>,
    /// The stage's remark ("active segment", "flushed: the next open deletes it").
    pub note: Option<String>,
}

impl FileSummary {
    fn of(file: &StoreFile) -> FileSummary {
        FileSummary {
            name: file.name.clone(),
            bytes: file.bytes,
            live_bytes: file.live_bytes,
            dead_bytes: file.dead_bytes,
            entries: file.entries,
            note: file.note.clone(),
        }
    }
}

/// An in-memory index of every live key.
#[derive(Debug, Clone, Serialize)]
pub struct IndexSummary {
    /// Keys in it (live keys).
    pub keys: u64,
    /// Their key and value bytes.
    pub data_bytes: u64,
    /// Its estimated memory (`null` where the engine does not count it).
    pub memory_bytes: Option<u64>,
}

impl IndexSummary {
    fn of(stats: &Stats) -> IndexSummary {
        IndexSummary {
            keys: stats.live_keys,
            data_bytes: stats.live_data_bytes,
            memory_bytes: stats.extra.get("keydir_bytes").copied(),
        }
    }
}

/// A bitcask segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentSummary {
    /// The segment file, its live and dead bytes.
    #[serde(flatten)]
    pub file: FileSummary,
    /// Its hint file, if it has one.
    pub hint: Option<String>,
}

/// A memtable and the write-ahead logs that hold it.
#[derive(Debug, Clone, Serialize)]
pub struct MemtableSummary {
    /// Bytes in memory now, the frozen memtables waiting for their flush included.
    pub bytes: Option<u64>,
    /// Frozen memtables waiting for their flush (`null` where the engine does not count).
    pub immutable: Option<u64>,
    /// The flush threshold.
    pub capacity_bytes: Option<u64>,
    /// Entries the WALs on disk replay to.
    pub entries: u64,
    /// Their smallest and largest key.
    pub keys: Option<KeySpan>,
    /// Every write-ahead log, oldest first.
    pub wals: Vec<FileSummary>,
}

impl MemtableSummary {
    fn of(structure: &Structure, stats: &Stats) -> MemtableSummary {
        let memtable = structure.memtable.as_ref();
        MemtableSummary {
            bytes: stats.extra.get("memtable_bytes").copied(),
            immutable: stats.extra.get("immutable_memtables").copied(),
            capacity_bytes: memtable.and_then(|m| m.capacity_bytes),
            entries: memtable.map_or(0, |m| m.entries),
            keys: memtable.and_then(|m| m.keys.clone()),
            wals: files_of(structure, FileKind::Wal)
                .map(FileSummary::of)
                .collect(),
        }
    }
}

/// A sorted table.
#[derive(Debug, Clone, Serialize)]
pub struct TableSummary {
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Entries, tombstones included.
    pub entries: Option<u64>,
    /// Its smallest and largest key.
    pub keys: Option<KeySpan>,
    /// Bytes of its Bloom filter (`null` for a table without one).
    pub filter_bytes: Option<u64>,
    /// The stage's remark.
    pub note: Option<String>,
}

impl TableSummary {
    fn of(file: &StoreFile) -> TableSummary {
        let filters = file.parts.iter().filter(|p| p.kind == PartKind::Filter);
        let filter_bytes = filters.map(|p| p.bytes).reduce(|a, b| a + b);
        TableSummary {
            name: file.name.clone(),
            bytes: file.bytes,
            entries: file.entries,
            keys: file.keys.clone(),
            filter_bytes,
            note: file.note.clone(),
        }
    }
}

/// One level of an LSM tree.
#[derive(Debug, Clone, Serialize)]
pub struct LevelSummary {
    /// Its number, 0 for L0.
    pub level: u32,
    /// Bytes of its tables.
    pub bytes: u64,
    /// The size compaction keeps it under (`null` for L0, the last level, and tiered).
    pub target_bytes: Option<u64>,
    /// Its tables: on L0 oldest first, below by key.
    pub tables: Vec<TableSummary>,
}

/// Compaction's work in an LSM tree.
#[derive(Debug, Clone, Serialize)]
pub struct CompactionSummary {
    /// Tables in the directory that no level holds: a flush's or compaction's outputs
    /// being written, or inputs not deleted yet. Not empty while one runs.
    pub unplaced_tables: Vec<String>,
    /// Files being written under a temporary name.
    pub temp_files: Vec<String>,
    /// Flushes since open.
    pub flushes: u64,
    /// Compactions since open.
    pub compactions: u64,
    /// Compactions that moved a table down without rewriting it.
    pub trivial_moves: u64,
    /// Bytes compactions read.
    pub bytes_read: u64,
    /// Bytes compactions wrote.
    pub bytes_written: u64,
}

/// The block cache's use.
#[derive(Debug, Clone, Serialize)]
pub struct CacheSummary {
    /// Lookups that found their block.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// `hits / (hits + misses)`; `null` before any lookup.
    pub hit_rate: Option<f64>,
    /// Bytes held.
    pub bytes: u64,
    /// Bytes it may hold.
    pub capacity_bytes: u64,
}

/// The files of `kind`, in name order.
fn files_of(structure: &Structure, kind: FileKind) -> impl Iterator<Item = &StoreFile> {
    structure.files.iter().filter(move |f| f.kind == kind)
}

/// The summary of a course engine's store; `None` for an engine `kv draw` does not read.
pub fn summary(structure: &Structure, stats: &Stats) -> Option<Summary> {
    let extra = |name: &str| stats.extra.get(name).copied().unwrap_or(0);
    let summary = match structure.engine.as_str() {
        "hashlog" => Summary::Hashlog {
            log: files_of(structure, FileKind::Log)
                .next()
                .map(FileSummary::of),
            index: IndexSummary::of(stats),
        },
        "bitcask" => bitcask(structure, stats),
        "sstable" => Summary::Sstable {
            memtable: MemtableSummary::of(structure, stats),
            tables: files_of(structure, FileKind::Table)
                .map(TableSummary::of)
                .collect(),
            compaction: structure.merge.clone(),
            flushes: extra("flushes"),
            compactions: extra("compactions"),
        },
        "lsm" => lsm(structure, stats),
        "wisckey" => wisckey(structure, stats),
        _ => return None,
    };
    Some(summary)
}

/// A bitcask store's summary: each segment with its hint file.
fn bitcask(structure: &Structure, stats: &Stats) -> Summary {
    let hints: Vec<&StoreFile> = files_of(structure, FileKind::Hint).collect();
    let segments = files_of(structure, FileKind::Segment)
        .map(|segment| SegmentSummary {
            file: FileSummary::of(segment),
            hint: hints
                .iter()
                .find(|h| h.describes.as_deref() == Some(segment.name.as_str()))
                .map(|h| h.name.clone()),
        })
        .collect();
    Summary::Bitcask {
        segments,
        hint_files: hints.iter().map(|h| h.name.clone()).collect(),
        merge: structure.merge.clone(),
        index: IndexSummary::of(stats),
        merges: stats.extra.get("merges").copied().unwrap_or(0),
    }
}

/// An LSM tree's summary: levels with their tables, compaction, the block cache.
fn lsm(structure: &Structure, stats: &Stats) -> Summary {
    let (memtable, levels, compaction, block_cache) = tree(structure, stats);
    Summary::Lsm {
        memtable,
        levels,
        compaction,
        block_cache,
    }
}

/// An LSM tree's memtable, levels with their tables, compaction and block cache.
fn tree(
    structure: &Structure,
    stats: &Stats,
) -> (
    MemtableSummary,
    Vec<LevelSummary>,
    CompactionSummary,
    CacheSummary,
) {
    let extra = |name: &str| stats.extra.get(name).copied().unwrap_or(0);
    let tables: Vec<&StoreFile> = files_of(structure, FileKind::Table).collect();
    let levels = structure
        .levels
        .iter()
        .map(|level| LevelSummary {
            level: level.level,
            bytes: level.bytes,
            target_bytes: level.target_bytes,
            tables: tables
                .iter()
                .filter(|t| t.level == Some(level.level))
                .map(|t| TableSummary::of(t))
                .collect(),
        })
        .collect();
    let names = |files: &mut dyn Iterator<Item = &StoreFile>| -> Vec<String> {
        files.map(|f| f.name.clone()).collect()
    };
    let compaction = CompactionSummary {
        unplaced_tables: names(&mut tables.iter().copied().filter(|t| t.level.is_none())),
        temp_files: names(&mut files_of(structure, FileKind::Temp)),
        flushes: extra("flushes"),
        compactions: extra("compactions"),
        trivial_moves: extra("trivial_moves"),
        bytes_read: extra("compaction_bytes_read"),
        bytes_written: extra("compaction_bytes_written"),
    };
    let (hits, misses) = (extra("block_cache_hits"), extra("block_cache_misses"));
    let block_cache = CacheSummary {
        hits,
        misses,
        hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        bytes: extra("block_cache_bytes"),
        capacity_bytes: extra("block_cache_capacity"),
    };
    (
        MemtableSummary::of(structure, stats),
        levels,
        compaction,
        block_cache,
    )
}

/// A wisckey store's summary: the tree as an LSM tree's (from the engine's `tree_*`
/// counters), the value log's segments, the garbage collector's counters.
fn wisckey(structure: &Structure, stats: &Stats) -> Summary {
    let extra = |name: &str| stats.extra.get(name).copied().unwrap_or(0);
    let tree_stats = Stats {
        extra: (stats.extra.iter())
            .filter_map(|(name, &n)| Some((name.strip_prefix("tree_")?.to_string(), n)))
            .collect(),
        ..Stats::default()
    };
    let (memtable, levels, compaction, block_cache) = tree(structure, &tree_stats);
    let segments: Vec<&StoreFile> = files_of(structure, FileKind::Segment).collect();
    let sum = |field: fn(&StoreFile) -> Option<u64>| -> Option<u64> {
        segments.iter().map(|f| field(f)).sum()
    };
    let value_log = ValueLogSummary {
        bytes: segments.iter().map(|f| f.bytes).sum(),
        live_bytes: sum(|f| f.live_bytes),
        dead_bytes: sum(|f| f.dead_bytes),
        dead_bytes_known: extra("vlog_dead_bytes_known"),
        values_inline: extra("live_values_inline"),
        values_in_log: extra("live_values_in_log"),
        segments: segments.iter().map(|f| FileSummary::of(f)).collect(),
    };
    let gc = GcSummary {
        runs: extra("gc_runs"),
        segments_deleted: extra("gc_segments_deleted"),
        values_relocated: extra("gc_values_relocated"),
        bytes_relocated: extra("gc_bytes_relocated"),
        errors: extra("gc_errors"),
    };
    Summary::Wisckey {
        memtable,
        levels,
        compaction,
        block_cache,
        value_log,
        gc,
    }
}

//! One memory budget for every engine: `kvbench --budget matched` (the default).
//!
//! Left to their own defaults the engines hold very different amounts of memory: `lsm` a
//! 64 MiB block cache and 4 MiB memtables, sled and redb 1 GiB caches, fjall a 32 MiB cache
//! and 64 MiB memtables, RocksDB a 32 MiB cache and 64 MiB write buffers. A table of their
//! rates then says as much about those defaults as about the designs. So `kvbench` gives
//! every engine the same two figures and sets each engine's options from them:
//!
//! * **cache bytes** (`--cache-bytes`, default 64 MiB): memory for data read back from
//!   disk: a block cache, a page cache;
//! * **write-buffer bytes** (`--write-buffer-bytes`, default 64 MiB): memory for writes not
//!   yet in a table or page on disk, *all of it at once*: the active memtable plus every
//!   full one still waiting for its flush.
//!
//! The second figure is where engines differ most. An LSM tree freezes a full memtable and
//! goes on writing into a fresh one while a background thread flushes the frozen one; how
//! many frozen ones may wait before writers stop is each engine's own rule. Setting the
//! memtable size to the whole budget would let an engine that keeps four frozen memtables
//! hold five times the budget, so the budget is divided by the number of memtables the
//! engine can hold at once.
//!
//! ## Engine by engine
//!
//! | engine | option = value | why |
//! |---|---|---|
//! | `hashlog` | none: the budget does not apply | its hash index holds every key in memory, sized by the number of keys, not by an option; it has no cache (reads go to the log through the operating system's page cache) and no write buffer (each write goes to the log) |
//! | `bitcask` | none: the budget does not apply | the same: the keydir holds every key, there is no cache and no write buffer |
//! | `sstable` | `memtable_bytes` = write | ×1: the flush runs in the writer's thread holding the write lock, so while a frozen memtable is written out the fresh one stays empty: one full memtable at a time. Stage 3 has no block cache (every read goes to the file), so the cache figure is unused |
//! | `lsm` | `memtable_bytes` = write / 2, `block_cache_bytes` = cache | ×2: writers wait while one immutable memtable is waiting for its flush (`MAX_IMMUTABLE = 1` in stage 4's `engine.rs`, checked in `make_room`), so at most the active memtable and one immutable one are held. The open tables' indexes and filters are charged to the block cache's budget (stage 4's `block_cache.rs`), so the cache figure bounds them too |
//! | `wisckey` | `memtable_bytes` = write / 2, `block_cache_bytes` = cache | its tree is stage 4's, budgeted as `lsm`; the value log has no cache of its own: its reads go through the operating system's page cache, as the peers' blob files do |
//! | `fjall` | `memtable_bytes` = write / 5, `cache_bytes` = cache | ×5: fjall 3 halts a keyspace's writers while it holds 4 sealed memtables (`local_backpressure`), so the active memtable and up to 4 sealed ones are held. Its database-wide `max_write_buffer_size` is hidden, deprecated and not enforced in fjall 3.1, and the adapter documents no option for it; its journal limit (`max_journaling_size`) bounds disk, not memory |
//! | `rocksdb` | `memtable_bytes` = write / 2, `cache_bytes` = cache | ×2: `write_buffer_size` × `max_write_buffer_number`, which the adapter leaves at RocksDB's default of 2 (the active memtable and one immutable one). The crate has a `WriteBufferManager`, but the adapter documents no option for it, and the ×2 split gives the same bound |
//! | `sled` | `cache_bytes` = cache + write | sled has no separate write buffer: the pages a write changes live in its page cache with the pages reads brought in (its log buffer, a few 512 KiB segments, is fixed), so its one cache gets both figures |
//! | `redb` | `cache_bytes` = cache + write | redb's one cache holds read pages and the dirty pages of writes not yet written to the file; it never lets dirty pages take more than half, so with equal figures the dirty pages are held to the write figure and reads get the rest |
//!
//! A learner's workshop engine (`my-lsm`, see `kv_workshop`) is its stage with the same
//! options, and gets its stage's row. An engine in no row (a test engine) runs with its own
//! defaults, and the report says so.
//!
//! Only options an engine documents are ever set: a row naming an option its engine does
//! not document skips it.
//!
//! **What wins.** The budget is the bottom layer of an engine's settings: `--set NAME=VALUE`
//! goes on top of it, and a spec's own `name[a=1]` on top of that, as before. A setting that
//! replaces a budget figure is named in the report (`memtable_bytes=16K (--set wins over the
//! budget's 32M)`), so a reader knows that engine is off the budget.
//!
//! **Not in the budget.** Each open table's index and bloom filter (`lsm` and RocksDB as
//! configured keep them outside the block cache), the engines' threads, and the benchmark's
//! own buffers. The report's peak RSS is the whole process, so it shows what the budget
//! leaves out.
//!
//! `--budget own` turns all this off: every engine runs with its own defaults, as `kvbench`
//! did before the budget.

use std::fmt;

use kv_shared::{Error, OptionDoc, Options, Result};

use crate::measurement::Measurement;

/// Default `--cache-bytes`: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Default `--write-buffer-bytes`: 64 MiB.
pub const DEFAULT_WRITE_BUFFER_BYTES: u64 = 64 << 20;

/// `--budget`: how the engines' memory is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BudgetMode {
    /// Every engine is configured from one memory budget (this module's table).
    #[default]
    Matched,
    /// Every engine runs with its own defaults.
    Own,
}

impl BudgetMode {
    /// `matched` or `own`, as the command line and the JSON spell it.
    pub fn name(self) -> &'static str {
        match self {
            BudgetMode::Matched => "matched",
            BudgetMode::Own => "own",
        }
    }
}

/// The memory every engine is given: the mode and the two figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `matched` or `own`.
    pub mode: BudgetMode,
    /// `--cache-bytes`.
    pub cache_bytes: u64,
    /// `--write-buffer-bytes`.
    pub write_buffer_bytes: u64,
}

impl Budget {
    /// Each engine's own defaults: nothing is set.
    pub const OWN: Budget = Budget {
        mode: BudgetMode::Own,
        cache_bytes: DEFAULT_CACHE_BYTES,
        write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
    };

    /// The matched budget of `cache_bytes` and `write_buffer_bytes`.
    pub fn matched(cache_bytes: u64, write_buffer_bytes: u64) -> Budget {
        Budget {
            mode: BudgetMode::Matched,
            cache_bytes,
            write_buffer_bytes,
        }
    }

    /// The report's line: `budget: matched, cache_bytes=64M write_buffer_bytes=64M ...`.
    pub fn line(&self) -> String {
        match self.mode {
            BudgetMode::Own => "budget: own (each engine's own defaults)".to_string(),
            BudgetMode::Matched => format!(
                "budget: matched, cache_bytes={} write_buffer_bytes={} for every engine \
                 (what each gets is under settings; --set and spec settings win)",
                size_text(self.cache_bytes),
                size_text(self.write_buffer_bytes)
            ),
        }
    }
}

/// How one option's value follows from the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Share {
    /// The cache figure.
    Cache,
    /// The write figure shared by this many memtables held at once.
    Memtables(u64),
    /// Both figures: one cache that holds read and written pages alike.
    Both,
}

impl Share {
    fn bytes(self, budget: &Budget) -> u64 {
        match self {
            Share::Cache => budget.cache_bytes,
            Share::Memtables(count) => {
                let each = (budget.write_buffer_bytes / count.max(1)).max(1);
                // Whole KiB reads better (`13107K`, not `13421772`) and costs under 0.01 %.
                if each >= 1 << 20 { each & !1023 } else { each }
            }
            Share::Both => budget.cache_bytes.saturating_add(budget.write_buffer_bytes),
        }
    }
}

/// One engine's row of the module's table.
struct Rule {
    engine: &'static str,
    /// `(option, its share of the budget, why, for the report; "" when plain)`.
    sets: &'static [(&'static str, Share, &'static str)],
    /// What the budget leaves alone on this engine, and why ("" for nothing).
    leaves: &'static str,
}

const NO_INDEX_OPTION: &str = "does not apply: the in-memory index holds every key, sized \
    by the number of keys, not by an option; no cache and no write buffer";

/// The module's table, as code.
const RULES: &[Rule] = &[
    Rule {
        engine: "hashlog",
        sets: &[],
        leaves: NO_INDEX_OPTION,
    },
    Rule {
        engine: "bitcask",
        sets: &[],
        leaves: NO_INDEX_OPTION,
    },
    Rule {
        engine: "sstable",
        sets: &[(
            "memtable_bytes",
            Share::Memtables(1),
            "×1: the flush runs in the writer's thread",
        )],
        leaves: "cache unused: stage 3 has no block cache",
    },
    Rule {
        engine: "lsm",
        sets: &[
            (
                "memtable_bytes",
                Share::Memtables(2),
                "×2: active + 1 immutable",
            ),
            ("block_cache_bytes", Share::Cache, ""),
        ],
        leaves: "",
    },
    Rule {
        engine: "wisckey",
        sets: &[
            (
                "memtable_bytes",
                Share::Memtables(2),
                "×2: the tree's active + 1 immutable",
            ),
            ("block_cache_bytes", Share::Cache, "the tree's"),
        ],
        leaves: "the value log is read through the OS page cache, as the peers' blob files",
    },
    Rule {
        engine: "fjall",
        sets: &[
            (
                "memtable_bytes",
                Share::Memtables(5),
                "×5: active + up to 4 sealed",
            ),
            ("cache_bytes", Share::Cache, ""),
        ],
        leaves: "",
    },
    Rule {
        engine: "rocksdb",
        sets: &[
            (
                "memtable_bytes",
                Share::Memtables(2),
                "×2: max_write_buffer_number=2, active + 1 immutable",
            ),
            ("cache_bytes", Share::Cache, ""),
        ],
        leaves: "",
    },
    Rule {
        engine: "sled",
        sets: &[(
            "cache_bytes",
            Share::Both,
            "cache + write buffers: written pages live in the page cache",
        )],
        leaves: "",
    },
    Rule {
        engine: "redb",
        sets: &[(
            "cache_bytes",
            Share::Both,
            "cache + write buffers: one cache for read and dirty pages",
        )],
        leaves: "",
    },
];

/// The row for `engine`: its own, or its stage's for a workshop engine (`my-lsm`).
fn rule(engine: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.engine == engine || kv_workshop::readme::bench_name(r.engine) == engine)
}

/// Where a setting that replaced a budget figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `kvbench --set NAME=VALUE`.
    Set,
    /// The spec's own `name[NAME=VALUE]`.
    Spec,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Set => "--set",
            Source::Spec => "the spec",
        })
    }
}

/// One option the budget sets on an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetSetting {
    /// The option's name.
    pub name: &'static str,
    /// The value the budget gives it, as an option value (`32M`).
    pub value: String,
    /// Why that value, for the report (`×2: active + 1 immutable`), or empty.
    pub why: &'static str,
    /// The setting that replaced it, if any, and where it came from.
    pub overridden: Option<(Source, String)>,
}

/// What the budget does to one engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineBudget {
    /// The run's mode.
    pub mode: BudgetMode,
    /// The options it sets, in the table's order.
    pub settings: Vec<BudgetSetting>,
    /// What it leaves alone, and why; empty when nothing.
    pub leaves: String,
}

/// The options the budget gives the engine called `engine`, which documents `documented`.
pub fn derive(engine: &str, documented: &[OptionDoc], budget: &Budget) -> EngineBudget {
    if budget.mode == BudgetMode::Own {
        return EngineBudget {
            mode: BudgetMode::Own,
            ..EngineBudget::default()
        };
    }
    let Some(rule) = rule(engine) else {
        return EngineBudget {
            mode: BudgetMode::Matched,
            settings: Vec::new(),
            leaves: "does not apply: not in kvbench's budget table, own defaults".into(),
        };
    };
    let settings = rule
        .sets
        .iter()
        .filter(|(name, _, _)| documented.iter().any(|doc| doc.name == *name))
        .map(|&(name, share, why)| BudgetSetting {
            name,
            value: size_text(share.bytes(budget)),
            why,
            overridden: None,
        })
        .collect();
    EngineBudget {
        mode: BudgetMode::Matched,
        settings,
        leaves: rule.leaves.to_string(),
    }
}

impl EngineBudget {
    /// `(name, value)` of every option the budget sets, to start an engine's settings with.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.settings.iter().map(|s| (s.name, s.value.as_str()))
    }

    /// Records that `source` set option `name` to `value`, replacing the budget's figure if
    /// the budget set that option.
    pub fn overridden_by(&mut self, name: &str, source: Source, value: &str) {
        if let Some(setting) = self.settings.iter_mut().find(|s| s.name == name) {
            setting.overridden = Some((source, value.to_string()));
        }
    }

    /// The report's line: `memtable_bytes=32M (×2: active + 1 immutable)
    /// block_cache_bytes=64M`; empty in `own` mode.
    pub fn line(&self) -> String {
        if self.mode == BudgetMode::Own {
            return String::new();
        }
        let parts: Vec<String> = self
            .settings
            .iter()
            .map(|s| match (&s.overridden, s.why) {
                (Some((source, value)), _) => format!(
                    "{}={value} ({source} wins over the budget's {})",
                    s.name, s.value
                ),
                (None, "") => format!("{}={}", s.name, s.value),
                (None, why) => format!("{}={} ({why})", s.name, s.value),
            })
            .collect();
        let mut line = parts.join(" ");
        if !self.leaves.is_empty() {
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(&self.leaves);
        }
        line
    }

    /// Writes the budget's mode and figures, and this engine's line, into `row`.
    pub fn stamp(&self, budget: &Budget, row: &mut Measurement) {
        row.budget_mode = self.mode.name().to_string();
        let matched = self.mode == BudgetMode::Matched;
        row.budget_cache_bytes = matched.then_some(budget.cache_bytes);
        row.budget_write_buffer_bytes = matched.then_some(budget.write_buffer_bytes);
        row.budget_settings = self.line();
    }
}

/// A byte count as an option value: `64M`, `13107K`, `1000`, with the largest suffix that
/// keeps it exact (powers of 1024, as options read them).
pub fn size_text(bytes: u64) -> String {
    for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes > 0 && bytes.trailing_zeros() >= shift {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Parses a size or count as options do: a plain integer, or one with a `K`, `M` or `G`
/// suffix (powers of 1024): `64M`, `1M`, `2000`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming `what` when the text does not parse.
pub fn parse_size(what: &str, text: &str) -> Result<u64> {
    Options::new()
        .set(what, text.trim())
        .get_or::<u64>(what, 0)
        .map_err(|_| {
            Error::InvalidArgument(format!(
                "{what}: `{text}` is not a number (an integer, with K, M or G for 1024, 1024², 1024³)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option the real engines document, by name (only the names matter here).
    fn documented(engine: &str) -> Vec<OptionDoc> {
        let names: &[&'static str] = match engine {
            "lsm" | "my-lsm" | "wisckey" => &["memtable_bytes", "block_cache_bytes", "table_bytes"],
            "sstable" => &["memtable_bytes", "block_bytes", "search"],
            "fjall" | "rocksdb" => &["memtable_bytes", "block_bytes", "cache_bytes"],
            "sled" | "redb" => &["cache_bytes"],
            "hashlog" | "bitcask" => &["sync_writes"],
            _ => &[],
        };
        names
            .iter()
            .map(|&name| OptionDoc {
                name,
                default: "",
                doc: "",
            })
            .collect()
    }

    fn pairs(engine: &str, budget: &Budget) -> Vec<(&'static str, String)> {
        derive(engine, &documented(engine), budget)
            .pairs()
            .map(|(n, v)| (n, v.to_string()))
            .collect()
    }

    fn line(engine: &str, budget: &Budget) -> String {
        derive(engine, &documented(engine), budget).line()
    }

    const DEFAULT: Budget = Budget {
        mode: BudgetMode::Matched,
        cache_bytes: DEFAULT_CACHE_BYTES,
        write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
    };

    #[test]
    fn lsm_splits_the_write_budget_between_active_and_one_immutable_memtable() {
        assert_eq!(
            pairs("lsm", &DEFAULT),
            [
                ("memtable_bytes", "32M".to_string()),
                ("block_cache_bytes", "64M".to_string())
            ]
        );
        assert_eq!(
            line("lsm", &DEFAULT),
            "memtable_bytes=32M (×2: active + 1 immutable) block_cache_bytes=64M"
        );
        // A learner's workshop engine is its stage.
        assert_eq!(pairs("my-lsm", &DEFAULT), pairs("lsm", &DEFAULT));
    }

    #[test]
    fn wisckey_budgets_its_tree_as_lsm_does() {
        assert_eq!(pairs("wisckey", &DEFAULT), pairs("lsm", &DEFAULT));
        assert!(
            line("wisckey", &DEFAULT).contains("the value log is read through the OS page cache")
        );
    }

    #[test]
    fn sstable_gets_the_whole_write_budget_and_no_cache() {
        let small = Budget::matched(1 << 20, 3 << 20);
        assert_eq!(pairs("sstable", &small), [("memtable_bytes", "3M".into())]);
        assert!(line("sstable", &small).ends_with("cache unused: stage 3 has no block cache"));
    }

    #[test]
    fn fjall_divides_the_write_budget_among_five_memtables() {
        assert_eq!(
            pairs("fjall", &DEFAULT),
            [
                ("memtable_bytes", "13107K".to_string()),
                ("cache_bytes", "64M".to_string())
            ]
        );
        // Five memtables stay within the budget, and use all but under 5 KiB of it.
        let each = parse_size("memtable_bytes", &pairs("fjall", &DEFAULT)[0].1).unwrap();
        let five = 5 * each;
        assert!(five <= DEFAULT.write_buffer_bytes && DEFAULT.write_buffer_bytes - five < 5 << 10);
        // Below 1 MiB the division is exact to the byte.
        let tiny = Budget::matched(0, 100_000);
        assert_eq!(pairs("fjall", &tiny)[0], ("memtable_bytes", "20000".into()));
        assert_eq!(pairs("fjall", &tiny)[1], ("cache_bytes", "0".into()));
    }

    #[test]
    fn rocksdb_halves_the_write_budget_for_its_two_write_buffers() {
        let budget = Budget::matched(32 << 20, 128 << 20);
        assert_eq!(
            pairs("rocksdb", &budget),
            [
                ("memtable_bytes", "64M".to_string()),
                ("cache_bytes", "32M".to_string())
            ]
        );
    }

    #[test]
    fn sled_and_redb_get_both_figures_in_their_one_cache() {
        for engine in ["sled", "redb"] {
            assert_eq!(pairs(engine, &DEFAULT), [("cache_bytes", "128M".into())]);
            assert!(line(engine, &DEFAULT).starts_with("cache_bytes=128M (cache + write"));
        }
    }

    #[test]
    fn hash_index_engines_and_unknown_engines_are_left_alone_with_a_reason() {
        for engine in ["hashlog", "bitcask"] {
            assert!(pairs(engine, &DEFAULT).is_empty());
            assert!(
                line(engine, &DEFAULT).starts_with("does not apply: the in-memory index"),
                "{engine}"
            );
        }
        assert!(pairs("memtest", &DEFAULT).is_empty());
        assert!(line("memtest", &DEFAULT).contains("not in kvbench's budget table"));
    }

    #[test]
    fn only_documented_options_are_set() {
        // An lsm-like engine without a block cache option gets the memtable size only.
        let docs = [OptionDoc {
            name: "memtable_bytes",
            default: "4M",
            doc: "",
        }];
        let budget = derive("lsm", &docs, &DEFAULT);
        assert_eq!(budget.settings.len(), 1);
        assert_eq!(budget.settings[0].name, "memtable_bytes");
    }

    #[test]
    fn own_mode_sets_nothing_and_says_nothing() {
        for engine in ["lsm", "fjall", "sled", "hashlog"] {
            let own = derive(engine, &documented(engine), &Budget::OWN);
            assert_eq!(own.mode, BudgetMode::Own);
            assert!(own.settings.is_empty() && own.line().is_empty(), "{engine}");
        }
        assert_eq!(
            Budget::OWN.line(),
            "budget: own (each engine's own defaults)"
        );
        assert!(DEFAULT.line().starts_with(
            "budget: matched, cache_bytes=64M write_buffer_bytes=64M for every engine"
        ));
    }

    #[test]
    fn an_override_is_named_in_the_line() {
        let mut budget = derive("lsm", &documented("lsm"), &DEFAULT);
        budget.overridden_by("memtable_bytes", Source::Set, "16K");
        budget.overridden_by("table_bytes", Source::Spec, "1M");
        assert_eq!(
            budget.line(),
            "memtable_bytes=16K (--set wins over the budget's 32M) block_cache_bytes=64M"
        );
        budget.overridden_by("block_cache_bytes", Source::Spec, "0");
        assert!(
            budget
                .line()
                .ends_with("block_cache_bytes=0 (the spec wins over the budget's 64M)")
        );
    }

    #[test]
    fn stamping_a_row() {
        let mut row = Measurement::default();
        derive("lsm", &documented("lsm"), &DEFAULT).stamp(&DEFAULT, &mut row);
        assert_eq!(row.budget_mode, "matched");
        assert_eq!(row.budget_cache_bytes, Some(64 << 20));
        assert_eq!(row.budget_write_buffer_bytes, Some(64 << 20));
        assert!(row.budget_settings.starts_with("memtable_bytes=32M"));
        derive("lsm", &documented("lsm"), &Budget::OWN).stamp(&Budget::OWN, &mut row);
        assert_eq!(row.budget_mode, "own");
        assert_eq!(
            (row.budget_cache_bytes, row.budget_settings.as_str()),
            (None, "")
        );
    }

    #[test]
    fn sizes_print_and_parse_as_options_do() {
        assert_eq!(size_text(64 << 20), "64M");
        assert_eq!(size_text(13107 << 10), "13107K");
        assert_eq!(size_text(2 << 30), "2G");
        assert_eq!(size_text(1000), "1000");
        assert_eq!(size_text(0), "0");
        for bytes in [0, 1000, 13107 << 10, 64 << 20, 3 << 30] {
            assert_eq!(parse_size("x", &size_text(bytes)).unwrap(), bytes);
        }
        assert_eq!(parse_size("--num", "1M").unwrap(), 1 << 20);
        assert_eq!(parse_size("--num", "2000").unwrap(), 2000);
        assert_eq!(parse_size("--num", "4k").unwrap(), 4096);
        for bad in ["", "many", "1.5M", "-1", "99999999999G"] {
            assert!(parse_size("--num", bad).is_err(), "{bad}");
        }
    }
}

//! `INFO [section ...]`: the store described in Redis's text format, one `# Section`
//! heading and then `name:value` lines, each ending `\r\n`, a blank line between sections.
//!
//! ```text
//! # Server
//! engine:lsm
//! summary:stage 4: ...
//! dir:/tmp/store
//! options:memtable_bytes=64K
//! process_id:4242
//!
//! # Stats
//! user_bytes_written:1200
//! ...
//!
//! # Amplification
//! write_amp:2.150
//! space_amp:1.310
//! read_amp:n/a
//!
//! # Engine
//! flushes:3
//! ...
//!
//! # Keyspace
//! db0:keys=42,expires=0,avg_ttl=0
//! ```
//!
//! | section | from |
//! |---|---|
//! | `server` | the engine's registry entry, the directory and options it was opened with |
//! | `stats` | [`kv_shared::Stats`]: the counters every engine reports |
//! | `amplification` | write, space and read amplification from those counters (`n/a` before there is anything to divide by) |
//! | `engine` | the engine's own counters ([`kv_shared::Stats::extra`]) |
//! | `keyspace` | `db0` and its number of keys, as Redis prints it (absent for an empty store) |
//!
//! No section names, or `all`, `default` or `everything`, give every section; an unknown
//! name gives nothing, as in Redis. Every section but `server` calls
//! [`kv_shared::Engine::stats`], which for some engines walks the whole store.

use std::fmt::Write;

use kv_shared::{DynEngine, Result, Stats};

use crate::serve::Served;

/// The sections, in the order they are printed.
const SECTIONS: [&str; 5] = ["server", "stats", "amplification", "engine", "keyspace"];

/// The text of `INFO` for the names `asked` (lower case).
///
/// # Errors
/// What the engine's `stats` reports.
pub fn render(served: &Served, engine: &dyn DynEngine, asked: &[String]) -> Result<String> {
    let everything = asked.is_empty()
        || asked
            .iter()
            .any(|name| matches!(name.as_str(), "all" | "default" | "everything"));
    let chosen: Vec<&str> = SECTIONS
        .into_iter()
        .filter(|section| everything || asked.iter().any(|name| name == section))
        .collect();
    let stats = match chosen.iter().any(|&section| section != "server") {
        true => Some(engine.stats()?),
        false => None,
    };
    let mut text = String::new();
    for section in chosen {
        let lines = match (section, &stats) {
            ("server", _) => server(served),
            ("stats", Some(stats)) => counters(stats),
            ("amplification", Some(stats)) => amplification(stats),
            ("engine", Some(stats)) => stats
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            ("keyspace", Some(stats)) if stats.live_keys > 0 => {
                let keys = format!("keys={},expires=0,avg_ttl=0", stats.live_keys);
                vec![("db0".to_string(), keys)]
            }
            _ => Vec::new(),
        };
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let heading = section[..1].to_ascii_uppercase() + &section[1..];
        let _ = write!(text, "# {heading}\r\n");
        for (name, value) in lines {
            // A value is one line: a `\r` or `\n` (in a directory's name, say) is a space.
            let value = value.replace(['\r', '\n'], " ");
            let _ = write!(text, "{name}:{value}\r\n");
        }
    }
    Ok(text)
}

fn server(served: &Served) -> Vec<(String, String)> {
    let options: Vec<String> = served
        .options
        .settings()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    [
        ("engine", served.info.name.to_string()),
        ("summary", served.info.summary.to_string()),
        ("dir", served.dir.display().to_string()),
        ("options", options.join(",")),
        ("process_id", std::process::id().to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

fn counters(stats: &Stats) -> Vec<(String, String)> {
    [
        ("user_bytes_written", stats.user_bytes_written),
        ("disk_bytes_written", stats.disk_bytes_written),
        ("live_keys", stats.live_keys),
        ("live_data_bytes", stats.live_data_bytes),
        ("disk_bytes", stats.disk_bytes),
        ("file_count", stats.file_count),
        ("gets", stats.gets),
        ("get_disk_reads", stats.get_disk_reads),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

fn amplification(stats: &Stats) -> Vec<(String, String)> {
    let shown = |ratio: Option<f64>| ratio.map_or("n/a".to_string(), |r| format!("{r:.3}"));
    vec![
        ("write_amp".to_string(), shown(stats.write_amp())),
        ("space_amp".to_string(), shown(stats.space_amp())),
        ("read_amp".to_string(), shown(stats.read_amp())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::{ENGINES, find};

    #[test]
    fn sections_by_name_and_every_one_by_default() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| kv_shared::Error::io("<tempdir>", e))?;
        let info = *find(ENGINES, "hashlog")?;
        let served = Served::open(info, dir.path(), kv_shared::Options::new())?;
        let engine = served.engine();
        let all = render(&served, engine, &[])?;
        let headings: Vec<&str> = all.lines().filter(|l| l.starts_with('#')).collect();
        let expected = [
            "# Server",
            "# Stats",
            "# Amplification",
            "# Engine",
            "# Keyspace",
        ];
        assert_eq!(headings, expected);
        assert!(all.contains("engine:hashlog\r\n") && all.contains("write_amp:n/a\r\n"));
        assert!(!all.contains("db0:"), "an empty store has no keyspace line");
        engine.put(b"k", b"value")?;
        let asked = ["keyspace".to_string(), "STATS".to_lowercase()];
        let two = render(&served, engine, &asked)?;
        assert!(
            two.starts_with("# Stats\r\nuser_bytes_written:6\r\n"),
            "{two}"
        );
        assert!(two.ends_with("\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"));
        assert_eq!(render(&served, engine, &["nothing".to_string()])?, "");
        served.close()
    }
}

//! The engine's options: the `kv --set NAME=VALUE` names bitcask knows, each documented once
//! in [`OPTIONS`], and [`BitcaskOptions`], the same options parsed and checked.

use kv_shared::{Error, OptionDoc, Options, Result};

/// Every option, its default and what it does.
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "segment_bytes",
        default: "16M",
        doc: "the active segment is sealed and a new one started once it holds this many bytes",
    },
    OptionDoc {
        name: "merge_dead_ratio",
        default: "0.5",
        doc: "a background merge starts when dead bytes / all bytes of the immutable segments reach this (0 < r <= 1)",
    },
    OptionDoc {
        name: "hint_files",
        default: "true",
        doc: "whether open reads hint files (false: it reads every segment whole)",
    },
    OptionDoc {
        name: "background_merge",
        default: "true",
        doc: "whether a background thread merges when merge_dead_ratio is reached (compact always merges)",
    },
    OptionDoc {
        name: "sync_writes",
        default: "false",
        doc: "fsync the active segment (and, once per new segment, the directory) before each write returns",
    },
];

/// The options, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BitcaskOptions {
    /// See [`OPTIONS`].
    pub segment_bytes: u64,
    /// See [`OPTIONS`].
    pub merge_dead_ratio: f64,
    /// See [`OPTIONS`].
    pub hint_files: bool,
    /// See [`OPTIONS`].
    pub background_merge: bool,
    /// See [`OPTIONS`].
    pub sync_writes: bool,
}

impl BitcaskOptions {
    /// Reads and checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown name or a bad value.
    pub fn parse(options: &Options) -> Result<BitcaskOptions> {
        options.check_known("bitcask", OPTIONS)?;
        let parsed = BitcaskOptions {
            segment_bytes: options.get_at_least("segment_bytes", 16 << 20, 1)?,
            merge_dead_ratio: options.get_or("merge_dead_ratio", 0.5)?,
            hint_files: options.get_or("hint_files", true)?,
            background_merge: options.get_or("background_merge", true)?,
            sync_writes: options.get_or("sync_writes", false)?,
        };
        if !(parsed.merge_dead_ratio > 0.0 && parsed.merge_dead_ratio <= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "merge_dead_ratio must be in (0, 1], got {}",
                parsed.merge_dead_ratio
            )));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let o = BitcaskOptions::parse(&Options::new()).unwrap();
        assert_eq!(o.segment_bytes, 16 << 20);
        assert!(o.hint_files && o.background_merge && !o.sync_writes);
        let o = BitcaskOptions::parse(&Options::new().set("segment_bytes", "4K")).unwrap();
        assert_eq!(o.segment_bytes, 4096);
        for (name, value) in [
            ("segment_bytes", "0"),
            ("merge_dead_ratio", "0"),
            ("merge_dead_ratio", "1.5"),
            ("merge_dead_ratio", "NaN"),
            ("hint_files", "yes"),
            ("sync_writes", "1"),
            ("segmnet_bytes", "1"),
        ] {
            assert!(
                BitcaskOptions::parse(&Options::new().set(name, value)).is_err(),
                "{name}={value}"
            );
        }
    }
}

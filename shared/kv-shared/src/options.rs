//! [`Options`]: how a caller configures an engine.
//!
//! Settings are named strings, the same names `kv --set NAME=VALUE` takes, so the command
//! line, the benchmarks and the tests all configure engines one way. Each engine documents
//! the names it knows in [`crate::Engine::OPTIONS`] and rejects any other name, so a typo
//! is an error rather than a silently ignored setting.
//!
//! Options also carry the file layer the engine must use: the real file system by default,
//! a fault-injecting one in the reliability suites.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;

use crate::file_system::{FileSystem, RealFs};
use crate::{Error, Result};

/// The documentation of one engine option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionDoc {
    /// The name used with `--set`.
    pub name: &'static str,
    /// The default, as it would be written after `=`.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// Named settings plus the file system to use.
#[derive(Debug, Clone)]
pub struct Options {
    settings: BTreeMap<String, String>,
    file_system: Arc<dyn FileSystem>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings: BTreeMap::new(),
            file_system: Arc::new(RealFs),
        }
    }
}

impl Options {
    /// No settings (every option at its default), on the real file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` (builder style).
    pub fn set(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.settings.insert(name.into(), value.to_string());
        self
    }

    /// Sets `name` to `value` in place.
    pub fn insert(&mut self, name: impl Into<String>, value: impl ToString) {
        self.settings.insert(name.into(), value.to_string());
    }

    /// Parses a `NAME=VALUE` pair, as given to `kv --set`, and sets it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there is no `=`.
    pub fn set_pair(&mut self, pair: &str) -> Result<()> {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| Error::InvalidArgument(format!("expected NAME=VALUE, got `{pair}`")))?;
        self.insert(name.trim(), value.trim());
        Ok(())
    }

    /// Uses `file_system` instead of the real one (builder style).
    pub fn with_file_system(mut self, file_system: Arc<dyn FileSystem>) -> Self {
        self.file_system = file_system;
        self
    }

    /// The file system the engine must do its I/O through.
    pub fn file_system(&self) -> Arc<dyn FileSystem> {
        self.file_system.clone()
    }

    /// Every setting, by name.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Rejects any setting whose name is not in `known`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the unknown option and listing the known ones.
    pub fn check_known(&self, engine: &str, known: &[OptionDoc]) -> Result<()> {
        for name in self.settings.keys() {
            if !known.iter().any(|doc| doc.name == name) {
                let names: Vec<&str> = known.iter().map(|doc| doc.name).collect();
                return Err(Error::InvalidArgument(format!(
                    "unknown option `{name}` for engine `{engine}` (known: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )));
            }
        }
        Ok(())
    }

    /// The value of `name` parsed as `T`, or `default` when it is not set.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the value does not parse.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.settings.get(name) {
            None => Ok(default),
            Some(raw) => parse_value(name, raw),
        }
    }

    /// As [`Options::get_or`], and refused when under `min`: for sizes and counts that
    /// cannot be 0.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the value does not parse or is under `min`.
    pub fn get_at_least<T: FromStr + PartialOrd + Display>(
        &self,
        name: &str,
        default: T,
        min: T,
    ) -> Result<T> {
        let value = self.get_or(name, default)?;
        if value < min {
            return Err(Error::InvalidArgument(format!(
                "option `{name}` must be at least {min}, got {value}"
            )));
        }
        Ok(value)
    }

    /// The raw value of `name`, if set.
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }
}

/// Parses an option value, accepting `K`, `M` and `G` suffixes (powers of 1024) for integers
/// so sizes read naturally: `memtable_bytes=4M`.
fn parse_value<T: FromStr>(name: &str, raw: &str) -> Result<T> {
    let bad = || Error::InvalidArgument(format!("option `{name}`: cannot parse `{raw}`"));
    if let Ok(v) = raw.parse::<T>() {
        return Ok(v);
    }
    let (digits, shift) = match raw.as_bytes().last() {
        Some(b'K' | b'k') => (&raw[..raw.len() - 1], 10),
        Some(b'M' | b'm') => (&raw[..raw.len() - 1], 20),
        Some(b'G' | b'g') => (&raw[..raw.len() - 1], 30),
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scaled = n
        .checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(bad)?;
    scaled.to_string().parse::<T>().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[OptionDoc] = &[OptionDoc {
        name: "segment_bytes",
        default: "64M",
        doc: "rotation threshold",
    }];

    #[test]
    fn sizes_take_suffixes() {
        let o = Options::new().set("segment_bytes", "4K");
        assert_eq!(o.get_or::<u64>("segment_bytes", 0).unwrap(), 4096);
        let o = Options::new().set("segment_bytes", "2M");
        assert_eq!(o.get_or::<usize>("segment_bytes", 0).unwrap(), 2 << 20);
        assert_eq!(o.get_or::<u64>("missing", 7).unwrap(), 7);
        assert_eq!(
            o.get_at_least::<u64>("segment_bytes", 0, 1).unwrap(),
            2 << 20
        );
        assert_eq!(o.get_at_least::<u64>("missing", 7, 1).unwrap(), 7);
        let err = o
            .get_at_least::<u64>("segment_bytes", 0, 4 << 20)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            Error::InvalidArgument(
                "option `segment_bytes` must be at least 4194304, got 2097152".into()
            )
            .to_string()
        );
    }

    #[test]
    fn bad_values_and_unknown_names_are_errors() {
        let o = Options::new().set("segment_bytes", "lots");
        assert!(matches!(
            o.get_or::<u64>("segment_bytes", 0),
            Err(Error::InvalidArgument(_))
        ));
        let o = Options::new().set("segmnet_bytes", "1");
        let err = o.check_known("bitcask", KNOWN).unwrap_err().to_string();
        assert!(
            err.contains("segmnet_bytes") && err.contains("segment_bytes"),
            "{err}"
        );
        let mut o = Options::new();
        assert!(o.set_pair("novalue").is_err());
        o.set_pair("segment_bytes = 9").unwrap();
        assert_eq!(o.get_or::<u64>("segment_bytes", 0).unwrap(), 9);
    }
}

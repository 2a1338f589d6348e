//! Engine specs: an engine name with optional settings, `sstable[search=linear]`.
//!
//! `kvbench --engines` takes a comma-separated list of specs, so one run can put an engine
//! beside itself with different options:
//!
//! ```text
//! --engines 'hashlog,bitcask[hint_files=false],sstable[search=linear,memtable_bytes=1M]'
//! ```
//!
//! Commas inside brackets separate settings, commas outside separate specs. A spec's label
//! (what the report prints) is the spec as written, normalised: `name` alone, or
//! `name[a=1,b=2]` with the settings in the order given.
//!
//! Settings also come from `kvbench --set NAME=VALUE`, which applies to every selected engine
//! that documents `NAME`; a spec's own setting of the same name wins.
//!
//! Below both lies the memory budget ([`crate::budget`]): in `kvbench --budget matched` (the
//! default) each engine starts from the cache and memtable sizes the budget gives it, and a
//! `--set` or spec setting of the same option replaces that figure. So an engine's settings
//! are built in three layers, each on top of the one before:
//!
//! | layer | from | applies to |
//! |---|---|---|
//! | 1 | the budget ([`crate::budget::derive`]) | the options the budget table names for the engine |
//! | 2 | `--set NAME=VALUE` | every engine that documents `NAME` |
//! | 3 | the spec's `name[NAME=VALUE]` | that spec only; an undocumented `NAME` is an error |

use std::fmt;

use kv_shared::{Error, Options, Result};

use crate::budget::{Budget, EngineBudget, Source};
use crate::engines::{EngineInfo, find};

/// One engine name with its settings, as parsed from `name[a=1,b=2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSpec {
    /// The engine's registry name.
    pub name: String,
    /// `NAME=VALUE` settings, in the order written.
    pub settings: Vec<(String, String)>,
}

impl EngineSpec {
    /// Parses one spec: `name` or `name[a=1,b=2]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty name, an unclosed bracket, text after the
    /// bracket, or a setting without `=`.
    pub fn parse(text: &str) -> Result<EngineSpec> {
        let bad = |why: &str| Error::InvalidArgument(format!("engine spec `{text}`: {why}"));
        let text = text.trim();
        let (name, settings_text) = match text.split_once('[') {
            None => (text, None),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix(']')
                    .ok_or_else(|| bad("expected `]` at the end"))?;
                if inner.contains('[') || inner.contains(']') {
                    return Err(bad("brackets do not nest"));
                }
                (name.trim(), Some(inner))
            }
        };
        if name.is_empty() || name.contains(']') {
            return Err(bad("expected an engine name before any `[`"));
        }
        let mut settings = Vec::new();
        for pair in settings_text.into_iter().flat_map(|s| s.split(',')) {
            if pair.trim().is_empty() {
                continue;
            }
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(&format!("setting `{pair}` is not NAME=VALUE")))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(bad(&format!("setting `{pair}` has no name")));
            }
            settings.push((key.to_string(), value.trim().to_string()));
        }
        Ok(EngineSpec {
            name: name.to_string(),
            settings,
        })
    }

    /// Parses a comma-separated list of specs; commas inside brackets belong to the spec.
    ///
    /// # Errors
    /// As [`EngineSpec::parse`], and for an empty list or unbalanced brackets.
    pub fn parse_list(text: &str) -> Result<Vec<EngineSpec>> {
        let mut specs = Vec::new();
        let mut depth = 0usize;
        let mut start = 0;
        for (i, c) in text.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => {
                    depth = depth.checked_sub(1).ok_or_else(|| {
                        Error::InvalidArgument(format!("engine list `{text}`: unmatched `]`"))
                    })?
                }
                ',' if depth == 0 => {
                    specs.push(Self::parse(&text[start..i])?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        specs.push(Self::parse(&text[start..])?);
        Ok(specs)
    }

    /// The label the report prints: `name` or `name[a=1,b=2]`.
    pub fn label(&self) -> String {
        self.to_string()
    }

    /// Looks the engine up in `registry` and builds its [`Options`]: every `common` setting
    /// the engine documents, then the spec's own settings on top; no memory budget (each
    /// engine's own defaults, as [`EngineSpec::resolve_with`] with [`Budget::OWN`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown engine, or a spec setting the engine does
    /// not document (the message lists the names it does).
    pub fn resolve(
        &self,
        registry: &[EngineInfo],
        common: &[(String, String)],
    ) -> Result<ResolvedEngine> {
        self.resolve_with(registry, common, &Budget::OWN)
    }

    /// As [`EngineSpec::resolve`], on top of the settings `budget` gives the engine (the
    /// three layers of the module documentation).
    ///
    /// # Errors
    /// As [`EngineSpec::resolve`].
    pub fn resolve_with(
        &self,
        registry: &[EngineInfo],
        common: &[(String, String)],
        budget: &Budget,
    ) -> Result<ResolvedEngine> {
        let info = *find(registry, &self.name)?;
        let mut budget = crate::budget::derive(info.name, info.options, budget);
        let mut effective: Vec<(String, String)> = Vec::new();
        let mut set = |name: &str, value: &str| match effective.iter_mut().find(|(n, _)| n == name)
        {
            Some(slot) => slot.1 = value.to_string(),
            None => effective.push((name.to_string(), value.to_string())),
        };
        for (name, value) in budget.pairs() {
            set(name, value);
        }
        for (name, value) in common {
            if info.option(name).is_some() {
                set(name, value);
                budget.overridden_by(name, Source::Set, value);
            }
        }
        for (name, value) in &self.settings {
            if info.option(name).is_none() {
                return Err(unknown_option(&info, name));
            }
            set(name, value);
            budget.overridden_by(name, Source::Spec, value);
        }
        let mut options = Options::new();
        for (name, value) in &effective {
            options.insert(name.clone(), value);
        }
        Ok(ResolvedEngine {
            label: self.label(),
            info,
            options,
            settings: effective,
            budget,
        })
    }
}

/// The error for a spec setting `name` that the engine does not document.
fn unknown_option(info: &EngineInfo, name: &str) -> Error {
    let known: Vec<&str> = info.options.iter().map(|d| d.name).collect();
    Error::InvalidArgument(format!(
        "engine `{}` has no option `{name}` (known: {})",
        info.name,
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

impl fmt::Display for EngineSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.settings.is_empty() {
            let pairs: Vec<String> = self
                .settings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, "[{}]", pairs.join(","))?;
        }
        Ok(())
    }
}

/// An engine spec looked up in the registry, with its effective options.
#[derive(Debug, Clone)]
pub struct ResolvedEngine {
    /// What the report calls it: the spec as written, normalised.
    pub label: String,
    /// The registry entry.
    pub info: EngineInfo,
    /// The options to open it with.
    pub options: Options,
    /// Every setting that differs from the engine's defaults (the budget's, common and
    /// own), in order.
    pub settings: Vec<(String, String)>,
    /// What the memory budget set on it, and which of those figures a setting replaced.
    pub budget: EngineBudget,
}

impl ResolvedEngine {
    /// Every documented option of the engine with the value this run uses: `name=value`,
    /// space separated (the report prints it so runs are comparable).
    pub fn settings_line(&self) -> String {
        let parts: Vec<String> = self
            .info
            .options
            .iter()
            .map(|doc| {
                let value = self
                    .settings
                    .iter()
                    .find(|(n, _)| n == doc.name)
                    .map_or(doc.default, |(_, v)| v.as_str());
                format!("{}={value}", doc.name)
            })
            .collect();
        parts.join(" ")
    }
}

/// Checks that every `common` setting is documented by at least one of `engines`, so a
/// misspelt `--set` is an error rather than silently ignored.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the setting.
pub fn check_common_settings(
    engines: &[ResolvedEngine],
    common: &[(String, String)],
) -> Result<()> {
    for (name, _) in common {
        if !engines.iter().any(|e| e.info.option(name).is_some()) {
            return Err(Error::InvalidArgument(format!(
                "--set {name}: no selected engine documents an option `{name}` (see `kv engines`)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, settings: &[(&str, &str)]) -> EngineSpec {
        EngineSpec {
            name: name.into(),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn parses_names_and_settings() {
        assert_eq!(EngineSpec::parse("hashlog").unwrap(), spec("hashlog", &[]));
        assert_eq!(
            EngineSpec::parse(" sstable[search=linear, memtable_bytes = 1M] ").unwrap(),
            spec("sstable", &[("search", "linear"), ("memtable_bytes", "1M")])
        );
        assert_eq!(
            EngineSpec::parse("bitcask[]").unwrap(),
            spec("bitcask", &[])
        );
        assert_eq!(
            EngineSpec::parse("sstable[search=linear,memtable_bytes=1M]")
                .unwrap()
                .label(),
            "sstable[search=linear,memtable_bytes=1M]"
        );
    }

    #[test]
    fn lists_split_outside_brackets_only() {
        let list = EngineSpec::parse_list("hashlog,sstable[a=1,b=2],lsm").unwrap();
        assert_eq!(
            list,
            vec![
                spec("hashlog", &[]),
                spec("sstable", &[("a", "1"), ("b", "2")]),
                spec("lsm", &[])
            ]
        );
    }

    #[test]
    fn the_budget_is_the_bottom_layer_under_set_and_the_spec() {
        let registry = crate::engines::ENGINES;
        let budget = Budget::matched(8 << 20, 16 << 20);
        let value = |e: &ResolvedEngine, name: &str| e.options.get_raw(name).map(String::from);
        let lsm = spec("lsm", &[])
            .resolve_with(registry, &[], &budget)
            .unwrap();
        assert_eq!(value(&lsm, "memtable_bytes").as_deref(), Some("8M"));
        assert_eq!(value(&lsm, "block_cache_bytes").as_deref(), Some("8M"));
        assert!(lsm.settings_line().contains("memtable_bytes=8M "));
        // --set replaces the budget's figure, the spec replaces --set.
        let common = [("memtable_bytes".to_string(), "1M".to_string())];
        let lsm = spec("lsm", &[])
            .resolve_with(registry, &common, &budget)
            .unwrap();
        assert_eq!(value(&lsm, "memtable_bytes").as_deref(), Some("1M"));
        assert!(
            lsm.budget
                .line()
                .starts_with("memtable_bytes=1M (--set wins")
        );
        let lsm = spec("lsm", &[("memtable_bytes", "2M")])
            .resolve_with(registry, &common, &budget)
            .unwrap();
        assert_eq!(value(&lsm, "memtable_bytes").as_deref(), Some("2M"));
        assert!(
            lsm.budget
                .line()
                .starts_with("memtable_bytes=2M (the spec wins")
        );
        // Without a budget, nothing is set that was not asked for.
        let own = spec("lsm", &[]).resolve(registry, &[]).unwrap();
        assert!(own.settings.is_empty() && own.budget.line().is_empty());
        assert!(own.settings_line().contains("memtable_bytes=4M "));
        // An engine the budget does not apply to gets nothing.
        let hashlog = spec("hashlog", &[])
            .resolve_with(registry, &[], &budget)
            .unwrap();
        assert!(hashlog.settings.is_empty());
        assert!(hashlog.budget.line().starts_with("does not apply"));
    }

    #[test]
    fn malformed_specs_are_errors() {
        for bad in [
            "",
            "[a=1]",
            "sstable[a=1",
            "sstable[a]",
            "sstable[=1]",
            "x[a=1]y",
            "a[[b=1]]",
        ] {
            assert!(EngineSpec::parse(bad).is_err(), "`{bad}` parsed");
        }
        for bad in ["a,,b", "a]", "a,b[c=1", ""] {
            assert!(EngineSpec::parse_list(bad).is_err(), "`{bad}` parsed");
        }
    }
}

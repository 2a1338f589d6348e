//! The learner's `Cargo.toml`: the stage's own manifest with every workspace-inherited entry
//! spelled out and every path made absolute, so the crate builds wherever it is written.
//!
//! It keeps the stage's crate name (the copied tests `use` it) under the version
//! [`VERSION`], which tells it apart from the reference crate of the same name that the
//! `bench` binary pulls in through kvbench. A dependency on an earlier stage's crate (stage
//! 4's `lsm` uses stage 3's `sstable`) points at the reference, or at the learner's own crate
//! of that stage with `kv workshop new --from`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, InlineTable, Item, Value};

use crate::checkout::{Checkout, Stage, read_manifest};
use crate::error::{Error, Result, source};

/// The version of every learner's crate.
pub const VERSION: &str = "0.1.0-workshop";

/// The learner's crate of an earlier stage, which replaces that stage's reference crate.
#[derive(Debug, Clone)]
pub struct FromCrate {
    /// Its crate name (`sstable`).
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
}

/// The text of the learner's `Cargo.toml` for `stage`.
///
/// # Errors
/// [`Error::Source`] for a manifest the workshop cannot read; [`Error::Usage`] when `from`
/// names a crate the stage does not depend on.
pub fn learner_manifest(
    checkout: &Checkout,
    stage: &Stage,
    from: Option<&FromCrate>,
) -> Result<String> {
    let root = read_manifest(&checkout.root().join("Cargo.toml"))?;
    let own_path = stage.dir.join("Cargo.toml");
    let own = read_manifest(&own_path)?;
    let resolver = Resolver {
        root: &root,
        root_dir: checkout.root(),
        stage_dir: &stage.dir,
        from,
    };
    let mut text = format!(
        "# Stage {} of the course, for you to finish: written by `kv workshop new {}` from\n\
         # {}. Its dependencies point at that checkout.\n\n",
        stage.number,
        stage.number,
        stage.dir.display()
    );
    text += &package(&root, &own, &own_path)?;
    let (deps, replaced) = resolver.table(&own, "dependencies")?;
    let benches = checkout.root().join("benches");
    let bench_comment = "# The `bench` binary: kvbench with your engine beside the course's.";
    writeln!(text, "\n[dependencies]\n{deps}{bench_comment}").ok();
    writeln!(
        text,
        "kvbench = {{ path = {:?}, optional = true }}",
        path_str(&benches)
    )
    .ok();
    let (dev_deps, _) = resolver.table(&own, "dev-dependencies")?;
    writeln!(text, "\n[dev-dependencies]\n{dev_deps}").ok();
    if let Some(from) = from.filter(|_| !replaced) {
        return Err(Error::Usage(format!(
            "stage {} does not build on a crate named `{}`, so --from {} has nothing to replace",
            stage.number,
            from.name,
            from.dir.display()
        )));
    }
    text += FEATURES_AND_BIN;
    text += &lints(&root);
    text += &profiles(&root);
    text += "\n# A workspace of its own, wherever the directory is.\n[workspace]\n";
    Ok(text)
}

/// Features and the `bench` binary.
const FEATURES_AND_BIN: &str = r#"[features]
default = []
# Builds the `bench` binary (src/bin/bench.rs): off by default, so that `cargo test` builds
# neither kvbench nor the course's stages.
bench = ["dep:kvbench"]
# Production peers in the bench report too (see the checkout's README).
peers = ["bench", "kvbench/peers"]
rocksdb = ["bench", "kvbench/rocksdb"]

[[bin]]
name = "bench"
path = "src/bin/bench.rs"
required-features = ["bench"]
"#;

/// The `[package]` table: the stage's, with inherited fields spelled out.
fn package(root: &DocumentMut, own: &DocumentMut, path: &Path) -> Result<String> {
    let table = own["package"]
        .as_table_like()
        .ok_or_else(|| source(path, 0, "no [package] table"))?;
    let mut text = String::from("[package]\n");
    for (key, item) in table.iter() {
        let value = match key {
            "version" => Value::from(VERSION),
            "publish" => Value::from(false),
            "description" => {
                Value::from(format!("Workshop: {}", item.as_str().unwrap_or_default()))
            }
            _ if is_inherited(item) => match root["workspace"]["package"][key].as_value() {
                Some(value) => value.clone(),
                None => return Err(source(path, 0, format!("the workspace has no `{key}`"))),
            },
            _ => match item.as_value() {
                Some(value) => value.clone(),
                None => continue,
            },
        };
        writeln!(text, "{key} = {}", bare(value)).ok();
    }
    Ok(text)
}

/// Resolves the entries of a dependency table.
struct Resolver<'a> {
    root: &'a DocumentMut,
    root_dir: &'a Path,
    stage_dir: &'a Path,
    from: Option<&'a FromCrate>,
}

impl Resolver<'_> {
    /// The lines of table `name` of `own`, and whether `from` replaced one of them.
    fn table(&self, own: &DocumentMut, name: &str) -> Result<(String, bool)> {
        let mut text = String::new();
        let mut replaced = false;
        let Some(table) = own.get(name).and_then(Item::as_table_like) else {
            return Ok((text, replaced));
        };
        for (dep, item) in table.iter() {
            let mut spec = self.resolve(dep, item)?;
            if let Some(from) = self.from.filter(|f| f.name == dep) {
                spec.insert("path", Value::from(path_str(&from.dir)));
                replaced = true;
            }
            writeln!(text, "{dep} = {}", render(spec)).ok();
        }
        Ok((text, replaced))
    }

    /// One dependency as an inline table, inherited entries merged, paths absolute.
    fn resolve(&self, dep: &str, item: &Item) -> Result<InlineTable> {
        let Some(table) = item.as_table_like() else {
            return Ok(spec_of(item, self.stage_dir));
        };
        if !is_inherited(item) {
            return Ok(spec_of(item, self.stage_dir));
        }
        let inherited = &self.root["workspace"]["dependencies"][dep];
        if inherited.is_none() {
            let detail = format!("`{dep}` is not in [workspace.dependencies]");
            return Err(source(self.root_dir.join("Cargo.toml"), 0, detail));
        }
        let mut spec = spec_of(inherited, self.root_dir);
        for (key, value) in table.iter().filter(|(k, _)| *k != "workspace") {
            let Some(value) = value.as_value() else {
                continue;
            };
            match (key, spec.get_mut(key), value.as_array()) {
                ("features", Some(Value::Array(features)), Some(more)) => {
                    features.extend(more.iter().cloned());
                }
                _ => drop(spec.insert(key, value.clone())),
            }
        }
        Ok(spec)
    }
}

/// `item` (a version string or a table) as an inline table, its path made absolute against
/// `base`.
fn spec_of(item: &Item, base: &Path) -> InlineTable {
    let mut spec = InlineTable::new();
    if let Some(version) = item.as_str() {
        spec.insert("version", Value::from(version));
    } else if let Some(table) = item.as_table_like() {
        for (key, value) in table.iter() {
            if let Some(value) = value.as_value() {
                spec.insert(key, value.clone());
            }
        }
    }
    if let Some(path) = spec.get("path").and_then(Value::as_str) {
        let absolute = path_str(&base.join(path));
        spec.insert("path", Value::from(absolute));
    }
    spec
}

/// A dependency's spec as written: `"1.5"` when it is only a version.
fn render(mut spec: InlineTable) -> String {
    if spec.len() == 1
        && let Some(version) = spec.get("version")
    {
        return bare(version.clone());
    }
    for (_, value) in spec.iter_mut() {
        if let Value::Array(array) = value {
            array.fmt();
        }
    }
    spec.fmt();
    bare(Value::InlineTable(spec))
}

/// True for `key.workspace = true` and `key = { workspace = true, ... }`.
fn is_inherited(item: &Item) -> bool {
    item.as_table_like()
        .and_then(|t| t.get("workspace"))
        .and_then(Item::as_bool)
        == Some(true)
}

/// `value` printed without the spacing it had in its file.
fn bare(mut value: Value) -> String {
    value.decor_mut().clear();
    value.to_string()
}

/// `path` as a TOML string's contents.
fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The workspace's lints, plus the allowances the `todo!()` bodies need.
fn lints(root: &DocumentMut) -> String {
    let mut text = String::new();
    let Some(lints) = root["workspace"]["lints"].as_table_like() else {
        return text;
    };
    for (tool, rules) in lints.iter() {
        writeln!(text, "\n[lints.{tool}]").ok();
        for (rule, level) in rules.as_table_like().into_iter().flat_map(|t| t.iter()) {
            if let Some(level) = level.as_value() {
                writeln!(text, "{rule} = {}", bare(level.clone())).ok();
            }
        }
        if tool == "rust" {
            text += "# A body left as `todo!()` leaves the helpers, imports and parameters it\n\
                     # would use unused: no warnings about them while exercises are open.\n\
                     dead_code = \"allow\"\n\
                     unused_imports = \"allow\"\n\
                     unused_variables = \"allow\"\n";
        }
    }
    text
}

/// The checkout's `[profile.*]` tables, so the tests run as fast as the reference's.
fn profiles(root: &DocumentMut) -> String {
    let Some(profile) = root.get("profile") else {
        return String::new();
    };
    let mut doc = DocumentMut::new();
    doc.insert("profile", profile.clone());
    let text = doc.to_string();
    format!("\n# The checkout's profiles.\n{}", text.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(array: &toml_edit::Array) -> Vec<String> {
        array
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    }

    #[test]
    fn stage_four_spelled_out_and_rebased() {
        let checkout = Checkout::here();
        let stage = checkout.stage(4).unwrap();
        let text = learner_manifest(&checkout, &stage, None).unwrap();
        let doc: DocumentMut = text.parse().unwrap();
        assert_eq!(doc["package"]["name"].as_str(), Some("lsm"));
        assert_eq!(doc["package"]["version"].as_str(), Some(VERSION));
        assert_eq!(doc["package"]["edition"].as_str(), Some("2024"));
        let sstable = checkout.root().join("stages/3-sstable");
        assert_eq!(
            doc["dependencies"]["sstable"]["path"].as_str(),
            Some(path_str(&sstable).as_str())
        );
        let serde = doc["dependencies"]["serde"]["features"].as_array().unwrap();
        assert_eq!(strings(serde), ["derive"]);
        assert!(doc["lints"]["rust"]["dead_code"].is_value());
        assert!(doc["profile"]["test"]["opt-level"].is_value());
        assert!(doc["workspace"].is_table());
        let from = FromCrate {
            name: "sstable".into(),
            dir: "/tmp/mine".into(),
        };
        let text = learner_manifest(&checkout, &stage, Some(&from)).unwrap();
        let doc: DocumentMut = text.parse().unwrap();
        assert_eq!(
            doc["dependencies"]["sstable"]["path"].as_str(),
            Some("/tmp/mine")
        );
        let stage_one = checkout.stage(1).unwrap();
        let refused = learner_manifest(&checkout, &stage_one, Some(&from));
        assert!(matches!(refused, Err(Error::Usage(_))));
    }
}

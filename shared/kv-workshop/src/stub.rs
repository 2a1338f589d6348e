//! Finding a source file's functions, and replacing some of their bodies while every other
//! byte of the file stays as it was.
//!
//! The file is parsed with `syn`; `proc-macro2`'s `span-locations` gives each body's braces
//! as lines and columns, which [`LineIndex`] turns into byte offsets, so the new text is
//! spliced into the original rather than printed back from the syntax tree (which would
//! lose every comment and the formatting).

use std::ops::Range;

use proc_macro2::LineColumn;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};

/// A function with a body: free, inherent or trait method, or a trait's default method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// `Type::name` for a method, `name` for a free function.
    pub name: String,
    /// The 1-based line where the item starts: its first doc comment or attribute, or its
    /// signature when it has neither.
    pub first_line: usize,
    /// The body's byte range, braces included.
    pub body: Range<usize>,
    /// The indentation of the line that closes the body.
    pub indent: String,
}

/// Every function with a body in `text`, in source order, nested ones included.
///
/// # Errors
/// `syn`'s error when `text` is not a Rust source file.
pub fn functions(text: &str) -> syn::Result<Vec<Function>> {
    let file = syn::parse_file(text)?;
    let mut finder = Finder {
        index: LineIndex::new(text),
        self_types: Vec::new(),
        found: Vec::new(),
    };
    finder.visit_file(&file);
    Ok(finder.found)
}

/// A body that panics with `message`, indented to close at `indent`.
pub fn todo_body(indent: &str, message: &str) -> String {
    format!("{{\n{indent}    todo!({message:?})\n{indent}}}")
}

/// `text` with each range replaced by its text; the ranges must not overlap.
pub fn splice(text: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, replacement) in edits {
        debug_assert!(range.start >= at, "overlapping edits");
        out.push_str(&text[at..range.start]);
        out.push_str(&replacement);
        at = range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Line and column (in characters, as `proc-macro2` counts them) to byte offsets.
struct LineIndex<'t> {
    text: &'t str,
    /// The byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// The byte offset of `at` (1-based line, 0-based character column).
    fn offset(&self, at: LineColumn) -> usize {
        let start = self.starts[at.line - 1];
        self.text[start..]
            .char_indices()
            .nth(at.column)
            .map_or(self.text.len(), |(i, _)| start + i)
    }

    /// The leading blanks of 1-based line `line`.
    fn indent(&self, line: usize) -> String {
        let rest = &self.text[self.starts[line - 1]..];
        rest.chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect()
    }
}

/// The visitor that collects [`Function`]s.
struct Finder<'t> {
    index: LineIndex<'t>,
    /// The self types of the `impl` blocks we are in, innermost last.
    self_types: Vec<String>,
    found: Vec<Function>,
}

impl Finder<'_> {
    fn record(&mut self, item: &dyn Spanned, name: &syn::Ident, block: &syn::Block) {
        let braces = block.brace_token.span;
        let (open, close) = (braces.open().start(), braces.close().end());
        let name = match self.self_types.last() {
            Some(self_type) => format!("{self_type}::{name}"),
            None => name.to_string(),
        };
        self.found.push(Function {
            name,
            first_line: item.span().start().line,
            body: self.index.offset(open)..self.index.offset(close),
            indent: self.index.indent(close.line),
        });
    }
}

/// The name an `impl` block's self type goes by: its last path segment.
fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(path) => path
            .path
            .segments
            .last()
            .map_or_else(String::new, |s| s.ident.to_string()),
        _ => "_".to_string(),
    }
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        self.record(item, &item.sig.ident, &item.block);
        visit::visit_item_fn(self, item);
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        self.self_types.push(type_name(&item.self_ty));
        visit::visit_item_impl(self, item);
        self.self_types.pop();
    }

    fn visit_item_trait(&mut self, item: &'ast syn::ItemTrait) {
        self.self_types.push(item.ident.to_string());
        visit::visit_item_trait(self, item);
        self.self_types.pop();
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        self.record(item, &item.sig.ident, &item.block);
        visit::visit_impl_item_fn(self, item);
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        if let Some(block) = &item.default {
            self.record(item, &item.sig.ident, block);
        }
        visit::visit_trait_item_fn(self, item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "//! Docs → with a multi-byte arrow.

/// Free.
pub fn free(x: u8) -> u8 { x + 1 }

impl<'a> Thing<'a> {
    // A comment that must survive.
    #[inline]
    fn method(&self) -> &'a str {
        \"é\" // also this one
    }
}
";

    #[test]
    fn bodies_are_found_and_spliced_byte_for_byte() {
        let found = functions(SOURCE).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["free", "Thing::method"]);
        assert_eq!(found[0].first_line, 3);
        assert_eq!(&SOURCE[found[0].body.clone()], "{ x + 1 }");
        assert_eq!(found[1].first_line, 8);
        assert_eq!(found[1].indent, "    ");
        let edits = found
            .iter()
            .map(|f| (f.body.clone(), todo_body(&f.indent, "Exercise \"1.1\"")))
            .collect();
        let stubbed = splice(SOURCE, edits);
        assert!(
            stubbed
                .contains("pub fn free(x: u8) -> u8 {\n    todo!(\"Exercise \\\"1.1\\\"\")\n}\n")
        );
        assert!(stubbed.contains("    // A comment that must survive.\n    #[inline]\n"));
        assert!(stubbed.contains("fn method(&self) -> &'a str {\n        todo!("));
        assert!(!stubbed.contains("also this one"));
        syn::parse_file(&stubbed).unwrap();
    }
}

//! The course book's exercise lists are the markers', never typed by hand.
//!
//! Every stage's list is rendered from its markers ([`kv_workshop::book::exercise_list`])
//! and compared with the committed `notes/src/exercises/stage-N.md`; the test fails when
//! one differs, is missing, or has no stage. After changing a marker or a heading it
//! names, rewrite the lists and commit them:
//!
//! ```sh
//! KV_UPDATE_NOTES=1 cargo test -p kv-workshop --test exercise_lists
//! ```
//!
//! It also checks that each stage's chapter includes its list right after the paragraph
//! of its `### Build it` section.

use std::path::PathBuf;

use kv_workshop::book::{exercise_list, include_line, list_path};
use kv_workshop::checkout::Checkout;

/// True when the lists are to be rewritten rather than compared.
fn update() -> bool {
    std::env::var("KV_UPDATE_NOTES").is_ok_and(|v| v == "1")
}

/// `notes/src/`, where the chapters and the lists are.
fn notes() -> PathBuf {
    Checkout::here().root().join("notes/src")
}

#[test]
fn every_stage_s_exercise_list_is_rendered_from_its_markers() {
    let checkout = Checkout::here();
    let mut expected = Vec::new();
    let mut stale = Vec::new();
    for stage in checkout.stages().unwrap() {
        let path = notes().join(list_path(stage.number));
        expected.push(path.clone());
        let rendered = exercise_list(&checkout, &stage).unwrap();
        if update() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &rendered).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(rendered.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    for entry in std::fs::read_dir(notes().join("exercises")).unwrap() {
        let path = entry.unwrap().path();
        if !expected.contains(&path) {
            stale.push(format!("{} (no stage has this list)", path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "these exercise lists differ from what the markers give:\n{}\nrewrite them with \
         `KV_UPDATE_NOTES=1 cargo test -p kv-workshop --test exercise_lists` (a file no \
         stage has is yours to delete), then commit them",
        stale.join("\n")
    );
}

#[test]
fn every_stage_s_chapter_includes_its_list_after_build_it() {
    let checkout = Checkout::here();
    for stage in checkout.stages().unwrap() {
        let chapter = checkout.chapter(&stage.number.to_string()).unwrap();
        let text = std::fs::read_to_string(&chapter).unwrap();
        let (_, section) = text
            .split_once("\n### Build it\n")
            .unwrap_or_else(|| panic!("{} has no `### Build it`", chapter.display()));
        // The section's first paragraph, then the include, each followed by a blank line.
        let mut blocks = section.trim_start_matches('\n').split("\n\n");
        let paragraph = blocks.next().unwrap_or_default();
        let include = include_line(stage.number);
        assert!(
            !paragraph.starts_with('#') && blocks.next() == Some(include.as_str()),
            "{}: `### Build it` is one paragraph, then `{include}` on a line of its own",
            chapter.display()
        );
    }
}

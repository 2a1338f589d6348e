//! # kv-workshop: the course as exercises
//!
//! The workshop turns each stage's reference crate into a crate for a learner to finish:
//! the same sources with the bodies of a few marked functions replaced by `todo!()`, the
//! same tests, and a scorecard that says which exercises pass. Everything is generated from
//! the reference at the moment it is asked for, so the starting crate, its tests and the
//! reference can never drift apart.
//!
//! ```sh
//! cargo run --bin kv -- workshop new 1 /tmp/my-hashlog     # the crate, every exercise open
//! cargo run --bin kv -- workshop check /tmp/my-hashlog     # its tests, scored per exercise
//! cd /tmp/my-hashlog && cargo run --release --features bench --bin bench   # kvbench, with `my-hashlog`
//! ```
//!
//! ## Exercise markers
//!
//! An exercise is a function of a stage's `src/`, marked by comment lines right above it
//! (above its doc comment and attributes):
//!
//! ```text
//! // Exercise 1.2: decode a record. Read: chapter 1, "On disk".
//! // Tests: lib::record::tests::round_trips, lib::record::tests::every_single_flip_is_rejected
//! // Tests: recovery::a_flipped_byte_anywhere_is_detected_at_open
//! /// Decodes exactly one whole record of any kind, ...
//! pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, DecodeError> {
//! ```
//!
//! * The first line is `// Exercise S.N: TITLE. Read: chapter C, "SECTION".`: stage `S`,
//!   exercise `N` (a stage's exercises are numbered 1, 2, 3, ... in the order to do them),
//!   what to write, and the section of chapter `C` (`1`, or `4b` for
//!   `notes/src/ch4b-*.md`) to read, spelled exactly as its heading, without the `#`s.
//! * Each following line is `// Tests: ID, ID, ...`, as many lines as the list needs: the
//!   tests that pass once the exercise is done (with those before it). An `ID` is the test
//!   target, then the test's name as libtest prints it: `lib::record::tests::round_trips`
//!   for a unit test in `src/`, `engine::a_get_is_one_positioned_read_and_a_miss_is_none`
//!   for one in `tests/engine.rs`, `conformance::conformance::model` for one a macro
//!   writes into `tests/conformance.rs`.
//! * The function's first line (doc comment, attribute or signature) follows directly. Its
//!   body, braces included, is what a learner's crate replaces with
//!   `todo!("Exercise S.N: TITLE; see chapter C, section \"SECTION\"")`.
//!
//! Markers are plain comments: they change nothing in the reference. What the workshop
//! checks when it reads them ([`exercises::stage_exercises`]): the syntax, a function right
//! below, the section among the chapter's headings, the test targets among the stage's, and
//! the numbering. The workshop's own tests (`tests/exercises.rs`) check the rest: every
//! stage's crate compiles with its `todo!()`s; and, in the long run
//! (`KV_WORKSHOP_FULL=1 cargo test -p kv-workshop`), the reference bodies pass
//! every listed test, each exercise left alone as `todo!()` fails at least one of its
//! tests, and the crate with every exercise open fails only at its `todo!()`s.
//!
//! The course book lists each stage's exercises from the same markers: [`book`] renders
//! the list a chapter includes after its `### Build it` paragraph
//! (`notes/src/exercises/stage-N.md`), and `tests/exercise_lists.rs` fails when a committed
//! list differs from it (`KV_UPDATE_NOTES=1` rewrites them).
//!
//! ## Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`checkout`] | the checkout: its stages, their manifests, the chapters' headings |
//! | [`marker`] | the marker syntax, [`marker::TestId`] |
//! | [`stub`] | finding functions with `syn` and splicing new bodies into the text |
//! | [`exercises`] | a stage's [`exercises::Exercise`]s, checked |
//! | [`manifest`] | the learner's `Cargo.toml` |
//! | [`readme`] | the learner's `README.md` and `bench` binary |
//! | [`book`] | the course book's exercise lists, `notes/src/exercises/stage-N.md` |
//! | [`workshop`] | writing a learner's crate; [`workshop::Workshop`], what it records |
//! | [`libtest`] | reading `cargo test`'s output |
//! | [`check`] | the scorecard |
//! | [`cli`] | the `kv workshop` subcommand |
//! | [`error`] | [`Error`] |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod book;
pub mod check;
pub mod checkout;
pub mod cli;
pub mod error;
pub mod exercises;
pub mod libtest;
pub mod manifest;
pub mod marker;
pub mod readme;
pub mod stub;
pub mod workshop;

pub use error::{Error, Result};

//! Tables.
pub mod block;
pub mod block_builder;
pub mod compression;
pub mod dump;
#[allow(clippy::module_inception)]
pub mod table;
pub mod table_builder;

pub use table::dump;

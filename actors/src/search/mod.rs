//! Product search: text analysis and the in-memory index a store actor holds.

pub mod analysis;
mod index;
pub mod lexicon;
pub mod query;

pub use index::{Hit, SearchIndex, fuse};

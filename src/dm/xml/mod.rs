//! XML codec (quick-xml reader, hand-written canonical writer) to and from the element tree.

mod read;
mod write;

pub use read::read_tree;
pub use write::{write_tree, write_tree_pretty};

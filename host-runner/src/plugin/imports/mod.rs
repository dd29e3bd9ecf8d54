//! Host implementations of the plugin's imports, one file per WIT interface.

pub mod backend;
pub mod filesystem;

//! The plugin's files in its state directory (the database under the VFS,
//! the upload staging log): positional reads and writes, sizes, syncs and
//! directory entries, with one API and two implementations.
//!
//! Inside the component (`wasi.rs`) files are `wasi:filesystem` descriptors
//! opened under the host's preopened directory; natively (`native.rs`, for
//! the unit tests) they are `std::fs` files.

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod wasi;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::{metadata, remove_file, rename, sync_dir, File};
#[cfg(target_arch = "wasm32")]
pub(crate) use wasi::{metadata, remove_file, rename, sync_dir, File};

/// How `File::open` opens a file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenMode {
    /// Writable as well as readable.
    pub write: bool,
    /// Created if missing.
    pub create: bool,
    /// Must not exist yet (implies `create`).
    pub create_new: bool,
}

/// What `metadata` reports about a path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Metadata {
    /// A regular file (not a directory or anything else).
    pub is_file: bool,
    /// Size in bytes.
    pub len: u64,
}

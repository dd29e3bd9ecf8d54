//! The lease database: SQLite through its C API.

pub mod leases;
pub mod schema;
pub mod shares;
pub mod sqlite;
#[cfg(target_arch = "wasm32")]
pub mod vfs;

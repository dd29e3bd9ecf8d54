//! The lease database: SQLite through its C API.

pub mod leases;
pub mod schema;
pub mod shares;
pub mod sqlite;
pub mod vfs;

//! The lease database: SQLite through its C API. Every SQL statement of the
//! engine lives in this folder, one module per table or concern.

pub mod advisories;
pub mod crawler_state;
pub mod error;
pub mod leases;
pub mod multi_row;
pub mod registration;
pub mod schema;
pub mod shares;
pub mod sqlite;
pub mod usage;
pub mod vfs;

//! A small safe layer over SQLite's C API: connections, cached statements,
//! typed parameters and rows, transactions as values.
//!
//! This module and `vfs.rs` are the only places that call `sqlite3_*`. The
//! same code runs on the bundled native library (tests, benchmarks) and on
//! `sqlite-wasm-rs` inside the component, which expose the same C API.

mod connection;
// Natively SQLite uses the system's memcmp.
#[cfg(any(target_arch = "wasm32", test))]
mod memcmp;
#[cfg(test)]
mod tests;
mod value;

#[cfg(not(target_arch = "wasm32"))]
use libsqlite3_sys as ffi;
#[cfg(target_arch = "wasm32")]
use sqlite_wasm_rs as ffi;

pub use super::error::{DbError, DbResult};
pub use connection::Connection;
pub use connection::{Row, Transaction};
pub use value::{FromSql, ToSql, Value, ValueRef};

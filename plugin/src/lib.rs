//! leasedb: the lease-and-share engine of a Tahoe-LAFS storage server.
//!
//! The same logic builds natively (unit tests, benchmarks) and for
//! `wasm32-wasip2`, where `wit.rs` exports it as a component.

pub mod account;
pub mod advisory;
pub mod backend;
pub mod container;
pub mod crawler;
pub mod db;
pub mod discovery;
mod disk;
pub mod engine;
pub mod error;
#[cfg(feature = "test-faults")]
mod faults;
pub mod handover;
pub mod ids;
pub mod latencies;
pub mod mutable_write;
pub mod recovery;
pub mod session;
pub mod share;
#[cfg(target_arch = "wasm32")]
mod sqlite_hooks;
pub mod staging;
pub mod stats;
pub mod upload;
#[cfg(target_arch = "wasm32")]
mod wit;

/// Writes one line to the host's log (the plugin's stderr).
pub fn log(line: &str) {
    eprintln!("leasedb: {line}");
}

pub use account::Account;
pub use engine::{Allocation, Config, InitReport, LeaseDb, OpenError};
pub use error::{BadInput, Error};
pub use ids::{ShareNum, StorageIndex};

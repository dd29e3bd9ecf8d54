//! Plain-Rust twins of the plugin's WIT types (the latest interface), one
//! module per WIT interface, with the field and case names of the WIT.

mod accounting;
mod crawler;
mod lifecycle;
mod mutable;
mod storage;
mod types;

pub use accounting::{
    AccountUsage, AdvisedType, Advisory, Capabilities, Latency, ShareCount, Stats, Usage,
};
pub use crawler::{
    AgeBin, Counts, CrawlerConfig, CrawlerStatus, CycleReport, ExpirationPolicy, FailedPrefix,
    ShareRef, SliceOutcome, Tally,
};
pub use lifecycle::{Config, InitReport, PluginInfo};
pub use mutable::{
    ReadTestWriteResult, ShareReads, ShareWrites, TestOperator, TestVector, WriteVector,
};
pub use storage::{Allocation, LeaseInfo, ShareInfo, ShareState, ShareType};
pub use types::{
    Account, BackendFailure, BadInput, BeyondAllocated, ByteRange, PluginError, SessionId,
    Timestamp, TooLarge,
};

pub use crate::backend::{BackendError, ListPage, ObjectEntry};
pub use crate::ShareNumber;

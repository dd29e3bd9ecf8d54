//! The generated WIT types callers need, under stable names; nothing else
//! outside `plugin/` names the generated modules. Always the latest
//! interface's types: older versions' bindings share or convert into them.

pub use super::bindings::latest::exports::leasedb::plugin::accounting::{
    AccountUsage, AdvisedType, Advisory, Capabilities, Latency, ShareCount, Stats, Usage,
};
pub use super::bindings::latest::exports::leasedb::plugin::crawler::{
    AgeBin, Counts, CrawlerConfig, CrawlerStatus, CycleReport, ExpirationPolicy, FailedPrefix,
    ShareRef, SliceOutcome, Tally,
};
pub use super::bindings::latest::exports::leasedb::plugin::lifecycle::{
    Config, InitReport, PluginInfo,
};
pub use super::bindings::latest::exports::leasedb::plugin::mutable::{
    ReadTestWriteResult, ShareReads, ShareWrites, TestOperator, TestVector, WriteVector,
};
pub use super::bindings::latest::exports::leasedb::plugin::storage::{
    Allocation, LeaseInfo, ShareInfo, ShareState, ShareType,
};
pub use super::bindings::latest::leasedb::plugin::backend::{
    BackendError as WitBackendError, ListPage as WitListPage, ObjectEntry as WitObjectEntry,
};
pub use super::bindings::latest::leasedb::plugin::types::{
    Account, BackendFailure, BadInput, BeyondAllocated, ByteRange, Error as PluginError, SessionId,
    ShareNumber, StorageIndex, Timestamp, TooLarge,
};

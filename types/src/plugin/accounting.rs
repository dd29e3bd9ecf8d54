//! WIT `accounting`: capabilities, corruption advisories, usage, statistics.

use serde::{Deserialize, Serialize};

use super::storage::{ShareState, ShareType};
use super::types::Timestamp;
use crate::ShareNumber;

/// What a client may rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Capabilities {
    /// Largest immutable share accepted.
    pub max_immutable_size: u64,
    /// Largest mutable share data accepted.
    pub max_mutable_size: u64,
    /// Backend space left after in-flight allocations.
    pub available_space: u64,
    /// Leases are per account; renew and cancel secrets are ignored.
    pub leases_ignore_secrets: bool,
}

/// Leased shares, each counted once, and their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Usage {
    /// Shares.
    pub shares: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Distinct storage indexes.
    pub sharesets: u64,
}

/// One account's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AccountUsage {
    /// The account's id.
    pub account_id: u64,
    /// Its name.
    pub name: String,
    /// What it leases.
    pub usage: Usage,
}

/// Shares in one (state, type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShareCount {
    /// The state counted.
    pub state: ShareState,
    /// The type counted.
    pub share_type: ShareType,
    /// How many shares.
    pub shares: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Recent durations of one operation, in microseconds; none where too few samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Latency {
    /// The operation's name.
    pub operation: String,
    /// Samples kept.
    pub samples: u32,
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
}

/// The database's shape and the engine's activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Stats {
    /// Counts by state and type.
    pub shares: Vec<ShareCount>,
    /// Uploads not yet closed.
    pub uploads_in_flight: u64,
    /// Bytes allocated to them.
    pub allocated_in_flight: u64,
    /// Per operation.
    pub latencies: Vec<Latency>,
}

/// Which kind of share a client reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", rename_all = "kebab-case")]
pub enum AdvisedType {
    /// An immutable share.
    Immutable,
    /// A mutable share.
    Mutable,
}

/// A recorded corruption report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Advisory {
    /// Its id, increasing.
    pub id: i64,
    /// What the client said the share was.
    pub share_type: AdvisedType,
    /// The share's storage index.
    #[serde(with = "crate::base64")]
    pub storage_index: Vec<u8>,
    /// The share's number.
    pub share_number: ShareNumber,
    /// Who reported it.
    pub account_id: u64,
    /// What the client said.
    pub reason: String,
    /// When.
    pub reported: Timestamp,
}

//! WIT `crawler`: the accounting crawler (SPEC §8).

use serde::{Deserialize, Serialize};

use super::types::Timestamp;
use crate::ShareNumber;

/// Which leases expire at the start of each cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", content = "val", rename_all = "kebab-case")]
pub enum ExpirationPolicy {
    /// Scan only; no lease is removed.
    Disabled,
    /// Leases whose expiration time has passed or, with a duration in
    /// seconds, whose renewal is older than that.
    Age(Option<u64>),
    /// Leases renewed before this time.
    CutoffDate(Timestamp),
}

/// How the crawler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CrawlerConfig {
    /// Which leases expire.
    pub policy: ExpirationPolicy,
    /// Finished cycles kept.
    pub history_limit: u32,
    /// Least time from the end of one cycle to the start of the next.
    pub min_cycle_seconds: u64,
}

/// Shares, distinct storage indexes, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Counts {
    /// Shares.
    pub shares: u64,
    /// Distinct storage indexes.
    pub sharesets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Counts in total and by share type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Tally {
    /// Every share.
    pub total: Counts,
    /// Immutable shares.
    pub immutable: Counts,
    /// Mutable shares.
    pub mutable: Counts,
    /// Shares whose containers cannot be trusted.
    pub corrupted: Counts,
}

/// Leases whose age is in [days, days + 1) days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AgeBin {
    /// Whole days of age.
    pub days: u32,
    /// Leases of that age.
    pub leases: u64,
}

/// A share, by the text form of its storage index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShareRef {
    /// The storage index's base32 text.
    pub storage_index: String,
    /// The share number.
    pub share_number: ShareNumber,
}

/// A prefix that failed and was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FailedPrefix {
    /// The two-character prefix.
    pub prefix: String,
    /// Why it failed.
    pub reason: String,
}

/// One cycle, in progress or finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CycleReport {
    /// Its number.
    pub cycle: u64,
    /// When it started.
    pub started: Timestamp,
    /// When it finished, if it has.
    pub finished: Option<Timestamp>,
    /// The policy it applied.
    pub policy: ExpirationPolicy,
    /// Prefixes done, of 1024.
    pub prefixes_done: u32,
    /// Shares examined.
    pub examined: Tally,
    /// Collected shares: the space recovered.
    pub recovered: Tally,
    /// Shares found only in the backend and registered.
    pub added: u64,
    /// Rows whose objects had vanished.
    pub disappeared: u64,
    /// Leases removed by the policy at the start of the cycle.
    pub leases_expired: u64,
    /// Histogram of lease ages.
    pub lease_ages: Vec<AgeBin>,
    /// Shares found corrupt.
    pub corrupt_shares: Vec<ShareRef>,
    /// Prefixes skipped.
    pub prefixes_failed: Vec<FailedPrefix>,
    /// Estimate of what the rest of the cycle examines: so-far × (1 − p)/p.
    pub remaining_examined: Option<Tally>,
    /// Estimate of what the rest of the cycle recovers.
    pub remaining_recovered: Option<Tally>,
    /// Estimate of what the whole cycle examines.
    pub cycle_examined: Option<Tally>,
    /// Estimate of what the whole cycle recovers.
    pub cycle_recovered: Option<Tally>,
}

/// What a slice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", content = "val", rename_all = "kebab-case")]
pub enum SliceOutcome {
    /// No cycle is due before this time; nothing was done.
    Waiting(Timestamp),
    /// This many prefixes were processed; true when the cycle finished.
    Progressed((u32, bool)),
}

/// The current cycle and the history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CrawlerStatus {
    /// The cycle in progress.
    pub current: Option<CycleReport>,
    /// Finished cycles, newest first.
    pub history: Vec<CycleReport>,
    /// When the next cycle may start, when none is running.
    pub next_cycle_at: Option<Timestamp>,
}

//! What the operator sees (SPEC §9): counts and bytes by state and type,
//! space in flight, usage per account, and latency percentiles per operation.

use std::collections::{HashMap, VecDeque};

use crate::account::Account;
use crate::backend::Backend;
use crate::db::usage;
pub use crate::db::usage::{AccountUsage, ShareCount, Usage};
use crate::engine::LeaseDb;
use crate::error::Result;

/// Samples kept per operation.
pub const LATENCY_WINDOW: usize = 1000;

/// Recent call durations per operation, in microseconds.
#[derive(Debug, Default)]
pub struct Latencies {
    samples: HashMap<&'static str, VecDeque<u64>>,
}

/// Percentiles of one operation's recent durations; None where there are
/// too few samples for that percentile to mean anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencySummary {
    /// Operation name.
    pub operation: String,
    /// Samples in the window.
    pub samples: u32,
    /// Median, µs (needs 2 samples).
    pub p50: Option<u64>,
    /// 90th percentile, µs (needs 10).
    pub p90: Option<u64>,
    /// 99th percentile, µs (needs 100).
    pub p99: Option<u64>,
}

impl Latencies {
    /// Records one call of `operation` that took `micros`.
    pub fn record(&mut self, operation: &'static str, micros: u64) {
        let window = self.samples.entry(operation).or_default();
        if window.len() == LATENCY_WINDOW {
            window.pop_front();
        }
        window.push_back(micros);
    }

    /// Percentiles per operation, by name.
    pub fn summary(&self) -> Vec<LatencySummary> {
        let mut out: Vec<LatencySummary> = self
            .samples
            .iter()
            .map(|(op, window)| {
                let mut sorted: Vec<u64> = window.iter().copied().collect();
                sorted.sort_unstable();
                let pick = |p: f64, min: usize| {
                    (sorted.len() >= min).then(|| {
                        sorted
                            [((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
                    })
                };
                LatencySummary {
                    operation: op.to_string(),
                    samples: sorted.len() as u32,
                    p50: pick(0.50, 2),
                    p90: pick(0.90, 10),
                    p99: pick(0.99, 100),
                }
            })
            .collect();
        out.sort_by(|a, b| a.operation.cmp(&b.operation));
        out
    }
}

/// The database's shape and the engine's activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Non-empty (state, type) groups.
    pub shares: Vec<ShareCount>,
    /// Uploads in progress.
    pub uploads_in_flight: u64,
    /// Bytes they have been allocated.
    pub allocated_in_flight: u64,
    /// Recent latencies.
    pub latencies: Vec<LatencySummary>,
}

impl<B: Backend> LeaseDb<B> {
    /// Counts by state and type, uploads in flight, latencies.
    pub fn stats(&self) -> Result<Stats> {
        let shares = usage::share_counts(&self.conn)?;
        let (uploads_in_flight, allocated_in_flight) = self.in_flight();
        Ok(Stats {
            shares,
            uploads_in_flight,
            allocated_in_flight,
            latencies: self.latencies.summary(),
        })
    }

    /// What `account` leases; with None, what any account leases.
    pub fn usage(&self, account: Option<&Account>) -> Result<Usage> {
        Ok(usage::usage(&self.conn, account)?)
    }

    /// Usage of every account that holds a lease.
    pub fn usage_by_account(&self) -> Result<Vec<AccountUsage>> {
        Ok(usage::by_account(&self.conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_need_enough_samples() {
        let mut l = Latencies::default();
        l.record("read", 5);
        assert_eq!(l.summary()[0].p50, None);
        for i in 1..=100 {
            l.record("write", i);
        }
        let w = l
            .summary()
            .into_iter()
            .find(|s| s.operation == "write")
            .unwrap();
        assert_eq!((w.p50, w.p90, w.p99), (Some(50), Some(90), Some(99)));
        for _ in 0..2000 {
            l.record("write", 1);
        }
        let w = l
            .summary()
            .into_iter()
            .find(|s| s.operation == "write")
            .unwrap();
        assert_eq!(w.samples, LATENCY_WINDOW as u32);
    }
}

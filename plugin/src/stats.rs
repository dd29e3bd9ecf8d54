//! What the operator sees (SPEC §9): counts and bytes by state and type,
//! space in flight, usage per account, and latency percentiles per operation.

use crate::account::Account;
use crate::backend::Backend;
use crate::db::usage;
pub use crate::db::usage::{AccountUsage, ShareCount, Usage};
use crate::engine::LeaseDb;
use crate::error::Result;

pub use crate::latencies::{Latencies, LatencySummary, LATENCY_WINDOW};

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

//! How the crawler runs (SPEC §8): its expiration policy, history length
//! and minimum cycle time.

use super::report::ExpirationPolicy;

/// How the crawler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlerConfig {
    /// Which leases expire at the start of each cycle.
    pub policy: ExpirationPolicy,
    /// Finished cycles kept in the history.
    pub history_limit: u32,
    /// Least time from the end of one cycle to the start of the next.
    pub min_cycle_seconds: u64,
}

impl Default for CrawlerConfig {
    fn default() -> Self {
        CrawlerConfig {
            policy: ExpirationPolicy::Disabled,
            history_limit: 10,
            min_cycle_seconds: 12 * 3600,
        }
    }
}

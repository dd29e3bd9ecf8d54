//! Recent call durations per operation (SPEC §9 stats): a bounded window
//! each, summarised as percentiles.

use std::collections::{HashMap, VecDeque};

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

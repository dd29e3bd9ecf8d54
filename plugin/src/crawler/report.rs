//! What a crawler cycle found, kept as JSON in the database between slices.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::share::ShareType;

/// Shares, distinct storage indexes and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Shares.
    pub shares: u64,
    /// Distinct storage indexes.
    pub sharesets: u64,
    /// Bytes used.
    pub bytes: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.shares += o.shares;
        self.sharesets += o.sharesets;
        self.bytes += o.bytes;
    }

    /// This × factor, rounded.
    fn scaled(&self, factor: f64) -> Counts {
        let s = |v: u64| (v as f64 * factor).round() as u64;
        Counts {
            shares: s(self.shares),
            sharesets: s(self.sharesets),
            bytes: s(self.bytes),
        }
    }
}

/// Counts in total and split by share type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// All types.
    pub total: Counts,
    /// Immutable shares.
    pub immutable: Counts,
    /// Mutable shares.
    pub mutable: Counts,
    /// Corrupted shares.
    pub corrupted: Counts,
}

impl Tally {
    /// Counts the shares of one prefix: (storage index, type, bytes) each.
    pub fn of<'a>(shares: impl IntoIterator<Item = (&'a [u8; 16], ShareType, u64)>) -> Tally {
        let mut t = Tally::default();
        let mut sets: BTreeMap<&str, std::collections::BTreeSet<&[u8; 16]>> = BTreeMap::new();
        for (si, ty, bytes) in shares {
            let name = match ty {
                ShareType::Mutable => "mutable",
                ShareType::Immutable => "immutable",
                _ => "corrupted",
            };
            let c = match name {
                "mutable" => &mut t.mutable,
                "immutable" => &mut t.immutable,
                _ => &mut t.corrupted,
            };
            c.shares += 1;
            c.bytes += bytes;
            t.total.shares += 1;
            t.total.bytes += bytes;
            sets.entry(name).or_default().insert(si);
            sets.entry("total").or_default().insert(si);
        }
        let n = |k: &str| sets.get(k).map_or(0, |s| s.len() as u64);
        t.immutable.sharesets = n("immutable");
        t.mutable.sharesets = n("mutable");
        t.corrupted.sharesets = n("corrupted");
        t.total.sharesets = n("total");
        t
    }

    /// Adds another tally (of other prefixes) to this one.
    pub fn add(&mut self, o: &Tally) {
        self.total.add(&o.total);
        self.immutable.add(&o.immutable);
        self.mutable.add(&o.mutable);
        self.corrupted.add(&o.corrupted);
    }

    fn scaled(&self, f: f64) -> Tally {
        Tally {
            total: self.total.scaled(f),
            immutable: self.immutable.scaled(f),
            mutable: self.mutable.scaled(f),
            corrupted: self.corrupted.scaled(f),
        }
    }
}

/// The expiration policy a cycle ran under (SPEC §8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpirationPolicy {
    /// Scan only; no lease is removed.
    #[default]
    Disabled,
    /// Leases whose expiration time has passed or, with an override, whose
    /// renewal is older than that many seconds.
    Age { override_seconds: Option<u64> },
    /// Leases renewed before this time.
    CutoffDate { cutoff: i64 },
}

/// A share the crawler found corrupted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRef {
    /// Storage index text.
    pub si: String,
    /// Share number.
    pub shnum: u8,
}

/// One cycle, in progress or finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleReport {
    /// 1 for the first cycle ever.
    pub cycle: u64,
    /// When it started.
    pub started: i64,
    /// When it finished, if it has.
    pub finished: Option<i64>,
    /// The policy in force.
    pub policy: ExpirationPolicy,
    /// Prefixes processed (next one to do, in crawl order).
    pub prefixes_done: u16,
    /// Shares present, split by type.
    pub examined: Tally,
    /// Shares collected (space recovered).
    pub recovered: Tally,
    /// Shares found in the backend that the database did not know.
    pub added: u64,
    /// Lease records read out of the containers of added shares (written
    /// there by a Tahoe server) and imported as leases.
    #[serde(default)]
    pub leases_imported: u64,
    /// Database rows whose objects were gone.
    pub disappeared: u64,
    /// Leftovers of unfinished uploads and writes removed: headless chunks
    /// no row claims, and COMING rows nothing in memory stands behind.
    #[serde(default)]
    pub leftovers: u64,
    /// Bytes those leftovers held.
    #[serde(default)]
    pub leftover_bytes: u64,
    /// Leases removed by the expiration policy at the start of the cycle.
    pub leases_expired: u64,
    /// Lease counts by age in whole days: bin d holds ages in [d, d+1) days.
    pub lease_ages: BTreeMap<u32, u64>,
    /// Corrupted shares seen.
    pub corrupt_shares: Vec<ShareRef>,
    /// Prefixes skipped because they failed, with why.
    pub prefixes_failed: Vec<(String, String)>,
}

impl CycleReport {
    /// A cycle starting now.
    pub fn new(cycle: u64, started: i64, policy: ExpirationPolicy) -> Self {
        CycleReport {
            cycle,
            started,
            finished: None,
            policy,
            prefixes_done: 0,
            examined: Tally::default(),
            recovered: Tally::default(),
            added: 0,
            leases_imported: 0,
            disappeared: 0,
            leftovers: 0,
            leftover_bytes: 0,
            leases_expired: 0,
            lease_ages: BTreeMap::new(),
            corrupt_shares: Vec::new(),
            prefixes_failed: Vec::new(),
        }
    }

    /// Counts one share's leftovers of `bytes`.
    pub fn add_leftovers(&mut self, bytes: u64) {
        self.leftovers += 1;
        self.leftover_bytes += bytes;
    }

    /// Fraction of prefixes done, 0..=1.
    pub fn progress(&self) -> f64 {
        self.prefixes_done as f64 / crate::ids::Prefix::COUNT as f64
    }

    /// Estimates (examined, recovered) for the rest of the cycle:
    /// so-far × (1 − p)/p. None before the first prefix.
    pub fn estimate_remaining(&self) -> Option<(Tally, Tally)> {
        let p = self.progress();
        (p > 0.0).then(|| {
            let f = (1.0 - p) / p;
            (self.examined.scaled(f), self.recovered.scaled(f))
        })
    }

    /// Estimates (examined, recovered) for the whole cycle.
    pub fn estimate_cycle(&self) -> Option<(Tally, Tally)> {
        self.estimate_remaining().map(|(mut e, mut r)| {
            e.add(&self.examined);
            r.add(&self.recovered);
            (e, r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_count_sharesets_once_per_type() {
        let a = [1; 16];
        let b = [2; 16];
        let t = Tally::of([
            (&a, ShareType::Immutable, 10),
            (&a, ShareType::Immutable, 20),
            (&b, ShareType::Mutable, 5),
        ]);
        assert_eq!(
            t.total,
            Counts {
                shares: 3,
                sharesets: 2,
                bytes: 35
            }
        );
        assert_eq!(
            t.immutable,
            Counts {
                shares: 2,
                sharesets: 1,
                bytes: 30
            }
        );
        assert_eq!(t.mutable.sharesets, 1);
    }

    #[test]
    fn estimates_scale_what_was_seen_so_far() {
        let mut r = CycleReport::new(1, 0, ExpirationPolicy::Disabled);
        assert!(r.estimate_remaining().is_none());
        r.prefixes_done = 256; // a quarter
        r.examined.total.shares = 10;
        let (rest, _) = r.estimate_remaining().unwrap();
        assert_eq!(rest.total.shares, 30);
        assert_eq!(r.estimate_cycle().unwrap().0.total.shares, 40);
    }
}

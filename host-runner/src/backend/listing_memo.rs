//! What a directory store's leaf directories held when last walked. A
//! steady crawl lists every share directory again, although few changed
//! since the last cycle, and opening and reading a directory costs the
//! kernel several times what one stat of it does. A name added to, removed
//! from or renamed in a directory moves its change times, so a leaf
//! directory (one holding files only) whose stamp is the one it had when
//! walked still holds the files it held then: they are listed from here,
//! and only the directories that changed are read again.
//!
//! What this does not see is a file changed in place by another process:
//! its listed size stays the one it had when its directory was walked. One
//! process owns a store and replaces files whole (written aside, renamed),
//! so its own writes always move the stamp.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// A stamp this close to the present is not kept: a change made later in
/// the same tick of the filesystem's clock could leave it as it is (some
/// filesystems keep times to the second, FAT's to two).
const SETTLE_NS: i64 = 3_000_000_000;

/// Bytes of memo a store keeps at most (about 80 bytes a leaf holding one
/// file: some 400,000 Tahoe share directories). Directories walked once
/// it is full are walked again each time.
pub(super) const DEFAULT_BUDGET: usize = 32 << 20;

/// When a directory last changed, as far as its names go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    ino: u64,
    ctime_ns: i64,
    mtime_ns: i64,
}

impl Stamp {
    /// The stamp of a directory's stat.
    pub(super) fn of(stat: &rustix::fs::Stat) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Stamp {
            ino: stat.st_ino as u64,
            ctime_ns: ns(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
            mtime_ns: ns(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
        }
    }

    /// Whether any change from `now_ns` on would give another stamp, on
    /// a filesystem whose clock ticks at least every `settle_ns`.
    fn settled(&self, now_ns: i64, settle_ns: i64) -> bool {
        let before = now_ns.saturating_sub(settle_ns);
        self.ctime_ns < before && self.mtime_ns < before
    }
}

/// The present, in nanoseconds since the epoch, as file times count it.
pub(super) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The leaf directories of one directory, in name order, with their files
/// in name order: every name in one string, to keep a million of them small.
#[derive(Default)]
pub(super) struct Leaves {
    text: String,
    leaves: Vec<Leaf>,
    files: Vec<FileEntry>,
}

struct Leaf {
    name: Range<u32>,
    stamp: Stamp,
    files: Range<u32>,
}

struct FileEntry {
    name: Range<u32>,
    size: u64,
}

impl Leaves {
    /// Adds leaf `name` (after every leaf added so far) holding `files`.
    /// False, adding nothing, when the names outgrow what this indexes.
    pub(super) fn push<'a>(
        &mut self,
        name: &str,
        stamp: Stamp,
        files: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> bool {
        debug_assert!(self.leaves.last().is_none_or(|l| self.name(l) < name));
        let (text_len, files_len) = (self.text.len(), self.files.len());
        let added = (|| {
            let name = self.append(name)?;
            for (file, size) in files {
                let name = self.append(file)?;
                self.files.push(FileEntry { name, size });
            }
            let files = u32::try_from(files_len).ok()?..u32::try_from(self.files.len()).ok()?;
            self.leaves.push(Leaf { name, stamp, files });
            Some(())
        })();
        if added.is_none() {
            self.text.truncate(text_len);
            self.files.truncate(files_len);
        }
        added.is_some()
    }

    fn append(&mut self, s: &str) -> Option<Range<u32>> {
        let start = u32::try_from(self.text.len()).ok()?;
        let end = u32::try_from(self.text.len() + s.len()).ok()?;
        self.text.push_str(s);
        Some(start..end)
    }

    fn name(&self, leaf: &Leaf) -> &str {
        &self.text[leaf.name.start as usize..leaf.name.end as usize]
    }

    /// The files leaf `name` held when its stamp was `stamp`; None when it
    /// was not walked, or has changed since.
    pub(super) fn files_of(
        &self,
        name: &str,
        stamp: Stamp,
    ) -> Option<impl Iterator<Item = (&str, u64)> + Clone + '_> {
        let at = self
            .leaves
            .binary_search_by(|l| self.name(l).cmp(name))
            .ok()?;
        let leaf = &self.leaves[at];
        (leaf.stamp == stamp).then(|| {
            self.files[leaf.files.start as usize..leaf.files.end as usize]
                .iter()
                .map(|f| {
                    (
                        &self.text[f.name.start as usize..f.name.end as usize],
                        f.size,
                    )
                })
        })
    }

    fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Heap bytes held, near enough.
    fn bytes(&self) -> usize {
        self.text.capacity()
            + self.leaves.capacity() * size_of::<Leaf>()
            + self.files.capacity() * size_of::<FileEntry>()
    }
}

/// Leaves by the key of the directory holding them, within a byte budget.
pub(super) struct ListingMemo {
    budget: usize,
    settle_ns: i64,
    state: Mutex<State>,
    /// Leaves listed from here rather than read.
    #[cfg(test)]
    served: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct State {
    by_parent: HashMap<String, Arc<Leaves>>,
    bytes: usize,
}

impl ListingMemo {
    /// An empty memo that keeps at most `budget` bytes.
    pub(super) fn new(budget: usize) -> Self {
        Self::settling_in(budget, SETTLE_NS)
    }

    /// [`new`](Self::new), for a filesystem whose clock ticks at least every `settle_ns`.
    pub(super) fn settling_in(budget: usize, settle_ns: i64) -> Self {
        ListingMemo {
            budget,
            settle_ns,
            state: Mutex::default(),
            #[cfg(test)]
            served: Default::default(),
        }
    }

    /// Whether a leaf stamped `stamp` may be kept, walked at `now_ns`.
    pub(super) fn settled(&self, stamp: Stamp, now_ns: i64) -> bool {
        stamp.settled(now_ns, self.settle_ns)
    }

    /// Counts a leaf listed from here.
    pub(super) fn served(&self) {
        #[cfg(test)]
        self.served
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Leaves listed from here so far.
    #[cfg(test)]
    pub(super) fn times_served(&self) -> usize {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The leaves of the directory whose key is `parent`, as last walked.
    pub(super) fn of(&self, parent: &str) -> Option<Arc<Leaves>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.by_parent.get(parent).cloned()
    }

    /// Keeps `leaves` as all the leaves of `parent` (a walk of all of it
    /// found them), in place of what was kept; kept only within the budget.
    pub(super) fn keep(&self, parent: &str, mut leaves: Leaves) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = state.by_parent.remove(parent) {
            state.bytes -= old.bytes() + parent.len();
        }
        if leaves.is_empty() {
            return;
        }
        leaves.text.shrink_to_fit();
        leaves.leaves.shrink_to_fit();
        leaves.files.shrink_to_fit();
        let bytes = leaves.bytes() + parent.len();
        if state.bytes + bytes <= self.budget {
            state.bytes += bytes;
            state.by_parent.insert(parent.to_owned(), Arc::new(leaves));
        }
    }

    /// Bytes kept.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64, t: i64) -> Stamp {
        Stamp {
            ino,
            ctime_ns: t,
            mtime_ns: t,
        }
    }

    #[test]
    fn a_leaf_is_found_by_name_only_with_the_stamp_it_was_walked_with() {
        let mut leaves = Leaves::default();
        assert!(leaves.push("aa", stamp(1, 10), [("0", 5), ("1", 7)]));
        assert!(leaves.push("ab", stamp(2, 10), []));
        assert!(leaves.push("ac", stamp(3, 10), [("9", 1)]));
        let files: Vec<_> = leaves.files_of("aa", stamp(1, 10)).unwrap().collect();
        assert_eq!(files, [("0", 5), ("1", 7)]);
        assert_eq!(leaves.files_of("ab", stamp(2, 10)).unwrap().count(), 0);
        let files: Vec<_> = leaves.files_of("ac", stamp(3, 10)).unwrap().collect();
        assert_eq!(files, [("9", 1)]);
        assert!(
            leaves.files_of("ac", stamp(3, 11)).is_none(),
            "changed since"
        );
        assert!(
            leaves.files_of("ac", stamp(4, 10)).is_none(),
            "another directory"
        );
        assert!(
            leaves.files_of("ad", stamp(3, 10)).is_none(),
            "never walked"
        );
    }

    #[test]
    fn a_stamp_from_the_last_seconds_is_not_settled() {
        let now = now_ns();
        let memo = ListingMemo::new(DEFAULT_BUDGET);
        assert!(memo.settled(stamp(1, now - 10 * SETTLE_NS), now));
        assert!(!memo.settled(stamp(1, now - SETTLE_NS / 2), now));
        let mut changed_late = stamp(1, now - 10 * SETTLE_NS);
        changed_late.mtime_ns = now;
        assert!(!memo.settled(changed_late, now));
    }

    #[test]
    fn the_memo_keeps_within_its_budget_and_replaces_a_parent_whole() {
        let leaves = |n: usize| {
            let mut l = Leaves::default();
            for i in 0..n {
                l.push(&format!("{i:04}"), stamp(i as u64, 1), [("0", 1)]);
            }
            l
        };
        let memo = ListingMemo::new(4096);
        memo.keep("shares/aa/", leaves(10));
        let one = memo.bytes();
        assert!(one > 0 && one <= 4096);
        assert!(memo.of("shares/aa/").is_some());
        memo.keep("shares/aa/", leaves(5));
        assert!(memo.bytes() < one, "the old leaves are let go");
        memo.keep("shares/ab/", leaves(1000));
        assert!(memo.of("shares/ab/").is_none(), "over the budget");
        assert!(memo.bytes() <= 4096);
        memo.keep("shares/aa/", Leaves::default());
        assert!(memo.of("shares/aa/").is_none());
        assert_eq!(memo.bytes(), 0);
    }
}

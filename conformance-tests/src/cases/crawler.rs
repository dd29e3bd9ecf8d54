//! The accounting crawler (SPEC §8): one prefix per zero-budget slice in crawl
//! order, per-cycle reports with estimates, expiry policies, bounded history,
//! resumption after a stop, and failures recorded without stalling the cycle.

use crate::client::{
    all_rows, crawl_cycle, crawl_one_prefix, crawler_config, lease_owners, mutable_data, named,
    read_all, row, upload, write_all, write_mutable, WRITE_ENABLER,
};
use crate::containers::{immutable, mutable, pattern};
use crate::ids::{self, crawl_index, si_with_prefix};
use crate::wit::{
    AgeBin, Counts, CycleReport, ExpirationPolicy, ShareRef, ShareState, ShareType, SliceOutcome,
    BackendError,
};
use crate::{BackendOp, Harness, Operations, Options};

/// Four storage indexes at prefixes `aa`, `ae`, `ai`, `am`: an uploaded
/// immutable, a written mutable, and an immutable and a mutable copied in by
/// hand (so with a starter lease) and then leased by bob.
struct Four {
    aa: [u8; 16],
    ae: [u8; 16],
    ai: [u8; 16],
    am: [u8; 16],
}

/// Bytes the `aa` share's container occupies.
const AA_BYTES: u64 = 1000 + 12;

impl Four {
    fn all(&self) -> [[u8; 16]; 4] {
        [self.aa, self.ae, self.ai, self.am]
    }

    /// Builds the store; with `backdate`, `aa` and `ae` (one immutable, one
    /// mutable) are written 3000 s before the others.
    fn build<H: Harness>(h: &H, host: &mut H::Host, backdate: bool) -> Four {
        let four = Four {
            aa: si_with_prefix("aa", 1),
            ae: si_with_prefix("ae", 2),
            ai: si_with_prefix("ai", 3),
            am: si_with_prefix("am", 4),
        };
        let now = h.now();
        if backdate {
            h.set_now(now - 3000);
        }
        upload(host, 1, &named("alice"), &four.aa, 0, &pattern(1000, 1));
        write_mutable(host, &named("alice"), &four.ae, 0, b"mutable at ae");
        h.set_now(now);
        h.put_object(&ids::share_key(&four.ai, 0), &immutable(2, &pattern(2000, 3), 0));
        assert_eq!(host.list_shares(&four.ai).unwrap(), [0]);
        host.add_lease(&named("bob"), &four.ai).unwrap();
        h.put_object(&ids::share_key(&four.am, 0), &mutable(false, &[5; 20], &WRITE_ENABLER, b"mutable at am"));
        assert!(mutable_data(host, &four.am, 0).is_some());
        host.add_lease(&named("bob"), &four.am).unwrap();
        // A stray file next to a share: not a share, to be ignored.
        h.put_object(&format!("{}not-a-share", ids::si_dir(&four.aa)), b"stray");
        four
    }
}

fn counts(shares: u64, sharesets: u64, bytes: u64) -> Counts {
    Counts { shares, sharesets, bytes }
}

/// The totals a cycle's report gives, without its times and cycle number.
fn totals(r: &CycleReport) -> impl PartialEq + std::fmt::Debug {
    (
        r.examined,
        r.recovered,
        r.added,
        r.disappeared,
        r.leases_expired,
        r.lease_ages.clone(),
        r.corrupt_shares.clone(),
        r.prefixes_failed.clone(),
        r.prefixes_done,
    )
}

/// Runs the four-SI store through a cycle under `policy`: the backdated `aa`
/// and `ae` are collected, `ai` and `am` keep their leases.
fn backdated_shares_are_collected<H: Harness>(h: &H, policy: impl FnOnce(i64) -> ExpirationPolicy) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let four = Four::build(h, &mut host, true);
    host.crawler_configure(crawler_config(policy(h.now()))).unwrap();
    let report = crawl_cycle(&mut host);
    assert_eq!(report.examined.total.shares, 4);
    assert_eq!(report.recovered.total.shares, 2);
    assert_eq!((report.recovered.immutable.shares, report.recovered.mutable.shares), (1, 1));
    assert_eq!(report.recovered.immutable.bytes, AA_BYTES);
    assert_eq!(report.leases_expired, 2);
    for si in [four.aa, four.ae] {
        assert_eq!(row(&mut host, &si, 0), None);
        assert_eq!(h.object(&ids::share_key(&si, 0)), None);
    }
    assert_eq!(lease_owners(&mut host, &four.ai).len(), 2);
    assert_eq!(lease_owners(&mut host, &four.am).len(), 2);
    assert_eq!(read_all(&mut host, &four.ai, 0), pattern(2000, 3));
}

crate::declare_cases! { crawler, foreach_crawler_case, $;

/// Before the first slice no cycle is running and the history is empty; the
/// first slice starts a cycle without waiting.
pub fn before_the_first_slice_no_cycle_runs_and_history_is_empty<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    Four::build(h, &mut host, false);
    let status = host.crawler_status().unwrap();
    assert_eq!(status.current, None);
    assert_eq!(status.history, vec![]);
    let first = host.crawler_run_slice(std::time::Duration::ZERO, false).unwrap();
    assert_eq!(first, SliceOutcome::Progressed((1, false)));
    assert_eq!(host.crawler_status().unwrap().current.map(|c| c.prefixes_done), Some(1));
}

/// A zero-budget slice processes exactly one prefix; after prefix `aa` (crawl
/// index 198) the report counts its one share and one lease, nothing
/// recovered, and estimates the rest of the cycle as so-far × (1 − p)/p.
pub fn report_after_prefix_aa_counts_one_share_with_estimates<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    Four::build(h, &mut host, false);
    let done = crawl_index("aa") + 1;
    assert_eq!(done, 199);
    for _ in 0..done {
        assert_eq!(crawl_one_prefix(&mut host), SliceOutcome::Progressed((1, false)));
    }
    let r = host.crawler_status().unwrap().current.expect("a cycle is running");
    assert_eq!(r.prefixes_done, 199);
    assert_eq!(r.examined.total, counts(1, 1, AA_BYTES));
    assert_eq!(r.examined.immutable, counts(1, 1, AA_BYTES));
    assert_eq!(r.examined.mutable, counts(0, 0, 0));
    assert_eq!(r.recovered.total, counts(0, 0, 0));
    assert_eq!(r.lease_ages, [AgeBin { days: 0, leases: 1 }]);
    let factor = (1024.0 - 199.0) / 199.0;
    let scaled = |v: u64| (v as f64 * factor).round() as u64;
    let remaining = r.remaining_examined.expect("an estimate once a prefix is done");
    assert_eq!(remaining.total, counts(scaled(1), scaled(1), scaled(AA_BYTES)));
    let whole = r.cycle_examined.expect("a whole-cycle estimate");
    assert_eq!(whole.total, counts(1 + scaled(1), 1 + scaled(1), AA_BYTES + scaled(AA_BYTES)));
    assert_eq!(r.remaining_recovered.map(|t| t.total), Some(counts(0, 0, 0)));
}

/// A whole cycle examines the four shares (two of each type), recovers
/// nothing, changes no lease, and ignores a stray non-numeric file.
pub fn full_cycle_examines_four_shares_and_changes_nothing<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let four = Four::build(h, &mut host, false);
    let leases: Vec<_> = four.all().iter().map(|si| host.list_leases(si).unwrap()).collect();
    let rows = all_rows(&mut host);
    let r = crawl_cycle(&mut host);
    assert_eq!(r.prefixes_done, 1024);
    assert!(r.finished.is_some());
    assert_eq!((r.examined.total.shares, r.examined.total.sharesets), (4, 4));
    assert_eq!((r.examined.immutable.shares, r.examined.mutable.shares), (2, 2));
    assert_eq!(r.recovered.total, counts(0, 0, 0));
    assert_eq!((r.added, r.disappeared, r.leases_expired), (0, 0, 0));
    assert_eq!(r.lease_ages.iter().map(|b| b.leases).sum::<u64>(), 6);
    assert_eq!(r.corrupt_shares, vec![]);
    assert_eq!(r.prefixes_failed, vec![]);
    let after: Vec<_> = four.all().iter().map(|si| host.list_leases(si).unwrap()).collect();
    assert_eq!(after, leases);
    assert_eq!(all_rows(&mut host), rows);
    assert!(h.object(&format!("{}not-a-share", ids::si_dir(&four.aa))).is_some());
}

/// After the database is lost, one cycle registers every share with exactly
/// one starter lease and collects nothing.
pub fn lost_database_is_rebuilt_with_one_starter_lease_per_share<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let four = Four::build(h, &mut host, false);
    let keys = h.object_keys();
    drop(host);
    h.remove_database();
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let r = crawl_cycle(&mut host);
    assert_eq!(r.added, 4);
    assert_eq!(r.recovered.total.shares, 0);
    assert_eq!(h.object_keys(), keys, "nothing collected");
    for si in four.all() {
        assert_eq!(lease_owners(&mut host, &si), [(0, 1)]);
    }
    assert_eq!(all_rows(&mut host).len(), 4);
}

/// Rebuilding, a share the listing shows but a read does not find (deleted
/// since, or a listing that still shows a deleted object) is neither
/// registered nor a failed prefix; the other shares are registered.
pub fn share_listed_but_gone_when_read_is_skipped_by_the_rebuild<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let four = Four::build(h, &mut host, false);
    drop(host);
    h.remove_database();
    h.fail(BackendOp::Read, &ids::share_key(&four.aa, 0), BackendError::NotFound);
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let r = crawl_cycle(&mut host);
    h.clear_faults();
    assert_eq!(r.prefixes_failed.iter().map(|f| f.prefix.as_str()).collect::<Vec<_>>(), Vec::<&str>::new());
    assert_eq!(r.added, 3);
    let rows = all_rows(&mut host);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.storage_index != four.aa));
}

/// Policy `age` with an override of 2000 s collects the two shares whose only
/// leases were renewed 3000 s ago (one mutable, one immutable); the others stay.
pub fn age_policy_with_override_collects_the_backdated_shares<H: Harness>(h: &H) {
    backdated_shares_are_collected(h, |_| ExpirationPolicy::Age(Some(2000)));
}

/// Policy `cutoff-date` 2000 s in the past collects the same two shares.
pub fn cutoff_date_policy_collects_the_backdated_shares<H: Harness>(h: &H) {
    backdated_shares_are_collected(h, |now| ExpirationPolicy::CutoffDate(now - 2000));
}

/// With a history limit of 2, five cycles leave the newest two in the history.
pub fn history_keeps_only_the_newest_cycles<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let mut config = crawler_config(ExpirationPolicy::Disabled);
    config.history_limit = 2;
    host.crawler_configure(config).unwrap();
    let mut cycles = Vec::new();
    for _ in 0..5 {
        cycles.push(crawl_cycle(&mut host).cycle);
    }
    let history: Vec<u64> = host.crawler_status().unwrap().history.iter().map(|r| r.cycle).collect();
    assert_eq!(history, [cycles[4], cycles[3]]);
    assert!(cycles.windows(2).all(|w| w[0] < w[1]), "{cycles:?}");
}

/// A crawler stopped mid-cycle (the host dropped) resumes at the next prefix,
/// and the cycle's totals equal those of an uninterrupted cycle.
pub fn stopped_crawler_resumes_at_the_next_prefix_with_the_same_totals<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    Four::build(h, &mut host, false);
    for _ in 0..=crawl_index("aa") {
        crawl_one_prefix(&mut host);
    }
    drop(host);
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let current = host.crawler_status().unwrap().current.expect("the cycle survives the stop");
    assert_eq!(current.prefixes_done, 199);
    crawl_one_prefix(&mut host);
    assert_eq!(host.crawler_status().unwrap().current.map(|c| c.prefixes_done), Some(200));
    let resumed = crawl_cycle(&mut host);
    let uninterrupted = crawl_cycle(&mut host);
    assert_eq!(totals(&resumed), totals(&uninterrupted));
    assert_eq!(resumed.examined.total.shares, 4);
}

/// A corrupted share is reported, registered as corrupted, and the cycle completes.
pub fn corrupted_share_is_reported_and_the_cycle_completes<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    Four::build(h, &mut host, false);
    let bad = si_with_prefix("aq", 9);
    h.put_object(&ids::share_key(&bad, 3), &immutable(0, b"version zero", 0));
    let r = crawl_cycle(&mut host);
    assert_eq!(r.prefixes_done, 1024);
    assert_eq!(r.corrupt_shares, [ShareRef { storage_index: ids::text(&bad), share_number: 3 }]);
    assert_eq!(r.examined.corrupted.shares, 1);
    assert_eq!(r.examined.total.shares, 5);
    assert_eq!(row(&mut host, &bad, 3).map(|r| (r.share_type, r.state)), Some((ShareType::Corrupted, ShareState::Stable)));
    assert!(h.object(&ids::share_key(&bad, 3)).is_some(), "a corrupted share is kept");
}

/// A backend failing one prefix's listing is recorded in prefixes-failed and
/// skipped: its shares are neither examined nor declared disappeared.
pub fn failing_prefix_listing_is_recorded_and_skipped<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let four = Four::build(h, &mut host, false);
    let leases = host.list_leases(&four.ae).unwrap();
    h.fail(BackendOp::List, &ids::prefix_dir("ae"), BackendError::Permanent("prefix unreachable".into()));
    let r = crawl_cycle(&mut host);
    h.clear_faults();
    assert_eq!(r.prefixes_done, 1024);
    let failed: Vec<&str> = r.prefixes_failed.iter().map(|f| f.prefix.as_str()).collect();
    assert_eq!(failed, ["ae"]);
    assert_eq!(r.examined.total.shares, 3);
    assert_eq!(r.disappeared, 0);
    assert_eq!(row(&mut host, &four.ae, 0).map(|r| r.state), Some(ShareState::Stable));
    assert_eq!(host.list_leases(&four.ae).unwrap(), leases);
}

/// Shares being uploaded when the crawler passes their prefix (some chunks
/// stored, or none yet) are neither collected nor removed, and their uploads finish.
pub fn share_being_uploaded_is_neither_collected_nor_removed<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    host.crawler_configure(crawler_config(ExpirationPolicy::Age(Some(0)))).unwrap();
    let si = si_with_prefix("22", 1); // crawl index 0
    let data = pattern(20_000, 1);
    host.session_opened(1).unwrap();
    host.allocate(1, &named("alice"), &si, &[0, 1], data.len() as u64).unwrap();
    write_all(&mut host, &si, 0, &data[..10_000]);
    let keys = h.object_keys();
    assert!(!keys.is_empty());
    assert_eq!(crawl_one_prefix(&mut host), SliceOutcome::Progressed((1, false)));
    assert_eq!(h.object_keys(), keys);
    assert_eq!(row(&mut host, &si, 0).map(|r| r.state), Some(ShareState::Coming));
    assert_eq!(row(&mut host, &si, 1).map(|r| r.state), Some(ShareState::Coming));
    host.write(&si, 0, 10_000, &data[10_000..]).unwrap();
    write_all(&mut host, &si, 1, &data);
    host.close(&si, 0).unwrap();
    host.close(&si, 1).unwrap();
    assert_eq!(read_all(&mut host, &si, 0), data);
    assert_eq!(read_all(&mut host, &si, 1), data);
}

/// A collection whose delete fails leaves the share STABLE with its objects,
/// records the failure, and the next cycle collects it.
pub fn failed_collection_leaves_the_share_stable_and_the_next_cycle_collects_it<H: Harness>(h: &H) {
    let mut host = h.start(&Options::small_chunks()).unwrap();
    let si = si_with_prefix("22", 2);
    let now = h.now();
    h.set_now(now - 3000);
    upload(&mut host, 1, &named("alice"), &si, 0, &pattern(5000, 2));
    h.set_now(now);
    host.crawler_configure(crawler_config(ExpirationPolicy::Age(Some(2000)))).unwrap();
    h.fail(BackendOp::Delete, &ids::si_dir(&si), BackendError::Permanent("read-only disk".into()));
    let first = crawl_cycle(&mut host);
    assert_eq!(first.recovered.total.shares, 0);
    assert!(first.prefixes_failed.iter().any(|f| f.prefix == "22"), "{:?}", first.prefixes_failed);
    assert_eq!(row(&mut host, &si, 0).map(|r| r.state), Some(ShareState::Stable));
    assert!(h.object(&ids::share_key(&si, 0)).is_some());

    h.clear_faults();
    let second = crawl_cycle(&mut host);
    assert_eq!(second.recovered.immutable.shares, 1);
    assert_eq!(row(&mut host, &si, 0), None);
    assert_eq!(h.object_keys(), Vec::<String>::new());
}

}

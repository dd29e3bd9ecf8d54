//! The accounting crawler on the native build (SPEC §8).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use leasedb_plugin::backend::memory::MemoryBackend;
use leasedb_plugin::backend::{keys, Backend, BackendError, ListPage};
use leasedb_plugin::crawler::{CrawlerConfig, ExpirationPolicy, SliceOutcome};
use leasedb_plugin::ids::Prefix;
use leasedb_plugin::mutable_write::{ShareWrites, WriteVector};
use leasedb_plugin::{Account, Config, LeaseDb, ShareNum, StorageIndex};

type Db = LeaseDb<Rc<MemoryBackend>>;

struct Store {
    _dir: tempfile::TempDir,
    path: String,
    backend: Rc<MemoryBackend>,
    clock: Rc<Cell<i64>>,
}

/// SIs whose text starts with `aa`, `ae`, `ai`, `am`.
fn si(n: u8) -> [u8; 16] {
    let mut s = [0x5a; 16];
    s[0] = n;
    s[1] = 0x00;
    s
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db").to_str().unwrap().to_string();
        Store {
            _dir: dir,
            path,
            backend: Rc::new(MemoryBackend::new(1 << 40)),
            clock: Rc::new(Cell::new(1_700_000_000)),
        }
    }

    fn open(&self) -> Db {
        let clock = self.clock.clone();
        let config = Config {
            chunk_size: 4096,
            ..Config::default()
        };
        LeaseDb::open_with_clock(
            &self.path,
            self.backend.clone(),
            config,
            Box::new(move || clock.get()),
        )
        .unwrap()
        .0
    }

    /// Another database over the same backend (in a temp dir kept alive by
    /// the first value): what it writes, this store's database never saw.
    fn open_other(&self) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other").to_str().unwrap().to_string();
        let config = Config {
            chunk_size: 4096,
            ..Config::default()
        };
        let other = LeaseDb::open(&path, self.backend.clone(), config)
            .unwrap()
            .0;
        (dir, other)
    }

    /// Two immutable (aa, ai) and two mutable (ae, am) SIs, each with an
    /// anonymous lease; ai and am were written behind this database's back
    /// (another database over the same backend), so they also carry the
    /// starter lease their discovery gives.
    fn populate(&self, db: &mut Db) {
        let (_dir, mut other) = self.open_other();
        for (n, mutable) in [(0u8, false), (1, true), (2, false), (3, true)] {
            let target = if n < 2 { &mut *db } else { &mut other };
            let si = si(n);
            if mutable {
                let w = ShareWrites {
                    shnum: 0,
                    tests: vec![],
                    writes: vec![WriteVector {
                        offset: 0,
                        data: vec![n; 100],
                    }],
                    new_length: None,
                };
                assert!(
                    target
                        .read_test_write(&Account::Anonymous, &si, &[1; 32], &[w], &[])
                        .unwrap()
                        .success
                );
            } else {
                target
                    .allocate(1, &Account::Anonymous, &si, &[0], 100)
                    .unwrap();
                target.write(&si, 0, 0, &[n; 100]).unwrap();
                target.close(&si, 0).unwrap();
            }
        }
        for n in [2u8, 3] {
            db.add_lease(&Account::Anonymous, &si(n)).unwrap();
            assert_eq!(db.list_leases(&si(n)).unwrap().len(), 2);
        }
    }
}

fn run_cycle<B: Backend>(db: &mut LeaseDb<B>) {
    run_cycle_in_slices(db, Duration::from_secs(60));
}

/// Runs forced slices of `budget` until a cycle finishes.
fn run_cycle_in_slices<B: Backend>(db: &mut LeaseDb<B>, budget: Duration) {
    loop {
        match db.crawl_slice(budget, true).unwrap() {
            SliceOutcome::Progressed { finished: true, .. } => return,
            SliceOutcome::Progressed { .. } => continue,
            SliceOutcome::Waiting { .. } => panic!("forced slice waited"),
        }
    }
}

#[test]
fn the_first_prefix_with_shares_is_reported_then_the_whole_cycle() {
    let store = Store::new();
    let mut db = store.open();
    store.populate(&mut db);
    let status = db.crawler_status().unwrap();
    assert!(status.current.is_none() && status.history.is_empty());
    // `aa` is at index 198: one prefix per slice.
    for _ in 0..199 {
        db.crawl_slice(Duration::ZERO, false).unwrap();
    }
    let current = db.crawler_status().unwrap().current.unwrap();
    assert_eq!(current.prefixes_done, 199);
    assert_eq!(
        (
            current.examined.total.shares,
            current.recovered.total.shares
        ),
        (1, 0)
    );
    assert_eq!(
        current
            .lease_ages
            .iter()
            .map(|(d, c)| (*d, *c))
            .collect::<Vec<_>>(),
        vec![(0, 1)]
    );
    assert!(current.estimate_remaining().unwrap().0.total.shares > 0);
    let leases_before: Vec<usize> = (0..4)
        .map(|n| db.list_leases(&si(n)).unwrap().len())
        .collect();
    run_cycle(&mut db);
    let leases_after: Vec<usize> = (0..4)
        .map(|n| db.list_leases(&si(n)).unwrap().len())
        .collect();
    assert_eq!(leases_before, vec![1, 1, 2, 2]);
    assert_eq!(leases_after, leases_before);
    let status = db.crawler_status().unwrap();
    let done = &status.history[0];
    assert_eq!(
        (done.examined.total.shares, done.recovered.total.shares),
        (4, 0)
    );
    assert_eq!(
        (done.examined.immutable.shares, done.examined.mutable.shares),
        (2, 2)
    );
    assert!(status.current.is_none() && status.next_cycle_at.is_some());
    assert!(matches!(
        db.crawl_slice(Duration::ZERO, false).unwrap(),
        SliceOutcome::Waiting { .. }
    ));
}

#[test]
fn a_lost_database_is_rebuilt_with_one_starter_lease_per_share() {
    let store = Store::new();
    {
        let mut db = store.open();
        store.populate(&mut db);
    }
    std::fs::remove_file(&store.path).unwrap();
    let _ = std::fs::remove_file(format!("{}-wal", store.path));
    let mut db = store.open();
    run_cycle(&mut db);
    let report = &db.crawler_status().unwrap().history[0];
    assert_eq!((report.added, report.recovered.total.shares), (4, 0));
    // The starter leases, renewed today, are in the report's lease ages.
    assert_eq!(report.lease_ages, [(0, 4)].into());
    for n in 0..4 {
        let leases = db.list_leases(&si(n)).unwrap();
        assert_eq!(
            leases.iter().map(|l| l.account_id).collect::<Vec<_>>(),
            vec![1],
            "SI {n}"
        );
    }
}

/// A Tahoe node's storage taken over: the lease records in its containers
/// become leases (the latest expiry each), the report counts them, and only
/// the share recording none gets a starter lease.
#[test]
fn the_crawler_imports_lease_records_and_counts_them() {
    let store = Store::new();
    let share = |n: u8, expiries: &[u32]| {
        let mut c = vec![0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, expiries.len() as u8];
        c.extend_from_slice(b"data");
        for e in expiries {
            let mut record = [0x11; 72];
            record[68..].copy_from_slice(&e.to_be_bytes());
            c.extend_from_slice(&record);
        }
        store
            .backend
            .put_for_test(&keys::chunk_key(&StorageIndex(si(n)), ShareNum(0), 0), &c);
    };
    share(0, &[1_710_000_000, 1_720_000_000, 1_705_000_000]);
    share(1, &[1_730_000_000]);
    share(2, &[]);
    let mut db = store.open();
    run_cycle(&mut db);
    let report = &db.crawler_status().unwrap().history[0];
    assert_eq!((report.added, report.leases_imported), (3, 4));
    let mut lease = |n: u8| {
        let l = db.list_leases(&si(n)).unwrap();
        assert_eq!(l.len(), 1, "SI {n}: {l:?}");
        (l[0].account_id, l[0].expires)
    };
    assert_eq!(lease(0), (0, Some(1_720_000_000)));
    assert_eq!(lease(1), (0, Some(1_730_000_000)));
    assert_eq!(lease(2), (1, Some(store.clock.get() + 60 * 24 * 3600)));
}

#[test]
fn age_override_expires_backdated_leases_and_collects_their_shares() {
    let store = Store::new();
    let mut db = store.open();
    let now = store.clock.get();
    store.clock.set(now - 3000);
    for n in [0u8, 1] {
        let w = ShareWrites {
            shnum: 0,
            tests: vec![],
            writes: vec![WriteVector {
                offset: 0,
                data: vec![n; 10],
            }],
            new_length: None,
        };
        let mutable = n == 1;
        if mutable {
            db.read_test_write(&Account::Anonymous, &si(n), &[1; 32], &[w], &[])
                .unwrap();
        } else {
            db.allocate(1, &Account::Anonymous, &si(n), &[0], 10)
                .unwrap();
            db.write(&si(n), 0, 0, &[n; 10]).unwrap();
            db.close(&si(n), 0).unwrap();
        }
    }
    store.clock.set(now);
    for n in [2u8, 3] {
        db.allocate(1, &Account::Anonymous, &si(n), &[0], 10)
            .unwrap();
        db.write(&si(n), 0, 0, &[n; 10]).unwrap();
        db.close(&si(n), 0).unwrap();
    }
    db.configure_crawler(CrawlerConfig {
        policy: ExpirationPolicy::Age {
            override_seconds: Some(2000),
        },
        ..CrawlerConfig::default()
    });
    run_cycle(&mut db);
    let report = &db.crawler_status().unwrap().history[0];
    assert_eq!(
        (report.examined.total.shares, report.recovered.total.shares),
        (4, 2)
    );
    assert_eq!(
        (
            report.recovered.immutable.shares,
            report.recovered.mutable.shares
        ),
        (1, 1)
    );
    assert!(db.list_shares(&si(0)).unwrap().is_empty());
    assert_eq!(db.list_shares(&si(2)).unwrap(), vec![ShareNum(0)]);
    assert!(store
        .backend
        .keys()
        .iter()
        .all(|k| !k.contains(&StorageIndex(si(0)).to_text())));
    let _ = keys::storage_index_dir(&StorageIndex(si(0)));
}

#[test]
fn history_keeps_only_the_newest_cycles() {
    let store = Store::new();
    let mut db = store.open();
    db.configure_crawler(CrawlerConfig {
        history_limit: 2,
        ..CrawlerConfig::default()
    });
    for _ in 0..5 {
        run_cycle(&mut db);
    }
    let cycles: Vec<u64> = db
        .crawler_status()
        .unwrap()
        .history
        .iter()
        .map(|r| r.cycle)
        .collect();
    assert_eq!(cycles, vec![5, 4]);
}

#[test]
fn a_crawler_stopped_mid_cycle_resumes_with_the_same_totals() {
    let store = Store::new();
    {
        let mut db = store.open();
        store.populate(&mut db);
        for _ in 0..200 {
            db.crawl_slice(Duration::ZERO, false).unwrap();
        }
    }
    let mut db = store.open();
    assert_eq!(
        db.crawler_status().unwrap().current.unwrap().prefixes_done,
        200
    );
    run_cycle(&mut db);
    let resumed = db.crawler_status().unwrap().history[0].clone();
    run_cycle(&mut db);
    let straight = db.crawler_status().unwrap().history[0].clone();
    assert_eq!(resumed.examined, straight.examined);
    assert_eq!(resumed.recovered, straight.recovered);
}

#[test]
fn an_unreadable_database_is_moved_aside_and_rebuilt_by_a_cycle() {
    let store = Store::new();
    {
        let mut db = store.open();
        store.populate(&mut db);
    }
    let _ = std::fs::remove_file(format!("{}-wal", store.path));
    std::fs::write(&store.path, vec![0x42; 8192]).unwrap();
    let clock = store.clock.clone();
    let (mut db, report) = LeaseDb::open_with_clock(
        &store.path,
        store.backend.clone(),
        Config {
            chunk_size: 4096,
            ..Config::default()
        },
        Box::new(move || clock.get()),
    )
    .unwrap();
    let aside = report.moved_aside.expect("moved aside");
    assert_eq!(
        std::fs::read(&aside).unwrap(),
        vec![0x42; 8192],
        "kept for inspection"
    );
    // Requests are served meanwhile, through on-request discovery.
    assert_eq!(db.list_shares(&si(0)).unwrap(), vec![ShareNum(0)]);
    run_cycle(&mut db);
    for n in 0..4 {
        assert_eq!(
            db.list_leases(&si(n)).unwrap().len(),
            1,
            "one starter lease on SI {n}"
        );
    }
}

/// A prefix's report counts what the prefix holds after its pass: a share
/// found there beside a known one is counted with it, and a known share
/// whose objects vanished is not.
#[test]
fn a_prefix_reports_its_shares_after_its_changes() {
    let store = Store::new();
    let mut db = store.open();
    let (kept, vanishing) = (si(0), si(2));
    for s in [&kept, &vanishing] {
        db.allocate(1, &Account::Anonymous, s, &[0], 100).unwrap();
        db.write(s, 0, 0, &[7; 100]).unwrap();
        db.close(s, 0).unwrap();
    }
    // Share 1 of `kept`, written behind this database's back.
    {
        let (_dir, mut other) = store.open_other();
        other
            .allocate(1, &Account::Anonymous, &kept, &[1], 100)
            .unwrap();
        other.write(&kept, 1, 0, &[8; 100]).unwrap();
        other.close(&kept, 1).unwrap();
    }
    store
        .backend
        .delete(&keys::chunk_key(&StorageIndex(vanishing), ShareNum(0), 0))
        .unwrap();
    run_cycle(&mut db);
    let report = &db.crawler_status().unwrap().history[0];
    assert_eq!((report.added, report.disappeared), (1, 1));
    assert_eq!(report.examined.total.shares, 2, "{report:?}");
    assert_eq!(report.lease_ages.values().sum::<u64>(), 2, "{report:?}");
}

/// A backend whose every listing takes `delay` (as a prefix of many shares
/// takes long to reconcile) and is counted; with `refuse_across_prefixes`
/// a listing of more than one prefix fails.
struct SlowListing {
    inner: Rc<MemoryBackend>,
    delay: Cell<Duration>,
    listings: Rc<Cell<u32>>,
    refuse_across_prefixes: bool,
}

impl SlowListing {
    fn new(inner: Rc<MemoryBackend>, delay: Duration) -> SlowListing {
        SlowListing {
            inner,
            delay: Cell::new(delay),
            listings: Rc::new(Cell::new(0)),
            refuse_across_prefixes: false,
        }
    }
}

impl Backend for SlowListing {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        self.listings.set(self.listings.get() + 1);
        std::thread::sleep(self.delay.get());
        if self.refuse_across_prefixes && prefix == keys::ROOT {
            return Err(BackendError::Permanent(
                "no listings across prefixes".into(),
            ));
        }
        self.inner.list(prefix, start_after, limit)
    }
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        self.inner.read(key, offset, length)
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        self.inner.write(key, data)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.inner.delete(key)
    }
    fn available_space(&self) -> Result<u64, BackendError> {
        self.inner.available_space()
    }
}

/// An immutable share of 100 bytes at `si`, leased by the anonymous account.
fn upload<B: Backend>(db: &mut LeaseDb<B>, si: &[u8; 16]) {
    db.allocate(1, &Account::Anonymous, si, &[0], 100).unwrap();
    db.write(si, 0, 0, &[1; 100]).unwrap();
    db.close(si, 0).unwrap();
}

#[test]
fn a_slice_ends_before_a_prefix_that_would_overrun_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db").to_str().unwrap().to_string();
    let backend = SlowListing::new(
        Rc::new(MemoryBackend::new(1 << 40)),
        Duration::from_millis(40),
    );
    let mut db = LeaseDb::open(&path, backend, Config::default()).unwrap().0;
    // A share in each of the first prefixes, so that each is listed on its own.
    for index in 0..8 {
        let (first, _) = Prefix::from_crawl_index(index).unwrap().storage_indexes();
        upload(&mut db, &first.0);
    }
    // Each prefix lists once (40 ms): a second one would end the slice at
    // 80 ms, past its 60 ms, and requests wait for the whole slice.
    match db.crawl_slice(Duration::from_millis(60), true).unwrap() {
        SliceOutcome::Progressed { prefixes, .. } => assert_eq!(prefixes, 1),
        waiting => panic!("a forced slice waited: {waiting:?}"),
    }
    // A budget of several prefixes still runs several.
    match db.crawl_slice(Duration::from_secs(1), true).unwrap() {
        SliceOutcome::Progressed { prefixes, .. } => assert!(prefixes >= 2, "{prefixes}"),
        waiting => panic!("a forced slice waited: {waiting:?}"),
    }
}

/// The four shares of `populate`, a fifth the database never saw (prefix
/// `fa`) and the first one's objects gone behind its back (prefix `aa`);
/// returns the database over `backend`.
fn few_shares(store: &Store, backend: SlowListing) -> LeaseDb<SlowListing> {
    let mut db = store.open();
    store.populate(&mut db);
    let (_dir, mut other) = store.open_other();
    upload(&mut other, &si(40));
    store
        .backend
        .delete(&keys::chunk_key(&StorageIndex(si(0)), ShareNum(0), 0))
        .unwrap();
    drop(db);
    let clock = store.clock.clone();
    let config = Config {
        chunk_size: 4096,
        ..Config::default()
    };
    LeaseDb::open_with_clock(&store.path, backend, config, Box::new(move || clock.get()))
        .unwrap()
        .0
}

/// A cycle over `few_shares` in slices of `budget`, each listing taking
/// `delay`: checks its report and returns how many listings it made.
fn cycle_over_few_shares(refuse_across_prefixes: bool, delay: Duration, budget: Duration) -> u32 {
    let store = Store::new();
    let mut backend = SlowListing::new(store.backend.clone(), Duration::ZERO);
    backend.refuse_across_prefixes = refuse_across_prefixes;
    let listings = backend.listings.clone();
    let mut db = few_shares(&store, backend);
    db.backend().delay.set(delay);
    listings.set(0);
    run_cycle_in_slices(&mut db, budget);
    let report = &db.crawler_status().unwrap().history[0];
    assert_eq!((report.added, report.disappeared), (1, 1), "{report:?}");
    assert_eq!(report.examined.total.shares, 4, "{report:?}");
    // A failed look is not a failed prefix.
    assert_eq!(report.prefixes_failed, vec![]);
    listings.get()
}

/// Five prefixes hold something; each costs at most a look, its own
/// listing and one of the empty prefix after it, and one look ends the
/// cycle (1,024 listings without looking past empty prefixes).
const FEW_SHARES_LISTINGS: u32 = 3 * 5 + 1;

#[test]
fn a_cycle_over_few_shares_lists_past_the_empty_prefixes_at_once() {
    let listings = cycle_over_few_shares(false, Duration::ZERO, Duration::from_secs(60));
    assert!(listings <= FEW_SHARES_LISTINGS, "{listings} listings");
}

#[test]
fn a_look_slower_than_the_slice_budget_still_passes_its_whole_run() {
    // Each listing alone overruns the budget, as on a loaded object store.
    let delay = Duration::from_millis(25);
    let listings = cycle_over_few_shares(false, delay, Duration::from_millis(20));
    assert!(listings <= FEW_SHARES_LISTINGS, "{listings} listings");
}

#[test]
fn a_backend_that_cannot_list_across_prefixes_is_listed_prefix_by_prefix() {
    let listings = cycle_over_few_shares(true, Duration::ZERO, Duration::from_secs(60));
    // The failed look is not tried again within the cycle.
    assert_eq!(listings, 1024 + 1);
}

//! The only file that names generated WIT types: it validates nothing itself,
//! converts WIT values into the engine's, calls the engine, and maps errors
//! back into WIT variants.

use std::cell::RefCell;

use crate::backend::{Backend, BackendError, ListPage, ObjectEntry};
use crate::crawler::{self, CrawlerConfig, CycleReport, ExpirationPolicy, SliceOutcome};
use crate::engine::{self, LeaseDb};
use crate::error::{BadInput, Error};
use crate::ids::ShareNum;
use crate::mutable_write::{ShareWrites, TestOperator, TestVector, WriteVector};
use crate::share::{ShareState, ShareType};
use crate::stats::Usage;
use crate::Account;

// One interface per build: the latest by default, an older or fixture one by feature.
#[cfg(not(any(feature = "wit-v0-1", feature = "fixture-major-1")))]
wit_bindgen::generate!({
    path: "../wit/since_v0.2",
    world: "plugin",
});
#[cfg(feature = "wit-v0-1")]
wit_bindgen::generate!({
    path: "../wit/since_v0.1",
    world: "plugin",
});
#[cfg(all(feature = "fixture-major-1", not(feature = "wit-v0-1")))]
wit_bindgen::generate!({
    path: "../wit/fixtures/major-1",
    world: "plugin",
});

/// The WIT package version this build exports.
const INTERFACE_VERSION: &str = if cfg!(feature = "wit-v0-1") {
    "0.1.0"
} else if cfg!(feature = "fixture-major-1") {
    "1.0.0"
} else {
    "0.2.0"
};

/// This build's version; the `fixture-schema-v2` build poses as the next release.
const PLUGIN_VERSION: &str = if cfg!(feature = "fixture-schema-v2") {
    concat!(env!("CARGO_PKG_VERSION"), "+next")
} else {
    env!("CARGO_PKG_VERSION")
};

use exports::leasedb::plugin::accounting::{self, Guest as AccountingGuest};
use exports::leasedb::plugin::crawler::{self as wcrawler, Guest as CrawlerGuest};
use exports::leasedb::plugin::lifecycle::{self, Guest as LifecycleGuest};
use exports::leasedb::plugin::mutable::{self, Guest as MutableGuest};
use exports::leasedb::plugin::storage::{self, Guest as StorageGuest};
use leasedb::plugin::backend as host;
use leasedb::plugin::types as wit;

/// The database file inside the state directory the host preopens.
const DB_PATH: &str = "/state/leasedb.sqlite3";

/// The host's `backend` import.
struct HostBackend;

impl From<host::BackendError> for BackendError {
    fn from(e: host::BackendError) -> Self {
        match e {
            host::BackendError::NotFound => BackendError::NotFound,
            host::BackendError::Transient(m) => BackendError::Transient(m),
            host::BackendError::Permanent(m) => BackendError::Permanent(m),
            host::BackendError::InvalidKey(m) => BackendError::InvalidKey(m),
        }
    }
}

impl Backend for HostBackend {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        let page = host::list_objects(prefix, start_after, limit)?;
        Ok(ListPage {
            entries: page
                .entries
                .into_iter()
                .map(|e| ObjectEntry {
                    key: e.key,
                    size: e.size,
                })
                .collect(),
            next: page.next,
        })
    }
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        Ok(host::read(key, offset, length)?)
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        Ok(host::write(key, data)?)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        Ok(host::delete(key)?)
    }
    fn available_space(&self) -> Result<u64, BackendError> {
        Ok(host::available_space()?)
    }
}

thread_local! {
    static ENGINE: RefCell<Option<LeaseDb<HostBackend>>> = const { RefCell::new(None) };
}

/// Runs operation `op` on the engine, recording how long it took; fails with
/// not-ready before init and after shutdown.
fn with_engine<T>(
    op: &'static str,
    f: impl FnOnce(&mut LeaseDb<HostBackend>) -> Result<T, Error>,
) -> Result<T, wit::Error> {
    // Start-up (`init`, then `crawler-configure`) succeeds; every call after it traps.
    #[cfg(feature = "fixture-trap-first-call")]
    if !matches!(op, "handover" | "crawler-configure") {
        panic!("fixture-trap-first-call: {op} traps");
    }
    ENGINE.with(|cell| match cell.borrow_mut().as_mut() {
        Some(engine) => {
            let started = std::time::Instant::now();
            let result = f(engine).map_err(Into::into);
            engine
                .latencies
                .record(op, started.elapsed().as_micros() as u64);
            result
        }
        None => Err(wit::Error::NotReady),
    })
}

impl From<BadInput> for wit::BadInput {
    fn from(b: BadInput) -> Self {
        match b {
            BadInput::StorageIndexLength(n) => wit::BadInput::StorageIndexLength(n),
            BadInput::ShareNumber(n) => wit::BadInput::ShareNumber(n),
            BadInput::RangeOverflow { offset, length } => {
                wit::BadInput::RangeOverflow(wit::ByteRange { offset, length })
            }
            BadInput::BeyondAllocated {
                offset,
                length,
                allocated,
            } => wit::BadInput::BeyondAllocated(wit::BeyondAllocated {
                offset,
                length,
                allocated,
            }),
            BadInput::TooLarge {
                what,
                requested,
                limit,
            } => wit::BadInput::TooLarge(wit::TooLarge {
                what: what.to_string(),
                requested,
                limit,
            }),
            BadInput::AccountName(n) => wit::BadInput::AccountName(n),
            BadInput::DuplicateShareNumber(n) => wit::BadInput::DuplicateShareNumber(n),
        }
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::BadInput(b) => wit::Error::BadInput(b.into()),
            Error::NotFound => wit::Error::NotFound,
            Error::NoUpload => wit::Error::NoUpload,
            Error::Conflict(m) => wit::Error::Conflict(m),
            Error::Corrupted(m) => wit::Error::Corrupted(m),
            Error::BadWriteEnabler { node_id } => wit::Error::BadWriteEnabler(node_id),
            Error::ShareBusy(m) => wit::Error::ShareBusy(m),
            Error::Backend(BackendError::Transient(m)) => {
                wit::Error::Backend(wit::BackendFailure::Transient(m))
            }
            Error::Backend(other) => {
                wit::Error::Backend(wit::BackendFailure::Permanent(other.to_string()))
            }
            Error::Database(m) => wit::Error::Database(m),
            Error::NotReady => wit::Error::NotReady,
        }
    }
}

fn account(a: wit::Account) -> Result<Account, Error> {
    match a {
        wit::Account::Anonymous => Ok(Account::Anonymous),
        wit::Account::Named(name) => Ok(Account::named(&name)?),
    }
}

struct Component;

impl StorageGuest for Component {
    fn allocate(
        session: wit::SessionId,
        acct: wit::Account,
        si: wit::StorageIndex,
        share_numbers: Vec<wit::ShareNumber>,
        allocated_size: u64,
    ) -> Result<storage::Allocation, wit::Error> {
        with_engine("allocate", |e| {
            let a = e.allocate(
                session,
                &account(acct)?,
                &si,
                &share_numbers,
                allocated_size,
            )?;
            Ok(storage::Allocation {
                already_have: a.already_have.iter().map(|n| n.0 as u32).collect(),
                allocated: a.allocated.iter().map(|n| n.0 as u32).collect(),
            })
        })
    }

    fn write(
        si: wit::StorageIndex,
        share_number: wit::ShareNumber,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<(), wit::Error> {
        with_engine("write", |e| e.write(&si, share_number, offset, &data))
    }

    fn close(si: wit::StorageIndex, share_number: wit::ShareNumber) -> Result<(), wit::Error> {
        with_engine("close", |e| e.close(&si, share_number))
    }

    fn abort(si: wit::StorageIndex, share_number: wit::ShareNumber) -> Result<(), wit::Error> {
        with_engine("abort", |e| e.abort(&si, share_number))
    }

    fn list_shares(si: wit::StorageIndex) -> Result<Vec<wit::ShareNumber>, wit::Error> {
        with_engine("list-shares", |e| {
            Ok(e.list_shares(&si)?.iter().map(|n| n.0 as u32).collect())
        })
    }

    fn read(
        si: wit::StorageIndex,
        share_number: wit::ShareNumber,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, wit::Error> {
        with_engine("read", |e| e.read(&si, share_number, offset, length))
    }

    fn add_lease(acct: wit::Account, si: wit::StorageIndex) -> Result<u32, wit::Error> {
        with_engine("add-lease", |e| e.add_lease(&account(acct)?, &si))
    }

    fn list_leases(si: wit::StorageIndex) -> Result<Vec<storage::LeaseInfo>, wit::Error> {
        with_engine("list-leases", |e| {
            Ok(e.list_leases(&si)?
                .into_iter()
                .map(|l| storage::LeaseInfo {
                    share_number: l.shnum.0 as u32,
                    account_id: l.account_id as u64,
                    account_name: l.account_name,
                    renewed: l.renewed,
                    expires: l.expires,
                })
                .collect())
        })
    }

    fn list_all_shares(
        after: Option<(wit::StorageIndex, wit::ShareNumber)>,
        limit: u32,
    ) -> Result<Vec<storage::ShareInfo>, wit::Error> {
        with_engine("list-all-shares", |e| {
            let after = after.as_ref().map(|(si, n)| (&si[..], *n));
            Ok(e.list_all_shares(after, limit)?
                .into_iter()
                .map(|r| storage::ShareInfo {
                    storage_index: r.si.0.to_vec(),
                    share_number: r.shnum.0 as u32,
                    share_type: wit_type(r.share_type),
                    state: wit_state(r.state),
                    used_space: r.used_space,
                })
                .collect())
        })
    }
}

fn share_reads(
    reads: std::collections::BTreeMap<ShareNum, Vec<Vec<u8>>>,
) -> Vec<mutable::ShareReads> {
    reads
        .into_iter()
        .map(|(n, data)| mutable::ShareReads {
            share_number: n.0 as u32,
            data,
        })
        .collect()
}

fn ranges(read_vector: &[wit::ByteRange]) -> Vec<(u64, u64)> {
    read_vector.iter().map(|r| (r.offset, r.length)).collect()
}

impl MutableGuest for Component {
    fn read_test_write(
        acct: wit::Account,
        si: wit::StorageIndex,
        write_enabler: Vec<u8>,
        writes: Vec<mutable::ShareWrites>,
        read_vector: Vec<wit::ByteRange>,
    ) -> Result<mutable::ReadTestWriteResult, wit::Error> {
        let writes: Vec<ShareWrites> = writes
            .into_iter()
            .map(|w| ShareWrites {
                shnum: w.share_number,
                tests: w
                    .tests
                    .into_iter()
                    .map(|t| TestVector {
                        offset: t.offset,
                        length: t.length,
                        operator: match t.operator {
                            mutable::TestOperator::Lt => TestOperator::Lt,
                            mutable::TestOperator::Le => TestOperator::Le,
                            mutable::TestOperator::Eq => TestOperator::Eq,
                            mutable::TestOperator::Ne => TestOperator::Ne,
                            mutable::TestOperator::Ge => TestOperator::Ge,
                            mutable::TestOperator::Gt => TestOperator::Gt,
                        },
                        specimen: t.specimen,
                    })
                    .collect(),
                writes: w
                    .writes
                    .into_iter()
                    .map(|v| WriteVector {
                        offset: v.offset,
                        data: v.data,
                    })
                    .collect(),
                new_length: w.new_length,
            })
            .collect();
        with_engine("read-test-write", |e| {
            let r = e.read_test_write(
                &account(acct)?,
                &si,
                &write_enabler,
                &writes,
                &ranges(&read_vector),
            )?;
            Ok(mutable::ReadTestWriteResult {
                success: r.success,
                reads: share_reads(r.reads),
            })
        })
    }

    fn read(
        si: wit::StorageIndex,
        share_numbers: Vec<wit::ShareNumber>,
        read_vector: Vec<wit::ByteRange>,
    ) -> Result<Vec<mutable::ShareReads>, wit::Error> {
        with_engine("read", |e| {
            Ok(share_reads(e.mutable_read(
                &si,
                &share_numbers,
                &ranges(&read_vector),
            )?))
        })
    }
}

fn wit_state(s: ShareState) -> storage::ShareState {
    match s {
        ShareState::Coming => storage::ShareState::Coming,
        ShareState::Stable => storage::ShareState::Stable,
        ShareState::Going => storage::ShareState::Going,
    }
}

fn wit_type(t: ShareType) -> storage::ShareType {
    match t {
        ShareType::Immutable => storage::ShareType::Immutable,
        ShareType::Mutable => storage::ShareType::Mutable,
        ShareType::Corrupted => storage::ShareType::Corrupted,
        ShareType::Unknown => storage::ShareType::Unknown,
    }
}

fn wit_usage(u: Usage) -> accounting::Usage {
    accounting::Usage {
        shares: u.shares,
        bytes: u.bytes,
        sharesets: u.sharesets,
    }
}

impl AccountingGuest for Component {
    fn get_capabilities() -> Result<accounting::Capabilities, wit::Error> {
        with_engine("capabilities", |e| {
            let c = e.capabilities()?;
            Ok(accounting::Capabilities {
                max_immutable_size: c.max_immutable_size,
                max_mutable_size: c.max_mutable_size,
                available_space: c.available_space,
                leases_ignore_secrets: true,
            })
        })
    }

    fn advise_corrupt(
        acct: wit::Account,
        share_type: accounting::AdvisedType,
        si: wit::StorageIndex,
        share_number: wit::ShareNumber,
        reason: String,
    ) -> Result<(), wit::Error> {
        let share_type = match share_type {
            accounting::AdvisedType::Immutable => ShareType::Immutable,
            accounting::AdvisedType::Mutable => ShareType::Mutable,
        };
        with_engine("advise-corrupt", |e| {
            e.advise_corrupt(&account(acct)?, share_type, &si, share_number, &reason)
        })
    }

    fn list_advisories(after: i64, limit: u32) -> Result<Vec<accounting::Advisory>, wit::Error> {
        with_engine("list-advisories", |e| {
            Ok(e.list_advisories(after, limit)?
                .into_iter()
                .map(|a| accounting::Advisory {
                    id: a.id,
                    share_type: match a.share_type {
                        ShareType::Mutable => accounting::AdvisedType::Mutable,
                        _ => accounting::AdvisedType::Immutable,
                    },
                    storage_index: a.si.0.to_vec(),
                    share_number: a.shnum.0 as u32,
                    account_id: a.account_id as u64,
                    reason: a.reason,
                    reported: a.reported,
                })
                .collect())
        })
    }

    fn get_usage(acct: Option<wit::Account>) -> Result<accounting::Usage, wit::Error> {
        with_engine("usage", |e| {
            let acct = acct.map(account).transpose()?;
            Ok(wit_usage(e.usage(acct.as_ref())?))
        })
    }

    fn usage_by_account() -> Result<Vec<accounting::AccountUsage>, wit::Error> {
        with_engine("usage-by-account", |e| {
            Ok(e.usage_by_account()?
                .into_iter()
                .map(|a| accounting::AccountUsage {
                    account_id: a.account_id as u64,
                    name: a.name,
                    usage: wit_usage(a.usage),
                })
                .collect())
        })
    }

    fn get_stats() -> Result<accounting::Stats, wit::Error> {
        with_engine("stats", |e| {
            let s = e.stats()?;
            Ok(accounting::Stats {
                shares: s
                    .shares
                    .into_iter()
                    .map(|c| accounting::ShareCount {
                        state: wit_state(c.state),
                        share_type: wit_type(c.share_type),
                        shares: c.shares,
                        bytes: c.bytes,
                    })
                    .collect(),
                uploads_in_flight: s.uploads_in_flight,
                allocated_in_flight: s.allocated_in_flight,
                latencies: s
                    .latencies
                    .into_iter()
                    .map(|l| accounting::Latency {
                        operation: l.operation,
                        samples: l.samples,
                        p50: l.p50,
                        p90: l.p90,
                        p99: l.p99,
                    })
                    .collect(),
            })
        })
    }
}

fn wit_policy(p: ExpirationPolicy) -> wcrawler::ExpirationPolicy {
    match p {
        ExpirationPolicy::Disabled => wcrawler::ExpirationPolicy::Disabled,
        ExpirationPolicy::Age { override_seconds } => {
            wcrawler::ExpirationPolicy::Age(override_seconds)
        }
        ExpirationPolicy::CutoffDate { cutoff } => wcrawler::ExpirationPolicy::CutoffDate(cutoff),
    }
}

fn wit_counts(c: crawler::Counts) -> wcrawler::Counts {
    wcrawler::Counts {
        shares: c.shares,
        sharesets: c.sharesets,
        bytes: c.bytes,
    }
}

fn wit_tally(t: crawler::Tally) -> wcrawler::Tally {
    wcrawler::Tally {
        total: wit_counts(t.total),
        immutable: wit_counts(t.immutable),
        mutable: wit_counts(t.mutable),
        corrupted: wit_counts(t.corrupted),
    }
}

fn wit_report(r: CycleReport) -> wcrawler::CycleReport {
    let remaining = r.estimate_remaining();
    let cycle = r.estimate_cycle();
    wcrawler::CycleReport {
        cycle: r.cycle,
        started: r.started,
        finished: r.finished,
        policy: wit_policy(r.policy),
        prefixes_done: r.prefixes_done as u32,
        examined: wit_tally(r.examined),
        recovered: wit_tally(r.recovered),
        added: r.added,
        disappeared: r.disappeared,
        leases_expired: r.leases_expired,
        lease_ages: r
            .lease_ages
            .iter()
            .map(|(&days, &leases)| wcrawler::AgeBin { days, leases })
            .collect(),
        corrupt_shares: r
            .corrupt_shares
            .into_iter()
            .map(|s| wcrawler::ShareRef {
                storage_index: s.si,
                share_number: s.shnum as u32,
            })
            .collect(),
        prefixes_failed: r
            .prefixes_failed
            .into_iter()
            .map(|(prefix, reason)| wcrawler::FailedPrefix { prefix, reason })
            .collect(),
        remaining_examined: remaining.map(|(e, _)| wit_tally(e)),
        remaining_recovered: remaining.map(|(_, r)| wit_tally(r)),
        cycle_examined: cycle.map(|(e, _)| wit_tally(e)),
        cycle_recovered: cycle.map(|(_, r)| wit_tally(r)),
    }
}

impl CrawlerGuest for Component {
    fn configure(config: wcrawler::CrawlerConfig) -> Result<(), wit::Error> {
        let policy = match config.policy {
            wcrawler::ExpirationPolicy::Disabled => ExpirationPolicy::Disabled,
            wcrawler::ExpirationPolicy::Age(override_seconds) => {
                ExpirationPolicy::Age { override_seconds }
            }
            wcrawler::ExpirationPolicy::CutoffDate(cutoff) => {
                ExpirationPolicy::CutoffDate { cutoff }
            }
        };
        with_engine("crawler-configure", |e| {
            e.configure_crawler(CrawlerConfig {
                policy,
                history_limit: config.history_limit,
                min_cycle_seconds: config.min_cycle_seconds,
            });
            Ok(())
        })
    }

    fn run_slice(budget_ms: u32, force: bool) -> Result<wcrawler::SliceOutcome, wit::Error> {
        with_engine("crawler-slice", |e| {
            Ok(
                match e.crawl_slice(std::time::Duration::from_millis(budget_ms as u64), force)? {
                    SliceOutcome::Waiting { until } => wcrawler::SliceOutcome::Waiting(until),
                    SliceOutcome::Progressed { prefixes, finished } => {
                        wcrawler::SliceOutcome::Progressed((prefixes as u32, finished))
                    }
                },
            )
        })
    }

    fn status() -> Result<wcrawler::CrawlerStatus, wit::Error> {
        with_engine("crawler-status", |e| {
            let s = e.crawler_status()?;
            Ok(wcrawler::CrawlerStatus {
                current: s.current.map(wit_report),
                history: s.history.into_iter().map(wit_report).collect(),
                next_cycle_at: s.next_cycle_at,
            })
        })
    }
}

impl LifecycleGuest for Component {
    fn init(
        config: lifecycle::Config,
        handover: Option<Vec<u8>>,
    ) -> Result<lifecycle::InitReport, wit::Error> {
        let node_id: [u8; 20] = config.node_id.as_slice().try_into().map_err(|_| {
            wit::Error::BadInput(wit::BadInput::TooLarge(wit::TooLarge {
                what: "node id length (must be 20)".to_string(),
                requested: config.node_id.len() as u64,
                limit: 20,
            }))
        })?;
        let config = engine::Config {
            chunk_size: config.chunk_size as u64,
            lease_duration: config.lease_duration,
            max_immutable_size: config.max_immutable_size,
            max_mutable_size: config.max_mutable_size,
            node_id,
        };
        // Re-init (after a host restart of this instance) starts from scratch.
        ENGINE.with(|cell| cell.borrow_mut().take());
        let (engine, report) = LeaseDb::start(
            DB_PATH,
            HostBackend,
            config,
            Box::new(engine::system_clock),
            handover.as_deref(),
        )
        .map_err(|e| wit::Error::Database(e.to_string()))?;
        ENGINE.with(|cell| *cell.borrow_mut() = Some(engine));
        Ok(lifecycle::InitReport {
            schema_version: report.schema_version,
            uploads_removed: report.uploads_removed,
            uploads_recovered: report.uploads_recovered,
            moved_aside: report.moved_aside,
        })
    }

    fn handover() -> Result<Vec<u8>, wit::Error> {
        with_engine("handover", |e| e.handover())
    }

    fn info() -> lifecycle::PluginInfo {
        lifecycle::PluginInfo {
            version: PLUGIN_VERSION.to_string(),
            interface_version: INTERFACE_VERSION.to_string(),
        }
    }

    #[cfg(not(feature = "wit-v0-1"))]
    fn schema_version() -> u32 {
        crate::db::schema::CURRENT_VERSION
    }

    #[cfg(not(feature = "wit-v0-1"))]
    fn begin_batch() -> Result<(), wit::Error> {
        with_engine("begin-batch", |e| e.begin_batch())
    }

    #[cfg(not(feature = "wit-v0-1"))]
    fn commit_batch() -> Result<(), wit::Error> {
        with_engine("commit-batch", |e| e.commit_batch())
    }

    fn session_opened(session: wit::SessionId) {
        let _ = with_engine("session-opened", |e| {
            e.session_opened(session);
            Ok(())
        });
    }

    fn session_closed(session: wit::SessionId) -> u32 {
        with_engine("session-closed", |e| Ok(e.session_closed(session))).unwrap_or(0)
    }

    fn shutdown() {
        ENGINE.with(|cell| cell.borrow_mut().take());
    }
}

export!(Component);

//! Running the plugin: one sandboxed instance at a time, replaced when it dies.
//!
//! Every export is a method of [`PluginHost`]. Its parts, leaves first:
//! `config.rs` (what starting takes), `engine.rs` (wasmtime and the compile
//! cache), `sandbox.rs` and `clock.rs` (caps, deadline, the clock the plugin
//! sees), `bindings/` and `imports/` (the WIT, per version, and the host's
//! side of it), `launcher.rs` (a fresh instance), `supervisor.rs` (the crash
//! policy), `swap.rs` (hot swap). The host process itself never dies of a
//! plugin fault.

// Generated items carry the WIT doc comments where the WIT has them.
#[allow(
    missing_docs,
    reason = "generated from WIT; not every WIT item is documented"
)]
pub(crate) mod bindings;
pub mod clock;
pub mod config;
pub mod engine;
mod error;
pub mod imports;
mod launcher;
pub mod lock;
pub mod node_id;
pub mod sandbox;
mod state;
mod stderr;
pub mod supervisor;
pub mod swap;
pub mod wit;

use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;

pub use bindings::version::{InterfaceVersion, VersionError};
use bindings::{on_version, Plugin};
pub use bindings::{MAX_VERSION, MIN_VERSION, SUPPORTED};
pub use config::{
    default_crawler_config, HostConfig, DEFAULT_CHUNK_SIZE, DEFAULT_LEASE_DURATION,
    DEFAULT_MAX_IMMUTABLE_SIZE, DEFAULT_MAX_MUTABLE_SIZE,
};
pub use error::{CallError, HostError};
pub use state::HostState;

use crate::backend::ObjectStore;
use bindings::vocabulary::convert;
use engine::{load_component, wasm_engine, CompileOutcome};
use launcher::{link, Launcher};
pub use leasedb_types::Operations;
use supervisor::Supervisor;
use swap::{PreparedPlugin, Preparer, SwapError, SwapReport};
use wit::{
    Account, AccountUsage, AdvisedType, Advisory, Allocation, ByteRange, Capabilities,
    CrawlerConfig, CrawlerStatus, InitReport, LeaseInfo, PluginInfo, ReadTestWriteResult,
    ShareInfo, ShareReads, ShareWrites, SliceOutcome, Stats, Usage,
};

/// The generated bindings' own types, where a call passes one in.
mod g {
    pub use super::bindings::latest::exports::leasedb::plugin::{
        accounting::AdvisedType, crawler::CrawlerConfig, lifecycle::Config, mutable::ShareWrites,
    };
    pub use super::bindings::latest::leasedb::plugin::types::{Account, ByteRange, Error};
}

/// The plugin, sandboxed, serving one call at a time.
pub struct PluginHost {
    /// The running instance, its launcher and the crash policy.
    supervisor: Supervisor,
    /// Whether a group commit is open in the running instance.
    batch: Batch,
    /// This process's claim on the state directory, for as long as the host lives.
    _lock: lock::StateLock,
}

/// The group commit of the running instance ([`PluginHost::begin_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batch {
    /// No batch: every operation commits on its own.
    Closed,
    /// Operations since `begin_batch` await one commit.
    Open,
    /// The instance died with a batch open: nothing since `begin_batch` was
    /// committed, and `commit_batch` must say so.
    Lost,
}

impl PluginHost {
    /// Compiles (or loads from cache) the component, links it and runs `init`.
    pub fn start(config: HostConfig, backend: Arc<dyn ObjectStore>) -> Result<Self, HostError> {
        // First: a second process must not even compile before it is told.
        let lock = lock::StateLock::acquire(&config.state_dir).map_err(HostError::Locked)?;
        let engine = wasm_engine()?;
        let (component, compile_outcome) =
            load_component(engine, &config.wasm, &config.cache_dir())?;
        let (pre, version) = link(engine, &component)?;
        let launcher = Launcher {
            version,
            sandbox: config.sandbox.clone(),
            plugin_dir: config.plugin_dir(),
            cache_dir: config.cache_dir(),
            plugin_config: config.plugin_config()?,
            crawler: config.crawler,
            backend,
            pre,
        };
        Ok(PluginHost {
            supervisor: Supervisor::start(launcher, compile_outcome)?,
            batch: Batch::Closed,
            _lock: lock,
        })
    }

    /// Whether start-up (or the last swap) compiled the component or loaded it from the cache.
    pub fn compile_outcome(&self) -> &CompileOutcome {
        &self.supervisor.compile_outcome
    }

    /// What the latest `init` reported.
    pub fn init_report(&self) -> &InitReport {
        &self.supervisor.init_report
    }

    /// How many times an instance died and was replaced.
    pub fn restarts(&self) -> u64 {
        self.supervisor.restarts
    }

    /// The backend the plugin stores into.
    pub fn backend(&self) -> &Arc<dyn ObjectStore> {
        &self.supervisor.launcher.backend
    }

    /// The interface version the running component speaks.
    pub fn interface_version(&self) -> InterfaceVersion {
        self.supervisor.launcher.version
    }

    /// How many times a freshly swapped version was rolled back for crashing.
    pub fn crash_rollbacks(&self) -> u64 {
        self.supervisor.crash_rollbacks()
    }

    /// Why the last crash rollback happened (or could not).
    pub fn last_crash_rollback(&self) -> Option<&str> {
        self.supervisor.last_crash_rollback()
    }

    /// Prepares swaps into this host's compile cache, under its sandbox.
    pub fn preparer(&self) -> Preparer {
        let launcher = &self.supervisor.launcher;
        Preparer::new(launcher.cache_dir.clone(), launcher.sandbox.clone())
    }

    /// Prepares `wasm` and swaps it in: [`Preparer::prepare`] then [`PluginHost::swap_to`].
    /// A server prepares on the request's thread and posts only `swap_to`.
    pub fn swap(&mut self, wasm: &[u8]) -> Result<SwapReport, SwapError> {
        let prepared = self.preparer().prepare(wasm)?;
        self.swap_to(prepared)
    }

    /// Replaces the running component with `new`, handing over sessions and
    /// in-flight uploads; on failure the old one serves again with its state.
    pub fn swap_to(&mut self, new: PreparedPlugin) -> Result<SwapReport, SwapError> {
        if self.batch != Batch::Closed {
            return Err(SwapError::Handover(CallError::Plugin(
                wit::PluginError::Conflict(
                    "a group commit is open; commit it before swapping".into(),
                ),
            )));
        }
        self.supervisor.swap_to(new)
    }

    /// Opens a group commit: the operations called until [`commit_batch`]
    /// share one durable commit, and none of them may be reported as done
    /// before it returns. Each operation still fails (and rolls back) alone,
    /// unless the instance dies: then the whole batch is lost, and
    /// `commit_batch` fails. With an interface 0.1 plugin it does nothing
    /// (every operation keeps committing on its own).
    ///
    /// [`commit_batch`]: PluginHost::commit_batch
    pub fn begin_batch(&mut self) -> Result<(), CallError> {
        if self.batch != Batch::Closed {
            return Err(CallError::Plugin(wit::PluginError::Conflict(
                "a batch is already open".into(),
            )));
        }
        let opened = self.call_fallible(|p, s| p.begin_batch(s))?;
        if opened {
            self.batch = Batch::Open;
            // The batch's objects are made durable together, before the
            // database names them (`imports::filesystem`).
            self.backend().hold_writes();
        }
        Ok(())
    }

    /// Makes the operations since [`begin_batch`] durable together (one sync
    /// of the database). On an error none of them is: the instance is then
    /// replaced by one that takes over its uploads in flight and settles what
    /// the batch left half-recorded (its memory still reflected operations
    /// whose database effects were rolled back). Without an open batch it does nothing.
    ///
    /// [`begin_batch`]: PluginHost::begin_batch
    pub fn commit_batch(&mut self) -> Result<(), CallError> {
        // Every write the batch made is durable before its commit is (the
        // plugin's own syncs see to it too); this also ends the holding.
        let settled = self.backend().end_holding();
        match (std::mem::replace(&mut self.batch, Batch::Closed), settled) {
            (Batch::Closed, _) => Ok(()),
            (Batch::Lost, settled) => {
                if let Err(e) = settled {
                    tracing::error!("plugin: the object writes of a lost batch: {e}");
                }
                Err(CallError::Unavailable(
                    "the plugin instance died during a group commit; \
                     none of its operations was committed"
                        .into(),
                ))
            }
            (Batch::Open, Err(e)) => {
                // Its commit would name objects that may be lost: the
                // instance goes, and its open transaction with it.
                self.supervisor.restart_after_failed_commit();
                Err(CallError::Unavailable(format!(
                    "the group commit's objects could not be made durable ({e}); \
                     none of its operations was committed"
                )))
            }
            (Batch::Open, Ok(())) => match self.call_fallible(|p, s| p.commit_batch(s)) {
                Ok(()) => Ok(()),
                // The instance died committing: `call` already replaced it.
                Err(e) if e.killed_instance() => Err(e),
                Err(e) => {
                    self.supervisor.restart_after_failed_commit();
                    Err(e)
                }
            },
        }
    }

    /// Whether a group commit is open (it closes by `commit_batch`, and is
    /// lost if the instance dies).
    pub fn batch_open(&self) -> bool {
        self.batch == Batch::Open
    }

    /// Flushes and closes the database; later calls fail with not-ready.
    pub fn shutdown(&mut self) -> Result<(), CallError> {
        self.call(|p, s| on_version!(p, p => p.leasedb_plugin_lifecycle().call_shutdown(s)))
    }

    /// A call whose WIT result is `result<T, error>`, answered in the vocabulary's types.
    fn call_fallible<G: bindings::vocabulary::Convert<V>, V>(
        &mut self,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<Result<G, g::Error>>,
    ) -> Result<V, CallError> {
        match self.call(f)? {
            Ok(answer) => Ok(convert(answer)),
            Err(refused) => Err(CallError::Plugin(convert(refused))),
        }
    }

    /// Runs one export under the deadline and memory cap; replaces the instance if it dies.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        let answer = self.supervisor.call(f);
        if let Err(e) = &answer {
            if e.killed_instance() && self.batch == Batch::Open {
                // Its open transaction died with it.
                self.batch = Batch::Lost;
            }
        }
        answer
    }
}

/// Every export, converting between the shared vocabulary and the generated
/// bindings (`bindings::vocabulary`) on the way in and out.
impl Operations for PluginHost {
    type Error = CallError;

    /// Starts uploads of `share_numbers` of `si` for `session`.
    fn allocate(
        &mut self,
        session: u64,
        account: &Account,
        si: &[u8],
        share_numbers: &[u32],
        allocated_size: u64,
    ) -> Result<Allocation, CallError> {
        let si = si.to_vec();
        let account: g::Account = convert(account.clone());
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_storage().call_allocate(
                    s,
                    session,
                    &account,
                    &si,
                    share_numbers,
                    allocated_size,
                )
            })
        })
    }

    /// Writes share data at `offset` of an upload in progress.
    fn write(
        &mut self,
        si: &[u8],
        share_number: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), CallError> {
        let si = si.to_vec();
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_storage()
                    .call_write(s, &si, share_number, offset, data)
            })
        })
    }

    /// Finishes an upload: the share becomes STABLE with the uploader's lease.
    fn close(&mut self, si: &[u8], share_number: u32) -> Result<(), CallError> {
        let si = si.to_vec();
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_close(s, &si, share_number)),
        )
    }

    /// Abandons an upload; its row and objects are removed.
    fn abort(&mut self, si: &[u8], share_number: u32) -> Result<(), CallError> {
        let si = si.to_vec();
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_abort(s, &si, share_number)),
        )
    }

    /// Share numbers of the valid, complete shares of `si`.
    fn list_shares(&mut self, si: &[u8]) -> Result<Vec<u32>, CallError> {
        let si = si.to_vec();
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_list_shares(s, &si)),
        )
    }

    /// Up to `length` bytes of share data from `offset`; truncated at the end.
    fn read(
        &mut self,
        si: &[u8],
        share_number: u32,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, CallError> {
        let si = si.to_vec();
        // Share data is passed through as is, not converted byte by byte.
        self.call(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_storage()
                    .call_read(s, &si, share_number, offset, length)
            })
        })?
        .map_err(|e| CallError::Plugin(convert(e)))
    }

    /// Adds or renews `account`'s lease on every share of `si`; returns how many shares.
    fn add_lease(&mut self, account: &Account, si: &[u8]) -> Result<u32, CallError> {
        let si = si.to_vec();
        let account: g::Account = convert(account.clone());
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_add_lease(s, &account, &si)),
        )
    }

    /// Every lease on the shares of `si`.
    fn list_leases(&mut self, si: &[u8]) -> Result<Vec<LeaseInfo>, CallError> {
        let si = si.to_vec();
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_list_leases(s, &si)),
        )
    }

    /// Up to `limit` shares in (storage index, share number) order, after `after`.
    fn list_all_shares(
        &mut self,
        after: Option<(&[u8], u32)>,
        limit: u32,
    ) -> Result<Vec<ShareInfo>, CallError> {
        let after = after.map(|(si, shnum)| (si.to_vec(), shnum));
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_storage().call_list_all_shares(
                    s,
                    after.as_ref().map(|(si, shnum)| (si, *shnum)),
                    limit,
                )
            })
        })
    }

    /// Mutable read-test-write on one SI: checks the write enabler, reads, tests, and
    /// applies the writes if every test holds.
    #[allow(
        clippy::redundant_slicing,
        reason = "the slice is converted for an 0.1 plugin and passed as is to the latest"
    )]
    fn read_test_write(
        &mut self,
        account: &Account,
        si: &[u8],
        write_enabler: &[u8],
        writes: &[ShareWrites],
        read_vector: &[ByteRange],
    ) -> Result<ReadTestWriteResult, CallError> {
        let si = si.to_vec();
        let account: g::Account = convert(account.clone());
        let writes: Vec<g::ShareWrites> = convert(writes.to_vec());
        let writes = &writes[..];
        let read_vector: Vec<g::ByteRange> = convert(read_vector.to_vec());
        self.call_fallible(|p, s| {
            on_version!(p, p => {
            p.leasedb_plugin_mutable().call_read_test_write(
                s,
                &account,
                &si,
                write_enabler,
                &writes[..],
                &read_vector[..],
            )
        }; writes)
        })
    }

    /// Mutable reads over `share_numbers` (empty: every valid mutable share of `si`).
    fn mutable_read(
        &mut self,
        si: &[u8],
        share_numbers: &[u32],
        read_vector: &[ByteRange],
    ) -> Result<Vec<ShareReads>, CallError> {
        let si = si.to_vec();
        let read_vector: Vec<g::ByteRange> = convert(read_vector.to_vec());
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_mutable()
                    .call_read(s, &si, share_numbers, &read_vector)
            })
        })
    }

    /// Limits and free space, as advertised to clients.
    fn get_capabilities(&mut self) -> Result<Capabilities, CallError> {
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_accounting().call_get_capabilities(s)),
        )
    }

    /// Records a client's report that a share is corrupt; nothing else changes.
    fn advise_corrupt(
        &mut self,
        account: &Account,
        share_type: AdvisedType,
        si: &[u8],
        share_number: u32,
        reason: &str,
    ) -> Result<(), CallError> {
        let si = si.to_vec();
        let account: g::Account = convert(account.clone());
        let share_type: g::AdvisedType = convert(share_type);
        self.call_fallible(|p, s| {
            on_version!(p, p => {
            p.leasedb_plugin_accounting().call_advise_corrupt(
                s,
                &account,
                share_type,
                &si,
                share_number,
                reason,
            )
        }; share_type)
        })
    }

    /// Corruption reports with id greater than `after`, oldest first.
    fn list_advisories(&mut self, after: i64, limit: u32) -> Result<Vec<Advisory>, CallError> {
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_accounting()
                    .call_list_advisories(s, after, limit)
            })
        })
    }

    /// What `account` leases; `None`: what any account leases.
    fn get_usage(&mut self, account: Option<&Account>) -> Result<Usage, CallError> {
        let account: Option<g::Account> = convert(account.cloned());
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_accounting()
                    .call_get_usage(s, account.as_ref())
            })
        })
    }

    /// Usage of every account holding a lease.
    fn usage_by_account(&mut self) -> Result<Vec<AccountUsage>, CallError> {
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_accounting().call_usage_by_account(s)),
        )
    }

    /// Share counts by state and type, in-flight uploads, latencies.
    fn get_stats(&mut self) -> Result<Stats, CallError> {
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_accounting().call_get_stats(s)),
        )
    }

    /// Tells the plugin a client session began.
    fn session_opened(&mut self, session: u64) -> Result<(), CallError> {
        self.call(|p, s| on_version!(p, p => p.leasedb_plugin_lifecycle().call_session_opened(s, session)))
    }

    /// Tells the plugin a session ended; returns how many uploads were aborted.
    fn session_closed(&mut self, session: u64) -> Result<u32, CallError> {
        self.call(|p, s| on_version!(p, p => p.leasedb_plugin_lifecycle().call_session_closed(s, session)))
    }

    /// Changes the crawler's policy; kept for instances started after a fault too.
    fn crawler_configure(&mut self, config: CrawlerConfig) -> Result<(), CallError> {
        self.supervisor.launcher.crawler = config;
        let config: g::CrawlerConfig = convert(config);
        self.call_fallible(|p, s| on_version!(p, p => p.leasedb_plugin_crawler().call_configure(s, config); config))
    }

    /// Processes whole crawler prefixes for about `budget` (at least one);
    /// `force` starts a new cycle without waiting for the minimum cycle time.
    fn crawler_run_slice(
        &mut self,
        budget: Duration,
        force: bool,
    ) -> Result<SliceOutcome, CallError> {
        let ms = budget.as_millis().min(u32::MAX as u128) as u32;
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_crawler().call_run_slice(s, ms, force)),
        )
    }

    /// The crawler's current cycle and history.
    fn crawler_status(&mut self) -> Result<CrawlerStatus, CallError> {
        self.call_fallible(|p, s| on_version!(p, p => p.leasedb_plugin_crawler().call_status(s)))
    }

    /// The plugin's version and interface version.
    fn info(&mut self) -> Result<PluginInfo, CallError> {
        self.call(|p, s| on_version!(p, p => p.leasedb_plugin_lifecycle().call_info(s)))
            .map(convert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host can be handed to the thread (or task) that will own it.
    #[test]
    fn plugin_host_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<PluginHost>();
    }
}

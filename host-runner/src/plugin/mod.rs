//! Running the plugin: one sandboxed instance at a time, replaced when it dies.
//!
//! Every export is a method of [`PluginHost`]. A call that traps, runs past its
//! deadline or exhausts its memory kills only that instance: the host drops its
//! store, starts a fresh one (re-running `init` with the same settings) and the
//! next call is served by it. The host process itself never dies of a plugin fault.

// Generated items carry the WIT doc comments where the WIT has them.
#[allow(
    missing_docs,
    reason = "generated from WIT; not every WIT item is documented"
)]
pub(crate) mod bindings;
pub mod clock;
pub mod engine;
pub mod lock;
mod error;
pub mod imports;
pub mod node_id;
pub mod sandbox;
mod state;
pub mod swap;
pub mod wit;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Store, Trap};

pub use error::{CallError, HostError};
pub use state::HostState;

use crate::backend::ObjectStore;
use crate::plugin::engine::{load_component, wasm_engine, CompileOutcome};
use crate::plugin::node_id::NodeId;
use crate::plugin::sandbox::SandboxPolicy;
pub use bindings::version::{InterfaceVersion, VersionError};
use bindings::LinkError;
pub(crate) use bindings::{on_version, Plugin, PluginPre};
pub use bindings::{MAX_VERSION, MIN_VERSION, SUPPORTED};
use wit::{
    Account, AccountUsage, AdvisedType, Advisory, Allocation, ByteRange, Capabilities,
    CrawlerConfig, CrawlerStatus, ExpirationPolicy, InitReport, LeaseInfo, PluginInfo,
    ReadTestWriteResult, ShareInfo, ShareReads, ShareWrites, SliceOutcome, Stats, Usage,
};

/// Default preferred chunk size of new shares (SPEC §3).
pub const DEFAULT_CHUNK_SIZE: u32 = 512 << 10;

/// Default lease duration (SPEC §1).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(31 * 86_400);

/// Default largest immutable share accepted.
pub const DEFAULT_MAX_IMMUTABLE_SIZE: u64 = 64 << 30;

/// Default largest mutable share data accepted.
pub const DEFAULT_MAX_MUTABLE_SIZE: u64 = 64 << 30;

/// Everything needed to start the plugin, besides its backend.
#[derive(Clone)]
pub struct HostConfig {
    /// The host's state directory: the compile cache goes in `cache/`, the plugin's
    /// private directory (its database) is `plugin/`.
    pub state_dir: PathBuf,
    /// The component to run; the shipped plugin by default.
    pub wasm: Cow<'static, [u8]>,
    /// Memory cap, call deadline, clock.
    pub sandbox: SandboxPolicy,
    /// Preferred chunk size of new shares, in bytes.
    pub chunk_size: u32,
    /// Lease duration granted by add or renew.
    pub lease_duration: Duration,
    /// Largest immutable share accepted, in bytes.
    pub max_immutable_size: u64,
    /// Largest mutable share data accepted, in bytes.
    pub max_mutable_size: u64,
    /// This server's node id; `None` loads (or creates) `<state_dir>/node-id`.
    pub node_id: Option<NodeId>,
    /// Expiration policy, history length and minimum cycle time of the crawler.
    pub crawler: CrawlerConfig,
}

/// The crawler's defaults (SPEC §8): no expiry, 10 cycles of history, 12 h between cycles.
pub fn default_crawler_config() -> CrawlerConfig {
    CrawlerConfig {
        policy: ExpirationPolicy::Disabled,
        history_limit: 10,
        min_cycle_seconds: 12 * 3600,
    }
}

impl HostConfig {
    /// The shipped plugin with default limits, keeping its state under `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            state_dir: state_dir.into(),
            wasm: Cow::Borrowed(leasedb_plugin_artifacts::PLUGIN_BYTES),
            sandbox: SandboxPolicy::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            lease_duration: DEFAULT_LEASE_DURATION,
            max_immutable_size: DEFAULT_MAX_IMMUTABLE_SIZE,
            max_mutable_size: DEFAULT_MAX_MUTABLE_SIZE,
            node_id: None,
            crawler: default_crawler_config(),
        }
    }

    /// Where compiled components are cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.state_dir.join("cache")
    }

    /// The plugin's private directory, seen inside the sandbox as `/state`.
    pub fn plugin_dir(&self) -> PathBuf {
        self.state_dir.join("plugin")
    }

    fn plugin_config(&self) -> Result<wit::Config, HostError> {
        let node_id = match self.node_id {
            Some(id) => id,
            None => NodeId::load_or_create(&self.state_dir)?,
        };
        Ok(wit::Config {
            chunk_size: self.chunk_size,
            lease_duration: self.lease_duration.as_secs(),
            max_immutable_size: self.max_immutable_size,
            max_mutable_size: self.max_mutable_size,
            node_id: node_id.0.to_vec(),
        })
    }
}

/// A live instance: its store and the handles to its exports.
pub(crate) struct Instance {
    pub(crate) store: Store<HostState>,
    pub(crate) plugin: Plugin,
}

/// What every (re)start of an instance needs.
pub(crate) struct Launcher {
    pub(crate) sandbox: SandboxPolicy,
    pub(crate) plugin_dir: PathBuf,
    /// Where compiled components are cached (a swap compiles into it too).
    pub(crate) cache_dir: PathBuf,
    pub(crate) plugin_config: wit::Config,
    pub(crate) crawler: CrawlerConfig,
    pub(crate) backend: Arc<dyn ObjectStore>,
    pub(crate) pre: PluginPre,
    /// The interface version the component speaks.
    pub(crate) version: InterfaceVersion,
}

/// The plugin, sandboxed, serving one call at a time.
pub struct PluginHost {
    pub(crate) launcher: Launcher,
    pub(crate) compile_outcome: CompileOutcome,
    /// `None` after a death whose restart failed (or is backing off); a later call tries again.
    pub(crate) instance: Option<Instance>,
    pub(crate) init_report: InitReport,
    pub(crate) restarts: u64,
    /// Crash policy and the version before the last hot swap (`crate::plugin::swap`).
    pub(crate) guard: crate::plugin::swap::Guard,
    /// Whether a group commit is open in the running instance.
    pub(crate) batch: Batch,
    /// This process's claim on the state directory, for as long as the host lives.
    _lock: lock::StateLock,
}

/// The group commit of the running instance ([`PluginHost::begin_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Batch {
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
        let (instance, init_report) = launcher.launch(None)?;
        Ok(PluginHost {
            launcher,
            compile_outcome,
            instance: Some(instance),
            init_report,
            restarts: 0,
            guard: crate::plugin::swap::Guard::default(),
            batch: Batch::Closed,
            _lock: lock,
        })
    }

    /// Whether start-up compiled the component or loaded it from the cache.
    pub fn compile_outcome(&self) -> &CompileOutcome {
        &self.compile_outcome
    }

    /// What the latest `init` reported.
    pub fn init_report(&self) -> &InitReport {
        &self.init_report
    }

    /// How many times an instance died and was replaced.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The backend the plugin stores into.
    pub fn backend(&self) -> &Arc<dyn ObjectStore> {
        &self.launcher.backend
    }

    /// Starts uploads of `share_numbers` of `si` for `session`.
    pub fn allocate(
        &mut self,
        session: u64,
        account: &Account,
        si: &[u8],
        share_numbers: &[u32],
        allocated_size: u64,
    ) -> Result<Allocation, CallError> {
        let si = si.to_vec();
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_storage().call_allocate(
                    s,
                    session,
                    account,
                    &si,
                    share_numbers,
                    allocated_size,
                )
            })
        })
    }

    /// Writes share data at `offset` of an upload in progress.
    pub fn write(
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
    pub fn close(&mut self, si: &[u8], share_number: u32) -> Result<(), CallError> {
        let si = si.to_vec();
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_close(s, &si, share_number)),
        )
    }

    /// Abandons an upload; its row and objects are removed.
    pub fn abort(&mut self, si: &[u8], share_number: u32) -> Result<(), CallError> {
        let si = si.to_vec();
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_abort(s, &si, share_number)),
        )
    }

    /// Share numbers of the valid, complete shares of `si`.
    pub fn list_shares(&mut self, si: &[u8]) -> Result<Vec<u32>, CallError> {
        let si = si.to_vec();
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_list_shares(s, &si)),
        )
    }

    /// Up to `length` bytes of share data from `offset`; truncated at the end.
    pub fn read(
        &mut self,
        si: &[u8],
        share_number: u32,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, CallError> {
        let si = si.to_vec();
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_storage()
                    .call_read(s, &si, share_number, offset, length)
            })
        })
    }

    /// Adds or renews `account`'s lease on every share of `si`; returns how many shares.
    pub fn add_lease(&mut self, account: &Account, si: &[u8]) -> Result<u32, CallError> {
        let si = si.to_vec();
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_add_lease(s, account, &si)),
        )
    }

    /// Every lease on the shares of `si`.
    pub fn list_leases(&mut self, si: &[u8]) -> Result<Vec<LeaseInfo>, CallError> {
        let si = si.to_vec();
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_storage().call_list_leases(s, &si)),
        )
    }

    /// Up to `limit` shares in (storage index, share number) order, after `after`.
    pub fn list_all_shares(
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
    pub fn read_test_write(
        &mut self,
        account: &Account,
        si: &[u8],
        write_enabler: &[u8],
        writes: &[ShareWrites],
        read_vector: &[ByteRange],
    ) -> Result<ReadTestWriteResult, CallError> {
        let si = si.to_vec();
        self.call_fallible(|p, s| {
            on_version!(p, p => {
            p.leasedb_plugin_mutable().call_read_test_write(
                s,
                account,
                &si,
                write_enabler,
                &writes[..],
                read_vector,
            )
        }; writes)
        })
    }

    /// Mutable reads over `share_numbers` (empty: every valid mutable share of `si`).
    pub fn mutable_read(
        &mut self,
        si: &[u8],
        share_numbers: &[u32],
        read_vector: &[ByteRange],
    ) -> Result<Vec<ShareReads>, CallError> {
        let si = si.to_vec();
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_mutable()
                    .call_read(s, &si, share_numbers, read_vector)
            })
        })
    }

    /// Limits and free space, as advertised to clients.
    pub fn get_capabilities(&mut self) -> Result<Capabilities, CallError> {
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_accounting().call_get_capabilities(s)),
        )
    }

    /// Records a client's report that a share is corrupt; nothing else changes.
    pub fn advise_corrupt(
        &mut self,
        account: &Account,
        share_type: AdvisedType,
        si: &[u8],
        share_number: u32,
        reason: &str,
    ) -> Result<(), CallError> {
        let si = si.to_vec();
        self.call_fallible(|p, s| {
            on_version!(p, p => {
            p.leasedb_plugin_accounting().call_advise_corrupt(
                s,
                account,
                share_type,
                &si,
                share_number,
                reason,
            )
        }; share_type)
        })
    }

    /// Corruption reports with id greater than `after`, oldest first.
    pub fn list_advisories(&mut self, after: i64, limit: u32) -> Result<Vec<Advisory>, CallError> {
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_accounting()
                    .call_list_advisories(s, after, limit)
            })
        })
    }

    /// What `account` leases; `None`: what any account leases.
    pub fn get_usage(&mut self, account: Option<&Account>) -> Result<Usage, CallError> {
        let account = account.cloned();
        self.call_fallible(|p, s| {
            on_version!(p, p => {
                p.leasedb_plugin_accounting()
                    .call_get_usage(s, account.as_ref())
            })
        })
    }

    /// Usage of every account holding a lease.
    pub fn usage_by_account(&mut self) -> Result<Vec<AccountUsage>, CallError> {
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_accounting().call_usage_by_account(s)),
        )
    }

    /// Share counts by state and type, in-flight uploads, latencies.
    pub fn get_stats(&mut self) -> Result<Stats, CallError> {
        self.call_fallible(
            |p, s| on_version!(p, p => p.leasedb_plugin_accounting().call_get_stats(s)),
        )
    }

    /// Tells the plugin a client session began.
    pub fn session_opened(&mut self, session: u64) -> Result<(), CallError> {
        self.call(|p, s| on_version!(p, p => p.leasedb_plugin_lifecycle().call_session_opened(s, session)))
    }

    /// Tells the plugin a session ended; returns how many uploads were aborted.
    pub fn session_closed(&mut self, session: u64) -> Result<u32, CallError> {
        self.call(|p, s| on_version!(p, p => p.leasedb_plugin_lifecycle().call_session_closed(s, session)))
    }

    /// Processes whole crawler prefixes for about `budget` (at least one);
    /// `force` starts a new cycle without waiting for the minimum cycle time.
    pub fn crawler_run_slice(
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
    pub fn crawler_status(&mut self) -> Result<CrawlerStatus, CallError> {
        self.call_fallible(|p, s| on_version!(p, p => p.leasedb_plugin_crawler().call_status(s)))
    }

    /// Changes the crawler's policy; kept for instances started after a fault too.
    pub fn crawler_configure(&mut self, config: CrawlerConfig) -> Result<(), CallError> {
        self.launcher.crawler = config;
        self.call_fallible(|p, s| on_version!(p, p => p.leasedb_plugin_crawler().call_configure(s, config); config))
    }

    /// The plugin's version and interface version.
    pub fn info(&mut self) -> Result<PluginInfo, CallError> {
        self.call(|p, s| on_version!(p, p => p.leasedb_plugin_lifecycle().call_info(s)))
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
        match std::mem::replace(&mut self.batch, Batch::Closed) {
            Batch::Closed => Ok(()),
            Batch::Lost => Err(CallError::Unavailable(
                "the plugin instance died during a group commit; \
                 none of its operations was committed"
                    .into(),
            )),
            Batch::Open => match self.call_fallible(|p, s| p.commit_batch(s)) {
                Ok(()) => Ok(()),
                // The instance died committing: `call` already replaced it.
                Err(e) if e.killed_instance() => Err(e),
                Err(e) => {
                    self.restart_after_failed_commit();
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

    /// Replaces the instance after a failed group commit: its database
    /// transaction is gone, but its memory still holds every upload in
    /// flight. Like a hot swap, the next instance takes them over (settling
    /// whatever the lost batch had recorded), so only the batch fails; a cold
    /// start is the fallback. If that fails too, the next call tries again.
    fn restart_after_failed_commit(&mut self) {
        let mut blob = None;
        if let Some(mut old) = self.instance.take() {
            arm(&mut old.store, &self.launcher.sandbox);
            if let Ok(Ok(state)) = on_version!(&old.plugin, p => p.leasedb_plugin_lifecycle().call_handover(&mut old.store)) {
                blob = Some(state);
            }
            arm(&mut old.store, &self.launcher.sandbox);
            let _ = on_version!(&old.plugin, p => p.leasedb_plugin_lifecycle().call_shutdown(&mut old.store));
        }
        self.restarts += 1;
        if let Some(blob) = blob {
            match self.launcher.launch(Some(&blob)) {
                Ok((instance, report)) => {
                    self.instance = Some(instance);
                    self.init_report = report;
                    return;
                }
                Err(e) => eprintln!("plugin: the uploads in flight could not be carried over: {e}"),
            }
        }
        match self.relaunch() {
            Ok(instance) => self.instance = Some(instance),
            Err(e) => eprintln!("plugin: restarting after a failed group commit: {e}"),
        }
    }

    /// Flushes and closes the database; later calls fail with not-ready.
    pub fn shutdown(&mut self) -> Result<(), CallError> {
        self.call(|p, s| on_version!(p, p => p.leasedb_plugin_lifecycle().call_shutdown(s)))
    }

    /// A call whose WIT result is `result<T, error>`.
    fn call_fallible<T>(
        &mut self,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<Result<T, wit::PluginError>>,
    ) -> Result<T, CallError> {
        self.call(f)?.map_err(CallError::Plugin)
    }

    /// Runs one export under the deadline and memory cap; replaces the instance if it dies.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        let mut instance = match self.instance.take() {
            Some(instance) => instance,
            // Backs off after repeated crashes (`crate::plugin::swap`).
            None => self.revive()?,
        };
        arm(&mut instance.store, &self.launcher.sandbox);
        match f(&instance.plugin, &mut instance.store) {
            Ok(value) => {
                self.instance = Some(instance);
                self.guard.served();
                Ok(value)
            }
            Err(error) => {
                let failure = classify(&instance.store, error);
                // A trapped instance cannot be entered again; drop it with its store.
                drop(instance);
                if self.batch == Batch::Open {
                    // Its open transaction died with it.
                    self.batch = Batch::Lost;
                }
                self.restarts += 1;
                // Restart now (or after a back-off, or roll a fresh swap back) so the
                // next call finds a ready instance; if that fails, a later call tries again.
                self.after_death();
                Err(failure)
            }
        }
    }

    /// A fresh instance in place of a dead one; its init report becomes the latest.
    pub(crate) fn relaunch(&mut self) -> Result<Instance, HostError> {
        let (instance, report) = self.launcher.launch(None)?;
        self.init_report = report;
        Ok(instance)
    }
}

impl Launcher {
    /// A fresh store and instance, initialised with the configured settings;
    /// with a handover blob (a hot swap), it takes over that state.
    pub(crate) fn launch(
        &self,
        handover: Option<&[u8]>,
    ) -> Result<(Instance, InitReport), HostError> {
        let wasi = self.sandbox.wasi_ctx(&self.plugin_dir)?;
        let state = HostState::new(wasi, self.sandbox.memory_cap(), self.backend.clone());
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        arm(&mut store, &self.sandbox);
        let plugin = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| match classify(&store, e) {
                CallError::Trapped(why) => HostError::Instantiate(why),
                other => HostError::Init(other),
            })?;
        arm(&mut store, &self.sandbox);
        let config = &self.plugin_config;
        let report = match on_version!(&plugin, p => p.leasedb_plugin_lifecycle()
                .call_init(&mut store, &config, handover); config)
        {
            Ok(Ok(report)) => report,
            Ok(Err(refused)) => return Err(HostError::Init(CallError::Plugin(refused))),
            Err(error) => return Err(HostError::Init(classify(&store, error))),
        };
        arm(&mut store, &self.sandbox);
        let crawler = self.crawler;
        match on_version!(&plugin, p => p.leasedb_plugin_crawler().call_configure(&mut store, crawler); crawler)
        {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => return Err(HostError::Init(CallError::Plugin(refused))),
            Err(error) => return Err(HostError::Init(classify(&store, error))),
        }
        Ok((Instance { store, plugin }, report))
    }
}

impl Drop for PluginHost {
    /// Lets the plugin close its database cleanly; a failure here has nobody to report to.
    fn drop(&mut self) {
        if let Some(mut instance) = self.instance.take() {
            arm(&mut instance.store, &self.launcher.sandbox);
            let _ = on_version!(&instance.plugin, p => p.leasedb_plugin_lifecycle()
                .call_shutdown(&mut instance.store));
        }
    }
}

/// Reads the component's interface version, refuses it unless this host runs
/// it, and links it against the host's imports (WASI and the backend) once; a
/// component whose imports the host cannot satisfy is refused here.
pub(crate) fn link(
    engine: &wasmtime::Engine,
    component: &Component,
) -> Result<(PluginPre, InterfaceVersion), HostError> {
    PluginPre::link(engine, component).map_err(|e| match e {
        LinkError::Version(e) => HostError::Version(e),
        LinkError::Link(why) => HostError::Instantiate(why),
    })
}

/// Starts a call's deadline and forgets earlier memory refusals.
pub(crate) fn arm(store: &mut Store<HostState>, sandbox: &SandboxPolicy) {
    store.set_epoch_deadline(sandbox.deadline_ticks());
    store.data_mut().limits.reset();
}

/// Tells why an instance died: the memory cap, the deadline, or anything else.
pub(crate) fn classify(store: &Store<HostState>, error: wasmtime::Error) -> CallError {
    if store.data().limits.exhausted() {
        CallError::MemoryExhausted
    } else if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        CallError::Deadline
    } else {
        // The root cause is the trap or host error itself; the rest is a multi-line backtrace.
        CallError::Trapped(error.root_cause().to_string())
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

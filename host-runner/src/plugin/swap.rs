//! Hot swap (SPEC §11): replace the running plugin with another build without
//! restarting the host or dropping sessions, and roll back when it fails.
//!
//! A swap has two halves:
//!
//! 1. [`Preparer::prepare`], off the request path (any thread): compile (or load
//!    from the cache), read the interface version from the export names and
//!    refuse it unless this host runs it, link, and ask a throwaway instance
//!    which schema version it writes (interface 0.2 and later).
//! 2. [`PluginHost::swap_to`], on the thread that owns the host, so every other
//!    call is held (queued) while it runs and the one in flight has finished:
//!    refuse a downgrade across a schema change; take the old instance's
//!    handover blob; shut it down; snapshot the database directory if the
//!    schema may change; start the new component on the same state directory
//!    with the blob (its migrations run in a transaction); check it with its
//!    first calls (`info`, `get-stats`).
//!
//! Any failure after the old instance stopped rolls back: the new instance is
//! dropped, the snapshot (if any) is put back, and the old component takes the
//! same blob again — handover state is just data, so the old version can take
//! it back. Nothing a client did is lost, because no client call ran in between.
//!
//! The crash policy lives here too ([`Guard`]): an instance that dies is
//! restarted at once a few times in a row, then with exponential back-off
//! (calls fail fast with "unavailable" meanwhile, never block the thread); and a
//! freshly swapped version that dies [`PROBATION_DEATHS`] times within its first
//! [`PROBATION_CALLS`] calls is replaced by the version it replaced, when that
//! version can still read the database.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;

use crate::backend::MemoryStore;
use crate::plugin::engine::{load_component, wasm_engine, CompileOutcome};
use crate::plugin::sandbox::SandboxPolicy;
use crate::plugin::wit::PluginInfo;
use crate::plugin::{
    arm, classify, link, on_version, CallError, HostError, HostState, Instance, InterfaceVersion,
    PluginHost, PluginPre, VersionError,
};

/// Deaths in a row that are restarted at once; later ones back off.
pub const IMMEDIATE_RESTARTS: u32 = 3;

/// First back-off after [`IMMEDIATE_RESTARTS`]; doubled per further death.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Longest back-off between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Calls a freshly swapped version serves on probation.
pub const PROBATION_CALLS: u32 = 100;

/// Deaths during probation that roll a swap back.
pub const PROBATION_DEATHS: u32 = 3;

/// Compiles, version-checks and links candidate components; cheap to clone and
/// `Send`, so a request handler can prepare a swap on its own thread.
#[derive(Clone)]
pub struct Preparer {
    cache_dir: PathBuf,
    sandbox: SandboxPolicy,
}

/// A component ready to swap in: compiled, of a supported interface, linked.
pub struct PreparedPlugin {
    pre: PluginPre,
    version: InterfaceVersion,
    /// The schema version it writes; `None` for interface 0.1, which cannot say.
    schema_version: Option<u32>,
    compile_outcome: CompileOutcome,
    /// Time spent preparing (compiling, linking, probing), off the request path.
    prepare_time: Duration,
}

impl PreparedPlugin {
    /// The interface version the component speaks.
    pub fn version(&self) -> InterfaceVersion {
        self.version
    }

    /// The schema version it writes, when its interface can say (0.2 and later).
    pub fn schema_version(&self) -> Option<u32> {
        self.schema_version
    }
}

/// What a successful swap did.
#[derive(Debug, Clone)]
pub struct SwapReport {
    /// The version that served before.
    pub old: PluginInfo,
    /// The version serving now.
    pub new: PluginInfo,
    /// Schema version of the database before and after.
    pub schema: (u32, u32),
    /// Bytes of in-memory state handed over.
    pub handover_bytes: usize,
    /// Uploads in flight that the new version took over.
    pub uploads_in_flight: u64,
    /// Compiling, linking and probing, before calls were held.
    pub prepare_time: Duration,
    /// From holding calls to resuming them.
    pub pause: Duration,
    /// Whether the component was compiled now or loaded from the cache.
    pub compile_outcome: CompileOutcome,
}

/// The step of a swap that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapError {
    /// The bytes do not compile as a component.
    Compile(String),
    /// Not a plugin, or an interface version this host does not run.
    Version(VersionError),
    /// It does not link against the host's imports.
    Link(String),
    /// The new build writes an older schema than the database has.
    Downgrade {
        /// Schema version of the database.
        on_disk: u32,
        /// Schema version the new build writes.
        plugin: u32,
    },
    /// The running version could not hand over its state; it keeps serving.
    Handover(CallError),
    /// The new version failed to start (its migration, or taking over the state);
    /// the old one was restored.
    Start {
        /// Why the new one failed.
        why: String,
        /// How the old one came back.
        restored: Restored,
    },
    /// The new version failed or trapped in its first calls; the old one was restored.
    FirstCalls {
        /// Why the new one failed.
        why: String,
        /// How the old one came back.
        restored: Restored,
    },
}

/// How the old version came back after a failed swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// With its database and the handed-over state: nothing was lost.
    Fully,
    /// Restarted cold: the database is intact, in-flight uploads were lost; the text says why.
    Cold(String),
    /// Not yet: it could not be started; later calls keep trying. The text says why.
    NotYet(String),
}

impl SwapError {
    /// Whether nothing was touched: the swap was refused before the old version stopped.
    pub fn refused(&self) -> bool {
        !matches!(self, SwapError::Start { .. } | SwapError::FirstCalls { .. })
    }
}

impl fmt::Display for Restored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restored::Fully => write!(f, "the previous version was restored with all its state"),
            Restored::Cold(why) => write!(
                f,
                "the previous version was restarted without its in-flight uploads ({why})"
            ),
            Restored::NotYet(why) => write!(
                f,
                "the previous version could not be restarted yet ({why}); later calls retry"
            ),
        }
    }
}

impl fmt::Display for SwapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwapError::Compile(why) => write!(f, "the new plugin does not compile: {why}"),
            SwapError::Version(e) => e.fmt(f),
            SwapError::Link(why) => write!(f, "the new plugin does not link: {why}"),
            SwapError::Downgrade { on_disk, plugin } => write!(
                f,
                "refusing a downgrade across a schema change: the database has schema version \
                 {on_disk}, the new plugin writes {plugin}"
            ),
            SwapError::Handover(e) => write!(
                f,
                "the running plugin could not hand over its state ({e}); it keeps serving"
            ),
            SwapError::Start { why, restored } => {
                write!(f, "the new plugin failed to start: {why}; {restored}")
            }
            SwapError::FirstCalls { why, restored } => {
                write!(
                    f,
                    "the new plugin failed its first calls: {why}; {restored}"
                )
            }
        }
    }
}

impl std::error::Error for SwapError {}

impl Preparer {
    /// Compiles into `cache_dir`; probes under `sandbox`'s caps.
    pub fn new(cache_dir: impl Into<PathBuf>, sandbox: SandboxPolicy) -> Self {
        Preparer {
            cache_dir: cache_dir.into(),
            sandbox,
        }
    }

    /// Compiles (or loads), checks the interface version, links, and asks the
    /// component which schema version it writes. Touches no running instance.
    pub fn prepare(&self, wasm: &[u8]) -> Result<PreparedPlugin, SwapError> {
        let started = Instant::now();
        let engine = wasm_engine().map_err(|e| SwapError::Compile(e.to_string()))?;
        let (component, compile_outcome) = load_component(engine, wasm, &self.cache_dir)
            .map_err(|e| SwapError::Compile(e.to_string()))?;
        let (pre, version) = link(engine, &component).map_err(|e| match e {
            HostError::Version(e) => SwapError::Version(e),
            other => SwapError::Link(other.to_string()),
        })?;
        let schema_version = self.probe_schema(&pre)?;
        Ok(PreparedPlugin {
            pre,
            version,
            schema_version,
            compile_outcome,
            prepare_time: started.elapsed(),
        })
    }

    /// Asks a throwaway instance (no state directory, no backend) for its schema version.
    fn probe_schema(&self, pre: &PluginPre) -> Result<Option<u32>, SwapError> {
        if matches!(pre, PluginPre::V0_1(_)) {
            return Ok(None);
        }
        let state = HostState::new(
            wasmtime_wasi::WasiCtxBuilder::new().build(),
            self.sandbox.memory_cap(),
            Arc::new(MemoryStore::new()),
        );
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        arm(&mut store, &self.sandbox);
        let plugin = pre
            .instantiate(&mut store)
            .map_err(|e| SwapError::Link(format!("instantiating: {}", classify(&store, e))))?;
        arm(&mut store, &self.sandbox);
        plugin.schema_version(&mut store).map_err(|e| {
            SwapError::Link(format!(
                "asking its schema version: {}",
                classify(&store, e)
            ))
        })
    }
}

/// Crash policy state and the version before the last swap.
#[derive(Default)]
pub(crate) struct Guard {
    /// Deaths since the last call that returned.
    deaths_in_a_row: u32,
    /// No restart before this (back-off).
    not_before: Option<Instant>,
    /// Set by a swap, cleared after [`PROBATION_CALLS`] calls.
    probation: Option<Probation>,
    /// The component the last swap replaced, for a crash rollback.
    previous: Option<Previous>,
    crash_rollbacks: u64,
    last_crash_rollback: Option<String>,
}

struct Probation {
    calls_left: u32,
    deaths: u32,
}

struct Previous {
    pre: PluginPre,
    version: InterfaceVersion,
    compile_outcome: CompileOutcome,
    /// The schema version it ran on: it can only come back to a database at this version.
    schema: u32,
}

impl Guard {
    /// A call returned (with an answer or a typed error): the instance works.
    pub(crate) fn served(&mut self) {
        self.deaths_in_a_row = 0;
        self.not_before = None;
        if let Some(p) = &mut self.probation {
            p.calls_left = p.calls_left.saturating_sub(1);
            if p.calls_left == 0 {
                self.probation = None;
            }
        }
    }

    fn backoff(&self) -> Duration {
        let extra = self
            .deaths_in_a_row
            .saturating_sub(IMMEDIATE_RESTARTS + 1)
            .min(16);
        FIRST_BACKOFF.saturating_mul(1 << extra).min(MAX_BACKOFF)
    }
}

impl PluginHost {
    /// Prepares swaps into this host's compile cache, under its sandbox.
    pub fn preparer(&self) -> Preparer {
        Preparer::new(
            self.launcher.cache_dir.clone(),
            self.launcher.sandbox.clone(),
        )
    }

    /// The interface version the running component speaks.
    pub fn interface_version(&self) -> InterfaceVersion {
        self.launcher.version
    }

    /// How many times a freshly swapped version was rolled back for crashing.
    pub fn crash_rollbacks(&self) -> u64 {
        self.guard.crash_rollbacks
    }

    /// Why the last crash rollback happened (or could not).
    pub fn last_crash_rollback(&self) -> Option<&str> {
        self.guard.last_crash_rollback.as_deref()
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
        if self.batch != crate::plugin::Batch::Closed {
            return Err(SwapError::Handover(CallError::Plugin(
                crate::plugin::wit::PluginError::Conflict(
                    "a group commit is open; commit it before swapping".into(),
                ),
            )));
        }
        let held = Instant::now();
        let on_disk = self.init_report.schema_version;
        if let Some(plugin) = new.schema_version {
            if plugin < on_disk {
                return Err(SwapError::Downgrade { on_disk, plugin });
            }
        }
        // A version that is down (backing off after crashes) has no state to
        // hand over, and replacing it is exactly what an operator may want.
        let old_info = match self.instance {
            Some(_) => self.info().map_err(SwapError::Handover)?,
            None => PluginInfo {
                version: "(not running)".into(),
                interface_version: self.launcher.version.to_string(),
            },
        };
        let blob = self.take_handover()?;

        // The old instance stops here; from now on every failure rolls back.
        if let Some(mut old) = self.instance.take() {
            arm(&mut old.store, &self.launcher.sandbox);
            let _ = on_version!(&old.plugin, p => p.leasedb_plugin_lifecycle().call_shutdown(&mut old.store));
        }
        let snapshot = if new.schema_version == Some(on_disk) {
            None
        } else {
            match Snapshot::take(&self.launcher.plugin_dir) {
                Ok(snapshot) => Some(snapshot),
                Err(e) => {
                    let restored = self.restore_old(None, &blob);
                    return Err(SwapError::Start {
                        why: format!("snapshotting the database before a schema change: {e}"),
                        restored,
                    });
                }
            }
        };
        let old_pre = std::mem::replace(&mut self.launcher.pre, new.pre);
        let old_version = std::mem::replace(&mut self.launcher.version, new.version);
        let handover = (!blob.is_empty()).then_some(&blob[..]);
        let started = match self.launcher.launch(handover) {
            Ok(started) => started,
            Err(e) => {
                self.launcher.pre = old_pre;
                self.launcher.version = old_version;
                let restored = self.restore_old(snapshot, &blob);
                return Err(SwapError::Start {
                    why: e.to_string(),
                    restored,
                });
            }
        };
        let (mut instance, report) = started;
        match first_calls(&mut instance, &self.launcher.sandbox, new.version) {
            Ok((new_info, uploads_in_flight)) => {
                if let Some(snapshot) = snapshot {
                    snapshot.discard();
                }
                self.instance = Some(instance);
                self.init_report = report.clone();
                let old_compile =
                    std::mem::replace(&mut self.compile_outcome, new.compile_outcome.clone());
                self.guard.previous = Some(Previous {
                    pre: old_pre,
                    version: old_version,
                    compile_outcome: old_compile,
                    schema: on_disk,
                });
                self.guard.probation = Some(Probation {
                    calls_left: PROBATION_CALLS,
                    deaths: 0,
                });
                self.guard.deaths_in_a_row = 0;
                self.guard.not_before = None;
                Ok(SwapReport {
                    old: old_info,
                    new: new_info,
                    schema: (on_disk, report.schema_version),
                    handover_bytes: blob.len(),
                    uploads_in_flight,
                    prepare_time: new.prepare_time,
                    pause: held.elapsed(),
                    compile_outcome: new.compile_outcome,
                })
            }
            Err(why) => {
                shut_down(instance, &self.launcher.sandbox);
                self.launcher.pre = old_pre;
                self.launcher.version = old_version;
                let restored = self.restore_old(snapshot, &blob);
                Err(SwapError::FirstCalls { why, restored })
            }
        }
    }

    /// The old instance's state as a blob; a dead instance has none to give.
    fn take_handover(&mut self) -> Result<Vec<u8>, SwapError> {
        let Some(instance) = self.instance.as_mut() else {
            return Ok(Vec::new());
        };
        arm(&mut instance.store, &self.launcher.sandbox);
        let answer = on_version!(&instance.plugin, p => p.leasedb_plugin_lifecycle().call_handover(&mut instance.store));
        match answer {
            Ok(Ok(blob)) => Ok(blob),
            Ok(Err(refused)) => Err(SwapError::Handover(CallError::Plugin(refused))),
            Err(error) => {
                let failure = classify(&instance.store, error);
                self.instance = None;
                self.restarts += 1;
                self.after_death();
                Err(SwapError::Handover(failure))
            }
        }
    }

    /// Puts the database back (if a snapshot was taken) and starts the old
    /// component (already in the launcher) with the blob; cold if it refuses it.
    fn restore_old(&mut self, snapshot: Option<Snapshot>, blob: &[u8]) -> Restored {
        if let Some(snapshot) = snapshot {
            if let Err(e) = snapshot.restore() {
                self.instance = None;
                return Restored::NotYet(format!("putting the database snapshot back: {e}"));
            }
        }
        let handover = (!blob.is_empty()).then_some(blob);
        match self.launcher.launch(handover) {
            Ok((instance, report)) => {
                self.instance = Some(instance);
                self.init_report = report;
                Restored::Fully
            }
            Err(with_state) => match self.launcher.launch(None) {
                Ok((instance, report)) => {
                    self.instance = Some(instance);
                    self.init_report = report;
                    Restored::Cold(with_state.to_string())
                }
                Err(cold) => {
                    self.instance = None;
                    Restored::NotYet(cold.to_string())
                }
            },
        }
    }

    /// Brings back an instance for a call, unless backing off after repeated deaths.
    pub(crate) fn revive(&mut self) -> Result<Instance, CallError> {
        if let Some(at) = self.guard.not_before {
            let now = Instant::now();
            if now < at {
                return Err(CallError::Unavailable(format!(
                    "the plugin crashed {} times in a row; restarting in {} ms",
                    self.guard.deaths_in_a_row,
                    (at - now).as_millis()
                )));
            }
        }
        match self.relaunch() {
            Ok(instance) => Ok(instance),
            Err(e) => {
                self.guard.deaths_in_a_row += 1;
                self.guard.not_before = Some(Instant::now() + self.guard.backoff());
                Err(CallError::Unavailable(e.to_string()))
            }
        }
    }

    /// The crash policy, after an instance died serving a call.
    pub(crate) fn after_death(&mut self) {
        self.guard.deaths_in_a_row += 1;
        if let Some(p) = &mut self.guard.probation {
            p.deaths += 1;
            if p.deaths >= PROBATION_DEATHS {
                self.guard.probation = None;
                if self.roll_back_crashing() {
                    return;
                }
            }
        }
        if self.guard.deaths_in_a_row <= IMMEDIATE_RESTARTS {
            match self.relaunch() {
                Ok(instance) => self.instance = Some(instance),
                Err(_) => self.guard.not_before = Some(Instant::now() + FIRST_BACKOFF),
            }
        } else {
            self.guard.not_before = Some(Instant::now() + self.guard.backoff());
        }
    }

    /// Replaces a freshly swapped version that keeps dying by the one it replaced.
    fn roll_back_crashing(&mut self) -> bool {
        let Some(previous) = self.guard.previous.take() else {
            return false;
        };
        let on_disk = self.init_report.schema_version;
        if previous.schema < on_disk {
            self.guard.last_crash_rollback = Some(format!(
                "the swapped-in version keeps crashing, but the previous one cannot read \
                 schema version {on_disk} (it wrote {}); restarting with back-off instead",
                previous.schema
            ));
            return false;
        }
        let crashing_pre = std::mem::replace(&mut self.launcher.pre, previous.pre);
        let crashing_version = std::mem::replace(&mut self.launcher.version, previous.version);
        match self.launcher.launch(None) {
            Ok((instance, report)) => {
                self.instance = Some(instance);
                self.init_report = report;
                self.compile_outcome = previous.compile_outcome;
                self.guard.deaths_in_a_row = 0;
                self.guard.not_before = None;
                self.guard.crash_rollbacks += 1;
                self.guard.last_crash_rollback = Some(format!(
                    "the swapped-in version (interface {crashing_version}) died {PROBATION_DEATHS} \
                     times in its first {PROBATION_CALLS} calls; rolled back to interface {}",
                    self.launcher.version
                ));
                true
            }
            Err(e) => {
                self.launcher.pre = crashing_pre;
                self.launcher.version = crashing_version;
                self.guard.last_crash_rollback =
                    Some(format!("rolling back a crashing swap failed: {e}"));
                false
            }
        }
    }
}

/// `info` and `get-stats` on a fresh instance: its name and the uploads it took over.
fn first_calls(
    instance: &mut Instance,
    sandbox: &SandboxPolicy,
    version: InterfaceVersion,
) -> Result<(PluginInfo, u64), String> {
    arm(&mut instance.store, sandbox);
    let info = on_version!(&instance.plugin, p => p.leasedb_plugin_lifecycle().call_info(&mut instance.store))
        .map_err(|e| format!("info: {}", classify(&instance.store, e)))?;
    if info.interface_version.parse::<InterfaceVersion>() != Ok(version) {
        return Err(format!(
            "it says it speaks interface {:?}, but its exports are {version}",
            info.interface_version
        ));
    }
    arm(&mut instance.store, sandbox);
    let stats = on_version!(&instance.plugin, p => p.leasedb_plugin_accounting().call_get_stats(&mut instance.store))
        .map_err(|e| format!("get-stats: {}", classify(&instance.store, e)))?
        .map_err(|e| format!("get-stats: {}", CallError::Plugin(e)))?;
    Ok((info, stats.uploads_in_flight))
}

/// Lets a live instance close its database; a dead one is just dropped.
fn shut_down(mut instance: Instance, sandbox: &SandboxPolicy) {
    arm(&mut instance.store, sandbox);
    let _ = on_version!(&instance.plugin, p => p.leasedb_plugin_lifecycle().call_shutdown(&mut instance.store));
}

/// A copy of the plugin's private directory, taken while no instance runs,
/// so that a migration that succeeded can be undone by a rollback.
struct Snapshot {
    live: PathBuf,
    copy: PathBuf,
}

impl Snapshot {
    fn take(live: &Path) -> io::Result<Snapshot> {
        let copy = live.with_file_name(format!(
            "{}.swap-snapshot",
            live.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("plugin")
        ));
        if copy.exists() {
            fs::remove_dir_all(&copy)?;
        }
        copy_dir(live, &copy)?;
        Ok(Snapshot {
            live: live.to_path_buf(),
            copy,
        })
    }

    fn restore(self) -> io::Result<()> {
        fs::remove_dir_all(&self.live)?;
        fs::rename(&self.copy, &self.live)
    }

    fn discard(self) {
        let _ = fs::remove_dir_all(&self.copy);
    }
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

impl SwapReport {
    /// One line for an operator.
    pub fn summary(&self) -> String {
        format!(
            "swapped plugin {} (interface {}) for {} (interface {}); schema {} -> {}; \
             {} uploads in flight handed over; calls held {:.1} ms",
            self.old.version,
            self.old.interface_version,
            self.new.version,
            self.new.interface_version,
            self.schema.0,
            self.schema.1,
            self.uploads_in_flight,
            self.pause.as_secs_f64() * 1000.0
        )
    }
}

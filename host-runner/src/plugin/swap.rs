//! Hot swap (SPEC §11): replace the running plugin with another build without
//! restarting the host or dropping sessions, and roll back when it fails.
//!
//! A swap has two halves:
//!
//! 1. [`Preparer::prepare`], off the request path (any thread): compile (or load
//!    from the cache), read the interface version from the export names and
//!    refuse it unless this host runs it, link, and ask a throwaway instance
//!    which schema version it writes (interface 0.2 and later).
//! 2. [`crate::PluginHost::swap_to`], on the thread that owns the host, so every other
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
//! The crash policy that follows a swap (probation, crash rollback) is the
//! supervisor's (`supervisor.rs`).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bindings::version::{InterfaceVersion, VersionError};
use super::bindings::vocabulary::convert;
use super::bindings::{on_version, PluginPre};
use super::engine::{load_component, wasm_engine, CompileOutcome};
use super::error::{CallError, HostError};
use super::launcher::{classify, link, Instance};
use super::sandbox::SandboxPolicy;
use super::state::HostState;
use super::supervisor::{Previous, Supervisor};
use super::wit::PluginInfo;
use crate::backend::MemoryStore;

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
        let mut instance = Instance::new(pre, &self.sandbox, state)
            .map_err(|e| SwapError::Link(format!("instantiating: {e}")))?;
        instance.arm(&self.sandbox);
        let Instance { store, plugin } = &mut instance;
        plugin.schema_version(&mut *store).map_err(|e| {
            SwapError::Link(format!("asking its schema version: {}", classify(store, e)))
        })
    }
}

impl Supervisor {
    /// Replaces the running component with `new`, handing over sessions and
    /// in-flight uploads; on failure the old one serves again with its state.
    pub(crate) fn swap_to(&mut self, new: PreparedPlugin) -> Result<SwapReport, SwapError> {
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
            Some(_) => self
                .call(|p, s| on_version!(p, p => p.leasedb_plugin_lifecycle().call_info(s)))
                .map(convert)
                .map_err(SwapError::Handover)?,
            None => PluginInfo {
                version: "(not running)".into(),
                interface_version: self.launcher.version.to_string(),
            },
        };
        let blob = self.take_handover()?;

        // The old instance stops here; from now on every failure rolls back.
        let retired = self
            .instance
            .take()
            .map(|old| old.closed(&self.launcher.sandbox));
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
                if let Some(old) = retired {
                    old.release_elsewhere();
                }
                self.instance = Some(instance);
                self.init_report = report.clone();
                let old_compile =
                    std::mem::replace(&mut self.compile_outcome, new.compile_outcome.clone());
                self.swapped(Previous {
                    pre: old_pre,
                    version: old_version,
                    compile_outcome: old_compile,
                    schema: on_disk,
                });
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
                instance.shut_down(&self.launcher.sandbox);
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
        instance.arm(&self.launcher.sandbox);
        let answer = on_version!(&instance.plugin, p => p.leasedb_plugin_lifecycle().call_handover(&mut instance.store));
        match answer {
            Ok(Ok(blob)) => Ok(blob),
            Ok(Err(refused)) => Err(SwapError::Handover(CallError::Plugin(convert(refused)))),
            Err(error) => {
                let failure = classify(&instance.store, error);
                self.instance = None;
                self.died();
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
}

/// `info` and `get-stats` on a fresh instance: its name and the uploads it took over.
fn first_calls(
    instance: &mut Instance,
    sandbox: &SandboxPolicy,
    version: InterfaceVersion,
) -> Result<(PluginInfo, u64), String> {
    instance.arm(sandbox);
    let info: PluginInfo = on_version!(&instance.plugin, p => p.leasedb_plugin_lifecycle().call_info(&mut instance.store))
        .map(convert)
        .map_err(|e| format!("info: {}", classify(&instance.store, e)))?;
    if info.interface_version.parse::<InterfaceVersion>() != Ok(version) {
        return Err(format!(
            "it says it speaks interface {:?}, but its exports are {version}",
            info.interface_version
        ));
    }
    instance.arm(sandbox);
    let stats = on_version!(&instance.plugin, p => p.leasedb_plugin_accounting().call_get_stats(&mut instance.store))
        .map_err(|e| format!("get-stats: {}", classify(&instance.store, e)))?
        .map_err(|e| format!("get-stats: {}", CallError::Plugin(convert(e))))?;
    Ok((info, stats.uploads_in_flight))
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

//! Starting instances: linking a component once, then a fresh store and
//! instance per (re)start, each call armed with the sandbox's deadline and
//! memory cap, and a dead instance's error told apart (cap, deadline, trap).

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use super::bindings::version::InterfaceVersion;
use super::bindings::vocabulary::convert;
use super::bindings::{on_version, LinkError, Plugin, PluginPre};
use super::error::{CallError, HostError};
use super::sandbox::SandboxPolicy;
use super::state::HostState;
use super::wit::{CrawlerConfig, InitReport};
use crate::backend::ObjectStore;

/// A live instance: its store and the handles to its exports.
pub(crate) struct Instance {
    pub(crate) store: Store<HostState>,
    pub(crate) plugin: Plugin,
}

impl Instance {
    /// A new instance of `pre` in a fresh store holding `state`, under `sandbox`'s caps.
    pub(crate) fn new(
        pre: &PluginPre,
        sandbox: &SandboxPolicy,
        state: HostState,
    ) -> Result<Instance, CallError> {
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        arm_start(&mut store, sandbox);
        match pre.instantiate(&mut store) {
            Ok(plugin) => Ok(Instance { store, plugin }),
            Err(e) => Err(classify(&store, e)),
        }
    }

    /// Starts a call's deadline and forgets earlier memory refusals.
    pub(crate) fn arm(&mut self, sandbox: &SandboxPolicy) {
        arm(&mut self.store, sandbox);
    }

    /// Lets a live instance close its database; a dead one is just dropped,
    /// and a failure here has nobody to report to.
    pub(crate) fn shut_down(self, sandbox: &SandboxPolicy) {
        drop(self.closed(sandbox));
    }

    /// As `shut_down`, handing back the closed instance: releasing its memory
    /// takes 0.2-3 ms with uploads buffered, which a hot swap does after its
    /// pause, on another thread (`release_elsewhere`).
    pub(crate) fn closed(mut self, sandbox: &SandboxPolicy) -> Instance {
        self.arm(sandbox);
        let _ = on_version!(&self.plugin, p => p.leasedb_plugin_lifecycle().call_shutdown(&mut self.store));
        self
    }

    /// Drops a closed instance on a thread of its own, so that no call waits
    /// for its memory to be released.
    pub(crate) fn release_elsewhere(self) {
        drop_elsewhere(self);
    }
}

/// Drops `what` on a thread of its own: releasing an instance's memory, or a
/// version's compiled code (unmapped and unregistered, about a millisecond),
/// need not hold up the calls waiting for the plugin thread.
pub(crate) fn drop_elsewhere<T: Send + 'static>(what: T) {
    // A thread that cannot start drops the closure, and `what`, here.
    let _ = std::thread::Builder::new()
        .name("plugin-release".into())
        .spawn(move || drop(what));
}

/// What every (re)start of an instance needs.
pub(crate) struct Launcher {
    pub(crate) sandbox: SandboxPolicy,
    pub(crate) plugin_dir: PathBuf,
    /// Where compiled components are cached (a swap compiles into it too).
    pub(crate) cache_dir: PathBuf,
    pub(crate) plugin_config: super::g::Config,
    pub(crate) crawler: CrawlerConfig,
    pub(crate) backend: Arc<dyn ObjectStore>,
    pub(crate) pre: PluginPre,
    /// The interface version the component speaks.
    pub(crate) version: InterfaceVersion,
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
        let mut instance = Instance::new(&self.pre, &self.sandbox, state).map_err(|e| match e {
            CallError::Trapped(why) => HostError::Instantiate(why),
            other => HostError::Init(other),
        })?;
        let Instance { store, plugin } = &mut instance;
        arm_start(store, &self.sandbox);
        let config = &self.plugin_config;
        let report = match on_version!(&*plugin, p => p.leasedb_plugin_lifecycle()
                .call_init(&mut *store, &config, handover); config)
        {
            Ok(Ok(report)) => convert(report),
            Ok(Err(refused)) => return Err(HostError::Init(CallError::Plugin(convert(refused)))),
            Err(error) => return Err(HostError::Init(classify(store, error))),
        };
        arm_start(store, &self.sandbox);
        let crawler: super::g::CrawlerConfig = convert(self.crawler);
        match on_version!(&*plugin, p => p.leasedb_plugin_crawler().call_configure(&mut *store, crawler); crawler)
        {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => return Err(HostError::Init(CallError::Plugin(convert(refused)))),
            Err(error) => return Err(HostError::Init(classify(store, error))),
        }
        Ok((instance, report))
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

/// Starts the deadline of starting an instance (instantiate, init, configure),
/// which a cold start's recovery may need well past one call's.
fn arm_start(store: &mut Store<HostState>, sandbox: &SandboxPolicy) {
    store.set_epoch_deadline(sandbox.init_deadline_ticks());
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

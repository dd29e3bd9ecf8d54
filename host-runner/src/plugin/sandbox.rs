//! The whole sandbox policy in one place (SPEC §11): what the plugin may reach
//! (its private directory, the clock, randomness, stderr) and how much memory
//! and time one call may take.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::plugin::clock::AdjustableClock;
use crate::plugin::engine::EPOCH_TICK;

/// Where the plugin's private state directory appears inside the sandbox.
pub const GUEST_STATE_DIR: &str = "/state";

/// Default cap on the plugin's linear memory.
pub const DEFAULT_MEMORY_CAP: usize = 256 << 20;

/// Linear memories one instance may have (a component has one per core module that owns one).
pub const MAX_MEMORIES: usize = 8;
/// Tables one instance may have.
pub const MAX_TABLES: usize = 32;
/// Core instances one component instance may create.
pub const MAX_INSTANCES: usize = 64;
/// Elements one table may grow to.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Default time one call may run.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Default time starting an instance may run: a cold start's recovery grows
/// with the store and the backend's latency, not with one request.
pub const DEFAULT_INIT_DEADLINE: Duration = Duration::from_secs(300);

/// Limits and capabilities of every plugin instance.
#[derive(Clone)]
pub struct SandboxPolicy {
    /// Largest linear memory, in bytes.
    pub memory_cap: usize,
    /// Longest a single call may run before it is interrupted.
    pub call_deadline: Duration,
    /// Longest starting an instance (instantiate, `init` with its cold-start
    /// recovery, `configure`) may run; never shorter than `call_deadline`.
    pub init_deadline: Duration,
    /// The wall clock the plugin sees.
    pub clock: AdjustableClock,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        SandboxPolicy {
            memory_cap: DEFAULT_MEMORY_CAP,
            call_deadline: DEFAULT_CALL_DEADLINE,
            init_deadline: DEFAULT_INIT_DEADLINE,
            clock: AdjustableClock::system(),
        }
    }
}

/// The sandbox could not be set up.
#[derive(Debug)]
pub struct SandboxError {
    /// The private directory that could not be created or opened.
    pub dir: PathBuf,
    /// Why.
    pub source: io::Error,
}

impl fmt::Display for SandboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin state directory {}: {}",
            self.dir.display(),
            self.source
        )
    }
}

impl std::error::Error for SandboxError {}

impl SandboxPolicy {
    /// The WASI context of one instance: only `private_dir` (created if missing),
    /// seen as `/state`; no environment, arguments, network or stdin; stdout
    /// discarded; stderr into the host's log, so plugin panics are visible.
    pub fn wasi_ctx(&self, private_dir: &Path) -> Result<WasiCtx, SandboxError> {
        let fail = |source| SandboxError {
            dir: private_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(private_dir).map_err(fail)?;
        let mut builder = WasiCtxBuilder::new();
        // Calls are synchronous on the caller's thread; blocking there is what we want,
        // and it must be set before the preopen, which captures it.
        builder.allow_blocking_current_thread(true);
        builder
            .preopened_dir(private_dir, GUEST_STATE_DIR, FsPerms::ReadWrite)
            .map_err(|e| fail(io::Error::other(format!("{e:#}"))))?;
        builder.stderr(super::stderr::PluginStderr::default());
        builder.wall_clock(self.clock.clone());
        // The defaults already deny these; saying so keeps a future default change from opening them.
        builder
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        builder.socket_addr_check(|_, _| Box::pin(async { false }));
        Ok(builder.build())
    }

    /// The memory limiter of one instance.
    pub fn memory_cap(&self) -> MemoryCap {
        MemoryCap::new(self.memory_cap)
    }

    /// The call deadline in epoch ticks (at least one).
    pub fn deadline_ticks(&self) -> u64 {
        ticks(self.call_deadline)
    }

    /// The start deadline in epoch ticks: the longer of the two deadlines.
    pub fn init_deadline_ticks(&self) -> u64 {
        ticks(self.init_deadline.max(self.call_deadline))
    }
}

/// `deadline` in whole epoch ticks, rounded up (at least one).
fn ticks(deadline: Duration) -> u64 {
    (deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64).max(1)
}

/// Caps each linear memory and remembers whether the cap was hit, so a trap that
/// follows can be reported as memory exhaustion rather than a plugin bug.
pub struct MemoryCap {
    limits: StoreLimits,
    exhausted: bool,
}

impl MemoryCap {
    fn new(bytes: usize) -> Self {
        // Trapping on a refused growth makes exhaustion fail the call at once,
        // instead of leaving the guest's allocator to abort somewhere later.
        // Counts and table sizes are capped too: the plugin needs a handful
        // of each, and only a faulty or hostile component would ask for more.
        let limits = StoreLimitsBuilder::new()
            .memory_size(bytes)
            .memories(MAX_MEMORIES)
            .tables(MAX_TABLES)
            .instances(MAX_INSTANCES)
            .table_elements(MAX_TABLE_ELEMENTS)
            .trap_on_grow_failure(true)
            .build();
        MemoryCap {
            limits,
            exhausted: false,
        }
    }

    /// Whether a growth was refused since the last `reset`.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Forgets earlier refusals (at the start of each call).
    pub fn reset(&mut self) {
        self.exhausted = false;
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let verdict = self.limits.memory_growing(current, desired, maximum);
        if !matches!(verdict, Ok(true)) {
            self.exhausted = true;
        }
        verdict
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.exhausted = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_counted_in_whole_ticks() {
        let mut policy = SandboxPolicy::default();
        assert_eq!(policy.deadline_ticks(), 1000);
        policy.call_deadline = Duration::from_millis(15);
        assert_eq!(policy.deadline_ticks(), 2);
        policy.call_deadline = Duration::ZERO;
        assert_eq!(policy.deadline_ticks(), 1);
    }

    #[test]
    fn starting_gets_the_longer_of_the_two_deadlines() {
        let mut policy = SandboxPolicy::default();
        assert_eq!(policy.init_deadline_ticks(), 30_000);
        policy.init_deadline = Duration::from_millis(50);
        policy.call_deadline = Duration::from_secs(1);
        assert_eq!(policy.init_deadline_ticks(), 100);
    }

    #[test]
    fn counts_and_table_sizes_are_capped_not_only_memory() {
        let mut cap = SandboxPolicy::default().memory_cap();
        assert_eq!(
            (cap.memories(), cap.tables(), cap.instances()),
            (MAX_MEMORIES, MAX_TABLES, MAX_INSTANCES)
        );
        assert!(cap.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(cap.table_growing(0, MAX_TABLE_ELEMENTS + 1, None).is_err());
    }

    #[test]
    fn refused_growth_is_remembered_until_reset() {
        let mut cap = SandboxPolicy {
            memory_cap: 1 << 20,
            ..SandboxPolicy::default()
        }
        .memory_cap();
        assert!(cap.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!cap.exhausted());
        assert!(cap.memory_growing(1 << 20, 2 << 20, None).is_err());
        assert!(cap.exhausted());
        cap.reset();
        assert!(!cap.exhausted());
    }
}

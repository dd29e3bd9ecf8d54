//! The conformance suite: what any leasedb host + plugin pair must do (SPEC.md),
//! written once against the [`Harness`] trait and run here against the bundled
//! `host-runner` (`tests/all/main.rs`).
//!
//! A case is a `pub fn name<H: Harness>(h: &H)` in one of the files of
//! [`cases`], declared inside that file's `declare_cases!` block; the block also emits a
//! `foreach_<file>_case!` macro, and [`foreach_case!`] calls every one of them,
//! so a runner that expands `foreach_case!` has a test for every case by
//! construction.
//!
//! Cases talk to the plugin only through WIT-typed operations (the [`wit`]
//! types are the WIT's own), reach the backend only through the harness's raw
//! object hooks, and never time anything.

#![warn(missing_docs)]

use std::time::Duration;

pub use host_runner::plugin::wit;
pub use host_runner::CallError;

use wit::{
    Account, AccountUsage, AdvisedType, Advisory, Allocation, ByteRange, Capabilities,
    CrawlerConfig, CrawlerStatus, InitReport, LeaseInfo, PluginInfo, ReadTestWriteResult,
    ShareInfo, ShareReads, ShareWrites, SliceOutcome, Stats, Usage, WitBackendError,
};

pub mod cases;
pub mod client;
pub mod containers;
pub mod ids;

/// The time the harness's clock shows when it is created, in seconds since the epoch.
pub const START_TIME: i64 = 1_700_000_000;

/// How many bytes the harness's backend holds in all (its available space when empty).
pub const BACKEND_CAPACITY: u64 = 1 << 30;

/// Which build of the plugin component a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The plugin as shipped.
    Shipped,
    /// The test-faults build: `add-lease` for account `Named("fault-trap")` traps,
    /// `"fault-loop"` loops forever, `"fault-oom"` allocates until memory runs out.
    TestFaults,
}

/// What a case chooses about one start; `None` leaves the host's default.
#[derive(Debug, Clone)]
pub struct Options {
    /// The component to run.
    pub component: Component,
    /// Preferred chunk size of new shares (the host's default is 512 KiB; at least 4096).
    pub chunk_size: Option<u32>,
    /// Longest time a single call may run.
    pub call_deadline: Option<Duration>,
    /// Cap on the plugin's memory, in bytes.
    pub memory_cap: Option<usize>,
    /// Largest immutable share accepted.
    pub max_immutable_size: Option<u64>,
    /// How the crawler runs from the start (it can also be changed later).
    pub crawler: Option<CrawlerConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            component: Component::Shipped,
            chunk_size: None,
            call_deadline: None,
            memory_cap: None,
            max_immutable_size: None,
            crawler: None,
        }
    }
}

impl Options {
    /// The shipped plugin with 4 KiB chunks: for cases where the chunk size does not matter.
    pub fn small_chunks() -> Self {
        Options {
            chunk_size: Some(4096),
            ..Options::default()
        }
    }
}

/// A backend function, for injecting faults and counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendOp {
    /// `list-objects`
    List,
    /// `read`
    Read,
    /// `write`
    Write,
    /// `delete`
    Delete,
    /// `size`
    Size,
    /// `available-space`
    AvailableSpace,
}

/// What a host must provide to run the cases: one server's worth of backend
/// storage and private state, a clock the cases move, and hooks into the
/// backend. A value is one fresh server; the runner makes one per case.
///
/// Requirements on a fresh harness: the backend is empty and holds
/// [`BACKEND_CAPACITY`] bytes, the state directory is empty, and the clock the
/// plugin sees stands still at [`START_TIME`] until a case moves it.
pub trait Harness {
    /// A running host with the plugin loaded.
    type Host: Host;

    /// Starts a host over this server's storage and state (a cold start). A
    /// restart is: drop the host, start again.
    fn start(&self, options: &Options) -> Result<Self::Host, String>;

    /// The names of the component's imports (`package:name/interface@version`)
    /// as the host's runtime reads them from the component.
    fn component_imports(&self, component: Component) -> Vec<String>;

    /// Stores an object in the backend, bypassing the plugin (an operator copying files in).
    fn put_object(&self, key: &str, data: &[u8]);
    /// An object's bytes, read straight from the backend.
    fn object(&self, key: &str) -> Option<Vec<u8>>;
    /// Removes an object from the backend, bypassing the plugin.
    fn delete_object(&self, key: &str);
    /// Every key in the backend, in ascending order.
    fn object_keys(&self) -> Vec<String>;

    /// From now on, `op` on keys starting with `key_prefix` fails with `error` (a listing
    /// fails when its prefix and `key_prefix` overlap), until [`Harness::clear_faults`].
    fn fail(&self, op: BackendOp, key_prefix: &str, error: WitBackendError);
    /// Removes every fault; backend calls succeed again.
    fn clear_faults(&self);
    /// How many times the plugin called `op` since the harness was made.
    fn calls(&self, op: BackendOp) -> u64;
    /// The plugin instance dies during the next `op` on a key starting with
    /// `key_prefix`: the backend does nothing and the plugin never gets an
    /// answer (as if the server crashed there); the host reports the call as
    /// failed and serves the next one from a fresh instance.
    fn crash_during(&self, op: BackendOp, key_prefix: &str);

    /// The plugin's wall clock, in seconds since the epoch.
    fn now(&self) -> i64;
    /// Sets the plugin's wall clock (it then stands still there).
    fn set_now(&self, secs: i64);

    /// Deletes the plugin's database files. Only while no host is running.
    fn remove_database(&self);
}

/// A running host: one method per WIT export of the plugin, as the host
/// exposes it. A call either returns the plugin's answer, its typed error
/// ([`CallError::Plugin`]), or says the instance died or was unavailable.
#[allow(
    missing_docs,
    reason = "each method is the WIT function of the same name"
)]
pub trait Host {
    fn allocate(
        &mut self,
        session: u64,
        account: &Account,
        si: &[u8],
        share_numbers: &[u32],
        allocated_size: u64,
    ) -> Result<Allocation, CallError>;
    fn write(
        &mut self,
        si: &[u8],
        share_number: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), CallError>;
    fn close(&mut self, si: &[u8], share_number: u32) -> Result<(), CallError>;
    fn abort(&mut self, si: &[u8], share_number: u32) -> Result<(), CallError>;
    fn list_shares(&mut self, si: &[u8]) -> Result<Vec<u32>, CallError>;
    fn read(
        &mut self,
        si: &[u8],
        share_number: u32,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, CallError>;
    fn add_lease(&mut self, account: &Account, si: &[u8]) -> Result<u32, CallError>;
    fn list_leases(&mut self, si: &[u8]) -> Result<Vec<LeaseInfo>, CallError>;
    fn list_all_shares(
        &mut self,
        after: Option<(&[u8], u32)>,
        limit: u32,
    ) -> Result<Vec<ShareInfo>, CallError>;
    fn read_test_write(
        &mut self,
        account: &Account,
        si: &[u8],
        write_enabler: &[u8],
        writes: &[ShareWrites],
        read_vector: &[ByteRange],
    ) -> Result<ReadTestWriteResult, CallError>;
    fn mutable_read(
        &mut self,
        si: &[u8],
        share_numbers: &[u32],
        read_vector: &[ByteRange],
    ) -> Result<Vec<ShareReads>, CallError>;
    fn get_capabilities(&mut self) -> Result<Capabilities, CallError>;
    fn advise_corrupt(
        &mut self,
        account: &Account,
        share_type: AdvisedType,
        si: &[u8],
        share_number: u32,
        reason: &str,
    ) -> Result<(), CallError>;
    fn list_advisories(&mut self, after: i64, limit: u32) -> Result<Vec<Advisory>, CallError>;
    fn get_usage(&mut self, account: Option<&Account>) -> Result<Usage, CallError>;
    fn usage_by_account(&mut self) -> Result<Vec<AccountUsage>, CallError>;
    fn get_stats(&mut self) -> Result<Stats, CallError>;
    fn session_opened(&mut self, session: u64) -> Result<(), CallError>;
    fn session_closed(&mut self, session: u64) -> Result<u32, CallError>;
    fn crawler_configure(&mut self, config: CrawlerConfig) -> Result<(), CallError>;
    fn crawler_run_slice(
        &mut self,
        budget: Duration,
        force: bool,
    ) -> Result<SliceOutcome, CallError>;
    fn crawler_status(&mut self) -> Result<CrawlerStatus, CallError>;
    fn info(&mut self) -> Result<PluginInfo, CallError>;
    /// What the latest start of an instance reported (`init`).
    fn init_report(&self) -> InitReport;
}

/// Defines the cases of one file: each `pub fn name<H: Harness>(h: &H) { … }`
/// is emitted as written, and `foreach_<file>_case!(m)` expands to
/// `m!(<file>: name1 name2 …);`, naming every one of them. Invoke as
/// `declare_cases! { file, foreach_file_case, $; … }` (the `$` lets it write a
/// macro), with `Harness` in scope.
macro_rules! declare_cases {
    (
        $module:ident, $foreach:ident, $d:tt;
        $( $(#[$meta:meta])* pub fn $name:ident<H: Harness>($h:ident: &H) $body:block )*
    ) => {
        $( $(#[$meta])* pub fn $name<H: Harness>($h: &H) $body )*

        #[doc = concat!("Calls `m!(", stringify!($module), ": case…)` with every case of `cases::", stringify!($module), "`.")]
        #[macro_export]
        macro_rules! $foreach {
            ($d m:ident) => { $d m!($module: $($name)*); };
        }
    };
}
pub(crate) use declare_cases;

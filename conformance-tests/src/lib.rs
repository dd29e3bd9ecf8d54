//! The conformance suite: what any leasedb host + plugin pair must do (SPEC.md),
//! written once against the [`Harness`] and [`Host`] traits, in the shared
//! vocabulary of `leasedb-types`. Nothing here knows a particular host:
//! `host-runner` runs the cases in process (its `tests/all/conformance.rs`),
//! and the `conformance` runner runs them against any host through an adapter
//! process ([`adapter`], `ADAPTER.md`).
//!
//! A case is a `pub fn name<H: Harness>(h: &H)` in one of the files of
//! [`cases`], declared inside that file's `declare_cases!` block; the block also emits a
//! `foreach_<file>_case!` macro, and [`foreach_case!`] calls every one of them,
//! so a runner that expands `foreach_case!` has a test for every case by
//! construction (the `conformance` runner's list is made so).
//!
//! Cases talk to the plugin only through its operations ([`Operations`]),
//! reach the backend only through the harness's raw object hooks, and never
//! time anything.

#![warn(missing_docs)]

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A backend function, for injecting faults and counting calls.
pub use leasedb_types::backend::Operation as BackendOp;
/// The plugin's WIT types, as plain Rust.
pub use leasedb_types::plugin as wit;
pub use leasedb_types::{CallError, Operations};

use wit::{BackendError, CrawlerConfig, InitReport};

pub mod adapter;
pub mod cases;
pub mod client;
pub mod containers;
pub mod ids;

/// The time the harness's clock shows when it is created, in seconds since the epoch.
pub const START_TIME: i64 = 1_700_000_000;

/// How many bytes the harness's backend holds in all (its available space when empty).
pub const BACKEND_CAPACITY: u64 = 1 << 30;

/// Which build of the plugin component a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
    fn fail(&self, op: BackendOp, key_prefix: &str, error: BackendError);
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

/// A running host: the plugin's operations as the host exposes them. A call
/// either returns the plugin's answer, its typed error ([`CallError::Plugin`]),
/// or says the instance died or was unavailable. Dropping it stops the instance.
pub trait Host: Operations<Error = CallError> {
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

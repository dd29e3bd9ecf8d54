//! Bindings for `leasedb:plugin@0.1.0` (`wit/since_v0.1`, frozen).
//!
//! 0.1 differs from 0.2 only by lacking `lifecycle.schema-version`,
//! `begin-batch` and `commit-batch`. `types` (identifiers and the error
//! variant) is shared with the latest bindings through `with:`; exported interfaces always get types of their own, so
//! [`Convert`] lifts every 0.1 record into its latest twin (answers) and back
//! (arguments), field by field. Imports are linked under their 0.1 names, so
//! the `backend` import is generated here and delegates to the latest host
//! implementation; `types` (no functions) gets an empty instance under its
//! 0.1 name in [`add_to_linker`].

// The newest bindings, named directly (not through `bindings::latest`) so
// this module imports a sibling, never its parent.
use super::since_v0_2 as latest;
use super::version::InterfaceVersion;
use crate::plugin::imports::backend::BackendView;

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1",
    world: "plugin",
    with: {
        "leasedb:plugin/types": super::since_v0_2::leasedb::plugin::types,
    },
    additional_derives: [PartialEq, Eq],
});

/// The interface version these bindings were generated from.
pub const VERSION: InterfaceVersion = InterfaceVersion::new(0, 1, 0);

use leasedb::plugin::backend as old_backend;

impl old_backend::Host for BackendView<'_> {
    fn list_objects(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<old_backend::ListPage, old_backend::BackendError> {
        Ok(
            latest::leasedb::plugin::backend::Host::list_objects(self, prefix, start_after, limit)?
                .into(),
        )
    }

    fn read(
        &mut self,
        key: String,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, old_backend::BackendError> {
        Ok(latest::leasedb::plugin::backend::Host::read(
            self, key, offset, length,
        )?)
    }

    fn write(&mut self, key: String, data: Vec<u8>) -> Result<(), old_backend::BackendError> {
        Ok(latest::leasedb::plugin::backend::Host::write(
            self, key, data,
        )?)
    }

    fn delete(&mut self, key: String) -> Result<(), old_backend::BackendError> {
        Ok(latest::leasedb::plugin::backend::Host::delete(self, key)?)
    }

    fn size(&mut self, key: String) -> Result<u64, old_backend::BackendError> {
        Ok(latest::leasedb::plugin::backend::Host::size(self, key)?)
    }

    fn available_space(&mut self) -> Result<u64, old_backend::BackendError> {
        Ok(latest::leasedb::plugin::backend::Host::available_space(
            self,
        )?)
    }
}

impl From<latest::leasedb::plugin::backend::BackendError> for old_backend::BackendError {
    fn from(error: latest::leasedb::plugin::backend::BackendError) -> Self {
        use latest::leasedb::plugin::backend::BackendError as New;
        match error {
            New::NotFound => old_backend::BackendError::NotFound,
            New::Transient(why) => old_backend::BackendError::Transient(why),
            New::Permanent(why) => old_backend::BackendError::Permanent(why),
            New::InvalidKey(why) => old_backend::BackendError::InvalidKey(why),
        }
    }
}

impl From<latest::leasedb::plugin::backend::ListPage> for old_backend::ListPage {
    fn from(page: latest::leasedb::plugin::backend::ListPage) -> Self {
        old_backend::ListPage {
            entries: page
                .entries
                .into_iter()
                .map(|e| old_backend::ObjectEntry {
                    key: e.key,
                    size: e.size,
                })
                .collect(),
            next: page.next,
        }
    }
}

/// Adds the 0.1 imports (besides WASI) to `linker`.
pub fn add_to_linker(
    linker: &mut wasmtime::component::Linker<crate::plugin::state::HostState>,
) -> wasmtime::Result<()> {
    use crate::plugin::imports::backend::BackendImport;
    leasedb::plugin::backend::add_to_linker::<_, BackendImport>(linker, BackendImport::view)?;
    // `types` only declares types; its (empty) instance is still imported by name.
    linker.instance("leasedb:plugin/types@0.1.0")?;
    Ok(())
}

use super::convert::same;
/// Converts between a 0.1 value and its latest twin (both directions: answers
/// are lifted into the latest types, arguments lowered into 0.1's).
pub use super::convert::Convert;

// Shared with 0.1 through `with:`: the same Rust types.
same!(
    latest::leasedb::plugin::types::Error,
    latest::leasedb::plugin::types::Account,
    latest::leasedb::plugin::types::ByteRange
);

impl<A: Clone + Convert<B>, B> Convert<Vec<B>> for &[A] {
    fn convert(self) -> Vec<B> {
        self.iter().cloned().map(Convert::convert).collect()
    }
}

impl<A: Clone + Convert<B>, B> Convert<B> for &A {
    fn convert(self) -> B {
        self.clone().convert()
    }
}

/// Records (`{ fields }`) and enums (`[cases]`) with the same shape in both
/// versions, by interface and name.
macro_rules! twins {
    ($($iface:ident :: $name:ident { $($field:ident),* $(,)? })*) => {$(
        twins!(@record old::$iface::$name => new::$iface::$name { $($field),* });
        twins!(@record new::$iface::$name => old::$iface::$name { $($field),* });
    )*};
    (@record $from:ident :: $iface:ident :: $name:ident => $to:ident :: $i2:ident :: $n2:ident { $($field:ident),* }) => {
        impl Convert<$to::$i2::$n2> for $from::$iface::$name {
            fn convert(self) -> $to::$i2::$n2 {
                $to::$i2::$n2 { $($field: self.$field.convert()),* }
            }
        }
    };
}

macro_rules! twin_enums {
    ($($iface:ident :: $name:ident [ $($case:ident),* $(,)? ])*) => {$(
        twin_enums!(@enum old::$iface::$name => new::$iface::$name [ $($case),* ]);
        twin_enums!(@enum new::$iface::$name => old::$iface::$name [ $($case),* ]);
    )*};
    (@enum $from:ident :: $iface:ident :: $name:ident => $to:ident :: $i2:ident :: $n2:ident [ $($case:ident),* ]) => {
        impl Convert<$to::$i2::$n2> for $from::$iface::$name {
            fn convert(self) -> $to::$i2::$n2 {
                match self {
                    $($from::$iface::$name::$case => $to::$i2::$n2::$case),*
                }
            }
        }
    };
}

mod old {
    pub use super::exports::leasedb::plugin::*;
}
mod new {
    pub use super::latest::exports::leasedb::plugin::*;
}

twin_enums! {
    storage::ShareState [Coming, Stable, Going]
    storage::ShareType [Immutable, Mutable, Corrupted, Unknown]
    mutable::TestOperator [Lt, Le, Eq, Ne, Ge, Gt]
    accounting::AdvisedType [Immutable, Mutable]
}

twins! {
    storage::Allocation { already_have, allocated }
    storage::LeaseInfo { share_number, account_id, account_name, renewed, expires }
    storage::ShareInfo { storage_index, share_number, share_type, state, used_space }
    mutable::TestVector { offset, length, operator, specimen }
    mutable::WriteVector { offset, data }
    mutable::ShareWrites { share_number, tests, writes, new_length }
    mutable::ShareReads { share_number, data }
    mutable::ReadTestWriteResult { success, reads }
    accounting::Capabilities { max_immutable_size, max_mutable_size, available_space, leases_ignore_secrets }
    accounting::Usage { shares, bytes, sharesets }
    accounting::AccountUsage { account_id, name, usage }
    accounting::ShareCount { state, share_type, shares, bytes }
    accounting::Latency { operation, samples, p50, p90, p99 }
    accounting::Stats { shares, uploads_in_flight, allocated_in_flight, latencies }
    accounting::Advisory { id, share_type, storage_index, share_number, account_id, reason, reported }
    crawler::CrawlerConfig { policy, history_limit, min_cycle_seconds }
    crawler::Counts { shares, sharesets, bytes }
    crawler::Tally { total, immutable, mutable, corrupted }
    crawler::AgeBin { days, leases }
    crawler::ShareRef { storage_index, share_number }
    crawler::FailedPrefix { prefix, reason }
    crawler::CycleReport {
        cycle, started, finished, policy, prefixes_done, examined, recovered, added,
        disappeared, leases_expired, lease_ages, corrupt_shares, prefixes_failed,
        remaining_examined, remaining_recovered, cycle_examined, cycle_recovered,
    }
    crawler::CrawlerStatus { current, history, next_cycle_at }
    lifecycle::Config { chunk_size, lease_duration, max_immutable_size, max_mutable_size, node_id }
    lifecycle::InitReport { schema_version, uploads_removed, uploads_recovered, moved_aside }
    lifecycle::PluginInfo { version, interface_version }
}

/// Variants with payloads, both ways.
macro_rules! policy {
    ($from:ident => $to:ident) => {
        impl Convert<$to::crawler::ExpirationPolicy> for $from::crawler::ExpirationPolicy {
            fn convert(self) -> $to::crawler::ExpirationPolicy {
                use $from::crawler::ExpirationPolicy as F;
                use $to::crawler::ExpirationPolicy as T;
                match self {
                    F::Disabled => T::Disabled,
                    F::Age(seconds) => T::Age(seconds),
                    F::CutoffDate(cutoff) => T::CutoffDate(cutoff),
                }
            }
        }
        impl Convert<$to::crawler::SliceOutcome> for $from::crawler::SliceOutcome {
            fn convert(self) -> $to::crawler::SliceOutcome {
                use $from::crawler::SliceOutcome as F;
                use $to::crawler::SliceOutcome as T;
                match self {
                    F::Waiting(until) => T::Waiting(until),
                    F::Progressed(done) => T::Progressed(done),
                }
            }
        }
    };
}
policy!(old => new);
policy!(new => old);

//! Between the generated bindings of the latest interface and the shared
//! vocabulary (`leasedb-types`): the one place the host converts WIT values,
//! field by field, in both directions, written as a table of each type's
//! fields and cases.

use leasedb_types::{backend as v_backend, plugin as v};

use super::latest::exports::leasedb::plugin::{
    accounting as g_accounting, crawler as g_crawler, lifecycle as g_lifecycle,
    mutable as g_mutable, storage as g_storage,
};
use super::latest::leasedb::plugin::{backend as g_backend, types as g_types};

/// A WIT value in one set of Rust types becoming the same value in another.
pub trait Convert<T> {
    /// The same value, in `T`.
    fn convert(self) -> T;
}

macro_rules! unchanged {
    ($($t:ty),*) => {
        $(impl Convert<$t> for $t {
            fn convert(self) -> $t {
                self
            }
        })*
    };
}
unchanged!((), bool, u8, u32, u64, i64, String);

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(Convert::convert)
    }
}

impl<A: Convert<C>, B: Convert<D>, C, D> Convert<(C, D)> for (A, B) {
    fn convert(self) -> (C, D) {
        (self.0.convert(), self.1.convert())
    }
}

/// Records: `generated => vocabulary { field, … }`, converted both ways.
macro_rules! records {
    ($($g:ident::$gt:ident => $v:ident::$vt:ident { $($field:ident),* $(,)? })*) => {
        $(
            impl Convert<$v::$vt> for $g::$gt {
                fn convert(self) -> $v::$vt {
                    $v::$vt { $($field: self.$field.convert()),* }
                }
            }
            impl Convert<$g::$gt> for $v::$vt {
                fn convert(self) -> $g::$gt {
                    $g::$gt { $($field: self.$field.convert()),* }
                }
            }
        )*
    };
}

/// Variants and enums: `generated => vocabulary { Case, Case(payload), … }`, both ways.
macro_rules! variants {
    ($($g:ident::$gt:ident => $v:ident::$vt:ident { $($case:ident $(($p:ident))?),* $(,)? })*) => {
        $(
            impl Convert<$v::$vt> for $g::$gt {
                fn convert(self) -> $v::$vt {
                    match self {
                        $($g::$gt::$case $(($p))? => $v::$vt::$case $(($p.convert()))?,)*
                    }
                }
            }
            impl Convert<$g::$gt> for $v::$vt {
                fn convert(self) -> $g::$gt {
                    match self {
                        $($v::$vt::$case $(($p))? => $g::$gt::$case $(($p.convert()))?,)*
                    }
                }
            }
        )*
    };
}

records! {
    g_backend::ObjectEntry => v_backend::ObjectEntry { key, size }
    g_backend::ListPage => v_backend::ListPage { entries, next }
    g_types::ByteRange => v::ByteRange { offset, length }
    g_types::BeyondAllocated => v::BeyondAllocated { offset, length, allocated }
    g_types::TooLarge => v::TooLarge { what, requested, limit }
    g_storage::Allocation => v::Allocation { already_have, allocated }
    g_storage::LeaseInfo => v::LeaseInfo { share_number, account_id, account_name, renewed, expires }
    g_storage::ShareInfo => v::ShareInfo { storage_index, share_number, share_type, state, used_space }
    g_mutable::TestVector => v::TestVector { offset, length, operator, specimen }
    g_mutable::WriteVector => v::WriteVector { offset, data }
    g_mutable::ShareWrites => v::ShareWrites { share_number, tests, writes, new_length }
    g_mutable::ShareReads => v::ShareReads { share_number, data }
    g_mutable::ReadTestWriteResult => v::ReadTestWriteResult { success, reads }
    g_accounting::Capabilities => v::Capabilities {
        max_immutable_size, max_mutable_size, available_space, leases_ignore_secrets
    }
    g_accounting::Usage => v::Usage { shares, bytes, sharesets }
    g_accounting::AccountUsage => v::AccountUsage { account_id, name, usage }
    g_accounting::ShareCount => v::ShareCount { state, share_type, shares, bytes }
    g_accounting::Latency => v::Latency { operation, samples, p50, p90, p99 }
    g_accounting::Stats => v::Stats { shares, uploads_in_flight, allocated_in_flight, latencies }
    g_accounting::Advisory => v::Advisory {
        id, share_type, storage_index, share_number, account_id, reason, reported
    }
    g_crawler::CrawlerConfig => v::CrawlerConfig { policy, history_limit, min_cycle_seconds }
    g_crawler::Counts => v::Counts { shares, sharesets, bytes }
    g_crawler::Tally => v::Tally { total, immutable, mutable, corrupted }
    g_crawler::AgeBin => v::AgeBin { days, leases }
    g_crawler::ShareRef => v::ShareRef { storage_index, share_number }
    g_crawler::FailedPrefix => v::FailedPrefix { prefix, reason }
    g_crawler::CycleReport => v::CycleReport {
        cycle, started, finished, policy, prefixes_done, examined, recovered, added,
        disappeared, leases_expired, lease_ages, corrupt_shares, prefixes_failed,
        remaining_examined, remaining_recovered, cycle_examined, cycle_recovered
    }
    g_crawler::CrawlerStatus => v::CrawlerStatus { current, history, next_cycle_at }
    g_lifecycle::Config => v::Config {
        chunk_size, lease_duration, max_immutable_size, max_mutable_size, node_id
    }
    g_lifecycle::InitReport => v::InitReport {
        schema_version, uploads_removed, uploads_recovered, moved_aside
    }
    g_lifecycle::PluginInfo => v::PluginInfo { version, interface_version }
}

variants! {
    g_backend::BackendError => v_backend::BackendError {
        NotFound, Transient(why), Permanent(why), InvalidKey(why)
    }
    g_types::Account => v::Account { Anonymous, Named(name) }
    g_types::BadInput => v::BadInput {
        StorageIndexLength(n), ShareNumber(n), RangeOverflow(range), BeyondAllocated(b),
        TooLarge(t), AccountName(name), DuplicateShareNumber(n)
    }
    g_types::BackendFailure => v::BackendFailure { Transient(why), Permanent(why) }
    g_types::Error => v::PluginError {
        BadInput(bad), NotFound, NoUpload, Conflict(why), Corrupted(why), BadWriteEnabler(why),
        ShareBusy(why), Backend(failure), Database(why), NotReady
    }
    g_storage::ShareState => v::ShareState { Coming, Stable, Going }
    g_storage::ShareType => v::ShareType { Immutable, Mutable, Corrupted, Unknown }
    g_mutable::TestOperator => v::TestOperator { Lt, Le, Eq, Ne, Ge, Gt }
    g_accounting::AdvisedType => v::AdvisedType { Immutable, Mutable }
    g_crawler::ExpirationPolicy => v::ExpirationPolicy { Disabled, Age(secs), CutoffDate(date) }
    g_crawler::SliceOutcome => v::SliceOutcome { Waiting(at), Progressed(p) }
}

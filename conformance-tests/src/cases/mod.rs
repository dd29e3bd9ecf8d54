//! The cases, one file per area of SPEC.md. Each file declares its cases in a
//! `declare_cases!` block; the list below declares the files and, from the same names,
//! `foreach_case!`, so a file cannot be added without its cases being run.

/// Declares the case files and `foreach_case!` over all of them.
macro_rules! case_files {
    ($d:tt $( $(#[$meta:meta])* $module:ident => $foreach:ident ),* $(,)?) => {
        $( $(#[$meta])* pub mod $module; )*

        /// Calls `m!(file: case…)` once per file, with every case of that file.
        #[macro_export]
        macro_rules! foreach_case {
            ($d m:ident) => { $( $crate::$foreach!($d m); )* };
        }
    };
}

case_files! {$
    /// Immutable shares: upload, read back, allocate outcomes (SPEC §9).
    shares => foreach_shares_case,
    /// Share states COMING / STABLE / GOING and cold start (SPEC §6); stats.
    states => foreach_states_case,
    /// Mutable read-test-write and reads (SPEC §9).
    mutable => foreach_mutable_case,
    /// Leases and usage (SPEC §9).
    leases => foreach_leases_case,
    /// Shares the database does not know, and unreadable ones (SPEC §4, §7).
    discovery => foreach_discovery_case,
    /// Corrupted containers and corruption advisories (SPEC §4, §9).
    corruption => foreach_corruption_case,
    /// Client sessions (SPEC §6).
    sessions => foreach_sessions_case,
    /// Bad input on every operation (SPEC §10).
    bad_input => foreach_bad_input_case,
    /// Traps, runaway loops and memory bombs (SPEC §11).
    sandbox => foreach_sandbox_case,
    /// The accounting crawler (SPEC §8).
    crawler => foreach_crawler_case,
    /// The component's world: what it imports (SPEC §11).
    component => foreach_component_case,
    /// The fault matrix: every backend fault at every step, then a restart (SPEC §12).
    faults => foreach_faults_case,
}

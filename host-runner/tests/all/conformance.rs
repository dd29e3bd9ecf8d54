//! Every conformance case run in process against this host: a module per case
//! file and a `#[test]` per case, generated from `foreach_case!`, so no case
//! goes unrun. (`scripts/conformance.sh --host wasmtime` runs the same cases
//! through the adapter process.)

use std::path::PathBuf;

use host_runner::conformance::{Bundled, Components};

/// A fresh server running this checkout's components.
fn server() -> Bundled {
    Bundled::new(
        Components {
            shipped: leasedb_plugin_artifacts::PLUGIN_WASM.into(),
            test_faults: leasedb_plugin_fixtures::PLUGIN_TEST_FAULTS_WASM.into(),
        },
        // Kept between runs: only the first start of a component compiles it.
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance-compiled"),
    )
}

macro_rules! case_tests {
    ($module:ident: $($name:ident)*) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    conformance_tests::cases::$module::$name(&super::server());
                }
            )*
        }
    };
}

conformance_tests::foreach_case!(case_tests);

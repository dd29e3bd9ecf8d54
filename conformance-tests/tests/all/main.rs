//! Runs every conformance case against the bundled host-runner: a module per
//! case file and a `#[test]` per case, generated from `foreach_case!`, so no
//! case goes unrun.

mod harness;

use harness::Bundled;

macro_rules! case_tests {
    ($module:ident: $($name:ident)*) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    conformance_tests::cases::$module::$name(&super::Bundled::new());
                }
            )*
        }
    };
}

conformance_tests::foreach_case!(case_tests);

//! The component's world (SPEC §11) as a checked contract: it reaches nothing
//! but the backend interface and the basic WASI a sandbox grants (its
//! filesystem preopen, clocks, random, stdio); no sockets, no HTTP. The few
//! interfaces Rust's standard library imports whatever the plugin does are
//! listed apart, as inert: a host grants them empty.

use crate::{Component, Harness, Operations, Options};

/// What the plugin uses, as `package/interface` without version, and why.
const USED: &[(&str, &str)] = &[
    ("leasedb:plugin/backend", "object storage, lent by the host"),
    ("leasedb:plugin/types", "the backend's types (an interface without functions)"),
    ("wasi:filesystem/types", "its database, in its private directory"),
    ("wasi:filesystem/preopens", "finding that directory"),
    ("wasi:clocks/wall-clock", "lease times"),
    ("wasi:clocks/monotonic-clock", "crawler budgets and latencies"),
    ("wasi:random/random", "randomness"),
    ("wasi:random/insecure", "randomness"),
    ("wasi:random/insecure-seed", "hash seeds"),
    ("wasi:io/error", "stream errors of files and stdio"),
    ("wasi:io/streams", "file and stdio streams"),
    ("wasi:io/poll", "stream readiness"),
    ("wasi:cli/stdin", "stdio"),
    ("wasi:cli/stdout", "stdio"),
    ("wasi:cli/stderr", "stdio: panic messages"),
];

/// Imported by Rust's standard library, unused by the plugin: a host gives no
/// environment variables or arguments, `exit` only ends the instance, and no
/// stream is a terminal.
const INERT: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

fn check_imports<H: Harness>(h: &H, component: Component) {
    let imports = h.component_imports(component);
    assert!(imports.iter().any(|i| i.starts_with("leasedb:plugin/backend@")), "{imports:?}");
    for import in &imports {
        let name = import.split('@').next().unwrap();
        let known = USED.iter().any(|(used, _)| *used == name) || INERT.contains(&name);
        assert!(known, "{component:?} imports {import}, outside the sandbox's world");
        assert!(!name.contains("socket") && !name.contains("http"), "{import}");
    }
    // One WASI version: a host links one set of WASI interfaces.
    let mut versions: Vec<&str> = imports
        .iter()
        .filter(|i| i.starts_with("wasi:"))
        .filter_map(|i| i.split_once('@').map(|(_, v)| v))
        .collect();
    versions.dedup();
    versions.sort_unstable();
    versions.dedup();
    assert!(versions.len() <= 1, "{component:?} imports several WASI versions: {imports:?}");
}

crate::declare_cases! { component, foreach_component_case, $;

/// The shipped component imports only the backend, its types, basic WASI, and
/// the standard library's inert interfaces.
pub fn component_imports_only_backend_types_and_basic_wasi<H: Harness>(h: &H) {
    check_imports(h, Component::Shipped);
}

/// The test-faults build lives in the same world as the shipped one.
pub fn fault_fixture_imports_the_same_world<H: Harness>(h: &H) {
    check_imports(h, Component::TestFaults);
}

/// The plugin names the WIT package version it was built against.
pub fn plugin_reports_its_interface_version<H: Harness>(h: &H) {
    let mut host = h.start(&Options::default()).unwrap();
    let info = host.info().unwrap();
    assert!(info.interface_version.starts_with("0."), "{info:?}");
    assert!(!info.version.is_empty());
}

}

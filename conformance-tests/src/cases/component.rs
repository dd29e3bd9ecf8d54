//! The component's world (SPEC §11): it reaches nothing but the backend
//! interface and the basic WASI interfaces the host grants (clocks, random,
//! its filesystem preopen, I/O streams, stdio, environment, exit); no sockets,
//! no HTTP.

use crate::{Component, Harness, Operations, Options};

/// Interfaces a component may import, as `package/interface` without version.
const ALLOWED: &[&str] = &[
    "leasedb:plugin/backend",
    "leasedb:plugin/types",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:io/poll",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    // Part of stdio in wasi:cli: whether each stream is a terminal.
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:cli/environment",
    "wasi:cli/exit",
];

fn check_imports<H: Harness>(h: &H, component: Component) {
    let imports = h.component_imports(component);
    assert!(imports.iter().any(|i| i.starts_with("leasedb:plugin/backend@")), "{imports:?}");
    for import in &imports {
        let name = import.split('@').next().unwrap();
        assert!(ALLOWED.contains(&name), "{component:?} imports {import}, outside the sandbox's world");
        assert!(!name.contains("socket") && !name.contains("http"), "{import}");
    }
}

crate::declare_cases! { component, foreach_component_case, $;

/// The shipped component imports only the backend, the shared types and basic WASI.
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

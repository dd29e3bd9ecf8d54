//! The sandbox (SPEC §11): a plugin that traps, runs away or exhausts its
//! memory fails that one call; the host keeps running and the next call is
//! served, with every share and lease intact.

use std::time::Duration;

use crate::client::{all_rows, named, read_all, upload};
use crate::containers::pattern;
use crate::ids::si;
use crate::{CallError, Component, Harness, Operations, Options};

/// Triggers `fault` (an account name the test-faults build reacts to) and
/// checks the host survives it.
fn survives<H: Harness>(h: &H, fault: &str, expected: fn(&CallError) -> bool) {
    let options = Options {
        component: Component::TestFaults,
        call_deadline: Some(Duration::from_secs(1)),
        memory_cap: Some(128 << 20),
        ..Options::small_chunks()
    };
    let mut host = h.start(&options).unwrap();
    let si = si(1);
    let data = pattern(20_000, 1);
    upload(&mut host, 1, &named("alice"), &si, 0, &data);
    let rows = all_rows(&mut host);
    let leases = host.list_leases(&si).unwrap();

    let error = host.add_lease(&named(fault), &si).unwrap_err();
    assert!(expected(&error), "{fault}: unexpected {error:?}");
    assert!(error.killed_instance());

    assert_eq!(read_all(&mut host, &si, 0), data, "{fault}: the next call is served");
    assert_eq!(all_rows(&mut host), rows);
    assert_eq!(host.list_leases(&si).unwrap(), leases, "the failed call added no lease");
    assert_eq!(host.add_lease(&named("after"), &si).unwrap(), 1);
}

crate::declare_cases! { sandbox, foreach_sandbox_case, $;

/// A plugin that traps fails that call; the host serves the next one.
pub fn trapping_plugin_does_not_take_the_host_down<H: Harness>(h: &H) {
    survives(h, "fault-trap", |e| matches!(e, CallError::Trapped(_)));
}

/// A plugin that loops forever is stopped at the call deadline; the host serves the next call.
pub fn looping_plugin_hits_the_deadline_and_the_host_serves_on<H: Harness>(h: &H) {
    survives(h, "fault-loop", |e| *e == CallError::Deadline);
}

/// A plugin that allocates without bound is stopped at its memory cap; the host serves the next call.
pub fn memory_bomb_hits_the_cap_and_the_host_serves_on<H: Harness>(h: &H) {
    survives(h, "fault-oom", |e| *e == CallError::MemoryExhausted);
}

}

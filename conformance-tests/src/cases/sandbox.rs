//! The sandbox (SPEC §11, §12): a plugin that traps, runs away or exhausts
//! its memory fails that one call; the host keeps running and the next call
//! is served, with every share and lease intact and every other client's
//! upload in flight still writable.

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

/// A call that kills the instance fails alone: uploads other sessions have in
/// flight, with bytes buffered and chunks already stored, continue on the
/// fresh instance and close whole, as after a hot swap.
pub fn a_trap_leaves_other_uploads_in_flight_writable<H: Harness>(h: &H) {
    let options = Options {
        component: Component::TestFaults,
        call_deadline: Some(Duration::from_secs(1)),
        ..Options::small_chunks()
    };
    let mut host = h.start(&options).unwrap();
    let (a, b) = (si(11), si(12));
    let data = pattern(20_000, 11);
    host.session_opened(1).unwrap();
    host.session_opened(2).unwrap();
    assert_eq!(host.allocate(1, &named("alice"), &a, &[0], 20_000).unwrap().allocated, [0]);
    assert_eq!(host.allocate(2, &named("bob"), &b, &[3], 20_000).unwrap().allocated, [3]);
    // Past chunk 1 (stored) into chunk 2 (buffered); the last piece of `b` comes first.
    host.write(&a, 0, 0, &data[..9_000]).unwrap();
    host.write(&b, 3, 15_000, &data[15_000..]).unwrap();
    host.write(&b, 3, 0, &data[..5_000]).unwrap();

    let error = host.add_lease(&named("fault-trap"), &si(13)).unwrap_err();
    assert!(error.killed_instance(), "{error:?}");

    host.write(&a, 0, 9_000, &data[9_000..]).unwrap();
    host.write(&b, 3, 5_000, &data[5_000..15_000]).unwrap();
    host.close(&a, 0).unwrap();
    host.close(&b, 3).unwrap();
    assert_eq!(read_all(&mut host, &a, 0), data, "alice's share is whole");
    assert_eq!(read_all(&mut host, &b, 3), data, "bob's share is whole");
    assert_eq!(host.list_leases(&a).unwrap().len(), 1, "the writer's lease is there");
    // Closing a session still aborts what it left unfinished.
    assert_eq!(host.allocate(2, &named("bob"), &b, &[4], 10).unwrap().allocated, [4]);
    host.session_closed(2).unwrap();
    assert!(host.write(&b, 4, 0, b"late").is_err(), "the aborted upload is gone");
}

}

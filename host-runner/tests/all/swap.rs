//! Hot swap (SPEC §11) between real plugin builds: the release users run
//! (1b5d437), the product, the previous interface (0.1), a "next release"
//! with schema 4, and builds that must be refused or rolled back. Each test is named for the behaviour it protects.
//! (To move into `conformance-tests` once that suite has a swap harness.)

use host_runner::Operations;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::fixture::{wasm, Fixture};
use crate::release::RELEASE_1B5D437;
use host_runner::plugin::supervisor::PROBATION_DEATHS;
use host_runner::plugin::swap::Restored;
use host_runner::plugin::wit::{Account, ShareInfo, ShareState};
use host_runner::service::Service;
use host_runner::{CallError, PluginHost, StorageIndex, SwapError};
use leasedb_plugin_artifacts as artifacts;
use leasedb_plugin_fixtures as fixtures;

const PIECE: usize = 64 << 10;

fn product() -> Vec<u8> {
    artifacts::PLUGIN_BYTES.to_vec()
}

/// The shared fixture with small chunks, so an upload in flight has both
/// stored chunks and buffered bytes.
fn fixture() -> Fixture {
    let mut f = crate::fixture::fixture();
    f.config.chunk_size = 64 << 10;
    f
}

fn si(seed: u32) -> StorageIndex {
    StorageIndex(std::array::from_fn(|i| {
        (seed.wrapping_mul(2_654_435_761) >> (i % 4 * 8)) as u8 ^ i as u8
    }))
}

fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| {
            ((i as u64)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u64 * 7919)
                >> 7) as u8
        })
        .collect()
}

fn put(host: &mut PluginHost, session: u64, si: &StorageIndex, shnum: u32, bytes: &[u8]) {
    host.session_opened(session).unwrap();
    let a = host
        .allocate(
            session,
            &Account::Anonymous,
            si.as_bytes(),
            &[shnum],
            bytes.len() as u64,
        )
        .unwrap();
    assert_eq!(a.allocated, [shnum]);
    for (i, piece) in bytes.chunks(PIECE).enumerate() {
        host.write(si.as_bytes(), shnum, (i * PIECE) as u64, piece)
            .unwrap();
    }
    host.close(si.as_bytes(), shnum).unwrap();
    host.session_closed(session).unwrap();
}

fn read_all(host: &mut PluginHost, si: &StorageIndex, shnum: u32) -> Vec<u8> {
    host.read(si.as_bytes(), shnum, 0, u64::MAX >> 1).unwrap()
}

/// Everything a client could observe about stored shares: rows, leases, bytes.
fn observe(host: &mut PluginHost) -> Vec<(ShareInfo, Vec<(u64, String)>, Vec<u8>)> {
    let shares = host.list_all_shares(None, 10_000).unwrap();
    shares
        .into_iter()
        .map(|s| {
            let leases = host
                .list_leases(&s.storage_index)
                .unwrap()
                .into_iter()
                .filter(|l| l.share_number == s.share_number)
                .map(|l| (l.account_id, l.account_name))
                .collect();
            let bytes = if s.state == ShareState::Stable {
                host.read(&s.storage_index, s.share_number, 0, 1 << 30)
                    .unwrap()
            } else {
                Vec::new()
            };
            (s, leases, bytes)
        })
        .collect()
}

/// Some stable shares with an anonymous and a named lease.
fn populate(host: &mut PluginHost) {
    for n in 0..4 {
        let si = si(n);
        put(
            host,
            100 + n as u64,
            &si,
            n % 3,
            &data(100_000 + n as usize * 777, n),
        );
        host.add_lease(&Account::Named("alice".into()), si.as_bytes())
            .unwrap();
    }
}

/// An upload left half written in `session`; returns its full data.
fn start_upload(
    host: &mut PluginHost,
    session: u64,
    si: &StorageIndex,
    shnum: u32,
    len: usize,
) -> Vec<u8> {
    let bytes = data(len, session as u32 * 31 + shnum);
    host.session_opened(session).unwrap();
    let a = host
        .allocate(
            session,
            &Account::Anonymous,
            si.as_bytes(),
            &[shnum],
            len as u64,
        )
        .unwrap();
    assert_eq!(a.allocated, [shnum]);
    // Stops mid-chunk: some chunks stored, some bytes only buffered in memory.
    let half = len / 2 + 123;
    for (i, piece) in bytes[..half].chunks(PIECE - 1).enumerate() {
        host.write(si.as_bytes(), shnum, (i * (PIECE - 1)) as u64, piece)
            .unwrap();
    }
    bytes
}

fn finish_upload(host: &mut PluginHost, si: &StorageIndex, shnum: u32, bytes: &[u8]) {
    let half = bytes.len() / 2 + 123;
    for (i, piece) in bytes[half..].chunks(PIECE).enumerate() {
        host.write(si.as_bytes(), shnum, (half + i * PIECE) as u64, piece)
            .unwrap();
    }
    host.close(si.as_bytes(), shnum).unwrap();
}

#[test]
fn a_plugin_built_against_interface_0_1_runs_and_swaps_both_ways() {
    let f = fixture();
    let mut host = f.start_with(wasm(fixtures::PLUGIN_WIT_V0_1_WASM));
    assert_eq!(host.interface_version().to_string(), "0.1.0");
    assert_eq!(host.info().unwrap().interface_version, "0.1.0");
    populate(&mut host);
    let before = observe(&mut host);

    let up = host.swap(&product()).unwrap();
    assert_eq!(
        (
            up.old.interface_version.as_str(),
            up.new.interface_version.as_str()
        ),
        ("0.1.0", "0.2.0")
    );
    assert_eq!(host.interface_version().to_string(), "0.2.0");
    assert_eq!(observe(&mut host), before);

    let down = host.swap(&wasm(fixtures::PLUGIN_WIT_V0_1_WASM)).unwrap();
    assert_eq!(down.new.interface_version, "0.1.0");
    assert_eq!(observe(&mut host), before);
}

#[test]
fn swap_while_idle_changes_the_version_and_keeps_every_share_and_lease() {
    let f = fixture();
    // From the release users run (its version string is this build's).
    let mut host = f.start_with(wasm(RELEASE_1B5D437));
    populate(&mut host);
    let before = observe(&mut host);
    let old = host.info().unwrap();

    let report = host.swap(&wasm(fixtures::PLUGIN_SCHEMA_V2_WASM)).unwrap();
    assert_eq!(report.old, old);
    assert_eq!(report.new.version, format!("{}+next", old.version));
    // The release's schema 1, through this build's 3, to the fixture's 4.
    assert_eq!(report.schema, (1, 4));
    assert_eq!(host.info().unwrap(), report.new);
    assert_eq!(host.init_report().schema_version, 4);
    assert_eq!(observe(&mut host), before);
    // A fresh host on the same state directory runs the new schema too.
    drop(host);
    let mut again = f.start_with(wasm(fixtures::PLUGIN_SCHEMA_V2_WASM));
    assert_eq!(observe(&mut again), before);
}

#[test]
fn uploads_in_flight_continue_on_the_new_version_byte_identical() {
    let f = fixture();
    let mut host = f.start_with(wasm(RELEASE_1B5D437));
    // Several sessions, several uploads each, every one interrupted mid-chunk.
    let mut uploads = Vec::new();
    for session in 1..=3u64 {
        for shnum in 0..2u32 {
            let si = si(1000 + session as u32);
            let bytes = start_upload(
                &mut host,
                session,
                &si,
                shnum,
                300_000 + shnum as usize * 4321,
            );
            uploads.push((si, shnum, bytes));
        }
    }
    let report = host.swap(&wasm(fixtures::PLUGIN_SCHEMA_V2_WASM)).unwrap();
    assert_eq!(report.uploads_in_flight, 6);
    assert!(report.handover_bytes > 0);
    for (si, shnum, bytes) in &uploads {
        finish_upload(&mut host, si, *shnum, bytes);
    }
    for (si, shnum, bytes) in &uploads {
        assert!(
            read_all(&mut host, si, *shnum) == *bytes,
            "{si}/{shnum} differs after the swap"
        );
    }
    assert_eq!(host.get_stats().unwrap().uploads_in_flight, 0);
}

/// Every failed swap leaves the old version serving with all its state,
/// including an upload in flight, which then finishes byte-identical.
#[test]
fn failed_swaps_roll_back_with_all_state() {
    let f = fixture();
    let mut host = f.start();
    populate(&mut host);
    let upload_si = si(77);
    let bytes = start_upload(&mut host, 9, &upload_si, 3, 200_000);
    let before = observe(&mut host);
    let info = host.info().unwrap();

    let not_wasm = b"definitely not a component".to_vec();
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let cases: Vec<(&str, Vec<u8>, fn(&SwapError) -> bool)> = vec![
        ("random bytes", not_wasm, |e| {
            matches!(e, SwapError::Compile(_))
        }),
        ("a core module", core_module, |e| {
            matches!(e, SwapError::Compile(_))
        }),
        (
            "interface 1.0.0",
            wasm(fixtures::PLUGIN_MAJOR_1_WASM),
            |e| {
                matches!(e, SwapError::Version(_))
                    && e.to_string().contains("leasedb:plugin@1.0.0")
                    && e.to_string().contains("0.2.0")
            },
        ),
        (
            "a failing migration",
            wasm(fixtures::PLUGIN_BAD_MIGRATION_WASM),
            |e| {
                matches!(
                    e,
                    SwapError::Start {
                        restored: Restored::Fully,
                        ..
                    }
                ) && e.to_string().contains("migrating")
            },
        ),
        (
            "a trap in the first call",
            wasm(fixtures::PLUGIN_TRAP_FIRST_CALL_WASM),
            |e| {
                matches!(
                    e,
                    SwapError::FirstCalls {
                        restored: Restored::Fully,
                        ..
                    }
                )
            },
        ),
    ];
    for (what, candidate, expected) in cases {
        let error = host.swap(&candidate).expect_err(what);
        assert!(expected(&error), "{what}: unexpected {error:?}: {error}");
        assert_eq!(
            host.info().unwrap(),
            info,
            "{what}: the old version must serve"
        );
        assert_eq!(host.init_report().schema_version, 3, "{what}");
        assert_eq!(observe(&mut host), before, "{what}: state changed");
        assert_eq!(host.get_stats().unwrap().uploads_in_flight, 1, "{what}");
    }
    finish_upload(&mut host, &upload_si, 3, &bytes);
    assert!(read_all(&mut host, &upload_si, 3) == bytes);
    // And a good swap still works afterwards.
    host.swap(&wasm(fixtures::PLUGIN_SCHEMA_V2_WASM)).unwrap();
}

#[test]
fn a_downgrade_across_a_schema_change_is_refused() {
    let f = fixture();
    let mut host = f.start();
    populate(&mut host);
    host.swap(&wasm(fixtures::PLUGIN_SCHEMA_V2_WASM)).unwrap();
    let before = observe(&mut host);
    let next = host.info().unwrap();

    let error = host.swap(&product()).unwrap_err();
    assert_eq!(
        error,
        SwapError::Downgrade {
            on_disk: 4,
            plugin: 3
        }
    );
    assert!(error.refused());
    assert!(error.to_string().contains("schema version 4"), "{error}");

    // Interface 0.1 cannot say its schema up front: it is tried, refuses the
    // newer database in `init`, and the next release comes back.
    let error = host
        .swap(&wasm(fixtures::PLUGIN_WIT_V0_1_WASM))
        .unwrap_err();
    assert!(
        matches!(
            error,
            SwapError::Start {
                restored: Restored::Fully,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("newer"), "{error}");
    assert_eq!(host.info().unwrap(), next);
    assert_eq!(observe(&mut host), before);
}

#[test]
fn a_session_closed_during_the_swap_still_aborts_its_uploads_afterwards() {
    let f = fixture();
    let mut host = f.start();
    let kept_si = si(5);
    let kept = start_upload(&mut host, 1, &kept_si, 0, 150_000);
    let dropped_si = si(6);
    start_upload(&mut host, 2, &dropped_si, 0, 150_000);
    let preparer = host.preparer();
    let (service, thread) = Service::from_host(host);

    let prepared = preparer
        .prepare(&wasm(fixtures::PLUGIN_SCHEMA_V2_WASM))
        .unwrap();
    // Hold the service thread, queue the swap, then the close behind it.
    let (open_gate, gate) = std::sync::mpsc::channel::<()>();
    let busy = {
        let service = service.clone();
        thread::spawn(move || {
            service
                .call_blocking(move |_| gate.recv().unwrap())
                .unwrap()
        })
    };
    thread::sleep(Duration::from_millis(100));
    let swap = {
        let service = service.clone();
        thread::spawn(move || service.call_blocking(move |h| h.swap_to(prepared)).unwrap())
    };
    thread::sleep(Duration::from_millis(100));
    let close = {
        let service = service.clone();
        thread::spawn(move || {
            service
                .call_blocking(|h| h.session_closed(2).unwrap())
                .unwrap()
        })
    };
    thread::sleep(Duration::from_millis(100));
    open_gate.send(()).unwrap();
    busy.join().unwrap();
    let report = swap.join().unwrap().unwrap();
    assert_eq!(report.uploads_in_flight, 2, "both uploads were handed over");
    assert_eq!(
        close.join().unwrap(),
        1,
        "the close, held during the swap, aborted its upload"
    );
    service
        .call_blocking(move |h| {
            assert_eq!(h.get_stats().unwrap().uploads_in_flight, 1);
            assert_eq!(
                h.list_shares(dropped_si.as_bytes()).unwrap(),
                Vec::<u32>::new()
            );
            assert!(h
                .list_all_shares(None, 100)
                .unwrap()
                .iter()
                .all(|s| s.storage_index != dropped_si.as_bytes()));
            finish_upload(h, &kept_si, 0, &kept);
            assert!(read_all(h, &kept_si, 0) == kept);
        })
        .unwrap();
    drop(service);
    thread.join();
}

/// Clients keep calling through the service thread while swaps happen; every
/// request succeeds and every stored share reads back.
#[test]
fn swap_under_load_fails_no_request_and_loses_no_result() {
    let f = fixture();
    let host = f.start();
    let preparer = host.preparer();
    let (service, thread) = Service::from_host(host);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3u32)
        .map(|c| {
            let service = service.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut stored = Vec::new();
                let mut longest = Duration::ZERO;
                let mut n = 0u32;
                while !stop.load(Ordering::SeqCst) || n < 5 {
                    let si = si(10_000 + c * 100_000 + n);
                    let bytes = data(20_000 + (n as usize % 7) * 1000, n);
                    let session = (c as u64) << 32 | n as u64;
                    let started = Instant::now();
                    let b = bytes.clone();
                    service
                        .call_blocking(move |h| put(h, session, &si, 0, &b))
                        .unwrap();
                    let got = service.call_blocking(move |h| read_all(h, &si, 0)).unwrap();
                    assert!(got == bytes, "client {c}: {si} read back differently");
                    service
                        .call_blocking(move |h| {
                            h.add_lease(&Account::Named(format!("client{c}")), si.as_bytes())
                                .unwrap()
                        })
                        .unwrap();
                    longest = longest.max(started.elapsed() / 3);
                    stored.push((si, bytes));
                    n += 1;
                }
                (stored, longest)
            })
        })
        .collect();
    let mut pauses = Vec::new();
    let builds = [wasm(fixtures::PLUGIN_WIT_V0_1_WASM), product()];
    for round in 0..6 {
        thread::sleep(Duration::from_millis(150));
        let prepared = preparer.prepare(&builds[round % 2]).unwrap();
        let report = service
            .call_blocking(move |h| h.swap_to(prepared))
            .unwrap()
            .unwrap();
        pauses.push(report.pause);
    }
    stop.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    let mut longest = Duration::ZERO;
    for client in clients {
        let (stored, l) = client.join().unwrap();
        longest = longest.max(l);
        all.extend(stored);
    }
    let count = all.len();
    service
        .call_blocking(move |h| {
            for (si, bytes) in &all {
                assert!(read_all(h, si, 0) == *bytes, "{si} lost");
            }
        })
        .unwrap();
    eprintln!(
        "swap under load: {count} shares stored, swap pauses {pauses:?}, longest request {longest:?}"
    );
    drop(service);
    thread.join();
}

#[test]
fn a_freshly_swapped_version_that_keeps_trapping_is_rolled_back() {
    let f = fixture();
    let mut host = f.start();
    populate(&mut host);
    let before = observe(&mut host);
    host.swap(&wasm(fixtures::PLUGIN_TEST_FAULTS_WASM)).unwrap();
    let si = si(1);
    for death in 1..=PROBATION_DEATHS {
        let error = host
            .add_lease(&Account::Named("fault-trap".into()), si.as_bytes())
            .unwrap_err();
        assert!(
            matches!(error, CallError::Trapped(_)),
            "death {death}: {error:?}"
        );
    }
    assert_eq!(
        host.crash_rollbacks(),
        1,
        "{:?}",
        host.last_crash_rollback()
    );
    // The product ignores the fault account: it is the one serving again.
    host.add_lease(&Account::Named("fault-trap".into()), si.as_bytes())
        .unwrap();
    let mut after = observe(&mut host);
    for (_, leases, _) in after.iter_mut() {
        leases.retain(|(_, name)| name != "fault-trap");
    }
    assert_eq!(after, before);
}

#[test]
fn a_plugin_that_keeps_trapping_is_restarted_with_back_off() {
    let f = fixture();
    let mut host = f.start_with(wasm(fixtures::PLUGIN_TEST_FAULTS_WASM));
    let si = si(2);
    put(&mut host, 1, &si, 0, b"kept");
    let trap = Account::Named("fault-trap".into());
    for _ in 0..=host_runner::plugin::supervisor::IMMEDIATE_RESTARTS {
        assert!(host
            .add_lease(&trap, si.as_bytes())
            .unwrap_err()
            .killed_instance());
    }
    // Four deaths in a row: the restart now waits.
    let error = host.list_shares(si.as_bytes()).unwrap_err();
    assert!(matches!(error, CallError::Unavailable(_)), "{error:?}");
    thread::sleep(host_runner::plugin::supervisor::FIRST_BACKOFF + Duration::from_millis(20));
    assert_eq!(host.list_shares(si.as_bytes()).unwrap(), [0]);
    assert_eq!(read_all(&mut host, &si, 0), b"kept");
}

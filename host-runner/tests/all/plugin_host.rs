//! The plugin run through `PluginHost`: share data survives the round trip, the
//! compile cache is reused, and a plugin that traps, loops or exhausts memory
//! costs one call, never the host.

use host_runner::Operations;
use std::time::{Duration, Instant};

use crate::fixture::{fixture, Fixture};
use host_runner::plugin::wit::{Account, PluginError};
use host_runner::{CallError, CompileOutcome, ObjectStore, PluginHost, StorageIndex};
use leasedb_plugin_fixtures::PLUGIN_TEST_FAULTS_WASM;

const PIECE: usize = 1 << 20;

fn si(seed: u8) -> StorageIndex {
    StorageIndex(std::array::from_fn(|i| {
        seed.wrapping_mul(37).wrapping_add(i as u8)
    }))
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u64) as u8
        })
        .collect()
}

fn put(host: &mut PluginHost, si: &StorageIndex, shnum: u32, bytes: &[u8]) {
    host.session_opened(7).unwrap();
    let allocation = host
        .allocate(
            7,
            &Account::Anonymous,
            si.as_bytes(),
            &[shnum],
            bytes.len() as u64,
        )
        .unwrap();
    assert_eq!(allocation.allocated, [shnum]);
    for (i, piece) in bytes.chunks(PIECE).enumerate() {
        host.write(si.as_bytes(), shnum, (i * PIECE) as u64, piece)
            .unwrap();
    }
    host.close(si.as_bytes(), shnum).unwrap();
    host.session_closed(7).unwrap();
}

fn read_all(host: &mut PluginHost, si: &StorageIndex, shnum: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let piece = host
            .read(si.as_bytes(), shnum, out.len() as u64, PIECE as u64)
            .unwrap();
        let short = piece.len() < PIECE;
        out.extend(piece);
        if short {
            return out;
        }
    }
}

#[test]
fn share_data_round_trips_at_chunk_boundaries() {
    let fixture = fixture();
    let mut host = fixture.start();
    let sizes = [0, 1, 512 << 10, (512 << 10) + 1, (3 << 20) + 7];
    for (n, &size) in sizes.iter().enumerate() {
        let si = si(n as u8);
        let bytes = data(size, n as u8);
        put(&mut host, &si, 3, &bytes);
        assert_eq!(host.list_shares(si.as_bytes()).unwrap(), [3]);
        let back = read_all(&mut host, &si, 3);
        assert!(
            back == bytes,
            "share of {size} bytes came back as {} different bytes",
            back.len()
        );
    }
    // A fresh host (cold start on the same state) still serves them.
    drop(host);
    let mut host = fixture.start();
    for (n, &size) in sizes.iter().enumerate() {
        assert_eq!(read_all(&mut host, &si(n as u8), 3).len(), size);
    }
}

/// The component's SQLite build defaults to 8 KiB pages; the plugin asks
/// for 4 KiB, so each dirty page a lease change writes to the WAL is half.
#[test]
fn the_component_creates_its_database_with_4_kib_pages() {
    let fixture = fixture();
    let mut host = fixture.start();
    put(&mut host, &si(1), 0, b"a share");
    drop(host);
    let db = std::fs::read(fixture.config.plugin_dir().join("leasedb.sqlite3")).unwrap();
    // The header's page size: big-endian u16 at offset 16.
    assert_eq!(u16::from_be_bytes([db[16], db[17]]), 4096);
}

#[test]
fn second_start_loads_the_compiled_component_from_cache() {
    let fixture = fixture();
    let first = fixture.start();
    let CompileOutcome::Compiled(path) = first.compile_outcome().clone() else {
        panic!(
            "a fresh state directory cannot have a cached component: {:?}",
            first.compile_outcome()
        );
    };
    assert!(path.starts_with(fixture.config.cache_dir()) && path.is_file());
    drop(first);
    let second = fixture.start();
    assert_eq!(second.compile_outcome(), &CompileOutcome::CacheHit(path));
}

#[test]
fn typed_plugin_errors_leave_the_instance_alone() {
    let fixture = fixture();
    let mut host = fixture.start();
    let refused = host.list_shares(&[0; 5]).unwrap_err();
    assert!(
        matches!(refused, CallError::Plugin(PluginError::BadInput(_))),
        "{refused:?}"
    );
    assert!(!refused.killed_instance());
    assert_eq!(host.restarts(), 0);
}

fn faulty_fixture() -> Fixture {
    let mut fixture = fixture();
    fixture.config.wasm = std::fs::read(PLUGIN_TEST_FAULTS_WASM).unwrap().into();
    fixture.config.sandbox.call_deadline = Duration::from_secs(1);
    fixture.config.sandbox.memory_cap = 128 << 20;
    fixture
}

/// Triggers `fault` through `add_lease`, checks the error, then checks that the
/// restarted instance serves a share stored before the fault.
fn survives(fault: &str, expected: fn(&CallError) -> bool) {
    let fixture = faulty_fixture();
    let mut host = fixture.start();
    let si = si(200);
    let bytes = data(100_000, 9);
    put(&mut host, &si, 0, &bytes);

    let started = Instant::now();
    let error = host
        .add_lease(&Account::Named(fault.into()), si.as_bytes())
        .unwrap_err();
    assert!(expected(&error), "{fault}: unexpected {error:?}");
    assert!(error.killed_instance());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{fault} took {:?}",
        started.elapsed()
    );
    assert_eq!(host.restarts(), 1);

    assert_eq!(
        read_all(&mut host, &si, 0),
        bytes,
        "{fault}: the next call must be served"
    );
    assert_eq!(
        host.add_lease(&Account::Named("after-fault".into()), si.as_bytes())
            .unwrap(),
        1
    );
    assert!(fixture
        .store
        .size(&format!("shares/{}/{si}/0", si.prefix()))
        .is_ok());
}

#[test]
fn a_trapping_plugin_costs_one_call() {
    survives("fault-trap", |e| matches!(e, CallError::Trapped(_)));
}

#[test]
fn a_looping_plugin_hits_the_deadline() {
    survives("fault-loop", |e| *e == CallError::Deadline);
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    survives("fault-oom", |e| *e == CallError::MemoryExhausted);
}

/// A cold start whose recovery outlasts one call's deadline (here: a backend
/// listing that hangs past it) still starts; the start has its own, longer
/// deadline, so a slow backend cannot keep the server from ever coming up.
#[test]
fn a_cold_start_slower_than_the_call_deadline_still_starts() {
    let mut fixture = fixture();
    fixture.config.sandbox.call_deadline = Duration::from_millis(200);
    let store = std::sync::Arc::new(host_runner::FaultyStore::new(fixture.store.clone()));
    let si = si(201);
    {
        let mut host = PluginHost::start(fixture.config.clone(), store.clone()).unwrap();
        host.session_opened(3).unwrap();
        host.allocate(3, &Account::Anonymous, si.as_bytes(), &[0], 10)
            .unwrap();
        host.write(si.as_bytes(), 0, 0, b"unfinished").unwrap();
    } // the upload never closes: the next start must resolve it
    store.crash_during(
        host_runner::backend::Operation::List,
        "",
        Duration::from_millis(700),
    );

    let mut host = PluginHost::start(fixture.config.clone(), store.clone())
        .expect("a slow cold start is not cut off at the call deadline");
    assert_eq!(host.restarts(), 0);
    assert_eq!(host.list_shares(si.as_bytes()).unwrap(), Vec::<u32>::new());
}

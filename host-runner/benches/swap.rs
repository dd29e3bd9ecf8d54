//! Hot-swap pause (SPEC §11): the time calls are held, from the swap reaching
//! the service thread to the next call being served, over 50 swaps under a
//! client load, with 1, 10 and 100 uploads in flight (each with buffered,
//! not yet stored bytes). Issue 13's goal, printed beside the figures: every
//! pause within 5 ms with 10 uploads in flight.
//!
//! `cargo bench -p host-runner --bench swap` (a plain binary; prints numbers).
//! Swaps alternate between the product and the `test-faults` build (same
//! interface and schema, different component), prepared off the service thread.

use host_runner::Operations;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use host_runner::plugin::wit::Account;
use host_runner::service::Service;
use host_runner::{DirStore, HostConfig, PluginHost, StorageIndex};
use leasedb_plugin_artifacts as artifacts;
use leasedb_plugin_fixtures as fixtures;

const SWAPS: usize = 50;

/// The pause issue 13 asks for, held by the longest of the swaps with this
/// many uploads in flight.
const GOAL: Duration = Duration::from_millis(5);
const GOAL_IN_FLIGHT: u32 = 10;
const CHUNK: u32 = 64 << 10;

fn si(a: u32, b: u32) -> StorageIndex {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&a.to_be_bytes());
    bytes[4..8].copy_from_slice(&b.to_be_bytes());
    bytes[8] = 0x5a;
    StorageIndex(bytes)
}

fn put(host: &mut PluginHost, session: u64, si: &StorageIndex, bytes: &[u8]) {
    host.session_opened(session).unwrap();
    host.allocate(
        session,
        &Account::Anonymous,
        si.as_bytes(),
        &[0],
        bytes.len() as u64,
    )
    .unwrap();
    host.write(si.as_bytes(), 0, 0, bytes).unwrap();
    host.close(si.as_bytes(), 0).unwrap();
    host.session_closed(session).unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn run(in_flight: u32) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path().join("state"));
    config.chunk_size = CHUNK;
    let store = Arc::new(DirStore::open(dir.path().join("storage")).unwrap());
    let mut host = PluginHost::start(config, store).unwrap();

    // Uploads in flight: 1.5 chunks written, so half a chunk is only in memory.
    let written = vec![7u8; CHUNK as usize * 3 / 2];
    for n in 0..in_flight {
        let si = si(1, n);
        host.session_opened(n as u64 + 1).unwrap();
        host.allocate(
            n as u64 + 1,
            &Account::Anonymous,
            si.as_bytes(),
            &[0],
            CHUNK as u64 * 4,
        )
        .unwrap();
        host.write(si.as_bytes(), 0, 0, &written).unwrap();
    }
    let preparer = host.preparer();
    let builds = [
        artifacts::PLUGIN_BYTES.to_vec(),
        std::fs::read(fixtures::PLUGIN_TEST_FAULTS_WASM).unwrap(),
    ];
    let prepared_once: Vec<_> = builds
        .iter()
        .map(|b| preparer.prepare(b).unwrap())
        .collect();
    drop(prepared_once); // warms the compile cache
    let (service, thread) = Service::from_host(host);

    // The load: two clients storing and reading small shares, timing each request.
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..2u32)
        .map(|c| {
            let (service, stop, requests) = (service.clone(), stop.clone(), requests.clone());
            thread::spawn(move || {
                let mut longest = Duration::ZERO;
                let mut n = 0;
                let bytes = vec![c as u8; 8 << 10];
                while !stop.load(Ordering::SeqCst) {
                    let si = si(100 + c, n);
                    let b = bytes.clone();
                    let started = Instant::now();
                    service
                        .call_blocking(move |h| put(h, 1 << 40 | n as u64, &si, &b))
                        .unwrap();
                    longest = longest.max(started.elapsed());
                    let started = Instant::now();
                    let back = service
                        .call_blocking(move |h| h.read(si.as_bytes(), 0, 0, 1 << 20).unwrap())
                        .unwrap();
                    longest = longest.max(started.elapsed());
                    assert_eq!(back, bytes);
                    requests.fetch_add(2, Ordering::Relaxed);
                    n += 1;
                }
                longest
            })
        })
        .collect();

    let mut pauses = Vec::with_capacity(SWAPS);
    let mut handover = 0;
    for i in 0..SWAPS {
        thread::sleep(Duration::from_millis(20));
        let prepared = preparer.prepare(&builds[(i + 1) % 2]).unwrap();
        let report = service
            .call_blocking(move |h| h.swap_to(prepared))
            .unwrap()
            .unwrap();
        assert_eq!(report.uploads_in_flight, in_flight as u64);
        handover = report.handover_bytes;
        pauses.push(report.pause);
    }
    stop.store(true, Ordering::SeqCst);
    let longest_request = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .max()
        .unwrap();
    drop(service);
    thread.join();

    pauses.sort();
    println!(
        "in-flight uploads {in_flight:>3}: swap pause median {:6.2} ms, p90 {:6.2} ms, max {:6.2} ms \
         over {SWAPS} swaps; handover {:>8} bytes; {} requests under load, longest request {:6.2} ms",
        ms(percentile(&pauses, 0.5)),
        ms(percentile(&pauses, 0.9)),
        ms(pauses[pauses.len() - 1]),
        handover,
        requests.load(Ordering::Relaxed),
        ms(longest_request),
    );
    if in_flight == GOAL_IN_FLIGHT {
        let longest = pauses[pauses.len() - 1];
        println!(
            "  goal (issue 13): every pause <= {} ms with {GOAL_IN_FLIGHT} uploads in flight: {}",
            GOAL.as_millis(),
            if longest <= GOAL { "met" } else { "MISSED" }
        );
    }
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent; keep it quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick {
        println!("swap bench: run with `cargo bench -p host-runner --bench swap` for numbers");
        return;
    }
    for in_flight in [1, 10, 100] {
        run(in_flight);
    }
}

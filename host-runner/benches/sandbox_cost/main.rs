//! What the sandbox costs: the same workloads through the wasm component
//! (PluginHost) and through the engine linked natively, side by side in one
//! run, on the same kind of storage (a DirStore in a temporary directory,
//! durable writes, the database in WAL mode with full syncs).
//!
//! `cargo bench -p host-runner --bench sandbox_cost` prints operations per
//! second for each and wasm÷native, with the goal (0.9) beside it. `LEASEDB_BENCH_SHARES` sets the
//! size of the crawler's generated store (default 100000);
//! `LEASEDB_BENCH_COMPONENT=PATH` runs another build of the component (an
//! older release, to compare) instead of the shipped one.

mod native;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_runner::plugin::wit;
use host_runner::{DirStore, HostConfig, ObjectStore, Operations, PluginHost};
use leasedb_plugin::crawler::SliceOutcome;
use leasedb_plugin::mutable_write::{ShareWrites, WriteVector};
use leasedb_plugin::{Account, Config, LeaseDb};
use native::NativeBackend;

type Native = LeaseDb<NativeBackend>;

/// One engine under test, either way.
enum Engine {
    Wasm(Box<PluginHost>),
    Native(Box<Native>),
}

fn si(n: u32) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..4].copy_from_slice(&n.to_be_bytes());
    s[4..8].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    s
}

impl Engine {
    fn start(wasm: bool, storage: &Path, state: &Path) -> Engine {
        let store: Arc<dyn ObjectStore> = Arc::new(DirStore::open(storage).unwrap());
        if wasm {
            let mut config = HostConfig::new(state);
            config.sandbox.call_deadline = Duration::from_secs(600);
            // Another build of the component (e.g. an older release) to compare with.
            if let Some(path) = std::env::var_os("LEASEDB_BENCH_COMPONENT") {
                config.wasm = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("LEASEDB_BENCH_COMPONENT {path:?}: {e}"))
                    .into();
            }
            Engine::Wasm(Box::new(PluginHost::start(config, store).unwrap()))
        } else {
            std::fs::create_dir_all(state).unwrap();
            let path = state.join("native.sqlite3");
            let (db, _) = LeaseDb::open(
                path.to_str().unwrap(),
                NativeBackend(store),
                Config::default(),
            )
            .unwrap();
            Engine::Native(Box::new(db))
        }
    }

    fn upload(&mut self, si: &[u8; 16], data: &[u8], piece: usize) {
        match self {
            Engine::Wasm(h) => {
                let a = h
                    .allocate(1, &wit::Account::Anonymous, si, &[0], data.len() as u64)
                    .unwrap();
                assert_eq!(a.allocated, vec![0]);
                for (i, p) in data.chunks(piece.max(1)).enumerate() {
                    h.write(si, 0, (i * piece) as u64, p).unwrap();
                }
                h.close(si, 0).unwrap();
            }
            Engine::Native(db) => {
                let a = db
                    .allocate(1, &Account::Anonymous, si, &[0], data.len() as u64)
                    .unwrap();
                assert_eq!(a.allocated.len(), 1);
                for (i, p) in data.chunks(piece.max(1)).enumerate() {
                    db.write(si, 0, (i * piece) as u64, p).unwrap();
                }
                db.close(si, 0).unwrap();
            }
        }
    }

    fn add_lease(&mut self, account: &str, si: &[u8; 16]) {
        match self {
            Engine::Wasm(h) => {
                h.add_lease(&wit::Account::Named(account.into()), si)
                    .unwrap();
            }
            Engine::Native(db) => {
                db.add_lease(&Account::named(account).unwrap(), si).unwrap();
            }
        }
    }

    fn mutable_write(&mut self, si: &[u8; 16], data: &[u8]) {
        match self {
            Engine::Wasm(h) => {
                let w = wit::ShareWrites {
                    share_number: 0,
                    tests: vec![],
                    writes: vec![wit::WriteVector {
                        offset: 0,
                        data: data.to_vec(),
                    }],
                    new_length: None,
                };
                assert!(
                    h.read_test_write(&wit::Account::Anonymous, si, &[7; 32], &[w], &[])
                        .unwrap()
                        .success
                );
            }
            Engine::Native(db) => {
                let w = ShareWrites {
                    shnum: 0,
                    tests: vec![],
                    writes: vec![WriteVector {
                        offset: 0,
                        data: data.to_vec(),
                    }],
                    new_length: None,
                };
                assert!(
                    db.read_test_write(&Account::Anonymous, si, &[7; 32], &[w], &[])
                        .unwrap()
                        .success
                );
            }
        }
    }

    fn begin_batch(&mut self) {
        match self {
            Engine::Wasm(h) => h.begin_batch().unwrap(),
            Engine::Native(db) => db.begin_batch().unwrap(),
        }
    }

    fn commit_batch(&mut self) {
        match self {
            Engine::Wasm(h) => h.commit_batch().unwrap(),
            Engine::Native(db) => db.commit_batch().unwrap(),
        }
    }

    /// Runs one whole crawler cycle now.
    fn crawl_cycle(&mut self) {
        loop {
            let finished = match self {
                Engine::Wasm(h) => matches!(
                    h.crawler_run_slice(Duration::from_secs(5), true).unwrap(),
                    wit::SliceOutcome::Progressed((_, true))
                ),
                Engine::Native(db) => matches!(
                    db.crawl_slice(Duration::from_secs(5), true).unwrap(),
                    SliceOutcome::Progressed { finished: true, .. }
                ),
            };
            if finished {
                return;
            }
        }
    }
}

/// Rounds each workload is cut into; the two engines take turns, so a
/// change in the machine's speed (this disk's sync rate moves several-fold
/// from minute to minute) falls on both alike.
const ROUNDS: usize = 8;

/// The sandbox's goal: the component at no less than this share of the
/// native engine's speed.
const GOAL: f64 = 0.9;

/// A fresh wasm engine and a fresh native one (in that order), each in its
/// own temporary directory (kept alive by the first value) and set up by `setup`.
fn both_engines(setup: impl Fn(&mut Engine)) -> (Vec<tempfile::TempDir>, Vec<Engine>) {
    let dirs = vec![tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let engines = [true, false]
        .into_iter()
        .zip(&dirs)
        .map(|(wasm, dir)| {
            let mut e = Engine::start(wasm, &dir.path().join("storage"), &dir.path().join("state"));
            setup(&mut e);
            e
        })
        .collect();
    (dirs, engines)
}

/// Runs `work(engine, round)` on a fresh engine of each kind, `ROUNDS` times,
/// alternating wasm and native; prints both rates and wasm÷native.
fn side_by_side(
    name: &str,
    unit: &str,
    amount_per_round: f64,
    setup: impl Fn(&mut Engine),
    work: impl Fn(&mut Engine, usize),
) {
    let (_dirs, mut engines) = both_engines(setup);
    let mut took = [Duration::ZERO; 2];
    for round in 0..ROUNDS {
        // Who goes first alternates too, so neither always follows the other's syncs.
        for k in [round % 2, 1 - round % 2] {
            let started = Instant::now();
            work(&mut engines[k], round);
            took[k] += started.elapsed();
        }
    }
    let rate = |k: usize| amount_per_round * ROUNDS as f64 / took[k].as_secs_f64();
    print_line(name, unit, rate(0), rate(1));
}

fn print_line(name: &str, unit: &str, wasm: f64, native: f64) {
    let ratio = wasm / native;
    println!(
        "{name:<36} wasm {wasm:>9.1} {unit:<8} native {native:>9.1} {unit:<8} wasm/native {ratio:>5.2} (goal >= {GOAL}){}",
        if ratio >= GOAL { "" } else { "  MISSED" }
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    println!("leasedb: the wasm component against the natively linked engine (same storage, same durability)");
    println!("each workload runs in {ROUNDS} rounds, wasm and native taking turns");

    const SIS: u32 = 200;
    let renewals = 250;
    side_by_side(
        "lease add/renew (one sync each)",
        "ops/s",
        renewals as f64,
        |e| (0..SIS).for_each(|n| e.upload(&si(n), b"share", 1 << 20)),
        |e, _| {
            (0..renewals).for_each(|i| e.add_lease(["alice", "bob"][i as usize % 2], &si(i % SIS)))
        },
    );

    group_commit(SIS);

    let share = vec![0x5au8; 4 << 20];
    let shares = 4;
    side_by_side(
        "immutable upload (4 MiB shares)",
        "MB/s",
        (shares * share.len()) as f64 / 1e6,
        |_| {},
        |e, round| {
            (0..shares).for_each(|n| e.upload(&si((round * shares + n) as u32), &share, 1 << 20))
        },
    );

    let writes = 125;
    side_by_side(
        "mutable read-test-write (1 KiB)",
        "ops/s",
        writes as f64,
        |_| {},
        |e, _| (0..writes).for_each(|i| e.mutable_write(&si(i % 50), &[i as u8; 1024])),
    );

    let total: u32 = std::env::var("LEASEDB_BENCH_SHARES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let generated = tempfile::tempdir().unwrap();
    generate_store(&generated.path().join("storage"), total);
    let mut rates = Vec::new();
    for wasm in [true, false] {
        let state = tempfile::tempdir().unwrap();
        let mut engine = Engine::start(wasm, &generated.path().join("storage"), state.path());
        let started = Instant::now();
        engine.crawl_cycle(); // first cycle: every share is new to this database
        let first = started.elapsed();
        let started = Instant::now();
        engine.crawl_cycle(); // steady state: every share known
        let second = started.elapsed();
        rates.push((
            total as f64 / first.as_secs_f64(),
            total as f64 / second.as_secs_f64(),
        ));
    }
    print_line(
        &format!("crawler, rebuild ({total} shares)"),
        "shares/s",
        rates[0].0,
        rates[1].0,
    );
    print_line(
        &format!("crawler, steady ({total} shares)"),
        "shares/s",
        rates[0].1,
        rates[1].1,
    );
}

/// Renewals in group commits of `BATCH`, as `serve` runs them under load:
/// operations per second and the commit's own latency (where the sync, and
/// any WAL checkpoint, is paid).
fn group_commit(sis: u32) {
    const BATCH: u32 = 32;
    const BATCHES: usize = 100;
    let (_dirs, mut engines) =
        both_engines(|e| (0..sis).for_each(|n| e.upload(&si(n), b"share", 1 << 20)));
    let mut took = [Duration::ZERO; 2];
    let mut commits: [Vec<Duration>; 2] = Default::default();
    for round in 0..ROUNDS {
        for k in [round % 2, 1 - round % 2] {
            let e = &mut engines[k];
            let started = Instant::now();
            for b in 0..BATCHES {
                e.begin_batch();
                for i in 0..BATCH {
                    let n = (round * BATCHES + b) as u32 * BATCH + i;
                    e.add_lease(["alice", "bob", "carol"][n as usize % 3], &si(n % sis));
                }
                let commit = Instant::now();
                e.commit_batch();
                commits[k].push(commit.elapsed());
            }
            took[k] += started.elapsed();
        }
    }
    let ops = (ROUNDS * BATCHES) as f64 * BATCH as f64;
    print_line(
        &format!("lease renew, group commits of {BATCH}"),
        "ops/s",
        ops / took[0].as_secs_f64(),
        ops / took[1].as_secs_f64(),
    );
    for (k, name) in ["wasm", "native"].iter().enumerate() {
        commits[k].sort();
        println!(
            "  {name:<6} commit-batch p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            percentile(&commits[k], 0.5).as_secs_f64() * 1e3,
            percentile(&commits[k], 0.99).as_secs_f64() * 1e3,
            commits[k].last().unwrap().as_secs_f64() * 1e3,
        );
    }
}

/// Writes `n` small immutable shares straight into a Tahoe-layout directory
/// (no syncs: this is set-up, not the thing measured).
fn generate_store(root: &Path, n: u32) {
    let mut container = vec![0, 0, 0, 2, 0, 0, 0, 100, 0, 0, 0, 0];
    container.extend_from_slice(&[0xab; 100]);
    for i in 0..n {
        let si = leasedb_plugin::StorageIndex(si(i)).to_text();
        let dir = root.join("shares").join(&si[..2]).join(&si);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0"), &container).unwrap();
    }
}

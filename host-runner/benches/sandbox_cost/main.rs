//! What the sandbox costs: the same workloads through the wasm component
//! (PluginHost) and through the engine linked natively, side by side in one
//! run, on the same kind of storage (a DirStore in a temporary directory,
//! durable writes, the database in WAL mode with full syncs).
//!
//! `cargo bench -p host-runner --bench sandbox_cost` prints operations per
//! second for each and the native/wasm ratio. `LEASEDB_BENCH_SHARES` sets the
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

/// Runs `work` on a fresh engine of each kind; returns (wasm, native) rates.
fn side_by_side(
    name: &str,
    unit: &str,
    amount: f64,
    setup: impl Fn(&mut Engine),
    work: impl Fn(&mut Engine),
) {
    let mut rates = Vec::new();
    for wasm in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut engine =
            Engine::start(wasm, &dir.path().join("storage"), &dir.path().join("state"));
        setup(&mut engine);
        let started = Instant::now();
        work(&mut engine);
        rates.push(amount / started.elapsed().as_secs_f64());
    }
    println!(
        "{name:<34} wasm {:>10.1} {unit:<9} native {:>10.1} {unit:<9} native/wasm {:>5.2}",
        rates[0],
        rates[1],
        rates[1] / rates[0]
    );
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    println!("leasedb: the wasm component against the natively linked engine (same storage, same durability)");

    const SIS: u32 = 200;
    let renewals = 2000;
    side_by_side(
        "lease add/renew",
        "ops/s",
        renewals as f64,
        |e| (0..SIS).for_each(|n| e.upload(&si(n), b"share", 1 << 20)),
        |e| (0..renewals).for_each(|i| e.add_lease(["alice", "bob"][i as usize % 2], &si(i % SIS))),
    );

    let share = vec![0x5au8; 4 << 20];
    let shares = 16;
    side_by_side(
        "immutable upload (4 MiB shares)",
        "MB/s",
        (shares * share.len()) as f64 / 1e6,
        |_| {},
        |e| (0..shares).for_each(|n| e.upload(&si(n as u32), &share, 1 << 20)),
    );

    let writes = 1000;
    side_by_side(
        "mutable read-test-write (1 KiB)",
        "ops/s",
        writes as f64,
        |_| {},
        |e| (0..writes).for_each(|i| e.mutable_write(&si(i % 50), &[i as u8; 1024])),
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
    println!(
        "{:<34} wasm {:>10.1} shares/s native {:>10.1} shares/s native/wasm {:>5.2}",
        format!("crawler, rebuild ({total} shares)"),
        rates[0].0,
        rates[1].0,
        rates[1].0 / rates[0].0
    );
    println!(
        "{:<34} wasm {:>10.1} shares/s native {:>10.1} shares/s native/wasm {:>5.2}",
        format!("crawler, steady ({total} shares)"),
        rates[0].1,
        rates[1].1,
        rates[1].1 / rates[0].1
    );
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

//! The plugin over a three-node Garage cluster (S3) against the plugin over a
//! local directory: the same workloads, side by side in one run, printing
//! each rate and the directory/S3 ratio.
//!
//! Needs a cluster's environment:
//! `eval "$(scripts/garage-cluster.sh start target/garage-cluster)"`, then
//! `cargo bench -p host-runner --bench object_store`.
//! `LEASEDB_BENCH_SHARES` sets the crawler's store size (default 2000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use host_runner::backend::{BackendConfig, Location};
use host_runner::plugin::wit;
use host_runner::{DirStore, HostConfig, ObjectStore, Operations, PluginHost};

fn si(n: u32) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..4].copy_from_slice(&n.to_be_bytes());
    s[4..8].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    s
}

/// A plugin over one kind of store, with its own state directory.
struct Run {
    name: &'static str,
    host: PluginHost,
    store: Arc<dyn ObjectStore>,
    _dir: tempfile::TempDir,
}

fn start(name: &'static str, store: Arc<dyn ObjectStore>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path().join("state"));
    config.sandbox.call_deadline = Duration::from_secs(600);
    let host = PluginHost::start(config, store.clone()).unwrap();
    Run {
        name,
        host,
        store,
        _dir: dir,
    }
}

fn stores(bucket: &str) -> Vec<(&'static str, Arc<dyn ObjectStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn ObjectStore> = Arc::new(DirStore::open(dir.path().join("storage")).unwrap());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = format!("s3://{bucket}/bench-{nanos}");
    let remote = BackendConfig::new(Location::parse(&url).unwrap())
        .open()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let spare = tempfile::tempdir().unwrap();
    vec![("directory", local, dir), ("garage", remote, spare)]
}

fn upload(host: &mut PluginHost, si: &[u8; 16], data: &[u8]) {
    let a = host
        .allocate(1, &wit::Account::Anonymous, si, &[0], data.len() as u64)
        .unwrap();
    assert_eq!(a.allocated, vec![0]);
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        host.write(si, 0, (i << 20) as u64, piece).unwrap();
    }
    host.close(si, 0).unwrap();
}

/// Prints one line: each run's rate of `amount` per second, and their ratio.
fn line(what: &str, unit: &str, rates: &[(&str, f64)]) {
    println!(
        "{what:<34} {:<9} {:>9.1} {unit:<9} {:<6} {:>9.1} {unit:<9} directory/garage {:>6.2}",
        rates[0].0,
        rates[0].1,
        rates[1].0,
        rates[1].1,
        rates[0].1 / rates[1].1
    );
}

fn main() {
    let Ok(bucket) = std::env::var("LEASEDB_S3_BUCKET") else {
        eprintln!(
            "object_store bench: no Garage cluster in the environment; run\n  \
             eval \"$(scripts/garage-cluster.sh start target/garage-cluster)\"\nfirst"
        );
        std::process::exit(2);
    };
    println!(
        "leasedb: the plugin over a directory against the plugin over a 3-node Garage cluster (S3)"
    );

    let share = vec![0x5au8; 4 << 20];
    let shares = 16u32;
    let renewals = 1000u32;
    let mut up = Vec::new();
    let mut down = Vec::new();
    let mut leases = Vec::new();
    for (name, store, _keep) in stores(&bucket) {
        let mut run = start(name, store);
        let started = Instant::now();
        (0..shares).for_each(|n| upload(&mut run.host, &si(n), &share));
        let mb = f64::from(shares) * share.len() as f64 / 1e6;
        up.push((run.name, mb / started.elapsed().as_secs_f64()));

        let started = Instant::now();
        for n in 0..shares {
            for piece in 0..4u64 {
                let data = run.host.read(&si(n), 0, piece << 20, 1 << 20).unwrap();
                assert_eq!(data.len(), 1 << 20);
            }
        }
        down.push((run.name, mb / started.elapsed().as_secs_f64()));

        let started = Instant::now();
        for i in 0..renewals {
            let account = wit::Account::Named(["alice", "bob"][i as usize % 2].into());
            run.host.add_lease(&account, &si(i % shares)).unwrap();
        }
        leases.push((
            run.name,
            f64::from(renewals) / started.elapsed().as_secs_f64(),
        ));
        drop(run.store);
    }
    line("immutable upload (4 MiB shares)", "MB/s", &up);
    line("immutable read (1 MiB ranges)", "MB/s", &down);
    line("lease add/renew", "ops/s", &leases);

    // The crawler over a store it has never seen: one listing per prefix
    // holding shares (and one across each run of empty ones).
    let total: u32 = std::env::var("LEASEDB_BENCH_SHARES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut crawl = Vec::new();
    for (name, store, _keep) in stores(&bucket) {
        generate(&*store, total);
        let mut run = start(name, store);
        let started = Instant::now();
        loop {
            if let wit::SliceOutcome::Progressed((_, true)) = run
                .host
                .crawler_run_slice(Duration::from_secs(5), true)
                .unwrap()
            {
                break;
            }
        }
        crawl.push((run.name, f64::from(total) / started.elapsed().as_secs_f64()));
    }
    line(
        &format!("crawler, rebuild ({total} shares)"),
        "shares/s",
        &crawl,
    );
}

/// Writes `n` small immutable shares straight into the store, eight at a time.
fn generate(store: &dyn ObjectStore, n: u32) {
    let mut container = vec![0, 0, 0, 2, 0, 0, 0, 100, 0, 0, 0, 0];
    container.extend_from_slice(&[0xab; 100]);
    std::thread::scope(|scope| {
        for lane in 0..8 {
            let container = &container;
            scope.spawn(move || {
                for i in (lane..n).step_by(8) {
                    let text = host_runner::StorageIndex(si(i)).to_string();
                    store
                        .write(&format!("shares/{}/{text}/0", &text[..2]), container)
                        .unwrap();
                }
            });
        }
    });
}

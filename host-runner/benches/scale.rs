//! Issue 13 item 5: the engine at a million shares. For each size (default
//! 10,000, 100,000 and 1,000,000), in one run:
//!
//! 1. a generated Tahoe-layout store of that many tiny immutable shares (v1
//!    containers holding one lease record, as a Tahoe server leaves them),
//!    written straight into the directory store's layout in parallel, kept in
//!    `target/scale/<N>/storage` and reused while its marker file says it is
//!    complete (generation is set-up: timed, never part of a figure);
//! 2. a fresh database built by the component's own crawler (the first
//!    cycle, every share new to it), then a steady-state cycle;
//! 3. add-lease and renewal latency on random existing shares, through the
//!    wasm component host (`PluginHost`, as `serve`'s service thread calls it),
//!    the sizes taking turns so that outside noise falls on all alike;
//! 4. the database's bytes per share at rest (after a clean shutdown);
//! 5. the peak RSS (`VmHWM`) of a real `host-runner serve` on that store and
//!    database, after GBS lease renewals and one whole crawler cycle, and
//!    again after one status-page request.
//!
//! It ends with one table: each figure at each size, the largest size's over
//! the smallest's, and the goal.
//!
//! `cargo bench -p host-runner --bench scale` runs 10k, 100k and 1M;
//! `cargo test -p host-runner --bench scale -- --quick` runs 1k and 10k (the
//! CI smoke: it fails on any engine error, never on a timing).
//! `SCALE_BENCH_SIZES=10000,200000` picks other sizes (smallest is the base).

#[path = "../tests/all/tahoe/harness.rs"]
#[allow(unused_imports, dead_code)]
mod harness;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{peak_rss_kib, Serve};
use host_runner::client::{tls_config, Connection, Nurl};
use host_runner::plugin::wit;
use host_runner::{DirStore, HostConfig, ObjectStore, Operations, PluginHost, StorageIndex};

/// Share data bytes in each generated container.
const DATA_BYTES: usize = 200;
/// Changes whenever the generated store's contents do, so an old one is not reused.
const STORE_FORMAT: &str = "leasedb scale store 1: v1 immutable, 200 data bytes, 1 lease record";
/// The expiry written into every container's lease record (2096-10-02).
const RECORDED_EXPIRY: u32 = 4_000_000_000;
/// Threads writing the store: its cost is file-system metadata, not CPU.
const WRITERS: u64 = 8;
/// Connections renewing leases on `serve` at once.
const GBS_CLIENTS: usize = 8;

/// What this run measures.
struct Plan {
    sizes: Vec<u64>,
    /// Lease operations of each kind timed at each size.
    ops: usize,
}

impl Plan {
    fn from_args() -> Plan {
        // `cargo bench` passes `--bench`; `--quick` is the CI smoke size.
        let quick = std::env::args().any(|a| a == "--quick");
        let sizes = match std::env::var("SCALE_BENCH_SIZES") {
            Ok(list) => list
                .split(',')
                .map(|s| {
                    s.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("SCALE_BENCH_SIZES: {s:?} is not a count"))
                })
                .collect(),
            Err(_) if quick => vec![1_000, 10_000],
            Err(_) => vec![10_000, 100_000, 1_000_000],
        };
        assert!(
            sizes.len() >= 2 && sizes.iter().all(|&n| n > 0),
            "two or more sizes, each above 0"
        );
        Plan {
            sizes,
            ops: if quick { 300 } else { 3_000 },
        }
    }
}

/// The storage index of generated share `i`: well mixed, so shares spread
/// evenly over the 1024 prefixes (splitmix64 of `i`, twice).
fn si(i: u64) -> StorageIndex {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&mix(2 * i).to_be_bytes());
    bytes[8..].copy_from_slice(&mix(2 * i + 1).to_be_bytes());
    StorageIndex(bytes)
}

/// A v1 immutable container: header, data, one lease record (owner 0,
/// renew and cancel secrets, expiry), as stock Tahoe writes them.
fn container() -> Vec<u8> {
    let mut c = Vec::with_capacity(12 + DATA_BYTES + 72);
    c.extend_from_slice(&1u32.to_be_bytes());
    c.extend_from_slice(&(DATA_BYTES as u32).to_be_bytes());
    c.extend_from_slice(&1u32.to_be_bytes());
    c.extend(std::iter::repeat_n(0x5a, DATA_BYTES));
    c.extend_from_slice(&0u32.to_be_bytes());
    c.extend_from_slice(&[0x11; 32]);
    c.extend_from_slice(&[0x22; 32]);
    c.extend_from_slice(&RECORDED_EXPIRY.to_be_bytes());
    c
}

/// `target/scale/<n>`: the store (`storage/`), the host's state (`state/`).
fn place(n: u64) -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("scale")
        .join(n.to_string())
}

/// A generated store ready to use.
struct Store {
    n: u64,
    dir: PathBuf,
    /// Bytes its files and directories take on disk.
    disk_bytes: u64,
}

impl Store {
    fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }
    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
}

/// The store of `n` shares, generated unless a complete one is there.
fn ensure_store(n: u64) -> Store {
    let dir = place(n);
    let marker = dir.join("storage.complete");
    let storage = dir.join("storage");
    if let Ok(text) = fs::read_to_string(&marker) {
        let mut lines = text.lines();
        if lines.next() == Some(STORE_FORMAT) {
            if let Some(bytes) = lines.next().and_then(|l| l.parse().ok()) {
                progress(
                    n,
                    format_args!(
                        "reusing the store in {} ({})",
                        storage.display(),
                        mib(bytes)
                    ),
                );
                return Store {
                    n,
                    dir,
                    disk_bytes: bytes,
                };
            }
        }
    }
    if storage.exists() {
        progress(n, format_args!("removing an incomplete or outdated store"));
        fs::remove_dir_all(&storage).unwrap();
    }
    let _ = fs::remove_file(&marker);
    let started = Instant::now();
    let disk_bytes = generate(&storage, n);
    let took = started.elapsed();
    fs::write(&marker, format!("{STORE_FORMAT}\n{disk_bytes}\n")).unwrap();
    progress(
        n,
        format_args!(
            "generated {} in {:.1} s ({:.0} shares/s, {WRITERS} writers, one syncfs at the end)",
            mib(disk_bytes),
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        ),
    );
    Store { n, dir, disk_bytes }
}

/// Writes shares `0..n` under `root/shares/` and syncs the file system;
/// returns the bytes taken on disk.
fn generate(root: &Path, n: u64) -> u64 {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let shares = root.join("shares");
    for a in ALPHABET {
        for b in ALPHABET {
            fs::create_dir_all(shares.join(String::from_utf8(vec![*a, *b]).unwrap())).unwrap();
        }
    }
    let body = container();
    let blocks: u64 = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (shares, body) = (&shares, &body);
                scope.spawn(move || {
                    let mut blocks = 0;
                    for i in (w..n).step_by(WRITERS as usize) {
                        let text = si(i).to_string();
                        let dir = shares.join(&text[..2]).join(&text);
                        fs::create_dir(&dir).unwrap();
                        let file = dir.join("0");
                        fs::write(&file, body).unwrap();
                        blocks += fs::symlink_metadata(&dir).unwrap().blocks()
                            + fs::symlink_metadata(&file).unwrap().blocks();
                    }
                    blocks
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    // Written back now, so the kernel's writeback of a fresh store does not
    // slow (and its journal commits delay the syncs of) the first cycle.
    rustix::fs::syncfs(fs::File::open(root).unwrap()).unwrap();
    blocks * 512
}

/// A progress line on stderr about size `n` (0: every size), stamped with
/// the time since the run began.
fn progress(n: u64, what: std::fmt::Arguments) {
    static BEGAN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let began = BEGAN.get_or_init(Instant::now);
    let which = match n {
        0 => "every size".to_owned(),
        n => format!("{n} shares"),
    };
    eprintln!("[{:7.1} s] {which}: {what}", began.elapsed().as_secs_f64());
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// What one size measured.
#[derive(Default, Clone)]
struct Figures {
    shares: u64,
    start: Duration,
    first_cycle: Duration,
    steady_cycle: Duration,
    add: Latency,
    renew: Latency,
    status_snapshot: Duration,
    db_bytes: u64,
    db_files: String,
    store_bytes: u64,
    rss_kib: u64,
    rss_after_status_kib: u64,
    serve_cycle: Duration,
    /// GBS renewals against `serve` while its crawler runs.
    gbs_renew: Latency,
    /// The status page was first asked before serve's cycle had finished.
    rss_cycle_unfinished: bool,
}

#[derive(Default, Clone, Copy)]
struct Latency {
    p50: Duration,
    p99: Duration,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Latency {
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn start_host(state: &Path, storage: &Path) -> PluginHost {
    let store: Arc<dyn ObjectStore> = Arc::new(DirStore::open(storage).unwrap());
    let mut config = HostConfig::new(state);
    // A whole crawler cycle may be asked for in one slice below.
    config.sandbox.call_deadline = Duration::from_secs(600);
    PluginHost::start(config, store).unwrap_or_else(|e| panic!("starting the plugin: {e}"))
}

/// One whole crawler cycle, a slice after another; its time.
fn crawl_cycle(host: &mut PluginHost) -> Duration {
    let started = Instant::now();
    loop {
        match host.crawler_run_slice(Duration::from_secs(5), true) {
            Ok(wit::SliceOutcome::Progressed((_, true))) => return started.elapsed(),
            Ok(wit::SliceOutcome::Progressed(_)) => {}
            other => panic!("crawler slice: {other:?}"),
        }
    }
}

/// A fresh database for `store`, built by the component's crawler: the
/// first cycle and a steady-state one. Returns the host, still open.
fn build_database(store: &Store) -> (PluginHost, Figures) {
    let n = store.n;
    let state = store.state();
    // A fresh database every run (the first cycle builds it); the compile
    // cache in `state/cache` is kept, so starting does not compile again.
    let _ = fs::remove_dir_all(state.join("plugin"));
    let mut f = Figures {
        shares: n,
        store_bytes: store.disk_bytes,
        ..Figures::default()
    };
    let started = Instant::now();
    let mut host = start_host(&state, &store.storage());
    f.start = started.elapsed();
    progress(n, format_args!("first crawler cycle..."));
    f.first_cycle = crawl_cycle(&mut host);
    let stats = host.get_stats().unwrap();
    let known: u64 = stats.shares.iter().map(|s| s.shares).sum();
    assert_eq!(known, n, "the first cycle registered every generated share");
    progress(n, format_args!("steady-state crawler cycle..."));
    f.steady_cycle = crawl_cycle(&mut host);
    (host, f)
}

/// Add-lease, then renewal, latency on `ops` random existing shares of each
/// store, through the component host. The sizes take turns, one operation
/// each, so a disk or CPU busy with something else slows them alike.
fn lease_latencies(hosts: &mut [(PluginHost, Figures)], ops: usize) {
    let account = wit::Account::Named("scale".into());
    let picks: Vec<Vec<StorageIndex>> = hosts
        .iter()
        .map(|(_, f)| {
            let mut rng = fastrand::Rng::with_seed(f.shares);
            (0..ops).map(|_| si(rng.u64(0..f.shares))).collect()
        })
        .collect();
    // A new lease for the account on each share (an add), then the same
    // again (renewals).
    for kind in ["add", "renew"] {
        progress(
            0,
            format_args!("{kind}-lease latency, sizes taking turns..."),
        );
        let mut samples = vec![Vec::with_capacity(ops); hosts.len()];
        for i in 0..ops {
            for (k, (host, _)) in hosts.iter_mut().enumerate() {
                let s = &picks[k][i];
                let started = Instant::now();
                let leased = host
                    .add_lease(&account, s.as_bytes())
                    .unwrap_or_else(|e| panic!("add-lease on {s}: {e}"));
                samples[k].push(started.elapsed());
                assert_eq!(leased, 1, "{s} holds one share");
            }
        }
        for ((_, f), samples) in hosts.iter_mut().zip(samples) {
            match kind {
                "add" => f.add = latency(samples),
                _ => f.renew = latency(samples),
            }
        }
    }
    for ((host, _), picks) in hosts.iter_mut().zip(&picks) {
        let leases = host.list_leases(picks[0].as_bytes()).unwrap();
        assert!(
            leases.iter().any(|l| l.account_name == "scale"),
            "the renewed lease is listed: {leases:?}"
        );
    }
}

/// The status snapshot's cost, then a clean shutdown and the database's
/// size at rest.
fn finish_in_process(store: &Store, mut host: PluginHost, f: &mut Figures) {
    progress(store.n, format_args!("status snapshot, shutdown..."));
    // What the status page and each metrics scrape ask of the plugin.
    let started = Instant::now();
    host.get_stats().unwrap();
    host.get_usage(None).unwrap();
    host.usage_by_account().unwrap();
    f.status_snapshot = started.elapsed();
    host.shutdown().unwrap();
    drop(host);
    let (bytes, files) = files_in(&store.state().join("plugin"));
    f.db_bytes = bytes;
    f.db_files = files;
}

/// Copies the files directly in `from` that `to` lacks.
fn copy_files(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_file() && !target.exists() {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Total size and a listing of the files directly in `dir`.
fn files_in(dir: &Path) -> (u64, String) {
    let mut total = 0;
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_file() {
            total += meta.len();
            names.push(format!(
                "{} {}",
                entry.file_name().to_string_lossy(),
                meta.len()
            ));
        }
    }
    names.sort();
    (total, names.join(", "))
}

/// `host-runner serve` on the store and the database just built: `ops`
/// renewals over GBS, one whole crawler cycle; its peak RSS then and after
/// one status-page request.
fn measure_serve(store: &Store, plan: &Plan, f: &mut Figures) {
    let n = store.n;
    progress(
        n,
        format_args!("host-runner serve, renewals and one crawler cycle..."),
    );
    let started = Instant::now();
    let serve = Serve::start_with(
        &store.dir,
        None,
        &["--crawler-cpu-percent", "100", "--min-cycle-time", "0s"],
    );
    let pid = serve.pid().unwrap();
    progress(n, format_args!("serve is up; renewals over GBS..."));
    let nurl = Nurl::parse(&serve.nurl).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(n + 1);
    let picks: Vec<StorageIndex> = (0..plan.ops).map(|_| si(rng.u64(0..n))).collect();
    // Several clients at once, as a server sees them: their renewals share
    // group commits, and each waits out the crawler slice it arrives during.
    let samples = rt.block_on(async {
        let tls = tls_config(&nurl.spki_hash);
        let mut clients = Vec::new();
        for part in picks.chunks(picks.len().div_ceil(GBS_CLIENTS)) {
            let mut c = Connection::connect(&nurl, tls.clone())
                .await
                .expect("connecting to serve");
            let part = part.to_vec();
            clients.push(tokio::spawn(async move {
                let mut samples = Vec::with_capacity(part.len());
                for s in &part {
                    let started = Instant::now();
                    c.renew_lease(s, &[7; 32], &[8; 32])
                        .await
                        .unwrap_or_else(|e| panic!("renewing {s} over GBS: {e}"));
                    samples.push(started.elapsed());
                }
                samples
            }));
        }
        let mut all = Vec::new();
        for c in clients {
            all.extend(c.await.expect("a client panicked"));
        }
        all
    });
    f.gbs_renew = latency(samples);
    // The background crawler runs cycles back to back. The status page
    // (which costs memory of its own, measured apart) is first asked once
    // the cycle should be over, and says whether it is.
    let expected = f.steady_cycle.mul_f64(2.5) + Duration::from_secs(3);
    std::thread::sleep(expected.saturating_sub(started.elapsed()));
    progress(n, format_args!("asking serve's status page"));
    let before_status = peak_rss_kib(pid).expect("serve's VmHWM");
    let deadline = Instant::now() + f.first_cycle * 4 + Duration::from_secs(60);
    let mut polls = 0;
    loop {
        let status = serve.status_json();
        polls += 1;
        let cycles = status["crawler"]["history"]
            .as_array()
            .map_or(0, |h| h.len());
        // The bench's own two cycles are in the history; serve's is the third.
        if cycles >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve finished no crawler cycle in time: {}",
            status["crawler"]
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    f.rss_cycle_unfinished = polls > 1;
    f.serve_cycle = started.elapsed();
    f.rss_kib = before_status;
    f.rss_after_status_kib = peak_rss_kib(pid).expect("serve's VmHWM");
    drop(serve);
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn us(d: Duration) -> String {
    format!("{:.0} us", d.as_secs_f64() * 1e6)
}

fn main() {
    let plan = Plan::from_args();
    println!(
        "leasedb at scale: generated stores of {} shares ({} lease operations of each kind per size)",
        plan.sizes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" and "),
        plan.ops
    );
    let mut stores = Vec::new();
    let mut hosts = Vec::new();
    for &n in &plan.sizes {
        let store = ensure_store(n);
        // One compile per run: every size starts from the first one's cache.
        if let Some(first) = stores.first() {
            copy_files(
                &Store::state(first).join("cache"),
                &store.state().join("cache"),
            );
        }
        hosts.push(build_database(&store));
        stores.push(store);
    }
    lease_latencies(&mut hosts, plan.ops);
    let mut all = Vec::new();
    for (store, (host, mut f)) in stores.iter().zip(hosts) {
        finish_in_process(store, host, &mut f);
        all.push(f);
    }
    for (store, f) in stores.iter().zip(&mut all) {
        measure_serve(store, &plan, f);
        let n = store.n;
        progress(n, format_args!("serve's part {}; first cycle {}, steady {}, add p50 {} p99 {}, renew p50 {} p99 {}, GBS renew p50 {} p99 {}, db {} ({}), serve VmHWM {} KiB",
            secs(f.serve_cycle),
            secs(f.first_cycle),
            secs(f.steady_cycle),
            us(f.add.p50),
            us(f.add.p99),
            us(f.renew.p50),
            us(f.renew.p99),
            us(f.gbs_renew.p50),
            us(f.gbs_renew.p99),
            mib(f.db_bytes),
            f.db_files,
            f.rss_kib,
        ));
    }
    report(&all);
}

/// One line per figure: its value at each size, the largest size's over the
/// smallest's, and the goal.
fn report(all: &[Figures]) {
    let mut out = String::new();
    let cell = |v: String| format!(" {v:>15}");
    out.push_str(&format!("\n{:<44}", ""));
    for f in all {
        out.push_str(&cell(format!("{} shares", f.shares)));
    }
    out.push_str(&format!(" {:>8}  goal\n", "ratio"));
    let mut row =
        |what: &str, values: Vec<Option<f64>>, show: &dyn Fn(f64) -> String, goal: &str| {
            out.push_str(&format!("{what:<44}"));
            for v in &values {
                out.push_str(&cell(v.map_or("-".into(), show)));
            }
            // The last value over the first one there is (a slope has none
            // at the smallest size); a value alone has no ratio.
            let last = values.len() - 1;
            let ratio = match values.iter().position(Option::is_some) {
                Some(i) if i < last => match (values[i], values[last]) {
                    (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
                    _ => "-".into(),
                },
                _ => "-".into(),
            };
            out.push_str(&format!(" {ratio:>8}  {goal}\n"));
        };
    let each =
        |value: &dyn Fn(&Figures) -> f64| all.iter().map(|f| Some(value(f))).collect::<Vec<_>>();
    // Time per share added since the next smaller size: the slope, free of
    // the fixed per-cycle cost (1024 prefixes) that dominates small stores.
    let marginal = |value: &dyn Fn(&Figures) -> Duration| {
        let mut v = vec![None];
        v.extend(all.windows(2).map(|w| {
            let dt = value(&w[1]).as_secs_f64() - value(&w[0]).as_secs_f64();
            Some(dt * 1e9 / (w[1].shares - w[0].shares) as f64)
        }));
        v
    };
    let micros = |v: f64| format!("{v:.0} us");
    let seconds = |v: f64| format!("{v:.2} s");
    let ns = |v: f64| format!("{v:.0} ns");
    let rate = |v: f64| format!("{v:.0}/s");
    let bytes = |v: f64| format!("{v:.0} B");
    let mebi = |v: f64| format!("{v:.1} MiB");
    let d_us = |d: Duration| d.as_secs_f64() * 1e6;
    let n = |f: &Figures| f.shares as f64;
    row(
        "add-lease p50 (component host)",
        each(&|f| d_us(f.add.p50)),
        &micros,
        "<= 1.5x",
    );
    row(
        "add-lease p99",
        each(&|f| d_us(f.add.p99)),
        &micros,
        "<= 1.5x",
    );
    row(
        "renew-lease p50",
        each(&|f| d_us(f.renew.p50)),
        &micros,
        "<= 1.5x",
    );
    row(
        "renew-lease p99",
        each(&|f| d_us(f.renew.p99)),
        &micros,
        "<= 1.5x",
    );
    row(
        &format!("GBS renew p50 (serve, {GBS_CLIENTS} clients, crawling)"),
        each(&|f| d_us(f.gbs_renew.p50)),
        &micros,
        "<= 1.5x",
    );
    row(
        "GBS renew p99",
        each(&|f| d_us(f.gbs_renew.p99)),
        &micros,
        "<= 1.5x",
    );
    row(
        "crawler first cycle",
        each(&|f| f.first_cycle.as_secs_f64()),
        &seconds,
        "linear",
    );
    row(
        "  shares/s",
        each(&|f| n(f) / f.first_cycle.as_secs_f64()),
        &rate,
        ">= 1x",
    );
    row(
        "  time per share",
        each(&|f| f.first_cycle.as_secs_f64() * 1e9 / n(f)),
        &ns,
        "<= 1x",
    );
    row(
        "  per share added (slope)",
        marginal(&|f| f.first_cycle),
        &ns,
        "~1x",
    );
    row(
        "crawler steady cycle",
        each(&|f| f.steady_cycle.as_secs_f64()),
        &seconds,
        "linear",
    );
    row(
        "  shares/s",
        each(&|f| n(f) / f.steady_cycle.as_secs_f64()),
        &rate,
        ">= 1x",
    );
    row(
        "  time per share",
        each(&|f| f.steady_cycle.as_secs_f64() * 1e9 / n(f)),
        &ns,
        "<= 1x",
    );
    row(
        "  per share added (slope)",
        marginal(&|f| f.steady_cycle),
        &ns,
        "~1x",
    );
    row(
        "database bytes per share (at rest)",
        each(&|f| f.db_bytes as f64 / n(f)),
        &bytes,
        "report",
    );
    row(
        "store bytes per share (on disk)",
        each(&|f| f.store_bytes as f64 / n(f)),
        &bytes,
        "report",
    );
    row(
        "plugin start (open, recovery)*",
        each(&|f| f.start.as_secs_f64()),
        &seconds,
        "report",
    );
    row(
        "status snapshot (stats + usage)",
        each(&|f| f.status_snapshot.as_secs_f64()),
        &seconds,
        "report",
    );
    row(
        "serve VmHWM: renewals + 1 cycle",
        each(&|f| f.rss_kib as f64 / 1024.0),
        &mebi,
        "bounded (~1x)",
    );
    row(
        "serve VmHWM: + 1 status page",
        each(&|f| f.rss_after_status_kib as f64 / 1024.0),
        &mebi,
        "bounded (~1x)",
    );
    out.push_str(
        "* the first size's start includes compiling the component when the cache lacks it\n",
    );
    if all.iter().any(|f| f.rss_cycle_unfinished) {
        out.push_str("(a 'renewals + 1 cycle' VmHWM was read before serve's cycle ended)\n");
    }
    print!("{out}");
}

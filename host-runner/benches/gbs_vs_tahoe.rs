//! Issue 6: one GBS client workload, in one run, against a stock Tahoe-LAFS
//! 1.20 storage node and against `host-runner serve` (same machine, same
//! loopback). The client speaks GBS directly (`host_runner::client`:
//! HTTPS pinning the SPKI, keep-alive connections in parallel, as the Tahoe
//! client does), not through the `tahoe` CLI.
//!
//! Phases, each against one server at a time (the other idles):
//! 1. upload: `SHARES` immutable shares of `SHARE_SIZE` bytes (allocate, then
//!    PATCH 1 MiB pieces in order), over `DATA_CONNECTIONS` connections;
//! 2. download: every share back by ranged GETs of 1 MiB, checked;
//! 3. 10,000 small shares (allocate + one PATCH each), over `LEASE_CONNECTIONS`;
//! 4. lease renewals: `PUT /storage/v1/lease/:si` with the shares' own 32-byte
//!    secrets, on all 10,000, `LEASE_ROUNDS` times, over `LEASE_CONNECTIONS`,
//!    then as many version requests on the same connections: the round trip
//!    without a storage call, which bounds the renewals' rate;
//! 5. lease renewals driven by `wrk` (a C load generator; Debian's package,
//!    installed with apt-get when missing): `WRK_CONNECTIONS` TLS
//!    connections for `WRK_SECONDS`, raw requests from
//!    `gbs_vs_tahoe/renew.lua` carrying the two `X-Tahoe-Authorization`
//!    lines, over the first `WRK_SIS` small shares; a run with any error
//!    (non-2xx reply, socket error) is reported as failed, not as a rate;
//!    then the same wrk run asking only the version (`GET /storage/v1/version`,
//!    no storage call): the rate the server's network path allows on these
//!    connections and cores, printed as the ceiling of the renewals' ratio;
//! 6. peak RSS (`VmHWM`) of the server process.
//!
//! Then, with both servers stopped, the crawlers over one generated
//! Tahoe-layout store of `CRAWL_SHARES` immutable shares (one lease record
//! each, as a stock server writes them): stock Tahoe's
//! `LeaseCheckingCrawler` (`gbs_vs_tahoe/tahoe_crawler.py`, run by the
//! venv's python, unthrottled) and ours (`PluginHost` over a `DirStore` of
//! that directory, a fresh state directory, unthrottled), the first cycle
//! and a second (steady) one each. Our first cycle includes the plugin's
//! start, with the compile an earlier run of the binary left in its cache
//! (as a first `crawl` on a node finds it); a row beside it adds the compile
//! of a binary's very first run instead.
//!
//! Run: `cargo bench -p host-runner --bench gbs_vs_tahoe` (installs Tahoe
//! into `target/tahoe-venv` the first time, through `scripts/tahoe-venv.sh`).
//! `GBS_BENCH_SCALE=0.1` shrinks every count (and the wrk runs) for a quick
//! try; `GBS_BENCH_WRK_SECONDS` sets the wrk runs' length. `GBS_BENCH_PERF=FILE`
//! records `perf record -g` of `serve` while wrk runs against it
//! (`GBS_BENCH_PERF_CALL_GRAPH=dwarf` to unwind the host's code too; see
//! docs/performance.md); `GBS_BENCH_PERF_PHASES=DIR` records one file per
//! phase the bench's client drives (`upload.perf`, `download.perf`,
//! `small-shares.perf`, `renewals.perf`). Each server's CPU use in each of
//! those phases, the client's and the machine's idle share are printed
//! either way. `GBS_BENCH_CRAWL_ONLY=1` runs and prints the crawlers alone.
//!
//! Not equal footing on durability: host-runner syncs its lease database
//! before answering (group commit), stock Tahoe writes share and lease files
//! without fsync.

#[path = "../tests/all/tahoe/harness.rs"]
#[allow(unused_imports)]
mod harness;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use harness::{peak_rss_kib, run_bounded, tahoe_bin, Serve, StorageNode};
use host_runner::client::{tls_config, ClientError, Connection, Nurl};
use host_runner::server::identity::authorization_value;
use host_runner::{DirStore, HostConfig, ObjectStore, Operations, PluginHost, StorageIndex};

const PIECE: usize = 1 << 20;
const SHARE_SIZE: usize = 8 << 20;
const SHARES: usize = 32;
const DATA_CONNECTIONS: usize = 8;
const LEASE_SHARES: usize = 10_000;
const SMALL_SHARE: usize = 1024;
const LEASE_CONNECTIONS: usize = 16;
const LEASE_ROUNDS: usize = 2;
const WRK_CONNECTIONS: usize = 32;
const WRK_THREADS: usize = 2;
const WRK_SECONDS: f64 = 10.0;
const WRK_SIS: usize = 300;
const CRAWL_SHARES: usize = 20_000;

/// Counts scaled by `GBS_BENCH_SCALE` (default 1).
struct Workload {
    shares: usize,
    lease_shares: usize,
    /// Storage indexes the wrk renewals cycle through.
    wrk_sis: usize,
    /// How long each wrk run lasts.
    wrk_seconds: u64,
    /// Shares in the crawlers' store.
    crawl_shares: usize,
}

impl Workload {
    fn from_env() -> Workload {
        let scale: f64 = std::env::var("GBS_BENCH_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0);
        let scaled = |n: usize| ((n as f64 * scale).round() as usize).max(1);
        let lease_shares = scaled(LEASE_SHARES);
        Workload {
            shares: scaled(SHARES),
            lease_shares,
            wrk_sis: WRK_SIS.min(lease_shares),
            // `GBS_BENCH_WRK_SECONDS`: longer wrk runs (e.g. to profile).
            wrk_seconds: std::env::var("GBS_BENCH_WRK_SECONDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| (WRK_SECONDS * scale).round().max(3.0) as u64),
            crawl_shares: scaled(CRAWL_SHARES),
        }
    }
}

/// Storage index, lease secrets and upload secret of share `i` of `kind`.
struct Share {
    si: StorageIndex,
    renew: [u8; 32],
    cancel: [u8; 32],
    upload: [u8; 20],
}

fn share(kind: &str, i: usize) -> Share {
    let h = |what: &str| Sha256::digest(format!("{kind}/{i}/{what}").as_bytes());
    Share {
        si: StorageIndex(h("si")[..16].try_into().unwrap()),
        renew: h("renew").into(),
        cancel: h("cancel").into(),
        upload: h("upload")[..20].try_into().unwrap(),
    }
}

/// What one server did.
#[derive(Default)]
struct Results {
    upload_mb_s: f64,
    download_mb_s: f64,
    small_shares_s: f64,
    renewals_s: f64,
    /// Version requests answered per second on the renewals' connections.
    round_trips_s: f64,
    wrk: Option<Wrk>,
    /// The same wrk run asking only the version: the network path's ceiling.
    wrk_version: Option<Wrk>,
    peak_rss_mib: f64,
    /// The server's CPU use in each data phase.
    phase_cores: Vec<String>,
    note: String,
}

/// One wrk run's outcome.
enum Wrk {
    /// Every request answered 2xx.
    Rate {
        per_s: f64,
        p50_us: u64,
        p99_us: u64,
        /// Cores the server process used, on average.
        server_cores: f64,
        /// Share of the machine's CPU time that was idle.
        machine_idle: f64,
    },
    /// Some were not: no throughput to report.
    Failed(String),
}

impl Wrk {
    fn per_s(&self) -> f64 {
        match self {
            Wrk::Rate { per_s, .. } => *per_s,
            Wrk::Failed(_) => f64::NAN,
        }
    }
}

/// `wrk` on the PATH, installed from Debian's archive the first time.
fn ensure_wrk() {
    let found = || Command::new("wrk").arg("--version").output().is_ok();
    if found() {
        return;
    }
    eprintln!("installing wrk (apt-get)...");
    let root = rustix::process::geteuid().is_root();
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run_bounded(&mut cmd, Duration::from_secs(600))
    };
    apt(&["update", "-qq"]);
    let out = apt(&["install", "-y", "-qq", "wrk"]);
    assert!(
        out.status.success() && found(),
        "wrk could not be installed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (idle, total) clock ticks of the whole machine, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (idle, fields.iter().take(8).sum())
}

/// CPU clock ticks (user + system) process `pid` used so far.
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 12th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    fields.iter().sum()
}

/// `perf record -g` of one process, from `start` until dropped.
struct Recording(std::process::Child);

impl Recording {
    fn start(file: &str, pid: u32) -> Recording {
        let child = Command::new("perf")
            .args(["record", "-F", "997", "-o", file, "--call-graph"])
            // `GBS_BENCH_PERF_CALL_GRAPH=dwarf`: unwinds host code built
            // without frame pointers (bigger files; the default is `fp`).
            .arg(std::env::var("GBS_BENCH_PERF_CALL_GRAPH").unwrap_or_else(|_| "fp".into()))
            .arg("-p")
            .arg(pid.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting perf record");
        // perf attaches asynchronously; samples before it has are lost.
        std::thread::sleep(Duration::from_millis(300));
        Recording(child)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // perf writes its file on SIGINT.
        // SAFETY: signals our own child.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let _ = self.0.wait();
    }
}

/// Samples the server through one phase: its CPU use and the machine's
/// idle share always, and a perf recording when given a file.
struct Phase {
    name: &'static str,
    pid: u32,
    ticks: u64,
    /// This process's ticks: the bench's own client, in the phases it drives.
    client_ticks: u64,
    machine: (u64, u64),
    started: Instant,
    _recording: Option<Recording>,
}

impl Phase {
    /// A data phase, recorded into `DIR/<name>.perf` when
    /// `GBS_BENCH_PERF_PHASES=DIR` is set.
    fn start(name: &'static str, pid: u32, perf_dir: Option<&str>) -> Phase {
        let file = perf_dir.map(|dir| format!("{dir}/{name}.perf"));
        Phase::recorded(name, pid, file.as_deref())
    }

    fn recorded(name: &'static str, pid: u32, perf_file: Option<&str>) -> Phase {
        let recording = perf_file.map(|file| Recording::start(file, pid));
        Phase {
            name,
            pid,
            ticks: process_ticks(pid),
            client_ticks: process_ticks(std::process::id()),
            machine: machine_ticks(),
            started: Instant::now(),
            _recording: recording,
        }
    }

    /// Cores the server used on average since the start, and the share of
    /// the machine's CPU time nobody used (the client runs beside it).
    fn usage(&self) -> (f64, f64) {
        // SAFETY: sysconf only reads a constant.
        let per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let cores = (process_ticks(self.pid) - self.ticks) as f64
            / per_s
            / self.started.elapsed().as_secs_f64();
        let machine = machine_ticks();
        let idle = (machine.0 - self.machine.0) as f64 / (machine.1 - self.machine.1).max(1) as f64;
        (cores, idle)
    }

    /// "name N cores, client C (M% idle)": the server's cores, the bench
    /// client's, and what the machine left idle.
    fn end(self) -> String {
        let (cores, idle) = self.usage();
        // SAFETY: sysconf only reads a constant.
        let per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let client = (process_ticks(std::process::id()) - self.client_ticks) as f64
            / per_s
            / self.started.elapsed().as_secs_f64();
        format!(
            "{} {cores:.2} cores, client {client:.2} ({:.0}% idle)",
            self.name,
            idle * 100.0
        )
    }
}

/// What a wrk run asks.
#[derive(Clone, Copy, PartialEq)]
enum WrkAsks {
    /// Lease renewals.
    Renewals,
    /// The version only: no storage call, so the rate is what the server's
    /// network path (TLS, HTTP, authorization) answers on these connections.
    Version,
}

/// Drives renewals (or version requests) with wrk against `nurl` for
/// `w.wrk_seconds`; while it runs, `perf record -g` samples process
/// `server` into `profile` if given.
fn wrk_renewals(
    nurl: &Nurl,
    w: &Workload,
    work: &Path,
    server: u32,
    profile: Option<&str>,
    asks: WrkAsks,
) -> Wrk {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let requests = work.join("wrk-requests.txt");
    let lines: String = (0..w.wrk_sis)
        .map(|i| {
            let s = share("small", i);
            format!("{} {} {}\n", s.si, b64(&s.renew), b64(&s.cancel))
        })
        .collect();
    std::fs::write(&requests, lines).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gbs_vs_tahoe/renew.lua");
    let phase = Phase::recorded("wrk", server, profile);
    let out = run_bounded(
        Command::new("wrk")
            .arg(format!("-t{WRK_THREADS}"))
            .arg(format!("-c{WRK_CONNECTIONS}"))
            .arg(format!("-d{}s", w.wrk_seconds))
            .args(["--timeout", "10s", "-s"])
            .arg(&script)
            .arg(format!("https://{}/", nurl.addr))
            .arg("--")
            .arg(&requests)
            .arg(authorization_value(&nurl.swissnum))
            .args((asks == WrkAsks::Version).then_some("version")),
        Duration::from_secs(w.wrk_seconds + 120),
    );
    let (server_cores, machine_idle) = phase.usage();
    drop(phase);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("leasedb-wrk ")) else {
        return Wrk::Failed(format!(
            "wrk printed no summary ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    };
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (requests, status_errors, socket_errors) = (
        field("requests"),
        field("status_errors"),
        field("socket_errors"),
    );
    if requests == 0 || status_errors > 0 || socket_errors > 0 {
        return Wrk::Failed(format!(
            "{requests} requests, {status_errors} not 2xx, {socket_errors} socket errors"
        ));
    }
    Wrk::Rate {
        per_s: requests as f64 / (field("duration_us") as f64 / 1e6),
        p50_us: field("p50_us"),
        p99_us: field("p99_us"),
        server_cores,
        machine_idle,
    }
}

/// One crawler's first and steady cycle, in shares per second.
struct CrawlRates {
    /// The start and the first cycle, the plugin compiled already (a
    /// binary compiles it once; stock's row: its first cycle).
    first: f64,
    /// The same, on the binary's very first run: the compile included.
    first_compiling: f64,
    steady: f64,
}

/// Writes `n` immutable shares (v1 containers, 1 KiB of data and one lease
/// record each, as a stock Tahoe server leaves them) into `storage/shares/`.
fn generate_tahoe_store(storage: &Path, n: usize) {
    let expiry = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 31 * 86_400) as u32;
    for i in 0..n {
        let s = share("crawl", i);
        let mut container = Vec::with_capacity(12 + SMALL_SHARE + 72);
        container.extend_from_slice(&1u32.to_be_bytes());
        container.extend_from_slice(&(SMALL_SHARE as u32).to_be_bytes());
        container.extend_from_slice(&1u32.to_be_bytes());
        container.extend_from_slice(&[0x5a; SMALL_SHARE]);
        container.extend_from_slice(&0u32.to_be_bytes()); // owner
        container.extend_from_slice(&s.renew);
        container.extend_from_slice(&s.cancel);
        container.extend_from_slice(&expiry.to_be_bytes());
        let si = s.si.to_string();
        let dir = storage.join("shares").join(&si[..2]).join(&si);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0"), &container).unwrap();
    }
}

/// Stock Tahoe's lease-checking crawler over `storage`.
fn tahoe_crawler(storage: &Path, n: usize) -> CrawlRates {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gbs_vs_tahoe/tahoe_crawler.py");
    let out = run_bounded(
        Command::new(tahoe_bin().join("python"))
            .arg(&script)
            .arg(storage),
        Duration::from_secs(1800),
    );
    assert!(
        out.status.success(),
        "the Tahoe crawler failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rate = |cycle: &serde_json::Value| {
        assert_eq!(
            cycle["shares"].as_u64(),
            Some(n as u64),
            "the Tahoe crawler examined another number of shares: {v}"
        );
        n as f64 / cycle["seconds"].as_f64().unwrap()
    };
    let first = rate(&v["first"]);
    CrawlRates {
        first,
        first_compiling: first,
        steady: rate(&v["steady"]),
    }
}

/// Our crawler over `storage`, from a fresh state directory (so the first
/// cycle registers every share), as a first `crawl` on a node does: with the
/// plugin compiled by an earlier run of this binary (the command line keeps
/// it in the user's cache), and, timed apart, the compile of a binary's
/// very first run.
fn our_crawler(storage: &Path, state: &Path, n: usize) -> CrawlRates {
    let cycle = |host: &mut PluginHost| {
        let started = Instant::now();
        while !matches!(
            host.crawler_run_slice(Duration::from_secs(5), true)
                .unwrap(),
            host_runner::plugin::wit::SliceOutcome::Progressed((_, true))
        ) {}
        let took = started.elapsed();
        let status = host.crawler_status().unwrap();
        let examined = status.history[0].examined.total.shares;
        assert_eq!(
            examined, n as u64,
            "our crawler examined another number of shares"
        );
        took
    };
    let store: Arc<dyn ObjectStore> = Arc::new(DirStore::open(storage).unwrap());
    let compile_cache = state.join("compile-cache");
    let start = |name: &str| {
        let started = Instant::now();
        let mut config = HostConfig::new(state.join(name));
        config.compile_cache = compile_cache.clone();
        config.sandbox.call_deadline = Duration::from_secs(600);
        let host = PluginHost::start(config, store.clone()).unwrap();
        (host, started.elapsed())
    };
    // The binary's first run: compiles, fills the cache, crawls nothing.
    let (host, compiling) = start("first-run");
    drop(host);
    let (mut host, start) = start("node");
    let first_cycle = cycle(&mut host);
    let steady = cycle(&mut host);
    CrawlRates {
        first: n as f64 / (start + first_cycle).as_secs_f64(),
        first_compiling: n as f64 / (compiling + first_cycle).as_secs_f64(),
        steady: n as f64 / steady.as_secs_f64(),
    }
}

/// Runs `job(connection, item)` for items `0..n` over `connections`
/// connections; returns the elapsed time.
async fn run_parallel<F, Fut>(
    nurl: &Nurl,
    connections: usize,
    n: usize,
    job: F,
) -> Result<Duration, ClientError>
where
    F: Fn(Connection, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Connection, ClientError>> + Send + 'static,
{
    let tls = tls_config(&nurl.spki_hash);
    let mut conns = Vec::new();
    for _ in 0..connections {
        let mut c = Connection::connect(nurl, tls.clone()).await?;
        c.version().await?;
        conns.push(c);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in conns {
        let next = next.clone();
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = conn;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), ClientError>(());
                }
                conn = job(conn, i).await?;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a worker panicked")?;
    }
    Ok(started.elapsed())
}

async fn measure(
    nurl: &Nurl,
    w: &Workload,
    piece: Bytes,
    pid: u32,
    perf_dir: Option<&str>,
) -> Result<Results, ClientError> {
    let mut r = Results::default();
    let total_bytes = (w.shares * SHARE_SIZE) as f64;

    // 1. Upload.
    let phase = Phase::start("upload", pid, perf_dir);
    let data = piece.clone();
    let took = run_parallel(nurl, DATA_CONNECTIONS, w.shares, move |mut c, i| {
        let data = data.clone();
        async move {
            let s = share("big", i);
            let got = c
                .allocate(
                    &s.si,
                    &s.renew,
                    &s.cancel,
                    &s.upload,
                    &[0],
                    SHARE_SIZE as u64,
                )
                .await?;
            if got.allocated != [0] {
                return Err(ClientError::Protocol(format!("allocate gave {got:?}")));
            }
            for at in (0..SHARE_SIZE).step_by(PIECE) {
                let status = c
                    .write(&s.si, 0, &s.upload, at as u64, data.clone())
                    .await?;
                let last = at + PIECE >= SHARE_SIZE;
                if last != (status == http::StatusCode::CREATED) {
                    return Err(ClientError::Protocol(format!("PATCH at {at}: {status}")));
                }
            }
            Ok(c)
        }
    })
    .await?;
    r.upload_mb_s = total_bytes / took.as_secs_f64() / 1e6;
    r.phase_cores.push(phase.end());

    // 2. Download, checked.
    let phase = Phase::start("download", pid, perf_dir);
    let data = piece.clone();
    let took = run_parallel(nurl, DATA_CONNECTIONS, w.shares, move |mut c, i| {
        let data = data.clone();
        async move {
            let s = share("big", i);
            for at in (0..SHARE_SIZE).step_by(PIECE) {
                let got = c.read(&s.si, 0, at as u64, PIECE as u64).await?;
                if got != data {
                    return Err(ClientError::Protocol(format!(
                        "share {i} at {at}: {} bytes differ",
                        got.len()
                    )));
                }
            }
            Ok(c)
        }
    })
    .await?;
    r.download_mb_s = total_bytes / took.as_secs_f64() / 1e6;
    r.phase_cores.push(phase.end());

    // 3. The small shares the renewals run on.
    let phase = Phase::start("small-shares", pid, perf_dir);
    let small = piece.slice(..SMALL_SHARE);
    let took = run_parallel(nurl, LEASE_CONNECTIONS, w.lease_shares, move |mut c, i| {
        let small = small.clone();
        async move {
            let s = share("small", i);
            c.allocate(
                &s.si,
                &s.renew,
                &s.cancel,
                &s.upload,
                &[0],
                SMALL_SHARE as u64,
            )
            .await?;
            c.write(&s.si, 0, &s.upload, 0, small).await?;
            Ok(c)
        }
    })
    .await?;
    r.small_shares_s = w.lease_shares as f64 / took.as_secs_f64();
    r.phase_cores.push(phase.end());

    // 4. Lease renewals.
    eprintln!("  lease renewals...");
    let phase = Phase::start("renewals", pid, perf_dir);
    let n = w.lease_shares;
    let took = run_parallel(
        nurl,
        LEASE_CONNECTIONS,
        n * LEASE_ROUNDS,
        move |mut c, i| async move {
            let s = share("small", i % n);
            c.renew_lease(&s.si, &s.renew, &s.cancel).await?;
            Ok(c)
        },
    )
    .await?;
    r.renewals_s = (n * LEASE_ROUNDS) as f64 / took.as_secs_f64();
    r.phase_cores.push(phase.end());

    // 5. The same client and connections asking for the version, which no
    // storage call answers: the round trip every renewal pays before its
    // commit, so the ceiling of the renewals' rate on these connections.
    eprintln!("  version round trips...");
    let took = run_parallel(
        nurl,
        LEASE_CONNECTIONS,
        n * LEASE_ROUNDS,
        move |mut c, _| async move {
            c.version().await?;
            Ok(c)
        },
    )
    .await?;
    r.round_trips_s = (n * LEASE_ROUNDS) as f64 / took.as_secs_f64();
    Ok(r)
}

fn ratio(hr: f64, stock: f64) -> String {
    if stock > 0.0 && hr.is_finite() && stock.is_finite() {
        format!("{:.2}x", hr / stock)
    } else {
        "-".into()
    }
}

/// Both crawlers over one generated store (stock's unless `skip_stock`).
fn crawl_both(work: &Path, w: &Workload, skip_stock: bool) -> (Option<CrawlRates>, CrawlRates) {
    eprintln!(
        "crawlers: generating a Tahoe-layout store of {} shares...",
        w.crawl_shares
    );
    let storage = work.join("crawl/storage");
    generate_tahoe_store(&storage, w.crawl_shares);
    eprintln!("crawlers: stock Tahoe's lease-checking crawler...");
    let stock_crawl = (!skip_stock).then(|| tahoe_crawler(&storage, w.crawl_shares));
    eprintln!("crawlers: ours...");
    let our_crawl = our_crawler(&storage, &work.join("crawl/state"), w.crawl_shares);
    (stock_crawl, our_crawl)
}

/// The crawlers' rows, as `row(what, stock, ours, digits, goal)` prints them.
fn crawl_rows(
    stock: Option<&CrawlRates>,
    ours: &CrawlRates,
    row: impl Fn(&str, f64, f64, usize, &str),
) {
    let (tahoe_first, tahoe_steady) = stock.map_or((f64::NAN, f64::NAN), |c| (c.first, c.steady));
    row(
        "crawler shares/s, first cycle (with start)",
        tahoe_first,
        ours.first,
        0,
        ">= 2x",
    );
    row(
        "  the same on a binary's first run (compiles)",
        tahoe_first,
        ours.first_compiling,
        0,
        "",
    );
    row(
        "crawler shares/s, steady cycle",
        tahoe_steady,
        ours.steady,
        0,
        ">= 10x",
    );
}

/// One row of the results table.
fn row(what: &str, a: f64, b: f64, digits: usize, goal: &str) {
    println!(
        "{what:<40} {a:>16.digits$} {b:>18.digits$} {:>18} {goal:>8}",
        ratio(b, a)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let w = Workload::from_env();
    // `GBS_BENCH_SKIP_STOCK=1`: only host-runner (quick iterations; no ratios).
    let skip_stock = std::env::var_os("GBS_BENCH_SKIP_STOCK").is_some();
    tahoe_bin();
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("GBS_BENCH_CRAWL_ONLY").is_some() {
        let (stock, ours) = crawl_both(dir.path(), &w, skip_stock);
        println!(
            "{:<40} {:>16} {:>18} {:>18} {:>8}",
            format!("crawlers: {} shares", w.crawl_shares),
            "stock Tahoe 1.20",
            "host-runner",
            "host-runner/stock",
            "goal"
        );
        crawl_rows(stock.as_ref(), &ours, row);
        return;
    }
    ensure_wrk();
    let piece = Bytes::from(harness::file_bytes(PIECE, 6));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    eprintln!("starting a stock Tahoe-LAFS 1.20 storage node and host-runner serve...");
    let mut stock = StorageNode::start(&dir.path().join("stock"));
    // `GBS_BENCH_SERVE_ARGS`: more `serve` arguments (e.g. `--crawler-cpu-percent 0`).
    let extra = std::env::var("GBS_BENCH_SERVE_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    // A node's first start compiles the plugin into its state directory's
    // cache; every later start loads it. The compiler's peak is not the
    // workload's, so the measured server starts with the cache a first
    // start left, and that first start's peak is printed on its own line.
    let first_start = Serve::start_with(&dir.path().join("first-start"), None, &extra);
    let compile_peak_mib = peak_rss_kib(first_start.pid().unwrap()).unwrap_or(0) as f64 / 1024.0;
    let mut serve = Serve::start_with(&dir.path().join("host-runner"), Some(&first_start), &extra);
    drop(first_start);
    let stock_nurl = Nurl::parse(&stock.nurl).unwrap();
    let serve_nurl = Nurl::parse(&serve.nurl).unwrap();
    // `GBS_BENCH_PERF=FILE`: `perf record -g` of serve during its wrk run.
    let perf_file = std::env::var("GBS_BENCH_PERF").ok();
    // `GBS_BENCH_PERF_PHASES=DIR`: one recording of serve per data phase.
    let phase_perf_dir = std::env::var("GBS_BENCH_PERF_PHASES").ok();

    let mut results = Vec::new();
    for (name, nurl, pid, is_serve) in [
        ("stock Tahoe 1.20", &stock_nurl, stock.pid().unwrap(), false),
        ("host-runner serve", &serve_nurl, serve.pid().unwrap(), true),
    ] {
        if skip_stock && results.is_empty() {
            results.push(Results::default());
            continue;
        }
        eprintln!("{name}: running the workload ({nurl})");
        let started = Instant::now();
        let phase_perf = phase_perf_dir.as_deref().filter(|_| is_serve);
        let mut r = rt
            .block_on(measure(nurl, &w, piece.clone(), pid, phase_perf))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!(
            "  wrk lease renewals ({WRK_CONNECTIONS} connections, {} s)...",
            w.wrk_seconds
        );
        let profile = perf_file.as_deref().filter(|_| is_serve);
        let work = dir.path();
        let renewals = WrkAsks::Renewals;
        r.wrk = Some(wrk_renewals(nurl, &w, work, pid, profile, renewals));
        eprintln!("  wrk asking only the version, on the same connections...");
        r.wrk_version = Some(wrk_renewals(nurl, &w, work, pid, None, WrkAsks::Version));
        r.peak_rss_mib = peak_rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
        eprintln!("{name}: done in {:.1} s", started.elapsed().as_secs_f64());
        results.push(r);
    }
    let status = serve.status_json();
    let group = &status["server"]["group_commit"];
    results[1].note = format!(
        "group commit: {} batches of {} operations, {} alone",
        group["batches"], group["batched_operations"], group["single_operations"]
    );
    // Time inside the plugin, over its latest calls: the renewals, the
    // downloads' reads, the small shares' writes and closes.
    for l in status["latencies"].as_array().into_iter().flatten() {
        if [
            "add-lease",
            "commit-batch",
            "begin-batch",
            "read",
            "write",
            "close",
        ]
        .contains(&l["operation"].as_str().unwrap_or(""))
        {
            results[1].note.push_str(&format!(
                "\n  in the plugin: {} p50 {} us, p99 {} us ({} samples)",
                l["operation"], l["p50_us"], l["p99_us"], l["samples"]
            ));
        }
    }
    stock.kill();
    serve.kill();

    let (stock_crawl, our_crawl) = crawl_both(dir.path(), &w, skip_stock);

    let (s, h) = (&results[0], &results[1]);
    let mb = (w.shares * SHARE_SIZE) as f64 / 1e6;
    println!();
    println!(
        "GBS workload: {} shares x {} MiB up and down ({mb:.0} MB each way, 1 MiB pieces, {DATA_CONNECTIONS} connections); \
         {} small shares of {SMALL_SHARE} B, each lease renewed {LEASE_ROUNDS}x ({LEASE_CONNECTIONS} connections); \
         wrk: {WRK_CONNECTIONS} TLS connections, {} s, {} storage indexes; crawlers: {} shares",
        w.shares,
        SHARE_SIZE >> 20,
        w.lease_shares,
        w.wrk_seconds,
        w.wrk_sis,
        w.crawl_shares,
    );
    println!(
        "{:<40} {:>16} {:>18} {:>18} {:>8}",
        "", "stock Tahoe 1.20", "host-runner serve", "host-runner/stock", "goal"
    );
    row("upload MB/s", s.upload_mb_s, h.upload_mb_s, 1, ">= 2x");
    row(
        "download MB/s",
        s.download_mb_s,
        h.download_mb_s,
        1,
        ">= 3x",
    );
    row(
        &format!("lease renewals/s ({} shares)", w.lease_shares),
        s.renewals_s,
        h.renewals_s,
        0,
        ">= 20x",
    );
    println!(
        "{:<40} {:>16.0} {:>18.0}",
        "  the same client asking only the version", s.round_trips_s, h.round_trips_s
    );
    let wrk_rate = |r: &Results| r.wrk.as_ref().map_or(f64::NAN, Wrk::per_s);
    row(
        &format!("lease renewals/s, wrk ({} SIs)", w.wrk_sis),
        wrk_rate(s),
        wrk_rate(h),
        0,
        ">= 20x",
    );
    // No renewal can be answered faster than the version on the same
    // connections: serve's version rate over stock's renewals is the
    // ratio this machine's network path leaves room for.
    let version_rate = |r: &Results| r.wrk_version.as_ref().map_or(f64::NAN, Wrk::per_s);
    println!(
        "{:<40} {:>16.0} {:>18.0} {:>18}",
        "  the same wrk asking only the version",
        version_rate(s),
        version_rate(h),
        format!("ceiling {}", ratio(version_rate(h), wrk_rate(s))),
    );
    row(
        "small shares created/s",
        s.small_shares_s,
        h.small_shares_s,
        0,
        ">= 5x",
    );
    row(
        "peak RSS MiB (VmHWM)",
        s.peak_rss_mib,
        h.peak_rss_mib,
        1,
        "<= 1x",
    );
    println!(
        "{:<40} {:>16} {compile_peak_mib:>18.1}",
        "  serve's first start, compiling the plugin", "-"
    );
    crawl_rows(stock_crawl.as_ref(), &our_crawl, row);
    for (name, r) in [("stock Tahoe 1.20", s), ("host-runner serve", h)] {
        match &r.wrk {
            Some(Wrk::Rate {
                per_s,
                p50_us,
                p99_us,
                server_cores,
                machine_idle,
            }) => println!(
                // What a renewal costs the server, beside the rate, which
                // also waits on the clients' round trips.
                "wrk against {name}: latency p50 {:.2} ms, p99 {:.2} ms; the server used {server_cores:.2} \
                 of the {} cores ({:.0} us of its CPU a renewal), the machine was {:.0}% idle",
                *p50_us as f64 / 1e3,
                *p99_us as f64 / 1e3,
                std::thread::available_parallelism().map_or(0, |n| n.get()),
                server_cores / per_s * 1e6,
                machine_idle * 100.0
            ),
            Some(Wrk::Failed(why)) => println!("wrk against {name}: FAILED, no rate: {why}"),
            None => {}
        }
        if let Some(Wrk::Failed(why)) = &r.wrk_version {
            println!("wrk asking {name} the version: FAILED, no rate: {why}");
        }
        if !r.phase_cores.is_empty() {
            println!("CPU of {name} by phase: {}", r.phase_cores.join(", "));
        }
    }
    println!("host-runner {}", h.note);
    println!("(host-runner syncs its database before answering; stock Tahoe does not fsync.)");
    println!(
        "(our first crawler cycle includes the plugin's start on a fresh state directory; \
         the compile a binary does once, on its first run, is in the row below it.)"
    );
}

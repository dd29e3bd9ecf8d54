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
//!    secrets, on all 10,000, `LEASE_ROUNDS` times, over `LEASE_CONNECTIONS`;
//! 5. peak RSS (`VmHWM`) of the server process.
//!
//! Run: `cargo bench -p host-runner --bench gbs_vs_tahoe` (installs Tahoe
//! into `target/tahoe-venv` the first time, through `scripts/tahoe-venv.sh`).
//! `GBS_BENCH_SCALE=0.1` shrinks every count for a quick try.
//!
//! Not equal footing on durability: host-runner syncs its lease database
//! before answering (group commit), stock Tahoe writes share and lease files
//! without fsync.

#[path = "../tests/tahoe/harness.rs"]
#[allow(unused_imports)]
mod harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use harness::{peak_rss_kib, tahoe_bin, Serve, StorageNode};
use host_runner::client::{tls_config, ClientError, Connection, Nurl};
use host_runner::StorageIndex;

const PIECE: usize = 1 << 20;
const SHARE_SIZE: usize = 8 << 20;
const SHARES: usize = 32;
const DATA_CONNECTIONS: usize = 8;
const LEASE_SHARES: usize = 10_000;
const SMALL_SHARE: usize = 1024;
const LEASE_CONNECTIONS: usize = 16;
const LEASE_ROUNDS: usize = 2;

/// Counts scaled by `GBS_BENCH_SCALE` (default 1).
struct Workload {
    shares: usize,
    lease_shares: usize,
}

impl Workload {
    fn from_env() -> Workload {
        let scale: f64 = std::env::var("GBS_BENCH_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0);
        let scaled = |n: usize| ((n as f64 * scale).round() as usize).max(1);
        Workload {
            shares: scaled(SHARES),
            lease_shares: scaled(LEASE_SHARES),
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
    peak_rss_mib: f64,
    note: String,
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

async fn measure(nurl: &Nurl, w: &Workload, piece: Bytes) -> Result<Results, ClientError> {
    let mut r = Results::default();
    let total_bytes = (w.shares * SHARE_SIZE) as f64;

    // 1. Upload.
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

    // 2. Download, checked.
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

    // 3. The small shares the renewals run on.
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

    // 4. Lease renewals.
    eprintln!("  lease renewals...");
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
    Ok(r)
}

fn ratio(hr: f64, stock: f64) -> String {
    if stock > 0.0 {
        format!("{:.2}x", hr / stock)
    } else {
        "-".into()
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let w = Workload::from_env();
    tahoe_bin();
    let dir = tempfile::tempdir().unwrap();
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
    let mut serve = Serve::start_with(&dir.path().join("host-runner"), None, &extra);
    let stock_nurl = Nurl::parse(&stock.nurl).unwrap();
    let serve_nurl = Nurl::parse(&serve.nurl).unwrap();

    let mut results = Vec::new();
    // `GBS_BENCH_SKIP_STOCK=1`: only host-runner (quick iterations; no ratios).
    let skip_stock = std::env::var_os("GBS_BENCH_SKIP_STOCK").is_some();
    for (name, nurl, pid) in [
        ("stock Tahoe 1.20", &stock_nurl, stock.pid().unwrap()),
        ("host-runner serve", &serve_nurl, serve.pid().unwrap()),
    ] {
        if skip_stock && results.is_empty() {
            results.push(Results::default());
            continue;
        }
        eprintln!("{name}: running the workload ({nurl})");
        let started = Instant::now();
        let mut r = rt
            .block_on(measure(nurl, &w, piece.clone()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
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
    // Time inside the plugin, over its latest calls (mostly the renewals).
    for l in status["latencies"].as_array().into_iter().flatten() {
        if ["add-lease", "commit-batch", "begin-batch"]
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

    let (s, h) = (&results[0], &results[1]);
    let mb = (w.shares * SHARE_SIZE) as f64 / 1e6;
    println!();
    println!(
        "GBS workload: {} shares x {} MiB up and down ({mb:.0} MB each way, 1 MiB pieces, {DATA_CONNECTIONS} connections); \
         {} small shares of {SMALL_SHARE} B, each lease renewed {LEASE_ROUNDS}x ({LEASE_CONNECTIONS} connections)",
        w.shares,
        SHARE_SIZE >> 20,
        w.lease_shares,
    );
    println!(
        "{:<34} {:>16} {:>18} {:>18}",
        "", "stock Tahoe 1.20", "host-runner serve", "host-runner/stock"
    );
    let row = |what: &str, a: f64, b: f64, digits: usize| {
        println!(
            "{what:<34} {a:>16.digits$} {b:>18.digits$} {:>18}",
            ratio(b, a)
        );
    };
    row("upload MB/s", s.upload_mb_s, h.upload_mb_s, 1);
    row("download MB/s", s.download_mb_s, h.download_mb_s, 1);
    row(
        &format!("lease renewals/s ({} shares)", w.lease_shares),
        s.renewals_s,
        h.renewals_s,
        0,
    );
    row(
        "small shares created/s",
        s.small_shares_s,
        h.small_shares_s,
        0,
    );
    row("peak RSS MiB (VmHWM)", s.peak_rss_mib, h.peak_rss_mib, 1);
    println!("host-runner {}", h.note);
    println!("(host-runner syncs its database before answering; stock Tahoe does not fsync.)");
}

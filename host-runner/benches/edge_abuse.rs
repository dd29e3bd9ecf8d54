//! Issue 10's numbers: what hostile clients cost a running `serve`.
//!
//! `cargo bench -p host-runner --bench edge_abuse` (a plain binary; prints
//! numbers). `EDGE_SHARE_MIB` sets the size of the share read (default 1024),
//! `EDGE_STALLED` the number of stalling clients (default 1000).
//!
//! 1. 1,000 clients send a request header without its final blank line and
//!    hold still: connections still held after the header timeout.
//! 2. 20 clients GET one large share at once (each discarding what it reads):
//!    the peak RSS the reads added.
//!
//! Through each, an honest upload begun before the abuse completes after it.

#[path = "../tests/all/tahoe/https_client.rs"]
#[allow(dead_code)]
mod https_client;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use host_runner::server::{ServeOptions, Server};
use http::Request;
use http_body_util::{BodyExt, Empty};
use https_client::*;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set of this process so far, in MiB (Linux).
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Resets the peak RSS counter (Linux: write 5 to clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    let stalled = env("EDGE_STALLED", 1000);
    let share_mib = env("EDGE_SHARE_MIB", 1024);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("storage"), dir.path().join("state"));
    opts.listen = Some("127.0.0.1:0".into());
    opts.crawler = None;
    opts.header_timeout = Duration::from_secs(2);
    opts.max_connections = opts.max_connections.max(stalled + 64);
    let server = Server::start(opts).unwrap();
    let honest = Client::new(&server.nurl);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, _, hash) = parse_nurl(&server.nurl);
    let tls = host_runner::client::tls_config(&hash);

    // An honest upload in flight through both abuses.
    let honest_si = si(1);
    let honest_data = data(4000, 1);
    assert_eq!(allocate_share_0(&honest, &honest_si, 4000, 9).status, 200);
    assert_eq!(
        patch_share_0(&honest, &honest_si, 0, &honest_data[..1000], 9).status,
        200
    );

    // 1. Stalled headers.
    let before = server.gbs().counters().connections.load(Ordering::Relaxed);
    let started = Instant::now();
    stalled_headers(&rt, &server.nurl, stalled);
    let peak_held = server.gbs().counters().connections.load(Ordering::Relaxed) - before;
    while server.gbs().counters().connections.load(Ordering::Relaxed) > before
        && started.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let held = server
        .gbs()
        .counters()
        .connections
        .load(Ordering::Relaxed)
        .saturating_sub(before);
    println!("stalled clients: {stalled}; held at most {peak_held} at once; held after the 2 s header timeout: {held} (after {:.1} s)", started.elapsed().as_secs_f64());
    assert_eq!(
        patch_share_0(&honest, &honest_si, 1000, &honest_data[1000..2000], 9).status,
        200
    );
    println!("honest upload in flight: still writable after the stalled clients");

    // 2. 20 clients GET one large share.
    let big = si(2);
    let size = (share_mib as u64) << 20;
    assert_eq!(allocate_share_0(&honest, &big, size, 7).status, 200);
    let piece = 4u64 << 20;
    let mut at = 0;
    while at < size {
        let n = piece.min(size - at);
        let r = patch_share_0(&honest, &big, at, &data(n as usize, (at >> 20) as u8), 7);
        assert!(r.status == 200 || r.status == 201, "{:?}", r.status);
        at += n;
    }
    reset_peak_rss();
    let base = peak_rss_mib();
    let started = Instant::now();
    let read_total: u64 = rt.block_on(async {
        let mut readers = Vec::new();
        for _ in 0..20 {
            let (addr, tls, auth, big) = (
                addr.clone(),
                tls.clone(),
                honest.authorization.clone(),
                big.clone(),
            );
            readers.push(tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let s = tokio_rustls::TlsConnector::from(tls)
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await
                    .unwrap();
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let req = Request::get(format!("/storage/v1/immutable/{big}/0"))
                    .header("host", &addr)
                    .header("authorization", auth)
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let mut body = sender.send_request(req).await.unwrap().into_body();
                let mut n = 0u64;
                while let Some(frame) = body.frame().await {
                    if let Ok(d) = frame.unwrap().into_data() {
                        n += d.len() as u64;
                    }
                }
                n
            }));
        }
        let mut total = 0;
        for r in readers {
            total += r.await.unwrap();
        }
        total
    });
    let peak = peak_rss_mib();
    println!(
        "20 clients read a {share_mib} MiB share ({:.1} GiB in {:.1} s): peak RSS {peak} MiB, {} MiB above the {base} MiB before",
        read_total as f64 / (1u64 << 30) as f64,
        started.elapsed().as_secs_f64(),
        peak.saturating_sub(base)
    );
    assert_eq!(read_total, 20 * size);
    assert_eq!(
        patch_share_0(&honest, &honest_si, 2000, &honest_data[2000..], 9).status,
        201
    );
    println!("honest upload in flight: completed after both abuses");
}

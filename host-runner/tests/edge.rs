//! Issue 10: what a hostile client can do to `serve`, one test per attack,
//! each with an honest client checking that it is still served. The timeouts
//! are shortened so the tests run in seconds; the defaults are 30 s.

#[path = "tahoe/https_client.rs"]
mod https_client;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use host_runner::server::{ServeOptions, Server};
use https_client::*;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
}

fn start(tune: impl FnOnce(&mut ServeOptions)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("storage"), dir.path().join("state"));
    opts.listen = Some("127.0.0.1:0".into());
    opts.crawler = None;
    opts.header_timeout = Duration::from_secs(1);
    opts.body_timeout = Duration::from_secs(1);
    opts.upload_idle_timeout = Duration::from_secs(2);
    opts.host.max_mutable_size = 4 << 20;
    tune(&mut opts);
    let server = Server::start(opts).unwrap();
    Fixture { _dir: dir, server }
}

/// Waits (without a timed assertion: only a generous bound against hanging)
/// until `done` holds; returns whether it did.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + Duration::from_secs(120);
    while Instant::now() < give_up {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Opens `n` TLS connections at once that each send a request header
/// without its final blank line, then hold still until the server closes
/// them. Returns when every one was accepted (a server that caps its
/// connections accepts some only after others were closed).
fn stalled_headers(rt: &tokio::runtime::Runtime, nurl: &str, n: usize) {
    let (addr, _, hash) = parse_nurl(nurl);
    let tls = host_runner::client::tls_config(&hash);
    rt.block_on(async {
        let mut accepted = Vec::new();
        for _ in 0..n {
            let (addr, tls) = (addr.clone(), tls.clone());
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let connector = tokio_rustls::TlsConnector::from(tls);
                let Ok(mut s) = connector
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await
                else {
                    return;
                };
                let _ = s
                    .write_all(b"GET /storage/v1/version HTTP/1.1\r\nHost: x\r\n")
                    .await;
                let _ = s.flush().await;
                let _ = tx.send(());
                // Hold still until the server gives up on us.
                let mut sink = [0u8; 64];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            });
            accepted.push(rx);
        }
        for rx in accepted {
            let _ = rx.await;
        }
    })
}

fn allocate(c: &Client, si: &str, size: u64, secret: u8) -> Reply {
    c.send(
        "POST",
        &format!("/storage/v1/immutable/{si}"),
        &[renew(1), cancel(1), upload(secret), cbor_ct()],
        allocate_body(&[0], size),
    )
}

fn patch(c: &Client, si: &str, first: u64, bytes: &[u8], secret: u8) -> Reply {
    let last = first + bytes.len() as u64 - 1;
    c.send(
        "PATCH",
        &format!("/storage/v1/immutable/{si}/0"),
        &[upload(secret), ("content-range", format!("bytes {first}-{last}/*"))],
        bytes.to_vec(),
    )
}

#[test]
fn clients_stalling_in_their_headers_are_disconnected_and_others_are_served() {
    let f = start(|o| o.upload_idle_timeout = Duration::from_secs(600));
    let connections = || f.server.gbs().counters().connections.load(Ordering::Relaxed);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let honest = Client::new(&f.server.nurl);
    // An honest upload begun before the attack finishes after it.
    let si = si(1);
    let data = data(1000, 1);
    assert_eq!(allocate(&honest, &si, 1000, 5).status, 200);
    assert_eq!(patch(&honest, &si, 0, &data[..500], 5).status, 200);
    assert_eq!(honest.send("GET", "/storage/v1/version", &[], vec![]).status, 200);
    // The honest client's idle keep-alive connections stay open; count the rest.
    let before = connections();

    stalled_headers(&rt, &f.server.nurl, 300);
    assert_eq!(honest.send("GET", "/storage/v1/version", &[], vec![]).status, 200);
    let honest_now = before + 1;
    assert!(
        eventually(|| connections() <= honest_now),
        "{} stalled connections still held after the header timeout",
        connections().saturating_sub(honest_now)
    );
    println!(
        "connections held by 300 stalled clients after the header timeout: {}",
        connections().saturating_sub(honest_now)
    );
    assert_eq!(patch(&honest, &si, 500, &data[500..], 5).status, 201);
}

#[test]
fn beyond_the_connection_cap_new_clients_wait_and_are_served_when_places_free() {
    let f = start(|o| o.max_connections = 8);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let counters = f.server.gbs().counters();
    // 20 stalling clients get in only in waves of 8, as the header timeout frees places.
    stalled_headers(&rt, &f.server.nurl, 20);
    let open = counters.connections.load(Ordering::Relaxed);
    assert!(open <= 8, "{open} connections open at once, over the cap of 8");
    assert!(eventually(|| counters.connections_total.load(Ordering::Relaxed) >= 20));
    let honest = Client::new(&f.server.nurl);
    assert_eq!(honest.send("GET", "/storage/v1/version", &[], vec![]).status, 200);
}

#[test]
fn an_upload_whose_patch_stalls_mid_body_is_cut_then_reaped_and_its_space_released() {
    let f = start(|_| {});
    let (addr, _, hash) = parse_nurl(&f.server.nurl);
    let honest = Client::new(&f.server.nurl);
    let si = si(2);
    assert_eq!(allocate(&honest, &si, 1000, 7).status, 200);
    let uploads = || f.server.gbs().uploads().in_flight();
    assert_eq!(uploads(), 1);
    // 10 bytes of a 1000-byte body, then silence.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let authorization = honest.authorization.clone();
    let _stalled = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(host_runner::client::tls_config(&hash));
        let mut s = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (_, secret) = upload(7);
        let head = format!(
            "PATCH /storage/v1/immutable/{si}/0 HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n\
             X-Tahoe-Authorization: {secret}\r\nContent-Range: bytes 0-999/*\r\nContent-Length: 1000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[1; 10]).await.unwrap();
        s.flush().await.unwrap();
        s
    });
    assert!(
        eventually(|| uploads() == 0),
        "the stalled upload was never reaped"
    );
    assert!(f.server.gbs().counters().idle_aborts.load(Ordering::Relaxed) >= 1);
    assert_eq!(patch(&honest, &si, 0, &[1; 10], 7).status, 404);
    // Its space is free again: the same share can be allocated anew.
    let again = allocate(&honest, &si, 1000, 8);
    assert_eq!(again.status, 200);
    assert_eq!(patch(&honest, &si, 0, &data(1000, 2), 8).status, 201);
}

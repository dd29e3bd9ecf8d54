//! Issue 10: what a hostile client can do to `serve`, one test per attack,
//! each with an honest client checking that it is still served. The timeouts
//! are shortened so the tests run in seconds; the defaults are 30 s.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::tahoe::https_client::*;
use host_runner::server::{ServeOptions, Server};
use tokio::io::AsyncWriteExt;

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

#[test]
fn clients_stalling_in_their_headers_are_disconnected_and_others_are_served() {
    let f = start(|o| o.upload_idle_timeout = Duration::from_secs(600));
    let connections = || {
        f.server
            .gbs()
            .counters()
            .connections
            .load(Ordering::Relaxed)
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let honest = Client::new(&f.server.nurl);
    // An honest upload begun before the attack finishes after it.
    let si = si(1);
    let data = data(1000, 1);
    assert_eq!(allocate_share_0(&honest, &si, 1000, 5).status, 200);
    assert_eq!(patch_share_0(&honest, &si, 0, &data[..500], 5).status, 200);
    assert_eq!(
        honest
            .send("GET", "/storage/v1/version", &[], vec![])
            .status,
        200
    );
    // The honest client's idle keep-alive connections stay open; count the rest.
    let before = connections();

    stalled_headers(&rt, &f.server.nurl, 300);
    assert_eq!(
        honest
            .send("GET", "/storage/v1/version", &[], vec![])
            .status,
        200
    );
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
    assert_eq!(
        patch_share_0(&honest, &si, 500, &data[500..], 5).status,
        201
    );
}

#[test]
fn beyond_the_connection_cap_new_clients_wait_and_are_served_when_places_free() {
    let f = start(|o| o.max_connections = 8);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let counters = f.server.gbs().counters();
    // 20 stalling clients get in only in waves of 8, as the header timeout frees places.
    stalled_headers(&rt, &f.server.nurl, 20);
    let open = counters.connections.load(Ordering::Relaxed);
    assert!(
        open <= 8,
        "{open} connections open at once, over the cap of 8"
    );
    assert!(eventually(|| counters
        .connections_total
        .load(Ordering::Relaxed)
        >= 20));
    let honest = Client::new(&f.server.nurl);
    assert_eq!(
        honest
            .send("GET", "/storage/v1/version", &[], vec![])
            .status,
        200
    );
}

#[test]
fn an_upload_whose_patch_stalls_mid_body_is_cut_then_reaped_and_its_space_released() {
    let f = start(|_| {});
    let (addr, _, hash) = parse_nurl(&f.server.nurl);
    let honest = Client::new(&f.server.nurl);
    let si = si(2);
    assert_eq!(allocate_share_0(&honest, &si, 1000, 7).status, 200);
    let uploads = || f.server.gbs().uploads().in_flight();
    assert_eq!(uploads(), 1);
    // 10 bytes of a 1000-byte body, then silence.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let authorization = honest.authorization.clone();
    let _stalled = rt.block_on(async {
        let mut s = connect_tls(&addr, host_runner::client::tls_config(&hash))
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
    assert!(
        f.server
            .gbs()
            .counters()
            .idle_aborts
            .load(Ordering::Relaxed)
            >= 1
    );
    assert_eq!(patch_share_0(&honest, &si, 0, &[1; 10], 7).status, 404);
    // Its space is free again: the same share can be allocated anew.
    let again = allocate_share_0(&honest, &si, 1000, 8);
    assert_eq!(again.status, 200);
    assert_eq!(
        patch_share_0(&honest, &si, 0, &data(1000, 2), 8).status,
        201
    );
}

fn cbor_post(c: &Client, path: &str, secrets: &[(&'static str, String)], body: Vec<u8>) -> Reply {
    let mut headers = secrets.to_vec();
    headers.push(cbor_ct());
    c.send("POST", path, &headers, body)
}

/// A read-test-write body: `shares` entries with `tests` test vectors each
/// and a write of `written` bytes, and `reads` read vectors of `read_size` bytes.
fn rtw_body(shares: u64, tests: usize, written: usize, reads: usize, read_size: u64) -> Vec<u8> {
    use ciborium::Value;
    let t = |k: &str| Value::Text(k.into());
    let vector = |size: u64| {
        Value::Map(vec![
            (t("offset"), Value::Integer(0.into())),
            (t("size"), Value::Integer(size.into())),
        ])
    };
    let test = Value::Map(vec![
        (t("offset"), Value::Integer(0.into())),
        (t("size"), Value::Integer(1.into())),
        (t("specimen"), Value::Bytes(vec![])),
    ]);
    let entry = Value::Map(vec![
        (t("test"), Value::Array(vec![test; tests])),
        (
            t("write"),
            Value::Array(vec![Value::Map(vec![
                (t("offset"), Value::Integer(0.into())),
                (t("data"), Value::Bytes(vec![7; written])),
            ])]),
        ),
        (t("new-length"), Value::Null),
    ]);
    enc(&Value::Map(vec![
        (
            t("test-write-vectors"),
            Value::Map(
                (0..shares)
                    .map(|n| (Value::Integer(n.into()), entry.clone()))
                    .collect(),
            ),
        ),
        (
            t("read-vector"),
            Value::Array(vec![vector(read_size); reads]),
        ),
    ]))
}

#[test]
fn limits_on_vectors_secrets_and_bodies_are_400_or_413_naming_the_limit() {
    let f = start(|_| {});
    let c = Client::new(&f.server.nurl);
    let rtw = |body| {
        cbor_post(
            &c,
            &format!("/storage/v1/mutable/{}/read-test-write", si(3)),
            &[renew(1), cancel(1), write_enabler(2)],
            body,
        )
    };
    let refused = |r: Reply, status: u16, says: &str| {
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status.as_u16(), status, "{text}");
        assert!(text.contains(says), "{says:?} in {text:?}");
    };
    refused(rtw(rtw_body(1, 0, 1, 31, 1)), 400, "at most 30");
    refused(rtw(rtw_body(1, 31, 1, 0, 1)), 400, "at most 30");
    // 30 reads of 16 MiB over four shares of 1 MiB: 120 MiB in the plugin's
    // memory (a trap, and every upload aborted, before).
    assert_eq!(rtw(rtw_body(4, 0, 1 << 20, 0, 0)).status, 200);
    let reads_over_memory = rtw(rtw_body(4, 0, 1, 30, 16 << 20));
    refused(reads_over_memory, 400, "bytes read by one request");
    // Another client's upload in flight is untouched by all this.
    let honest = si(4);
    assert_eq!(allocate_share_0(&c, &honest, 100, 3).status, 200);

    // A 300 KB upload secret would be kept for the upload's whole life.
    let huge_secret = (
        "x-tahoe-authorization",
        format!("upload-secret {}", b64(&vec![1; 300_000])),
    );
    let r = cbor_post(
        &c,
        &format!("/storage/v1/immutable/{}", si(5)),
        &[renew(1), cancel(1), huge_secret],
        allocate_body(&[0], 10),
    );
    assert!(r.status == 400 || r.status == 431, "{:?}", r.status);
    let long_secret = (
        "x-tahoe-authorization",
        format!("upload-secret {}", b64(&[1; 65])),
    );
    let r = cbor_post(
        &c,
        &format!("/storage/v1/immutable/{}", si(5)),
        &[renew(1), cancel(1), long_secret],
        allocate_body(&[0], 10),
    );
    refused(r, 400, "at most 64 bytes");
    // Allocate bodies are capped at 8 KiB, as Tahoe's.
    let r = cbor_post(
        &c,
        &format!("/storage/v1/immutable/{}", si(5)),
        &[renew(1), cancel(1), upload(1)],
        vec![0xa0; 9000],
    );
    assert_eq!(r.status, 413);
    // An advisory for a share the server does not hold: 404, as Tahoe.
    let r = cbor_post(
        &c,
        &format!("/storage/v1/immutable/{}/0/corrupt", si(6)),
        &[],
        enc(&ciborium::Value::Map(vec![(
            ciborium::Value::Text("reason".into()),
            ciborium::Value::Text("x".into()),
        )])),
    );
    assert_eq!(r.status, 404);
    assert_eq!(patch_share_0(&c, &honest, 0, &[9; 100], 3).status, 201);
}

#[test]
fn a_full_plugin_queue_is_answered_503_with_retry_after() {
    let f = start(|o| o.max_queued = 0);
    let c = Client::new(&f.server.nurl);
    let r = allocate_share_0(&c, &si(7), 10, 1);
    assert_eq!(r.status, 503);
    assert!(r.headers.contains_key("retry-after"));
}

#[test]
fn a_large_share_is_streamed_in_pieces_with_its_length() {
    let f = start(|_| {});
    let c = Client::new(&f.server.nurl);
    let si = si(8);
    let data = data(5 << 20 | 12345, 8);
    assert_eq!(allocate_share_0(&c, &si, data.len() as u64, 4).status, 200);
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        let r = patch_share_0(&c, &si, (i << 20) as u64, piece, 4);
        assert!(r.status == 200 || r.status == 201);
    }
    let whole = c.send("GET", &format!("/storage/v1/immutable/{si}/0"), &[], vec![]);
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.headers["content-length"],
        data.len().to_string().as_str()
    );
    assert!(whole.body == data);
    let range = |r: &str| {
        c.send(
            "GET",
            &format!("/storage/v1/immutable/{si}/0"),
            &[("range", r.into())],
            vec![],
        )
    };
    let r = range("bytes=1048570-99999999");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.headers["content-range"],
        format!("bytes 1048570-{}/*", data.len() - 1).as_str()
    );
    assert!(r.body == data[1048570..]);
    assert_eq!(
        range(&format!("bytes={}-{}", data.len(), data.len() + 10)).status,
        204
    );
}

#[test]
fn the_admin_endpoint_needs_the_token_and_a_loopback_host() {
    let f = start(|o| o.admin = Some("127.0.0.1:0".into()));
    let admin = f.server.admin_addr.unwrap().to_string();
    let junk = b"\0asm but not a component";
    use std::io::{Read, Write};
    // The swap client is the CLI's (binary-only); this is what it sends.
    let post_swap = |token: &str| {
        let mut s = std::net::TcpStream::connect(&admin).unwrap();
        write!(
            s,
            "POST /swap HTTP/1.1\r\nHost: {admin}\r\nAuthorization: {}\r\n\
             Content-Type: application/wasm\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            host_runner::server::admin::authorization(token),
            junk.len()
        )
        .unwrap();
        s.write_all(junk).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let no = post_swap("wrong");
    assert!(no.starts_with("HTTP/1.1 401"), "{no}");
    let token = f.server.identity.admin_token().unwrap();
    let refused = post_swap(&token);
    assert!(refused.starts_with("HTTP/1.1 422"), "{refused}");
    // A page on evil.example whose name resolves to 127.0.0.1 sends its own Host.
    let mut s = std::net::TcpStream::connect(&admin).unwrap();
    write!(
        s,
        "GET /version HTTP/1.1\r\nHost: evil.example:{}\r\nConnection: close\r\n\r\n",
        f.server.admin_addr.unwrap().port()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

    // Not loopback: refused by the server itself, not only by the CLI.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("storage"), dir.path().join("state"));
    opts.listen = Some("127.0.0.1:0".into());
    opts.admin = Some("0.0.0.0:0".into());
    assert!(Server::start(opts).is_err());
}

#[test]
fn one_process_per_state_directory_and_status_stays_on_loopback() {
    let f = start(|_| {});
    let state = f._dir.path().join("state");
    let mut opts = ServeOptions::new(f._dir.path().join("storage"), &state);
    opts.listen = Some("127.0.0.1:0".into());
    opts.crawler = None;
    let second = Server::start(opts)
        .err()
        .expect("a second server on the same state is refused");
    let why = second.to_string();
    assert!(
        why.contains("in use by process") && why.contains(&std::process::id().to_string()),
        "{why}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("storage"), dir.path().join("state"));
    opts.listen = Some("127.0.0.1:0".into());
    opts.status = Some("0.0.0.0:0".into());
    assert!(Server::start(opts)
        .err()
        .unwrap()
        .to_string()
        .contains("--status-public"));
}

#[test]
fn a_wildcard_listen_advertises_the_location_given_and_remembers_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = |location: Option<&str>| {
        let mut opts = ServeOptions::new(dir.path().join("storage"), dir.path().join("state"));
        opts.listen = Some("0.0.0.0:0".into());
        opts.crawler = None;
        opts.location = location.map(str::to_owned);
        opts
    };
    let refused = Server::start(options(None)).err().unwrap().to_string();
    assert!(refused.contains("--location"), "{refused}");
    let server = Server::start(options(Some("storage.example:4433"))).unwrap();
    assert!(
        server.nurl.contains("@storage.example:4433/"),
        "{}",
        server.nurl
    );
    assert!(
        !server.servers_yaml().contains("127.0.0.1:")
            || server.servers_yaml().contains("storage.example:4433")
    );
    server.shutdown();
    let again = Server::start(options(None)).unwrap();
    assert!(
        again.nurl.contains("@storage.example:4433/"),
        "{}",
        again.nurl
    );
}

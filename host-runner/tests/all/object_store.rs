//! The object-store backend (`--backend s3://…`).
//!
//! Without a network: how an S3 endpoint that throttles or is unreachable
//! fails (transient, after a bounded number of retries; a listing is never
//! answered with an empty page).
//!
//! On a real three-node Garage cluster (`scripts/garage-cluster.sh`, which
//! `scripts/test.sh` starts and whose `AWS_*` environment it exports): the
//! store itself, the stock Tahoe client through `serve --backend s3://…`,
//! the crawler over the bucket, and a Garage node stopped in the middle of
//! uploads and reads. Those are `#[ignore]`d for a plain `cargo test`, and
//! fail loudly when run (`-- --ignored garage`) without a cluster.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_runner::backend::{BackendConfig, Location, MULTIPART_PART_SIZE, REQUEST_RETRIES};
use host_runner::{BackendError, ObjectStore};

use crate::tahoe::harness::*;

/// A fresh prefix of the cluster's bucket, as a `--backend` URL.
fn bucket_url(test: &str) -> String {
    let bucket = std::env::var("LEASEDB_S3_BUCKET").unwrap_or_else(|_| {
        panic!(
            "no Garage cluster in the environment: run \
             `eval \"$(scripts/garage-cluster.sh start DIR)\"` first (scripts/test.sh does)"
        )
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("s3://{bucket}/{test}-{}-{nanos}", std::process::id())
}

fn open(url: &str) -> Arc<dyn ObjectStore> {
    BackendConfig::new(Location::parse(url).unwrap())
        .open()
        .unwrap_or_else(|e| panic!("opening {url}: {e}"))
}

/// Stops or starts Garage node `n` of the cluster.
fn garage_node(action: &str, n: u32) {
    let dir = std::env::var("LEASEDB_GARAGE_DIR").expect("LEASEDB_GARAGE_DIR");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/garage-cluster.sh");
    let status = Command::new("bash")
        .arg(script)
        .args([action, &dir, &n.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "garage-cluster.sh {action} {n}");
}

/// Every key under `prefix`, through pages of `limit`.
fn all_keys(store: &dyn ObjectStore, prefix: &str, limit: u32) -> Vec<String> {
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(prefix, after.as_deref(), limit).unwrap();
        assert!(page.entries.len() <= limit as usize);
        keys.extend(page.entries.into_iter().map(|e| e.key));
        match page.next {
            Some(next) => after = Some(next),
            None => return keys,
        }
    }
}

/// A loopback HTTP server answering every request with `status`; counts requests.
fn answering(status: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    // Read one request head and any body, then answer.
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: 0\r\n\r\n"
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

fn s3_at(endpoint: &str, extra: &[(&str, &str)]) -> Arc<dyn ObjectStore> {
    let mut config = BackendConfig::new(Location::parse("s3://bucket/prefix").unwrap());
    for (key, value) in [
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
        ("aws_region", "test"),
        ("aws_access_key_id", "GKtest"),
        ("aws_secret_access_key", "secret"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        config.settings.push((key.into(), value.into()));
    }
    config.call_timeout = Duration::from_secs(60);
    config.open().unwrap()
}

#[test]
fn a_throttling_store_fails_listings_as_transient_after_bounded_retries() {
    let (endpoint, requests) = answering("503 Service Unavailable");
    let store = s3_at(&endpoint, &[]);
    for call in 1..=2 {
        match store.list("shares/", None, 100) {
            Err(BackendError::Transient(why)) => assert!(why.contains("503"), "{why}"),
            other => panic!("a 503 listing gave {other:?}, not a transient error"),
        }
        // The first try and REQUEST_RETRIES retries, never more.
        assert_eq!(
            requests.load(Ordering::SeqCst),
            call * (1 + REQUEST_RETRIES)
        );
    }
    assert!(matches!(
        store.read("a/b", 0, 10),
        Err(BackendError::Transient(_))
    ));
    assert!(matches!(
        store.write("a/b", b"x"),
        Err(BackendError::Transient(_))
    ));
}

#[test]
fn a_refusing_store_fails_as_permanent_without_retries() {
    let (endpoint, requests) = answering("403 Forbidden");
    let store = s3_at(&endpoint, &[]);
    assert!(matches!(
        store.list("shares/", None, 100),
        Err(BackendError::Permanent(_))
    ));
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    let (endpoint, _) = answering("404 Not Found");
    let store = s3_at(&endpoint, &[]);
    assert_eq!(store.size("a/b"), Err(BackendError::NotFound));
}

#[test]
fn an_unreachable_store_is_transient_not_empty() {
    // A port nobody listens on: connections are refused at once.
    let port = free_port();
    let store = s3_at(&format!("http://127.0.0.1:{port}"), &[]);
    match store.list("", None, 10) {
        Err(BackendError::Transient(_)) => {}
        other => panic!("listing an unreachable store gave {other:?}"),
    }
}

#[test]
#[ignore = "needs a Garage cluster: scripts/test.sh starts one"]
fn garage_keeps_objects_as_the_directory_store_lays_them_out() {
    let url = bucket_url("store");
    let store = open(&url);
    let key = "shares/aa/aaaaaaaaaaaaaaaaaaaaaaaaaa/0";
    store.write(key, b"share data").unwrap();
    assert_eq!(store.size(key).unwrap(), 10);
    assert_eq!(store.read(key, 6, 100).unwrap(), b"data");
    assert_eq!(store.read(key, 10, 5).unwrap(), b"");
    assert_eq!(store.read(key, 100, 5).unwrap(), b"");
    // The key is the object name under the prefix, as it is a path under a directory root.
    let prefix = url.rsplit_once('/').unwrap().1;
    let bucket_root = open(url.rsplit_once('/').unwrap().0);
    let seen = bucket_root
        .list(&format!("{prefix}/shares/"), None, 10)
        .unwrap();
    assert_eq!(seen.entries.len(), 1);
    assert_eq!(seen.entries[0].key, format!("{prefix}/{key}"));

    assert_eq!(
        store.read("shares/bb/x/0", 0, 1),
        Err(BackendError::NotFound)
    );
    assert_eq!(store.size("shares/bb/x/0"), Err(BackendError::NotFound));
    store.delete(key).unwrap();
    store.delete(key).unwrap();
    assert_eq!(store.size(key), Err(BackendError::NotFound));

    // Larger than a part: uploaded in parts, read back whole and across a boundary.
    let big = file_bytes(MULTIPART_PART_SIZE * 2 + 4321, 9);
    store.write("big/0", &big).unwrap();
    assert_eq!(store.size("big/0").unwrap(), big.len() as u64);
    let at = MULTIPART_PART_SIZE - 7;
    assert_eq!(
        store.read("big/0", at as u64, 14).unwrap(),
        &big[at..at + 14]
    );
    assert!(store.read("big/0", 0, u64::MAX).unwrap() == big);

    // More objects than one S3 listing page (1000) holds.
    let mut keys: Vec<String> = (0..1100)
        .map(|i| format!("many/{:02x}/{i}", i % 7))
        .collect();
    std::thread::scope(|scope| {
        for chunk in keys.chunks(140) {
            let store = store.clone();
            scope.spawn(move || {
                for key in chunk {
                    store.write(key, key.as_bytes()).unwrap();
                }
            });
        }
    });
    keys.sort();
    assert_eq!(all_keys(&*store, "many/", 400), keys);
    assert_eq!(
        all_keys(&*store, "many/0", 1000),
        keys.iter()
            .filter(|k| k.starts_with("many/0"))
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all_keys(&*store, "many/03/1", 1000).len(),
        keys.iter().filter(|k| k.starts_with("many/03/1")).count()
    );
}

#[test]
#[ignore = "needs a Garage cluster: scripts/test.sh starts one"]
fn garage_with_a_wrong_secret_fails_listings_instead_of_listing_nothing() {
    let url = bucket_url("denied");
    let mut config = BackendConfig::new(Location::parse(&url).unwrap());
    config
        .settings
        .push(("aws_secret_access_key".into(), "0".repeat(64)));
    let store = config.open().unwrap();
    match store.list("shares/", None, 10) {
        Err(BackendError::Permanent(_)) => {}
        other => panic!("a refused listing gave {other:?}"),
    }
}

/// Shares the server reports holding.
fn shares_held(server: &Serve) -> u64 {
    server.status_json()["usage"]["shares"].as_u64().unwrap()
}

/// The stock Tahoe client through `serve --backend s3://…`: put/get, a
/// directory, a mutable file, check --verify, deep-check --add-lease; then the
/// crawler, from an empty lease database, finds every share in the bucket.
#[test]
#[ignore = "needs a Garage cluster: scripts/test.sh starts one"]
fn garage_tahoe_client_through_serve_and_crawl_finds_every_share() {
    tahoe_bin();
    let url = bucket_url("tahoe");
    let dir = tempfile::tempdir().unwrap();
    let mut server = Serve::start_with(&dir.path().join("s"), None, &["--backend", &url]);
    let node = Node::start(
        &dir.path().join("c"),
        &servers_yaml(&[&server.yaml]),
        1,
        1,
        1,
        1,
    );
    let mut caps = Vec::new();
    for (i, len) in [1000usize, 1 << 20, 9 << 20].into_iter().enumerate() {
        let path = dir.path().join(format!("f{i}"));
        let content = file_bytes(len, i as u64 + 11);
        std::fs::write(&path, &content).unwrap();
        let cap = node
            .tahoe(&["put", path.to_str().unwrap()])
            .trim()
            .to_owned();
        let back = dir.path().join(format!("f{i}.back"));
        node.tahoe(&["get", &cap, back.to_str().unwrap()]);
        assert!(
            std::fs::read(&back).unwrap() == content,
            "{len}-byte file differs"
        );
        caps.push(cap);
    }
    node.tahoe(&["create-alias", "tahoe"]);
    node.tahoe(&["mkdir", "tahoe:docs"]);
    node.tahoe(&[
        "cp",
        dir.path().join("f0").to_str().unwrap(),
        "tahoe:docs/small",
    ]);
    assert_eq!(node.tahoe(&["ls", "tahoe:docs"]).trim(), "small");
    let m = dir.path().join("m");
    std::fs::write(&m, b"first version").unwrap();
    let mutable = node
        .tahoe(&["put", "--mutable", m.to_str().unwrap()])
        .trim()
        .to_owned();
    std::fs::write(&m, b"second, longer version").unwrap();
    node.tahoe(&["put", m.to_str().unwrap(), &mutable]);
    assert_eq!(node.tahoe(&["get", &mutable]), "second, longer version");
    let check = node.tahoe(&["check", "--verify", &caps[2]]);
    assert!(check.contains("Healthy"), "{check}");
    let report = node.tahoe(&["deep-check", "--add-lease", "tahoe:"]);
    assert!(report.contains(" 0 unhealthy"), "{report}");

    let held = shares_held(&server);
    assert!(held >= 6, "{held} shares");
    server.kill();

    // A new state directory: the crawler knows nothing and must list every share.
    let out = run_bounded(
        host_runner()
            .args(["crawl", "--once", "--json", "--backend", &url, "--state"])
            .arg(dir.path().join("fresh-state")),
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["examined"]["shares"], held, "{report}");
    assert_eq!(report["prefixes_failed"], serde_json::json!([]), "{report}");
    assert_eq!(report["examined"]["by_type"]["corrupted"], 0, "{report}");
}

/// One of three Garage nodes stops while a client uploads and reads, and
/// starts again: every upload the client saw succeed reads back intact.
#[test]
#[ignore = "needs a Garage cluster: scripts/test.sh starts one"]
fn garage_node_stopped_mid_traffic_loses_nothing_acknowledged() {
    tahoe_bin();
    let url = bucket_url("fault");
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start_with(&dir.path().join("s"), None, &["--backend", &url]);
    let node = Node::start(
        &dir.path().join("c"),
        &servers_yaml(&[&server.yaml]),
        1,
        1,
        1,
        1,
    );
    let acknowledged: Mutex<Vec<(String, Vec<u8>)>> = Mutex::new(Vec::new());
    let uploads = 8;
    let reads = AtomicUsize::new(0);
    let get = |cap: &str| {
        let back = dir
            .path()
            .join(format!("back{}", reads.fetch_add(1, Ordering::SeqCst)));
        node.tahoe(&["get", cap, back.to_str().unwrap()]);
        std::fs::read(back).unwrap()
    };
    std::thread::scope(|scope| {
        let uploader = scope.spawn(|| {
            for i in 0..uploads {
                let content = file_bytes(700_000 + i * 1000, 100 + i as u64);
                let path = dir.path().join(format!("u{i}"));
                std::fs::write(&path, &content).unwrap();
                let cap = node
                    .tahoe(&["put", path.to_str().unwrap()])
                    .trim()
                    .to_owned();
                // Read back at once: reads run during the outage too.
                assert!(get(&cap) == content, "upload {i} reads back wrong");
                acknowledged.lock().unwrap().push((cap, content));
            }
        });
        let wait_for = |n: usize| {
            while acknowledged.lock().unwrap().len() < n && !uploader.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        wait_for(2);
        garage_node("stop-node", 3);
        wait_for(5);
        garage_node("start-node", 3);
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    assert_eq!(acknowledged.len(), uploads);
    for (cap, content) in &acknowledged {
        assert!(get(cap) == *content, "{cap} differs");
    }
    assert_eq!(shares_held(&server), uploads as u64);
}

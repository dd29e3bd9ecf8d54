//! What the operator sees of a running server: the OpenMetrics exposition
//! (checked with Python's `prometheus-client` parser from PyPI, installed by
//! `scripts/openmetrics-venv.sh`) and the status page rendered in headless
//! Chromium (installed by `scripts/chromium.sh` when missing), against an
//! in-process `serve` after real requests.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::tahoe::harness::run_bounded;
use crate::tahoe::https_client::*;
use host_runner::server::status::human;
use host_runner::server::{ServeOptions, Server};
use host_runner::Operations;
use sha2::{Digest, Sha256};

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(dir.path().join("storage"), dir.path().join("state"));
    opts.listen = Some("127.0.0.1:0".into());
    opts.status = Some("127.0.0.1:0".into());
    opts.admin = Some("127.0.0.1:0".into());
    // The tests drive the crawler themselves, one slice at a time.
    opts.crawler = None;
    let server = Server::start(opts).unwrap();
    (dir, server)
}

/// `GET path` on a plain HTTP listener: status line and body.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn get(server: &Server, path: &str) -> String {
    let (status, body) = http(server.status_addr.unwrap(), "GET", path, "", b"");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Uploads `bytes` as share 0 of `si` in two PATCHes; returns the PATCH count.
fn put(c: &Client, si: &str, bytes: &[u8]) -> u64 {
    let r = c.send(
        "POST",
        &format!("/storage/v1/immutable/{si}"),
        &[renew(1), cancel(1), upload(7), cbor_ct()],
        allocate_body(&[0], bytes.len() as u64),
    );
    assert_eq!(r.status, 200);
    let half = bytes.len() / 2;
    for (first, part) in [(0, &bytes[..half]), (half, &bytes[half..])] {
        let last = first + part.len() - 1;
        let r = c.send(
            "PATCH",
            &format!("/storage/v1/immutable/{si}/0"),
            &[
                upload(7),
                ("content-range", format!("bytes {first}-{last}/*")),
            ],
            part.to_vec(),
        );
        assert!(r.status.is_success(), "{}", r.status);
    }
    2
}

fn read_share(c: &Client, si: &str, len: usize) {
    let r = c.send(
        "GET",
        &format!("/storage/v1/immutable/{si}/0"),
        &[("range", format!("bytes=0-{}", len - 1))],
        vec![],
    );
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(r.body.len(), len);
}

/// Runs the crawler on the service thread: a whole cycle, or one slice.
fn crawl(server: &Server, whole_cycle: bool) {
    server
        .gbs()
        .service()
        .call_blocking(move |h| loop {
            use host_runner::plugin::wit::SliceOutcome;
            match h.crawler_run_slice(Duration::from_millis(1), true) {
                Ok(SliceOutcome::Progressed((_, done))) if done || !whole_cycle => return,
                Ok(SliceOutcome::Progressed(_)) => {}
                other => panic!("crawler slice: {other:?}"),
            }
        })
        .unwrap();
}

/// The script's last line: what it installed.
fn tool(script: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(script);
    let out = run_bounded(Command::new("bash").arg(&path), Duration::from_secs(900));
    assert!(
        out.status.success(),
        "scripts/{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(text.lines().last().unwrap().trim())
}

type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

/// Parses an exposition with Python's `prometheus-client` (strict OpenMetrics).
fn parse_openmetrics(text: &str) -> Samples {
    let python = tool("openmetrics-venv.sh");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/all/openmetrics_samples.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The sum of the samples named `name` whose labels include `labels`.
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.2)
        .sum()
}

fn plugin_sha256() -> String {
    hex::encode(Sha256::digest(leasedb_plugin_artifacts::PLUGIN_BYTES))
}

#[test]
fn openmetrics_parse_and_move_with_requests() {
    let (_dir, server) = start();
    let before = parse_openmetrics(&get(&server, "/statistics?t=openmetrics"));
    let c = Client::new(&server.nurl);
    let shares = 3;
    let mut patches = 0;
    let mut uploaded = 0;
    for seed in 0..shares {
        let bytes = data(20_000 + usize::from(seed) * 1000, seed);
        patches += put(&c, &si(40 + seed), &bytes);
        uploaded += bytes.len() as u64;
        read_share(&c, &si(40 + seed), bytes.len());
    }
    crawl(&server, false);
    // Tahoe's path and the usual one serve the same exposition.
    let after = parse_openmetrics(&get(&server, "/metrics"));
    parse_openmetrics(&get(&server, "/statistics?t=openmetrics"));

    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let write = [("route", "immutable_write")];
    assert_eq!(moved("leasedb_requests_total", &write), patches as f64);
    assert_eq!(
        moved(
            "leasedb_requests_total",
            &[
                ("route", "immutable_allocate"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        f64::from(shares)
    );
    assert_eq!(
        moved("leasedb_request_duration_seconds_count", &write),
        patches as f64
    );
    assert!(moved("leasedb_request_duration_seconds_sum", &write) > 0.0);
    assert_eq!(
        moved("leasedb_request_body_bytes_total", &write),
        uploaded as f64
    );
    assert!(
        moved(
            "leasedb_response_body_bytes_total",
            &[("route", "immutable_read")]
        ) >= uploaded as f64
    );
    assert!(moved("leasedb_network_bytes_total", &[("direction", "in")]) > uploaded as f64);
    assert!(moved("leasedb_network_bytes_total", &[("direction", "out")]) > uploaded as f64);
    // Every operation was committed, alone or in a group commit.
    assert!(moved("leasedb_commit_operations_count", &[]) >= f64::from(shares) + patches as f64);
    assert_eq!(
        value(
            &after,
            "leasedb_shares",
            &[("state", "stable"), ("type", "immutable")]
        ),
        f64::from(shares)
    );
    assert_eq!(
        value(
            &after,
            "leasedb_leased_shares",
            &[("account", "(anonymous)")]
        ),
        f64::from(shares)
    );
    assert!(
        value(
            &after,
            "leasedb_leased_size_bytes",
            &[("account", "(anonymous)")]
        ) >= uploaded as f64
    );
    assert_eq!(value(&after, "leasedb_crawler_running", &[]), 1.0);
    assert!(value(&after, "leasedb_crawler_cycle_progress", &[]) > 0.0);
    assert_eq!(
        value(
            &after,
            "leasedb_plugin_info",
            &[("sha256", plugin_sha256().as_str())]
        ),
        1.0
    );
    assert_eq!(value(&after, "leasedb_plugin_restarts_total", &[]), 0.0);
    server.shutdown();
}

/// The text and attributes of the element with `id` in a DOM dump.
fn element(dom: &str, id: &str) -> (String, String) {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} on the page"));
    let rest = &dom[at..];
    let close = rest.find('>').unwrap();
    let text = &rest[close + 1..];
    let text = &text[..text.find('<').unwrap()];
    (text.to_owned(), rest[..close].to_owned())
}

fn text_of(dom: &str, id: &str) -> String {
    element(dom, id).0
}

/// A size element shows `bytes` in binary units and exactly in its attributes.
fn assert_size(dom: &str, id: &str, bytes: u64) {
    let (text, attrs) = element(dom, id);
    assert_eq!(text, human::bytes(bytes), "#{id}");
    assert!(
        attrs.contains(&format!("data-bytes=\"{bytes}\"")),
        "#{id}: {attrs}"
    );
}

fn chromium(bin: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let out = run_bounded(
        Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url),
        Duration::from_secs(180),
    );
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn status_page_in_headless_chromium_shows_the_json_numbers() {
    let bin = tool("chromium.sh");
    let (dir, server) = start();
    let c = Client::new(&server.nurl);
    for seed in 0..4u8 {
        let bytes = data(5_000 + usize::from(seed) * 100_000, seed);
        put(&c, &si(60 + seed), &bytes);
        read_share(&c, &si(60 + seed), bytes.len());
    }
    // A finished cycle (lease ages, the forecast), then one under way (ETA).
    crawl(&server, true);
    crawl(&server, false);
    // A hot swap to the same component, for the history.
    let token = server.identity.admin_token().unwrap();
    let wasm = leasedb_plugin_artifacts::PLUGIN_BYTES;
    let (status, body) = http(
        server.admin_addr.unwrap(),
        "POST",
        "/swap",
        &format!(
            "Authorization: {}\r\n",
            host_runner::server::admin::authorization(&token)
        ),
        wasm,
    );
    assert_eq!(status, 200, "{body}");

    let (status, _) = http(server.status_addr.unwrap(), "GET", "/", "", b"");
    assert_eq!(status, 302, "/ redirects to /storage");
    let json: serde_json::Value = serde_json::from_str(&get(&server, "/storage?t=json")).unwrap();
    let url = format!("http://{}/storage", server.status_addr.unwrap());
    let dom = chromium(
        &bin,
        &dir.path().join("chromium-dom"),
        &["--dump-dom"],
        &url,
    );

    assert!(dom.contains("<h1>leasedb storage server</h1>"), "{dom}");
    let sha = plugin_sha256();
    assert_eq!(json["plugin"]["sha256"], sha.as_str());
    assert_eq!(text_of(&dom, "plugin-sha256"), sha);
    assert_eq!(
        text_of(&dom, "plugin-version"),
        json["plugin"]["version"].as_str().unwrap()
    );
    assert_eq!(
        text_of(&dom, "requests"),
        json["server"]["requests"].to_string()
    );
    let latency = &json["server"]["request_latency"];
    assert!(latency["samples"].as_u64().unwrap() >= 12);
    for p in ["p50", "p90", "p99"] {
        assert_eq!(
            text_of(&dom, &format!("latency-{p}")),
            human::seconds(latency[format!("{p}_seconds")].as_f64().unwrap())
        );
    }
    for direction in ["received", "sent"] {
        assert_size(
            &dom,
            &format!("network-{direction}"),
            json["server"]["network_bytes"][direction].as_u64().unwrap(),
        );
    }
    // The disk's size does not move between the two requests; its free space may.
    assert_size(
        &dom,
        "disk-total",
        json["space"]["disk"]["total"].as_u64().unwrap(),
    );
    let (reserved, _) = element(&dom, "space-reserved");
    assert!(reserved.ends_with('B'), "{reserved}");

    let shares = json["shares"].as_array().unwrap();
    assert!(shares
        .iter()
        .any(|s| s["state"] == "stable" && s["type"] == "immutable" && s["shares"] == 4));
    for s in shares {
        let key = format!(
            "{}-{}",
            s["state"].as_str().unwrap(),
            s["type"].as_str().unwrap()
        );
        assert_eq!(
            text_of(&dom, &format!("shares-{key}")),
            s["shares"].to_string()
        );
        assert_size(&dom, &format!("bytes-{key}"), s["bytes"].as_u64().unwrap());
    }
    for a in json["usage_by_account"].as_array().unwrap() {
        let id = a["account_id"].as_u64().unwrap();
        assert_eq!(
            text_of(&dom, &format!("account-{id}-shares")),
            a["usage"]["shares"].to_string()
        );
        assert_size(
            &dom,
            &format!("account-{id}-bytes"),
            a["usage"]["bytes"].as_u64().unwrap(),
        );
    }

    let current = &json["crawler"]["current"];
    assert!(current["eta"].is_i64(), "{current}");
    assert_eq!(
        text_of(&dom, "crawler-percent"),
        format!("{:.1}", current["percent_done"].as_f64().unwrap())
    );
    assert!(text_of(&dom, "crawler-eta").starts_with("finishing "));
    let ages = json["crawler"]["lease_age_histogram"].as_array().unwrap();
    let leases: u64 = ages.iter().map(|b| b["leases"].as_u64().unwrap()).sum();
    assert_eq!(leases, 4, "{ages:?}");
    assert_eq!(text_of(&dom, "leases-examined"), leases.to_string());
    // Fresh leases run out in 30 days: none within 7.
    let forecast = json["expiry_forecast"].as_array().unwrap();
    assert_eq!(forecast[0]["days"], 30, "{forecast:?}");
    assert_eq!(text_of(&dom, "expiring-7d"), "0");
    assert!(dom.contains("aria-label=\"lease ages in days\""));
    assert!(dom.contains("aria-label=\"leases by days until expiry\""));
    assert!(
        dom.contains("data-day=\"30\" data-count=\"4\""),
        "forecast bar"
    );

    let swaps = json["swaps"].as_array().unwrap();
    assert_eq!(swaps.len(), 1);
    assert_eq!(swaps[0]["outcome"], "swapped");
    assert!(dom.contains("id=\"swaps\""));
    assert!(dom.contains("<td>swapped</td>"));

    // The screenshot is kept for a person to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &bin,
        &dir.path().join("chromium-shot"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2600",
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    server.shutdown();
}

/// `serve --log-format json` with `RUST_LOG` at debug writes one JSON line
/// per request (method, route, status, bytes, duration, account), and
/// rustls's `log` records and the plugin's stderr reach the same log.
#[test]
fn serve_logs_one_json_line_per_request() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    // A database that is not one: the plugin says so on its stderr as it starts afresh.
    let plugin_dir = dir.path().join("state/plugin");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::write(plugin_dir.join("leasedb.sqlite3"), vec![7u8; 8192]).unwrap();
    let mut child = crate::tahoe::harness::host_runner()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--status",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json"])
        .arg("--storage")
        .arg(dir.path().join("storage"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .env("RUST_LOG", "info,host_runner=debug,rustls=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut nurl = String::new();
    stdout.read_line(&mut nurl).unwrap();
    assert!(nurl.starts_with("pb://"), "banner: {nurl:?}");
    let c = Client::new(nurl.trim());
    put(&c, &si(90), &data(3000, 90));
    let _ = child.kill();
    let _ = child.wait();

    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "request" && l["level"] == "DEBUG")
        .collect();
    assert_eq!(requests.len(), 3, "{log}");
    let allocate = requests
        .iter()
        .find(|l| l["route"] == "immutable_allocate")
        .expect("the allocation's line");
    assert_eq!(allocate["method"], "POST");
    assert_eq!(allocate["status"], 200);
    assert_eq!(allocate["account"], "(anonymous)");
    assert!(allocate["bytes_in"].as_u64().unwrap() > 0);
    assert!(allocate["duration_ms"].as_f64().unwrap() > 0.0);
    let writes: u64 = requests
        .iter()
        .filter(|l| l["route"] == "immutable_write")
        .map(|l| l["bytes_in"].as_u64().unwrap())
        .sum();
    assert_eq!(writes, 3000);
    assert!(
        lines.iter().any(|l| l["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("rustls"))),
        "no rustls record in the log:\n{log}"
    );
    // The plugin's own log arrives as log lines of the host, not raw text.
    assert!(
        lines.iter().any(|l| l["target"] == "leasedb_plugin"
            && l["message"].as_str().is_some_and(
                |m| m.starts_with("leasedb: the database at") && m.contains("unreadable")
            )),
        "no plugin line in the log:\n{log}"
    );
}

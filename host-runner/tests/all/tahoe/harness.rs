//! Processes for the real-client tests: `host-runner serve` servers and stock
//! Tahoe-LAFS 1.20 client nodes from `scripts/tahoe-venv.sh`. Every wait is
//! bounded, and every process started is killed (its whole process group) on drop.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The venv's `bin/`, installing Tahoe-LAFS 1.20.0 the first time. Panics (the
/// test fails, loudly) when the script fails, e.g. because PyPI is unreachable.
pub fn tahoe_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tahoe-venv.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/tahoe-venv.sh");
        assert!(
            out.status.success(),
            "scripts/tahoe-venv.sh failed ({}): Tahoe-LAFS 1.20.0 could not be installed from PyPI",
            out.status
        );
        let text = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(
            text.lines()
                .last()
                .expect("the script prints the venv bin dir")
                .trim(),
        )
    })
}

/// Runs `cmd` for at most `limit`; panics on timeout (after killing it).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawning");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            kill_group(&mut child);
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn kill_group(child: &mut Child) {
    let pid = child.id() as i32;
    // The child leads its own process group: end it and anything it started.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET http://addr/path`, body if 200.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.lines()
        .next()?
        .contains(" 200 ")
        .then(|| body.to_owned())
}

/// The host-runner binary.
pub fn host_runner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_host-runner"))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One `host-runner serve`.
pub struct Serve {
    child: Option<Child>,
    _stdout: Option<BufReader<ChildStdout>>,
    pub storage: PathBuf,
    pub state: PathBuf,
    pub nurl: String,
    /// The `storage:` document it printed.
    pub yaml: String,
    pub status: String,
    /// The admin address it printed (`HOST:PORT`), when started with `--admin`.
    pub admin: String,
    /// The plugin it runs, as its banner's `# plugin:` line says.
    pub plugin: String,
}

impl Serve {
    /// Starts a server in `dir` (reusing `compiled_from`'s compile cache if given)
    /// and waits until it printed its NURL and configuration.
    pub fn start(dir: &Path, compiled_from: Option<&Serve>) -> Serve {
        Serve::start_with(dir, compiled_from, &[])
    }

    /// As [`Serve::start`], with more `serve` arguments.
    pub fn start_with(dir: &Path, compiled_from: Option<&Serve>, extra: &[&str]) -> Serve {
        Serve::start_env(dir, compiled_from, extra, &[])
    }

    /// As [`Serve::start_with`], with environment variables set for it.
    pub fn start_env(
        dir: &Path,
        compiled_from: Option<&Serve>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Serve {
        let storage = dir.join("storage");
        let mut args: Vec<std::ffi::OsString> =
            vec!["--listen".into(), "127.0.0.1:0".into(), "--storage".into()];
        args.push(storage.clone().into());
        Serve::spawn(dir, compiled_from, storage, args, extra, env)
    }

    /// `serve --node-dir NODE` with its state in `dir`: a stopped Tahoe node
    /// taken over, listening where the node listened.
    pub fn take_over(dir: &Path, node: &Path) -> Serve {
        let args = vec!["--node-dir".into(), node.as_os_str().to_owned()];
        Serve::spawn(dir, None, node.join("storage"), args, &[], &[])
    }

    fn spawn(
        dir: &Path,
        compiled_from: Option<&Serve>,
        storage: PathBuf,
        place: Vec<std::ffi::OsString>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Serve {
        let state = dir.join("state");
        if let Some(other) = compiled_from {
            let cache = other.state.join("cache");
            if cache.exists() {
                copy_dir(&cache, &state.join("cache"));
            }
        }
        fs::create_dir_all(dir).unwrap();
        let log = fs::File::create(dir.join("serve.log")).unwrap();
        let mut child = host_runner()
            .args(["serve", "--status", "127.0.0.1:0"])
            .args(&place)
            .arg("--state")
            .arg(&state)
            .args(extra)
            // Each server compiles into (or copies) its own state's cache, so
            // a first start's compile is its own (the bench measures it).
            .env("LEASEDB_COMPILE_CACHE", state.join("cache"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting host-runner serve");
        let stdout = child.stdout.take().unwrap();
        // With `--admin`, the banner ends with the admin line after the status line.
        let last = if extra.contains(&"--admin") {
            "# admin:"
        } else {
            "# status:"
        };
        // Read the banner on a thread so a hung server cannot hang the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let done = line.starts_with(last);
                        lines.push(line);
                        if done {
                            break;
                        }
                    }
                }
            }
            let _ = tx.send((lines, reader));
        });
        let mut serve = Serve {
            child: Some(child),
            _stdout: None,
            storage,
            state,
            nurl: String::new(),
            yaml: String::new(),
            status: String::new(),
            admin: String::new(),
            plugin: String::new(),
        };
        let (lines, reader) = match rx.recv_timeout(Duration::from_secs(240)) {
            Ok(v) => v,
            Err(_) => panic!(
                "host-runner serve printed no banner within 240 s; log:\n{}",
                fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
            ),
        };
        assert!(
            lines.len() >= 3
                && lines[0].starts_with("pb://")
                && lines[0].trim_end().ends_with("#v=1"),
            "unexpected banner {lines:?}; log:\n{}",
            fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        serve.nurl = lines[0].trim().to_owned();
        serve.yaml = lines[1..]
            .iter()
            .filter(|l| !l.starts_with('#'))
            .cloned()
            .collect();
        let address = |prefix: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .map(|a| {
                    a.trim()
                        .trim_start_matches("http://")
                        .trim_end_matches('/')
                        .to_owned()
                })
                .unwrap_or_default()
        };
        serve.status = address("# status:");
        serve.admin = address("# admin:");
        serve.plugin = address("# plugin:");
        serve._stdout = Some(reader);
        serve
    }

    /// The server's `/status.json`.
    pub fn status_json(&self) -> serde_json::Value {
        let body = http_get(&self.status, "/status.json").expect("status page");
        serde_json::from_str(&body).unwrap()
    }

    /// The leases of `si` (text) as JSON.
    pub fn leases(&self, si: &str) -> Vec<serde_json::Value> {
        let body = http_get(&self.status, &format!("/leases/{si}")).expect("leases page");
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Runs `host-runner ARGS --state S` (accounts, client-config) to success.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = run_bounded(
            host_runner().args(args).arg("--state").arg(&self.state),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Kills the server now.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Joins several servers' `storage:` documents into one `servers.yaml`.
pub fn servers_yaml(docs: &[&str]) -> String {
    let mut out = String::from("storage:\n");
    for doc in docs {
        for line in doc
            .lines()
            .filter(|l| l.trim() != "storage:" && !l.trim().is_empty())
        {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A running Tahoe client node.
pub struct Node {
    child: Option<Child>,
    pub dir: PathBuf,
    pub web: String,
}

impl Node {
    /// `tahoe create-client` with k/happy/N, `servers.yaml`, `tahoe run`; waits
    /// until `servers` servers show as connected.
    pub fn start(dir: &Path, yaml: &str, k: u32, happy: u32, n: u32, servers: usize) -> Node {
        let out = run_bounded(
            Command::new(tahoe_bin().join("tahoe"))
                .arg("create-client")
                .arg("--nickname=test")
                // Port 0: the node picks one and writes it to `node.url`, no race.
                .arg("--webport=tcp:0:interface=127.0.0.1")
                .arg(format!("--shares-needed={k}"))
                .arg(format!("--shares-happy={happy}"))
                .arg(format!("--shares-total={n}"))
                .arg(dir),
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "create-client: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(dir.join("private/servers.yaml"), yaml).unwrap();
        let log = fs::File::create(dir.with_extension("log")).unwrap();
        let child = Command::new(tahoe_bin().join("tahoe"))
            .arg("run")
            .arg("--allow-stdin-close")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("tahoe run");
        let mut node = Node {
            child: Some(child),
            dir: dir.to_path_buf(),
            web: String::new(),
        };
        node.web = node.wait_web(Duration::from_secs(120));
        node.wait_connected(servers, Duration::from_secs(120));
        node
    }

    /// The web address (`HOST:PORT`) the running node wrote to `node.url`.
    fn wait_web(&self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(url) = fs::read_to_string(self.dir.join("node.url")) {
                let web = url
                    .trim()
                    .trim_start_matches("http://")
                    .trim_end_matches('/');
                if !web.is_empty() {
                    return web.to_owned();
                }
            }
            assert!(
                Instant::now() < deadline,
                "tahoe run wrote no node.url within {limit:?}; log:\n{}",
                fs::read_to_string(self.dir.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until exactly `want` servers are connected.
    pub fn wait_connected(&self, want: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(body) = http_get(&self.web, "/?t=json") {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let connected = v["servers"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .filter(|s| s["connection_status"] == "connected")
                            .count()
                    })
                    .unwrap_or(0);
                if connected == want {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "client {} never saw {want} connected server(s); log:\n{}",
                self.dir.display(),
                fs::read_to_string(self.dir.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// `tahoe -d NODE ARGS`, which must succeed; returns stdout.
    pub fn tahoe(&self, args: &[&str]) -> String {
        let out = self.tahoe_output(args);
        assert!(
            out.status.success(),
            "tahoe {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `tahoe -d NODE ARGS`, whatever its outcome.
    pub fn tahoe_output(&self, args: &[&str]) -> Output {
        run_bounded(
            Command::new(tahoe_bin().join("tahoe"))
                .arg("-d")
                .arg(&self.dir)
                .args(args),
            Duration::from_secs(300),
        )
    }

    /// The storage index (text) of a cap, from `tahoe debug dump-cap`.
    pub fn storage_index(&self, cap: &str) -> String {
        let out = self.tahoe(&["debug", "dump-cap", cap]);
        out.lines()
            .find_map(|l| l.trim().strip_prefix("storage index: "))
            .unwrap_or_else(|| panic!("no storage index in {out}"))
            .trim()
            .to_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

/// Deterministic file contents.
pub fn file_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Peak resident set size (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// A stock Tahoe-LAFS 1.20 storage node (`tahoe create-node`, no introducer),
/// serving GBS over HTTPS on its Foolscap port.
pub struct StorageNode {
    child: Option<Child>,
    pub dir: PathBuf,
    /// Rebuilt from `private/node.pem` (SPKI), the location and the swissnum
    /// of `private/storage.furl` (GBS.md §1.2).
    pub nurl: String,
}

impl StorageNode {
    /// Creates the node in `dir` and runs it; returns once it serves
    /// `GET /storage/v1/version`.
    pub fn start(dir: &Path) -> StorageNode {
        let port = free_port();
        let out = run_bounded(
            Command::new(tahoe_bin().join("tahoe"))
                .arg("create-node")
                .arg("--nickname=stock")
                .arg("--webport=none")
                .arg(format!("--port=tcp:{port}:interface=127.0.0.1"))
                .arg(format!("--location=tcp:127.0.0.1:{port}"))
                .arg(dir),
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "create-node: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // No reserved space: the same disk as host-runner, the same limits.
        let cfg = dir.join("tahoe.cfg");
        let text = fs::read_to_string(&cfg)
            .unwrap()
            .replace("reserved_space = 1G", "reserved_space = 0");
        fs::write(&cfg, text).unwrap();
        let log = fs::File::create(dir.with_extension("log")).unwrap();
        let child = Command::new(tahoe_bin().join("tahoe"))
            .arg("run")
            .arg("--allow-stdin-close")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("tahoe run");
        let mut node = StorageNode {
            child: Some(child),
            dir: dir.to_path_buf(),
            nurl: String::new(),
        };
        let furl_path = dir.join("private/storage.furl");
        let deadline = Instant::now() + Duration::from_secs(120);
        let furl = loop {
            if let Ok(furl) = fs::read_to_string(&furl_path) {
                if furl.trim().starts_with("pb://") {
                    break furl;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the storage node wrote no storage.furl; log:\n{}",
                fs::read_to_string(dir.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let swissnum = furl.trim().rsplit('/').next().unwrap().to_owned();
        let cert = {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::CertificateDer::from_pem_file(dir.join("private/node.pem"))
                .expect("the node's certificate")
        };
        let spki = host_runner::server::identity::spki_of_certificate(&cert).expect("its SPKI");
        node.nurl = format!(
            "pb://{}@127.0.0.1:{port}/{swissnum}#v=1",
            host_runner::server::identity::spki_hash(spki)
        );
        // Listening on the port (the furl is written before the listener starts).
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the storage node does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        node
    }

    /// The node's process id (the Python process serving), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the node now.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

impl Drop for StorageNode {
    fn drop(&mut self) {
        self.kill();
    }
}

//! The `host-runner` binary: what `put` stores, `read` returns byte for byte,
//! on disk in Tahoe's layout; bad input is one line on stderr and a failing exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_host-runner");

struct Dirs {
    tmp: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Self {
        Dirs {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn storage(&self) -> PathBuf {
        self.tmp.path().join("storage")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in("state", &[], args)
    }

    /// `args` with the state directory `state` (in this temp dir) and `env` set.
    fn run_in(&self, state: &str, env: &[(&str, &Path)], args: &[&str]) -> Output {
        let storage = self.storage();
        let state = self.tmp.path().join(state);
        let (command, rest) = args.split_first().unwrap();
        Command::new(BIN)
            .arg(command)
            .arg("--storage")
            .arg(&storage)
            .arg("--state")
            .arg(&state)
            .args(rest)
            .env_remove("LEASEDB_COMPILE_CACHE")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "exit {:?}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9) >> 7) as u8 ^ seed)
        .collect()
}

/// The storage indexes used below, one per size (26 base32 characters each).
const SIS: [&str; 5] = [
    "aaaaaaaaaaaaaaaaaaaaaaaaaa",
    "mfrggzdfmztwq2lknnwg23tpoa",
    "2222222222222222222222222y",
    "zzzzzzzzzzzzzzzzzzzzzzzzzq",
    "abcdefghijklmnopqrstuvwxya",
];

fn share_files(storage: &Path, si: &str) -> Vec<String> {
    let dir = storage.join("shares").join(&si[..2]).join(si);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn put_then_read_returns_identical_bytes() {
    let dirs = Dirs::new();
    let sizes = [0, 1, 512 << 10, (512 << 10) + 1, 20 << 20];
    for (n, (&size, si)) in sizes.iter().zip(SIS).enumerate() {
        let bytes = data(size, n as u8);
        let file = dirs.file(&format!("in-{n}"), &bytes);
        let put = ok(dirs.run(&["put", si, "4", file.to_str().unwrap()]));
        assert_eq!(
            String::from_utf8_lossy(&put.stdout).trim(),
            format!("stored {si}/4 ({size} bytes)")
        );

        let read = ok(dirs.run(&["read", si, "4"]));
        assert!(
            read.stdout == bytes,
            "{size} bytes stored, {} different bytes read",
            read.stdout.len()
        );

        // Tahoe's layout: chunk 0 is `<shnum>`, later chunks `<shnum>.<k>`.
        let names = share_files(&dirs.storage(), si);
        assert!(
            names
                .iter()
                .all(|name| name == "4" || name.starts_with("4.")),
            "{names:?}"
        );
        let first = std::fs::read(
            dirs.storage()
                .join("shares")
                .join(&si[..2])
                .join(si)
                .join("4"),
        )
        .unwrap();
        assert_eq!(first[..4], [0, 0, 0, 2], "an immutable v2 container header");
    }

    let part = ok(dirs.run(&["read", SIS[4], "4", "--offset", "1000", "--length", "10"]));
    assert_eq!(part.stdout, data(20 << 20, 4)[1000..1010]);
}

/// The plugin is compiled once per binary and user, into the user's cache,
/// not once per state directory: a new node's first command loads it.
#[test]
fn a_new_state_directory_loads_the_plugin_compiled_before() {
    let dirs = Dirs::new();
    let user_cache = dirs.tmp.path().join("xdg-cache");
    let env = [("XDG_CACHE_HOME", user_cache.as_path())];
    let file = dirs.file("in", b"hello");
    let put = ["put", SIS[0], "0", file.to_str().unwrap()];
    let first = ok(dirs.run_in("state-1", &env, &put));
    let expected = format!(
        "plugin: compiled component, cached at {}",
        user_cache.join("leasedb").display()
    );
    assert!(
        String::from_utf8_lossy(&first.stderr).contains(&expected),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = ok(dirs.run_in("state-2", &env, &put));
    assert!(String::from_utf8_lossy(&second.stderr)
        .contains("plugin: loaded compiled component from cache"));
    assert!(String::from_utf8_lossy(&second.stdout).contains("already stored"));
}

/// Compiled plugins are loaded as machine code: a cache directory others
/// may write is not used; the state directory's own cache is.
#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dirs = Dirs::new();
    let user_cache = dirs.tmp.path().join("xdg-cache");
    std::fs::create_dir_all(user_cache.join("leasedb")).unwrap();
    std::fs::set_permissions(
        user_cache.join("leasedb"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let file = dirs.file("in", b"hello");
    let env = [("XDG_CACHE_HOME", user_cache.as_path())];
    let out = ok(dirs.run_in("state", &env, &["put", SIS[0], "0", file.to_str().unwrap()]));
    let expected = format!(
        "plugin: compiled component, cached at {}",
        dirs.tmp.path().join("state/cache").display()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("not using the compile cache"), "{stderr}");
}

#[test]
fn bad_storage_index_is_one_line_and_a_failing_exit() {
    let dirs = Dirs::new();
    for bad in [
        "not-base32",
        "AAAAAAAAAAAAAAAAAAAAAAAAAA",
        "aaaaaaaaaaaaaaaaaaaaaaaaab",
        "aaaa",
    ] {
        let output = dirs.run(&["read", bad, "0"]);
        assert!(!output.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{bad}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains("storage index"),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn out_of_range_share_number_is_named() {
    let dirs = Dirs::new();
    let file = dirs.file("in", b"x");
    let output = dirs.run(&["put", SIS[0], "256", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("share number 256"),
        "{stderr}"
    );
}

#[test]
fn shares_and_leases_list_what_was_put() {
    let dirs = Dirs::new();
    let file = dirs.file("in", &data(1000, 1));
    ok(dirs.run(&["put", SIS[1], "2", file.to_str().unwrap()]));
    let shares = ok(dirs.run(&["shares", "--json"]));
    let shares: serde_json::Value = serde_json::from_slice(&shares.stdout).unwrap();
    let share = shares
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["si"] == SIS[1])
        .expect("the share is listed");
    assert_eq!(share["shnum"], 2);
    assert_eq!(share["state"], "stable");
    let leases = ok(dirs.run(&["leases", SIS[1], "--json"]));
    let leases: serde_json::Value = serde_json::from_slice(&leases.stdout).unwrap();
    assert!(
        leases
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["shnum"] == 2 && l["account_id"] == 0),
        "{leases}"
    );
}

#[test]
fn every_command_has_help() {
    for command in ["put", "read", "shares", "leases", "demo"] {
        let output = Command::new(BIN)
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{command}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("--storage"),
            "{command}"
        );
    }
}

/// A commit is durable before `put` reports success: killing the host with
/// SIGKILL right after the report loses neither the share nor its lease.
#[test]
fn a_share_survives_sigkill_right_after_put_reports_success() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dirs = Dirs::new();
    let bytes = data(700_000, 9);
    let file = dirs.file("in", &bytes);
    let mut child = Command::new(BIN)
        .args(["put", "--storage"])
        .arg(dirs.storage())
        .arg("--state")
        .arg(dirs.tmp.path().join("state"))
        .args([SIS[4], "3"])
        .arg(&file)
        .arg("--hold")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("stored"), "{line}");
    child.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
    child.wait().unwrap();

    let read = ok(dirs.run(&["read", SIS[4], "3"]));
    assert_eq!(read.stdout, bytes);
    let leases = ok(dirs.run(&["leases", SIS[4], "--json"]));
    let leases: serde_json::Value = serde_json::from_slice(&leases.stdout).unwrap();
    assert_eq!(leases.as_array().unwrap().len(), 1, "{leases}");
}

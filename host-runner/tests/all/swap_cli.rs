//! `host-runner swap` against a running `serve --admin`: the operator's way
//! to upgrade the plugin live, and to learn why a swap was rolled back.

use crate::tahoe::harness::{host_runner, http_get, run_bounded, Serve};
use sha2::{Digest, Sha256};
use std::time::Duration;

use crate::release::RELEASE_1B5D437;

#[test]
fn swap_command_upgrades_a_running_server_and_explains_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    // The server runs the release users run, and is upgraded from it.
    let server = Serve::start_with(
        &dir.path().join("s"),
        None,
        &["--admin", "127.0.0.1:0", "--plugin", RELEASE_1B5D437],
    );
    let admin = server.admin.clone();
    let state = dir.path().join("s").join("state");
    let state = state.to_str().unwrap();
    let version = || http_get(&admin, "/version").expect("the admin endpoint answers");
    assert!(!version().contains("+next"), "{}", version());
    // The banner and /version name the running component by its sha256.
    let sha256 = |path: &str| hex::encode(Sha256::digest(std::fs::read(path).unwrap()));
    let release = sha256(RELEASE_1B5D437);
    assert!(
        server.plugin.starts_with("leasedb-plugin ") && server.plugin.ends_with(&release),
        "{:?}",
        server.plugin
    );
    assert!(version().contains(&release), "{}", version());

    let ok = run_bounded(
        host_runner().args([
            "swap",
            "--admin",
            &admin,
            "--state",
            state,
            leasedb_plugin_fixtures::PLUGIN_SCHEMA_V2_WASM,
        ]),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("+next"),
        "the new version is named: {stdout}"
    );
    let next = sha256(leasedb_plugin_fixtures::PLUGIN_SCHEMA_V2_WASM);
    assert!(version().contains(&next), "{}", version());

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm but not really a component").unwrap();
    let refused = run_bounded(
        host_runner()
            .args(["swap", "--admin", &admin, "--state", state])
            .arg(&junk),
        Duration::from_secs(120),
    );
    assert!(
        !refused.status.success(),
        "a component that is not a plugin is refused"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line saying why: {stderr}"
    );

    // A downgrade across the schema change is refused too.
    let down = run_bounded(
        host_runner().args([
            "swap",
            "--admin",
            &admin,
            "--state",
            state,
            leasedb_plugin_artifacts::PLUGIN_WASM,
        ]),
        Duration::from_secs(120),
    );
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("schema"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );

    // Still serving, on the version swapped in.
    assert!(version().contains("+next"), "{}", version());
    assert!(server.status_json()["server"]["uptime_seconds"].is_u64());
}

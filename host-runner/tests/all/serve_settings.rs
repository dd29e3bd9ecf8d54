//! `serve`'s settings from the environment (`LEASEDB_*`) and a `--config`
//! file, with a flag beating the environment beating the file; Tahoe's
//! `reserved_space` and `readonly` as a client meets them.

use std::fs;
use std::time::Duration;

use crate::tahoe::harness::*;
use crate::tahoe::https_client::*;

fn available(server: &Serve) -> u64 {
    server.status_json()["space"]["available"].as_u64().unwrap()
}

/// How many shares an allocation of shares 0 and 1 of a new storage index was granted.
fn granted(server: &Serve, seed: u8) -> usize {
    let reply = Client::new(&server.nurl).send(
        "POST",
        &format!("/storage/v1/immutable/{}", si(seed)),
        &[renew(1), cancel(1), upload(1), cbor_ct()],
        allocate_body(&[0, 1], 1000),
    );
    assert!(reply.status.is_success(), "{reply:?}");
    let v: ciborium::Value = ciborium::from_reader(&reply.body[..]).unwrap();
    let allocated = v
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some("allocated"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let set = match allocated {
        ciborium::Value::Tag(_, inner) => *inner,
        other => other,
    };
    set.as_array().unwrap().len()
}

#[test]
fn config_file_environment_and_flags_set_reserved_space_and_readonly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("leasedb.toml");
    // More than any test disk: nothing is left to give.
    fs::write(
        &config,
        "reserved-space = \"1000T\"\nmax_connections = 50\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let reserved = Serve::start_with(&dir.path().join("a"), None, &["--config", config]);
    assert_eq!(
        available(&reserved),
        0,
        "reserved_space from the config file"
    );
    assert_eq!(
        granted(&reserved, 1),
        0,
        "no share is allocated into reserved space"
    );

    // The environment beats the file, a flag beats the environment.
    let env_wins = Serve::start_env(
        &dir.path().join("b"),
        Some(&reserved),
        &["--config", config],
        &[("LEASEDB_RESERVED_SPACE", "0")],
    );
    assert!(available(&env_wins) > 0);
    assert_eq!(granted(&env_wins, 2), 2);
    let flag_wins = Serve::start_env(
        &dir.path().join("c"),
        Some(&reserved),
        &["--reserved-space", "0"],
        &[("LEASEDB_RESERVED_SPACE", "1000T")],
    );
    assert!(available(&flag_wins) > 0);

    // readonly from the environment: no space offered, nothing allocated.
    let readonly = Serve::start_env(
        &dir.path().join("d"),
        Some(&reserved),
        &[],
        &[("LEASEDB_READONLY", "true")],
    );
    assert_eq!(available(&readonly), 0);
    assert_eq!(
        granted(&readonly, 3),
        0,
        "a read-only server allocates nothing"
    );
}

#[test]
fn a_config_file_naming_no_flag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nreserved_spaec = \"1G\"\n",
    )
    .unwrap();
    let out = run_bounded(
        host_runner().arg("serve").arg("--config").arg(&config),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reserved_spaec") && err.contains("not a `serve` flag"),
        "{err}"
    );
}

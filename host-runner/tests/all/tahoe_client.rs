//! `host-runner serve` against the stock Tahoe-LAFS 1.20.0 client (installed into
//! `target/tahoe-venv` by `scripts/tahoe-venv.sh`; the test fails if that cannot be
//! done). Each scenario runs whole client operations and checks the result
//! byte for byte, or in the lease database.

use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use crate::tahoe::harness::*;

/// The scenarios start several processes each; one at a time keeps them within
/// their timeouts on a small machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn patches(server: &Serve) -> u64 {
    server.status_json()["server"]["patch_requests"]
        .as_u64()
        .unwrap()
}

/// put/get of several sizes, deduplicated re-upload, directories, SDMF and MDMF
/// mutable files, verify, and lease renewal by deep-check --add-lease.
#[test]
fn one_server_everything_a_client_does() {
    let _serial = serial();
    tahoe_bin();
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(&dir.path().join("s1"), None);
    let node = Node::start(
        &dir.path().join("c1"),
        &servers_yaml(&[&server.yaml]),
        1,
        1,
        1,
        1,
    );

    // Immutable files, byte-identical round trips.
    let mut caps = Vec::new();
    for (i, len) in [1024usize, 1 << 20, 8 << 20].into_iter().enumerate() {
        let path = dir.path().join(format!("f{i}"));
        let content = file_bytes(len, i as u64 + 1);
        fs::write(&path, &content).unwrap();
        let cap = node
            .tahoe(&["put", path.to_str().unwrap()])
            .trim()
            .to_owned();
        assert!(cap.starts_with("URI:CHK:"), "{cap}");
        let back = dir.path().join(format!("f{i}.back"));
        node.tahoe(&["get", &cap, back.to_str().unwrap()]);
        assert!(
            fs::read(&back).unwrap() == content,
            "{len}-byte file differs after the round trip"
        );
        caps.push(cap);
    }
    // The same file again: no share data sent.
    let before = patches(&server);
    let again = node
        .tahoe(&["put", dir.path().join("f1").to_str().unwrap()])
        .trim()
        .to_owned();
    assert_eq!(again, caps[1]);
    assert_eq!(
        patches(&server),
        before,
        "re-uploading an existing file sent PATCHes"
    );

    // Directories.
    node.tahoe(&["create-alias", "tahoe"]);
    node.tahoe(&["mkdir", "tahoe:docs"]);
    node.tahoe(&[
        "cp",
        dir.path().join("f0").to_str().unwrap(),
        "tahoe:docs/small",
    ]);
    node.tahoe(&[
        "cp",
        dir.path().join("f1").to_str().unwrap(),
        "tahoe:docs/medium",
    ]);
    let listing = node.tahoe(&["ls", "tahoe:docs"]);
    assert_eq!(
        listing.split_whitespace().collect::<Vec<_>>(),
        ["medium", "small"]
    );

    // Mutable SDMF: create, update, read.
    let s1 = dir.path().join("sdmf1");
    fs::write(&s1, b"first version of a mutable file\n").unwrap();
    let sdmf = node
        .tahoe(&["put", "--mutable", s1.to_str().unwrap()])
        .trim()
        .to_owned();
    assert!(sdmf.starts_with("URI:SSK:"), "{sdmf}");
    let s2 = dir.path().join("sdmf2");
    fs::write(&s2, b"second, longer version of the same mutable file\n").unwrap();
    node.tahoe(&["put", s2.to_str().unwrap(), &sdmf]);
    assert_eq!(
        node.tahoe(&["get", &sdmf]).as_bytes(),
        fs::read(&s2).unwrap()
    );

    // Mutable MDMF, 3 MB: create, update, read.
    let m1 = dir.path().join("mdmf1");
    let m1_bytes = file_bytes(3_000_000, 7);
    fs::write(&m1, &m1_bytes).unwrap();
    let mdmf = node
        .tahoe(&["put", "--format=MDMF", m1.to_str().unwrap()])
        .trim()
        .to_owned();
    assert!(mdmf.starts_with("URI:MDMF:"), "{mdmf}");
    let back = dir.path().join("mdmf.back");
    node.tahoe(&["get", &mdmf, back.to_str().unwrap()]);
    assert!(fs::read(&back).unwrap() == m1_bytes, "MDMF content differs");
    let m2 = dir.path().join("mdmf2");
    let m2_bytes = file_bytes(3_100_000, 8);
    fs::write(&m2, &m2_bytes).unwrap();
    node.tahoe(&["put", m2.to_str().unwrap(), &mdmf]);
    node.tahoe(&["get", &mdmf, back.to_str().unwrap()]);
    assert!(
        fs::read(&back).unwrap() == m2_bytes,
        "updated MDMF content differs"
    );

    // Verify.
    let check = node.tahoe(&["check", "--verify", &caps[2]]);
    assert!(check.contains("Healthy"), "{check}");

    // deep-check --add-lease renews leases: times move forward, one lease per account.
    let si = node.storage_index(&caps[1]);
    let aliases = node.tahoe(&["list-aliases"]);
    let dir_si = node.storage_index(aliases.split_whitespace().nth(1).unwrap());
    let before = server.leases(&si);
    assert_eq!(before.len(), 1, "{before:?}");
    std::thread::sleep(Duration::from_millis(2100));
    let report = node.tahoe(&["deep-check", "--add-lease", "tahoe:"]);
    assert!(report.contains(" 0 unhealthy"), "{report}");
    let after = server.leases(&si);
    assert_eq!(after.len(), 1, "one lease per account: {after:?}");
    assert!(
        after[0]["renewed"].as_i64() > before[0]["renewed"].as_i64(),
        "lease not renewed: {before:?} -> {after:?}"
    );
    assert_eq!(after[0]["account_id"], 0);
    let dir_leases = server.leases(&dir_si);
    assert_eq!(dir_leases.len(), 1, "{dir_leases:?}");
}

/// k=3, N=5 over five servers: the file survives two of them stopping.
#[test]
fn grid_of_five_survives_two_stopped_servers() {
    let _serial = serial();
    tahoe_bin();
    let dir = tempfile::tempdir().unwrap();
    let first = Serve::start(&dir.path().join("s0"), None);
    let mut servers = vec![first];
    for i in 1..5 {
        let s = Serve::start(&dir.path().join(format!("s{i}")), Some(&servers[0]));
        servers.push(s);
    }
    let docs: Vec<&str> = servers.iter().map(|s| s.yaml.as_str()).collect();
    let node = Node::start(&dir.path().join("c"), &servers_yaml(&docs), 3, 5, 5, 5);
    let path = dir.path().join("file");
    let content = file_bytes(2_500_000, 42);
    fs::write(&path, &content).unwrap();
    let cap = node
        .tahoe(&["put", path.to_str().unwrap()])
        .trim()
        .to_owned();
    assert!(cap.ends_with(":3:5:2500000"), "{cap}");
    for s in &servers {
        assert_eq!(
            s.status_json()["usage"]["shares"],
            1,
            "each server holds one share"
        );
    }
    servers[1].kill();
    servers[3].kill();
    node.wait_connected(3, Duration::from_secs(60));
    let back = dir.path().join("file.back");
    node.tahoe(&["get", &cap, back.to_str().unwrap()]);
    assert!(
        fs::read(&back).unwrap() == content,
        "file differs with two servers down"
    );
}

/// Two clients on two account NURLs: usage is counted per account; a revoked
/// account is refused.
#[test]
fn usage_per_account_and_revocation() {
    let _serial = serial();
    tahoe_bin();
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(&dir.path().join("s"), None);
    let alice_conf = server.admin(&["accounts", "add", "alice"]);
    let bob_conf = server.admin(&["accounts", "add", "bob"]);
    let yaml_of = |conf: &str| conf.lines().skip(1).collect::<Vec<_>>().join("\n") + "\n";
    assert!(alice_conf.starts_with("pb://") && alice_conf.lines().next().unwrap() != server.nurl);
    // client-config prints the same thing again.
    assert_eq!(
        server.admin(&["client-config", "--account", "alice"]),
        alice_conf
    );
    assert_eq!(
        server.admin(&["client-config"]).lines().next().unwrap(),
        server.nurl
    );
    let alice = Node::start(&dir.path().join("alice"), &yaml_of(&alice_conf), 1, 1, 1, 1);
    let bob = Node::start(&dir.path().join("bob"), &yaml_of(&bob_conf), 1, 1, 1, 1);
    let put = |node: &Node, len: usize, seed: u64| {
        let path = dir.path().join(format!("u{seed}"));
        fs::write(&path, file_bytes(len, seed)).unwrap();
        node.tahoe(&["put", path.to_str().unwrap()])
            .trim()
            .to_owned()
    };
    put(&alice, 100_000, 1);
    put(&bob, 200_000, 2);
    put(&bob, 300_000, 3);
    let out = run_bounded(
        host_runner()
            .args(["usage", "--json", "--storage"])
            .arg(&server.storage)
            .arg("--state")
            .arg(&server.state),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let usage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let of = |name: &str| {
        usage
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {usage}"))
            .clone()
    };
    assert_eq!(of("alice")["shares"], 1);
    assert_eq!(of("bob")["shares"], 2);
    let alice_bytes = of("alice")["bytes"].as_u64().unwrap();
    let bob_bytes = of("bob")["bytes"].as_u64().unwrap();
    assert!((100_000..120_000).contains(&alice_bytes), "{alice_bytes}");
    assert!((500_000..560_000).contains(&bob_bytes), "{bob_bytes}");
    assert!(usage
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["name"] != "(anonymous)"));

    // Revoked: bob's requests get 401, so his client cannot upload any more.
    server.admin(&["accounts", "revoke", "bob"]);
    let list = server.admin(&["accounts", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("bob") && l.contains("revoked")),
        "{list}"
    );
    bob.wait_connected(0, Duration::from_secs(60));
    let path = dir.path().join("late");
    fs::write(&path, file_bytes(10_000, 9)).unwrap();
    let out = bob.tahoe_output(&["put", path.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a revoked account could still upload"
    );
    // Alice is unaffected.
    put(&alice, 10_000, 10);
}

/// An operator points host-runner at the storage directory of a stock Tahoe
/// 1.20 server (v2 immutable and mutable containers with their leases
/// embedded): one crawl registers every share with the right type and size,
/// and `read` returns each immutable share's data exactly as the container
/// holds it.
#[test]
fn crawl_registers_a_stock_tahoe_storage_directory() {
    let _serial = serial();
    tahoe_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut stock = StorageNode::start(&dir.path().join("stock"));
    let furl = fs::read_to_string(stock.dir.join("private/storage.furl")).unwrap();
    let furl = furl.trim();
    let tubid = furl.trim_start_matches("pb://").split('@').next().unwrap();
    let yaml = format!(
        "storage:\n  {tubid}:\n    ann:\n      nickname: stock\n      anonymous-storage-FURL: {furl}\n      anonymous-storage-NURLs:\n        - {}\n      permutation-seed-base32: {tubid}\n",
        stock.nurl
    );
    let node = Node::start(&dir.path().join("client"), &yaml, 1, 1, 1, 1);
    let immutable = dir.path().join("immutable.bin");
    fs::write(&immutable, file_bytes(150_000, 7)).unwrap();
    let mutable = dir.path().join("mutable.txt");
    fs::write(&mutable, file_bytes(3_000, 8)).unwrap();
    let imm_cap = node
        .tahoe(&["put", immutable.to_str().unwrap()])
        .trim()
        .to_owned();
    let mut_cap = node
        .tahoe(&["put", "--mutable", mutable.to_str().unwrap()])
        .trim()
        .to_owned();
    let (imm_si, mut_si) = (node.storage_index(&imm_cap), node.storage_index(&mut_cap));
    stock.kill();

    let storage = stock.dir.join("storage");
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        let out = host_runner()
            .arg(args[0])
            .arg("--storage")
            .arg(&storage)
            .arg("--state")
            .arg(&state)
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let report: serde_json::Value =
        serde_json::from_slice(&run(&["crawl", "--once", "--json"])).unwrap();
    assert_eq!(report["examined"]["shares"], 2, "{report}");
    assert_eq!(report["examined"]["by_type"]["immutable"], 1, "{report}");
    assert_eq!(report["examined"]["by_type"]["mutable"], 1, "{report}");
    assert_eq!(report["examined"]["by_type"]["corrupted"], 0, "{report}");
    assert_eq!(report["recovered"]["shares"], 0, "{report}");
    assert_eq!(report["corrupt_shares"], serde_json::json!([]), "{report}");

    let shares: serde_json::Value = serde_json::from_slice(&run(&["shares", "--json"])).unwrap();
    for (si, kind) in [(&imm_si, "immutable"), (&mut_si, "mutable")] {
        let share = shares
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["si"] == si.as_str())
            .unwrap_or_else(|| panic!("{si} in {shares}"));
        let file = storage.join("shares").join(&si[..2]).join(si).join("0");
        assert_eq!(share["type"], kind, "{share}");
        assert_eq!(
            share["used_space"],
            fs::metadata(&file).unwrap().len(),
            "{share}"
        );
    }

    // The immutable container: 12-byte header, data, then N 72-byte lease records.
    let container = fs::read(
        storage
            .join("shares")
            .join(&imm_si[..2])
            .join(&imm_si)
            .join("0"),
    )
    .unwrap();
    let leases = u32::from_be_bytes(container[8..12].try_into().unwrap()) as usize;
    assert!(leases >= 1, "a stock server embeds its lease");
    let data = &container[12..container.len() - 72 * leases];
    assert_eq!(run(&["read", &imm_si, "0"]), data);
}

//! Issue 15's operator story: a stock Tahoe-LAFS 1.20 storage node, filled
//! by a stock client, is stopped and taken over by `host-runner`; the same
//! client, its configuration untouched, keeps reading and writing, and the
//! leases the node recorded are the ones the database holds.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::tahoe::harness::*;

/// The `storage:` entry a client of `node` has: the announcement a stock
/// node makes (server id from `node.pubkey`, its permutation seed, its FURL
/// and NURL).
fn announcement(node: &StorageNode) -> String {
    let read = |name: &str| {
        fs::read_to_string(node.dir.join(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let server_id = read("node.pubkey").replacen("pub-", "", 1);
    format!(
        "storage:\n  {server_id}:\n    ann:\n      nickname: stock\n      anonymous-storage-FURL: {}\n      anonymous-storage-NURLs:\n        - {}\n      permutation-seed-base32: {}\n",
        read("private/storage.furl"),
        node.nurl,
        read("permutation-seed"),
    )
}

fn be32(bytes: &[u8], at: usize) -> i64 {
    i64::from(u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()))
}

/// The latest lease expiry a stock node recorded in share 0's file of `si`
/// (immutable: 72-byte records at the end; mutable: four 92-byte slots at 100).
fn recorded_expiry(storage: &Path, si: &str) -> i64 {
    let file = fs::read(storage.join("shares").join(&si[..2]).join(si).join("0")).unwrap();
    let expiries: Vec<i64> = if file.starts_with(b"Tahoe mutable container") {
        (0..4)
            .map(|i| 100 + i * 92)
            .filter(|&at| be32(&file, at) != 0)
            .map(|at| be32(&file, at + 4))
            .collect()
    } else {
        let n = be32(&file, 8) as usize;
        (0..n)
            .map(|i| be32(&file, file.len() - 72 * (n - i) + 68))
            .collect()
    };
    *expiries
        .iter()
        .max()
        .expect("the stock node recorded a lease")
}

#[test]
fn a_stock_node_taken_over_keeps_its_clients_and_leases() {
    let _serial = crate::tahoe_client::serial();
    tahoe_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut stock = StorageNode::start(&dir.path().join("stock"));
    let client = Node::start(
        &dir.path().join("client"),
        &announcement(&stock),
        1,
        1,
        1,
        1,
    );
    let client_yaml = fs::read(client.dir.join("private/servers.yaml")).unwrap();

    // Fill it: immutable files and a mutable directory holding one of them.
    let mut files = Vec::new();
    for (i, len) in [2_000usize, 300_000].into_iter().enumerate() {
        let path = dir.path().join(format!("f{i}"));
        fs::write(&path, file_bytes(len, i as u64 + 1)).unwrap();
        let cap = client
            .tahoe(&["put", path.to_str().unwrap()])
            .trim()
            .to_owned();
        files.push((cap, fs::read(&path).unwrap()));
    }
    client.tahoe(&["create-alias", "tahoe"]);
    let first = dir.path().join("f0");
    client.tahoe(&["cp", first.to_str().unwrap(), "tahoe:first"]);
    let aliases = client.tahoe(&["list-aliases"]);
    let dircap = aliases.split_whitespace().nth(1).unwrap().to_owned();
    let mut sis: Vec<String> = files.iter().map(|(c, _)| client.storage_index(c)).collect();
    sis.push(client.storage_index(&dircap));
    let storage = stock.dir.join("storage");
    let recorded: Vec<i64> = sis.iter().map(|si| recorded_expiry(&storage, si)).collect();

    let state = dir.path().join("taken").join("state");
    let node_dir = stock.dir.clone();
    let import = || {
        run_bounded(
            host_runner()
                .arg("import-tahoe-node")
                .arg(&node_dir)
                .arg("--state")
                .arg(&state),
            Duration::from_secs(60),
        )
    };
    let running = import();
    assert!(
        !running.status.success(),
        "a running node is not taken over"
    );
    assert!(
        String::from_utf8_lossy(&running.stderr).contains("running"),
        "{}",
        String::from_utf8_lossy(&running.stderr)
    );
    stock.kill();
    let imported = import();
    let out = String::from_utf8_lossy(&imported.stdout);
    assert!(
        imported.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(
        out.contains(&stock.nurl),
        "the import names the node's NURL: {out}"
    );
    // A state directory that is another server already is refused.
    let other = dir.path().join("other");
    let made = run_bounded(
        host_runner()
            .args(["client-config", "--listen", "127.0.0.1:1", "--state"])
            .arg(&other),
        Duration::from_secs(60),
    );
    assert!(made.status.success());
    let refused = run_bounded(
        host_runner()
            .arg("import-tahoe-node")
            .arg(&stock.dir)
            .arg("--state")
            .arg(&other),
        Duration::from_secs(60),
    );
    assert!(
        !refused.status.success(),
        "another server's state is not overwritten"
    );

    // Serving imports again (the same node: nothing changes) and serves it.
    let server = Serve::take_over(&dir.path().join("taken"), &stock.dir);
    assert_eq!(
        server.nurl, stock.nurl,
        "the NURL clients have is unchanged"
    );
    client.wait_connected(1, Duration::from_secs(120));

    // Leases imported, not invented: the anonymous account's, with the
    // expiry the node recorded, and no starter lease.
    for (si, expiry) in sis.iter().zip(&recorded) {
        let leases = server.leases(si);
        assert_eq!(leases.len(), 1, "{si}: {leases:?}");
        assert_eq!(leases[0]["account_id"], 0, "{si}: {leases:?}");
        assert_eq!(
            leases[0]["expires"].as_i64(),
            Some(*expiry),
            "{si}: {leases:?}"
        );
    }

    // The same client reads everything and writes to its mutable directory.
    for (i, (cap, content)) in files.iter().enumerate() {
        let back = dir.path().join(format!("f{i}.back"));
        client.tahoe(&["get", cap, back.to_str().unwrap()]);
        assert!(
            &fs::read(&back).unwrap() == content,
            "file {i} differs after the takeover"
        );
    }
    let second = dir.path().join("f1");
    client.tahoe(&["cp", second.to_str().unwrap(), "tahoe:second"]);
    let listing = client.tahoe(&["ls", "tahoe:"]);
    assert_eq!(
        listing.split_whitespace().collect::<Vec<_>>(),
        ["first", "second"]
    );
    let back = dir.path().join("second.back");
    client.tahoe(&["get", "tahoe:second", back.to_str().unwrap()]);
    assert!(
        fs::read(&back).unwrap() == files[1].1,
        "the file added after the takeover reads back"
    );
    assert_eq!(
        fs::read(client.dir.join("private/servers.yaml")).unwrap(),
        client_yaml,
        "the client's configuration was not touched"
    );
}

//! A real earlier release as a fixture: the shipped component exactly as
//! built from commit 1b5d437 (`tests/fixtures/releases/`, with its sha256), so
//! upgrade tests start from what users run rather than from today's engine
//! built against an old interface.

use host_runner::Operations;
use sha2::{Digest, Sha256};

use crate::fixture::{fixture, wasm};
use host_runner::plugin::wit::Account;
use host_runner::StorageIndex;

/// The component shipped at commit 1b5d437.
pub const RELEASE_1B5D437: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/releases/leasedb_plugin-1b5d437.wasm"
);

/// Its recorded `sha256sum` line.
const RELEASE_1B5D437_SHA256: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/releases/leasedb_plugin-1b5d437.wasm.sha256"
));

#[test]
fn the_release_fixture_is_the_recorded_build() {
    let recorded = RELEASE_1B5D437_SHA256
        .split_whitespace()
        .next()
        .expect("a sha256sum line");
    let actual = hex::encode(Sha256::digest(wasm(RELEASE_1B5D437)));
    assert_eq!(actual, recorded, "the release fixture was changed");
}

#[test]
fn shares_and_leases_stored_by_the_release_survive_the_upgrade_to_this_build() {
    let f = fixture();
    let mut old = f.start_with(wasm(RELEASE_1B5D437));
    let si = StorageIndex([7; 16]);
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 31 % 251) as u8).collect();
    old.session_opened(1).unwrap();
    let allocation = old
        .allocate(
            1,
            &Account::Anonymous,
            si.as_bytes(),
            &[0],
            data.len() as u64,
        )
        .unwrap();
    assert_eq!(allocation.allocated, [0]);
    old.write(si.as_bytes(), 0, 0, &data).unwrap();
    old.close(si.as_bytes(), 0).unwrap();
    old.add_lease(&Account::Named("alice".into()), si.as_bytes())
        .unwrap();
    let leases_before = old.list_leases(si.as_bytes()).unwrap();

    // Live: the running release hands over to this build.
    let report = old.swap(leasedb_plugin_artifacts::PLUGIN_BYTES).unwrap();
    // Schema 2 adds the status page's totals, filled from the release's
    // rows; 3 lets the crawler's registrations add theirs in bulk.
    assert_eq!(report.schema, (1, 3));
    assert_eq!(
        old.read(si.as_bytes(), 0, 0, data.len() as u64).unwrap(),
        data
    );
    assert_eq!(old.list_leases(si.as_bytes()).unwrap(), leases_before);
    drop(old);

    // Cold: this build opens the release's database after a restart.
    let mut new = f.start();
    assert_eq!(new.list_shares(si.as_bytes()).unwrap(), [0]);
    assert_eq!(
        new.read(si.as_bytes(), 0, 0, data.len() as u64).unwrap(),
        data
    );
    assert_eq!(new.list_leases(si.as_bytes()).unwrap(), leases_before);
    let usage = new.get_usage(None).unwrap();
    assert_eq!((usage.shares, usage.sharesets), (1, 1));
}

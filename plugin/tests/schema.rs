//! The migration path (SPEC §11): a database written at any released schema
//! version opens with the current build, its migrations run one transaction
//! per step, the data survives, and a failing step changes nothing.
//!
//! Released schema versions: 1. Run with `--features fixture-schema-v2` to also
//! cover the fixture's 1 → 2 step and a database already at 2.

use std::rc::Rc;

use leasedb_plugin::backend::memory::MemoryBackend;
use leasedb_plugin::db::schema::{self, SchemaError, CURRENT_VERSION};
use leasedb_plugin::db::sqlite::Connection;
use leasedb_plugin::{Config, LeaseDb, OpenError, StorageIndex};

const SI: StorageIndex = StorageIndex(*b"0123456789abcdef");

fn db_path(dir: &tempfile::TempDir) -> String {
    dir.path()
        .join("leasedb.sqlite3")
        .to_str()
        .unwrap()
        .to_string()
}

fn user_version(conn: &Connection) -> u32 {
    conn.query_row("PRAGMA user_version", &[], |r| r.get(0))
        .unwrap()
        .unwrap_or(0)
}

fn table_exists(conn: &Connection, name: &str) -> bool {
    conn.execute_batch(&format!("SELECT 1 FROM {name} LIMIT 0"))
        .is_ok()
}

/// A database at `version`, made by this build's first `version` migrations,
/// holding a stable share with a named lease (rows as schema 1 defines them;
/// every later migration must keep them).
fn database_at(path: &str, version: u32) {
    let conn = Connection::open(path).unwrap();
    assert_eq!(
        schema::migrate_steps(&conn, &schema::migrations()[..version as usize]).unwrap(),
        version
    );
    let si = SI.0.iter().map(|b| format!("{b:02x}")).collect::<String>();
    conn.execute_batch(&format!(
        "INSERT INTO accounts (id, name, created) VALUES (2, 'alice', 1700000000);
         INSERT INTO shares (si, shnum, prefix, used_space, data_length, chunk_size, share_type, state)
             VALUES (X'{si}', 3, '{prefix}', 1234, 1000, 4096, 0, 1);
         INSERT INTO leases (si, shnum, account, renewed, expires)
             VALUES (X'{si}', 3, 2, 1700000000, 1702678400);",
        prefix = SI.prefix().to_text()
    ))
    .unwrap();
    assert_eq!(user_version(&conn), version);
}

#[test]
fn every_released_schema_version_opens_with_the_current_build_and_keeps_its_data() {
    for version in 1..=CURRENT_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        database_at(&path, version);

        let backend = Rc::new(MemoryBackend::new(1 << 30));
        let (mut db, report) = LeaseDb::open(&path, backend, Config::default()).unwrap();
        assert_eq!(report.schema_version, CURRENT_VERSION, "from {version}");
        let shares = db.list_all_shares(None, 10).unwrap();
        assert_eq!(shares.len(), 1, "from {version}");
        assert_eq!(
            (shares[0].si, shares[0].shnum.0, shares[0].used_space),
            (SI, 3, 1234)
        );
        let usage = db.usage_by_account().unwrap();
        assert!(
            usage
                .iter()
                .any(|a| a.name == "alice" && a.usage.shares == 1),
            "from {version}: {usage:?}"
        );
        drop(db);
        assert_eq!(
            user_version(&Connection::open(&path).unwrap()),
            CURRENT_VERSION
        );
    }
}

#[test]
fn a_failing_migration_leaves_the_database_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    database_at(&path, 1);
    let conn = Connection::open(&path).unwrap();
    // Changes something, then fails: only the transaction can undo the first half.
    let steps = [
        schema::migrations()[0],
        "CREATE TABLE half_done (x); INSERT INTO no_such_table VALUES (1);",
    ];
    let error = schema::migrate_steps(&conn, &steps).unwrap_err();
    assert!(
        matches!(error, SchemaError::Migration { from: 1, .. }),
        "{error:?}"
    );
    assert_eq!(user_version(&conn), 1);
    assert!(!table_exists(&conn, "half_done"));
    assert!(table_exists(&conn, "shares"));
    drop(conn);

    let backend = Rc::new(MemoryBackend::new(1 << 30));
    let (mut db, _) = LeaseDb::open(&path, backend, Config::default()).unwrap();
    assert_eq!(db.list_all_shares(None, 10).unwrap().len(), 1);
}

#[test]
fn a_database_from_a_newer_build_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    database_at(&path, CURRENT_VERSION);
    Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", CURRENT_VERSION + 1))
        .unwrap();
    let backend = Rc::new(MemoryBackend::new(1 << 30));
    match LeaseDb::open(&path, backend, Config::default()) {
        Err(OpenError::Schema(SchemaError::Newer { found, supported })) => {
            assert_eq!((found, supported), (CURRENT_VERSION + 1, CURRENT_VERSION));
        }
        Err(other) => panic!("unexpected {other:?}"),
        Ok(_) => panic!("a newer database was opened"),
    }
    let conn = Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn), CURRENT_VERSION + 1);
    assert!(table_exists(&conn, "shares"));
}

#[cfg(feature = "fixture-schema-v2")]
#[test]
fn the_fixture_step_1_to_2_adds_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    database_at(&path, 1);
    let conn = Connection::open(&path).unwrap();
    assert_eq!(schema::migrate(&conn).unwrap(), CURRENT_VERSION);
    assert!(table_exists(&conn, "swap_fixture"));
}

//! The database schema and its migrations. The version lives in
//! `PRAGMA user_version`; a database from a newer plugin is refused.

use std::fmt;

use super::sqlite::{Connection, DbError};

/// Each entry migrates from version `i` to `i + 1`, inside one transaction.
/// Released versions: 1. The fixture features add a version 2 (hot-swap tests
/// only; the product never carries them).
#[cfg(not(any(feature = "fixture-schema-v2", feature = "fixture-bad-migration")))]
const MIGRATIONS: &[&str] = &[V1];
#[cfg(feature = "fixture-schema-v2")]
const MIGRATIONS: &[&str] = &[V1, FIXTURE_V2];
#[cfg(all(feature = "fixture-bad-migration", not(feature = "fixture-schema-v2")))]
const MIGRATIONS: &[&str] = &[V1, FIXTURE_BAD_V2];

/// 0 → 1: accounts, shares, leases (SPEC §5).
const V1: &str = "
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT UNIQUE,
        created INTEGER NOT NULL
    );
    INSERT INTO accounts (id, name, created) VALUES (0, NULL, 0), (1, NULL, 0);
    CREATE TABLE shares (
        si BLOB NOT NULL CHECK (length(si) = 16),
        shnum INTEGER NOT NULL CHECK (shnum BETWEEN 0 AND 255),
        prefix TEXT NOT NULL,
        used_space INTEGER NOT NULL,
        data_length INTEGER NOT NULL,
        chunk_size INTEGER NOT NULL,
        share_type INTEGER NOT NULL,
        state INTEGER NOT NULL,
        PRIMARY KEY (si, shnum)
    ) WITHOUT ROWID;
    CREATE INDEX shares_by_prefix ON shares (prefix);
    CREATE TABLE leases (
        si BLOB NOT NULL,
        shnum INTEGER NOT NULL,
        account INTEGER NOT NULL REFERENCES accounts (id),
        renewed INTEGER NOT NULL,
        expires INTEGER,
        PRIMARY KEY (si, shnum, account),
        FOREIGN KEY (si, shnum) REFERENCES shares (si, shnum) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE INDEX leases_by_account ON leases (account);
    CREATE INDEX leases_by_expiry ON leases (expires);
    CREATE TABLE corruption_advisories (
        id INTEGER PRIMARY KEY,
        share_type INTEGER NOT NULL,
        si BLOB NOT NULL,
        shnum INTEGER NOT NULL,
        account INTEGER NOT NULL REFERENCES accounts (id),
        reason TEXT NOT NULL,
        reported INTEGER NOT NULL
    );
    CREATE TABLE crawler_state (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        -- The cycle in progress as JSON (its position and counters), if any.
        current TEXT,
        last_finished INTEGER,
        cycles_done INTEGER NOT NULL
    );
    INSERT INTO crawler_state (id, current, last_finished, cycles_done) VALUES (0, NULL, NULL, 0);
    CREATE TABLE crawler_history (
        cycle INTEGER PRIMARY KEY,
        report TEXT NOT NULL
    );
    ";

/// Fixture 1 → 2: a harmless table (the "next release" of the hot-swap tests).
#[cfg(feature = "fixture-schema-v2")]
const FIXTURE_V2: &str = "
    CREATE TABLE swap_fixture (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
    INSERT INTO swap_fixture (note) VALUES ('schema 2');
    ";

/// Fixture 1 → 2 that fails after changing something, so only the
/// transaction keeps the database at version 1.
#[cfg(all(feature = "fixture-bad-migration", not(feature = "fixture-schema-v2")))]
const FIXTURE_BAD_V2: &str = "
    CREATE TABLE swap_fixture (id INTEGER PRIMARY KEY);
    INSERT INTO no_such_table (id) VALUES (1);
    ";

/// The schema version this plugin writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// Why the database could not be brought to the current schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaError {
    /// Written by a newer plugin; never downgraded.
    Newer { found: u32, supported: u32 },
    /// A migration failed; the database is unchanged.
    Migration { from: u32, error: DbError },
    /// Reading the version failed.
    Db(DbError),
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Newer { found, supported } => write!(
                f,
                "the database has schema version {found}, newer than this plugin's {supported}; refusing to downgrade it"
            ),
            SchemaError::Migration { from, error } => {
                write!(f, "migrating the database from schema version {from} failed: {error}")
            }
            SchemaError::Db(e) => write!(f, "reading the schema version: {e}"),
        }
    }
}

/// The migrations of this build, from version 0; entry `i` goes from `i` to `i + 1`.
pub fn migrations() -> &'static [&'static str] {
    MIGRATIONS
}

/// Brings the database to CURRENT_VERSION; returns the version it has now.
pub fn migrate(conn: &Connection) -> Result<u32, SchemaError> {
    migrate_steps(conn, MIGRATIONS)
}

/// Brings the database to version `steps.len()` by running `steps` from its
/// current version, each in its own transaction: a failing step leaves the
/// database at the version before it. Refuses a database newer than `steps`.
pub fn migrate_steps(conn: &Connection, steps: &[&str]) -> Result<u32, SchemaError> {
    let target = steps.len() as u32;
    let found: u32 = conn
        .query_row("PRAGMA user_version", &[], |r| r.get(0))
        .map_err(SchemaError::Db)?
        .unwrap_or(0);
    if found > target {
        return Err(SchemaError::Newer {
            found,
            supported: target,
        });
    }
    for from in found..target {
        let step = || -> Result<(), DbError> {
            let tx = conn.transaction()?;
            tx.execute_batch(steps[from as usize])?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", from + 1))?;
            tx.commit()
        };
        step().map_err(|error| SchemaError::Migration { from, error })?;
    }
    Ok(target)
}

//! The database schema and its migrations. The version lives in
//! `PRAGMA user_version`; a database from a newer plugin is refused.

use std::fmt;

use super::sqlite::{Connection, DbError};

/// Each entry migrates from version `i` to `i + 1`, inside one transaction.
/// Released versions: 1, 2; 3 is this build's. The fixture features add one
/// more version (hot-swap tests only; the product never carries them).
#[cfg(not(any(feature = "fixture-schema-v2", feature = "fixture-bad-migration")))]
const MIGRATIONS: &[&str] = &[V1, V2, V3];
#[cfg(feature = "fixture-schema-v2")]
const MIGRATIONS: &[&str] = &[V1, V2, V3, FIXTURE_NEXT];
#[cfg(all(feature = "fixture-bad-migration", not(feature = "fixture-schema-v2")))]
const MIGRATIONS: &[&str] = &[V1, V2, V3, FIXTURE_BAD_NEXT];

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

/// 1 → 2: the totals the status page and every metrics scrape ask for (SPEC
/// §9), kept by triggers in the same transactions as the shares and leases
/// they count, so reading them costs a few rows instead of whole-table scans
/// that held every call for seconds at a million shares. `usage_totals` has a
/// row per account holding a lease, and the row `account = -1` for shares
/// leased by any account. Filled from the tables row by row (an upsert per
/// row or group, never a sort of the whole table). Also an index of the
/// unfinished uploads, which every start looks for, and no index of prefixes.
pub(crate) const V2: &str = "
    CREATE TABLE share_totals (
        state INTEGER NOT NULL,
        share_type INTEGER NOT NULL,
        shares INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (state, share_type)
    ) WITHOUT ROWID;
    -- fill
    INSERT INTO share_totals (state, share_type, shares, bytes)
        SELECT state, share_type, 1, used_space FROM shares WHERE true
        ON CONFLICT (state, share_type) DO UPDATE
        SET shares = shares + 1, bytes = bytes + excluded.bytes;

    CREATE TABLE usage_totals (
        account INTEGER PRIMARY KEY,
        shares INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        sharesets INTEGER NOT NULL
    );
    -- fill
    INSERT INTO usage_totals (account, shares, bytes, sharesets)
        SELECT account, n, b, 1 FROM (
            SELECT l.account AS account, count(*) AS n, sum(s.used_space) AS b
            FROM leases l JOIN shares s ON l.si = s.si AND l.shnum = s.shnum
            GROUP BY l.account, l.si)
        WHERE true
        ON CONFLICT (account) DO UPDATE SET shares = shares + excluded.shares,
            bytes = bytes + excluded.bytes, sharesets = sharesets + 1;
    -- fill
    INSERT INTO usage_totals (account, shares, bytes, sharesets)
        SELECT -1, COALESCE(sum(n), 0), COALESCE(sum(b), 0), count(*) FROM (
            SELECT count(*) AS n, sum(s.used_space) AS b FROM shares s
            WHERE EXISTS (SELECT 1 FROM leases l WHERE l.si = s.si AND l.shnum = s.shnum)
            GROUP BY s.si);

    CREATE TRIGGER share_added AFTER INSERT ON shares BEGIN
        INSERT INTO share_totals (state, share_type, shares, bytes)
            VALUES (NEW.state, NEW.share_type, 1, NEW.used_space)
            ON CONFLICT (state, share_type) DO UPDATE
            SET shares = shares + 1, bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER share_changed AFTER UPDATE OF state, share_type, used_space ON shares BEGIN
        UPDATE share_totals SET shares = shares - 1, bytes = bytes - OLD.used_space
            WHERE state = OLD.state AND share_type = OLD.share_type;
        INSERT INTO share_totals (state, share_type, shares, bytes)
            VALUES (NEW.state, NEW.share_type, 1, NEW.used_space)
            ON CONFLICT (state, share_type) DO UPDATE
            SET shares = shares + 1, bytes = bytes + excluded.bytes;
        UPDATE usage_totals SET bytes = bytes + NEW.used_space - OLD.used_space
            WHERE account IN (SELECT account FROM leases WHERE si = NEW.si AND shnum = NEW.shnum)
               OR (account = -1 AND EXISTS (SELECT 1 FROM leases WHERE si = NEW.si AND shnum = NEW.shnum));
    END;
    -- The leases go first (the cascade would run once the share row is gone,
    -- too late to read the size their totals must lose).
    CREATE TRIGGER share_removing BEFORE DELETE ON shares BEGIN
        DELETE FROM leases WHERE si = OLD.si AND shnum = OLD.shnum;
    END;
    CREATE TRIGGER share_removed AFTER DELETE ON shares BEGIN
        UPDATE share_totals SET shares = shares - 1, bytes = bytes - OLD.used_space
            WHERE state = OLD.state AND share_type = OLD.share_type;
    END;

    CREATE TRIGGER lease_added AFTER INSERT ON leases BEGIN
        INSERT INTO usage_totals (account, shares, bytes, sharesets)
            SELECT NEW.account, 1, s.used_space, NOT EXISTS (
                SELECT 1 FROM leases WHERE si = NEW.si AND account = NEW.account AND shnum != NEW.shnum)
            FROM shares s WHERE s.si = NEW.si AND s.shnum = NEW.shnum
            ON CONFLICT (account) DO UPDATE SET shares = shares + 1,
                bytes = bytes + excluded.bytes, sharesets = sharesets + excluded.sharesets;
        INSERT INTO usage_totals (account, shares, bytes, sharesets)
            SELECT -1, 1, s.used_space, NOT EXISTS (
                SELECT 1 FROM leases WHERE si = NEW.si AND shnum != NEW.shnum)
            FROM shares s WHERE s.si = NEW.si AND s.shnum = NEW.shnum AND NOT EXISTS (
                SELECT 1 FROM leases WHERE si = NEW.si AND shnum = NEW.shnum AND account != NEW.account)
            ON CONFLICT (account) DO UPDATE SET shares = shares + 1,
                bytes = bytes + excluded.bytes, sharesets = sharesets + excluded.sharesets;
    END;
    CREATE TRIGGER lease_removed AFTER DELETE ON leases BEGIN
        UPDATE usage_totals SET shares = shares - 1,
            bytes = bytes - (SELECT used_space FROM shares WHERE si = OLD.si AND shnum = OLD.shnum),
            sharesets = sharesets - NOT EXISTS (
                SELECT 1 FROM leases WHERE si = OLD.si AND account = OLD.account)
            WHERE account = OLD.account;
        UPDATE usage_totals SET shares = shares - 1,
            bytes = bytes - (SELECT used_space FROM shares WHERE si = OLD.si AND shnum = OLD.shnum),
            sharesets = sharesets - NOT EXISTS (SELECT 1 FROM leases WHERE si = OLD.si)
            WHERE account = -1 AND NOT EXISTS (
                SELECT 1 FROM leases WHERE si = OLD.si AND shnum = OLD.shnum);
    END;
    -- Every start looks for the uploads left unfinished (COMING): this
    -- index holds only those, so that costs nothing at a million shares.
    CREATE INDEX shares_coming ON shares (state) WHERE state = 0;
    -- A prefix is a range of the primary key: this index only cost 29 bytes a share.
    DROP INDEX shares_by_prefix;
    -- A lease never moves: renewals change only its times.
    CREATE TRIGGER lease_moved BEFORE UPDATE OF si, shnum, account ON leases BEGIN
        SELECT RAISE(ABORT, 'a lease cannot move to another share or account');
    END;
    ";

/// 2 → 3: shares and leases the crawler registers in bulk skip the totals'
/// per-row triggers (two upserts and five lookups a lease, a third of a
/// first cycle); it adds their totals itself, once per prefix
/// (`db::registration`). `bulk_registration` holds a row only inside that
/// registration's transaction, so every other insert is counted as before.
/// The trigger bodies are version 2's (a released migration is never edited).
pub(crate) const V3: &str = "
    CREATE TABLE bulk_registration (active INTEGER PRIMARY KEY CHECK (active = 1));
    DROP TRIGGER share_added;
    CREATE TRIGGER share_added AFTER INSERT ON shares
    WHEN NOT EXISTS (SELECT 1 FROM bulk_registration) BEGIN
        INSERT INTO share_totals (state, share_type, shares, bytes)
            VALUES (NEW.state, NEW.share_type, 1, NEW.used_space)
            ON CONFLICT (state, share_type) DO UPDATE
            SET shares = shares + 1, bytes = bytes + excluded.bytes;
    END;
    DROP TRIGGER lease_added;
    CREATE TRIGGER lease_added AFTER INSERT ON leases
    WHEN NOT EXISTS (SELECT 1 FROM bulk_registration) BEGIN
        INSERT INTO usage_totals (account, shares, bytes, sharesets)
            SELECT NEW.account, 1, s.used_space, NOT EXISTS (
                SELECT 1 FROM leases WHERE si = NEW.si AND account = NEW.account AND shnum != NEW.shnum)
            FROM shares s WHERE s.si = NEW.si AND s.shnum = NEW.shnum
            ON CONFLICT (account) DO UPDATE SET shares = shares + 1,
                bytes = bytes + excluded.bytes, sharesets = sharesets + excluded.sharesets;
        INSERT INTO usage_totals (account, shares, bytes, sharesets)
            SELECT -1, 1, s.used_space, NOT EXISTS (
                SELECT 1 FROM leases WHERE si = NEW.si AND shnum != NEW.shnum)
            FROM shares s WHERE s.si = NEW.si AND s.shnum = NEW.shnum AND NOT EXISTS (
                SELECT 1 FROM leases WHERE si = NEW.si AND shnum = NEW.shnum AND account != NEW.account)
            ON CONFLICT (account) DO UPDATE SET shares = shares + 1,
                bytes = bytes + excluded.bytes, sharesets = sharesets + excluded.sharesets;
    END;
    ";

/// Fixture 3 → 4: a harmless table (the "next release" of the hot-swap tests).
#[cfg(feature = "fixture-schema-v2")]
const FIXTURE_NEXT: &str = "
    CREATE TABLE swap_fixture (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
    INSERT INTO swap_fixture (note) VALUES ('schema 4');
    ";

/// Fixture 3 → 4 that fails after changing something, so only the
/// transaction keeps the database at version 3.
#[cfg(all(feature = "fixture-bad-migration", not(feature = "fixture-schema-v2")))]
const FIXTURE_BAD_NEXT: &str = "
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

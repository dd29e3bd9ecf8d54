//! Queries on the leases and accounts tables.

use super::multi_row::MultiRowInsert;
use super::sqlite::{Connection, DbResult, ToSql, Value};
use crate::account::Account;
use crate::ids::{Prefix, ShareNum, StorageIndex, Timestamp};

/// One lease, with its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The leased share.
    pub shnum: ShareNum,
    /// Account id.
    pub account_id: i64,
    /// Account name (empty for anonymous and starter).
    pub account_name: String,
    /// Last add or renewal.
    pub renewed: Timestamp,
    /// When it lapses; None never.
    pub expires: Option<Timestamp>,
}

/// The id of `account`, creating a named account on first use.
pub fn account_id(conn: &Connection, account: &Account, now: Timestamp) -> DbResult<i64> {
    match known_account_id(conn, account)? {
        Ok(id) => Ok(id),
        Err(name) => {
            conn.execute(
                "INSERT INTO accounts (name, created) VALUES (?1, ?2)",
                &[&name, &now],
            )?;
            Ok(conn.last_insert_rowid())
        }
    }
}

/// The id of `account`, or, for a named account that has none yet (it gets
/// one on first use), its name.
pub fn known_account_id<'a>(
    conn: &Connection,
    account: &'a Account,
) -> DbResult<Result<i64, &'a str>> {
    match account {
        Account::Anonymous => Ok(Ok(Account::ANONYMOUS_ID)),
        Account::Starter => Ok(Ok(Account::STARTER_ID)),
        Account::Named(name) => Ok(conn
            .query_row("SELECT id FROM accounts WHERE name = ?1", &[name], |r| {
                r.get(0)
            })?
            .ok_or(name.as_str())),
    }
}

/// Adds the account's lease on one share, or renews it: one per (share, account).
pub fn add_or_renew(
    conn: &Connection,
    si: &StorageIndex,
    shnum: ShareNum,
    account_id: i64,
    now: Timestamp,
    expires: Option<Timestamp>,
) -> DbResult<()> {
    let params: [&dyn ToSql; 5] = [&&si.0[..], &shnum.0, &account_id, &now, &expires];
    // Most calls renew a lease there is. As an UPDATE of one row by its key
    // that fires no trigger and checks no foreign key, SQLite runs it without
    // a statement journal; the upsert, with its trigger and foreign keys,
    // first copied every page it changed into one (~9% of a renewal in the
    // component).
    let renewed = conn.execute(
        "UPDATE leases SET renewed = ?4, expires = ?5 WHERE si = ?1 AND shnum = ?2 AND account = ?3",
        &params,
    )?;
    if renewed == 0 {
        conn.execute(
            "INSERT INTO leases (si, shnum, account, renewed, expires) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (si, shnum, account) DO UPDATE SET renewed = excluded.renewed, expires = excluded.expires",
            &params,
        )?;
    }
    Ok(())
}

/// One lease to add or renew with [`add_or_renew_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLease {
    /// The leased share.
    pub si: StorageIndex,
    /// Its number.
    pub shnum: ShareNum,
    /// Account id.
    pub account_id: i64,
    /// Added or renewed at.
    pub renewed: Timestamp,
    /// When it lapses; None never.
    pub expires: Option<Timestamp>,
}

/// [`add_or_renew`] for many leases, several per statement (see
/// [`super::multi_row`]).
pub fn add_or_renew_all(conn: &Connection, leases: &[NewLease]) -> DbResult<()> {
    static ADD_OR_RENEW: MultiRowInsert = MultiRowInsert::new(
        "INSERT INTO leases (si, shnum, account, renewed, expires)",
        5,
        "ON CONFLICT (si, shnum, account) DO UPDATE SET renewed = excluded.renewed, expires = excluded.expires",
    );
    ADD_OR_RENEW.execute(conn, leases, |l| {
        vec![
            Value::Blob(l.si.0.to_vec()),
            l.shnum.0.to_value(),
            Value::Integer(l.account_id),
            Value::Integer(l.renewed),
            l.expires.to_value(),
        ]
    })
}

/// Every lease on the shares of `si`.
pub fn for_storage_index(conn: &Connection, si: &StorageIndex) -> DbResult<Vec<LeaseRow>> {
    conn.query_map(
        "SELECT l.shnum, l.account, COALESCE(a.name, ''), l.renewed, l.expires
         FROM leases l JOIN accounts a ON a.id = l.account WHERE l.si = ?1 ORDER BY l.shnum, l.account",
        &[&&si.0[..]],
        |r| {
            Ok(LeaseRow {
                shnum: ShareNum(r.get(0)?),
                account_id: r.get(1)?,
                account_name: r.get(2)?,
                renewed: r.get(3)?,
                expires: r.get(4)?,
            })
        },
    )
}

/// Every (storage index, account) of the leases on storage indexes from
/// `first` to `last`, both included.
pub fn accounts_between(
    conn: &Connection,
    first: &StorageIndex,
    last: &StorageIndex,
) -> DbResult<Vec<(StorageIndex, i64)>> {
    conn.query_map(
        "SELECT si, account FROM leases WHERE si BETWEEN ?1 AND ?2",
        &[&&first.0[..], &&last.0[..]],
        |r| Ok((StorageIndex(r.get(0)?), r.get(1)?)),
    )
}

/// How many leases one share has.
pub fn count_for_share(conn: &Connection, si: &StorageIndex, shnum: ShareNum) -> DbResult<u64> {
    Ok(conn
        .query_row(
            "SELECT count(*) FROM leases WHERE si = ?1 AND shnum = ?2",
            &[&&si.0[..], &shnum.0],
            |r| r.get(0),
        )?
        .unwrap_or(0))
}

/// Removes leases whose expiry is before `now`; returns how many.
pub fn delete_expired(conn: &Connection, now: Timestamp) -> DbResult<u64> {
    Ok(conn.execute(
        "DELETE FROM leases WHERE expires IS NOT NULL AND expires < ?1",
        &[&now],
    )? as u64)
}

/// Removes leases last renewed before `cutoff`; returns how many.
pub fn delete_renewed_before(conn: &Connection, cutoff: Timestamp) -> DbResult<u64> {
    Ok(conn.execute("DELETE FROM leases WHERE renewed < ?1", &[&cutoff])? as u64)
}

/// (si, shnum, renewed) of every lease on a STABLE share of one prefix.
pub fn on_stable_shares_of_prefix(
    conn: &Connection,
    prefix: Prefix,
) -> DbResult<Vec<(StorageIndex, ShareNum, Timestamp)>> {
    let (first, last) = prefix.storage_indexes();
    conn.query_map(
        "SELECT l.si, l.shnum, l.renewed FROM leases l JOIN shares s ON s.si = l.si AND s.shnum = l.shnum
         WHERE l.si BETWEEN ?1 AND ?2 AND s.state = 1",
        &[&&first.0[..], &&last.0[..]],
        |r| Ok((StorageIndex(r.get(0)?), ShareNum(r.get(1)?), r.get(2)?)),
    )
}

//! Aggregate queries for the operator (SPEC §9): shares by state and type,
//! leased usage overall and per account.

use std::collections::BTreeMap;

use super::leases;
use super::sqlite::{Connection, DbResult, Row};
use crate::account::Account;
use crate::share::{ShareState, ShareType};

/// Count and bytes of the shares in one (state, type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareCount {
    /// The state.
    pub state: ShareState,
    /// The type.
    pub share_type: ShareType,
    /// How many shares.
    pub shares: u64,
    /// Their used space.
    pub bytes: u64,
}

/// Leased shares and bytes: each share counted once, however many leases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Leased shares.
    pub shares: u64,
    /// Their used space.
    pub bytes: u64,
    /// Distinct storage indexes among them.
    pub sharesets: u64,
}

/// One account and its usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUsage {
    /// Account id.
    pub account_id: i64,
    /// Its name (empty for anonymous and starter).
    pub name: String,
    /// What it leases.
    pub usage: Usage,
}

// The aggregates below read the whole table (SPEC §9's status page and
// every metrics scrape ask for them), so none of them may build a temporary
// b-tree: one holds a row per share in memory (temp_store is memory), and
// inside wasm that memory is never given back. GROUP BY runs only in index
// order, COUNT(DISTINCT) becomes a GROUP BY on the primary key, and what
// groups rows out of index order is folded here, a row at a time.

/// Every share's state, type and size, in primary-key order.
const SHARE_ROWS: &str = "SELECT state, share_type, used_space FROM shares";

/// Non-empty (state, type) groups.
pub fn share_counts(conn: &Connection) -> DbResult<Vec<ShareCount>> {
    let mut groups: BTreeMap<(i64, i64), (u64, u64)> = BTreeMap::new();
    conn.query_map(SHARE_ROWS, &[], |r| {
        let group = groups.entry((r.get(0)?, r.get(1)?)).or_default();
        group.0 += 1;
        group.1 += r.get::<u64>(2)?;
        Ok(())
    })?;
    Ok(groups
        .into_iter()
        .map(|((state, share_type), (shares, bytes))| ShareCount {
            state: ShareState::from_code(state),
            share_type: ShareType::from_code(share_type),
            shares,
            bytes,
        })
        .collect())
}

fn usage_row(r: &Row) -> DbResult<Usage> {
    Ok(Usage {
        shares: r.get(0)?,
        bytes: r.get(1)?,
        sharesets: r.get(2)?,
    })
}

/// Leased shares, their bytes and their storage indexes: one row per
/// storage index holding a leased share, grouped in primary-key order.
const USAGE_OF_ALL: &str =
    "SELECT COALESCE(sum(shares), 0), COALESCE(sum(bytes), 0), count(*) FROM (
        SELECT count(*) AS shares, sum(s.used_space) AS bytes FROM shares s
        WHERE EXISTS (SELECT 1 FROM leases l WHERE l.si = s.si AND l.shnum = s.shnum)
        GROUP BY s.si)";

/// The same for one account, grouped in `leases_by_account` order.
const USAGE_OF_ACCOUNT: &str =
    "SELECT COALESCE(sum(shares), 0), COALESCE(sum(bytes), 0), count(*) FROM (
        SELECT count(*) AS shares, sum(s.used_space) AS bytes
        FROM leases l JOIN shares s ON l.si = s.si AND l.shnum = s.shnum
        WHERE l.account = ?1 GROUP BY l.si)";

/// (account, leased shares, bytes) per storage index, in `leases_by_account` order.
const USAGE_BY_ACCOUNT_AND_SI: &str = "SELECT l.account, count(*), sum(s.used_space)
        FROM leases l JOIN shares s ON l.si = s.si AND l.shnum = s.shnum
        GROUP BY l.account, l.si";

/// What `account` leases; with None, what any account leases.
pub fn usage(conn: &Connection, account: Option<&Account>) -> DbResult<Usage> {
    let usage = match account {
        None => conn.query_row(USAGE_OF_ALL, &[], usage_row)?,
        Some(account) => {
            let id = match account {
                Account::Named(name) => {
                    match conn.query_row(
                        "SELECT id FROM accounts WHERE name = ?1",
                        &[name],
                        |r| r.get::<i64>(0),
                    )? {
                        Some(id) => id,
                        None => return Ok(Usage::default()),
                    }
                }
                other => leases::account_id(conn, other, 0)?,
            };
            conn.query_row(USAGE_OF_ACCOUNT, &[&id], usage_row)?
        }
    };
    Ok(usage.unwrap_or_default())
}

/// Usage of every account that holds a lease.
pub fn by_account(conn: &Connection) -> DbResult<Vec<AccountUsage>> {
    let mut usage: BTreeMap<i64, Usage> = BTreeMap::new();
    conn.query_map(USAGE_BY_ACCOUNT_AND_SI, &[], |r| {
        let u = usage.entry(r.get(0)?).or_default();
        u.shares += r.get::<u64>(1)?;
        u.bytes += r.get::<u64>(2)?;
        u.sharesets += 1;
        Ok(())
    })?;
    usage
        .into_iter()
        .map(|(account_id, usage)| {
            let name = conn
                .query_row(
                    "SELECT COALESCE(name, '') FROM accounts WHERE id = ?1",
                    &[&account_id],
                    |r| r.get(0),
                )?
                .unwrap_or_default();
            Ok(AccountUsage {
                account_id,
                name,
                usage,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema;
    use crate::db::sqlite::ToSql;

    /// Whole-table aggregates must not build a temporary b-tree: it would
    /// hold a row per share in memory that wasm never gives back.
    #[test]
    fn aggregates_read_in_index_order_without_temporary_btrees() {
        // std's temp_dir panics on WASI; a wasm test runner preopens /tmp.
        #[cfg(target_arch = "wasm32")]
        let _ = tempfile::env::override_temp_dir(std::path::Path::new("/tmp"));
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("u.sqlite3").to_str().unwrap()).unwrap();
        schema::migrate(&conn).unwrap();
        let account: &[&dyn ToSql] = &[&2i64];
        for (sql, params) in [
            (SHARE_ROWS, &[][..]),
            (USAGE_OF_ALL, &[]),
            (USAGE_OF_ACCOUNT, account),
            (USAGE_BY_ACCOUNT_AND_SI, &[]),
        ] {
            // Statements are cached by their 'static text.
            let explain: &'static str = Box::leak(format!("EXPLAIN QUERY PLAN {sql}").into());
            let plan: Vec<String> = conn.query_map(explain, params, |r| r.get(3)).unwrap();
            assert!(
                !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                "{sql}\nplans {plan:?}"
            );
        }
    }
}

//! Aggregate queries for the operator (SPEC §9): shares by state and type,
//! leased usage overall and per account.

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

/// Non-empty (state, type) groups.
pub fn share_counts(conn: &Connection) -> DbResult<Vec<ShareCount>> {
    conn.query_map(
        "SELECT state, share_type, count(*), COALESCE(sum(used_space), 0) FROM shares GROUP BY state, share_type ORDER BY state, share_type",
        &[],
        |r| {
            Ok(ShareCount {
                state: ShareState::from_code(r.get(0)?),
                share_type: ShareType::from_code(r.get(1)?),
                shares: r.get(2)?,
                bytes: r.get(3)?,
            })
        },
    )
}

fn usage_row(r: &Row) -> DbResult<Usage> {
    Ok(Usage {
        shares: r.get(0)?,
        bytes: r.get(1)?,
        sharesets: r.get(2)?,
    })
}

/// What `account` leases; with None, what any account leases.
pub fn usage(conn: &Connection, account: Option<&Account>) -> DbResult<Usage> {
    let usage = match account {
        None => conn.query_row(
            "SELECT count(*), COALESCE(sum(s.used_space), 0), count(DISTINCT s.si) FROM shares s
             WHERE EXISTS (SELECT 1 FROM leases l WHERE l.si = s.si AND l.shnum = s.shnum)",
            &[],
            usage_row,
        )?,
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
            conn.query_row(
                "SELECT count(*), COALESCE(sum(s.used_space), 0), count(DISTINCT s.si) FROM shares s
                 JOIN leases l ON l.si = s.si AND l.shnum = s.shnum WHERE l.account = ?1",
                &[&id],
                usage_row,
            )?
        }
    };
    Ok(usage.unwrap_or_default())
}

/// Usage of every account that holds a lease.
pub fn by_account(conn: &Connection) -> DbResult<Vec<AccountUsage>> {
    conn.query_map(
        "SELECT a.id, COALESCE(a.name, ''), count(*), COALESCE(sum(s.used_space), 0), count(DISTINCT s.si)
         FROM leases l JOIN shares s ON l.si = s.si AND l.shnum = s.shnum JOIN accounts a ON a.id = l.account
         GROUP BY a.id ORDER BY a.id",
        &[],
        |r| {
            Ok(AccountUsage {
                account_id: r.get(0)?,
                name: r.get(1)?,
                usage: Usage { shares: r.get(2)?, bytes: r.get(3)?, sharesets: r.get(4)? },
            })
        },
    )
}

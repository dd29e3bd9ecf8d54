//! Shares found in the backend and their leases, inserted in bulk (the
//! crawler's registration). The schema's per-row triggers skip them (schema
//! version 3): their totals are added here once, by the same rules.

use std::collections::{BTreeMap, BTreeSet};

use super::leases::{self, NewLease};
use super::shares;
use super::sqlite::{Connection, DbError, DbResult};
use super::usage::ANY_ACCOUNT;
use crate::ids::{ShareNum, StorageIndex};
use crate::share::ShareRow;

/// What one `usage_totals` row gains.
#[derive(Default)]
struct Gain {
    shares: u64,
    bytes: u64,
    sharesets: u64,
}

/// Inserts `rows`, shares the database does not have, and `leases` on
/// them, and adds both to the totals. Its own savepoint: the switch that
/// turns the triggers off is never committed, whatever fails.
pub fn insert_found(conn: &Connection, rows: &[ShareRow], leases: &[NewLease]) -> DbResult<()> {
    if rows.is_empty() && leases.is_empty() {
        return Ok(());
    }
    conn.execute("SAVEPOINT registration", &[])?;
    let inserted = insert_counted(conn, rows, leases);
    if inserted.is_err() {
        let _ = conn.execute("ROLLBACK TO registration", &[]);
    }
    conn.execute("RELEASE registration", &[])?;
    inserted
}

fn insert_counted(conn: &Connection, rows: &[ShareRow], new: &[NewLease]) -> DbResult<()> {
    let found: BTreeMap<(StorageIndex, ShareNum), &ShareRow> =
        rows.iter().map(|r| ((r.si, r.shnum), r)).collect();
    // Accounts that leased each storage index before: a lease on one its
    // account (or, for the any-account row, anyone) leases already adds no
    // shareset. One range read: the crawler registers one prefix at a time,
    // and in a first cycle the range holds no lease yet.
    let mut leased_before: BTreeMap<StorageIndex, Vec<i64>> =
        rows.iter().map(|r| (r.si, Vec::new())).collect();
    if let (Some(first), Some(last)) = (leased_before.keys().next(), leased_before.keys().last()) {
        for (si, account) in leases::accounts_between(conn, first, last)? {
            if let Some(accounts) = leased_before.get_mut(&si) {
                accounts.push(account);
            }
        }
    }

    let mut by_state: BTreeMap<(i64, i64), (u64, u64)> = BTreeMap::new();
    for r in rows {
        let total = by_state
            .entry((r.state.code(), r.share_type.code()))
            .or_default();
        total.0 += 1;
        total.1 += r.used_space;
    }
    let mut gains: BTreeMap<i64, Gain> = BTreeMap::new();
    let mut counted = BTreeSet::new();
    let mut account_sets = BTreeSet::new();
    let mut leased_shares = BTreeSet::new();
    for l in new {
        let row = found.get(&(l.si, l.shnum)).ok_or_else(|| {
            DbError::misuse(format!(
                "a lease on {}/{} without its share among those found",
                l.si, l.shnum
            ))
        })?;
        // A second lease of the same account renews the first (ON CONFLICT).
        if !counted.insert((l.si, l.shnum, l.account_id)) {
            continue;
        }
        let gain = gains.entry(l.account_id).or_default();
        gain.shares += 1;
        gain.bytes += row.used_space;
        if account_sets.insert((l.account_id, l.si))
            && !leased_before[&l.si].contains(&l.account_id)
        {
            gain.sharesets += 1;
        }
        if leased_shares.insert((l.si, l.shnum)) {
            let any = gains.entry(ANY_ACCOUNT).or_default();
            any.shares += 1;
            any.bytes += row.used_space;
        }
    }
    let new_sets = leased_shares
        .iter()
        .map(|(si, _)| si)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|si| leased_before[*si].is_empty())
        .count();
    if let Some(any) = gains.get_mut(&ANY_ACCOUNT) {
        any.sharesets = new_sets as u64;
    }

    conn.execute("INSERT INTO bulk_registration (active) VALUES (1)", &[])?;
    shares::insert_all(conn, rows)?;
    leases::add_or_renew_all(conn, new)?;
    conn.execute("DELETE FROM bulk_registration", &[])?;

    for ((state, share_type), (count, bytes)) in by_state {
        conn.execute(
            "INSERT INTO share_totals (state, share_type, shares, bytes) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (state, share_type) DO UPDATE
             SET shares = shares + excluded.shares, bytes = bytes + excluded.bytes",
            &[&state, &share_type, &count, &bytes],
        )?;
    }
    for (account, gain) in gains {
        conn.execute(
            "INSERT INTO usage_totals (account, shares, bytes, sharesets) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account) DO UPDATE SET shares = shares + excluded.shares,
                 bytes = bytes + excluded.bytes, sharesets = sharesets + excluded.sharesets",
            &[&account, &gain.shares, &gain.bytes, &gain.sharesets],
        )?;
    }
    Ok(())
}

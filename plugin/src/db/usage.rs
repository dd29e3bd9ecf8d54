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

// The totals are kept by triggers (schema version 2), and for the crawler's
// bulk registrations by `registration` (3), in the same transactions as the
// rows they count: reading them costs a row per group, never a scan of the
// shares or leases.

/// Non-empty (state, type) groups.
pub fn share_counts(conn: &Connection) -> DbResult<Vec<ShareCount>> {
    conn.query_map(
        "SELECT state, share_type, shares, bytes FROM share_totals WHERE shares > 0",
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

/// The totals row of shares leased by any account.
pub(crate) const ANY_ACCOUNT: i64 = -1;

/// What `account` leases; with None, what any account leases.
pub fn usage(conn: &Connection, account: Option<&Account>) -> DbResult<Usage> {
    let id = match account {
        None => ANY_ACCOUNT,
        Some(Account::Named(name)) => {
            match conn.query_row("SELECT id FROM accounts WHERE name = ?1", &[name], |r| {
                r.get::<i64>(0)
            })? {
                Some(id) => id,
                None => return Ok(Usage::default()),
            }
        }
        Some(other) => leases::account_id(conn, other, 0)?,
    };
    Ok(conn
        .query_row(
            "SELECT shares, bytes, sharesets FROM usage_totals WHERE account = ?1",
            &[&id],
            usage_row,
        )?
        .unwrap_or_default())
}

/// Usage of every account that holds a lease.
pub fn by_account(conn: &Connection) -> DbResult<Vec<AccountUsage>> {
    conn.query_map(
        "SELECT u.account, COALESCE(a.name, ''), u.shares, u.bytes, u.sharesets
         FROM usage_totals u JOIN accounts a ON a.id = u.account
         WHERE u.account >= 0 AND u.shares > 0 ORDER BY u.account",
        &[],
        |r| {
            Ok(AccountUsage {
                account_id: r.get(0)?,
                name: r.get(1)?,
                usage: Usage {
                    shares: r.get(2)?,
                    bytes: r.get(3)?,
                    sharesets: r.get(4)?,
                },
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::db::leases::NewLease;
    use crate::db::sqlite::ToSql;
    use crate::db::{registration, schema, shares};
    use crate::ids::{ShareNum, StorageIndex};
    use crate::share::ShareRow;

    /// The totals as whole-table scans compute them: the oracle.
    fn counted(conn: &Connection) -> (Vec<ShareCount>, Vec<(i64, Usage)>) {
        let mut groups: BTreeMap<(i64, i64), (u64, u64)> = BTreeMap::new();
        conn.query_map(
            "SELECT state, share_type, used_space FROM shares",
            &[],
            |r| {
                let g = groups.entry((r.get(0)?, r.get(1)?)).or_default();
                g.0 += 1;
                g.1 += r.get::<u64>(2)?;
                Ok(())
            },
        )
        .unwrap();
        let counts = groups
            .into_iter()
            .map(|((state, t), (shares, bytes))| ShareCount {
                state: ShareState::from_code(state),
                share_type: ShareType::from_code(t),
                shares,
                bytes,
            })
            .collect();
        let mut usage: BTreeMap<i64, Usage> = BTreeMap::new();
        conn.query_map(
            "SELECT l.account, s.used_space FROM leases l
             JOIN shares s ON l.si = s.si AND l.shnum = s.shnum",
            &[],
            |r| {
                let u = usage.entry(r.get(0)?).or_default();
                u.shares += 1;
                u.bytes += r.get::<u64>(1)?;
                Ok(())
            },
        )
        .unwrap();
        // Sharesets: distinct storage indexes per account, and over all accounts.
        let pairs: Vec<(i64, Vec<u8>)> = conn
            .query_map("SELECT DISTINCT account, si FROM leases", &[], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        for (account, _) in &pairs {
            usage.get_mut(account).unwrap().sharesets += 1;
        }
        let any: Usage = conn
            .query_row(
                "SELECT count(*), COALESCE(sum(used_space), 0),
                        (SELECT count(DISTINCT si) FROM leases) FROM shares s
                 WHERE EXISTS (SELECT 1 FROM leases l WHERE l.si = s.si AND l.shnum = s.shnum)",
                &[],
                usage_row,
            )
            .unwrap()
            .unwrap();
        let mut all: Vec<(i64, Usage)> = usage.into_iter().collect();
        all.insert(0, (ANY_ACCOUNT, any));
        (counts, all)
    }

    /// The totals as the status page reads them.
    fn kept(conn: &Connection) -> (Vec<ShareCount>, Vec<(i64, Usage)>) {
        let mut all = vec![(ANY_ACCOUNT, usage(conn, None).unwrap())];
        all.extend(
            by_account(conn)
                .unwrap()
                .into_iter()
                .map(|a| (a.account_id, a.usage)),
        );
        (share_counts(conn).unwrap(), all)
    }

    fn open(dir: &tempfile::TempDir) -> Connection {
        Connection::open(dir.path().join("u.sqlite3").to_str().unwrap()).unwrap()
    }

    fn temp_dir() -> tempfile::TempDir {
        // std's temp_dir panics on WASI; a wasm test runner preopens /tmp.
        #[cfg(target_arch = "wasm32")]
        let _ = tempfile::env::override_temp_dir(std::path::Path::new("/tmp"));
        tempfile::tempdir().unwrap()
    }

    fn share(rng: &mut fastrand::Rng) -> (StorageIndex, ShareNum) {
        // Few storage indexes and share numbers, so leases and shares collide.
        (StorageIndex([rng.u8(0..4); 16]), ShareNum(rng.u8(0..3)))
    }

    fn row(
        si: StorageIndex,
        shnum: ShareNum,
        used_space: u64,
        share_type: ShareType,
        state: ShareState,
    ) -> ShareRow {
        ShareRow {
            si,
            shnum,
            used_space,
            data_length: 0,
            chunk_size: 1,
            share_type,
            state,
        }
    }

    /// One random change of the kinds the engine makes: shares added,
    /// finished, moved between states and deleted (with their leases);
    /// leases added, renewed and expired; with `registrations` (schema 3 on),
    /// shares the crawler found registered with their leases.
    fn change(conn: &Connection, rng: &mut fastrand::Rng, registrations: bool) {
        let (si, shnum) = share(rng);
        let account = rng.i64(0..4);
        let exists = shares::get(conn, &si, shnum).unwrap().is_some();
        // Every change must succeed: a trigger failing would fail the engine's statement.
        match rng.u8(0..if registrations { 12 } else { 10 }) {
            0 | 1 if exists => Ok(()),
            0 | 1 => {
                let share_type = [ShareType::Immutable, ShareType::Mutable][rng.usize(0..2)];
                let state = [ShareState::Coming, ShareState::Stable][rng.usize(0..2)];
                shares::insert(conn, &row(si, shnum, rng.u64(0..1000), share_type, state))
            }
            2 => {
                let finished = row(
                    si,
                    shnum,
                    rng.u64(0..1000),
                    ShareType::Mutable,
                    ShareState::Stable,
                );
                shares::finish(conn, &finished).map(|_| ())
            }
            3 => shares::transition(conn, &si, shnum, ShareState::Stable, ShareState::Going)
                .map(|_| ()),
            4 => shares::delete(conn, &si, shnum),
            5..=8 if !exists => Ok(()),
            5..=8 => leases::add_or_renew(conn, &si, shnum, account, 0, Some(rng.i64(0..200))),
            9 => leases::delete_expired(conn, rng.i64(0..50)).map(|_| ()),
            _ => register_found(conn, rng, si),
        }
        .unwrap();
    }

    /// What a crawler registers: share numbers of `si` and of another
    /// storage index that the database lacks, with none, one or two leases
    /// each (storage indexes between the two may hold leases of their own).
    fn register_found(
        conn: &Connection,
        rng: &mut fastrand::Rng,
        si: StorageIndex,
    ) -> DbResult<()> {
        let mut rows = Vec::new();
        let mut found = Vec::new();
        let other = StorageIndex([rng.u8(0..4); 16]);
        for (si, n) in [si, other]
            .into_iter()
            .flat_map(|si| (0..3).map(move |n| (si, n)))
        {
            if rows
                .iter()
                .any(|r: &ShareRow| (r.si, r.shnum) == (si, ShareNum(n)))
            {
                continue;
            }
            let shnum = ShareNum(n);
            if rng.bool() || shares::get(conn, &si, shnum)?.is_some() {
                continue;
            }
            let share_type = [ShareType::Immutable, ShareType::Mutable][rng.usize(0..2)];
            rows.push(row(
                si,
                shnum,
                rng.u64(0..1000),
                share_type,
                ShareState::Stable,
            ));
            for _ in 0..rng.usize(0..3) {
                found.push(NewLease {
                    si,
                    shnum,
                    account_id: rng.i64(0..4),
                    renewed: 0,
                    expires: Some(rng.i64(0..200)),
                });
            }
        }
        registration::insert_found(conn, &rows, &found)
    }

    #[test]
    fn kept_totals_match_whole_table_counts_after_every_kind_of_change() {
        let dir = temp_dir();
        let conn = open(&dir);
        schema::migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (id, name, created) VALUES (2, 'alice', 0), (3, 'bob', 0)",
        )
        .unwrap();
        let mut rng = fastrand::Rng::with_seed(13);
        let mut leased_rounds = 0;
        for round in 0..300 {
            let tx = conn.transaction().unwrap();
            for _ in 0..rng.usize(1..6) {
                change(&tx, &mut rng, true);
            }
            // Some batches roll back: the totals must roll back with them.
            if round % 4 == 3 {
                drop(tx);
            } else {
                tx.commit().unwrap();
            }
            let totals = kept(&conn);
            assert_eq!(totals, counted(&conn), "after round {round}");
            leased_rounds += usize::from(totals.1.len() > 2);
        }
        assert!(
            leased_rounds > 100,
            "several accounts leased in only {leased_rounds} rounds"
        );
    }

    #[test]
    fn a_refused_registration_changes_nothing_and_later_inserts_are_counted() {
        let dir = temp_dir();
        let conn = open(&dir);
        schema::migrate(&conn).unwrap();
        let si = StorageIndex([1; 16]);
        let share = |n| {
            row(
                si,
                ShareNum(n),
                500,
                ShareType::Immutable,
                ShareState::Stable,
            )
        };
        let lease = |n| NewLease {
            si,
            shnum: ShareNum(n),
            account_id: 0,
            renewed: 0,
            expires: None,
        };
        // A lease on a share that is neither found nor known.
        let error = registration::insert_found(&conn, &[share(0)], &[lease(1)]).unwrap_err();
        assert!(error.message.contains("without its share"), "{error}");
        assert!(shares::get(&conn, &si, ShareNum(0)).unwrap().is_none());
        // A share the database has already: refused by its insert, in autocommit mode.
        shares::insert(&conn, &share(0)).unwrap();
        let error = registration::insert_found(&conn, &[share(1), share(0)], &[lease(1)]);
        assert!(error.is_err());
        assert!(shares::get(&conn, &si, ShareNum(1)).unwrap().is_none());
        // The triggers count what follows.
        shares::insert(&conn, &share(2)).unwrap();
        leases::add_or_renew(&conn, &si, ShareNum(2), 0, 0, None).unwrap();
        let totals = kept(&conn);
        assert_eq!(totals, counted(&conn));
        assert_eq!(totals.0[0].shares, 2, "{totals:?}");
    }

    #[test]
    fn a_registration_counts_the_sharesets_of_its_own_storage_indexes() {
        let dir = temp_dir();
        let conn = open(&dir);
        schema::migrate(&conn).unwrap();
        conn.execute_batch("INSERT INTO accounts (id, name, created) VALUES (2, 'alice', 0)")
            .unwrap();
        let share = |si: u8, n| {
            row(
                StorageIndex([si; 16]),
                ShareNum(n),
                100,
                ShareType::Immutable,
                ShareState::Stable,
            )
        };
        let lease = |si: u8, n| NewLease {
            si: StorageIndex([si; 16]),
            shnum: ShareNum(n),
            account_id: 2,
            renewed: 0,
            expires: None,
        };
        // Alice leases share 0 of storage index 1 and the storage index
        // between the two the crawler finds shares of.
        for si in [1, 2] {
            shares::insert(&conn, &share(si, 0)).unwrap();
            leases::add_or_renew(&conn, &StorageIndex([si; 16]), ShareNum(0), 2, 0, None).unwrap();
        }
        registration::insert_found(
            &conn,
            &[share(1, 1), share(3, 0)],
            &[lease(1, 1), lease(3, 0)],
        )
        .unwrap();
        let totals = kept(&conn);
        assert_eq!(totals, counted(&conn));
        let alice = &totals.1.iter().find(|(id, _)| *id == 2).unwrap().1;
        assert_eq!((alice.shares, alice.sharesets), (4, 3), "{alice:?}");
    }

    #[test]
    fn migrating_a_version_1_database_counts_what_it_holds() {
        let dir = temp_dir();
        let conn = open(&dir);
        schema::migrate_steps(&conn, &schema::migrations()[..1]).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (id, name, created) VALUES (2, 'alice', 0), (3, 'bob', 0)",
        )
        .unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..400 {
            change(&conn, &mut rng, false);
        }
        let before = counted(&conn);
        assert!(
            before.1.len() > 2,
            "several accounts lease something: {before:?}"
        );
        schema::migrate(&conn).unwrap();
        assert_eq!(kept(&conn), before);
    }

    /// Filling the totals reads the tables in index order: a temporary
    /// b-tree would hold a row per share in memory wasm never gives back.
    #[test]
    fn the_migration_fills_the_totals_without_temporary_btrees() {
        let dir = temp_dir();
        let conn = open(&dir);
        schema::migrate_steps(&conn, &schema::migrations()[..1]).unwrap();
        let statements: Vec<&str> = schema::V2.split(';').map(str::trim).collect();
        for table in statements.iter().filter(|s| s.starts_with("CREATE TABLE")) {
            conn.execute_batch(table).unwrap();
        }
        let fills: Vec<&&str> = statements
            .iter()
            .filter(|s| s.starts_with("-- fill"))
            .collect();
        assert_eq!(fills.len(), 3);
        for statement in fills {
            let explain: &'static str = Box::leak(format!("EXPLAIN QUERY PLAN {statement}").into());
            let params: &[&dyn ToSql] = &[];
            let plan: Vec<String> = conn.query_map(explain, params, |r| r.get(3)).unwrap();
            assert!(
                !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                "{statement}\nplans {plan:?}"
            );
        }
    }
}

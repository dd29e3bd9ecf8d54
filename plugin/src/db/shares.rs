//! Queries on the shares table.

use super::multi_row::MultiRowInsert;
use super::sqlite::{Connection, DbResult, Row, ToSql, Value};
use crate::ids::{Prefix, ShareNum, StorageIndex};
use crate::share::{ShareRow, ShareState, ShareType};

const COLUMNS: &str = "si, shnum, used_space, data_length, chunk_size, share_type, state";

fn from_row(r: &Row) -> DbResult<ShareRow> {
    let si: Vec<u8> = r.get(0)?;
    Ok(ShareRow {
        si: StorageIndex(si.try_into().unwrap_or([0; 16])),
        shnum: ShareNum(r.get(1)?),
        used_space: r.get(2)?,
        data_length: r.get(3)?,
        chunk_size: r.get(4)?,
        share_type: ShareType::from_code(r.get(5)?),
        state: ShareState::from_code(r.get(6)?),
    })
}

/// One share, if the database has it.
pub fn get(conn: &Connection, si: &StorageIndex, shnum: ShareNum) -> DbResult<Option<ShareRow>> {
    conn.query_row(
        "SELECT si, shnum, used_space, data_length, chunk_size, share_type, state FROM shares WHERE si = ?1 AND shnum = ?2",
        &[&&si.0[..], &shnum.0],
        from_row,
    )
}

/// Every share of one storage index, by share number.
pub fn for_storage_index(conn: &Connection, si: &StorageIndex) -> DbResult<Vec<ShareRow>> {
    conn.query_map(
        "SELECT si, shnum, used_space, data_length, chunk_size, share_type, state FROM shares WHERE si = ?1 ORDER BY shnum",
        &[&&si.0[..]],
        from_row,
    )
}

/// Shares after `after` in (si, shnum) order.
pub fn page(
    conn: &Connection,
    after: Option<(StorageIndex, ShareNum)>,
    limit: u32,
) -> DbResult<Vec<ShareRow>> {
    let _ = COLUMNS;
    match after {
        None => conn.query_map(
            "SELECT si, shnum, used_space, data_length, chunk_size, share_type, state FROM shares ORDER BY si, shnum LIMIT ?1",
            &[&limit],
            from_row,
        ),
        Some((si, shnum)) => conn.query_map(
            "SELECT si, shnum, used_space, data_length, chunk_size, share_type, state FROM shares
             WHERE (si, shnum) > (?1, ?2) ORDER BY si, shnum LIMIT ?3",
            &[&&si.0[..], &shnum.0, &limit],
            from_row,
        ),
    }
}

/// Every share of one prefix, by (si, shnum): a range of the primary key.
pub fn of_prefix(conn: &Connection, prefix: Prefix) -> DbResult<Vec<ShareRow>> {
    let (first, last) = prefix.storage_indexes();
    conn.query_map(OF_PREFIX, &[&&first.0[..], &&last.0[..]], from_row)
}

/// Whether the database has any share, in any state, whose SI starts with `prefix`.
pub fn any_of_prefix(conn: &Connection, prefix: Prefix) -> DbResult<bool> {
    let (first, last) = prefix.storage_indexes();
    Ok(conn
        .query_row(ANY_OF_PREFIX, &[&&first.0[..], &&last.0[..]], |_| Ok(()))?
        .is_some())
}

const ANY_OF_PREFIX: &str = "SELECT 1 FROM shares WHERE si BETWEEN ?1 AND ?2 LIMIT 1";

const OF_PREFIX: &str =
    "SELECT si, shnum, used_space, data_length, chunk_size, share_type, state FROM shares
    WHERE si BETWEEN ?1 AND ?2 ORDER BY si, shnum";

/// The COMING rows; `state = 0` exactly, so the partial index `shares_coming` serves it.
const COMING: &str = "SELECT si, shnum, used_space, data_length, chunk_size, share_type, state FROM shares WHERE state = 0";

/// Every COMING share.
pub fn coming(conn: &Connection) -> DbResult<Vec<ShareRow>> {
    conn.query_map(COMING, &[], from_row)
}

/// Adds a row.
pub fn insert(conn: &Connection, row: &ShareRow) -> DbResult<()> {
    conn.execute(
        "INSERT INTO shares (si, shnum, prefix, used_space, data_length, chunk_size, share_type, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            &&row.si.0[..],
            &row.shnum.0,
            &row.si.prefix().to_text(),
            &row.used_space,
            &row.data_length,
            &row.chunk_size,
            &row.share_type.code(),
            &row.state.code(),
        ],
    )?;
    Ok(())
}

/// Adds many rows, several per statement (see [`super::multi_row`]).
pub fn insert_all(conn: &Connection, rows: &[ShareRow]) -> DbResult<()> {
    static INSERT: MultiRowInsert = MultiRowInsert::new(
        "INSERT INTO shares (si, shnum, prefix, used_space, data_length, chunk_size, share_type, state)",
        8,
        "",
    );
    INSERT.execute(conn, rows, |r| {
        vec![
            Value::Blob(r.si.0.to_vec()),
            r.shnum.0.to_value(),
            Value::Text(r.si.prefix().to_text()),
            r.used_space.to_value(),
            r.data_length.to_value(),
            r.chunk_size.to_value(),
            Value::Integer(r.share_type.code()),
            Value::Integer(r.state.code()),
        ]
    })
}

/// COMING → STABLE with the finished container's size and type; false if
/// the row was not COMING.
pub fn finish(conn: &Connection, row: &ShareRow) -> DbResult<bool> {
    let n = conn.execute(
        "UPDATE shares SET used_space = ?3, data_length = ?4, chunk_size = ?5, share_type = ?6, state = 1
         WHERE si = ?1 AND shnum = ?2 AND state = 0",
        &[&&row.si.0[..], &row.shnum.0, &row.used_space, &row.data_length, &row.chunk_size, &row.share_type.code()],
    )?;
    Ok(n == 1)
}

/// Moves a row from one state to another; false if it was not in `from`.
pub fn transition(
    conn: &Connection,
    si: &StorageIndex,
    shnum: ShareNum,
    from: ShareState,
    to: ShareState,
) -> DbResult<bool> {
    let n = conn.execute(
        "UPDATE shares SET state = ?4 WHERE si = ?1 AND shnum = ?2 AND state = ?3",
        &[&&si.0[..], &shnum.0, &from.code(), &to.code()],
    )?;
    Ok(n == 1)
}

/// Removes a row and (by cascade) its leases.
pub fn delete(conn: &Connection, si: &StorageIndex, shnum: ShareNum) -> DbResult<()> {
    conn.execute(
        "DELETE FROM shares WHERE si = ?1 AND shnum = ?2",
        &[&&si.0[..], &shnum.0],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema;
    use crate::db::sqlite::ToSql;

    /// The query plan of `sql` on a fresh database of the current schema.
    fn plan(sql: &str, params: &[&dyn ToSql]) -> Vec<String> {
        // std's temp_dir panics on WASI; a wasm test runner preopens /tmp.
        #[cfg(target_arch = "wasm32")]
        let _ = tempfile::env::override_temp_dir(std::path::Path::new("/tmp"));
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("s.sqlite3").to_str().unwrap()).unwrap();
        schema::migrate(&conn).unwrap();
        // Statements are cached by their 'static text.
        let explain: &'static str = Box::leak(format!("EXPLAIN QUERY PLAN {sql}").into());
        conn.query_map(explain, params, |r| r.get(3)).unwrap()
    }

    /// Every start and every hot swap looks for unfinished uploads: that
    /// must read the few COMING rows, not every share.
    #[test]
    fn finding_unfinished_uploads_reads_only_them() {
        let plan = plan(COMING, &[]);
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX shares_coming")),
            "{plan:?}"
        );
    }

    /// The crawler reads each prefix as a range of the primary key, in order,
    /// with no index of prefixes and no sort.
    #[test]
    fn a_prefix_is_read_as_a_range_of_the_primary_key() {
        let (a, b) = ([0u8; 16], [1u8; 16]);
        assert_eq!(
            plan(OF_PREFIX, &[&&a[..], &&b[..]]),
            ["SEARCH shares USING PRIMARY KEY (si>? AND si<?)"]
        );
    }
}

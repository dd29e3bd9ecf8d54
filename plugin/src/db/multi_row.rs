//! One INSERT for many rows. Inside a transaction SQLite keeps a statement
//! journal for each statement that fires triggers or checks foreign keys,
//! copying every page the statement changes into it: a statement per row
//! copied the same few pages once per row.

use std::sync::OnceLock;

use super::sqlite::{Connection, DbResult, ToSql, Value};

/// Most rows one statement takes; more run as several statements.
const MAX_ROWS: usize = 64;

/// An INSERT whose VALUES list repeats a row of parameters. Its texts are
/// built once, for 1, 2, 4 … `MAX_ROWS` rows, so at most seven statements
/// per insert are prepared and cached, whatever the row counts.
pub struct MultiRowInsert {
    head: &'static str,
    columns: usize,
    tail: &'static str,
    texts: OnceLock<Vec<String>>,
}

impl MultiRowInsert {
    /// `head VALUES (?, …), … tail`, with `columns` parameters per row.
    pub const fn new(head: &'static str, columns: usize, tail: &'static str) -> Self {
        MultiRowInsert {
            head,
            columns,
            tail,
            texts: OnceLock::new(),
        }
    }

    /// The text for `rows` rows, a power of two up to `MAX_ROWS`.
    fn text(&'static self, rows: usize) -> &'static str {
        let texts = self.texts.get_or_init(|| {
            let row = format!("({})", vec!["?"; self.columns].join(", "));
            (0..=MAX_ROWS.trailing_zeros())
                .map(|k| {
                    let values = vec![row.as_str(); 1 << k].join(", ");
                    format!("{} VALUES {values} {}", self.head, self.tail)
                })
                .collect()
        });
        &texts[rows.trailing_zeros() as usize]
    }

    /// Inserts every item of `items`, whose values `row` gives (`columns`
    /// of them each), in as few statements as the cached texts allow.
    pub fn execute<T>(
        &'static self,
        conn: &Connection,
        items: &[T],
        row: impl Fn(&T) -> Vec<Value>,
    ) -> DbResult<()> {
        let mut rest = items;
        while !rest.is_empty() {
            let n = 1 << rest.len().min(MAX_ROWS).ilog2();
            let (now, later) = rest.split_at(n);
            let values: Vec<Value> = now.iter().flat_map(&row).collect();
            debug_assert_eq!(values.len(), n * self.columns);
            let params: Vec<&dyn ToSql> = values.iter().map(|v| v as &dyn ToSql).collect();
            conn.execute(self.text(n), &params)?;
            rest = later;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static INSERT: MultiRowInsert = MultiRowInsert::new("INSERT INTO t (a, b)", 2, "");

    /// Every row is inserted once, whatever the count: below, at and past
    /// the most one statement takes, and not a power of two.
    #[test]
    fn every_row_is_inserted_once_whatever_the_count() {
        #[cfg(target_arch = "wasm32")]
        let _ = tempfile::env::override_temp_dir(std::path::Path::new("/tmp"));
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("m.sqlite3").to_str().unwrap()).unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)")
            .unwrap();
        let mut next = 0i64;
        for count in [0usize, 1, 3, 64, 100, 200] {
            let rows: Vec<i64> = (next..next + count as i64).collect();
            next += count as i64;
            INSERT
                .execute(&conn, &rows, |&a| {
                    vec![Value::Integer(a), Value::Text(format!("row {a}"))]
                })
                .unwrap();
            let stored: Vec<(i64, String)> = conn
                .query_map("SELECT a, b FROM t ORDER BY a", &[], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            let expected: Vec<(i64, String)> = (0..next).map(|a| (a, format!("row {a}"))).collect();
            assert_eq!(stored, expected, "after inserting {count} rows");
        }
    }
}

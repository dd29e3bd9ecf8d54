//! Queries on the crawler_state and crawler_history tables. Reports are
//! stored as JSON text; the crawler owns their shape.

use super::sqlite::{Connection, DbResult};
use crate::ids::Timestamp;

/// The crawler's persisted position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrawlerState {
    /// The cycle in progress, as JSON.
    pub current: Option<String>,
    /// When the last cycle finished.
    pub last_finished: Option<Timestamp>,
    /// Cycles finished so far.
    pub cycles_done: u64,
}

/// The persisted position (empty before the first cycle).
pub fn load(conn: &Connection) -> DbResult<CrawlerState> {
    Ok(conn
        .query_row(
            "SELECT current, last_finished, cycles_done FROM crawler_state WHERE id = 0",
            &[],
            |r| {
                Ok(CrawlerState {
                    current: r.get(0)?,
                    last_finished: r.get(1)?,
                    cycles_done: r.get(2)?,
                })
            },
        )?
        .unwrap_or_default())
}

/// Records the cycle in progress.
pub fn save_current(conn: &Connection, report_json: &str) -> DbResult<()> {
    conn.execute(
        "UPDATE crawler_state SET current = ?1 WHERE id = 0",
        &[&report_json],
    )?;
    Ok(())
}

/// Moves a finished cycle into the history, keeping the newest `keep`, and
/// clears the cycle in progress.
pub fn finish_cycle(
    conn: &Connection,
    cycle: u64,
    report_json: &str,
    finished: Timestamp,
    keep: u32,
) -> DbResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO crawler_history (cycle, report) VALUES (?1, ?2)",
        &[&cycle, &report_json],
    )?;
    conn.execute(
        "DELETE FROM crawler_history WHERE cycle NOT IN (SELECT cycle FROM crawler_history ORDER BY cycle DESC LIMIT ?1)",
        &[&keep],
    )?;
    conn.execute(
        "UPDATE crawler_state SET current = NULL, last_finished = ?1, cycles_done = ?2 WHERE id = 0",
        &[&finished, &cycle],
    )?;
    Ok(())
}

/// Finished cycles' reports, newest first.
pub fn history(conn: &Connection) -> DbResult<Vec<String>> {
    conn.query_map(
        "SELECT report FROM crawler_history ORDER BY cycle DESC",
        &[],
        |r| r.get::<String>(0),
    )
}

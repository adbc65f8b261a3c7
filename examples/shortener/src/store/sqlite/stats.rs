//! The stats rows of a link: clicks added to them (referrers within their
//! cap) and the top names read back.

use super::errors::db_err;
use crate::clicks::{fit_stored_referrers, OTHER_HOST};
use crate::model::{NamedCount, TOP_N};
use crate::store::{from_sql_count, to_sql_count, StoreError};
use rusqlite::types::ToSql;
use rusqlite::{params, Connection};

/// Adds `n` to one stats row (see [`upsert_count`]).
pub(super) fn add_count(
    conn: &Connection,
    sql: &str,
    link_id: i64,
    key: &dyn ToSql,
    n: u64,
) -> Result<(), StoreError> {
    if n == 0 {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    stmt.execute(params![link_id, key, to_sql_count(n)])
        .map_err(db_err)?;
    Ok(())
}

/// `referrers` of link `id` as they fit in its stored rows (see
/// [`fit_stored_referrers`]); inside the write transaction, which SQLite
/// runs alone.
pub(super) fn fit_referrers(
    conn: &Connection,
    id: i64,
    referrers: &[(String, u64)],
) -> Result<Vec<(String, u64)>, StoreError> {
    let named_rows: i64 = conn
        .prepare_cached("SELECT count(*) FROM link_referrers WHERE link_id = ?1 AND host <> ?2")
        .and_then(|mut stmt| stmt.query_row(params![id, OTHER_HOST], |row| row.get(0)))
        .map_err(db_err)?;
    let mut has_row = conn
        .prepare_cached("SELECT 1 FROM link_referrers WHERE link_id = ?1 AND host = ?2")
        .map_err(db_err)?;
    fit_stored_referrers(
        referrers,
        usize::try_from(named_rows).unwrap_or(0),
        |host| has_row.exists(params![id, host]).map_err(db_err),
    )
}

/// The top [`TOP_N`] names of one stats table, most clicks first.
pub(super) fn top_names(
    conn: &Connection,
    sql: &str,
    link_id: i64,
) -> Result<Vec<NamedCount>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt
        .query_map(params![link_id, TOP_N as i64], |row| {
            Ok(NamedCount {
                name: row.get(0)?,
                clicks: from_sql_count(row.get(1)?),
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err)
}

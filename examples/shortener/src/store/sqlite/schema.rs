//! The schema: migrations applied in order, tracked by `PRAGMA user_version`.

use super::errors::db_err;
use crate::store::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// Schema migrations in order: entry `i` takes `PRAGMA user_version` from
/// `i` to `i + 1`. Append new ones; never edit one that has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_click_batches.sql"),
    include_str!("../migrations/0003_referrer_cap.sql"),
];

/// Applies the migrations past the file's `user_version`, all in one
/// transaction with the version bump, so a crash leaves the old schema.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(db_err)?;
    let applied = usize::try_from(version).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Failed(format!(
            "database schema version {version} is newer than this build ({})",
            MIGRATIONS.len()
        )));
    }
    if applied == MIGRATIONS.len() {
        return Ok(());
    }
    for sql in &MIGRATIONS[applied..] {
        tx.execute_batch(sql).map_err(db_err)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
        .map_err(db_err)?;
    tx.commit().map_err(db_err)
}

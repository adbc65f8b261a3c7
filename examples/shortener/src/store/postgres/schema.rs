//! The schema: migrations applied at start, one transaction under an
//! advisory lock, versions in `schema_migrations`.

use super::db_err;
use crate::store::StoreError;
use postgres::Client;
use std::time::Duration;

/// Schema migrations in order: entry `i` is version `i + 1` in
/// `schema_migrations`. Append new ones; never edit one that has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_click_batches.sql"),
    include_str!("../migrations/postgres/0003_referrer_cap.sql"),
];

/// `pg_advisory_xact_lock` key serializing migrations between instances
/// starting together ("shortmig" in ASCII).
const MIGRATION_LOCK: i64 = 0x7368_6f72_746d_6967;

/// Statement timeout while migrating: schema changes and waiting for
/// another instance's migration may take longer than a request should.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Applies the migrations past the highest version in `schema_migrations`,
/// all in one transaction with their version rows, under an advisory lock:
/// an instance starting while another migrates waits, then finds nothing
/// left to do.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(db_err)?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}",
        MIGRATION_TIMEOUT.as_millis()
    ))
    .map_err(db_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(db_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version BIGINT PRIMARY KEY, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .map_err(db_err)?;
    let version: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(db_err)?;
    let applied = usize::try_from(version).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Failed(format!(
            "database schema version {version} is newer than this build ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.batch_execute(sql).map_err(db_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)
}

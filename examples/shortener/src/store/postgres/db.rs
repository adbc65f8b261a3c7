//! Running statements: a pooled connection in a transaction, a snapshot or
//! neither ([`Db`]), its prepared statements, and reading a row's columns.

use super::errors::db_err;
use super::PostgresStore;
use crate::store::StoreError;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, IsolationLevel, Row, Statement, Transaction};
use std::collections::HashMap;

/// A connection (or transaction on one) and its prepared statements.
pub(super) struct Db<'a, C> {
    pub(super) client: &'a mut C,
    pub(super) statements: &'a mut HashMap<&'static str, Statement>,
}

impl<C: GenericClient> Db<'_, C> {
    /// `sql` prepared on this connection, once per connection.
    pub(super) fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(db_err)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params).map_err(db_err)
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params).map_err(db_err)
    }

    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params).map_err(db_err)
    }
}

impl PostgresStore {
    /// Runs `f` in a transaction on a pooled connection, committed when
    /// `f` returns `Ok` and rolled back otherwise.
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&mut Db<'_, Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = self.pool.get()?;
        let conn = lease.conn()?;
        let mut tx = conn.client.transaction().map_err(db_err)?;
        let out = f(&mut Db {
            client: &mut tx,
            statements: &mut conn.statements,
        })?;
        tx.commit().map_err(db_err)?;
        Ok(out)
    }

    /// Runs `f` on a pooled connection, outside a transaction (each
    /// statement is its own).
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&mut Db<'_, Client>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = self.pool.get()?;
        let conn = lease.conn()?;
        f(&mut Db {
            client: &mut conn.client,
            statements: &mut conn.statements,
        })
    }

    /// Runs `f` in a read-only snapshot (`REPEATABLE READ`): every
    /// statement in it sees the same committed state.
    pub(super) fn snapshot<T>(
        &self,
        f: impl FnOnce(&mut Db<'_, Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = self.pool.get()?;
        let conn = lease.conn()?;
        let mut tx = conn
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(db_err)?;
        let out = f(&mut Db {
            client: &mut tx,
            statements: &mut conn.statements,
        })?;
        tx.commit().map_err(db_err)?;
        Ok(out)
    }
}

pub(super) fn column<'a, T: postgres::types::FromSql<'a>>(
    row: &'a Row,
    i: usize,
) -> Result<T, StoreError> {
    row.try_get(i).map_err(db_err)
}

//! The connections: every one's settings, and the pool of read-only ones
//! that serves reads beside the writer.

use super::errors::db_err;
use super::SqliteStore;
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// How long a statement waits for a lock held by another process on the
/// same file (a second instance, a backup) before answering `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only connections opened at most; a read finding all of them busy
/// waits up to [`BUSY_TIMEOUT`] for one. Each costs a page cache, and the
/// blocking pool rarely has more than a few reads in flight.
pub(super) const MAX_READERS: usize = 8;

/// Prepared statements kept per connection: more than this store uses.
const STATEMENT_CACHE: usize = 32;

/// Idle read connections and how many exist in all (idle or lent out).
pub(super) struct ReaderPool {
    pub(super) idle: Vec<Connection>,
    pub(super) open: usize,
}

/// A read connection lent out; goes back to the pool when dropped, also
/// when the caller's callback panics.
pub(super) struct Lease<'a> {
    pub(super) store: &'a SqliteStore,
    pub(super) conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.store.readers.lock().idle.push(conn);
            self.store.reader_returned.notify_one();
        }
    }
}

impl SqliteStore {
    /// Runs `f` on a read-only connection from the pool.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = Lease {
            store: self,
            conn: Some(self.checkout()?),
        };
        match lease.conn.as_mut() {
            Some(conn) => f(conn),
            None => Err(StoreError::Failed(String::from("read connection lost"))),
        }
    }

    /// An idle read connection, a new one while under [`MAX_READERS`], or
    /// the next one returned.
    pub(super) fn checkout(&self) -> Result<Connection, StoreError> {
        let mut pool = self.readers.lock();
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
            if pool.open < MAX_READERS {
                pool.open += 1;
                drop(pool);
                // Opened outside the lock: it touches the file.
                return open_reader(&self.path).inspect_err(|_| self.readers.lock().open -= 1);
            }
            if self
                .reader_returned
                .wait_for(&mut pool, BUSY_TIMEOUT)
                .timed_out()
                && pool.idle.is_empty()
            {
                return Err(StoreError::Unavailable(String::from(
                    "every read connection is busy",
                )));
            }
        }
    }
}

/// Settings every connection needs.
pub(super) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    configure(&conn)?;
    Ok(conn)
}

//! The embedded store: one SQLite file in WAL mode, no server to run.
//!
//! One writer connection behind a mutex serializes writes (SQLite allows
//! one writer at a time anyway) while a small pool of read-only connections
//! serves reads from the last committed state, so a `GET` never queues
//! behind a write.

mod errors;
mod pool;
mod schema;

use super::{apply, create_in, from_sql_count, to_sql_count, Store, StoreError, MAX_BATCH};
use crate::model::{format_day, Created, DayCount, Link, LinkClicks, LinkPatch, LinkStats};
use crate::model::{NewLink, Page};
use errors::db_err;
use links::{link_by_slug, link_from_row, Steps};
use parking_lot::{Condvar, Mutex};
use pool::{configure, ReaderPool};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use rusqlite::{Transaction, TransactionBehavior};
use schema::migrate;
use stats::{add_count, fit_referrers, top_names};
use std::path::PathBuf;

/// Seconds a recorded click batch id is remembered: far longer than any
/// retry of it.
const BATCH_ID_RETENTION: i64 = 86_400;

/// The most links one [`Store::list`] page returns, whatever is asked.
const MAX_PAGE: usize = 1000;

/// `SELECT` of every [`Link`] column in the order [`link_from_row`] reads.
macro_rules! select_links {
    ($($rest:literal),+) => {
        concat!(
            "SELECT id, slug, url, created_at, expires_at, disabled, max_clicks, clicks, ",
            "password_hash FROM links ",
            $($rest),+
        )
    };
}

/// `count + excluded.count`, saturating at `i64::MAX`: SQLite would turn an
/// overflowing sum into a float that no longer reads back as a count.
macro_rules! upsert_count {
    ($table:literal, $key:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (link_id, ",
            $key,
            ", count) VALUES (?1, ?2, ?3) ",
            "ON CONFLICT DO UPDATE SET count = CASE ",
            "WHEN count > 9223372036854775807 - excluded.count THEN 9223372036854775807 ",
            "ELSE count + excluded.count END"
        )
    };
}

// After the macros above, so they see them.
mod links;
mod stats;

/// The embedded SQLite store. See the [module docs](self) for how it
/// shares the file between threads.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<ReaderPool>,
    reader_returned: Condvar,
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its directory
    /// when missing, and applies pending migrations in one transaction.
    ///
    /// The file is in WAL mode with `synchronous=NORMAL`: a commit is in the
    /// WAL, handed to the OS, before the call returns, so it survives a
    /// crash or `kill -9` of the process. A power loss or OS crash may lose
    /// the last commits (never corrupt the file); `synchronous=FULL` would
    /// close that gap at the price of an fsync per commit.
    ///
    /// # Errors
    ///
    /// [`StoreError::Failed`] when the directory or file cannot be created,
    /// the file is not a database, or it was written by a newer version;
    /// [`StoreError::Unavailable`] when another process holds it locked.
    pub fn open(path: &str) -> Result<SqliteStore, StoreError> {
        if path.is_empty() || path.starts_with(":memory:") {
            // Read connections would each see a different empty database.
            return Err(StoreError::Failed(String::from(
                "the SQLite store needs a file path",
            )));
        }
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = Connection::open_with_flags(&path, flags).map_err(db_err)?;
        configure(&writer)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Failed(format!(
                "cannot use WAL mode (got {mode})"
            )));
        }
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        writer
            .pragma_update(None, "foreign_keys", true)
            .map_err(db_err)?;
        migrate(&mut writer)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(ReaderPool {
                idle: Vec::new(),
                open: 0,
            }),
            reader_returned: Condvar::new(),
        })
    }

    /// Runs `f` in an immediate write transaction, committed when `f`
    /// returns `Ok` and rolled back otherwise.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let out = f(&tx)?;
        tx.commit().map_err(db_err)?;
        Ok(out)
    }
}

impl Store for SqliteStore {
    fn create(&self, new: &NewLink) -> Result<Created, StoreError> {
        self.write(|tx| create_in(&mut Steps(tx), new))
    }

    fn create_many(&self, new: &[NewLink]) -> Result<Vec<Result<Created, StoreError>>, StoreError> {
        if new.len() > MAX_BATCH {
            return Err(StoreError::Failed(format!(
                "more than {MAX_BATCH} links in one batch"
            )));
        }
        // Each insert is one statement that either happens or not (a taken
        // slug inserts nothing), so a per-item failure needs no savepoint.
        self.write(|tx| {
            new.iter()
                .map(|one| match create_in(&mut Steps(tx), one) {
                    Err(StoreError::SlugTaken) => Ok(Err(StoreError::SlugTaken)),
                    other => other.map(Ok),
                })
                .collect()
        })
    }

    fn get(&self, slug: &str) -> Result<Option<Link>, StoreError> {
        self.read(|conn| link_by_slug(conn, slug))
    }

    fn update(&self, slug: &str, patch: &LinkPatch) -> Result<Link, StoreError> {
        self.write(|tx| {
            let mut link = link_by_slug(tx, slug)?.ok_or(StoreError::NotFound)?;
            apply(patch, &mut link);
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE links SET url = ?2, expires_at = ?3, disabled = ?4, max_clicks = ?5, \
                     password_hash = ?6 WHERE id = ?1",
                )
                .map_err(db_err)?;
            let max_clicks = link.max_clicks.map(to_sql_count);
            stmt.execute(params![
                link.id,
                link.url,
                link.expires_at,
                link.disabled,
                max_clicks,
                link.password_hash
            ])
            .map_err(db_err)?;
            Ok(link)
        })
    }

    fn delete(&self, slug: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            // Stats rows go with it: ON DELETE CASCADE.
            let mut stmt = tx
                .prepare_cached("DELETE FROM links WHERE slug = ?1")
                .map_err(db_err)?;
            match stmt.execute([slug]).map_err(db_err)? {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
    }

    fn list(&self, limit: usize, before: Option<i64>) -> Result<Page, StoreError> {
        let limit = limit.min(MAX_PAGE);
        if limit == 0 {
            return Ok(Page {
                links: Vec::new(),
                next: None,
            });
        }
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(select_links!("WHERE id < ?1 ORDER BY id DESC LIMIT ?2"))
                .map_err(db_err)?;
            // One row more than asked tells whether another page exists.
            let rows = stmt
                .query_map(
                    params![before.unwrap_or(i64::MAX), limit as i64 + 1],
                    link_from_row,
                )
                .map_err(db_err)?;
            let links = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)?;
            Ok(Page::of(links, limit))
        })
    }

    fn stats(&self, slug: &str) -> Result<Option<LinkStats>, StoreError> {
        self.read(|conn| {
            // One read transaction: the total and the breakdowns agree.
            let tx = conn.transaction().map_err(db_err)?;
            let found = tx
                .prepare_cached("SELECT id, clicks FROM links WHERE slug = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row([slug], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                    })
                    .optional()
                })
                .map_err(db_err)?;
            let Some((id, clicks)) = found else {
                return Ok(None);
            };
            let days = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT day, count FROM link_days WHERE link_id = ?1 ORDER BY day",
                    )
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map([id], |row| {
                        Ok(DayCount {
                            day: format_day(row.get(0)?),
                            clicks: from_sql_count(row.get(1)?),
                        })
                    })
                    .map_err(db_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)?
            };
            let referrers = top_names(
                &tx,
                "SELECT host, count FROM link_referrers WHERE link_id = ?1 \
                 ORDER BY count DESC, host LIMIT ?2",
                id,
            )?;
            let agents = top_names(
                &tx,
                "SELECT family, count FROM link_agents WHERE link_id = ?1 \
                 ORDER BY count DESC, family LIMIT ?2",
                id,
            )?;
            Ok(Some(LinkStats {
                total: from_sql_count(clicks),
                days,
                referrers,
                agents,
            }))
        })
    }

    fn record_clicks(&self, batch_id: &str, batch: &[LinkClicks]) -> Result<(), StoreError> {
        self.write(|tx| {
            let now = crate::model::now();
            let first_time = tx
                .prepare_cached(
                    "INSERT INTO click_batches (id, recorded_at) VALUES (?1, ?2) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .and_then(|mut stmt| stmt.execute(params![batch_id, now]))
                .map_err(db_err)?;
            if first_time == 0 {
                return Ok(());
            }
            tx.prepare_cached("DELETE FROM click_batches WHERE recorded_at < ?1")
                .and_then(|mut stmt| stmt.execute(params![now - BATCH_ID_RETENTION]))
                .map_err(db_err)?;
            for clicks in batch {
                let updated = tx
                    .prepare_cached(
                        "UPDATE links SET clicks = CASE \
                         WHEN clicks > 9223372036854775807 - ?2 THEN 9223372036854775807 \
                         ELSE clicks + ?2 END WHERE id = ?1",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![clicks.link_id, to_sql_count(clicks.total)])
                    })
                    .map_err(db_err)?;
                if updated == 0 {
                    // Deleted since the clicks were counted: drop them (the
                    // stats rows would break the foreign key anyway).
                    continue;
                }
                let id = clicks.link_id;
                for (day, n) in &clicks.days {
                    add_count(tx, upsert_count!("link_days", "day"), id, day, *n)?;
                }
                for (host, n) in &fit_referrers(tx, id, &clicks.referrers)? {
                    add_count(tx, upsert_count!("link_referrers", "host"), id, host, *n)?;
                }
                for (family, n) in &clicks.agents {
                    add_count(tx, upsert_count!("link_agents", "family"), id, family, *n)?;
                }
            }
            Ok(())
        })
    }

    fn for_each(
        &self,
        each: &mut dyn FnMut(&Link) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.read(|conn| {
            // Rows stream from one statement: one snapshot, one link in
            // memory at a time.
            let mut stmt = conn
                .prepare_cached(select_links!("ORDER BY id"))
                .map_err(db_err)?;
            let mut rows = stmt.query([]).map_err(db_err)?;
            while let Some(row) = rows.next().map_err(db_err)? {
                each(&link_from_row(row).map_err(db_err)?)?;
            }
            Ok(())
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        // Reads a page of the file, not just the connection.
        self.read(|conn| {
            conn.prepare_cached("SELECT id FROM links LIMIT 1")
                .and_then(|mut stmt| stmt.query_row([], |_| Ok(())).optional())
                .map(drop)
                .map_err(db_err)
        })
    }
}

// Last, so it sees the macros above.
#[cfg(test)]
mod tests;

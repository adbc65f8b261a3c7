//! The scale-out store: one PostgreSQL database shared by several
//! shortener instances.
//!
//! Same schema, queries and semantics as the [SQLite store](super::SqliteStore)
//! (each method one transaction), through the blocking `postgres` client and
//! a small [pool](pool) of connections. Writes that create, change or
//! delete a link send `NOTIFY shortener_links, '<schema>/<slug>'` in their
//! transaction, so it is delivered at commit; [`Store::subscribe`] listens
//! on a connection of its own (see [`feed`]) so the instances' caches stay
//! coherent. Click counts do not notify: they change every second and the
//! cache enforces click budgets in memory.
//!
//! Where SQLite serializes every write, PostgreSQL runs them side by side
//! under `READ COMMITTED`; three things keep the results the same:
//! plain creates of one URL take a transaction-scoped advisory lock on the
//! URL's hash before looking for an existing link (so two instances do not
//! both create one); click batches lock their links in id order (so two
//! instances flushing at once cannot deadlock); and a generated slug that
//! collides is retried with `ON CONFLICT (slug) DO NOTHING`, which waits
//! for a concurrent insert of the same slug instead of failing.
//!
//! # How long a call can take
//!
//! Every statement runs under `statement_timeout` (default 2 s), enforced
//! by the server: a slow query or a lock wait answers
//! [`StoreError::Unavailable`]. Waiting for a pooled connection is bounded
//! by the checkout timeout (2 s); opening one by the connect timeout (2 s),
//! which the `postgres` crate applies to the TCP connect only.
//!
//! The sync client has no client-side deadline on a query, so a server
//! that stops answering is noticed by TCP: keepalives (first probe after
//! 1 s of silence, then one a second) and `TCP_USER_TIMEOUT` (default 5 s,
//! Linux) abort a connection once the peer has acknowledged nothing for
//! that long, whether a request or a probe is outstanding. With the
//! network cut, measured with a veth pair taken down under a running
//! store: a call on a warm connection answers `Unavailable` after 5.0 s,
//! one whose statement was running when the cut came 5.1 s after it
//! started, one needing a new connection after the 2 s connect timeout.
//! The worst case adds a full checkout wait (all connections busy) to the
//! first: about 2 + 5 + 1 = 8 s with the defaults.
//!
//! Not covered, because TCP sees a live peer: a server whose kernel still
//! acknowledges while the process hangs (stopped, swapping, stuck before
//! it answers the startup handshake); the call waits until it resumes. Nor
//! is a host name's DNS lookup (give an address to avoid one). The change
//! feed, whose liveness checks have a client-side deadline, reports
//! [`Change::Lost`] within about 4 s in every case.
//!
//! TLS is not supported (`NoTls`): use it on loopback or a private network,
//! or through a local TLS proxy.

mod clicks;
mod connect;
mod db;
mod errors;
mod feed;
mod pool;
mod schema;

use super::{apply, create_in, from_sql_count, to_sql_count, Change, Store, StoreError, MAX_BATCH};
use crate::model::{format_day, Created, DayCount, Link, LinkClicks, LinkPatch, LinkStats};
use crate::model::{NamedCount, NewLink, Page, TOP_N};
use clicks::{record_in, Sums};
use connect::APPLICATION_NAME;
use db::{column, Db};
use errors::db_err;
use links::{link_by_slug, link_from_row, lock_plain_urls};
use parking_lot::Mutex;
use pool::Pool;
use postgres::{Config, GenericClient};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The channel link changes are announced on, as a literal for `concat!`.
macro_rules! channel {
    () => {
        "shortener_links"
    };
}

/// The channel link changes are announced on. The payload is
/// `<schema>/<slug>`: the channel is the database's, and instances on other
/// schemas of it (other tenants, parallel tests) must not hear each other.
const CHANNEL: &str = channel!();

/// The most links one [`Store::list`] page returns, whatever is asked.
const MAX_PAGE: usize = 1000;

/// Rows [`Store::for_each`] fetches per round trip.
const FETCH_ROWS: i32 = 256;

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

// After the macros above, so it sees them.
mod links;

/// Connection pool and timeout settings of a [`PostgresStore`]. The
/// defaults suit one instance among a few sharing a database; see the
/// [module docs](self) for what the timeouts bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections open at once (in use or idle). Default 16, the
    /// blocking pool's size.
    pub max_open: usize,
    /// Most idle connections kept; more are closed when returned, unless
    /// a caller is waiting. Default 4.
    pub max_idle: usize,
    /// A connection older than this is closed instead of reused (spreads
    /// load after a failover, bounds server-side memory growth). Default
    /// 30 min.
    pub max_lifetime: Duration,
    /// An idle connection unused this long is closed. Default 5 min.
    pub idle_timeout: Duration,
    /// Limit on opening the TCP connection. Default 2 s.
    pub connect_timeout: Duration,
    /// Longest wait for a free connection when `max_open` are in use.
    /// Default 2 s.
    pub checkout_timeout: Duration,
    /// `SET statement_timeout` on every connection: the server cancels a
    /// longer statement (`Unavailable`). Zero turns it off. Default 2 s.
    pub statement_timeout: Duration,
    /// `TCP_USER_TIMEOUT` (Linux): a connection whose peer acknowledges
    /// nothing this long is aborted. Default 5 s.
    pub tcp_user_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            max_open: 16,
            // As many as may be open: a lower bound closes connections a
            // steady load needs again at once, and each new one costs the
            // server a process fork and the client a handshake.
            max_idle: 16,
            max_lifetime: Duration::from_secs(30 * 60),
            idle_timeout: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(2),
            checkout_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(2),
            tcp_user_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL store. See the [module docs](self).
pub struct PostgresStore {
    pool: Pool,
    /// Settings of the pool's connections, for the change feed's own.
    config: Config,
    /// Stop flags of the change feeds started by [`Store::subscribe`].
    feeds: Mutex<Vec<Arc<AtomicBool>>>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for stop in self.feeds.lock().iter() {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Announces changed links on [`CHANNEL`], delivered when the transaction
/// commits (and not at all when it rolls back).
fn notify<C: GenericClient>(db: &mut Db<'_, C>, slugs: &[&str]) -> Result<(), StoreError> {
    if slugs.is_empty() {
        return Ok(());
    }
    db.execute(
        concat!(
            "SELECT pg_notify('",
            channel!(),
            "', current_schema() || '/' || s) FROM unnest($1::text[]) AS s"
        ),
        &[&slugs],
    )?;
    Ok(())
}

/// The top [`TOP_N`] names of one stats table, most clicks first.
fn top_names<C: GenericClient>(
    db: &mut Db<'_, C>,
    sql: &'static str,
    link_id: i64,
) -> Result<Vec<NamedCount>, StoreError> {
    db.query(sql, &[&link_id, &(TOP_N as i64)])?
        .iter()
        .map(|row| {
            Ok(NamedCount {
                name: column(row, 0)?,
                clicks: from_sql_count(column(row, 1)?),
            })
        })
        .collect()
}

impl Store for PostgresStore {
    fn create(&self, new: &NewLink) -> Result<Created, StoreError> {
        self.write(|db| {
            lock_plain_urls(db, std::slice::from_ref(new))?;
            let created = create_in(db, new)?;
            if !created.existed {
                notify(db, &[&created.link.slug])?;
            }
            Ok(created)
        })
    }

    fn create_many(&self, new: &[NewLink]) -> Result<Vec<Result<Created, StoreError>>, StoreError> {
        if new.len() > MAX_BATCH {
            return Err(StoreError::Failed(format!(
                "more than {MAX_BATCH} links in one batch"
            )));
        }
        if new.is_empty() {
            return Ok(Vec::new());
        }
        // Each insert is one statement that either happens or not (a taken
        // slug inserts nothing), so a per-item failure needs no savepoint.
        self.write(|db| {
            lock_plain_urls(db, new)?;
            let results = new
                .iter()
                .map(|one| match create_in(db, one) {
                    Err(StoreError::SlugTaken) => Ok(Err(StoreError::SlugTaken)),
                    other => other.map(Ok),
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let created: Vec<&str> = results
                .iter()
                .filter_map(|one| one.as_ref().ok())
                .filter(|one| !one.existed)
                .map(|one| one.link.slug.as_str())
                .collect();
            notify(db, &created)?;
            Ok(results)
        })
    }

    fn get(&self, slug: &str) -> Result<Option<Link>, StoreError> {
        self.read(|db| link_by_slug(db, slug))
    }

    fn update(&self, slug: &str, patch: &LinkPatch) -> Result<Link, StoreError> {
        self.write(|db| {
            let mut link = db
                .query_opt(select_links!("WHERE slug = $1 FOR UPDATE"), &[&slug])?
                .as_ref()
                .map(link_from_row)
                .transpose()?
                .ok_or(StoreError::NotFound)?;
            apply(patch, &mut link);
            let max_clicks = link.max_clicks.map(to_sql_count);
            db.execute(
                "UPDATE links SET url = $2, expires_at = $3, disabled = $4, max_clicks = $5, \
                 password_hash = $6 WHERE id = $1",
                &[
                    &link.id,
                    &link.url,
                    &link.expires_at,
                    &link.disabled,
                    &max_clicks,
                    &link.password_hash,
                ],
            )?;
            notify(db, &[&link.slug])?;
            Ok(link)
        })
    }

    fn delete(&self, slug: &str) -> Result<(), StoreError> {
        self.write(|db| {
            // Stats rows go with it: ON DELETE CASCADE.
            match db.execute("DELETE FROM links WHERE slug = $1", &[&slug])? {
                0 => Err(StoreError::NotFound),
                _ => notify(db, &[slug]),
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
        self.read(|db| {
            // One row more than asked tells whether another page exists.
            let rows = db.query(
                select_links!("WHERE id < $1 ORDER BY id DESC LIMIT $2"),
                &[&before.unwrap_or(i64::MAX), &(limit as i64 + 1)],
            )?;
            let links = rows
                .iter()
                .map(link_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::of(links, limit))
        })
    }

    fn stats(&self, slug: &str) -> Result<Option<LinkStats>, StoreError> {
        // One snapshot: the total and the breakdowns agree.
        self.snapshot(|db| {
            let Some(row) =
                db.query_opt("SELECT id, clicks FROM links WHERE slug = $1", &[&slug])?
            else {
                return Ok(None);
            };
            let id: i64 = column(&row, 0)?;
            let clicks: i64 = column(&row, 1)?;
            let days = db
                .query(
                    "SELECT day, count FROM link_days WHERE link_id = $1 ORDER BY day",
                    &[&id],
                )?
                .iter()
                .map(|row| {
                    Ok(DayCount {
                        day: format_day(column(row, 0)?),
                        clicks: from_sql_count(column(row, 1)?),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let referrers = top_names(
                db,
                "SELECT host, count FROM link_referrers WHERE link_id = $1 \
                 ORDER BY count DESC, host COLLATE \"C\" LIMIT $2",
                id,
            )?;
            let agents = top_names(
                db,
                "SELECT family, count FROM link_agents WHERE link_id = $1 \
                 ORDER BY count DESC, family COLLATE \"C\" LIMIT $2",
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
        let mut sums = Sums::of(batch);
        self.write(|db| record_in(db, batch_id, &mut sums))
    }

    fn subscribe(&self, on_change: Box<dyn Fn(Change) + Send + Sync>) {
        let stop = Arc::new(AtomicBool::new(false));
        self.feeds.lock().push(Arc::clone(&stop));
        let mut config = self.config.clone();
        let name = format!(
            "{}/changes",
            config.get_application_name().unwrap_or(APPLICATION_NAME)
        );
        config.application_name(&name);
        feed::start(config, stop, on_change);
    }

    fn for_each(
        &self,
        each: &mut dyn FnMut(&Link) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // A portal in one snapshot, fetched FETCH_ROWS at a time: one
        // consistent export with a bounded number of links in memory, and
        // each fetch a statement of its own under the statement timeout.
        self.snapshot(|db| {
            let statement = db.statement(select_links!("ORDER BY id"))?;
            let portal = db.client.bind(&statement, &[]).map_err(db_err)?;
            loop {
                let rows = db
                    .client
                    .query_portal(&portal, FETCH_ROWS)
                    .map_err(db_err)?;
                for row in &rows {
                    each(&link_from_row(row)?)?;
                }
                if rows.len() < FETCH_ROWS as usize {
                    return Ok(());
                }
            }
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        // Reads the links table, not just the connection.
        self.read(|db| db.query_opt("SELECT 1 FROM links LIMIT 1", &[]).map(drop))
    }
}

#[cfg(test)]
mod tests;

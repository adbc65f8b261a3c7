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
mod errors;
mod feed;
mod pool;
mod schema;

use super::{
    apply, create_in, from_sql_count, to_sql_count, Change, CreateSteps, Store, StoreError,
    MAX_BATCH,
};
use crate::model::{format_day, Created, DayCount, Link, LinkClicks, LinkPatch, LinkStats};
use crate::model::{NamedCount, NewLink, Page, UnixTime, TOP_N};
use clicks::{record_in, Sums};
use errors::db_err;
use parking_lot::Mutex;
use pool::Pool;
use postgres::types::ToSql;
use postgres::{Client, Config, GenericClient, IsolationLevel, Row, Statement, Transaction};
use schema::migrate;
use std::collections::HashMap;
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

/// First key of the two-key advisory locks on plain URLs ("shUR"); the
/// second is the URL's [hash](url_lock_key).
const PLAIN_URL_LOCK: i32 = 0x7368_5552;

/// The server ends a session left idle inside a transaction this long (a
/// client that vanished mid-transaction would otherwise hold its row locks
/// until the server's TCP noticed, hours by default). Longer than any pause
/// of [`Store::for_each`]'s callback should be.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// TCP keepalive settings of every connection: the first probe after this
/// much silence, then one per interval; `TCP_USER_TIMEOUT` decides when an
/// unanswered probe ends the connection (`KEEPALIVE_RETRIES` where the
/// user timeout is not supported).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(1);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_RETRIES: u32 = 5;

/// `application_name` of the pool's connections when the URL names none;
/// the change feed's is this followed by `/changes`.
const APPLICATION_NAME: &str = "shortener";

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

/// A connection (or transaction on one) and its prepared statements.
struct Db<'a, C> {
    client: &'a mut C,
    statements: &'a mut HashMap<&'static str, Statement>,
}

impl<C: GenericClient> Db<'_, C> {
    /// `sql` prepared on this connection, once per connection.
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(db_err)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params).map_err(db_err)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params).map_err(db_err)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params).map_err(db_err)
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// any libpq-style parameter the `postgres` crate knows, such as
    /// `application_name` or `options`), applies pending migrations in one
    /// transaction under an advisory lock (instances starting together
    /// take turns), and keeps the connection in the pool.
    ///
    /// `options` override the URL's `connect_timeout` and keepalive
    /// parameters.
    ///
    /// # Errors
    ///
    /// [`StoreError::Failed`] for an invalid URL, a rejected login, or a
    /// schema newer than this build; [`StoreError::Unavailable`] when the
    /// server cannot be reached.
    pub fn open(url: &str, options: &PgOptions) -> Result<PostgresStore, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::Failed(format!("invalid PostgreSQL URL: {e}")))?;
        config
            .connect_timeout(options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES)
            .tcp_user_timeout(options.tcp_user_timeout);
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        // The same limits on the server's side of every connection (pool
        // and change feed): a session whose client vanished behind a cut
        // network is dropped in seconds, releasing its locks, instead of
        // sitting "idle in transaction" until that timeout (a retried click
        // batch would wait on its own first attempt's row lock).
        let server_side = format!(
            "-c tcp_user_timeout={} -c tcp_keepalives_idle={} -c tcp_keepalives_interval={} \
             -c tcp_keepalives_count={KEEPALIVE_RETRIES}",
            options.tcp_user_timeout.as_millis().min(i32::MAX as u128),
            KEEPALIVE_IDLE.as_secs(),
            KEEPALIVE_INTERVAL.as_secs(),
        );
        let startup_options = match config.get_options() {
            Some(given) if !given.is_empty() => format!("{given} {server_side}"),
            _ => server_side,
        };
        config.options(&startup_options);
        // PostgreSQL takes at most i32::MAX milliseconds (24.8 days).
        let statement_ms = options.statement_timeout.as_millis().min(i32::MAX as u128);
        let setup = format!(
            "SET statement_timeout = {statement_ms}; SET idle_in_transaction_session_timeout = {}",
            IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
        );
        let pool = Pool::new(config.clone(), options.clone(), setup);
        {
            let mut lease = pool.get()?;
            migrate(&mut lease.conn()?.client)?;
        }
        Ok(PostgresStore {
            pool,
            config,
            feeds: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` in a transaction on a pooled connection, committed when
    /// `f` returns `Ok` and rolled back otherwise.
    fn write<T>(
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
    fn read<T>(
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
    fn snapshot<T>(
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

fn column<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(db_err)
}

fn link_from_row(row: &Row) -> Result<Link, StoreError> {
    Ok(Link {
        id: column(row, 0)?,
        slug: column(row, 1)?,
        url: column(row, 2)?,
        created_at: column(row, 3)?,
        expires_at: column(row, 4)?,
        disabled: column(row, 5)?,
        max_clicks: column::<Option<i64>>(row, 6)?.map(from_sql_count),
        clicks: from_sql_count(column(row, 7)?),
        password_hash: column(row, 8)?,
    })
}

fn link_by_slug<C: GenericClient>(
    db: &mut Db<'_, C>,
    slug: &str,
) -> Result<Option<Link>, StoreError> {
    db.query_opt(select_links!("WHERE slug = $1"), &[&slug])?
        .as_ref()
        .map(link_from_row)
        .transpose()
}

/// The advisory lock key of a plain URL: FNV-1a, stable across builds and
/// instances (every instance must compute the same key).
fn url_lock_key(url: &str) -> i32 {
    let hash = url.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash as i32
}

/// Takes the advisory locks of the plain links among `new`, in key order
/// (so two transactions locking several cannot deadlock), held until the
/// transaction ends: a concurrent plain create of the same URL waits, then
/// finds this one's link.
fn lock_plain_urls<C: GenericClient>(
    db: &mut Db<'_, C>,
    new: &[NewLink],
) -> Result<(), StoreError> {
    let mut keys: Vec<i32> = new
        .iter()
        .filter(|one| one.is_plain())
        .map(|one| url_lock_key(&one.url))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    // unnest reads the array out in order.
    db.execute(
        "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::integer[]) AS k",
        &[&PLAIN_URL_LOCK, &keys],
    )?;
    Ok(())
}

/// The newest plain link to `url` that still redirects (see the SQLite
/// store's twin); the caller holds the URL's advisory lock.
fn plain_link<C: GenericClient>(db: &mut Db<'_, C>, url: &str) -> Result<Option<Link>, StoreError> {
    // The predicate implies the partial index's, so the planner can use it.
    db.query_opt(
        select_links!(
            "WHERE url = $1 AND NOT custom_slug AND expires_at IS NULL ",
            "AND max_clicks IS NULL AND password_hash IS NULL AND NOT disabled ",
            "ORDER BY id DESC LIMIT 1"
        ),
        &[&url],
    )?
    .as_ref()
    .map(link_from_row)
    .transpose()
}

/// Inserts `new` under `slug`; `None` when the slug is taken.
fn insert<C: GenericClient>(
    db: &mut Db<'_, C>,
    new: &NewLink,
    slug: &str,
    at: UnixTime,
) -> Result<Option<Link>, StoreError> {
    let max_clicks = new.max_clicks.map(to_sql_count);
    let custom = new.slug.is_some();
    let row = db.query_opt(
        "INSERT INTO links (slug, url, created_at, expires_at, max_clicks, password_hash, \
         custom_slug, disabled, clicks) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (slug) DO NOTHING RETURNING id",
        &[
            &slug,
            &new.url,
            &at,
            &new.expires_at,
            &max_clicks,
            &new.password_hash,
            &custom,
            &new.disabled,
            &to_sql_count(new.clicks),
        ],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Link {
        id: column(&row, 0)?,
        slug: slug.to_owned(),
        url: new.url.clone(),
        created_at: at,
        expires_at: new.expires_at,
        disabled: new.disabled,
        max_clicks: new.max_clicks.map(|n| from_sql_count(to_sql_count(n))),
        clicks: from_sql_count(to_sql_count(new.clicks)),
        password_hash: new.password_hash.clone(),
    }))
}

/// [`create_in`]'s statements, inside a transaction that holds the
/// advisory lock of the URL of a plain create.
impl<C: GenericClient> CreateSteps for Db<'_, C> {
    fn plain_link(&mut self, url: &str) -> Result<Option<Link>, StoreError> {
        plain_link(self, url)
    }

    fn insert(
        &mut self,
        new: &NewLink,
        slug: &str,
        at: UnixTime,
    ) -> Result<Option<Link>, StoreError> {
        insert(self, new, slug, at)
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

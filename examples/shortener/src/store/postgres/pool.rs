//! A small blocking pool of PostgreSQL connections.
//!
//! Written here rather than taken from `r2d2` for three knobs r2d2 lacks
//! or spells differently: a *maximum* of idle connections (r2d2 only keeps
//! a minimum), one checkout deadline that covers both waiting for a
//! connection and opening one (r2d2 opens connections on its own thread
//! pool and retries there), and closing connections off the caller's
//! thread (closing a `postgres::Client` waits for the server to hang up,
//! which on a cut network lasts until the TCP user timeout).
//!
//! A connection idle for [`CHECK_IDLE_AFTER`] or more answers an empty
//! query (within what is left of the checkout deadline) before it is
//! handed out, so a server restart or a killed backend costs a reconnect,
//! not a failed call; one that died in the last second fails the call that
//! gets it, with [`StoreError::Unavailable`] (worth a retry).
//!
//! Idle connections are kept last-in first-out, so under light load the
//! same few stay warm and the rest pass their idle timeout. The idle
//! timeout and the lifetime are enforced when a connection is checked out
//! or returned, not by a timer: a pool no one uses keeps its (at most
//! `max_idle`) connections until the next call.

use super::{db_err, PgOptions};
use crate::store::StoreError;
use parking_lot::{Condvar, Mutex};
use postgres::{Client, Config, NoTls, Statement};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A connection idle this long proves it is alive with a round trip
/// before it is handed out; under load connections come back far sooner
/// and pay nothing.
pub(super) const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// The least time that proof gets, even when the checkout deadline is
/// nearer.
const MIN_CHECK_TIMEOUT: Duration = Duration::from_millis(100);

/// One open connection and the statements prepared on it.
pub(super) struct Conn {
    /// Prepared statements by their SQL text: every query this store runs
    /// is a `&'static str`, so the cache is bounded by the code. Declared
    /// before `client` so that they are closed first.
    pub(super) statements: HashMap<&'static str, Statement>,
    pub(super) client: Client,
    born: Instant,
}

impl Conn {
    /// Whether the connection may be handed out. One idle for less than
    /// [`CHECK_IDLE_AFTER`] is trusted when its client has not seen it
    /// close; an older one must answer an empty query within `timeout`
    /// (a server restarted or a backend ended meanwhile is found here, not
    /// by the caller's query).
    fn usable(&mut self, idle_for: Duration, timeout: Duration) -> bool {
        if self.client.is_closed() {
            return false;
        }
        idle_for < CHECK_IDLE_AFTER || self.client.is_valid(timeout).is_ok()
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

struct State {
    /// Oldest first.
    idle: Vec<Idle>,
    /// Connections that exist, idle or lent (or being opened).
    open: usize,
    /// Callers waiting for a connection.
    waiting: usize,
}

/// The pool. See the [module docs](self).
pub(super) struct Pool {
    config: Config,
    options: PgOptions,
    /// Sent once on every new connection.
    setup: String,
    state: Mutex<State>,
    returned: Condvar,
}

/// A connection lent out; goes back to the pool when dropped, also when
/// the caller panics (an open transaction is rolled back by its own drop).
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Lease<'_> {
    /// The connection lent.
    pub(super) fn conn(&mut self) -> Result<&mut Conn, StoreError> {
        // Only `Drop` takes it out.
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Failed(String::from("database connection lost")))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn);
        }
    }
}

impl Pool {
    /// A pool opening connections with `config` and sending `setup` (SQL)
    /// on each. Opens nothing yet.
    pub(super) fn new(config: Config, options: PgOptions, setup: String) -> Pool {
        Pool {
            config,
            options,
            setup,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// An idle connection, a new one while fewer than `max_open` exist, or
    /// the next one returned.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when none is free within the checkout
    /// timeout or a new one cannot be opened.
    pub(super) fn get(&self) -> Result<Lease<'_>, StoreError> {
        let deadline = Instant::now() + self.options.checkout_timeout;
        let mut state = self.state.lock();
        loop {
            let now = Instant::now();
            let stale = self.take_stale(&mut state, now);
            if !stale.is_empty() {
                drop(state);
                stale.into_iter().for_each(close);
                state = self.state.lock();
                continue;
            }
            if let Some(idle) = state.idle.pop() {
                drop(state);
                let mut conn = idle.conn;
                let timeout = deadline
                    .saturating_duration_since(now)
                    .max(MIN_CHECK_TIMEOUT);
                if conn.usable(now.duration_since(idle.since), timeout) {
                    return Ok(self.lease(conn));
                }
                close(conn);
                state = self.state.lock();
                state.open -= 1;
                continue;
            }
            if state.open < self.options.max_open.max(1) {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(conn) => Ok(self.lease(conn)),
                    Err(e) => {
                        self.state.lock().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            if now >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "no free database connection within {} ms ({} open)",
                    self.options.checkout_timeout.as_millis(),
                    state.open
                )));
            }
            state.waiting += 1;
            let _ = self.returned.wait_until(&mut state, deadline);
            state.waiting -= 1;
        }
    }

    /// Opens a connection and applies the session settings.
    fn connect(&self) -> Result<Conn, StoreError> {
        let mut client = self.config.connect(NoTls).map_err(db_err)?;
        if !self.setup.is_empty() {
            if let Err(e) = client.batch_execute(&self.setup) {
                close(Conn {
                    statements: HashMap::new(),
                    client,
                    born: Instant::now(),
                });
                return Err(db_err(e));
            }
        }
        Ok(Conn {
            statements: HashMap::new(),
            client,
            born: Instant::now(),
        })
    }

    /// Connections that exist now (idle or lent).
    #[cfg(test)]
    pub(super) fn open_count(&self) -> usize {
        self.state.lock().open
    }

    fn lease(&self, conn: Conn) -> Lease<'_> {
        Lease {
            pool: self,
            conn: Some(conn),
        }
    }

    /// Removes the idle connections past their idle timeout or lifetime.
    fn take_stale(&self, state: &mut State, now: Instant) -> Vec<Conn> {
        let o = &self.options;
        let mut stale = Vec::new();
        let mut i = 0;
        while i < state.idle.len() {
            let idle = &state.idle[i];
            if now.duration_since(idle.since) >= o.idle_timeout
                || now.duration_since(idle.conn.born) >= o.max_lifetime
            {
                stale.push(state.idle.remove(i).conn);
            } else {
                i += 1;
            }
        }
        state.open -= stale.len();
        stale
    }

    fn put_back(&self, conn: Conn) {
        let now = Instant::now();
        let usable =
            !conn.client.is_closed() && now.duration_since(conn.born) < self.options.max_lifetime;
        let mut state = self.state.lock();
        // Past `max_idle` only while someone waits for it.
        if usable && (state.idle.len() < self.options.max_idle || state.waiting > state.idle.len())
        {
            state.idle.push(Idle { conn, since: now });
            drop(state);
            self.returned.notify_one();
            return;
        }
        state.open -= 1;
        drop(state);
        self.returned.notify_one();
        close(conn);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Lent connections hold a borrow of the pool: none is out now.
        for idle in self.state.get_mut().idle.drain(..) {
            close(idle.conn);
        }
    }
}

/// Closes a connection without blocking the caller on the server.
fn close(conn: Conn) {
    let Conn {
        statements, client, ..
    } = conn;
    drop(statements);
    close_client(client);
}

/// Closes a client without blocking the caller on the server: a live one
/// is closed on a short-lived thread (the goodbye waits for the server to
/// hang up, for as long as the TCP user timeout on a cut network), a dead
/// one right here (nothing to wait for).
pub(super) fn close_client(client: Client) {
    if client.is_closed() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name(String::from("pg-close"))
        .spawn(move || drop(client));
    // When no thread can be started, the closure, and the client with it,
    // is dropped here: it blocks, but it still closes.
    drop(spawned);
}

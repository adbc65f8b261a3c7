//! Connecting: the settings every connection gets (keepalives, timeouts on
//! both sides, `application_name`) and [`PostgresStore::open`].

use super::pool::Pool;
use super::schema::migrate;
use super::{PgOptions, PostgresStore};
use crate::store::StoreError;
use parking_lot::Mutex;
use postgres::Config;
use std::time::Duration;

/// The server ends a session left idle inside a transaction this long (a
/// client that vanished mid-transaction would otherwise hold its row locks
/// until the server's TCP noticed, hours by default). Longer than any pause
/// of [`Store::for_each`]'s callback should be.
///
/// [`Store::for_each`]: crate::store::Store::for_each
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
pub(super) const APPLICATION_NAME: &str = "shortener";

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
}

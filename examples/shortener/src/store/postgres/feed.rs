//! The change feed: `LISTEN` on a connection of its own, outside the pool,
//! turning each notification into [`Change::Link`].
//!
//! A thread waits for notifications in slices of [`POLL`], checks every
//! [`CHECK_EVERY`] that the server still answers (a round trip bounded by
//! [`CHECK_TIMEOUT`] on the client side, so a silently cut network or a
//! hung server is noticed within about four seconds, not when TCP gives
//! up), and on any failure reports [`Change::Lost`] once, reconnects with
//! capped exponential backoff and reports [`Change::Connected`] after the
//! new `LISTEN`. The first `LISTEN` is reported as `Connected` too, so a
//! listener can tell a live feed from none. It holds the connection settings, its stop flag and the
//! callback, not the store: dropping the store sets the flag and the
//! thread ends within a [`POLL`].

use super::pool::close_client;
use super::CHANNEL;
use crate::store::Change;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The callback [`crate::store::Store::subscribe`] takes.
pub(super) type OnChange = Box<dyn Fn(Change) + Send + Sync>;

/// Longest wait for a notification before looking at the stop flag and
/// the liveness check.
const POLL: Duration = Duration::from_millis(250);

/// How often an idle feed connection proves the server still answers.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// How long that proof may take before the connection counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// First wait before reconnecting; doubles per failed attempt.
const BACKOFF_MIN: Duration = Duration::from_millis(100);

/// Longest wait between reconnection attempts. A connection that stayed up
/// this long starts the next backoff from [`BACKOFF_MIN`] again.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Starts the feed. The first `LISTEN` happens before this returns (so a
/// change committed after it is heard), bounded by the connect timeout;
/// when it fails the thread reports [`Change::Lost`] and keeps trying.
pub(super) fn start(config: Config, stop: Arc<AtomicBool>, on_change: OnChange) {
    let first = listen(&config);
    let spawned = std::thread::Builder::new()
        .name(String::from("pg-changes"))
        .spawn(move || run(&config, &stop, &*on_change, first));
    if let Err(e) = spawned {
        eprintln!("shortener: cannot start the change feed ({e}); caches rely on their TTL");
    }
}

/// Opens a connection and listens on [`CHANNEL`]; returns it with the
/// schema whose changes it reports (the writers' `current_schema()`).
fn listen(config: &Config) -> Result<(Client, String), postgres::Error> {
    let mut client = config.connect(NoTls)?;
    let listened = client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .and_then(|()| client.query_one("SELECT coalesce(current_schema(), '')", &[]));
    match listened {
        Ok(row) => {
            let schema: String = row.get(0);
            Ok((client, schema))
        }
        Err(e) => {
            close_client(client);
            Err(e)
        }
    }
}

fn run(
    config: &Config,
    stop: &AtomicBool,
    on_change: &(dyn Fn(Change) + Send + Sync),
    first: Result<(Client, String), postgres::Error>,
) {
    // Whether the outage under way was reported: failed attempts to
    // reconnect report nothing more; every lost connection reports.
    let mut lost = false;
    let mut backoff = BACKOFF_MIN;
    let mut attempt = Some(first);
    while !stop.load(Ordering::Relaxed) {
        match attempt.take().unwrap_or_else(|| listen(config)) {
            Ok((mut client, schema)) => {
                on_change(Change::Connected);
                let since = Instant::now();
                let _ = watch(&mut client, &schema, stop, on_change);
                // Report before closing: closing a connection to an
                // unreachable server waits (on another thread, but still).
                if stop.load(Ordering::Relaxed) {
                    close_client(client);
                    return;
                }
                on_change(Change::Lost);
                lost = true;
                close_client(client);
                if since.elapsed() >= BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                }
            }
            Err(_) => {
                if !lost {
                    on_change(Change::Lost);
                    lost = true;
                }
            }
        }
        sleep_unless_stopped(backoff, stop);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Hands notifications to `on_change` until the connection fails (`Err`)
/// or the stop flag is set (`Ok`).
fn watch(
    client: &mut Client,
    schema: &str,
    stop: &AtomicBool,
    on_change: &(dyn Fn(Change) + Send + Sync),
) -> Result<(), postgres::Error> {
    let mut checked = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(note) = client.notifications().timeout_iter(POLL).next()? {
            let ours = note
                .payload()
                .rsplit_once('/')
                .filter(|(s, _)| *s == schema);
            if let (true, Some((_, slug))) = (note.channel() == CHANNEL, ours) {
                on_change(Change::Link(slug.to_owned()));
            }
        }
        if checked.elapsed() >= CHECK_EVERY {
            client.is_valid(CHECK_TIMEOUT)?;
            checked = Instant::now();
        }
    }
    Ok(())
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    loop {
        let now = Instant::now();
        if now >= until || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

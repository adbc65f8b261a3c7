//! The application: its settings, its shared state and its routes.

use crate::api;
use crate::auth::{Access, ApiAuth};
use crate::cache::{CacheConfig, RedirectCache};
use crate::clicks::Clicks;
use crate::keys::{KeySet, Scope};
use crate::redirect;
use crate::store::{Change, SharedStore, StoreError};
use crate::telemetry::{StoreOp, Telemetry};
use keel::middleware::{AtHead, Cidr, ForwardedClient, HandlerExt, RateLimit, RateLimitKey};
use keel::{field, Handler, Request, Response, Router, Routes, StatusCode};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Flush attempts [`App::shutdown`] makes before giving up on the last
/// click counts.
pub const SHUTDOWN_FLUSH_TRIES: u32 = 5;

/// How the app behaves; [`crate::cli`] fills it from flags and environment.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Scheme, host and port short links start with, no trailing slash:
    /// `https://sho.rt`.
    pub base_url: String,
    /// 301, 302 (default), 307 or 308.
    pub redirect_status: StatusCode,
    /// Bearer keys and their scopes; none: keyless mode (loopback
    /// clients addressing a loopback name, see [`crate::auth`]).
    pub api_keys: KeySet,
    /// Failed API key attempts each client may make per minute; past them
    /// it gets `429` whatever it sends.
    pub auth_failures_per_minute: u32,
    pub cache: CacheConfig,
    /// How often click counts are written to the store.
    pub flush_interval: Duration,
    /// Writes each client may make per minute (bursts of as many).
    pub writes_per_minute: u32,
    /// Password guesses each client may make per minute.
    pub password_guesses_per_minute: u32,
    /// `max-age` of a permanent redirect (301, 308).
    pub permanent_max_age: Duration,
    /// Request header naming the client for rate limits (a proxy's
    /// `X-Forwarded-For`); `None`: the peer address, or `X-Forwarded-For`
    /// when `trusted_proxies` are set.
    pub client_ip_header: Option<String>,
    /// The address the server listens on (`--addr`): links to it are
    /// refused like links to the base URL.
    pub listen_addr: Option<std::net::SocketAddr>,
    /// Proxies whose client-IP header is believed (see [`client_key`]).
    pub trusted_proxies: Vec<Cidr>,
    /// Whether peers on a Unix socket are trusted proxies too
    /// (`--trusted-proxy unix`).
    pub trust_unix_peers: bool,
    /// Wrong password guesses a link takes before every further guess
    /// waits (see [`crate::password::per_link`]).
    pub link_guesses: u32,
    /// Files served under `/static/` (`--assets DIR`), beside the embedded
    /// ones; `None`: the embedded ones only.
    pub assets: Option<Arc<crate::assets::AssetDir>>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            base_url: String::from("http://127.0.0.1:8080"),
            redirect_status: StatusCode::FOUND,
            api_keys: KeySet::default(),
            auth_failures_per_minute: 10,
            cache: CacheConfig::default(),
            flush_interval: Duration::from_secs(1),
            writes_per_minute: 120,
            password_guesses_per_minute: 10,
            permanent_max_age: Duration::from_secs(3600),
            client_ip_header: None,
            listen_addr: None,
            trusted_proxies: Vec::new(),
            trust_unix_peers: false,
            link_guesses: 20,
            assets: None,
        }
    }
}

/// What every handler shares.
pub struct State {
    pub store: SharedStore,
    pub cache: RedirectCache,
    pub clicks: Arc<Clicks>,
    pub config: AppConfig,
    /// `host[:port]` of [`AppConfig::base_url`], lowercase.
    pub own_host: String,
    /// The base URL's and listen address's host and port, every spelling
    /// of which is refused as a link target.
    pub own_address: crate::validate::OwnAddress,
    pub telemetry: Telemetry,
    /// Imports and exports in progress, against their caps.
    pub transfers: crate::api::TransferSlots,
    /// The thread that sends live clicks to `/api/links/:slug/live`.
    pub live_feed: crate::api::LiveFeed,
    /// Whether the store's change feed is connected (see [`Feed`]).
    feed: AtomicU8,
}

/// The state of the store's change feed, as `/health` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Feed {
    /// The store has no feed (one instance, nothing to hear).
    None,
    Connected,
    /// Lost; cached links are trusted up to their time to live meanwhile.
    Reconnecting,
}

impl State {
    /// The change feed's state.
    pub fn feed(&self) -> Feed {
        match self.feed.load(Ordering::Relaxed) {
            1 => Feed::Connected,
            2 => Feed::Reconnecting,
            _ => Feed::None,
        }
    }

    /// Applies a change another instance made.
    fn on_change(&self, change: Change) {
        match change {
            Change::Link(slug) => {
                self.telemetry.feed_changes.fetch_add(1, Ordering::Relaxed);
                self.cache.invalidate(&slug);
            }
            Change::Lost => {
                self.telemetry.feed_losses.fetch_add(1, Ordering::Relaxed);
                self.feed.store(Feed::Reconnecting as u8, Ordering::Relaxed);
            }
            // Changes made while the feed was down were not heard: read
            // every link from the store again. (Not on `Lost`: while the
            // store is out of reach, the cache is what still answers.) Kept
            // as stale entries, not cleared: the feed may come back while
            // the store is still flapping, and a link that cannot be read
            // is then served as it was rather than failing.
            Change::Connected => {
                if self.feed() == Feed::Reconnecting {
                    self.cache.expire_all();
                }
                self.feed.store(Feed::Connected as u8, Ordering::Relaxed);
            }
        }
    }

    /// Runs a store call, timing it for `/metrics`.
    pub fn store_call<T>(
        &self,
        op: StoreOp,
        call: impl FnOnce(&dyn crate::store::Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call(&*self.store);
        self.telemetry
            .observe_store(op, started.elapsed(), result.is_ok());
        result
    }

    /// `base_url/slug`.
    pub fn short_url(&self, slug: &str) -> String {
        format!("{}/{slug}", self.config.base_url)
    }
}

/// The shortener: build it on a store, mount [`App::handler`] on a keel
/// server, and call [`App::shutdown`] after the server stopped.
pub struct App {
    state: Arc<State>,
    flusher: Option<JoinHandle<()>>,
}

impl App {
    /// The app on `store`, with click flushing started.
    pub fn new(store: SharedStore, config: AppConfig) -> App {
        let own_host = host_of_base(&config.base_url);
        let own_address = crate::validate::OwnAddress::new(&config.base_url, config.listen_addr);
        let state = Arc::new(State {
            store,
            cache: RedirectCache::new(config.cache),
            clicks: Arc::new(Clicks::new()),
            own_host,
            own_address,
            telemetry: Telemetry::new(),
            transfers: Default::default(),
            live_feed: Default::default(),
            config,
            feed: AtomicU8::new(Feed::None as u8),
        });
        // Weak: the store holds the callback, the state holds the store.
        let listener = Arc::downgrade(&state);
        state.store.subscribe(Box::new(move |change| {
            if let Some(state) = listener.upgrade() {
                state.on_change(change);
            }
        }));
        // The thread holds the state until `Clicks::stop` ends it.
        let flusher = {
            let writer = Arc::clone(&state);
            state
                .clicks
                .start_flusher(state.config.flush_interval, move |id, batch| {
                    writer.store_call(StoreOp::RecordClicks, |s| s.record_clicks(id, batch))
                })
        };
        App {
            state,
            flusher: Some(flusher),
        }
    }

    /// The shared state (tests and the CLI read counters from it).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Every route of the app. `metrics` is the server's, wired by
    /// [`keel::Server::metrics`], shown at `/metrics` (to `admin`) with the
    /// app's own.
    ///
    /// # Panics
    ///
    /// Never for this fixed route table (a conflict is a bug caught by
    /// every test).
    pub fn handler(&self, metrics: keel::Metrics) -> Routes {
        let state = &self.state;
        let auth = Arc::new(ApiAuth::new(
            state.config.api_keys.clone(),
            &state.own_host,
            RateLimit::new(
                state.config.auth_failures_per_minute.max(1),
                Duration::from_secs(60),
            )
            .key(client_key(&state.config)),
        ));
        let writes = Arc::new(
            RateLimit::new(
                state.config.writes_per_minute.max(1),
                Duration::from_secs(60),
            )
            .key(client_key(&state.config)),
        );
        let guesses = Arc::new(
            RateLimit::new(
                state.config.password_guesses_per_minute.max(1),
                Duration::from_secs(60),
            )
            .refusal(
                "text/plain; charset=utf-8",
                b"too many password guesses, wait a minute\n",
            )
            .key(client_key(&state.config)),
        );
        let router = Router::new();
        let router = crate::web::routes(router, state.config.assets.clone());
        let router = api::routes(router, state, &auth, &writes);
        let router = redirect::routes(router, state, &guesses);
        let health = {
            let state = Arc::clone(state);
            let auth = Arc::clone(&auth);
            move |req: &Request<'_>, res: &mut Response<'_>| match auth.check_optional(req, res) {
                Access::Refused => {}
                Access::Held(Scope::Admin) => health(&state, res, true),
                Access::Held(_) | Access::Anonymous => health(&state, res, false),
            }
        };
        router
            .get("/health", health)
            .get(
                "/metrics",
                metrics_page(state, metrics).with(AtHead(auth.require(Scope::Admin))),
            )
            .fallback(not_found)
            .build()
            .expect("the shortener's route table has no conflicts")
    }

    /// The routes of `--admin-addr`: `/metrics` and `/health` with its
    /// details, no key asked (reaching the address is the credential).
    ///
    /// # Panics
    ///
    /// Never for this fixed route table.
    pub fn admin_handler(&self, metrics: keel::Metrics) -> Routes {
        let state = Arc::clone(&self.state);
        Router::new()
            .get("/health", move |_: &Request<'_>, res: &mut Response<'_>| {
                health(&state, res, true)
            })
            .get("/metrics", metrics_page(&self.state, metrics))
            .fallback(not_found)
            .build()
            .expect("the admin route table has no conflicts")
    }

    /// Stops the flusher and writes the remaining click counts: call it
    /// after the server has stopped, so no click comes after.
    ///
    /// A store that is briefly out of reach ([`StoreError::Unavailable`])
    /// is tried again, [`SHUTDOWN_FLUSH_TRIES`] times in all, a second
    /// apart: batches are idempotent, so a retry never counts twice.
    ///
    /// # Errors
    ///
    /// When the last flush fails (its counts are lost then).
    pub fn shutdown(mut self) -> Result<usize, StoreError> {
        self.state.clicks.stop();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        let state = &self.state;
        let mut attempt = 1;
        loop {
            let flushed = state.clicks.flush_with(|id, batch| {
                state.store_call(StoreOp::RecordClicks, |s| s.record_clicks(id, batch))
            });
            match flushed {
                Err(StoreError::Unavailable(why)) if attempt < SHUTDOWN_FLUSH_TRIES => {
                    eprintln!("shortener: last click flush failed ({why}), trying again");
                    attempt += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                result => return result,
            }
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.state.clicks.stop();
    }
}

/// Handlers that wrap middleware around a closure on the shared state.
pub(crate) fn on_state<F>(state: &Arc<State>, f: F) -> impl Handler
where
    F: Fn(&Arc<State>, &Request<'_>, &mut Response<'_>) + Send + Sync + 'static,
{
    let state = Arc::clone(state);
    move |req: &Request<'_>, res: &mut Response<'_>| f(&state, req, res)
}

/// How rate limits tell clients apart: the peer address; behind trusted
/// proxies, the rightmost address in their client-IP header that is not a
/// proxy (a client cannot choose its key by writing the header). A header
/// named without trusted proxies is believed from loopback peers only (a
/// proxy on the same host); any other peer is its own client. Peers on a
/// Unix socket are trusted only with `trust_unix_peers`; otherwise they are
/// all one client (keel gives them the address `0.0.0.0`).
pub fn client_key(config: &AppConfig) -> RateLimitKey {
    let none_trusted = config.trusted_proxies.is_empty() && !config.trust_unix_peers;
    let header = match (&config.client_ip_header, none_trusted) {
        (None, true) => return RateLimitKey::PeerIp,
        (Some(header), _) => header.as_str(),
        (None, false) => "X-Forwarded-For",
    };
    let proxies = if none_trusted {
        Cidr::LOOPBACK.to_vec()
    } else {
        config.trusted_proxies.clone()
    };
    let forwarded = ForwardedClient::new(header, proxies).trust_unix_peers(config.trust_unix_peers);
    RateLimitKey::Forwarded(forwarded)
}

/// `/metrics`: keel's counters and the app's, Prometheus text.
fn metrics_page(state: &Arc<State>, metrics: keel::Metrics) -> impl Handler {
    let state = Arc::clone(state);
    move |_: &Request<'_>, res: &mut Response<'_>| {
        let mut text = String::with_capacity(16 << 10);
        // Writing to a String cannot fail.
        let _ = metrics.render_into(&mut text);
        state
            .telemetry
            .render_into(&mut text, &state.cache, &state.clicks);
        res.field(field!(
            "Content-Type",
            "text/plain; version=0.0.4; charset=utf-8"
        ))
        .field(field!("X-Content-Type-Options", "nosniff"))
        .field(field!("Cache-Control", "no-store"))
        .body(text.as_bytes());
    }
}

/// `/health`: `200` when the store answers (`"degraded"` when the change
/// feed is down or click batches wait to be written), `503` when it does
/// not. Everyone gets the status; `details` (for `admin`) adds the store's
/// error class, the feed and the batches waiting. The store's own error
/// text (a PostgreSQL message may name hosts, users, tables) is never
/// sent: it goes to stderr.
fn health(state: &Arc<State>, res: &mut Response<'_>, details: bool) {
    let state = Arc::clone(state);
    res.offload(move |res| {
        res.field(field!("Cache-Control", "no-store"))
            .field(field!("X-Content-Type-Options", "nosniff"));
        let store = state.store_call(StoreOp::Ping, |s| s.ping());
        let feed = match state.feed() {
            Feed::None => "none",
            Feed::Connected => "connected",
            Feed::Reconnecting => "reconnecting",
        };
        let pending = state.clicks.pending_batches();
        let store_class = match &store {
            Ok(()) => "ok",
            Err(StoreError::Unavailable(_)) => "unavailable",
            Err(_) => "failed",
        };
        if let Err(error) = &store {
            eprintln!("shortener: /health: {error}");
        }
        let status = match &store {
            Err(_) => "unavailable",
            Ok(()) if feed == "reconnecting" || pending > 0 => "degraded",
            Ok(()) => "ok",
        };
        if store.is_err() {
            res.status(StatusCode::SERVICE_UNAVAILABLE)
                .field(field!("Retry-After", "1"));
        }
        if details {
            res.json(&serde_json::json!({
                "status": status,
                "store": store_class,
                "change_feed": feed,
                "pending_click_batches": pending,
            }));
        } else {
            res.json(&serde_json::json!({ "status": status }));
        }
    });
}

/// Paths no route matched: a JSON error under `/api`, the HTML page
/// elsewhere.
fn not_found(req: &Request<'_>, res: &mut Response<'_>) {
    if req.path().starts_with("/api/") || api::wants_json(req) {
        api::ApiError::not_found().write(res);
    } else {
        crate::web::not_found_page(res);
    }
}

/// `host[:port]` of a base URL, lowercase.
fn host_of_base(base_url: &str) -> String {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    rest.split('/').next().unwrap_or("").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_host_is_the_base_urls_authority() {
        assert_eq!(super::host_of_base("https://Sho.rt"), "sho.rt");
        assert_eq!(
            super::host_of_base("http://127.0.0.1:8080/"),
            "127.0.0.1:8080"
        );
    }
}

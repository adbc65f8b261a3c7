//! Command-line flags and their environment variables.

use crate::app::AppConfig;
use crate::assets::AssetDir;
use crate::cache::CacheConfig;
use crate::keys::{KeyError, KeySet, Scope};
use crate::store::PgOptions;
use clap::{Parser, Subcommand, ValueEnum};
use keel::middleware::Cidr;
use keel::StatusCode;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A self-hostable URL shortener on keel.
///
/// With no command it serves: `shortener` alone runs on 127.0.0.1:8080 with
/// its data in ./data/shortener.db, created on first run.
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = false)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Directory of the embedded store (created when missing).
    #[arg(long, env = "SHORTENER_DATA", default_value = "data", global = true)]
    pub data: PathBuf,

    /// Store to use: `sqlite:PATH` (default: DATA/shortener.db) or a
    /// `postgres://` URL.
    #[arg(long, env = "SHORTENER_STORE", global = true)]
    pub store: Option<String>,

    /// Base of short links, e.g. https://sho.rt (default: http://ADDR).
    /// Links to this host are refused.
    #[arg(long, env = "SHORTENER_BASE_URL", global = true)]
    pub base_url: Option<String>,

    #[command(flatten)]
    pub serve: ServeArgs,

    #[command(flatten)]
    pub pg: PgArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Import links from a CSV file (columns by header: url, slug, ... as
    /// exported by this app, Shlink, YOURLS, Kutt).
    Import {
        /// The CSV file; `-` for standard input.
        file: PathBuf,
    },
    /// Export every link as CSV, password hashes included: the file is
    /// created readable by its owner only (mode 0600).
    Export {
        /// Output file (default: standard output).
        file: Option<PathBuf>,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `shortener keys ...`.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a new random key (256 bits), print it on standard output and
    /// append `SCOPE KEY` to the key file (--api-key-file, else
    /// DATA/api-keys, created readable by its owner only). A running
    /// server reads keys at start: restart it.
    New {
        /// What the key may do: read (list and read links), write (also
        /// create and change them) or admin (also delete them, read their
        /// stats, /metrics and /health details).
        #[arg(long, value_parser = scope)]
        scope: Scope,
    },
}

/// Access log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AccessLogFormat {
    Off,
    Common,
    Combined,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SHORTENER_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// Listen on a Unix socket at this path instead of --addr, for a proxy
    /// on this machine (nginx: `proxy_pass http://unix:PATH;`). A socket
    /// file left there by a server that is gone is replaced; a live server
    /// or any other file there is an error. Removed at shutdown. Started by
    /// systemd with sockets (LISTEN_FDS), the server uses those instead of
    /// --addr and --unix.
    #[arg(long, env = "SHORTENER_UNIX", value_name = "PATH")]
    pub unix: Option<PathBuf>,

    /// Permissions of the --unix socket, in octal: 600 lets this user
    /// alone connect, 660 its group too (the proxy's user in that group).
    #[arg(long, env = "SHORTENER_UNIX_MODE", default_value = "600", value_parser = octal_mode)]
    pub unix_mode: u32,

    /// Worker threads (default: one per core).
    #[arg(long, env = "SHORTENER_WORKERS")]
    pub workers: Option<usize>,

    /// File of API keys, one `SCOPE KEY` a line (scopes: read, write,
    /// admin; a key alone is a write key; # comments); the API then needs
    /// `Authorization: Bearer KEY`. Default: DATA/api-keys when it exists.
    /// Keys may also come in SHORTENER_API_KEYS as comma-separated
    /// `scope:key` items. With no key at all (keyless mode) the API
    /// answers only clients on this machine that address it as localhost,
    /// a loopback address or the base URL's host: unsafe behind a reverse
    /// proxy on the same host.
    #[arg(long, env = "SHORTENER_API_KEY_FILE", global = true)]
    pub api_key_file: Option<PathBuf>,

    /// Failed API key attempts each client may make per minute; past them
    /// it gets 429, even with a right key.
    #[arg(long, env = "SHORTENER_AUTH_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub auth_failures_per_minute: u32,

    /// Also serve /metrics and /health (with details) on this address, with
    /// no key asked there: bind it where only operators reach (default:
    /// off; the main address serves them to admin keys).
    #[arg(long, env = "SHORTENER_ADMIN_ADDR")]
    pub admin_addr: Option<String>,

    /// Redirect status: 301, 302, 307 or 308.
    #[arg(long, env = "SHORTENER_REDIRECT_STATUS", default_value_t = 302, value_parser = redirect_status)]
    pub redirect_status: u16,

    /// Most links kept in the redirect cache.
    #[arg(long, env = "SHORTENER_CACHE_ENTRIES", default_value_t = 100_000)]
    pub cache_entries: usize,

    /// Most MiB of links kept in the redirect cache.
    #[arg(long, env = "SHORTENER_CACHE_MB", default_value_t = 64)]
    pub cache_mb: usize,

    /// Seconds a cached link is served before it is read again.
    #[arg(long, env = "SHORTENER_CACHE_TTL", default_value_t = 300)]
    pub cache_ttl: u64,

    /// Seconds an unknown slug is remembered as unknown.
    #[arg(long, env = "SHORTENER_NEGATIVE_TTL", default_value_t = 5)]
    pub negative_ttl: u64,

    /// Milliseconds between click-count flushes to the store.
    #[arg(long, env = "SHORTENER_FLUSH_MS", default_value_t = 1000)]
    pub flush_ms: u64,

    /// Writes each client may make per minute.
    #[arg(long, env = "SHORTENER_WRITES_PER_MINUTE", default_value_t = 120)]
    pub writes_per_minute: u32,

    /// Password guesses each client may make per minute.
    #[arg(long, env = "SHORTENER_GUESSES_PER_MINUTE", default_value_t = 10)]
    pub guesses_per_minute: u32,

    /// Wrong password guesses a link takes (from any number of clients)
    /// before each further guess waits: 1 s, doubling up to 10 min;
    /// forgotten after an hour without a wrong guess.
    #[arg(long, env = "SHORTENER_LINK_GUESSES", default_value_t = 20)]
    pub link_guesses: u32,

    /// Threads for store calls.
    #[arg(long, env = "SHORTENER_BLOCKING_THREADS", default_value_t = 16)]
    pub blocking_threads: usize,

    /// Threads that hash and check passwords (Argon2, 19 MiB each); as many
    /// more wait, and further guesses are answered 503 at once.
    #[arg(long, env = "SHORTENER_PASSWORD_THREADS", default_value_t = 2)]
    pub password_threads: usize,

    /// Access log on standard output.
    #[arg(long, env = "SHORTENER_ACCESS_LOG", value_enum, default_value_t = AccessLogFormat::Off)]
    pub access_log: AccessLogFormat,

    /// Log one request in this many (errors, 4xx and 5xx, always).
    #[arg(long, env = "SHORTENER_ACCESS_LOG_SAMPLE", default_value_t = 1)]
    pub access_log_sample: u32,

    /// Milliseconds a request may wait for the store (or a password hash)
    /// before it is answered `503`.
    #[arg(long, env = "SHORTENER_REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub request_timeout_ms: u64,

    /// Request header in which trusted proxies name the client for rate
    /// limits (default X-Forwarded-For when --trusted-proxy is set): the
    /// rightmost address of its last line that is not a trusted proxy.
    /// Without --trusted-proxy, only loopback peers are trusted.
    #[arg(long, env = "SHORTENER_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,

    /// A proxy (address or CIDR block, e.g. 10.0.0.0/8) whose client-IP
    /// header is believed; repeat the flag, or comma-separate in the
    /// environment. `unix` trusts every peer on the --unix socket (a proxy
    /// on this machine; its permissions say who may connect). Requests
    /// from other peers are their own client; all peers on a Unix socket
    /// that is not trusted count as one client.
    #[arg(
        long = "trusted-proxy",
        env = "SHORTENER_TRUSTED_PROXIES",
        value_name = "CIDR|unix",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<TrustedProxy>,

    /// Directory whose files are served under /static/ (any size, with
    /// sendfile; NAME.br and NAME.gz beside NAME sent compressed); its
    /// app.css and app.js replace the embedded ones. Dot-files and links
    /// out of it are refused; HTML, SVG and XML files are sandboxed (CSP).
    #[arg(long, env = "SHORTENER_ASSETS", value_name = "DIR")]
    pub assets: Option<PathBuf>,

    /// Serve HTTPS (TLS 1.2 and 1.3) with this certificate chain, PEM,
    /// leaf first (certbot's fullchain.pem); needs --tls-key. Every
    /// listener speaks TLS: --addr, --unix, sockets systemd passed (not
    /// --admin-addr). SIGHUP reads the files again; a reload that fails
    /// keeps the certificates in use.
    #[arg(
        long,
        env = "SHORTENER_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert, PEM (certbot's privkey.pem).
    #[arg(
        long,
        env = "SHORTENER_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Another certificate, for clients that ask for NAME (SNI); others
    /// get --tls-cert. Repeat the flag, or separate with `;` in the
    /// environment. A certificate not valid for NAME is refused at start.
    #[arg(
        long = "tls-sni",
        env = "SHORTENER_TLS_SNI",
        value_name = "NAME=CERT,KEY",
        value_delimiter = ';',
        requires = "tls_cert"
    )]
    pub tls_sni: Vec<crate::tls::SniCert>,

    /// Send `Strict-Transport-Security: max-age=SECONDS` over TLS: browsers
    /// then refuse plain HTTP to this host for that long (default: not
    /// sent; start small, e.g. 300, and raise it once HTTPS works).
    #[arg(
        long,
        env = "SHORTENER_HSTS_MAX_AGE",
        value_name = "SECONDS",
        requires = "tls_cert"
    )]
    pub hsts_max_age: Option<u64>,
}

/// Connection pool and timeouts of the PostgreSQL store (`--store
/// postgres://...`); see `store::PgOptions`.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "PostgreSQL store")]
pub struct PgArgs {
    /// Most connections open to PostgreSQL at once.
    #[arg(
        long,
        env = "SHORTENER_PG_MAX_OPEN",
        default_value_t = 16,
        global = true
    )]
    pub pg_max_open: usize,

    /// Most idle PostgreSQL connections kept open.
    #[arg(
        long,
        env = "SHORTENER_PG_MAX_IDLE",
        default_value_t = 16,
        global = true
    )]
    pub pg_max_idle: usize,

    /// Seconds a PostgreSQL connection is used before it is replaced.
    #[arg(
        long,
        env = "SHORTENER_PG_MAX_LIFETIME",
        default_value_t = 1800,
        global = true
    )]
    pub pg_max_lifetime: u64,

    /// Seconds an unused PostgreSQL connection is kept.
    #[arg(
        long,
        env = "SHORTENER_PG_IDLE_TIMEOUT",
        default_value_t = 300,
        global = true
    )]
    pub pg_idle_timeout: u64,

    /// Milliseconds to open a TCP connection to PostgreSQL.
    #[arg(
        long,
        env = "SHORTENER_PG_CONNECT_TIMEOUT_MS",
        default_value_t = 2000,
        global = true
    )]
    pub pg_connect_timeout_ms: u64,

    /// Milliseconds a store call waits for a free connection.
    #[arg(
        long,
        env = "SHORTENER_PG_CHECKOUT_TIMEOUT_MS",
        default_value_t = 2000,
        global = true
    )]
    pub pg_checkout_timeout_ms: u64,

    /// Milliseconds a statement may run before the server cancels it
    /// (statement_timeout; 0: no limit).
    #[arg(
        long,
        env = "SHORTENER_PG_STATEMENT_TIMEOUT_MS",
        default_value_t = 2000,
        global = true
    )]
    pub pg_statement_timeout_ms: u64,

    /// Milliseconds without an acknowledgement from the server before a
    /// connection is dropped as cut (TCP_USER_TIMEOUT, Linux).
    #[arg(
        long,
        env = "SHORTENER_PG_TCP_USER_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub pg_tcp_user_timeout_ms: u64,
}

impl PgArgs {
    /// The store's options from these flags.
    pub fn options(&self) -> PgOptions {
        PgOptions {
            max_open: self.pg_max_open.max(1),
            max_idle: self.pg_max_idle,
            max_lifetime: Duration::from_secs(self.pg_max_lifetime),
            idle_timeout: Duration::from_secs(self.pg_idle_timeout),
            connect_timeout: Duration::from_millis(self.pg_connect_timeout_ms.max(1)),
            checkout_timeout: Duration::from_millis(self.pg_checkout_timeout_ms),
            statement_timeout: Duration::from_millis(self.pg_statement_timeout_ms),
            tcp_user_timeout: Duration::from_millis(self.pg_tcp_user_timeout_ms),
        }
    }
}

impl Cli {
    /// The store spec: `--store`, or the SQLite file in `--data`.
    pub fn store_spec(&self) -> String {
        match &self.store {
            Some(spec) => spec.clone(),
            None => format!("sqlite:{}", self.data.join("shortener.db").display()),
        }
    }

    /// The base URL: `--base-url` without a trailing slash, or `http://ADDR`
    /// (`https://ADDR` with `--tls-cert`).
    pub fn base_url(&self) -> String {
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None if self.serve.tls_cert.is_some() => format!("https://{}", self.serve.addr),
            None => format!("http://{}", self.serve.addr),
        }
    }

    /// The certificate files of `--tls-cert`, `--tls-key` and `--tls-sni`;
    /// `None` without TLS (clap makes sure the cert and key come together).
    pub fn tls_files(&self) -> Option<crate::tls::CertFiles> {
        let s = &self.serve;
        Some(crate::tls::CertFiles {
            cert: s.tls_cert.clone()?,
            key: s.tls_key.clone()?,
            sni: s.tls_sni.clone(),
        })
    }

    /// `--addr` as a socket address (a name resolved as `bind` does);
    /// `None` with `--unix`, which replaces it.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        if self.serve.unix.is_some() {
            return None;
        }
        std::net::ToSocketAddrs::to_socket_addrs(self.serve.addr.as_str())
            .ok()?
            .next()
    }

    /// Where this shortener answers: links there are refused.
    pub fn own_address(&self) -> crate::validate::OwnAddress {
        crate::validate::OwnAddress::new(&self.base_url(), self.listen_addr())
    }

    /// The key file: `--api-key-file`, else `DATA/api-keys`.
    pub fn key_file(&self) -> PathBuf {
        match &self.serve.api_key_file {
            Some(path) => path.clone(),
            None => self.data.join(DEFAULT_KEY_FILE),
        }
    }

    /// The API keys from the key file (`--api-key-file`, or `DATA/api-keys`
    /// when it exists) and `SHORTENER_API_KEYS`. A source that is set but
    /// yields no key is an error, never a quiet fall into keyless mode.
    ///
    /// # Errors
    ///
    /// When the key file cannot be read, or a source holds a bad entry or
    /// no key.
    pub fn api_keys(&self) -> Result<KeySet, String> {
        let mut keys = KeySet::default();
        if let Some(text) = std::env::var_os("SHORTENER_API_KEYS") {
            let text = text
                .into_string()
                .map_err(|_| String::from("SHORTENER_API_KEYS is not UTF-8"))?;
            keys.add_env(&text, "SHORTENER_API_KEYS")
                .map_err(|e: KeyError| e.to_string())?;
        }
        let path = self.key_file();
        let explicit = self.serve.api_key_file.is_some();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let origin = format!("key file {}", path.display());
                keys.add_file(&text, &origin).map_err(|e| e.to_string())?;
            }
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot read the API keys in {}: {e}",
                    path.display()
                ))
            }
        }
        Ok(keys)
    }

    /// The app's settings from these flags.
    ///
    /// # Errors
    ///
    /// As [`api_keys`](Cli::api_keys), and when `--assets` is not a
    /// directory.
    pub fn app_config(&self) -> Result<AppConfig, String> {
        let s = &self.serve;
        let flush_interval = Duration::from_millis(s.flush_ms.max(10));
        let assets = match &s.assets {
            Some(dir) => {
                Some(Arc::new(AssetDir::open(dir).map_err(|e| {
                    format!("cannot serve --assets {}: {e}", dir.display())
                })?))
            }
            None => None,
        };
        Ok(AppConfig {
            base_url: self.base_url(),
            redirect_status: StatusCode::from_u16(s.redirect_status).unwrap_or(StatusCode::FOUND),
            api_keys: self.api_keys()?,
            cache: CacheConfig {
                max_entries: s.cache_entries.max(1),
                max_bytes: s.cache_mb.max(1) << 20,
                ttl: Duration::from_secs(s.cache_ttl.max(1)),
                budget_ttl: flush_interval,
                negative_ttl: Duration::from_secs(s.negative_ttl),
                max_negative: (s.cache_entries / 4).max(1),
            },
            flush_interval,
            writes_per_minute: s.writes_per_minute.max(1),
            password_guesses_per_minute: s.guesses_per_minute.max(1),
            auth_failures_per_minute: s.auth_failures_per_minute.max(1),
            client_ip_header: s.client_ip_header.clone().filter(|h| !h.trim().is_empty()),
            listen_addr: self.listen_addr(),
            trusted_proxies: s
                .trusted_proxies
                .iter()
                .filter_map(|p| match p {
                    TrustedProxy::Block(cidr) => Some(*cidr),
                    TrustedProxy::Unix => None,
                })
                .collect(),
            trust_unix_peers: s.trusted_proxies.contains(&TrustedProxy::Unix),
            link_guesses: s.link_guesses.max(1),
            assets,
            ..AppConfig::default()
        })
    }
}

/// The key file in the data directory when `--api-key-file` is not given.
pub const DEFAULT_KEY_FILE: &str = "api-keys";

fn scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text).ok_or_else(|| String::from("one of read, write, admin"))
}

/// Who may name the client in the client-IP header (`--trusted-proxy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedProxy {
    /// TCP peers in this block.
    Block(Cidr),
    /// Every peer on the Unix socket.
    Unix,
}

impl std::str::FromStr for TrustedProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("unix") {
            return Ok(TrustedProxy::Unix);
        }
        text.parse()
            .map(TrustedProxy::Block)
            .map_err(|e| format!("{e} (or `unix`)"))
    }
}

impl std::fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustedProxy::Block(cidr) => cidr.fmt(f),
            TrustedProxy::Unix => f.write_str("unix"),
        }
    }
}

/// A file mode in octal (`600`, `0660`), permission bits only.
fn octal_mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(String::from("an octal mode from 000 to 777, e.g. 660")),
    }
}

fn redirect_status(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(code @ (301 | 302 | 307 | 308)) => Ok(code),
        _ => Err(String::from("one of 301, 302, 307, 308")),
    }
}

#[cfg(test)]
mod tests;

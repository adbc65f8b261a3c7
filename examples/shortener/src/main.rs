//! `shortener`: serve, import or export. See `shortener --help`.

#![forbid(unsafe_code)]

use clap::Parser;
use keel::middleware::{AccessLog, HandlerExt, LogFormat};
use keel::{Config, Handler, Server};
use shortener::api::MAX_LINK_BODY;
use shortener::app::App;
use shortener::cli::{AccessLogFormat, Cli, Command, KeysCommand};
use shortener::keys::{self, KeySet, Scope};
use shortener::{store, transfer};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

mod restart;

/// The name a hand-over gives the `--admin-addr` socket (`LISTEN_FDNAMES`).
const ADMIN_SOCKET: &str = "admin";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shortener: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    // Keys need no store: made before one is opened.
    if let Some(Command::Keys(KeysCommand::New { scope })) = &cli.command {
        return new_key(cli, *scope);
    }
    // Taken before any thread starts (the store's, the pools'): reading
    // them removes the activation variables from the environment.
    let inherited = match &cli.command {
        None | Some(Command::Serve) => inherited_sockets()?,
        _ => None,
    };
    let spec = cli.store_spec();
    let store = store::open_with(&spec, &cli.pg.options())
        .map_err(|e| format!("cannot open the store {}: {e}", store::redacted(&spec)))?;
    match &cli.command {
        None | Some(Command::Serve) => serve(cli, store, inherited),
        Some(Command::Import { file }) => {
            let own = cli.own_address();
            let report = if file.as_os_str() == "-" {
                transfer::import(&*store, std::io::stdin().lock(), &own)
            } else {
                let input =
                    std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
                transfer::import(&*store, input, &own)
            }
            .map_err(|e| e.to_string())?;
            for (line, reason) in &report.skipped {
                eprintln!("line {line}: skipped: {reason}");
            }
            println!(
                "imported {} links, skipped {}",
                report.imported, report.skipped_total
            );
            Ok(())
        }
        Some(Command::Keys(_)) => unreachable!("handled before the store opens"),
        Some(Command::Export { file }) => {
            let rows = match file {
                Some(path) => {
                    let out = transfer::create_export_file(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    transfer::export(&*store, std::io::BufWriter::new(out))
                }
                None => transfer::export(&*store, std::io::stdout().lock()),
            }
            .map_err(|e| e.to_string())?;
            eprintln!("exported {rows} links");
            Ok(())
        }
    }
}

/// The listening sockets systemd passed (socket activation), if it did.
fn inherited_sockets() -> Result<Option<Vec<keel::InheritedListener>>, String> {
    match keel::systemd_listeners() {
        Ok(sockets) => Ok(Some(sockets)),
        Err(keel::ActivationError::NotActivated) => Ok(None),
        Err(e) => Err(format!("socket activation: {e}")),
    }
}

fn serve(
    cli: &Cli,
    store: store::SharedStore,
    inherited: Option<Vec<keel::InheritedListener>>,
) -> Result<(), String> {
    let config = cli.app_config()?;
    let args = &cli.serve;
    keel::blocking::init(args.blocking_threads.max(1), 4096);
    shortener::password::init(args.password_threads.max(1));
    let keys = config.api_keys.clone();
    let base_url = config.base_url.clone();
    // Read before anything listens: a bad file stops the start.
    let tls = cli.tls_files().map(shortener::tls::Tls::open).transpose()?;
    if tls.is_some() && base_url.starts_with("http://") {
        eprintln!(
            "shortener: WARNING: --base-url {base_url} is plain http:// but this server speaks TLS"
        );
    }
    let app = App::new(store, config);
    let metrics = keel::Metrics::new();
    let routes = app
        .handler(metrics.clone())
        .with(shortener::tls::Hsts::new(args.hsts_max_age));
    // With or without the log layer: one type, one indirect call.
    let handler: Arc<dyn Handler> = match args.access_log {
        AccessLogFormat::Off => Arc::new(routes),
        format => {
            let format = match format {
                AccessLogFormat::Common => LogFormat::Common,
                AccessLogFormat::Combined => LogFormat::Combined,
                _ => LogFormat::Json,
            };
            let log = AccessLog::stdout(format)
                .map_err(|e| format!("cannot start the access log: {e}"))?
                .sample(args.access_log_sample);
            Arc::new(routes.with(log))
        }
    };
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGUSR2,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let server_config = Config {
        // Every route but the bulk one (its own limit, in `api::routes`).
        max_body: MAX_LINK_BODY,
        // A store that hangs costs the client this long at most, then 503.
        deferred_timeout: Duration::from_millis(args.request_timeout_ms.max(1)),
        ..Config::default()
    };
    // A predecessor's (`SIGUSR2`) or systemd's sockets: those named
    // `admin` serve /metrics and /health, the others the app.
    let (admin_sockets, inherited) = match inherited {
        Some(sockets) => {
            let (admin, app) = sockets
                .into_iter()
                .partition(|s| s.name.as_deref() == Some(ADMIN_SOCKET));
            (admin, Some(app))
        }
        None => (Vec::new(), None),
    };
    let admin = match &args.admin_addr {
        Some(_) if !admin_sockets.is_empty() => Some(
            Server::from_listeners(admin_sockets.into_iter().map(|s| s.listener))
                .config(server_config.clone())
                .workers(1)
                .serve(app.admin_handler(metrics.clone()))
                .map_err(|e| format!("cannot serve the inherited admin socket: {e}"))?,
        ),
        Some(addr) => Some(
            Server::bind(addr.as_str())
                .config(server_config.clone())
                .workers(1)
                .serve(app.admin_handler(metrics.clone()))
                .map_err(|e| format!("cannot listen on {addr} (--admin-addr): {e}"))?,
        ),
        None => None,
    };
    let (server, listen) = match (inherited, &args.unix) {
        (Some(sockets), _) => (
            Server::from_listeners(sockets.into_iter().map(|s| s.listener)),
            String::from("the sockets systemd passed"),
        ),
        (None, Some(path)) => (
            Server::bind_unix(path).unix_mode(args.unix_mode),
            format!("unix:{}", path.display()),
        ),
        (None, None) => (Server::bind(args.addr.as_str()), args.addr.clone()),
    };
    let mut server = server.config(server_config).metrics(&metrics);
    if let Some(tls) = &tls {
        server = server.tls(tls.config());
    }
    if let Some(n) = args.workers {
        server = server.workers(n);
    }
    let server = server
        .serve(handler)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let mut addrs: Vec<String> = server
        .listen_addrs()
        .iter()
        .map(|addr| match addr {
            keel::ListenAddr::Tcp(addr) if tls.is_some() => format!("https://{addr}"),
            keel::ListenAddr::Tcp(addr) => format!("http://{addr}"),
            unix => unix.to_string(),
        })
        .collect();
    // One address for all of `bind`'s per-worker sockets, inherited too.
    addrs.dedup();
    println!(
        "shortener: listening on {} with {} workers, store {}, short links {base_url}/...",
        addrs.join(", "),
        server.worker_count(),
        store::redacted(&cli.store_spec()),
    );
    announce_keys(&keys, cli);
    if let Some(admin) = &admin {
        println!(
            "shortener: /metrics and /health on http://{} (no key asked there)",
            admin.local_addr()
        );
    }
    if let Some(tls) = &tls {
        let files = tls.files();
        println!(
            "shortener: TLS with {} ({} more names by SNI); SIGHUP reads the files again",
            files.cert.display(),
            files.sni.len()
        );
    }
    match keel::notify_predecessor() {
        Ok(true) => restart::log("serving; the previous process drains"),
        Ok(false) => {}
        Err(e) => restart::log(&format!(
            "cannot tell the previous process it may stop: {e}"
        )),
    }
    let mut handed_over = false;
    for signal in signals.forever() {
        if signal == signal_hook::consts::SIGHUP {
            reload_certificates(tls.as_ref());
            continue;
        }
        if signal != signal_hook::consts::SIGUSR2 {
            eprintln!("shortener: signal {signal}, shutting down");
            break;
        }
        match restart::hand_over(&server, admin.as_ref()) {
            Ok(pid) => {
                restart::log(&format!("handed over to pid {pid}; draining"));
                handed_over = true;
                break;
            }
            Err(e) => restart::log(&format!("SIGUSR2: no restart, still serving: {e}")),
        }
    }
    let stop = |server: &keel::ServerHandle, grace: Duration| match handed_over {
        true => server.retire(grace),
        false => server.shutdown(grace),
    };
    stop(&server, Duration::from_secs(10));
    if let Some(admin) = &admin {
        stop(admin, Duration::from_secs(1));
    }
    server.join();
    if let Some(admin) = admin {
        admin.join();
    }
    match app.shutdown() {
        Ok(links) => eprintln!("shortener: stopped; last click flush wrote {links} links"),
        Err(e) => return Err(format!("the last click flush failed: {e}")),
    }
    Ok(())
}

/// `SIGHUP`: the certificate files read again; on failure the ones in use
/// stay, and the log says why.
fn reload_certificates(tls: Option<&shortener::tls::Tls>) {
    match tls.map(shortener::tls::Tls::reload) {
        None => eprintln!("shortener: SIGHUP: no TLS certificates to reload"),
        Some(Ok(())) => eprintln!("shortener: SIGHUP: TLS certificates reloaded"),
        Some(Err(e)) => eprintln!(
            "shortener: SIGHUP: TLS certificate reload failed, the previous certificates stay in use: {e}"
        ),
    }
}

/// `shortener keys new --scope S`: a fresh key on stdout, appended to the
/// key file.
fn new_key(cli: &Cli, scope: Scope) -> Result<(), String> {
    let key = keys::generate().map_err(|e| format!("no random source: {e}"))?;
    let path = cli.key_file();
    keys::append(&path, scope, &key).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{key}");
    eprintln!(
        "shortener: added a {scope} key to {}; restart the server to use it",
        path.display()
    );
    Ok(())
}

/// Says at start which keys are in force, or warns at length that none is.
fn announce_keys(keys: &KeySet, cli: &Cli) {
    if keys.is_empty() {
        println!(
            "shortener: no API key configured: keyless mode, the API answers this machine only"
        );
        // Formatted first and written whole: eprintln! writes each piece of
        // its format separately, and a reader could see half the warning.
        let warning = format!(
            "shortener: WARNING: no API key is configured (keyless mode).\n\
             shortener: WARNING: every client connecting from this machine (loopback) is an admin:\n\
             shortener: WARNING: it may list, create, change and delete every link and read all stats.\n\
             shortener: WARNING: a reverse proxy, tunnel or sidecar on this host makes EVERY client a\n\
             shortener: WARNING: loopback client: never run keyless behind one.\n\
             shortener: WARNING: requests must name this server as localhost, a loopback address or\n\
             shortener: WARNING: {} (stops DNS rebinding), and come from no other web origin.\n\
             shortener: WARNING: to set keys: `shortener keys new --scope admin` (writes {}), then restart.",
            cli.base_url(),
            cli.key_file().display(),
        );
        eprintln!("{warning}");
        return;
    }
    println!(
        "shortener: API keys: {} admin, {} write, {} read",
        keys.count(Scope::Admin),
        keys.count(Scope::Write),
        keys.count(Scope::Read),
    );
    let path = cli.key_file();
    if let Ok(meta) = std::fs::metadata(&path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "shortener: WARNING: the key file {} can be read by other users: chmod 600 it",
                path.display()
            );
        }
    }
    if keys.unscoped() > 0 {
        eprintln!(
            "shortener: {} API key(s) have no scope and are read as `write` keys (create and change \
             links, not delete them); write `write KEY` or `admin KEY` in the key file to say so",
            keys.unscoped()
        );
    }
}

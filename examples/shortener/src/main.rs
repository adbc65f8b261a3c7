//! `shortener`: serve, import or export. See `shortener --help`.

#![forbid(unsafe_code)]

use clap::Parser;
use keel::middleware::{AccessLog, HandlerExt, LogFormat};
use keel::{Config, Handler, Server};
use shortener::api::MAX_LINK_BODY;
use shortener::app::App;
use shortener::cli::{AccessLogFormat, Cli, Command};
use shortener::{store, transfer};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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
    let spec = cli.store_spec();
    let store = store::open_with(&spec, &cli.pg.options())
        .map_err(|e| format!("cannot open the store {}: {e}", store::redacted(&spec)))?;
    match &cli.command {
        None | Some(Command::Serve) => serve(cli, store),
        Some(Command::Import { file }) => {
            let own_host = cli.base_url();
            let own_host = own_host.split_once("://").map_or("", |(_, h)| h);
            let report = if file.as_os_str() == "-" {
                transfer::import(&*store, std::io::stdin().lock(), own_host)
            } else {
                let input =
                    std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
                transfer::import(&*store, input, own_host)
            }
            .map_err(|e| e.to_string())?;
            for (line, reason) in &report.skipped {
                eprintln!("line {line}: skipped: {reason}");
            }
            println!(
                "imported {} links, skipped {}",
                report.imported,
                report.skipped.len()
            );
            Ok(())
        }
        Some(Command::Export { file }) => {
            let rows = match file {
                Some(path) => {
                    let out = std::fs::File::create(path)
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

fn serve(cli: &Cli, store: store::SharedStore) -> Result<(), String> {
    let config = cli
        .app_config()
        .map_err(|e| format!("cannot read the API keys: {e}"))?;
    let args = &cli.serve;
    keel::blocking::init(args.blocking_threads.max(1), 4096);
    let no_keys = config.api_keys.is_empty();
    let base_url = config.base_url.clone();
    let app = App::new(store, config);
    let metrics = keel::Metrics::new();
    let routes = app.handler(metrics.clone());
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
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let server_config = Config {
        // Every route but the bulk one (its own limit, in `api::routes`).
        max_body: MAX_LINK_BODY,
        // A store that hangs costs the client this long at most, then 503.
        deferred_timeout: Duration::from_millis(args.request_timeout_ms.max(1)),
        ..Config::default()
    };
    let mut server = Server::bind(args.addr.as_str())
        .config(server_config)
        .metrics(&metrics);
    if let Some(n) = args.workers {
        server = server.workers(n);
    }
    let server = server
        .serve(handler)
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    println!(
        "shortener: listening on http://{} with {} workers, store {}, short links {base_url}/...",
        server.local_addr(),
        server.worker_count(),
        store::redacted(&cli.store_spec()),
    );
    if no_keys {
        println!("shortener: no API key configured: writes are accepted from loopback clients only (set --api-key-file or SHORTENER_API_KEYS)");
    }
    if let Some(signal) = signals.forever().next() {
        eprintln!("shortener: signal {signal}, shutting down");
    }
    server.shutdown(Duration::from_secs(10));
    server.join();
    match app.shutdown() {
        Ok(links) => eprintln!("shortener: stopped; last click flush wrote {links} links"),
        Err(e) => return Err(format!("the last click flush failed: {e}")),
    }
    Ok(())
}

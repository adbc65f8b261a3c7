//! The TechEmpower-style contract keel's tests and benchmarks run against:
//!
//! - `GET /plaintext` -> `Hello, World!` (`text/plain`)
//! - `GET /json` -> `{"message":"Hello, World!"}`, serialised per request
//! - `POST /echo` -> the request body, with the request's `Content-Type`
//! - `GET /large` -> 1 MiB from one shared buffer (the slow-reader attack's answer)
//! - with `--static DIR`: `GET /static/*path` -> the files under `DIR`
//!   (`keel::files::ServeDir`, `.gz`/`.br` variants beside them served to
//!   clients that take them)
//!
//! `hello [--addr HOST:PORT] [--workers N] [--defer-accept SECONDS] [--static DIR]`,
//! or `KEEL_ADDR` / `KEEL_WORKERS` / `KEEL_DEFER_ACCEPT`.
#![forbid(unsafe_code)]

use hello::hello;
use keel::files::ServeDir;
use keel::{Router, Server};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

struct Options {
    addr: String,
    workers: Option<usize>,
    defer_accept: Option<Duration>,
    static_dir: Option<PathBuf>,
}

const USAGE: &str =
    "usage: hello [--addr HOST:PORT] [--workers N] [--defer-accept SECONDS] [--static DIR]
  --addr          listen address (env KEEL_ADDR, default 127.0.0.1:8080)
  --workers       worker threads (env KEEL_WORKERS, default: one per core)
  --defer-accept  TCP_DEFER_ACCEPT wait, 0 for off (env KEEL_DEFER_ACCEPT, default 1)
  --static        serve the files under DIR at /static/ (NAME.gz and NAME.br beside
                  NAME go to clients that accept them); default: off";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        addr: std::env::var("KEEL_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned()),
        workers: None,
        defer_accept: Some(Duration::from_secs(1)),
        static_dir: None,
    };
    let mut workers = std::env::var("KEEL_WORKERS").ok();
    let mut defer_accept = std::env::var("KEEL_DEFER_ACCEPT").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--addr" => options.addr = value()?,
            "--workers" => workers = Some(value()?),
            "--defer-accept" => defer_accept = Some(value()?),
            "--static" => options.static_dir = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(n) = workers {
        options.workers = Some(
            n.parse()
                .map_err(|_| format!("--workers: not a number: {n:?}"))?,
        );
    }
    if let Some(seconds) = defer_accept {
        let seconds: u64 = seconds
            .parse()
            .map_err(|_| format!("--defer-accept: not a number: {seconds:?}"))?;
        options.defer_accept = (seconds > 0).then(|| Duration::from_secs(seconds));
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("hello: {message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let mut server = Server::bind(options.addr.as_str()).defer_accept(options.defer_accept);
    if let Some(n) = options.workers {
        server = server.workers(n);
    }
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("hello: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Without --static the server runs `hello` itself, as the benchmarks
    // measure it: no router lookup in front of it.
    let served = match &options.static_dir {
        None => server.serve(hello),
        Some(dir) => match static_routes(dir) {
            Ok(routes) => server.serve(routes),
            Err(message) => {
                eprintln!("hello: --static {}: {message}", dir.display());
                return ExitCode::from(2);
            }
        },
    };
    let server = match served {
        Ok(server) => server,
        Err(e) => {
            eprintln!("hello: cannot listen on {}: {e}", options.addr);
            return ExitCode::FAILURE;
        }
    };
    println!(
        "hello: listening on http://{} with {} workers",
        server.local_addr(),
        server.worker_count()
    );
    if let Some(signal) = signals.forever().next() {
        eprintln!("hello: signal {signal}, shutting down");
    }
    server.shutdown(Duration::from_secs(5));
    server.join();
    let stats = server.stats();
    eprintln!(
        "hello: stopped after {} requests on {} connections",
        stats.requests, stats.connections_accepted
    );
    ExitCode::SUCCESS
}

/// `/static/*path` from the files under `dir`, everything else from `hello`.
fn static_routes(dir: &std::path::Path) -> Result<keel::Routes, String> {
    let files = ServeDir::new(dir)
        .map_err(|e| format!("cannot serve it: {e}"))?
        .precompressed_gzip()
        .precompressed_br();
    Router::new()
        .get("/static/*path", files)
        .fallback(hello)
        .build()
        .map_err(|e| e.to_string())
}

//! The `hello` contract over TLS on hyper 1.x + tokio-rustls
//! (`keel_benches::hyper_tls`): the baseline of `load/tls.sh`.
//!
//! `hyper_tls --cert PEM --key PEM [--addr HOST:PORT] [--workers N]
//! [--resumption cache|tickets]`: `--workers 1` (the default) serves from
//! one thread on a `current_thread` runtime; `N > 1` runs a multi-thread
//! runtime with `N` workers. Prints `listening on https://ADDR` once it
//! accepts; stops on `SIGINT`/`SIGTERM`.
#![forbid(unsafe_code)]

use keel_benches::hyper_tls::{self, Resumption};
use keel_benches::server_cli;
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: hyper_tls --cert PEM --key PEM [--addr HOST:PORT] [--workers N] [--resumption cache|tickets]
  --cert        the certificate chain, PEM, leaf first (required)
  --key         its private key, PEM (required)
  --addr        listen address (default 127.0.0.1:8443)
  --workers     threads serving: 1 = a current_thread runtime (default),
                N > 1 = a multi-thread runtime with N workers
  --resumption  cache: rustls's default 256-entry session cache, TLS 1.3
                tickets naming its entries (default); tickets: rustls's
                stateless ticketer as well
TLS 1.3 and 1.2 (rustls's safe defaults, aws-lc-rs), ALPN http/1.1;
routes: the hello contract (GET /plaintext, /json, /large, POST /echo)";

fn main() -> ExitCode {
    server_cli::run_with_scheme(
        "hyper_tls",
        "https",
        USAGE,
        "127.0.0.1:8443",
        &["--cert", "--key", "--resumption"],
        |flags| {
            let cert = flags.get("--cert").ok_or("--cert PEM is required")?;
            let key = flags.get("--key").ok_or("--key PEM is required")?;
            let resumption = Resumption::parse(flags.get("--resumption").unwrap_or("cache"))?;
            let config = hyper_tls::server_config(Path::new(cert), Path::new(key), resumption)?;
            Ok(move |listener| hyper_tls::accept_loop(listener, config))
        },
    )
}

//! The `hello` contract over TLS on keel (`Server::tls`): the other side of
//! `load/tls.sh`, against `hyper_tls`.
//!
//! `keel_tls --cert PEM --key PEM [--addr HOST:PORT] [--workers N]
//! [--resumption cache]`: `N` worker threads (default 1), each running the
//! handshakes and records of its connections in its own event loop.
//! rustls's defaults as `hyper_tls` has them: TLS 1.3 and 1.2 with the
//! same provider (aws-lc-rs), ALPN `http/1.1`, resumption through the
//! 256-entry session cache. Prints `listening on https://ADDR` once it
//! accepts; stops on `SIGINT`/`SIGTERM` (their default action).
#![forbid(unsafe_code)]

use keel::tls::{Certificates, TlsConfig};
use keel_benches::server_cli;
use std::process::ExitCode;

const USAGE: &str =
    "usage: keel_tls --cert PEM --key PEM [--addr HOST:PORT] [--workers N] [--resumption cache]
  --cert        the certificate chain, PEM, leaf first (required)
  --key         its private key, PEM (required)
  --addr        listen address (default 127.0.0.1:8443)
  --workers     worker threads (default 1)
  --resumption  cache (the default and only choice: rustls's session cache)
routes: the hello contract (GET /plaintext, /json, /large, POST /echo)";

fn main() -> ExitCode {
    server_cli::run_keel(
        "keel_tls",
        "https",
        USAGE,
        "127.0.0.1:8443",
        &["--cert", "--key", "--resumption"],
        |flags, server| {
            let cert = flags.get("--cert").ok_or("--cert PEM is required")?;
            let key = flags.get("--key").ok_or("--key PEM is required")?;
            if flags.get("--resumption").is_some_and(|r| r != "cache") {
                return Err("--resumption: cache is the only choice".into());
            }
            let tls = Certificates::from_pem_files(cert, key)
                .and_then(TlsConfig::new)
                .map_err(|e| e.to_string())?;
            Ok((server.tls(&tls), keel_benches::keel_app::hello))
        },
    )
}

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
use keel::Server;
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
    let mut addr = "127.0.0.1:8443".to_owned();
    let mut workers = 1;
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--addr" | "--workers" | "--cert" | "--key" | "--resumption" => args.next(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => None,
        };
        match (arg.as_str(), value) {
            ("--addr", Some(v)) => addr = v,
            ("--cert", Some(v)) => cert = Some(v),
            ("--key", Some(v)) => key = Some(v),
            ("--resumption", Some(v)) if v == "cache" => {}
            ("--workers", Some(v)) if v.parse::<usize>().is_ok_and(|n| n > 0) => {
                workers = v.parse().unwrap_or(1)
            }
            _ => {
                eprintln!("keel_tls: bad argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(cert), Some(key)) = (cert, key) else {
        eprintln!("keel_tls: --cert and --key are required\n{USAGE}");
        return ExitCode::from(2);
    };
    let tls = match Certificates::from_pem_files(&cert, &key).and_then(TlsConfig::new) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("keel_tls: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::bind(addr.as_str())
        .tls(&tls)
        .workers(workers)
        .serve(keel_benches::keel_app::hello)
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("keel_tls: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on https://{}", server.local_addr());
    server.join();
    ExitCode::SUCCESS
}

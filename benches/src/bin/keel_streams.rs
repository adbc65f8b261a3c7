//! The streaming contract (`keel_benches::streams`) on keel: the other side
//! of `load/streams.sh`.
//!
//! `keel_streams [--addr HOST:PORT] [--workers N]`: `N` worker threads
//! (default 1). Prints `listening on http://ADDR` once it accepts; stops on
//! `SIGINT`/`SIGTERM` (their default action).
#![forbid(unsafe_code)]

use keel::{Config, Server};
use std::process::ExitCode;

const USAGE: &str = "usage: keel_streams [--addr HOST:PORT] [--workers N]
  --addr     listen address (default 127.0.0.1:8084)
  --workers  worker threads (default 1)
  --window   bytes a stream may queue, Config::stream_window (default 262144)
  --unsent   bytes the kernel may hold unsent per socket, Config::max_unsent_per_socket
             (default 131072; 0: no limit)
routes: POST /upload (answers the body's SHA-256), GET /download?bytes=N,
        GET /events (text/event-stream)";

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:8084".to_owned();
    let mut workers = 1;
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--addr" | "--workers" | "--window" | "--unsent" => args.next(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => None,
        };
        match (arg.as_str(), value) {
            ("--addr", Some(v)) => addr = v,
            ("--workers", Some(v)) if v.parse::<usize>().is_ok_and(|n| n > 0) => {
                workers = v.parse().unwrap_or(1)
            }
            ("--window", Some(v)) if v.parse::<usize>().is_ok_and(|n| n > 0) => {
                config.stream_window = v.parse().unwrap_or(config.stream_window)
            }
            ("--unsent", Some(v)) if v.parse::<usize>().is_ok() => {
                config.max_unsent_per_socket = v.parse().ok().filter(|&n| n > 0)
            }
            _ => {
                eprintln!("keel_streams: bad argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let server = match Server::bind(addr.as_str())
        .workers(workers)
        .config(config)
        .serve(keel_benches::keel_streams::routes())
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("keel_streams: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on http://{}", server.local_addr());
    server.join();
    ExitCode::SUCCESS
}

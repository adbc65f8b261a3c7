//! The streaming contract (`keel_benches::streams`) on hyper 1.x: the
//! baseline of `load/streams.sh`.
//!
//! `hyper_streams [--addr HOST:PORT] [--workers N]`: `--workers 1` (the
//! default) serves from one thread on a `current_thread` runtime; `N > 1`
//! runs a multi-thread runtime with `N` worker threads. Prints
//! `listening on http://ADDR` once it accepts; stops on `SIGINT`/`SIGTERM`.
#![forbid(unsafe_code)]

use keel_benches::{hyper_streams, server_cli};
use std::process::ExitCode;

const USAGE: &str = "usage: hyper_streams [--addr HOST:PORT] [--workers N]
  --addr     listen address (default 127.0.0.1:8083)
  --workers  threads serving: 1 = a current_thread runtime (default),
             N > 1 = a multi-thread runtime with N workers
routes: POST /upload (answers the body's SHA-256), GET /download?bytes=N,
        GET /events (text/event-stream)";

fn main() -> ExitCode {
    server_cli::run(
        "hyper_streams",
        USAGE,
        "127.0.0.1:8083",
        hyper_streams::accept_loop,
    )
}

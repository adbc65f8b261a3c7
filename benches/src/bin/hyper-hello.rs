//! The `hello` contract on hyper 1.x: the baseline of `load/run.sh`.
//!
//! `hyper-hello [--addr HOST:PORT] [--workers N]`: `--workers 1` (the
//! default) serves from one thread on a `current_thread` runtime; `N > 1`
//! runs a multi-thread runtime with `N` worker threads. Prints
//! `listening on http://ADDR` once it accepts; stops on `SIGINT`/`SIGTERM`.
#![forbid(unsafe_code)]

use keel_benches::{hyper_app, server_cli};
use std::process::ExitCode;

const USAGE: &str = "usage: hyper-hello [--addr HOST:PORT] [--workers N]
  --addr     listen address (default 127.0.0.1:8081)
  --workers  threads serving: 1 = a current_thread runtime (default),
             N > 1 = a multi-thread runtime with N workers";

fn main() -> ExitCode {
    server_cli::run(
        "hyper-hello",
        USAGE,
        "127.0.0.1:8081",
        hyper_app::accept_loop,
    )
}

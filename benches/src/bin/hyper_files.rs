//! tower-http's `ServeDir` on hyper 1.x (`keel_benches::hyper_files`): the
//! baseline of `load/files.sh`.
//!
//! `hyper_files --root DIR [--addr HOST:PORT] [--workers N]`: `--workers 1`
//! (the default) serves from one thread on a `current_thread` runtime (its
//! file reads on tokio's blocking pool); `N > 1` runs a multi-thread runtime
//! with `N` worker threads. Prints `listening on http://ADDR` once it
//! accepts; stops on `SIGINT`/`SIGTERM`.
#![forbid(unsafe_code)]

use keel_benches::{hyper_files, server_cli};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: hyper_files --root DIR [--addr HOST:PORT] [--workers N]
  --root     the directory served (required)
  --addr     listen address (default 127.0.0.1:8085)
  --workers  threads serving: 1 = a current_thread runtime (default),
             N > 1 = a multi-thread runtime with N workers
routes: GET /PATH answers the file DIR/PATH (tower-http's ServeDir)";

fn main() -> ExitCode {
    server_cli::run_with(
        "hyper_files",
        USAGE,
        "127.0.0.1:8085",
        &["--root"],
        |flags| {
            let root = PathBuf::from(flags.get("--root").ok_or("--root DIR is required")?);
            if !root.is_dir() {
                return Err(format!("--root: not a directory: {}", root.display()));
            }
            Ok(move |listener| hyper_files::accept_loop(listener, root))
        },
    )
}

//! Files from a root directory on keel with `keel::files::ServeDir`
//! (`keel_benches::keel_files`): the other side of `load/files.sh`.
//!
//! `keel_files --root DIR [--addr HOST:PORT] [--workers N]`: `N` worker
//! threads (default 1). Prints `listening on http://ADDR` once it accepts;
//! stops on `SIGINT`/`SIGTERM` (their default action).
#![forbid(unsafe_code)]

use keel_benches::server_cli;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: keel_files --root DIR [--addr HOST:PORT] [--workers N]
  --root     the directory served (required)
  --addr     listen address (default 127.0.0.1:8086)
  --workers  worker threads (default 1)
routes: GET /PATH answers the file DIR/PATH (sendfile beyond a few KiB)";

fn main() -> ExitCode {
    server_cli::run_keel(
        "keel_files",
        "http",
        USAGE,
        "127.0.0.1:8086",
        &["--root"],
        |flags, server| {
            let root = flags.get("--root").map(PathBuf::from);
            let root = root
                .filter(|root| root.is_dir())
                .ok_or("--root DIR (a directory) is required")?;
            Ok((server, keel_benches::keel_files::routes(&root)))
        },
    )
}

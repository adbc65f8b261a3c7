//! The streaming contract (`keel_benches::streams`) on keel: the other side
//! of `load/streams.sh`.
//!
//! `keel_streams [--addr HOST:PORT] [--workers N]`: `N` worker threads
//! (default 1). Prints `listening on http://ADDR` once it accepts; stops on
//! `SIGINT`/`SIGTERM` (their default action).
#![forbid(unsafe_code)]

use keel::Config;
use keel_benches::keel_streams::{routes, DownloadFrom};
use keel_benches::server_cli;
use std::process::ExitCode;

const USAGE: &str = "usage: keel_streams [--addr HOST:PORT] [--workers N]
  --addr     listen address (default 127.0.0.1:8084)
  --workers  worker threads (default 1)
  --window   bytes a stream may queue, Config::stream_window (default 262144)
  --unsent   bytes the kernel may hold unsent per socket, Config::max_unsent_per_socket
             (default 131072; 0: no limit)
  --download-from  thread (default: a BodyStream fed by a thread of its own)
             or worker (a BodySource asked on the worker)
routes: POST /upload (answers the body's SHA-256), GET /download?bytes=N,
        GET /events (text/event-stream)";

fn main() -> ExitCode {
    server_cli::run_keel(
        "keel_streams",
        "http",
        USAGE,
        "127.0.0.1:8084",
        &["--window", "--unsent", "--download-from"],
        |flags, server| {
            let mut config = Config::default();
            if let Some(window) = flags.get("--window") {
                config.stream_window = window
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--window: a positive number of bytes")?;
            }
            if let Some(unsent) = flags.get("--unsent") {
                let bytes: usize = unsent.parse().map_err(|_| "--unsent: a number of bytes")?;
                config.max_unsent_per_socket = Some(bytes).filter(|&n| n > 0);
            }
            let download_from = match flags.get("--download-from") {
                None | Some("thread") => DownloadFrom::Thread,
                Some("worker") => DownloadFrom::Worker,
                Some(_) => return Err("--download-from: thread or worker".into()),
            };
            Ok((server.config(config), routes(download_from)))
        },
    )
}

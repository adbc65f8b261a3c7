//! Files from a root directory on keel with `keel::files::ServeDir`
//! (`keel_benches::keel_files`): the other side of `load/files.sh`.
//!
//! `keel_files --root DIR [--addr HOST:PORT] [--workers N]`: `N` worker
//! threads (default 1). Prints `listening on http://ADDR` once it accepts;
//! stops on `SIGINT`/`SIGTERM` (their default action).
#![forbid(unsafe_code)]

use keel::Server;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: keel_files --root DIR [--addr HOST:PORT] [--workers N]
  --root     the directory served (required)
  --addr     listen address (default 127.0.0.1:8086)
  --workers  worker threads (default 1)
routes: GET /PATH answers the file DIR/PATH (sendfile beyond a few KiB)";

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:8086".to_owned();
    let mut workers = 1;
    let mut root = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--addr" | "--workers" | "--root" => args.next(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => None,
        };
        match (arg.as_str(), value) {
            ("--addr", Some(v)) => addr = v,
            ("--root", Some(v)) => root = Some(PathBuf::from(v)),
            ("--workers", Some(v)) if v.parse::<usize>().is_ok_and(|n| n > 0) => {
                workers = v.parse().unwrap_or(1)
            }
            _ => {
                eprintln!("keel_files: bad argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(root) = root.filter(|root| root.is_dir()) else {
        eprintln!("keel_files: --root DIR (a directory) is required\n{USAGE}");
        return ExitCode::from(2);
    };
    let server = match Server::bind(addr.as_str())
        .workers(workers)
        .serve(keel_benches::keel_files::routes(&root))
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("keel_files: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on http://{}", server.local_addr());
    server.join();
    ExitCode::SUCCESS
}

//! The `hello` contract on hyper 1.x: the baseline of `load/run.sh`.
//!
//! `hyper-hello [--addr HOST:PORT] [--workers N]`: `--workers 1` (the
//! default) serves from one thread on a `current_thread` runtime; `N > 1`
//! runs a multi-thread runtime with `N` worker threads. Prints
//! `listening on http://ADDR` once it accepts; stops on `SIGINT`/`SIGTERM`.
#![forbid(unsafe_code)]

use keel_benches::hyper_app;
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: hyper-hello [--addr HOST:PORT] [--workers N]
  --addr     listen address (default 127.0.0.1:8081)
  --workers  threads serving: 1 = a current_thread runtime (default),
             N > 1 = a multi-thread runtime with N workers";

struct Options {
    addr: SocketAddr,
    workers: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut addr = "127.0.0.1:8081".to_owned();
    let mut workers = "1".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--addr" => addr = value()?,
            "--workers" => workers = value()?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Options {
        addr: addr
            .parse()
            .map_err(|_| format!("--addr: not HOST:PORT: {addr:?}"))?,
        workers: match workers.parse() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("--workers: not a positive number: {workers:?}")),
        },
    })
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = hyper_app::listen(addr)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    println!("listening on http://{}", listener.local_addr()?);
    tokio::select! {
        () = hyper_app::accept_loop(listener) => {}
        _ = terminate.recv() => eprintln!("hyper-hello: SIGTERM, stopping"),
        _ = interrupt.recv() => eprintln!("hyper-hello: SIGINT, stopping"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("hyper-hello: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = if options.workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.workers)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hyper-hello: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On a multi-thread runtime the accept loop runs on a worker, not here.
    let served = runtime.block_on(async {
        match tokio::spawn(serve(options.addr)).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyper-hello: cannot serve on {}: {e}", options.addr);
            ExitCode::FAILURE
        }
    }
}

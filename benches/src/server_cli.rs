//! The command line and runtime of the hyper baseline binaries (`hyper-hello`,
//! `hyper_streams`): `[--addr HOST:PORT] [--workers N]`, a tokio runtime of
//! that many workers, a `listening on http://ADDR` line once the listener is
//! up (the load scripts wait for it), and a clean stop on `SIGINT`/`SIGTERM`.

use crate::hyper_app;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// What the command line asked for.
struct Options {
    addr: SocketAddr,
    workers: usize,
}

/// `Err("")` asks for the usage text (`--help`).
fn parse_options(default_addr: &str) -> Result<Options, String> {
    let mut addr = default_addr.to_owned();
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

async fn serve<F, Fut>(name: &'static str, addr: SocketAddr, accept: F) -> std::io::Result<()>
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = ()>,
{
    let listener = hyper_app::listen(addr)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    println!("listening on http://{}", listener.local_addr()?);
    tokio::select! {
        () = accept(listener) => {}
        _ = terminate.recv() => eprintln!("{name}: SIGTERM, stopping"),
        _ = interrupt.recv() => eprintln!("{name}: SIGINT, stopping"),
    }
    Ok(())
}

/// The whole `main` of a baseline binary: parses the command line (printing
/// `usage` on `--help` or an error), builds the runtime (`--workers 1`, the
/// default: a `current_thread` runtime; `N > 1`: a multi-thread runtime with
/// `N` workers) and runs `accept` on the listener until a signal.
pub fn run<F, Fut>(name: &'static str, usage: &str, default_addr: &str, accept: F) -> ExitCode
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let options = match parse_options(default_addr) {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{name}: {message}\n{usage}");
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
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On a multi-thread runtime the accept loop runs on a worker, not here.
    let served = runtime.block_on(async {
        match tokio::spawn(serve(name, options.addr, accept)).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: cannot serve on {}: {e}", options.addr);
            ExitCode::FAILURE
        }
    }
}

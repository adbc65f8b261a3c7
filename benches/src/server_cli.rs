//! The command line of the benchmark servers, keel's and hyper's alike:
//! `[--addr HOST:PORT] [--workers N]` and a binary's own flags
//! (`--root DIR`, `--cert PEM`...), and a `listening on http://ADDR` line
//! once the listener is up (`https://` for the TLS ones; the load scripts
//! wait for it). The hyper baselines ([`run`], [`run_with`],
//! [`run_with_scheme`]) get a tokio runtime of that many workers and a
//! clean stop on `SIGINT`/`SIGTERM`; keel's ([`run_keel`]) that many
//! workers, stopped by those signals' default action; the peers with a
//! runtime of their own, actix-web's and may's ([`run_peer`]), that many
//! workers as their runtime counts them, stopped as their runtime stops.

use crate::hyper_app;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// What the command line asked for.
struct Options {
    addr: SocketAddr,
    workers: usize,
    flags: Flags,
}

/// The values of a binary's own flags (those it passed to [`run_with`]).
#[derive(Debug, Default)]
pub struct Flags(Vec<(&'static str, String)>);

impl Flags {
    /// The value given to `flag` (its last one), if any.
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(name, _)| *name == flag)
            .map(|(_, value)| value.as_str())
    }
}

/// `Err("")` asks for the usage text (`--help`).
fn parse_options(default_addr: &str, own_flags: &[&'static str]) -> Result<Options, String> {
    let mut addr = default_addr.to_owned();
    let mut workers = "1".to_owned();
    let mut flags = Flags::default();
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
            other => match own_flags.iter().find(|&&own| own == other) {
                Some(&own) => flags.0.push((own, value()?)),
                None => return Err(format!("unknown argument {other:?}")),
            },
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
        flags,
    })
}

async fn serve<F, Fut>(
    name: &'static str,
    scheme: &'static str,
    addr: SocketAddr,
    accept: F,
) -> std::io::Result<()>
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = ()>,
{
    let listener = hyper_app::listen(addr)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    println!("listening on {scheme}://{}", listener.local_addr()?);
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
    run_with(name, usage, default_addr, &[], |_| Ok(accept))
}

/// [`run`] for a binary with flags of its own: `own_flags` (each taking a
/// value) are accepted too, and `setup` turns their values into the accept
/// loop before the runtime starts, or into an error message (printed with
/// the usage text; exit status 2).
pub fn run_with<S, F, Fut>(
    name: &'static str,
    usage: &str,
    default_addr: &str,
    own_flags: &[&'static str],
    setup: S,
) -> ExitCode
where
    S: FnOnce(&Flags) -> Result<F, String>,
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_with_scheme(name, "http", usage, default_addr, own_flags, setup)
}

/// [`run_with`] for a server that speaks `scheme` (`https` for a TLS
/// server), as its `listening on SCHEME://ADDR` line says.
pub fn run_with_scheme<S, F, Fut>(
    name: &'static str,
    scheme: &'static str,
    usage: &str,
    default_addr: &str,
    own_flags: &[&'static str],
    setup: S,
) -> ExitCode
where
    S: FnOnce(&Flags) -> Result<F, String>,
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let parsed = parse_options(default_addr, own_flags)
        .and_then(|options| Ok((setup(&options.flags)?, options)));
    let (accept, options) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return usage_exit(name, usage, &message),
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
        match tokio::spawn(serve(name, scheme, options.addr, accept)).await {
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

/// The exit for a command line that asked for help (`message` empty: the
/// usage text, success) or was wrong (the message and the usage, status 2).
fn usage_exit(name: &str, usage: &str, message: &str) -> ExitCode {
    if message.is_empty() {
        println!("{usage}");
        return ExitCode::SUCCESS;
    }
    eprintln!("{name}: {message}\n{usage}");
    ExitCode::from(2)
}

/// The whole `main` of a keel benchmark server: the command line as the
/// hyper baselines take it, then `setup` turns the binary's own flags into
/// the builder's other settings (TLS, a [`keel::Config`]) and the handler,
/// or into an error message (printed with the usage text; exit status 2).
/// Serves on `--workers` workers until killed.
pub fn run_keel<S, H>(
    name: &'static str,
    scheme: &'static str,
    usage: &str,
    default_addr: &str,
    own_flags: &[&'static str],
    setup: S,
) -> ExitCode
where
    S: FnOnce(&Flags, keel::Server) -> Result<(keel::Server, H), String>,
    H: keel::Handler,
{
    let parsed = parse_options(default_addr, own_flags).and_then(|options| {
        let builder = keel::Server::bind(options.addr).workers(options.workers);
        Ok((setup(&options.flags, builder)?, options.addr))
    });
    let ((builder, handler), addr) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return usage_exit(name, usage, &message),
    };
    let server = match builder.serve(handler) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("{name}: cannot serve on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {scheme}://{}", server.local_addr());
    server.join();
    ExitCode::SUCCESS
}

/// Prints the line the load scripts wait for: `listening on http://ADDR`.
pub fn print_listening(addr: SocketAddr) {
    println!("listening on http://{addr}");
}

/// The whole `main` of a peer server that brings its own runtime
/// (actix-web, may_minihttp): the command line as the others take it, no
/// flags of its own, then `serve(addr, workers)` binds `addr`, calls
/// [`print_listening`] once it accepts, and serves on `workers` workers until
/// the server stops. An error from it is printed (exit status 1).
pub fn run_peer<S>(name: &'static str, usage: &str, default_addr: &str, serve: S) -> ExitCode
where
    S: FnOnce(SocketAddr, usize) -> io::Result<()>,
{
    let options = match parse_options(default_addr, &[]) {
        Ok(options) => options,
        Err(message) => return usage_exit(name, usage, &message),
    };
    match serve(options.addr, options.workers) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: cannot serve on {}: {e}", options.addr);
            ExitCode::FAILURE
        }
    }
}

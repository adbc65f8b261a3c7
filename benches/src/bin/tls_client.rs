//! `tls_client idle|handshakes --addr HOST:PORT --ca PEM [options]`: the
//! rustls client of `load/tls.sh` (`keel_benches::tls_client`).
//!
//! - `idle`: opens `--connections N` TLS connections, each with
//!   `--requests K` answered `GET /plaintext`, prints `READY connections=N
//!   seconds=S`, holds them idle `--hold-seconds` and exits; the script
//!   reads the server's resident memory while they are held.
//! - `handshakes`: `--threads C` threads connect again and again for
//!   `--seconds S` (a handshake, one GET, close), resuming each time with
//!   `--resume`; prints `RESULT connections=N resumed=R seconds=S`.
#![forbid(unsafe_code)]

use keel_benches::tls_client::{self, IdleOptions};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: tls_client idle|handshakes --addr HOST:PORT --ca PEM [options]
  --addr          the TLS server (required)
  --ca            the CA certificate(s) to trust, PEM (required)
  --name          the name to verify and send as SNI (default localhost)
  --kx            key exchange groups offered: default (rustls's: X25519MLKEM768,
                  X25519, P-256, P-384) or x25519 (X25519 alone; the default)
idle: hold connections open
  --connections   connections opened and held (default 2000)
  --requests      GET /plaintext requests on each before it idles (default 1)
  --hold-seconds  how long they are held once all are open (default 30)
  prints READY connections=N seconds=S once all are open
handshakes: a handshake, one GET /plaintext and a close, again and again
  --threads       client threads (default 4)
  --seconds       how long (default 5)
  --resume        resume each thread's last session (default: full handshakes)
  prints RESULT connections=N resumed=R seconds=S";

enum Mode {
    Idle(IdleOptions),
    Handshakes {
        resume: bool,
        threads: usize,
        seconds: u64,
    },
}

struct Options {
    mode: Mode,
    addr: SocketAddr,
    name: ServerName<'static>,
    ca: PathBuf,
    x25519_only: bool,
}

fn parse() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("idle or handshakes?")?;
    if mode == "-h" || mode == "--help" {
        return Err(String::new());
    }
    let (mut addr, mut ca, mut name, mut kx) =
        (None, None, "localhost".to_owned(), "x25519".to_owned());
    let (mut connections, mut requests, mut hold) = (2000, 1, 30);
    let (mut threads, mut seconds, mut resume) = (4, 5, false);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--resume" => {
                resume = true;
                continue;
            }
            _ => {}
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |what: &str| -> Result<u64, String> {
            value
                .parse()
                .map_err(|_| format!("{what}: not a number: {value:?}"))
        };
        match flag.as_str() {
            "--addr" => {
                addr = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--addr: not HOST:PORT: {value:?}"))?,
                )
            }
            "--ca" => ca = Some(PathBuf::from(&value)),
            "--name" => name = value,
            "--kx" => kx = value,
            "--connections" => connections = number("--connections")?,
            "--requests" => requests = number("--requests")?,
            "--hold-seconds" => hold = number("--hold-seconds")?,
            "--threads" => threads = number("--threads")?,
            "--seconds" => seconds = number("--seconds")?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let addr = addr.ok_or("--addr HOST:PORT is required")?;
    let name =
        ServerName::try_from(name.clone()).map_err(|_| format!("--name: not a name: {name:?}"))?;
    let count = |n: u64, what: &str| usize::try_from(n).map_err(|_| format!("{what}: too many"));
    let mode = match mode.as_str() {
        "idle" => Mode::Idle(IdleOptions {
            addr,
            name: name.clone(),
            connections: count(connections, "--connections")?,
            requests: count(requests, "--requests")?,
            hold: Duration::from_secs(hold),
        }),
        "handshakes" if threads > 0 => Mode::Handshakes {
            resume,
            threads: count(threads, "--threads")?,
            seconds,
        },
        "handshakes" => return Err("--threads: at least 1".to_owned()),
        other => return Err(format!("idle or handshakes, not {other:?}")),
    };
    let x25519_only = match kx.as_str() {
        "x25519" => true,
        "default" => false,
        other => return Err(format!("--kx: default or x25519, not {other:?}")),
    };
    Ok(Options {
        mode,
        addr,
        name,
        ca: ca.ok_or("--ca PEM is required")?,
        x25519_only,
    })
}

fn run(options: &Options) -> Result<(), String> {
    let mut provider = aws_lc_rs::default_provider();
    if options.x25519_only {
        provider.kx_groups = vec![aws_lc_rs::kx_group::X25519];
    }
    let config = tls_client::client_config_with(&options.ca, provider)?;
    match options.mode {
        Mode::Idle(ref idle) => tls_client::hold_idle(idle, &config).map_err(|e| e.to_string()),
        Mode::Handshakes {
            resume,
            threads,
            seconds,
        } => {
            let started = Instant::now();
            let count = tls_client::handshakes(
                options.addr,
                &options.name,
                &config,
                resume,
                threads,
                Duration::from_secs(seconds),
            )
            .map_err(|e| e.to_string())?;
            println!(
                "RESULT connections={} resumed={} seconds={:.3}",
                count.connections,
                count.resumed,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("tls_client: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls_client: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `tls_idle --addr HOST:PORT --ca PEM [--name NAME] [--connections N]
//! [--requests K] [--hold-seconds S]`: opens N TLS connections (rustls,
//! verifying the server against the CA in PEM for NAME), each with K
//! answered `GET /plaintext` requests, prints `READY connections=N
//! seconds=S`, holds them idle S seconds and exits: `load/tls.sh` reads the
//! server's resident memory while they are held
//! (`keel_benches::tls_idle::hold_idle`).
#![forbid(unsafe_code)]

use keel_benches::tls_idle::{self, IdleOptions};
use rustls::pki_types::ServerName;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: tls_idle --addr HOST:PORT --ca PEM [--name NAME] [--connections N] [--requests K] [--hold-seconds S]
  --addr          the TLS server (required)
  --ca            the CA certificate(s) to trust, PEM (required)
  --name          the name to verify and send as SNI (default localhost)
  --connections   connections opened and held (default 2000)
  --requests      GET /plaintext requests on each before it idles (default 1)
  --hold-seconds  how long they are held once all are open (default 30)
prints READY connections=N seconds=S once all are open";

fn parse() -> Result<(IdleOptions, PathBuf), String> {
    let (mut addr, mut ca, mut name) = (None, None, "localhost".to_owned());
    let (mut connections, mut requests, mut hold) = (2000, 1, 30);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
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
            "--connections" => connections = number("--connections")?,
            "--requests" => requests = number("--requests")?,
            "--hold-seconds" => hold = number("--hold-seconds")?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let name =
        ServerName::try_from(name.clone()).map_err(|_| format!("--name: not a name: {name:?}"))?;
    let options = IdleOptions {
        addr: addr.ok_or("--addr HOST:PORT is required")?,
        name,
        connections: usize::try_from(connections).map_err(|_| "--connections: too many")?,
        requests: usize::try_from(requests).map_err(|_| "--requests: too many")?,
        hold: Duration::from_secs(hold),
    };
    Ok((options, ca.ok_or("--ca PEM is required")?))
}

fn main() -> ExitCode {
    let (options, ca) = match parse() {
        Ok(parsed) => parsed,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("tls_idle: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let held = tls_idle::client_config(&ca)
        .and_then(|config| tls_idle::hold_idle(&options, &config).map_err(|e| e.to_string()));
    match held {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls_idle: {e}");
            ExitCode::FAILURE
        }
    }
}

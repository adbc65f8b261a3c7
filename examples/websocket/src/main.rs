//! `websocket [--listen ADDR] [--max-sockets N] [--max-message BYTES] [--idle SECS]`:
//! serves WebSocket echo (`/echo`) and chat (`/chat`) on keel.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;
use websocket::{App, Limits};

const USAGE: &str = "\
usage: websocket [OPTIONS]

WebSocket echo (ws://ADDR/echo) and chat room (ws://ADDR/chat) on keel.

options:
  --listen ADDR        address to listen on (default 127.0.0.1:8080; port 0 picks one)
  --max-sockets N      WebSockets open at once, one thread each; more get 503 (default 256)
  --max-message BYTES  largest message; a larger one is closed with 1009 (default 1048576)
  --idle SECS          close a WebSocket silent this long (default 300)
  -h, --help           this text

Prints `listening on http://ADDR` once it serves.
";

fn main() -> ExitCode {
    let (listen, limits) = match parse(std::env::args().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("websocket: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match keel::Server::bind(&listen).serve(App::new(limits)) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("websocket: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on http://{}", server.local_addr());
    server.join();
    ExitCode::SUCCESS
}

/// The address and limits from the command line; `None` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<(String, Limits)>, String> {
    let mut listen = "127.0.0.1:8080".to_owned();
    let mut limits = Limits::default();
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!("{flag}: {value:?} is not a positive number"))
        };
        match flag.as_str() {
            "--listen" => listen = value.clone(),
            "--max-sockets" => limits.max_sockets = number()? as usize,
            "--max-message" => limits.max_message = number()? as usize,
            "--idle" => limits.idle = Duration::from_secs(number()?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(Some((listen, limits)))
}

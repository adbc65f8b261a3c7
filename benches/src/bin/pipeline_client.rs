//! `pipeline_client ADDR BATCHES [DEPTH] [PATH]`: on one connection, sends
//! `BATCHES` writes of `DEPTH` (default 16) requests for `PATH` (default
//! `/plaintext`), each shaped as wrk shapes them (`GET PATH HTTP/1.1` and a
//! `Host` field alone), and reads all their answers before the next write.
//! Exits non-zero unless every answer is a `200`. Prints `RESULT requests=N`.
//!
//! `load/server_instructions.sh` drives servers under callgrind with it: a
//! fixed number of requests, and so a count of instructions that does not
//! depend on timing, as wrk's would.
#![forbid(unsafe_code)]

use keel_benches::wire;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::process::ExitCode;

const USAGE: &str = "usage: pipeline_client ADDR BATCHES [DEPTH] [PATH]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let depth = args.get(2).map_or(Ok(wire::PIPELINE_DEPTH), |d| d.parse());
    let (Some(addr), Some(Ok(batches)), Ok(depth)) =
        (args.first(), args.get(1).map(|b| b.parse::<usize>()), depth)
    else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let path = args.get(3).map_or("/plaintext", String::as_str);
    let one = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let batch = one.repeat(depth);
    let run = || -> std::io::Result<usize> {
        let mut stream = TcpStream::connect(addr.as_str())?;
        stream.set_nodelay(true)?;
        let mut buf = Vec::new();
        for _ in 0..batches {
            wire::round_trip(&mut stream, batch.as_bytes(), depth, &mut buf)?;
            let ok = buf.windows(12).filter(|w| w == b"HTTP/1.1 200").count();
            if ok != depth {
                let text = String::from_utf8_lossy(&buf);
                return Err(std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!("{ok} of {depth} answers are 200: {text}"),
                ));
            }
        }
        Ok(batches * depth)
    };
    match run() {
        Ok(requests) => {
            println!("RESULT requests={requests}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pipeline_client: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Runs `N` in-memory `GET /plaintext` requests for callgrind to count:
//! `insn-count keel|hyper|httparse|framing N`. `framing` is the client-side
//! check that the keel and hyper runs make on each response
//! ([`wire::response_len`]), alone. Setup and a warm-up of
//! [`WARM_UP`] requests run whatever `N` is, so `N` minus a run with `N = 0`
//! is the steady-state cost of `N` requests (see `load/instructions.sh`).
#![forbid(unsafe_code)]

use keel_benches::{mem, wire};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::process::ExitCode;

const WARM_UP: usize = 100;

fn parse(request: &[u8]) -> usize {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 100];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(request, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("unexpected parse result {other:?}"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(which), Some(Ok(n))) = (args.first(), args.get(1).map(|n| n.parse::<usize>())) else {
        eprintln!("usage: insn-count keel|hyper|httparse|framing N");
        return ExitCode::from(2);
    };
    let mut total = 0usize;
    match which.as_str() {
        "keel" => {
            let mut conn = mem::keel();
            for _ in 0..WARM_UP + n {
                total += conn.request(black_box(wire::PLAINTEXT));
            }
        }
        "hyper" => {
            let mut conn = mem::hyper();
            for _ in 0..WARM_UP + n {
                total += conn.request(black_box(wire::PLAINTEXT));
            }
        }
        "framing" => {
            let response = mem::keel().request_and_keep(wire::PLAINTEXT);
            for _ in 0..WARM_UP + n {
                total += wire::response_len(black_box(&response)).unwrap_or(0);
            }
        }
        "httparse" => {
            for _ in 0..WARM_UP + n {
                total += parse(black_box(wire::PLAINTEXT));
            }
        }
        other => {
            eprintln!("insn-count: unknown target {other:?}");
            return ExitCode::from(2);
        }
    }
    println!("{which}: {} requests, {total} bytes", WARM_UP + n);
    ExitCode::SUCCESS
}

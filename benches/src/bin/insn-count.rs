//! Runs `N` in-memory `GET /plaintext` requests for callgrind to count:
//! `insn-count keel|hyper|httparse|framing N`. `framing` is the client-side
//! check that the keel and hyper runs make on each response
//! ([`wire::response_len`]), alone. Setup and a warm-up of
//! [`WARM_UP`] requests run whatever `N` is, so `N` minus a run with `N = 0`
//! is the steady-state cost of `N` requests (see `load/instructions.sh`).
//! `keel-pipelined16` sends the same requests 16 to a write (issue 16's
//! pipelined mode); `N` should then be a multiple of 16.
//!
//! The compression targets answer [`wire::JSON_GZIP`] with the 16 KiB JSON
//! of [`gzip`]: `keel-gzip` and `hyper-gzip` through keel's `Compression`
//! and tower-http's at gzip level 4 (keel's default), `keel-gzip6` and
//! `hyper-gzip6` at level 6 (tower-http's `CompressionLevel::Default`),
//! `keel-json16k` and `hyper-json16k` without a layer (identity). After the
//! warm-up each checks its last answer ([`gzip::check`]: gzip, and decodes
//! to the JSON) and prints the sizes it sent.
#![forbid(unsafe_code)]

use keel_benches::{gzip, mem, wire};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::process::ExitCode;
use tower_http::compression::CompressionLevel;

/// load/instructions.sh counts these in its gzip profiles' Ir/req too.
const WARM_UP: usize = 100;

fn parse(request: &[u8]) -> usize {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 100];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(request, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("unexpected parse result {other:?}"),
    }
}

/// The warm-up, the check of its last answer, then `n` counted requests.
fn keel_json<H: keel::Handler>(mut conn: mem::KeelMem<H>, gzip: bool, n: usize) -> usize {
    let mut total = 0;
    for _ in 0..WARM_UP {
        total += conn.request_with(wire::JSON_GZIP, wire::framed_len);
    }
    report(gzip::check(conn.last_response(), gzip));
    for _ in 0..n {
        total += conn.request_with(black_box(wire::JSON_GZIP), wire::framed_len);
    }
    total
}

/// As [`keel_json`], for hyper with tower-http's compression at `level`.
fn hyper_json(level: Option<CompressionLevel>, n: usize) -> usize {
    let mut conn = mem::hyper_with(move |io| gzip::serve_json(io, level));
    let mut total = 0;
    for _ in 0..WARM_UP {
        total += conn.request_with(wire::JSON_GZIP, wire::framed_len);
    }
    report(gzip::check(conn.last_response(), level.is_some()));
    for _ in 0..n {
        total += conn.request_with(black_box(wire::JSON_GZIP), wire::framed_len);
    }
    total
}

/// Prints what the check found (`load/instructions.sh` reads it), or
/// stops the run: a count of wrong answers is worth nothing.
fn report(checked: Result<gzip::Checked, String>) {
    match checked {
        Ok(c) => println!(
            "checked: json {} bytes, body {} bytes, response {} bytes",
            gzip::json_body().len(),
            c.body_len,
            c.response_len
        ),
        Err(e) => {
            eprintln!("insn-count: wrong answer: {e}");
            std::process::exit(1);
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(which), Some(Ok(n))) = (args.first(), args.get(1).map(|n| n.parse::<usize>())) else {
        eprintln!("usage: insn-count keel|keel-pipelined16|hyper|httparse|framing|keel-gzip|hyper-gzip|keel-gzip6|hyper-gzip6|keel-json16k|hyper-json16k N");
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
        "keel-pipelined16" => {
            // N requests, in batches of 16 per write.
            let batch = wire::PLAINTEXT.repeat(16);
            let mut conn = mem::keel();
            for _ in 0..(WARM_UP + n) / 16 {
                total += conn.pipelined(black_box(&batch), 16);
            }
        }
        "hyper" => {
            let mut conn = mem::hyper();
            for _ in 0..WARM_UP + n {
                total += conn.request(black_box(wire::PLAINTEXT));
            }
        }
        "keel-gzip" => total += keel_json(mem::keel_with(gzip::keel_gzip(4)), true, n),
        "keel-gzip6" => total += keel_json(mem::keel_with(gzip::keel_gzip(6)), true, n),
        "keel-json16k" => total += keel_json(mem::keel_with(gzip::keel_json()), false, n),
        "hyper-gzip" => total += hyper_json(Some(CompressionLevel::Precise(4)), n),
        "hyper-gzip6" => total += hyper_json(Some(CompressionLevel::Default), n),
        "hyper-json16k" => total += hyper_json(None, n),
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

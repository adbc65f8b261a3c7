//! The gzip layer's allocation budget and cost, measured after warm-up with
//! [`MemoryConn`] (the worker's code, no sockets):
//!
//! - a 16 KiB JSON body compressed for a client that accepts gzip: no
//!   allocation per response once the thread's deflate state and output
//!   buffer exist (the first compressed response on a thread allocates them:
//!   miniz_oxide's state, some 300 KiB in a few boxes, and the buffer);
//! - the same body to a client that does not accept gzip, and the `HEAD`
//!   of it: nothing;
//! - then, printed: time per response and size at gzip levels 1, 4, 6 and 9,
//!   against the same response without the layer (run with `--release`
//!   for numbers worth quoting).
//!
//! Its own test binary, without the test harness (`harness = false` in
//! Cargo.toml, a plain `main`): the counting allocator sees every thread of
//! the process, and the harness's own thread allocates while it reports.

use keel::middleware::{Compression, HandlerExt};
use keel::testing::{allocations, CountingAllocator, MemoryConn};
use keel::{Handler, Request, Response};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// 16 KiB of a JSON list of links, as the shortener's list answers.
fn json_16k() -> Arc<[u8]> {
    let mut body = b"[".to_vec();
    let mut i = 0u64;
    while body.len() < 16 * 1024 - 200 {
        // Varied numbers, as real records have, so deflate has work to do.
        let clicks = i.wrapping_mul(2_654_435_761) % 100_000;
        let line = format!(
            "{{\"slug\":\"k{i:05x}\",\"target\":\"https://example.org/articles/{}\",\"clicks\":{clicks},\"created\":\"2026-01-{:02}T10:{:02}:00Z\"}},",
            clicks * 31,
            1 + i % 28,
            i % 60
        );
        body.extend_from_slice(line.as_bytes());
        i += 1;
    }
    body.pop();
    body.push(b']');
    body.into()
}

fn app(body: Arc<[u8]>) -> impl Handler {
    move |_: &Request<'_>, res: &mut Response<'_>| {
        res.header("Content-Type", "application/json")
            .header("ETag", "\"v1\"")
            .body(&body);
    }
}

const GZIP: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n";
const PLAIN: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n";

/// Sends `request` `times` times; returns the allocations counted and the
/// last reply.
fn count(conn: &mut MemoryConn<impl Handler>, request: &[u8], times: usize) -> (u64, Vec<u8>) {
    let mut out = Vec::with_capacity(64 * 1024);
    let before = allocations();
    for _ in 0..times {
        out.clear();
        conn.send(request);
        conn.recv_into(&mut out);
    }
    (allocations() - before, out)
}

fn body_of(reply: &[u8]) -> &[u8] {
    let end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    &reply[end + 4..]
}

fn main() {
    let body = json_16k();
    let mut conn = MemoryConn::new(app(Arc::clone(&body)).with(Compression::new()));

    let (warm_up, reply) = count(&mut conn, GZIP, 3);
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(body_of(&reply))
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, &body[..], "the reply decodes to the body");
    println!("compression_alloc: first 3 compressed responses: {warm_up} allocations");

    for (what, request) in [("gzip", GZIP), ("identity", PLAIN), ("HEAD", HEAD)] {
        count(&mut conn, request, 3);
        let (counted, reply) = count(&mut conn, request, 200);
        let reply = String::from_utf8_lossy(&reply);
        assert_eq!(
            counted, 0,
            "{what}: allocations in 200 responses; last: {reply}"
        );
        let gzipped = reply.contains("\r\nContent-Encoding: gzip\r\n");
        assert_eq!(gzipped, what != "identity", "{reply}");
    }
    println!("compression_alloc: gzip, identity and HEAD answers allocate nothing after warm-up");

    cost(&body);
}

/// Time per response (after 20 to warm up) and the body's length on the wire.
fn per_response(conn: &mut MemoryConn<impl Handler>, request: &[u8]) -> (Duration, usize) {
    const RUNS: u32 = 300;
    count(conn, request, 20);
    let started = Instant::now();
    let (_, reply) = count(conn, request, RUNS as usize);
    (started.elapsed() / RUNS, body_of(&reply).len())
}

/// Prints time per response and size at several levels, with the layer's
/// work isolated by the same response without it.
fn cost(body: &Arc<[u8]>) {
    let mut bare = MemoryConn::new(app(Arc::clone(body)));
    let (base, len) = per_response(&mut bare, GZIP);
    println!("compression_alloc: {len} bytes of JSON without the layer: {base:?} per response");
    for level in [1, 4, 6, 9] {
        let layer = Compression::new().level(level);
        let mut conn = MemoryConn::new(app(Arc::clone(body)).with(layer));
        let (took, gz_len) = per_response(&mut conn, GZIP);
        assert!(gz_len * 3 < len, "level {level}: {gz_len} of {len} bytes");
        println!(
            "compression_alloc: level {level}: {gz_len} bytes ({:.1}%), {took:?} per response",
            gz_len as f64 * 100.0 / len as f64
        );
    }
}

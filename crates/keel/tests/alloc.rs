//! After warm-up, serving keep-alive and pipelined `GET /plaintext` and
//! `GET /json` performs no heap allocation at all, in any thread: with a
//! header added as a checked-once [`keel::Field`] (plaintext) and as a
//! name and value checked per call (json). In each pipelined batch the 15
//! heads after the first replay its parse (`http1/parse/memo.rs`).

use keel::{Request, Response};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[global_allocator]
static GLOBAL: keel::testing::CountingAllocator = keel::testing::CountingAllocator;

#[derive(serde::Serialize)]
struct Message {
    message: &'static str,
}

/// The hello example's contract.
fn hello(req: &Request<'_>, res: &mut Response<'_>) {
    match req.path() {
        "/plaintext" => res
            .field(keel::field!("Content-Type", "text/plain"))
            .body(b"Hello, World!"),
        _ => {
            res.header("Content-Type", "application/json");
            serde_json::to_writer(
                &mut *res,
                &Message {
                    message: "Hello, World!",
                },
            )
            .unwrap();
        }
    }
}

/// Sends one request and reads its response (which ends with `body_end`);
/// returns the response's length. Every response to the same request has the
/// same length, since the `Date` value has a fixed width.
fn response_len(stream: &mut TcpStream, request: &[u8], body_end: &[u8], buf: &mut [u8]) -> usize {
    stream.write_all(request).unwrap();
    let mut len = 0;
    while !buf[..len].ends_with(body_end) {
        let n = stream.read(&mut buf[len..]).unwrap();
        assert!(n > 0, "closed");
        len += n;
    }
    len
}

/// Sends `batch` and reads exactly `expected` bytes back, without allocating.
fn round_trip(stream: &mut TcpStream, batch: &[u8], expected: usize, buf: &mut [u8]) {
    stream.write_all(batch).unwrap();
    stream.read_exact(&mut buf[..expected]).unwrap();
    assert!(buf[..expected].starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn serving_allocates_nothing_after_warm_up() {
    let server = keel::Server::bind("127.0.0.1:0")
        .workers(1)
        .serve(hello)
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let plaintext = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n".to_vec();
    let json = b"GET /json HTTP/1.1\r\nHost: bench\r\n\r\n".to_vec();
    let pipelined_plaintext = plaintext.repeat(16);
    let pipelined_json = json.repeat(16);

    let plain_len = response_len(&mut stream, &plaintext, b"Hello, World!", &mut buf);
    let json_len = response_len(&mut stream, &json, b"\"}", &mut buf);
    let mut run = |stream: &mut TcpStream| {
        for _ in 0..200 {
            round_trip(stream, &plaintext, plain_len, &mut buf);
            round_trip(stream, &json, json_len, &mut buf);
            round_trip(stream, &pipelined_plaintext, 16 * plain_len, &mut buf);
            round_trip(stream, &pipelined_json, 16 * json_len, &mut buf);
        }
    };
    // The first run warms up pools, slab, caches.
    let spent = keel::testing::allocations_after_warm_up(|| run(&mut stream));
    assert_eq!(server.stats().requests, 2 + 2 * 200 * 34);
    assert_eq!(spent, 0, "allocations while serving {} requests", 200 * 34);
    server.shutdown(Duration::ZERO);
    server.join();
}

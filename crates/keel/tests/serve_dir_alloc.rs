//! `ServeDir`'s allocation budget: after warm-up, a `GET` of a small file
//! costs one allocation (the checked relative path, a `String`), and a
//! `304` the same; the rest of the answer (opening beneath the root,
//! validators, the body read into the output buffer) allocates nothing.

use keel::files::ServeDir;
use keel::Router;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[global_allocator]
static GLOBAL: keel::testing::CountingAllocator = keel::testing::CountingAllocator;

/// Sends `request` and reads one answer whose body is `body` bytes long;
/// returns the head's length (without allocating: the counting is on).
fn round_trip(stream: &mut TcpStream, request: &[u8], body: usize, buf: &mut [u8]) -> usize {
    stream.write_all(request).unwrap();
    let mut len = 0;
    loop {
        len += stream.read(&mut buf[len..]).unwrap();
        if let Some(end) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
            stream.read_exact(&mut buf[len..end + 4 + body]).unwrap();
            return end;
        }
    }
}

#[test]
fn a_served_file_costs_one_allocation_after_warm_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("css")).unwrap();
    std::fs::write(dir.path().join("css/site.css"), vec![b'x'; 4096]).unwrap();
    let routes = Router::new()
        .get("/static/*path", ServeDir::new(dir.path()).unwrap())
        .build()
        .unwrap();
    let server = keel::Server::bind("127.0.0.1:0")
        .workers(1)
        .serve(routes)
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let get = b"GET /static/css/site.css HTTP/1.1\r\nHost: t\r\n\r\n";
    let end = round_trip(&mut stream, get, 4096, &mut buf);
    let etag = String::from_utf8_lossy(&buf[..end])
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .unwrap()
        .to_owned();
    let conditional =
        format!("GET /static/css/site.css HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n");
    let mut run = |stream: &mut TcpStream| {
        for _ in 0..100 {
            round_trip(stream, get, 4096, &mut buf);
            assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
            round_trip(stream, conditional.as_bytes(), 0, &mut buf);
            assert!(buf.starts_with(b"HTTP/1.1 304 Not Modified\r\n"));
        }
    };
    let spent = keel::testing::allocations_after_warm_up(|| run(&mut stream));
    assert_eq!(spent, 200, "one allocation per answer, 200 answers");
    server.shutdown(Duration::ZERO);
    server.join();
}

//! Refusing before reading, on the real `shortener` binary over real
//! sockets: bodies over a route's limit, and bodies of clients without a
//! key, are refused from the head; many slow uploads do not grow memory.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use util::attack::peak_rss_kib;
use util::{Options, Shortener};

const KEY: &str = "body-limits-key-0123456789abcdef";
const BULK_LIMIT: usize = 4 << 20;

/// A server that needs `KEY` for writes, with a write rate limit high
/// enough that only the body limits refuse.
fn server() -> Shortener {
    Options::new()
        .env("SHORTENER_API_KEYS", &format!("write:{KEY}"))
        .arg("--writes-per-minute", "100000")
        .start()
}

/// Sends `head` alone (no body byte) and reads the answer until the server
/// closes: it must come at once, as the body it announces is never read.
fn refused_from_head(server: &Shortener, head: &str) -> util::Response {
    let mut stream = server.connect();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .expect("the server answers and closes without waiting for the body");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered after {:?}: it waited for the body",
        started.elapsed()
    );
    let responses = keel::testing::parse_responses(&bytes).expect("one response");
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert!(responses[0].closes(), "{:?}", responses[0]);
    responses[0].clone()
}

fn head(path: &str, auth: bool, len: usize, extra: &str) -> String {
    let auth = if auth {
        format!("Authorization: Bearer {KEY}\r\n")
    } else {
        String::new()
    };
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n{extra}Content-Length: {len}\r\n\r\n"
    )
}

#[test]
fn a_large_body_to_create_is_refused_unread() {
    let server = server();
    let res = refused_from_head(&server, &head("/api/links", true, 1 << 20, ""));
    assert_eq!(res.status, 413, "{}", res.text());
}

#[test]
fn bulk_takes_its_own_limit_but_only_after_auth() {
    let server = server();
    // Without a key: 401 from the head, the 4 MiB never read.
    let res = refused_from_head(&server, &head("/api/links/bulk", false, BULK_LIMIT, ""));
    assert_eq!(res.status, 401, "{}", res.text());
    // With a key, over the bulk limit: 413 from the head.
    let res = refused_from_head(&server, &head("/api/links/bulk", true, BULK_LIMIT + 1, ""));
    assert_eq!(res.status, 413, "{}", res.text());
    // With a key, at the limit: accepted (100 Continue), though far over
    // the 16 KiB every other route takes.
    let mut stream = server.connect();
    let expect = head(
        "/api/links/bulk",
        true,
        BULK_LIMIT,
        "Expect: 100-continue\r\n",
    );
    stream.write_all(expect.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[test]
fn many_slow_bulk_uploads_do_not_grow_memory() {
    // 200 clients each start a 4 MiB bulk upload and send 512 KiB of it:
    // held in full that is over 100 MB. Each worker holds at most
    // `max_body_in_flight` (64 MiB) of declared bodies, 16 uploads; the
    // others get 503 from their head and are never read.
    const CLIENTS: usize = 200;
    const SENT: usize = 512 << 10;
    let server = server();
    assert_eq!(server.get("/health").status, 200);
    let before = peak_rss_kib(server.pid()) << 10;
    let heads = head("/api/links/bulk", true, BULK_LIMIT, "");
    let part = vec![b' '; SENT];
    let streams: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut stream = server.connect();
            stream.write_all(heads.as_bytes()).unwrap();
            // A refused upload may be closed under us: that is the point.
            let _ = stream.write_all(&part);
            stream
        })
        .collect();
    // Each refusal is decided from its head, but under load the server may
    // still be reading them: collect the 503s until none came for 300 ms
    // (at most 10 s), then read the memory they left.
    let least_refused = CLIENTS - 2 * 16;
    let mut streams = streams;
    let mut answered = [false; CLIENTS];
    let (deadline, mut last_new) = (Instant::now() + Duration::from_secs(10), Instant::now());
    for stream in &streams {
        stream.set_nonblocking(true).unwrap();
    }
    loop {
        for (stream, answered) in streams.iter_mut().zip(answered.iter_mut()) {
            let mut reply = [0u8; 64];
            if *answered {
                continue;
            }
            if let Ok(n @ 1..) = stream.read(&mut reply) {
                assert!(
                    reply[..n].starts_with(b"HTTP/1.1 503 "),
                    "{}",
                    String::from_utf8_lossy(&reply[..n])
                );
                *answered = true;
                last_new = Instant::now();
            }
        }
        let refused = answered.iter().filter(|a| **a).count();
        let settled = refused >= least_refused && last_new.elapsed() > Duration::from_millis(300);
        if settled || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = answered.iter().filter(|a| **a).count();
    assert_eq!(server.get("/health").status, 200);
    // The high-water mark: a spike between two readings is not missed.
    let after = peak_rss_kib(server.pid()) << 10;
    eprintln!(
        "RSS {} MB before, {} MB with {CLIENTS} slow 4 MiB uploads ({refused} refused with 503)",
        before >> 20,
        after >> 20
    );
    assert!(
        refused >= least_refused,
        "only {refused} uploads refused: the in-flight cap did not hold"
    );
    assert!(
        after < 100 << 20,
        "RSS {} MB after {CLIENTS} slow 4 MiB uploads (from {} MB)",
        after >> 20,
        before >> 20
    );
}

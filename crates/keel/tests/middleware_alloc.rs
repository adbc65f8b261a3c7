//! After warm-up, a routed request with a path parameter, through two
//! middleware layers (a request id and an access log writing to a sink on
//! its background thread), allocates nothing, in any thread.
//!
//! Its own test binary: the counting allocator sees every thread of the
//! process, so no other test may run beside it.

use keel::middleware::{AccessLog, Cors, HandlerExt, LogFormat, RequestId};
use keel::testing::MemoryConn;
use keel::{Handler, Request, Response, Router};

#[global_allocator]
static GLOBAL: keel::testing::CountingAllocator = keel::testing::CountingAllocator;

fn link(req: &Request<'_>, res: &mut Response<'_>) {
    res.header("Content-Type", "text/plain")
        .body(req.param("slug").unwrap_or_default().as_bytes());
}

/// Sends each request 200 times, checking each reply contains its marker;
/// returns the allocations counted meanwhile.
fn allocations(conn: &mut MemoryConn<impl Handler>, requests: &[(&[u8], &[u8])]) -> u64 {
    let mut out = Vec::with_capacity(64 * 1024);
    let before = keel::testing::allocations();
    for _ in 0..200 {
        for (request, expect) in requests {
            out.clear();
            conn.send(request);
            conn.recv_into(&mut out);
            assert!(
                out.windows(expect.len()).any(|w| w == *expect),
                "{}",
                String::from_utf8_lossy(&out)
            );
        }
    }
    keel::testing::allocations() - before
}

#[test]
fn layered_routed_requests_allocate_nothing_after_warm_up() {
    let routes = || Router::new().get("/links/:slug", link).build().unwrap();
    let requests: &[(&[u8], &[u8])] = &[
        (
            b"GET /links/abc123 HTTP/1.1\r\nHost: t\r\nUser-Agent: test\r\n\r\n",
            b"\r\n\r\nabc123",
        ),
        (
            b"GET /links/x HTTP/1.1\r\nHost: t\r\nX-Request-Id: given-1\r\nOrigin: https://a.example\r\n\r\n",
            b"\r\nX-Request-Id: given-1\r\n",
        ),
        (
            b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\n",
        ),
    ];

    // A request id and an access log (its writer thread sweeping every
    // 100 ms to a sink that takes the bytes and keeps nothing).
    let log = AccessLog::new(LogFormat::Combined, std::io::sink()).unwrap();
    let handle = log.handle();
    let mut conn = MemoryConn::new(routes().with(RequestId::new()).with(log));
    allocations(&mut conn, requests); // warm-up: buffers, pools, caches
    handle.flush_now(); // (allocates its reply channel)
    std::thread::sleep(std::time::Duration::from_millis(250)); // the writer's sweeps warm up too
    let counted = allocations(&mut conn, requests);
    assert_eq!(counted, 0, "allocations with RequestId + AccessLog");

    // A request id and CORS.
    let cors = Cors::origins(&["https://a.example"]).allow_methods(&["GET"]);
    let mut conn = MemoryConn::new(routes().with(RequestId::new()).with(cors));
    allocations(&mut conn, requests);
    let counted = allocations(&mut conn, requests);
    assert_eq!(counted, 0, "allocations with RequestId + Cors");
}

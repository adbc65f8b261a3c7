//! After warm-up, matching and dispatching a routed request (a parameter
//! captured, a 404, a 405 with `Allow`, an automatic OPTIONS and HEAD)
//! through the real connection code allocates nothing.
//!
//! Its own test binary: the counting allocator sees every thread of the
//! process, so no other test may run beside it.

use keel::testing::MemoryConn;
use keel::{Request, Response, Router};

#[global_allocator]
static GLOBAL: keel::testing::CountingAllocator = keel::testing::CountingAllocator;

fn link(req: &Request<'_>, res: &mut Response<'_>) {
    res.header("Content-Type", "text/plain")
        .body(req.param("slug").unwrap_or_default().as_bytes());
}

fn file(req: &Request<'_>, res: &mut Response<'_>) {
    res.body(req.param("path").unwrap_or_default().as_bytes());
}

fn nothing(_: &Request<'_>, _: &mut Response<'_>) {}

#[test]
fn routed_requests_allocate_nothing_after_warm_up() {
    let api = Router::new()
        .get("/repos/:owner/:repo/issues/:number", nothing)
        .post("/links", nothing);
    let routes = Router::new()
        .get("/", nothing)
        .get("/links/new", nothing)
        .get("/links/:slug", link)
        .delete("/links/:slug", nothing)
        .get("/static/*path", file)
        .nest("/api", api)
        .build()
        .unwrap();
    let mut conn = MemoryConn::new(routes);
    let requests: &[(&[u8], &[u8])] = &[
        (
            b"GET /links/abc123 HTTP/1.1\r\nHost: t\r\n\r\n",
            b"\r\n\r\nabc123",
        ),
        (
            b"GET /static/css/site.css HTTP/1.1\r\nHost: t\r\n\r\n",
            b"\r\n\r\ncss/site.css",
        ),
        (
            b"GET /api/repos/o/r/issues/7 HTTP/1.1\r\nHost: t\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
        ),
        (
            b"PUT /links/abc123 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            b"\r\nAllow: DELETE, GET, HEAD, OPTIONS\r\n",
        ),
        (
            b"OPTIONS /links/abc123 HTTP/1.1\r\nHost: t\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n",
        ),
        (
            b"HEAD /links/abc123 HTTP/1.1\r\nHost: t\r\n\r\n",
            b"Content-Length: 6\r\n",
        ),
        (
            b"GET /nope/x HTTP/1.1\r\nHost: t\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\n",
        ),
    ];
    let mut out = Vec::with_capacity(64 * 1024);
    let mut run = |conn: &mut MemoryConn<keel::Routes>| {
        for _ in 0..100 {
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
    };
    run(&mut conn); // warm-up: buffers, pools, the Date cache
    let before = keel::testing::allocations();
    run(&mut conn);
    let after = keel::testing::allocations();
    assert_eq!(
        after - before,
        0,
        "allocations while routing {} requests",
        100 * requests.len()
    );
}

//! A redirect answered from the cache allocates nothing: the lookup, the
//! response and the click count, in any thread, after warm-up. Nor does an
//! embedded page or asset, sent whole, as a range or as a `304`.
//!
//! One test: the counting allocator sees every thread, so no other test
//! may run beside it.

use keel::testing::{allocations, CountingAllocator, MemoryConn, TestResponse as Response};
use shortener::app::{App, AppConfig};
use shortener::model::NewLink;
use shortener::store;
use std::time::Duration;

const N: usize = 1000;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn a_cache_hit_redirect_and_the_embedded_pages_allocate_nothing() {
    let dir = std::env::temp_dir().join(format!("shortener-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = store::open(&format!("sqlite:{}", dir.join("db.sqlite").display())).unwrap();
    let link = store
        .create(&NewLink {
            url: "https://example.com/landing?from=alloc".into(),
            ..NewLink::default()
        })
        .unwrap()
        .link;
    let config = AppConfig {
        // No flush while counting: the flusher's own work is off the
        // request path and allocates by design.
        flush_interval: Duration::from_secs(3600),
        ..AppConfig::default()
    };
    let app = App::new(store, config);
    let mut conn = MemoryConn::new(app.handler(keel::Metrics::new()));

    let request = format!(
        "GET /{} HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: Mozilla/5.0 Firefox/120.0\r\n\
         Referer: https://news.example.com/item?id=1\r\nAccept: text/html\r\n\r\n",
        link.slug
    );
    // Filled directly rather than by a first request's miss: that would
    // leave a blocking-pool thread finishing its job (and allocating)
    // while the count runs.
    let cache = &app.state().cache;
    cache.insert(&link.slug, Some(&link), cache.generation(&link.slug));

    // Warm-up: this thread's click map and the connection's buffers grow.
    let mut out = Vec::with_capacity(1 << 20);
    for _ in 0..100 {
        conn.send(request.as_bytes());
        conn.recv_into(&mut out);
    }
    out.clear();
    // The click flusher thread, started with the app, allocates as it
    // starts and parks for the first time: let it settle.
    wait_until_no_thread_allocates();

    let before = allocations();
    for _ in 0..N {
        conn.send(request.as_bytes());
        conn.recv_into(&mut out);
    }
    let allocated = allocations() - before;

    let responses = keel::testing::parse_responses(&out).unwrap();
    assert_eq!(responses.len(), N);
    assert!(responses.iter().all(|r| r.status == 302));
    assert_eq!(allocated, 0, "allocations over 1000 cache-hit redirects");
    let clicks = &app.state().clicks.counters;
    assert_eq!(clicks.recorded.get(), 100 + N as u64);
    embedded_pages_allocate_nothing(&mut conn);
    drop(conn);
    let flushed = app.shutdown().unwrap();
    assert_eq!(flushed, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pages and assets compiled into the binary, answered by keel's file
/// rules (`keel::files::answer`): whole, revalidated (`304`) and as a range.
fn embedded_pages_allocate_nothing<H: keel::Handler>(conn: &mut MemoryConn<H>) {
    let page = b"GET / HTTP/1.1\r\nHost: sho.rt\r\nAccept: text/html\r\n\r\n";
    let (allocated, res) = count(conn, page);
    assert_eq!(res.status, 200);
    assert_eq!(allocated, 0, "allocations over {N} page GETs");

    let etag = res.header("etag").expect("an ETag");
    let revalidate =
        format!("GET / HTTP/1.1\r\nHost: sho.rt\r\nIf-None-Match: \"old\", {etag}\r\n\r\n");
    let (allocated, res) = count(conn, revalidate.as_bytes());
    assert_eq!(res.status, 304);
    assert_eq!(allocated, 0, "allocations over {N} 304s");

    let range = b"GET /static/app.js HTTP/1.1\r\nHost: sho.rt\r\nRange: bytes=0-99\r\n\r\n";
    let (allocated, res) = count(conn, range);
    assert_eq!(res.status, 206);
    assert_eq!(res.body.len(), 100);
    assert_eq!(allocated, 0, "allocations over {N} ranges");
}

/// Sends `request` 100 times to warm up, then `N` times counting every
/// allocation; returns the count and the last response.
fn count<H: keel::Handler>(conn: &mut MemoryConn<H>, request: &[u8]) -> (u64, Response) {
    // Room for every answer: a growing buffer would count too.
    let mut out = Vec::with_capacity(N * (16 << 10));
    for _ in 0..100 {
        conn.send(request);
        conn.recv_into(&mut out);
    }
    wait_until_no_thread_allocates();
    out.clear();
    let before = allocations();
    for _ in 0..N {
        conn.send(request);
        conn.recv_into(&mut out);
    }
    let allocated = allocations() - before;
    let mut responses = keel::testing::parse_responses(&out).unwrap();
    assert_eq!(responses.len(), N);
    (allocated, responses.pop().unwrap())
}

/// Returns once no thread has allocated for 50 ms (at most 5 s).
fn wait_until_no_thread_allocates() {
    for _ in 0..100 {
        let before = allocations();
        std::thread::sleep(Duration::from_millis(50));
        if allocations() == before {
            return;
        }
    }
    panic!("background threads kept allocating for 5 s");
}

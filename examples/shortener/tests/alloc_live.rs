//! The live page's click hub costs the redirect path no allocation: a
//! cache-hit redirect allocates nothing while another link is watched, nor
//! while its own link is watched, and the watcher sees every click; nor
//! does taking the update and writing it as an event.
//!
//! Its own test binary: the counting allocator sees every thread, so no
//! other test may run beside it (the plain case is tests/alloc.rs).

use keel::testing::{allocations, CountingAllocator, MemoryConn};
use shortener::app::{App, AppConfig};
use shortener::clicks::live::Totals;
use shortener::model::NewLink;
use shortener::store;
use std::time::Duration;

const N: usize = 1000;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn a_redirect_allocates_nothing_while_links_are_watched() {
    let dir = std::env::temp_dir().join(format!("shortener-alloc-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = store::open(&format!("sqlite:{}", dir.join("db.sqlite").display())).unwrap();
    let create = |url: &str| {
        store
            .create(&NewLink {
                url: url.into(),
                ..NewLink::default()
            })
            .unwrap()
            .link
    };
    let followed = create("https://example.com/landing?from=alloc-live");
    let other = create("https://example.com/other");
    let config = AppConfig {
        // No flush while counting (see tests/alloc.rs).
        flush_interval: Duration::from_secs(3600),
        ..AppConfig::default()
    };
    let app = App::new(store, config);
    let mut conn = MemoryConn::new(app.handler(keel::Metrics::new()));
    let request = format!(
        "GET /{} HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: Mozilla/5.0 Firefox/120.0\r\n\
         Referer: https://news.example.com/item?id=1\r\nAccept: text/html\r\n\r\n",
        followed.slug
    );
    let cache = &app.state().cache;
    cache.insert(
        &followed.slug,
        Some(&followed),
        cache.generation(&followed.slug),
    );

    let live = &app.state().clicks.live;
    let mut out = Vec::with_capacity(1 << 20);
    let mut redirects = |conn: &mut MemoryConn<_>| {
        out.clear();
        let before = allocations();
        for _ in 0..N {
            conn.send(request.as_bytes());
            conn.recv_into(&mut out);
        }
        let allocated = allocations() - before;
        let responses = keel::testing::parse_responses(&out).unwrap();
        assert_eq!(responses.len(), N);
        assert!(responses.iter().all(|r| r.status == 302));
        allocated
    };
    // Warm-up: this thread's click map and the connection's buffers grow.
    redirects(&mut conn);
    wait_until_no_thread_allocates();

    let mut watching_other = live.watch(other.id, Totals::default()).unwrap();
    watching_other.latest().unwrap();
    assert_eq!(redirects(&mut conn), 0, "while another link is watched");
    assert_eq!(watching_other.latest(), None, "the other link saw a click");

    let mut watching = live
        .watch(
            followed.id,
            Totals {
                clicks: 5,
                automated: 0,
            },
        )
        .unwrap();
    watching.latest().unwrap();
    assert_eq!(redirects(&mut conn), 0, "while the link itself is watched");
    let mut event = keel::BytesMut::with_capacity(512);
    let before = allocations();
    let update = watching.latest().expect("the clicks were published");
    update.write_event(&mut event);
    assert_eq!(allocations() - before, 0, "taking and writing the event");
    let text = std::str::from_utf8(&event).unwrap();
    assert!(text.starts_with("event: click\nid: "), "{text}");
    assert!(text.contains(&format!("\"clicks\":{}", 5 + N)), "{text}");
    assert_eq!(update.snapshot.totals.clicks, 5 + N as u64);
    let last = update.snapshot.last.unwrap();
    assert_eq!(last.referrer.as_str(), "news.example.com");

    drop((watching, watching_other));
    assert_eq!(live.watchers(), 0);
    drop(conn);
    app.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
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

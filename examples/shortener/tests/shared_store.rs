//! A second writer on the store of a running `shortener` (an import run
//! beside it, another instance on the same file): the redirect cache's
//! lifetimes (`--negative-ttl`, `--cache-ttl`) bound how long the server
//! answers from what it knew before. On PostgreSQL (`SHORTENER_TEST_PG`)
//! the same writes reach the server sooner, through its change feed; the
//! bounds hold all the more (tests/instances.rs measures the feed).

mod util;

use shortener::model::LinkPatch;
use shortener::store;
use std::time::{Duration, Instant};
use util::Options;

#[test]
fn links_created_beside_the_server_appear_after_the_negative_ttl() {
    let server = Options::new().arg("--negative-ttl", "1").start();
    assert_eq!(server.get("/made-outside").status, 404);
    // Remembered as unknown for now.
    assert_eq!(server.get("/made-outside").status, 404);
    let csv = server.data().join("in.csv");
    std::fs::write(&csv, "slug,url\nmade-outside,https://example.com/outside\n").unwrap();
    // On the server's store: its SQLite file, or its PostgreSQL schema.
    let data = server.data().to_str().unwrap().to_owned();
    let out = util::run_cli(&["--data", &data, "import", csv.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "imported 1 links, skipped 0\n"
    );
    let imported = Instant::now();
    let res = util::poll(Duration::from_secs(5), || {
        let res = server.get("/made-outside");
        (res.status == 302).then_some(res)
    })
    .expect("the imported link never showed");
    assert!(imported.elapsed() < Duration::from_millis(2500));
    assert_eq!(res.header("location"), Some("https://example.com/outside"));
}

#[test]
fn links_changed_beside_the_server_are_reread_after_the_cache_ttl() {
    let server = Options::new().arg("--cache-ttl", "1").start();
    server.create_slug("changing", "https://example.com/before");
    assert_eq!(
        server.get("/changing").header("location"),
        Some("https://example.com/before")
    );
    // Past the time to live, unchanged: the visit is answered from the
    // expired entry while it starts the read (stale-while-revalidate).
    // (A change would not do: PostgreSQL's change feed drops the entry.)
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        server.get("/changing").header("location"),
        Some("https://example.com/before")
    );
    let stale = util::metric(&server.metrics(), "shortener_cache_stale_hits_total");
    assert_eq!(stale, 1.0);
    // Another process writes the same store (SQLite file or PostgreSQL
    // schema).
    let other = store::open(server.store_spec()).expect("open the store beside the server");
    let patch = LinkPatch {
        url: Some(String::from("https://example.com/after")),
        ..LinkPatch::default()
    };
    other.update("changing", &patch).unwrap();
    let changed = Instant::now();
    util::poll(Duration::from_secs(5), || {
        let res = server.get("/changing");
        (res.header("location") == Some("https://example.com/after")).then_some(())
    })
    .expect("the change never showed");
    assert!(changed.elapsed() < Duration::from_millis(2500));
    other.delete("changing").unwrap();
    util::poll(Duration::from_secs(5), || {
        (server.get("/changing").status == 404).then_some(())
    })
    .expect("the deletion never showed");
}

//! What survives a stop of the real `shortener` binary: a graceful one
//! (`SIGTERM`) loses no link and no click; `kill -9` loses no acknowledged
//! link.

mod util;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use util::{json, Options};

#[test]
fn a_graceful_stop_keeps_links_and_flushes_every_click() {
    let data = util::data_dir();
    // No timed flush runs before the stop: every click below is written by
    // the shutdown flush alone.
    let mut server = Options::new()
        .data(data.path())
        .arg("--flush-ms", "600000")
        .start();
    server.create_slug("kept", "https://example.com/kept");
    server.create(json!({"url": "https://example.com/budget", "slug": "budget", "max_clicks": 3}));
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
    for i in 0..7 {
        let referer = if i % 2 == 0 {
            "https://a.example/"
        } else {
            "https://b.example/x"
        };
        let res = server.request(
            "GET",
            "/kept",
            &[("Referer", referer), ("User-Agent", firefox)],
            b"",
        );
        assert_eq!(res.status, 302);
    }
    for _ in 0..2 {
        assert_eq!(server.get("/budget").status, 302);
    }
    assert_eq!(server.stats("kept")["total"], 0);

    let (status, stderr) = server.terminate();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(
        stderr.contains("stopped; last click flush wrote 2 links"),
        "{stderr}"
    );
    drop(server);

    let server = Options::new().data(data.path()).start();
    assert_eq!(
        server.get("/kept").header("location"),
        Some("https://example.com/kept")
    );
    let stats = server.stats("kept");
    assert_eq!(stats["total"], 7);
    assert_eq!(
        stats["referrers"],
        json!([{"name": "a.example", "clicks": 4}, {"name": "b.example", "clicks": 3}])
    );
    assert_eq!(stats["agents"], json!([{"name": "firefox", "clicks": 7}]));
    // The budget remembers its 2 clicks: one left.
    assert_eq!(server.link("budget")["clicks"], 2);
    assert_eq!(server.get("/budget").status, 302);
    assert_eq!(server.get("/budget").status, 410);
}

#[test]
fn kill_9_loses_no_acknowledged_link() {
    let data = util::data_dir();
    let mut server = Options::new()
        .data(data.path())
        .arg("--writes-per-minute", "100000")
        .start();
    let mut links: HashMap<String, String> = HashMap::new();
    // 150 one at a time, from 3 clients at once...
    let created: Vec<Vec<Value>> = std::thread::scope(|scope| {
        let server = &server;
        let threads: Vec<_> = (0..3)
            .map(|t| {
                scope.spawn(move || {
                    (0..50)
                        .map(|i| {
                            let url = format!("https://example.com/one/{t}/{i}");
                            let body = if i % 5 == 0 {
                                json!({"url": url, "slug": format!("custom-{t}-{i}")})
                            } else {
                                json!({"url": url})
                            };
                            server.create(body)
                        })
                        .collect()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for link in created.into_iter().flatten() {
        links.insert(
            link["slug"].as_str().unwrap().to_owned(),
            link["url"].as_str().unwrap().to_owned(),
        );
    }
    // ...and 50 in one bulk request.
    let items: Vec<Value> = (0..50)
        .map(|i| json!({"url": format!("https://example.com/bulk/{i}")}))
        .collect();
    let res = server.api("POST", "/api/links/bulk", Some(&json!({"links": items})));
    assert_eq!(res.status, 200);
    for result in json(&res)["results"].as_array().unwrap() {
        assert_eq!(result["status"], 201, "{result}");
        let link = &result["link"];
        links.insert(
            link["slug"].as_str().unwrap().to_owned(),
            link["url"].as_str().unwrap().to_owned(),
        );
    }
    assert_eq!(links.len(), 200);

    server.kill();
    drop(server);

    let server = Options::new().data(data.path()).start();
    for (slug, url) in &links {
        let res = server.get(&format!("/{slug}"));
        assert_eq!(res.status, 302, "{slug}");
        assert_eq!(res.header("location"), Some(url.as_str()), "{slug}");
        assert_eq!(server.link(slug)["url"], url.as_str());
    }
    // And nothing else: exactly these, in the list.
    let mut listed = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = json(&server.api(
            "GET",
            &format!("/api/links?limit=100&cursor={cursor}"),
            None,
        ));
        listed.extend(
            page["links"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["slug"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    listed.sort();
    let mut expected: Vec<String> = links.keys().cloned().collect();
    expected.sort();
    assert_eq!(listed, expected);
}

#[test]
fn clicks_flushed_before_kill_9_are_kept() {
    let data = util::data_dir();
    let mut server = Options::new()
        .data(data.path())
        .arg("--flush-ms", "100")
        .start();
    server.create_slug("flushed", "https://example.com/f");
    for _ in 0..4 {
        assert_eq!(server.get("/flushed").status, 302);
    }
    server.stats_when_total("flushed", 4, Duration::from_secs(5));
    server.kill();
    drop(server);
    let server = Options::new().data(data.path()).start();
    assert_eq!(server.stats("flushed")["total"], 4);
    assert_eq!(server.link("flushed")["clicks"], 4);
}

/// Clicks still coming in when `SIGTERM` arrives: every redirect a client
/// received is in the stats after the restart (the server may have counted
/// a few more whose answers were cut off by the stop, never fewer).
#[test]
fn a_graceful_stop_under_traffic_loses_no_answered_click() {
    let data = util::data_dir();
    let mut server = Options::new()
        .data(data.path())
        .arg("--flush-ms", "600000")
        .start();
    server.create_slug("busy", "https://example.com/busy");
    let addr = server.addr();
    let received = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                let request = util::request("GET", "/busy", &[("Connection", "close")], b"");
                loop {
                    let answer = TcpStream::connect(addr).and_then(|mut stream| {
                        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                        stream.write_all(&request)?;
                        let mut bytes = Vec::new();
                        stream.read_to_end(&mut bytes).map(|_| bytes)
                    });
                    match answer {
                        Ok(bytes) => match keel::testing::parse_response(&bytes, false, true) {
                            Ok((res, _)) if res.status == 302 => {
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        // Stopped listening: the end.
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        util::poll(Duration::from_secs(10), || {
            (received.load(Ordering::Relaxed) >= 300).then_some(())
        })
        .expect("300 redirects");
        let (status, stderr) = server.terminate();
        assert!(status.success(), "{status}: {stderr}");
    });
    drop(server);
    let (received, failed) = (received.into_inner(), failed.into_inner());

    let server = Options::new().data(data.path()).start();
    let total = server.stats("busy")["total"].as_u64().unwrap();
    assert!(
        (received..=received + failed).contains(&total),
        "{total} clicks counted, {received} redirects received, {failed} cut off"
    );
}

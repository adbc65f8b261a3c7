//! What the API derives from a link: click statistics and the QR code.

use crate::util::{self, assert_error, unix_now, Options, Shortener};
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn stats_count_clicks_per_day_referrer_host_and_agent_family() {
    let server = Options::new().arg("--flush-ms", "100").start();
    let link = server.create_slug("counted", "https://example.com/c");
    assert_eq!(link["clicks"], 0);
    let empty = server.stats("counted");
    assert_eq!(
        empty,
        json!({"slug": "counted", "total": 0, "days": [], "referrers": [], "agents": []})
    );

    let day_before = unix_now().div_euclid(86_400);
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
    for _ in 0..3 {
        let res = server.request(
            "GET",
            "/counted",
            &[
                ("Referer", "https://News.Example.com/story?id=1"),
                ("User-Agent", firefox),
            ],
            b"",
        );
        assert_eq!(res.status, 302);
    }
    for _ in 0..2 {
        let res = server.request("GET", "/counted", &[("User-Agent", "curl/8.5.0")], b"");
        assert_eq!(res.status, 302);
    }
    let res = server.request(
        "GET",
        "/counted",
        &[("Referer", "https://t.co/x"), ("User-Agent", "Wget/1.21")],
        b"",
    );
    assert_eq!(res.status, 302);
    // HEAD (link previews) is answered but not counted.
    assert_eq!(server.head("/counted").status, 302);
    let day_after = unix_now().div_euclid(86_400);

    let stats = server.stats_when_total("counted", 6, Duration::from_secs(5));
    if day_before == day_after {
        assert_eq!(
            stats["days"],
            json!([{"day": util::iso_day(day_before), "clicks": 6}])
        );
    }
    assert_eq!(
        stats["referrers"],
        json!([
            {"name": "news.example.com", "clicks": 3},
            {"name": "(direct)", "clicks": 2},
            {"name": "t.co", "clicks": 1},
        ])
    );
    assert_eq!(
        stats["agents"],
        json!([
            {"name": "firefox", "clicks": 3},
            {"name": "curl", "clicks": 2},
            {"name": "wget", "clicks": 1},
        ])
    );
    assert_eq!(stats["slug"], "counted");
    assert_eq!(server.link("counted")["clicks"], 6);
    // Nothing more comes in later.
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(server.stats("counted")["total"], 6);
}

#[test]
fn stats_list_the_top_ten_referrers_most_clicks_first() {
    let server = Options::new().arg("--flush-ms", "100").start();
    server.create_slug("popular", "https://example.com/p");
    let mut stream = server.connect();
    let mut clicks = 0;
    for host in 1..=12 {
        let referer = format!("https://h{host}.example/page");
        let request = util::request("GET", "/popular", &[("Referer", &referer)], b"");
        let batch: Vec<u8> = (0..host).flat_map(|_| request.clone()).collect();
        std::io::Write::write_all(&mut stream, &batch).unwrap();
        for res in util::read_responses(&mut stream, host) {
            assert_eq!(res.status, 302);
        }
        clicks += host;
    }
    let stats = server.stats_when_total("popular", clicks as u64, Duration::from_secs(5));
    let expected: Vec<Value> = (3..=12)
        .rev()
        .map(|host| json!({"name": format!("h{host}.example"), "clicks": host}))
        .collect();
    assert_eq!(stats["referrers"], Value::Array(expected));
}

#[test]
fn qr_svg_is_an_svg_of_the_short_url() {
    let server = Shortener::start();
    server.create_slug("qr-code", "https://example.com/qr");
    let res = server.get("/api/links/qr-code/qr.svg");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("image/svg+xml"));
    let svg = res.text();
    assert!(svg.contains("<svg"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    // Deterministic: the same code twice.
    assert_eq!(server.get("/api/links/qr-code/qr.svg").body, res.body);
    assert_error(&server.get("/api/links/nothing/qr.svg"), 404, "not_found");
}

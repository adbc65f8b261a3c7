//! Attacks on the shortener's own address and on its export file, each
//! performed against the real binary over a real socket (issue 12,
//! findings 9, 12 and 13; the export findings are in transfer_cli.rs).

mod util;

use serde_json::json;
use std::net::Ipv4Addr;
use util::Options;

const KEY: &str = "security-misc-test-key-0123456789abcdef";

/// Every way a browser reads as `127.0.0.1` or `0.0.0.0`, on `port`.
fn loopback_spellings(port: u16) -> Vec<String> {
    [
        "127.1",
        "2130706433",
        "0x7f.0.0.1",
        "0x7F.1",
        "0177.0.0.1",
        "127.0.0.1.",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "0",
        "0.0.0.0",
        "[::]",
        "LocalHost.",
        "a.localhost",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/target"))
    .collect()
}

/// The attack of finding 9: a link to the shortener itself in another
/// spelling, so that two links redirect to each other forever (each hop a
/// click). Every spelling is refused on create, on update and in bulk.
#[test]
fn links_to_the_shortener_in_any_spelling_are_refused() {
    let server = Options::new().key(KEY).start();
    let port = server.addr().port();
    let victim = server.create(json!({"url": "https://example.com/", "slug": "victim"}));
    assert_eq!(victim["slug"], "victim");
    for attack in loopback_spellings(port) {
        let res = server.api("POST", "/api/links", Some(&json!({"url": attack})));
        let message = util::assert_error(&res, 400, "invalid_url");
        assert!(message.contains("this shortener"), "{attack}: {message}");

        let res = server.api("PATCH", "/api/links/victim", Some(&json!({"url": attack})));
        util::assert_error(&res, 400, "invalid_url");
    }
    let res = server.api(
        "POST",
        "/api/links/bulk",
        Some(&json!({"links": [{"url": format!("http://2130706433:{port}/x")}]})),
    );
    let body = util::json(&res);
    let result = &body["results"][0];
    assert_eq!(
        (&result["status"], &result["error"]["code"]),
        (&json!(400), &json!("invalid_url")),
        "{body}"
    );
    // Nothing changed: the victim still leads out, nothing else exists.
    assert_eq!(
        server.get("/victim").header("location"),
        Some("https://example.com/")
    );
    let page = util::json(&server.api("GET", "/api/links", None));
    assert_eq!(page["links"].as_array().unwrap().len(), 1, "{page}");
    // The same hosts on another port are another service: allowed.
    let other = port.wrapping_add(1).max(1);
    server.create(json!({"url": format!("http://2130706433:{other}/x")}));
}

/// With a public base URL, the listen address still counts: a client on
/// the same machine (or any hop that reaches it) would loop through it.
#[test]
fn the_listen_address_counts_besides_the_base_url() {
    let server = Options::new()
        .key(KEY)
        .ip(Ipv4Addr::LOCALHOST)
        .arg("--base-url", "https://sho.rt.example")
        .start();
    let port = server.addr().port();
    for attack in loopback_spellings(port).into_iter().chain([
        "https://SHO.RT.EXAMPLE./x".into(),
        "http://sho.rt.example/x".into(),
    ]) {
        let res = server.api("POST", "/api/links", Some(&json!({"url": attack})));
        util::assert_error(&res, 400, "invalid_url");
    }
    server.create(json!({"url": "https://sho.rt.example:8443/x"}));
}

/// Finding 10: an absolute-form target's path starts after its authority,
/// which ends at the first `/`, `?` or `#`. `http://x?/metrics` is the
/// page `/` with the query `/metrics`, never the metrics; with an admin key
/// (so that `/metrics` itself would answer) it must still be the page.
#[test]
fn an_absolute_form_target_is_routed_by_its_own_path() {
    let server = Options::new()
        .env("SHORTENER_API_KEYS", &format!("admin:{KEY}"))
        .key(KEY)
        .start();
    let auth = format!("Bearer {KEY}");
    let metrics = server.request("GET", "/metrics", &[("Authorization", &auth)], b"");
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert!(metrics.text().contains("keel_"), "the metrics page answers");
    for target in [
        "http://x?/metrics",
        "http://x#/metrics",
        "http://x?/api/links",
    ] {
        let res = server.request("GET", target, &[("Authorization", &auth)], b"");
        assert!(
            !res.text().contains("keel_") && !res.text().contains("\"links\""),
            "{target} reached what its query names: {} {}",
            res.status,
            res.text()
        );
        assert!(
            matches!(res.status, 200 | 400),
            "{target}: {} {}",
            res.status,
            res.text()
        );
    }
}

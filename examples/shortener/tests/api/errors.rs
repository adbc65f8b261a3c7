//! Requests the API refuses: every invalid create (400 with its code), arrays,
//! bodies that are not JSON (415) or too large (413), unknown paths and methods.

use crate::util::{self, assert_error, json, unix_now, Shortener};
use serde_json::{json, Value};

#[test]
fn every_invalid_create_is_a_400_with_its_code_and_writes_nothing() {
    let server = Shortener::start();
    let own = server.base_url();
    let past = util::rfc3339(unix_now() - 60);
    let long_url = format!("https://example.com/{}", "a".repeat(2048));
    let cases: Vec<(Value, &str)> = vec![
        (json!({"url": "example.com/a"}), "invalid_url"),
        (json!({"url": "ftp://example.com/"}), "invalid_url"),
        (json!({"url": "javascript:alert(1)"}), "invalid_url"),
        (json!({"url": "https://"}), "invalid_url"),
        (json!({"url": "https:///path"}), "invalid_url"),
        (json!({"url": "https://exa_mple.com/"}), "invalid_url"),
        (json!({"url": "https://example.com:123456/"}), "invalid_url"),
        (json!({"url": "https://example.com/a b"}), "invalid_url"),
        (
            json!({"url": "https://example.com/\r\nSet-Cookie: a=b"}),
            "invalid_url",
        ),
        (json!({"url": "https://example.com/\nX: y"}), "invalid_url"),
        (json!({"url": "https://example.com/\r"}), "invalid_url"),
        (json!({"url": "https://example.com/\u{0}"}), "invalid_url"),
        (json!({"url": "https://example.com/\t"}), "invalid_url"),
        (json!({"url": "https://example.com/\u{7f}"}), "invalid_url"),
        (
            json!({"url": "https://user:pw@example.com/"}),
            "invalid_url",
        ),
        (
            json!({"url": "https://google.com@evil.example/"}),
            "invalid_url",
        ),
        (json!({"url": long_url}), "invalid_url"),
        (json!({"url": format!("{own}/abc")}), "invalid_url"),
        (json!({"url": own.to_uppercase()}), "invalid_url"),
        (
            json!({"url": "https://example.com/", "slug": "ab"}),
            "invalid_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "a".repeat(65)}),
            "invalid_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "a/b"}),
            "invalid_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "a.bc"}),
            "invalid_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "has space"}),
            "invalid_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "caf\u{e9}"}),
            "invalid_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": ""}),
            "invalid_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "api"}),
            "reserved_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "API"}),
            "reserved_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "metrics"}),
            "reserved_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "health"}),
            "reserved_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "static"}),
            "reserved_slug",
        ),
        (
            json!({"url": "https://example.com/", "slug": "links"}),
            "reserved_slug",
        ),
        (
            json!({"url": "https://example.com/", "expires_at": past}),
            "invalid_expiry",
        ),
        (
            json!({"url": "https://example.com/", "expires_at": "tomorrow"}),
            "invalid_expiry",
        ),
        (
            json!({"url": "https://example.com/", "expires_at": "2030-01-01"}),
            "invalid_expiry",
        ),
        (
            json!({"url": "https://example.com/", "max_clicks": 0}),
            "invalid_max_clicks",
        ),
        (
            json!({"url": "https://example.com/", "max_clicks": -1}),
            "invalid_max_clicks",
        ),
        (
            json!({"url": "https://example.com/", "password": ""}),
            "invalid_password",
        ),
        (
            json!({"url": "https://example.com/", "password": "p".repeat(1025)}),
            "invalid_password",
        ),
        (
            json!({"url": "https://example.com/", "colour": "red"}),
            "invalid_json",
        ),
        (json!({"slug": "abcd"}), "invalid_json"),
        (json!({"url": 5}), "invalid_json"),
        (
            json!({"url": "https://example.com/", "max_clicks": "3"}),
            "invalid_json",
        ),
        (json!("https://example.com/"), "invalid_json"),
    ];
    for (body, code) in &cases {
        let res = server.api("POST", "/api/links", Some(body));
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert_error(&res, 400, code);
        assert_eq!(res.header("cache-control"), Some("no-store"), "{body}");
    }
    for raw in [
        "",
        "{",
        "{\"url\": \"https://example.com/\"",
        "nul\u{0}l",
        "{}",
    ] {
        let res = server.request(
            "POST",
            "/api/links",
            &[("Content-Type", "application/json")],
            raw.as_bytes(),
        );
        assert_error(&res, 400, "invalid_json");
    }
    let list = json(&server.api("GET", "/api/links", None));
    assert_eq!(list, json!({"links": [], "next_cursor": null}));
}

/// serde's derived `Deserialize` takes a struct from a JSON array too
/// (fields by position): `["https://example.com/", "my-slug"]` is not the
/// documented `{url, slug?, ...}` object, and should be `invalid_json`.
#[test]
fn an_array_is_not_a_link() {
    let server = Shortener::start();
    for body in [
        json!(["https://example.com/"]),
        json!(["https://example.com/", "by-position"]),
    ] {
        let res = server.api("POST", "/api/links", Some(&body));
        assert_error(&res, 400, "invalid_json");
    }
    let res = server.api(
        "POST",
        "/api/links/bulk",
        Some(&json!({"links": [["https://example.com/"]]})),
    );
    assert_eq!(json(&res)["results"][0]["status"], 400);
    let res = server.api(
        "POST",
        "/api/links",
        Some(&json!({"url": "https://example.com/"})),
    );
    assert_eq!(json(&res)["slug"].as_str().unwrap().len(), 7);
    let res = server.api(
        "PATCH",
        "/api/links/by-position",
        Some(&json!(["https://example.org/"])),
    );
    assert_error(&res, 400, "invalid_json");
}

#[test]
fn a_body_that_is_not_json_is_415_and_one_too_large_is_413() {
    let server = Shortener::start();
    let body = br#"{"url": "https://example.com/"}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        Some("application/json-patch+json"),
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| ("Content-Type", ct))
            .into_iter()
            .collect();
        for path in ["/api/links", "/api/links/bulk"] {
            let res = server.request("POST", path, &headers, body);
            assert_error(&res, 415, "unsupported_media_type");
        }
    }
    // Parameters and case do not matter.
    let res = server.request(
        "POST",
        "/api/links",
        &[("Content-Type", "Application/JSON; charset=utf-8")],
        body,
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let slug = json(&res)["slug"].as_str().unwrap().to_owned();
    let res = server.request(
        "PATCH",
        &format!("/api/links/{slug}"),
        &[("Content-Type", "text/plain")],
        br#"{"disabled": true}"#,
    );
    assert_error(&res, 415, "unsupported_media_type");

    // A single link's body is bounded at 16 KiB.
    let big = format!(
        r#"{{"url": "https://example.com/", "slug": "big-one", "pad": "{}"}}"#,
        "x".repeat(16 << 10)
    );
    for (method, path) in [
        ("POST", "/api/links"),
        ("PATCH", &*format!("/api/links/{slug}")),
    ] {
        let res = server.request(
            method,
            path,
            &[("Content-Type", "application/json")],
            big.as_bytes(),
        );
        assert_error(&res, 413, "payload_too_large");
    }
    // A bulk body over the route's 4 MiB limit is refused from its
    // declared length, before a byte of it is sent (once the client is
    // known: keyless, it must address the server as a loopback name).
    let head = format!(
        "POST /api/links/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        5 << 20
    );
    let res = server.send(head.as_bytes(), false);
    assert_eq!(res.status, 413, "{}", res.text());
    assert!(res.closes());
    let list = json(&server.api("GET", "/api/links", None));
    assert_eq!(list["links"].as_array().unwrap().len(), 1);
}

#[test]
fn unknown_api_paths_are_json_404s_and_other_methods_405() {
    let server = Shortener::start();
    assert_error(&server.get("/api/nothing"), 404, "not_found");
    assert_error(&server.get("/api/links/abc/nothing"), 404, "not_found");
    // A known path with another method: 405 with the methods it takes.
    let res = server.request("PUT", "/api/links/abc", &[], b"");
    assert_eq!(res.status, 405);
    assert_eq!(
        res.header("allow"),
        Some("DELETE, GET, HEAD, OPTIONS, PATCH")
    );
}

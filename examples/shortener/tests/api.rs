//! The JSON API of the real `shortener` binary over real sockets: every
//! endpoint of docs/shortener.md and every error it lists.

mod util;

use serde_json::{json, Value};
use std::time::Duration;
use util::{assert_error, json, unix_now, Options, Shortener};

/// Checks the shape of a link as the API shows it, and that the generated
/// parts are what the contract says.
fn assert_link(server: &Shortener, link: &Value, url: &str) {
    let slug = link["slug"].as_str().unwrap();
    assert_eq!(link["url"], url, "{link}");
    assert_eq!(link["short_url"], format!("{}/{slug}", server.base_url()));
    let created = link["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 20, "{created}");
    assert!(created.ends_with('Z') && created.as_bytes()[10] == b'T');
    let keys: Vec<&str> = link
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "clicks",
            "created_at",
            "disabled",
            "expires_at",
            "max_clicks",
            "protected",
            "short_url",
            "slug",
            "url"
        ]
    );
}

#[test]
fn create_answers_201_then_200_for_the_same_plain_url() {
    let server = Shortener::start();
    let res = server.api(
        "POST",
        "/api/links",
        Some(&json!({"url": "https://Example.COM/a?b=c#d"})),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let link = json(&res);
    let slug = link["slug"].as_str().unwrap().to_owned();
    assert_eq!(
        res.header("location"),
        Some(format!("/api/links/{slug}").as_str())
    );
    // Generated slugs: 7 base-62 characters.
    assert_eq!(slug.len(), 7);
    assert!(slug.bytes().all(|b| b.is_ascii_alphanumeric()), "{slug}");
    // Scheme and host lowercased, the rest kept.
    assert_link(&server, &link, "https://example.com/a?b=c#d");
    assert_eq!(link["expires_at"], Value::Null);
    assert_eq!(link["disabled"], false);
    assert_eq!(link["max_clicks"], Value::Null);
    assert_eq!(link["clicks"], 0);
    assert_eq!(link["protected"], false);
    let created = link["created_at"].as_str().unwrap();
    let now = util::rfc3339(unix_now());
    assert!(created <= now.as_str(), "{created} after {now}");

    // The same plain URL again: the same link, 200, nothing written.
    let again = server.api(
        "POST",
        "/api/links",
        Some(&json!({"url": "https://example.com/a?b=c#d"})),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.header("location"), None);
    assert_eq!(json(&again), link);

    // With any option it is a new link.
    let budget = server.create(json!({"url": "https://example.com/a?b=c#d", "max_clicks": 5}));
    assert_ne!(budget["slug"], link["slug"]);
    assert_eq!(budget["max_clicks"], 5);
    // Non-ASCII characters in the path are percent-encoded.
    let utf8 = server.create(json!({"url": "https://example.com/caf\u{e9}"}));
    assert_eq!(utf8["url"], "https://example.com/caf%C3%A9");
    // GET shows what POST returned.
    assert_eq!(server.link(&slug), link);
    // Times with an offset or a fraction are kept to the second, in UTC.
    let link = server.create(
        json!({"url": "https://example.com/t", "expires_at": "2099-01-01T01:00:00.75+01:00"}),
    );
    assert_eq!(link["expires_at"], "2099-01-01T00:00:00Z");
    let link = server.create(json!({"url": "https://example.com/big", "max_clicks": i64::MAX}));
    assert_eq!(link["max_clicks"], i64::MAX);
    assert_eq!(server.link(link["slug"].as_str().unwrap()), link);
}

/// A status and the slug of the link answered, if any.
type Outcome = (u16, String);

#[test]
fn concurrent_creates_agree() {
    let server = Shortener::start();
    let (custom, plain): (Vec<Outcome>, Vec<Outcome>) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let body = json!({"url": "https://example.com/same", "slug": "contested"});
                    let custom = server.api("POST", "/api/links", Some(&body));
                    let body = json!({"url": "https://example.com/plain-same"});
                    let plain = server.api("POST", "/api/links", Some(&body));
                    let slug = |res: &util::Response| {
                        json(res)
                            .pointer("/slug")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    };
                    ((custom.status, slug(&custom)), (plain.status, slug(&plain)))
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).unzip()
    });
    // One custom slug is created; every other attempt finds it taken.
    assert_eq!(
        custom.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{custom:?}"
    );
    assert_eq!(
        custom.iter().filter(|(s, _)| *s == 409).count(),
        7,
        "{custom:?}"
    );
    // One plain link is created; the others get it.
    assert_eq!(
        plain.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{plain:?}"
    );
    assert_eq!(
        plain.iter().filter(|(s, _)| *s == 200).count(),
        7,
        "{plain:?}"
    );
    assert!(
        plain.iter().all(|(_, slug)| *slug == plain[0].1),
        "{plain:?}"
    );
    let page = json(&server.api("GET", "/api/links", None));
    assert_eq!(page["links"].as_array().unwrap().len(), 2);
}

#[test]
fn custom_slugs_are_kept_and_a_taken_one_is_409() {
    let server = Shortener::start();
    let link = server.create_slug("my-Link_2", "https://example.com/one");
    assert_eq!(link["slug"], "my-Link_2");
    assert_link(&server, &link, "https://example.com/one");
    let max = "a".repeat(64);
    assert_eq!(
        server.create_slug(&max, "https://example.com/")["slug"],
        max
    );

    for url in ["https://example.com/other", "https://example.com/one"] {
        let res = server.api(
            "POST",
            "/api/links",
            Some(&json!({"url": url, "slug": "my-Link_2"})),
        );
        assert_error(&res, 409, "slug_taken");
    }
    // Slugs are case-sensitive.
    assert_eq!(
        server.create_slug("MY-LINK_2", "https://example.com/two")["slug"],
        "MY-LINK_2"
    );
    assert_eq!(server.link("my-Link_2")["url"], "https://example.com/one");
}

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
fn a_stored_url_never_splits_the_location_header() {
    let server = Shortener::start();
    // Raw bytes too, not only JSON escapes: a CR or LF inside a JSON string
    // is invalid JSON; escaped, it is refused as a control character.
    let raw = b"{\"url\": \"https://example.com/\r\nSet-Cookie: a=b\"}";
    let res = server.request(
        "POST",
        "/api/links",
        &[("Content-Type", "application/json")],
        raw,
    );
    assert_error(&res, 400, "invalid_json");
    for url in [
        "https://example.com/\r\nSet-Cookie: a=b",
        "https://example.com/%0d%0aSet-Cookie:%20a=b",
        "https://example.com/\u{2028}x",
        "https://example.com/\u{85}x",
    ] {
        let res = server.api("POST", "/api/links", Some(&json!({"url": url})));
        if res.status == 400 {
            assert_error(&res, 400, "invalid_url");
            continue;
        }
        assert_eq!(res.status, 201, "{}", res.text());
        let link = json(&res);
        let stored = link["url"].as_str().unwrap();
        assert!(
            stored.bytes().all(|b| b.is_ascii_graphic()),
            "{stored:?} from {url:?}"
        );
        let redirect = server.get(&format!("/{}", link["slug"].as_str().unwrap()));
        assert_eq!(redirect.status, 302);
        assert_eq!(redirect.header("location"), Some(stored));
        assert_eq!(redirect.header("set-cookie"), None);
    }
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
fn get_and_patch_show_the_change_at_once() {
    let server = Shortener::start();
    let link = server.create_slug("patch-me", "https://example.com/old");
    // Warm the redirect cache.
    for _ in 0..2 {
        let res = server.get("/patch-me");
        assert_eq!(res.status, 302);
        assert_eq!(res.header("location"), Some("https://example.com/old"));
    }

    let res = server.api(
        "PATCH",
        "/api/links/patch-me",
        Some(&json!({"url": "https://example.org/new"})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let patched = json(&res);
    assert_eq!(patched["url"], "https://example.org/new");
    assert_eq!(patched["created_at"], link["created_at"]);
    assert_eq!(patched["slug"], "patch-me");
    // The cached link was dropped: the very next redirect has the new URL.
    let res = server.get("/patch-me");
    assert_eq!(res.header("location"), Some("https://example.org/new"));

    let later = util::rfc3339(unix_now() + 3600);
    let res = server.api(
        "PATCH",
        "/api/links/patch-me",
        Some(&json!({"expires_at": later, "max_clicks": 10})),
    );
    let patched = json(&res);
    assert_eq!(patched["expires_at"], later.as_str());
    assert_eq!(patched["max_clicks"], 10);
    assert_eq!(patched["url"], "https://example.org/new");
    // `null` clears; an absent field stays.
    let res = server.api(
        "PATCH",
        "/api/links/patch-me",
        Some(&json!({"expires_at": null})),
    );
    let patched = json(&res);
    assert_eq!(patched["expires_at"], Value::Null);
    assert_eq!(patched["max_clicks"], 10);
    let res = server.api(
        "PATCH",
        "/api/links/patch-me",
        Some(&json!({"max_clicks": null})),
    );
    assert_eq!(json(&res)["max_clicks"], Value::Null);
    // An empty patch changes nothing.
    let res = server.api("PATCH", "/api/links/patch-me", Some(&json!({})));
    assert_eq!(res.status, 200);
    assert_eq!(json(&res), server.link("patch-me"));

    // Invalid changes are refused whole.
    let past = util::rfc3339(unix_now() - 10);
    let cases = [
        (
            json!({"url": "https://example.com/\r\nX: y"}),
            "invalid_url",
        ),
        (
            json!({"url": format!("{}/x", server.base_url())}),
            "invalid_url",
        ),
        (
            json!({"url": "https://ok.example/", "expires_at": past}),
            "invalid_expiry",
        ),
        (
            json!({"url": "https://ok.example/", "max_clicks": 0}),
            "invalid_max_clicks",
        ),
        (
            json!({"url": "https://ok.example/", "password": ""}),
            "invalid_password",
        ),
        (
            json!({"url": "https://ok.example/", "slug": "other"}),
            "invalid_json",
        ),
        (json!({"disabled": "yes"}), "invalid_json"),
    ];
    for (body, code) in &cases {
        let res = server.api("PATCH", "/api/links/patch-me", Some(body));
        assert_error(&res, 400, code);
    }
    assert_eq!(server.link("patch-me")["url"], "https://example.org/new");
    assert_eq!(
        server.get("/patch-me").header("location"),
        Some("https://example.org/new")
    );

    for slug in ["nope-nope", "a.b", "x"] {
        let res = server.api(
            "PATCH",
            &format!("/api/links/{slug}"),
            Some(&json!({"disabled": true})),
        );
        assert_error(&res, 404, "not_found");
        assert_error(&server.get(&format!("/api/links/{slug}")), 404, "not_found");
    }
}

#[test]
fn delete_is_204_then_404_and_the_redirect_is_gone_at_once() {
    let server = Shortener::start();
    let link = server.create_slug("doomed", "https://example.com/doomed");
    assert_eq!(server.get("/doomed").status, 302);
    assert_eq!(server.get("/doomed").status, 302);

    let res = server.api("DELETE", "/api/links/doomed", None);
    assert_eq!(res.status, 204, "{}", res.text());
    assert!(res.body.is_empty());
    assert_error(&server.get("/api/links/doomed"), 404, "not_found");
    assert_error(&server.get("/api/links/doomed/stats"), 404, "not_found");
    assert_error(&server.get("/api/links/doomed/qr.svg"), 404, "not_found");
    assert_eq!(server.get("/doomed").status, 404);
    assert_error(&server.get_json("/doomed"), 404, "not_found");
    assert_error(
        &server.api("DELETE", "/api/links/doomed", None),
        404,
        "not_found",
    );

    // The slug is free again, and the new link starts from nothing.
    let again = server.create_slug("doomed", "https://example.com/reborn");
    assert_ne!(again["created_at"], Value::Null);
    assert_eq!(again["clicks"], 0);
    assert_eq!(
        server.get("/doomed").header("location"),
        Some("https://example.com/reborn")
    );
    let _ = link;
}

#[test]
fn the_list_pages_newest_first_without_duplicates() {
    let server = Shortener::start();
    let mut slugs = Vec::new();
    for i in 0..25 {
        let link = server.create(json!({"url": format!("https://example.com/{i}")}));
        slugs.push(link["slug"].as_str().unwrap().to_owned());
    }
    slugs.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/links?limit=10&cursor={c}"),
            None => String::from("/api/links?limit=10"),
        };
        let res = server.api("GET", &path, None);
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let page = json(&res);
        let links = page["links"].as_array().unwrap();
        pages += 1;
        assert_eq!(links.len(), if pages < 3 { 10 } else { 5 }, "{page}");
        seen.extend(links.iter().map(|l| l["slug"].as_str().unwrap().to_owned()));
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor {other}"),
        }
        assert!(pages < 3, "more pages than links");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, slugs);

    // A cursor stays valid when its link is deleted: the next page starts
    // right after it.
    let page = json(&server.api("GET", "/api/links?limit=10", None));
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let res = server.api("DELETE", &format!("/api/links/{}", slugs[9]), None);
    assert_eq!(res.status, 204);
    let page = json(&server.api("GET", &format!("/api/links?limit=10&cursor={cursor}"), None));
    assert_eq!(page["links"][0]["slug"], slugs[10].as_str());
    slugs.remove(9);

    // The default page is 20; at most 100.
    let page = json(&server.api("GET", "/api/links", None));
    assert_eq!(page["links"].as_array().unwrap().len(), 20);
    assert_eq!(page["links"][0]["slug"], slugs[0].as_str());
    let page = json(&server.api("GET", "/api/links?limit=100", None));
    assert_eq!(page["links"].as_array().unwrap().len(), 24);
    assert_eq!(page["next_cursor"], Value::Null);
    let page = json(&server.api("GET", "/api/links?limit=1&cursor=", None));
    assert_eq!(page["links"][0]["slug"], slugs[0].as_str());

    for bad in ["0", "101", "-1", "ten", "", "1.5"] {
        let res = server.api("GET", &format!("/api/links?limit={bad}"), None);
        assert_error(&res, 400, "invalid_limit");
    }
    for bad in ["abc", "0", "-5", "1.5"] {
        let res = server.api("GET", &format!("/api/links?cursor={bad}"), None);
        assert_error(&res, 400, "invalid_cursor");
    }
}

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

#[test]
fn bulk_answers_each_item_in_order() {
    let server = Shortener::start();
    let existing = server.create(json!({"url": "https://example.com/existing"}));
    server.create_slug("taken", "https://example.com/taken");
    let body = json!({"links": [
        {"url": "https://example.com/b1"},
        {"url": "not a url"},
        {"url": "https://example.com/b2", "slug": "bulk-two"},
        {"url": "https://example.com/b3", "slug": "api"},
        {"url": "https://example.com/b4", "slug": "taken"},
        {"url": "https://example.com/existing"},
        {"url": "https://example.com/b5", "slug": "bulk-two"},
        {"url": "https://example.com/b6", "unknown": true},
        {"url": "https://example.com/b7", "password": "secret"},
        {"url": "https://example.com/b8", "max_clicks": 0},
        {"url": "https://example.com/\r\nX: y"},
        42,
        {"url": "https://example.com/b9", "max_clicks": 2, "expires_at": util::rfc3339(unix_now() + 600)},
    ]});
    let res = server.api("POST", "/api/links/bulk", Some(&body));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let results = json(&res)["results"].as_array().unwrap().clone();
    let expected: [(u16, Option<&str>); 13] = [
        (201, None),
        (400, Some("invalid_url")),
        (201, None),
        (400, Some("reserved_slug")),
        (409, Some("slug_taken")),
        (200, None),
        (409, Some("slug_taken")),
        (400, Some("invalid_json")),
        (400, Some("invalid_password")),
        (400, Some("invalid_max_clicks")),
        (400, Some("invalid_url")),
        (400, Some("invalid_json")),
        (201, None),
    ];
    assert_eq!(results.len(), expected.len());
    for (i, (result, (status, code))) in results.iter().zip(expected).enumerate() {
        assert_eq!(result["status"], status, "item {i}: {result}");
        match code {
            Some(code) => {
                assert_eq!(result["error"]["code"], code, "item {i}: {result}");
                assert!(result.get("link").is_none(), "item {i}: {result}");
            }
            None => {
                assert!(result.get("error").is_none(), "item {i}: {result}");
                let link = &result["link"];
                assert_eq!(server.link(link["slug"].as_str().unwrap()), *link);
            }
        }
    }
    assert_eq!(results[0]["link"]["url"], "https://example.com/b1");
    assert_eq!(results[2]["link"]["slug"], "bulk-two");
    assert_eq!(results[2]["link"]["url"], "https://example.com/b2");
    assert_eq!(results[5]["link"], existing);
    assert_eq!(results[12]["link"]["max_clicks"], 2);
    assert_eq!(
        server.get("/bulk-two").header("location"),
        Some("https://example.com/b2")
    );
    assert_eq!(server.link("taken")["url"], "https://example.com/taken");
    // Exactly the created links exist (3 from bulk, 2 before).
    let page = json(&server.api("GET", "/api/links?limit=100", None));
    assert_eq!(page["links"].as_array().unwrap().len(), 5);

    // The same plain URL twice in one batch: one link.
    let twice = json!({"links": [{"url": "https://example.com/twice"}, {"url": "https://example.com/twice"}]});
    let res = server.api("POST", "/api/links/bulk", Some(&twice));
    let results = json(&res)["results"].as_array().unwrap().clone();
    assert_eq!(results[0]["status"], 201, "{results:?}");
    assert_eq!(results[1]["status"], 200, "{results:?}");
    assert_eq!(results[1]["link"], results[0]["link"]);
    let res = server.api(
        "DELETE",
        &format!(
            "/api/links/{}",
            results[0]["link"]["slug"].as_str().unwrap()
        ),
        None,
    );
    assert_eq!(res.status, 204);

    // An empty batch is fine; more than 1000 is refused whole.
    let res = server.api("POST", "/api/links/bulk", Some(&json!({"links": []})));
    assert_eq!(json(&res), json!({"results": []}));
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"url": format!("https://example.com/many/{i}")}))
        .collect();
    let res = server.api("POST", "/api/links/bulk", Some(&json!({"links": many})));
    assert_error(&res, 400, "too_many_links");
    for bad in [json!({"links": 5}), json!({"items": []}), json!([])] {
        let res = server.api("POST", "/api/links/bulk", Some(&bad));
        assert_error(&res, 400, "invalid_json");
    }
    let page = json(&server.api("GET", "/api/links?limit=100", None));
    assert_eq!(page["links"].as_array().unwrap().len(), 5);

    // Exactly 1000 goes in, in one request.
    let thousand: Vec<Value> = (0..1000)
        .map(|i| json!({"url": format!("https://example.com/k/{i}")}))
        .collect();
    let res = server.api("POST", "/api/links/bulk", Some(&json!({"links": thousand})));
    let results = json(&res)["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1000);
    assert!(results.iter().all(|r| r["status"] == 201));
    assert_eq!(results[999]["link"]["url"], "https://example.com/k/999");
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

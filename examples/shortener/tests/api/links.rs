//! Managing links: GET and PATCH, DELETE, and the paged list.

use crate::util::{self, assert_error, json, unix_now, Shortener};
use serde_json::{json, Value};

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

//! Creating links: 201 then 200 for the same URL, concurrent creates, custom
//! slugs, and a stored URL that never splits the `Location` header.

use crate::util::{self, assert_error, json, unix_now, Shortener};
use serde_json::{json, Value};

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

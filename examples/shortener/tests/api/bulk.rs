//! `POST /api/links/bulk`: each item answered in order.

use crate::util::{self, assert_error, json, unix_now, Shortener};
use serde_json::{json, Value};

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

//! The redirect path and the pages of the real `shortener` binary over real
//! sockets: statuses, exact headers, what is counted, `404`/`410` pages and
//! their JSON forms, click budgets, password links, and the web pages.

mod util;

use serde_json::json;
use std::time::Duration;
use util::{assert_error, json, unix_now, unlock, Options, Response, Shortener};

fn assert_redirect(res: &Response, status: u16, location: &str) {
    assert_eq!(res.status, status, "{:?} {}", res.headers, res.text());
    assert_eq!(res.header("location"), Some(location));
    assert_eq!(res.header("content-length"), Some("0"));
    assert!(res.body.is_empty());
    let locations = res
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("location"))
        .count();
    assert_eq!(locations, 1, "{:?}", res.headers);
}

fn assert_html(res: &Response, status: u16, contains: &str) {
    assert_eq!(res.status, status, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(res.text().contains(contains), "{}", res.text());
}

#[test]
fn a_link_redirects_with_302_and_only_get_is_counted() {
    let server = Options::new().arg("--flush-ms", "100").start();
    let url = "https://example.com/path/%C3%A9?q=a%20b&x=1#frag";
    server.create_slug(
        "go-there",
        "https://example.com/path/\u{e9}?q=a%20b&x=1#frag",
    );
    // The first visit is a HEAD: answered from the store, not counted.
    assert_redirect(&server.head("/go-there"), 302, url);
    for _ in 0..3 {
        let res = server.get("/go-there");
        assert_redirect(&res, 302, url);
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    for _ in 0..2 {
        let res = server.head("/go-there");
        assert_redirect(&res, 302, url);
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    // Keep-alive and pipelined: three answers on one connection, in order.
    let mut stream = server.connect();
    let get = util::request("GET", "/go-there", &[], b"");
    let mut three = get.clone();
    three.extend_from_slice(&get);
    three.extend_from_slice(&get);
    std::io::Write::write_all(&mut stream, &three).unwrap();
    for res in util::read_responses(&mut stream, 3) {
        assert_redirect(&res, 302, url);
    }
    let stats = server.stats_when_total("go-there", 6, Duration::from_secs(5));
    assert_eq!(stats["agents"], json!([{"name": "unknown", "clicks": 6}]));
    assert_eq!(
        stats["referrers"],
        json!([{"name": "(direct)", "clicks": 6}])
    );
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(server.stats("go-there")["total"], 6);
}

#[test]
fn redirect_status_follows_the_flag() {
    for (status, cache_control) in [
        ("301", "public, max-age=3600"),
        ("307", "no-store"),
        ("308", "public, max-age=3600"),
    ] {
        let server = Options::new().arg("--redirect-status", status).start();
        server.create_slug("moved", "https://example.com/moved");
        let code: u16 = status.parse().unwrap();
        for res in [server.get("/moved"), server.head("/moved")] {
            assert_redirect(&res, code, "https://example.com/moved");
            assert_eq!(res.header("cache-control"), Some(cache_control));
        }
        // A link with a click budget must reach the server on each click;
        // one that expires is not kept by browsers past its expiry.
        server.create(json!({"url": "https://example.com/b", "slug": "budget", "max_clicks": 9}));
        assert_eq!(
            server.get("/budget").header("cache-control"),
            Some("no-store")
        );
        let soon = unix_now() + 100;
        server.create(json!({"url": "https://example.com/s", "slug": "soon", "expires_at": util::rfc3339(soon)}));
        let res = server.get("/soon");
        assert_eq!(res.status, code);
        if code == 307 {
            assert_eq!(res.header("cache-control"), Some("no-store"));
        } else {
            let max_age: i64 = res
                .header("cache-control")
                .and_then(|v| v.strip_prefix("public, max-age="))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{:?}", res.headers));
            assert!((95..=100).contains(&max_age), "{max_age}");
        }
    }
    // Anything else is refused at start.
    let out = util::command()
        .args(["--redirect-status", "303", "--data", "/nonexistent/never"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("301, 302, 307, 308"));
}

#[test]
fn unknown_slugs_are_404_html_or_json_and_a_new_link_is_seen_at_once() {
    let server = Shortener::start();
    for path in [
        "/no-such-link",
        "/a.b",
        "/x",
        "/has%20space",
        &format!("/{}", "z".repeat(65)),
    ] {
        let res = server.get(path);
        assert_html(&res, 404, "Link not found");
        assert_eq!(
            res.header("content-security-policy")
                .map(|c| c.contains("default-src 'self'")),
            Some(true)
        );
        assert_error(&server.get_json(path), 404, "not_found");
        let res = server.head(path);
        assert_eq!(res.status, 404);
    }
    // The miss is remembered (negative cache, 5 s by default), but a create
    // forgets it: the new link works on the next request.
    assert_eq!(server.get("/later-link").status, 404);
    assert_eq!(server.get("/later-link").status, 404);
    server.create_slug("later-link", "https://example.com/later");
    assert_redirect(&server.get("/later-link"), 302, "https://example.com/later");
    // Same through bulk.
    assert_eq!(server.get("/bulk-later").status, 404);
    let res = server.api(
        "POST",
        "/api/links/bulk",
        Some(&json!({"links": [{"url": "https://example.com/bl", "slug": "bulk-later"}]})),
    );
    assert_eq!(json(&res)["results"][0]["status"], 201);
    assert_redirect(&server.get("/bulk-later"), 302, "https://example.com/bl");
}

#[test]
fn an_expired_link_is_410() {
    let server = Shortener::start();
    let at = unix_now() + 3;
    let link = server.create(json!({"url": "https://example.com/e", "slug": "expiring", "expires_at": util::rfc3339(at)}));
    assert_eq!(link["expires_at"], util::rfc3339(at));
    assert_redirect(&server.get("/expiring"), 302, "https://example.com/e");
    let gone = util::poll(Duration::from_secs(6), || {
        let res = server.get("/expiring");
        (res.status != 302).then_some(res)
    })
    .expect("the link never expired");
    assert!(unix_now() >= at);
    assert_html(&gone, 410, "");
    assert_error(&server.get_json("/expiring"), 410, "gone");
    assert_eq!(server.head("/expiring").status, 410);
    // The API still shows it; a new expiry brings it back at once.
    assert_eq!(server.link("expiring")["slug"], "expiring");
    let res = server.api(
        "PATCH",
        "/api/links/expiring",
        Some(&json!({"expires_at": null})),
    );
    assert_eq!(res.status, 200);
    assert_redirect(&server.get("/expiring"), 302, "https://example.com/e");
}

#[test]
fn a_disabled_link_is_410_until_enabled() {
    let server = Shortener::start();
    server.create_slug("switch", "https://example.com/switch");
    assert_redirect(&server.get("/switch"), 302, "https://example.com/switch");
    let res = server.api(
        "PATCH",
        "/api/links/switch",
        Some(&json!({"disabled": true})),
    );
    assert_eq!(json(&res)["disabled"], true);
    assert_html(&server.get("/switch"), 410, "");
    assert_error(&server.get_json("/switch"), 410, "gone");
    assert_eq!(server.head("/switch").status, 410);
    let res = server.api(
        "PATCH",
        "/api/links/switch",
        Some(&json!({"disabled": false})),
    );
    assert_eq!(json(&res)["disabled"], false);
    assert_redirect(&server.get("/switch"), 302, "https://example.com/switch");
}

#[test]
fn a_click_budget_allows_exactly_n_redirects() {
    let server = Options::new().arg("--flush-ms", "100").start();
    server.create(json!({"url": "https://example.com/n", "slug": "three", "max_clicks": 3}));
    // A HEAD hands out the target too, so on a budgeted link it spends a
    // click like a GET (issue 12: else HEAD reads a one-time link free).
    assert_redirect(&server.head("/three"), 302, "https://example.com/n");
    for _ in 0..2 {
        assert_redirect(&server.get("/three"), 302, "https://example.com/n");
    }
    for _ in 0..3 {
        assert_html(&server.get("/three"), 410, "");
    }
    assert_error(&server.get_json("/three"), 410, "gone");
    assert_eq!(server.head("/three").status, 410);
    let stats = server.stats_when_total("three", 3, Duration::from_secs(5));
    assert_eq!(stats["total"], 3);
    assert_eq!(server.link("three")["clicks"], 3);
    // Reloaded from the store (the PATCH drops the cached entry), it is
    // still spent; raising the budget gives exactly the difference.
    let res = server.api("PATCH", "/api/links/three", Some(&json!({"max_clicks": 4})));
    assert_eq!(res.status, 200);
    assert_redirect(&server.get("/three"), 302, "https://example.com/n");
    assert_eq!(server.get("/three").status, 410);
    server.stats_when_total("three", 4, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(server.stats("three")["total"], 4);
}

/// Clicks not yet flushed still count against the budget when the link is
/// read again from the store (here after a PATCH dropped it from the
/// cache, with a flush interval long enough that none ran).
#[test]
fn a_click_budget_survives_a_reload_before_the_flush() {
    let server = Options::new().arg("--flush-ms", "60000").start();
    server.create(json!({"url": "https://example.com/n", "slug": "two", "max_clicks": 2}));
    for _ in 0..2 {
        assert_redirect(&server.get("/two"), 302, "https://example.com/n");
    }
    assert_eq!(server.get("/two").status, 410);
    let res = server.api(
        "PATCH",
        "/api/links/two",
        Some(&json!({"url": "https://example.org/n"})),
    );
    assert_eq!(res.status, 200);
    assert_eq!(server.get("/two").status, 410);
    assert_eq!(server.get_json("/two").status, 410);
    // Raising the budget by one gives one more click.
    let res = server.api("PATCH", "/api/links/two", Some(&json!({"max_clicks": 3})));
    assert_eq!(res.status, 200);
    assert_redirect(&server.get("/two"), 302, "https://example.org/n");
    assert_eq!(server.get("/two").status, 410);
}

#[test]
fn many_clients_at_once_never_exceed_the_budget() {
    let server = Options::new().arg("--flush-ms", "50").start();
    server.create(json!({"url": "https://example.com/race", "slug": "race", "max_clicks": 25}));
    let redirected: usize = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    (0..10)
                        .filter(|_| server.get("/race").status == 302)
                        .count()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(redirected, 25);
    server.stats_when_total("race", 25, Duration::from_secs(5));
}

#[test]
fn a_password_link_with_a_budget_counts_unlocks() {
    let server = Options::new().arg("--flush-ms", "60000").start();
    server.create(json!({"url": "https://example.com/once", "slug": "once", "password": "pw-for-once", "max_clicks": 1}));
    // Unlocked without a GET before: the budget is checked all the same.
    assert_redirect(
        &unlock(&server, "once", "pw-for-once"),
        303,
        "https://example.com/once",
    );
    assert_html(&unlock(&server, "once", "pw-for-once"), 410, "");
    assert_html(&server.get("/once"), 410, "");
    // Still spent when read again from the store before any flush.
    let res = server.api(
        "PATCH",
        "/api/links/once",
        Some(&json!({"url": "https://example.org/once"})),
    );
    assert_eq!(res.status, 200);
    assert_eq!(unlock(&server, "once", "pw-for-once").status, 410);
    // A disabled password link is gone whatever the password.
    server.create(
        json!({"url": "https://example.com/off", "slug": "off-pw", "password": "pw-for-once"}),
    );
    server.api(
        "PATCH",
        "/api/links/off-pw",
        Some(&json!({"disabled": true})),
    );
    assert_eq!(unlock(&server, "off-pw", "pw-for-once").status, 410);
    assert_eq!(unlock(&server, "off-pw", "wrong").status, 410);
}

#[test]
fn a_password_link_asks_then_redirects_with_303() {
    let server = Options::new().arg("--flush-ms", "100").start();
    let link = server.create(
        json!({"url": "https://example.com/secret", "slug": "locked", "password": "correct horse"}),
    );
    assert_eq!(link["protected"], true);
    assert!(link.get("password").is_none() && link.get("password_hash").is_none());

    let page = server.get("/locked");
    assert_html(&page, 200, "action=\"/locked\"");
    assert!(page.text().contains("name=\"password\""), "{}", page.text());
    assert_eq!(page.header("location"), None);
    assert_eq!(server.head("/locked").status, 200);

    let wrong = unlock(&server, "locked", "battery staple");
    assert_html(&wrong, 401, "Wrong password.");
    assert_eq!(wrong.header("location"), None);
    let empty = server.request(
        "POST",
        "/locked",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"other=1",
    );
    assert_html(&empty, 401, "Wrong password.");

    let right = unlock(&server, "locked", "correct horse");
    assert_redirect(&right, 303, "https://example.com/secret");
    assert_eq!(right.header("cache-control"), Some("no-store"));
    // The unlocked click counts; page views and wrong guesses do not.
    let stats = server.stats_when_total("locked", 1, Duration::from_secs(5));
    assert_eq!(stats["total"], 1);

    // Unknown slugs are 404 for POST too.
    assert_eq!(unlock(&server, "no-such-link", "x").status, 404);
    // Removing the password makes it an ordinary link at once.
    let res = server.api(
        "PATCH",
        "/api/links/locked",
        Some(&json!({"password": null})),
    );
    assert_eq!(json(&res)["protected"], false);
    assert_redirect(&server.get("/locked"), 302, "https://example.com/secret");
    // Setting one protects it again at once.
    let res = server.api(
        "PATCH",
        "/api/links/locked",
        Some(&json!({"password": "new one!"})),
    );
    assert_eq!(json(&res)["protected"], true);
    assert_html(&server.get("/locked"), 200, "action=\"/locked\"");
    assert_redirect(
        &unlock(&server, "locked", "new one!"),
        303,
        "https://example.com/secret",
    );
}

#[test]
fn password_guesses_are_rate_limited_per_client() {
    let server = Options::new().arg("--guesses-per-minute", "3").start();
    server.create(
        json!({"url": "https://example.com/s", "slug": "guarded", "password": "right-one"}),
    );
    assert_eq!(unlock(&server, "guarded", "wrong1").status, 401);
    assert_eq!(unlock(&server, "guarded", "wrong2").status, 401);
    assert_redirect(
        &unlock(&server, "guarded", "right-one"),
        303,
        "https://example.com/s",
    );
    for password in ["wrong3", "right-one"] {
        let res = unlock(&server, "guarded", password);
        assert_eq!(res.status, 429, "{}", res.text());
        let retry: u64 = res
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{:?}", res.headers));
        assert!((1..=20).contains(&retry), "{retry}");
        assert_eq!(res.text(), "too many password guesses, wait a minute\n");
    }
    // Viewing the page is not a guess.
    assert_eq!(server.get("/guarded").status, 200);
}

#[test]
fn web_pages_and_static_files() {
    let server = Shortener::start();
    for (path, content_type, needle) in [
        ("/", "text/html; charset=utf-8", "<form"),
        ("/links", "text/html; charset=utf-8", "<html"),
        ("/static/app.css", "text/css; charset=utf-8", "{"),
        ("/static/app.js", "text/javascript; charset=utf-8", "fetch("),
    ] {
        let res = server.get(path);
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("content-type"), Some(content_type), "{path}");
        assert_eq!(res.header("cache-control"), Some("no-cache"));
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert!(res.text().contains(needle), "{path}: {}", res.text());
        if content_type.starts_with("text/html") {
            assert!(res.header("content-security-policy").is_some());
        }
        let etag = res.header("etag").expect("an ETag").to_owned();
        let res = server.request("GET", path, &[("If-None-Match", &etag)], b"");
        assert_eq!(res.status, 304, "{path}");
        assert!(res.body.is_empty());
        let head = server.head(path);
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
    }
    let res = server.get("/static/nothing.css");
    assert_eq!(res.status, 404);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    let res = server.get("/health");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    // Only PostgreSQL has a change feed (other instances to hear from).
    let feed = match util::store_kind() {
        util::StoreKind::Sqlite => "none",
        util::StoreKind::Postgres => "connected",
    };
    assert_eq!(
        json(&res),
        json!({"status": "ok", "store": "ok", "change_feed": feed, "pending_click_batches": 0})
    );
}

#[test]
fn metrics_count_requests_cache_hits_and_clicks() {
    let server = Options::new().arg("--flush-ms", "100").start();
    server.create_slug("measured", "https://example.com/m");
    // On PostgreSQL the change feed echoes the create back to this instance
    // and drops the slug from its cache: wait for it, or it may come after
    // the first redirect cached the link and cost one more miss.
    let mut scrapes: u32 = 0;
    if util::on_postgres() {
        util::poll(Duration::from_secs(5), || {
            scrapes += 1;
            let heard = util::metric(&server.metrics(), "shortener_change_feed_changes_total");
            (heard >= 1.0).then_some(())
        })
        .expect("the create heard back through the change feed");
    }
    for _ in 0..4 {
        assert_eq!(server.get("/measured").status, 302);
    }
    for _ in 0..3 {
        assert_eq!(server.get("/not-there").status, 404);
    }
    assert_eq!(server.get("/static/app.css").status, 200);
    // 9 requests so far (and the scrapes above); wait for the flush with
    // one more kind of request.
    let mut polls: u32 = 0;
    util::poll(Duration::from_secs(5), || {
        polls += 1;
        (server.link("measured")["clicks"] == 4).then_some(())
    })
    .expect("clicks flushed");
    let text = server.metrics();
    assert!(
        text.contains("# TYPE keel_requests_total counter\n"),
        "{text}"
    );
    // Every request answered before, not this scrape: keel counts a
    // request once its handler returned (and before its answer is sent).
    let before = f64::from(9 + polls + scrapes);
    assert_eq!(util::metric(&text, "keel_requests_total"), before);
    assert_eq!(
        util::metric(&text, "keel_responses_4xx_total"),
        3.0,
        "{text}"
    );
    assert_eq!(util::metric(&text, "keel_responses_5xx_total"), 0.0);
    assert_eq!(util::metric(&text, "keel_handler_panics_total"), 0.0);
    // One connection per request, this one included.
    assert_eq!(
        util::metric(&text, "keel_connections_accepted_total"),
        before + 1.0
    );
    // The first redirect and the first unknown slug miss; the rest hit.
    assert_eq!(util::metric(&text, "shortener_cache_misses_total"), 2.0);
    assert_eq!(util::metric(&text, "shortener_cache_hits_total"), 3.0);
    assert_eq!(
        util::metric(&text, "shortener_cache_negative_hits_total"),
        2.0
    );
    assert_eq!(util::metric(&text, "shortener_cache_links"), 1.0, "{text}");
    assert_eq!(util::metric(&text, "shortener_cache_evictions_total"), 0.0);
    assert_eq!(util::metric(&text, "shortener_live_watchers"), 0.0);
    // SQLite has no change feed; PostgreSQL's heard the create.
    let heard = util::metric(&text, "shortener_change_feed_changes_total");
    match util::store_kind() {
        util::StoreKind::Sqlite => assert_eq!(heard, 0.0),
        util::StoreKind::Postgres => assert!(heard >= 1.0, "{text}"),
    }
    assert_eq!(
        util::metric(&text, "shortener_change_feed_losses_total"),
        0.0
    );
    assert_eq!(util::metric(&text, "shortener_clicks_recorded_total"), 4.0);
    assert_eq!(util::metric(&text, "shortener_clicks_flushed_total"), 4.0);
    assert!(util::metric(&text, "shortener_click_flushes_total") >= 1.0);
    assert_eq!(
        util::metric(&text, "shortener_click_flush_failures_total"),
        0.0
    );
    assert_eq!(util::metric(&text, "shortener_clicks_dropped_total"), 0.0);
    assert_eq!(util::metric(&text, "shortener_click_flush_last_links"), 1.0);
    let count = |op: &str| {
        let line = format!("shortener_store_call_duration_seconds_count{{op=\"{op}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {line} in {text}"))
    };
    assert_eq!(count("create"), 1);
    assert_eq!(count("get"), 2 + u64::from(polls));
    assert!(count("record_clicks") >= 1, "{text}");
    assert_eq!(
        util::metric(&text, "shortener_store_call_errors_total"),
        0.0
    );
}

/// A visitor without a key learns nothing of a link from its live page:
/// the same static shell for a real slug and a made-up one, without the
/// target or the clicks (the page's script reads them from the API, with
/// an admin key); and the route takes nothing from the redirect path.
#[test]
fn the_live_page_is_a_shell_without_link_data() {
    let server = Options::new().admin_key().start();
    let target = "https://secret.example/live-page-target";
    server.create_slug("watched", target);
    assert_eq!(server.get("/watched").status, 302);

    let page = server.get("/links/watched/live");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.header("content-security-policy").is_some());
    assert!(page.text().contains("id=\"live-clicks\""));
    assert!(!page.text().contains("secret.example"));
    assert!(!page.text().contains("watched"));
    assert_eq!(page.body, server.get("/links/no-such-link/live").body);
    // The redirect still answers beside it.
    assert_eq!(server.get("/watched").header("location"), Some(target));
}

//! Several instances, one truth: two `shortener` processes on two ports
//! sharing one PostgreSQL schema, as `docs/deploy.md` runs them behind a
//! load balancer. Their caches keep the default `--cache-ttl` (300 s), so
//! everything seen here within a second comes from the change feed
//! (`LISTEN`/`NOTIFY`), not from entries expiring; click counts from both
//! add up exactly, shutdown flushes included.
//!
//! PostgreSQL only: without `SHORTENER_TEST_PG` each test says it was
//! skipped and passes (`tests/pg-suite.sh` runs them on a throwaway
//! cluster).

mod util;

use serde_json::{json, Value};
use std::thread;
use std::time::{Duration, Instant};
use util::{json, metric, Options, PgSchema, Shortener};

/// How fast a change through one instance must show on the other.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Firefox's and Chrome's user agents, counted as `firefox` and `chrome`.
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/120.0 Safari/537.36";

/// One instance on `schema`, its backends named `SCHEMA_NAME`.
fn instance(schema: &PgSchema, name: &str) -> Shortener {
    Options::new()
        .store(&schema.url_as(name))
        .arg("--flush-ms", "100")
        .start()
}

/// A fresh schema and instances A and B on it, both with their change
/// feed connected; `None` (skipped) without PostgreSQL. `before_b` runs on
/// A before B starts: links made there reach B through the store alone,
/// never through a notification that could arrive after B cached them
/// (every instance hears the changes it was running for, its own too).
fn pair(before_b: impl FnOnce(&Shortener)) -> Option<(PgSchema, Shortener, Shortener)> {
    if util::skip_unless_postgres("instances need PostgreSQL") {
        return None;
    }
    let schema = PgSchema::create();
    let a = instance(&schema, "a");
    before_b(&a);
    let b = instance(&schema, "b");
    for server in [&a, &b] {
        wait_feed(server, "connected", Duration::from_secs(5));
    }
    Some((schema, a, b))
}

/// `/health` of `server` as JSON (`200` or `503`).
fn health(server: &Shortener) -> Value {
    json(&server.get("/health"))
}

/// Waits until `/health` of `server` shows `change_feed: feed`.
fn wait_feed(server: &Shortener, feed: &str, timeout: Duration) -> Value {
    let mut last = Value::Null;
    util::poll(timeout, || {
        last = health(server);
        (last["change_feed"] == feed).then(|| last.clone())
    })
    .unwrap_or_else(|| panic!("change_feed never {feed:?} within {timeout:?}: {last}"))
}

/// Calls `check` every 2 ms until it is true; how long that took, or
/// `None` past `timeout`.
fn time_until(timeout: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if check() {
            return Some(started.elapsed());
        }
        if started.elapsed() >= timeout {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Asserts that `check` holds on the other instance within
/// [`PROPAGATION`] of `since`, and reports how long it took.
#[track_caller]
fn assert_propagates(what: &str, mut check: impl FnMut() -> bool) {
    let took = time_until(Duration::from_secs(5), &mut check)
        .unwrap_or_else(|| panic!("{what}: never seen on the other instance within 5 s"));
    eprintln!("{what}: seen on the other instance after {took:?}");
    assert!(took < PROPAGATION, "{what}: took {took:?}");
}

/// The `Location` of `GET /slug` on `server`, or the status when it does
/// not redirect.
fn location(server: &Shortener, slug: &str) -> Result<String, u16> {
    let res = server.get(&format!("/{slug}"));
    match (res.status, res.header("location")) {
        (302, Some(location)) => Ok(location.to_owned()),
        (status, _) => Err(status),
    }
}

/// The status of a link preview's visit to `/slug` (never a click).
fn preview(server: &Shortener, slug: &str) -> u16 {
    let agent = [(
        "User-Agent",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    )];
    server
        .request("GET", &format!("/{slug}"), &agent, b"")
        .status
}

/// The sum of the `clicks` of every entry of `list` (`days`, `agents`).
fn sum_clicks(list: &Value) -> u64 {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|entry| entry["clicks"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_link_created_through_a_redirects_through_b_at_once() {
    let Some((_schema, a, b)) = pair(|_| {}) else {
        return;
    };
    // B remembers the slug as unknown (for 5 s by default)...
    assert_eq!(location(&b, "made-on-a"), Err(404));
    assert_eq!(location(&b, "made-on-a"), Err(404));
    assert!(metric(&b.metrics(), "shortener_cache_negative_hits_total") >= 1.0);
    // ...until A creates it: the notification drops the negative entry.
    a.create_slug("made-on-a", "https://example.com/from-a");
    assert_propagates("create over a cached miss", || {
        location(&b, "made-on-a").as_deref() == Ok("https://example.com/from-a")
    });
    // A bulk create is announced too, each of its links.
    for slug in ["bulk-one", "bulk-two"] {
        assert_eq!(location(&b, slug), Err(404));
    }
    let res = a.api(
        "POST",
        "/api/links/bulk",
        Some(&json!({"links": [
            {"url": "https://example.com/bulk/1", "slug": "bulk-one"},
            {"url": "https://example.com/bulk/2", "slug": "bulk-two"},
        ]})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_propagates("bulk create over cached misses", || {
        location(&b, "bulk-one").as_deref() == Ok("https://example.com/bulk/1")
            && location(&b, "bulk-two").as_deref() == Ok("https://example.com/bulk/2")
    });
    // A slug B never asked for redirects on its first visit.
    a.create_slug("fresh-on-a", "https://example.com/fresh");
    assert_eq!(
        location(&b, "fresh-on-a").as_deref(),
        Ok("https://example.com/fresh")
    );
    // And the other way round, with a generated slug.
    let link = b.create(json!({"url": "https://example.com/from-b"}));
    let slug = link["slug"].as_str().unwrap();
    assert_eq!(
        location(&a, slug).as_deref(),
        Ok("https://example.com/from-b")
    );
    // The same plain URL shortened through A gives B's link back.
    let res = a.api(
        "POST",
        "/api/links",
        Some(&json!({"url": "https://example.com/from-b"})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(json(&res)["slug"], slug);
}

#[test]
fn a_patch_through_a_is_followed_by_b_within_a_second() {
    let Some((_schema, a, b)) = pair(|a| {
        a.create_slug("moving", "https://example.com/old");
    }) else {
        return;
    };
    // B loads the link, then answers from its cache.
    assert_eq!(
        location(&b, "moving").as_deref(),
        Ok("https://example.com/old")
    );
    let hits = metric(&b.metrics(), "shortener_cache_hits_total");
    assert_eq!(
        location(&b, "moving").as_deref(),
        Ok("https://example.com/old")
    );
    assert_eq!(
        metric(&b.metrics(), "shortener_cache_hits_total"),
        hits + 1.0,
        "B did not cache the link"
    );

    let res = a.api(
        "PATCH",
        "/api/links/moving",
        Some(&json!({"url": "https://example.com/new"})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_propagates("PATCH of the URL", || {
        location(&b, "moving").as_deref() == Ok("https://example.com/new")
    });

    // Disabling is a change like any other: B answers 410.
    let res = a.api(
        "PATCH",
        "/api/links/moving",
        Some(&json!({"disabled": true})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_propagates("PATCH disabling the link", || {
        location(&b, "moving") == Err(410)
    });
}

#[test]
fn a_delete_through_a_makes_b_answer_404_within_a_second() {
    let Some((_schema, a, b)) = pair(|a| {
        a.create_slug("doomed", "https://example.com/doomed");
    }) else {
        return;
    };
    for _ in 0..2 {
        assert_eq!(
            location(&b, "doomed").as_deref(),
            Ok("https://example.com/doomed")
        );
    }
    assert_eq!(a.api("DELETE", "/api/links/doomed", None).status, 204);
    assert_propagates("DELETE", || location(&b, "doomed") == Err(404));
    assert_eq!(b.get("/api/links/doomed").status, 404);
}

#[test]
fn clicks_through_both_add_up_exactly_shutdown_flushes_included() {
    let Some((schema, mut a, mut b)) = pair(|a| {
        a.create_slug("counted", "https://example.com/counted");
    }) else {
        return;
    };
    // Threads per instance and clicks per thread: firefox through A from
    // a.example, chrome through B from b.example.
    let (a_threads, b_threads, each) = (4, 3, 40);
    let click = |server: &Shortener, agent: &str, referer: &str| {
        let res = server.request(
            "GET",
            "/counted",
            &[("User-Agent", agent), ("Referer", referer)],
            b"",
        );
        assert_eq!(res.status, 302);
    };
    thread::scope(|scope| {
        for _ in 0..a_threads {
            scope.spawn(|| {
                for _ in 0..each {
                    click(&a, FIREFOX, "https://a.example/page");
                }
            });
        }
        for _ in 0..b_threads {
            scope.spawn(|| {
                for _ in 0..each {
                    click(&b, CHROME, "https://b.example/page");
                }
            });
        }
    });
    let (n, m) = (a_threads * each, b_threads * each);
    let total = n + m;
    // Both flush every 100 ms: the sum shows on either instance.
    let stats = a.stats_when_total("counted", total, Duration::from_secs(5));
    let check = |stats: &Value, firefox: u64, chrome: u64| {
        let total = firefox + chrome;
        assert_eq!(stats["total"], total, "{stats}");
        // Today's (and, across midnight, yesterday's) clicks.
        assert!(stats["days"].as_array().unwrap().len() <= 2, "{stats}");
        assert_eq!(sum_clicks(&stats["days"]), total, "{stats}");
        assert_eq!(
            stats["agents"],
            json!([{"name": "firefox", "clicks": firefox}, {"name": "chrome", "clicks": chrome}]),
            "{stats}"
        );
        assert_eq!(
            stats["referrers"],
            json!([{"name": "a.example", "clicks": firefox}, {"name": "b.example", "clicks": chrome}]),
            "{stats}"
        );
    };
    check(&stats, n, m);
    // Flushed batches are final: no later flush adds anything.
    thread::sleep(Duration::from_millis(300));
    check(&b.stats("counted"), n, m);
    assert_eq!(b.link("counted")["clicks"], total);

    // A few more, then stop both at once: whatever the timed flushes did
    // not write, the shutdown flushes do, once.
    let extra = 5;
    for _ in 0..extra {
        click(&a, FIREFOX, "https://a.example/page");
        click(&b, CHROME, "https://b.example/page");
    }
    thread::scope(|scope| {
        for server in [&mut a, &mut b] {
            scope.spawn(move || {
                let (status, stderr) = server.terminate();
                assert!(status.success(), "{status}: {stderr}");
                assert!(
                    stderr.contains("stopped; last click flush wrote"),
                    "{stderr}"
                );
            });
        }
    });
    drop((a, b));
    let c = instance(&schema, "c");
    let stats = c.stats("counted");
    check(&stats, n + extra, m + extra);
    let rows: i64 = schema
        .client()
        .query_one("SELECT count(*) FROM links", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

#[test]
fn both_report_a_connected_change_feed() {
    let Some((_schema, a, b)) = pair(|_| {}) else {
        return;
    };
    for server in [&a, &b] {
        let res = server.get("/health");
        assert_eq!(res.status, 200);
        assert_eq!(
            json(&res),
            json!({"status": "ok", "store": "ok", "change_feed": "connected", "pending_click_batches": 0})
        );
    }
}

/// The backends of B's change feed (`SCHEMA_b/changes`, see
/// `store/postgres/feed.rs`): their pids.
fn feed_backends(schema: &PgSchema, name: &str) -> Vec<i32> {
    let app = format!("{}_{name}/changes", schema.name());
    util::pg_admin()
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Ends the backends of `name`'s change feed; how many.
fn kill_feed(schema: &PgSchema, name: &str) -> usize {
    let app = format!("{}_{name}/changes", schema.name());
    let killed: i64 = util::pg_admin()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0);
    usize::try_from(killed).unwrap()
}

#[test]
fn the_change_feed_recovers_from_a_killed_backend() {
    let Some((schema, a, b)) = pair(|a| {
        a.create_slug("watched", "https://example.com/v1");
    }) else {
        return;
    };
    assert_eq!(
        location(&b, "watched").as_deref(),
        Ok("https://example.com/v1")
    );
    let before = feed_backends(&schema, "b");
    assert_eq!(before.len(), 1, "B's feed backends: {before:?}");
    assert_eq!(feed_backends(&schema, "a").len(), 1);

    // Watch B's health closely while its LISTEN backend is killed: the
    // feed reconnects after 100 ms, so "reconnecting" is brief.
    let seen: Vec<(Duration, String, String)> = thread::scope(|scope| {
        let b = &b;
        let watcher = scope.spawn(move || {
            let started = Instant::now();
            let mut seen: Vec<(Duration, String, String)> = Vec::new();
            let mut lost = false;
            while started.elapsed() < Duration::from_secs(10) {
                let health = health(b);
                let feed = health["change_feed"].as_str().unwrap().to_owned();
                let status = health["status"].as_str().unwrap().to_owned();
                if seen.last().map(|(_, f, s)| (f, s)) != Some((&feed, &status)) {
                    seen.push((started.elapsed(), feed.clone(), status));
                }
                lost |= feed == "reconnecting";
                if lost && feed == "connected" {
                    break;
                }
            }
            seen
        });
        thread::sleep(Duration::from_millis(50));
        assert_eq!(kill_feed(&schema, "b"), 1);
        watcher.join().unwrap()
    });
    eprintln!("B's /health after its feed backend was killed: {seen:?}");
    let states: Vec<(&str, &str)> = seen
        .iter()
        .map(|(_, f, s)| (f.as_str(), s.as_str()))
        .collect();
    let lost = states
        .iter()
        .position(|s| *s == ("reconnecting", "degraded"))
        .unwrap_or_else(|| panic!("never reconnecting and degraded: {seen:?}"));
    assert!(
        states[lost..].ends_with(&[("connected", "ok")]),
        "did not come back: {seen:?}"
    );
    // A new backend, and A's untouched.
    let after = feed_backends(&schema, "b");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before);
    assert_eq!(feed_backends(&schema, "a").len(), 1);

    // B dropped its cache when the feed came back (it may have missed
    // changes); it caches again, and hears the next change at once.
    assert_eq!(
        location(&b, "watched").as_deref(),
        Ok("https://example.com/v1")
    );
    let res = a.api(
        "PATCH",
        "/api/links/watched",
        Some(&json!({"url": "https://example.com/v2"})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_propagates("PATCH after the feed reconnected", || {
        location(&b, "watched").as_deref() == Ok("https://example.com/v2")
    });
}

/// A change made while B's feed is down is never heard by B; once the feed
/// is back B reads every cached link again, however long its
/// `--cache-ttl`: the first visit is still answered from the cache (it
/// starts the read, stale-while-revalidate), the change shows right after.
#[test]
fn a_change_missed_while_the_feed_was_down_is_seen_after_it_reconnects() {
    let Some((schema, a, b)) = pair(|a| {
        a.create_slug("missed", "https://example.com/before");
    }) else {
        return;
    };
    for _ in 0..2 {
        assert_eq!(
            location(&b, "missed").as_deref(),
            Ok("https://example.com/before")
        );
    }
    // Keep B's feed down: end its backend as soon as one shows up, while
    // A changes the link.
    let stop = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|scope| {
        let killer = scope.spawn(|| {
            let mut killed = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                killed += kill_feed(&schema, "b");
                thread::sleep(Duration::from_millis(2));
            }
            killed
        });
        wait_feed(&b, "reconnecting", Duration::from_secs(5));
        let res = a.api(
            "PATCH",
            "/api/links/missed",
            Some(&json!({"url": "https://example.com/after"})),
        );
        assert_eq!(res.status, 200, "{}", res.text());
        thread::sleep(Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(killer.join().unwrap() >= 1);
    });
    // The backoff may have grown to its 5 s cap meanwhile.
    let back = Instant::now();
    wait_feed(&b, "connected", Duration::from_secs(10));
    eprintln!(
        "B's feed connected again {:?} after the kills stopped",
        back.elapsed()
    );
    // The feed reports `connected` after the cache was marked for reading.
    assert_eq!(
        location(&b, "missed").as_deref(),
        Ok("https://example.com/before")
    );
    assert_propagates("PATCH missed while the feed was down", || {
        location(&b, "missed").as_deref() == Ok("https://example.com/after")
    });
}

/// A click budget spent through A is seen by B once A has flushed: B
/// reads a link with a budget again after a flush interval, not after its
/// `--cache-ttl` (300 s), so the two together overshoot the budget by at
/// most what they take within about two flush intervals.
#[test]
fn a_click_budget_spent_through_a_is_seen_by_b_after_a_flush() {
    let Some((_schema, a, b)) = pair(|a| {
        a.create(json!({"url": "https://example.com/budget", "slug": "budget", "max_clicks": 3}));
    }) else {
        return;
    };
    // Both cache it with no click taken: a link preview's visit is not
    // counted (and shows a budgeted link's page without its target).
    for server in [&a, &b] {
        for _ in 0..2 {
            assert_eq!(preview(server, "budget"), 200);
        }
    }
    for _ in 0..3 {
        assert_eq!(
            location(&a, "budget").as_deref(),
            Ok("https://example.com/budget")
        );
    }
    assert_eq!(location(&a, "budget"), Err(410));
    let flushed = Instant::now();
    a.stats_when_total("budget", 3, Duration::from_secs(5));
    // A preview asks without taking a click: B answers 410 once it knows.
    let took = time_until(Duration::from_secs(5), || preview(&b, "budget") == 410)
        .map(|_| flushed.elapsed())
        .expect("B never saw the spent budget");
    eprintln!("spent budget: seen on the other instance {took:?} after the first flush");
    assert!(took < PROPAGATION, "took {took:?}");
    assert_eq!(location(&b, "budget"), Err(410));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(b.stats("budget")["total"], 3);
}

/// Two deployments on two schemas of one database are strangers: a change
/// in one is no business of the other's cache. (The channel is the
/// database's; the payload names the schema.)
#[test]
fn instances_on_other_schemas_do_not_hear_each_other() {
    if util::skip_unless_postgres("instances need PostgreSQL") {
        return;
    }
    let (one, other) = (PgSchema::create(), PgSchema::create());
    let a = instance(&one, "a");
    let b = instance(&other, "b");
    for server in [&a, &b] {
        wait_feed(server, "connected", Duration::from_secs(5));
    }
    let heard =
        |server: &Shortener| metric(&server.metrics(), "shortener_change_feed_changes_total");
    a.create_slug("elsewhere", "https://example.com/elsewhere");
    util::poll(Duration::from_secs(5), || (heard(&a) >= 1.0).then_some(()))
        .expect("A hears its own create");
    thread::sleep(Duration::from_millis(200));
    assert_eq!(heard(&b), 0.0, "B heard a change in another schema");
}

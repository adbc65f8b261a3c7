//! Which route a path selects and the parameters it captures: precedence,
//! backtracking, catch-alls, strict slashes, wide nodes, nesting, `Routes::at`
//! and random tables checked against the documented rule.

use super::{check, h, tag};
use keel::Router;

#[test]
fn static_beats_param_beats_catch_all_with_backtracking() {
    let routes = Router::new()
        .get("/a/b", tag("a/b"))
        .get("/:x/b", tag(":x/b"))
        .get("/:x/c", tag(":x/c"))
        .get("/a/*rest", tag("a/*rest"))
        .get("/users/new", tag("users/new"))
        .get("/users/:id", tag("users/:id"))
        .get("/users/*rest", tag("users/*rest"))
        .get("/p/:x/q/r", tag("p/:x/q/r"))
        .get("/p/s/q/:y", tag("p/s/q/:y"))
        .get("/p/s/*rest", tag("p/s/*rest"))
        .build()
        .unwrap();
    check(
        routes,
        &[
            ("GET", "/a/b", 200, "a/b"),
            ("GET", "/z/b", 200, ":x/b x=z"),
            ("GET", "/a/c", 200, "a/*rest rest=c"),
            ("GET", "/z/c", 200, ":x/c x=z"),
            ("GET", "/a/d/e", 200, "a/*rest rest=d/e"),
            ("GET", "/z/d", 404, ""),
            ("GET", "/users/new", 200, "users/new"),
            ("GET", "/users/42", 200, "users/:id id=42"),
            ("GET", "/users/42/posts", 200, "users/*rest rest=42/posts"),
            ("GET", "/users/", 200, "users/*rest rest="),
            // static `s` first, then `q`, then `:y` under it
            ("GET", "/p/s/q/t", 200, "p/s/q/:y y=t"),
            // `/p/s/q/r`: static all the way wins over the parameter at `s`
            ("GET", "/p/s/q/r", 200, "p/s/q/:y y=r"),
            // static `s`, no `q2` under it: caught by `/p/s/*rest`
            ("GET", "/p/s/q2/r", 200, "p/s/*rest rest=q2/r"),
            ("GET", "/p/t/q/r", 200, "p/:x/q/r x=t"),
        ],
    );
}

#[test]
fn backtracking_leaves_a_static_branch_that_cannot_finish() {
    let routes = Router::new()
        .get("/a/b", tag("a/b"))
        .get("/:x/c", tag(":x/c"))
        .get("/a/b/c/d", tag("a/b/c/d"))
        .get("/:x/b/c/e", tag(":x/b/c/e"))
        .get("/a/:y/c/f", tag("a/:y/c/f"))
        .build()
        .unwrap();
    check(
        routes,
        &[
            ("GET", "/a/c", 200, ":x/c x=a"),
            ("GET", "/a/b/c/d", 200, "a/b/c/d"),
            // up two levels to the parameter under `a`, then up to the root's
            ("GET", "/a/b/c/f", 200, "a/:y/c/f y=b"),
            ("GET", "/a/b/c/e", 200, ":x/b/c/e x=a"),
            ("GET", "/a/b/c/g", 404, ""),
            ("GET", "/a", 404, ""),
        ],
    );
}

#[test]
fn params_are_raw_slices_of_one_non_empty_segment() {
    let routes = Router::new()
        .get("/links/:slug", tag("link"))
        .get("/repos/:owner/:repo/issues/:number", tag("issue"))
        .get("/files/:name.txt", tag("dotted"))
        .build()
        .unwrap();
    check(
        routes,
        &[
            ("GET", "/links/abc", 200, "link slug=abc"),
            ("GET", "/links/a%20b", 200, "link slug=a%20b"),
            ("GET", "/links/a%2Fb", 200, "link slug=a%2Fb"),
            ("GET", "/links/abc?x=1&y=/z", 200, "link slug=abc"),
            ("GET", "/links/", 404, ""),
            ("GET", "/links", 404, ""),
            ("GET", "/links/a/b", 404, ""),
            (
                "GET",
                "/repos/rust-lang/rust/issues/7",
                200,
                "issue owner=rust-lang repo=rust number=7",
            ),
            ("GET", "/repos/rust-lang//issues/7", 404, ""),
            // the name runs to the end of the segment
            ("GET", "/files/x", 200, "dotted name.txt=x"),
            // absolute-form targets route on their path
            ("GET", "http://t/links/abs", 200, "link slug=abs"),
        ],
    );
}

#[test]
fn catch_all_takes_the_rest_including_empty_and_slashes() {
    let routes = Router::new()
        .get("/static/*path", tag("static"))
        .get("/static/app.js", tag("app.js"))
        .get("/:section/*rest", tag("section"))
        .build()
        .unwrap();
    check(
        routes,
        &[
            ("GET", "/static/", 200, "static path="),
            ("GET", "/static/a.css", 200, "static path=a.css"),
            (
                "GET",
                "/static/css/deep/a.css",
                200,
                "static path=css/deep/a.css",
            ),
            ("GET", "/static//x", 200, "static path=/x"),
            ("GET", "/static/dir/", 200, "static path=dir/"),
            ("GET", "/static/app.js", 200, "app.js"),
            ("GET", "/static/app.js/x", 200, "static path=app.js/x"),
            ("GET", "/static", 404, ""),
            ("GET", "/docs/", 200, "section section=docs rest="),
            ("GET", "/docs/a/b", 200, "section section=docs rest=a/b"),
        ],
    );
    let root = Router::new()
        .get("/*all", tag("all"))
        .get("/", tag("root"))
        .build()
        .unwrap();
    check(
        root,
        &[
            ("GET", "/", 200, "root"),
            ("GET", "/x/y", 200, "all all=x/y"),
            ("GET", "//", 200, "all all=/"),
            ("OPTIONS", "*", 404, ""),
        ],
    );
}

#[test]
fn trailing_slashes_and_empty_segments_are_strict() {
    let routes = Router::new()
        .get("/", tag("root"))
        .get("/links", tag("links"))
        .get("/docs/", tag("docs/"))
        .build()
        .unwrap();
    check(
        routes,
        &[
            ("GET", "/", 200, "root"),
            ("GET", "/links", 200, "links"),
            ("GET", "/links/", 404, ""),
            ("GET", "//links", 404, ""),
            ("GET", "/docs/", 200, "docs/"),
            ("GET", "/docs", 404, ""),
            ("GET", "/docs//", 404, ""),
            ("GET", "/?q=1", 200, "root"),
        ],
    );
}

#[test]
fn wide_nodes_and_long_segments_compare_every_byte() {
    // 40 siblings (a hash table, not a scan), long names that share their
    // first 8 or 16 bytes, and a parameter beside them.
    let names: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    let mut router = Router::new();
    for name in &names {
        router = router.get(&format!("/wide/{name}"), tag("wide"));
    }
    let routes = router
        .get("/wide/:other", tag("other"))
        .get("/abcdefgh_1", tag("9 bytes, 1"))
        .get("/abcdefgh_2", tag("9 bytes, 2"))
        .get("/abcdefgh", tag("8 bytes"))
        .get("/abcdefghijklmnop_x", tag("18 bytes, x"))
        .get("/abcdefghijklmnop_y", tag("18 bytes, y"))
        .get("/abcdefghijklmnopqrstuvwxyz", tag("26 bytes"))
        .build()
        .unwrap();
    let mut cases = vec![
        ("GET", "/wide/s0", 200, "wide"),
        ("GET", "/wide/s39", 200, "wide"),
        ("GET", "/wide/s40", 200, "other other=s40"),
        ("GET", "/wide/s", 200, "other other=s"),
        ("GET", "/abcdefgh_1", 200, "9 bytes, 1"),
        ("GET", "/abcdefgh_2", 200, "9 bytes, 2"),
        ("GET", "/abcdefgh_3", 404, ""),
        ("GET", "/abcdefgh", 200, "8 bytes"),
        ("GET", "/abcdefg", 404, ""),
        ("GET", "/abcdefghijklmnop_x", 200, "18 bytes, x"),
        ("GET", "/abcdefghijklmnop_y", 200, "18 bytes, y"),
        ("GET", "/abcdefghijklmnop_z", 404, ""),
        ("GET", "/Abcdefghijklmnop_x", 404, ""),
        ("GET", "/abcdefghijklmnopqrstuvwxyz", 200, "26 bytes"),
        ("GET", "/abcdefghijklmnopqrstuvwxyZ", 404, ""),
    ];
    let paths: Vec<String> = names.iter().map(|n| format!("/wide/{n}")).collect();
    cases.extend(paths.iter().map(|p| ("GET", p.as_str(), 200, "wide")));
    check(routes, &cases);
}

#[test]
fn nested_routers_mount_under_their_prefix() {
    let links = Router::new()
        .get("/", tag("links index"))
        .get("/:slug", tag("link"))
        .post("/:slug", tag("update"));
    let repo = Router::new().get("/issues/:number", tag("issue"));
    let v1 = Router::new()
        .nest("/links", links)
        .nest("/repos/:owner/:repo", repo);
    let merged = Router::new().get("/health", tag("health"));
    let routes = Router::new()
        .get("/", tag("home"))
        .get("/api", tag("api root"))
        .nest("/api/v1", v1)
        .nest("", merged)
        .build()
        .unwrap();
    check(
        routes,
        &[
            ("GET", "/", 200, "home"),
            ("GET", "/api", 200, "api root"),
            ("GET", "/api/v1/links/", 200, "links index"),
            ("GET", "/api/v1/links", 404, ""),
            ("GET", "/api/v1/links/abc", 200, "link slug=abc"),
            ("POST", "/api/v1/links/abc", 200, "update slug=abc"),
            (
                "GET",
                "/api/v1/repos/o/r/issues/9",
                200,
                "issue owner=o repo=r number=9",
            ),
            ("GET", "/health", 200, "health"),
            ("GET", "/links/abc", 404, ""),
            ("DELETE", "/api/v1/links/abc", 405, ""),
        ],
    );
}

#[test]
fn at_reports_pattern_params_and_allow() {
    let routes = Router::new()
        .get("/repos/:owner/:repo", h)
        .patch("/repos/:owner/:repo", h)
        .get("/repos/:owner/:repo/contents/*path", h)
        .build()
        .unwrap();
    let m = routes.at("/repos/o/r/contents/src/lib.rs").unwrap();
    assert_eq!(m.pattern(), "/repos/:owner/:repo/contents/*path");
    assert_eq!(
        m.params(),
        &[("owner", "o"), ("repo", "r"), ("path", "src/lib.rs")]
    );
    assert_eq!(m.param("path"), Some("src/lib.rs"));
    assert_eq!(m.allow(), "GET, HEAD, OPTIONS");
    let m = routes.at("/repos/o/r").unwrap();
    assert_eq!(m.allow(), "GET, HEAD, OPTIONS, PATCH");
    assert!(m.handler("PATCH").is_some() && m.handler("PUT").is_none());
    assert!(routes.at("/repos/o").is_none());
    assert!(routes.at("repos/o/r").is_none());
    assert!(format!("{routes:?}").contains("/repos/:owner/:repo"));
}

/// The documented rule, the slow way: of every pattern that matches `path`,
/// the one whose segment kinds (static 0, parameter 1, catch-all 2) are
/// lexicographically least.
fn reference<'a>(patterns: &[&'a str], path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let kinds = |pattern: &str| -> Option<Vec<u8>> {
        let mut kinds = Vec::new();
        for (i, piece) in pattern[1..].split('/').enumerate() {
            if piece.starts_with('*') {
                // the rest after a '/': possibly empty, never absent
                if i >= segments.len() {
                    return None;
                }
                kinds.push(2);
                return Some(kinds);
            }
            let segment = segments.get(i)?;
            if piece.starts_with(':') {
                if segment.is_empty() {
                    return None;
                }
                kinds.push(1);
            } else if piece == *segment {
                kinds.push(0);
            } else {
                return None;
            }
        }
        (kinds.len() == segments.len()).then_some(kinds)
    };
    patterns
        .iter()
        .filter_map(|p| Some((kinds(p)?, *p)))
        .min()
        .map(|(_, p)| p)
}

#[test]
fn lookups_agree_with_the_rule_on_random_tables() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n) as usize
    };
    for _ in 0..300 {
        // Parameter names by position, so that no two routes conflict.
        let mut patterns: Vec<String> = (0..1 + next(16))
            .map(|_| {
                let depth = 1 + next(4);
                let mut pattern = String::new();
                for i in 0..depth {
                    // up to 7 static siblings: past the scan, into the hash table
                    let piece = match next(10) {
                        k @ 0..=6 => ["a", "b", "c", "d", "e", "f", ""][k].to_owned(),
                        7 | 8 => format!(":p{i}"),
                        _ if i + 1 == depth => format!("*r{i}"),
                        _ => format!(":p{i}"),
                    };
                    pattern += &format!("/{piece}");
                }
                pattern
            })
            .collect();
        patterns.sort();
        patterns.dedup();
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let routes = patterns
            .iter()
            .fold(Router::new(), |r, p| r.get(p, h))
            .build()
            .unwrap();
        for _ in 0..40 {
            let path: String = (0..next(6))
                .map(|_| ["/a", "/b", "/c", "/f", "/g", "/"][next(6)])
                .collect();
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            let got = routes.at(&path);
            assert_eq!(
                got.as_ref().map(|m| m.pattern()),
                reference(&patterns, &path),
                "{path} in {patterns:?}"
            );
            if let Some(m) = got {
                // every capture is a slice of the path at its position
                for (name, value) in m.params() {
                    assert!(path.contains(value), "{name}={value} in {path}");
                }
            }
        }
    }
}

//! The router through the real connection code (`MemoryConn`): which route
//! a path selects, the parameters it captures, what the router answers by
//! itself (404, 405, HEAD, OPTIONS), nesting, and every build-time refusal.

use keel::testing::MemoryConn;
use keel::{Handler, Request, Response, RouteError, Router, Routes, StatusCode, MAX_PARAMS};

/// A handler that answers `label`, then ` name=value` for each parameter.
fn tag(label: &'static str) -> impl Handler {
    move |req: &Request<'_>, res: &mut Response<'_>| {
        res.write(label.as_bytes());
        for (name, value) in req.params() {
            res.write(format!(" {name}={value}").as_bytes());
        }
    }
}

/// One parsed response.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }
}

/// Sends `method target` on `conn` and parses the one response.
fn ask(conn: &mut MemoryConn<Routes>, method: &str, target: &str) -> Reply {
    conn.send(
        format!("{method} {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    );
    let text = String::from_utf8(conn.recv()).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let status = head[9..12].parse().expect("a status code");
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `(method, target, status, body)`: runs every case against `routes`.
fn check(routes: Routes, cases: &[(&str, &str, u16, &str)]) {
    let mut conn = MemoryConn::new(routes);
    for &(method, target, status, body) in cases {
        let reply = ask(&mut conn, method, target);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (status, body),
            "{method} {target}: {reply:?}"
        );
    }
}

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
fn not_found_default_and_fallback() {
    let routes = Router::new().get("/", tag("root")).build().unwrap();
    let mut conn = MemoryConn::new(routes);
    let reply = ask(&mut conn, "GET", "/nope");
    assert_eq!((reply.status, reply.body.as_str()), (404, ""));
    assert_eq!(reply.header("Content-Length"), Some("0"));
    assert_eq!(reply.header("Allow"), None);

    let routes = Router::new()
        .get("/", tag("root"))
        .fallback(|req: &Request<'_>, res: &mut Response<'_>| {
            assert!(req.params().is_empty());
            res.status(StatusCode::NOT_FOUND)
                .body(format!("fallback {} {}", req.method(), req.path()).as_bytes());
        })
        .build()
        .unwrap();
    check(
        routes,
        &[
            ("GET", "/nope", 404, "fallback GET /nope"),
            ("DELETE", "/a/b?c", 404, "fallback DELETE /a/b"),
            // a path that matches under another method is a 405, not the fallback
            ("POST", "/", 405, ""),
        ],
    );
}

#[test]
fn method_not_allowed_lists_the_paths_methods() {
    let routes = Router::new()
        .get("/links/:slug", tag("get"))
        .delete("/links/:slug", tag("delete"))
        .route(&["PUT", "PATCH"], "/links/:slug", tag("put or patch"))
        .post("/links", tag("post"))
        .route(&["PURGE"], "/cache/*key", tag("purge"))
        .post("/:any/x", tag("post :any/x"))
        .build()
        .unwrap();
    let mut conn = MemoryConn::new(routes);
    let cases = [
        ("POST", "/links/a", "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"),
        ("get", "/links/a", "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"),
        ("GET", "/links", "OPTIONS, POST"),
        ("HEAD", "/links", "OPTIONS, POST"),
        ("GET", "/cache/a/b", "OPTIONS, PURGE"),
    ];
    for (method, target, allow) in cases {
        let reply = ask(&mut conn, method, target);
        assert_eq!(reply.status, 405, "{method} {target}: {reply:?}");
        assert!(reply
            .head
            .starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert_eq!(reply.header("Allow"), Some(allow), "{method} {target}");
        assert_eq!(reply.body, "");
    }
    let reply = ask(&mut conn, "PATCH", "/links/a");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "put or patch slug=a")
    );
    let reply = ask(&mut conn, "PURGE", "/cache/a/b");
    assert_eq!((reply.status, reply.body.as_str()), (200, "purge key=a/b"));
    // The most specific path decides, even though `POST /:any/x` exists.
    let reply = ask(&mut conn, "POST", "/links/x");
    assert_eq!(reply.status, 405, "POST /links/x is the route /links/:slug");
    let reply = ask(&mut conn, "POST", "/other/x");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "post :any/x any=other")
    );
}

#[test]
fn head_uses_get_without_the_body_unless_routed() {
    let routes = Router::new()
        .get("/page", tag("a page body"))
        .get("/both", tag("get"))
        .route(
            &["HEAD"],
            "/both",
            |_: &Request<'_>, res: &mut Response<'_>| {
                res.header("X-Head", "own").body(b"");
            },
        )
        .post("/form", tag("post"))
        .build()
        .unwrap();
    let mut conn = MemoryConn::new(routes);
    let get = ask(&mut conn, "GET", "/page");
    let head = ask(&mut conn, "HEAD", "/page");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(head.header("Content-Length"), Some("11"));
    assert_eq!(get.header("Content-Length"), Some("11"));
    assert_eq!(get.body, "a page body");

    let head = ask(&mut conn, "HEAD", "/both");
    assert_eq!(head.header("X-Head"), Some("own"));
    assert_eq!(head.header("Content-Length"), Some("0"));

    let head = ask(&mut conn, "HEAD", "/form");
    assert_eq!(head.status, 405);
    assert_eq!(head.header("Allow"), Some("OPTIONS, POST"));
    assert_eq!(ask(&mut conn, "HEAD", "/nope").status, 404);
}

#[test]
fn options_answers_allow_unless_routed() {
    let routes = Router::new()
        .get("/links/:slug", tag("get"))
        .put("/links/:slug", tag("put"))
        .route(&["OPTIONS"], "/cors", tag("own options"))
        .post("/cors", tag("post"))
        .build()
        .unwrap();
    let mut conn = MemoryConn::new(routes);
    let reply = ask(&mut conn, "OPTIONS", "/links/a");
    assert!(reply.head.starts_with("HTTP/1.1 204 No Content\r\n"));
    assert_eq!(reply.header("Allow"), Some("GET, HEAD, OPTIONS, PUT"));
    assert_eq!(reply.header("Content-Length"), None);
    assert_eq!(reply.body, "");

    let reply = ask(&mut conn, "OPTIONS", "/cors");
    assert_eq!((reply.status, reply.body.as_str()), (200, "own options"));
    assert_eq!(reply.header("Allow"), None);
    let reply = ask(&mut conn, "GET", "/cors");
    assert_eq!(reply.header("Allow"), Some("OPTIONS, POST"));
    assert_eq!(ask(&mut conn, "OPTIONS", "/nope").status, 404);
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

/// Builds a router that fails, for the table below.
type Build = fn() -> Result<Routes, RouteError>;

fn h(_: &Request<'_>, _: &mut Response<'_>) {}

#[test]
fn every_conflict_is_reported_by_build() {
    let s = |text: &str| text.to_owned();
    let cases: Vec<(Build, RouteError)> = vec![
        (
            || Router::new().get("links", h).build(),
            RouteError::MissingLeadingSlash {
                pattern: s("links"),
            },
        ),
        (
            || Router::new().get("", h).build(),
            RouteError::MissingLeadingSlash { pattern: s("") },
        ),
        (
            || Router::new().get("/links/:", h).build(),
            RouteError::EmptyParamName {
                pattern: s("/links/:"),
            },
        ),
        (
            || Router::new().get("/static/*", h).build(),
            RouteError::EmptyParamName {
                pattern: s("/static/*"),
            },
        ),
        (
            || Router::new().get("/static/*path/edit", h).build(),
            RouteError::CatchAllNotLast {
                pattern: s("/static/*path/edit"),
            },
        ),
        (
            || Router::new().get("/static/*path/", h).build(),
            RouteError::CatchAllNotLast {
                pattern: s("/static/*path/"),
            },
        ),
        (
            || Router::new().get("/:id/x/:id", h).build(),
            RouteError::DuplicateParamName {
                pattern: s("/:id/x/:id"),
                name: s("id"),
            },
        ),
        (
            || Router::new().get("/:a/:b/:c/:d/:e/:f/:g/:h/:i", h).build(),
            RouteError::TooManyParams {
                pattern: s("/:a/:b/:c/:d/:e/:f/:g/:h/:i"),
                count: 9,
            },
        ),
        (
            || Router::new().get("/u/:id", h).delete("/u/:name", h).build(),
            RouteError::ParamNameConflict {
                pattern: s("/u/:name"),
                name: s("name"),
                existing: s("id"),
            },
        ),
        (
            || {
                Router::new()
                    .get("/u/:id/a", h)
                    .get("/u/:name/b", h)
                    .build()
            },
            RouteError::ParamNameConflict {
                pattern: s("/u/:name/b"),
                name: s("name"),
                existing: s("id"),
            },
        ),
        (
            || Router::new().get("/s/*path", h).get("/s/*rest", h).build(),
            RouteError::ParamNameConflict {
                pattern: s("/s/*rest"),
                name: s("rest"),
                existing: s("path"),
            },
        ),
        (
            || Router::new().get("/x", h).get("/x", h).build(),
            RouteError::DuplicateRoute {
                method: s("GET"),
                pattern: s("/x"),
            },
        ),
        (
            || {
                Router::new()
                    .get("/u/:id", h)
                    .route(&["POST", "GET"], "/u/:id", h)
                    .build()
            },
            RouteError::DuplicateRoute {
                method: s("GET"),
                pattern: s("/u/:id"),
            },
        ),
        (
            || Router::new().route(&["PUT", "PUT"], "/x", h).build(),
            RouteError::DuplicateRoute {
                method: s("PUT"),
                pattern: s("/x"),
            },
        ),
        (
            || Router::new().get("/s/*p", h).get("/s/*p", h).build(),
            RouteError::DuplicateRoute {
                method: s("GET"),
                pattern: s("/s/*p"),
            },
        ),
        (
            || Router::new().route(&["GE T"], "/x", h).build(),
            RouteError::InvalidMethod {
                method: s("GE T"),
                pattern: s("/x"),
            },
        ),
        (
            || Router::new().route(&[""], "/x", h).build(),
            RouteError::InvalidMethod {
                method: s(""),
                pattern: s("/x"),
            },
        ),
        (
            || Router::new().route(&[], "/x", h).build(),
            RouteError::NoMethod { pattern: s("/x") },
        ),
        // nesting: conflicts across the parent and the nested router
        (
            || {
                Router::new()
                    .get("/api/x", h)
                    .nest("/api", Router::new().get("/x", h))
                    .build()
            },
            RouteError::DuplicateRoute {
                method: s("GET"),
                pattern: s("/api/x"),
            },
        ),
        (
            || {
                Router::new()
                    .get("/u/:id", h)
                    .nest("/u/:user", Router::new().get("/posts", h))
                    .build()
            },
            RouteError::ParamNameConflict {
                pattern: s("/u/:user/posts"),
                name: s("user"),
                existing: s("id"),
            },
        ),
        (
            || {
                Router::new()
                    .nest("/u/:id", Router::new().get("/:id", h))
                    .build()
            },
            RouteError::DuplicateParamName {
                pattern: s("/u/:id/:id"),
                name: s("id"),
            },
        ),
        (
            || {
                Router::new()
                    .nest("/s/*rest", Router::new().get("/x", h))
                    .build()
            },
            RouteError::CatchAllNotLast {
                pattern: s("/s/*rest/x"),
            },
        ),
        (
            || {
                Router::new()
                    .nest("api", Router::new().get("/x", h))
                    .build()
            },
            RouteError::MissingLeadingSlash { pattern: s("api") },
        ),
        (
            || {
                Router::new()
                    .nest("/api/", Router::new().get("/x", h))
                    .build()
            },
            RouteError::PrefixEndsWithSlash { prefix: s("/api/") },
        ),
        (
            || Router::new().nest("/", Router::new().get("/x", h)).build(),
            RouteError::PrefixEndsWithSlash { prefix: s("/") },
        ),
        (
            || {
                Router::new()
                    .nest("/api", Router::new().get("/x", h).fallback(h))
                    .build()
            },
            RouteError::NestedFallback { prefix: s("/api") },
        ),
        (
            || {
                let inner = Router::new().nest("/b/", Router::new());
                Router::new().nest("/a", inner).build()
            },
            RouteError::PrefixEndsWithSlash { prefix: s("/b/") },
        ),
    ];
    for (build, want) in cases {
        let got = build().map(|_| ()).unwrap_err();
        assert!(!got.to_string().is_empty());
        assert_eq!(got, want);
    }
}

#[test]
fn what_is_not_a_conflict() {
    let routes = Router::new()
        .get("/u/:id", tag("id"))
        .get("/u/:id/posts", tag("posts"))
        .get("/u/*rest", tag("rest"))
        .get("/u/me", tag("me"))
        .get("/u/:id/", tag("id/"))
        .route(&["get"], "/u/:id", tag("lowercase get"))
        .get("/a:b/c*", tag("colon and star inside are text"))
        .build()
        .unwrap();
    check(
        routes,
        &[
            ("GET", "/u/7", 200, "id id=7"),
            ("get", "/u/7", 200, "lowercase get id=7"),
            ("GET", "/u/7/", 200, "id/ id=7"),
            ("GET", "/u/me", 200, "me"),
            ("GET", "/u/7/posts", 200, "posts id=7"),
            ("GET", "/u/7/x", 200, "rest rest=7/x"),
            ("GET", "/a:b/c*", 200, "colon and star inside are text"),
        ],
    );
}

#[test]
fn up_to_max_params_per_route() {
    let names: Vec<String> = (0..MAX_PARAMS).map(|i| format!("p{i}")).collect();
    let pattern: String = names.iter().map(|n| format!("/:{n}")).collect();
    let with_catch_all = format!("/x{}", &pattern[pattern.find("/:p1").unwrap()..]) + "/*rest";
    let routes = Router::new()
        .get(&pattern, tag("max"))
        .get(&with_catch_all, tag("max with catch-all"))
        .build()
        .unwrap();
    let path: String = (0..MAX_PARAMS).map(|i| format!("/v{i}")).collect();
    let want: String = (0..MAX_PARAMS).map(|i| format!(" p{i}=v{i}")).collect();
    let with_rest = format!("/x{}/a/b", &path[3..]);
    let want_rest = format!("max with catch-all{} rest=a/b", &want[6..]);
    check(
        routes,
        &[
            ("GET", &path, 200, &format!("max{want}")),
            ("GET", &with_rest, 200, &want_rest),
        ],
    );
    let too_many = format!("{pattern}/:one_more");
    assert_eq!(
        Router::new().get(&too_many, h).build().unwrap_err(),
        RouteError::TooManyParams {
            pattern: too_many.clone(),
            count: MAX_PARAMS + 1
        }
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

#[test]
fn pipelined_requests_reach_their_routes_and_panics_stay_contained() {
    let routes = Router::new()
        .get("/a/:x", tag("a"))
        .get("/boom", |_: &Request<'_>, _: &mut Response<'_>| {
            panic!("handler bug")
        })
        .build()
        .unwrap();
    let mut conn = MemoryConn::new(routes);
    conn.send(b"GET /a/1 HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /a/2 HTTP/1.1\r\nHost: t\r\n\r\n");
    let text = String::from_utf8(conn.recv()).unwrap();
    let statuses: Vec<&str> = text.matches("HTTP/1.1 ").map(|_| "").collect();
    assert_eq!(statuses.len(), 3, "{text}");
    let first = text.find("a x=1").unwrap();
    let missing = text.find("404 Not Found").unwrap();
    let last = text.find("a x=2").unwrap();
    assert!(first < missing && missing < last, "{text}");

    let reply = ask(&mut conn, "GET", "/boom");
    assert_eq!(reply.status, 500);
    assert!(conn.is_closed());
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

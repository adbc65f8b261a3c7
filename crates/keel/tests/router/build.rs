//! Build-time checks: every conflict and malformed pattern `build` refuses,
//! what is not a conflict, and the `MAX_PARAMS` limit.

use super::{check, h, tag};
use keel::{RouteError, Router, Routes, MAX_PARAMS};

/// Builds a router that fails, for the table below.
type Build = fn() -> Result<Routes, RouteError>;

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

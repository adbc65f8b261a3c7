//! keel's router against matchit (the router behind axum), same table, same
//! paths, same run.
//!
//! The table is 150 GitHub REST API paths (232 method routes): statics,
//! up to four parameters, siblings where a static and a parameter share a
//! position (`/issues/comments` next to `/issues/:number`), and catch-alls
//! (`/contents/*path`). There is one lookup path per route path, with
//! realistic values; every one hits.
//!
//! - `keel`: `Routes::at(path)`, the path lookup with its captures (what
//!   matchit's `at` does).
//! - `keel_with_method`: `at(path)` then `handler(method)`, the whole choice
//!   the router makes per request.
//! - `matchit`: `Router::at(path)`.
//!
//! One iteration looks up every path once; criterion's throughput line is in
//! lookups per second.
//!
//! `cargo bench -p keel-benches --bench router -- --warm-up-time 1 --measurement-time 3`
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keel::{Request, Response, Router, Routes};
use std::hint::black_box;

/// (methods, pattern in keel's syntax).
const ROUTES: &[(&[&str], &str)] = &[
    (&["GET"], "/"),
    (&["GET", "PATCH"], "/user"),
    (&["GET", "POST"], "/user/repos"),
    (&["GET"], "/user/orgs"),
    (&["GET"], "/user/followers"),
    (&["GET"], "/user/following"),
    (&["GET", "PUT", "DELETE"], "/user/following/:user"),
    (&["GET"], "/user/starred"),
    (&["GET", "PUT", "DELETE"], "/user/starred/:owner/:repo"),
    (&["GET", "POST", "DELETE"], "/user/emails"),
    (&["GET", "POST"], "/user/keys"),
    (&["GET", "DELETE"], "/user/keys/:id"),
    (&["GET"], "/user/issues"),
    (&["GET"], "/user/teams"),
    (&["GET"], "/users"),
    (&["GET"], "/users/:user"),
    (&["GET"], "/users/:user/repos"),
    (&["GET"], "/users/:user/orgs"),
    (&["GET"], "/users/:user/followers"),
    (&["GET"], "/users/:user/following"),
    (&["GET"], "/users/:user/following/:target"),
    (&["GET"], "/users/:user/starred"),
    (&["GET"], "/users/:user/subscriptions"),
    (&["GET"], "/users/:user/events"),
    (&["GET"], "/users/:user/events/public"),
    (&["GET"], "/users/:user/events/orgs/:org"),
    (&["GET"], "/users/:user/received_events"),
    (&["GET"], "/users/:user/received_events/public"),
    (&["GET"], "/users/:user/gists"),
    (&["GET"], "/users/:user/keys"),
    (&["GET", "PATCH"], "/orgs/:org"),
    (&["GET", "POST"], "/orgs/:org/repos"),
    (&["GET"], "/orgs/:org/members"),
    (&["GET", "DELETE"], "/orgs/:org/members/:user"),
    (&["GET"], "/orgs/:org/public_members"),
    (&["GET", "PUT", "DELETE"], "/orgs/:org/public_members/:user"),
    (&["GET", "POST"], "/orgs/:org/teams"),
    (&["GET"], "/orgs/:org/events"),
    (&["GET"], "/orgs/:org/issues"),
    (&["GET", "PATCH", "DELETE"], "/teams/:id"),
    (&["GET"], "/teams/:id/members"),
    (&["GET", "PUT", "DELETE"], "/teams/:id/members/:user"),
    (&["GET"], "/teams/:id/repos"),
    (&["GET", "PUT", "DELETE"], "/teams/:id/repos/:owner/:repo"),
    (&["GET", "PATCH", "DELETE"], "/repos/:owner/:repo"),
    (&["GET"], "/repos/:owner/:repo/contributors"),
    (&["GET"], "/repos/:owner/:repo/languages"),
    (&["GET"], "/repos/:owner/:repo/teams"),
    (&["GET"], "/repos/:owner/:repo/tags"),
    (&["GET"], "/repos/:owner/:repo/branches"),
    (&["GET"], "/repos/:owner/:repo/branches/:branch"),
    (&["GET"], "/repos/:owner/:repo/collaborators"),
    (
        &["GET", "PUT", "DELETE"],
        "/repos/:owner/:repo/collaborators/:user",
    ),
    (&["GET"], "/repos/:owner/:repo/comments"),
    (
        &["GET", "PATCH", "DELETE"],
        "/repos/:owner/:repo/comments/:id",
    ),
    (&["GET"], "/repos/:owner/:repo/commits"),
    (&["GET"], "/repos/:owner/:repo/commits/:sha"),
    (
        &["GET", "POST"],
        "/repos/:owner/:repo/commits/:sha/comments",
    ),
    (&["GET"], "/repos/:owner/:repo/readme"),
    (
        &["GET", "PUT", "DELETE"],
        "/repos/:owner/:repo/contents/*path",
    ),
    (&["GET"], "/repos/:owner/:repo/compare/:range"),
    (&["GET", "POST"], "/repos/:owner/:repo/keys"),
    (&["GET", "PATCH", "DELETE"], "/repos/:owner/:repo/keys/:id"),
    (&["GET"], "/repos/:owner/:repo/downloads"),
    (&["GET", "DELETE"], "/repos/:owner/:repo/downloads/:id"),
    (&["GET", "POST"], "/repos/:owner/:repo/forks"),
    (&["GET", "POST"], "/repos/:owner/:repo/hooks"),
    (&["GET", "PATCH", "DELETE"], "/repos/:owner/:repo/hooks/:id"),
    (&["POST"], "/repos/:owner/:repo/hooks/:id/tests"),
    (&["POST"], "/repos/:owner/:repo/merges"),
    (&["GET", "POST"], "/repos/:owner/:repo/releases"),
    (
        &["GET", "PATCH", "DELETE"],
        "/repos/:owner/:repo/releases/:id",
    ),
    (&["GET"], "/repos/:owner/:repo/releases/:id/assets"),
    (&["GET"], "/repos/:owner/:repo/stats/contributors"),
    (&["GET"], "/repos/:owner/:repo/stats/commit_activity"),
    (&["GET"], "/repos/:owner/:repo/stats/code_frequency"),
    (&["GET"], "/repos/:owner/:repo/stats/participation"),
    (&["GET"], "/repos/:owner/:repo/stats/punch_card"),
    (&["GET", "POST"], "/repos/:owner/:repo/statuses/:ref"),
    (&["GET", "POST"], "/repos/:owner/:repo/issues"),
    (&["GET", "PATCH"], "/repos/:owner/:repo/issues/:number"),
    (
        &["GET", "POST"],
        "/repos/:owner/:repo/issues/:number/comments",
    ),
    (&["GET"], "/repos/:owner/:repo/issues/:number/events"),
    (
        &["GET", "POST", "PUT", "DELETE"],
        "/repos/:owner/:repo/issues/:number/labels",
    ),
    (
        &["DELETE"],
        "/repos/:owner/:repo/issues/:number/labels/:name",
    ),
    (&["GET"], "/repos/:owner/:repo/issues/comments"),
    (
        &["GET", "PATCH", "DELETE"],
        "/repos/:owner/:repo/issues/comments/:id",
    ),
    (&["GET"], "/repos/:owner/:repo/issues/events"),
    (&["GET"], "/repos/:owner/:repo/issues/events/:id"),
    (&["GET"], "/repos/:owner/:repo/assignees"),
    (&["GET"], "/repos/:owner/:repo/assignees/:assignee"),
    (&["GET", "POST"], "/repos/:owner/:repo/labels"),
    (
        &["GET", "PATCH", "DELETE"],
        "/repos/:owner/:repo/labels/:name",
    ),
    (&["GET", "POST"], "/repos/:owner/:repo/milestones"),
    (
        &["GET", "PATCH", "DELETE"],
        "/repos/:owner/:repo/milestones/:number",
    ),
    (&["GET"], "/repos/:owner/:repo/milestones/:number/labels"),
    (&["GET", "POST"], "/repos/:owner/:repo/pulls"),
    (&["GET", "PATCH"], "/repos/:owner/:repo/pulls/:number"),
    (&["GET"], "/repos/:owner/:repo/pulls/:number/commits"),
    (&["GET"], "/repos/:owner/:repo/pulls/:number/files"),
    (&["GET", "PUT"], "/repos/:owner/:repo/pulls/:number/merge"),
    (
        &["GET", "POST"],
        "/repos/:owner/:repo/pulls/:number/comments",
    ),
    (&["GET"], "/repos/:owner/:repo/pulls/comments"),
    (
        &["GET", "PATCH", "DELETE"],
        "/repos/:owner/:repo/pulls/comments/:number",
    ),
    (&["GET"], "/repos/:owner/:repo/git/blobs/:sha"),
    (&["POST"], "/repos/:owner/:repo/git/blobs"),
    (&["GET"], "/repos/:owner/:repo/git/commits/:sha"),
    (&["POST"], "/repos/:owner/:repo/git/commits"),
    (&["GET", "POST"], "/repos/:owner/:repo/git/refs"),
    (
        &["GET", "PATCH", "DELETE"],
        "/repos/:owner/:repo/git/refs/*ref",
    ),
    (&["GET"], "/repos/:owner/:repo/git/tags/:sha"),
    (&["POST"], "/repos/:owner/:repo/git/tags"),
    (&["GET"], "/repos/:owner/:repo/git/trees/:sha"),
    (&["POST"], "/repos/:owner/:repo/git/trees"),
    (&["GET"], "/repos/:owner/:repo/events"),
    (&["GET", "PUT"], "/repos/:owner/:repo/notifications"),
    (&["GET"], "/repos/:owner/:repo/stargazers"),
    (&["GET"], "/repos/:owner/:repo/subscribers"),
    (
        &["GET", "PUT", "DELETE"],
        "/repos/:owner/:repo/subscription",
    ),
    (&["GET", "POST"], "/gists"),
    (&["GET"], "/gists/public"),
    (&["GET"], "/gists/starred"),
    (&["GET", "PATCH", "DELETE"], "/gists/:id"),
    (&["GET", "PUT", "DELETE"], "/gists/:id/star"),
    (&["POST"], "/gists/:id/forks"),
    (&["GET"], "/search/repositories"),
    (&["GET"], "/search/code"),
    (&["GET"], "/search/issues"),
    (&["GET"], "/search/users"),
    (&["GET"], "/events"),
    (&["GET"], "/feeds"),
    (&["GET", "PUT"], "/notifications"),
    (&["GET", "PATCH"], "/notifications/threads/:id"),
    (
        &["GET", "PUT", "DELETE"],
        "/notifications/threads/:id/subscription",
    ),
    (&["GET"], "/networks/:owner/:repo/events"),
    (&["GET"], "/emojis"),
    (&["GET"], "/gitignore/templates"),
    (&["GET"], "/gitignore/templates/:name"),
    (&["POST"], "/markdown"),
    (&["POST"], "/markdown/raw"),
    (&["GET"], "/meta"),
    (&["GET"], "/rate_limit"),
    (&["GET", "POST"], "/authorizations"),
    (&["GET", "PATCH", "DELETE"], "/authorizations/:id"),
    (
        &["GET", "DELETE"],
        "/applications/:client_id/tokens/:access_token",
    ),
    (&["DELETE"], "/applications/:client_id/tokens"),
    (
        &["GET"],
        "/legacy/issues/search/:owner/:repository/:state/:keyword",
    ),
    (&["GET"], "/legacy/repos/search/:keyword"),
    (&["GET"], "/legacy/user/search/:keyword"),
    (&["GET"], "/legacy/user/email/:email"),
];

/// A realistic value for a parameter called `name`.
fn value(name: &str) -> &'static str {
    match name {
        "owner" => "rust-lang",
        "repo" | "repository" => "rust",
        "user" | "target" | "assignee" => "octocat",
        "org" => "github",
        "number" => "12345",
        "id" => "98765",
        "sha" => "6dcb09b5b57875f334f61aebed695e2e4193db5e",
        "branch" => "main",
        "ref" => "v1.2.3",
        "range" => "v1.0...v2.0",
        "name" => "bug",
        "client_id" => "Iv1.8a61f9b3a7aba766",
        "access_token" => "e72e16c7e42f292c6912e7710c838347ae178b4a",
        "state" => "open",
        "keyword" => "router",
        "email" => "octocat@github.com",
        other => panic!("no sample value for :{other}"),
    }
}

/// The same pattern in matchit's syntax: `:x` -> `{x}`, `*x` -> `{*x}`.
fn matchit_pattern(pattern: &str) -> String {
    let segments: Vec<String> = pattern
        .split('/')
        .map(|s| match (s.strip_prefix(':'), s.strip_prefix('*')) {
            (Some(name), _) => format!("{{{name}}}"),
            (_, Some(name)) => format!("{{*{name}}}"),
            _ => s.to_owned(),
        })
        .collect();
    segments.join("/")
}

/// A realistic rest of the path for a catch-all called `name`.
fn rest(name: &str) -> &'static str {
    match name {
        "ref" => "heads/feature/router",
        "path" => "compiler/rustc_driver/src/lib.rs",
        other => panic!("no sample value for *{other}"),
    }
}

/// A path the pattern matches, each parameter given its sample value.
fn sample_path(pattern: &str) -> String {
    let segments: Vec<&str> = pattern
        .split('/')
        .map(|s| match (s.strip_prefix(':'), s.strip_prefix('*')) {
            (Some(name), _) => value(name),
            (_, Some(name)) => rest(name),
            _ => s,
        })
        .collect();
    segments.join("/")
}

fn nothing(_: &Request<'_>, _: &mut Response<'_>) {}

fn keel_routes() -> Routes {
    ROUTES
        .iter()
        .fold(Router::new(), |router, (methods, pattern)| {
            router.route(methods, pattern, nothing)
        })
        .build()
        .expect("the table has no conflicts")
}

fn matchit_router() -> matchit::Router<usize> {
    let mut router = matchit::Router::new();
    for (index, (_, pattern)) in ROUTES.iter().enumerate() {
        router
            .insert(matchit_pattern(pattern), index)
            .expect("matchit takes the table");
    }
    router
}

/// Every lookup path, with the route index and first method it should find.
fn lookups() -> Vec<(String, usize, &'static str)> {
    ROUTES
        .iter()
        .enumerate()
        .map(|(index, (methods, pattern))| (sample_path(pattern), index, methods[0]))
        .collect()
}

fn lookup(c: &mut Criterion) {
    let keel = keel_routes();
    let matchit = matchit_router();
    let lookups = lookups();
    for (path, index, method) in &lookups {
        let (_, pattern) = ROUTES[*index];
        let found = keel.at(path).unwrap_or_else(|| panic!("keel finds {path}"));
        assert_eq!(found.pattern(), pattern, "keel: {path}");
        assert!(found.handler(method).is_some());
        let found = matchit.at(path).expect("matchit finds every path");
        assert_eq!(*found.value, *index, "matchit: {path}");
        assert_eq!(found.params.len(), keel.at(path).unwrap().params().len());
    }
    let paths: Vec<&str> = lookups.iter().map(|(p, _, _)| p.as_str()).collect();
    let with_methods: Vec<(&str, &str)> =
        lookups.iter().map(|(p, _, m)| (p.as_str(), *m)).collect();

    let mut group = c.benchmark_group("router");
    group.throughput(Throughput::Elements(paths.len() as u64));
    group.bench_function("keel", |b| {
        b.iter(|| {
            for path in black_box(&paths) {
                black_box(&keel.at(path));
            }
        })
    });
    group.bench_function("keel_with_method", |b| {
        b.iter(|| {
            for (path, method) in black_box(&with_methods) {
                black_box(keel.at(path).and_then(|m| m.handler(method)));
            }
        })
    });
    group.bench_function("matchit", |b| {
        b.iter(|| {
            for path in black_box(&paths) {
                black_box(&matchit.at(path));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);

//! What the router answers by itself: 404 and the fallback, 405 with `Allow`,
//! HEAD through GET, OPTIONS, and pipelined requests with a panicking handler.

use super::{ask, check, tag};
use keel::testing::MemoryConn;
use keel::{Request, Response, Router, StatusCode};

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

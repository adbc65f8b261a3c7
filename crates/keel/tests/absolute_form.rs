//! Request targets in absolute form and the other odd forms, one wire
//! sample per case (RFC 9112 §3.2, RFC 3986 §3.2): the authority ends at
//! the first `/`, `?` or `#`, so `GET http://x?/metrics` asks for `/` with
//! the query `/metrics`, and a router never takes it for `/metrics`.

use keel::testing::MemoryConn;
use keel::{Request, Response, Router};

/// Echoes how the request was seen: `path|query`.
fn echo(req: &Request<'_>, res: &mut Response<'_>) {
    let seen = format!("{}|{}", req.path(), req.query().unwrap_or("-"));
    res.body(seen.as_bytes());
}

fn wire(method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

#[test]
fn each_target_form_is_split_or_refused_by_the_rfc() {
    // (method, target, Ok("path|query") or Err(status))
    let cases: [(&str, &str, Result<&str, u16>); 16] = [
        ("GET", "/metrics", Ok("/metrics|-")),
        ("GET", "http://x/metrics", Ok("/metrics|-")),
        // The finding: the path is empty (so `/`), `/metrics` is the query.
        ("GET", "http://x?/metrics", Ok("/|/metrics")),
        ("GET", "http://x?a/b?c", Ok("/|a/b?c")),
        ("GET", "http://x", Ok("/|-")),
        ("GET", "HTTP://X/a", Ok("/a|-")),
        ("GET", "https://x:8080/p?q", Ok("/p|q")),
        ("GET", "http://[::1]:8080/v6", Ok("/v6|-")),
        ("OPTIONS", "*", Ok("*|-")),
        // A fragment is no part of any request-target form.
        ("GET", "http://x#frag", Err(400)),
        ("GET", "/a#frag", Err(400)),
        // Userinfo: senders must not send it, it hides the real host (RFC 9110 §4.2.4).
        ("GET", "http://u@x/", Err(400)),
        ("GET", "http://u:p@x/metrics", Err(400)),
        // An http(s) URI needs a host (RFC 9110 §4.2.1).
        ("GET", "http:///metrics", Err(400)),
        ("GET", "http://:80/metrics", Err(400)),
        // Asterisk-form is for OPTIONS only.
        ("GET", "*", Err(400)),
    ];
    for (method, target, want) in cases {
        let mut conn = MemoryConn::new(echo);
        conn.send(&wire(method, target));
        let reply = &conn.responses().unwrap()[0];
        match want {
            Ok(seen) => {
                assert_eq!(reply.status, 200, "{method} {target}");
                assert_eq!(reply.text(), seen, "{method} {target}");
            }
            Err(status) => {
                assert_eq!(reply.status, status, "{method} {target}");
                assert!(reply.closes(), "{method} {target}");
            }
        }
    }
}

#[test]
fn an_absolute_form_query_does_not_reach_the_route_it_names() {
    let routes = Router::new()
        .get("/metrics", |_: &Request<'_>, res: &mut Response<'_>| {
            res.body(b"secret metrics")
        })
        .get("/", |_: &Request<'_>, res: &mut Response<'_>| {
            res.body(b"home")
        })
        .build()
        .unwrap();
    let mut conn = MemoryConn::new(routes);
    conn.send(&wire("GET", "http://x?/metrics"));
    conn.send(&wire("GET", "http://x/metrics"));
    let replies = conn.responses().unwrap();
    assert_eq!(replies[0].text(), "home");
    assert_eq!(
        replies[1].text(),
        "secret metrics",
        "the real path still routes"
    );
}

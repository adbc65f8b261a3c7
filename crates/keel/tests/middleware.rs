//! Middleware through the real connection code (in memory): each layer's
//! behaviour, the order of several, and short-circuits (the access log has
//! its own file, access_log.rs).

mod util;

use util::memory::{exchange, ok};

use keel::middleware::{
    BodyLimit, Cors, Flow, HandlerExt, ManualClock, Middleware, RateLimit, RateLimitKey, RequestId,
};
use keel::testing::MemoryConn;
use keel::{Request, Response, StatusCode};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The values of header `name` in a response, in order.
fn header_values<'a>(reply: &'a str, name: &str) -> Vec<&'a str> {
    let head = reply.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

fn status_of(reply: &str) -> u16 {
    reply[9..12].parse().unwrap()
}

// ---------------------------------------------------------------- order

/// Records its hooks in a shared trace; stops in `before` when told to.
struct Trace {
    name: &'static str,
    stop: bool,
    trace: Arc<Mutex<Vec<String>>>,
}

impl Middleware for Trace {
    fn before(&self, _req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        self.trace
            .lock()
            .unwrap()
            .push(format!("{}.before", self.name));
        res.header("X-Layer", self.name);
        if self.stop {
            res.status(StatusCode::FORBIDDEN).body(b"stopped");
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn after(&self, _req: &Request<'_>, _res: &mut Response<'_>) {
        self.trace
            .lock()
            .unwrap()
            .push(format!("{}.after", self.name));
    }
}

#[test]
fn layers_run_outermost_first_and_a_stop_skips_what_is_inside() {
    let cases: [(bool, bool, &[&str], u16); 3] = [
        (
            false,
            false,
            &["b.before", "a.before", "handler", "a.after", "b.after"],
            200,
        ),
        (
            true,
            false,
            &["b.before", "a.before", "a.after", "b.after"],
            403,
        ),
        (false, true, &["b.before", "b.after"], 403),
    ];
    for (stop_a, stop_b, expected, status) in cases {
        let trace = Arc::new(Mutex::new(Vec::new()));
        let handler_trace = Arc::clone(&trace);
        let handler = move |req: &Request<'_>, res: &mut Response<'_>| {
            handler_trace.lock().unwrap().push("handler".to_owned());
            ok(req, res);
        };
        let layer = |name, stop| Trace {
            name,
            stop,
            trace: Arc::clone(&trace),
        };
        let app = handler.with(layer("a", stop_a)).with(layer("b", stop_b));
        let mut conn = MemoryConn::new(app);
        let reply = exchange(&mut conn, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(
            *trace.lock().unwrap(),
            expected,
            "stop a {stop_a}, b {stop_b}"
        );
        assert_eq!(status_of(&reply), status, "{reply}");
        let layers: &[&str] = if stop_b { &["b"] } else { &["b", "a"] };
        assert_eq!(header_values(&reply, "X-Layer"), layers, "{reply}");
    }
}

// ---------------------------------------------------------------- RequestId

#[test]
fn request_id_accepts_sane_ids_and_replaces_others() {
    let long = "a".repeat(65);
    let cases: [(Option<&str>, bool); 7] = [
        (Some("abc-123"), true),
        (Some("Zm9v/YmFy+=="), true),
        (Some(&long[..64]), true),
        (Some(&long), false),
        (Some("has space"), false),
        (Some("semi;colon"), false),
        (None, false),
    ];
    let mut conn = MemoryConn::new(ok.with(RequestId::new()));
    for (incoming, kept) in cases {
        let header = incoming.map_or(String::new(), |id| format!("X-Request-Id: {id}\r\n"));
        let reply = exchange(
            &mut conn,
            &format!("GET / HTTP/1.1\r\nHost: t\r\n{header}\r\n"),
        );
        let ids = header_values(&reply, "X-Request-Id");
        assert_eq!(ids.len(), 1, "{reply}");
        if kept {
            assert_eq!(Some(ids[0]), incoming);
        } else {
            assert_ne!(Some(ids[0]), incoming);
            let (prefix, counter) = ids[0].split_once('-').unwrap();
            assert_eq!(prefix.len(), 16, "{}", ids[0]);
            assert!(
                u64::from_str_radix(prefix, 16).is_ok() && u64::from_str_radix(counter, 16).is_ok()
            );
        }
    }
}

#[test]
fn generated_request_ids_are_unique_and_visible_to_the_handler() {
    let handler = |_: &Request<'_>, res: &mut Response<'_>| {
        res.body(RequestId::current().unwrap().as_str().as_bytes());
    };
    let mut conn = MemoryConn::new(handler.with(RequestId::new().header("X-Trace")));
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        let reply = exchange(&mut conn, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        let id = header_values(&reply, "X-Trace")[0].to_owned();
        assert!(reply.ends_with(&format!("\r\n\r\n{id}")), "{reply}");
        assert!(seen.insert(id));
    }
    // Other threads draw other prefixes.
    let other = std::thread::spawn(|| {
        let mut conn = MemoryConn::new(ok.with(RequestId::new()));
        let reply = exchange(&mut conn, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        header_values(&reply, "X-Request-Id")[0].to_owned()
    })
    .join()
    .unwrap();
    let prefix = |id: &str| id.split_once('-').unwrap().0.to_owned();
    assert_ne!(prefix(&other), prefix(seen.iter().next().unwrap()));
    assert_eq!(RequestId::current(), None, "cleared after the request");
}

#[test]
fn request_id_can_ignore_client_ids() {
    let mut conn = MemoryConn::new(ok.with(RequestId::new().trust_incoming(false)));
    let reply = exchange(
        &mut conn,
        "GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: mine\r\n\r\n",
    );
    assert_ne!(header_values(&reply, "X-Request-Id"), ["mine"]);
}

// ---------------------------------------------------------------- Cors

struct CorsCase {
    name: &'static str,
    cors: fn() -> Cors,
    request: &'static str,
    status: u16,
    handler_runs: bool,
    /// (header, exact value) pairs expected; "" means absent.
    headers: &'static [(&'static str, &'static str)],
}

#[test]
fn cors_preflights_and_simple_requests() {
    let listed = || {
        Cors::origins(&["https://app.example", "http://localhost:3000"])
            .allow_methods(&["GET", "PUT"])
            .allow_headers(&["Content-Type", "X-Token"])
            .expose_headers(&["X-Request-Id"])
            .max_age(Duration::from_secs(600))
    };
    let cases = [
        CorsCase {
            name: "preflight, listed origin",
            cors: listed,
            request: "OPTIONS /a HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: PUT\r\n\r\n",
            status: 204,
            handler_runs: false,
            headers: &[
                ("Access-Control-Allow-Origin", "https://app.example"),
                ("Access-Control-Allow-Methods", "GET, PUT"),
                ("Access-Control-Allow-Headers", "Content-Type, X-Token"),
                ("Access-Control-Max-Age", "600"),
                ("Access-Control-Allow-Credentials", ""),
                ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            ],
        },
        CorsCase {
            name: "preflight, origin case differs",
            cors: listed,
            request: "OPTIONS /a HTTP/1.1\r\nHost: t\r\nOrigin: HTTP://LOCALHOST:3000\r\nAccess-Control-Request-Method: GET\r\n\r\n",
            status: 204,
            handler_runs: false,
            headers: &[("Access-Control-Allow-Origin", "HTTP://LOCALHOST:3000")],
        },
        CorsCase {
            name: "preflight, unknown origin",
            cors: listed,
            request: "OPTIONS /a HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: PUT\r\n\r\n",
            status: 403,
            handler_runs: false,
            headers: &[
                ("Access-Control-Allow-Origin", ""),
                ("Access-Control-Allow-Methods", ""),
            ],
        },
        CorsCase {
            name: "plain OPTIONS is not a preflight",
            cors: listed,
            request: "OPTIONS /a HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n\r\n",
            status: 200,
            handler_runs: true,
            headers: &[
                ("Access-Control-Allow-Origin", "https://app.example"),
                ("Access-Control-Allow-Methods", ""),
            ],
        },
        CorsCase {
            name: "simple request, listed origin",
            cors: listed,
            request: "GET /a HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n\r\n",
            status: 200,
            handler_runs: true,
            headers: &[
                ("Access-Control-Allow-Origin", "https://app.example"),
                ("Access-Control-Expose-Headers", "X-Request-Id"),
                ("Vary", "Origin"),
            ],
        },
        CorsCase {
            name: "simple request, unknown origin",
            cors: listed,
            request: "GET /a HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\r\n",
            status: 200,
            handler_runs: true,
            headers: &[("Access-Control-Allow-Origin", ""), ("Vary", "Origin")],
        },
        CorsCase {
            name: "no origin, listed origins",
            cors: listed,
            request: "GET /a HTTP/1.1\r\nHost: t\r\n\r\n",
            status: 200,
            handler_runs: true,
            headers: &[("Access-Control-Allow-Origin", ""), ("Vary", "Origin")],
        },
        CorsCase {
            name: "any origin",
            cors: Cors::any_origin,
            request: "GET /a HTTP/1.1\r\nHost: t\r\nOrigin: https://x.example\r\n\r\n",
            status: 200,
            handler_runs: true,
            headers: &[("Access-Control-Allow-Origin", "*"), ("Vary", "")],
        },
        CorsCase {
            name: "any origin with credentials echoes the origin",
            cors: || Cors::any_origin().allow_credentials(true),
            request: "GET /a HTTP/1.1\r\nHost: t\r\nOrigin: https://x.example\r\n\r\n",
            status: 200,
            handler_runs: true,
            headers: &[
                ("Access-Control-Allow-Origin", "https://x.example"),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin"),
            ],
        },
        CorsCase {
            name: "preflight mirrors requested headers",
            cors: || Cors::any_origin().allow_any_header(),
            request: "OPTIONS /a HTTP/1.1\r\nHost: t\r\nOrigin: https://x.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-a, x-b\r\n\r\n",
            status: 204,
            handler_runs: false,
            headers: &[
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Methods", "GET, HEAD, POST"),
                ("Access-Control-Allow-Headers", "x-a, x-b"),
                ("Access-Control-Max-Age", ""),
            ],
        },
    ];
    for case in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let handler = move |req: &Request<'_>, res: &mut Response<'_>| {
            counted.fetch_add(1, SeqCst);
            ok(req, res);
        };
        let mut conn = MemoryConn::new(handler.with((case.cors)()));
        let reply = exchange(&mut conn, case.request);
        assert_eq!(status_of(&reply), case.status, "{}: {reply}", case.name);
        assert_eq!(calls.load(SeqCst) == 1, case.handler_runs, "{}", case.name);
        for (name, value) in case.headers {
            let want: &[&str] = if value.is_empty() { &[] } else { &[value] };
            assert_eq!(
                header_values(&reply, name),
                want,
                "{}: {name}\n{reply}",
                case.name
            );
        }
    }
}

// ---------------------------------------------------------------- RateLimit

#[test]
fn rate_limit_burst_refill_and_retry_after() {
    let clock = ManualClock::new(0);
    // 2 per 10 s: a token every 5 s, bursts of 3.
    let limit = RateLimit::new(2, Duration::from_secs(10))
        .burst(3)
        .clock(clock.clone());
    let mut conn = MemoryConn::new(ok.with(limit));
    let get = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    // (advance the clock by ms, then expect status, Retry-After)
    let steps: [(u64, u16, Option<&str>); 10] = [
        (0, 200, None),
        (0, 200, None),
        (0, 200, None),
        (0, 429, Some("5")),
        (1_000, 429, Some("4")),
        (3_500, 429, Some("1")), // 0.5 s left: rounded up
        (500, 200, None),        // 5 s: one token back
        (0, 429, Some("5")),
        (10_000, 200, None), // two tokens back
        (0, 200, None),
    ];
    for (i, (advance, status, retry)) in steps.into_iter().enumerate() {
        clock.advance(Duration::from_millis(advance));
        let reply = exchange(&mut conn, get);
        assert_eq!(status_of(&reply), status, "step {i}: {reply}");
        assert_eq!(
            header_values(&reply, "Retry-After").first().copied(),
            retry,
            "step {i}"
        );
        if status == 429 {
            assert!(reply.ends_with("\r\n\r\ntoo many requests\n"));
            assert!(!reply.contains("Connection: close"));
        }
    }
    // A long rest fills the bucket only up to the burst.
    clock.advance(Duration::from_secs(3600));
    let statuses: Vec<u16> = (0..4)
        .map(|_| status_of(&exchange(&mut conn, get)))
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
}

#[test]
fn rate_limit_keeps_a_bucket_per_client() {
    let clock = ManualClock::new(0);
    let limit = RateLimit::new(1, Duration::from_secs(60))
        .key(RateLimitKey::Header("X-Forwarded-For".into()))
        .clock(clock);
    let mut conn = MemoryConn::new(ok.with(limit));
    let request = |xff: &str| {
        let header = if xff.is_empty() {
            String::new()
        } else {
            format!("X-Forwarded-For: {xff}\r\n")
        };
        format!("GET / HTTP/1.1\r\nHost: t\r\n{header}\r\n")
    };
    let cases: [(&str, u16); 9] = [
        ("203.0.113.7", 200),
        ("203.0.113.7, 10.0.0.1", 429), // first entry is the client
        ("  203.0.113.7  ", 429),
        ("203.0.113.8", 200),
        ("2001:db8::1", 200),
        ("client-token", 200),
        ("client-token", 429),
        ("", 200),          // falls back to the peer IP (127.0.0.1)
        ("127.0.0.1", 429), // the same key as the peer IP
    ];
    for (xff, status) in cases {
        let reply = exchange(&mut conn, &request(xff));
        assert_eq!(status_of(&reply), status, "X-Forwarded-For {xff:?}");
    }
}

// ---------------------------------------------------------------- BodyLimit

#[test]
fn body_limit_refuses_larger_bodies_and_closes() {
    let cases: [(&str, u16, bool); 4] = [
        ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 200, true),
        ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\n12345678", 200, true),
        ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n123456789", 413, false),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n4\r\n6789\r\n0\r\n\r\n",
            413,
            false,
        ),
    ];
    for (request, status, handler_runs) in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let handler = move |req: &Request<'_>, res: &mut Response<'_>| {
            counted.fetch_add(1, SeqCst);
            ok(req, res);
        };
        let mut conn = MemoryConn::new(handler.with(BodyLimit::new(8)));
        let reply = exchange(&mut conn, request);
        assert_eq!(status_of(&reply), status, "{reply}");
        assert_eq!(calls.load(SeqCst) == 1, handler_runs);
        assert_eq!(conn.is_closed(), status == 413, "{reply}");
        if status == 413 {
            assert!(reply.contains("\r\nConnection: close\r\n"), "{reply}");
        }
    }
}

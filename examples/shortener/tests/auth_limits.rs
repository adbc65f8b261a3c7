//! Who may write, and how fast, on the real `shortener` binary over real
//! sockets: API keys from a file or the environment, loopback-only writes
//! without keys, and the per-client write rate limit.

mod util;

use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;
use util::{assert_error, json, Options, Shortener};

/// A server whose key file holds `alpha-key` and `beta-key` (with a comment
/// and blank lines around them).
fn with_key_file() -> (Shortener, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "# team keys\n\n  alpha-key  \nbeta-key\n").unwrap();
    let server = Options::new()
        .arg("--api-key-file", keys.to_str().unwrap())
        .start();
    (server, dir)
}

fn post_link(server: &Shortener, auth: Option<&str>, slug: &str) -> util::Response {
    let body = json!({"url": format!("https://example.com/{slug}"), "slug": slug}).to_string();
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    server.request("POST", "/api/links", &headers, body.as_bytes())
}

#[test]
fn with_keys_every_write_and_the_list_need_one() {
    let (server, _dir) = with_key_file();
    for auth in [
        None,
        Some("Bearer wrong-key"),
        Some("Bearer alpha-ke"),
        Some("Bearer alpha-keyy"),
        Some("Basic alpha-key"),
        Some("alpha-key"),
        Some("Bearer"),
        Some("Bearer "),
        Some("Bearer # team keys"),
    ] {
        let res = post_link(&server, auth, "denied");
        assert_error(&res, 401, "unauthorized");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"), "{auth:?}");
    }
    let res = post_link(&server, Some("Bearer alpha-key"), "first");
    assert_eq!(res.status, 201, "{}", res.text());
    let res = post_link(&server, Some("bearer   beta-key "), "second");
    assert_eq!(res.status, 201, "{}", res.text());

    let bearer = |key: &str| format!("Bearer {key}");
    let good = bearer("alpha-key");
    let bad = bearer("nope");
    let bulk = json!({"links": [{"url": "https://example.com/b"}]}).to_string();
    let patch = json!({"disabled": true}).to_string();
    let calls: [(&str, &str, &[u8]); 5] = [
        ("GET", "/api/links", b""),
        ("POST", "/api/links/bulk", bulk.as_bytes()),
        ("PATCH", "/api/links/first", patch.as_bytes()),
        ("DELETE", "/api/links/second", b""),
        ("DELETE", "/api/links/no-such-link", b""),
    ];
    for (method, path, body) in calls {
        for auth in [None, Some(bad.as_str())] {
            let mut headers = vec![("Content-Type", "application/json")];
            headers.extend(auth.map(|a| ("Authorization", a)));
            let res = server.request(method, path, &headers, body);
            assert_error(&res, 401, "unauthorized");
        }
    }
    // Nothing was changed by the refused calls.
    let first = server.link("first");
    assert_eq!(first["disabled"], false);
    assert_eq!(server.link("second")["slug"], "second");

    let authed = |method: &str, path: &str, body: &[u8]| {
        server.request(
            method,
            path,
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &good),
            ],
            body,
        )
    };
    let list = json(&authed("GET", "/api/links", b""));
    assert_eq!(list["links"].as_array().unwrap().len(), 2);
    assert_eq!(
        authed("POST", "/api/links/bulk", bulk.as_bytes()).status,
        200
    );
    assert_eq!(
        authed("PATCH", "/api/links/first", patch.as_bytes()).status,
        200
    );
    assert_eq!(authed("DELETE", "/api/links/second", b"").status, 204);
    assert_error(
        &authed("DELETE", "/api/links/no-such-link", b""),
        404,
        "not_found",
    );

    // Reads of one link, its stats and QR code, and redirects are public.
    assert_eq!(server.get("/api/links/first").status, 200);
    assert_eq!(server.get("/api/links/first/stats").status, 200);
    assert_eq!(server.get("/api/links/first/qr.svg").status, 200);
    assert_eq!(server.get("/first").status, 410);
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn keys_may_come_from_the_environment() {
    let server = Options::new()
        .env("SHORTENER_API_KEYS", " env-one ,, env-two")
        .start();
    assert_error(&post_link(&server, None, "nope"), 401, "unauthorized");
    assert_error(
        &post_link(&server, Some("Bearer env"), "nope"),
        401,
        "unauthorized",
    );
    assert_eq!(
        post_link(&server, Some("Bearer env-one"), "one").status,
        201
    );
    assert_eq!(
        post_link(&server, Some("Bearer env-two"), "two").status,
        201
    );
    // Through the helpers, which send the key given to the options.
    let server = Options::new()
        .env("SHORTENER_API_KEYS", "helper-key")
        .key("helper-key")
        .start();
    server.create_slug("via-helper", "https://example.com/h");
    assert_eq!(server.api("GET", "/api/links", None).status, 200);
}

#[test]
fn an_unreadable_key_file_stops_the_start() {
    let data = util::data_dir();
    let out = util::cli(&[
        "--api-key-file",
        "/nonexistent/keys",
        "--addr",
        "127.0.0.1:1",
        "--data",
        &data.arg(),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read the API keys"), "{stderr}");
}

#[test]
fn without_keys_loopback_clients_may_write() {
    let server = Shortener::start();
    server.wait_stdout("no API key configured: writes are accepted from loopback clients only");
    assert_eq!(post_link(&server, None, "free").status, 201);
    // A key is not needed, and a wrong one does not matter.
    assert_eq!(
        post_link(&server, Some("Bearer whatever"), "free2").status,
        201
    );
    assert_eq!(server.api("GET", "/api/links", None).status, 200);
    assert_eq!(server.api("DELETE", "/api/links/free", None).status, 204);
}

/// This machine's address on its default route, when it has one.
fn non_loopback_ipv4() -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing; it picks the source address.
    socket.connect("192.0.2.1:9").ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

#[test]
fn without_keys_other_clients_are_forbidden() {
    let Some(ip) = non_loopback_ipv4() else {
        eprintln!("skipped: this machine has no non-loopback IPv4 address");
        return;
    };
    let server = Options::new().ip(Ipv4Addr::UNSPECIFIED).start();
    let port = server.addr().port();
    let send = |from: IpAddr, raw: &[u8]| {
        let to = SocketAddr::new(from, port);
        let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        std::io::Write::write_all(&mut stream, raw).unwrap();
        util::read_response(&mut stream, false)
    };
    let body = br#"{"url": "https://example.com/far"}"#;
    let create = util::request(
        "POST",
        "/api/links",
        &[("Content-Type", "application/json")],
        body,
    );
    let res = send(IpAddr::V4(ip), &create);
    let message = assert_error(&res, 403, "forbidden");
    assert!(message.contains("this machine only"), "{message}");
    let list = util::request("GET", "/api/links", &[], b"");
    assert_error(&send(IpAddr::V4(ip), &list), 403, "forbidden");
    // Reads and redirects are for everyone.
    let res = send(IpAddr::V4(Ipv4Addr::LOCALHOST), &create);
    assert_eq!(res.status, 201, "{}", res.text());
    let slug = json(&res)["slug"].as_str().unwrap().to_owned();
    let res = send(
        IpAddr::V4(ip),
        &util::request("GET", &format!("/{slug}"), &[], b""),
    );
    assert_eq!(res.status, 302);
    assert_eq!(res.header("location"), Some("https://example.com/far"));
}

#[test]
fn writes_are_rate_limited_per_client_with_a_json_429() {
    let server = Options::new().arg("--writes-per-minute", "3").start();
    server.create_slug("w-one", "https://example.com/1");
    server.create_slug("w-two", "https://example.com/2");
    let res = server.api(
        "PATCH",
        "/api/links/w-one",
        Some(&json!({"disabled": true})),
    );
    assert_eq!(res.status, 200);
    let refused = [
        server.api(
            "POST",
            "/api/links",
            Some(&json!({"url": "https://example.com/3"})),
        ),
        server.api("POST", "/api/links/bulk", Some(&json!({"links": []}))),
        server.api(
            "PATCH",
            "/api/links/w-one",
            Some(&json!({"disabled": false})),
        ),
        server.api("DELETE", "/api/links/w-two", None),
    ];
    for res in &refused {
        let message = assert_error(res, 429, "rate_limited");
        assert!(message.contains("Retry-After"), "{message}");
        let retry: u64 = res
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{:?}", res.headers));
        // One write comes back every 20 s.
        assert!((1..=20).contains(&retry), "{retry}");
    }
    // Nothing refused happened; reads and redirects are not limited.
    assert_eq!(server.link("w-one")["disabled"], true);
    assert_eq!(server.link("w-two")["slug"], "w-two");
    for _ in 0..5 {
        assert_eq!(server.get("/w-two").status, 302);
        assert_eq!(server.api("GET", "/api/links", None).status, 200);
    }
}

#[test]
fn the_rate_limit_counts_refused_keys_too() {
    // A client guessing keys spends its own write budget.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "right\n").unwrap();
    let server = Options::new()
        .arg("--api-key-file", keys.to_str().unwrap())
        .arg("--writes-per-minute", "2")
        .start();
    assert_eq!(post_link(&server, Some("Bearer wrong"), "g1").status, 401);
    assert_eq!(post_link(&server, Some("Bearer wrong"), "g2").status, 401);
    let res = post_link(&server, Some("Bearer wrong"), "g3");
    assert_error(&res, 429, "rate_limited");
    let res = post_link(&server, Some("Bearer right"), "g4");
    assert_error(&res, 429, "rate_limited");
}

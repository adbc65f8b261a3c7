//! Who may write, and how fast, on the real `shortener` binary over real
//! sockets: API keys from a file or the environment, loopback-only access
//! without keys, and the per-client write rate limit. The attacks of
//! issue 12 on keys and keyless mode are in `security_auth.rs`.

mod util;

use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;
use util::{assert_error, json, Options, Shortener};

const ALPHA: &str = "alpha-key-0123456789abcdef";
const BETA: &str = "beta-key-0123456789abcdefg";

/// A server whose key file holds the admin key `ALPHA` and the write key
/// `BETA` (with a comment and blank lines around them).
fn with_key_file() -> (Shortener, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        format!("# team keys\n\n  admin {ALPHA}  \nwrite\t{BETA}\n"),
    )
    .unwrap();
    let server = Options::new()
        .arg("--api-key-file", keys.to_str().unwrap())
        // Many refusals below: this test is not about their limit.
        .arg("--auth-failures-per-minute", "1000")
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
    let near = [
        format!("Bearer {}", &ALPHA[..ALPHA.len() - 1]),
        format!("Bearer {ALPHA}y"),
        format!("Basic {ALPHA}"),
        ALPHA.to_owned(),
        format!("Bearer admin {ALPHA}"),
    ];
    let mut refused: Vec<Option<&str>> = vec![None, Some("Bearer wrong-key"), Some("Bearer")];
    refused.extend(near.iter().map(|a| Some(a.as_str())));
    refused.extend([Some("Bearer "), Some("Bearer # team keys")]);
    for auth in refused {
        let res = post_link(&server, auth, "denied");
        assert_error(&res, 401, "unauthorized");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"), "{auth:?}");
    }
    let res = post_link(&server, Some(&format!("Bearer {ALPHA}")), "first");
    assert_eq!(res.status, 201, "{}", res.text());
    let res = post_link(&server, Some(&format!("bearer   {BETA} ")), "second");
    assert_eq!(res.status, 201, "{}", res.text());

    let bearer = |key: &str| format!("Bearer {key}");
    let good = bearer(ALPHA);
    let bad = bearer("nope");
    let bulk = json!({"links": [{"url": "https://example.com/b"}]}).to_string();
    let patch = json!({"disabled": true}).to_string();
    let calls: [(&str, &str, &[u8]); 8] = [
        ("GET", "/api/links", b""),
        ("GET", "/api/links/first", b""),
        ("GET", "/api/links/first/stats", b""),
        ("GET", "/api/links/first/qr.svg", b""),
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
    // Nothing was changed by the refused calls.
    let list = json(&authed("GET", "/api/links", b""));
    assert_eq!(list["links"].as_array().unwrap().len(), 2);
    assert_eq!(
        json(&authed("GET", "/api/links/first", b""))["disabled"],
        false
    );
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

    assert_eq!(authed("GET", "/api/links/first/stats", b"").status, 200);
    assert_eq!(authed("GET", "/api/links/first/qr.svg", b"").status, 200);
    // Redirects and the health status are public.
    assert_eq!(server.get("/first").status, 410);
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn keys_may_come_from_the_environment() {
    let server = Options::new()
        .env(
            "SHORTENER_API_KEYS",
            " write:env-one-0123456789abcdef ,, env-two-0123456789abcdef",
        )
        .start();
    assert_error(&post_link(&server, None, "nope"), 401, "unauthorized");
    assert_error(
        &post_link(&server, Some("Bearer env-one"), "nope"),
        401,
        "unauthorized",
    );
    assert_eq!(
        post_link(&server, Some("Bearer env-one-0123456789abcdef"), "one").status,
        201
    );
    assert_eq!(
        post_link(&server, Some("Bearer env-two-0123456789abcdef"), "two").status,
        201
    );
    // A key with no scope is a write key, and the start says so.
    let stderr = util::poll(Duration::from_secs(5), || {
        let text = server.stderr();
        text.contains("read as `write` keys").then_some(text)
    });
    assert!(stderr.is_some(), "{}", server.stderr());
    // Through the helpers, which send the key given to the options.
    let server = Options::new().admin_key().start();
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
    server.wait_stdout("no API key configured: keyless mode, the API answers this machine only");
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
    // Redirects are for everyone.
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
fn refused_keys_are_limited_apart_from_writes() {
    // A client guessing keys spends its own failure budget; past it even
    // the right key waits.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("write {ALPHA}\n")).unwrap();
    let server = Options::new()
        .arg("--api-key-file", keys.to_str().unwrap())
        .arg("--auth-failures-per-minute", "2")
        .start();
    assert_eq!(post_link(&server, Some("Bearer wrong"), "g1").status, 401);
    assert_eq!(post_link(&server, Some("Bearer wrong"), "g2").status, 401);
    let res = post_link(&server, Some("Bearer wrong"), "g3");
    assert_error(&res, 429, "rate_limited");
    let res = post_link(&server, Some(&format!("Bearer {ALPHA}")), "g4");
    let message = assert_error(&res, 429, "rate_limited");
    assert!(message.contains("failed API key attempts"), "{message}");
    assert!(res.header("retry-after").is_some());
}

//! Issue 12, findings 1, 3, 8 and 11, each attack performed against the
//! real binary over a real socket: reading targets and stats without a
//! key, HEAD on a one-time link, falling into keyless mode, DNS rebinding
//! and foreign origins in keyless mode, guessing keys, short keys, scopes,
//! `/metrics` and `/health`.

mod util;

use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;
use util::{assert_error, json, Options, Shortener};

const ADMIN: &str = "admin-key-0123456789abcdef";
const WRITER: &str = "write-key-0123456789abcdef";
const READER: &str = "read-key-0123456789abcdefg";
const TARGET: &str = "https://example.com/secret-target";

/// A server with one key of each scope in a key file; the helpers send the
/// admin key.
fn keyed(extra: &[(&str, &str)]) -> (Shortener, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    let text = format!("# ops\nadmin {ADMIN}\nwrite {WRITER}\n\nread {READER}\n");
    std::fs::write(&file, text).unwrap();
    let mut options = Options::new()
        .arg("--api-key-file", file.to_str().unwrap())
        .key(ADMIN);
    for (flag, value) in extra {
        options = options.arg(flag, value);
    }
    (options.start(), dir)
}

/// `METHOD path` with `key` (if any) and a JSON `body` (if any).
fn call(
    server: &Shortener,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> util::Response {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = Vec::new();
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let body = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    server.request(method, path, &headers, &body)
}

/// `shortener ARGS` on a fresh data directory: it must refuse to start.
/// Returns its stderr.
fn refuses_to_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let data = util::data_dir();
    let mut all = vec!["--addr", "127.0.0.1:1", "--data"];
    let data_arg = data.arg();
    all.push(&data_arg);
    all.extend_from_slice(args);
    let mut command = util::cli(&all);
    command.envs(env.iter().copied());
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "it started: {stdout}");
    assert!(!stdout.contains("listening"), "{stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn key_file(dir: &Path, text: &str) -> String {
    let path = dir.join("keys");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_protected_links_target_and_stats_need_a_key() {
    // Many refusals below: their limit is another test's.
    let (server, _dir) = keyed(&[("--auth-failures-per-minute", "100")]);
    let body = json!({"url": TARGET, "slug": "locked", "password": "correct horse"});
    let res = call(&server, "POST", "/api/links", Some(WRITER), Some(&body));
    assert_eq!(res.status, 201, "{}", res.text());
    server.create(json!({"url": "https://example.com/open", "slug": "open"}));

    // The attack: every read path, without a key or with a wrong one.
    let reads = [
        "/api/links/locked",
        "/api/links",
        "/api/links/locked/stats",
        "/api/links/locked/qr.svg",
        "/api/links/open",
    ];
    for path in reads {
        for key in [None, Some("not-a-key-0123456789abcdef")] {
            let res = call(&server, "GET", path, key, None);
            assert_error(&res, 401, "unauthorized");
            assert!(
                !res.text().contains("secret-target"),
                "{path}: {}",
                res.text()
            );
        }
    }
    // The redirect answers with the password page, not the target, also
    // to HEAD.
    for res in [server.get("/locked"), server.head("/locked")] {
        assert_eq!(res.status, 200);
        assert_eq!(res.header("location"), None);
        assert!(!res.text().contains("secret-target"));
    }
    // The links page is a static shell: no link in it.
    let page = server.get("/links");
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("secret-target") && !page.text().contains("locked"));

    // A read key sees targets, the protected one included.
    let res = call(&server, "GET", "/api/links/locked", Some(READER), None);
    assert_eq!(json(&res)["url"], TARGET);
    assert_eq!(json(&res)["protected"], true);
    let res = call(&server, "GET", "/api/links", Some(READER), None);
    assert!(res.text().contains("secret-target"));
    let res = call(
        &server,
        "GET",
        "/api/links/locked/qr.svg",
        Some(READER),
        None,
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.header("cache-control"), Some("private, max-age=3600"));
    // Stats (visitors' referrers and agents) are admin's alone.
    for key in [READER, WRITER] {
        let res = call(&server, "GET", "/api/links/locked/stats", Some(key), None);
        assert_error(&res, 403, "insufficient_scope");
    }
    let res = call(&server, "GET", "/api/links/locked/stats", Some(ADMIN), None);
    assert_eq!(json(&res)["slug"], "locked");
}

#[test]
fn head_on_a_one_time_link_spends_its_click() {
    let server = Shortener::start();
    server.create(json!({"url": TARGET, "slug": "once", "max_clicks": 1}));
    // The attack: HEAD reads the target, then the real visitor follows.
    let head = server.head("/once");
    assert_eq!(head.status, 302);
    assert_eq!(head.header("location"), Some(TARGET));
    let res = server.get("/once");
    assert_eq!(res.status, 410, "the HEAD spent the only click");
    assert_eq!(res.header("location"), None);
    // Once spent, HEAD hands out nothing either.
    let head = server.head("/once");
    assert_eq!(head.status, 410);
    assert_eq!(head.header("location"), None);
    let stats = server.stats_when_total("once", 1, Duration::from_secs(5));
    assert_eq!(stats["total"], 1);
}

#[test]
fn a_key_source_without_keys_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for text in ["", "\n\n   \n", "# keys go here\n\n# later\n"] {
        let file = key_file(dir.path(), text);
        let stderr = refuses_to_start(&["--api-key-file", &file], &[]);
        assert!(stderr.contains("holds no key"), "{text:?}: {stderr}");
    }
    for value in ["", " , ,"] {
        let stderr = refuses_to_start(&[], &[("SHORTENER_API_KEYS", value)]);
        assert!(
            stderr.contains("SHORTENER_API_KEYS holds no key"),
            "{value:?}: {stderr}"
        );
    }
}

#[test]
fn short_or_malformed_keys_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let short = "admin abc123def456ghi789jkl\n"; // 21 characters
    let file = key_file(dir.path(), &format!("admin {ADMIN}\n{short}"));
    let stderr = refuses_to_start(&["--api-key-file", &file], &[]);
    assert!(
        stderr.contains("entry 2: the key is 21 characters"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("abc123"),
        "the key is never printed: {stderr}"
    );
    let file = key_file(dir.path(), &format!("owner {ADMIN}\n"));
    let stderr = refuses_to_start(&["--api-key-file", &file], &[]);
    assert!(stderr.contains("unknown scope \"owner\""), "{stderr}");
    let stderr = refuses_to_start(&[], &[("SHORTENER_API_KEYS", "admin:short")]);
    assert!(stderr.contains("the key is 5 characters"), "{stderr}");
}

#[test]
fn keyless_mode_refuses_dns_rebinding_and_foreign_origins() {
    let server = Shortener::start();
    let stderr = util::poll(Duration::from_secs(5), || {
        let text = server.stderr();
        text.contains("then restart.").then_some(text)
    })
    .unwrap_or_else(|| panic!("no keyless warning: {}", server.stderr()));
    assert!(
        stderr.contains("WARNING: no API key is configured"),
        "{stderr}"
    );
    assert!(stderr.contains("DNS rebinding"), "{stderr}");

    let port = server.addr().port();
    let create = |slug: &str, host: &str, origin: Option<&str>| {
        let body = json!({"url": TARGET, "slug": slug}).to_string();
        let mut head = format!(
            "POST /api/links HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        if let Some(origin) = origin {
            head.push_str(&format!("Origin: {origin}\r\n"));
        }
        server.send(format!("{head}\r\n{body}").as_bytes(), false)
    };
    // The attacks: a page on evil.example resolved to 127.0.0.1 (Host is
    // its name), and a page of another origin posting here.
    let evil_host = format!("evil.example:{port}");
    assert_error(&create("r1", &evil_host, None), 403, "forbidden");
    let evil_origin = format!("http://{evil_host}");
    assert_error(
        &create("r2", &evil_host, Some(&evil_origin)),
        403,
        "forbidden",
    );
    let local = format!("localhost:{port}");
    let res = create("r3", &local, Some("http://evil.example"));
    assert_error(&res, 403, "forbidden");
    let other_port = format!("http://localhost:{}", port.wrapping_add(1));
    assert_error(&create("r4", &local, Some(&other_port)), 403, "forbidden");
    let list = format!("GET /api/links HTTP/1.1\r\nHost: {evil_host}\r\n\r\n");
    let res = server.send(list.as_bytes(), false);
    assert_error(&res, 403, "forbidden");
    assert!(!res.text().contains("example.com"));

    // This origin, on a loopback name, is the admin.
    let this_origin = format!("http://{local}");
    assert_eq!(create("ok1", &local, Some(&this_origin)).status, 201);
    assert_eq!(
        create("ok2", &format!("127.0.0.1:{port}"), None).status,
        201
    );
    assert_eq!(create("ok3", &format!("[::1]:{port}"), None).status, 201);
    let links = json(&server.api("GET", "/api/links", None));
    let slugs: Vec<&str> = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs.len(), 3, "{slugs:?}");
    assert!(slugs.iter().all(|s| s.starts_with("ok")), "{slugs:?}");
}

#[test]
fn guessing_keys_gets_429_on_reads_too_even_with_the_right_key_after() {
    let (server, _dir) = keyed(&[("--auth-failures-per-minute", "3")]);
    for i in 0..3 {
        let key = format!("guess-{i}-0123456789abcdefghij");
        let res = call(&server, "GET", "/api/links", Some(&key), None);
        assert_error(&res, 401, "unauthorized");
    }
    for path in ["/api/links", "/api/links/anything", "/metrics"] {
        let res = call(&server, "GET", path, Some(ADMIN), None);
        let message = assert_error(&res, 429, "rate_limited");
        assert!(message.contains("failed API key attempts"), "{message}");
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
    // Redirects are not behind keys, so not behind this limit either.
    assert_eq!(server.get("/nothing-here").status, 404);
}

#[test]
fn unauthenticated_writes_do_not_spend_a_clients_write_budget() {
    let (server, _dir) = keyed(&[
        ("--writes-per-minute", "2"),
        ("--auth-failures-per-minute", "100"),
    ]);
    let body = json!({"url": "https://example.com/x"});
    for _ in 0..5 {
        let res = call(&server, "POST", "/api/links", None, Some(&body));
        assert_error(&res, 401, "unauthorized");
    }
    for i in 0..2 {
        let body = json!({"url": format!("https://example.com/{i}")});
        let res = call(&server, "POST", "/api/links", Some(WRITER), Some(&body));
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let res = call(&server, "POST", "/api/links", Some(WRITER), Some(&body));
    assert_error(&res, 429, "rate_limited");
}

#[test]
fn each_scope_does_what_it_may_and_no_more() {
    let (server, _dir) = keyed(&[]);
    server.create_slug("doomed", "https://example.com/d");
    let new = json!({"url": "https://example.com/n"});
    let patch = json!({"disabled": true});
    let res = call(&server, "POST", "/api/links", Some(READER), Some(&new));
    assert_error(&res, 403, "insufficient_scope");
    let res = call(
        &server,
        "PATCH",
        "/api/links/doomed",
        Some(READER),
        Some(&patch),
    );
    assert_error(&res, 403, "insufficient_scope");
    let res = call(&server, "DELETE", "/api/links/doomed", Some(WRITER), None);
    assert_error(&res, 403, "insufficient_scope");
    assert_eq!(server.link("doomed")["disabled"], false, "nothing changed");
    let res = call(
        &server,
        "PATCH",
        "/api/links/doomed",
        Some(WRITER),
        Some(&patch),
    );
    assert_eq!(json(&res)["disabled"], true);
    let res = call(&server, "POST", "/api/links", Some(WRITER), Some(&new));
    assert_eq!(res.status, 201);
    let res = call(&server, "DELETE", "/api/links/doomed", Some(ADMIN), None);
    assert_eq!(res.status, 204);
}

#[test]
fn keys_new_appends_a_working_key_with_its_scope() {
    let data = util::data_dir();
    let new_key = |scope: &str| {
        let out = util::run_cli(&["keys", "new", "--scope", scope, "--data", &data.arg()]);
        let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(key.len() >= 43, "{key:?}");
        key
    };
    let read = new_key("read");
    let admin = new_key("admin");
    assert_ne!(read, admin);
    let file = data.path().join("api-keys");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text, format!("read {read}\nadmin {admin}\n"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only its owner may read the keys");

    // The server finds DATA/api-keys by itself.
    let server = Options::new().data(data.path()).key(&admin).start();
    server.wait_stdout("API keys: 1 admin, 0 write, 1 read");
    let new = json!({"url": "https://example.com/k"});
    let res = call(&server, "POST", "/api/links", Some(&read), Some(&new));
    assert_error(&res, 403, "insufficient_scope");
    assert_eq!(
        call(&server, "GET", "/api/links", Some(&read), None).status,
        200
    );
    assert_eq!(server.create(new)["url"], "https://example.com/k");
    assert_error(&server.get("/api/links"), 401, "unauthorized");
    let bad = util::command()
        .args(["keys", "new", "--scope", "root"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn metrics_and_health_details_need_admin() {
    let (server, _dir) = keyed(&[]);
    assert_error(
        &call(&server, "GET", "/metrics", None, None),
        401,
        "unauthorized",
    );
    let res = call(&server, "GET", "/metrics", Some(READER), None);
    assert_error(&res, 403, "insufficient_scope");
    assert!(server.metrics().contains("shortener_"));
    // Anyone may ask whether it is up, and learns only that.
    let res = server.get("/health");
    assert_eq!(res.status, 200);
    assert_eq!(json(&res), json!({"status": "ok"}));
    let res = call(&server, "GET", "/health", Some(READER), None);
    assert_eq!(json(&res), json!({"status": "ok"}));
    let res = call(&server, "GET", "/health", Some(ADMIN), None);
    let details = json(&res);
    assert_eq!(details["store"], "ok");
    assert!(details.get("pending_click_batches").is_some(), "{details}");
    assert_error(
        &call(
            &server,
            "GET",
            "/health",
            Some("wrong-0123456789abcdefghij"),
            None,
        ),
        401,
        "unauthorized",
    );
}

#[test]
fn the_admin_listener_serves_metrics_and_health_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = key_file(dir.path(), &format!("admin {ADMIN}\n"));
    let server = Options::new()
        .arg("--api-key-file", &file)
        .admin_addr()
        .start();
    let admin = server.admin_addr();
    server.wait_stdout(&format!("/metrics and /health on http://{admin}"));
    let get = |path: &str| {
        let mut stream = TcpStream::connect(admin).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        util::read_response(&mut stream, false)
    };
    let metrics = get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.text().contains("shortener_"));
    assert_eq!(json(&get("/health"))["store"], "ok");
    // Only those two: the API is not there.
    assert_eq!(get("/api/links").status, 404);
    // And the main address still wants the key.
    assert_error(&server.get("/metrics"), 401, "unauthorized");
}

#[test]
fn health_shows_an_error_class_never_the_stores_own_text() {
    if util::skip_on_postgres("breaks the SQLite file under the server") {
        return;
    }
    let server = Options::new().admin_key().start();
    // The attack's precondition: a failing store. The table the health
    // check reads disappears under the server.
    let db = rusqlite::Connection::open(server.data().join("shortener.db")).unwrap();
    db.execute_batch("ALTER TABLE links RENAME TO links_gone")
        .unwrap();
    let res = server.get("/health");
    assert_eq!(res.status, 503);
    assert_eq!(json(&res), json!({"status": "unavailable"}));
    let res = server.api("GET", "/health", None);
    assert_eq!(res.status, 503);
    let details = json(&res);
    let class = details["store"].as_str().unwrap();
    assert!(["failed", "unavailable"].contains(&class), "{details}");
    assert!(
        !res.text().contains("links"),
        "no store text: {}",
        res.text()
    );
    // The detail is in the log, for the operator.
    let logged = util::poll(Duration::from_secs(5), || {
        server.stderr().contains("no such table").then_some(())
    });
    assert!(logged.is_some(), "{}", server.stderr());
}

#[test]
fn api_answers_are_never_sniffed() {
    let server = Shortener::start();
    let created = server.api(
        "POST",
        "/api/links",
        Some(&json!({"url": TARGET, "slug": "sniff"})),
    );
    let answers = [
        created,
        server.api("GET", "/api/links", None),
        server.api("GET", "/api/links/sniff", None),
        server.api("GET", "/api/links/sniff/stats", None),
        server.api("GET", "/api/links/sniff/qr.svg", None),
        server.api("GET", "/api/links/missing", None),
        server.api("PATCH", "/api/links/sniff", Some(&json!({"url": 5}))),
        server.api("POST", "/api/links/bulk", Some(&json!({"links": []}))),
        server.get("/health"),
        server.api("GET", "/metrics", None),
    ];
    for res in &answers {
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{} {:?}",
            res.status,
            res.text()
        );
    }
}

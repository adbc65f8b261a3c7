//! `ServeDir` and `ServeFile` over real sockets: what a file answer
//! carries, every traversal attempt refused, directories and their index,
//! conditional requests in RFC 9110 §13.2.2's order, each range form, and
//! precompressed variants chosen by `Accept-Encoding`.

mod util;

use keel::files::{ServeDir, ServeFile};
use keel::Router;
use std::path::Path;
use util::{parse_all, TestServer};

const APP_JS: &[u8] = b"console.log('keel serves files');\n";

/// A tree with a file, an index, a dot-file, precompressed variants, a
/// symbolic link out of it and one inside, and a secret beside it.
fn tree() -> tempfile::TempDir {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join("app.js"), APP_JS).unwrap();
    std::fs::write(root.join("app.js.gz"), b"GZ-BYTES").unwrap();
    std::fs::write(root.join("app.js.br"), b"BR-BYTES").unwrap();
    std::fs::write(root.join("style.css"), b"body{}").unwrap();
    std::fs::write(root.join("style.css.gz"), b"GZ-CSS").unwrap();
    std::fs::write(root.join("index.html"), b"<h1>root</h1>").unwrap();
    std::fs::write(root.join("sub/index.html"), b"<h1>sub</h1>").unwrap();
    std::fs::write(root.join("digits.txt"), b"0123456789abcdefghij").unwrap();
    std::fs::write(root.join(".git/config"), b"secret git config").unwrap();
    std::fs::write(root.join(".env"), b"PASSWORD=hunter2").unwrap();
    std::fs::write(base.path().join("secret.txt"), b"TOP SECRET").unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink("digits.txt", root.join("alias.txt")).unwrap();
    base
}

fn server(base: &Path, dir: impl FnOnce(ServeDir) -> ServeDir) -> TestServer {
    let assets = dir(ServeDir::new(base.join("root")).unwrap());
    let routes = Router::new()
        .get("/static/*path", assets)
        .get(
            "/one",
            ServeFile::new(base.join("root/app.js")).precompressed_gzip(),
        )
        .get("/gone", ServeFile::new(base.join("root/missing.js")))
        .build()
        .unwrap();
    TestServer::start(routes)
}

/// One request (`lines` are extra header lines) on a new connection.
fn get(server: &TestServer, method: &str, path: &str, lines: &str) -> util::Resp {
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{lines}Connection: close\r\n\r\n");
    let bytes = server.exchange(request.as_bytes());
    let is_head = method == "HEAD";
    let (resp, _) = util::parse_response(&bytes, is_head, false).expect("a whole answer");
    resp
}

#[test]
fn a_file_comes_with_its_type_validators_and_length() {
    let base = tree();
    let server = server(base.path(), |d| d.cache_control("public, max-age=60"));
    let resp = get(&server, "GET", "/static/app.js", "");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, APP_JS);
    assert_eq!(
        resp.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        resp.header("content-length"),
        Some(&*APP_JS.len().to_string())
    );
    assert_eq!(resp.header("accept-ranges"), Some("bytes"));
    assert_eq!(resp.header("cache-control"), Some("public, max-age=60"));
    let etag = resp.header("etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.contains("W/"),
        "{etag}"
    );
    let modified = resp.header("last-modified").unwrap();
    assert!(
        modified.ends_with(" GMT") && modified.len() == 29,
        "{modified}"
    );
    assert_eq!(resp.header("vary"), None, "no variants, no Vary");
    // A symbolic link inside the root is followed.
    assert_eq!(
        get(&server, "GET", "/static/alias.txt", "").body,
        b"0123456789abcdefghij"
    );
    // HEAD: the same head, no body.
    let head = get(&server, "HEAD", "/static/app.js", "");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(&*APP_JS.len().to_string())
    );
    assert_eq!(head.header("etag"), Some(etag));
    assert!(head.body.is_empty());
}

#[test]
fn no_request_path_reaches_a_file_outside_the_root_or_a_dot_file() {
    let base = tree();
    let server = server(base.path(), |d| d);
    let attempts = [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/.%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/sub/../../secret.txt",
        "/static/sub/%2e%2e/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/sub%2f..%2f..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/..\\secret.txt",
        "/static/%00app.js",
        "/static/app.js%00.txt",
        "/static//etc/passwd",
        "/static/%2fetc/passwd",
        "/static/C:/secret.txt",
        "/static/leak.txt",
        "/static/.git/config",
        "/static/.env",
        "/static/%2eenv",
        "/static/sub/%2e%2e%2f%2e%2e%2fsecret.txt",
    ];
    for path in attempts {
        let bytes = server.exchange(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.starts_with("HTTP/1.1 404 ") || text.starts_with("HTTP/1.1 400 "),
            "{path}: {text}"
        );
        for secret in ["TOP SECRET", "hunter2", "git config", "root:"] {
            assert!(!text.contains(secret), "{path} leaked: {text}");
        }
    }
}

#[test]
fn directories_serve_their_index_after_a_slash_and_other_methods_are_refused() {
    let base = tree();
    let server = server(base.path(), |d| d);
    assert_eq!(get(&server, "GET", "/static/", "").body, b"<h1>root</h1>");
    assert_eq!(
        get(&server, "GET", "/static/sub/", "").body,
        b"<h1>sub</h1>"
    );
    let moved = get(&server, "GET", "/static/sub?x=1", "");
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/static/sub/?x=1"));
    // A directory without an index file is not listed.
    assert_eq!(get(&server, "GET", "/static/sub/deeper/", "").status, 404);
    assert_eq!(get(&server, "GET", "/static/missing.txt", "").status, 404);
    let no_index = self::server(base.path(), |d| d.index_file(None));
    assert_eq!(get(&no_index, "GET", "/static/sub/", "").status, 404);
    // The router answers methods it has no route for.
    let post = get(&server, "POST", "/static/app.js", "Content-Length: 0\r\n");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn a_fifo_in_the_tree_is_refused_at_once() {
    let base = tree();
    let fifo = base.path().join("root/pipe");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let server = server(base.path(), |d| d);
    let started = std::time::Instant::now();
    assert_eq!(get(&server, "GET", "/static/pipe", "").status, 404);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn conditional_requests_follow_rfc_9110_order() {
    let base = tree();
    let server = server(base.path(), |d| d.cache_control("no-cache"));
    let first = get(&server, "GET", "/static/app.js", "");
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();
    let cases: Vec<(String, u16)> = vec![
        (format!("If-None-Match: {etag}\r\n"), 304),
        (format!("If-None-Match: \"other\", W/{etag}\r\n"), 304),
        ("If-None-Match: *\r\n".into(), 304),
        ("If-None-Match: \"other\"\r\n".into(), 200),
        (format!("If-Modified-Since: {modified}\r\n"), 304),
        (
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n".into(),
            200,
        ),
        // If-None-Match is evaluated instead of If-Modified-Since (§13.2.2 step 3).
        (
            format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n"),
            200,
        ),
        (format!("If-Match: {etag}\r\n"), 200),
        ("If-Match: \"other\"\r\n".into(), 412),
        // If-Match uses the strong comparison: a weak tag never matches.
        (format!("If-Match: W/{etag}\r\n"), 412),
        (
            "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n".into(),
            412,
        ),
        (format!("If-Unmodified-Since: {modified}\r\n"), 200),
        // If-Match is evaluated instead of If-Unmodified-Since (step 1, 2).
        (
            format!("If-Match: {etag}\r\nIf-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"),
            200,
        ),
        // A failed If-Match wins over a matching If-None-Match.
        (
            format!("If-Match: \"other\"\r\nIf-None-Match: {etag}\r\n"),
            412,
        ),
    ];
    for (lines, status) in cases {
        let resp = get(&server, "GET", "/static/app.js", &lines);
        assert_eq!(resp.status, status, "{lines}");
        if status == 304 {
            assert!(resp.body.is_empty());
            assert_eq!(resp.header("etag"), Some(&*etag), "a 304 names its ETag");
            assert_eq!(resp.header("cache-control"), Some("no-cache"));
        }
    }
    // HEAD follows the same rules.
    let head = get(
        &server,
        "HEAD",
        "/static/app.js",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(head.status, 304);
}

#[test]
fn each_range_form_gets_its_answer() {
    let base = tree();
    let server = server(base.path(), |d| d);
    let etag = get(&server, "GET", "/static/digits.txt", "")
        .header("etag")
        .unwrap()
        .to_owned();
    // (Range and other lines, status, Content-Range, body)
    let cases: Vec<(String, u16, Option<&str>, &[u8])> = vec![
        (
            "Range: bytes=0-9\r\n".into(),
            206,
            Some("bytes 0-9/20"),
            b"0123456789",
        ),
        (
            "Range: bytes=15-\r\n".into(),
            206,
            Some("bytes 15-19/20"),
            b"fghij",
        ),
        (
            "Range: bytes=-3\r\n".into(),
            206,
            Some("bytes 17-19/20"),
            b"hij",
        ),
        (
            "Range: bytes=18-500\r\n".into(),
            206,
            Some("bytes 18-19/20"),
            b"ij",
        ),
        (
            "Range: bytes=-500\r\n".into(),
            206,
            Some("bytes 0-19/20"),
            b"0123456789abcdefghij",
        ),
        (
            "Range: bytes=0-4, 5-9\r\n".into(),
            206,
            Some("bytes 0-9/20"),
            b"0123456789",
        ),
        (
            "Range: bytes=0-1, 10-11\r\n".into(),
            200,
            None,
            b"0123456789abcdefghij",
        ),
        ("Range: bytes=20-\r\n".into(), 416, Some("bytes */20"), b""),
        (
            "Range: bytes=30-40\r\n".into(),
            416,
            Some("bytes */20"),
            b"",
        ),
        (
            "Range: items=0-1\r\n".into(),
            200,
            None,
            b"0123456789abcdefghij",
        ),
        (
            "Range: bytes=5-1\r\n".into(),
            200,
            None,
            b"0123456789abcdefghij",
        ),
        (
            format!("Range: bytes=0-1\r\nIf-Range: {etag}\r\n"),
            206,
            Some("bytes 0-1/20"),
            b"01",
        ),
        (
            "Range: bytes=0-1\r\nIf-Range: \"stale\"\r\n".into(),
            200,
            None,
            b"0123456789abcdefghij",
        ),
    ];
    for (lines, status, content_range, body) in cases {
        let resp = get(&server, "GET", "/static/digits.txt", &lines);
        assert_eq!(resp.status, status, "{lines}");
        assert_eq!(resp.header("content-range"), content_range, "{lines}");
        assert_eq!(resp.body, body, "{lines}");
    }
}

#[test]
fn precompressed_variants_follow_accept_encoding() {
    let base = tree();
    let server = server(base.path(), |d| d.precompressed_br().precompressed_gzip());
    // (Accept-Encoding, body, Content-Encoding)
    let cases: &[(&str, &[u8], Option<&str>)] = &[
        ("", APP_JS, None),
        ("Accept-Encoding: gzip\r\n", b"GZ-BYTES", Some("gzip")),
        ("Accept-Encoding: gzip, br\r\n", b"BR-BYTES", Some("br")),
        (
            "Accept-Encoding: br;q=0.5, gzip\r\n",
            b"GZ-BYTES",
            Some("gzip"),
        ),
        ("Accept-Encoding: br;q=0, gzip;q=0\r\n", APP_JS, None),
        ("Accept-Encoding: identity\r\n", APP_JS, None),
        ("Accept-Encoding: *\r\n", b"BR-BYTES", Some("br")),
    ];
    let mut tags = std::collections::HashSet::new();
    for (lines, body, coding) in cases {
        let resp = get(&server, "GET", "/static/app.js", lines);
        assert_eq!(resp.status, 200, "{lines}");
        assert_eq!(&resp.body[..], *body, "{lines}");
        assert_eq!(resp.header("content-encoding"), *coding, "{lines}");
        assert_eq!(
            resp.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(resp.header("vary"), Some("Accept-Encoding"), "{lines}");
        tags.insert(resp.header("etag").unwrap().to_owned());
    }
    assert_eq!(tags.len(), 3, "each variant has its own ETag: {tags:?}");
    // Only a .gz beside style.css: a client preferring br gets gzip.
    let css = get(
        &server,
        "GET",
        "/static/style.css",
        "Accept-Encoding: br, gzip;q=0.5\r\n",
    );
    assert_eq!(css.body, b"GZ-CSS");
    assert_eq!(css.header("content-encoding"), Some("gzip"));
    // ServeFile does the same for its one file.
    let one = get(&server, "GET", "/one", "Accept-Encoding: gzip\r\n");
    assert_eq!(one.body, b"GZ-BYTES");
    assert_eq!(one.header("content-encoding"), Some("gzip"));
    assert_eq!(get(&server, "GET", "/one", "").body, APP_JS);
    assert_eq!(get(&server, "GET", "/gone", "").status, 404);
}

#[test]
fn pipelined_file_answers_keep_their_order_and_framing() {
    let base = tree();
    let server = server(base.path(), |d| d);
    let mut batch = Vec::new();
    for path in [
        "/static/app.js",
        "/static/missing",
        "/static/digits.txt",
        "/static/sub",
    ] {
        batch.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    batch.extend_from_slice(b"GET /static/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let answers = parse_all(&server.exchange(&batch));
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 404, 200, 301, 200]);
    assert_eq!(answers[2].body, b"0123456789abcdefghij");
    assert_eq!(answers[4].body, b"<h1>root</h1>");
}

#[test]
fn under_the_compression_layer_files_go_out_as_they_are() {
    use keel::middleware::{Compression, HandlerExt};
    let base = tree();
    let dir = ServeDir::new(base.path().join("root")).unwrap();
    let routes = Router::new()
        .get("/static/*path", dir.with(Compression::new()))
        .build()
        .unwrap();
    let server = TestServer::start(routes);
    let gzip = "Accept-Encoding: gzip\r\n";
    // A file body is sent with sendfile or read in whole: the layer leaves
    // it as it is (a precompressed variant is how files get gzip).
    let resp = get(&server, "GET", "/static/app.js", gzip);
    assert_eq!(resp.body, APP_JS);
    assert_eq!(resp.header("content-encoding"), None);
    let ranged = get(
        &server,
        "GET",
        "/static/digits.txt",
        "Range: bytes=2-4\r\nAccept-Encoding: gzip\r\n",
    );
    assert_eq!((ranged.status, &ranged.body[..]), (206, &b"234"[..]));
    let etag = resp.header("etag").unwrap().to_owned();
    let again = get(
        &server,
        "GET",
        "/static/app.js",
        &format!("{gzip}If-None-Match: {etag}\r\n"),
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
}

//! The shortener's files, against the real binary over sockets: the
//! embedded pages under keel's file rules (RFC 9110 conditional requests
//! and ranges), and `--assets DIR` under `/static/`: overrides, fallbacks,
//! a 100 MiB download, precompressed variants, and the attacks on it
//! (traversal in every spelling, dot-files, symbolic links out, scripts in
//! an uploaded SVG or HTML file).

mod util;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::Path;
use util::{command, Options, Shortener};

const EMBEDDED_CSS: &[u8] = include_bytes!("../assets/app.css");
const EMBEDDED_JS: &[u8] = include_bytes!("../assets/app.js");
const EMBEDDED_INDEX: &[u8] = include_bytes!("../assets/index.html");

/// What no answer may ever contain: the content of the files outside DIR.
const SECRET: &str = "SECRET-7f3a9c-never-served";

#[test]
fn embedded_pages_answer_conditional_requests_and_ranges() {
    let server = Shortener::start();
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(page.body, EMBEDDED_INDEX);
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(page.header("accept-ranges"), Some("bytes"));
    assert!(page.header("content-security-policy").is_some());
    let etag = page.header("etag").expect("an ETag").to_owned();

    // Revalidation: weak comparison, so a proxy's `W/` still matches.
    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"old\", {etag}"),
    ] {
        let res = server.request("GET", "/", &[("If-None-Match", &tag)], b"");
        assert_eq!(res.status, 304, "If-None-Match: {tag}");
        assert!(res.body.is_empty());
        assert_eq!(res.header("etag"), Some(etag.as_str()));
        assert_eq!(res.header("cache-control"), Some("no-cache"));
    }
    let res = server.request("GET", "/", &[("If-None-Match", "\"old\"")], b"");
    assert_eq!(res.status, 200);
    // If-Match compares strongly: the right tag passes, another fails.
    let res = server.request("GET", "/", &[("If-Match", "\"old\"")], b"");
    assert_eq!(res.status, 412);
    let res = server.request("GET", "/", &[("If-Match", &etag)], b"");
    assert_eq!(res.status, 200);

    // A range of app.js: 206 with exactly those bytes.
    let res = server.request("GET", "/static/app.js", &[("Range", "bytes=100-199")], b"");
    assert_eq!(res.status, 206, "{}", res.text());
    let whole = format!("bytes 100-199/{}", EMBEDDED_JS.len());
    assert_eq!(res.header("content-range"), Some(whole.as_str()));
    assert_eq!(res.body, &EMBEDDED_JS[100..200]);
    let suffix = server.request("GET", "/static/app.js", &[("Range", "bytes=-10")], b"");
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.body, &EMBEDDED_JS[EMBEDDED_JS.len() - 10..]);
    let past = format!("bytes={}-", EMBEDDED_JS.len());
    let res = server.request("GET", "/static/app.js", &[("Range", &past)], b"");
    assert_eq!(res.status, 416);
    // Without --assets, only the embedded names exist.
    assert_eq!(server.get("/static/other.js").status, 404);
}

/// A tree beside DIR that no request may reach, and DIR itself.
struct Tree {
    _root: tempfile::TempDir,
    dir: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn tree() -> Tree {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("assets");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    Tree {
        dir,
        outside,
        _root: root,
    }
}

fn with_assets(dir: &Path) -> Shortener {
    Options::new()
        .arg("--assets", dir.to_str().unwrap())
        .start()
}

#[test]
fn the_assets_dir_overrides_app_css_and_app_js_falls_back_to_the_embedded_one() {
    let tree = tree();
    let css = b"body { background: rebeccapurple }\n";
    std::fs::write(tree.dir.join("app.css"), css).unwrap();
    std::fs::write(tree.dir.join("notes.txt"), "plain notes\n").unwrap();
    let server = with_assets(&tree.dir);

    let res = server.get("/static/app.css");
    assert_eq!(res.status, 200);
    assert_eq!(res.body, css, "DIR's app.css wins");
    assert_eq!(res.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(res.header("cache-control"), Some("no-cache"));
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(res.header("vary"), Some("Accept-Encoding"));
    assert!(res.header("last-modified").is_some(), "a file's date");
    let etag = res.header("etag").unwrap().to_owned();
    let res = server.request("GET", "/static/app.css", &[("If-None-Match", &etag)], b"");
    assert_eq!(res.status, 304);
    assert!(res.body.is_empty());

    let res = server.get("/static/app.js");
    assert_eq!(res.status, 200);
    assert_eq!(res.body, EMBEDDED_JS, "DIR has no app.js: the embedded one");
    let res = server.get("/static/notes.txt");
    assert_eq!(res.text(), "plain notes\n");
    // Anything else DIR lacks is 404; a directory is no listing.
    std::fs::create_dir(tree.dir.join("sub")).unwrap();
    for missing in [
        "/static/nope.css",
        "/static/",
        "/static/sub/",
        "/static/sub",
    ] {
        let res = server.get(missing);
        assert_eq!(res.status, 404, "{missing}: {}", res.text());
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    }
    // The pages are the embedded ones, and still work.
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(page.body, EMBEDDED_INDEX);
    assert_eq!(server.get("/static/app.css").body, css);
    assert_ne!(css.as_slice(), EMBEDDED_CSS);
}

#[test]
fn a_100_mib_file_downloads_whole_and_in_ranges() {
    const LEN: usize = 100 << 20;
    let tree = tree();
    // Pseudo-random bytes (xorshift): a shifted or repeated block would
    // change the hash.
    let mut content = Vec::with_capacity(LEN);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while content.len() < LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        content.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(tree.dir.join("big.bin"), &content).unwrap();
    let expected = Sha256::digest(&content);
    let server = with_assets(&tree.dir);

    let mut stream = server.connect();
    stream
        .write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (head, received, digest) = read_hashed(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: 104857600\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: application/octet-stream\r\n"),
        "{head}"
    );
    assert_eq!(received, LEN as u64);
    assert_eq!(digest, expected.as_slice(), "the bytes are the file's");

    let res = server.request(
        "GET",
        "/static/big.bin",
        &[("Range", "bytes=52428800-52428899")],
        b"",
    );
    assert_eq!(res.status, 206);
    assert_eq!(res.body, &content[52_428_800..52_428_900]);
    let res = server.head("/static/big.bin");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length"), Some("104857600"));
    assert!(res.body.is_empty());
}

/// Reads a response to its close: the head as text, then the body's length
/// and SHA-256 as it arrives (100 MiB is not kept).
fn read_hashed(stream: &mut std::net::TcpStream) -> (String, u64, Vec<u8>) {
    let mut buf = vec![0u8; 1 << 16];
    let mut head = Vec::new();
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut in_body = false;
    loop {
        let n = stream.read(&mut buf).expect("read the download");
        if n == 0 {
            break;
        }
        if in_body {
            hasher.update(&buf[..n]);
            received += n as u64;
            continue;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = head.split_off(end + 4);
            hasher.update(&body);
            received += body.len() as u64;
            in_body = true;
        }
    }
    (
        String::from_utf8(head).unwrap(),
        received,
        hasher.finalize().to_vec(),
    )
}

#[test]
fn a_precompressed_variant_goes_to_clients_that_accept_it() {
    let tree = tree();
    let json = "{\"items\": [".to_owned() + &"{\"n\": 1}, ".repeat(500) + "{}]}";
    std::fs::write(tree.dir.join("data.json"), &json).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(json.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    std::fs::write(tree.dir.join("data.json.gz"), &gz).unwrap();
    let server = with_assets(&tree.dir);

    let res = server.request(
        "GET",
        "/static/data.json",
        &[("Accept-Encoding", "br;q=1, gzip;q=0.5")],
        b"",
    );
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-encoding"),
        Some("gzip"),
        "no .br: the .gz"
    );
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.header("vary"), Some("Accept-Encoding"));
    assert_eq!(res.body, gz, "the variant's bytes, as they are");
    let mut decoded = String::new();
    GzDecoder::new(&res.body[..])
        .read_to_string(&mut decoded)
        .unwrap();
    assert_eq!(decoded, json);

    for refuses in [None, Some("identity"), Some("gzip;q=0")] {
        let headers: Vec<(&str, &str)> = refuses.iter().map(|v| ("Accept-Encoding", *v)).collect();
        let res = server.request("GET", "/static/data.json", &headers, b"");
        assert_eq!(res.header("content-encoding"), None, "{refuses:?}");
        assert_eq!(res.header("vary"), Some("Accept-Encoding"));
        assert_eq!(res.text(), json);
    }
}

/// The attack: read files outside DIR, or secrets inside it, through
/// `/static/` in every spelling a path filter might miss; replace app.js
/// with a link to a secret. Every answer is a 404 (or the embedded file)
/// and never holds a secret byte.
#[test]
fn traversal_dot_files_and_symlinks_out_are_refused() {
    let tree = tree();
    std::fs::write(tree.dir.join(".env"), SECRET).unwrap();
    std::fs::create_dir(tree.dir.join(".git")).unwrap();
    std::fs::write(tree.dir.join(".git/config"), SECRET).unwrap();
    symlink(tree.outside.join("secret.txt"), tree.dir.join("link.txt")).unwrap();
    symlink(&tree.outside, tree.dir.join("out")).unwrap();
    symlink(tree.outside.join("secret.txt"), tree.dir.join("app.js")).unwrap();
    std::fs::write(tree.dir.join("fine.txt"), "fine\n").unwrap();
    let server = with_assets(&tree.dir);
    assert_eq!(
        server.get("/static/fine.txt").text(),
        "fine\n",
        "DIR is served"
    );

    for target in [
        "/static/../outside/secret.txt",
        "/static/%2e%2e/outside/secret.txt",
        "/static/%2E%2E/outside/secret.txt",
        "/static/.%2e/outside/secret.txt",
        "/static/..%2foutside%2fsecret.txt",
        "/static/..%5coutside%5csecret.txt",
        "/static/sub/../../outside/secret.txt",
        "/static//etc/passwd",
        "/static/%2fetc/passwd",
        "/static/fine.txt%00.css",
        "/static/.env",
        "/static/%2eenv",
        "/static/.git/config",
        "/static/link.txt",
        "/static/out/secret.txt",
    ] {
        let mut stream = server.connect();
        let raw = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(raw.as_bytes()).unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 404 "), "{target}: {reply}");
        assert!(!reply.contains(SECRET), "{target} leaked: {reply}");
    }
    // app.js is a link out of DIR: not DIR's file, so the embedded one.
    let res = server.get("/static/app.js");
    assert_eq!(res.status, 200);
    assert_eq!(res.body, EMBEDDED_JS);
}

/// The attack: an SVG or HTML file with a script, put in DIR (an upload
/// folder, a theme from elsewhere), opened from the app's own origin where
/// the script could call the API with the visitor's key. Those answers are
/// sandboxed, whatever the spelling of the name; a stylesheet is not.
#[test]
fn html_svg_and_xml_from_the_assets_dir_are_sandboxed() {
    let tree = tree();
    let svg =
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>fetch('/api/links')</script></svg>";
    std::fs::write(tree.dir.join("logo.svg"), svg).unwrap();
    std::fs::write(tree.dir.join("SHOUT.SVG"), svg).unwrap();
    std::fs::write(tree.dir.join("page.html"), "<script>alert(1)</script>").unwrap();
    std::fs::write(tree.dir.join("feed.xml"), "<x/>").unwrap();
    std::fs::write(tree.dir.join("app.css"), "body{}").unwrap();
    let server = with_assets(&tree.dir);

    for (target, content_type) in [
        ("/static/logo.svg", "image/svg+xml"),
        ("/static/logo%2Esvg", "image/svg+xml"),
        ("/static/SHOUT.SVG", "image/svg+xml"),
        ("/static/page.html", "text/html; charset=utf-8"),
        ("/static/feed.xml", "text/xml; charset=utf-8"),
    ] {
        let res = server.get(target);
        assert_eq!(res.status, 200, "{target}");
        assert_eq!(res.header("content-type"), Some(content_type), "{target}");
        assert_eq!(
            res.header("content-security-policy"),
            Some("sandbox"),
            "{target}"
        );
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        let etag = res.header("etag").unwrap();
        let revalidated = server.request("GET", target, &[("If-None-Match", etag)], b"");
        assert_eq!(revalidated.status, 304);
    }
    let css = server.get("/static/app.css");
    assert_eq!(css.header("content-security-policy"), None);
}

#[test]
fn an_assets_dir_that_is_not_a_directory_stops_the_start() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for dir in [data.path().join("missing"), file] {
        let out = command()
            .args([
                "--data",
                data.path().to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
            ])
            .arg("--assets")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cannot serve --assets"), "{stderr}");
    }
}

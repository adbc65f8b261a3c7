//! Streams in the shortener, against the real binary: a CSV import read as
//! it arrives (in bounded memory), an export streamed as rows are read, and
//! a link's clicks live as Server-Sent Events. All need the admin key.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};
use util::{assert_error, json, read_response, Options, Shortener};

/// Peak resident memory of process `pid` so far (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

/// Sends `rows` generated CSV rows to `/api/import` as a chunked body, one
/// chunk per 1,000 rows; each URL carries `pad` bytes of query. Returns
/// the answer.
fn import(server: &Shortener, key: Option<&str>, rows: usize, pad: usize) -> util::Response {
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST /api/import HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: text/csv\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let padding = "p".repeat(pad);
    let mut chunk = String::from("slug,url\n");
    for row in 0..rows {
        chunk.push_str(&format!("imp{row},https://example.com/{row}?q={padding}\n"));
        if row % 1000 == 999 || row + 1 == rows {
            if stream
                .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
                .is_err()
            {
                break; // refused: the answer says why
            }
            chunk.clear();
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    read_response(&mut stream, false)
}

#[test]
fn an_import_of_any_size_is_read_as_it_arrives_in_bounded_memory() {
    let server = Options::new().admin_key().start();
    let before = peak_rss_kib(server.pid());
    // About 60 MB of CSV: far more than the server may hold.
    let rows = 60_000;
    let started = Instant::now();
    let res = import(&server, server.key(), rows, 1000);
    assert_eq!(res.status, 200, "{}", res.text());
    let report = json(&res);
    assert_eq!(report["imported"], rows, "{report}");
    assert_eq!(report["skipped"], 0, "{report}");
    let after = peak_rss_kib(server.pid());
    eprintln!(
        "imported {rows} rows (~60 MB) in {:.1?}; shortener peak RSS {before} -> {after} KiB",
        started.elapsed()
    );
    assert!(
        after - before < 24 * 1024,
        "peak RSS grew by {} KiB for a 60 MB import",
        after - before
    );
    // The links work at once (nothing cached as missing).
    let res = server.get("/imp59999");
    assert_eq!(res.status, 302, "{}", res.text());
    // Rows that break a rule are counted and told, the rest imported.
    let res = import(&server, server.key(), 3, 0);
    let report = json(&res);
    assert_eq!(report["imported"], 0, "{report}");
    assert_eq!(report["skipped"], 3, "{report}");
    assert!(report["skips"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("already taken"));
}

#[test]
fn import_and_export_need_the_admin_key_and_refuse_before_reading() {
    let server = Options::new().admin_key().start();
    // Without a key: refused from the head, the declared gigabyte unread.
    let mut stream = server.connect();
    stream
        .write_all(
            b"POST /api/import HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n\
              Content-Length: 1000000000\r\n\r\n",
        )
        .unwrap();
    let res = read_response(&mut stream, false);
    assert_error(&res, 401, "unauthorized");
    assert!(!res.text().contains("100 Continue"));
    let res = server.request("GET", "/api/export", &[], b"");
    assert_error(&res, 401, "unauthorized");
    // With the key but no body: not a CSV, a clear 400.
    let res = server.api("POST", "/api/import", None);
    assert_error(&res, 400, "bad_csv");
    // A write key may not: an export holds every password hash.
    let writer = Options::new()
        .env("SHORTENER_API_KEYS", "write:write-0123456789abcdefghij")
        .key("write-0123456789abcdefghij")
        .start();
    assert_eq!(writer.api("GET", "/api/export", None).status, 403);
    assert_eq!(writer.api("POST", "/api/import", None).status, 403);
}

#[test]
fn an_export_streams_every_link_as_csv() {
    let server = Options::new().admin_key().start();
    let res = import(&server, server.key(), 5_000, 10);
    assert_eq!(json(&res)["imported"], 5_000);
    let mut stream = server.connect();
    let key = server.key().unwrap();
    write!(
        stream,
        "GET /api/export HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    .unwrap();
    let res = read_response(&mut stream, false);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert!(res.header("content-type").unwrap().starts_with("text/csv"));
    let text = res.text();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("slug,url,created_at"));
    assert_eq!(lines.filter(|l| l.starts_with("imp")).count(), 5_000);
}

#[test]
fn the_live_stream_shows_clicks_as_they_happen_and_ends_with_its_client() {
    let server = Options::new().admin_key().start();
    server.create_slug("watched", "https://example.com/watched");
    let key = server.key().unwrap();
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /api/links/watched/live HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        reader.read_line(&mut head).unwrap();
    }
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/event-stream\r\n"),
        "{head}"
    );
    // Events arrive as chunks; read the body's text as it comes.
    let mut seen = String::new();
    let mut read_until = |want: &str, seen: &mut String| {
        let started = Instant::now();
        while !seen.contains(want) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no {want:?} in {seen:?}"
            );
            let mut buf = [0u8; 4096];
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0, "closed; got {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    read_until("event: totals", &mut seen);
    assert!(seen.contains("\"clicks\":0"), "{seen}");
    assert_eq!(server.get("/watched").status, 302);
    read_until("event: click", &mut seen);
    assert!(seen.contains("\"clicks\":1"), "{seen}");
    let watchers = || util::metric(&server.metrics(), "shortener_live_watchers");
    assert_eq!(watchers(), 1.0);
    // The client leaves: the server notices, and the watcher is gone.
    drop(reader);
    drop(stream);
    let gone = util::poll(Duration::from_secs(5), || (watchers() == 0.0).then_some(()));
    assert!(gone.is_some(), "the watcher outlived its client");
    // An unknown link, and no key: the usual errors, no stream.
    let res = server.api("GET", "/api/links/nope/live", None);
    assert_error(&res, 404, "not_found");
    let res = server.request("GET", "/api/links/watched/live", &[], b"");
    assert_error(&res, 401, "unauthorized");
}

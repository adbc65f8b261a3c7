//! The `hello` binary against the real `curl` command-line client: exact
//! answers, keep-alive reuse, HTTP/1.0, `Expect: 100-continue`, chunked
//! uploads, and a clean stop on `SIGTERM`.
//!
//! These tests need `curl` on the `PATH` and fail (they do not skip) without it.

mod util;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use util::curl::{
    assert_server_headers, curl, curl_bodiless_then_plaintext, curl_one, parse_response,
};
use util::Hello;

/// A file under the target's scratch directory holding `len` bytes of
/// every value, in a pseudo-random order.
fn body_file(name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let bytes = util::pseudo_random_bytes(len);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hello-curl-{}-{name}.bin", std::process::id()));
    std::fs::write(&path, &bytes).expect("write the request body file");
    (path, bytes)
}

#[test]
fn curl_is_installed() {
    let output = curl(&["--version"]);
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(version.starts_with("curl "), "curl --version: {version}");
}

#[test]
fn get_plaintext() {
    let hello = Hello::start(2);
    let response = curl_one(&[&hello.url("/plaintext")]);
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(response.header("Content-Type"), "text/plain");
    assert_eq!(response.header("Content-Length"), "13");
    assert!(!response.has_header("Connection"), "{response:?}");
    assert_server_headers(&response);
    assert_eq!(response.body, b"Hello, World!");
}

#[test]
fn serves_with_deferred_accepts_off_and_refuses_a_bad_wait() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hello"));
    command.args(["--defer-accept", "0"]);
    let hello = Hello::spawn(command, 1);
    for _ in 0..2 {
        let response = curl_one(&["-H", "Connection: close", &hello.url("/plaintext")]);
        assert_eq!(response.status_line, "HTTP/1.1 200 OK");
        assert_eq!(response.body, b"Hello, World!");
    }

    let refused = Command::new(env!("CARGO_BIN_EXE_hello"))
        .args(["--addr", "127.0.0.1:0", "--defer-accept", "soon"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--defer-accept: not a number"), "{stderr}");
}

#[test]
fn get_json() {
    let hello = Hello::start(2);
    let response = curl_one(&[&hello.url("/json")]);
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(response.header("Content-Type"), "application/json");
    assert_eq!(response.header("Content-Length"), "27");
    assert_server_headers(&response);
    let json: serde_json::Value =
        serde_json::from_slice(&response.body).expect("the /json body is JSON");
    assert_eq!(json, serde_json::json!({"message": "Hello, World!"}));
    assert_eq!(response.body, br#"{"message":"Hello, World!"}"#);
}

#[test]
fn head_json_has_length_and_no_body() {
    let hello = Hello::start(2);
    let response = curl_one(&["-I", &hello.url("/json")]);
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(response.header("Content-Length"), "27");
    assert_eq!(response.header("Content-Type"), "application/json");
    assert_server_headers(&response);

    // curl ignores a body after a HEAD answer, so prove there is none on the
    // wire: a GET on the same connection must get a clean response, not the
    // 27 stray bytes.
    let head = curl_bodiless_then_plaintext(&["-I", &hello.url("/json")], &hello.url("/plaintext"));
    assert_eq!(head.header("Content-Length"), "27");
}

#[test]
fn get_large_twice_on_one_connection_and_head() {
    let hello = Hello::start(1);
    let url = hello.url("/large");
    // Two in a row on one keep-alive connection: the shared buffer is sent
    // whole each time.
    let output = curl(&["-i", &url, &url]);
    let (first, rest) = parse_response(&output.stdout, false);
    let (second, rest) = parse_response(rest, false);
    assert!(rest.is_empty(), "{} bytes after two responses", rest.len());
    let expected: Vec<u8> = (b'a'..=b'z').cycle().take(1024 * 1024).collect();
    for response in [&first, &second] {
        assert_eq!(response.status_line, "HTTP/1.1 200 OK");
        assert_eq!(response.header("Content-Type"), "application/octet-stream");
        assert_eq!(response.header("Content-Length"), "1048576");
        assert_server_headers(response);
        assert!(response.body == expected, "the body is not a..z repeated");
    }
    let head = curl_one(&["-I", &url]);
    assert_eq!(head.header("Content-Length"), "1048576");
    assert!(head.body.is_empty());
}

#[test]
fn post_echo_returns_body_and_content_type() {
    let hello = Hello::start(2);
    let body = "a small body, with spaces & symbols: {\"k\": [1, 2]}\n";
    let response = curl_one(&[
        "--data-binary",
        body,
        "-H",
        "Content-Type: application/x-keel-test; charset=utf-8",
        &hello.url("/echo"),
    ]);
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        response.header("Content-Type"),
        "application/x-keel-test; charset=utf-8"
    );
    assert_eq!(response.header("Content-Length"), body.len().to_string());
    assert_eq!(response.body, body.as_bytes());

    // Without a Content-Type the echo says octet-stream.
    let response = curl_one(&[
        "--data-binary",
        "xyz",
        "-H",
        "Content-Type:",
        &hello.url("/echo"),
    ]);
    assert_eq!(response.header("Content-Type"), "application/octet-stream");
    assert_eq!(response.body, b"xyz");
}

#[test]
fn post_echo_chunked_upload() {
    let hello = Hello::start(2);
    // Larger than curl's upload buffer, so the body goes as several chunks.
    let (path, bytes) = body_file("chunked", 200_000);
    let output = curl(&[
        "-v",
        "-i",
        "--data-binary",
        &format!("@{}", path.display()),
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Type: application/x-chunked-test",
        &hello.url("/echo"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("> Transfer-Encoding: chunked") && !stderr.contains("> Content-Length"),
        "curl sent the body chunked:\n{stderr}"
    );
    let (response, rest) = parse_response(&output.stdout, false);
    assert!(rest.is_empty());
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        response.header("Content-Type"),
        "application/x-chunked-test"
    );
    assert_eq!(response.header("Content-Length"), bytes.len().to_string());
    assert!(response.body == bytes, "the echo differs from the upload");
    let _ = std::fs::remove_file(path);
}

#[test]
fn post_echo_expect_100_continue() {
    let hello = Hello::start(2);
    let (path, bytes) = body_file("expect", 300_000);
    let started = Instant::now();
    let output = curl(&[
        "-v",
        "-i",
        "--data-binary",
        &format!("@{}", path.display()),
        "-H",
        "Expect: 100-continue",
        "-H",
        "Content-Type: application/x-expect-test",
        // Wait long for the 100, so that a missing one shows as a slow test
        // as well as in the trace.
        "--expect100-timeout",
        "5",
        &hello.url("/echo"),
    ]);
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("> Expect: 100-continue"),
        "curl asked for 100-continue:\n{stderr}"
    );
    assert!(
        stderr.contains("< HTTP/1.1 100 Continue"),
        "the server answered 100 Continue before the body:\n{stderr}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "curl waited {elapsed:?}: it did not get the 100 in time"
    );
    assert!(
        output
            .stdout
            .starts_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{:?}",
        String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(200)])
    );
    let (response, rest) = parse_response(&output.stdout, false);
    assert!(rest.is_empty());
    assert_eq!(response.header("Content-Type"), "application/x-expect-test");
    assert_eq!(response.header("Content-Length"), bytes.len().to_string());
    assert!(response.body == bytes, "the echo differs from the upload");
    let _ = std::fs::remove_file(path);
}

#[test]
fn keep_alive_reuses_one_connection() {
    let hello = Hello::start(2);
    let output = curl(&[
        "-v",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_connects}\\n",
        &hello.url("/plaintext"),
        &hello.url("/json"),
        &hello.url("/plaintext"),
    ]);
    // One connect for the first URL, none for the others.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "200 1\n200 0\n200 0\n"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("Re-using existing connection").count(),
        2,
        "{stderr}"
    );
}

#[test]
fn http10_gets_connection_close() {
    let hello = Hello::start(2);
    let response = curl_one(&["-0", &hello.url("/plaintext")]);
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("Connection"), "close");
    assert_eq!(response.header("Content-Length"), "13");
    assert_eq!(response.body, b"Hello, World!");

    // The connection really closes: a second URL needs a second connect.
    let output = curl(&[
        "-0",
        "-v",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_connects}\\n",
        &hello.url("/plaintext"),
        &hello.url("/json"),
    ]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "200 1\n200 1\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Re-using existing connection"), "{stderr}");

    // An HTTP/1.0 client that asks for keep-alive gets it, and says so.
    let output = curl(&[
        "-0",
        "-H",
        "Connection: keep-alive",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_connects}\\n",
        &hello.url("/plaintext"),
        &hello.url("/plaintext"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Each transfer prints its head (-D -), then its -w line.
    assert_eq!(
        stdout.matches("\r\nConnection: keep-alive\r\n").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("\r\n\r\n200 1\n"), "{stdout}");
    assert!(stdout.ends_with("\r\n\r\n200 0\n"), "{stdout}");
}

#[test]
fn unknown_path_is_404() {
    let hello = Hello::start(2);
    let response = curl_one(&[&hello.url("/no/such/page")]);
    assert_eq!(response.status_line, "HTTP/1.1 404 Not Found");
    assert_eq!(response.header("Content-Type"), "text/plain");
    assert_eq!(response.body, b"Not Found\n");
    assert_server_headers(&response);

    let response = curl_one(&["-X", "DELETE", &hello.url("/json")]);
    assert_eq!(response.status_line, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(response.header("Allow"), "GET, HEAD");
    assert_eq!(response.header("Content-Length"), "0");
}

#[test]
fn sigterm_stops_with_status_0() {
    let mut hello = Hello::start(2);
    // Serve something first, and leave an idle keep-alive connection open:
    // shutdown closes idle connections instead of waiting for them.
    let response = curl_one(&[&hello.url("/plaintext")]);
    assert_eq!(response.body, b"Hello, World!");
    let mut idle = std::net::TcpStream::connect(hello.addr()).expect("connect");
    let mut buf = Vec::new();
    let answer = util::get(&mut idle, "/json", &mut buf).expect("GET /json on a raw socket");
    assert_eq!(answer.status, 200);

    let started = Instant::now();
    hello.signal(libc::SIGTERM);
    let status = hello.wait_timeout(Duration::from_secs(5));
    let elapsed = started.elapsed();
    let stderr = hello.stderr();
    let status = status
        .unwrap_or_else(|| panic!("hello still running 5 s after SIGTERM; stderr:\n{stderr}"));
    assert_eq!(status.code(), Some(0), "exit status; stderr:\n{stderr}");
    assert!(
        stderr.contains("hello: stopped after 2 requests on 2 connections"),
        "{stderr}"
    );
    eprintln!("hello stopped {elapsed:?} after SIGTERM");

    // The idle connection was closed by the server, and nothing listens any more.
    let mut byte = [0u8; 1];
    use std::io::Read;
    assert_eq!(idle.read(&mut byte).expect("read the closed connection"), 0);
    assert!(std::net::TcpStream::connect(hello.addr()).is_err());
}

//! The `hello` binary against the real `curl` command-line client: exact
//! answers, keep-alive reuse, HTTP/1.0, `Expect: 100-continue`, chunked
//! uploads, and a clean stop on `SIGTERM`.
//!
//! These tests need `curl` on the `PATH` and fail (they do not skip) without it.

mod util;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use util::Hello;

/// One parsed HTTP response from `curl -i` output.
#[derive(Debug)]
struct CurlResponse {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl CurlResponse {
    fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {:?}", self.status_line))
    }

    /// The one value of header `name`; panics if it is missing or repeated.
    fn header(&self, name: &str) -> &str {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let value = values
            .next()
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers));
        assert!(
            values.next().is_none(),
            "{name} repeated: {:?}",
            self.headers
        );
        value
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// Runs `curl -sS --max-time 10 ARGS`, asserting that it succeeds.
fn curl(args: &[&str]) -> Output {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the `curl` command-line client ({e}): these tests need curl \
                 on the PATH (Debian/Ubuntu: `apt-get install curl`); they do not skip without it"
            )
        });
    assert!(
        output.status.success(),
        "curl {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Splits `curl -i` output into one response (skipping interim `1xx` heads,
/// which `-i` also prints) and returns it with the bytes after its body.
/// Every response here has a `Content-Length`, or is to a `HEAD` (`is_head`).
fn parse_response(mut raw: &[u8], is_head: bool) -> (CurlResponse, &[u8]) {
    loop {
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..head_end]).expect("response head is UTF-8");
        let rest = &raw[head_end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {line:?}"));
                (name.to_owned(), value.trim().to_owned())
            })
            .collect();
        let mut response = CurlResponse {
            status_line,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&response.status()) {
            assert!(
                response.headers.is_empty(),
                "interim response: {response:?}"
            );
            raw = rest;
            continue;
        }
        let length = if is_head {
            0
        } else {
            response
                .header("Content-Length")
                .parse()
                .expect("numeric Content-Length")
        };
        assert!(
            rest.len() >= length,
            "body shorter than its Content-Length {length}: {} bytes",
            rest.len()
        );
        response.body = rest[..length].to_vec();
        return (response, &rest[length..]);
    }
}

/// `curl -i ARGS`, expecting exactly one response and nothing after it.
fn curl_one(args: &[&str]) -> CurlResponse {
    let is_head = args.contains(&"-I");
    let output = curl(&[&["-i"], args].concat());
    let (response, rest) = parse_response(&output.stdout, is_head);
    assert!(
        rest.is_empty(),
        "bytes after the response: {:?}",
        String::from_utf8_lossy(rest)
    );
    response
}

/// The headers every response carries.
fn assert_server_headers(response: &CurlResponse) {
    assert_eq!(response.header("Server"), "keel");
    let date = response.header("Date");
    assert!(
        date.len() == 29 && date.ends_with(" GMT"),
        "Date is an IMF-fixdate: {date:?}"
    );
}

/// A file under the target's scratch directory holding `len` bytes of
/// every value, in a pseudo-random order.
fn body_file(name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ len as u64;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
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
    let output = curl(&[
        "-v",
        "-i",
        "-I",
        &hello.url("/json"),
        "--next",
        "-sS",
        "-i",
        &hello.url("/plaintext"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Re-using existing connection"),
        "the GET reused the connection of the HEAD:\n{stderr}"
    );
    let (head, rest) = parse_response(&output.stdout, true);
    assert_eq!(head.header("Content-Length"), "27");
    let (get, rest) = parse_response(rest, false);
    assert_eq!(get.status_line, "HTTP/1.1 200 OK");
    assert_eq!(get.body, b"Hello, World!");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(rest));
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

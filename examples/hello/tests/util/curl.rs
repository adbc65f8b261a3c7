//! Running the real `curl` command-line client and parsing what it prints.
//!
//! These helpers need `curl` on the `PATH` and fail (they do not skip)
//! without it.

use std::process::{Command, Output};
use std::time::Duration;

/// How long one ordinary `curl` run may take (`--max-time`).
const CURL_TIMEOUT: Duration = Duration::from_secs(10);

/// One parsed HTTP response from `curl -i` output.
#[derive(Debug)]
pub struct CurlResponse {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl CurlResponse {
    pub fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {:?}", self.status_line))
    }

    /// The one value of header `name`; panics if it is missing or repeated.
    pub fn header(&self, name: &str) -> &str {
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

    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// Runs `curl -sS --max-time 10 ARGS`, asserting that it succeeds.
pub fn curl(args: &[&str]) -> Output {
    curl_within(CURL_TIMEOUT, args)
}

/// Runs `curl -sS --max-time LIMIT ARGS`, asserting that it succeeds.
pub fn curl_within(limit: Duration, args: &[&str]) -> Output {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", &limit.as_secs().to_string()])
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

/// Parses the first response head in `raw` (skipping interim `1xx` heads,
/// which `-i` also prints) and returns it, without a body, with the bytes
/// after the head.
pub fn parse_head(mut raw: &[u8]) -> (CurlResponse, &[u8]) {
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
        let response = CurlResponse {
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
        return (response, rest);
    }
}

/// Splits `curl -i` output into one response and returns it with the bytes
/// after its body. Every response here has a `Content-Length`, or is to a
/// `HEAD` (`is_head`), or is a `304 Not Modified` (which has no body).
pub fn parse_response(raw: &[u8], is_head: bool) -> (CurlResponse, &[u8]) {
    let (mut response, rest) = parse_head(raw);
    let length = if is_head || response.status() == 304 {
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
    (response, &rest[length..])
}

/// `curl -i ARGS`, expecting exactly one response and nothing after it.
pub fn curl_one(args: &[&str]) -> CurlResponse {
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

/// `curl -i ARGS`, whose answer must have no body (a `HEAD`, a `304`),
/// then `GET plaintext_url` on the same connection. curl reads no body
/// after such an answer, so this proves there is none on the wire: bytes
/// sent after the head would spoil the `GET`'s answer. Returns the first
/// answer.
pub fn curl_bodiless_then_plaintext(args: &[&str], plaintext_url: &str) -> CurlResponse {
    let first = [&["-v", "-i"], args].concat();
    let output = curl(&[&first[..], &["--next", "-sS", "-i", plaintext_url]].concat());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Re-using existing connection"),
        "the GET reused the connection of the first request:\n{stderr}"
    );
    let (first, rest) = parse_response(&output.stdout, true);
    let (get, rest) = parse_response(rest, false);
    assert_eq!(get.status_line, "HTTP/1.1 200 OK", "{get:?}");
    assert_eq!(get.body, b"Hello, World!");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(rest));
    first
}

/// The headers every response carries.
pub fn assert_server_headers(response: &CurlResponse) {
    assert_eq!(response.header("Server"), "keel");
    let date = response.header("Date");
    assert!(
        date.len() == 29 && date.ends_with(" GMT"),
        "Date is an IMF-fixdate: {date:?}"
    );
}

//! What the tests say and read on the wire: raw HTTP/1.1 requests and
//! responses (parsed by keel's own test parser), JSON bodies and errors,
//! form values, times, and `/metrics` samples.

use super::{Response, Shortener};
use serde_json::Value;
use std::io::{self, Read};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Reads one response from `stream`; a response without a length runs to
/// the close.
pub fn read_response(stream: &mut impl Read, is_head: bool) -> Response {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match keel::testing::parse_response(&buf, is_head, false) {
            Ok((response, _)) => return response,
            Err(keel::testing::ResponseParseError::Incomplete) => {}
            Err(e) => panic!("{e:?}: {:?}", String::from_utf8_lossy(&buf)),
        }
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!(
                "reading a response: {e}; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        };
        if n == 0 {
            return keel::testing::parse_response(&buf, is_head, true)
                .map(|(response, _)| response)
                .unwrap_or_else(|e| {
                    panic!(
                        "closed inside a response ({e:?}): {:?}",
                        String::from_utf8_lossy(&buf)
                    )
                });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads `count` responses (none to a `HEAD`) from a keep-alive
/// connection, pipelined or not; asserts nothing follows them.
pub fn read_responses(stream: &mut TcpStream, count: usize) -> Vec<Response> {
    let mut got = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        loop {
            match keel::testing::parse_response(&buf, false, false) {
                Ok((response, used)) => {
                    got.push(response);
                    buf.drain(..used);
                }
                Err(keel::testing::ResponseParseError::Incomplete) => break,
                Err(e) => panic!("{e:?}: {:?}", String::from_utf8_lossy(&buf)),
            }
        }
        if got.len() >= count {
            assert_eq!(got.len(), count, "more responses than requests");
            assert!(
                buf.is_empty(),
                "extra bytes: {:?}",
                String::from_utf8_lossy(&buf)
            );
            return got;
        }
        let n = stream.read(&mut chunk).expect("read responses");
        assert!(n > 0, "closed after {} of {count} responses", got.len());
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The bytes of `METHOD path HTTP/1.1` with `Host`, `headers`, and `body`
/// with its `Content-Length` (also for an empty body of a method that
/// usually has one).
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The body of `res` as JSON, asserting it says it is JSON.
pub fn json(res: &Response) -> Value {
    assert_eq!(
        res.header("content-type"),
        Some("application/json"),
        "not JSON: {} {:?}",
        res.status,
        res.text()
    );
    serde_json::from_slice(&res.body)
        .unwrap_or_else(|e| panic!("invalid JSON ({e}): {:?}", res.text()))
}

/// Asserts `res` is the JSON error `status` with `code`; returns its
/// message.
#[track_caller]
pub fn assert_error(res: &Response, status: u16, code: &str) -> String {
    assert_eq!(res.status, status, "wanted {status} {code}: {}", res.text());
    let body = json(res);
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"));
    assert!(!message.is_empty());
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    message.to_owned()
}

/// Calls `check` every 20 ms until it returns `Some`, for up to `timeout`.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `at` (Unix seconds) as RFC 3339 UTC, `2026-11-25T10:00:00Z`.
pub fn rfc3339(at: i64) -> String {
    let (date, secs) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        iso_day(date),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `YYYY-MM-DD` of a day number (days since the Unix epoch), proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
pub fn iso_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The sum of every sample of metric `name` (over its label sets) in a
/// Prometheus text page; panics when there is none.
pub fn metric(text: &str, name: &str) -> f64 {
    let mut found = false;
    let sum = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let series_name = series.split('{').next()?;
            (series_name == name).then(|| value.parse::<f64>().ok())?
        })
        .inspect(|_| found = true)
        .sum();
    assert!(found, "no {name} in /metrics:\n{text}");
    sum
}

/// Percent-encodes a form value (`application/x-www-form-urlencoded`).
pub fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => String::from("+"),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST /SLUG` of the password form with `password`.
pub fn unlock(server: &Shortener, slug: &str, password: &str) -> Response {
    let body = format!("password={}", form_encode(password));
    server.request(
        "POST",
        &format!("/{slug}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

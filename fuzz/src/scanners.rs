//! The word-at-a-time scans keel makes on the hot path, checked against
//! byte-at-a-time forms written here, through keel's public API: the `?`
//! that ends the path ([`keel::Request::path`], [`keel::Request::query`])
//! and the bytes a field value may hold ([`keel::Response::try_header`]).

use super::input::Cursor;
use keel::testing::MemoryConn;
use keel::{Request, Response};
use std::sync::{Arc, Mutex};

/// Bytes an origin-form target may hold (RFC 3986 pchar, `/` and `?`), so
/// that every generated target is served and its handler runs.
const TARGET_BYTES: &[u8; 16] = b"/?a=&.-_~Z9:@!$'";

/// What the handler saw: the path, the query, and whether the value was
/// taken as a header.
type Seen = (String, Option<String>, bool);

/// Input: one byte `n`, then `n` bytes each mapped onto [`TARGET_BYTES`]
/// (the target is `/` and those), then the header value, taken as is.
pub fn scanners(data: &[u8]) {
    let mut cur = Cursor(data);
    let len = usize::from(cur.byte());
    let mut target = vec![b'/'];
    target.extend(
        cur.take(len)
            .iter()
            .map(|&b| TARGET_BYTES[usize::from(b) % TARGET_BYTES.len()]),
    );
    let value = cur.0.to_vec();

    let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
    let record = Arc::clone(&seen);
    let header_value = value.clone();
    let mut conn = MemoryConn::new(move |req: &Request<'_>, res: &mut Response<'_>| {
        let taken = res.try_header("X-Fuzz", &header_value).is_ok();
        let path = req.path().to_owned();
        let query = req.query().map(str::to_owned);
        *record.lock().expect("not poisoned") = Some((path, query, taken));
        res.body(b"");
    });
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(&target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    conn.send(&request);
    let reply = conn.recv();

    let target = String::from_utf8(target).expect("ASCII");
    let seen = seen.lock().expect("not poisoned").take();
    let Some((path, query, taken)) = seen else {
        panic!(
            "{target:?} was not served: {:?}",
            String::from_utf8_lossy(&reply)
        );
    };
    let (want_path, want_query) = match target.bytes().position(|b| b == b'?') {
        Some(at) => (&target[..at], Some(&target[at + 1..])),
        None => (target.as_str(), None),
    };
    assert_eq!(path, want_path, "path of {target:?}");
    assert_eq!(query.as_deref(), want_query, "query of {target:?}");
    let allowed = value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    assert_eq!(taken, allowed, "header value {value:?}");
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"), "{reply:?}");
}

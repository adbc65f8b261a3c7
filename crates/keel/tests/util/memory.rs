//! Helpers for tests that drive a connection in memory ([`MemoryConn`]).

use keel::testing::MemoryConn;
use keel::{Handler, Request, Response};

/// Sends one request, returns the whole response as text.
pub fn exchange(conn: &mut MemoryConn<impl Handler>, request: &str) -> String {
    conn.send(request.as_bytes());
    String::from_utf8(conn.recv()).unwrap()
}

/// Answers `ok` as `text/plain`.
pub fn ok(_: &Request<'_>, res: &mut Response<'_>) {
    res.header("Content-Type", "text/plain").body(b"ok");
}

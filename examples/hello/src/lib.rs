//! The `hello` example's handler, as a library so that the benchmarks run
//! exactly the code the server runs. The contract (TechEmpower-style):
//!
//! - `GET /plaintext` -> `Hello, World!` (`text/plain`)
//! - `GET /json` -> `{"message":"Hello, World!"}`, serialised per request
//! - `POST /echo` -> the request body, with the request's `Content-Type`
//! - `GET /large` -> [`LARGE_LEN`] bytes (`application/octet-stream`), the
//!   same shared buffer every time: the slow-reader attack's large answer
//!   (`benches/attack`)
#![forbid(unsafe_code)]

use keel::{field, Bytes, Request, Response, StatusCode};
use serde::Serialize;
use std::sync::OnceLock;

/// Length of the `GET /large` body: 1 MiB.
pub const LARGE_LEN: usize = 1024 * 1024;

/// The `GET /large` body: the letters `a` to `z` repeated to [`LARGE_LEN`]
/// bytes. Built once; each call returns the same shared buffer (a reference
/// count, no copy), so that keel and the hyper baseline send it alike.
pub fn large_body() -> Bytes {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    BODY.get_or_init(|| {
        (b'a'..=b'z')
            .cycle()
            .take(LARGE_LEN)
            .collect::<Vec<u8>>()
            .into()
    })
    .clone()
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// Answers the hello contract.
pub fn hello(req: &Request<'_>, res: &mut Response<'_>) {
    match (req.method(), req.path()) {
        ("GET" | "HEAD", "/plaintext") => {
            res.field(field!("Content-Type", "text/plain"))
                .body(b"Hello, World!");
        }
        ("GET" | "HEAD", "/json") => {
            res.field(field!("Content-Type", "application/json"));
            // Serialising into the response writes straight into the output buffer.
            let written = serde_json::to_writer(
                &mut *res,
                &Message {
                    message: "Hello, World!",
                },
            );
            if written.is_err() {
                res.status(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
        ("GET" | "HEAD", "/large") => {
            // Written from the shared buffer with writev: no per-request copy.
            res.field(field!("Content-Type", "application/octet-stream"))
                .body_bytes(large_body());
        }
        ("POST", "/echo") => {
            let content_type = req
                .header("content-type")
                .unwrap_or(b"application/octet-stream");
            res.header("Content-Type", content_type).body(req.body());
        }
        (_, "/plaintext" | "/json" | "/echo" | "/large") => {
            let allow = if req.path() == "/echo" {
                "POST"
            } else {
                "GET, HEAD"
            };
            res.status(StatusCode::METHOD_NOT_ALLOWED)
                .header("Allow", allow)
                .body(b"");
        }
        _ => {
            res.status(StatusCode::NOT_FOUND)
                .field(field!("Content-Type", "text/plain"))
                .body(b"Not Found\n");
        }
    }
}

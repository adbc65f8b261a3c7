//! The `hello` example's handler, as a library so that the benchmarks run
//! exactly the code the server runs. The contract (TechEmpower-style):
//!
//! - `GET /plaintext` -> `Hello, World!` (`text/plain`)
//! - `GET /json` -> `{"message":"Hello, World!"}`, serialised per request
//! - `POST /echo` -> the request body, with the request's `Content-Type`
#![forbid(unsafe_code)]

use keel::{Request, Response, StatusCode};
use serde::Serialize;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// Answers the hello contract.
pub fn hello(req: &Request<'_>, res: &mut Response<'_>) {
    match (req.method(), req.path()) {
        ("GET" | "HEAD", "/plaintext") => {
            res.header("Content-Type", "text/plain")
                .body(b"Hello, World!");
        }
        ("GET" | "HEAD", "/json") => {
            res.header("Content-Type", "application/json");
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
        ("POST", "/echo") => {
            let content_type = req
                .header("content-type")
                .unwrap_or(b"application/octet-stream");
            res.header("Content-Type", content_type).body(req.body());
        }
        (_, "/plaintext" | "/json" | "/echo") => {
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
                .header("Content-Type", "text/plain")
                .body(b"Not Found\n");
        }
    }
}

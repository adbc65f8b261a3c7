//! The keel side: the handler of `examples/hello`, byte for byte the same
//! logic (keep the two in step), and an in-process server.

use keel::{Request, Response, Server, ServerHandle, StatusCode};
use serde::Serialize;
use std::io;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// The `hello` example's handler (copied from `examples/hello/src/main.rs`).
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

/// A keel server with one worker on a free port of 127.0.0.1, serving [`hello`].
///
/// # Errors
///
/// When the listener or the worker cannot be created.
pub fn start_server() -> io::Result<ServerHandle> {
    Server::bind("127.0.0.1:0").workers(1).serve(hello)
}

#[cfg(test)]
mod tests {
    /// The text of `fn hello` up to its closing brace, without visibility.
    fn hello_fn(source: &str) -> &str {
        let start = source.find("fn hello(").expect("a fn hello");
        let len = source[start..].find("\n}\n").expect("its end") + 2;
        &source[start..start + len]
    }

    #[test]
    fn handler_is_the_examples() {
        let example = include_str!("../../examples/hello/src/main.rs");
        let copy = include_str!("keel_app.rs");
        assert_eq!(
            hello_fn(copy),
            hello_fn(example),
            "benches/src/keel_app.rs must keep examples/hello's handler verbatim"
        );
    }
}

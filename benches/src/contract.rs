//! The `hello` contract, framework-neutral: which answer a request gets
//! ([`route`]) and the bodies, so that each baseline server (hyper,
//! actix-web) only maps a [`Route`] to its own response type and the rules
//! live once. keel's side is `examples/hello`'s handler.

use serde::Serialize;

/// The largest request body `/echo` takes: keel's default `Config::max_body`.
pub const MAX_BODY: usize = 1024 * 1024;

/// The listen backlog: keel's default.
pub const BACKLOG: u32 = 4096;

/// The `/plaintext` body.
pub const PLAINTEXT: &[u8] = b"Hello, World!";

/// The body of a `404`.
pub const NOT_FOUND: &[u8] = b"Not Found\n";

/// What a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET`/`HEAD /plaintext`: [`PLAINTEXT`], `text/plain`.
    Plaintext,
    /// `GET`/`HEAD /json`: [`json`], `application/json`.
    Json,
    /// `GET`/`HEAD /large`: `hello::large_body()`, `application/octet-stream`.
    Large,
    /// `POST /echo`: the body (at most [`MAX_BODY`]), with its content type.
    Echo,
    /// A known path with another method: `405` with this `Allow`.
    MethodNotAllowed {
        /// The `Allow` field's value.
        allow: &'static str,
    },
    /// Anything else: `404`, [`NOT_FOUND`] as `text/plain`.
    NotFound,
}

/// The answer `method` and `path` get.
pub fn route(method: &str, path: &str) -> Route {
    let is_get = matches!(method, "GET" | "HEAD");
    match (is_get, path) {
        (true, "/plaintext") => Route::Plaintext,
        (true, "/json") => Route::Json,
        (true, "/large") => Route::Large,
        (false, "/echo") if method == "POST" => Route::Echo,
        (_, "/echo") => Route::MethodNotAllowed { allow: "POST" },
        (_, "/plaintext" | "/json" | "/large") => Route::MethodNotAllowed { allow: "GET, HEAD" },
        _ => Route::NotFound,
    }
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// The `/json` body: `{"message":"Hello, World!"}`, serialized per request
/// (as TechEmpower's json test asks).
///
/// # Errors
///
/// As `serde_json::to_vec` (never, for this value).
pub fn json() -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Message {
        message: "Hello, World!",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_and_path_gets_its_route() {
        assert_eq!(route("GET", "/plaintext"), Route::Plaintext);
        assert_eq!(route("HEAD", "/json"), Route::Json);
        assert_eq!(route("GET", "/large"), Route::Large);
        assert_eq!(route("POST", "/echo"), Route::Echo);
        assert_eq!(
            route("GET", "/echo"),
            Route::MethodNotAllowed { allow: "POST" }
        );
        assert_eq!(
            route("PUT", "/echo"),
            Route::MethodNotAllowed { allow: "POST" }
        );
        let get_only = Route::MethodNotAllowed { allow: "GET, HEAD" };
        assert_eq!(route("POST", "/plaintext"), get_only);
        assert_eq!(route("DELETE", "/large"), get_only);
        assert_eq!(route("GET", "/nope"), Route::NotFound);
        assert_eq!(json().unwrap(), br#"{"message":"Hello, World!"}"#);
    }
}

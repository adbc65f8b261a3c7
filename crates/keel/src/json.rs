//! JSON in and out, with serde (feature `json`, on by default).

use crate::{field, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

/// A request body that is not the JSON the handler expects.
#[derive(Debug)]
pub struct JsonError(serde_json::Error);

impl JsonError {
    /// The line and column where parsing stopped (1-based).
    pub fn position(&self) -> (usize, usize) {
        (self.0.line(), self.0.column())
    }

    /// Whether the body ended before the JSON did.
    pub fn is_eof(&self) -> bool {
        self.0.is_eof()
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid JSON body: {}", self.0)
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl<'a> Request<'a> {
    /// Parses the body as JSON into `T`. `T` may borrow from the body
    /// (`&'a str` fields): strings without escapes are not copied.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, StatusCode};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct NewLink<'a> {
    ///     url: &'a str,
    /// }
    ///
    /// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
    ///     match req.json::<NewLink>() {
    ///         Ok(link) => res.body(link.url.as_bytes()),
    ///         Err(e) => res.status(StatusCode::BAD_REQUEST).body(e.to_string().as_bytes()),
    ///     }
    /// });
    /// conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 22\r\n\r\n{\"url\":\"https://a.b/\"}");
    /// assert!(conn.recv().ends_with(b"\r\n\r\nhttps://a.b/"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`JsonError`] when the body is not valid JSON of that shape.
    pub fn json<T: Deserialize<'a>>(&self) -> Result<T, JsonError> {
        serde_json::from_slice(self.body).map_err(JsonError)
    }
}

impl Response<'_> {
    /// Sends `value` as a JSON body (`Content-Type: application/json`),
    /// serialised straight into the output buffer. A value that fails to
    /// serialise (a map with non-string keys...) gives a `500` instead.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// let mut conn = MemoryConn::new(|_req: &Request<'_>, res: &mut Response<'_>| {
    ///     res.json(&serde_json::json!({"message": "Hello, World!"}));
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    /// let reply = String::from_utf8(conn.recv()).unwrap();
    /// assert!(reply.contains("\r\nContent-Type: application/json\r\n"));
    /// assert!(reply.ends_with("\r\n\r\n{\"message\":\"Hello, World!\"}"));
    /// ```
    ///
    /// # Panics
    ///
    /// When the body has begun.
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.field(field!("Content-Type", "application/json"));
        if serde_json::to_writer(&mut *self, value).is_err() {
            self.status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
}

//! Header lines checked once, when they are made: [`field!`](crate::field)
//! builds a [`Field`] in a `const` block, so a bad name or value is a
//! compile error, and [`Response::field`] adds it with one copy, where
//! [`Response::header`] checks every byte of every call.

use super::headers::FIELD_VALUE_CLASS;
use super::{Response, Stage};
use crate::http1::parse::TOKEN_CLASS;

/// A whole header line, `Name: value` and its CRLF, checked when it was
/// made. Make one with [`field!`](crate::field); add it with
/// [`Response::field`].
///
/// ```
/// use keel::{field, Field, Request, Response};
///
/// const NO_STORE: Field = field!("Cache-Control", "no-store");
///
/// fn page(_req: &Request<'_>, res: &mut Response<'_>) {
///     res.field(field!("Content-Type", "text/html; charset=utf-8"))
///         .field(NO_STORE)
///         .body(b"<p>hello</p>");
/// }
/// # let mut conn = keel::testing::MemoryConn::new(page);
/// # conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
/// # let reply = String::from_utf8(conn.recv()).unwrap();
/// # assert!(reply.contains("\r\nCache-Control: no-store\r\n"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    line: &'static str,
    name_len: usize,
    is_date: bool,
    is_server: bool,
}

/// Builds a [`Field`] from a name and a value, both string literals,
/// checked at compile time: the name must be a token (RFC 9110 §5.6.2),
/// the value free of control bytes other than HTAB (§5.5), and the name
/// none of `Content-Length`, `Transfer-Encoding` and `Connection`, whose
/// lines the server writes (for `Connection: close`, call
/// [`Response::header`]). `Date` and `Server` replace the server's own, as
/// with [`Response::header`].
///
/// ```compile_fail
/// // A CR would split the response: refused when compiling.
/// const SPLIT: keel::Field = keel::field!("X-Note", "a\r\nSet-Cookie: x=1");
/// ```
///
/// ```compile_fail
/// // Framing is the server's.
/// const LENGTH: keel::Field = keel::field!("Content-Length", "5");
/// ```
#[macro_export]
macro_rules! field {
    ($name:expr, $value:expr $(,)?) => {
        const { $crate::Field::__new($name, concat!($name, ": ", $value, "\r\n")) }
    };
}

impl Field {
    /// Checks `line`, which is `name: value\r\n` as [`field!`](crate::field)
    /// makes it. Called in a `const` block, a failed check stops the build
    /// with the panic's message.
    #[doc(hidden)]
    pub const fn __new(name: &'static str, line: &'static str) -> Field {
        let bytes = line.as_bytes();
        let name_len = name.len();
        if name_len == 0 {
            panic!("keel::field!: the name is empty");
        }
        let mut i = 0;
        while i < name_len {
            if !TOKEN_CLASS[bytes[i] as usize] {
                panic!("keel::field!: the name must be a token (RFC 9110 §5.6.2)");
            }
            i += 1;
        }
        // `concat!` put ": " after the name and "\r\n" after the value.
        let mut at = name_len + 2;
        while at < bytes.len() - 2 {
            if !FIELD_VALUE_CLASS[bytes[at] as usize] {
                panic!("keel::field!: the value holds a control byte (RFC 9110 §5.5)");
            }
            at += 1;
        }
        let name = name.as_bytes();
        if name_is(name, b"content-length")
            || name_is(name, b"transfer-encoding")
            || name_is(name, b"connection")
        {
            panic!(
                "keel::field!: Content-Length, Transfer-Encoding and Connection are the server's"
            );
        }
        Field {
            line,
            name_len,
            is_date: name_is(name, b"date"),
            is_server: name_is(name, b"server"),
        }
    }

    /// The field's name, as written.
    pub fn name(&self) -> &'static str {
        &self.line[..self.name_len]
    }

    /// The field's value, as written.
    pub fn value(&self) -> &'static str {
        &self.line[self.name_len + 2..self.line.len() - 2]
    }
}

/// Whether `name` is `lower`, ignoring ASCII case (a `const` form of
/// `is_name`).
const fn name_is(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        if name[i].to_ascii_lowercase() != lower[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl Response<'_> {
    /// Adds a header line checked when it was made (see [`field!`](crate::field)):
    /// one copy, no check of its bytes.
    ///
    /// # Panics
    ///
    /// When the body has begun.
    pub fn field(&mut self, field: Field) -> &mut Self {
        assert!(
            self.stage == Stage::Headers,
            "header {:?} added after the body began",
            field.name()
        );
        self.open_head();
        self.out.extend_from_slice(field.line.as_bytes());
        self.has_date |= field.is_date;
        self.has_server |= field.is_server;
        self
    }
}

//! Holding a response's head until the response finishes, so that a
//! layer's `after` may rewrite a buffered body and the header lines around
//! it (compression does).
//!
//! A held response's bytes sit in the output buffer as any buffered body
//! does, `[user header lines][CRLF][body]`; the status line and the server's
//! headers are put in front when the connection finishes the response, as
//! for a body written with [`Response::write`].

use super::headers::{is_field_value, is_framing_field};
use super::{InvalidHeader, Response, Stage};
use crate::http1::parse::{all_token, is_name};
use crate::StatusCode;

impl<'a> Response<'a> {
    /// Holds the head of this response until it finishes, so that a layer's
    /// [`after`](crate::middleware::Middleware::after) may rewrite the body
    /// and its header lines through [`Response::held`]. A layer calls it in
    /// `before`.
    ///
    /// A held [`body`](Response::body) or [`body_bytes`](Response::body_bytes)
    /// is buffered instead of being written behind its head at once
    /// (`body_bytes` is then copied, never sent from its own buffer), and
    /// `Content-Length` is computed when the response finishes. Nothing
    /// else changes: a [streamed](Response::stream), [chunked](Response::chunked)
    /// or [deferred](Response::defer) response, or a `101`, writes its head
    /// as usual and [`held`](Response::held) then returns `None`.
    ///
    /// Costs nothing but the copy of a large `body_bytes`; a response that
    /// is not held pays one branch.
    pub fn hold(&mut self) -> &mut Self {
        self.held = true;
        self
    }

    /// The held response, when it is [held](Response::hold) and its body
    /// buffered (given by `body`, `body_bytes` or `write`, or empty but for
    /// its header lines); `None` for a response that is not held, or whose
    /// head is written already (streamed, chunked, deferred, complete).
    pub fn held(&mut self) -> Option<Held<'_, 'a>> {
        if !self.held {
            return None;
        }
        let body_start = match self.stage {
            Stage::Headers => {
                // No body given (yet): an empty one, as `finish` would send.
                self.open_head();
                self.out.extend_from_slice(b"\r\n");
                let body_start = self.out.len();
                self.stage = Stage::Buffered { body_start };
                body_start
            }
            Stage::Buffered { body_start } | Stage::Held { body_start } => body_start,
            Stage::Streaming | Stage::Done | Stage::Deferred { .. } => return None,
        };
        Some(Held {
            res: self,
            body_start,
        })
    }

    /// Ends a held body: later writes panic as after `body`.
    pub(super) fn seal_held(&mut self) {
        if let Stage::Buffered { body_start } = self.stage {
            self.stage = Stage::Held { body_start };
        }
    }
}

/// A [held](Response::hold) response whose body is buffered: its status,
/// header lines and body, which a layer may read and rewrite before the
/// response goes out. Made by [`Response::held`].
///
/// Header names compare ASCII case-insensitively. The framing fields
/// (`Content-Length`, `Transfer-Encoding`) and `Connection` stay the
/// server's: they are never among the lines, and adding one is refused.
///
/// # Examples
///
/// A layer that upper-cases plain-text bodies:
///
/// ```
/// use keel::middleware::{Flow, HandlerExt, Middleware};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
///
/// struct Shout;
///
/// impl Middleware for Shout {
///     fn before(&self, _: &Request<'_>, res: &mut Response<'_>) -> Flow {
///         res.hold();
///         Flow::Continue
///     }
///     fn after(&self, _: &Request<'_>, res: &mut Response<'_>) {
///         let Some(mut held) = res.held() else { return };
///         if held.header("content-type") == Some(&b"text/plain"[..]) {
///             let loud = held.body().to_ascii_uppercase();
///             held.set_body(&loud);
///             held.add_header("X-Shout", "yes").unwrap();
///         }
///     }
/// }
///
/// let app = (|_: &Request<'_>, res: &mut Response<'_>| {
///     res.header("Content-Type", "text/plain").body(b"hello");
/// })
/// .with(Shout);
/// let mut conn = MemoryConn::new(app);
/// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.contains("\r\nContent-Length: 5\r\n"));
/// assert!(reply.contains("\r\nX-Shout: yes\r\n"));
/// assert!(reply.ends_with("\r\n\r\nHELLO"));
/// ```
pub struct Held<'r, 'a> {
    res: &'r mut Response<'a>,
    body_start: usize,
}

impl Held<'_, '_> {
    /// The response's status.
    pub fn status(&self) -> StatusCode {
        self.res.status
    }

    /// Whether this answers a `HEAD` request (its body is buffered all the
    /// same, and dropped when the response finishes).
    pub fn is_head(&self) -> bool {
        self.res.is_head
    }

    /// The body as given so far.
    pub fn body(&self) -> &[u8] {
        &self.res.out[self.body_start..]
    }

    /// Replaces the body; `Content-Length` follows it.
    pub fn set_body(&mut self, body: &[u8]) {
        self.res.out.truncate(self.body_start);
        self.res.out.extend_from_slice(body);
        self.res.body_len = body.len();
    }

    /// The value of the first header line named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.lines().find_map(|line| value_of(line, name))
    }

    /// The values of every header line named `name`, in order.
    pub fn headers<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h [u8]> + 'h {
        self.lines().filter_map(move |line| value_of(line, name))
    }

    /// Adds a header line, checked as [`Response::try_header`] checks it.
    /// Moves the body by the line's length.
    ///
    /// # Errors
    ///
    /// [`InvalidHeader`] for a name that is not a token, a value with a
    /// control character, or a field that is the server's
    /// (`Content-Length`, `Transfer-Encoding`, `Connection`); nothing is
    /// written.
    pub fn add_header(&mut self, name: &str, value: impl AsRef<[u8]>) -> Result<(), InvalidHeader> {
        let value = value.as_ref();
        let n = name.as_bytes();
        if n.is_empty()
            || !all_token(n)
            || !is_field_value(value)
            || is_framing_field(n)
            || is_name(n, b"connection")
        {
            return Err(InvalidHeader);
        }
        self.res.note_date_or_server(n);
        let out = &mut *self.res.out;
        let line_len = n.len() + 2 + value.len() + 2;
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
        // In front of the CRLF that ends the header section.
        out[self.body_start - 2..].rotate_right(line_len);
        self.moved_body(self.body_start + line_len);
        Ok(())
    }

    /// Removes every header line named `name`; returns how many there were.
    /// Moves the body by the bytes removed.
    pub fn remove_header(&mut self, name: &str) -> usize {
        let mut removed = 0;
        let mut at = self.res.headers_start();
        while at < self.body_start - 2 {
            let line_len = line_at(&self.res.out[at..self.body_start]).len() + 2;
            if value_of(&self.res.out[at..at + line_len - 2], name).is_some() {
                let out = &mut *self.res.out;
                out.copy_within(at + line_len.., at);
                out.truncate(out.len() - line_len);
                self.moved_body(self.body_start - line_len);
                removed += 1;
            } else {
                at += line_len;
            }
        }
        if name.eq_ignore_ascii_case("date") && removed > 0 {
            self.res.has_date = false;
        }
        if name.eq_ignore_ascii_case("server") && removed > 0 {
            self.res.has_server = false;
        }
        removed
    }

    /// For a `HEAD` answer: sends no `Content-Length`, for a layer that
    /// changes the body of the `GET` answer without computing it for the
    /// `HEAD` (RFC 9110 §8.6 lets a `HEAD` answer leave it out, and forbids
    /// a wrong one). Does nothing for any other request.
    pub fn omit_length(&mut self) {
        self.res.omit_length = true;
    }

    /// The header lines, each without its CRLF.
    fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.res.out[self.res.headers_start()..self.body_start - 2];
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let line = line_at(rest);
            rest = &rest[line.len() + 2..];
            Some(line)
        })
    }

    /// The body now starts at `body_start`.
    fn moved_body(&mut self, body_start: usize) {
        self.body_start = body_start;
        self.res.stage = match self.res.stage {
            Stage::Held { .. } => Stage::Held { body_start },
            _ => Stage::Buffered { body_start },
        };
    }
}

/// The first line of `lines` (which end in CRLF; values hold no CR or LF:
/// [`Response::try_header`] refuses them), without its CRLF.
fn line_at(lines: &[u8]) -> &[u8] {
    let end = lines
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(lines.len());
    &lines[..end]
}

/// The value of `line` (`Name: value`) if its name is `name`.
fn value_of<'l>(line: &'l [u8], name: &str) -> Option<&'l [u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    line[..colon]
        .eq_ignore_ascii_case(name.as_bytes())
        .then(|| line[colon + 1..].trim_ascii_start())
}

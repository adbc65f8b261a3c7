//! Header lines a handler adds: checked (a name must be a token, a value
//! free of CR, LF and NUL, so no header can split the response) and
//! written in place, plus the redirect helper built on them.

use super::{Response, Stage};
use crate::http1::parse::{all_in, all_token, is_name, list_elements, zero_bytes, HIGH, ONES};
use crate::StatusCode;
use bytes::BytesMut;
use std::fmt;

/// A header name or value the response writer refuses: a name that is not a
/// token, or a value holding a control character other than HTAB (CR and LF
/// would let it split the response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidHeader;

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("header name must be a token, and its value free of CR, LF and NUL")
    }
}

impl std::error::Error for InvalidHeader {}

/// The bytes a response field value may hold (RFC 9110 §5.5): visible
/// characters, SP, HTAB and obs-text; no other control byte. A table, as
/// for tokens: one load a byte. This is the form `const` code reads
/// ([`super::Field`]); [`FIELD_VALUE`] is its one copy in memory.
pub(super) const FIELD_VALUE_CLASS: [bool; 256] = {
    let mut table = [true; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b == b'\t' as usize;
        b += 1;
    }
    table[0x7f] = false;
    table
};

/// [`FIELD_VALUE_CLASS`] for the writer's checks.
pub(super) static FIELD_VALUE: [bool; 256] = FIELD_VALUE_CLASS;

/// Whether every byte of `value` is in [`FIELD_VALUE`]. Eight bytes at a
/// time: a word with no byte below SP and none equal to DEL (nearly every
/// word of a real value) passes with a few operations on a `u64`; a word
/// holding one (an HTAB, or a byte to refuse) goes through the table. The
/// last word ends at the value's end and may overlap the one before it;
/// a value shorter than a word goes through the table.
///
/// The word test is exact, with no false pass: subtracting 0x20 from each
/// byte borrows only out of a byte below 0x20, so without one no byte's
/// high bit is set that was clear; with one, the lowest such byte's is
/// (the "has less than" test, and for DEL [`zero_bytes`] on `x ^ DEL`).
#[inline]
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    let Some(last) = value.len().checked_sub(8) else {
        return all_in(&FIELD_VALUE, value);
    };
    let word_ok = |at: usize| {
        let word: [u8; 8] = value[at..at + 8].try_into().expect("8 bytes");
        let x = u64::from_ne_bytes(word);
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let has_del = zero_bytes(x ^ (ONES * 0x7f));
        below_space | has_del == 0 || all_in(&FIELD_VALUE, &word)
    };
    let mut ok = word_ok(last);
    let mut at = 0;
    while at < last {
        ok &= word_ok(at);
        at += 8;
    }
    ok
}

/// Whether `name` (a token) is a framing field, which only the server
/// writes. `is_name` compares a token as `eq_ignore_ascii_case` would.
pub(super) fn is_framing_field(name: &[u8]) -> bool {
    is_name(name, b"content-length") || is_name(name, b"transfer-encoding")
}

impl Response<'_> {
    /// Adds a header line.
    ///
    /// `Content-Length` and `Transfer-Encoding` are ignored: framing is the
    /// server's job. `Connection: close` closes the connection after this
    /// response. `Date` and `Server` replace the server's own.
    ///
    /// # Panics
    ///
    /// When the body has begun, or the name or value is invalid (see
    /// [`Response::try_header`] for the non-panicking form).
    pub fn header(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        if let Err(e) = self.try_header(name, value) {
            panic!("{e}: {name:?}");
        }
        self
    }

    /// Adds a header line, or refuses a name that is not a token or a value
    /// holding a control character other than HTAB (CR or LF would let a
    /// value split the response).
    ///
    /// # Errors
    ///
    /// [`InvalidHeader`], and nothing is written.
    ///
    /// # Panics
    ///
    /// When the body has begun.
    pub fn try_header(
        &mut self,
        name: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Self, InvalidHeader> {
        let value = value.as_ref();
        self.header_line(name, |out| out.extend_from_slice(value))
    }

    /// Adds a header line whose value is formatted straight into the output
    /// buffer (no intermediate `String`), with the same checks as
    /// [`Response::try_header`].
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// let mut conn = MemoryConn::new(|_req: &Request<'_>, res: &mut Response<'_>| {
    ///     let max_age = 3600;
    ///     res.header_fmt("Cache-Control", format_args!("public, max-age={max_age}")).unwrap();
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    /// let reply = String::from_utf8(conn.recv()).unwrap();
    /// assert!(reply.contains("\r\nCache-Control: public, max-age=3600\r\n"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidHeader`], and nothing is written.
    ///
    /// # Panics
    ///
    /// When the body has begun.
    pub fn header_fmt(
        &mut self,
        name: &str,
        value: fmt::Arguments<'_>,
    ) -> Result<&mut Self, InvalidHeader> {
        self.header_line(name, |out| {
            // Writing into a BytesMut cannot fail.
            let _ = fmt::Write::write_fmt(out, value);
        })
    }

    /// Writes `name: <value>` with the value written by `write_value`, then
    /// checks it; takes it back out if invalid or if the server owns the field.
    fn header_line(
        &mut self,
        name: &str,
        write_value: impl FnOnce(&mut BytesMut),
    ) -> Result<&mut Self, InvalidHeader> {
        assert!(
            self.stage == Stage::Headers,
            "header {name:?} added after the body began"
        );
        if name.is_empty() || !all_token(name.as_bytes()) {
            return Err(InvalidHeader);
        }
        self.open_head();
        let line_start = self.out.len();
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        let value_start = self.out.len();
        write_value(self.out);
        let value = &self.out[value_start..];
        // field-value: visible bytes, SP, HTAB and obs-text; no other control (RFC 9110 §5.5).
        if !is_field_value(value) {
            self.out.truncate(line_start);
            return Err(InvalidHeader);
        }
        let n = name.as_bytes();
        if is_name(n, b"connection") {
            if list_elements(value).any(|o| o.eq_ignore_ascii_case(b"close")) {
                self.keep_alive = false;
            }
            self.out.truncate(line_start);
        } else if is_framing_field(n) {
            self.out.truncate(line_start);
        } else {
            self.note_date_or_server(n);
            self.out.extend_from_slice(b"\r\n");
        }
        Ok(self)
    }

    /// A header line named `name` (a token) was added: if it is `Date` or
    /// `Server`, the server does not write its own.
    pub(super) fn note_date_or_server(&mut self, name: &[u8]) {
        self.has_date |= is_name(name, b"date");
        self.has_server |= is_name(name, b"server");
    }

    /// Completes the response as a redirect: `status` (301, 302, 303, 307 or
    /// 308) with `Location: location` and an empty body.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, StatusCode};
    ///
    /// let mut conn = MemoryConn::new(|_req: &Request<'_>, res: &mut Response<'_>| {
    ///     res.redirect(StatusCode::FOUND, "https://example.org/").unwrap();
    /// });
    /// conn.send(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    /// let reply = String::from_utf8(conn.recv()).unwrap();
    /// assert!(reply.starts_with("HTTP/1.1 302 Found\r\n"));
    /// assert!(reply.contains("\r\nLocation: https://example.org/\r\n"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidHeader`] when `location` holds a control character (which
    /// could split the response), and nothing is written.
    ///
    /// # Panics
    ///
    /// When `status` is not one of the five redirect codes, or the body has begun.
    pub fn redirect(&mut self, status: StatusCode, location: &str) -> Result<(), InvalidHeader> {
        assert!(
            matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308),
            "{status:?} is not a redirect status"
        );
        self.try_header("Location", location)?;
        self.status(status).body(b"");
        Ok(())
    }
}

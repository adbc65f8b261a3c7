//! Server-Sent Events framing: the bytes of a `text/event-stream` body
//! (WHATWG HTML, "Server-sent events", §9.2.5 and §9.2.6).
//!
//! Pure framing, no I/O: an [`Event`] or a [`comment`] is appended to a
//! [`BytesMut`], which a streamed response then sends. Neither allocates
//! when the buffer has room for the bytes ([`Event::encoded_len`] says how
//! many); otherwise the buffer grows once.
//!
//! ```
//! use keel::sse::{self, Event};
//! use keel::BytesMut;
//! use std::time::Duration;
//!
//! let mut out = BytesMut::with_capacity(128);
//! Event::data("{\"clicks\":2}")
//!     .event("clicks")
//!     .id("41")
//!     .retry(Duration::from_secs(3))
//!     .write_to(&mut out)?;
//! sse::comment("keep-alive", &mut out);
//! assert_eq!(
//!     &out[..],
//!     b"event: clicks\nid: 41\nretry: 3000\ndata: {\"clicks\":2}\n\n: keep-alive\n\n"
//! );
//! # Ok::<(), keel::sse::InvalidEvent>(())
//! ```
//!
//! The reading side of a reconnect is [`Request::last_event_id`](crate::Request::last_event_id).

mod stream;

pub use stream::{EventError, EventStream};

use bytes::{BufMut, BytesMut};
use std::time::Duration;

/// The media type of an event stream, for the response's `Content-Type`.
pub const CONTENT_TYPE: &str = "text/event-stream";

/// Why an [`Event`] cannot be written: a field whose value would end the
/// line early and let the rest be read as other fields (an injected `data:`
/// or `id:`), or an id the client would ignore.
///
/// `data` is never refused: each of its lines becomes a `data:` line, which
/// the client joins back with `\n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidEvent {
    /// The event name holds a CR or an LF.
    LineBreakInEventName,
    /// The id holds a CR or an LF.
    LineBreakInId,
    /// The id holds a NUL, which makes the client ignore the field (§9.2.6).
    NulInId,
}

impl std::fmt::Display for InvalidEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InvalidEvent::LineBreakInEventName => "SSE event name contains CR or LF",
            InvalidEvent::LineBreakInId => "SSE event id contains CR or LF",
            InvalidEvent::NulInId => "SSE event id contains NUL",
        })
    }
}

impl std::error::Error for InvalidEvent {}

/// One event: its data and the optional `event`, `id` and `retry` fields.
/// A builder over borrowed text: building it copies and allocates nothing.
///
/// ```
/// use keel::sse::Event;
/// use keel::BytesMut;
///
/// let mut out = BytesMut::new();
/// Event::data("line one\nline two").write_to(&mut out)?;
/// assert_eq!(&out[..], b"data: line one\ndata: line two\n\n");
/// # Ok::<(), keel::sse::InvalidEvent>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    data: &'a str,
    event: Option<&'a str>,
    id: Option<&'a str>,
    retry: Option<Duration>,
}

impl<'a> Event<'a> {
    /// An event carrying `data`. Several lines (split at CRLF, CR or LF)
    /// become several `data:` lines; the client joins them with LF, so a
    /// CRLF or a lone CR arrives as LF.
    pub fn data(data: &'a str) -> Event<'a> {
        Event {
            data,
            event: None,
            id: None,
            retry: None,
        }
    }

    /// The event's type (`event:`), the name a client listens for; without
    /// one the client dispatches a `message`. Must not hold CR or LF
    /// ([`InvalidEvent::LineBreakInEventName`] when written).
    pub fn event(self, name: &'a str) -> Event<'a> {
        Event {
            event: Some(name),
            ..self
        }
    }

    /// The event's id (`id:`): the client sends it back in `Last-Event-ID`
    /// when it reconnects. Must not hold CR, LF or NUL
    /// ([`InvalidEvent::LineBreakInId`], [`InvalidEvent::NulInId`]). An
    /// empty id resets the client's last event id.
    pub fn id(self, id: &'a str) -> Event<'a> {
        Event {
            id: Some(id),
            ..self
        }
    }

    /// How long the client waits before reconnecting (`retry:`), sent in
    /// whole milliseconds (rounded down).
    pub fn retry(self, after: Duration) -> Event<'a> {
        Event {
            retry: Some(after),
            ..self
        }
    }

    /// Checks the fields that could break the framing; see [`InvalidEvent`].
    ///
    /// # Errors
    ///
    /// The first field that cannot be written.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        let has = |text: &str, bytes: &[u8]| text.bytes().any(|b| bytes.contains(&b));
        if self.event.is_some_and(|name| has(name, b"\r\n")) {
            return Err(InvalidEvent::LineBreakInEventName);
        }
        if let Some(id) = self.id {
            if has(id, b"\r\n") {
                return Err(InvalidEvent::LineBreakInId);
            }
            if has(id, b"\0") {
                return Err(InvalidEvent::NulInId);
            }
        }
        Ok(())
    }

    /// The number of bytes [`Event::write_to`] appends.
    pub fn encoded_len(&self) -> usize {
        let mut len = 1; // the blank line that dispatches the event
        if let Some(name) = self.event {
            len += field_len(b"event", name);
        }
        if let Some(id) = self.id {
            len += field_len(b"id", id);
        }
        if let Some(retry) = self.retry {
            let mut digits = itoa::Buffer::new();
            len += field_len(b"retry", digits.format(retry.as_millis()));
        }
        for_each_line(self.data, |line| len += field_len(b"data", line));
        len
    }

    /// Appends the event's bytes to `out`: `event`, `id`, `retry`, one
    /// `data` line per line of data, then the blank line that dispatches
    /// it. Allocates nothing when `out` has room for
    /// [`Event::encoded_len`] more bytes.
    ///
    /// # Errors
    ///
    /// [`InvalidEvent`] for a field that would break the framing; nothing
    /// is written then.
    pub fn write_to(&self, out: &mut BytesMut) -> Result<(), InvalidEvent> {
        self.validate()?;
        out.reserve(self.encoded_len());
        if let Some(name) = self.event {
            put_field(out, b"event", name.as_bytes());
        }
        if let Some(id) = self.id {
            put_field(out, b"id", id.as_bytes());
        }
        if let Some(retry) = self.retry {
            let mut digits = itoa::Buffer::new();
            put_field(out, b"retry", digits.format(retry.as_millis()).as_bytes());
        }
        for_each_line(self.data, |line| put_field(out, b"data", line.as_bytes()));
        out.put_u8(b'\n');
        Ok(())
    }
}

/// Appends a comment to `out`: `: text` and a blank line, or `:` and a
/// blank line for an empty `text`. Clients ignore it; it keeps the
/// connection (and proxies) from timing out, and a failed write tells the
/// server that the client left. A `text` of several lines becomes several
/// comment lines, so it can never start a field. Allocates nothing when
/// `out` has room.
///
/// ```
/// use keel::BytesMut;
///
/// let mut out = BytesMut::new();
/// keel::sse::comment("", &mut out);
/// keel::sse::comment("ping", &mut out);
/// assert_eq!(&out[..], b":\n\n: ping\n\n");
/// ```
pub fn comment(text: &str, out: &mut BytesMut) {
    let mut len = 1;
    for_each_line(text, |line| len += field_len(b"", line));
    out.reserve(len);
    for_each_line(text, |line| put_field(out, b"", line.as_bytes()));
    out.put_u8(b'\n');
}

/// The bytes of `name: value\n` (`name:\n` for an empty value).
fn field_len(name: &[u8], value: &str) -> usize {
    let space = usize::from(!value.is_empty());
    name.len() + 1 + space + value.len() + 1
}

/// Writes `name: value\n`, or `name:\n` when `value` is empty. The space
/// is always there before a value, because the client strips one leading
/// space: a value that starts with a space keeps it.
fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_u8(b':');
    if !value.is_empty() {
        out.put_u8(b' ');
        out.put_slice(value);
    }
    out.put_u8(b'\n');
}

/// Calls `f` with each line of `text`, split at CRLF, CR or LF as the
/// client splits them; a trailing line break gives a last, empty line (so
/// that `"a\n"` arrives as `"a\n"`).
fn for_each_line(text: &str, mut f: impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let (mut start, mut at) = (0, 0);
    while at < bytes.len() {
        match bytes[at] {
            b'\n' => {
                f(&text[start..at]);
                at += 1;
                start = at;
            }
            b'\r' => {
                f(&text[start..at]);
                at += 1;
                if bytes.get(at) == Some(&b'\n') {
                    at += 1;
                }
                start = at;
            }
            _ => at += 1,
        }
    }
    f(&text[start..]);
}

#[cfg(test)]
mod tests;

//! The head of a response: the status line, written before the first
//! header line or body byte (and rewritten in place if the status changes
//! later), and the server's own fields after the user's lines (see the
//! layout in the parent module).

use super::{server_fields, Framing, Response, Stage};
use crate::server::date;
use crate::StatusCode;
use bytes::{BufMut, BytesMut};

impl Response<'_> {
    /// Where the user's header lines begin: after the status line.
    pub(super) fn headers_start(&self) -> usize {
        self.start + self.status_line_len
    }

    /// Writes the status line, if it is not there yet: before the first
    /// header line or body byte.
    pub(super) fn open_head(&mut self) {
        if self.status_line_len == 0 {
            self.status_line_len = write_status_line(self.out, self.status);
        }
    }

    /// Replaces the status line (already written) by `status`'s, moving
    /// what follows by the difference in length.
    pub(super) fn rewrite_status_line(&mut self, status: StatusCode) {
        let old = self.status_line_len;
        let new = write_status_line(self.out, status);
        // [old line][rest][new line] -> [new line][old line][rest] -> [new line][rest]
        self.out[self.start..].rotate_right(new);
        self.out
            .copy_within(self.start + new + old.., self.start + new);
        self.out.truncate(self.out.len() - old);
        self.status_line_len = new;
        // The status changes only while headers or a buffered body are
        // being written (`status` and `upgrade` check the stage).
        if let Stage::Buffered { body_start } = &mut self.stage {
            *body_start = *body_start + new - old;
        }
    }

    /// Ends the head: the status line if not yet written, the server's
    /// fields after the user's lines, and the CRLF that ends the section.
    pub(super) fn write_head(&mut self, framing: Framing) {
        self.open_head();
        self.push_server_fields(framing);
        self.out.extend_from_slice(b"\r\n");
    }

    /// Puts the server's fields in front of `section_end`, the CRLF that
    /// ends the header section, and the body after it.
    pub(super) fn insert_server_fields(&mut self, framing: Framing, section_end: usize) {
        let fields_len = self.push_server_fields(framing);
        self.out[section_end..].rotate_right(fields_len);
    }

    /// Appends the server's fields (`Date`, `Server`, framing,
    /// `Connection`); returns their length.
    fn push_server_fields(&mut self, framing: Framing) -> usize {
        let mark = self.out.len();
        let out = &mut *self.out;
        let from_memo = match framing {
            // Most answers: the three lines in one copy.
            Framing::Length(len) if !(self.has_date || self.has_server) => {
                !self.status.forbids_body() && self.server.push_with_length(out, len)
            }
            _ => false,
        };
        if !from_memo {
            if !self.has_date {
                out.extend_from_slice(&date::current_line());
            }
            if !self.has_server {
                out.extend_from_slice(self.server.line);
            }
            match framing {
                _ if self.status.framing_implies_no_body() => {}
                // A 205 carries no content, and says so (RFC 9110 §15.3.6).
                Framing::Length(_) | Framing::Chunked | Framing::UntilClose
                    if self.status.forbids_body() =>
                {
                    out.extend_from_slice(b"Content-Length: 0\r\n");
                }
                Framing::Length(len) => server_fields::push_length_line(out, len),
                Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
                Framing::UntilClose => {}
            }
        }
        if !self.keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if self.http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.len() - mark
    }
}

/// Appends `status`'s line (`HTTP/1.1 200 OK\r\n`); returns its length.
/// Inlined: most answers are a `200`, a copy of constant length.
#[inline(always)]
fn write_status_line(out: &mut BytesMut, status: StatusCode) -> usize {
    const OK_LINE: &[u8; 17] = b"HTTP/1.1 200 OK\r\n";
    if status == StatusCode::OK {
        out.extend_from_slice(OK_LINE);
        return OK_LINE.len();
    }
    write_other_status_line(out, status)
}

/// [`write_status_line`] for a status other than `200`.
#[inline(never)]
fn write_other_status_line(out: &mut BytesMut, status: StatusCode) -> usize {
    let mark = out.len();
    if let Some(line) = status.status_line() {
        out.extend_from_slice(line.as_bytes());
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(&status.digits());
        out.put_u8(b' ');
        out.extend_from_slice(status.reason().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.len() - mark
}

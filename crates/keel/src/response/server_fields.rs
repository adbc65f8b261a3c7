//! The server's own fields after a response's header lines, `Date`,
//! `Server` and `Content-Length`, written with one copy. A worker keeps the
//! block it wrote last and copies it again: `Date` and `Server` change at
//! most once a second, and a run of equal answers (a health check, a polled
//! status, a benchmark, every `304`) has one `Content-Length` too. Another
//! length rewrites only that line, at the block's end.

use crate::server::date;
use bytes::BytesMut;
use std::cell::RefCell;

/// The longest `Content-Length` line: 16 + 20 digits + CRLF.
const LENGTH_LINE_MAX: usize = 38;

/// Room for the block: `Date` (37 bytes), a `Server` line of up to 181
/// bytes and `Content-Length`. A longer `Server` line is written line by
/// line instead.
const FIELDS_MEMO_BYTES: usize = 256;

/// Where a response finds its server's `Server` line and, on a worker, the
/// memo of the block it wrote last.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServerFields<'a> {
    /// `Server: ...\r\n`, or empty.
    pub(super) line: &'a [u8],
    /// The worker's memo, which it lends one response at a time; `None` on
    /// other threads (a deferred answer's), which write line by line.
    memo: Option<&'a RefCell<FieldsMemo>>,
}

impl<'a> ServerFields<'a> {
    /// `line` (`Server: ...\r\n`, or empty) and `memo`, which serves only
    /// this `line`.
    pub(crate) fn new(line: &'a [u8], memo: &'a RefCell<FieldsMemo>) -> Self {
        ServerFields {
            line,
            memo: Some(memo),
        }
    }

    /// `line` with no memo.
    pub(crate) fn line_only(line: &'a [u8]) -> Self {
        ServerFields { line, memo: None }
    }

    /// Appends the `Date` line, the `Server` line and `Content-Length:
    /// length` from the memo; `false`, with nothing written, when there is
    /// no memo or the block does not fit it.
    #[inline]
    pub(super) fn push_with_length(self, out: &mut BytesMut, length: usize) -> bool {
        let Some(memo) = self.memo else {
            return false;
        };
        let mut memo = memo.borrow_mut();
        if memo.second != date::current_second() && !memo.fill(self.line) {
            return false;
        }
        if memo.length != length {
            memo.set_length(length);
        }
        out.extend_from_slice(&memo.bytes[..memo.used]);
        true
    }
}

/// The last block of server fields a worker wrote, and what it was for.
#[derive(Debug)]
pub(crate) struct FieldsMemo {
    /// The second its `Date` says; `u64::MAX` when it holds nothing.
    second: u64,
    /// The `Content-Length` it says.
    length: usize,
    /// Where the `Content-Length` line starts, after `Date` and `Server`.
    length_at: usize,
    /// Where the block ends.
    used: usize,
    bytes: [u8; FIELDS_MEMO_BYTES],
}

impl Default for FieldsMemo {
    fn default() -> Self {
        FieldsMemo {
            second: u64::MAX,
            length: 0,
            length_at: 0,
            used: 0,
            bytes: [0; FIELDS_MEMO_BYTES],
        }
    }
}

impl FieldsMemo {
    /// Formats the block again for the current `Date` and `server_line`,
    /// then for the length it held; `false`, holding nothing, when it does
    /// not fit.
    #[cold]
    fn fill(&mut self, server_line: &[u8]) -> bool {
        self.second = u64::MAX;
        let length_at = date::DATE_LINE_LEN + server_line.len();
        if length_at + LENGTH_LINE_MAX > FIELDS_MEMO_BYTES {
            return false;
        }
        let (second, date_line) = date::current();
        self.bytes[..date::DATE_LINE_LEN].copy_from_slice(&date_line);
        self.bytes[date::DATE_LINE_LEN..length_at].copy_from_slice(server_line);
        self.length_at = length_at;
        self.set_length(self.length);
        self.second = second;
        true
    }

    /// Rewrites the block's last line to say `length`. Out of line: inlined
    /// into the copy's path it cost that path 5 instructions a response.
    #[inline(never)]
    fn set_length(&mut self, length: usize) {
        let line_len = format_length_line(&mut self.bytes[self.length_at..], length);
        self.length = length;
        self.used = self.length_at + line_len;
    }
}

/// Appends `Content-Length: length\r\n`, for a response written line by
/// line.
pub(super) fn push_length_line(out: &mut BytesMut, length: usize) {
    let mut line = [0; LENGTH_LINE_MAX];
    let line_len = format_length_line(&mut line, length);
    out.extend_from_slice(&line[..line_len]);
}

/// Writes `Content-Length: length\r\n` at the start of `line`, which has
/// room for the longest ([`LENGTH_LINE_MAX`]); returns its length.
fn format_length_line(line: &mut [u8], length: usize) -> usize {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(length).as_bytes();
    let line = &mut line[..LENGTH_LINE_MAX];
    line[..16].copy_from_slice(b"Content-Length: ");
    line[16..16 + digits.len()].copy_from_slice(digits);
    line[16 + digits.len()..18 + digits.len()].copy_from_slice(b"\r\n");
    18 + digits.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What writing the three lines one by one gives.
    fn line_by_line(length: usize, server_line: &[u8]) -> Vec<u8> {
        let date_line = date::current_line();
        [
            &date_line[..],
            server_line,
            format!("Content-Length: {length}\r\n").as_bytes(),
        ]
        .concat()
    }

    #[test]
    fn the_block_is_what_the_lines_are_whatever_the_order_of_lengths() {
        for server_line in [&b""[..], b"Server: keel\r\n"] {
            let memo = RefCell::new(FieldsMemo::default());
            let fields = ServerFields::new(server_line, &memo);
            for length in [13, 13, 0, 13, 1 << 20, usize::MAX, usize::MAX, 7] {
                let second = date::current_second();
                let mut out = BytesMut::from(&b"x"[..]);
                assert!(fields.push_with_length(&mut out, length));
                let want = [&b"x"[..], &line_by_line(length, server_line)].concat();
                // Unless a second began while it ran.
                if date::current_second() == second {
                    assert_eq!(out, want);
                }
            }
        }
    }

    #[test]
    fn length_lines_hold_every_digit() {
        for len in [0, 1, 9, 10, 13, 99, 100, 4096, 1 << 20, usize::MAX] {
            let mut out = BytesMut::from(&b"x"[..]);
            push_length_line(&mut out, len);
            assert_eq!(out, format!("xContent-Length: {len}\r\n").as_bytes());
        }
    }

    #[test]
    fn a_new_second_formats_the_date_again() {
        let memo = RefCell::new(FieldsMemo::default());
        let fields = ServerFields::new(b"", &memo);
        let mut out = BytesMut::new();
        assert!(fields.push_with_length(&mut out, 5));
        // As if the block had been made a second before this one.
        let mut stale = memo.borrow_mut();
        stale.second -= 1;
        stale.bytes[6..9].copy_from_slice(b"Old");
        drop(stale);
        let mut out = BytesMut::new();
        assert!(fields.push_with_length(&mut out, 5));
        assert!(!out.windows(3).any(|w| w == b"Old"), "{out:?}");
    }

    #[test]
    fn a_block_that_does_not_fit_or_no_memo_writes_nothing() {
        let long = [&b"Server: "[..], &[b'k'; 172], b"\r\n"].concat();
        let longest = [&b"Server: "[..], &[b'k'; 171], b"\r\n"].concat();
        let memo = RefCell::new(FieldsMemo::default());
        let mut out = BytesMut::new();
        assert!(ServerFields::new(&longest, &memo).push_with_length(&mut out, usize::MAX));
        assert_eq!(out.len(), FIELDS_MEMO_BYTES);
        let memo = RefCell::new(FieldsMemo::default());
        let mut out = BytesMut::new();
        assert!(!ServerFields::new(&long, &memo).push_with_length(&mut out, 13));
        assert!(!ServerFields::line_only(b"").push_with_length(&mut out, 13));
        assert!(out.is_empty());
    }
}

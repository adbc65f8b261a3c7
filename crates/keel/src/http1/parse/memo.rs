//! A pipelined batch often repeats one head byte for byte (a client's
//! polling loop, a health checker, a load generator): a head equal to the
//! one just before it in the same read is not parsed again. Its parse is a
//! function of its bytes and the [`crate::Config`] alone, so the earlier
//! head's result, kept as offsets, is replayed onto the new bytes.
//!
//! The memo is the worker's, forgotten at the start of each pass over one
//! connection's read buffer (`Conn::process`): it costs no memory per
//! connection, and it compares only bytes of that connection's own stream,
//! so it tells one connection nothing about another's requests.
//!
//! What makes a replay right: the offsets describe the bytes at `at` in
//! the buffer, and within a pass nothing rewrites bytes before the request
//! being handled (a `HTTP/1.2` rewrite, a chunked body's squeeze, a stream's
//! feed all work at or after it; `compact` runs after the pass). The head
//! compared against is therefore the head that was parsed; a replay is
//! also checked against a fresh parse in tests and fuzzing
//! ([`check_replay`]).

use super::{BodyLength, Framing};
use crate::server::sys::AsciiText;
use crate::Config;

/// The most header lines a remembered head may have: a load generator sends
/// one to four, a browser a dozen or more (those are parsed each time).
const MEMO_HEADERS: usize = 8;

/// Where a piece of a head lies, from the head's first byte.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// `part`'s place in `head`, of which it is a subslice.
    fn of(part: &[u8], head: &[u8]) -> Option<Self> {
        let start = (part.as_ptr() as usize).checked_sub(head.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        (end <= head.len()).then_some(Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    #[inline(always)]
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The last head parsed in this pass, if it had no body and few enough
/// header lines to remember.
#[derive(Debug, Default)]
pub(crate) struct HeadMemo {
    /// Where the remembered head starts in the input buffer.
    at: usize,
    /// Its framing; `None` when nothing is remembered.
    framing: Option<Framing>,
    method: Span,
    target: Span,
    count: usize,
    /// Name and value of each header line.
    headers: [(Span, Span); MEMO_HEADERS],
}

/// Header slots a replayed head is written into.
pub(crate) type MemoSlots<'b> = [httparse::Header<'b>; MEMO_HEADERS];

/// Empty slots for [`HeadMemo::replay`].
pub(crate) fn memo_slots<'b>() -> MemoSlots<'b> {
    [httparse::EMPTY_HEADER; MEMO_HEADERS]
}

impl HeadMemo {
    /// Forgets the remembered head.
    #[inline]
    pub(crate) fn forget(&mut self) {
        self.framing = None;
    }

    /// Remembers `req`, the head at `at` in `input` that `framing` describes,
    /// when it has no body, few enough header lines, and a request
    /// follows it in `input` already (otherwise no replay could use it).
    pub(crate) fn remember(
        &mut self,
        input: &[u8],
        at: usize,
        req: &httparse::Request<'_, '_>,
        framing: &Framing,
    ) {
        self.forget();
        let end = at + framing.head_len;
        if framing.body != BodyLength::Empty
            || req.headers.len() > MEMO_HEADERS
            || input.len() <= end
        {
            return;
        }
        let head = &input[at..end];
        let (Some(method), Some(target)) = (req.method, req.path) else {
            return;
        };
        let (Some(method), Some(target)) = (
            Span::of(method.as_bytes(), head),
            Span::of(target.as_bytes(), head),
        ) else {
            return;
        };
        for (slot, header) in self.headers.iter_mut().zip(req.headers.iter()) {
            let (Some(name), Some(value)) = (
                Span::of(header.name.as_bytes(), head),
                Span::of(header.value, head),
            ) else {
                return;
            };
            *slot = (name, value);
        }
        self.at = at;
        self.method = method;
        self.target = target;
        self.count = req.headers.len();
        self.framing = Some(*framing);
    }

    /// Whether the remembered head ends at `start`, where [`HeadMemo::replay`]
    /// may find it again.
    #[inline(always)]
    pub(crate) fn precedes(&self, start: usize) -> bool {
        self.framing.is_some_and(|f| self.at + f.head_len == start)
    }

    /// The parse of the head at `start` in `input`, when its bytes are those
    /// of the remembered head, which ends exactly at `start`; its fields
    /// are written into `slots`, and the memo moves on to it. `None` means:
    /// parse it. Inlined into its one caller, which then builds the result
    /// in place.
    #[inline(always)]
    pub(crate) fn replay<'h, 'b>(
        &mut self,
        input: &'b [u8],
        start: usize,
        slots: &'h mut MemoSlots<'b>,
    ) -> Option<(httparse::Request<'h, 'b>, Framing)> {
        let framing = self.framing?;
        let len = framing.head_len;
        if self.at + len != start {
            return None;
        }
        let head = input.get(start..start + len)?;
        if head != &input[self.at..start] {
            return None;
        }
        // httparse gave the method, target and names as `str`; equal bytes
        // are equal text, and an ASCII head (nearly every one) needs no UTF-8
        // decoding to show it.
        let text = AsciiText::new(head)?;
        for (slot, (name, value)) in slots.iter_mut().zip(&self.headers[..self.count]) {
            *slot = httparse::Header {
                name: text.get(name.range())?,
                value: head.get(value.range())?,
            };
        }
        let req = httparse::Request {
            method: Some(text.get(self.method.range())?),
            path: Some(text.get(self.target.range())?),
            version: Some(framing.minor),
            headers: &mut slots[..self.count],
        };
        self.at = start;
        Some((req, framing))
    }
}

/// In builds with debug assertions (the tests) and in the fuzzers (which
/// cargo-fuzz builds optimised, with `--cfg fuzzing`): panics unless
/// `replayed`, the replay of the head at the start of `buf`, is what
/// parsing it gives.
pub(crate) fn check_replay<'b>(
    buf: &'b [u8],
    config: &Config,
    replayed: &(httparse::Request<'_, 'b>, Framing),
) {
    if cfg!(any(debug_assertions, fuzzing)) {
        let mut slots = super::header_slots();
        match super::parse_head(buf, &mut slots, config) {
            Ok(Some((req, framing))) => {
                assert_eq!((&req, framing), (&replayed.0, replayed.1), "replay differs")
            }
            other => panic!("a replayed head parses as {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests;

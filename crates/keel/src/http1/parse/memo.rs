//! A pipelined batch often repeats one head byte for byte (a client's
//! polling loop, a health checker, a load generator): a head equal to one
//! already parsed in the same read is not parsed again. Its parse is a
//! function of its bytes and the [`crate::Config`] alone, so the earlier
//! head's result, kept as offsets, is replayed onto the new bytes.
//!
//! The memo keeps its own copy of the head it remembers, and compares each
//! later head with that copy: what a replay gives depends only on the
//! memo, not on what became of the earlier head's bytes in the read buffer
//! (a `HTTP/1.2` rewrite, a chunked body's squeeze, `compact`). The copy
//! is kept only when it is ASCII, so a head equal to it needs no UTF-8
//! decoding for its method, target and names to be text.
//!
//! The memo is the worker's, forgotten at the start of each pass over one
//! connection's read buffer (`Conn::process`): it costs no memory per
//! connection, and it compares only bytes of that connection's own stream,
//! so it tells one connection nothing about another's requests. A replay
//! is also checked against a fresh parse in tests and fuzzing
//! ([`check_replay`]).

use super::{BodyLength, Framing};
use crate::server::sys::AsciiCopy;
use crate::Config;

/// The most header lines a remembered head may have: a load generator sends
/// one to four, a browser a dozen or more (those are parsed each time).
const MEMO_HEADERS: usize = 8;

/// The longest head remembered, in bytes: wrk's is about 40, TechEmpower's
/// plaintext request about 170.
const MEMO_HEAD_BYTES: usize = 512;

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

/// The last head parsed in this pass, if it had no body, few enough header
/// lines and bytes to remember, and was ASCII.
#[derive(Debug, Default)]
pub(crate) struct HeadMemo {
    /// The remembered head's bytes.
    copy: AsciiCopy<MEMO_HEAD_BYTES>,
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
    /// when it has no body, few enough header lines and bytes, is ASCII,
    /// and a request follows it in `input` already (otherwise no replay
    /// could use it).
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
        if !self.copy.set(head) {
            return;
        }
        self.method = method;
        self.target = target;
        self.count = req.headers.len();
        self.framing = Some(*framing);
    }

    /// Whether a head is remembered, which [`HeadMemo::replay`] may find again.
    #[inline(always)]
    pub(crate) fn holds_head(&self) -> bool {
        self.framing.is_some()
    }

    /// The parse of the head at `start` in `input`, when its bytes are those
    /// of the remembered head; its fields are written into `slots`. `None`
    /// means: parse it. Inlined into its one caller, which then builds the
    /// result in place.
    #[inline(always)]
    pub(crate) fn replay<'h, 'b>(
        &self,
        input: &'b [u8],
        start: usize,
        slots: &'h mut MemoSlots<'b>,
    ) -> Option<(httparse::Request<'h, 'b>, Framing)> {
        let framing = self.framing?;
        let head = input.get(start..start + framing.head_len)?;
        // httparse gave the method, target and names as `str`; bytes equal
        // to the ASCII copy are that text again.
        let text = self.copy.matches(head)?;
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

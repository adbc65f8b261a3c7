//! Request heads: httparse on the buffered bytes, then message framing per
//! RFC 9112 §6 and the limits of [`Config`].

use crate::{Config, Leniency, ProtocolError};
use std::mem::MaybeUninit;

pub(crate) mod leniency;
mod memo;
mod strict;

pub(crate) use memo::{check_replay, memo_slots, HeadMemo};

pub(crate) use strict::serve_later_minor_as_1_1;

/// Uninitialised header slots on the caller's stack, as httparse wants them.
pub(crate) type HeaderSlots<'b> = [MaybeUninit<httparse::Header<'b>>; Config::HEADER_COUNT_CEILING];

/// Fresh, uninitialised header slots.
pub(crate) fn header_slots<'b>() -> HeaderSlots<'b> {
    [const { MaybeUninit::uninit() }; Config::HEADER_COUNT_CEILING]
}

/// How the body of a request is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyLength {
    /// No body (neither `Content-Length` nor `Transfer-Encoding`, or a zero length).
    Empty,
    /// Exactly this many bytes follow the head.
    Fixed(usize),
    /// A chunked body follows the head.
    Chunked,
}

/// What the connection needs to know about a parsed head, with no borrow of
/// the buffer, so it can be kept while the body arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Framing {
    /// Bytes of the head, final empty line included.
    pub(crate) head_len: usize,
    /// HTTP minor version: 0 or 1.
    pub(crate) minor: u8,
    /// Whether the client allows the connection to stay open after this exchange.
    pub(crate) keep_alive: bool,
    pub(crate) body: BodyLength,
    /// `Expect: 100-continue` was sent with a body.
    pub(crate) expect_continue: bool,
    /// The method is `HEAD`: the response carries no body.
    pub(crate) is_head: bool,
}

/// Parses one request head from the start of `buf`.
///
/// `Ok(None)` means more bytes are needed and no limit is passed yet.
pub(crate) fn parse_head<'h, 'b>(
    buf: &'b [u8],
    slots: &'h mut HeaderSlots<'b>,
    config: &Config,
) -> Result<Option<(httparse::Request<'h, 'b>, Framing)>, ProtocolError> {
    let max_headers = config.max_headers.min(Config::HEADER_COUNT_CEILING);
    // Only the first `max_header_bytes` can hold a head we accept, so that is
    // all the parser sees: whether a head is refused as too large, too long
    // a target or malformed then depends on the bytes alone, not on how the
    // network split them.
    let limited = &buf[..buf.len().min(config.max_header_bytes)];
    let mut req = httparse::Request::new(&mut []);
    let status = req.parse_with_uninit_headers(limited, &mut slots[..max_headers]);
    match status {
        Ok(httparse::Status::Partial) => {
            check_partial_limits(buf, config)?;
            Ok(None)
        }
        Ok(httparse::Status::Complete(head_len)) => {
            let framing = frame(&req, &limited[..head_len], config)?;
            Ok(Some((req, framing)))
        }
        Err(_) if target_so_far(limited) > config.max_target => Err(ProtocolError::TargetTooLong),
        Err(httparse::Error::TooManyHeaders) => Err(ProtocolError::TooManyHeaders),
        Err(httparse::Error::Version) => match version_error(limited) {
            Some(error) => Err(error),
            None if buf.len() > config.max_header_bytes => Err(ProtocolError::HeadersTooLarge),
            None => Ok(None),
        },
        Err(_) => Err(ProtocolError::Malformed),
    }
}

/// The limits an incomplete head already passes: a target longer than
/// `max_target` so far (414), or no complete head within `max_header_bytes` (431).
fn check_partial_limits(buf: &[u8], config: &Config) -> Result<(), ProtocolError> {
    let limited = &buf[..buf.len().min(config.max_header_bytes)];
    if target_so_far(limited) > config.max_target {
        return Err(ProtocolError::TargetTooLong);
    }
    if buf.len() > config.max_header_bytes {
        return Err(ProtocolError::HeadersTooLarge);
    }
    Ok(())
}

/// Length of the request target as far as it has arrived: the run of
/// visible bytes after a non-empty method and its space, past the empty
/// lines httparse skips (`\r\n` or `\n`); 0 when the bytes before it are
/// already malformed, so that they decide.
fn target_so_far(buf: &[u8]) -> usize {
    let line = skip_empty_lines(buf);
    let method = line.iter().take_while(|&&b| is_token_byte(b)).count();
    if method == 0 || line.get(method) != Some(&b' ') {
        return 0;
    }
    line[method + 1..]
        .iter()
        .take_while(|&&b| b > b' ' && b != 0x7f)
        .count()
}

/// `buf` past the empty lines a server skips before a request line
/// (RFC 9112 §2.2), as httparse does: `\r\n` or `\n`, nothing else.
fn skip_empty_lines(mut buf: &[u8]) -> &[u8] {
    while let [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] = buf {
        buf = rest;
    }
    buf
}

/// `HTTP/2.0` is a version we do not speak (505; `HTTP/1.2` to `HTTP/1.9`
/// too, until [`serve_later_minor_as_1_1`] rewrote it); `HTPT/1.1`, or a request
/// line without exactly three parts, is garbage (400). `None` while the
/// line is still arriving and could become either: the verdict must not
/// depend on where the bytes were split.
fn version_error(buf: &[u8]) -> Option<ProtocolError> {
    let buf = skip_empty_lines(buf);
    let line_end = buf.iter().position(|&b| b == b'\n');
    let line = &buf[..line_end.unwrap_or(buf.len())];
    let mut parts = line.split(|&b| b == b' ');
    let (Some(_method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Some(ProtocolError::Malformed);
    };
    let shape = |i: usize, b: u8| match i {
        0..=4 => b == b"HTTP/"[i],
        5 | 7 => b.is_ascii_digit(),
        6 => b == b'.',
        8 => b == b'\r',
        _ => false,
    };
    let fits = version.iter().enumerate().all(|(i, &b)| shape(i, b));
    match line_end {
        None if fits => None,
        _ if fits && version.len() >= 8 => Some(ProtocolError::UnsupportedVersion),
        _ => Some(ProtocolError::Malformed),
    }
}

/// Applies the framing rules of RFC 9112 §6, and the strict rules, to the
/// complete head `head`.
fn frame(
    req: &httparse::Request<'_, '_>,
    head: &[u8],
    config: &Config,
) -> Result<Framing, ProtocolError> {
    let minor = req.version.unwrap_or(1);
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    // First the one verdict an incomplete head can already get (414), so
    // that the whole head gets the same one.
    if target.len() > config.max_target {
        return Err(ProtocolError::TargetTooLong);
    }
    if !config.lenient.bare_lf && !strict::line_ends_are_crlf(head, method, req.headers) {
        return Err(ProtocolError::Malformed);
    }
    if method == "CONNECT" {
        return Err(ProtocolError::UnsupportedMethod);
    }
    check_target(method, target, config.lenient)?;

    let mut hosts = 0u32;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = TransferEncoding::default();
    let mut transfer_encoding_fields = 0u32;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;

    for header in req.headers.iter() {
        let name = header.name.as_bytes();
        let value = header.value;
        // Dispatch on length first: most fields (Accept, User-Agent...)
        // match none of these and cost one comparison.
        match name.len() {
            4 if is_name(name, b"host") => {
                hosts += 1;
                // RFC 9110 §7.2, RFC 9112 §3.2: an `http` target always has
                // an authority, so its Host is never empty.
                if !all_in(&HOST, value) || value.is_empty() && !config.lenient.empty_host {
                    return Err(ProtocolError::InvalidHost);
                }
            }
            14 if is_name(name, b"content-length") => {
                // RFC 9110 §8.6: `1*DIGIT`; a list of identical values (`5, 5`,
                // or two lines) is accepted as one, but not an empty element
                // (`1,`, `,1`, `1,,1`): each element must be a number.
                for element in value.split(|&b| b == b',') {
                    let n = parse_content_length(element.trim_ascii())?;
                    if content_length.is_some_and(|seen| seen != n) {
                        return Err(ProtocolError::InvalidContentLength);
                    }
                    content_length = Some(n);
                }
            }
            17 if is_name(name, b"transfer-encoding") => {
                transfer_encoding_fields += 1;
                list_elements(value).for_each(|coding| transfer_encoding.push(coding));
            }
            10 if is_name(name, b"connection") => {
                // The usual HTTP/1.1 value, which cannot say `close`: what
                // `is_name` matches is ten bytes without a comma.
                if minor == 1 && is_name(value, b"keep-alive") {
                    continue;
                }
                for option in list_elements(value) {
                    close |= option.eq_ignore_ascii_case(b"close");
                    // Only HTTP/1.0 needs to opt in to keep-alive.
                    keep_alive |= minor == 0 && option.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            6 if is_name(name, b"expect") => {
                if !value.eq_ignore_ascii_case(b"100-continue") {
                    return Err(ProtocolError::UnsupportedExpectation);
                }
                expect_continue = true;
            }
            _ => {}
        }
    }

    if minor == 1 && hosts != 1 || hosts > 1 {
        return Err(ProtocolError::InvalidHost);
    }
    let body = match (transfer_encoding_fields, content_length) {
        (0, None | Some(0)) => BodyLength::Empty,
        // Past usize (a 32-bit target) no route limit can take it; a smaller
        // one is checked against the route's limit once the route is known.
        (0, Some(n)) => {
            BodyLength::Fixed(usize::try_from(n).map_err(|_| ProtocolError::BodyTooLarge)?)
        }
        (_, Some(_)) => return Err(ProtocolError::AmbiguousLength),
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        (_, None) if minor == 0 => return Err(ProtocolError::InvalidTransferEncoding),
        (_, None) if transfer_encoding.is_chunked()? => BodyLength::Chunked,
        (_, None) => return Err(ProtocolError::InvalidTransferEncoding),
    };
    Ok(Framing {
        head_len: head.len(),
        minor,
        keep_alive: if minor == 1 {
            !close
        } else {
            keep_alive && !close
        },
        body,
        expect_continue: expect_continue && minor == 1 && body != BodyLength::Empty,
        is_head: method == "HEAD",
    })
}

/// Whether the field name `name` is `lower` (lowercase letters and `-`),
/// ignoring ASCII case. Setting bit 0x20 lowercases a letter and maps no
/// other token byte to a letter or to `-` (only CR, never in a name, would
/// become `-`), so one OR per byte does what `eq_ignore_ascii_case` does on
/// httparse's names, which are tokens; with the length a constant, the
/// compiler compares whole words.
#[inline]
pub(crate) fn is_name<const N: usize>(name: &[u8], lower: &[u8; N]) -> bool {
    let Ok(name) = <&[u8; N]>::try_from(name) else {
        return false;
    };
    let mut diff = 0;
    for i in 0..N {
        diff |= (name[i] | 0x20) ^ lower[i];
    }
    diff == 0
}

/// A `Transfer-Encoding` list, read across every field line that carries one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TransferEncoding {
    codings: u32,
    last_is_chunked: bool,
    /// A coding followed a `chunked`: chunked must be final and applied once.
    chunked_not_last: bool,
    /// A valid coding other than `chunked` (gzip, deflate...), which we do not decode.
    other: bool,
    invalid: bool,
}

impl TransferEncoding {
    fn push(&mut self, coding: &[u8]) {
        self.chunked_not_last |= self.last_is_chunked;
        self.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if !self.last_is_chunked {
            self.other |= coding.iter().all(|&b| is_token_byte(b));
            self.invalid |= !coding.iter().all(|&b| is_token_byte(b));
        }
        self.codings += 1;
    }

    /// RFC 9112 §6.3: a final coding other than chunked is a 400; an unknown
    /// coding under a final chunked is a 501 (§6.1).
    fn is_chunked(&self) -> Result<bool, ProtocolError> {
        if self.codings == 0 {
            return Ok(false);
        }
        if self.invalid || self.chunked_not_last || !self.last_is_chunked {
            return Err(ProtocolError::InvalidTransferEncoding);
        }
        if self.other {
            return Err(ProtocolError::UnsupportedTransferCoding);
        }
        Ok(true)
    }
}

/// Elements of a comma-separated field value, trimmed, empty ones skipped
/// (RFC 9110 §5.6.1).
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|e| e.trim_ascii())
        .filter(|e| !e.is_empty())
}

/// `1*DIGIT`, no sign, no whitespace inside, no overflow.
fn parse_content_length(digits: &[u8]) -> Result<u64, ProtocolError> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::InvalidContentLength);
    }
    Ok(digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// origin-form, absolute-form, or asterisk-form for `OPTIONS` (RFC 9112 §3.2).
/// No form carries a fragment (`#`, RFC 9112 §3.2). An absolute-form target
/// needs a host (RFC 9110 §4.2.1) and may not carry userinfo (`user@`: RFC
/// 9110 §4.2.4, a phishing device), and its authority holds only `Host`
/// characters. Strict: its path and query hold only the bytes RFC 3986
/// allows there (see [`strict::is_path_and_query`]), which leaves out `#`.
fn check_target(method: &str, target: &str, lenient: Leniency) -> Result<(), ProtocolError> {
    let bytes = target.as_bytes();
    let path_and_query_ok = |rest: &[u8]| {
        if lenient.target_bytes {
            !rest.contains(&b'#')
        } else {
            strict::is_path_and_query(rest)
        }
    };
    let valid = match bytes.first() {
        Some(b'/') => path_and_query_ok(bytes),
        Some(b'*') => bytes.len() == 1 && method == "OPTIONS",
        _ => {
            let lower = |n: usize| bytes.get(..n).map(|p| p.to_ascii_lowercase());
            (lower(7).as_deref() == Some(b"http://") || lower(8).as_deref() == Some(b"https://"))
                && crate::request::split_absolute_form(target).is_some_and(|(authority, rest)| {
                    // `HOST` has no `@`: userinfo is refused with the rest.
                    !authority.is_empty()
                        && !authority.starts_with(':')
                        && all_in(&HOST, authority.as_bytes())
                        && path_and_query_ok(rest.as_bytes())
                })
        }
    };
    if valid {
        Ok(())
    } else {
        Err(ProtocolError::InvalidTarget)
    }
}

/// A 256-entry table of which bytes belong to a character class.
const fn byte_class(members: &[u8], alphanumeric: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = alphanumeric && (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < members.len() {
        table[members[i] as usize] = true;
        i += 1;
    }
    table
}

/// `tchar` of RFC 9110 §5.6.2, for `const` code ([`crate::Field`]).
pub(crate) const TOKEN_CLASS: [bool; 256] = byte_class(b"!#$%&'*+-.^_`|~", true);
/// The same table, once in memory for the parser.
static TOKEN: [bool; 256] = TOKEN_CLASS;
/// reg-name, IP-literal and port characters, as allowed in `Host`.
static HOST: [bool; 256] = byte_class(b"-._~!$&'()*+,;=:[]%", true);

/// Whether every byte of `bytes` is in `class`. No early exit: a load and
/// an AND a byte, which the compiler unrolls, where an early exit costs a
/// compare and a branch a byte on the valid input that is the rule.
#[inline]
pub(crate) fn all_in(class: &[bool; 256], bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & class[b as usize])
}

/// `0x01` in every byte of a word, for the word-at-a-time scans.
pub(crate) const ONES: u64 = u64::from_le_bytes([0x01; 8]);
/// `0x80` in every byte of a word.
pub(crate) const HIGH: u64 = ONES * 0x80;

/// The "has zero byte" test on a word: a nonzero result when a byte of
/// `x` is zero, with the high bit of the lowest zero byte set. Exact:
/// subtracting 1 from each byte borrows only out of a zero byte, so with
/// no zero byte nothing is flagged, and a borrow can flag only bytes above
/// the lowest zero one.
#[inline]
pub(crate) fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Where `needle` first occurs in `haystack`. Eight bytes at a time: a
/// word XORed with the needle in every byte has a zero byte where the
/// needle is, and [`zero_bytes`] flags the lowest one exactly (the word is
/// read little-endian so that the lowest byte is the first). A tail of
/// under eight bytes is searched as the last eight bytes, overlapping
/// bytes already searched, which hold no match; a haystack under eight
/// bytes goes a byte at a time.
#[inline]
pub(crate) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let first_in = |at: usize| {
        let word = u64::from_le_bytes(haystack[at..at + 8].try_into().expect("8 bytes"));
        let found = zero_bytes(word ^ pattern);
        (found != 0).then(|| at + (found.trailing_zeros() / 8) as usize)
    };
    let Some(last) = haystack.len().checked_sub(8) else {
        return haystack.iter().position(|&b| b == needle);
    };
    let mut at = 0;
    while at < last {
        if let Some(found) = first_in(at) {
            return Some(found);
        }
        at += 8;
    }
    first_in(last)
}

/// Whether `bytes` is a token (RFC 9110 §5.6.2), or empty.
#[inline]
pub(crate) fn all_token(bytes: &[u8]) -> bool {
    all_in(&TOKEN, bytes)
}

/// `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[b as usize]
}

#[cfg(test)]
mod tests;

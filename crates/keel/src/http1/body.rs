//! Chunked request bodies (RFC 9112 §7.1), decoded in place: chunk data is
//! moved down over the framing so the decoded body is one contiguous slice at
//! the start of the encoded bytes.

use crate::http1::parse::is_token_byte;
use crate::ProtocolError;

/// Longest chunk-size line (size, extensions, CRLF) we accept.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;

/// Decoding progress, kept across reads. Offsets are relative to the first
/// byte after the request head.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ChunkedDecoder {
    /// Next encoded byte to look at.
    read: usize,
    /// Decoded bytes so far, stored at `[0..written]`.
    written: usize,
    phase: Phase,
    /// Bytes of trailer section seen so far.
    trailer_bytes: usize,
    /// Where the trailer section starts, once the last chunk is in.
    trailer_start: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Size,
    Data {
        remaining: usize,
    },
    DataEnd,
    Trailers,
}

/// Limits the decoder enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkLimits {
    pub(crate) max_body: usize,
    pub(crate) max_trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// Decodes as much of `buf` (everything received after the head) as is
    /// there. Returns `Some((body_len, encoded_len))` once the last chunk and
    /// the trailer section are in: the body is `buf[..body_len]` and the
    /// message ends at `encoded_len`.
    pub(crate) fn decode(
        &mut self,
        buf: &mut [u8],
        limits: ChunkLimits,
    ) -> Result<Option<(usize, usize)>, ProtocolError> {
        loop {
            match self.phase {
                Phase::Size => {
                    let line = take_line(buf, self.read, MAX_CHUNK_LINE)
                        .map_err(|_| ProtocolError::InvalidChunk)?;
                    let Some(line) = line else {
                        return Ok(None);
                    };
                    let size = parse_chunk_size(&buf[self.read..line])?;
                    self.read = line + 2;
                    if size == 0 {
                        self.phase = Phase::Trailers;
                        self.trailer_start = self.read;
                    } else if size > (limits.max_body - self.written) as u64 {
                        return Err(ProtocolError::BodyTooLarge);
                    } else {
                        // Checked just above: at most max_body, so it fits a usize.
                        self.phase = Phase::Data {
                            remaining: size as usize,
                        };
                    }
                }
                Phase::Data { remaining } => {
                    let available = remaining.min(buf.len() - self.read);
                    buf.copy_within(self.read..self.read + available, self.written);
                    self.read += available;
                    self.written += available;
                    if available < remaining {
                        self.phase = Phase::Data {
                            remaining: remaining - available,
                        };
                        return Ok(None);
                    }
                    self.phase = Phase::DataEnd;
                }
                Phase::DataEnd => match buf.get(self.read..self.read + 2) {
                    None if buf.len() - self.read == 1 && buf[self.read] != b'\r' => {
                        return Err(ProtocolError::InvalidChunk)
                    }
                    None => return Ok(None),
                    Some(b"\r\n") => {
                        self.read += 2;
                        self.phase = Phase::Size;
                    }
                    Some(_) => return Err(ProtocolError::InvalidChunk),
                },
                Phase::Trailers => {
                    let room = limits.max_trailer_bytes.saturating_sub(self.trailer_bytes);
                    let line = take_line(buf, self.read, room).map_err(|e| match e {
                        LineError::TooLong => ProtocolError::HeadersTooLarge,
                        LineError::Malformed => ProtocolError::InvalidChunk,
                    })?;
                    let Some(line) = line else {
                        return Ok(None);
                    };
                    let field = &buf[self.read..line];
                    self.trailer_bytes += field.len() + 2;
                    self.read = line + 2;
                    if field.is_empty() {
                        return Ok(Some((self.written, self.read)));
                    }
                    check_trailer_field(field)?;
                }
            }
        }
    }
}

impl ChunkedDecoder {
    /// Decoded bytes waiting at the start of the buffer.
    pub(crate) fn decoded(&self) -> usize {
        self.written
    }

    /// A streamed body's reader took the first `n` decoded bytes and the
    /// buffer now starts `n` bytes later: offsets move down by `n`.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.written);
        self.written -= n;
        self.read -= n;
        self.trailer_start = self.trailer_start.saturating_sub(n);
    }

    /// Once decoding is complete: the trailer field lines (each ending in
    /// CRLF, the empty last line left out), and where the message ends.
    pub(crate) fn trailers_and_end(&self) -> (std::ops::Range<usize>, usize) {
        (self.trailer_start..self.read - 2, self.read)
    }

    /// Moves the undecoded rest of `buf` down to the end of the decoded body,
    /// dropping the chunk framing already consumed. Returns how many bytes
    /// were dropped: the caller shortens the buffer by that much.
    pub(crate) fn squeeze(&mut self, buf: &mut [u8]) -> usize {
        if self.phase == Phase::Trailers {
            // Keep the trailer lines (bounded by the trailer limit): a
            // streamed body's sink is shown them at the end.
            return 0;
        }
        let gap = self.read - self.written;
        if gap > 0 {
            buf.copy_within(self.read.., self.written);
            self.read = self.written;
        }
        gap
    }
}

/// Why a framing line could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineError {
    /// Longer than allowed.
    TooLong,
    /// A bare CR or LF inside the line.
    Malformed,
}

/// Finds the CRLF ending the line that starts at `from`; `Ok(None)` if it has
/// not arrived yet. A bare CR or LF inside the line is an error: lenient line
/// endings in chunked framing are a request-smuggling vector.
fn take_line(buf: &[u8], from: usize, max_len: usize) -> Result<Option<usize>, LineError> {
    let rest = &buf[from..];
    match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
        Some(i) if i + 2 > max_len => Err(LineError::TooLong),
        Some(i) if rest[i] == b'\n' => Err(LineError::Malformed),
        Some(i) => match rest.get(i + 1) {
            Some(b'\n') => Ok(Some(from + i)),
            Some(_) => Err(LineError::Malformed),
            None => Ok(None),
        },
        None if rest.len() >= max_len => Err(LineError::TooLong),
        None => Ok(None),
    }
}

/// `chunk-size [ chunk-ext ]`: hex digits, then optional extensions, which
/// are skipped but must follow the grammar of RFC 9112 §7.1.1.
fn parse_chunk_size(line: &[u8]) -> Result<u64, ProtocolError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return Err(ProtocolError::InvalidChunk);
    }
    // At most 15 digits: fits in a u64 on every target, 32-bit ones included.
    let size = line[..digits].iter().fold(0u64, |n, &d| {
        n * 16 + u64::from((d as char).to_digit(16).unwrap_or(0))
    });
    // Whitespace between the size and end of line, with no extension, is junk.
    if !is_chunk_ext(&line[digits..]) {
        return Err(ProtocolError::InvalidChunk);
    }
    Ok(size)
}

/// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`,
/// a name a token, a value a token or a quoted-string (RFC 9112 §7.1.1).
/// Anything else is refused: a parser that skips to the line end while
/// another stops at a quote or a stray byte reads a different body. Its
/// length is bounded by [`MAX_CHUNK_LINE`].
fn is_chunk_ext(mut ext: &[u8]) -> bool {
    let skip_bws = |bytes: &[u8]| -> usize {
        bytes
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count()
    };
    let token_len = |bytes: &[u8]| bytes.iter().take_while(|&&b| is_token_byte(b)).count();
    while !ext.is_empty() {
        let Some(after_semicolon) = ext[skip_bws(ext)..].strip_prefix(b";") else {
            return false;
        };
        let name = &after_semicolon[skip_bws(after_semicolon)..];
        let name_len = token_len(name);
        if name_len == 0 {
            return false;
        }
        ext = &name[name_len..];
        if let Some(after_equals) = ext[skip_bws(ext)..].strip_prefix(b"=") {
            let value = &after_equals[skip_bws(after_equals)..];
            let value_len = match value.first() {
                Some(b'"') => quoted_string_len(value),
                _ => token_len(value),
            };
            if value_len == 0 {
                return false;
            }
            ext = &value[value_len..];
        }
    }
    true
}

/// Length of the quoted-string at the start of `bytes`, quotes included; 0
/// if there is none (RFC 9110 §5.6.4: qdtext, or `\` before HTAB, SP, VCHAR
/// or obs-text).
fn quoted_string_len(bytes: &[u8]) -> usize {
    let text = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
    let mut i = 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return i + 1,
            b'\\' if bytes.get(i + 1).is_some_and(|&next| text(next)) => i += 2,
            _ if b != b'\\' && text(b) => i += 1,
            _ => return 0,
        }
    }
    0
}

/// A trailer field line: `name: value`, no obs-fold, no whitespace before the colon.
fn check_trailer_field(field: &[u8]) -> Result<(), ProtocolError> {
    let colon = field
        .iter()
        .position(|&b| b == b':')
        .ok_or(ProtocolError::InvalidChunk)?;
    let name_ok = colon > 0 && field[..colon].iter().all(|&b| is_token_byte(b));
    let value_ok = field[colon + 1..]
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80);
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(ProtocolError::InvalidChunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ChunkLimits = ChunkLimits {
        max_body: 1024,
        max_trailer_bytes: 256,
    };

    fn decode_all(wire: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ProtocolError> {
        let mut buf = wire.to_vec();
        let mut decoder = ChunkedDecoder::default();
        Ok(decoder
            .decode(&mut buf, LIMITS)?
            .map(|(len, end)| (buf[..len].to_vec(), end)))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let wire = b"5;name=value\r\nhello\r\n1 ; x\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: yes\r\n\r\nNEXT";
        let (body, end) = decode_all(wire).unwrap().unwrap();
        assert_eq!(body, b"hello world!");
        assert_eq!(&wire[end..], b"NEXT");
    }

    #[test]
    fn every_split_point_gives_the_same_body() {
        let wire = b"3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
        for step in 1..wire.len() {
            let mut buf = Vec::new();
            let mut decoder = ChunkedDecoder::default();
            let mut done = None;
            for piece in wire.chunks(step) {
                buf.extend_from_slice(piece);
                if let Some(r) = decoder.decode(&mut buf, LIMITS).unwrap() {
                    done = Some(r);
                }
            }
            let (len, end) = done.expect("complete");
            assert_eq!(&buf[..len], b"abc0123456789", "step {step}");
            assert_eq!(end, wire.len());
            // Squeezing between pieces gives the same body in a smaller buffer.
            let mut buf = Vec::new();
            let mut decoder = ChunkedDecoder::default();
            let mut done = None;
            for piece in wire.chunks(step) {
                buf.extend_from_slice(piece);
                match decoder.decode(&mut buf, LIMITS).unwrap() {
                    Some(r) => done = Some(r),
                    None => {
                        let dropped = decoder.squeeze(&mut buf);
                        buf.truncate(buf.len() - dropped);
                    }
                }
            }
            let (len, _) = done.expect("complete");
            assert_eq!(&buf[..len], b"abc0123456789", "squeezed, step {step}");
        }
    }

    #[test]
    fn accepts_every_form_of_chunk_extension() {
        for line in [
            &b"5;a"[..],
            b"5;a=b",
            b"5 ; a = b",
            b"5\t;\ta\t=\tb",
            b"5;a=\"\"",
            b"5;a=\"x y;z=\\\"q\\\\\"",
            b"5;a=\"caf\xc3\xa9\"",
            b"5;a;b=c;d=\"e\"",
            b"5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~",
        ] {
            let mut wire = line.to_vec();
            wire.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
            let (body, _) = decode_all(&wire)
                .unwrap_or_else(|e| panic!("{e:?}: {:?}", String::from_utf8_lossy(line)))
                .unwrap();
            assert_eq!(body, b"hello");
        }
    }

    #[test]
    fn rejects_bad_framing() {
        use ProtocolError::*;
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"x\r\n", InvalidChunk),
            (b"\r\n", InvalidChunk),
            (b"-1\r\n", InvalidChunk),
            (b"0x5\r\n", InvalidChunk),
            (b"5 \r\nhello\r\n", InvalidChunk),
            (b"5\nhello\r\n", InvalidChunk),
            (b"5\rhello\r\n", InvalidChunk),
            (b"5\r\nhelloXX", InvalidChunk),
            (b"5\r\nhello\n0\r\n\r\n", InvalidChunk),
            (b"5;a\x01b\r\nhello\r\n", InvalidChunk),
            // RFC 9112 §7.1.1: extensions that are not `;name[=token|"quoted"]`.
            (b"5;\r\nhello\r\n", InvalidChunk),
            (b"5 ;\r\nhello\r\n", InvalidChunk),
            (b"5;=v\r\nhello\r\n", InvalidChunk),
            (b"5;a=\r\nhello\r\n", InvalidChunk),
            (b"5;a=b c\r\nhello\r\n", InvalidChunk),
            (b"5;a \r\nhello\r\n", InvalidChunk),
            (b"5;a=\"b\r\nhello\r\n", InvalidChunk),
            (b"5;a=\"b\"c\r\nhello\r\n", InvalidChunk),
            (b"5;a=\"\\\"\r\nhello\r\n", InvalidChunk),
            (b"5;a=\"\x7f\"\r\nhello\r\n", InvalidChunk),
            (b"5;a=b;\r\nhello\r\n", InvalidChunk),
            (b"5;a;;b\r\nhello\r\n", InvalidChunk),
            (b"5x\r\nhello\r\n", InvalidChunk),
            (b"5;a=(b)\r\nhello\r\n", InvalidChunk),
            (b"5;a@b\r\nhello\r\n", InvalidChunk),
            (b"ffffffffffffffffff\r\n", InvalidChunk),
            (b"401\r\n", BodyTooLarge),
            (b"0\r\n bad\r\n\r\n", InvalidChunk),
            (b"0\r\nX : y\r\n\r\n", InvalidChunk),
            (b"0\r\nnocolon\r\n\r\n", InvalidChunk),
            (b"0\r\nX: a\nb\r\n\r\n", InvalidChunk),
            (b"0\r\nX: a\rb\r\n\r\n", InvalidChunk),
        ];
        for (wire, want) in cases {
            assert_eq!(
                decode_all(wire).err(),
                Some(*want),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
        let long_trailer = format!("0\r\nX: {}\r\n\r\n", "a".repeat(300));
        assert_eq!(
            decode_all(long_trailer.as_bytes()).err(),
            Some(HeadersTooLarge)
        );
        let long_ext = format!("1;{}\r\n", "a".repeat(MAX_CHUNK_LINE));
        assert_eq!(decode_all(long_ext.as_bytes()).err(), Some(InvalidChunk));
    }

    #[test]
    fn body_limit_counts_decoded_bytes() {
        let exactly = format!("400\r\n{}\r\n0\r\n\r\n", "a".repeat(1024));
        assert_eq!(
            decode_all(exactly.as_bytes()).unwrap().unwrap().0.len(),
            1024
        );
        let over = format!("400\r\n{}\r\n1\r\n", "a".repeat(1024));
        assert_eq!(
            decode_all(over.as_bytes()).err(),
            Some(ProtocolError::BodyTooLarge)
        );
    }
}

//! The client's side of a response: its head, then its body (a length or
//! chunked framing), read from a blocking stream through one large buffer.
//! Heads and chunk-size lines are parsed by `httparse`; the framing rules
//! around them are the few lines below.

use std::io::{self, Read};

/// How a response body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`: this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A response head: its status and body framing.
#[derive(Debug)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The body framing.
    pub framing: Framing,
}

/// A connection's read buffer: large, so that the client reads in few calls.
pub struct ReadBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// An empty buffer of `capacity` bytes.
    pub fn new(capacity: usize) -> ReadBuf {
        ReadBuf {
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The bytes read and not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` bytes of [`ReadBuf::data`] consumed.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once from `source` after what is buffered; the count read, 0 at
    /// the end of the stream.
    ///
    /// # Errors
    ///
    /// The read's error; `InvalidData` when the buffer is full of unconsumed
    /// bytes (a head or chunk-size line longer than the buffer).
    pub fn fill(&mut self, source: &mut impl Read) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start == 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = source.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Reads a response head from `source` into `buf` and consumes it.
///
/// # Errors
///
/// A read error, an early end of stream, an unparsable head, or one without
/// a `Content-Length` or chunked framing.
pub fn read_head(source: &mut impl Read, buf: &mut ReadBuf) -> io::Result<Head> {
    loop {
        if let Some((len, head)) = parse_head(buf.data())? {
            buf.consume(len);
            return Ok(head);
        }
        if buf.fill(source)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the response head",
            ));
        }
    }
}

/// The response head at the start of `buf`, and its length; `None` while
/// it is incomplete.
///
/// # Errors
///
/// An unparsable head, or one without a `Content-Length` or chunked framing.
pub fn parse_head(buf: &[u8]) -> io::Result<Option<(usize, Head)>> {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let status = response.code.unwrap_or(0);
            let framing = framing(response.headers)?;
            Ok(Some((len, Head { status, framing })))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(invalid(format!("response head: {e}"))),
    }
}

fn framing(fields: &[httparse::Header<'_>]) -> io::Result<Framing> {
    for field in fields {
        if field.name.eq_ignore_ascii_case("transfer-encoding") {
            return if field.value.eq_ignore_ascii_case(b"chunked") {
                Ok(Framing::Chunked)
            } else {
                Err(invalid("a transfer coding other than chunked"))
            };
        }
    }
    for field in fields {
        if field.name.eq_ignore_ascii_case("content-length") {
            return std::str::from_utf8(field.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .map(Framing::Length)
                .ok_or_else(|| invalid("an unreadable Content-Length"));
        }
    }
    Err(invalid("neither Content-Length nor chunked"))
}

/// Where a [`BodyDecoder`] is in a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// This many bytes of body (or of the current chunk) are left.
    Data(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// After a chunk's data: its CRLF.
    ChunkEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes a response body incrementally, handing its data out as slices of
/// the input (no copy). Chunk-size lines are parsed by `httparse`.
#[derive(Debug)]
pub struct BodyDecoder {
    chunked: bool,
    state: State,
}

impl BodyDecoder {
    /// A decoder for a body of this framing.
    pub fn new(framing: Framing) -> BodyDecoder {
        match framing {
            Framing::Length(0) => BodyDecoder {
                chunked: false,
                state: State::Done,
            },
            Framing::Length(n) => BodyDecoder {
                chunked: false,
                state: State::Data(n),
            },
            Framing::Chunked => BodyDecoder {
                chunked: true,
                state: State::ChunkSize,
            },
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes what it can of `input`, passing each piece of body data to
    /// `on_data`; returns how many bytes of `input` it consumed (the rest is
    /// an incomplete line: call again with more bytes after it).
    ///
    /// # Errors
    ///
    /// `InvalidData` on a malformed chunk-size line or chunk end.
    pub fn decode(&mut self, input: &[u8], mut on_data: impl FnMut(&[u8])) -> io::Result<usize> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                State::Done => return Ok(at),
                State::Data(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    on_data(&rest[..take]);
                    at += take;
                    let left = left - take as u64;
                    self.state = match (left, self.chunked) {
                        (0, true) => State::ChunkEnd,
                        (0, false) => State::Done,
                        (left, _) => State::Data(left),
                    };
                }
                State::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((len, 0))) => {
                        at += len;
                        self.state = State::Trailers;
                    }
                    Ok(httparse::Status::Complete((len, size))) => {
                        at += len;
                        self.state = State::Data(size);
                    }
                    Ok(httparse::Status::Partial) => return Ok(at),
                    Err(_) => return Err(invalid("a malformed chunk size")),
                },
                State::ChunkEnd => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(invalid("a chunk without its CRLF"));
                    }
                    at += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers => match memchr::memchr(b'\n', rest) {
                    None => return Ok(at),
                    Some(newline) => {
                        at += newline + 1;
                        if rest[..newline].trim_ascii().is_empty() {
                            self.state = State::Done;
                        }
                    }
                },
            }
        }
    }
}

/// Reads the rest of a body from `source` through `buf`, passing its data to
/// `on_data`.
///
/// # Errors
///
/// A read or decoding error, or the stream ending before the body does.
pub fn read_body(
    source: &mut impl Read,
    buf: &mut ReadBuf,
    decoder: &mut BodyDecoder,
    mut on_data: impl FnMut(&[u8]),
) -> io::Result<()> {
    loop {
        let used = decoder.decode(buf.data(), &mut on_data)?;
        buf.consume(used);
        if decoder.is_done() {
            return Ok(());
        }
        if buf.fill(source)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the end of the body",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, wire: &[u8], step: usize) -> (Vec<u8>, bool) {
        let mut decoder = BodyDecoder::new(framing);
        let mut body = Vec::new();
        let mut pending = Vec::new();
        for piece in wire.chunks(step) {
            pending.extend_from_slice(piece);
            let used = decoder
                .decode(&pending, |data| body.extend_from_slice(data))
                .expect("valid framing");
            pending.drain(..used);
        }
        (body, decoder.is_done())
    }

    #[test]
    fn decodes_chunked_bodies_split_anywhere() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for step in 1..wire.len() {
            let (body, done) = decode_all(Framing::Chunked, wire, step);
            assert_eq!(body, b"hello world!", "split every {step} bytes");
            assert!(done);
        }
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        let (body, done) = decode_all(Framing::Length(4), b"abcdef", 3);
        assert_eq!(body, b"abcd");
        assert!(done);
        let (body, done) = decode_all(Framing::Length(10), b"abcdef", 2);
        assert_eq!(body, b"abcdef");
        assert!(!done, "four bytes are still to come");
    }

    #[test]
    fn rejects_malformed_chunks() {
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        assert!(decoder.decode(b"zz\r\n", |_| ()).is_err());
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        assert!(decoder.decode(b"1\r\nab\r\n", |_| ()).is_err());
    }

    /// A stream that hands out at most 5 bytes per read.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(out.len()).min(5);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_response(wire: &[u8], capacity: usize) -> io::Result<(Head, Vec<u8>)> {
        let mut source = Trickle(wire);
        let mut buf = ReadBuf::new(capacity);
        let head = read_head(&mut source, &mut buf)?;
        let mut body = Vec::new();
        let mut decoder = BodyDecoder::new(head.framing);
        read_body(&mut source, &mut buf, &mut decoder, |d| {
            body.extend_from_slice(d)
        })?;
        Ok((head, body))
    }

    #[test]
    fn reads_a_head_and_its_body_from_a_stream() {
        let wire = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc";
        let (head, body) = read_response(wire, 64).expect("a response");
        assert_eq!((head.status, head.framing), (200, Framing::Length(3)));
        assert_eq!(body, b"abc");
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let (head, body) = read_response(wire, 64).expect("a response");
        assert_eq!((head.status, head.framing), (200, Framing::Chunked));
        assert_eq!(body, b"abc");
    }

    #[test]
    fn a_cut_or_oversized_response_is_an_error() {
        let cut = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc";
        let err = read_response(cut, 64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err =
            read_response(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc", 16).unwrap_err();
        assert_eq!(
            err.kind(),
            io::ErrorKind::InvalidData,
            "a head longer than the buffer"
        );
        let no_framing = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
        let err = read_response(no_framing, 64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}

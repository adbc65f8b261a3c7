//! Requests as clients send them, and a response framer for the client side.

use crate::streams::response;
use std::io::{self, Read, Write};

/// `GET /plaintext` with the header fields TechEmpower's load generator sends
/// (343 bytes).
pub const PLAINTEXT: &[u8] = b"GET /plaintext HTTP/1.1\r\n\
Host: localhost\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\n\
Cookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890.1234567890.12; wd=2560x1600\r\n\
Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Connection: keep-alive\r\n\
\r\n";

/// `GET /json`, same header fields as [`PLAINTEXT`].
pub const JSON: &[u8] = b"GET /json HTTP/1.1\r\n\
Host: localhost\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\n\
Cookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890.1234567890.12; wd=2560x1600\r\n\
Accept: application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Connection: keep-alive\r\n\
\r\n";

/// A request for the compression benches' JSON ([`crate::gzip`]): the
/// header fields of [`JSON`] and `Accept-Encoding: gzip`.
pub const JSON_GZIP: &[u8] = b"GET /links HTTP/1.1\r\n\
Host: localhost\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\n\
Cookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890.1234567890.12; wd=2560x1600\r\n\
Accept: application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip\r\n\
Connection: keep-alive\r\n\
\r\n";

/// How many requests the pipelined benches send in one write.
pub const PIPELINE_DEPTH: usize = 16;

/// [`PLAINTEXT`] `n` times, back to back, for one write.
pub fn pipelined(n: usize) -> Vec<u8> {
    PLAINTEXT.repeat(n)
}

/// Length of the complete response at the start of `buf`, or `None` while it
/// is incomplete. Understands what both servers send here: a head with a
/// `Content-Length` (spelled so, as keel does, or all lower case, as hyper
/// does), no chunked bodies. Cheap (a `memchr` per
/// line), since the in-memory benches and instruction counts include it.
///
/// # Panics
///
/// On a complete head without a readable `Content-Length`.
pub fn response_len(buf: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"Content-Length:";
    const NAME_LOWER: &[u8] = b"content-length:";
    let mut length = None;
    let mut line_start = 0;
    for newline in memchr::memchr_iter(b'\n', buf) {
        let line = &buf[line_start..newline];
        line_start = newline + 1;
        if line == b"\r" {
            let total = line_start + length.expect("a Content-Length in every response");
            return (buf.len() >= total).then_some(total);
        }
        if line.starts_with(NAME) || line.starts_with(NAME_LOWER) {
            let value = line[NAME.len()..].trim_ascii();
            length = Some(value.iter().fold(0usize, |n, &d| {
                assert!(d.is_ascii_digit(), "a readable Content-Length");
                n * 10 + usize::from(d - b'0')
            }));
        }
    }
    None
}

/// Like [`response_len`], for any framing a client reads (a length or
/// chunked, as hyper sends what tower-http compresses: its length is not
/// known until the encoder ends), through the streaming benches' client
/// ([`crate::streams::response`]). Costlier than [`response_len`]: a whole
/// head parse.
///
/// # Panics
///
/// On a head or chunked body that client rejects.
pub fn framed_len(buf: &[u8]) -> Option<usize> {
    let (head_len, head) = response::parse_head(buf).expect("a valid response head")?;
    let mut body = response::BodyDecoder::new(head.framing);
    let used = body
        .decode(&buf[head_len..], |_| ())
        .expect("a valid response body");
    body.is_done().then_some(head_len + used)
}

/// How many complete responses `buf` holds from its start.
pub fn complete_responses(mut buf: &[u8]) -> usize {
    let mut count = 0;
    while let Some(n) = response_len(buf) {
        buf = &buf[n..];
        count += 1;
    }
    count
}

/// Writes `request` (one or more requests) and reads until `responses`
/// complete responses are in `buf` (cleared first); returns the bytes read.
///
/// # Errors
///
/// When the socket fails or the peer closes early.
pub fn round_trip<S: Read + Write>(
    stream: &mut S,
    request: &[u8],
    responses: usize,
    buf: &mut Vec<u8>,
) -> io::Result<usize> {
    stream.write_all(request)?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    // Responses are counted from where the last complete one ended.
    let (mut seen, mut done) = (0, 0);
    while seen < responses {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(len) = response_len(&buf[done..]) {
            done += len;
            seen += 1;
        }
    }
    Ok(buf.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_responses() {
        let one = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(response_len(one), Some(one.len()));
        assert_eq!(response_len(&one[..one.len() - 1]), None);
        let two = [&one[..], b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"].concat();
        assert_eq!(complete_responses(&two), 2);
    }

    #[test]
    fn frames_chunked_responses() {
        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        let body = b"5\r\nhello\r\n10;x=y\r\n0123456789abcdef\r\n0\r\n\r\n";
        let whole = [&head[..], body].concat();
        assert_eq!(framed_len(&whole), Some(whole.len()));
        for cut in 0..whole.len() {
            assert_eq!(framed_len(&whole[..cut]), None, "cut at {cut}");
        }
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        assert_eq!(framed_len(sized), Some(sized.len()));
    }

    #[test]
    fn requests_are_well_formed() {
        for request in [PLAINTEXT, JSON, JSON_GZIP] {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut req = httparse::Request::new(&mut headers);
            assert_eq!(
                req.parse(request).unwrap(),
                httparse::Status::Complete(request.len())
            );
        }
    }
}

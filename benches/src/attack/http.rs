//! The client side of HTTP/1.1 the harness needs: requests as bytes, and one
//! response read off a blocking socket before a deadline (status and body
//! length, which is all the checks look at).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What a response said, as far as the harness checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Body bytes received (the whole body: `Content-Length` or up to the close).
    pub body_len: usize,
}

/// Why a request did not get a complete answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// The connection could not be opened in time.
    Connect,
    /// No complete answer before the deadline.
    Timeout,
    /// The server closed (or reset) the connection before a complete answer.
    Closed,
    /// A complete answer with another status than the one expected.
    Status,
    /// A complete answer whose body length was not the one expected.
    Length,
    /// Bytes that are not an HTTP/1.1 response head.
    Garbled,
}

impl Failure {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Closed => "closed",
            Failure::Status => "status",
            Failure::Length => "length",
            Failure::Garbled => "garbled",
        }
    }

    fn from_io(e: &io::Error) -> Failure {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout,
            _ => Failure::Closed,
        }
    }
}

/// `METHOD target HTTP/1.1` with `Host: 127.0.0.1`, the `extra` header lines
/// (each without its CRLF) and `body` with its `Content-Length` when it is
/// not empty (or when `method` is `POST`).
pub fn request(method: &str, target: &str, extra: &[String], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes();
    for line in extra {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method == "POST" {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Opens a connection with `TCP_NODELAY` before `deadline`.
///
/// # Errors
///
/// [`Failure::Connect`] when it cannot.
pub fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, Failure> {
    let left = remaining(deadline).ok_or(Failure::Connect)?;
    let stream = TcpStream::connect_timeout(&addr, left).map_err(|_| Failure::Connect)?;
    // Not fatal: the request still goes out, a little later.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Writes all of `bytes` before `deadline`.
///
/// # Errors
///
/// [`Failure::Timeout`] or [`Failure::Closed`].
pub fn send(stream: &mut TcpStream, bytes: &[u8], deadline: Instant) -> Result<(), Failure> {
    let left = remaining(deadline).ok_or(Failure::Timeout)?;
    stream
        .set_write_timeout(Some(left))
        .map_err(|e| Failure::from_io(&e))?;
    stream.write_all(bytes).map_err(|e| Failure::from_io(&e))
}

/// Reads one response off `stream` before `deadline`. `buf` carries bytes
/// read past a response to the next call (pipelined answers); the response
/// read is removed from its front. Understands `Content-Length` bodies,
/// bodiless answers (1xx, 204, 304, answers to `HEAD`) and bodies ended by a
/// close; a chunked body is [`Failure::Garbled`] (no server here sends one).
///
/// # Errors
///
/// [`Failure::Timeout`], [`Failure::Closed`] or [`Failure::Garbled`].
pub fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    is_head: bool,
    deadline: Instant,
) -> Result<Answer, Failure> {
    loop {
        match parse_head(buf)? {
            Some((head_len, status, length)) => {
                let length = if is_head || status < 200 || status == 204 || status == 304 {
                    Some(0)
                } else {
                    length
                };
                let body_len = match length {
                    Some(n) => {
                        while buf.len() < head_len + n {
                            fill(stream, buf, deadline)?;
                        }
                        n
                    }
                    // No length: the body runs to the close.
                    None => loop {
                        match fill(stream, buf, deadline) {
                            Ok(()) => {}
                            Err(Failure::Closed) => break buf.len() - head_len,
                            Err(other) => return Err(other),
                        }
                    },
                };
                buf.drain(..head_len + body_len);
                return Ok(Answer { status, body_len });
            }
            None => fill(stream, buf, deadline)?,
        }
    }
}

/// The head at the front of `buf`: its length, status and `Content-Length`.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, u16, Option<usize>)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Failure::Garbled),
    };
    let mut length = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(header.value).map_err(|_| Failure::Garbled)?;
            length = Some(text.trim().parse().map_err(|_| Failure::Garbled)?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Failure::Garbled);
        }
    }
    let status = response.code.ok_or(Failure::Garbled)?;
    Ok(Some((head_len, status, length)))
}

/// Appends what one read brings before `deadline`; a close is [`Failure::Closed`].
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<(), Failure> {
    let left = remaining(deadline).ok_or(Failure::Timeout)?;
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| Failure::from_io(&e))?;
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk) {
        Ok(0) => Err(Failure::Closed),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(Failure::from_io(&e)),
    }
}

/// Time left before `deadline`, or `None` when it has passed (a zero timeout
/// means "none" to the socket calls, so it is never returned).
fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (left >= Duration::from_micros(100)).then_some(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_requests() {
        assert_eq!(
            request("GET", "/x", &[], b""),
            b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        );
        assert_eq!(
            request("POST", "/echo", &["A: b".to_owned()], b"hi"),
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nA: b\r\nContent-Length: 2\r\n\r\nhi"
        );
    }

    #[test]
    fn parses_heads() {
        let head = b"HTTP/1.1 302 Found\r\ncontent-length: 5\r\n\r\nabcde";
        assert_eq!(parse_head(head), Ok(Some((head.len() - 5, 302, Some(5)))));
        assert_eq!(parse_head(&head[..10]), Ok(None));
        assert_eq!(parse_head(b"SSH-2.0\r\n\r\n"), Err(Failure::Garbled));
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(Failure::Garbled)
        );
    }
}

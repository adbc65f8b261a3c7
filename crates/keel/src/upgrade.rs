//! HTTP Upgrade (RFC 9110 §7.8): a handler answers `101 Switching
//! Protocols` with [`Response::upgrade`](crate::Response::upgrade), and once
//! that answer is written the connection leaves keel: its socket, made
//! blocking, and the bytes the client sent after the request are handed to
//! the handler's callback as an [`Upgraded`] stream.

use crate::http1::parse::list_elements;
use crate::{Request, Version};
use bytes::{Buf, Bytes};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// What a handler gives [`Response::upgrade`](crate::Response::upgrade):
/// called once, on the worker thread, with the connection.
pub(crate) type OnUpgrade = Box<dyn FnOnce(Upgraded) + Send + 'static>;

/// A connection after `101 Switching Protocols`: a blocking TCP stream that
/// speaks the new protocol, no longer keel's.
///
/// Reading yields first the bytes the client sent right after its upgrade
/// request (they were already in keel's read buffer: a client may send its
/// first frames in the same packet as the request), then what the socket
/// brings. Writing goes straight to the socket. The stream is blocking and
/// has no deadline: set one with [`Upgraded::get_ref`] and
/// [`TcpStream::set_read_timeout`] if the protocol needs it. Dropping it
/// closes the connection.
#[derive(Debug)]
pub struct Upgraded {
    stream: TcpStream,
    read_ahead: Bytes,
}

impl Upgraded {
    pub(crate) fn new(stream: TcpStream, read_ahead: Bytes) -> Self {
        Upgraded { stream, read_ahead }
    }

    /// The client's address.
    ///
    /// # Errors
    ///
    /// As [`TcpStream::peer_addr`] (the peer may have gone).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    /// The bytes received after the upgrade request and not read yet.
    pub fn read_ahead(&self) -> &[u8] {
        &self.read_ahead
    }

    /// The socket, for its options (timeouts, shutdown). Reading from it
    /// directly skips the [`read_ahead`](Upgraded::read_ahead) bytes.
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// The socket and the bytes received after the upgrade request that
    /// were not read yet: whoever takes them must read those bytes first.
    pub fn into_parts(self) -> (TcpStream, Bytes) {
        (self.stream, self.read_ahead)
    }
}

impl Read for Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read_ahead.is_empty() {
            return self.stream.read(buf);
        }
        let n = buf.len().min(self.read_ahead.len());
        buf[..n].copy_from_slice(&self.read_ahead[..n]);
        self.read_ahead.advance(n);
        Ok(n)
    }
}

impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.stream.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Why [`Response::upgrade`](crate::Response::upgrade) refused to switch
/// protocols. Nothing was written: the handler answers the request as
/// usual (a `426 Upgrade Required` or a `400`, say), and the connection
/// keeps its normal keep-alive rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The request did not ask to switch protocols: it lacks the
    /// `Connection: upgrade` option or the `Upgrade` field, or it is
    /// HTTP/1.0 (whose `Upgrade` field a server must ignore, RFC 9110
    /// §7.8). See [`Request::is_upgrade`].
    NotRequested,
    /// The request's `Upgrade` field does not offer this protocol: a server
    /// must not switch to one the client did not ask for (RFC 9110 §7.8).
    NotOffered,
    /// This response cannot hand its connection over: it is written by
    /// [`Handler::on_head`](crate::Handler::on_head) or a
    /// [`Responder`](crate::Responder), the request said
    /// `Connection: close`, or the server is shutting down.
    Unavailable,
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeError::NotRequested => "the request does not ask to switch protocols",
            UpgradeError::NotOffered => "the request's Upgrade field does not offer this protocol",
            UpgradeError::Unavailable => "this response cannot switch protocols",
        })
    }
}

impl std::error::Error for UpgradeError {}

impl<'a> Request<'a> {
    /// Whether the request asks to switch protocols: HTTP/1.1 with an
    /// `upgrade` option in `Connection` and a non-empty `Upgrade` field.
    pub fn is_upgrade(&self) -> bool {
        self.version == Version::Http11
            && self
                .header_values("connection")
                .any(|option| option.eq_ignore_ascii_case(b"upgrade"))
            && self.header_values("upgrade").next().is_some()
    }

    /// The protocols the request's `Upgrade` fields offer, in the client's
    /// order of preference (`websocket`, `h2c`, `foo/2`...); none when the
    /// request does not ask to upgrade ([`Request::is_upgrade`]). Allocates
    /// nothing.
    pub fn upgrade_protocols(&self) -> impl Iterator<Item = &'a str> + 'a {
        let asks = self.is_upgrade();
        let headers = self.headers;
        headers
            .iter()
            .filter(move |h| asks && h.name.eq_ignore_ascii_case("upgrade"))
            .flat_map(|h| list_elements(h.value))
            .filter_map(|p| std::str::from_utf8(p).ok())
    }

    /// The elements of every `name` field, as a comma-separated list.
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let headers = self.headers;
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| list_elements(h.value))
    }
}

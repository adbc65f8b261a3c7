//! The byte stream under a connection, as the worker drives it: a TCP
//! socket, a Unix socket, or (with the `tls` feature) a TLS session over
//! one of these: one small enum whose every call is a match (no dynamic
//! dispatch, nothing allocated). The TLS kind reads ciphertext from its
//! socket and hands plaintext to the same calls ([`tls::stream`]).
//!
//! Data goes through [`Stream::read_into`], `Write`, [`Stream::send_file`]
//! and `Read` alone: those know a TLS stream. `AsRawFd` gives the socket
//! under it, for socket options and `SIOCOUTQ` only.
//!
//! What is TCP-only stays TCP-only: `TCP_NODELAY`, `TCP_DEFER_ACCEPT` and
//! `TCP_NOTSENT_LOWAT` are options of a TCP socket alone ([`Stream::is_tcp`]
//! tells the worker whether to use them). `SIOCOUTQ` (what the peer has not
//! read yet, for the write deadline's rate) answers on both: on a Unix
//! socket it counts the kernel's buffer overhead too, so a Unix peer's
//! progress is under-counted by up to one partly read kernel buffer (it
//! errs towards calling a reader slow; a proxy reads at memory speed).

#[cfg(feature = "tls")]
pub(crate) mod tls;

use crate::server::sys;
use crate::upgrade::UpgradedSocket;
use bytes::BytesMut;
use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

/// One connection's socket, non-blocking, registered with the worker's poller.
#[derive(Debug)]
pub(crate) enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix stream socket connection.
    Unix(UnixStream),
    /// A TLS session over a TCP (or Unix) connection.
    #[cfg(feature = "tls")]
    Tls(Box<tls::stream::TlsStream>),
}

/// What a server's connections speak over their sockets.
#[derive(Clone, Debug, Default)]
pub(crate) enum Transport {
    /// HTTP straight on the socket.
    #[default]
    Plain,
    /// TLS, with the configuration's current certificates.
    #[cfg(feature = "tls")]
    Tls(crate::tls::TlsConfig),
}

impl Transport {
    /// A newly accepted socket as this transport's stream: a TLS session
    /// starts (its handshake runs as the connection is read).
    pub(crate) fn wrap(&self, stream: Stream) -> io::Result<Stream> {
        match self {
            Transport::Plain => Ok(stream),
            #[cfg(feature = "tls")]
            Transport::Tls(config) => {
                let session = rustls::ServerConnection::new(config.current())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                Ok(Stream::Tls(Box::new(tls::stream::TlsStream::new(
                    stream, session,
                ))))
            }
        }
    }
}

impl Stream {
    /// Whether TCP's options (`TCP_NOTSENT_LOWAT`...) apply: the socket
    /// (under TLS too) is TCP.
    pub(crate) fn is_tcp(&self) -> bool {
        match self {
            Stream::Tcp(_) => true,
            Stream::Unix(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.socket().is_tcp(),
        }
    }

    /// Looks at the socket's next byte without taking it (a TLS stream's
    /// ciphertext): `None` at the end of the stream.
    pub(crate) fn peek_byte(&self) -> io::Result<Option<u8>> {
        sys::peek_byte(self)
    }

    /// Shuts down one or both halves of the connection; the write half
    /// after [`closing`](Stream::closing).
    pub(crate) fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            self.closing();
        }
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.socket_mut().shutdown(how),
        }
    }

    /// Before a close: an established TLS stream's `close_notify` (a
    /// handshake that did not finish has nothing to close; a plain socket
    /// needs nothing).
    pub(crate) fn closing(&mut self) {
        #[cfg(feature = "tls")]
        if let Stream::Tls(t) = self {
            if !t.is_handshaking() {
                t.close_notify();
            }
        }
    }

    /// Reads into `buf`'s spare room (plaintext, for a TLS stream):
    /// `Ok(0)` at the end of the stream.
    pub(crate) fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => sys::read_into(s, buf),
            Stream::Unix(s) => sys::read_into(s, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.read_into(buf),
        }
    }

    /// Sends up to `len` bytes of `file` from `offset`: `sendfile` on a
    /// plain socket, read and encrypted on a TLS one. `Ok(0)` when the
    /// file ends first.
    pub(crate) fn send_file(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => sys::send_file(s, file, offset, len),
            Stream::Unix(s) => sys::send_file(s, file, offset, len),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.send_file(file, offset, len),
        }
    }

    /// Written bytes still wait in the stream for the socket (a TLS
    /// stream's ciphertext): the answer is not out yet.
    pub(crate) fn has_unsent(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.has_unsent(),
            _ => false,
        }
    }

    /// Sends what [`has_unsent`](Stream::has_unsent) holds: `WouldBlock`
    /// when the socket fills first.
    pub(crate) fn push_unsent(&mut self) -> io::Result<()> {
        match self {
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.send_queued(),
            _ => Ok(()),
        }
    }

    /// A TLS handshake is still in progress.
    pub(crate) fn is_handshaking(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.is_handshaking(),
            _ => false,
        }
    }

    /// Once, when a TLS handshake has finished: what it agreed.
    pub(crate) fn established(&mut self) -> Option<crate::tls::TlsInfo> {
        match self {
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.established(),
            _ => None,
        }
    }

    /// The socket as a blocking `std` one, for an upgraded connection's
    /// new owner. Deregister it from the poller first.
    pub(crate) fn into_blocking(self) -> io::Result<UpgradedSocket> {
        Ok(match self {
            Stream::Tcp(s) => {
                let s = std::net::TcpStream::from(s);
                s.set_nonblocking(false)?;
                UpgradedSocket::Tcp(s)
            }
            Stream::Unix(s) => {
                let s = std::os::unix::net::UnixStream::from(s);
                s.set_nonblocking(false)?;
                UpgradedSocket::Unix(s)
            }
            // The session goes with its socket: what it decrypted and
            // has not handed over yet is read first.
            #[cfg(feature = "tls")]
            Stream::Tls(t) => {
                let (socket, session) = t.into_parts();
                let socket = socket.into_blocking()?;
                UpgradedSocket::Tls(Box::new(crate::tls::TlsSocket::new(session, socket)))
            }
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.read_plain(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.write_plaintext(&[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.write_plaintext(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.socket().as_raw_fd(),
        }
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interest),
            Stream::Unix(s) => s.register(registry, token, interest),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.socket_mut().register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interest),
            Stream::Unix(s) => s.reregister(registry, token, interest),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.socket_mut().reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.socket_mut().deregister(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_stream_reads_writes_peeks_and_shuts_down() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b) = (Stream::Unix(a), Stream::Unix(b));
        assert!(!a.is_tcp());
        let written = a
            .write_vectored(&[IoSlice::new(b"he"), IoSlice::new(b"llo")])
            .unwrap();
        assert_eq!(written, 5);
        assert_eq!(b.peek_byte().unwrap(), Some(b'h'), "a byte waits");
        let mut buf = [0u8; 8];
        assert_eq!(b.read(&mut buf).unwrap(), 5, "peeking took nothing");
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(
            b.peek_byte().unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing more, and not the end"
        );
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(b.peek_byte().unwrap(), None, "the end of the stream");
        let blocking = b.into_blocking().unwrap();
        assert!(matches!(blocking, UpgradedSocket::Unix(_)));
    }
}

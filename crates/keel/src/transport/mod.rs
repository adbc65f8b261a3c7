//! The byte stream under a connection, as the worker drives it: a TCP
//! socket or a Unix socket, one small enum whose every call is a match (no
//! dynamic dispatch, nothing allocated). A TLS stream, when it comes, is a
//! third kind: it reads ciphertext from one of these and hands plaintext to
//! the same calls.
//!
//! What is TCP-only stays TCP-only: `TCP_NODELAY`, `TCP_DEFER_ACCEPT` and
//! `TCP_NOTSENT_LOWAT` are options of a TCP socket alone ([`Stream::is_tcp`]
//! tells the worker whether to use them). `SIOCOUTQ` (what the peer has not
//! read yet, for the write deadline's rate) answers on both: on a Unix
//! socket it counts the kernel's buffer overhead too, so a Unix peer's
//! progress is under-counted by up to one partly read kernel buffer (it
//! errs towards calling a reader slow; a proxy reads at memory speed).

use crate::upgrade::UpgradedSocket;
use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

/// One connection's socket, non-blocking, registered with the worker's poller.
#[derive(Debug)]
pub(crate) enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix stream socket connection.
    Unix(UnixStream),
}

impl Stream {
    /// Whether TCP's options (`TCP_NOTSENT_LOWAT`...) apply.
    pub(crate) fn is_tcp(&self) -> bool {
        matches!(self, Stream::Tcp(_))
    }

    /// Looks at the next byte without taking it: `Ok(0)` at the end of the
    /// stream.
    pub(crate) fn peek(&self) -> io::Result<usize> {
        let mut byte = [MaybeUninit::uninit(); 1];
        match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).peek(&mut byte),
            Stream::Unix(s) => socket2::SockRef::from(s).peek(&mut byte),
        }
    }

    /// Shuts down one or both halves of the connection.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
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
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
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
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
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
        assert_eq!(b.peek().unwrap(), 1, "a byte waits");
        let mut buf = [0u8; 8];
        assert_eq!(b.read(&mut buf).unwrap(), 5, "peeking took nothing");
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(
            b.peek().unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing more, and not the end"
        );
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(b.peek().unwrap(), 0, "the end of the stream");
        let blocking = b.into_blocking().unwrap();
        assert!(matches!(blocking, UpgradedSocket::Unix(_)));
    }
}

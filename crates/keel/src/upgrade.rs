//! HTTP Upgrade (RFC 9110 §7.8): a handler answers `101 Switching
//! Protocols` with [`Response::upgrade`](crate::Response::upgrade), and once
//! that answer is written the connection leaves keel: its socket, made
//! blocking, and the bytes the client sent after the request are handed to
//! the handler's callback as an [`Upgraded`] stream.

use crate::http1::parse::list_elements;
use crate::peer::{Peer, PeerCredentials};
use crate::{Request, Version};
use bytes::{Buf, Bytes};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// What a handler gives [`Response::upgrade`](crate::Response::upgrade):
/// called once, on the worker thread, with the connection.
pub(crate) type OnUpgrade = Box<dyn FnOnce(Upgraded) + Send + 'static>;

/// A connection after `101 Switching Protocols`: a blocking socket (TCP,
/// or Unix when the server listens on one; with its TLS session on a TLS
/// server) that speaks the new protocol, no longer keel's.
///
/// Reading yields first the bytes the client sent right after its upgrade
/// request (they were already in keel's read buffer: a client may send its
/// first frames in the same packet as the request), then what the socket
/// brings. Writing goes straight to the socket. The stream is blocking and
/// has no deadline: set one with [`Upgraded::get_ref`] and
/// [`UpgradedSocket::set_read_timeout`] if the protocol needs it. Dropping
/// it closes the connection.
#[derive(Debug)]
pub struct Upgraded {
    stream: UpgradedSocket,
    read_ahead: Bytes,
    peer: Peer,
}

impl Upgraded {
    pub(crate) fn new(stream: UpgradedSocket, read_ahead: Bytes, peer: Peer) -> Self {
        Upgraded {
            stream,
            read_ahead,
            peer,
        }
    }

    /// The client's address, as [`Request::peer_addr`] gave it: for a peer
    /// on a Unix socket, [`Request::UNIX_PEER_ADDR`].
    ///
    /// # Errors
    ///
    /// None since the address is the one known at accept; the `Result`
    /// stays for the callers written when it asked the socket.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer.addr())
    }

    /// The peer process's credentials on a Unix socket, as
    /// [`Request::peer_credentials`] gave them; `None` over TCP.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.peer.credentials()
    }

    /// The bytes received after the upgrade request and not read yet.
    pub fn read_ahead(&self) -> &[u8] {
        &self.read_ahead
    }

    /// The socket, for its options (timeouts, shutdown). Reading from it
    /// directly skips the [`read_ahead`](Upgraded::read_ahead) bytes.
    pub fn get_ref(&self) -> &UpgradedSocket {
        &self.stream
    }

    /// The socket and the bytes received after the upgrade request that
    /// were not read yet: whoever takes them must read those bytes first.
    pub fn into_parts(self) -> (UpgradedSocket, Bytes) {
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

/// The blocking socket under an [`Upgraded`] connection: the kind the
/// server accepted it on.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpgradedSocket {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix stream socket connection.
    Unix(UnixStream),
    /// A TLS session over one of the others: reads and writes are its
    /// plaintext; the options and `shutdown` are the socket's.
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsSocket>),
}

/// One call on whichever plain socket it is (a TLS session's own for the
/// options; `$tls` for the TLS session's data calls).
macro_rules! on_socket {
    ($socket:expr, $s:ident => $call:expr) => {
        on_socket!($socket, $s => $call, tls t => on_socket!(@plain t.socket_ref(), $s => $call))
    };
    (@plain $socket:expr, $s:ident => $call:expr) => {
        match $socket {
            UpgradedSocket::Tcp($s) => $call,
            UpgradedSocket::Unix($s) => $call,
            #[cfg(feature = "tls")]
            UpgradedSocket::Tls(_) => unreachable!("TLS over TLS is never made"),
        }
    };
    ($socket:expr, $s:ident => $call:expr, tls $t:ident => $tls:expr) => {
        match $socket {
            UpgradedSocket::Tcp($s) => $call,
            UpgradedSocket::Unix($s) => $call,
            #[cfg(feature = "tls")]
            UpgradedSocket::Tls($t) => $tls,
        }
    };
}

impl UpgradedSocket {
    /// Sets the read timeout (`None`: reads block for ever).
    ///
    /// # Errors
    ///
    /// As [`TcpStream::set_read_timeout`] (a zero duration is refused).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        on_socket!(self, s => s.set_read_timeout(timeout))
    }

    /// Sets the write timeout (`None`: writes block for ever).
    ///
    /// # Errors
    ///
    /// As [`TcpStream::set_write_timeout`] (a zero duration is refused).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        on_socket!(self, s => s.set_write_timeout(timeout))
    }

    /// Shuts down the read half, the write half or both.
    ///
    /// # Errors
    ///
    /// As [`TcpStream::shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        on_socket!(self, s => s.shutdown(how))
    }
}

impl Read for UpgradedSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        on_socket!(self, s => s.read(buf), tls t => t.read(buf))
    }
}

impl Write for UpgradedSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        on_socket!(self, s => s.write(buf), tls t => t.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        on_socket!(self, s => s.write_vectored(bufs), tls t => t.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        on_socket!(self, s => s.flush(), tls t => t.flush())
    }
}

impl AsFd for UpgradedSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        on_socket!(self, s => s.as_fd())
    }
}

impl AsRawFd for UpgradedSocket {
    fn as_raw_fd(&self) -> RawFd {
        on_socket!(self, s => s.as_raw_fd())
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

#[cfg(test)]
mod tests {
    use crate::middleware::Flow;
    use crate::testing::MemoryConn;
    use crate::{Handler, Request, Response, StatusCode, UpgradeError};
    use std::sync::{Arc, Mutex};

    const ASK: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c, WebSocket\r\n\r\n";

    /// Switches to `websocket`, or answers 426 with the error's name.
    fn switch(_: &Request<'_>, res: &mut Response<'_>) {
        if let Err(e) = res.upgrade("websocket", |_| {}) {
            res.status(StatusCode::UPGRADE_REQUIRED)
                .body(format!("{e:?}").as_bytes());
        }
    }

    #[test]
    fn the_request_helpers_read_the_offer() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let mut conn = MemoryConn::new(move |req: &Request<'_>, res: &mut Response<'_>| {
            let protocols: Vec<String> = req.upgrade_protocols().map(str::to_owned).collect();
            log.lock().unwrap().push((req.is_upgrade(), protocols));
            res.body(b"");
        });
        conn.send(ASK);
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: \r\n\r\n");
        conn.send(b"GET / HTTP/1.0\r\nConnection: upgrade, keep-alive\r\nUpgrade: a\r\n\r\n");
        let seen = seen.lock().unwrap();
        let offered = vec!["h2c".to_owned(), "WebSocket".to_owned()];
        assert_eq!(seen[0], (true, offered));
        assert_eq!(seen[1], (false, vec![]), "no connection option");
        assert_eq!(seen[2], (false, vec![]), "an empty Upgrade");
        assert_eq!(seen[3], (false, vec![]), "HTTP/1.0");
    }

    #[test]
    fn bytes_after_the_request_wait_for_take_upgrade_however_they_come() {
        let mut conn = MemoryConn::new(switch);
        let more: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        conn.send(&[ASK, b"first", &more].concat());
        let reply = String::from_utf8(conn.recv()).unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{reply}"
        );
        assert!(reply.contains("\r\nUpgrade: websocket\r\n"), "{reply}");
        assert!(conn.is_closed(), "no more HTTP");
        assert_eq!(
            conn.take_upgrade().unwrap(),
            [&b"first"[..], &more].concat()
        );
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(conn.recv().is_empty(), "never answered as HTTP");
        assert_eq!(
            &conn.take_upgrade().unwrap()[..],
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        assert_eq!(conn.stats().requests, 1);
    }

    #[test]
    fn the_verdict_does_not_depend_on_where_the_bytes_were_split() {
        // A fixed `Date`, so that a second passing changes no byte.
        fn dated(req: &Request<'_>, res: &mut Response<'_>) {
            res.header("Date", "then");
            switch(req, res);
        }
        let wire = [ASK, b"GET / HTTP/1.1\r\n\r\nrest"].concat();
        let mut whole = MemoryConn::new(dated);
        whole.send(&wire);
        let (reply, read_ahead) = (whole.recv(), whole.take_upgrade().unwrap());
        for at in 0..=wire.len() {
            let mut conn = MemoryConn::new(dated);
            conn.send(&wire[..at]);
            conn.send(&wire[at..]);
            assert_eq!(conn.recv(), reply, "split at {at}");
            assert_eq!(conn.take_upgrade().unwrap(), read_ahead, "split at {at}");
        }
    }

    #[test]
    fn earlier_pipelined_requests_are_answered_first() {
        let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
            match req.header("upgrade") {
                Some(_) => switch(req, res),
                None => res.body(b"plain"),
            }
        });
        let plain = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        conn.send(&[&plain[..], plain, ASK, b"tail"].concat());
        let replies = conn.responses().unwrap();
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200, 101]);
        assert_eq!(&conn.take_upgrade().unwrap()[..], b"tail");
    }

    #[test]
    fn a_refusal_writes_nothing_and_keeps_the_connection() {
        let mut conn = MemoryConn::new(switch);
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n");
        let replies = conn.responses().unwrap();
        assert_eq!(replies[0].status, 426);
        assert_eq!(replies[0].text(), format!("{:?}", UpgradeError::NotOffered));
        assert!(!conn.is_closed() && conn.take_upgrade().is_none());
    }

    #[test]
    fn a_head_time_hook_cannot_upgrade() {
        struct EarlySwitch;
        impl Handler for EarlySwitch {
            fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
                switch(req, res);
                Flow::Stop
            }
            fn handle(&self, _: &Request<'_>, _: &mut Response<'_>) {}
        }
        let mut conn = MemoryConn::new(EarlySwitch);
        conn.send(ASK);
        let replies = conn.responses().unwrap();
        assert_eq!(
            replies[0].text(),
            format!("{:?}", UpgradeError::Unavailable)
        );
        assert!(conn.take_upgrade().is_none());
    }

    #[test]
    fn an_upgrade_after_the_body_began_is_a_contained_panic() {
        let mut conn = MemoryConn::new(|_: &Request<'_>, res: &mut Response<'_>| {
            res.write(b"half a body");
            let _ = res.upgrade("websocket", |_| {});
        });
        conn.send(ASK);
        let replies = conn.responses().unwrap();
        assert_eq!(replies[0].status, 500);
        assert!(conn.is_closed() && conn.take_upgrade().is_none());
    }
}

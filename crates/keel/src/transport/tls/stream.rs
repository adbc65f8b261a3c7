//! A TLS connection as the worker drives it: rustls's `ServerConnection`
//! (sans-IO) over a non-blocking socket. Ciphertext is read from the
//! socket into rustls, which decrypts it; the plaintext is copied into the
//! connection's pooled read buffer, where the parser reads it in place as
//! it would a plain socket's bytes. Plaintext written is encrypted into
//! rustls's send queue and pushed to the socket; what the socket does not
//! take at once stays queued there ([`TlsStream::has_unsent`]) and goes
//! first on the next write.
//!
//! Allocation: rustls keeps each received record's plaintext, and each
//! record it makes to send, in a `Vec` of its own: a request and its
//! answer cost about one allocation per record each way (held by
//! `tests/tls_alloc.rs`). Idle, a connection holds the rustls session
//! (keys, a 4 KiB receive buffer rustls shrinks to when empty, and empty
//! queues) and no keel buffer.

use crate::tls::{TlsInfo, TlsVersion};
use crate::transport::Stream;
use bytes::BytesMut;
use rustls::ServerConnection;
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::FileExt;

/// Most ciphertext rustls may queue for a slow socket before a write
/// takes no more plaintext: one write's worth of records; the connection's
/// own output queue holds the rest (and its backpressure applies).
const MAX_QUEUED_CIPHERTEXT: usize = 64 * 1024;

/// Most plaintext of a file read and encrypted per call: four records.
const FILE_CHUNK: usize = 64 * 1024;

/// The answer to a plaintext HTTP request on a TLS port (as nginx's
/// "plain HTTP request was sent to HTTPS port"), written in the clear.
const PLAINTEXT_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 52\r\n\
Connection: close\r\n\
\r\n\
This port speaks HTTPS: use an https:// URL instead.\n";

/// The socket as rustls reads it, noting whether a read returned less
/// than it asked for: the kernel's queue is then empty.
struct ShortReads<'a> {
    socket: &'a mut Stream,
    short: bool,
}

impl Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

/// A TLS session over a plain (TCP or Unix) socket.
pub(crate) struct TlsStream {
    socket: Stream,
    session: ServerConnection,
    /// Nothing has been read from the socket yet: its first byte tells a
    /// ClientHello from a plaintext request.
    first_read: bool,
    /// The handshake finished and [`TlsStream::established`] has not
    /// reported it yet.
    newly_established: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("socket", &self.socket)
            .field("handshaking", &self.session.is_handshaking())
            .finish()
    }
}

/// Why a TLS connection ended before (or instead of) its handshake: the
/// error the worker sees from a read.
fn refused(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl TlsStream {
    pub(crate) fn new(socket: Stream, mut session: ServerConnection) -> TlsStream {
        session.set_buffer_limit(Some(MAX_QUEUED_CIPHERTEXT));
        TlsStream {
            socket,
            session,
            first_read: true,
            newly_established: false,
        }
    }

    pub(crate) fn socket(&self) -> &Stream {
        &self.socket
    }

    pub(crate) fn socket_mut(&mut self) -> &mut Stream {
        &mut self.socket
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Ciphertext waits in rustls for the socket to take it.
    pub(crate) fn has_unsent(&self) -> bool {
        self.session.wants_write()
    }

    /// Once, when the handshake has finished: what it agreed.
    pub(crate) fn established(&mut self) -> Option<TlsInfo> {
        if !std::mem::take(&mut self.newly_established) {
            return None;
        }
        let session = &self.session;
        Some(TlsInfo {
            server_name: session.server_name().map(Box::from),
            version: match session.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
                _ => TlsVersion::Tls13,
            },
            cipher_suite: session
                .negotiated_cipher_suite()
                .and_then(|suite| suite.suite().as_str())
                .unwrap_or("unknown"),
            resumed: session.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        })
    }

    /// Reads plaintext into `buf`'s spare room: what rustls holds first,
    /// then records from the socket until the room is full or the socket
    /// would block. `Ok(0)`: the peer closed (with `close_notify` or not:
    /// HTTP's own framing tells a cut request). `WouldBlock`: no plaintext
    /// yet (a handshake in progress reads and answers its messages here).
    pub(crate) fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let room = buf.capacity() - buf.len();
        let mut n = 0;
        // The last read took less than it asked for: the socket held no
        // more (as a plain read's short count tells the worker), so what
        // was decrypted is handed over without the read that would say so.
        let mut emptied = false;
        // The socket has nothing more for now: the plaintext taken, or
        // `WouldBlock` when there is none.
        let so_far = |n: usize| match n {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        };
        loop {
            match self.take_plaintext(buf, room - n) {
                Ok(taken) => n += taken,
                // The peer is done: what came before its end first.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(n),
                Err(e) => return Err(e),
            }
            if n == room {
                return Ok(n);
            }
            if emptied {
                return so_far(n);
            }
            if self.first_read {
                self.refuse_plaintext()?;
            }
            let mut socket = ShortReads {
                socket: &mut self.socket,
                short: false,
            };
            match self.session.read_tls(&mut socket) {
                // The end of the stream: what was decrypted is handed over
                // first, then the end.
                Ok(0) => return Ok(n),
                Ok(_) => {
                    emptied = socket.short;
                    self.process()?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return so_far(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves up to `most` bytes of decrypted plaintext into `buf`.
    /// `UnexpectedEof`: the peer is gone (a `close_notify`, or the
    /// socket's end) and nothing is left.
    fn take_plaintext(&mut self, buf: &mut BytesMut, most: usize) -> io::Result<usize> {
        let mut taken = 0;
        while taken < most {
            let mut reader = self.session.reader();
            match reader.fill_buf() {
                Ok([]) => {
                    return if taken > 0 {
                        Ok(taken)
                    } else {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    };
                }
                Ok(chunk) => {
                    let take = chunk.len().min(most - taken);
                    buf.extend_from_slice(&chunk[..take]);
                    reader.consume(take);
                    taken += take;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && taken > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(taken)
    }

    /// Processes the records read: decrypts, runs the handshake, and sends
    /// what it answers (handshake messages, or the alert of a failure).
    fn process(&mut self) -> io::Result<()> {
        let was_handshaking = self.session.is_handshaking();
        let result = self.session.process_new_packets();
        // An alert for a failure is queued by now: out it goes before the
        // close. A full socket leaves the rest for the next write.
        match self.send_queued() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if let Err(e) = result {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        if was_handshaking && !self.session.is_handshaking() {
            self.newly_established = true;
        }
        Ok(())
    }

    /// A plaintext HTTP request instead of a ClientHello (its first byte an
    /// upper-case letter, as every method a client sends; a TLS record
    /// starts with a content type of 20 to 24, an old SSLv2 hello with 0x80): answered in the clear with a 400, after
    /// taking what it sent (so the close is a FIN, not a reset that could
    /// destroy the answer), and refused.
    fn refuse_plaintext(&mut self) -> io::Result<()> {
        match self.socket.peek_byte() {
            Ok(Some(first)) if first.is_ascii_uppercase() => self.first_read = false,
            // Nothing yet (a connection accepted before it spoke): ask
            // again when its first bytes come.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            _ => {
                self.first_read = false;
                return Ok(());
            }
        }
        let mut scratch = [0u8; 4096];
        for _ in 0..16 {
            match self.socket.read(&mut scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Best effort: the refusal fits any socket buffer.
        let _ = self.socket.write(PLAINTEXT_REFUSAL);
        let _ = self.socket.shutdown(Shutdown::Write);
        Err(refused("a plaintext HTTP request on a TLS port"))
    }

    /// Pushes queued ciphertext to the socket until none is left:
    /// `WouldBlock` when the socket is full first.
    pub(crate) fn send_queued(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Encrypts as much of `bufs` as rustls takes (after the ciphertext
    /// queued before has gone), and pushes it to the socket. Returns the
    /// plaintext bytes taken; their ciphertext may still be queued
    /// ([`TlsStream::has_unsent`]). `WouldBlock` when the socket is full
    /// with ciphertext from before.
    pub(crate) fn write_plaintext(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.send_queued()?;
        let mut taken = 0;
        // One slice at a time: rustls's vectored write collects the slices
        // into a Vec of its own, an allocation per call.
        for slice in bufs {
            let n = self.session.writer().write(slice)?;
            taken += n;
            if n < slice.len() {
                break;
            }
        }
        match self.send_queued() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(taken)
    }

    /// Sends up to `len` bytes of `file` from `offset`: read (the page
    /// cache, or the disk) and encrypted, as sendfile cannot encrypt.
    /// `Ok(0)` when the file ends before (it was cut short).
    pub(crate) fn send_file(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        self.send_queued()?;
        let mut chunk = [0u8; FILE_CHUNK];
        let want = len.min(FILE_CHUNK);
        let read = loop {
            match file.read_at(&mut chunk[..want], offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if read == 0 {
            return Ok(0);
        }
        self.write_plaintext(&[IoSlice::new(&chunk[..read])])
    }

    /// Queues `close_notify` and sends what the socket takes now: the peer
    /// learns the end was meant (not a cut), as TLS asks.
    pub(crate) fn close_notify(&mut self) {
        self.session.send_close_notify();
        let _ = self.send_queued();
    }

    /// Plaintext into `buf` (a scratch slice: a closing connection reads
    /// and drops what its peer still sends).
    pub(crate) fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.session.read_tls(&mut self.socket) {
                Ok(0) => return Ok(0),
                Ok(_) => self.process()?,
                Err(e) => return Err(e),
            }
        }
    }
}

impl TlsStream {
    /// The session and its socket, for a blocking owner (an upgraded
    /// connection): the plaintext the session holds and its queued
    /// ciphertext go with it.
    pub(crate) fn into_parts(self) -> (Stream, ServerConnection) {
        (self.socket, self.session)
    }
}

/// An upgraded TLS connection, blocking: rustls's session over the plain
/// socket ([`UpgradedSocket::Tls`](crate::UpgradedSocket::Tls)). Reads and
/// writes are plaintext; each write is sent before it returns.
pub struct TlsSocket {
    stream: rustls::StreamOwned<ServerConnection, crate::UpgradedSocket>,
}

impl std::fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSocket")
            .field("socket", &self.stream.sock)
            .finish_non_exhaustive()
    }
}

impl TlsSocket {
    pub(crate) fn new(session: ServerConnection, socket: crate::UpgradedSocket) -> TlsSocket {
        TlsSocket {
            stream: rustls::StreamOwned::new(session, socket),
        }
    }

    /// The plain socket under the session, for its options. Reading or
    /// writing it directly would break the session.
    pub fn socket_ref(&self) -> &crate::UpgradedSocket {
        &self.stream.sock
    }
}

impl Read for TlsSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stream.read(buf) {
            // A peer that closes without close_notify has ended the
            // stream as far as an upgraded protocol's framing can tell.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

impl Write for TlsSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.stream.flush()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

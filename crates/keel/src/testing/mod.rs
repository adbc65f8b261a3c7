//! Drive keel without sockets: the same connection state machine a worker
//! runs, fed from byte slices. For unit tests of handlers, benchmarks and
//! fuzzing.

mod counting;

pub use counting::{allocations, allocations_after_warm_up, CountingAllocator};

use crate::deferred::Message;
use crate::http1::conn::{Conn, Phase, Services, Waiting};
use crate::http1::output::Front;
use crate::peer::{Peer, PeerCredentials};
use crate::server::stats::WorkerCounters;
use crate::{Config, Handler, Server, ServerHandle, Stats};
use bytes::{Bytes, BytesMut};
use crossbeam_channel::Receiver;
use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One connection, in memory. Bytes given to [`send`](MemoryConn::send) are
/// parsed and answered exactly as if read from a socket; the response bytes
/// collect until [`recv`](MemoryConn::recv).
///
/// ```
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
///
/// let mut conn = MemoryConn::new(|_req: &Request<'_>, res: &mut Response<'_>| {
///     res.body(b"hi");
/// });
/// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(reply.ends_with("\r\n\r\nhi"));
/// ```
pub struct MemoryConn<H> {
    conn: Conn,
    services: Services<H>,
    received: Vec<u8>,
    /// Bytes sent by the peer and not read yet: the connection reads only
    /// while it wants input, as a worker does.
    unread: Vec<u8>,
    completions: Receiver<Message>,
    /// Once the connection switched protocols: what the peer sent after
    /// its upgrade request, not taken yet (see [`MemoryConn::take_upgrade`]).
    upgraded: Option<BytesMut>,
}

impl<H: Handler> MemoryConn<H> {
    /// A connection with the default [`Config`].
    pub fn new(handler: H) -> Self {
        Self::with_config(handler, Config::default())
    }

    /// A connection with the given limits. Deadlines do not run by
    /// themselves; call [`MemoryConn::expire_deadline`].
    pub fn with_config(handler: H, config: Config) -> Self {
        let (completions_tx, completions) = crossbeam_channel::unbounded();
        let services = Services::new(
            handler,
            Arc::new(config),
            Arc::new(WorkerCounters::default()),
            Arc::new(AtomicBool::new(false)),
            completions_tx,
            None,
            false,
        );
        MemoryConn {
            conn: Conn::new(Peer::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, 40000)))),
            services,
            received: Vec::new(),
            unread: Vec::new(),
            completions,
            upgraded: None,
        }
    }

    /// The same connection, as if its peer were a process on a Unix socket
    /// with these credentials ([`Request::peer_credentials`](crate::Request::peer_credentials));
    /// the default peer is `127.0.0.1:40000` over TCP. Call it before
    /// sending anything.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{PeerCredentials, Request, Response};
    ///
    /// let local = PeerCredentials { pid: 7, uid: 1000, gid: 1000 };
    /// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
    ///     let uid = req.peer_credentials().map_or(u32::MAX, |c| c.uid);
    ///     res.body(format!("{} {uid}", req.peer_addr()).as_bytes());
    /// })
    /// .with_peer_credentials(local);
    /// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\n0.0.0.0:0 1000"));
    /// ```
    pub fn with_peer_credentials(mut self, credentials: PeerCredentials) -> Self {
        self.conn = Conn::new(Peer::Unix(credentials));
        self
    }

    /// Delivers `bytes` as the peer would send them; the connection reads as
    /// much as its buffer takes at a time, answers what is complete, and the
    /// answers are kept for [`recv`](MemoryConn::recv). Bytes sent after the
    /// connection decided to close are ignored, as a socket's would be.
    pub fn send(&mut self, bytes: &[u8]) {
        if let Some(read_ahead) = self.upgraded.as_mut() {
            read_ahead.extend_from_slice(bytes);
            return;
        }
        if !self.unread.is_empty() {
            self.unread.extend_from_slice(bytes);
            self.read_unread();
            return;
        }
        // Nothing waits before these bytes: read them from where they are,
        // as a worker reads from its socket, and keep only what is left.
        let taken = self.read_from(bytes);
        if let Some(read_ahead) = self.upgraded.as_mut() {
            read_ahead.extend_from_slice(&bytes[taken..]);
        } else if self.conn.phase() == Phase::Open {
            self.unread.extend_from_slice(&bytes[taken..]);
        }
    }

    /// Reads what the peer sent earlier and the connection did not take.
    fn read_unread(&mut self) {
        let mut unread = std::mem::take(&mut self.unread);
        let taken = self.read_from(&unread);
        if let Some(read_ahead) = self.upgraded.as_mut() {
            read_ahead.extend_from_slice(&unread[taken..]);
            unread.clear();
        } else if self.conn.phase() != Phase::Open {
            unread.clear(); // a closing connection reads no more
        } else {
            unread.drain(..taken);
        }
        self.unread = unread;
    }

    /// Reads from `input`, one buffer's room at a time, while the
    /// connection wants input (not closing, not waiting on a deferred
    /// answer, not held back by queued output); returns how much it took.
    fn read_from(&mut self, input: &[u8]) -> usize {
        // As a worker reads its clock once per event-loop turn; only for
        // the latency histogram, which no Metrics reads here.
        if self.services.timed {
            self.services.clock = Instant::now();
        }
        let mut taken = 0;
        while taken < input.len() && self.conn.wants_input(&self.services.config) {
            let buf = self.conn.read_buffer(&mut self.services.pool);
            let take = (buf.capacity() - buf.len()).min(input.len() - taken);
            buf.extend_from_slice(&input[taken..taken + take]);
            taken += take;
            self.services.counters.bytes_in.add(take as u64);
            self.conn.process(&mut self.services.env(0));
            self.drain_output();
        }
        taken
    }

    /// The peer closes its sending side.
    pub fn close_input(&mut self) {
        self.conn.on_peer_eof();
    }

    /// Runs what a worker does when this connection's request deadline
    /// passes: `408` while a request is arriving (or none has come yet on a
    /// fresh connection), a quiet close when idle between requests, nothing
    /// while it waits for a deferred answer or is already closing.
    pub fn expire_deadline(&mut self) {
        match self.conn.waiting() {
            Waiting::NextRequest if self.conn.served() > 0 => self.conn.on_peer_eof(),
            Waiting::NextRequest
            | Waiting::Head
            | Waiting::Body
            | Waiting::StreamBody
            | Waiting::Sink => {
                self.conn.on_request_timeout(&mut self.services.env(0));
                self.drain_output();
            }
            // A silent producer: the worker closes the connection.
            Waiting::Stream => self.conn.close_streams(),
            Waiting::Deferred | Waiting::Close => {}
        }
    }

    /// Every response byte written since the last call (deferred responses
    /// included once they have arrived: see [`MemoryConn::settle`]).
    pub fn recv(&mut self) -> Vec<u8> {
        self.take_completions();
        std::mem::take(&mut self.received)
    }

    /// The responses written since the last call, parsed (the last one may
    /// run to a close). Responses to `HEAD` requests are not told apart:
    /// use [`recv`](MemoryConn::recv) and [`parse_response`] for those.
    ///
    /// # Errors
    ///
    /// [`ResponseParseError`] when the bytes are not whole responses.
    pub fn responses(&mut self) -> Result<Vec<TestResponse>, ResponseParseError> {
        parse_responses(&self.recv())
    }

    /// Appends the response bytes written since the last call to `out`;
    /// allocates only if `out` must grow.
    pub fn recv_into(&mut self, out: &mut Vec<u8>) {
        self.take_completions();
        out.extend_from_slice(&self.received);
        self.received.clear();
    }

    /// Waits until no deferred or streamed response is outstanding and no
    /// body sink is paused (answering any requests that waited behind
    /// them), or `timeout` passes. Returns whether everything was answered.
    pub fn settle(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.take_completions();
            if !matches!(
                self.conn.waiting(),
                Waiting::Deferred | Waiting::Stream | Waiting::Sink
            ) {
                return true;
            }
            match self.completions.recv_deadline(deadline) {
                Ok(message) => self.handle(message),
                Err(_) => return false,
            }
        }
    }

    /// Runs what happens when the deferred-response deadline passes.
    pub fn expire_deferred(&mut self) {
        if self.conn.waiting() == Waiting::Deferred {
            self.conn.on_deferred_timeout(&mut self.services.env(0));
            self.drain_output();
        }
    }

    fn take_completions(&mut self) {
        while let Ok(message) = self.completions.try_recv() {
            self.handle(message);
        }
    }

    /// What a worker does with a message from another thread.
    fn handle(&mut self, message: Message) {
        let mine = match message {
            Message::Answer(done) => self.conn.complete_deferred(done, &mut self.services.env(0)),
            Message::Resume { ticket, .. } => self.conn.resume(ticket),
            Message::Stream { ticket, .. } => self.conn.streams_out(ticket),
            // A memory connection reads files as they are; it never waits
            // for the disk.
            Message::DiskRead { ticket, .. } => self.conn.output.disk_read(ticket),
        };
        if mine {
            self.drain_output();
            self.read_unread();
        }
    }

    /// Once a handler switched protocols with
    /// [`Response::upgrade`](crate::Response::upgrade) and its `101` was
    /// received: the bytes the peer sent after the upgrade request (in the
    /// same `send` or later ones) and not taken yet; `None` without an
    /// upgrade. There is no socket here, so the upgrade callback is never
    /// called: test it over a [`TestServer`]. The connection no longer
    /// speaks HTTP: [`is_closed`](MemoryConn::is_closed) says so.
    pub fn take_upgrade(&mut self) -> Option<Bytes> {
        self.upgraded.as_mut().map(|bytes| bytes.split().freeze())
    }

    /// Whether the connection has decided to close (after its last response).
    pub fn is_closed(&self) -> bool {
        self.conn.phase() == Phase::Closing
    }

    /// Whether the connection holds neither of its pooled buffers, as an idle
    /// connection should.
    pub fn holds_no_buffer(&self) -> bool {
        self.conn.holds_no_buffer()
    }

    /// This connection's counters.
    pub fn stats(&self) -> Stats {
        self.services.counters.snapshot()
    }

    /// Moves written output to `received`, as a peer reading everything
    /// would; then answers requests that were held back by the output limit,
    /// until none is (a loop: a long pipeline must not grow the stack).
    fn drain_output(&mut self) {
        loop {
            self.conn.pull_stream(&mut self.services.env(0));
            // As a worker's flush: slices only while something is pending.
            while self.conn.output.pending() > 0 {
                let n = {
                    let mut iov = [IoSlice::new(&[]); 16];
                    match self.conn.output.front(&mut iov) {
                        Front::Memory(count) => iov[..count].iter().fold(0, |n, slice| {
                            self.received.extend_from_slice(slice);
                            n + slice.len()
                        }),
                        // As `sendfile` would: what the file holds now (a
                        // file cut short ends the answer there).
                        Front::File { file, offset, len } => {
                            let at = self.received.len();
                            self.received.resize(at + len, 0);
                            let read = read_file_at(file, &mut self.received[at..], offset);
                            self.received.truncate(at + read);
                            read
                        }
                    }
                };
                if n == 0 {
                    break;
                }
                self.services.counters.bytes_out.add(n as u64);
                self.conn.output.advance(n);
            }
            self.conn.release_buffers(&mut self.services.pool);
            if let Some((_, read_ahead)) = self.conn.take_upgrade(&mut self.services.pool) {
                self.upgraded = Some(BytesMut::from(&read_ahead[..]));
            }
            if self.conn.pull_stream(&mut self.services.env(0)) {
                continue; // a streamed response had more, or ended
            }
            if !(self.conn.held_back() && self.conn.wants_input(&self.services.config)) {
                return;
            }
            self.conn.process(&mut self.services.env(0));
        }
    }
}

/// A real server on `127.0.0.1` with an ephemeral port, for integration
/// tests over sockets; shut down (with no grace) when dropped.
///
/// ```
/// use keel::testing::TestServer;
/// use keel::{Request, Response};
/// use std::io::{Read, Write};
///
/// let server = TestServer::start(|_req: &Request<'_>, res: &mut Response<'_>| res.body(b"hi"));
/// let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
/// stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut reply = Vec::new();
/// stream.read_to_end(&mut reply).unwrap();
/// let responses = keel::testing::parse_responses(&reply).unwrap();
/// assert_eq!(responses[0].status, 200);
/// assert_eq!(responses[0].body, b"hi");
/// ```
#[derive(Debug)]
pub struct TestServer {
    handle: ServerHandle,
}

impl TestServer {
    /// One worker with the default [`Config`].
    ///
    /// # Panics
    ///
    /// When the server cannot start (no loopback, no threads).
    pub fn start(handler: impl Handler) -> TestServer {
        TestServer::with_config(handler, Config::default(), 1)
    }

    /// `workers` workers with `config`.
    ///
    /// # Panics
    ///
    /// When the server cannot start.
    pub fn with_config(handler: impl Handler, config: Config, workers: usize) -> TestServer {
        let handle = Server::bind("127.0.0.1:0")
            .workers(workers)
            .config(config)
            .serve(handler)
            .expect("test server starts on 127.0.0.1");
        TestServer { handle }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// The running server's handle (stats, shutdown).
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown(Duration::ZERO);
        self.handle.join();
    }
}

/// One response as a client sees it, parsed by [`parse_responses`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResponse {
    /// The status code.
    pub status: u16,
    /// Header fields in order, as (name, value).
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the response says `Connection: close`.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Why bytes did not parse as responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseParseError {
    /// The bytes end inside a response.
    Incomplete,
    /// The bytes are not an HTTP/1.1 response (the text says where).
    Invalid(String),
}

/// Parses one response from the start of `bytes`: returns it and how many
/// bytes it took. `head_request`: the request was `HEAD` (no body follows);
/// `until_close`: a response without length runs to the end of `bytes`.
///
/// # Errors
///
/// [`ResponseParseError`] when the bytes are incomplete or not a response.
pub fn parse_response(
    bytes: &[u8],
    head_request: bool,
    until_close: bool,
) -> Result<(TestResponse, usize), ResponseParseError> {
    let invalid = |what: &str| ResponseParseError::Invalid(what.to_owned());
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(ResponseParseError::Incomplete),
        Err(e) => return Err(invalid(&format!("bad response head: {e}"))),
    };
    let status = parsed.code.unwrap_or_default();
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let response = TestResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &bytes[head_len..];
    if head_request || status < 200 || status == 204 || status == 304 {
        return Ok((response, head_len));
    }
    let (body, used) = if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().map_err(|_| invalid("bad Content-Length"))?;
        let body = rest.get(..length).ok_or(ResponseParseError::Incomplete)?;
        (body.to_vec(), length)
    } else if response
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        decode_chunked(rest)?
    } else if until_close {
        (rest.to_vec(), rest.len())
    } else {
        return Err(invalid(
            "a response without Content-Length or chunked framing",
        ));
    };
    Ok((TestResponse { body, ..response }, head_len + used))
}

/// Parses `bytes` as whole responses back to back (interim `1xx` responses
/// included); the last may run to the end of the bytes without a length.
///
/// # Errors
///
/// [`ResponseParseError`] when the bytes end inside a response or are not responses.
pub fn parse_responses(mut bytes: &[u8]) -> Result<Vec<TestResponse>, ResponseParseError> {
    let mut responses = Vec::new();
    while !bytes.is_empty() {
        let (response, used) = parse_response(bytes, false, true)?;
        responses.push(response);
        bytes = &bytes[used..];
    }
    Ok(responses)
}

fn decode_chunked(mut rest: &[u8]) -> Result<(Vec<u8>, usize), ResponseParseError> {
    let invalid = |what: &str| ResponseParseError::Invalid(what.to_owned());
    let total = rest.len();
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(ResponseParseError::Incomplete)?;
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| invalid("bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return match rest.get(..2) {
                Some(b"\r\n") => Ok((body, total - rest.len() + 2)),
                Some(_) => Err(invalid("trailers or junk after the last chunk")),
                None => Err(ResponseParseError::Incomplete),
            };
        }
        let chunk = rest.get(..size + 2).ok_or(ResponseParseError::Incomplete)?;
        if &chunk[size..] != b"\r\n" {
            return Err(invalid("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&chunk[..size]);
        rest = &rest[size + 2..];
    }
}

/// Reads what `file` holds from `offset` into `buf`, up to its end; returns
/// the bytes read.
fn read_file_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> usize {
    use std::os::unix::fs::FileExt;
    let mut read = 0;
    while read < buf.len() {
        match file.read_at(&mut buf[read..], offset + read as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    read
}

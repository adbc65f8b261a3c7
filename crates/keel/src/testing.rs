//! Drive keel without sockets: the same connection state machine a worker
//! runs, fed from byte slices. For unit tests of handlers, benchmarks and
//! fuzzing.

use crate::conn::{Conn, Phase, Services, Waiting};
use crate::deferred::Completion;
use crate::stats::WorkerCounters;
use crate::{Config, Handler, Stats};
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
    completions: Receiver<Completion>,
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
        );
        MemoryConn {
            conn: Conn::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 40000))),
            services,
            received: Vec::new(),
            completions,
        }
    }

    /// Delivers `bytes` as the peer would send them; the connection reads as
    /// much as its buffer takes at a time, answers what is complete, and the
    /// answers are kept for [`recv`](MemoryConn::recv). Bytes sent after the
    /// connection decided to close are ignored, as a socket's would be.
    pub fn send(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.conn.phase() == Phase::Open {
            let buf = self.conn.read_buffer(&mut self.services.pool);
            let take = (buf.capacity() - buf.len()).min(bytes.len());
            buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.services.counters.bytes_in.add(take as u64);
            self.conn.process(&mut self.services.env(0));
            self.drain_output();
        }
    }

    /// The peer closes its sending side.
    pub fn close_input(&mut self) {
        self.conn.on_peer_eof();
    }

    /// Runs what happens when the request deadline passes: `408` if a request
    /// is in progress or none has come yet.
    pub fn expire_deadline(&mut self) {
        self.conn.on_request_timeout(&mut self.services.env(0));
        self.drain_output();
    }

    /// Every response byte written since the last call (deferred responses
    /// included once they have arrived: see [`MemoryConn::settle`]).
    pub fn recv(&mut self) -> Vec<u8> {
        self.take_completions();
        std::mem::take(&mut self.received)
    }

    /// Appends the response bytes written since the last call to `out`;
    /// allocates only if `out` must grow.
    pub fn recv_into(&mut self, out: &mut Vec<u8>) {
        self.take_completions();
        out.extend_from_slice(&self.received);
        self.received.clear();
    }

    /// Waits until no deferred response is outstanding (answering any
    /// requests that waited behind them), or `timeout` passes. Returns
    /// whether everything was answered.
    pub fn settle(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.take_completions();
            if self.conn.waiting() != Waiting::Deferred {
                return true;
            }
            match self.completions.recv_deadline(deadline) {
                Ok(done) => self.complete(done),
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
        while let Ok(done) = self.completions.try_recv() {
            self.complete(done);
        }
    }

    fn complete(&mut self, done: Completion) {
        let status = done.status;
        if self.conn.complete_deferred(done, &mut self.services.pool) {
            self.services.counters.count_status(status);
            self.drain_output();
        }
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
    /// would; then answers requests that were held back by the output limit.
    fn drain_output(&mut self) {
        loop {
            let n = {
                let mut iov = [IoSlice::new(&[]); 16];
                let count = self.conn.output.slices(&mut iov);
                iov[..count].iter().fold(0, |n, slice| {
                    self.received.extend_from_slice(slice);
                    n + slice.len()
                })
            };
            if n == 0 {
                break;
            }
            self.services.counters.bytes_out.add(n as u64);
            self.conn.output.advance(n);
        }
        self.conn.release_buffers(&mut self.services.pool);
        if self.conn.held_back() {
            self.conn.process(&mut self.services.env(0));
            self.drain_output();
        }
    }
}

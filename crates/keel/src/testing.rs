//! Drive keel without sockets: the same connection state machine a worker
//! runs, fed from byte slices. For unit tests of handlers, benchmarks and
//! fuzzing.

use crate::conn::{Conn, Env, Phase};
use crate::pool::BufferPool;
use crate::stats::WorkerCounters;
use crate::{date, Config, Handler, Stats};
use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicBool;

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
    handler: H,
    config: Config,
    counters: WorkerCounters,
    pool: BufferPool,
    server_line: Vec<u8>,
    received: Vec<u8>,
    draining: AtomicBool,
}

impl<H: Handler> MemoryConn<H> {
    /// A connection with the default [`Config`].
    pub fn new(handler: H) -> Self {
        Self::with_config(handler, Config::default())
    }

    /// A connection with the given limits. Deadlines do not run by
    /// themselves; call [`MemoryConn::expire_deadline`].
    pub fn with_config(handler: H, config: Config) -> Self {
        let server_line = config
            .server_name
            .as_ref()
            .map(|name| format!("Server: {name}\r\n").into_bytes())
            .unwrap_or_default();
        MemoryConn {
            conn: Conn::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 40000))),
            pool: BufferPool::new(config.buffer_size, config.max_pooled_buffer, 4),
            handler,
            config,
            counters: WorkerCounters::default(),
            server_line,
            received: Vec::new(),
            draining: AtomicBool::new(false),
        }
    }

    /// Delivers `bytes` as the peer would send them; the connection reads as
    /// much as its buffer takes at a time, answers what is complete, and the
    /// answers are kept for [`recv`](MemoryConn::recv). Bytes sent after the
    /// connection decided to close are ignored, as a socket's would be.
    pub fn send(&mut self, mut bytes: &[u8]) {
        date::refresh();
        while !bytes.is_empty() && self.conn.phase() == Phase::Open {
            let buf = self.conn.read_buffer(&mut self.pool);
            let take = (buf.capacity() - buf.len()).min(bytes.len());
            buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.counters.bytes_in.add(take as u64);
            let mut env = Env {
                handler: &self.handler,
                config: &self.config,
                counters: &self.counters,
                pool: &mut self.pool,
                server_line: &self.server_line,
                draining: &self.draining,
            };
            self.conn.process(&mut env);
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
        let mut env = Env {
            handler: &self.handler,
            config: &self.config,
            counters: &self.counters,
            pool: &mut self.pool,
            server_line: &self.server_line,
            draining: &self.draining,
        };
        self.conn.on_request_timeout(&mut env);
        self.drain_output();
    }

    /// Every response byte written since the last call.
    pub fn recv(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.received)
    }

    /// Appends the response bytes written since the last call to `out`;
    /// allocates only if `out` must grow.
    pub fn recv_into(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.received);
        self.received.clear();
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
        self.counters.snapshot()
    }

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
            self.counters.bytes_out.add(n as u64);
            self.conn.output.advance(n);
        }
        self.conn.release_buffers(&mut self.pool);
        if self.conn.phase() == Phase::Open {
            // Output was held back while too much was queued: now it is read.
            let mut env = Env {
                handler: &self.handler,
                config: &self.config,
                counters: &self.counters,
                pool: &mut self.pool,
                server_line: &self.server_line,
                draining: &self.draining,
            };
            self.conn.process(&mut env);
            if self.conn.output.pending() > 0 {
                self.drain_output();
            }
        }
    }
}

//! The connection state machine, without sockets: bytes in, responses out.
//!
//! The worker reads from a socket into [`Conn::read_buffer`], calls
//! [`Conn::process`], and writes [`Conn::output`] back. The in-memory test
//! driver and the fuzz harness do the same with plain byte slices, so every
//! path through here is the one real connections take.

use crate::deferred::{Completion, Deferral, DeferredOutcome, Watch};
use crate::http1::body::{ChunkLimits, ChunkedDecoder};
use crate::http1::budget::{BodyBudget, Reservation};
use crate::http1::dispatch::{admit, dispatch, Admission, Answer};
use crate::http1::output::Output;
use crate::http1::parse::{self, header_slots, BodyLength, Framing};
use crate::server::pool::BufferPool;
use crate::server::stats::WorkerCounters;
use crate::upgrade::OnUpgrade;
use crate::{Config, Handler, ProtocolError, Response, StatusCode};
use bytes::{Bytes, BytesMut};
use crossbeam_channel::Sender;
use mio::Waker;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Free space a read wants in the input buffer before it grows.
const MIN_READ_ROOM: usize = 2048;

/// What a worker owns once and lends each of its connections: the handler,
/// limits, counters, buffer pool. The in-memory driver owns one too.
pub(crate) struct Services<H> {
    pub(crate) handler: H,
    pub(crate) config: Arc<Config>,
    pub(crate) counters: Arc<WorkerCounters>,
    pub(crate) pool: BufferPool,
    /// `Server: ...\r\n`, or empty.
    server_line: Vec<u8>,
    draining: Arc<AtomicBool>,
    deferral: Deferral,
    /// Body bytes in flight on this worker, against `max_body_in_flight`.
    budget: BodyBudget,
    /// The worker's latest clock reading: set once per event-loop turn, and
    /// after each answered request. See [`Env::answered`].
    pub(crate) clock: Instant,
    /// Whether request latencies are recorded: only when a
    /// [`crate::Metrics`] is wired, the histogram's one reader.
    pub(crate) timed: bool,
}

impl<H> Services<H> {
    pub(crate) fn new(
        handler: H,
        config: Arc<Config>,
        counters: Arc<WorkerCounters>,
        draining: Arc<AtomicBool>,
        completions: Sender<Completion>,
        waker: Option<Arc<Waker>>,
        timed: bool,
    ) -> Self {
        let server_line = config
            .server_name
            .as_ref()
            .map(|name| format!("Server: {name}\r\n").into_bytes())
            .unwrap_or_default();
        let pool = BufferPool::new(
            config.buffer_size,
            config.max_pooled_buffer,
            config.max_pooled_buffers,
        );
        let deferral = Deferral::new(completions, waker, &server_line);
        let budget = BodyBudget::new(config.max_body_in_flight);
        Services {
            handler,
            config,
            counters,
            pool,
            server_line,
            draining,
            deferral,
            budget,
            clock: Instant::now(),
            timed,
        }
    }

    /// Borrows everything connection `key` needs to process requests.
    pub(crate) fn env(&mut self, key: usize) -> Env<'_, H> {
        Env {
            handler: &self.handler,
            config: &self.config,
            counters: &self.counters,
            pool: &mut self.pool,
            server_line: &self.server_line,
            draining: &self.draining,
            deferral: &self.deferral,
            budget: &self.budget,
            clock: &mut self.clock,
            timed: self.timed,
            key,
        }
    }
}

/// [`Services`], borrowed for one connection's turn.
pub(crate) struct Env<'a, H: ?Sized> {
    pub(crate) handler: &'a H,
    pub(crate) config: &'a Config,
    pub(crate) counters: &'a WorkerCounters,
    pub(crate) pool: &'a mut BufferPool,
    /// `Server: ...\r\n`, or empty.
    pub(crate) server_line: &'a [u8],
    /// Set when the server starts shutting down: requests in progress are
    /// answered with `Connection: close` and no more are taken. Read after
    /// the handler returns, so a handler that was busy when shutdown began
    /// still closes.
    pub(crate) draining: &'a AtomicBool,
    pub(crate) deferral: &'a Deferral,
    /// See [`Services::budget`].
    pub(crate) budget: &'a BodyBudget,
    /// See [`Services::clock`].
    pub(crate) clock: &'a mut Instant,
    /// See [`Services::timed`].
    pub(crate) timed: bool,
    /// The connection's slab key, which a deferred answer is addressed to.
    pub(crate) key: usize,
}

impl<H: ?Sized> Env<'_, H> {
    /// Records the latency of a request whose response was just queued, and
    /// dispatched at `started`; one clock read, which becomes the start of
    /// the next request this worker dispatches before its loop turns again.
    ///
    /// The start is the worker's latest clock reading rather than a fresh
    /// one, so there is one clock read per request (about 35 ns with a TSC
    /// clock source); a latency then always covers the whole handler, and
    /// may also cover the read and parse of its request (and the write of
    /// the previous connection's responses in the same loop turn). Coarse
    /// at both ends would cost nothing, but read zero for every answer
    /// given within one loop turn. Without metrics wired nothing reads the
    /// histogram, and this does nothing.
    #[inline]
    pub(crate) fn answered(&mut self, started: Instant) {
        if !self.timed {
            return;
        }
        let now = Instant::now();
        self.counters
            .latency
            .observe(now.saturating_duration_since(started));
        *self.clock = now;
    }
}

/// Whether requests are still being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading and answering requests.
    Open,
    /// The last response is queued: flush it, then close. Input is ignored.
    Closing,
}

/// What the connection waits for, which decides its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// Nothing buffered: between requests (or before the first).
    NextRequest,
    /// Part of a request head.
    Head,
    /// The body of a request whose head is in.
    Body,
    /// A deferred response, before anything else.
    Deferred,
    /// Closing after its last response.
    Close,
}

/// A head that was parsed, and admitted, while its body is still arriving.
#[derive(Debug)]
struct AwaitingBody {
    framing: Framing,
    chunked: ChunkedDecoder,
    /// The route's body limit, decided from the head.
    body_limit: usize,
    /// Its share of the worker's body budget, given back when it is dropped.
    reservation: Reservation,
}

/// One HTTP/1.1 connection's protocol state.
pub(crate) struct Conn {
    input: Option<BytesMut>,
    /// Offset of the current request's first byte in `input`.
    start: usize,
    awaiting: Option<AwaitingBody>,
    pub(crate) output: Output,
    phase: Phase,
    peer: SocketAddr,
    /// Requests answered on this connection.
    served: u64,
    /// The connection is closing because of a request the server refused.
    errored: bool,
    /// See [`Conn::held_back`].
    held_back: bool,
    /// The deferred response this connection waits for.
    deferred: Option<Pending>,
    /// Whom the connection goes to once its `101` is written (it is
    /// closing as HTTP meanwhile: nothing more is read as a request).
    upgrade: Option<OnUpgrade>,
}

/// A deferred response still to come.
struct Pending {
    ticket: u64,
    /// The claim shared with its responder and the observers of its end;
    /// dropped with the connection, it abandons the deferral.
    watch: Watch,
    /// It answers a `HEAD` request.
    is_head: bool,
    /// When its request was dispatched, for the latency histogram.
    started: Instant,
    /// Its own deadline, set with [`Response::deferred_timeout`].
    timeout: Option<Duration>,
}

impl Conn {
    pub(crate) fn new(peer: SocketAddr) -> Self {
        Conn {
            input: None,
            start: 0,
            awaiting: None,
            output: Output::default(),
            phase: Phase::Open,
            peer,
            served: 0,
            errored: false,
            held_back: false,
            deferred: None,
            upgrade: None,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether this connection is still reading requests (not closing, and
    /// not held back because the peer is slow to read its responses).
    pub(crate) fn wants_input(&self, config: &Config) -> bool {
        self.phase == Phase::Open
            && self.deferred.is_none()
            && self.output.pending() <= config.max_output_buffered
    }

    pub(crate) fn served(&self) -> u64 {
        self.served
    }

    /// Whether the connection is closing after an error response.
    pub(crate) fn errored(&self) -> bool {
        self.errored
    }

    pub(crate) fn waiting(&self) -> Waiting {
        let buffered = self.input.as_ref().is_some_and(|b| b.len() > self.start);
        if self.deferred.is_some() {
            return Waiting::Deferred;
        }
        match (self.phase, self.awaiting.is_some(), buffered) {
            (Phase::Closing, ..) => Waiting::Close,
            (_, true, _) => Waiting::Body,
            (_, false, true) => Waiting::Head,
            (_, false, false) => Waiting::NextRequest,
        }
    }

    /// How long the deferred answer this connection waits for may take: its
    /// request's own deadline, else `default`.
    pub(crate) fn deferred_timeout(&self, default: Duration) -> Duration {
        self.deferred
            .as_ref()
            .and_then(|p| p.timeout)
            .unwrap_or(default)
    }

    /// Whether the connection holds neither pooled buffer.
    pub(crate) fn holds_no_buffer(&self) -> bool {
        self.input.is_none() && self.output.buf.is_none()
    }

    /// The input buffer with room for the next read, taken from the pool if
    /// the connection holds none; it grows as bytes arrive.
    pub(crate) fn read_buffer(&mut self, pool: &mut BufferPool) -> &mut BytesMut {
        let buf = self.input.get_or_insert_with(|| pool.take());
        let room = buf.capacity() - buf.len();
        let body_rest = match self.awaiting {
            Some(AwaitingBody {
                framing:
                    Framing {
                        body: BodyLength::Fixed(n),
                        head_len,
                        ..
                    },
                ..
            }) => (self.start + head_len + n).saturating_sub(buf.len()),
            _ => 0,
        };
        if room < MIN_READ_ROOM {
            // Grow by doubling, as bytes arrive: a head alone never makes the
            // connection hold its declared body's size. A fixed-length body
            // grows the buffer no further than its end.
            let double = buf.capacity().max(MIN_READ_ROOM);
            let want = if body_rest > 0 {
                double.min(body_rest.max(MIN_READ_ROOM))
            } else {
                double
            };
            buf.reserve(want);
        }
        buf
    }

    /// Parses and answers every complete request in the input buffer, in
    /// order, until one is incomplete, the connection must close, or too much
    /// output is queued.
    pub(crate) fn process<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) {
        self.held_back = false;
        while self.phase == Phase::Open {
            let has_bytes = self.input.as_ref().is_some_and(|b| b.len() > self.start);
            if !has_bytes {
                break;
            }
            if !self.wants_input(env.config) {
                self.held_back = true;
                break;
            }
            if !self.step(env) {
                break;
            }
        }
        self.compact();
        self.release_buffers(env.pool);
    }

    /// Whether the last [`Conn::process`] stopped with bytes still buffered
    /// because too much output was queued: once the peer has read, process
    /// again before reading more.
    pub(crate) fn held_back(&self) -> bool {
        self.held_back
    }

    /// The peer closed its sending side: what is complete has been answered;
    /// an incomplete request never will be.
    pub(crate) fn on_peer_eof(&mut self) {
        self.phase = Phase::Closing;
    }

    /// A deadline passed while waiting for a request: answer `408` and close.
    pub(crate) fn on_request_timeout<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) {
        if self.phase != Phase::Open || self.deferred.is_some() {
            return; // not waiting for a request: its own deadline applies
        }
        let error = match self.awaiting {
            Some(_) => ProtocolError::BodyTimeout,
            None => ProtocolError::HeaderTimeout,
        };
        self.fail(error, env);
        self.release_buffers(env.pool);
    }

    /// A deferred response arrived: queue it in order, if this connection
    /// still waits for it, and count it. Returns whether it was taken.
    pub(crate) fn complete_deferred<H: Handler + ?Sized>(
        &mut self,
        done: Completion,
        env: &mut Env<'_, H>,
    ) -> bool {
        let Some(mut pending) = self.deferred.take_if(|p| p.ticket == done.ticket) else {
            return false;
        };
        if let Some(status) = StatusCode::from_u16(done.status) {
            pending.watch.finish(DeferredOutcome::Answered {
                status,
                body_len: done.body_len,
            });
        }
        self.output.splice(done.bytes, done.large, env.pool);
        if !done.keep_alive {
            self.phase = Phase::Closing;
        }
        env.counters.count_status(done.status);
        env.answered(pending.started);
        true
    }

    /// The deferred response did not come in time: answer `503` and close;
    /// its responder, if it ever answers, is told the answer was not taken.
    /// When the responder claimed the answer first, it is on its way: wait.
    pub(crate) fn on_deferred_timeout<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) {
        if !self.deferred.as_ref().is_some_and(|p| p.watch.abandon()) {
            return;
        }
        let Some(Pending {
            is_head,
            started,
            mut watch,
            ..
        }) = self.deferred.take()
        else {
            return;
        };
        env.counters.timeouts.add(1);
        env.counters.count_status(503);
        env.answered(started);
        let (out, large) = self.output.buf_and_large(env.pool);
        let mut res = Response::new(out, large, false, is_head, false, env.server_line);
        res.status(StatusCode::SERVICE_UNAVAILABLE)
            .header("Retry-After", "1")
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(b"the response was not ready in time\n");
        watch.finish(DeferredOutcome::TimedOut {
            body_len: res.body_len(),
        });
        self.phase = Phase::Closing;
    }

    /// Once the `101` of an upgrade is written: the callback, and the bytes
    /// the client sent after the upgrade request (copied, so the buffer
    /// goes back to the pool). `None` before, or without an upgrade.
    pub(crate) fn take_upgrade(&mut self, pool: &mut BufferPool) -> Option<(OnUpgrade, Bytes)> {
        if self.output.pending() > 0 {
            return None;
        }
        let on_upgrade = self.upgrade.take()?;
        let read_ahead = match &self.input {
            Some(buf) => Bytes::copy_from_slice(&buf[self.start..]),
            None => Bytes::new(),
        };
        self.discard_input(pool);
        Some((on_upgrade, read_ahead))
    }

    /// Input read after the last response, while lingering: dropped unread.
    pub(crate) fn discard_input(&mut self, pool: &mut BufferPool) {
        if let Some(buf) = self.input.take() {
            pool.give(buf);
        }
        self.start = 0;
    }

    /// Gives back buffers that hold nothing: an idle connection keeps none.
    pub(crate) fn release_buffers(&mut self, pool: &mut BufferPool) {
        if self.input.as_ref().is_some_and(|b| b.len() == self.start) && self.awaiting.is_none() {
            if let Some(buf) = self.input.take() {
                pool.give(buf);
            }
            self.start = 0;
        }
        if self.output.pending() == 0 {
            if let Some(buf) = self.output.buf.take() {
                pool.give(buf);
            }
        }
    }

    /// Handles the request at `start`. Returns whether it was complete (and
    /// answered); `false` means more bytes are needed or the connection is closing.
    fn step<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) -> bool {
        let Conn {
            input,
            start,
            awaiting,
            output,
            peer,
            ..
        } = self;
        let Some(input) = input.as_mut() else {
            return false;
        };
        let start = *start;

        let framing = match awaiting {
            Some(AwaitingBody { framing, .. }) => *framing,
            None => {
                let buf = &input[start..];
                // Every read parses the incomplete head again from its start
                // (bounded by max_header_bytes): skipping reads that bring no
                // line end would hide a malformed byte until one comes, and
                // make the answer depend on how the bytes were split.
                let mut slots = header_slots();
                match parse::parse_head(buf, &mut slots, env.config) {
                    Err(e) => {
                        self.fail(e, env);
                        return false;
                    }
                    Ok(None) => return false,
                    Ok(Some((req, framing))) => {
                        // Head-first dispatch: the handler's head-time
                        // checks run before one byte of body is read.
                        let body_limit = match admit(output, env, &req, &framing, *peer) {
                            Admission::Accepted { body_limit } => body_limit,
                            Admission::Refused(answer) => {
                                let has_body = framing.body != BodyLength::Empty;
                                self.complete(framing.head_len, answer, env);
                                // Its body stays unread: linger, then close.
                                self.errored |= has_body;
                                return !has_body;
                            }
                        };
                        let body_in = match framing.body {
                            BodyLength::Empty => Some(0),
                            BodyLength::Fixed(n) if n > body_limit => {
                                self.fail(ProtocolError::BodyTooLarge, env);
                                return false;
                            }
                            BodyLength::Fixed(n) if buf.len() - framing.head_len >= n => Some(n),
                            _ => None,
                        };
                        if let Some(len) = body_in {
                            // Fast path: the whole request is here; answer it
                            // from this parse.
                            let body = &buf[framing.head_len..framing.head_len + len];
                            let answer = dispatch(output, env, &req, &framing, body, *peer);
                            self.complete(framing.head_len + len, answer, env);
                            return true;
                        }
                        // A fixed-length body counts in full from its head;
                        // a chunked one as it arrives.
                        let declared = match framing.body {
                            BodyLength::Fixed(n) => n,
                            _ => 0,
                        };
                        let Some(reservation) = env.budget.reserve(declared) else {
                            self.fail(ProtocolError::BodiesInFlight, env);
                            return false;
                        };
                        if framing.expect_continue && buf.len() == framing.head_len {
                            // Only now that the request is accepted (RFC 9110 §10.1.1).
                            let (out, _) = output.buf_and_large(env.pool);
                            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        }
                        *awaiting = Some(AwaitingBody {
                            framing,
                            chunked: ChunkedDecoder::default(),
                            body_limit,
                            reservation,
                        });
                        framing
                    }
                }
            }
        };

        // The body is arriving (or has): find where it ends.
        let head_len = framing.head_len;
        let (body_len, encoded_len) = match framing.body {
            BodyLength::Fixed(n) if input.len() - start - head_len >= n => (n, n),
            BodyLength::Fixed(_) | BodyLength::Empty => return false,
            BodyLength::Chunked => {
                let waiting = awaiting.as_mut().expect("awaiting a body");
                let limits = ChunkLimits {
                    max_body: waiting.body_limit,
                    max_trailer_bytes: env.config.max_header_bytes,
                };
                let decoder = &mut waiting.chunked;
                let body_start = start + head_len;
                match decoder.decode(&mut input[body_start..], limits) {
                    Ok(Some(done)) => done,
                    Ok(None) => {
                        // Drop the framing already decoded, so the buffer
                        // holds at most the decoded body plus one chunk line.
                        let dropped = decoder.squeeze(&mut input[body_start..]);
                        let len = input.len();
                        input.truncate(len - dropped);
                        if !waiting.reservation.grow_to(len - dropped - body_start) {
                            self.fail(ProtocolError::BodiesInFlight, env);
                        }
                        return false;
                    }
                    Err(e) => {
                        self.fail(e, env);
                        return false;
                    }
                }
            }
        };

        // Parse the head again, now that the body below it is final. Its
        // bytes may have moved since its head-time checks: route it afresh.
        crate::router::forget_resolved();
        let (head, rest) = input[start..].split_at_mut(head_len);
        let mut slots = header_slots();
        let answer = match parse::parse_head(head, &mut slots, env.config) {
            Ok(Some((req, framing))) => {
                dispatch(output, env, &req, &framing, &rest[..body_len], *peer)
            }
            // The head bytes did not change since they parsed, so this cannot
            // happen; if it ever did, refuse rather than panic the worker.
            _ => {
                self.fail(ProtocolError::Malformed, env);
                return false;
            }
        };
        self.complete(head_len + encoded_len, answer, env);
        true
    }

    /// Moves past an answered (or deferred) request.
    fn complete<H: Handler + ?Sized>(&mut self, consumed: usize, answer: Answer, env: &Env<'_, H>) {
        self.start += consumed;
        self.awaiting = None;
        self.served += 1;
        env.counters.requests.add(1);
        match answer {
            Answer::Written { keep_alive: true } => {}
            Answer::Written { keep_alive: false } => self.phase = Phase::Closing,
            Answer::Deferred {
                ticket,
                watch,
                is_head,
                started,
                timeout,
            } => {
                self.deferred = Some(Pending {
                    ticket,
                    watch,
                    is_head,
                    started,
                    timeout,
                })
            }
            Answer::Upgrade { on_upgrade } => {
                self.upgrade = Some(on_upgrade);
                self.phase = Phase::Closing;
            }
        }
    }

    /// Answers a request the server refuses, and closes: the bytes after it
    /// are never read as another request.
    fn fail<H: Handler + ?Sized>(&mut self, error: ProtocolError, env: &mut Env<'_, H>) {
        if error.is_timeout() {
            env.counters.timeouts.add(1);
        } else {
            env.counters.parse_errors.add(1);
        }
        env.counters.requests.add(1);
        let status = error.status();
        env.counters.count_status(status.as_u16());
        let (out, large) = self.output.buf_and_large(env.pool);
        let mut res = Response::new(out, large, false, false, false, env.server_line);
        res.status(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.header("Retry-After", "1");
        }
        res.header("Content-Type", "text/plain; charset=utf-8")
            .write(error.to_string().as_bytes())
            .write(b"\n");
        res.finish();
        self.awaiting = None;
        self.phase = Phase::Closing;
        self.errored = true;
    }

    /// Moves a partial request to the front of the input buffer, so the
    /// buffer never grows by more than one request.
    fn compact(&mut self) {
        let Some(buf) = self.input.as_mut() else {
            return;
        };
        if self.start == 0 {
            return;
        }
        let len = buf.len();
        if self.start < len {
            buf.copy_within(self.start..len, 0);
        }
        buf.truncate(len - self.start);
        self.start = 0;
    }
}

//! The connection state machine, without sockets: bytes in, responses out.
//!
//! The worker reads from a socket into [`Conn::read_buffer`], calls
//! [`Conn::process`], and writes [`Conn::output`] back. The in-memory test
//! driver and the fuzz harness do the same with plain byte slices, so every
//! path through here is the one real connections take.

use crate::body::BodyError;
use crate::deferred::Watch;
use crate::http1::body::ChunkedDecoder;
use crate::http1::budget::Reservation;
pub(crate) use crate::http1::env::{Env, Services};
use crate::http1::output::Output;
use crate::http1::parse::Framing;
use crate::http1::stream_in::StreamIn;
use crate::http1::stream_out::StreamOut;
use crate::peer::Peer;
use crate::server::pool::BufferPool;
use crate::upgrade::OnUpgrade;
use crate::{Config, Handler, ProtocolError};
use bytes::{Bytes, BytesMut};
use std::time::{Duration, Instant};

mod buffers;
mod deferred;
mod step;
mod streams;

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
    /// More of a streamed request body, for a sink that has room.
    StreamBody,
    /// A body sink to make room (it paused the connection).
    Sink,
    /// A streamed response's producer.
    Stream,
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
    /// `input` is a small buffer of its own holding a stalled partial head,
    /// not a pooled one (see [`Conn::park_partial_head`]).
    parked: bool,
    /// Offset of the current request's first byte in `input`.
    start: usize,
    awaiting: Option<AwaitingBody>,
    pub(crate) output: Output,
    phase: Phase,
    peer: Peer,
    /// What the connection's TLS handshake agreed, once it has.
    tls: Option<Box<crate::tls::TlsInfo>>,
    /// Requests answered on this connection.
    served: u64,
    /// The connection is closing because of a request the server refused.
    errored: bool,
    /// See [`Conn::held_back`].
    held_back: bool,
    /// The deferred response this connection waits for.
    deferred: Option<Pending>,
    /// The request body streaming to a sink.
    stream_in: Option<StreamIn>,
    /// The response body streaming from a producer.
    stream_out: Option<StreamOut>,
    /// A streamed body failed: close once the pending answer is out.
    close_after_answer: bool,
    /// Bytes streamed in or out so far: a streamed exchange's deadline
    /// restarts while this moves.
    progress: u64,
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
    pub(crate) fn new(peer: Peer) -> Self {
        Conn {
            input: None,
            parked: false,
            start: 0,
            awaiting: None,
            output: Output::default(),
            phase: Phase::Open,
            peer,
            tls: None,
            served: 0,
            errored: false,
            held_back: false,
            deferred: None,
            stream_in: None,
            stream_out: None,
            close_after_answer: false,
            progress: 0,
            upgrade: None,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether this connection is still reading requests (not closing, and
    /// not held back because the peer is slow to read its responses).
    pub(crate) fn wants_input(&self, config: &Config) -> bool {
        if self.phase != Phase::Open
            || self.close_after_answer
            || self.output.pending() > config.max_output_buffered
        {
            return false;
        }
        match &self.stream_in {
            // A streamed body is read while its answer is pending, unless
            // its sink is full.
            Some(body) => !body.paused,
            None => self.deferred.is_none() && self.stream_out.is_none(),
        }
    }

    /// Bytes streamed in or out so far (see [`Conn::progress`]).
    pub(crate) fn progress(&self) -> u64 {
        self.progress
    }

    pub(crate) fn served(&self) -> u64 {
        self.served
    }

    /// Who is at the other end, as known from the accept.
    pub(crate) fn peer(&self) -> Peer {
        self.peer
    }

    /// Records what the connection's TLS handshake agreed, for its
    /// requests' [`crate::Request::tls`].
    pub(crate) fn set_tls(&mut self, info: crate::tls::TlsInfo) {
        self.tls = Some(Box::new(info));
    }

    /// Whether the connection is closing after an error response.
    pub(crate) fn errored(&self) -> bool {
        self.errored
    }

    pub(crate) fn waiting(&self) -> Waiting {
        let buffered = self.input.as_ref().is_some_and(|b| b.len() > self.start);
        if let Some(body) = &self.stream_in {
            return if body.paused {
                Waiting::Sink
            } else {
                Waiting::StreamBody
            };
        }
        if self.deferred.is_some() {
            return Waiting::Deferred;
        }
        if self.stream_out.is_some() {
            return Waiting::Stream;
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

    /// Parses and answers every complete request in the input buffer, in
    /// order, until one is incomplete, the connection must close, or too much
    /// output is queued.
    pub(crate) fn process<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) {
        self.held_back = false;
        // Only this pass may replay a head: the next pass may be another
        // connection's, which must learn nothing from this one's heads.
        env.memo.forget();
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
        // A body still streaming never will end: its sink hears `Closed`.
        self.stream_in = None;
        self.phase = Phase::Closing;
    }

    /// A deadline passed while waiting for a request: answer `408` and close.
    /// For a streamed body (the client too slow, or its sink paused too
    /// long) the sink is told, and the connection closes after the answer.
    pub(crate) fn on_request_timeout<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) {
        if let Some(mut body) = self.stream_in.take() {
            env.counters.timeouts.add(1);
            body.fail(BodyError::TimedOut);
            self.body_failed();
            return;
        }
        if self.phase != Phase::Open || self.deferred.is_some() || self.stream_out.is_some() {
            return; // not waiting for a request: its own deadline applies
        }
        let error = match self.awaiting {
            Some(_) => ProtocolError::BodyTimeout,
            None => ProtocolError::HeaderTimeout,
        };
        self.fail(error, env);
        self.release_buffers(env.pool);
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
}

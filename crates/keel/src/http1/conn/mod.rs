//! The connection state machine, without sockets: bytes in, responses out.
//!
//! The worker reads from a socket into [`Conn::read_buffer`], calls
//! [`Conn::process`], and writes [`Conn::output`] back. The in-memory test
//! driver and the fuzz harness do the same with plain byte slices, so every
//! path through here is the one real connections take.

use crate::body::{BodyError, SinkWaker};
use crate::deferred::Watch;
use crate::http1::body::{ChunkLimits, ChunkedDecoder};
use crate::http1::budget::Reservation;
use crate::http1::dispatch::{admit, admit_and_dispatch, dispatch, Admission, Answer};
pub(crate) use crate::http1::env::{Env, Services};

mod buffers;
mod deferred;
mod streams;
use crate::http1::output::Output;
use crate::http1::parse::{self, header_slots, BodyLength, Framing};
use crate::http1::stream_in::StreamIn;
use crate::http1::stream_out::StreamOut;
use crate::peer::{Client, Peer};
use crate::server::pool::BufferPool;
use crate::upgrade::OnUpgrade;
use crate::{field, Config, Handler, ProtocolError, Response, StatusCode};
use bytes::{Bytes, BytesMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The [`Client`] of a request, from the connection's `peer` and `tls`
/// fields (borrowed apart from its buffers).
macro_rules! client {
    ($peer:expr, $tls:expr) => {
        Client {
            peer: *$peer,
            tls: $tls.as_deref(),
        }
    };
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

    /// Handles the request at `start`. Returns whether it was complete (and
    /// answered); `false` means more bytes are needed or the connection is closing.
    fn step<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) -> bool {
        if self.stream_in.is_some() {
            return self.feed(env);
        }
        let Conn {
            input,
            start,
            awaiting,
            output,
            peer,
            tls,
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
                        if e == ProtocolError::UnsupportedVersion
                            && parse::serve_later_minor_as_1_1(&mut input[start..])
                        {
                            // `HTTP/1.x`, x > 1, now reads `HTTP/1.1`: parse again.
                            return self.step(env);
                        }
                        self.fail(e, env);
                        return false;
                    }
                    Ok(None) => return false,
                    Ok(Some((req, framing))) if framing.body == BodyLength::Empty => {
                        // No body to decide about: the head-time checks and
                        // the handler run at once, on one response writer.
                        let answer =
                            admit_and_dispatch(output, env, &req, &framing, client!(peer, tls));
                        self.complete(framing.head_len, answer, env);
                        return true;
                    }
                    Ok(Some((req, framing))) => {
                        // Head-first dispatch: the handler's head-time
                        // checks run before one byte of body is read.
                        let body_limit = match admit(
                            output,
                            env,
                            &req,
                            &framing,
                            client!(peer, tls),
                        ) {
                            Admission::Accepted {
                                body_limit,
                                streams: true,
                            } if framing.body != BodyLength::Empty => {
                                if matches!(framing.body, BodyLength::Fixed(n) if n > body_limit) {
                                    self.fail(ProtocolError::BodyTooLarge, env);
                                    return false;
                                }
                                if framing.expect_continue && buf.len() == framing.head_len {
                                    // Accepted: before the handler's answer, which
                                    // may begin at once (a streamed response).
                                    let (out, _) = output.buf_and_large(env.pool);
                                    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                                }
                                let mut sink = None;
                                let answer = dispatch(
                                    output,
                                    env,
                                    &req,
                                    &framing,
                                    &[],
                                    client!(peer, tls),
                                    Some(&mut sink),
                                );
                                let answered_now = matches!(answer, Answer::Written { .. });
                                self.complete(framing.head_len, answer, env);
                                match sink {
                                    Some(sink) if !answered_now => {
                                        let ticket = env.deferral.ticket();
                                        let waker = SinkWaker::new(
                                            env.deferral.notifier(),
                                            env.key,
                                            ticket,
                                        );
                                        let answer =
                                            self.deferred.as_ref().map(|p| p.watch.claim());
                                        self.stream_in = Some(StreamIn::new(
                                            sink,
                                            waker,
                                            framing.body,
                                            body_limit,
                                            answer,
                                        ));
                                    }
                                    // Answered at once, or the body not taken: it is
                                    // never read (a sink that took it hears `Closed`).
                                    sink => {
                                        if let Some(mut sink) = sink {
                                            let told =
                                                AssertUnwindSafe(|| sink.fail(BodyError::Closed));
                                            let _ = catch_unwind(told);
                                        }
                                        self.body_failed();
                                    }
                                }
                                return true;
                            }
                            Admission::Accepted { body_limit, .. } => body_limit,
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
                            let answer = dispatch(
                                output,
                                env,
                                &req,
                                &framing,
                                body,
                                client!(peer, tls),
                                None,
                            );
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
            Ok(Some((req, framing))) => dispatch(
                output,
                env,
                &req,
                &framing,
                &rest[..body_len],
                client!(peer, tls),
                None,
            ),
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
            Answer::Streaming { shared, keep_alive } => {
                self.stream_out = Some(StreamOut { shared, keep_alive })
            }
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
            res.field(field!("Retry-After", "1"));
        }
        res.field(field!("Content-Type", "text/plain; charset=utf-8"))
            .write(error.to_string().as_bytes())
            .write(b"\n");
        res.finish();
        self.awaiting = None;
        self.phase = Phase::Closing;
        self.errored = true;
    }
}

//! One request at a time: its head parsed, admitted, its body awaited
//! (or streamed to a sink) and the handler's answer recorded; refusals
//! answered and the connection closed.

use super::{AwaitingBody, Conn, Env, Pending, Phase};
use crate::body::{BodyError, SinkWaker};
use crate::http1::body::{ChunkLimits, ChunkedDecoder};
use crate::http1::dispatch::{admit, admit_and_dispatch, dispatch, Admission, Answer};
use crate::http1::parse::{self, header_slots, memo_slots, BodyLength};
use crate::http1::stream_in::StreamIn;
use crate::http1::stream_out::StreamOut;
use crate::peer::Client;
use crate::{field, Handler, ProtocolError, Response, StatusCode};
use std::panic::{catch_unwind, AssertUnwindSafe};

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

impl Conn {
    /// Handles the request at `start`. Returns whether it was complete (and
    /// answered); `false` means more bytes are needed or the connection is
    /// closing. A head equal to the last one parsed in this pass over the
    /// buffer replays that one's parse (`env.memo`).
    pub(super) fn step<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) -> bool {
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
                if env.memo.holds_head() {
                    let mut replayed = memo_slots();
                    if let Some(hit) = env.memo.replay(input, start, &mut replayed) {
                        parse::check_replay(&input[start..], env.config, &hit);
                        let (req, framing) = hit;
                        let answer =
                            admit_and_dispatch(output, env, &req, &framing, client!(peer, tls));
                        self.complete(framing.head_len, answer, env);
                        return true;
                    }
                }
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
                        // Worth remembering only when the next request's
                        // bytes are already here (pipelined). `remember`
                        // checks this too; testing it here spares a keep-alive
                        // exchange the call (10 instructions a request).
                        if buf.len() > framing.head_len {
                            env.memo.remember(input, start, &req, &framing);
                        }
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
    pub(super) fn complete<H: Handler + ?Sized>(
        &mut self,
        consumed: usize,
        answer: Answer,
        env: &Env<'_, H>,
    ) {
        self.start += consumed;
        self.awaiting = None;
        self.served += 1;
        env.counters.requests.add(1);
        match answer {
            Answer::Written { keep_alive: true } => {}
            Answer::Written { keep_alive: false } => self.phase = Phase::Closing,
            Answer::Streaming { from, keep_alive } => {
                self.stream_out = Some(StreamOut { from, keep_alive })
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
    pub(super) fn fail<H: Handler + ?Sized>(&mut self, error: ProtocolError, env: &mut Env<'_, H>) {
        if error.is_timeout() {
            env.counters.timeouts.add(1);
        } else {
            env.counters.parse_errors.add(1);
        }
        env.counters.requests.add(1);
        let status = error.status();
        env.counters.count_status(status.as_u16());
        let (out, large) = self.output.buf_and_large(env.pool);
        let mut res = Response::new(out, large, false, false, false, env.server);
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

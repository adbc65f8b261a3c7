//! Calling the handler: its head-time checks ([`admit`]), then the request
//! itself ([`dispatch`]). Both contain a panic as a `500` and a close.

use crate::body::{BodySink, Trailers};
use crate::deferred::Watch;
use crate::http1::conn::Env;
use crate::http1::output::Output;
use crate::http1::output::Segment;
use crate::http1::parse::{BodyLength, Framing};
use crate::http1::stream_out::Producer;
use crate::middleware::Flow;
use crate::peer::Client;
use crate::upgrade::OnUpgrade;
use crate::{field, Handler, Request, Response, StatusCode, Version};
use bytes::BytesMut;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// What became of a request handed to the handler.
pub(crate) enum Answer {
    /// The response is queued; the connection stays open or not.
    Written { keep_alive: bool },
    /// The head is queued; the body streams from `from` (a
    /// [`crate::BodyStream`]'s queue, filled on this worker or another
    /// thread, or a [`crate::BodySource`] asked on this worker).
    Streaming { from: Producer, keep_alive: bool },
    /// A [`crate::Responder`] will answer later.
    Deferred {
        ticket: u64,
        /// The claim shared with the responder (see `deferred::Watch`).
        watch: Watch,
        is_head: bool,
        /// When the request was dispatched.
        started: Instant,
        /// The handler's own deadline for the answer, if it set one.
        timeout: Option<Duration>,
    },
    /// The `101 Switching Protocols` is queued: once it is written, the
    /// connection goes to `on_upgrade` (see [`Response::upgrade`]).
    Upgrade { on_upgrade: OnUpgrade },
}

/// What the head-time checks decided.
pub(crate) enum Admission {
    /// Go on: read the body, up to `body_limit` bytes (0 without a body);
    /// `streams` when the handler takes it as a stream, at once.
    Accepted { body_limit: usize, streams: bool },
    /// The handler answered from the head; with a body, the answer closes.
    Refused(Answer),
}

/// The handler's view of a parsed request.
fn view<'a>(
    req: &'a httparse::Request<'_, '_>,
    framing: &Framing,
    body: &'a [u8],
    client: Client<'a>,
) -> Request<'a> {
    Request {
        method: req.method.unwrap_or_default(),
        target: req.path.unwrap_or_default(),
        version: if framing.minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        headers: req.headers,
        body,
        peer: client.peer,
        tls: client.tls,
        params: &[],
    }
}

/// Runs the handler's head-time checks on the parsed head of a request with
/// a body, before the body is read: [`Handler::on_head`], then
/// [`Handler::body_limit`], or [`crate::Config::max_body`] when it sets none.
/// (A request without a body goes to [`admit_and_dispatch`].)
///
/// A refusal says `Connection: close`: the body is never read, so nothing
/// after it can be taken for a next request.
pub(crate) fn admit<H: Handler + ?Sized>(
    output: &mut Output,
    env: &mut Env<'_, H>,
    req: &httparse::Request<'_, '_>,
    framing: &Framing,
    client: Client<'_>,
) -> Admission {
    let started = *env.clock;
    // A route resolved for an earlier request is never used for this one.
    crate::router::forget_resolved();
    let request = view(req, framing, &[], client);
    debug_assert_ne!(framing.body, BodyLength::Empty, "see admit_and_dispatch");
    // A refusal closes: the body is never read. Draining is checked only if
    // the hook answers (below).
    let (out, large) = output.buf_and_large(env.pool);
    let mut res = Response::new(
        out,
        large,
        false,
        framing.is_head,
        framing.minor == 0,
        env.server,
    );
    let handler = env.handler;
    match catch_unwind(AssertUnwindSafe(|| handler.on_head(&request, &mut res))) {
        Ok(Flow::Continue) => {
            // A continuing hook writes nothing; drop whatever it did write.
            if !res.is_untouched() {
                res.discard();
            }
            let limit = catch_unwind(AssertUnwindSafe(|| {
                (handler.body_limit(&request), handler.streams_body(&request))
            }));
            match limit {
                // A streamed body costs no memory: no default limit.
                Ok((limit, true)) => Admission::Accepted {
                    body_limit: limit.unwrap_or(usize::MAX),
                    streams: true,
                },
                Ok((limit, false)) => Admission::Accepted {
                    body_limit: limit.unwrap_or(env.config.max_body),
                    streams: false,
                },
                Err(_) => Admission::Refused(panicked(&mut res, env, started)),
            }
        }
        Ok(Flow::Stop) => Admission::Refused(written(&mut res, env, started)),
        Err(_) => Admission::Refused(panicked(&mut res, env, started)),
    }
}

/// Calls the handler on one request, containing a panic as a `500`.
///
/// With `sink`, the request's body streams: the handler runs from the head
/// and the [`BodySink`] it took, if any, is put in `sink`.
pub(crate) fn dispatch<H: Handler + ?Sized>(
    output: &mut Output,
    env: &mut Env<'_, H>,
    req: &httparse::Request<'_, '_>,
    framing: &Framing,
    body: &[u8],
    client: Client<'_>,
    sink: Option<&mut Option<Box<dyn BodySink>>>,
) -> Answer {
    // The latency histogram's start: see `Env::answered`.
    let started = *env.clock;
    let request = view(req, framing, body, client);
    let (out, large) = output.buf_and_large(env.pool);
    let mut res = handler_response(out, large, env, framing);
    handle(&mut res, &request, env, framing, started, sink)
}

/// [`admit`] and [`dispatch`] in one, for a request without a body (most
/// of them): the head-time hook and the handler share one [`Response`]
/// when the hook continues without touching it, so a request pays for one
/// response writer, not two. Inlined into both of its call sites (a
/// parsed head, a replayed one), which share one otherwise.
#[inline(always)]
pub(crate) fn admit_and_dispatch<H: Handler + ?Sized>(
    output: &mut Output,
    env: &mut Env<'_, H>,
    req: &httparse::Request<'_, '_>,
    framing: &Framing,
    client: Client<'_>,
) -> Answer {
    debug_assert_eq!(framing.body, BodyLength::Empty);
    let started = *env.clock;
    // A route resolved for an earlier request is never used for this one.
    crate::router::forget_resolved();
    let request = view(req, framing, &[], client);
    let (out, large) = output.buf_and_large(env.pool);
    let mut res = handler_response(out, large, env, framing);
    let keep_alive = res.keeps_alive();
    let handler = env.handler;
    match catch_unwind(AssertUnwindSafe(|| handler.on_head(&request, &mut res))) {
        Ok(Flow::Continue) if res.is_fresh(keep_alive) => {
            handle(&mut res, &request, env, framing, started, None)
        }
        Ok(Flow::Continue) => {
            // What a continuing hook wrote or set is dropped, as [`admit`]
            // drops it: the handler starts from a fresh response.
            res.discard();
            let (out, large) = res.into_buffers();
            let mut res = handler_response(out, large, env, framing);
            handle(&mut res, &request, env, framing, started, None)
        }
        Ok(Flow::Stop) => written(&mut res, env, started),
        Err(_) => panicked(&mut res, env, started),
    }
}

/// The response writer a handler gets for `framing`'s request.
#[inline(always)]
fn handler_response<'a, 'e: 'a, H: Handler + ?Sized>(
    out: &'a mut BytesMut,
    large: &'a mut Vec<(usize, Segment)>,
    env: &Env<'e, H>,
    framing: &Framing,
) -> Response<'a> {
    let keep_alive = framing.keep_alive && !env.draining.load(Relaxed);
    Response::new(
        out,
        large,
        keep_alive,
        framing.is_head,
        framing.minor == 0,
        env.server,
    )
}

/// Runs the handler on `request` with `res`, containing a panic as a `500`.
/// Inlined into its two callers.
#[inline(always)]
fn handle<'a, 'e: 'a, H: Handler + ?Sized>(
    res: &mut Response<'a>,
    request: &'a Request<'a>,
    env: &mut Env<'e, H>,
    framing: &Framing,
    started: Instant,
    sink: Option<&mut Option<Box<dyn BodySink>>>,
) -> Answer {
    res.allow_defer(env.deferral, env.key);
    res.allow_upgrade(request);
    // A request without a body may be read as a stream too (a route that
    // streams is asked only about requests that have one): it ends at once.
    let empty_body = framing.body == BodyLength::Empty;
    if sink.is_some() || empty_body {
        res.allow_body_stream();
    }
    let handler = env.handler;
    match catch_unwind(AssertUnwindSafe(|| handler.handle(request, res))) {
        Ok(()) => {
            match sink {
                Some(sink) => *sink = res.take_body_sink(),
                None => {
                    if let Some(mut empty) = res.take_body_sink() {
                        let ended = AssertUnwindSafe(|| empty.end(&Trailers::default()));
                        // A sink that panics at its end is the handler's
                        // bug; its answer (or the 500 of its dropped
                        // responder) still goes out.
                        let _ = catch_unwind(ended);
                    }
                }
            }
            if let Some(on_upgrade) = res.take_upgrade() {
                env.answered(started);
                return Answer::Upgrade { on_upgrade };
            }
            if let Some(from) = res.take_stream() {
                env.counters.count_status(res.status_code().as_u16());
                env.answered(started);
                let keep_alive = res.keeps_alive() && !env.draining.load(Relaxed);
                return Answer::Streaming { from, keep_alive };
            }
            if let (Some(ticket), Some(watch)) = (res.deferred_ticket(), res.take_watch()) {
                return Answer::Deferred {
                    ticket,
                    watch,
                    is_head: framing.is_head,
                    started,
                    timeout: res.deferred_timeout_set(),
                };
            }
            written(res, env, started)
        }
        // A responder taken before the panic was dropped while
        // unwinding; its 500 finds no deferral waiting and is ignored.
        Err(_) => panicked(res, env, started),
    }
}

/// Finishes a response the handler (or its head-time hook) wrote here and
/// now, and counts it.
#[inline(always)]
fn written<H: Handler + ?Sized>(
    res: &mut Response<'_>,
    env: &mut Env<'_, H>,
    started: Instant,
) -> Answer {
    if env.draining.load(Relaxed) && !res.head_written() {
        // Shutdown began while the handler ran: close after this response,
        // which says so. One whose head already went out saying keep-alive
        // keeps its word: its client may send its next request at once,
        // and would read a closed connection instead of an answer; that
        // request is answered with `Connection: close`.
        res.close();
    }
    res.finish();
    env.counters.count_status(res.status_code().as_u16());
    env.answered(started);
    Answer::Written {
        keep_alive: res.keeps_alive(),
    }
}

/// Answers a request whose handler panicked with a `500` that closes,
/// written over what `res` held (dropped).
fn panicked<H: Handler + ?Sized>(
    res: &mut Response<'_>,
    env: &mut Env<'_, H>,
    started: Instant,
) -> Answer {
    env.counters.handler_panics.add(1);
    env.counters.count_status(500);
    res.restart_closing();
    res.status(StatusCode::INTERNAL_SERVER_ERROR)
        .field(field!("Content-Type", "text/plain; charset=utf-8"))
        .body(b"Internal Server Error\n");
    env.answered(started);
    Answer::Written { keep_alive: false }
}

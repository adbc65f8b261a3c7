//! The handler's streaming routes: a request body read by a sink on the
//! worker (`/stream...`), a response sent in pieces (`/pieces`: from the
//! test through a `BodyStream`, or produced on the worker), and a
//! protocol switch (`/upgrade`); and what the harness does for them
//! between and after `send`s (waking paused sinks, sending the rest of a
//! streamed response).

use super::{answer, BodyFraming, Call, Log, Reply};
use keel::body::{BodyError, BodySink, SinkWaker, Trailers};
use keel::testing::MemoryConn;
use keel::{BodyStream, Handler, Pull, Request, Responder, Response, StatusCode};
use std::sync::{Arc, Mutex, MutexGuard};

/// The prefix of the routes whose body streams to a [`FuzzSink`].
pub(crate) const STREAM_PREFIX: &str = "/stream";

/// How a `/stream/<n>` sink behaves, from the `n` in its path (the fuzz
/// input picks it): bits 0-2 the most bytes it takes per call (0: all it
/// is offered), bit 3 wakes a pause only once the whole input was sent
/// (else after the next `send`), bit 4 wakes at once from inside `data`
/// (a wake racing the pause), bit 5 sets a 16-byte body limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SinkKnobs {
    max_take: usize,
    wake_at_end: bool,
    wake_inside: bool,
    pub(crate) limited: bool,
}

impl SinkKnobs {
    /// The knobs of a request to `path`, when its body streams.
    pub(crate) fn of(path: &str) -> Option<SinkKnobs> {
        let rest = path.strip_prefix(STREAM_PREFIX)?;
        let n: u8 = match rest.strip_prefix('/') {
            None if rest.is_empty() => 0,
            Some(digits) => digits.parse().ok()?,
            None => return None,
        };
        Some(SinkKnobs {
            max_take: usize::from(n & 7),
            wake_at_end: n & 8 != 0,
            wake_inside: n & 16 != 0,
            limited: n & 32 != 0,
        })
    }
}

/// The wakers of paused sinks, for the harness to wake later.
#[derive(Clone, Default)]
pub(crate) struct Paused(Arc<Mutex<Vec<(SinkWaker, bool)>>>);

impl Paused {
    fn lock(&self) -> MutexGuard<'_, Vec<(SinkWaker, bool)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the sinks paused until the next `send` (`all`: every one);
    /// returns whether it woke any.
    pub(crate) fn wake(&self, all: bool) -> bool {
        let woken: Vec<SinkWaker> = {
            let mut list = self.lock();
            let (now, later): (Vec<_>, Vec<_>) =
                list.drain(..).partition(|(_, at_end)| all || !at_end);
            *list = later;
            now.into_iter().map(|(waker, _)| waker).collect()
        };
        for waker in &woken {
            waker.wake();
        }
        !woken.is_empty()
    }
}

/// How far a sink got: checked to end or fail exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SinkState {
    Reading,
    Ended,
    Failed(BodyError),
}

/// Every sink of a connection, to check that each one finished.
#[derive(Clone, Default)]
pub(crate) struct Sinks(Arc<Mutex<Vec<SinkState>>>);

impl Sinks {
    fn lock(&self) -> MutexGuard<'_, Vec<SinkState>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many sinks are still reading.
    pub(crate) fn reading(&self) -> usize {
        self.lock()
            .iter()
            .filter(|s| **s == SinkState::Reading)
            .count()
    }

    /// How many sinks were told their body timed out (a timeout counted
    /// for a request the handler took).
    pub(crate) fn timed_out(&self) -> u64 {
        let timed_out = SinkState::Failed(BodyError::TimedOut);
        self.lock().iter().filter(|s| **s == timed_out).count() as u64
    }
}

/// Records a streamed body and its trailers; answers with an echo of the
/// body once it ended, or with the error's status.
struct FuzzSink {
    knobs: SinkKnobs,
    /// Its call in the log.
    index: usize,
    /// Its slot in [`Sinks`].
    slot: usize,
    body: Vec<u8>,
    http10: bool,
    responder: Option<Responder>,
    log: Log,
    sinks: Sinks,
    paused: Paused,
}

impl FuzzSink {
    /// Moves from `Reading` to `to`, which must happen once.
    fn finish(&mut self, to: SinkState) {
        let mut sinks = self.sinks.lock();
        let was = std::mem::replace(&mut sinks[self.slot], to);
        assert_eq!(was, SinkState::Reading, "a sink told {to:?} after {was:?}");
    }
}

impl BodySink for FuzzSink {
    fn data(&mut self, data: &[u8], waker: &SinkWaker) -> usize {
        assert!(!data.is_empty(), "a sink was offered an empty slice");
        assert_eq!(
            self.sinks.lock()[self.slot],
            SinkState::Reading,
            "data after the body ended"
        );
        let take = match self.knobs.max_take {
            0 => data.len(),
            n => data.len().min(n),
        };
        self.body.extend_from_slice(&data[..take]);
        if take < data.len() {
            if self.knobs.wake_inside {
                waker.wake();
            } else {
                self.paused
                    .lock()
                    .push((waker.clone(), self.knobs.wake_at_end));
            }
        }
        take
    }

    fn end(&mut self, trailers: &Trailers<'_>) {
        self.finish(SinkState::Ended);
        let trailers = trailers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_vec()))
            .collect();
        let reply = match self.responder.take() {
            Some(responder) => answer(responder, &self.body, self.http10),
            None => return,
        };
        // (The log is gone once the transcript was taken.)
        if let Some(call) = self.log.lock().get_mut(self.index) {
            call.body = std::mem::take(&mut self.body);
            call.trailers = trailers;
            call.reply = reply;
        }
    }

    fn fail(&mut self, error: BodyError) {
        self.finish(SinkState::Failed(error));
        let Some(responder) = self.responder.take() else {
            return;
        };
        let text = format!("{error}\n");
        let mut reply = Reply {
            status: error.status().as_u16(),
            framing: BodyFraming::Length,
            body: text.clone().into_bytes(),
            keep_alive: false,
            echoed: Vec::new(),
            panicked: false,
        };
        // keel closes the connection after a failed body; it does not say
        // so in the deferred answer by itself (reported), so the handler does.
        responder.respond(|res| {
            res.status(error.status())
                .header("Connection", "close")
                .body(text.as_bytes());
            reply.keep_alive = res.keeps_alive();
        });
        // The call keeps no body: how much of a failed body reached the
        // sink depends on the reads (keel fails a chunked body at a framing
        // error without offering the chunks decoded before it in the same
        // read: reported), and the split check compares calls. (The log is
        // gone once the transcript was taken: the connection, dropped,
        // fails the body of an unfinished request.)
        if let Some(call) = self.log.lock().get_mut(self.index) {
            call.reply = reply;
        }
    }
}

/// `/stream...`: defers, and reads the body into a [`FuzzSink`]; the call's
/// body, trailers and reply are filled in when the body ends.
pub(crate) fn read_streamed(
    res: &mut Response<'_>,
    knobs: SinkKnobs,
    index: usize,
    http10: bool,
    handler: &super::FuzzHandler,
) {
    let responder = res.defer();
    let slot = {
        let mut sinks = handler.sinks.lock();
        sinks.push(SinkState::Reading);
        sinks.len() - 1
    };
    // Until the body ends, the call matches no response.
    handler.log.lock()[index].reply = Reply::unanswered();
    res.read_body(FuzzSink {
        knobs,
        index,
        slot,
        body: Vec::new(),
        http10,
        responder: Some(responder),
        log: handler.log.clone(),
        sinks: handler.sinks.clone(),
        paused: handler.paused.clone(),
    });
}

/// A streamed response's pieces not sent yet.
pub(crate) struct Pending {
    stream: BodyStream,
    pieces: Vec<Vec<u8>>,
    /// Sent once the whole input was, rather than after the next `send`.
    at_end: bool,
}

/// The streamed responses the harness finishes.
#[derive(Clone, Default)]
pub(crate) struct Streams(Arc<Mutex<Vec<Pending>>>);

impl Streams {
    fn lock(&self) -> MutexGuard<'_, Vec<Pending>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the pending pieces of the streams due now (`all`: every one)
    /// and finishes them, taking the connection's output as it goes (a
    /// small stream window takes one piece at a time).
    pub(crate) fn send_due<H: Handler>(
        &self,
        conn: &mut MemoryConn<H>,
        all: bool,
        got: &mut Vec<u8>,
    ) -> bool {
        let due: Vec<Pending> = {
            let mut list = self.lock();
            let (now, later): (Vec<_>, Vec<_>) = list.drain(..).partition(|p| all || !p.at_end);
            *list = later;
            now
        };
        let any = !due.is_empty();
        for pending in due {
            send_all(pending.stream, &pending.pieces, conn, got);
        }
        any
    }
}

/// Sends `pieces` with `try_send`, letting the connection take its output
/// whenever the stream is full, then finishes the stream.
fn send_all<H: Handler>(
    mut stream: BodyStream,
    pieces: &[Vec<u8>],
    conn: &mut MemoryConn<H>,
    got: &mut Vec<u8>,
) {
    for piece in pieces {
        let mut tries = 0;
        while !stream
            .try_send(piece)
            .expect("a streamed response's connection closed")
        {
            tries += 1;
            assert!(
                tries < 100,
                "a stream stays full while its output is read {:?}",
                conn.stats()
            );
            got.extend_from_slice(&conn.recv());
        }
    }
    stream.finish().expect("a streamed response finishes");
}

/// `/pieces`: streams the body back in pieces of a size the body's length
/// picks, sending what fits from the handler and the rest after the `send`
/// or once the whole input was sent.
pub(crate) fn respond_in_pieces(
    res: &mut Response<'_>,
    body: &[u8],
    http10: bool,
    streams: &Streams,
) -> Reply {
    if body.len() % 4 == 3 {
        return respond_from_worker(res, body, http10);
    }
    let size = body.len() % 7 + 1;
    let pieces: Vec<Vec<u8>> = body.chunks(size).map(<[u8]>::to_vec).collect();
    let mut stream = res
        .status(StatusCode::ACCEPTED)
        .header("X-Mode", "pieces")
        .stream();
    let from_handler = match body.len() % 3 {
        0 => pieces.len(),
        1 => pieces.len() / 2,
        _ => 0,
    };
    let mut sent = 0;
    while sent < from_handler && stream.try_send(&pieces[sent]) == Ok(true) {
        sent += 1;
    }
    streams.lock().push(Pending {
        stream,
        pieces: pieces[sent..].to_vec(),
        at_end: body.len() % 2 == 1,
    });
    Reply {
        status: 202,
        framing: if http10 {
            BodyFraming::UntilClose
        } else {
            BodyFraming::Chunked
        },
        body: body.to_vec(),
        keep_alive: res.keeps_alive(),
        echoed: Vec::new(),
        panicked: false,
    }
}

/// `/pieces` with a body of 4k + 3 bytes: the same pieces produced on the
/// worker by a [`keel::BodySource`], one to three a pull, with a declared
/// length when the body is 8k + 7 bytes long (HTTP/1.1 only, so that the
/// generator's rule for which answers close holds).
fn respond_from_worker(res: &mut Response<'_>, body: &[u8], http10: bool) -> Reply {
    let size = body.len() % 7 + 1;
    let per_pull = body.len() % 3 + 1;
    let mut pieces: std::collections::VecDeque<Vec<u8>> =
        body.chunks(size).map(<[u8]>::to_vec).collect();
    let source = move |out: &mut Pull<'_>| {
        for _ in 0..per_pull {
            match pieces.pop_front() {
                Some(piece) => out.send(&piece).expect("within the declared length"),
                None => return out.finish().expect("the whole body was sent"),
            }
        }
    };
    res.status(StatusCode::ACCEPTED).header("X-Mode", "source");
    let declared = !http10 && body.len() % 8 == 7;
    let framing = if declared {
        res.stream_from_with_length(body.len(), source);
        BodyFraming::Length
    } else {
        res.stream_from(source);
        if http10 {
            BodyFraming::UntilClose
        } else {
            BodyFraming::Chunked
        }
    };
    Reply {
        status: 202,
        framing,
        body: body.to_vec(),
        keep_alive: res.keeps_alive(),
        echoed: Vec::new(),
        panicked: false,
    }
}

/// `/upgrade`: switches to protocol `x` when the request offers it, else
/// answers `426`.
pub(crate) fn upgrade(res: &mut Response<'_>) -> Reply {
    match res.upgrade("x", |_| {}) {
        Ok(()) => Reply {
            status: 101,
            framing: BodyFraming::Length,
            body: Vec::new(),
            // It does not say `Connection: close`.
            keep_alive: true,
            echoed: Vec::new(),
            panicked: false,
        },
        Err(_) => {
            res.status(StatusCode::UPGRADE_REQUIRED)
                .header("Upgrade", "x")
                .body(b"upgrade to x\n");
            Reply {
                status: 426,
                framing: BodyFraming::Length,
                body: b"upgrade to x\n".to_vec(),
                keep_alive: res.keeps_alive(),
                echoed: Vec::new(),
                panicked: false,
            }
        }
    }
}

/// The request as the log first records it: its body is filled in when a
/// streamed one ends.
pub(crate) fn new_call(req: &Request<'_>, http10: bool) -> Call {
    Call {
        method: req.method().to_owned(),
        target: req.target().to_owned(),
        http10,
        body: req.body().to_vec(),
        trailers: Vec::new(),
        reply: Reply::panicked(),
    }
}

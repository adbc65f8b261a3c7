//! The handler every target drives: it exercises the Response API by
//! path, and logs what it expects the client to see.

use super::streaming::{self, Paused, SinkKnobs, Sinks, Streams};
use keel::{Bytes, Handler, Request, Responder, Response, StatusCode, Version};
use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};

/// How the handler framed its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    Length,
    Chunked,
    UntilClose,
}

/// What the handler wrote, as it expects the client to see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) framing: BodyFraming,
    /// The body a GET would get (a HEAD gets its length only).
    pub(crate) body: Vec<u8>,
    pub(crate) keep_alive: bool,
    /// `X-Echo` values, in order.
    pub(crate) echoed: Vec<Vec<u8>>,
    pub(crate) panicked: bool,
}

impl Reply {
    pub(crate) fn panicked() -> Self {
        Reply {
            status: 500,
            framing: BodyFraming::Length,
            body: b"Internal Server Error\n".to_vec(),
            keep_alive: false,
            echoed: Vec::new(),
            panicked: true,
        }
    }

    /// A deferred response not answered yet: matches no response.
    pub(crate) fn unanswered() -> Self {
        Reply {
            status: 0,
            panicked: false,
            ..Reply::panicked()
        }
    }

    /// What the server sends when a deferred response is not ready in time
    /// (for a HEAD request, its head only, like any response).
    pub(crate) fn deferred_timeout() -> Self {
        Reply {
            status: 503,
            framing: BodyFraming::Length,
            body: b"the response was not ready in time\n".to_vec(),
            keep_alive: false,
            echoed: Vec::new(),
            panicked: false,
        }
    }
}

/// One handler call: the request as the handler saw it, and its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) http10: bool,
    pub(crate) body: Vec<u8>,
    /// A streamed body's trailer fields (names lowercased), in order.
    pub(crate) trailers: Vec<(String, Vec<u8>)>,
    pub(crate) reply: Reply,
}

#[derive(Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<Call>>>);

impl Log {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Vec<Call>> {
        // A panic never happens while the lock is held; still, do not cascade.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A deferred response the harness answers later.
pub(crate) struct Deferred {
    /// Its call in the log.
    pub(crate) index: usize,
    /// Answered once the whole stream was sent (or left to time out), rather
    /// than right after the `send` that made it.
    pub(crate) at_end: bool,
    pub(crate) responder: Responder,
    pub(crate) body: Vec<u8>,
    pub(crate) http10: bool,
}

#[derive(Clone, Default)]
pub(crate) struct Waiting(Arc<Mutex<Vec<Deferred>>>);

impl Waiting {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Vec<Deferred>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct FuzzHandler {
    pub(crate) log: Log,
    pub(crate) waiting: Waiting,
    pub(crate) paused: Paused,
    pub(crate) streams: Streams,
    pub(crate) sinks: Sinks,
}

/// The payload of the handler's deliberate panics.
pub(crate) struct DeliberatePanic;

thread_local! {
    /// Set just before the handler does something that must panic; the panic
    /// hook then stays quiet (and does not abort the fuzzer).
    static PANIC_EXPECTED: Cell<bool> = const { Cell::new(false) };
}

/// Wraps the current panic hook (libFuzzer's aborts) so that the handler's
/// expected panics unwind quietly into keel's `catch_unwind`, and every other
/// panic still reaches the old hook.
pub(crate) fn install_panic_filter() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !PANIC_EXPECTED.with(|expected| expected.replace(false)) {
                previous(info);
            }
        }));
    });
}

/// A body of more than `WRITEV_THRESHOLD` (4 KiB), with a pattern that shows
/// misplaced bytes.
pub(crate) fn big_body() -> Bytes {
    static BIG: OnceLock<Bytes> = OnceLock::new();
    BIG.get_or_init(|| {
        (0..4200u32)
            .map(|i| b'a' + (i % 23) as u8)
            .collect::<Vec<u8>>()
            .into()
    })
    .clone()
}

impl Handler for FuzzHandler {
    fn streams_body(&self, req: &Request<'_>) -> bool {
        SinkKnobs::of(req.path()).is_some()
    }

    fn body_limit(&self, req: &Request<'_>) -> Option<usize> {
        SinkKnobs::of(req.path())
            .filter(|knobs| knobs.limited)
            .map(|_| 16)
    }

    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
        // Touch the request accessors (percent decoding and friends).
        let _ = (
            req.path_decoded(),
            req.query_param("q"),
            req.header_str("host"),
            req.headers().len(),
            req.peer_addr(),
            format!("{req:?}"),
        );
        let body = req.body();
        let http10 = req.version() == Version::Http10;
        let mut reply = Reply {
            status: 200,
            framing: BodyFraming::Length,
            body: Vec::new(),
            keep_alive: res.keeps_alive(),
            echoed: Vec::new(),
            panicked: false,
        };
        let index = {
            let mut log = self.log.lock();
            log.push(streaming::new_call(req, http10));
            log.len() - 1
        };
        let path = req.path();
        if let Some(knobs) = SinkKnobs::of(path) {
            streaming::read_streamed(res, knobs, index, http10, self);
            return;
        }
        match path {
            "/panic" | "/misuse" => {
                if path == "/panic" {
                    if !body.is_empty() {
                        // Half a response, which the 500 must replace.
                        res.header("X-Partial", "yes").write(body);
                    }
                    PANIC_EXPECTED.with(|expected| expected.set(true));
                    std::panic::panic_any(DeliberatePanic);
                }
                // A complete response, then an out-of-order call, which is
                // documented to panic.
                PANIC_EXPECTED.with(|expected| expected.set(true));
                match body.len() % 3 {
                    0 => {
                        res.body(b"done");
                        res.header("X-Late", "1");
                    }
                    1 => {
                        res.chunked();
                        res.status(StatusCode::CREATED);
                    }
                    _ => {
                        // A large body is queued apart from the output buffer:
                        // the 500 must drop it too.
                        res.body_bytes(big_body());
                        res.write(b"more");
                    }
                }
                // Not reached unless keel failed to panic: the 500 the log
                // expects will not match what was written.
                PANIC_EXPECTED.with(|expected| expected.set(false));
                return;
            }
            "/defer" => {
                // Later pipelined requests must wait for this answer.
                let responder = res.defer();
                let reply = match body.len() % 4 {
                    0 => answer(responder, body, http10),
                    2 => {
                        drop(responder); // answers 500
                        Reply {
                            panicked: false,
                            ..Reply::panicked()
                        }
                    }
                    mode => {
                        self.waiting.lock().push(Deferred {
                            index,
                            at_end: mode == 3,
                            responder,
                            body: body.to_vec(),
                            http10,
                        });
                        Reply::unanswered()
                    }
                };
                self.log.lock()[index].reply = reply;
                return;
            }
            "/chunked" => {
                res.header("X-Mode", "chunked").chunked();
                let (a, b) = body.split_at(body.len() / 3);
                res.write(a).write(b"").write(b);
                reply.framing = if http10 {
                    BodyFraming::UntilClose
                } else {
                    BodyFraming::Chunked
                };
                reply.body = body.to_vec();
            }
            "/pieces" => {
                reply = streaming::respond_in_pieces(res, body, http10, &self.streams);
            }
            "/upgrade" => reply = streaming::upgrade(res),
            "/big" => {
                let big = big_body().slice(..4093 + body.len() % 8);
                reply.body = big.to_vec();
                res.body_bytes(big);
            }
            "/status" => {
                let status = if body.len() % 2 == 0 {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::NOT_MODIFIED
                };
                reply.status = status.as_u16();
                match body.len() / 2 % 3 {
                    0 => res.status(status).body(body),
                    1 => {
                        res.write(body).status(status);
                    }
                    _ => {
                        res.status(status).chunked().write(body);
                        if http10 {
                            reply.framing = BodyFraming::UntilClose;
                        }
                    }
                }
            }
            "/write" => {
                let (a, b) = body.split_at(body.len() / 2);
                res.header("X-Mode", "write").write(a);
                res.status(StatusCode::CREATED);
                write!(res, "[{}]", b.len()).expect("fmt::Write for Response");
                res.write(b);
                reply.status = 201;
                reply.body = [a, format!("[{}]", b.len()).as_bytes(), b].concat();
            }
            "/close" => {
                res.header("Connection", "keep-alive, close").body(body);
                reply.body = body.to_vec();
            }
            "/hdr" => {
                for line in body.split(|&b| b == b'\n').take(16) {
                    // RFC 9110 §5.5: no control character but HTAB.
                    let valid = !line.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f);
                    match res.try_header("X-Echo", line) {
                        Ok(_) => {
                            assert!(valid, "try_header accepted {line:?}");
                            reply.echoed.push(line.to_vec());
                        }
                        Err(_) => assert!(!valid, "try_header refused {line:?}"),
                    }
                }
                assert!(res.try_header("Bad Name", "v").is_err());
                assert!(res.try_header("", "v").is_err());
                res.body(b"");
            }
            _ => {
                res.header("Content-Type", "application/octet-stream")
                    .body(body);
                reply.body = body.to_vec();
            }
        }
        reply.keep_alive = res.keeps_alive();
        self.log.lock()[index].reply = reply;
    }
}

/// Answers a deferred request (echoing `body` in one of three ways); returns
/// the reply it wrote.
pub(crate) fn answer(responder: Responder, body: &[u8], http10: bool) -> Reply {
    let mut reply = Reply {
        status: 201,
        framing: BodyFraming::Length,
        body: body.to_vec(),
        keep_alive: false,
        echoed: Vec::new(),
        panicked: false,
    };
    responder.respond(|res| {
        res.status(StatusCode::CREATED).header("X-Mode", "deferred");
        match body.len() / 4 % 3 {
            0 => res.body(body),
            1 => {
                res.chunked().write(body);
                reply.framing = if http10 {
                    BodyFraming::UntilClose
                } else {
                    BodyFraming::Chunked
                };
            }
            _ => {
                // Spliced into the output as a shared segment.
                let big = big_body().slice(..4096 + body.len() % 8);
                reply.body = big.to_vec();
                res.body_bytes(big);
            }
        }
        reply.keep_alive = res.keeps_alive();
    });
    reply
}

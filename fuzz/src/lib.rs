//! The fuzz harness for keel's connection state machine.
//!
//! Every target feeds bytes through [`keel::testing::MemoryConn`] (the same
//! `Conn` a worker drives, without sockets) and checks what comes out:
//!
//! - the output is a sequence of well-formed HTTP/1.1 responses, split with
//!   httparse and the `Content-Length` / chunked framing they announce;
//! - each handler call got exactly the response the handler wrote (status,
//!   body, headers, keep-alive), in order, and at most one server error
//!   response follows them, the last thing on the connection;
//! - the counters agree with the output;
//! - a closed connection answers nothing more.
//!
//! This file is also compiled into `crates/keel/tests/fuzz_regressions.rs`
//! (through `#[path]`), which replays saved inputs through the same entry
//! points: [`conn_bytes`], [`differential_split`] and [`pipeline`]. It must
//! therefore depend on nothing but `keel`, `httparse` and `std`.

mod check;
mod generate;
mod streaming;

use check::{check_output, Parsed};
use generate::generate_request;
use keel::testing::MemoryConn;
use keel::{Bytes, Config, Handler, Request, Responder, Response, StatusCode, Version};
use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};
use std::time::Duration;
use streaming::{Paused, SinkKnobs, Sinks, Streams};

// ---------------------------------------------------------------------------
// Entry points (one per fuzz target)
// ---------------------------------------------------------------------------

/// Arbitrary bytes, split at fuzzer-chosen points, under a fuzzer-chosen
/// (often tiny) `Config`, then an optional peer EOF or deadline.
///
/// Input layout: a flags byte (bits 0-1 config preset, 2-3 what happens after
/// the stream, 4-7 number of split points), the preset's own bytes when it is
/// the custom one, one length byte per split point, then the byte stream.
pub fn conn_bytes(data: &[u8]) {
    install_panic_filter();
    let plan = Plan::decode(data);
    run(&plan.config, &plan.pieces, plan.finish);
}

/// The same stream as [`conn_bytes`] delivered in one piece and split at the
/// fuzzer's points (with a 1-byte pool buffer and no output allowance when
/// the split count is even) must give the same responses, byte for byte once
/// the `Date` values are blanked and interim `100 Continue`s (sent only when
/// a body has not started arriving) are dropped, and the same counters.
pub fn differential_split(data: &[u8]) {
    install_panic_filter();
    let plan = Plan::decode(data);
    let whole = run(&plan.config, &[plan.stream], plan.finish);
    let mut config = plan.config.clone();
    if plan.pieces.len() % 2 == 1 {
        config.buffer_size = 1;
        config.max_pooled_buffer = 1;
        config.max_output_buffered = 0;
    }
    let split = run(&config, &plan.pieces, plan.finish);
    let finals = |t: &Transcript| -> Vec<Vec<u8>> {
        t.responses
            .iter()
            .filter(|r| !r.interim)
            .map(|r| r.normalized.clone())
            .collect()
    };
    let (a, b) = (finals(&whole), finals(&split));
    if a != b {
        panic!(
            "split delivery changed the responses\n--- one piece:\n{}\n--- split {:?}:\n{}",
            show(&a.concat()),
            plan.pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            show(&b.concat())
        );
    }
    assert_eq!(
        whole.calls, split.calls,
        "split delivery changed what the handler saw"
    );
    assert_eq!(
        whole.stats.requests, split.stats.requests,
        "requests counter"
    );
    assert_eq!(
        whole.stats.parse_errors, split.stats.parse_errors,
        "parse_errors counter"
    );
    assert_eq!(whole.closed, split.closed, "closed after the stream");
    assert!(
        whole.upgraded == split.upgraded,
        "split delivery changed the bytes after an upgrade"
    );
    if whole.open_after_stream && split.open_after_stream {
        assert_eq!(whole.idle, split.idle, "holds_no_buffer after the stream");
    }
}

/// A structured generator of *valid* pipelined requests (fixed-length,
/// chunked with extensions and trailers, `Expect: 100-continue`, HTTP/1.0
/// keep-alive...), serialised and split at fuzzer-chosen points, under the
/// default limits. Every request up to the first that closes the connection
/// must reach the handler intact, none may be refused, and a connection left
/// open after complete requests must hold no buffer.
pub fn pipeline(data: &[u8]) {
    install_panic_filter();
    let mut cur = Cursor(data);
    let knobs = cur.byte();
    let mut config = Config::default();
    if knobs & 1 != 0 {
        config.max_output_buffered = 0;
    }
    if knobs & 2 != 0 {
        config.buffer_size = 1;
        config.max_pooled_buffer = 1;
    }
    let lens: Vec<u8> = (0..knobs >> 4).map(|_| cur.byte()).collect();
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    while !cur.0.is_empty() && sent.len() < 12 {
        sent.push(generate_request(&mut cur, &mut wire));
    }
    let pieces = split_at_lengths(&wire, &lens);
    let t = run(&config, &pieces, Finish::Nothing);

    let context = || format!("requests:\n{}", show(&wire));
    assert_eq!(
        t.stats.parse_errors,
        0,
        "a valid request was refused; {}",
        context()
    );
    let closing = sent.iter().position(|s| s.closes || s.upgrades);
    let expected_calls = closing.map_or(sent.len(), |i| i + 1);
    assert_eq!(
        t.calls.len(),
        expected_calls,
        "handler calls; {}",
        context()
    );
    for (call, want) in t.calls.iter().zip(&sent) {
        assert_eq!(call.method, want.method, "method; {}", context());
        assert_eq!(call.target, want.target, "target; {}", context());
        assert_eq!(call.http10, want.http10, "version; {}", context());
        assert!(call.body == want.body, "body; {}", context());
        assert_eq!(call.trailers, want.trailers, "trailers; {}", context());
        assert_eq!(
            call.reply.keep_alive,
            !want.closes,
            "keep-alive; {}",
            context()
        );
    }
    let upgrade = closing
        .map(|i| &sent[i])
        .filter(|s| s.upgrades && !s.closes);
    assert_eq!(
        t.upgraded.as_deref(),
        upgrade.map(|s| &wire[s.end..]),
        "the bytes after an upgrade; {}",
        context()
    );
    assert_eq!(t.closed, closing.is_some(), "closed; {}", context());
    if !t.closed {
        assert!(
            t.idle,
            "an idle keep-alive connection holds a buffer; {}",
            context()
        );
    }
}

// ---------------------------------------------------------------------------
// Input decoding
// ---------------------------------------------------------------------------

/// Reads bytes off the front of the input; zeros once it is empty.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// What happens once the whole stream was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Finish {
    Nothing,
    /// The peer shuts its sending side.
    CloseInput,
    /// The request deadline passes (only if the connection is still open).
    Expire,
    /// Both, deadline first.
    ExpireThenClose,
}

struct Plan<'a> {
    config: Config,
    finish: Finish,
    stream: &'a [u8],
    pieces: Vec<&'a [u8]>,
}

impl<'a> Plan<'a> {
    fn decode(data: &'a [u8]) -> Self {
        let mut cur = Cursor(data);
        let flags = cur.byte();
        let config = match flags & 3 {
            0 => Config::default(),
            1 => Config {
                max_header_bytes: 64,
                max_headers: 2,
                max_target: 16,
                max_body: 16,
                max_output_buffered: 0,
                buffer_size: 16,
                max_pooled_buffer: 16,
                server_name: None,
                ..Config::default()
            },
            2 => Config {
                max_header_bytes: 256,
                max_headers: 8,
                max_target: 64,
                max_body: 256,
                max_output_buffered: 64,
                buffer_size: 512,
                ..Config::default()
            },
            _ => {
                let [a, b, c, d, e] = [(); 5].map(|()| cur.byte() as usize);
                Config {
                    max_header_bytes: 8 + a * 8,
                    max_headers: b % 24,
                    max_target: c,
                    max_body: d * 4,
                    max_output_buffered: (e >> 1) * 32,
                    buffer_size: 1 + (e >> 1),
                    server_name: if e & 1 == 0 {
                        None
                    } else {
                        Some("fuzz".to_owned())
                    },
                    ..Config::default()
                }
            }
        };
        let finish = match (flags >> 2) & 3 {
            0 => Finish::Nothing,
            1 => Finish::CloseInput,
            2 => Finish::Expire,
            _ => Finish::ExpireThenClose,
        };
        let lens: Vec<u8> = (0..flags >> 4).map(|_| cur.byte()).collect();
        let stream = cur.0;
        Plan {
            config,
            finish,
            stream,
            pieces: split_at_lengths(stream, &lens),
        }
    }
}

/// `stream` cut into pieces of the given lengths (empty pieces included),
/// the rest as the last piece.
fn split_at_lengths<'a>(mut stream: &'a [u8], lens: &[u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::with_capacity(lens.len() + 1);
    for &len in lens {
        let (piece, rest) = stream.split_at(usize::from(len).min(stream.len()));
        pieces.push(piece);
        stream = rest;
    }
    pieces.push(stream);
    pieces
}

// ---------------------------------------------------------------------------
// The handler: exercises the Response API by path, and logs what it expects
// ---------------------------------------------------------------------------

/// How the handler framed its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyFraming {
    Length,
    Chunked,
    UntilClose,
}

/// What the handler wrote, as it expects the client to see it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reply {
    status: u16,
    framing: BodyFraming,
    /// The body a GET would get (a HEAD gets its length only).
    body: Vec<u8>,
    keep_alive: bool,
    /// `X-Echo` values, in order.
    echoed: Vec<Vec<u8>>,
    panicked: bool,
}

impl Reply {
    fn panicked() -> Self {
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
    fn unanswered() -> Self {
        Reply {
            status: 0,
            panicked: false,
            ..Reply::panicked()
        }
    }

    /// What the server sends when a deferred response is not ready in time
    /// (for a HEAD request, its head only, like any response).
    fn deferred_timeout() -> Self {
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
struct Call {
    method: String,
    target: String,
    http10: bool,
    body: Vec<u8>,
    /// A streamed body's trailer fields (names lowercased), in order.
    trailers: Vec<(String, Vec<u8>)>,
    reply: Reply,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Call>>>);

impl Log {
    fn lock(&self) -> MutexGuard<'_, Vec<Call>> {
        // A panic never happens while the lock is held; still, do not cascade.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A deferred response the harness answers later.
struct Deferred {
    /// Its call in the log.
    index: usize,
    /// Answered once the whole stream was sent (or left to time out), rather
    /// than right after the `send` that made it.
    at_end: bool,
    responder: Responder,
    body: Vec<u8>,
    http10: bool,
}

#[derive(Clone, Default)]
struct Waiting(Arc<Mutex<Vec<Deferred>>>);

impl Waiting {
    fn lock(&self) -> MutexGuard<'_, Vec<Deferred>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct FuzzHandler {
    log: Log,
    waiting: Waiting,
    paused: Paused,
    streams: Streams,
    sinks: Sinks,
}

/// The payload of the handler's deliberate panics.
struct DeliberatePanic;

thread_local! {
    /// Set just before the handler does something that must panic; the panic
    /// hook then stays quiet (and does not abort the fuzzer).
    static PANIC_EXPECTED: Cell<bool> = const { Cell::new(false) };
}

/// Wraps the current panic hook (libFuzzer's aborts) so that the handler's
/// expected panics unwind quietly into keel's `catch_unwind`, and every other
/// panic still reaches the old hook.
fn install_panic_filter() {
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
fn big_body() -> Bytes {
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
fn answer(responder: Responder, body: &[u8], http10: bool) -> Reply {
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

// ---------------------------------------------------------------------------
// Driving a connection and checking its output
// ---------------------------------------------------------------------------

/// A complete request sent after the connection closed: must get nothing.
const PROBE: &[u8] = b"GET /probe HTTP/1.1\r\nHost: probe\r\n\r\n";

/// What one connection did with one delivery of a stream.
struct Transcript {
    calls: Vec<Call>,
    responses: Vec<Parsed>,
    stats: keel::Stats,
    closed: bool,
    /// Still open once the stream was sent (before the finish).
    open_after_stream: bool,
    /// `holds_no_buffer()` once the stream was sent.
    idle: bool,
    /// After a switch of protocols: the bytes that followed the upgrade
    /// request (`take_upgrade`).
    upgraded: Option<Vec<u8>>,
}

fn run(config: &Config, pieces: &[&[u8]], finish: Finish) -> Transcript {
    let log = Log::default();
    let waiting = Waiting::default();
    let handler = FuzzHandler {
        log: log.clone(),
        waiting: waiting.clone(),
        paused: Paused::default(),
        streams: Streams::default(),
        sinks: Sinks::default(),
    };
    let (paused, streams, sinks) = (
        handler.paused.clone(),
        handler.streams.clone(),
        handler.sinks.clone(),
    );
    let harness = Harness {
        waiting: &waiting,
        log: &log,
        paused: &paused,
        streams: &streams,
    };
    let mut conn = MemoryConn::with_config(handler, config.clone());
    let mut out = Vec::new();
    let mut newlines = 0;
    for piece in pieces {
        let was_closed = conn.is_closed();
        conn.send(piece);
        newlines += piece.iter().filter(|&&b| b == b'\n').count();
        let got = harness.receive(&mut conn, false);
        assert!(
            !was_closed || got.is_empty(),
            "output after the connection closed:\n{}",
            show(&got)
        );
        out.extend_from_slice(&got);
    }
    let expire = matches!(finish, Finish::Expire | Finish::ExpireThenClose);
    // Deferred answers kept for the end: given now, or left to time out.
    let mut deferred_expired = 0;
    // Paused sinks and streamed responses kept for the end go on first.
    out.extend_from_slice(&harness.receive(&mut conn, true));
    loop {
        let mut list = std::mem::take(&mut *waiting.lock());
        assert!(
            list.len() <= 1,
            "{} deferred responses outstanding",
            list.len()
        );
        let Some(d) = list.pop() else { break };
        if expire {
            conn.expire_deferred();
            deferred_expired += 1;
            log.lock()[d.index].reply = Reply::deferred_timeout();
            assert!(conn.is_closed(), "open after a deferred response timed out");
            out.extend_from_slice(&conn.recv());
            answer(d.responder, &d.body, d.http10);
            assert!(conn.recv().is_empty(), "a late deferred answer was sent");
        } else {
            let reply = answer(d.responder, &d.body, d.http10);
            log.lock()[d.index].reply = reply;
            out.extend_from_slice(&harness.receive(&mut conn, true));
        }
    }
    // Only a streamed body still arriving may keep its answer waiting.
    assert!(
        conn.settle(Duration::ZERO) || sinks.reading() > 0,
        "waits for a deferred response that was given"
    );
    let open_after_stream = !conn.is_closed();
    let idle = conn.holds_no_buffer();
    // Nothing after the upgrade request was parsed as HTTP: it is all here.
    let upgraded = conn.take_upgrade().map(|bytes| bytes.to_vec());
    if let Some(after) = &upgraded {
        assert!(
            pieces.concat().ends_with(after),
            "the bytes after an upgrade are not the end of the stream:\n{}",
            show(after)
        );
    }
    let mut peer_eof = false;
    let mut timed_out = false;
    // Closed by the idle deadline: quietly, with no response saying so
    // (as a peer's EOF closes it).
    let mut quiet_close = false;
    if expire && !conn.is_closed() {
        // Idle between requests, the connection closes quietly (as a worker
        // does at the idle deadline); otherwise the client gets a 408 (from
        // the sink of a streamed body, told it timed out).
        let between_requests = idle && !log.lock().is_empty() && sinks.reading() == 0;
        conn.expire_deadline();
        let got = harness.receive(&mut conn, true);
        assert!(conn.is_closed(), "open after its deadline passed");
        timed_out = !between_requests;
        quiet_close = between_requests;
        if between_requests {
            assert!(got.is_empty(), "answer on an idle close:\n{}", show(&got));
        }
        let head = b"HTTP/1.1 408 Request Timeout\r\n";
        assert!(
            between_requests || got.starts_with(head),
            "deadline answer:\n{}",
            show(&got)
        );
        if got.ends_with(b"request body not received in time\n") {
            assert!(!idle, "waited for a body while holding no buffer");
        }
        out.extend_from_slice(&got);
    }
    if matches!(finish, Finish::CloseInput | Finish::ExpireThenClose) {
        // A streamed body still arriving never will: its sink hears so,
        // and its answer is the only output that may follow.
        let reading = sinks.reading();
        conn.close_input();
        peer_eof = true;
        let got = harness.receive(&mut conn, true);
        assert!(conn.is_closed(), "open after the peer's EOF");
        assert!(
            reading > 0 || got.is_empty(),
            "output after the peer's EOF:\n{}",
            show(&got)
        );
        out.extend_from_slice(&got);
    }
    if conn.is_closed() {
        conn.send(PROBE);
        assert!(conn.recv().is_empty(), "a closed connection answered");
        let probe = conn.take_upgrade();
        if upgraded.is_some() {
            assert_eq!(probe.as_deref(), Some(PROBE), "bytes sent after an upgrade");
        }
    }
    if conn.is_closed() && upgraded.is_none() {
        assert_eq!(sinks.reading(), 0, "a sink neither ended nor failed");
    }
    let calls = std::mem::take(&mut *log.lock());
    let stats = conn.stats();
    let closed = conn.is_closed();
    if debug() {
        eprintln!(
            "--- {} pieces, closed {closed}, idle {idle}, {} calls, {stats:?}\n{}",
            pieces.len(),
            calls.len(),
            show(&out)
        );
    }
    let responses = check_output(
        &out,
        &calls,
        &stats,
        config,
        closed,
        peer_eof || quiet_close || upgraded.is_some(),
        deferred_expired + sinks.timed_out(),
    );

    let finals = responses.iter().filter(|r| !r.interim).count();
    let interims = responses.len() - finals;
    assert!(
        calls.len() * 2 <= newlines,
        "{} handler calls from a stream with {newlines} line feeds",
        calls.len()
    );
    assert!(
        finals <= newlines / 2 + 1,
        "{finals} responses from a stream with {newlines} line feeds"
    );
    assert!(interims <= calls.len() + 1, "{interims} interim responses");
    assert_eq!(
        stats.timeouts,
        u64::from(timed_out) + deferred_expired,
        "timeouts counter"
    );
    Transcript {
        calls,
        responses,
        stats,
        closed,
        open_after_stream,
        idle,
        upgraded,
    }
}

/// What the harness keeps to act on between and after `send`s.
struct Harness<'a> {
    waiting: &'a Waiting,
    log: &'a Log,
    paused: &'a Paused,
    streams: &'a Streams,
}

impl Harness<'_> {
    /// Takes the connection's output, answering the deferred responses,
    /// waking the paused sinks and sending the rest of the streamed
    /// responses meant to go on after a `send` (`at_end`: all of them), each
    /// of which may let held-back requests through, which may do so again.
    fn receive<H: Handler>(&self, conn: &mut MemoryConn<H>, at_end: bool) -> Vec<u8> {
        let mut got = conn.recv();
        loop {
            let next = {
                let mut list = self.waiting.lock();
                let at = list.iter().position(|d| !d.at_end);
                at.map(|i| list.remove(i))
            };
            if let Some(d) = next {
                let reply = answer(d.responder, &d.body, d.http10);
                self.log.lock()[d.index].reply = reply;
            } else if !self.paused.wake(at_end) && !self.streams.send_due(conn, at_end, &mut got) {
                return got;
            }
            got.extend_from_slice(&conn.recv());
        }
    }
}

/// One line per handler call, for failure messages.
fn describe(calls: &[Call]) -> String {
    let mut s = String::new();
    for c in calls {
        let r = &c.reply;
        let _ = writeln!(
            s,
            "{} {} http10={} body=\"{}\" -> status={} {:?} keep_alive={} panicked={} echoed={} body=\"{}\"",
            c.method,
            c.target,
            c.http10,
            show(&c.body),
            r.status,
            r.framing,
            r.keep_alive,
            r.panicked,
            r.echoed.len(),
            show(&r.body)
        );
    }
    s
}

/// `KEEL_FUZZ_DEBUG=1` prints every transcript (for looking at one input).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("KEEL_FUZZ_DEBUG").is_some())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Bytes for a failure message: escaped, with the middle cut out when long.
fn show(bytes: &[u8]) -> String {
    const HALF: usize = 1500;
    let escape = |part: &[u8]| -> String {
        part.iter()
            .flat_map(|&b| std::ascii::escape_default(b))
            .map(char::from)
            .collect::<String>()
            .replace("\\r\\n", "\\r\\n\n")
    };
    if bytes.len() <= 2 * HALF {
        return escape(bytes);
    }
    format!(
        "{}\n... ({} bytes in all) ...\n{}",
        escape(&bytes[..HALF]),
        bytes.len(),
        escape(&bytes[bytes.len() - HALF..])
    )
}

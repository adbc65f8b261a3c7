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

mod streaming;

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

/// One response as it came out.
struct Parsed {
    interim: bool,
    /// Its bytes, `Date` values blanked.
    normalized: Vec<u8>,
}

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

/// The parts of a response head the checks look at.
struct Head {
    len: usize,
    status: u16,
    content_length: Vec<Vec<u8>>,
    transfer_encoding: Vec<Vec<u8>>,
    connection: Vec<Vec<u8>>,
    dates: Vec<Vec<u8>>,
    servers: Vec<Vec<u8>>,
    content_type: Vec<Vec<u8>>,
    echoed: Vec<Vec<u8>>,
    partial: bool,
}

fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err("truncated response head".into()),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    if response.version != Some(1) {
        return Err("not an HTTP/1.1 response".into());
    }
    let mut head = Head {
        len,
        status: response.code.unwrap_or_default(),
        content_length: Vec::new(),
        transfer_encoding: Vec::new(),
        connection: Vec::new(),
        dates: Vec::new(),
        servers: Vec::new(),
        content_type: Vec::new(),
        echoed: Vec::new(),
        partial: false,
    };
    for h in response.headers.iter() {
        let value = h.value.to_vec();
        match h.name.to_ascii_lowercase().as_str() {
            "content-length" => head.content_length.push(value),
            "transfer-encoding" => head.transfer_encoding.push(value),
            "connection" => head.connection.push(value),
            "date" => head.dates.push(value),
            "server" => head.servers.push(value),
            "content-type" => head.content_type.push(value),
            "x-echo" => head.echoed.push(value),
            "x-partial" => head.partial = true,
            _ => {}
        }
    }
    Ok(head)
}

/// Splits the output into responses and checks each against the handler's
/// log, then the whole against the counters. Panics on any violation.
/// `answered_timeouts`: timeouts counted for requests the handler took (a
/// deferred answer not given in time, a streamed body not arriving in time).
fn check_output(
    out: &[u8],
    calls: &[Call],
    stats: &keel::Stats,
    config: &Config,
    closed: bool,
    quiet_close: bool,
    answered_timeouts: u64,
) -> Vec<Parsed> {
    let fail = |at: usize, what: String| -> ! {
        panic!(
            "{what} (response at byte {at})\n--- output:\n{}\n--- handler calls:\n{}--- {stats:?}",
            show(out),
            describe(calls)
        )
    };
    let mut responses = Vec::new();
    let mut pos = 0;
    let mut finals = 0usize;
    let mut last_closes = false;
    let (mut seen_4xx, mut seen_5xx) = (0u64, 0u64);
    while pos < out.len() {
        let rest = &out[pos..];
        let head = parse_head(rest).unwrap_or_else(|e| fail(pos, e));
        let status = head.status;
        if (100..200).contains(&status) && status != 101 {
            if &rest[..head.len] != b"HTTP/1.1 100 Continue\r\n\r\n" {
                fail(pos, "unexpected interim response".into());
            }
            if responses.last().is_some_and(|r: &Parsed| r.interim) {
                fail(pos, "two interim responses in a row".into());
            }
            responses.push(Parsed {
                interim: true,
                normalized: rest[..head.len].to_vec(),
            });
            pos += head.len;
            continue;
        }
        let call = calls.get(finals);
        finals += 1;
        match status {
            400..=499 => seen_4xx += 1,
            500..=599 => seen_5xx += 1,
            _ => {}
        }
        let is_head = call.is_some_and(|c| c.method == "HEAD");
        let closes = head
            .connection
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"close"));
        let keep_alive_header = head
            .connection
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"keep-alive"));
        if head.dates.len() != 1 || head.dates[0].len() != 29 {
            fail(pos, "needs one 29-byte Date".into());
        }
        let server: Vec<Vec<u8>> = config
            .server_name
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        if head.servers != server {
            fail(pos, format!("Server headers should be {server:?}"));
        }
        if head.content_length.len() > 1 || head.transfer_encoding.len() > 1 {
            fail(pos, "repeated framing header".into());
        }
        if !head.content_length.is_empty() && !head.transfer_encoding.is_empty() {
            fail(pos, "both Content-Length and Transfer-Encoding".into());
        }
        let length = head.content_length.first().map(|v| {
            std::str::from_utf8(v)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or_else(|| fail(pos, "bad Content-Length".into()))
        });
        let chunked = match head.transfer_encoding.first() {
            None => false,
            Some(v) if v.as_slice() == b"chunked" => true,
            Some(_) => fail(pos, "bad Transfer-Encoding".into()),
        };
        // A 101 ends HTTP on the connection: no body, nothing after it.
        let no_body_status = matches!(status, 101 | 204 | 304);
        if no_body_status && (length.is_some() || chunked) {
            fail(pos, format!("framing header on a {status}"));
        }
        // Where the body ends, by the response's own framing.
        let body_start = head.len;
        let (body, end) = if no_body_status || is_head {
            (Vec::new(), body_start)
        } else if chunked {
            decode_chunked(&rest[body_start..])
                .map(|(body, n)| (body, body_start + n))
                .unwrap_or_else(|e| fail(pos, e))
        } else if let Some(n) = length {
            if rest.len() - body_start < n {
                fail(pos, format!("Content-Length {n} but fewer bytes follow"));
            }
            (rest[body_start..body_start + n].to_vec(), body_start + n)
        } else {
            if !closes {
                fail(
                    pos,
                    "body delimited by close without Connection: close".into(),
                );
            }
            (rest[body_start..].to_vec(), rest.len())
        };
        if closes && pos + end != out.len() {
            fail(pos, "bytes after a Connection: close response".into());
        }
        if status == 101 && pos + end != out.len() {
            fail(pos, "bytes after a 101 Switching Protocols".into());
        }
        last_closes = closes;

        match call {
            Some(call) => {
                let reply = &call.reply;
                if status != reply.status {
                    fail(
                        pos,
                        format!("status {status}, handler wanted {}", reply.status),
                    );
                }
                if closes == reply.keep_alive {
                    fail(
                        pos,
                        format!(
                            "Connection: close is {closes}, keep-alive was {}",
                            reply.keep_alive
                        ),
                    );
                }
                if call.http10 && reply.keep_alive && !keep_alive_header {
                    fail(
                        pos,
                        "HTTP/1.0 keep-alive without Connection: keep-alive".into(),
                    );
                }
                if head.partial {
                    fail(pos, "a panicking handler's half response leaked".into());
                }
                let trim = |v: &Vec<u8>| v.trim_ascii().to_vec();
                let echoed: Vec<Vec<u8>> = reply.echoed.iter().map(trim).collect();
                if head.echoed.iter().map(trim).collect::<Vec<_>>() != echoed {
                    fail(pos, format!("X-Echo headers differ from {echoed:?}"));
                }
                if !no_body_status {
                    let framing_ok = match reply.framing {
                        BodyFraming::Length => length == Some(reply.body.len()),
                        BodyFraming::Chunked => chunked,
                        BodyFraming::UntilClose => length.is_none() && !chunked && closes,
                    };
                    if !framing_ok {
                        fail(pos, format!("framing differs from {:?}", reply.framing));
                    }
                    if !is_head && body != reply.body {
                        fail(pos, "body differs from what the handler wrote".into());
                    }
                }
            }
            None if finals == calls.len() + 1 => {
                // The server's own answer to a refused request, or a 408.
                let known = [400, 408, 413, 414, 417, 431, 501, 505];
                if !known.contains(&status) {
                    fail(pos, format!("unexpected status {status} from the server"));
                }
                if !closes {
                    fail(pos, "an error response must close the connection".into());
                }
                if body.last() != Some(&b'\n') || length != Some(body.len()) {
                    fail(
                        pos,
                        "an error response has a text body with a length".into(),
                    );
                }
                if head.content_type != [b"text/plain; charset=utf-8".to_vec()] {
                    fail(pos, "an error response is text/plain".into());
                }
            }
            None => fail(
                pos,
                "more responses than handler calls plus one error".into(),
            ),
        }
        let mut normalized = rest[..end].to_vec();
        if let Some(at) = find(&normalized[..head.len], b"\r\nDate: ") {
            normalized[at + 8..at + 8 + 29].fill(b'x');
        }
        responses.push(Parsed {
            interim: false,
            normalized,
        });
        pos += end;
    }

    let fail = |what: String| fail(out.len(), what);
    // A streamed body still arriving when the input ended: its call (the
    // last) has no answer yet, and counts as a request.
    let unanswered = calls.iter().filter(|c| c.reply.status == 0).count();
    if unanswered > 1 || (unanswered == 1 && calls.last().is_some_and(|c| c.reply.status != 0)) {
        fail("an unanswered call before the last".into());
    }
    if (finals + unanswered) as u64 != stats.requests {
        fail(format!(
            "{finals} responses, requests counter {}",
            stats.requests
        ));
    }
    let refused = stats.parse_errors + stats.timeouts - answered_timeouts;
    if refused > 1 || calls.len() as u64 + refused != stats.requests {
        fail(format!(
            "{} handler calls do not add up with the counters",
            calls.len()
        ));
    }
    if (finals > calls.len()) != (refused == 1) {
        fail("the server's error response and its counter disagree".into());
    }
    let panics = calls.iter().filter(|c| c.reply.panicked).count() as u64;
    if stats.handler_panics != panics {
        fail(format!(
            "handler_panics {}, {panics} panicked",
            stats.handler_panics
        ));
    }
    if (stats.responses_4xx, stats.responses_5xx) != (seen_4xx, seen_5xx) {
        fail(format!("4xx/5xx counters, saw {seen_4xx}/{seen_5xx}"));
    }
    if stats.bytes_out != out.len() as u64 {
        fail(format!("bytes_out {}", stats.bytes_out));
    }
    if last_closes && !closed {
        fail("still open after Connection: close".into());
    }
    if closed && !last_closes && !quiet_close {
        fail("closed without saying Connection: close".into());
    }
    responses
}

/// Decodes the chunked body at the start of `bytes`, strictly as keel writes
/// it (no extensions, no trailers). Returns the body and the encoded length.
fn decode_chunked(bytes: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = find(&bytes[pos..], b"\r\n").ok_or("truncated chunk size")? + pos;
        let digits = std::str::from_utf8(&bytes[pos..line_end]).map_err(|_| "chunk size")?;
        let size =
            usize::from_str_radix(digits, 16).map_err(|_| format!("chunk size {digits:?}"))?;
        if digits.is_empty() || digits.starts_with(['+', '-']) {
            return Err(format!("chunk size {digits:?}"));
        }
        pos = line_end + 2;
        if size == 0 {
            if bytes.get(pos..pos + 2) != Some(&b"\r\n"[..]) {
                return Err("no CRLF after the last chunk".into());
            }
            return Ok((body, pos + 2));
        }
        let data = bytes.get(pos..pos + size).ok_or("truncated chunk")?;
        body.extend_from_slice(data);
        pos += size;
        if bytes.get(pos..pos + 2) != Some(&b"\r\n"[..]) {
            return Err("no CRLF after chunk data".into());
        }
        pos += 2;
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

// ---------------------------------------------------------------------------
// The structured request generator of `pipeline`
// ---------------------------------------------------------------------------

/// A request the generator wrote, as the handler should see it.
struct Sent {
    method: String,
    target: String,
    http10: bool,
    body: Vec<u8>,
    /// The connection must close after its response.
    closes: bool,
    /// It switches protocols: what follows it is no longer HTTP.
    upgrades: bool,
    /// The trailer fields a streamed body's sink must be told.
    trailers: Vec<(String, Vec<u8>)>,
    /// Where it ends in the byte stream.
    end: usize,
}

fn generate_request(cur: &mut Cursor<'_>, wire: &mut Vec<u8>) -> Sent {
    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
    const TARGETS: [&str; 20] = [
        "/",
        "/echo?q=a%20b&r=+",
        "/chunked",
        "/big",
        "/status",
        "/write",
        "/hdr",
        "/close",
        "/panic",
        "/misuse",
        "http://fuzz/echo",
        "*",
        "/defer",
        "/stream",
        "/stream/1",
        "/stream/3",
        "/stream/10",
        "/stream/18",
        "/pieces",
        "/upgrade",
    ];
    let method = METHODS[usize::from(cur.byte()) % METHODS.len()];
    let mut target = TARGETS[usize::from(cur.byte()) % TARGETS.len()];
    if target == "*" && method != "OPTIONS" {
        target = "/";
    }
    let flags = cur.byte();
    let http10 = flags & 1 != 0;
    let keep_alive_10 = flags & 2 != 0;
    let close = flags & 4 != 0;
    let lower = flags & 8 != 0;
    let mut kind = (flags >> 4) & 3; // 0 none, 1 length, 2 chunked, 3 "Content-Length: 0"
    let expect = flags & 64 != 0;
    let trailers = flags & 128 != 0;
    if http10 && kind == 2 {
        kind = 1; // chunked is not HTTP/1.0
    }
    let len = usize::from(cur.byte());
    let body = if kind == 1 || kind == 2 {
        cur.take(len).to_vec()
    } else {
        Vec::new()
    };
    let name = |n: &'static str| {
        if lower {
            n.to_ascii_lowercase()
        } else {
            n.to_owned()
        }
    };

    let _ = write!(
        wire_str(wire),
        "{method} {target} HTTP/1.{}\r\n{}: fuzz\r\n",
        u8::from(!http10),
        name("Host")
    );
    if http10 && keep_alive_10 {
        let _ = write!(wire_str(wire), "{}: keep-alive\r\n", name("Connection"));
    }
    if close {
        let _ = write!(wire_str(wire), "{}: close\r\n", name("Connection"));
    }
    let upgrade = target == "/upgrade";
    if upgrade {
        let _ = write!(
            wire_str(wire),
            "{}: upgrade\r\n{}: x\r\n",
            name("Connection"),
            name("Upgrade")
        );
    }
    if expect && !http10 && kind != 0 {
        let _ = write!(wire_str(wire), "{}: 100-continue\r\n", name("Expect"));
    }
    match kind {
        1 => {
            let _ = write!(
                wire_str(wire),
                "{}: {}\r\n\r\n",
                name("Content-Length"),
                body.len()
            );
            wire.extend_from_slice(&body);
        }
        2 => {
            let _ = write!(
                wire_str(wire),
                "{}: chunked\r\n\r\n",
                name("Transfer-Encoding")
            );
            let mut rest = &body[..];
            while !rest.is_empty() {
                let size_byte = cur.byte();
                let size = (usize::from(size_byte) % 64 + 1).min(rest.len());
                let (chunk, after) = rest.split_at(size);
                if size_byte & 64 != 0 {
                    let _ = write!(wire_str(wire), "{size:X};ext=\"v\"\r\n");
                } else {
                    let _ = write!(wire_str(wire), "{size:x}\r\n");
                }
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
                rest = after;
            }
            wire.extend_from_slice(b"0\r\n");
            if trailers {
                wire.extend_from_slice(b"X-Trailer: yes\r\n");
            }
            wire.extend_from_slice(b"\r\n");
        }
        3 => {
            let _ = write!(wire_str(wire), "{}: 0\r\n\r\n", name("Content-Length"));
        }
        _ => wire.extend_from_slice(b"\r\n"),
    }
    let streamed_body = target.starts_with(streaming::STREAM_PREFIX);
    // Answered by `answer`, which may stream its body (to close, for 1.0).
    let answer_closes = http10 && body.len() / 4 % 3 == 1;
    let defer_closes = (target == "/defer" && (body.len() % 4 == 2 || answer_closes))
        || (streamed_body && answer_closes);
    let path_closes = defer_closes
        || matches!(target, "/close" | "/panic" | "/misuse")
        || (http10 && matches!(target, "/chunked" | "/pieces"))
        || (http10 && target == "/status" && body.len() / 2 % 3 == 2);
    Sent {
        method: method.to_owned(),
        target: target.to_owned(),
        http10,
        closes: close || (http10 && !keep_alive_10) || path_closes,
        // RFC 9110 §7.8: not for HTTP/1.0; not on a closing connection.
        upgrades: upgrade && !http10 && !close,
        trailers: if streamed_body && kind == 2 && trailers {
            vec![("x-trailer".to_owned(), b"yes".to_vec())]
        } else {
            Vec::new()
        },
        end: wire.len(),
        body,
    }
}

/// Lets `write!` append formatted text to the byte vector.
fn wire_str(wire: &mut Vec<u8>) -> impl std::fmt::Write + '_ {
    struct W<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    W(wire)
}

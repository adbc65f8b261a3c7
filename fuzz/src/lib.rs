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
//! This file (with its modules) is also compiled into
//! `crates/keel/tests/fuzz_regressions.rs` (through `#[path]`), which
//! replays saved inputs through the same entry points: [`conn_bytes`],
//! [`differential_split`], [`pipeline`], [`strict_split`] and [`scanners`]
//! (which checks keel's word-at-a-time scans against byte-at-a-time ones). It must therefore depend on
//! nothing but `keel`, `httparse` and `std`.

mod check;
mod generate;
mod handler;
mod input;
mod scanners;
mod streaming;
mod strict;

use check::{check_output, Parsed};
use generate::generate_request;
use handler::{answer, install_panic_filter, BodyFraming, Call, FuzzHandler, Log, Reply, Waiting};
use input::{split_at_lengths, Cursor, Finish, Plan};
use keel::testing::MemoryConn;
use keel::{Config, Handler};
pub use scanners::scanners;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;
use streaming::{Paused, Sinks, Streams};
pub use strict::strict_split;

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
    same_answers_whole_and_split(&plan.config, plan.stream, &plan.pieces, plan.finish);
}

/// Runs `stream` in one piece and split into `pieces` (with a 1-byte pool
/// buffer and no output allowance for an odd count of pieces) and asserts
/// both gave the same answers, handler calls and counters. Returns the
/// one-piece transcript.
fn same_answers_whole_and_split(
    config: &Config,
    stream: &[u8],
    pieces: &[&[u8]],
    finish: Finish,
) -> Transcript {
    let whole = run(config, &[stream], finish);
    let mut config = config.clone();
    if pieces.len() % 2 == 1 {
        config.buffer_size = 1;
        config.max_pooled_buffer = 1;
        config.max_output_buffered = 0;
        config.stream_window = 0;
    }
    let split = run(&config, pieces, finish);
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
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
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
    whole
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
        config.stream_window = 0;
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

//! The allocation budget of the streamed paths, measured after warm-up
//! with [`MemoryConn`] (the worker's code, no sockets):
//!
//! - a streamed request body read by a sink on the worker and answered
//!   through a [`Responder`]: 5 allocations per upload (the deferral's
//!   claim, the sink's box, the `SinkWaker`'s state, the responder's 1 KiB
//!   buffer, and that buffer frozen into a shared segment when spliced into
//!   the output, http1/output.rs `Output::splice`), the same for 1 piece or
//!   100 (`Content-Length` or chunked) arriving in one read: nothing per
//!   piece;
//! - and nothing more when the body arrives in many `send`s, as over a
//!   socket in many reads: the stream keeps its 128 KiB read buffer until
//!   the body ends (http1/conn/buffers.rs `release_buffers`), instead of
//!   giving it back after each read to a pool too small to keep it;
//! - a streamed response from the handler ([`Response::stream`]), its
//!   pieces sent with `try_send` on the connection's thread, each taken by
//!   the connection before the next: 2 per response (the stream's shared
//!   queue, and the queue's buffer on the first piece), nothing per piece;
//!   from a [`Responder::stream`]: 5 (the claim, the head's buffer, the
//!   queue, its buffer, the head frozen when spliced);
//! - a streamed response produced on the worker by a [`BodySource`]
//!   ([`Response::stream_from`]): 1 per response (the source's box),
//!   nothing per piece, and no message;
//! - on top of these, the worker's channel (crossbeam-channel's unbounded
//!   list flavour) allocates a block per 31 messages: an upload sends one
//!   (its answer), a streamed response one per piece sent after the last
//!   was taken, and one to end. See [`assert_budget`].
//!
//! Its own test binary, without the test harness (`harness = false` in
//! Cargo.toml, a plain `main`): the counting allocator sees every thread of
//! the process, and the harness's own thread allocates while it reports a
//! test starting, which made one count in eight a few allocations high.

use keel::body::{BodyError, BodySink, SinkWaker, Trailers};
use keel::testing::{allocations, CountingAllocator, MemoryConn};
use keel::{BodySource, BodyStream, Handler, Pull, Request, Responder, Response};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Requests measured per count (after as many for warm-up).
const ROUNDS: u64 = 20;
/// The bytes of one body piece.
const PIECE: &[u8] = b"0123456789abcdef";

/// Allocations per upload: see the module's comment.
const PER_UPLOAD: u64 = 5;
/// Allocations per streamed response: see the module's comment.
const PER_STREAM: u64 = 2;
/// Allocations per [`Responder::stream`]: see the module's comment.
const PER_DEFERRED_STREAM: u64 = 5;
/// Allocations per [`Response::stream_from`]: see the module's comment.
const PER_SOURCE: u64 = 1;

/// Counts a streamed body's bytes, then answers with the count.
struct Counting {
    bytes: usize,
    responder: Option<Responder>,
}

impl BodySink for Counting {
    fn data(&mut self, data: &[u8], _: &SinkWaker) -> usize {
        self.bytes += data.len();
        data.len()
    }

    fn end(&mut self, _: &Trailers<'_>) {
        let bytes = self.bytes;
        if let Some(responder) = self.responder.take() {
            responder.respond(|res| {
                let _ = write!(res, "{bytes}");
            });
        }
    }

    fn fail(&mut self, error: BodyError) {
        if let Some(responder) = self.responder.take() {
            responder.respond(|res| res.status(error.status()).body(b""));
        }
    }
}

/// Streams every request's body into a [`Counting`] sink.
struct Upload;

impl Handler for Upload {
    fn streams_body(&self, _: &Request<'_>) -> bool {
        true
    }

    fn handle(&self, _: &Request<'_>, res: &mut Response<'_>) {
        let responder = Some(res.defer());
        res.read_body(Counting {
            bytes: 0,
            responder,
        });
    }
}

/// Allocations of [`ROUNDS`] uploads of `pieces` pieces (`Content-Length`
/// or chunked, one chunk a piece), after as many uploads to warm up. With
/// `apart`, the head and each piece come in a `send` of their own; else the
/// whole request comes in one.
fn uploads(conn: &mut MemoryConn<Upload>, pieces: usize, chunked: bool, apart: bool) -> u64 {
    let len = pieces * PIECE.len();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {len}")
    };
    let head = format!("PUT /up HTTP/1.1\r\nHost: a\r\n{framing}\r\n\r\n").into_bytes();
    let chunk = [b"10\r\n", PIECE, b"\r\n"].concat();
    let piece: &[u8] = if chunked { &chunk } else { PIECE };
    let last: &[u8] = if chunked { b"0\r\n\r\n" } else { b"" };
    let whole = [head.as_slice(), &piece.repeat(pieces), last].concat();
    let want = format!("\r\n\r\n{len}").into_bytes();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut counted = 0;
    for round in 0..2 * ROUNDS {
        let before = allocations();
        if apart {
            conn.send(&head);
            for _ in 0..pieces {
                conn.send(piece);
            }
            conn.send(last);
        } else {
            conn.send(&whole);
        }
        assert!(conn.settle(Duration::from_secs(5)));
        conn.recv_into(&mut out);
        let spent = allocations() - before;
        assert!(out.ends_with(&want), "{}", String::from_utf8_lossy(&out));
        out.clear();
        if round >= ROUNDS {
            counted += spent;
        }
    }
    counted
}

fn a_streamed_upload_costs_a_fixed_count_and_nothing_per_piece() {
    let mut conn = MemoryConn::new(Upload);
    for chunked in [false, true] {
        for pieces in [1u64, 100] {
            let spent = uploads(&mut conn, pieces as usize, chunked, false);
            // One message each: the answer.
            let what = format!("an upload of {pieces} pieces, chunked {chunked}");
            assert_budget(spent, PER_UPLOAD, ROUNDS, &what);
        }
    }
}

/// A body whose sink took all it was offered, arriving in 100 `send`s,
/// costs what one in a single `send` does: nothing per read.
fn a_streamed_upload_read_in_many_sends_costs_nothing_per_read() {
    let mut conn = MemoryConn::new(Upload);
    for chunked in [false, true] {
        let one = uploads(&mut conn, 1, chunked, true);
        let many = uploads(&mut conn, 100, chunked, true);
        assert!(
            many.abs_diff(one) <= 2,
            "chunked {chunked}: {} more for 99 more sends",
            many - one
        );
    }
}

/// Holds `spent`, the allocations of [`ROUNDS`] requests, to `per` each
/// plus what the worker's channel allocates for `messages` messages:
/// crossbeam-channel's unbounded (list) channel allocates one block per 31
/// messages, so a count may be one block off either way by where in a
/// block the measured requests began.
fn assert_budget(spent: u64, per: u64, messages: u64, what: &str) {
    let fixed = per * ROUNDS;
    let blocks = messages / 31;
    assert!(
        (fixed + blocks.saturating_sub(1)..=fixed + blocks + 1).contains(&spent),
        "{what}: {spent} allocations for {ROUNDS}, want {per} each and {blocks} channel blocks"
    );
}

/// Where the handler leaves each response's stream for the test to feed.
type Parked = Arc<Mutex<Vec<BodyStream>>>;

/// Allocations of [`ROUNDS`] streamed responses of `pieces` pieces, after
/// as many to warm up; the handler (`deferred`: its responder) starts the
/// stream and parks it, the test sends each piece with `try_send` and lets
/// the connection take it before the next.
fn streams(conn: &mut MemoryConn<impl Handler>, parked: &Parked, pieces: usize) -> u64 {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut counted = 0;
    for round in 0..2 * ROUNDS {
        let before = allocations();
        conn.send(b"GET /s HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut stream = parked.lock().unwrap().pop().expect("a stream");
        for _ in 0..pieces {
            assert_eq!(stream.try_send(PIECE), Ok(true));
            conn.recv_into(&mut out);
        }
        stream.finish().expect("finished");
        assert!(conn.settle(Duration::from_secs(5)));
        conn.recv_into(&mut out);
        let spent = allocations() - before;
        assert!(out.ends_with(b"\r\n0\r\n\r\n"));
        out.clear();
        if round >= ROUNDS {
            counted += spent;
        }
    }
    counted
}

fn a_streamed_response_costs_a_fixed_count_and_nothing_per_piece() {
    let parked: Parked = Arc::new(Mutex::new(Vec::with_capacity(4)));
    let from_handler = {
        let parked = Arc::clone(&parked);
        move |_: &Request<'_>, res: &mut Response<'_>| {
            let stream = res.stream();
            parked.lock().unwrap().push(stream);
        }
    };
    let mut conn = MemoryConn::new(from_handler);
    for pieces in [1u64, 100] {
        // A message per piece (each sent once the last was taken), and the end's.
        let spent = streams(&mut conn, &parked, pieces as usize);
        let what = format!("Response::stream, {pieces} pieces");
        assert_budget(spent, PER_STREAM, (pieces + 1) * ROUNDS, &what);
    }

    let deferred = {
        let parked = Arc::clone(&parked);
        move |_: &Request<'_>, res: &mut Response<'_>| {
            let stream = res.defer().stream(|_| {}).expect("not abandoned");
            parked.lock().unwrap().push(stream);
        }
    };
    let mut conn = MemoryConn::new(deferred);
    for pieces in [1u64, 100] {
        // As above, and the head's message.
        let spent = streams(&mut conn, &parked, pieces as usize);
        let what = format!("Responder::stream, {pieces} pieces");
        assert_budget(spent, PER_DEFERRED_STREAM, (pieces + 2) * ROUNDS, &what);
    }
}

/// Sends `left` pieces, one a pull, then finishes.
struct Pieces {
    left: usize,
}

impl BodySource for Pieces {
    fn pull(&mut self, out: &mut Pull<'_>) {
        if self.left == 0 {
            out.finish().expect("chunked");
            return;
        }
        out.send(PIECE).expect("chunked");
        self.left -= 1;
    }
}

fn a_response_from_a_source_costs_its_box_and_nothing_per_piece() {
    let pieces = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler = {
        let pieces = Arc::clone(&pieces);
        move |_: &Request<'_>, res: &mut Response<'_>| {
            let left = pieces.load(std::sync::atomic::Ordering::Relaxed);
            res.stream_from(Pieces { left });
        }
    };
    let mut conn = MemoryConn::new(handler);
    let mut out = Vec::with_capacity(64 * 1024);
    for count in [1usize, 100] {
        pieces.store(count, std::sync::atomic::Ordering::Relaxed);
        let mut counted = 0;
        for round in 0..2 * ROUNDS {
            let before = allocations();
            conn.send(b"GET /s HTTP/1.1\r\nHost: a\r\n\r\n");
            assert!(conn.settle(Duration::from_secs(5)));
            conn.recv_into(&mut out);
            let spent = allocations() - before;
            let body_len = out.windows(PIECE.len()).filter(|w| w == &PIECE).count();
            assert_eq!(body_len, count, "{}", String::from_utf8_lossy(&out));
            assert!(out.ends_with(b"\r\n0\r\n\r\n"));
            out.clear();
            if round >= ROUNDS {
                counted += spent;
            }
        }
        assert_eq!(
            counted,
            PER_SOURCE * ROUNDS,
            "Response::stream_from, {count} pieces: {counted} allocations for {ROUNDS}"
        );
    }
}

/// One test: the counting allocator sees every thread, the test harness's
/// included (it reports a finished test while the next runs).
fn main() {
    the_streamed_paths_hold_their_allocation_budgets();
    println!("stream_alloc: the streamed paths hold their allocation budgets");
}

fn the_streamed_paths_hold_their_allocation_budgets() {
    a_streamed_upload_costs_a_fixed_count_and_nothing_per_piece();
    a_streamed_upload_read_in_many_sends_costs_nothing_per_read();
    a_streamed_response_costs_a_fixed_count_and_nothing_per_piece();
    a_response_from_a_source_costs_its_box_and_nothing_per_piece();
}

//! The allocation budget of deferring a request, on the worker's side:
//! one allocation (the claim the worker and the responder share, which
//! lets an abandoned request's job be skipped), and two more when an
//! access log watches it (a copy of the line's request fields and the
//! observer's box).
//!
//! Its own test binary: the counting allocator sees every thread of the
//! process, so no other test may run beside it.

use keel::middleware::{AccessLog, HandlerExt, LogFormat};
use keel::testing::MemoryConn;
use keel::{Handler, Request, Responder, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[global_allocator]
static GLOBAL: keel::testing::CountingAllocator = keel::testing::CountingAllocator;

const ROUNDS: usize = 100;
const REQUEST: &[u8] = b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n";

/// A handler that parks each responder in `parked` (room made beforehand).
fn parking(parked: &Arc<Mutex<Vec<Responder>>>) -> impl Handler {
    let parked = Arc::clone(parked);
    move |_: &Request<'_>, res: &mut Response<'_>| parked.lock().unwrap().push(res.defer())
}

/// Allocations of the worker's side of deferring [`ROUNDS`] requests:
/// counted while each request is dispatched and deferred, not while the
/// responder answers on its own.
fn per_deferral(conn: &mut MemoryConn<impl Handler>, parked: &Arc<Mutex<Vec<Responder>>>) -> u64 {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut counted = 0;
    for round in 0..=ROUNDS {
        let before = keel::testing::allocations();
        conn.send(REQUEST);
        let spent = keel::testing::allocations() - before;
        if round > 0 {
            counted += spent; // round 0 warms up the buffers
        }
        let responder = parked.lock().unwrap().pop().expect("deferred");
        assert!(responder.respond(|res| res.body(b"later")));
        assert!(conn.settle(Duration::from_secs(5)));
        out.clear();
        conn.recv_into(&mut out);
        assert!(out.ends_with(b"\r\n\r\nlater"));
    }
    counted
}

#[test]
fn deferring_costs_one_allocation_and_an_access_log_two_more() {
    let parked = Arc::new(Mutex::new(Vec::with_capacity(4)));
    let mut plain = MemoryConn::new(parking(&parked));
    assert_eq!(
        per_deferral(&mut plain, &parked),
        ROUNDS as u64,
        "one each: the shared claim"
    );

    // No timed sweeps: the writer thread moves buffers only when told.
    let log = AccessLog::new(LogFormat::Json, std::io::sink())
        .unwrap()
        .flush_every(Duration::from_secs(3600));
    let handle = log.handle();
    let mut logged = MemoryConn::new(parking(&parked).with(log));
    // Warm-up: this thread's log buffer grows to hold a run's lines, and
    // the writer's first sweep sizes its spare buffer to match.
    per_deferral(&mut logged, &parked);
    handle.flush_now(); // (allocates its reply channel)
    assert_eq!(
        per_deferral(&mut logged, &parked),
        3 * ROUNDS as u64,
        "three each: the claim, the copied request fields, the observer's box"
    );
}

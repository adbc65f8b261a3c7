//! Deferring a response: handing it to a [`Responder`] that answers
//! later from any thread, or to a job on the blocking pool, and what the
//! worker keeps to see how it ended.

use super::{Response, ResponseShape, Stage};
use crate::deferred::{Deferral, DeferredOutcome, Responder, Watch};
use crate::field;
use crate::StatusCode;
use std::time::Duration;

impl<'a> Response<'a> {
    /// Lets this response be deferred to `deferral` for connection `key`.
    pub(crate) fn allow_defer(&mut self, deferral: &'a Deferral, key: usize) {
        self.deferral = Some((deferral, key));
    }

    /// Answers later, from any thread: returns a [`Responder`] that writes
    /// this response, and the handler returns without writing. Responses
    /// to later pipelined requests wait behind this one.
    ///
    /// Costs one small allocation (the claim the worker and the responder
    /// share: see [abandoned deferrals](Responder#abandoned-deferrals)),
    /// one channel message and, on the responder's side, one buffer
    /// allocation.
    ///
    /// # Panics
    ///
    /// When anything was already written, or inside a responder's own
    /// `respond` (it cannot be deferred twice).
    pub fn defer(&mut self) -> Responder {
        assert!(
            self.stage == Stage::Headers && self.out.len() == self.start,
            "defer() after the response was begun"
        );
        let (deferral, key) = self
            .deferral
            .expect("defer() on a response that cannot be deferred");
        let shape = ResponseShape {
            keep_alive: self.keep_alive,
            is_head: self.is_head,
            http10: self.http10,
        };
        let (responder, ticket, watch) = deferral.responder(key, shape);
        self.stage = Stage::Deferred { ticket };
        self.extras().watch = Some(watch);
        responder
    }

    /// For a deferred response: calls `observer` once, on the worker
    /// thread, when it ends: answered (with its real status and body
    /// size), timed out (keel's `503`), or its connection closed first.
    /// Middleware calls it in `after` to see what a deferred response
    /// became ([`AccessLog`](crate::middleware::AccessLog) does). Several
    /// observers run in the order they were added. Does nothing for a
    /// response that is not deferred.
    ///
    /// Allocates the observer's box.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{DeferredOutcome, Request, Response, StatusCode};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let seen = Arc::new(Mutex::new(None));
    /// let seen_by_app = Arc::clone(&seen);
    /// let mut conn = MemoryConn::new(move |_: &Request<'_>, res: &mut Response<'_>| {
    ///     let responder = res.defer();
    ///     let seen = Arc::clone(&seen_by_app);
    ///     res.on_deferred_end(move |outcome| *seen.lock().unwrap() = Some(outcome));
    ///     std::thread::spawn(move || {
    ///         responder.respond(|res| {
    ///             res.status(StatusCode::NOT_FOUND).body(b"gone");
    ///         })
    ///     });
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    /// assert!(conn.settle(Duration::from_secs(5)));
    /// assert_eq!(
    ///     *seen.lock().unwrap(),
    ///     Some(DeferredOutcome::Answered { status: StatusCode::NOT_FOUND, body_len: 4 })
    /// );
    /// ```
    pub fn on_deferred_end(&mut self, observer: impl FnOnce(DeferredOutcome) + Send + 'static) {
        if let Some(watch) = self.extras.as_mut().and_then(|e| e.watch.as_mut()) {
            watch.observe(observer);
        }
    }

    /// The worker's side of the deferral, for the connection to keep.
    pub(crate) fn take_watch(&mut self) -> Option<Watch> {
        self.extras.as_mut()?.watch.take()
    }

    /// Runs `work` on the global [blocking pool](crate::blocking::global) and
    /// lets it write the response there: sugar for [`Response::defer`] plus
    /// a pool job, for handlers that must block (a database call, a file).
    /// When the pool's queue is full, answers `503 Service Unavailable` with
    /// `Retry-After: 1` at once instead. A job whose deferral was
    /// [abandoned](crate::Responder#abandoned-deferrals) while it waited in
    /// the queue (the client got the deadline's `503`, or left) is skipped:
    /// `work` never runs, and a backlog of such jobs drains at once.
    ///
    /// Allocates the job's box, the responder's claim and, when it runs, the
    /// response buffer.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    /// use std::time::Duration;
    ///
    /// let mut conn = MemoryConn::new(|_req: &Request<'_>, res: &mut Response<'_>| {
    ///     res.offload(|res| {
    ///         std::thread::sleep(Duration::from_millis(10)); // stands for a blocking call
    ///         res.body(b"done");
    ///     });
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    /// assert!(conn.settle(Duration::from_secs(5)));
    /// assert!(conn.recv().ends_with(b"\r\n\r\ndone"));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`Response::defer`].
    pub fn offload(&mut self, work: impl FnOnce(&mut Response<'_>) + Send + 'static) {
        let responder = self.defer();
        let job = move |responder: Responder| {
            responder.respond(work);
        };
        if let Err((_full, responder)) = crate::blocking::global().spawn_answer(responder, job) {
            // The pool being full deserves a 503, written here at once:
            // abandon the deferral first, so the responder goes quietly.
            drop(self.take_watch());
            drop(responder);
            self.stage = Stage::Headers;
            self.status(StatusCode::SERVICE_UNAVAILABLE)
                .field(field!("Retry-After", "1"))
                .body(b"busy, try again\n");
        }
    }

    /// Gives this response, if it is deferred, its own deadline instead of
    /// [`Config::deferred_timeout`](crate::Config::deferred_timeout): past
    /// it the server answers `503` and closes. Middleware sets it before the
    /// handler runs ([`crate::middleware::Timeout`]).
    pub fn deferred_timeout(&mut self, after: Duration) -> &mut Self {
        self.deferred_timeout = Some(after);
        self
    }

    pub(crate) fn deferred_timeout_set(&self) -> Option<Duration> {
        self.deferred_timeout
    }

    /// Whether the handler handed this response to a [`Responder`].
    pub fn is_deferred(&self) -> bool {
        self.deferred_ticket().is_some()
    }

    /// The ticket of the deferral, if the handler deferred this response.
    pub(crate) fn deferred_ticket(&self) -> Option<u64> {
        match self.stage {
            Stage::Deferred { ticket } => Some(ticket),
            _ => None,
        }
    }
}

//! A connection's deferred answers: one arriving from its responder, and
//! the deadline that answers `503` when none came in time.

use super::{Conn, Env, Pending, Phase};
use crate::deferred::{Completion, DeferredOutcome};
use crate::http1::stream_out::{Producer, StreamOut};
use crate::{field, Handler, Response, StatusCode};

impl Conn {
    /// A deferred response arrived: queue it in order, if this connection
    /// still waits for it, and count it. Returns whether it was taken.
    pub(crate) fn complete_deferred<H: Handler + ?Sized>(
        &mut self,
        done: Completion,
        env: &mut Env<'_, H>,
    ) -> bool {
        let Some(mut pending) = self.deferred.take_if(|p| p.ticket == done.ticket) else {
            return false;
        };
        if let Some(status) = StatusCode::from_u16(done.status) {
            pending.watch.finish(DeferredOutcome::Answered {
                status,
                body_len: done.body_len,
            });
        }
        self.output.splice(done.bytes, done.large, env.pool);
        env.counters.count_status(done.status);
        env.answered(pending.started);
        match done.stream {
            Some(shared) => {
                self.stream_out = Some(StreamOut {
                    from: Producer::Queue(shared),
                    keep_alive: done.keep_alive,
                })
            }
            None => self.answer_complete(done.keep_alive),
        }
        true
    }

    /// The deferred response did not come in time: answer `503` and close;
    /// its responder, if it ever answers, is told the answer was not taken.
    /// When the responder claimed the answer first, it is on its way: wait.
    pub(crate) fn on_deferred_timeout<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) {
        if !self.deferred.as_ref().is_some_and(|p| p.watch.abandon()) {
            return;
        }
        let Some(Pending {
            is_head,
            started,
            mut watch,
            ..
        }) = self.deferred.take()
        else {
            return;
        };
        env.counters.timeouts.add(1);
        env.counters.count_status(503);
        env.answered(started);
        self.stream_in = None;
        let (out, large) = self.output.buf_and_large(env.pool);
        let mut res = Response::new(out, large, false, is_head, false, env.server);
        res.status(StatusCode::SERVICE_UNAVAILABLE)
            .field(field!("Retry-After", "1"))
            .field(field!("Content-Type", "text/plain; charset=utf-8"))
            .body(b"the response was not ready in time\n");
        watch.finish(DeferredOutcome::TimedOut {
            body_len: res.body_len(),
        });
        self.phase = Phase::Closing;
    }
}

//! A connection's streamed exchanges: a request body fed to its sink, a
//! response body pulled from its producer, and how either ending (or
//! failing) moves the connection on.

use super::{Conn, Env, Phase};
use crate::http1::stream_in::Fed;
use crate::http1::stream_out::Producer;
use crate::stream::StreamEnd;
use crate::Handler;

impl Conn {
    /// The answer to the last request is all queued: a streamed request
    /// body still arriving is not read on (the connection closes), and a
    /// connection that must close, closes.
    pub(super) fn answer_complete(&mut self, keep_alive: bool) {
        if self.stream_in.take().is_some() {
            // Its sink hears `Closed`; the unread rest is never parsed.
            self.errored = true;
            self.phase = Phase::Closing;
        }
        if !keep_alive || self.close_after_answer {
            self.phase = Phase::Closing;
        }
    }

    /// A streamed request body failed (its sink was told): read nothing
    /// more, and close once the answer is out.
    pub(super) fn body_failed(&mut self) {
        self.errored = true;
        if self.deferred.is_some() || self.stream_out.is_some() {
            self.close_after_answer = true;
        } else {
            self.phase = Phase::Closing;
        }
    }

    /// A paused body sink woke (its [`SinkWaker`]): offer it the rest.
    /// Returns whether it was this connection's sink.
    pub(crate) fn resume(&mut self, ticket: u64) -> bool {
        match &mut self.stream_in {
            Some(body) if body.waker.ticket() == ticket => {
                body.resume();
                self.held_back = true;
                true
            }
            _ => false,
        }
    }

    /// The worker gives up on this connection's streams (a silent
    /// producer's deadline): both sides hear it is closed.
    pub(crate) fn close_streams(&mut self) {
        self.stream_in = None;
        self.stream_out = None;
        self.phase = Phase::Closing;
    }

    /// Whether a streamed response with this ticket is in progress here.
    pub(crate) fn streams_out(&self, ticket: u64) -> bool {
        self.stream_out.as_ref().is_some_and(|out| match &out.from {
            Producer::Queue(shared) => shared.ticket() == ticket,
            Producer::Source(_) => false,
        })
    }

    /// Moves what a streamed response's producer queued (or a source adds
    /// now) into the output, while the output has room. Returns whether
    /// anything moved or the stream ended.
    #[inline(always)]
    pub(crate) fn pull_stream<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) -> bool {
        // Called after every write; most connections stream nothing, and
        // the worker's loop is kept free of the rest.
        self.stream_out.is_some() && self.pull_streaming(env)
    }

    #[inline(never)]
    fn pull_streaming<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) -> bool {
        let Some(out) = &mut self.stream_out else {
            return false;
        };
        // Past the window (`>`): with a window of 0, an empty output still
        // takes the next pieces.
        let pending = self.output.pending();
        let window = env.config.stream_window;
        if pending > window {
            return false;
        }
        let output = &mut self.output;
        let pool = &mut *env.pool;
        let (moved, end) = match &mut out.from {
            Producer::Queue(shared) => {
                let drained = shared.drain(|buf, large| output.append(buf, large, pool));
                (drained.moved, drained.end)
            }
            Producer::Source(source) => {
                let (buf, large) = output.buf_and_large(pool);
                source.pull(buf, large, window - pending)
            }
        };
        self.progress += moved as u64;
        match end {
            StreamEnd::Open => moved > 0,
            StreamEnd::Finished => {
                let keep_alive = out.keep_alive;
                self.stream_out = None;
                self.answer_complete(keep_alive);
                // Requests pipelined behind it wait in the buffer.
                self.held_back = true;
                true
            }
            StreamEnd::Aborted => {
                self.stream_out = None;
                self.stream_in = None;
                self.phase = Phase::Closing;
                true
            }
        }
    }

    /// Hands a streamed request body's buffered bytes to its sink. Returns
    /// whether the body ended (and a next request may be buffered).
    pub(super) fn feed<H: Handler + ?Sized>(&mut self, env: &mut Env<'_, H>) -> bool {
        let (Some(input), Some(body)) = (self.input.as_mut(), self.stream_in.as_mut()) else {
            return false;
        };
        if body.paused {
            return false;
        }
        let before = body.taken();
        let fed = body.feed(input, &mut self.start, env.config.max_header_bytes);
        self.progress += (body.taken() - before) as u64;
        match fed {
            Fed::NeedMore | Fed::Paused => false,
            Fed::Ended => {
                self.stream_in = None;
                true
            }
            Fed::Failed => {
                self.stream_in = None;
                self.body_failed();
                false
            }
        }
    }
}

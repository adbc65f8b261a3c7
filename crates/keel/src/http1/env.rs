//! What a worker lends its connections: the handler, limits, counters,
//! buffer pool and deferral channel ([`Services`]), borrowed per turn as
//! an [`Env`].

use crate::deferred::{Deferral, Message};
use crate::http1::budget::BodyBudget;
use crate::http1::parse::HeadMemo;
use crate::response::{FieldsMemo, ServerFields};
use crate::server::pool::BufferPool;
use crate::server::stats::WorkerCounters;
use crate::Config;
use crossbeam_channel::Sender;
use mio::Waker;
use std::cell::RefCell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// What a worker owns once and lends each of its connections: the handler,
/// limits, counters, buffer pool. The in-memory driver owns one too.
pub(crate) struct Services<H> {
    pub(crate) handler: H,
    pub(crate) config: Arc<Config>,
    pub(crate) counters: Arc<WorkerCounters>,
    pub(crate) pool: BufferPool,
    /// `Server: ...\r\n`, or empty.
    server_line: Vec<u8>,
    /// The server fields this worker wrote last (see [`ServerFields`]).
    fields_memo: RefCell<FieldsMemo>,
    draining: Arc<AtomicBool>,
    deferral: Deferral,
    /// Body bytes in flight on this worker, against `max_body_in_flight`.
    budget: BodyBudget,
    /// One connection's last head, for the pass over its buffer that
    /// `Conn::process` makes (which forgets it first): kept here so that
    /// no connection carries one.
    memo: HeadMemo,
    /// The worker's latest clock reading: set once per event-loop turn, and
    /// after each answered request. See [`Env::answered`].
    pub(crate) clock: Instant,
    /// Whether request latencies are recorded: only when a
    /// [`crate::Metrics`] is wired, the histogram's one reader.
    pub(crate) timed: bool,
}

impl<H> Services<H> {
    pub(crate) fn new(
        handler: H,
        config: Arc<Config>,
        counters: Arc<WorkerCounters>,
        draining: Arc<AtomicBool>,
        completions: Sender<Message>,
        waker: Option<Arc<Waker>>,
        timed: bool,
    ) -> Self {
        let server_line = config
            .server_name
            .as_ref()
            .map(|name| format!("Server: {name}\r\n").into_bytes())
            .unwrap_or_default();
        let pool = BufferPool::new(
            config.buffer_size,
            config.max_pooled_buffer,
            config.max_pooled_buffers,
        );
        let deferral = Deferral::new(completions, waker, &server_line, config.stream_window);
        let budget = BodyBudget::new(config.max_body_in_flight);
        Services {
            handler,
            config,
            counters,
            pool,
            server_line,
            fields_memo: RefCell::default(),
            draining,
            deferral,
            budget,
            memo: HeadMemo::default(),
            clock: Instant::now(),
            timed,
        }
    }

    /// Borrows everything connection `key` needs to process requests.
    pub(crate) fn env(&mut self, key: usize) -> Env<'_, H> {
        Env {
            handler: &self.handler,
            config: &self.config,
            counters: &self.counters,
            pool: &mut self.pool,
            server: ServerFields::new(&self.server_line, &self.fields_memo),
            draining: &self.draining,
            deferral: &self.deferral,
            budget: &self.budget,
            memo: &mut self.memo,
            clock: &mut self.clock,
            timed: self.timed,
            key,
        }
    }
}

/// [`Services`], borrowed for one connection's turn.
pub(crate) struct Env<'a, H: ?Sized> {
    pub(crate) handler: &'a H,
    pub(crate) config: &'a Config,
    pub(crate) counters: &'a WorkerCounters,
    pub(crate) pool: &'a mut BufferPool,
    /// `Server: ...\r\n`, and the memo of what was written last.
    pub(crate) server: ServerFields<'a>,
    /// Set when the server starts shutting down: requests in progress are
    /// answered with `Connection: close` and no more are taken. Read after
    /// the handler returns, so a handler that was busy when shutdown began
    /// still closes.
    pub(crate) draining: &'a AtomicBool,
    pub(crate) deferral: &'a Deferral,
    /// See [`Services::budget`].
    pub(crate) budget: &'a BodyBudget,
    /// See [`Services::memo`].
    pub(crate) memo: &'a mut HeadMemo,
    /// See [`Services::clock`].
    pub(crate) clock: &'a mut Instant,
    /// See [`Services::timed`].
    pub(crate) timed: bool,
    /// The connection's slab key, which a deferred answer is addressed to.
    pub(crate) key: usize,
}

impl<H: ?Sized> Env<'_, H> {
    /// Records the latency of a request whose response was just queued, and
    /// dispatched at `started`; one clock read, which becomes the start of
    /// the next request this worker dispatches before its loop turns again.
    ///
    /// The start is the worker's latest clock reading rather than a fresh
    /// one, so there is one clock read per request (about 35 ns with a TSC
    /// clock source); a latency then always covers the whole handler, and
    /// may also cover the read and parse of its request (and the write of
    /// the previous connection's responses in the same loop turn). Coarse
    /// at both ends would cost nothing, but read zero for every answer
    /// given within one loop turn. Without metrics wired nothing reads the
    /// histogram, and this does nothing.
    #[inline]
    pub(crate) fn answered(&mut self, started: Instant) {
        if !self.timed {
            return;
        }
        let now = Instant::now();
        self.counters
            .latency
            .observe(now.saturating_duration_since(started));
        *self.clock = now;
    }
}

//! A connection's deadline: what it waits for, how long that may take, and
//! the sweep that acts on deadlines past.

use super::{Slot, Wake, Worker};
use crate::http1::conn::Waiting;
use crate::{Config, Handler};
use std::time::Instant;

/// What the deadline of a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Deadline {
    Deferred,
    Header,
    Body,
    /// A streamed request body: the client's silence, or a sink that stays
    /// paused; restarts while bytes move.
    StreamBody,
    /// A streamed response's producer silent; restarts while bytes move.
    Stream,
    Idle,
    Write,
    Linger,
}

impl<H: Handler> Worker<H> {
    /// Closes connections whose deadline has passed.
    pub(super) fn sweep_deadlines(&mut self) {
        let now = self.now;
        self.expired.clear();
        self.expired.extend(
            self.conns
                .iter()
                .filter(|(_, s)| s.deadline <= now)
                .map(|(k, _)| k),
        );
        for i in 0..self.expired.len() {
            let key = self.expired[i];
            match self.conns[key].kind {
                Deadline::Header | Deadline::Body | Deadline::StreamBody => {
                    let mut env = self.services.env(key);
                    self.conns[key].conn.on_request_timeout(&mut env);
                    // The 408 goes out like any response; then the connection lingers and closes.
                    self.drive(key, Wake::ANY);
                }
                Deadline::Deferred => {
                    let mut env = self.services.env(key);
                    self.conns[key].conn.on_deferred_timeout(&mut env);
                    self.drive(key, Wake::ANY);
                }
                Deadline::Write | Deadline::Stream => {
                    self.services.counters.timeouts.add(1);
                    self.close(key);
                }
                Deadline::Idle | Deadline::Linger => self.close(key),
            }
        }
    }
}

/// Sets the connection's deadline from what it now waits for. A deadline
/// that is already running for the same wait on the same request is kept, so
/// a slow peer cannot extend it by trickling bytes.
pub(super) fn set_deadline(slot: &mut Slot, config: &Config, now: Instant, wrote: bool) {
    let (kind, timeout) = if slot.conn.output.pending() > 0 {
        (Deadline::Write, config.write_timeout)
    } else {
        match slot.conn.waiting() {
            Waiting::NextRequest if slot.conn.served() == 0 => {
                (Deadline::Header, config.header_timeout)
            }
            Waiting::NextRequest => (Deadline::Idle, config.idle_timeout),
            Waiting::Head => (Deadline::Header, config.header_timeout),
            Waiting::Body => (Deadline::Body, config.body_timeout),
            Waiting::StreamBody => (Deadline::StreamBody, config.body_timeout),
            Waiting::Sink => (Deadline::StreamBody, config.deferred_timeout),
            Waiting::Stream => (Deadline::Stream, config.idle_timeout),
            Waiting::Deferred => (
                Deadline::Deferred,
                slot.conn.deferred_timeout(config.deferred_timeout),
            ),
            Waiting::Close => (Deadline::Linger, config.linger_timeout),
        }
    };
    let restart = match kind {
        Deadline::Idle => true,
        Deadline::Write => wrote || slot.kind != Deadline::Write,
        Deadline::StreamBody | Deadline::Stream => {
            slot.kind != kind || slot.progress_at_deadline != slot.conn.progress()
        }
        _ => slot.kind != kind || slot.served_at_deadline != slot.conn.served(),
    };
    if restart {
        slot.kind = kind;
        slot.deadline = now + timeout;
        slot.served_at_deadline = slot.conn.served();
        slot.progress_at_deadline = slot.conn.progress();
    }
}

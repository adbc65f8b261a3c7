//! A connection's deadline: what it waits for, how long that may take, and
//! the sweep that acts on deadlines past.

use super::{Slot, Wake, Worker};
use crate::http1::conn::Waiting;
use crate::server::sys;
use crate::{Config, Handler};
use std::time::{Duration, Instant};

/// What the deadline of a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Deadline {
    /// A TLS handshake (see [`Config::tls_handshake_timeout`]).
    Handshake,
    Deferred,
    Header,
    /// A buffered request body: a rate window (see [`Config::min_body_rate`]).
    Body,
    /// A streamed request body: a rate window, as `Body`.
    StreamBody,
    /// A streamed request body's sink that stays paused; restarts while
    /// the sink takes bytes.
    Sink,
    /// A streamed response's producer silent; restarts while bytes move.
    Stream,
    Idle,
    /// Queued response bytes the peer does not read: a rate window (see
    /// [`Config::min_send_rate`]).
    Write,
    Linger,
}

/// `Slot::bytes_at_since` of a write wait whose first window has not ended.
const NOT_MEASURED: u64 = u64::MAX;

impl Deadline {
    /// The minimum rate a wait is held to, if any.
    fn rate(self, config: &Config) -> Option<u64> {
        match self {
            Deadline::Body | Deadline::StreamBody => Some(config.min_body_rate),
            Deadline::Write => Some(config.min_send_rate),
            _ => None,
        }
    }

    /// The bytes the peer has moved, as the rate of this wait counts them:
    /// read from it for a body; for a response, what it has acknowledged
    /// (a write that the kernel merely buffered is not a read).
    fn moved(self, slot: &Slot) -> u64 {
        match self {
            Deadline::Write => {
                let unsent = sys::unsent_bytes(&slot.stream).unwrap_or(0);
                slot.bytes_out.saturating_sub(unsent)
            }
            _ => slot.bytes_in,
        }
    }
}

impl<H: Handler> Worker<H> {
    /// Closes connections whose deadline has passed, and parks the heads
    /// that stall.
    pub(super) fn sweep_deadlines(&mut self) {
        let now = self.now;
        self.expired.clear();
        let pool = &mut self.services.pool;
        for (key, slot) in self.conns.iter_mut() {
            if slot.deadline <= now {
                self.expired.push(key);
            } else if slot.kind == Deadline::Header {
                // A head still arriving a tick later stalls: its read
                // buffer goes back to the pool.
                slot.conn.park_partial_head(pool);
            }
        }
        for i in 0..self.expired.len() {
            let key = self.expired[i];
            if next_window(&mut self.conns[key], &self.services.config, now) {
                continue;
            }
            match self.conns[key].kind {
                Deadline::Header | Deadline::Body | Deadline::StreamBody | Deadline::Sink => {
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
                Deadline::Handshake => {
                    self.services.counters.timeouts.add(1);
                    self.services.counters.tls_handshake_failures.add(1);
                    self.close(key);
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

/// At the end of a rate window: whether the peer moved enough bytes in it
/// (the minimum rate times the window, and at least one byte), in which
/// case the next window starts. Judging whole windows, not each silence,
/// lets a client pause (a phone between cells) as long as it keeps the
/// average; a trickle below the rate ends with its first window. A window
/// that must be earned again each time means a burst early on buys no
/// long silence later.
///
/// A write wait's first window is free: what the peer had acknowledged when
/// it began is only asked for when the window ends (one `ioctl` for a wait
/// that lasts, none for the short waits of a busy connection), and judged
/// from there.
fn next_window(slot: &mut Slot, config: &Config, now: Instant) -> bool {
    let Some(rate) = slot.kind.rate(config) else {
        return false;
    };
    let window = slot.deadline.saturating_duration_since(slot.since);
    let bytes = slot.kind.moved(slot);
    let needed = (rate as f64 * window.as_secs_f64()).max(1.0);
    if slot.bytes_at_since != NOT_MEASURED
        && (bytes.saturating_sub(slot.bytes_at_since) as f64) < needed
    {
        return false;
    }
    slot.since = now;
    slot.bytes_at_since = bytes;
    slot.deadline = now + window;
    true
}

/// Bytes a peer must take within [`FAST_READER_TIME`] to be called fast.
const FAST_READER_BYTES: u64 = 1024 * 1024;
/// See [`FAST_READER_BYTES`]: 10 MB/s.
const FAST_READER_TIME: Duration = Duration::from_millis(100);

/// Lifts the kernel's limit on unsent bytes from a connection that reads
/// fast. The limit (`Config::max_unsent_per_socket`) keeps a slow reader's
/// answer in the worker's queue, not in megabytes of kernel buffers; but a
/// peer that takes a megabyte in 100 ms would pay for it with a wake-up
/// and a write per limit's worth (half again the CPU per GB of a loopback
/// download at 128 KiB). Checked once per drive: a subtraction while the
/// connection is limited.
pub(super) fn unsent_limit(slot: &mut Slot, now: Instant) {
    if !slot.unsent_limited {
        return;
    }
    let (started, at) = slot.fast_check;
    if slot.bytes_out - at < FAST_READER_BYTES {
        return;
    }
    if now.saturating_duration_since(started) <= FAST_READER_TIME {
        // A failure only leaves the limit in place.
        let _ = sys::lift_unsent_limit(&slot.stream);
        slot.unsent_limited = false;
    } else {
        slot.fast_check = (now, slot.bytes_out);
    }
}

/// Sets the connection's deadline from what it now waits for. A deadline
/// that is already running for the same wait on the same request is kept, so
/// a slow peer cannot extend it by trickling bytes: a wait held to a minimum
/// rate moves on only by [`next_window`].
pub(super) fn set_deadline(slot: &mut Slot, config: &Config, now: Instant) {
    let (kind, timeout) = if slot.handshaking {
        (Deadline::Handshake, config.tls_handshake_timeout)
    } else if slot.has_output() {
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
            Waiting::Sink => (Deadline::Sink, config.deferred_timeout),
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
        Deadline::Write => slot.kind != kind,
        Deadline::Sink | Deadline::Stream => {
            slot.kind != kind || slot.progress_at_deadline != slot.conn.progress()
        }
        _ => slot.kind != kind || slot.served_at_deadline != slot.conn.served(),
    };
    if restart {
        slot.kind = kind;
        slot.deadline = now + timeout;
        slot.since = now;
        slot.bytes_at_since = match kind {
            Deadline::Write => NOT_MEASURED,
            _ => slot.bytes_in,
        };
        slot.served_at_deadline = slot.conn.served();
        slot.progress_at_deadline = slot.conn.progress();
    }
}

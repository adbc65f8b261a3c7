//! One worker: a thread with its own mio `Poll`, listener, connection slab,
//! buffer pool and timers. Nothing here is shared with another worker.

use crate::deferred::Message;
mod admit;
mod deadline;
mod socket_io;

use crate::http1::conn::{Conn, Phase, Services, Waiting};
use crate::server::listener::{Acceptor, WorkerListener};
use crate::server::stats::WorkerCounters;
use crate::server::{date, handover, sys};
use crate::transport::{Stream, Transport};
use crate::{Config, Handler};
use crossbeam_channel::Receiver;
use deadline::{set_deadline, unsent_limit, Deadline};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use socket_io::{flush, linger_read, peer_left, read_ahead, Flushed, Wake};
use std::io;
use std::net::Shutdown;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const WAKER: Token = Token(usize::MAX - 2);
/// Listener `i`'s token is `FIRST_LISTENER + i`: far above any slab key
/// (each is a connection), below the waker's.
const FIRST_LISTENER: usize = usize::MAX / 2;

/// Reads one connection may do per wake-up before others get a turn.
const READS_PER_TURN: usize = 16;
/// Times one wake-up moves a streamed response's queue to the socket.
const PULLS_PER_TURN: usize = 16;

/// Messages from the [`crate::ServerHandle`] to a worker.
pub(crate) enum Control {
    /// Stop accepting, finish what is in flight, close everything by `deadline`.
    Shutdown { deadline: Instant },
}

struct Slot {
    stream: Stream,
    conn: Conn,
    deadline: Instant,
    kind: Deadline,
    /// The response that closes the connection is out and the write side is
    /// shut: read and drop whatever the peer still sends until it closes.
    lingering: bool,
    /// Requests the connection had answered when its deadline was set.
    served_at_deadline: u64,
    /// Bytes it had streamed when its deadline was set.
    progress_at_deadline: u64,
    /// When the current wait (or its current rate window) began.
    since: Instant,
    /// The byte count its rate applies to, when `since` was set.
    bytes_at_since: u64,
    /// Bytes read from the socket.
    bytes_in: u64,
    /// Bytes written to the socket.
    bytes_out: u64,
    /// The kernel may hold only `Config::max_unsent_per_socket` unsent
    /// bytes for it, until it shows it reads fast (see `unsent_limit`).
    unsent_limited: bool,
    /// When and at which `bytes_out` the current fast-reader check began.
    fast_check: (Instant, u64),
    /// Its TLS handshake is in progress (counted in `Worker::handshakes`).
    handshaking: bool,
}

impl Slot {
    /// Output waits for the socket: the connection's queue, or a TLS
    /// stream's ciphertext.
    fn has_output(&self) -> bool {
        self.conn.output.pending() > 0 || self.stream.has_unsent()
    }
}

/// Everything a worker thread starts with.
pub(crate) struct WorkerSetup<H> {
    pub(crate) poll: Poll,
    pub(crate) listeners: Vec<WorkerListener>,
    pub(crate) handler: Arc<H>,
    pub(crate) config: Arc<Config>,
    pub(crate) counters: Arc<WorkerCounters>,
    pub(crate) control: Receiver<Control>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) shutting_down: Arc<AtomicBool>,
    pub(crate) pin_to: Option<usize>,
    /// Whether a [`crate::Metrics`] is wired: request latencies are recorded.
    pub(crate) timed: bool,
    /// What the connections speak: plain HTTP, or TLS.
    pub(crate) transport: Transport,
}

/// A listener in the worker's poller.
struct Listening {
    acceptor: Acceptor,
    /// The socket defers accepts until data arrives: read a new
    /// connection at once instead of waiting for the poller to report it.
    serve_on_accept: bool,
}

struct Worker<H> {
    poll: Poll,
    /// Empty once shutting down.
    listeners: Vec<Listening>,
    conns: Slab<Slot>,
    services: Services<Arc<H>>,
    control: Receiver<Control>,
    completions: Receiver<Message>,
    now: Instant,
    /// The listener's queue was left to the kernel (at the cap, or an
    /// accept failed): try again at `accept_retry_at`.
    accept_paused: bool,
    accept_retry_at: Instant,
    /// Eviction candidates, (wait began, key), kept to reuse the allocation.
    victims: Vec<(Instant, usize)>,
    draining: Option<Instant>,
    /// While draining: when the idle keep-alive connections are closed
    /// (`Config::drain_idle_grace` after the shutdown began).
    idle_grace_until: Option<Instant>,
    /// Connections whose read budget ran out with bytes left: driven again
    /// before the next poll blocks.
    again: Vec<usize>,
    again_spare: Vec<usize>,
    expired: Vec<usize>,
    scratch: Box<[u8]>,
    transport: Transport,
    /// Connections whose TLS handshake is in progress.
    handshakes: usize,
}

/// Runs a worker until it has shut down.
pub(crate) fn run<H: Handler>(setup: WorkerSetup<H>) -> io::Result<()> {
    if let Some(core) = setup.pin_to {
        // Pinning is an optimisation: a refusal (e.g. a restricted cpuset) is not fatal.
        let _ = sys::pin_current_thread(core);
    }
    date::driven_by_loop();
    let mut listeners = Vec::with_capacity(setup.listeners.len());
    for (i, given) in setup.listeners.into_iter().enumerate() {
        let mut acceptor = Acceptor::new(given.listener);
        let token = Token(FIRST_LISTENER + i);
        setup
            .poll
            .registry()
            .register(&mut acceptor, token, Interest::READABLE)?;
        listeners.push(Listening {
            acceptor,
            serve_on_accept: given.serve_on_accept,
        });
    }
    let (completions_tx, completions_rx) = crossbeam_channel::unbounded();
    let mut worker = Worker {
        poll: setup.poll,
        listeners,
        conns: Slab::with_capacity(1024),
        services: Services::new(
            setup.handler,
            setup.config,
            setup.counters,
            setup.shutting_down,
            completions_tx,
            Some(setup.waker),
            setup.timed,
        ),
        control: setup.control,
        completions: completions_rx,
        now: Instant::now(),
        accept_paused: false,
        accept_retry_at: Instant::now(),
        victims: Vec::new(),
        draining: None,
        idle_grace_until: None,
        again: Vec::with_capacity(256),
        again_spare: Vec::with_capacity(256),
        expired: Vec::with_capacity(256),
        scratch: vec![0; 16 * 1024].into_boxed_slice(),
        transport: setup.transport,
        handshakes: 0,
    };
    worker.run()
}

impl<H: Handler> Worker<H> {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let tick = self.services.config.timer_tick();
        let mut next_tick = Instant::now() + tick;
        loop {
            let mut wake_at = if self.accept_paused {
                next_tick.min(self.accept_retry_at)
            } else {
                next_tick
            };
            if let Some(until) = self.idle_grace_until {
                wake_at = wake_at.min(until);
            }
            let timeout = if self.again.is_empty() {
                wake_at.saturating_duration_since(self.now)
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.now = Instant::now();
            // Where the latency of the next request dispatched starts.
            self.services.clock = self.now;
            date::refresh(self.now);
            for event in events.iter() {
                match event.token() {
                    WAKER => self.read_control(),
                    // A paused listener waits for its retry: a new arrival
                    // changes nothing about the lack of room.
                    Token(t) if t >= FIRST_LISTENER => {
                        if !self.accept_paused || self.accept_due() {
                            self.accept();
                        }
                    }
                    Token(key) => self.drive(key, Wake::from_event(event)),
                }
            }
            self.drive_again();
            if self.now >= next_tick {
                self.sweep_deadlines();
                next_tick = self.now + tick;
            }
            // Connections closed this turn may have made room under the cap
            // (or, after EMFILE, freed descriptors), or the back-off is
            // over: the listener's edge was consumed, so nothing else would
            // bring the queued ones in.
            if self.accept_due() {
                self.accept();
            }
            if self.idle_grace_until.is_some_and(|until| self.now >= until) {
                self.idle_grace_until = None;
                self.close_idle();
            }
            if let Some(deadline) = self.draining {
                if self.conns.is_empty() || self.now >= deadline {
                    let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                    keys.into_iter().for_each(|k| self.close(k));
                    return Ok(());
                }
            }
        }
    }

    fn read_control(&mut self) {
        while let Ok(message) = self.completions.try_recv() {
            let key = message.key();
            let Some(slot) = self.conns.get_mut(key) else {
                continue;
            };
            let mine = match message {
                Message::Answer(done) => slot
                    .conn
                    .complete_deferred(done, &mut self.services.env(key)),
                Message::Resume { ticket, .. } => slot.conn.resume(ticket),
                Message::Stream { ticket, .. } => slot.conn.streams_out(ticket),
                Message::DiskRead { ticket, .. } => slot.conn.output.disk_read(ticket),
            };
            if mine {
                self.drive(key, Wake::ANY);
            }
        }
        while let Ok(message) = self.control.try_recv() {
            match message {
                Control::Shutdown { deadline } => self.begin_shutdown(deadline),
            }
        }
    }

    /// Stops accepting (the listeners close here; a successor holding the
    /// same sockets goes on accepting from their queues) and starts
    /// draining: idle connections get `Config::drain_idle_grace`, every
    /// answer from now on says `Connection: close`.
    fn begin_shutdown(&mut self, deadline: Instant) {
        self.draining = Some(deadline);
        for mut listening in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut listening.acceptor);
        }
        let grace = self.services.config.drain_idle_grace;
        if grace.is_zero() {
            self.close_idle();
        } else {
            self.idle_grace_until = Some(self.now + grace);
        }
    }

    /// Closes the keep-alive connections waiting for a request with
    /// nothing left to write.
    fn close_idle(&mut self) {
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, s)| s.conn.waiting() == Waiting::NextRequest && !s.has_output())
            .map(|(k, _)| k)
            .collect();
        idle.into_iter().for_each(|k| self.close(k));
    }

    fn drive_again(&mut self) {
        if self.again.is_empty() {
            return;
        }
        std::mem::swap(&mut self.again, &mut self.again_spare);
        while let Some(key) = self.again_spare.pop() {
            self.drive(key, Wake::ANY);
        }
    }

    /// Reads, answers and writes for one connection until it would block.
    fn drive(&mut self, key: usize, wake: Wake) {
        let Some(slot) = self.conns.get_mut(key) else {
            return;
        };
        if slot.lingering {
            if linger_read(&mut slot.stream, &mut self.scratch) {
                self.close(key);
            }
            return;
        }
        // The client closed while its answer was being made (as nginx, a
        // FIN counts: its 499). Closing drops the deferral's watch, which
        // abandons it: a job queued for it is skipped. A FIN that came with
        // the request itself was seen before the request deferred, so a
        // half-closing client still gets its answer.
        let answering = matches!(slot.conn.waiting(), Waiting::Deferred | Waiting::Stream);
        if wake.read_closed && answering && peer_left(&slot.stream) {
            return self.close(key);
        }
        let mut env = self.services.env(key);
        let mut reads = 0;
        let mut peer_eof = false;
        let mut may_read = wake.may_read;
        let read_closed = wake.read_closed;
        loop {
            // Whether the socket is known to hold nothing more to read.
            let mut drained = false;
            if slot.conn.held_back() && slot.conn.wants_input(env.config) {
                // The peer has read enough: answer what is already buffered first.
                slot.conn.process(&mut env);
            } else if slot.conn.wants_input(env.config) {
                if !may_read {
                    // Woken for writing only: the socket held nothing to read
                    // then, and bytes arriving since bring a wake-up of their own.
                    drained = true;
                } else {
                    let buf = slot.conn.read_buffer(env.pool);
                    let room = buf.capacity() - buf.len();
                    let read = slot.stream.read_into(buf);
                    if slot.handshaking {
                        if let Some(info) = slot.stream.established() {
                            slot.handshaking = false;
                            self.handshakes -= 1;
                            env.counters.tls_handshakes.add(1);
                            slot.conn.set_tls(info);
                        }
                    }
                    match read {
                        Ok(0) => peer_eof = true,
                        Ok(n) => {
                            env.counters.bytes_in.add(n as u64);
                            slot.bytes_in += n as u64;
                            reads += 1;
                            // A short read emptied the socket, unless the peer
                            // also closed: then read on to see the end.
                            drained = n < room && !read_closed;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => drained = true,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            if slot.handshaking {
                                env.counters.tls_handshake_failures.add(1);
                            }
                            return self.close(key);
                        }
                    }
                }
                // Also when nothing new came: requests held back by
                // backpressure may be waiting in the buffer.
                slot.conn.process(&mut env);
            }
            // Write what is queued; once all of it is out, take what a
            // streamed response's producer queued, and write again (a
            // bounded number of times: a fast producer must not hold the
            // worker; the connection is driven again before the next poll).
            let mut pulls = 0;
            loop {
                let ask = env.config.cold_file_readahead;
                let written = &mut slot.bytes_out;
                match flush(&mut slot.stream, &mut slot.conn, env.counters, written, ask) {
                    Ok(Flushed::Stopped) => {}
                    Ok(Flushed::TurnSpent) => {
                        self.again.push(key);
                        break;
                    }
                    Ok(Flushed::Cold(chunk)) => {
                        if read_ahead(chunk, key, &mut slot.conn.output, &env) {
                            break; // its message brings us back
                        }
                        continue; // no thread free: send it as it is
                    }
                    Err(_) => return self.close(key),
                }
                if slot.has_output() {
                    break; // the socket is full: WRITABLE brings us back
                }
                if pulls == PULLS_PER_TURN {
                    self.again.push(key);
                    break;
                }
                if !slot.conn.pull_stream(&mut env) {
                    break;
                }
                pulls += 1;
            }
            slot.conn.release_buffers(env.pool);
            if peer_eof {
                slot.conn.on_peer_eof();
            }
            if slot.conn.phase() == Phase::Closing {
                if slot.has_output() {
                    break; // finish writing first; WRITABLE brings us back
                }
                if let Some(upgrade) = slot.conn.take_upgrade(env.pool) {
                    return self.hand_over(key, upgrade);
                }
                if peer_eof || !slot.conn.errored() {
                    return self.close(key);
                }
                // After an error the peer may still be sending: shut our side
                // and drain theirs, so it reads the error instead of a reset.
                let _ = slot.stream.shutdown(Shutdown::Write);
                slot.conn.discard_input(env.pool);
                slot.lingering = true;
                slot.kind = Deadline::Linger;
                slot.deadline = self.now + env.config.linger_timeout;
                if linger_read(&mut slot.stream, &mut self.scratch) {
                    return self.close(key);
                }
                return;
            }
            may_read = true;
            if !slot.conn.wants_input(env.config) {
                break; // held back until the peer reads: WRITABLE resumes us
            }
            if drained && !slot.conn.held_back() {
                break;
            }
            if reads >= READS_PER_TURN {
                self.again.push(key);
                break;
            }
        }
        // A first head that stalls half-way (a slowloris) gives its read
        // buffer back; a later one waits for the timer tick to do so.
        if slot.conn.served() == 0 {
            slot.conn.park_partial_head(env.pool);
        }
        set_deadline(slot, env.config, self.now);
        unsent_limit(slot, self.now);
    }

    /// Gives a connection whose `101` is written to its upgrade callback,
    /// without closing it (see `handover`).
    fn hand_over(&mut self, key: usize, upgrade: (crate::upgrade::OnUpgrade, bytes::Bytes)) {
        let Some(mut slot) = self.conns.try_remove(key) else {
            return;
        };
        slot.conn.release_buffers(&mut self.services.pool);
        self.services.counters.connections_open.sub(1);
        self.accept_retry_at = self.now;
        let counters = &self.services.counters;
        let peer = slot.conn.peer();
        handover::hand_over(self.poll.registry(), slot.stream, peer, upgrade, counters);
    }

    fn close(&mut self, key: usize) {
        if let Some(mut slot) = self.conns.try_remove(key) {
            if slot.handshaking {
                self.handshakes -= 1;
            }
            slot.stream.closing();
            let pool = &mut self.services.pool;
            slot.conn.discard_input(pool);
            slot.conn.output.advance(slot.conn.output.pending());
            slot.conn.release_buffers(pool);
            self.services.counters.connections_open.sub(1);
            // Room for a connection the cap or a lack of descriptors kept
            // in the kernel's queue.
            self.accept_retry_at = self.now;
        }
    }
}

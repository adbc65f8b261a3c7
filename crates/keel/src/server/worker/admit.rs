//! Taking new connections from the listener, and making room for them
//! at the cap: the connection limit, or the process's descriptors.

use super::deadline::Deadline;
use super::{Slot, Wake, Worker};
use crate::http1::conn::Conn;
use crate::peer::Peer;
use crate::server::sys;
use crate::transport::Stream;
use crate::Handler;
use mio::{Interest, Token};
use std::io;
use std::time::Instant;

/// Most connections closed at once to make room, oldest first: one scan
/// of the slab pays for up to this many accepts.
const EVICT_BATCH: usize = 64;
/// A batch is at most this fraction of the connections held, so that a
/// small server makes room one connection at a time.
const EVICT_FRACTION: usize = 16;

impl<H: Handler> Worker<H> {
    /// Accepts until the listener's queue is empty. At the cap, each new
    /// connection takes the place of one that costs the least to lose (idle
    /// keep-alive, or a head still arriving; oldest first); when there is
    /// none, the rest wait in the kernel's queue until a connection closes
    /// or `accept_backoff` has passed.
    pub(super) fn accept(&mut self) {
        self.accept_paused = false;
        self.accept_loop();
        // Candidates found this turn may be busy by the next.
        self.victims.clear();
    }

    /// Empties each listener's queue in turn (the poller reports a
    /// listener once per arrival burst: what is left would wait).
    fn accept_loop(&mut self) {
        let mut index = 0;
        loop {
            let at_cap = self.conns.len() >= self.services.config.max_connections_per_worker;
            // Room is known to exist before a connection is taken: one that
            // cannot be given a place stays in the kernel's queue.
            if at_cap && !self.has_victim() {
                return self.back_off();
            }
            let Some(listening) = self.listeners.get(index) else {
                return;
            };
            let serve_now = listening.serve_on_accept;
            match listening.acceptor.accept() {
                Ok((stream, peer)) => {
                    if at_cap {
                        self.evict_one();
                    }
                    self.admit(stream, peer, serve_now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => index += 1,
                // A peer that reset before its turn: the next one may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    self.services.counters.accept_errors.add(1);
                    // Out of descriptors (EMFILE, ENFILE): closing our
                    // oldest idle one frees one at once. Anything else
                    // (ENOBUFS, ENOMEM), or nothing to close: wait, rather
                    // than fail the same call in a loop.
                    if !(sys::is_out_of_descriptors(&e) && self.has_victim()) {
                        return self.back_off();
                    }
                    self.evict_one();
                }
            }
        }
    }

    /// Takes a new connection into the slab and, when `serve_now`, serves
    /// what it sent.
    fn admit(&mut self, stream: Stream, peer: Peer, serve_now: bool) {
        let Ok(stream) = self.transport.wrap(stream) else {
            return; // dropping the socket closes it
        };
        let handshaking = stream.is_handshaking();
        if handshaking {
            self.make_room_for_handshake();
            self.handshakes += 1;
        }
        // TCP_NOTSENT_LOWAT is a TCP option: a Unix socket's send buffer
        // is its own bound (net.core.wmem_default).
        let unsent_limited =
            stream.is_tcp() && self.services.config.max_unsent_per_socket.is_some();
        let config = &self.services.config;
        let (kind, first_wait) = match handshaking {
            true => (Deadline::Handshake, config.tls_handshake_timeout),
            false => (Deadline::Header, config.header_timeout),
        };
        let key = self.conns.insert(Slot {
            stream,
            conn: Conn::new(peer),
            deadline: self.now + first_wait,
            kind,
            lingering: false,
            served_at_deadline: 0,
            progress_at_deadline: 0,
            since: self.now,
            bytes_at_since: 0,
            bytes_in: 0,
            bytes_out: 0,
            unsent_limited,
            fast_check: (self.now, 0),
            handshaking,
        });
        self.services.counters.connections_accepted.add(1);
        self.services.counters.connections_open.add(1);
        // With deferred accepts the request is already in: answer it now,
        // and register only a connection that outlives this turn, so a
        // `Connection: close` exchange costs no epoll_ctl and no wake-up of
        // its own. Adding it later loses nothing: epoll reports the
        // readiness a socket already has when it is added.
        if serve_now {
            self.drive(key, Wake::ANY);
        }
        if let Some(slot) = self.conns.get_mut(key) {
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut slot.stream, Token(key), interest)
                .is_err()
            {
                self.close(key);
            }
        }
    }

    /// At the cap on TLS handshakes in progress
    /// ([`crate::Config::max_tls_handshakes_per_worker`]), closes the one
    /// that has taken longest: handshakes that stall (an attacker's) make
    /// room for each other, at the rate new ones arrive, while a client
    /// that completes its handshake in a round trip or two gets through.
    /// One scan of the slab, only at the cap.
    fn make_room_for_handshake(&mut self) {
        if self.handshakes < self.services.config.max_tls_handshakes_per_worker {
            return;
        }
        let oldest = self
            .conns
            .iter()
            .filter(|(_, s)| s.handshaking)
            .min_by_key(|(_, s)| s.since)
            .map(|(k, _)| k);
        if let Some(key) = oldest {
            self.services.counters.tls_handshake_failures.add(1);
            self.services.counters.evictions.add(1);
            self.close(key);
        }
    }

    /// Leaves the queued connections to the kernel until a connection
    /// closes here or `accept_backoff` has passed.
    fn back_off(&mut self) {
        self.accept_paused = true;
        self.accept_retry_at = self.now + self.services.config.accept_backoff;
    }

    /// Whether a paused accept should be tried again now.
    pub(super) fn accept_due(&self) -> bool {
        self.accept_paused && self.now >= self.accept_retry_at
    }

    /// Whether a connection may be evicted, finding the next batch of
    /// candidates when the last one is used up.
    fn has_victim(&mut self) -> bool {
        while let Some(&(since, key)) = self.victims.last() {
            let now = self.now;
            if self
                .conns
                .get(key)
                .is_some_and(|s| s.since == since && evictable(s, now))
            {
                return true;
            }
            self.victims.pop();
        }
        self.find_victims();
        !self.victims.is_empty()
    }

    /// Closes the candidate [`Worker::has_victim`] found.
    fn evict_one(&mut self) {
        if let Some((_, key)) = self.victims.pop() {
            self.close(key);
            self.services.counters.evictions.add(1);
        }
    }

    /// Fills `victims` with a batch (see [`EVICT_BATCH`]) of the
    /// connections that cost the least to lose, the one that has waited
    /// longest first: heads still arriving (a slowloris, or a crowd
    /// exhausting descriptors), and only when there are none, idle
    /// keep-alive connections, whose clients have shown they complete
    /// requests. To an attacker the cap is then no wall: its connections
    /// make room for each other, at the rate new ones arrive, while a
    /// well-behaved client that comes later is let in and one that keeps
    /// its connection keeps it. Nothing mid-request is a candidate, nor an
    /// idle connection that was busy this turn. One scan of the slab
    /// serves the whole batch.
    fn find_victims(&mut self) {
        let mut victims = std::mem::take(&mut self.victims);
        victims.clear();
        let now = self.now;
        victims.extend(
            self.conns
                .iter()
                .filter(|(_, s)| waits_for_head(s))
                .map(|(k, s)| (s.since, k)),
        );
        if victims.is_empty() {
            victims.extend(
                self.conns
                    .iter()
                    .filter(|(_, s)| evictable_idle(s, now))
                    .map(|(k, s)| (s.since, k)),
            );
        }
        let batch = (self.conns.len() / EVICT_FRACTION).clamp(1, EVICT_BATCH);
        if victims.len() > batch {
            victims.select_nth_unstable(batch);
            victims.truncate(batch);
        }
        // Youngest first, so that `pop` takes the oldest.
        victims.sort_unstable_by(|a, b| b.cmp(a));
        self.victims = victims;
    }
}

/// Still a candidate: waiting for (the rest of) a head, or idle since
/// before this turn.
fn evictable(slot: &Slot, now: Instant) -> bool {
    waits_for_head(slot) || evictable_idle(slot, now)
}

fn waits_for_head(slot: &Slot) -> bool {
    !slot.lingering && matches!(slot.kind, Deadline::Header | Deadline::Handshake)
}

fn evictable_idle(slot: &Slot, now: Instant) -> bool {
    !slot.lingering && slot.kind == Deadline::Idle && slot.since < now
}

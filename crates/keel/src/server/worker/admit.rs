//! Taking new connections from the listener.

use super::deadline::Deadline;
use super::{Slot, Wake, Worker};
use crate::http1::conn::Conn;
use crate::Handler;
use mio::{Interest, Token};
use std::io;

impl<H: Handler> Worker<H> {
    pub(super) fn accept(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            if self.conns.len() >= self.services.config.max_connections_per_worker {
                // Leave the rest in the kernel's queue until a slot frees up.
                self.accept_paused = true;
                return;
            }
            match listener.accept() {
                Ok((stream, peer)) => {
                    let key = self.conns.insert(Slot {
                        stream,
                        conn: Conn::new(peer),
                        deadline: self.now + self.services.config.header_timeout,
                        kind: Deadline::Header,
                        lingering: false,
                        served_at_deadline: 0,
                        progress_at_deadline: 0,
                        since: self.now,
                        bytes_at_since: 0,
                        bytes_in: 0,
                        bytes_out: 0,
                    });
                    self.services.counters.connections_accepted.add(1);
                    self.services.counters.connections_open.add(1);
                    // With deferred accepts the request is already in:
                    // answer it now, and register only a connection that
                    // outlives this turn, so a `Connection: close` exchange
                    // costs no epoll_ctl and no wake-up of its own. Adding
                    // it later loses nothing: epoll reports the readiness a
                    // socket already has when it is added.
                    if self.serve_on_accept {
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_paused = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // EMFILE, ENOBUFS...: try again on the next timer tick.
                    self.accept_paused = true;
                    return;
                }
            }
        }
    }
}

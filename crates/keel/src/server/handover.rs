//! Handing a connection over after `101 Switching Protocols`: it leaves the
//! worker's `Poll`, becomes a blocking `std` socket, and goes with the bytes
//! read after the upgrade request to the handler's callback.

use crate::peer::Peer;
use crate::server::stats::WorkerCounters;
use crate::transport::Stream;
use crate::upgrade::{OnUpgrade, Upgraded};
use bytes::Bytes;
use mio::Registry;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Gives `stream` to `on_upgrade`, on this (the worker's) thread. The
/// connection has already left the worker's slab (`connections_open` is
/// down by one); it counts as an upgrade once the callback has it. A panic
/// in the callback is contained: it drops, and so closes, that connection
/// alone.
pub(crate) fn hand_over(
    registry: &Registry,
    mut stream: Stream,
    peer: Peer,
    (on_upgrade, read_ahead): (OnUpgrade, Bytes),
    counters: &WorkerCounters,
) {
    // A connection answered within its accept turn was never registered:
    // nothing to undo then, and the error says only that.
    let _ = registry.deregister(&mut stream);
    let Ok(socket) = stream.into_blocking() else {
        return; // the socket is unusable: dropping it closes it
    };
    counters.upgrades.add(1);
    let upgraded = Upgraded::new(socket, read_ahead, peer);
    if catch_unwind(AssertUnwindSafe(move || on_upgrade(upgraded))).is_err() {
        counters.handler_panics.add(1);
    }
}

//! Per-worker counters, written by their worker alone and summed by the handle.

use crate::metrics::histogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A counter with a single writer: `add` is a plain load and store (no locked
/// instruction), which is exact as long as only the owning worker writes it.
#[derive(Default, Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub(crate) fn sub(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_sub(n), Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// One worker's counters. The worker writes; [`crate::ServerHandle::stats`] reads.
///
/// Aligned, and so sized, to 128 bytes: the cache lines a worker writes on
/// every request hold nothing another worker writes or reads, whatever the
/// allocator places beside them (an allocator with size classes puts two
/// of these side by side; unpadded, one worker's histogram and the next
/// one's request counter shared a line). 128 rather than 64 because x86's
/// adjacent-line prefetcher moves lines in pairs (crossbeam's
/// `CachePadded` makes the same choice).
#[derive(Default, Debug)]
#[repr(align(128))]
pub(crate) struct WorkerCounters {
    pub(crate) connections_accepted: Counter,
    pub(crate) connections_open: Counter,
    pub(crate) requests: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) parse_errors: Counter,
    pub(crate) responses_4xx: Counter,
    pub(crate) responses_5xx: Counter,
    pub(crate) timeouts: Counter,
    pub(crate) handler_panics: Counter,
    pub(crate) upgrades: Counter,
    pub(crate) accept_errors: Counter,
    pub(crate) evictions: Counter,
    pub(crate) file_readaheads: Counter,
    pub(crate) tls_handshakes: Counter,
    pub(crate) tls_handshake_failures: Counter,
    /// How long requests took from dispatch to a queued response.
    pub(crate) latency: Histogram,
}

impl WorkerCounters {
    /// Counts a response by its status class.
    #[inline]
    pub(crate) fn count_status(&self, status: u16) {
        match status {
            400..=499 => self.responses_4xx.add(1),
            500..=599 => self.responses_5xx.add(1),
            _ => {}
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            connections_accepted: self.connections_accepted.get(),
            connections_open: self.connections_open.get(),
            requests: self.requests.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            parse_errors: self.parse_errors.get(),
            responses_4xx: self.responses_4xx.get(),
            responses_5xx: self.responses_5xx.get(),
            timeouts: self.timeouts.get(),
            handler_panics: self.handler_panics.get(),
            upgrades: self.upgrades.get(),
            accept_errors: self.accept_errors.get(),
            evictions: self.evictions.get(),
            file_readaheads: self.file_readaheads.get(),
            tls_handshakes: self.tls_handshakes.get(),
            tls_handshake_failures: self.tls_handshake_failures.get(),
        }
    }
}

/// A snapshot of a server's counters, summed over its workers.
///
/// Each field is read without stopping the workers, so fields taken together
/// may be a few events apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Requests handed to the handler, plus requests answered with an error status by the server itself.
    pub requests: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Requests rejected as malformed, oversized or ambiguous, or past the
    /// worker's budget of bodies in flight.
    pub parse_errors: u64,
    /// Responses with a 4xx status, the server's own included.
    pub responses_4xx: u64,
    /// Responses with a 5xx status, the server's own included.
    pub responses_5xx: u64,
    /// Connections closed because a deadline passed.
    pub timeouts: u64,
    /// Handler calls that panicked (each answered with a 500).
    pub handler_panics: u64,
    /// Connections handed over after `101 Switching Protocols` (see
    /// [`crate::Response::upgrade`]); they no longer count as open.
    pub upgrades: u64,
    /// `accept` calls that failed (out of descriptors: `EMFILE`, `ENFILE`;
    /// out of memory: `ENOBUFS`, `ENOMEM`), each followed by evictions or
    /// a back-off of [`crate::Config::accept_backoff`], never by a retry in
    /// a loop.
    pub accept_errors: u64,
    /// Connections closed to make room for new ones at the cap
    /// ([`crate::Config::max_connections_per_worker`], or the process's
    /// descriptors): idle keep-alive ones and heads still arriving, oldest first.
    pub evictions: u64,
    /// Chunks of files sent with [`crate::Response::file`] that were not in
    /// the page cache, read in by a thread of the blocking pool before
    /// being sent, so that the worker never waited for the disk.
    pub file_readaheads: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// TLS connections that ended before their handshake completed: a
    /// failed handshake (garbage, a plaintext request, no shared version or
    /// cipher, an unknown name without a default certificate), a
    /// handshake past [`Config::tls_handshake_timeout`](crate::Config::tls_handshake_timeout),
    /// or one closed at [`Config::max_tls_handshakes_per_worker`](crate::Config::max_tls_handshakes_per_worker).
    pub tls_handshake_failures: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;

    fn add(self, o: Stats) -> Stats {
        Stats {
            connections_accepted: self.connections_accepted + o.connections_accepted,
            connections_open: self.connections_open + o.connections_open,
            requests: self.requests + o.requests,
            bytes_in: self.bytes_in + o.bytes_in,
            bytes_out: self.bytes_out + o.bytes_out,
            parse_errors: self.parse_errors + o.parse_errors,
            responses_4xx: self.responses_4xx + o.responses_4xx,
            responses_5xx: self.responses_5xx + o.responses_5xx,
            timeouts: self.timeouts + o.timeouts,
            handler_panics: self.handler_panics + o.handler_panics,
            upgrades: self.upgrades + o.upgrades,
            accept_errors: self.accept_errors + o.accept_errors,
            evictions: self.evictions + o.evictions,
            file_readaheads: self.file_readaheads + o.file_readaheads,
            tls_handshakes: self.tls_handshakes + o.tls_handshakes,
            tls_handshake_failures: self.tls_handshake_failures + o.tls_handshake_failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response};
    use std::sync::Arc;

    /// Bytes two cores contend for as one unit when either writes: a
    /// 64-byte line and its pair (x86's adjacent-line prefetcher).
    const LINE_PAIR: usize = 128;

    /// The first and last 128-byte block of the `len` bytes at `start`.
    fn blocks(start: usize, len: usize) -> (usize, usize) {
        (start / LINE_PAIR, (start + len - 1) / LINE_PAIR)
    }

    fn counters_blocks(counters: &WorkerCounters) -> (usize, usize) {
        blocks(
            std::ptr::from_ref(counters) as usize,
            size_of::<WorkerCounters>(),
        )
    }

    fn assert_disjoint(spans: &[(usize, usize)]) {
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                assert!(a.1 < b.0 || b.1 < a.0, "{a:x?} and {b:x?} share a block");
            }
        }
    }

    #[test]
    fn neighbouring_counters_share_no_cache_line() {
        // Side by side, as in a slice, or as an allocator's size class
        // places two allocations of the same size.
        let side_by_side: Vec<WorkerCounters> = (0..3).map(|_| WorkerCounters::default()).collect();
        assert_disjoint(&side_by_side.iter().map(counters_blocks).collect::<Vec<_>>());
    }

    #[test]
    fn a_server_s_workers_write_no_line_another_worker_reads() {
        let server = crate::Server::bind("127.0.0.1:0")
            .workers(4)
            .serve(|_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok"))
            .expect("serve");
        let mut spans: Vec<_> = server
            .workers
            .iter()
            .map(|w| counters_blocks(&w.counters))
            .collect();
        // Every worker reads the shutdown flag on every request.
        spans.push(blocks(Arc::as_ptr(&server.shutting_down) as usize, 1));
        assert_disjoint(&spans);
        server.shutdown(std::time::Duration::ZERO);
        server.join();
    }
}

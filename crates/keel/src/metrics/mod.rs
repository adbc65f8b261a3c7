//! Metrics in the Prometheus text exposition format: a [`Metrics`] is
//! created before the server, wired to its workers' counters by
//! [`Server::metrics`](crate::Server::metrics), and mounted as a handler.

pub(crate) mod histogram;

use crate::metrics::histogram::{LatencySnapshot, LATENCY_BUCKETS};
use crate::server::stats::{Stats, WorkerCounters};
use crate::{field, Handler, Request, Response};
use std::fmt::{self, Write};
use std::sync::{Arc, OnceLock};

/// The server's counters and request-latency histogram, per worker, in the
/// Prometheus text exposition format (version 0.0.4).
///
/// Create one, hand it to [`Server::metrics`](crate::Server::metrics) before
/// [`serve`](crate::Server::serve), and mount it (it is a [`Handler`];
/// clones share the same server) at the path of your choice. A scrape reads
/// the workers' counters without stopping or locking them and allocates the
/// text it answers; serving requests takes no lock and allocates nothing for
/// it. Every sample carries a `worker` label, so an imbalance between
/// workers shows.
///
/// | metric | type | what |
/// | --- | --- | --- |
/// | `keel_connections_accepted_total` | counter | connections accepted |
/// | `keel_connections_open` | gauge | connections open now |
/// | `keel_requests_total` | counter | requests dispatched, plus those the server refused itself |
/// | `keel_read_bytes_total` | counter | bytes read from sockets |
/// | `keel_written_bytes_total` | counter | bytes written to sockets |
/// | `keel_parse_errors_total` | counter | requests refused as malformed, oversized or ambiguous |
/// | `keel_responses_4xx_total` | counter | responses with a 4xx status, the server's own included |
/// | `keel_responses_5xx_total` | counter | responses with a 5xx status, the server's own included |
/// | `keel_timeouts_total` | counter | deadlines passed (408, 503 for a late deferred answer, write timeouts) |
/// | `keel_handler_panics_total` | counter | handler calls that panicked |
/// | `keel_upgrades_total` | counter | connections handed over after `101 Switching Protocols` |
/// | `keel_accept_errors_total` | counter | failed `accept` calls (out of descriptors or memory), each followed by a back-off |
/// | `keel_evictions_total` | counter | connections closed at the cap to make room: idle ones and heads still arriving, oldest first |
/// | `keel_request_duration_seconds` | histogram | from dispatch to the response queued, over [`LATENCY_BUCKETS`] |
///
/// The latency of a request runs from the moment its head and body were
/// complete and it was dispatched to the handler, to the moment its response
/// was queued for writing (for a deferred response: when the worker queued
/// the answer it received). The start is the worker's latest clock reading
/// (taken when its event loop woke up, or when it queued the previous
/// response in the same turn); the end is a fresh reading. That is one clock
/// read per request (about 35 ns with a TSC clock source), made only by the
/// workers of a server this `Metrics` is wired to, and a latency
/// always covers the whole handler, plus possibly the read and parse of its
/// request (and the write of another connection's responses in the same
/// loop turn). Coarse at both ends would cost nothing but read zero for
/// every answer given within one loop turn. Requests the server refuses itself (400, 408,
/// 413...) are counted in `keel_requests_total` but not in the histogram.
///
/// A `Metrics` not wired to a server renders the `# HELP` and `# TYPE` lines
/// with no samples.
///
/// # Examples
///
/// ```
/// use keel::{Metrics, Request, Response, Router, Server};
/// use std::io::{Read, Write};
///
/// let metrics = Metrics::new();
/// let routes = Router::new()
///     .get("/metrics", metrics.clone())
///     .get("/", |_req: &Request<'_>, res: &mut Response<'_>| res.body(b"hi"))
///     .build()?;
/// let server = Server::bind("127.0.0.1:0").workers(1).metrics(&metrics).serve(routes)?;
///
/// let mut stream = std::net::TcpStream::connect(server.local_addr())?;
/// stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
///                    GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
/// let mut reply = Vec::new();
/// stream.read_to_end(&mut reply)?;
/// let scrape = keel::testing::parse_responses(&reply).unwrap().pop().unwrap();
/// assert_eq!(scrape.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
/// let text = scrape.text();
/// assert!(text.contains("# TYPE keel_requests_total counter\n"));
/// // `/` was answered before; the scrape counts itself once it is answered.
/// assert!(text.contains("\nkeel_requests_total{worker=\"0\"} 1\n"));
/// assert!(text.contains("\nkeel_request_duration_seconds_count{worker=\"0\"} 1\n"));
/// server.shutdown(std::time::Duration::ZERO);
/// server.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Metrics {
    workers: Arc<OnceLock<Box<[Arc<WorkerCounters>]>>>,
}

/// A `Metrics` was given to a second server: each reports one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlreadyWired;

impl fmt::Display for AlreadyWired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this keel::Metrics already reports another server")
    }
}

impl std::error::Error for AlreadyWired {}

/// One metric family: name, type, help, and how to read it from a worker.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    read: fn(&Stats) -> u64,
}

const FAMILIES: [Family; 16] = [
    Family {
        name: "keel_connections_accepted_total",
        kind: "counter",
        help: "Connections accepted.",
        read: |s| s.connections_accepted,
    },
    Family {
        name: "keel_connections_open",
        kind: "gauge",
        help: "Connections open now.",
        read: |s| s.connections_open,
    },
    Family {
        name: "keel_requests_total",
        kind: "counter",
        help: "Requests dispatched to the handler, plus requests the server answered with an error itself.",
        read: |s| s.requests,
    },
    Family {
        name: "keel_read_bytes_total",
        kind: "counter",
        help: "Bytes read from sockets.",
        read: |s| s.bytes_in,
    },
    Family {
        name: "keel_written_bytes_total",
        kind: "counter",
        help: "Bytes written to sockets.",
        read: |s| s.bytes_out,
    },
    Family {
        name: "keel_parse_errors_total",
        kind: "counter",
        help: "Requests refused as malformed, oversized or ambiguous.",
        read: |s| s.parse_errors,
    },
    Family {
        name: "keel_responses_4xx_total",
        kind: "counter",
        help: "Responses with a 4xx status, the server's own included.",
        read: |s| s.responses_4xx,
    },
    Family {
        name: "keel_responses_5xx_total",
        kind: "counter",
        help: "Responses with a 5xx status, the server's own included.",
        read: |s| s.responses_5xx,
    },
    Family {
        name: "keel_timeouts_total",
        kind: "counter",
        help: "Deadlines passed: requests too slow to arrive, deferred answers too slow to come, peers too slow to read.",
        read: |s| s.timeouts,
    },
    Family {
        name: "keel_handler_panics_total",
        kind: "counter",
        help: "Handler calls that panicked (each answered with a 500).",
        read: |s| s.handler_panics,
    },
    Family {
        name: "keel_upgrades_total",
        kind: "counter",
        help: "Connections handed over after 101 Switching Protocols.",
        read: |s| s.upgrades,
    },
    Family {
        name: "keel_accept_errors_total",
        kind: "counter",
        help: "Failed accept calls (out of descriptors or memory), each followed by a back-off.",
        read: |s| s.accept_errors,
    },
    Family {
        name: "keel_evictions_total",
        kind: "counter",
        help: "Connections closed at the cap to make room: idle ones and heads still arriving, oldest first.",
        read: |s| s.evictions,
    },
    Family {
        name: "keel_file_readaheads_total",
        kind: "counter",
        help: "Chunks of files not in the page cache, read in on the blocking pool before being sent.",
        read: |s| s.file_readaheads,
    },
    Family {
        name: "keel_tls_handshakes_total",
        kind: "counter",
        help: "TLS handshakes completed.",
        read: |s| s.tls_handshakes,
    },
    Family {
        name: "keel_tls_handshake_failures_total",
        kind: "counter",
        help: "TLS connections closed before their handshake completed: refused, timed out, or at the cap.",
        read: |s| s.tls_handshake_failures,
    },
];

const LATENCY: &str = "keel_request_duration_seconds";

impl Metrics {
    /// Metrics not yet wired to a server. Allocates one small shared cell.
    ///
    /// ```
    /// let metrics = keel::Metrics::new();
    /// assert!(!metrics.is_wired());
    /// assert!(metrics.render().contains("# TYPE keel_request_duration_seconds histogram\n"));
    /// ```
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Whether a server's workers report here.
    pub fn is_wired(&self) -> bool {
        self.workers.get().is_some()
    }

    /// Makes `workers` the ones reported. Called once, by `Server::serve`.
    pub(crate) fn wire(&self, workers: Box<[Arc<WorkerCounters>]>) -> Result<(), AlreadyWired> {
        self.workers.set(workers).map_err(|_| AlreadyWired)
    }

    /// The counters of all workers, summed (zero when not wired).
    pub fn stats(&self) -> Stats {
        self.workers()
            .iter()
            .map(|w| w.snapshot())
            .fold(Stats::default(), |a, b| a + b)
    }

    fn workers(&self) -> &[Arc<WorkerCounters>] {
        self.workers.get().map_or(&[], |w| w)
    }

    /// The exposition text, as a scrape would get it. Allocates the string.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024 + self.workers().len() * 2048);
        self.render_into(&mut out)
            .expect("writing to a String does not fail");
        out
    }

    /// Appends the exposition text to `out`. Reads each worker's counters
    /// once, without stopping it: values from one worker may be a few events
    /// apart, but each histogram's buckets are cumulative and its `+Inf`
    /// bucket equals its `_count`.
    ///
    /// # Errors
    ///
    /// Only those of `out`.
    pub fn render_into(&self, out: &mut impl Write) -> fmt::Result {
        let workers: Vec<(Stats, LatencySnapshot)> = self
            .workers()
            .iter()
            .map(|w| (w.snapshot(), w.latency.snapshot()))
            .collect();
        for family in &FAMILIES {
            writeln!(out, "# HELP {} {}", family.name, family.help)?;
            writeln!(out, "# TYPE {} {}", family.name, family.kind)?;
            for (i, (stats, _)) in workers.iter().enumerate() {
                writeln!(
                    out,
                    "{}{{worker=\"{i}\"}} {}",
                    family.name,
                    (family.read)(stats)
                )?;
            }
        }
        writeln!(
            out,
            "# HELP {LATENCY} Time from dispatching a complete request to queueing its response."
        )?;
        writeln!(out, "# TYPE {LATENCY} histogram")?;
        for (i, (_, latency)) in workers.iter().enumerate() {
            let cumulative = latency.cumulative();
            for (bound, n) in LATENCY_BUCKETS.iter().zip(cumulative) {
                let le = bound.as_secs_f64();
                writeln!(out, "{LATENCY}_bucket{{worker=\"{i}\",le=\"{le}\"}} {n}")?;
            }
            let count = latency.count();
            writeln!(
                out,
                "{LATENCY}_bucket{{worker=\"{i}\",le=\"+Inf\"}} {count}"
            )?;
            let sum = latency.sum_ns as f64 / 1e9;
            writeln!(out, "{LATENCY}_sum{{worker=\"{i}\"}} {sum}")?;
            writeln!(out, "{LATENCY}_count{{worker=\"{i}\"}} {count}")?;
        }
        Ok(())
    }
}

/// Answers with [`Metrics::render`] as `text/plain; version=0.0.4`, whatever
/// the request (mount it behind a [`Router`](crate::Router) to restrict the
/// method). Allocates the text; takes no lock.
impl Handler for Metrics {
    fn handle(&self, _req: &Request<'_>, res: &mut Response<'_>) {
        let text = self.render();
        res.field(field!(
            "Content-Type",
            "text/plain; version=0.0.4; charset=utf-8"
        ))
        .field(field!("Cache-Control", "no-store"))
        .body(text.as_bytes());
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("workers", &self.workers().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unwired_renders_help_and_type_only() {
        let text = Metrics::new().render();
        assert!(text
            .lines()
            .all(|l| l.starts_with("# HELP ") || l.starts_with("# TYPE ")));
        assert_eq!(text.lines().count(), 2 * (FAMILIES.len() + 1));
    }

    #[test]
    fn wired_once_only() {
        let metrics = Metrics::new();
        let workers: Box<[Arc<WorkerCounters>]> = vec![Arc::default(), Arc::default()].into();
        metrics.wire(workers.clone()).unwrap();
        assert_eq!(metrics.clone().wire(workers.clone()), Err(AlreadyWired));
        workers[1].requests.add(3);
        workers[1].latency.observe(Duration::from_millis(2));
        let text = metrics.render();
        assert!(text.contains(
            "\nkeel_requests_total{worker=\"0\"} 0\nkeel_requests_total{worker=\"1\"} 3\n"
        ));
        assert!(
            text.contains("\nkeel_request_duration_seconds_bucket{worker=\"1\",le=\"0.001\"} 0\n")
        );
        assert!(
            text.contains("\nkeel_request_duration_seconds_bucket{worker=\"1\",le=\"0.0025\"} 1\n")
        );
        assert!(text.contains("\nkeel_request_duration_seconds_sum{worker=\"1\"} 0.002\n"));
        assert_eq!(metrics.stats().requests, 3);
    }
}

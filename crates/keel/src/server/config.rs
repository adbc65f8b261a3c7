//! Limits and deadlines, each a documented field with a sane default.

use std::time::Duration;

/// Every limit and deadline a server enforces.
///
/// Build one with [`Config::default`] and change the fields you care about:
///
/// ```
/// use std::time::Duration;
/// let config = keel::Config {
///     max_body: 8 << 20,
///     header_timeout: Duration::from_secs(5),
///     ..keel::Config::default()
/// };
/// assert_eq!(config.max_headers, 100);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest request head (request line and header fields) in bytes; larger
    /// gets `431 Request Header Fields Too Large`. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Most header fields in one request; more gets `431`. Default 100, at most
    /// [`Config::HEADER_COUNT_CEILING`].
    pub max_headers: usize,
    /// Longest request target in bytes; longer gets `414 URI Too Long`. Default 8 KiB.
    pub max_target: usize,
    /// Largest request body in bytes, after chunked decoding; larger gets
    /// `413 Content Too Large` and a close without reading the rest. A route
    /// may set its own ([`crate::Router::body_limit`],
    /// [`crate::Handler::body_limit`]). Default 1 MiB.
    pub max_body: usize,
    /// Body bytes one worker may hold for requests whose body is still
    /// arriving, all connections together: a `Content-Length` body counts
    /// in full from its head, a chunked one as it arrives. A request that
    /// would pass it gets `503 Service Unavailable` with `Retry-After` and a
    /// close, so many slow uploads cannot grow memory without bound. The
    /// bytes count again once their request is answered or its connection
    /// closes. Keep it above the largest body limit, or that route can never
    /// be used. Default 64 MiB.
    pub max_body_in_flight: usize,
    /// Most connections one worker holds. At the cap (or when the process
    /// is out of descriptors) a new connection takes the place of the head
    /// still arriving that has waited longest, or when there is none, of
    /// the longest-idle keep-alive connection (counted in
    /// `Stats::evictions`); with none of those, new connections wait in the
    /// kernel's accept queue. Default 32 768.
    pub max_connections_per_worker: usize,
    /// After an `accept` that failed (`EMFILE` with nothing to evict,
    /// `ENOBUFS`...) or a cap with nothing to evict, how long the worker
    /// leaves its listener alone unless a connection closes first: long
    /// enough that a failing call is not repeated in a loop that would
    /// spin a core, short enough that queued clients are not kept waiting
    /// once descriptors free up elsewhere in the process. Default 100 ms.
    pub accept_backoff: Duration,
    /// Response bytes queued for one connection before the worker stops
    /// reading and parsing its requests until the peer catches up: what a
    /// peer that pipelines requests without reading the answers holds (plus
    /// one answer, and its read buffer); a thousand such peers hold a
    /// thousand times it. 32 KiB cut that to a third in the attack harness
    /// but lengthened other clients' tail latency under a pipelined flood
    /// (see docs/benchmarks.md, "Under attack"). Default 256 KiB.
    pub max_output_buffered: usize,
    /// Bytes a streamed response ([`crate::Response::stream`], server-sent
    /// events) may queue in the worker before its producer waits: the
    /// memory a slow stream holds, and how much a fast one moves per wake-up
    /// of its producer. Default 256 KiB.
    pub stream_window: usize,
    /// Most written bytes the kernel may hold unsent for one connection
    /// (`TCP_NOTSENT_LOWAT`); the rest of an answer waits in the worker's
    /// output queue, where a shared body (`Response::body_bytes`, a file)
    /// costs nothing per connection. Without it the kernel grows each send
    /// buffer to megabytes: a thousand slow readers of a 1 MiB answer held
    /// 1.4 GB of kernel memory on the test machine, outside every process's
    /// RSS, and pushed TCP into memory pressure for everyone. `None` leaves
    /// the kernel's default (no limit). Default 128 KiB.
    pub max_unsent_per_socket: Option<usize>,
    /// Whether a file body ([`crate::Response::file`]) whose next chunk is
    /// not in the page cache is read in by a thread of the
    /// [blocking pool](crate::blocking) before it is sent, instead of
    /// `sendfile` waiting for the disk with the whole worker. Each chunk
    /// of 64 KiB or more is asked about first (`preadv2` with
    /// `RWF_NOWAIT`). With a disk throttled to 50 MB/s, others' answers
    /// waited up to 174 ms during a cold download without it, at most
    /// 32 ms with it (docs/benchmarks.md). Default `true`.
    pub cold_file_readahead: bool,
    /// Time allowed from a connection's first byte (or its accept) to a complete
    /// request head; past it the worker answers `408` and closes. Default 10 s.
    pub header_timeout: Duration,
    /// Time allowed for a TLS connection's handshake, from its accept;
    /// past it the connection is closed (and counted in
    /// [`Stats::tls_handshake_failures`](crate::Stats::tls_handshake_failures)).
    /// The request's own [`Config::header_timeout`] starts once it is done.
    /// Default 10 s.
    pub tls_handshake_timeout: Duration,
    /// Most TLS handshakes in progress per worker (each holds rustls's
    /// handshake state, and up to 64 KiB of a handshake message). At the
    /// cap, a new connection takes the place of the handshake that has
    /// taken longest: stalled handshakes make room for each other while
    /// a client that completes one in a round trip or two gets through.
    /// Default 512.
    pub max_tls_handshakes_per_worker: usize,
    /// The window a request body is judged over once its head is in: each
    /// window must bring [`Config::min_body_rate`] times its length in bytes
    /// (and at least one byte), or the request gets `408` and a close. A
    /// body that ends within its first window is never judged. Default 30 s.
    pub body_timeout: Duration,
    /// The least average rate, in bytes a second, at which a request body
    /// (buffered or streamed) must arrive, judged over each
    /// [`Config::body_timeout`] window, as Apache's `mod_reqtimeout`
    /// `MinRate`: a client trickling bytes cannot hold a connection and its
    /// body budget for long, while one that pauses and catches up keeps
    /// going. 0 asks only for one byte a window. Default 1 KiB/s.
    pub min_body_rate: u64,
    /// How long a keep-alive connection may sit idle between requests before it
    /// is closed without a response. Default 60 s.
    pub idle_timeout: Duration,
    /// The window a peer's reading is judged over while response bytes are
    /// queued for it: each window must see [`Config::min_send_rate`] times
    /// its length written (and at least one byte), or the connection is
    /// dropped. Default 30 s.
    pub write_timeout: Duration,
    /// The least average rate, in bytes a second, at which a peer must take
    /// (acknowledge) queued response bytes, judged over each
    /// [`Config::write_timeout`] window after the first: a reader taking a
    /// byte now and then cannot hold a connection and its queued answer for
    /// ever. 0 asks only for one byte a window. Default 1 KiB/s.
    pub min_send_rate: u64,
    /// How long a deferred response (see [`crate::Response::defer`]) may take
    /// before the server answers `503` in its place and closes. Default 30 s.
    pub deferred_timeout: Duration,
    /// After a response that closes the connection, how long the worker keeps
    /// reading (and discarding) what the peer still sends, so that the peer
    /// sees the response instead of a reset. Default 2 s.
    pub linger_timeout: Duration,
    /// Once a graceful shutdown begins ([`crate::ServerHandle::shutdown`]),
    /// how long an idle keep-alive connection stays open: a request it
    /// brings meanwhile is answered with `Connection: close`, then it
    /// closes; one still idle after it is closed. Closing it at once would
    /// fail a client whose next request is already on its way (it reads
    /// the end of the connection instead of an answer). Zero closes idle
    /// connections at once. Default 500 ms.
    pub drain_idle_grace: Duration,
    /// Initial capacity of each pooled read and write buffer. Default 8 KiB.
    pub buffer_size: usize,
    /// Largest buffer the pool keeps when a connection gives it back; larger
    /// ones (grown by a big body) are freed. Default 64 KiB.
    pub max_pooled_buffer: usize,
    /// Most idle buffers each worker keeps for reuse. Default 1024.
    pub max_pooled_buffers: usize,
    /// Value of the `Server` response header, or `None` to send none. Default `Some("keel")`.
    pub server_name: Option<String>,
    /// The strict parsing rules to relax, none by default: see [`crate::Leniency`].
    pub lenient: crate::Leniency,
}

impl Config {
    /// Hard ceiling on [`Config::max_headers`]: the parser keeps this many header
    /// slots on the stack.
    pub const HEADER_COUNT_CEILING: usize = 256;

    /// The smallest deadline, which sets how often the worker's coarse timer ticks.
    pub(crate) fn timer_tick(&self) -> Duration {
        let shortest = [
            self.header_timeout,
            self.tls_handshake_timeout,
            self.body_timeout,
            self.idle_timeout,
            self.write_timeout,
            self.deferred_timeout,
            self.linger_timeout,
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1));
        (shortest / 4).clamp(Duration::from_millis(5), Duration::from_secs(1))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_target: 8 * 1024,
            max_body: 1024 * 1024,
            max_body_in_flight: 64 * 1024 * 1024,
            max_connections_per_worker: 32 * 1024,
            accept_backoff: Duration::from_millis(100),
            max_output_buffered: 256 * 1024,
            stream_window: 256 * 1024,
            cold_file_readahead: true,
            max_unsent_per_socket: Some(128 * 1024),
            header_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            max_tls_handshakes_per_worker: 512,
            body_timeout: Duration::from_secs(30),
            min_body_rate: 1024,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            min_send_rate: 1024,
            deferred_timeout: Duration::from_secs(30),
            linger_timeout: Duration::from_secs(2),
            drain_idle_grace: Duration::from_millis(500),
            buffer_size: 8 * 1024,
            max_pooled_buffer: 64 * 1024,
            max_pooled_buffers: 1024,
            server_name: Some("keel".to_owned()),
            lenient: crate::Leniency::default(),
        }
    }
}

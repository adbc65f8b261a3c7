//! `AccessLog`: one line per request, written by a background thread.

use super::clock::{Clock, SystemClock};
use super::log_line::{Line, Outcome};
use super::log_writer::{AccessLogHandle, LogWriter};
use super::{Flow, Middleware};
use crate::{DeferredOutcome, Request, Response};
use std::cell::Cell;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// The shape of an access log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Apache's common log format, then the response time in microseconds
    /// (`%h %l %u %t "%r" %>s %b %D`):
    ///
    /// `127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a?b=c HTTP/1.1" 200 - 57`
    Common,
    /// Apache's combined log format, then the response time in microseconds
    /// (`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" %D`):
    ///
    /// `127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 - "-" "curl/8.5.0" 57`
    Combined,
    /// One JSON object per line, absent values as `null`:
    ///
    /// `{"time":"2000-10-10T13:55:36Z","remote_addr":"127.0.0.1","method":"GET","target":"/",`
    /// `"version":"HTTP/1.1","status":200,"bytes":null,"duration_us":57,"referer":null,"user_agent":"curl/8.5.0"}`
    Json,
}

/// Logs every request it wraps, without blocking the worker on I/O.
///
/// In `after`, the line is formatted into the worker thread's own buffer
/// (its capacity kept from request to request); a background thread writes
/// the buffers to the sink (any `Write + Send`: stdout by default, a
/// `BufWriter<File>`, a test sink). A buffer goes to the writer when it
/// passes [`flush_bytes`](AccessLog::flush_bytes) (16 KiB by default), and
/// the writer collects every thread's buffer each
/// [`flush_every`](AccessLog::flush_every) (100 ms by default) so quiet
/// workers' lines are not held back.
///
/// Fields: peer IP, time (UTC, whole seconds, formatted once a second per
/// thread), method, target, version, status, response body bytes
/// ([`Response::body_len`]; `-` for none in the Apache formats, `null` in
/// JSON), time from this layer's `before` to its `after` (for a deferred
/// response: to its end) in microseconds, and for
/// [`Combined`](LogFormat::Combined) and [`Json`](LogFormat::Json) the
/// `Referer` and `User-Agent`. Quoted fields escape `"`, `\` and
/// non-printable bytes (`\x0a` in the Apache formats, JSON escapes in JSON).
///
/// Add it last (outermost) so that it sees the responses other layers
/// write themselves, and times them all.
///
/// # Deferred responses
///
/// A [deferred](Response::defer) (or [offloaded](Response::offload))
/// response has no status yet when the handler returns. Its line is written
/// when it ends ([`Response::on_deferred_end`]), with the real status and
/// body size: the answer's own; `503` when keel answered at the deferred
/// deadline; `499` (nginx's "client closed request") with no size when the
/// connection closed before any answer. Logging one costs two allocations
/// (a copy of the line's request fields and the observer's box); the
/// non-deferred path allocates nothing.
///
/// # Sampling
///
/// With [`sample`](AccessLog::sample), successes are thinned out but every
/// error is written: any `4xx` and `5xx` (deferred ones included, decided
/// once their status is known), and every `499`. A flood of `401`s or
/// `404`s is an attack to see; its cost is bounded by the writer's limits
/// below, which drop and count lines rather than block.
///
/// # Never blocking
///
/// If the writer falls behind (a slow disk, a blocked pipe), at most 32
/// full buffers queue for it; past that each worker keeps appending to its
/// own buffer, and once that holds four times `flush_bytes` further lines
/// are dropped and counted ([`AccessLogHandle::dropped`]) rather than
/// making the worker wait. Lines the sink fails to take count as dropped too.
///
/// # Cost
///
/// After warm-up (each thread's first line allocates its buffer), logging a
/// request allocates nothing: the same buffers go back and forth between
/// the workers and the writer. The layer keeps the start time in a small
/// thread-local table, so it may be nested or used twice.
///
/// # Examples
///
/// ```
/// use keel::middleware::{AccessLog, HandlerExt, LogFormat, ManualClock};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
/// use std::sync::{Arc, Mutex};
///
/// /// A sink the test can read.
/// #[derive(Clone, Default)]
/// struct Lines(Arc<Mutex<Vec<u8>>>);
/// impl std::io::Write for Lines {
///     fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
///         self.0.lock().unwrap().extend_from_slice(buf);
///         Ok(buf.len())
///     }
///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// }
///
/// let lines = Lines::default();
/// let log = AccessLog::new(LogFormat::Common, lines.clone())?
///     .clock(ManualClock::new(971_186_136)); // a fixed time, for the example
/// let handle = log.handle();
/// let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"hi")).with(log);
/// let mut conn = MemoryConn::new(app);
/// conn.send(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n");
/// conn.recv();
///
/// handle.flush_now();
/// assert_eq!(
///     String::from_utf8(lines.0.lock().unwrap().clone()).unwrap(),
///     "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=c HTTP/1.1\" 200 2 0\n"
/// );
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct AccessLog {
    format: LogFormat,
    clock: Arc<dyn Clock>,
    writer: LogWriter,
    /// Log one request in this many (per thread); 1 logs every request.
    sample: u32,
}

impl AccessLog {
    /// Logs in `format` to `sink`, through a new writer thread.
    ///
    /// # Errors
    ///
    /// When the writer thread cannot be started.
    pub fn new(format: LogFormat, sink: impl Write + Send + 'static) -> std::io::Result<Self> {
        Ok(AccessLog {
            format,
            clock: Arc::new(SystemClock::new()),
            writer: LogWriter::spawn(Box::new(sink))?,
            sample: 1,
        })
    }

    /// Logs in `format` to standard output.
    ///
    /// # Errors
    ///
    /// When the writer thread cannot be started.
    pub fn stdout(format: LogFormat) -> std::io::Result<Self> {
        AccessLog::new(format, std::io::stdout())
    }

    /// Reads the time and measures durations with `clock` (a
    /// [`ManualClock`](super::ManualClock) makes lines exact in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Logs one successful request in `one_in` (counted per worker thread)
    /// and skips the rest: a busy service keeps a representative log at a
    /// fraction of the cost. Errors (`4xx`, `5xx`, a deferred response
    /// whose connection closed first) are always logged, deferred ones
    /// too. `0` and `1` log everything.
    pub fn sample(mut self, one_in: u32) -> Self {
        self.sample = one_in.max(1);
        self
    }

    /// Hands a thread's buffer to the writer once it holds `bytes` (16 KiB
    /// by default).
    pub fn flush_bytes(self, bytes: usize) -> Self {
        self.writer.set_flush_bytes(bytes);
        self
    }

    /// How often the writer collects every thread's lines and flushes the
    /// sink (100 ms by default, 1 ms at least).
    pub fn flush_every(self, interval: Duration) -> Self {
        self.writer.set_interval(interval);
        self
    }

    /// A handle to flush the log on demand and count dropped lines. The
    /// writer thread runs until the log and all its handles are dropped,
    /// and writes what is left before it stops.
    pub fn handle(&self) -> AccessLogHandle {
        self.writer.handle()
    }

    /// The key of this layer's start time for `req` on this thread.
    fn start_key(&self, req: &Request<'_>) -> (usize, usize) {
        (
            self as *const AccessLog as usize,
            req.target().as_ptr() as usize,
        )
    }
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Middleware for AccessLog {
    fn before(&self, req: &Request<'_>, _res: &mut Response<'_>) -> Flow {
        let key = self.start_key(req);
        let now = self.clock.monotonic();
        STARTS.with(|starts| {
            let mut table = starts.get();
            // The same key (a request that panicked left it), a free entry,
            // or else the oldest.
            let i = (0..table.len())
                .find(|&i| table[i].0 == key)
                .or_else(|| (0..table.len()).find(|&i| table[i].0 == (0, 0)))
                .unwrap_or_else(|| (0..table.len()).min_by_key(|&i| table[i].1).unwrap_or(0));
            table[i] = (key, now);
            starts.set(table);
        });
        Flow::Continue
    }

    fn after(&self, req: &Request<'_>, res: &mut Response<'_>) {
        let key = self.start_key(req);
        let now = self.clock.monotonic();
        let started = STARTS.with(|starts| {
            let mut table = starts.get();
            let i = (0..table.len()).find(|&i| table[i].0 == key)?;
            let started = table[i].1;
            table[i] = ((0, 0), Duration::ZERO);
            starts.set(table);
            Some(started)
        });
        let line = Line {
            req,
            unix_secs: self.clock.unix_secs(),
        };
        if res.is_deferred() {
            self.log_when_deferred_ends(&line, res, started);
            return;
        }
        let status = res.status_code().as_u16();
        if !sampled_in(self.sample, status) {
            return;
        }
        let outcome = Outcome {
            status,
            bytes: Some(res.body_len() as u64),
            micros: micros_since(started, now),
        };
        let format = self.format;
        self.writer.append(|buf| {
            outcome.write(
                format,
                buf,
                |buf| line.write_request(format, buf),
                |buf| line.write_headers(format, buf),
            )
        });
    }
}

impl AccessLog {
    /// Copies the request's fields of `line` now, while the request is
    /// still readable, and writes the line when the deferred `res` ends.
    fn log_when_deferred_ends(
        &self,
        line: &Line<'_, '_>,
        res: &mut Response<'_>,
        started: Option<Duration>,
    ) {
        let format = self.format;
        let mut fields = Vec::with_capacity(256);
        line.write_request(format, &mut fields);
        let split = fields.len();
        line.write_headers(format, &mut fields);
        let (writer, clock, sample) = (self.writer.clone(), Arc::clone(&self.clock), self.sample);
        res.on_deferred_end(move |end: DeferredOutcome| {
            // The connection closed before an answer: nginx's 499.
            let status = end.status().map_or(499, |s| s.as_u16());
            if !sampled_in(sample, status) {
                return;
            }
            let outcome = Outcome {
                status,
                bytes: end.body_len().map(|n| n as u64),
                micros: micros_since(started, clock.monotonic()),
            };
            let (request, headers) = fields.split_at(split);
            writer.append(|buf| {
                outcome.write(
                    format,
                    buf,
                    |buf| buf.extend_from_slice(request),
                    |buf| buf.extend_from_slice(headers),
                )
            });
        });
    }
}

/// Whether a response with `status` is logged when one in `sample` is:
/// errors always, the rest one in `sample` per thread.
fn sampled_in(sample: u32, status: u16) -> bool {
    if sample <= 1 || status >= 400 {
        return true;
    }
    SAMPLED.with(|count| {
        let n = count.get().wrapping_add(1);
        count.set(n);
        n % sample == 0
    })
}

/// Microseconds from `started` (if the layer saw the start) to `now`.
fn micros_since(started: Option<Duration>, now: Duration) -> u64 {
    started.map_or(0, |s| now.saturating_sub(s).as_micros() as u64)
}

thread_local! {
    /// Start times of the requests in progress on this thread, keyed by
    /// (layer address, request target address); `(0, 0)` is a free entry.
    static STARTS: Cell<[((usize, usize), Duration); 8]> =
        const { Cell::new([((0, 0), Duration::ZERO); 8]) };
    /// Requests seen by sampling layers on this thread.
    static SAMPLED: Cell<u32> = const { Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::HandlerExt;
    use crate::testing::MemoryConn;
    use crate::StatusCode;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn sampling_logs_one_in_n_and_every_server_error() {
        let lines = Lines::default();
        let log = AccessLog::new(LogFormat::Common, lines.clone())
            .unwrap()
            .sample(4);
        let handle = log.handle();
        let app = (|req: &Request<'_>, res: &mut Response<'_>| {
            if req.path() == "/fail" {
                res.status(StatusCode::INTERNAL_SERVER_ERROR);
            }
            res.body(b"x");
        })
        .with(log);
        let mut conn = MemoryConn::new(app);
        for _ in 0..40 {
            conn.send(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n");
        }
        for _ in 0..3 {
            conn.send(b"GET /fail HTTP/1.1\r\nHost: a\r\n\r\n");
        }
        assert_eq!(conn.responses().unwrap().len(), 43);
        handle.flush_now();
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("GET /ok ").count(), 10, "{text}");
        assert_eq!(text.matches("GET /fail ").count(), 3, "{text}");
    }
}

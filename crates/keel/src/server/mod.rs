//! The server builder and the handle to a running server.

pub(crate) mod config;
pub(crate) mod date;
mod handover;
pub(crate) mod pool;
pub(crate) mod stats;
pub(crate) mod sys;
pub(crate) mod worker;

use crate::Metrics;
use crate::{Config, Handler};
use crossbeam_channel::Sender;
use mio::{Poll, Waker};
use parking_lot::Mutex;
use stats::{Stats, WorkerCounters};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use worker::{Control, WorkerSetup, WAKER};

/// Builds and starts a server: one worker thread per core by default, each
/// with its own listening socket on the same port.
///
/// ```no_run
/// use keel::{Request, Response, Server};
///
/// let server = Server::bind("127.0.0.1:8080")
///     .workers(2)
///     .serve(|_req: &Request<'_>, res: &mut Response<'_>| {
///         res.header("Content-Type", "text/plain").body(b"Hello, World!");
///     })?;
/// println!("listening on {}", server.local_addr());
/// server.join();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Server {
    addr: io::Result<SocketAddr>,
    workers: usize,
    config: Config,
    pin_workers: bool,
    backlog: i32,
    defer_accept: Option<Duration>,
    metrics: Option<Metrics>,
}

impl Server {
    /// A server that will listen on `addr` (the first address it resolves
    /// to). Port 0 picks a free port, shared by all workers.
    pub fn bind(addr: impl ToSocketAddrs) -> Server {
        let addr = addr.to_socket_addrs().and_then(|mut addrs| {
            addrs.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "address resolved to nothing")
            })
        });
        Server {
            addr,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            config: Config::default(),
            pin_workers: false,
            backlog: 4096,
            defer_accept: Some(Duration::from_secs(1)),
            metrics: None,
        }
    }

    /// How many worker threads (event loops) to run; default: the number of
    /// cores. Zero is taken as one.
    pub fn workers(mut self, n: usize) -> Server {
        self.workers = n.max(1);
        self
    }

    /// Limits and deadlines; default [`Config::default`].
    pub fn config(mut self, config: Config) -> Server {
        self.config = config;
        self
    }

    /// Pins worker `i` to core `i` (modulo the core count). Default off.
    pub fn pin_workers(mut self, pin: bool) -> Server {
        self.pin_workers = pin;
        self
    }

    /// The listen backlog of each worker's socket (capped by the kernel's
    /// `somaxconn`). Default 4096.
    pub fn backlog(mut self, backlog: i32) -> Server {
        self.backlog = backlog;
        self
    }

    /// Lets the kernel hold each new connection until its first bytes
    /// arrive (Linux `TCP_DEFER_ACCEPT`), for up to `wait` (whole seconds,
    /// at least one); a connection still silent then is handed over as
    /// usual and [`Config::header_timeout`] applies. Default one second.
    ///
    /// An HTTP client speaks first, so a connection arrives with its request
    /// and the worker answers it in the same turn as the accept: it is
    /// registered with the poller only if it outlives that turn. A
    /// `Connection: close` exchange then costs four system calls (accept,
    /// read, write, close) and no wake-up of its own, and connections
    /// opened but never used (a browser's preconnect, an idle client) take no
    /// slot until they speak. `None` accepts at once and waits for the
    /// request through the poller.
    pub fn defer_accept(mut self, wait: Option<Duration>) -> Server {
        self.defer_accept = wait;
        self
    }

    /// Reports this server's counters and request-latency histograms, per
    /// worker, through `metrics` (and every clone of it) once
    /// [`serve`](Server::serve) has started the workers. The counters are the
    /// workers' either way; the latency histogram costs one clock read per
    /// request, which a server without metrics does not make.
    ///
    /// ```
    /// let metrics = keel::Metrics::new();
    /// let server = keel::Server::bind("127.0.0.1:0")
    ///     .workers(2)
    ///     .metrics(&metrics)
    ///     .serve(|_req: &keel::Request<'_>, res: &mut keel::Response<'_>| res.body(b"ok"))?;
    /// assert!(metrics.is_wired());
    /// assert!(metrics.render().contains("keel_connections_open{worker=\"1\"} 0\n"));
    /// server.shutdown(std::time::Duration::ZERO);
    /// server.join();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metrics(mut self, metrics: &Metrics) -> Server {
        self.metrics = Some(metrics.clone());
        self
    }

    /// Binds every worker's listener and starts the workers. Also raises
    /// the process's soft limit on open files to its hard limit, since each
    /// connection holds one.
    ///
    /// # Errors
    ///
    /// When the address does not resolve, a listener cannot bind (port in
    /// use, no permission), or a thread or poller cannot be created. Nothing
    /// is left running on error. With [`metrics`](Server::metrics): when
    /// that [`Metrics`] already reports another server (an error of kind
    /// `AlreadyExists` wrapping [`crate::AlreadyWired`]).
    pub fn serve<H: Handler>(self, handler: H) -> io::Result<ServerHandle> {
        let addr = self.addr?;
        let already_wired = || io::Error::new(io::ErrorKind::AlreadyExists, crate::AlreadyWired);
        if self.metrics.as_ref().is_some_and(Metrics::is_wired) {
            return Err(already_wired());
        }
        // Each connection is a file descriptor: lift the soft limit (often
        // 1024) to the hard one. Failing to is not fatal.
        let _ = sys::raise_open_file_limit();
        let options = sys::ListenerOptions {
            backlog: self.backlog,
            defer_accept: self.defer_accept,
            max_unsent: self.config.max_unsent_per_socket,
        };
        let first = sys::reuseport_listener(addr, options)?;
        let local_addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..self.workers {
            listeners.push(sys::reuseport_listener(local_addr, options)?);
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let handler = Arc::new(handler);
        let shutting_down = Arc::new(AtomicBool::new(false));
        let config = Arc::new(self.config);
        let mut workers = Vec::with_capacity(self.workers);
        for (index, listener) in listeners.into_iter().enumerate() {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (control_tx, control_rx) = crossbeam_channel::unbounded();
            let counters = Arc::new(WorkerCounters::default());
            let setup = WorkerSetup {
                poll,
                listener,
                handler: Arc::clone(&handler),
                config: Arc::clone(&config),
                counters: Arc::clone(&counters),
                control: control_rx,
                waker: Arc::clone(&waker),
                shutting_down: Arc::clone(&shutting_down),
                pin_to: self.pin_workers.then_some(index % cores),
                timed: self.metrics.is_some(),
                serve_on_accept: self.defer_accept.is_some(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("keel-worker-{index}"))
                .spawn(move || {
                    if let Err(e) = worker::run(setup) {
                        eprintln!("keel: worker {index} stopped: {e}");
                    }
                });
            let thread = match spawned {
                Ok(thread) => thread,
                Err(e) => {
                    let started = ServerHandle {
                        local_addr,
                        workers,
                        shutting_down,
                    };
                    started.shutdown(Duration::ZERO);
                    started.join();
                    return Err(e);
                }
            };
            workers.push(WorkerHandle {
                control: control_tx,
                waker,
                counters,
                thread: Mutex::new(Some(thread)),
            });
        }
        let started = ServerHandle {
            local_addr,
            workers,
            shutting_down,
        };
        if let Some(metrics) = &self.metrics {
            let counters = started.workers.iter().map(|w| Arc::clone(&w.counters));
            if metrics.wire(counters.collect()).is_err() {
                // Another server took it meanwhile.
                started.shutdown(Duration::ZERO);
                started.join();
                return Err(already_wired());
            }
        }
        Ok(started)
    }
}

struct WorkerHandle {
    control: Sender<Control>,
    waker: Arc<Waker>,
    counters: Arc<WorkerCounters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A running server. Dropping the handle leaves the server running (like a
/// thread's `JoinHandle`); call [`shutdown`](ServerHandle::shutdown) then
/// [`join`](ServerHandle::join) to stop it.
pub struct ServerHandle {
    local_addr: SocketAddr,
    workers: Vec<WorkerHandle>,
    shutting_down: Arc<AtomicBool>,
}

impl ServerHandle {
    /// The address every worker listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts a graceful shutdown and returns at once: workers stop
    /// accepting, close idle connections, answer the requests in flight with
    /// `Connection: close`, and force-close whatever is left after `grace`.
    pub fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.shutting_down.store(true, Ordering::Relaxed);
        for worker in &self.workers {
            // A worker that already stopped has dropped its receiver: nothing to tell.
            let _ = worker.control.send(Control::Shutdown { deadline });
            let _ = worker.waker.wake();
        }
    }

    /// Waits until every worker has stopped.
    pub fn join(&self) {
        for worker in &self.workers {
            if let Some(thread) = worker.thread.lock().take() {
                let _ = thread.join();
            }
        }
    }

    /// The counters of all workers, summed.
    pub fn stats(&self) -> Stats {
        self.workers
            .iter()
            .map(|w| w.counters.snapshot())
            .fold(Stats::default(), |a, b| a + b)
    }

    /// How many workers the server runs.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("workers", &self.workers.len())
            .finish()
    }
}

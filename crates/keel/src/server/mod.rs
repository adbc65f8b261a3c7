//! The server builder and the handle to a running server.

pub(crate) mod config;
pub(crate) mod date;
mod handover;
pub(crate) mod listener;
mod open;
pub(crate) mod pool;
pub(crate) mod stats;
pub(crate) mod successor;
pub(crate) mod sys;
pub(crate) mod systemd;
pub(crate) mod worker;

use crate::Metrics;
use crate::{Config, Handler};
use crossbeam_channel::Sender;
use listener::{ListenAddr, Listener, SocketFile};
use mio::{Poll, Waker};
use open::Listen;
use parking_lot::Mutex;
use stats::{Stats, WorkerCounters};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
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
    listen: Listen,
    unix_mode: u32,
    workers: usize,
    config: Config,
    pin_workers: bool,
    backlog: i32,
    defer_accept: Option<Duration>,
    metrics: Option<Metrics>,
    transport: crate::transport::Transport,
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
        Server::listening(Listen::Tcp(addr))
    }

    /// A server that will listen on a Unix stream socket at `path`, as a
    /// proxy on the same machine reaches it (nginx's
    /// `proxy_pass http://unix:/run/app.sock;`). Every worker accepts from
    /// its own duplicate of the one socket.
    ///
    /// - Permissions: [`unix_mode`](Server::unix_mode), `0o600` by default
    ///   (only this user may connect), set before the socket listens.
    /// - A socket file left at `path` by a server that is gone (nobody
    ///   answers a `connect` on it) is removed; a live server there is an
    ///   error (`AddrInUse`), and so is a file that is not a socket
    ///   (`AlreadyExists`, and it is left alone).
    /// - The socket file is removed when the server stops
    ///   ([`ServerHandle::join`] after a shutdown), if the path still names
    ///   this socket.
    ///
    /// Each connection's peer is a local process: handlers read its
    /// credentials with [`Request::peer_credentials`](crate::Request::peer_credentials),
    /// and [`Request::peer_addr`](crate::Request::peer_addr) is
    /// `0.0.0.0:0` for it (see there why).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("keel-doc-{}.sock", std::process::id()));
    /// let server = keel::Server::bind_unix(&path)
    ///     .unix_mode(0o660)
    ///     .workers(1)
    ///     .serve(|_req: &keel::Request<'_>, res: &mut keel::Response<'_>| res.body(b"hi"))?;
    /// assert_eq!(server.listen_addrs()[0].to_string(), format!("unix:{}", path.display()));
    /// server.shutdown(std::time::Duration::ZERO);
    /// server.join();
    /// assert!(!path.exists(), "removed at the end");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_unix(path: impl AsRef<Path>) -> Server {
        Server::listening(Listen::Unix(path.as_ref().to_owned()))
    }

    /// A server that will accept from sockets the caller opened and
    /// listens on (TCP and Unix, any number of each): a supervisor's, or
    /// ones bound with options keel does not set. Each worker accepts from
    /// its own duplicate of every socket (there is one queue per socket;
    /// the kernel wakes the workers waiting on it and the first to call
    /// `accept` gets the connection). The sockets are made non-blocking,
    /// and TCP ones get `TCP_NODELAY` and [`Config::max_unsent_per_socket`]
    /// as keel's own listeners; a new connection is served at once when
    /// the socket defers accepts (`TCP_DEFER_ACCEPT`). They are closed when
    /// the server stops; a Unix socket's file is left to its opener.
    ///
    /// [`serve`](Server::serve) fails (`InvalidInput`) when the list is
    /// empty or a socket is not a listening stream socket.
    ///
    /// ```
    /// let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let server = keel::Server::from_listeners([tcp])
    ///     .workers(2)
    ///     .serve(|_req: &keel::Request<'_>, res: &mut keel::Response<'_>| res.body(b"hi"))?;
    /// assert_ne!(server.local_addr().port(), 0);
    /// server.shutdown(std::time::Duration::ZERO);
    /// server.join();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_listeners<L: Into<Listener>>(listeners: impl IntoIterator<Item = L>) -> Server {
        let listeners = listeners.into_iter().map(Into::into).collect();
        Server::listening(Listen::Given(listeners))
    }

    /// A server on the sockets systemd passed to this process (socket
    /// activation: a `.socket` unit, or `systemd-socket-activate`), all of
    /// them, as [`from_listeners`](Server::from_listeners) does; see
    /// [`systemd_listeners`](crate::systemd_listeners) for the rules (call it
    /// at the start of `main`). With one socket and several workers, every
    /// worker accepts from it.
    ///
    /// # Errors
    ///
    /// [`ActivationError::NotActivated`](crate::ActivationError::NotActivated)
    /// when the process was not socket-activated (bind as usual then);
    /// the other variants when the variables or descriptors are wrong.
    pub fn from_systemd() -> Result<Server, crate::ActivationError> {
        let inherited = systemd::systemd_listeners()?;
        Ok(Server::from_listeners(
            inherited.into_iter().map(|i| i.listener),
        ))
    }

    fn listening(listen: Listen) -> Server {
        Server {
            listen,
            unix_mode: 0o600,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            config: Config::default(),
            pin_workers: false,
            backlog: 4096,
            defer_accept: Some(Duration::from_secs(1)),
            metrics: None,
            transport: crate::transport::Transport::Plain,
        }
    }

    /// The permissions of the socket file [`bind_unix`](Server::bind_unix)
    /// creates: who may connect (a process needs write permission on the
    /// socket, and search permission on its directory). Default `0o600`,
    /// this user only; `0o660` lets the file's group in (a proxy's user
    /// in that group). Bits past `0o777` are ignored.
    pub fn unix_mode(mut self, mode: u32) -> Server {
        self.unix_mode = mode & 0o777;
        self
    }

    /// Speaks TLS on every listener of this server, with `config`'s
    /// certificates (and those of each [`reload`](crate::tls::TlsConfig::reload)
    /// after). The handshake and the records run in the workers (rustls);
    /// handlers see plaintext and [`Request::tls`](crate::Request::tls). A
    /// service that answers plain HTTP too (a redirect on port 80) runs a
    /// second `Server` for it.
    ///
    /// File bodies ([`Response::file`](crate::Response::file)) are read and
    /// encrypted by the worker, 64 KiB at a time, as `sendfile` cannot
    /// encrypt. A connection upgraded after `101` keeps its session
    /// ([`UpgradedSocket::Tls`](crate::UpgradedSocket)).
    ///
    /// ```
    /// use keel::tls::{Certificates, TlsConfig};
    ///
    /// let pki = test_certs::Pki::generate()?;
    /// let certificates = Certificates::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())?;
    /// let tls = TlsConfig::new(certificates)?;
    /// let server = keel::Server::bind("127.0.0.1:0")
    ///     .tls(&tls)
    ///     .workers(1)
    ///     .serve(|req: &keel::Request<'_>, res: &mut keel::Response<'_>| {
    ///         let name = req.tls().and_then(|tls| tls.server_name()).unwrap_or("none");
    ///         res.body(name.as_bytes());
    ///     })?;
    /// server.shutdown(std::time::Duration::ZERO);
    /// server.join();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: &crate::tls::TlsConfig) -> Server {
        self.transport = crate::transport::Transport::Tls(config.clone());
        self
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
        let opened = open::open(self.listen, self.unix_mode, self.workers, options)?;
        let handed_over = match distinct_sockets(&opened) {
            Ok(sockets) => sockets,
            Err(e) => {
                if let Some(file) = &opened.socket_file {
                    file.remove();
                }
                return Err(e);
            }
        };
        let listen_addrs = opened.addrs;
        let socket_file = Mutex::new(opened.socket_file);
        let listeners = opened.per_worker;
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
                listeners: listener,
                handler: Arc::clone(&handler),
                config: Arc::clone(&config),
                counters: Arc::clone(&counters),
                control: control_rx,
                waker: Arc::clone(&waker),
                shutting_down: Arc::clone(&shutting_down),
                pin_to: self.pin_workers.then_some(index % cores),
                timed: self.metrics.is_some(),
                transport: self.transport.clone(),
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
                        listen_addrs,
                        socket_file,
                        handed_over: Mutex::new(handed_over),
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
            listen_addrs,
            socket_file,
            handed_over: Mutex::new(handed_over),
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

/// A duplicate of every distinct listening socket: each worker's own
/// `SO_REUSEPORT` socket, or once each socket all workers share.
fn distinct_sockets(opened: &open::Opened) -> io::Result<Vec<Listener>> {
    let lists = if opened.shared {
        &opened.per_worker[..1]
    } else {
        &opened.per_worker[..]
    };
    lists
        .iter()
        .flatten()
        .map(|l| l.listener.try_clone())
        .collect()
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
    listen_addrs: Vec<ListenAddr>,
    /// The Unix socket [`Server::bind_unix`] made, removed by `join`.
    socket_file: Mutex<Option<SocketFile>>,
    /// Duplicates of the listening sockets, for [`ServerHandle::listeners`];
    /// closed at shutdown, so that a stopped server refuses connections
    /// instead of queueing them for nobody.
    handed_over: Mutex<Vec<Listener>>,
    workers: Vec<WorkerHandle>,
    shutting_down: Arc<AtomicBool>,
}

impl ServerHandle {
    /// The TCP address every worker listens on (with the real port when
    /// bound to port 0): the first of [`listen_addrs`](ServerHandle::listen_addrs)
    /// that is TCP; `0.0.0.0:0` for a server on Unix sockets alone.
    pub fn local_addr(&self) -> SocketAddr {
        self.listen_addrs
            .iter()
            .find_map(|addr| match addr {
                ListenAddr::Tcp(addr) => Some(*addr),
                ListenAddr::Unix(_) => None,
            })
            .unwrap_or(crate::Request::UNIX_PEER_ADDR)
    }

    /// Every address the server listens on, TCP and Unix, in the order its
    /// listeners were given.
    pub fn listen_addrs(&self) -> &[ListenAddr] {
        &self.listen_addrs
    }

    /// Starts a graceful shutdown and returns at once: workers stop
    /// accepting, close idle connections, answer the requests in flight with
    /// `Connection: close`, and force-close whatever is left after `grace`.
    ///
    /// An idle keep-alive connection is not closed at once: a request it
    /// brings within [`Config::drain_idle_grace`] is answered (with
    /// `Connection: close`), so that a client sending its next request as
    /// the shutdown begins gets an answer, not a closed connection.
    pub fn shutdown(&self, grace: Duration) {
        self.handed_over.lock().clear();
        let deadline = Instant::now() + grace;
        self.shutting_down.store(true, Ordering::Relaxed);
        for worker in &self.workers {
            // A worker that already stopped has dropped its receiver: nothing to tell.
            let _ = worker.control.send(Control::Shutdown { deadline });
            let _ = worker.waker.wake();
        }
    }

    /// Duplicates of every listening socket the server accepts from, for
    /// [`spawn_successor`](crate::spawn_successor): each worker's own
    /// `SO_REUSEPORT` socket after [`Server::bind`] (all of them: each has
    /// its own queue), the one shared socket otherwise. The duplicates
    /// share the originals' queues; closing them changes nothing for this
    /// server.
    ///
    /// # Errors
    ///
    /// `InvalidInput` once [`shutdown`](ServerHandle::shutdown) began (the
    /// handle's own copies are closed then); as `dup(2)` otherwise.
    pub fn listeners(&self) -> io::Result<Vec<Listener>> {
        let kept = self.handed_over.lock();
        if kept.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the server is shutting down: its sockets are closed",
            ));
        }
        kept.iter().map(Listener::try_clone).collect()
    }

    /// Shuts down as [`shutdown`](ServerHandle::shutdown) does, for a
    /// server whose sockets a successor serves now (its
    /// [`Successor::wait_ready`](crate::Successor::wait_ready) succeeded):
    /// [`join`](ServerHandle::join) leaves the Unix socket file
    /// [`Server::bind_unix`] made in place, since the successor listens on
    /// that very socket.
    pub fn retire(&self, grace: Duration) {
        // Forgotten, not removed.
        drop(self.socket_file.lock().take());
        self.shutdown(grace);
    }

    /// Waits until every worker has stopped, then removes the socket file
    /// [`Server::bind_unix`] made.
    pub fn join(&self) {
        for worker in &self.workers {
            if let Some(thread) = worker.thread.lock().take() {
                let _ = thread.join();
            }
        }
        if let Some(file) = self.socket_file.lock().take() {
            file.remove();
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
            .field("listen_addrs", &self.listen_addrs)
            .field("workers", &self.workers.len())
            .finish()
    }
}
